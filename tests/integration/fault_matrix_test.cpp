// The fault matrix: every emulator fault alone, then all of them together.
// Whatever the server does, a run ends with every photo uploaded exactly once
// or reported failed with its reason, and the next runs complete the rest.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "sync_fixture.hpp"

using shotsync::testing::StatU;
using shotsync::testing::SyncFixture;

namespace {

// 40 photos through `faults`; runs sync until it exits 0 (at most 6 runs).
void RunScenario(std::vector<std::string> faults) {
  std::vector<std::string> args = {"--shootbin-rpm", "1000000", "--seed", "17"};
  args.insert(args.end(), faults.begin(), faults.end());
  SyncFixture f(args);
  f.WriteConfig("stall_timeout = 2");  // a hung request is given up after 2 s
  f.MakePhotos(40);
  std::string log;
  int code = -1;
  for (int run = 0; run < 6 && code != 0; ++run) {
    auto r = f.Cli({"sync", "--json"});
    code = r.code;
    log += "run " + std::to_string(run) + " exit " + std::to_string(code) + "\n" + r.err;
    // A run that did not finish names every file it could not send, with a reason.
    if (code == 1) {
      auto j = nlohmann::json::parse(r.out, nullptr, false);
      REQUIRE_FALSE(j.is_discarded());
      // (A run the server refused as a whole, 10 x 429 on its listing, has
      // one entry without a path that says so.)
      std::size_t files = 0;
      for (const auto& error : j.at("errors")) {
        if (error.contains("path")) {
          ++files;
          CHECK_FALSE(error.at("path").get<std::string>().empty());
        }
        CHECK_FALSE(error.at("reason").get<std::string>().empty());
      }
      CHECK(files == j.at("failed").get<std::size_t>() + j.at("rejected").get<std::size_t>());
    }
  }
  INFO(log);
  CHECK(code == 0);
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "duplicates") == 0);
  CHECK(StatU(stats, "uploads") == 40);
  CHECK(f.CompareWithServer() == "");
}

}  // namespace

TEST_CASE("fault matrix: 20% of requests answered 5xx", "[faults]") { RunScenario({"--fault-5xx", "0.2"}); }
TEST_CASE("fault matrix: 10% of uploads reset in the middle of the body", "[faults]") {
  RunScenario({"--fault-reset", "0.1"});
}
TEST_CASE("fault matrix: 10% of uploads stored, then the connection dropped before the answer", "[faults]") {
  RunScenario({"--fault-reset-after-store", "0.1"});
}
TEST_CASE("fault matrix: a burst of 10 x 429", "[faults]") { RunScenario({"--fault-429-burst", "10"}); }
TEST_CASE("fault matrix: 500 ms latency on every answer", "[faults]") { RunScenario({"--latency-ms", "500"}); }
TEST_CASE("fault matrix: the server closes 30% of keep-alive connections", "[faults]") {
  RunScenario({"--fault-close", "0.3"});
}
TEST_CASE("fault matrix: 5% of requests never answered (timeouts)", "[faults]") {
  RunScenario({"--fault-hang", "0.05"});
}
TEST_CASE("fault matrix: everything at once", "[faults]") {
  RunScenario({"--fault-5xx", "0.2", "--fault-reset", "0.1", "--fault-reset-after-store", "0.05",
               "--fault-429-burst", "5", "--latency-ms", "200", "--fault-close", "0.3", "--fault-hang",
               "0.03"});
}

TEST_CASE("fault matrix: headshots trickling at 64 KB/s over closing connections arrive complete", "[faults]") {
  SyncFixture f({"--headshotpro-rpm", "1000000", "--slow-body-bps", "65536", "--fault-close", "0.3"});
  f.emu->Seed({{"members", 1}, {"models_per_member", 1}, {"photos_per_model", 12}});
  auto r = f.Cli({"pull", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j.at("downloaded") == 12);
  CHECK(j.at("failed") == 0);
}
