// Shared pieces of the shotsync command line: exit codes, global options,
// loading the config and opening the manifest with clear one-line errors.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "shotsync/config.hpp"
#include "shotsync/exit_code.hpp"
#include "shotsync/filter.hpp"
#include "shotsync/log.hpp"
#include "shotsync/manifest.hpp"
#include "shotsync/shared_store.hpp"
#include "shotsync/status.hpp"

#include <CLI/Validators.hpp>

namespace CLI {
class App;
}

namespace shotsync {
struct SyncReport;
struct PullReport;
struct PlanStats;
}  // namespace shotsync

namespace shotsync::cli {

// The exit codes (shotsync/exit_code.hpp, documented in README.md and
// `shotsync --help`) by their command-line names.
inline constexpr int kExitOk = exit_code::kOk;
inline constexpr int kExitPartial = exit_code::kPartial;
inline constexpr int kExitUsage = exit_code::kUsage;
inline constexpr int kExitAuth = exit_code::kAuth;
inline constexpr int kExitLocked = exit_code::kLocked;
inline constexpr int kExitInterrupted = exit_code::kInterrupted;

struct GlobalOptions {
  std::optional<std::string> config_path;
  bool quiet = false;
  bool verbose = false;
  bool json = false;
  std::string log_file;     // --log-file
  std::string ca_file;      // --ca-file: trust this CA bundle (overrides ca_file in the config)
  std::optional<bool> progress;  // -P/--progress, --no-progress; unset: when stdout is a terminal
  Logger* log = nullptr;    // set by main: every message goes through it (redacted)
  // The run's counts for the log's end line ("40 uploaded, 2 revised, ..."),
  // set by the commands that count (main owns the string).
  std::string* end_counts = nullptr;
};

// "90s", "45m", "1h30m", "2d", "1.5h", plain seconds -> milliseconds;
// nullopt for garbage or zero (rclone's duration spelling).
std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text);

// CLI11 checks for ParseDuration's and ParseSizeSuffix's spellings.
CLI::Validator DurationValidator();
CLI::Validator SizeValidator();

// rclone's filter flags (--include, --exclude, --filter, --filter-from,
// --max-age, --min-age, --max-size, --min-size, --ignore-case) on `cmd`.
void AddFilterOptions(CLI::App& cmd, FilterSpec& spec);
// The run's filter; nullopt when no filter flag was given. The error names
// the flag and its value (or the rules file and line).
Result<std::optional<FileFilter>> MakeFilter(const FilterSpec& spec);

// CLI11 check for --bwlimit: ParseBwLimit's spellings.
CLI::Validator BwLimitValidator();

// A path or server text for one line of standard output: control
// characters (a newline in a file name) escaped as \n, \t, \xNN, so that
// line-oriented readers see one line per file.
std::string Escaped(std::string_view text);

// What a sync would do, in the conditional and in sync's words (plan, sync -n).
std::string PlanLine(const PlanStats& stats);
// The counts of a run for the log's end line.
std::string EndCounts(const SyncReport& r);
std::string EndCounts(const PullReport& r);

// Logs the status as an error: "shotsync: message" on stderr, and in the log file.
void PrintError(const GlobalOptions& options, const Status& status);

// A run interrupted by the user's signal is said on stdout ("run again");
// any other end that is not ok (a lost shared store included) is an error.
inline bool InterruptedByUser(const Status& status, const std::stop_token& stop) {
  return status.code() == Code::kCancelled && stop.stop_requested();
}

// Config by the lookup rules (--config, $SHOTSYNC_CONFIG, XDG); an error when
// none is found. Its tokens are registered with options.log for redaction.
Result<Config> LoadConfigFor(const GlobalOptions& options);

// Creates the state dir (0700) and opens its manifest; with a log, warns
// once when an older version's shared manifest waits to be moved here.
Result<std::unique_ptr<Manifest>> OpenManifestFor(const Config& config, Logger* log = nullptr);

// Studio mode's shared store when the config names one (else null). It
// must answer: an unreachable database is an error (exit 2), never a quiet
// fallback to this host's own buckets and claims.
Result<std::unique_ptr<SharedStore>> OpenSharedFor(const Config& config, bool check_schema = true);

// The config and its manifest, as every command that reads the manifest
// starts. On failure the error is printed and *exit_code says how to exit
// (2 for the config, ExitCodeFor for the manifest).
struct Profile {
  Config config;
  std::unique_ptr<Manifest> manifest;
  std::unique_ptr<SharedStore> shared;  // studio mode ([shared] url), else null
};
std::optional<Profile> OpenProfile(const GlobalOptions& options, int* exit_code);

// A subcommand: its CLI11 node and what runs it once parsed. Each command's
// options live in the `run` closure, so main.cpp only lists the commands.
struct Command {
  CLI::App* app = nullptr;
  std::function<int(const GlobalOptions&)> run;
};

Command AddPlanCommand(CLI::App& app);    // plan_cmd.cpp
Command AddSyncCommand(CLI::App& app);    // sync_cmd.cpp
Command AddPullCommand(CLI::App& app);    // pull_cmd.cpp
Command AddTeamCommand(CLI::App& app);    // team_cmd.cpp
Command AddPushCommand(CLI::App& app);    // push_cmd.cpp
Command AddStatusCommand(CLI::App& app);  // status_cmd.cpp
Command AddVerifyCommand(CLI::App& app);  // verify_cmd.cpp
Command AddInitCommand(CLI::App& app);    // init_cmd.cpp
Command AddSharedCommand(CLI::App& app);  // shared_cmd.cpp
Command AddCheckCommand(CLI::App& app);   // check_cmd.cpp
Command AddLsCommand(CLI::App& app);      // check_cmd.cpp
Command AddIgnoreCommand(CLI::App& app);  // ignore_cmd.cpp
Command AddWatchCommand(CLI::App& app);   // watch_cmd.cpp

// check's lines for `config` (stdout, or one JSON object), ending with the
// next command to run; returns the exit code (check_cmd.cpp; init uses it).
int PrintChecks(const GlobalOptions& options, const Config& config);

}  // namespace shotsync::cli
