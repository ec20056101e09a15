// What the shotsync CLI prints, logs and returns, as cron and people see it:
// the live progress line only on a terminal, tokens nowhere, --log-file and
// --quiet, and the exit codes not covered by sync_test / cli_signals_test
// (bad token, non-image reject and SIGINT live there).
#include <catch2/catch.hpp>

#include <signal.h>
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "sync_fixture.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using shotsync::testing::RunOnPty;
using shotsync::testing::SyncFixture;
using shotsync::testing::ReadFileText;

namespace {

}  // namespace

TEST_CASE("progress output is absent when stdout is not a terminal", "[cli][progress]") {
  SyncFixture f({"--shootbin-rpm", "1000000", "--latency-ms", "60"});
  f.MakePhotos(12);
  const fs::path log = f.tmp.path() / "sync.log";
  // Long enough (several redraw ticks) that a bar would have been drawn.
  auto r = f.Cli({"sync", "-j", "2", "-v", "--log-file", log.string()}, {{"TERM", "xterm"}});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("12 uploaded") != std::string::npos);
  for (const std::string& text : {r.out, r.err, ReadFileText(log)}) {
    CHECK(text.find('\r') == std::string::npos);
    CHECK(text.find('\033') == std::string::npos);
  }
}

TEST_CASE("progress is shown on a terminal", "[cli][progress]") {
  SyncFixture f({"--shootbin-rpm", "1000000", "--latency-ms", "100"});
  f.MakePhotos(12);
  const fs::path log = f.tmp.path() / "sync.log";
  const std::vector<std::string> cmd = {SHOTSYNC_CLI_PATH, "--config", f.config.string(),
                                        "--log-file", log.string(), "sync", "-j", "2"};
  // A pty of our own as the CLI's terminal: what it shows is r.out.
  auto r = RunOnPty(cmd, {{"TERM", "xterm"}, {"SHOOTBIN_API_TOKEN", "sb-test-token"}},
                    (f.tmp.path() / "pty").string());
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("\r") != std::string::npos);
  CHECK(r.out.find("\033[K") != std::string::npos);  // the line is redrawn in place
  CHECK(std::regex_search(r.out, std::regex(R"(sending +\d+/12 files)")));
  CHECK(r.out.find("MB/s") != std::string::npos);
  CHECK(r.out.find("sync: 12 uploaded") != std::string::npos);  // the summary follows the bar
  CHECK(f.CompareWithServer() == "");
  const std::string logged = ReadFileText(log);  // the bar never reaches the log file
  CHECK(logged.find('\r') == std::string::npos);
  CHECK(logged.find('\033') == std::string::npos);

  // TERM=dumb: no bar even on a terminal.
  f.MakePhotos(3, 100);
  auto dumb = RunOnPty(cmd, {{"TERM", "dumb"}, {"SHOOTBIN_API_TOKEN", "sb-test-token"}},
                       (f.tmp.path() / "pty-dumb").string());
  INFO(dumb.out);
  CHECK(dumb.code == 0);
  CHECK(dumb.out.find("\033[K") == std::string::npos);
}

TEST_CASE("pull shows a total and an ETA on a terminal once the listing is complete", "[cli][progress]") {
  SyncFixture f;
  f.emu->Seed({{"members", 1}, {"photos_per_model", 8}, {"pregenerate", true}});
  f.emu->SetFaults({{"slow_body_bps", 200000}});  // the bar is redrawn several times per file
  auto r = RunOnPty({SHOTSYNC_CLI_PATH, "--config", f.config.string(), "pull", "-j", "2"},
                    {{"TERM", "xterm"}, {"HEADSHOTPRO_API_KEY", "hp-test-key"}}, (f.tmp.path() / "pty").string());
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(std::regex_search(r.out, std::regex(R"(pulling +\d+/8 files)")));  // a final total, no '+'
  CHECK(std::regex_search(r.out, std::regex(R"(ETA \d+:\d\d)")));
}

TEST_CASE("tokens never appear in logs, errors or --json output", "[cli][token]") {
  SyncFixture f({"--shootbin-rpm", "1000000", "--fault-5xx", "0.3", "--fault-reset", "0.15",
                 "--fault-429-burst", "3", "--seed", "7"});
  const std::string token = "sb-Distinctive-Token-9f2c41e7";
  const std::string refused = "sb-Refused-Token-3b77d0a1";
  const std::string hp_key = "hp-Distinctive-Key-55aa19c3";
  f.emu->AddToken({{"token", token}, {"service", "shootbin"}, {"plan", "agency"}, {"scopes", {"create", "update"}}});
  f.MakePhotos(20);
  std::ofstream(f.photos / "notes.jpg") << "not a photo\n";  // rejected: an error line
  const fs::path log = f.tmp.path() / "sync.log";

  std::vector<shotsync::testing::RunResult> runs;
  runs.push_back(f.Cli({"sync", "--json", "-v", "--log-file", log.string()},
                       {{"SHOOTBIN_API_TOKEN", token}, {"HEADSHOTPRO_API_KEY", hp_key}}));
  INFO("exit " << runs.back().code << ": " << runs.back().err);
  CHECK((runs.back().code == 0 || runs.back().code == 1));
  runs.push_back(f.Cli({"sync", "-v", "--log-file", log.string()},
                       {{"SHOOTBIN_API_TOKEN", token}, {"HEADSHOTPRO_API_KEY", hp_key}}));
  // A token the server refuses ends up in error messages, if anywhere.
  f.MakePhotos(2, 500);
  runs.push_back(f.Cli({"sync", "--json", "-v", "--log-file", log.string()},
                       {{"SHOOTBIN_API_TOKEN", refused}, {"HEADSHOTPRO_API_KEY", hp_key}}));
  CHECK(runs.back().code == 3);
  runs.push_back(f.Cli({"sync", "-v", "--log-file", log.string()},
                       {{"SHOOTBIN_API_TOKEN", refused}, {"HEADSHOTPRO_API_KEY", hp_key}}));
  CHECK(runs.back().code == 3);

  std::vector<std::pair<std::string, std::string>> outputs;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    outputs.emplace_back("run " + std::to_string(i) + " stdout", runs[i].out);
    outputs.emplace_back("run " + std::to_string(i) + " stderr", runs[i].err);
  }
  const std::string logged = ReadFileText(log);
  outputs.emplace_back("log file", logged);
  for (const auto& e : fs::recursive_directory_iterator(f.state)) {  // manifest.db, -wal, lock...
    if (e.is_regular_file()) outputs.emplace_back(e.path().string(), ReadFileText(e.path()));
  }
  CHECK(logged.find("ERROR") != std::string::npos);  // the runs did log errors
  CHECK(logged.find("sent ") != std::string::npos);
  for (const auto& [what, text] : outputs) {
    INFO(what << ":\n" << text.substr(0, 4000));
    for (const std::string& secret : {token, refused, hp_key}) {
      CHECK(text.find(secret) == std::string::npos);
    }
  }
}

TEST_CASE("a log file (--log-file) records every uploaded file with a timestamp", "[cli][log]") {
  SyncFixture f;
  f.MakePhotos(6);
  const fs::path log = f.tmp.path() / "logs" / "shotsync.log";
  fs::create_directories(log.parent_path());
  auto r = f.Cli({"sync", "--quiet", "--log-file", log.string()});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const std::string text = ReadFileText(log);
  INFO(text);
  for (int i = 1; i <= 6; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "IMG_%04d\\.jpg", i);
    const std::regex line(std::string(R"((^|\n)\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z INFO sent \S*/d01/)") +
                          name + R"( \(\d+ bytes\)\n)");
    CHECK(std::regex_search(text, line));
  }
  // Appended, not truncated, by the next run.
  auto again = f.Cli({"sync", "--log-file", log.string()});
  CHECK(again.code == 0);
  CHECK(ReadFileText(log).substr(0, text.size()) == text);
}

TEST_CASE("quiet mode (--quiet) prints nothing on success", "[cli][quiet]") {
  SyncFixture f;
  f.MakePhotos(4);
  auto r = f.Cli({"sync", "--quiet"});
  CHECK(r.code == 0);
  CHECK(r.out == "");
  CHECK(r.err == "");
  auto noop = f.Cli({"sync", "-q"});
  CHECK(noop.code == 0);
  CHECK(noop.out == "");
  CHECK(noop.err == "");
  CHECK(f.CompareWithServer() == "");
}

TEST_CASE("exit 1: a file over the 10 MB upload limit is rejected, named on stderr, the rest uploaded",
          "[cli][exit]") {
  SyncFixture f;
  f.MakePhotos(3);
  {
    std::ofstream big(f.photos / "big.jpg", std::ios::binary);
    const std::string jpeg_head = "\xFF\xD8\xFF\xE0";
    big << jpeg_head << std::string(11 * 1024 * 1024, 'x');
  }
  auto r = f.Cli({"sync"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(r.out.find("3 uploaded") != std::string::npos);
  CHECK(r.err.find("big.jpg") != std::string::npos);
  CHECK(r.err.find("over the upload limit of 10.5 MB (10 MiB)") != std::string::npos);
  CHECK(f.RemotePhotos().count("big.jpg") == 0);
}

TEST_CASE("exit 2: a config that is not TOML is named with its line, and an unknown option too", "[cli][exit]") {
  SyncFixture f;
  std::ofstream(f.config, std::ios::trunc) << "# profile\nstate_dir = \"/tmp/x\"\n[shootbin\nrpm = = 3\n";
  auto r = f.Cli({"sync"});
  INFO(r.err);
  CHECK(r.code == 2);
  const std::string where = f.config.string() + ":";
  const auto at = r.err.find(where);
  REQUIRE(at != std::string::npos);
  CHECK(std::isdigit(static_cast<unsigned char>(r.err[at + where.size()])));  // file:line: message
  auto opt = f.Cli({"sync", "--no-such-option"});
  INFO(opt.err);
  CHECK(opt.code == 2);
  CHECK(opt.err.find("--no-such-option") != std::string::npos);
}

TEST_CASE("exit 4: a second run while the first holds the lock names the holder's pid", "[cli][exit]") {
  SyncFixture f({"--shootbin-rpm", "1000000", "--latency-ms", "300"});
  f.MakePhotos(10);
  auto first = f.StartCli({"sync", "-j", "1"});
  // The lock file holds the pid once the first run has it.
  const std::string pid = std::to_string(first->pid());
  REQUIRE(f.WaitForLock(*first));
  auto second = f.Cli({"sync"});
  INFO(second.out << second.err);
  CHECK(second.code == 4);
  CHECK(second.err.find("pid " + pid) != std::string::npos);
  first->Kill(SIGTERM);
  CHECK(first->Wait(std::chrono::seconds(60)) == 5);
  f.emu->SetFaults({{"latency_ms", 0}});
  CHECK(f.Cli({"sync"}).code == 0);  // the lock went with the first run
  CHECK(f.CompareWithServer() == "");
}
