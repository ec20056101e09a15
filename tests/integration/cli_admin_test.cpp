// shotsync status, verify and init: what a person at a terminal (or a
// monitoring script reading --json) sees.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "sync_fixture.hpp"

namespace fs = std::filesystem;
using shotsync::testing::RunProgram;
using shotsync::testing::SyncFixture;

namespace {

nlohmann::json Json(const shotsync::testing::RunResult& r) {
  INFO(r.out << r.err);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

}  // namespace

TEST_CASE("status lists the last runs with their exit codes, and rejected files with reasons", "[cli][status]") {
  SyncFixture f;
  f.MakePhotos(3);
  std::ofstream(f.photos / "d01" / "notes.jpg") << "not a photo";
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 1);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 1);
  auto r = f.Cli({"status", "--json"});
  REQUIRE(r.code == 0);
  auto j = Json(r);
  REQUIRE(j.at("runs").size() == 2);
  CHECK(j.at("runs")[0].at("command") == "sync");
  CHECK(j.at("runs")[0].at("exit_code") == 1);
  CHECK(j.at("runs")[1].at("uploaded") == 3);
  REQUIRE(j.at("rejected").size() == 1);
  CHECK(j.at("rejected")[0].at("path").get<std::string>().find("notes.jpg") != std::string::npos);
  CHECK(j.at("rejected")[0].at("reason").get<std::string>().find("not a valid image") != std::string::npos);
  CHECK(j.at("roots")[0].at("synced") == 3);
  CHECK(j.at("in_flight").empty());
  REQUIRE(j.at("throttle").size() == 1);
  CHECK(j.at("throttle")[0].at("bucket").get<std::string>().rfind("shootbin:", 0) == 0);
  // The text form says the same for a person.
  auto text = f.Cli({"status"});
  CHECK(text.code == 0);
  CHECK(text.out.find("exit 1") != std::string::npos);
  CHECK(text.out.find("notes.jpg") != std::string::npos);
}

TEST_CASE("status works while a sync runs, and shows it running with its files in flight", "[cli][status]") {
  SyncFixture f({"--shootbin-rpm", "1000000", "--latency-ms", "400"});
  f.MakePhotos(20);
  auto sync = f.StartCli({"sync", "-j", "2", "--quiet"});
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  auto r = f.Cli({"status", "--json"});
  REQUIRE(r.code == 0);
  auto j = Json(r);
  CHECK(j.at("runs")[0].at("exit_code").is_null());  // not finished
  CHECK_FALSE(j.at("in_flight").empty());
  CHECK(j.at("in_flight")[0].at("state") == "sending");
  REQUIRE(sync->Wait(std::chrono::minutes(2)) == 0);
}

TEST_CASE("verify finds files deleted or restored on disk, and --repair fixes the manifest only", "[cli][verify]") {
  SyncFixture f;
  f.MakePhotos(4);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  CHECK(f.Cli({"verify"}).code == 0);
  const fs::path gone = f.photos / "d01" / "IMG_0002.jpg";
  fs::rename(gone, f.tmp.path() / "kept.jpg");
  auto r = f.Cli({"verify", "--json"});
  CHECK(r.code == 1);
  auto j = Json(r);
  REQUIRE(j.at("differences").size() == 1);
  CHECK(j.at("differences")[0].at("kind") == "missing");
  CHECK(j.at("differences")[0].at("path") == gone.string());
  CHECK(j.at("differences")[0].at("repaired") == false);

  CHECK(f.Cli({"verify", "--repair"}).code == 1);  // found (and repaired) differences
  CHECK(f.Cli({"verify"}).code == 0);              // consistent now
  // Back on disk: reported, and after --repair the next plan reads it again.
  fs::rename(f.tmp.path() / "kept.jpg", gone);
  j = Json(f.Cli({"verify", "--repair", "--json"}));
  REQUIRE(j.at("differences").size() == 1);
  CHECK(j.at("differences")[0].at("kind") == "reappeared");
  CHECK(Json(f.Cli({"plan", "--json"})).at("hashed") == 1);
  CHECK(f.Cli({"sync", "--quiet"}).code == 0);
  CHECK(f.CompareWithServer() == "");
}

TEST_CASE("verify --remote finds photos the server lost, and --repair makes the next sync send them again",
          "[cli][verify]") {
  SyncFixture f;
  f.MakePhotos(3);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  CHECK(f.Cli({"verify", "--remote"}).code == 0);
  f.emu->Reset();  // the server forgets every photo
  auto r = f.Cli({"verify", "--remote", "--repair", "--json"});
  CHECK(r.code == 1);
  auto j = Json(r);
  CHECK(j.at("differences").size() == 3);
  for (const auto& d : j.at("differences")) {
    CHECK(d.at("kind") == "not-on-server");
    CHECK(d.at("repaired") == true);
  }
  auto again = Json(f.Cli({"sync", "--json"}));
  CHECK(again.at("uploaded") == 3);
  CHECK(f.CompareWithServer() == "");
  CHECK(f.Cli({"verify", "--remote"}).code == 0);
}

TEST_CASE("verify --repair will not write while a sync holds the lock (exit 4)", "[cli][verify]") {
  SyncFixture f({"--shootbin-rpm", "1000000", "--latency-ms", "400"});
  f.MakePhotos(10);
  auto sync = f.StartCli({"sync", "-j", "1", "--quiet"});
  std::this_thread::sleep_for(std::chrono::milliseconds(900));
  auto r = f.Cli({"verify", "--repair"});
  CHECK(r.code == 4);
  CHECK(r.err.find("pid") != std::string::npos);
  CHECK(f.Cli({"verify"}).code <= 1);  // reading is fine
  REQUIRE(sync->Wait(std::chrono::minutes(2)) == 0);
}

TEST_CASE("init writes a private config that plan accepts, and never overwrites one without --force", "[cli][init]") {
  SyncFixture f;
  const fs::path cfg = f.tmp.path() / "conf" / "new.toml";
  auto init = RunProgram({SHOTSYNC_CLI_PATH, "--config", cfg.string(), "init", "--root", f.photos.string(),
                          "--project", "Demo", "--album", "Main", "--base-url", f.emu->base_url()},
                         f.Env(), (f.tmp.path() / "init").string());
  INFO(init.out << init.err);
  REQUIRE(init.code == 0);
  CHECK(init.out.find("wrote " + cfg.string()) != std::string::npos);
  struct stat st{};
  REQUIRE(::stat(cfg.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::string text;
  {
    std::ifstream in(cfg);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  CHECK(text.find("sb-test-token") == std::string::npos);
  f.MakePhotos(2);
  auto plan = RunProgram({SHOTSYNC_CLI_PATH, "--config", cfg.string(), "plan", "--json"}, f.Env(),
                         (f.tmp.path() / "plan").string());
  INFO(plan.out << plan.err);
  CHECK(plan.code == 0);

  auto again = RunProgram({SHOTSYNC_CLI_PATH, "--config", cfg.string(), "init"}, f.Env(), (f.tmp.path() / "again").string());
  CHECK(again.code == 2);
  CHECK(again.err.find("already exists") != std::string::npos);
  auto forced = RunProgram({SHOTSYNC_CLI_PATH, "--config", cfg.string(), "init", "--force"}, f.Env(),
                           (f.tmp.path() / "forced").string());
  CHECK(forced.code == 0);
}
