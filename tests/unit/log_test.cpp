// Logger: redaction of secrets on every output, the log file's mode, format
// and append behaviour, level filtering, and whole lines under concurrency.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "shotsync/log.hpp"
#include "temp_dir.hpp"

using shotsync::Logger;
using shotsync::LogLevel;
using shotsync::testing::TempDir;
using shotsync::testing::ReadFileText;

namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Points fd 2 at a file for its lifetime (the logger writes with write(2)).
class StderrCapture {
 public:
  explicit StderrCapture(std::filesystem::path path) : path_(std::move(path)) {
    saved_ = ::dup(STDERR_FILENO);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~StderrCapture() { Restore(); }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  std::string Text() {
    Restore();
    return ReadFileText(path_);
  }

 private:
  void Restore() {
    if (saved_ < 0) return;
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }
  std::filesystem::path path_;
  int saved_ = -1;
};

Logger OpenLogger(const std::filesystem::path& file, LogLevel stderr_level = LogLevel::kWarn,
                  LogLevel file_level = LogLevel::kInfo) {
  Logger::Options o;
  o.stderr_level = stderr_level;
  o.file = file.string();
  o.file_level = file_level;
  auto log = Logger::Open(o);
  REQUIRE(log.ok());
  return std::move(*log);
}

}  // namespace

TEST_CASE("registered secrets are redacted on stderr and in the log file", "[log]") {
  TempDir tmp;
  const auto file = tmp.path() / "shotsync.log";
  StderrCapture err(tmp.path() / "stderr");
  {
    Logger log = OpenLogger(file);
    log.AddSecret("sb-SECRET-1234");
    log.AddSecret("sb-SECRET-1234-longer");  // contains the first: no tail may leak
    log.Error("upload refused for token sb-SECRET-1234 and sb-SECRET-1234-longer, twice: sb-SECRET-1234");
    log.Info("info sb-SECRET-1234");
  }
  const std::string e = err.Text();
  const std::string f = ReadFileText(file);
  for (const std::string& text : {e, f}) {
    INFO(text);
    CHECK(text.find("SECRET") == std::string::npos);
    CHECK(text.find("-longer") == std::string::npos);
    CHECK(text.find("[redacted]") != std::string::npos);
  }
  CHECK(e.find("shotsync: upload refused") != std::string::npos);
}

TEST_CASE("Bearer, X-API-Key and token= values are redacted even when not registered", "[log]") {
  Logger log;
  CHECK(log.Redact("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer [redacted]");
  CHECK(log.Redact("Authorization: bearer abc") == "Authorization: bearer [redacted]");
  CHECK(log.Redact("X-API-Key: hp-key-123 next") == "X-API-Key: [redacted] next");
  CHECK(log.Redact("x-api-key:hp-key-123") == "x-api-key:[redacted]");
  CHECK(log.Redact("GET /x?token=abc123&page=2") == "GET /x?token=[redacted]&page=2");
  CHECK(log.Redact("token=\"quoted secret\" end") == "token=\"[redacted]\" end");
  CHECK(log.Redact("token=;token=abc") == "token=;token=[redacted]");  // an empty value skips nothing
  CHECK(log.Redact("api_key=zzz") == "api_key=[redacted]");
}

TEST_CASE("the logger ignores secrets shorter than 4 bytes", "[log]") {
  Logger log;
  log.AddSecret("");
  log.AddSecret("a");
  log.AddSecret("abc");
  CHECK(log.Redact("a bad abc cab") == "a bad abc cab");
  log.AddSecret("abcd");
  CHECK(log.Redact("xabcdx") == "x[redacted]x");
}

TEST_CASE("the log file is created with mode 0600 and appended to", "[log]") {
  TempDir tmp;
  const auto file = tmp.path() / "shotsync.log";
  const mode_t old_mask = ::umask(0);  // the file's own mode must be 0600, not the umask's doing
  {
    Logger log = OpenLogger(file);
    log.Info("first run");
  }
  ::umask(old_mask);
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  {
    Logger log = OpenLogger(file);
    log.Info("second run");
  }
  const auto lines = Lines(ReadFileText(file));
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].find("first run") != std::string::npos);
  CHECK(lines[1].find("second run") != std::string::npos);
}

TEST_CASE("an unopenable log file is an error naming it", "[log]") {
  TempDir tmp;
  const auto blocker = tmp.path() / "a-file";
  std::ofstream(blocker) << "not a folder";
  Logger::Options o;
  o.file = (blocker / "shotsync.log").string();  // its folder cannot be created
  auto log = Logger::Open(o);
  REQUIRE_FALSE(log.ok());
  CHECK(log.status().message().find(o.file) != std::string::npos);
}

TEST_CASE("the log file's missing folders are created, private (cron's first run on a fresh account)", "[log]") {
  TempDir tmp;
  Logger::Options o;
  o.file = (tmp.path() / "state" / "shotsync" / "sync.log").string();
  auto log = Logger::Open(o);
  REQUIRE(log.ok());
  log->Error("hello");
  CHECK(ReadFileText(o.file).find("hello") != std::string::npos);
  struct stat st {};
  REQUIRE(::stat((tmp.path() / "state").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  REQUIRE(::stat(o.file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("log lines carry an ISO-8601 UTC timestamp and the level, one line per message", "[log]") {
  TempDir tmp;
  const auto file = tmp.path() / "shotsync.log";
  StderrCapture err(tmp.path() / "stderr");
  {
    Logger log = OpenLogger(file, LogLevel::kWarn, LogLevel::kDebug);
    log.Error("broken\nacross\r\nlines");
    log.Warn("a warning");
    log.Info("some info");
    log.Debug("detail");
  }
  const auto lines = Lines(ReadFileText(file));
  REQUIRE(lines.size() == 4);
  const std::regex stamp(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (ERROR|WARN|INFO|DEBUG) .+$)");
  for (const auto& l : lines) {
    INFO(l);
    CHECK(std::regex_match(l, stamp));
  }
  CHECK(lines[0].find(" ERROR broken across  lines") != std::string::npos);
  CHECK(lines[1].find(" WARN a warning") != std::string::npos);
  CHECK(lines[2].find(" INFO some info") != std::string::npos);
  CHECK(lines[3].find(" DEBUG detail") != std::string::npos);
  const auto e = Lines(err.Text());
  REQUIRE(e.size() == 2);  // errors and warnings only
  CHECK(e[0] == "shotsync: broken across  lines");
  CHECK(e[1] == "shotsync: warning: a warning");
}

TEST_CASE("levels filter: quiet prints errors only, the file keeps its own level", "[log]") {
  TempDir tmp;
  const auto file = tmp.path() / "shotsync.log";
  StderrCapture err(tmp.path() / "stderr");
  {
    Logger log = OpenLogger(file, LogLevel::kError, LogLevel::kInfo);
    CHECK(log.Enabled(LogLevel::kInfo));
    CHECK_FALSE(log.Enabled(LogLevel::kDebug));
    log.Error("e");
    log.Warn("w");
    log.Info("i");
    log.Debug("d");
  }
  CHECK(err.Text() == "shotsync: e\n");
  const auto lines = Lines(ReadFileText(file));
  REQUIRE(lines.size() == 3);
  CHECK(lines[2].substr(lines[2].size() - 6) == "INFO i");
  Logger quiet_no_file;  // default: warnings and errors on stderr, nothing else enabled
  CHECK_FALSE(quiet_no_file.Enabled(LogLevel::kInfo));
}

TEST_CASE("8 threads logging at once produce whole lines only", "[log]") {
  TempDir tmp;
  const auto file = tmp.path() / "shotsync.log";
  StderrCapture err(tmp.path() / "stderr");
  constexpr int kThreads = 8, kPerThread = 500;
  {
    Logger log = OpenLogger(file);
    log.AddSecret("concurrent-secret");
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&log, t] {
        const std::string pad(200, char('a' + t));  // long lines make a torn write visible
        for (int i = 0; i < kPerThread; ++i) {
          log.Warn("thread " + std::to_string(t) + " line " + std::to_string(i) + " concurrent-secret " + pad);
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  const std::regex file_line(R"(^\S+Z WARN thread (\d) line (\d+) \[redacted\] ([a-h])\3{199}$)");
  const std::regex err_line(R"(^shotsync: warning: thread (\d) line (\d+) \[redacted\] ([a-h])\3{199}$)");
  for (const auto& [text, re] : {std::pair{ReadFileText(file), file_line}, std::pair{err.Text(), err_line}}) {
    const auto lines = Lines(text);
    CHECK(lines.size() == std::size_t(kThreads * kPerThread));
    std::vector<int> next(kThreads, 0);
    int bad = 0;
    for (const auto& l : lines) {
      std::smatch m;
      if (!std::regex_match(l, m, re) || m[3].str()[0] != char('a' + std::stoi(m[1].str()))) {
        ++bad;
        continue;
      }
      // Each thread's lines appear whole and in its own order.
      const int t = std::stoi(m[1].str());
      if (std::stoi(m[2].str()) != next[t]++) ++bad;
    }
    CHECK(bad == 0);
  }
}
