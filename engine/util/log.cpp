#include "shotsync/log.hpp"

#include "shotsync/fs.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>

namespace shotsync {
namespace {

constexpr std::string_view kRedacted = "[redacted]";

// Writes all of `line`; a log write that fails is dropped (nowhere to report it).
void WriteAll(int fd, std::string_view line) {
  while (!line.empty()) {
    const ssize_t n = ::write(fd, line.data(), line.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    line.remove_prefix(std::size_t(n));
  }
}

std::string Timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms));
  return buf;
}

// Blanks the value that follows `marker` (a quoted value up to its closing
// quote; otherwise up to whitespace, quote, comma, ';' or '&').
void RedactAfter(std::string& text, std::string_view marker) {
  auto lower = [](char c) { return char(c >= 'A' && c <= 'Z' ? c + 32 : c); };
  for (std::size_t pos = 0; pos + marker.size() <= text.size();) {
    const bool match = std::equal(marker.begin(), marker.end(), text.begin() + std::ptrdiff_t(pos),
                                  [&](char a, char b) { return lower(a) == lower(b); });
    if (!match) {
      ++pos;
      continue;
    }
    std::size_t start = pos + marker.size();
    while (start < text.size() && text[start] == ' ') ++start;
    std::size_t end = start;
    if (start < text.size() && (text[start] == '"' || text[start] == '\'')) {
      const char quote = text[start++];
      end = text.find(quote, start);
      if (end == std::string::npos) end = text.size();
    } else {
      while (end < text.size() && std::string_view(" \t\r\n\"',;&").find(text[end]) == std::string_view::npos) ++end;
    }
    if (end > start && text.compare(start, end - start, kRedacted) != 0) {
      text.replace(start, end - start, kRedacted);
      end = start + kRedacted.size();
    }
    pos = std::max(end, pos + 1);  // never skip a marker that follows an empty value
  }
}

}  // namespace

std::string_view LogLevelName(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kError: return "ERROR";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kDebug: return "DEBUG";
  }
  return "?";
}

Result<Logger> Logger::Open(const Options& options) {
  Logger logger;
  logger.options_ = options;
  if (!options.file.empty()) {
    // A fresh account (cron's first run) has no state folder yet.
    const std::string dir = std::filesystem::path(options.file).parent_path().string();
    if (!dir.empty()) {
      if (Status st = MakePrivateDirs(dir); !st.ok()) return Status(st.code(), "log file " + options.file + ": " + st.message());
    }
    UniqueFd fd(::open(options.file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!fd) return Status::Io("log file " + options.file, errno);
    logger.file_ = std::move(fd);
  }
  return logger;
}

Logger::Logger(Logger&& other) noexcept
    : options_(std::move(other.options_)), file_(std::move(other.file_)), secrets_(std::move(other.secrets_)) {}

void Logger::AddSecret(std::string secret) {
  if (secret.size() < 4) return;
  std::lock_guard lock(mu_);
  if (std::find(secrets_.begin(), secrets_.end(), secret) != secrets_.end()) return;
  // Longest first: a secret that contains another must not leave its tail behind.
  auto at = std::find_if(secrets_.begin(), secrets_.end(), [&](const std::string& s) { return s.size() < secret.size(); });
  secrets_.insert(at, std::move(secret));
}

std::string Logger::Redact(std::string_view text) const {
  std::string out(text);
  {
    std::lock_guard lock(mu_);
    for (const std::string& s : secrets_) {
      for (std::size_t pos = out.find(s); pos != std::string::npos; pos = out.find(s, pos + kRedacted.size())) {
        out.replace(pos, s.size(), kRedacted);
      }
    }
  }
  for (std::string_view marker : {"Bearer ", "X-API-Key:", "token=", "api_key="}) RedactAfter(out, marker);
  return out;
}

void Logger::Log(LogLevel level, std::string_view message, bool stderr_anyway) {
  if (!Enabled(level) && !stderr_anyway) return;
  std::string text = Redact(message);
  // One event, one line; control characters from server text could also
  // move the cursor or recolour the terminal.
  for (char& c : text) {
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == '\x7f') c = ' ';
  }
  std::lock_guard lock(mu_);
  if (level <= options_.stderr_level || stderr_anyway) {
    // A warning says so: it is not a failure (and comes with exit code 0).
    const char* prefix = level == LogLevel::kError ? "shotsync: " : level == LogLevel::kWarn ? "shotsync: warning: " : "";
    WriteAll(STDERR_FILENO, prefix + text + "\n");
  }
  if (file_ && level <= options_.file_level) {
    WriteAll(file_.get(), Timestamp() + " " + std::string(LogLevelName(level)) + " " + text + "\n");
  }
}

}  // namespace shotsync
