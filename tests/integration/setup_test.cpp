// Setting up and running unattended (issue 14): a remote mistake is one
// line naming the config's file:line; `check`, `ls` and `ignore`;
// permanent local conditions are warnings; RAW files and sidecars are not
// candidates; one state folder per config. Against the emulator.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "sync_fixture.hpp"

namespace fs = std::filesystem;
using shotsync::testing::ReadFileText;
using shotsync::testing::RunResult;
using shotsync::testing::StatU;
using shotsync::testing::SyncFixture;

namespace {

nlohmann::json SetupJson(const RunResult& r) {
  INFO(r.out << r.err);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

std::size_t Occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The fixture's config with a second root (its own folder of `photos`)
// feeding `project` / `album`.
fs::path AddRoot(SyncFixture& f, const std::string& project, const std::string& album, int photos) {
  const fs::path other = f.tmp.path() / "other";
  fs::create_directories(other);
  for (int i = 0; i < photos; ++i) fs::copy_file(f.photos / "d01" / "IMG_0001.jpg", other / ("O_" + std::to_string(i) + ".jpg"));
  std::ofstream(f.config, std::ios::app) << "[[roots]]\npath = \"" << other.string() << "\"\nproject = \"" << project
                                         << "\"\nalbum = \"" << album << "\"\n";
  return other;
}

}  // namespace

TEST_CASE("a project that does not exist is one line naming the config's file:line and exit 2, the other root syncs",
          "[setup]") {
  SyncFixture f;
  f.MakePhotos(3);
  AddRoot(f, "No Such Project", "Main", 20);
  // The second [[roots]] table starts on this line of the config.
  int line = 0, n = 0;
  std::ifstream in(f.config);
  for (std::string l; std::getline(in, l);) {
    ++n;
    if (l == "[[roots]]") line = n;
  }
  const std::string where = f.config.string() + ":" + std::to_string(line) + ": project \"No Such Project\" not found";

  auto plan = f.Cli({"plan", "--json"});
  INFO(plan.out << plan.err);
  CHECK(plan.code == 2);
  CHECK(Occurrences(plan.err, where) == 1);
  CHECK(plan.err.find("its projects: 1 (\"Demo\")") != std::string::npos);
  CHECK(SetupJson(plan).at("uploaded") == 3);  // the other root's files are not counted as uploads

  auto sync = f.Cli({"sync", "--json"});
  INFO(sync.out << sync.err);
  CHECK(sync.code == 2);
  CHECK(Occurrences(sync.err, "not found") == 1);  // never once per file
  auto j = SetupJson(sync);
  CHECK(j.at("uploaded") == 3);
  CHECK(j.at("failed") == 0);
  REQUIRE_FALSE(j.at("errors").empty());
  CHECK(j.at("errors").back().at("target") == "root");
  CHECK(j.at("errors").back().at("reason").get<std::string>().find(where) == 0);
  CHECK(StatU(f.emu->Stats(), "uploads") == 3);
}

TEST_CASE("a fatal error is its own summary: no all-zero counts after it, and never exit 0", "[setup]") {
  SyncFixture f;
  f.MakePhotos(2);
  auto r = f.Cli({"sync"}, {{"SHOOTBIN_API_TOKEN", "sb-wrong"}});
  INFO(r.out << r.err);
  CHECK(r.code == 3);
  CHECK(r.out.find("0 uploaded") == std::string::npos);
  CHECK(Occurrences(r.err, "shotsync: ") == 1);
}

TEST_CASE("check: one line per part of the set-up, a missing album lists those that exist, exit 2, then 0", "[setup]") {
  SyncFixture f;
  f.MakePhotos(1);
  const std::string text = ReadFileText(f.config);
  std::ofstream(f.config, std::ios::trunc) << std::string(text).replace(text.find("album = \"Main\""), 14, "album = \"Mian\"");
  auto bad = f.Cli({"check"});
  INFO(bad.out << bad.err);
  CHECK(bad.code == 2);
  CHECK(bad.out.find("ok    shootbin token: from SHOOTBIN_API_TOKEN") != std::string::npos);
  CHECK(bad.out.find("ok    shootbin: " + f.emu->base_url()) != std::string::npos);
  CHECK(bad.out.find("FAIL  root " + f.photos.string()) != std::string::npos);
  CHECK(bad.out.find("album \"Mian\" not found in project 1; its albums: 1 (\"Main\")") != std::string::npos);
  CHECK(bad.out.find("ok    headshotpro: ") != std::string::npos);  // the emulator's HeadshotPro takes the key
  CHECK(bad.out.find("then run: shotsync --config " + f.config.string() + " check") != std::string::npos);

  f.WriteConfig();
  auto good = f.Cli({"doctor", "--json"});
  INFO(good.out << good.err);
  CHECK(good.code == 0);
  auto j = SetupJson(good);
  for (const auto& c : j.at("checks")) CHECK(c.at("result") != "fail");
  CHECK(StatU(f.emu->Stats(), "uploads") == 0);  // nothing is sent
  CHECK(!fs::exists(f.state / "manifest.db"));   // nor created
}

TEST_CASE("check: a server that is not Shootbin's API is named as such, a refused token is exit 3", "[setup]") {
  SyncFixture f;
  const std::string text = ReadFileText(f.config);
  const std::string base = "base_url = \"" + f.emu->base_url() + "\"";
  std::ofstream(f.config, std::ios::trunc)
      << std::string(text).replace(text.find(base), base.size(), "base_url = \"" + f.emu->base_url() + "/wrong/path\"");
  auto wrong = f.Cli({"check"});
  INFO(wrong.out << wrong.err);
  CHECK(wrong.code == 2);
  CHECK(wrong.out.find("is this your Shootbin instance?") != std::string::npos);

  f.WriteConfig();
  auto refused = f.Cli({"check"}, {{"SHOOTBIN_API_TOKEN", "sb-revoked"}});
  INFO(refused.out << refused.err);
  CHECK(refused.code == 3);
  CHECK(refused.out.find("FAIL  shootbin: ") != std::string::npos);
  CHECK(refused.out.find("sb-revoked") == std::string::npos);
}

TEST_CASE("ls lists the projects and their albums with ids, in text and JSON", "[setup]") {
  SyncFixture f;
  f.emu->Seed({{"projects", {{{"name", "Client Smith"}, {"albums", {"Selects", "BTS"}}}}}});
  auto text = f.Cli({"ls"});
  INFO(text.out << text.err);
  CHECK(text.code == 0);
  CHECK(text.out.find("Client Smith") != std::string::npos);
  CHECK(text.out.find("Selects") != std::string::npos);
  auto j = SetupJson(f.Cli({"ls", "Client Smith", "--json"}));
  REQUIRE(j.at("projects").size() == 1);
  CHECK(j.at("projects")[0].at("albums").size() == 2);
  CHECK(j.at("projects")[0].at("albums")[0].at("id").is_number_integer());
  auto missing = f.Cli({"ls", "Nobody"});
  CHECK(missing.code == 2);
  CHECK(Occurrences(missing.err, "not found") == 1);
}

TEST_CASE("a dangling symlink and a symlink loop are warnings: exit 0, listed under warnings", "[setup]") {
  SyncFixture f;
  f.MakePhotos(2);
  fs::create_symlink(f.tmp.path() / "gone.jpg", f.photos / "d01" / "dangling.jpg");
  fs::create_directory_symlink(f.photos, f.photos / "d01" / "loop");
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  auto j = SetupJson(r);
  CHECK(j.at("uploaded") == 2);
  REQUIRE(j.at("warnings").size() == 2);
  CHECK(r.err.find("shotsync: warning: ") != std::string::npos);
  CHECK(r.err.find("dangling symlink") != std::string::npos);
  CHECK(f.Cli({"sync"}).code == 0);  // and on every later run
}

TEST_CASE("RAW files, sidecars and PSDs are not candidates by default, include = [\"*\"] offers them to the server",
          "[setup]") {
  SyncFixture f;
  f.MakePhotos(2);
  for (const char* name : {"IMG_0001.CR3", "IMG_0001.xmp", "layout.psd", "IMG_0002.NEF"}) {
    std::ofstream(f.photos / "d01" / name) << "not a JPEG";
  }
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  auto j = SetupJson(r);
  CHECK(j.at("uploaded") == 2);
  CHECK(j.at("scanned") == 2);  // the others were never candidates
  CHECK(r.err.empty());

  const std::string text = ReadFileText(f.config);
  std::ofstream(f.config, std::ios::trunc) << text << "include = [\"*\"]\n";
  auto all = f.Cli({"sync", "--json"});
  INFO(all.out << all.err);
  CHECK(SetupJson(all).at("rejected") == 4);  // the server's 422 decides
}

TEST_CASE("a rejected file acknowledged with `ignore` no longer fails the run, --remove brings it back", "[setup]") {
  SyncFixture f;
  f.MakePhotos(1);
  const fs::path bad = f.photos / "d01" / "notes.jpg";
  std::ofstream(bad) << "a text file with an image's name";
  CHECK(f.Cli({"sync"}).code == 1);
  CHECK(f.Cli({"sync"}).code == 1);  // a refusal stands while the file is unchanged

  auto ack = f.Cli({"ignore", bad.string()});
  INFO(ack.out << ack.err);
  CHECK(ack.code == 0);
  CHECK(ack.out.find("must be an image") != std::string::npos);
  auto after = f.Cli({"sync", "--json"});
  INFO(after.out << after.err);
  CHECK(after.code == 0);
  CHECK(after.err.find("notes.jpg") == std::string::npos);
  CHECK(f.Cli({"ignore", "--list"}).out.find(bad.string()) != std::string::npos);

  CHECK(f.Cli({"ignore", "--remove", bad.string()}).code == 0);
  CHECK(f.Cli({"sync"}).code == 1);
}

TEST_CASE("on_rejected = \"warn\": a refused file is a warning and the exit code stays 0", "[setup]") {
  SyncFixture f;
  f.WriteConfig("on_rejected = \"warn\"");
  f.MakePhotos(1);
  std::ofstream(f.photos / "d01" / "notes.jpg") << "not an image";
  auto r = f.Cli({"sync"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.err.find("shotsync: warning: ") != std::string::npos);
  CHECK(r.err.find("must be an image") != std::string::npos);
}

TEST_CASE("two configs without a state_dir get two state folders: neither locks nor mixes the other", "[setup]") {
  SyncFixture f;
  f.MakePhotos(2);
  std::string text = ReadFileText(f.config);
  text.erase(0, text.find('\n') + 1);  // no state_dir line: the default
  const fs::path a = f.tmp.path() / "a" / "studio.toml", b = f.tmp.path() / "b" / "studio.toml";
  fs::create_directories(a.parent_path());
  fs::create_directories(b.parent_path());
  std::ofstream(a) << text;
  std::ofstream(b) << text;
  const std::map<std::string, std::string> env = {{"XDG_STATE_HOME", (f.tmp.path() / "xdg").string()},
                                                  {"SHOOTBIN_API_TOKEN", "sb-test-token"}};
  auto first = shotsync::testing::RunProgram({SHOTSYNC_CLI_PATH, "--config", a.string(), "sync"}, env,
                                             (f.tmp.path() / "ra").string());
  auto second = shotsync::testing::RunProgram({SHOTSYNC_CLI_PATH, "--config", b.string(), "status", "--json"}, env,
                                              (f.tmp.path() / "rb").string());
  INFO(first.out << first.err << second.out << second.err);
  CHECK(first.code == 0);
  CHECK(second.code == 0);
  CHECK(second.out.find("\"uploaded\": 2") == std::string::npos);  // b's manifest has none of a's runs
  std::size_t folders = 0;
  for (const auto& e : fs::directory_iterator(f.tmp.path() / "xdg" / "shotsync")) {
    CHECK(e.path().filename().string().rfind("studio-", 0) == 0);
    ++folders;
  }
  CHECK(folders == 2);
}

TEST_CASE("the command line: bare shotsync is its help, --version, did you mean, rclone's spellings", "[setup][cli]") {
  SyncFixture f;
  f.MakePhotos(2);
  auto bare = shotsync::testing::RunProgram({SHOTSYNC_CLI_PATH}, f.Env(), (f.tmp.path() / "bare").string());
  CHECK(bare.code == 0);
  CHECK(bare.out.find("Usage: shotsync [OPTIONS] [SUBCOMMAND]") != std::string::npos);
  CHECK(bare.out.find("Exit codes:") != std::string::npos);

  auto version = f.Cli({"--version", "-v"});
  CHECK(version.code == 0);
  CHECK(version.out.find("shotsync 0.") == 0);
  CHECK(version.out.find("libcurl ") != std::string::npos);
  CHECK(version.out.find("SQLite ") != std::string::npos);

  auto typo = f.Cli({"snyc"});
  CHECK(typo.code == 2);
  CHECK(typo.err == "shotsync: unknown command 'snyc'; did you mean 'sync'? (shotsync --help)\n");

  auto help = f.Cli({"sync", "--help"});
  CHECK(help.code == 0);
  CHECK(help.out.find("Global options") != std::string::npos);
  CHECK(help.out.find("Examples:") != std::string::npos);

  auto dry = f.Cli({"sync", "-n", "--transfers", "2", "--json"});
  INFO(dry.out << dry.err);
  CHECK(dry.code == 0);
  CHECK(SetupJson(dry).at("uploaded") == 0);
  CHECK(StatU(f.emu->Stats(), "uploads") == 0);
}

TEST_CASE("the log file has one start and one end line per run, with pid, version, profile and exit code",
          "[setup][cli]") {
  SyncFixture f;
  f.MakePhotos(1);
  const fs::path log = f.tmp.path() / "logs" / "sync.log";
  CHECK(f.Cli({"--log-file", log.string(), "sync"}).code == 0);
  CHECK(f.Cli({"--log-file", log.string(), "push", (f.photos / "d01" / "IMG_0001.jpg").string()}).code == 0);
  const std::string text = ReadFileText(log);
  CHECK(Occurrences(text, " INFO start: sync (pid ") == 1);
  CHECK(Occurrences(text, " INFO start: push (pid ") == 1);
  CHECK(Occurrences(text, ", config " + f.config.string() + ")") == 2);
  CHECK(Occurrences(text, ") exit 0 after ") == 2);
}

TEST_CASE("a file name with a newline is printed escaped, one line per file", "[setup][cli]") {
  SyncFixture f;
  f.MakePhotos(1);
  fs::copy_file(f.photos / "d01" / "IMG_0001.jpg", f.photos / "d01" / "two\nlines.jpg");
  auto plan = f.Cli({"-v", "plan"});
  INFO(plan.out << plan.err);
  CHECK(plan.code == 0);
  CHECK(plan.out.find("two\\nlines.jpg") != std::string::npos);
  CHECK(plan.out.find("two\nlines") == std::string::npos);
  auto push = f.Cli({"push", (f.photos / "d01" / "two\nlines.jpg").string()});
  INFO(push.out << push.err);
  CHECK(push.code == 0);
  CHECK(push.out.find("uploaded  " + (f.photos / "d01").string() + "/two\\nlines.jpg") != std::string::npos);
}

TEST_CASE("sync --max-duration stops cleanly: exit 5, and the next run finishes with no duplicate", "[setup][cli]") {
  SyncFixture f;
  f.MakePhotos(12);
  // 30 requests a minute: the twelve uploads need far longer than the limit.
  auto stopped = f.Cli({"sync", "--rpm", "30", "--max-duration", "1s"});
  INFO(stopped.out << stopped.err);
  CHECK(stopped.code == 5);
  CHECK(stopped.err.find("--max-duration reached") != std::string::npos);
  CHECK(StatU(f.emu->Stats(), "uploads") < 12);
  auto rest = f.Cli({"sync"});
  INFO(rest.out << rest.err);
  CHECK(rest.code == 0);
  CHECK(f.CompareWithServer().empty());
  CHECK(StatU(f.emu->Stats(), "duplicates") == 0);
  CHECK(f.Cli({"sync", "--max-duration", "1h30"}).code == 2);  // a unit after every number
  CHECK(f.Cli({"sync", "--max-duration", "inf"}).code == 2);
}
