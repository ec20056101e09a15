// shotsync status, verify and init: what a person at a terminal (or a
// monitoring script reading --json) sees.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include "http.hpp"
#include "jpeg_synth.hpp"
#include "sync_fixture.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

namespace fs = std::filesystem;
using shotsync::testing::RunProgram;
using shotsync::testing::SyncFixture;
using shotsync::testing::ReadFileText;

namespace {

// The differences of one kind in a verify --json answer.
std::vector<nlohmann::json> OfKind(const nlohmann::json& j, const std::string& kind) {
  std::vector<nlohmann::json> out;
  for (const auto& d : j.at("differences")) {
    if (d.at("kind") == kind) out.push_back(d);
  }
  return out;
}

nlohmann::json Json(const shotsync::testing::RunResult& r) {
  INFO(r.out << r.err);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

// Waits for the condition (a job in flight in `status --json`), not for a
// guessed time; returns the status that showed it.
nlohmann::json WaitForJobInFlight(SyncFixture& f) {
  nlohmann::json j;
  const bool seen = shotsync::testing::WaitFor([&] {
    auto r = f.Cli({"status", "--json"});
    REQUIRE(r.code == 0);
    j = Json(r);
    return !j.at("in_flight").empty();
  });
  REQUIRE(seen);
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
  REQUIRE(j.at("rejected_files").size() == 1);
  CHECK(j.at("rejected_files")[0].at("path").get<std::string>().find("notes.jpg") != std::string::npos);
  CHECK(j.at("rejected_files")[0].at("reason").get<std::string>().find("must be an image") != std::string::npos);  // the server's words
  CHECK(j.at("roots")[0].at("synced") == 3);
  CHECK(j.at("in_flight").empty());
  REQUIRE(j.at("throttle").size() == 1);
  CHECK(j.at("throttle")[0].at("bucket").get<std::string>().rfind("shootbin:", 0) == 0);
  CHECK(j.at("throttle")[0].at("label") == "Shootbin (token from SHOOTBIN_API_TOKEN, 1000000 requests/min)");
  CHECK(j.at("failed_files").empty());  // the refusal is the file's rejection, listed once
  // The text form says the same for a person.
  auto text = f.Cli({"status"});
  CHECK(text.code == 0);
  CHECK(text.out.find("exit 1") != std::string::npos);
  CHECK(text.out.find("Failed uploads (the next run retries them): 0") != std::string::npos);
  CHECK(text.out.find("Rejected files (sent again once changed") != std::string::npos);
  CHECK(text.out.find("notes.jpg") != std::string::npos);
  CHECK(text.out.find("Shootbin (token from SHOOTBIN_API_TOKEN") != std::string::npos);
}

TEST_CASE("status works while a sync runs, and shows it running with its files in flight", "[cli][status]") {
  SyncFixture f({"--shootbin-rpm", "1000000", "--latency-ms", "400"});
  f.MakePhotos(20);
  auto sync = f.StartCli({"sync", "-j", "2", "--quiet"});
  // The sync lists the album and sends its first photo alone before the rest.
  const nlohmann::json j = WaitForJobInFlight(f);
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
  REQUIRE(f.WaitForLock(*sync));
  auto r = f.Cli({"verify", "--repair"});
  CHECK(r.code == 4);
  CHECK(r.err.find("pid") != std::string::npos);
  CHECK(f.Cli({"verify"}).code <= 1);  // reading is fine
  REQUIRE(sync->Wait(std::chrono::minutes(2)) == 0);
}

TEST_CASE("init writes a private config, checks it, names the next command, and never overwrites one without --force",
          "[cli][init]") {
  SyncFixture f;
  const fs::path cfg = f.tmp.path() / "conf" / "new.toml";
  auto env = f.Env();
  env["XDG_STATE_HOME"] = (f.tmp.path() / "state-home").string();  // the default state folder, per config
  env["HEADSHOTPRO_API_KEY"] = "";  // a Shootbin-only user
  auto init = RunProgram({SHOTSYNC_CLI_PATH, "--config", cfg.string(), "init", "--root", f.photos.string(),
                          "--project", "Demo", "--album", "Main", "--base-url", f.emu->base_url()},
                         env, (f.tmp.path() / "init").string());
  INFO(init.out << init.err);
  REQUIRE(init.code == 0);
  CHECK(init.out.find("wrote " + cfg.string()) != std::string::npos);
  // Given a server, a token and a root, init runs `check`: the target resolves.
  CHECK(init.out.find("ok    root " + f.photos.string() + ": project 1, album 1") != std::string::npos);
  CHECK(init.out.find("all checks passed; next: shotsync --config " + cfg.string() + " sync") != std::string::npos);
  // Its state folder is its own, named after the config file.
  CHECK(init.out.find((f.tmp.path() / "state-home" / "shotsync" / "new-").string()) != std::string::npos);
  struct stat st{};
  REQUIRE(::stat(cfg.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const std::string text = ReadFileText(cfg);
  CHECK(text.find("sb-test-token") == std::string::npos);
  f.MakePhotos(2);
  auto plan = RunProgram({SHOTSYNC_CLI_PATH, "--config", cfg.string(), "plan", "--json"}, env,
                         (f.tmp.path() / "plan").string());
  INFO(plan.out << plan.err);
  CHECK(plan.code == 0);

  auto again = RunProgram({SHOTSYNC_CLI_PATH, "--config", cfg.string(), "init"}, env, (f.tmp.path() / "again").string());
  CHECK(again.code == 2);
  CHECK(again.err.find("already exists") != std::string::npos);
  auto forced = RunProgram({SHOTSYNC_CLI_PATH, "--config", cfg.string(), "init", "--force"}, env,
                           (f.tmp.path() / "forced").string());
  CHECK(forced.code == 0);
}

TEST_CASE("verify reports a file changed on disk, and after --repair the next sync revises it", "[cli][verify]") {
  SyncFixture f;
  f.MakePhotos(2);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  f.MakePhotos(1, 1, 50, 96);  // IMG_0001.jpg again, other pixels and size
  auto j = Json(f.Cli({"verify", "--json"}));
  REQUIRE(j.at("differences").size() == 1);
  CHECK(j.at("differences")[0].at("kind") == "changed");
  CHECK(j.at("differences")[0].at("path").get<std::string>().find("IMG_0001.jpg") != std::string::npos);
  CHECK(j.at("exit_code") == 1);

  auto r = f.Cli({"verify", "--repair"});
  CHECK(r.code == 1);
  CHECK(r.out.find("changed") != std::string::npos);
  CHECK(r.out.find("1 repaired") != std::string::npos);
  // The remote id was kept: a revision of the same photo, not a second upload.
  auto sync = Json(f.Cli({"sync", "--json"}));
  CHECK(sync.at("revised") == 1);
  CHECK(sync.at("uploaded") == 0);
  CHECK(f.CompareWithServer() == "");
  CHECK(f.Cli({"verify", "--remote"}).code == 0);
}

TEST_CASE("verify --remote lists a photo that is only on the server by its filename", "[cli][verify]") {
  SyncFixture f;
  f.MakePhotos(2);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  // Someone uploads through the web page.
  const auto jpeg = shotsync::testing::SynthJpeg({.width = 32, .height = 24, .seed = 4242});
  namespace http = shotsync::testing::http;
  auto up = http::PostMultipart(f.emu->url("/api/projects/1/albums/1/photos"),
                                {http::Part::Bytes("photo", jpeg, "from-the-web.jpg", "image/jpeg"),
                                 http::Part::Field("client_original_filename", "from-the-web.jpg")},
                                {{"Authorization", "Bearer sb-test-token"}, {"Accept", "application/json"}});
  REQUIRE(up.status / 100 == 2);
  auto r = f.Cli({"verify", "--remote", "--repair", "--json"});
  CHECK(r.code == 1);
  auto j = Json(r);
  CHECK(j.at("remote_checked") == 3);
  auto only = OfKind(j, "server-only");
  REQUIRE(only.size() == 1);
  CHECK(only[0].at("path") == "from-the-web.jpg");
  CHECK(only[0].at("repaired") == false);  // the server is never changed
  CHECK(j.at("differences").size() == 1);
  CHECK(f.RemotePhotos().size() == 3);
}

TEST_CASE("verify --remote with a revoked token exits 3", "[cli][verify]") {
  SyncFixture f;
  f.MakePhotos(1);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  nlohmann::json body = {{"token", "sb-test-token"}, {"service", "shootbin"}, {"revoked", true}};
  f.emu->Admin("POST", "tokens", &body);
  auto r = f.Cli({"verify", "--remote"});
  CHECK(r.code == 3);
  CHECK(r.err.find("sb-test-token") == std::string::npos);
  CHECK(f.Cli({"verify"}).code == 0);  // the local check needs no token
}

TEST_CASE("status and verify show a killed sync's run and its job left in flight, and the next sync clears both",
          "[cli][status][verify]") {
  SyncFixture f({"--shootbin-rpm", "1000000", "--latency-ms", "400"});
  f.MakePhotos(12);
  auto sync = f.StartCli({"sync", "-j", "2", "--quiet"});
  WaitForJobInFlight(f);
  sync->Kill(SIGKILL);
  sync->Wait(std::chrono::seconds(30));

  auto st = Json(f.Cli({"status", "--json"}));
  CHECK(st.at("runs")[0].at("exit_code").is_null());
  REQUIRE_FALSE(st.at("in_flight").empty());
  CHECK(st.at("in_flight")[0].at("state") == "interrupted");
  auto text = f.Cli({"status"});
  CHECK(text.out.find("killed") != std::string::npos);

  auto v = f.Cli({"verify", "--json"});
  CHECK(v.code == 1);
  auto inflight = OfKind(Json(v), "in-flight");
  REQUIRE_FALSE(inflight.empty());
  CHECK(inflight[0].at("reason").get<std::string>().find("interrupted") != std::string::npos);

  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  CHECK(f.CompareWithServer() == "");
  CHECK(f.Cli({"verify"}).code == 0);
  CHECK(Json(f.Cli({"status", "--json"})).at("in_flight").empty());
}

TEST_CASE("verify reports the rows of a root that left the config and keeps them", "[cli][verify]") {
  SyncFixture f;
  f.MakePhotos(3);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  const fs::path other = f.tmp.path() / "other";
  fs::create_directories(other);
  std::string cfg = ReadFileText(f.config);
  const std::string from = "path = \"" + f.photos.string() + "\"";
  REQUIRE(cfg.find(from) != std::string::npos);
  cfg.replace(cfg.find(from), from.size(), "path = \"" + other.string() + "\"");
  std::ofstream(f.config, std::ios::trunc) << cfg;

  for (int pass = 0; pass < 2; ++pass) {  // --repair leaves them as they are
    auto r = f.Cli({"verify", "--repair", "--json"});
    CHECK(r.code == 1);
    auto j = Json(r);
    REQUIRE(j.at("differences").size() == 1);
    CHECK(j.at("differences")[0].at("kind") == "unknown-root");
    CHECK(j.at("differences")[0].at("path") == f.photos.string());
    CHECK(j.at("differences")[0].at("reason").get<std::string>().find("3 files") != std::string::npos);
  }
}

TEST_CASE("verify exits 2 when the manifest is damaged", "[cli][verify]") {
  SyncFixture f;
  f.MakePhotos(3);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  const fs::path db = f.state / "manifest.db";
  const auto size = fs::file_size(db);
  REQUIRE(size > 8192);
  {
    // Every page but the header page: the tables the schema names are junk.
    std::fstream io(db, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(4096);
    const std::string junk(std::size_t(size - 4096), '\x5a');
    io.write(junk.data(), std::streamsize(junk.size()));
  }
  fs::remove(f.state / "manifest.db-wal");
  fs::remove(f.state / "manifest.db-shm");
  auto r = f.Cli({"verify"});
  INFO(r.out << r.err);
  CHECK(r.code == 2);
  CHECK_FALSE(r.err.empty());
}

TEST_CASE("init makes a relative --root absolute and creates missing folders 0700", "[cli][init]") {
  SyncFixture f;
  const fs::path cwd = f.tmp.path() / "work";
  fs::create_directories(cwd / "shots");
  const fs::path cfg = f.tmp.path() / "xdg" / "deep" / "config.toml";
  // RunProgram keeps the test's cwd: a shell moves into `cwd` first.
  auto init = RunProgram({"/bin/sh", "-c", "cd \"$1\" && exec \"$2\" --config \"$3\" init --root shots", "sh",
                          cwd.string(), SHOTSYNC_CLI_PATH, cfg.string()},
                         f.Env(), (f.tmp.path() / "init").string());
  INFO(init.out << init.err);
  REQUIRE(init.code == 0);
  const std::string text = ReadFileText(cfg);
  CHECK(text.find("path = \"" + (cwd / "shots").string() + "\"") != std::string::npos);
  for (const fs::path& d : {f.tmp.path() / "xdg", f.tmp.path() / "xdg" / "deep"}) {
    struct stat st{};
    REQUIRE(::stat(d.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
  }
  // Every key the parser knows is there, set or commented.
  for (const char* key : {"state_dir", "jobs", "dedupe", "stall_timeout", "reconcile_delay", "ca_file", "base_url", "rpm",
                          "token_file", "dest", "include", "layout", "key_file", "project", "album", "create",
                          "ignore", "SHOOTBIN_API_TOKEN", "HEADSHOTPRO_API_KEY"}) {
    CHECK(text.find(key) != std::string::npos);
  }
  // --quiet: nothing on stdout.
  auto quiet = RunProgram({SHOTSYNC_CLI_PATH, "--quiet", "--config", (cwd / "q.toml").string(), "init"}, f.Env(),
                          (f.tmp.path() / "quiet").string());
  CHECK(quiet.code == 0);
  CHECK(quiet.out.empty());
}

TEST_CASE("status --runs limits the runs shown and --quiet prints nothing", "[cli][status]") {
  SyncFixture f;
  f.MakePhotos(1);
  for (int i = 0; i < 3; ++i) REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  auto j = Json(f.Cli({"status", "--json", "--runs", "2"}));
  CHECK(j.at("runs").size() == 2);
  CHECK(j.at("runs")[0].at("uploaded") == 0);  // newest first: nothing left to send
  auto quiet = f.Cli({"status", "--quiet"});
  CHECK(quiet.code == 0);
  CHECK(quiet.out.empty());
}
