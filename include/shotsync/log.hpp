// Logger: levelled, timestamped log lines to stderr and, optionally, a log
// file, with every known secret redacted before anything is written.
//
// Secrets (API tokens) are registered once; any occurrence in a message, and
// the value after "Bearer ", "X-API-Key:" or "token=", is replaced by
// "[redacted]". Thread-safe: one mutex, one write(2) per line, so lines from
// several threads never interleave and a crash loses at most the line being
// written. No global instance: the CLI owns one and passes it down.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "shotsync/fd.hpp"
#include "shotsync/status.hpp"

namespace shotsync {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };
std::string_view LogLevelName(LogLevel level) noexcept;

class Logger {
 public:
  struct Options {
    LogLevel stderr_level = LogLevel::kWarn;  // --quiet: kError; --verbose: kInfo
    std::string file;                         // "" = no log file
    LogLevel file_level = LogLevel::kInfo;    // --verbose: kDebug
  };

  // Opens (appends to, creates 0600) the log file. kIo naming the file when
  // it cannot be opened.
  static Result<Logger> Open(const Options& options);
  Logger() = default;  // stderr at kWarn, no file
  Logger(Logger&& other) noexcept;
  Logger& operator=(Logger&&) = delete;

  // Secrets shorter than 4 bytes are ignored (they would redact ordinary text).
  void AddSecret(std::string secret);
  std::string Redact(std::string_view text) const;

  // stderr gets "shotsync: message" (errors and warnings) or "message";
  // the file gets "2026-11-28T18:22:32.123Z LEVEL message".
  // stderr_anyway: on stderr whatever its level (lines the user asked
  // for, such as --stats); the file still goes by its own level.
  void Log(LogLevel level, std::string_view message, bool stderr_anyway = false);
  void Error(std::string_view m) { Log(LogLevel::kError, m); }
  void Warn(std::string_view m) { Log(LogLevel::kWarn, m); }
  void Info(std::string_view m) { Log(LogLevel::kInfo, m); }
  void Debug(std::string_view m) { Log(LogLevel::kDebug, m); }

  bool Enabled(LogLevel level) const noexcept {
    return level <= options_.stderr_level || (file_ && level <= options_.file_level);
  }

 private:
  Options options_;
  UniqueFd file_;
  std::vector<std::string> secrets_;
  mutable std::mutex mu_;
};

}  // namespace shotsync
