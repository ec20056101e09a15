// PgServer: a private PostgreSQL server that survives restarts and cleans up.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "pg_server.hpp"

using shotsync::testing::PgServer;

TEST_CASE("a private PostgreSQL server keeps its data across a restart and is removed after", "[pg]") {
  std::filesystem::path data;
  {
    PgServer pg;
    CHECK(pg.url().rfind("postgresql://", 0) == 0);
    CHECK(pg.url().find("127.0.0.1") != std::string::npos);
    CHECK(pg.port() > 0);
    CHECK(pg.Query("SELECT 1") == std::vector<std::string>{"1"});

    data = pg.Query("SHOW data_directory").at(0);
    REQUIRE(std::filesystem::exists(data));

    CHECK(pg.Query("CREATE TABLE photos (name text PRIMARY KEY)").empty());
    pg.Query("INSERT INTO photos VALUES ('a.jpg')");
    const int port = pg.port();
    pg.Restart();
    CHECK(pg.port() == port);
    CHECK(pg.Query("SELECT name FROM photos") == std::vector<std::string>{"a.jpg"});

    // Stop is idempotent; Start after Stop works too.
    pg.Stop();
    pg.Stop();
    CHECK_THROWS(pg.Query("SELECT 1"));
    pg.Start();
    CHECK(pg.Query("SELECT count(*) FROM photos") == std::vector<std::string>{"1"});
  }
  CHECK_FALSE(std::filesystem::exists(data));
}
