// The everyday flags an rclone user reaches for, run as the CLI (issue 15):
// filters, --max-transfer, --stats, the summary's retries and 429s, the
// log's end line, and a progress line that names what limits the run.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "sync_fixture.hpp"

namespace fs = std::filesystem;
using shotsync::testing::ReadFileText;
using shotsync::testing::RunOnPty;
using shotsync::testing::SyncFixture;

namespace {

void EverydayAge(const fs::path& p, std::int64_t seconds_ago) {
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  const struct timespec t[2] = {{now.tv_sec - seconds_ago, 0}, {now.tv_sec - seconds_ago, 0}};
  REQUIRE(::utimensat(AT_FDCWD, p.c_str(), t, 0) == 0);
}

std::uint64_t EverydayBytes(const fs::path& dir) {
  std::uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

}  // namespace

TEST_CASE("everyday: --include, --exclude and --filter-from send only what they admit, and a full sync then sends the rest once",
          "[cli][filter]") {
  SyncFixture f;
  f.MakePhotos(12, 1, 4);  // d01..d03, 4 photos each
  auto r = f.Cli({"sync", "--include", "/d01/**"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("sync: 4 uploaded") != std::string::npos);
  auto remote = f.RemotePhotos();
  CHECK(remote.size() == 4);
  for (const auto& [name, photo] : remote) {
    CAPTURE(name);
    CHECK(name.rfind("d01/", 0) == 0);
  }

  const fs::path rules = f.tmp.path() / "rules.txt";
  std::ofstream(rules) << "# leave the last folder for later\n- /d03/**\n+ **\n";
  r = f.Cli({"sync", "--filter-from", rules.string(), "--exclude", "IMG_0005.jpg"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("sync: 3 uploaded") != std::string::npos);  // d02 but IMG_0005
  CHECK(f.RemotePhotos().size() == 7);

  // The filtered runs marked nothing missing and left nothing half done.
  r = f.Cli({"sync"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("sync: 5 uploaded") != std::string::npos);
  CHECK(f.CompareWithServer() == "");
}

TEST_CASE("everyday: --max-age and --max-size leave older and larger files for another run", "[cli][filter]") {
  SyncFixture f;
  f.MakePhotos(6, 1, 50);
  for (int i = 1; i <= 3; ++i) EverydayAge(f.photos / "d01" / ("IMG_000" + std::to_string(i) + ".jpg"), 3 * 86400);
  auto r = f.Cli({"sync", "--max-age", "2d"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("sync: 3 uploaded") != std::string::npos);
  CHECK(f.RemotePhotos().count("d01/IMG_0001.jpg") == 0);

  std::uint64_t largest = 0;
  for (const auto& e : fs::directory_iterator(f.photos / "d01")) largest = std::max(largest, e.file_size());
  std::ofstream(f.photos / "d01" / "big.jpg", std::ios::binary) << std::string(largest + 1000, '\xff');
  EverydayAge(f.photos / "d01" / "big.jpg", 3 * 86400);
  r = f.Cli({"sync", "-n", "--max-size", std::to_string(largest) + "B", "--min-age", "1d"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  // The three old ones; big.jpg is left out, not rejected.
  CHECK(r.out.find("plan: would upload 3, revise 0, skip 0, adopt 0, move 0; 0 rejected") != std::string::npos);

  r = f.Cli({"sync", "--max-age", "yesterday"});
  CHECK(r.code == 2);
  CHECK(r.err.find("--max-age \"yesterday\"") != std::string::npos);
}

TEST_CASE("everyday: --max-transfer starts no upload past the budget, exits 5, and the next run sends the rest",
          "[cli][max-transfer]") {
  SyncFixture f;
  f.MakePhotos(10);
  const std::uint64_t total = EverydayBytes(f.photos);
  const std::string budget = std::to_string(total / 2) + "B";
  auto r = f.Cli({"sync", "--max-transfer", budget});
  INFO(r.out << r.err);
  CHECK(r.code == 5);
  CHECK(r.out.find("--max-transfer reached") != std::string::npos);
  const auto sent = f.RemotePhotos();
  CHECK(sent.size() >= 1);
  CHECK(sent.size() < 10);
  std::uint64_t sent_bytes = 0;
  for (const auto& [name, photo] : sent) sent_bytes += photo.at("size").get<std::uint64_t>();
  CHECK(sent_bytes <= total / 2);

  r = f.Cli({"sync"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(f.CompareWithServer() == "");  // nothing lost, nothing twice

  r = f.Cli({"sync", "--max-transfer", "lots"});
  CHECK(r.code == 2);
}

TEST_CASE("everyday: --stats prints one line per interval in a pipe, naming the throttle's pace", "[cli][stats]") {
  SyncFixture f({"--shootbin-rpm", "120"});
  f.WriteConfig("", 120);
  f.MakePhotos(12);
  const fs::path log = f.tmp.path() / "sync.log";
  auto r = f.Cli({"sync", "--stats", "1s", "--log-file", log.string()});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.err.find('\r') == std::string::npos);
  CHECK(std::regex_search(r.err, std::regex(R"(stats: sending +\d+/12 files .*ETA \d+:\d\d.*limit 120 req/min)")));
  CHECK(ReadFileText(log).find("INFO stats: ") != std::string::npos);
  // Quiet means quiet.
  f.MakePhotos(2, 50);
  auto q = f.Cli({"sync", "-q", "--stats", "1s"});
  CHECK(q.err.find("stats:") == std::string::npos);
}

TEST_CASE("everyday: the summary and the log's end line count retries and 429s", "[cli][stats]") {
  SyncFixture f({"--shootbin-rpm", "1000000", "--fault-reset", "0.3", "--fault-429-burst", "2", "--seed", "11"});
  f.MakePhotos(12);
  const fs::path log = f.tmp.path() / "sync.log";
  auto r = f.Cli({"sync", "--log-file", log.string()});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(r.out, m, std::regex(R"(; (\d+) retries, (\d+) 429s)")));
  CHECK(std::stoi(m[1]) >= 1);  // the resets were resent
  CHECK(std::stoi(m[2]) >= 1);  // the burst was waited out
  CHECK(f.CompareWithServer() == "");
  const std::string logged = ReadFileText(log);
  CHECK(std::regex_search(logged, std::regex(R"(end: sync \(pid \d+\) exit 0 after [\d.]+ s: 12 uploaded, .* )" +
                                             std::string(m[1]) + " retries, " + std::string(m[2]) + " 429s")));
}

TEST_CASE("everyday: on a terminal the progress line names the limit and counts what the walk found",
          "[cli][progress]") {
  SyncFixture f({"--shootbin-rpm", "120"});
  f.WriteConfig("", 120);
  f.MakePhotos(10);
  auto r = RunOnPty({SHOTSYNC_CLI_PATH, "--config", f.config.string(), "sync"},
                    {{"TERM", "xterm"}, {"SHOOTBIN_API_TOKEN", "sb-test-token"}}, (f.tmp.path() / "pty").string());
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(std::regex_search(r.out, std::regex(R"(sending +\d+/10 files .*ETA \d+:\d\d  limit 120 req/min)")));
  CHECK(r.out.find("sync: 10 uploaded") != std::string::npos);
}
