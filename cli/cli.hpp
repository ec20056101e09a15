// Shared pieces of the shotsync command line: exit codes, global options,
// loading the config and opening the manifest with clear one-line errors.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shotsync/config.hpp"
#include "shotsync/manifest.hpp"
#include "shotsync/status.hpp"

namespace CLI {
class App;
}

namespace shotsync::cli {

// Exit codes, documented in README.md and `shotsync --help`.
enum Exit : int {
  kExitOk = 0,           // all done
  kExitPartial = 1,      // finished, but some files failed or were rejected
  kExitUsage = 2,        // usage or config error
  kExitAuth = 3,         // authentication / authorization
  kExitLocked = 4,       // another run holds the lock
  kExitInterrupted = 5,  // interrupted; run the same command to resume
};

struct GlobalOptions {
  std::optional<std::string> config_path;
  bool quiet = false;
  bool verbose = false;
  bool json = false;
};

// Maps an engine status to the exit code a cron job should see.
int ExitFor(const Status& status);

// "4M" -> 4194304 bytes/s; nullopt for garbage.
std::optional<std::int64_t> ParseRate(const std::string& text);

// Prints "shotsync: message" on stderr.
void PrintError(const Status& status);

// Config by the lookup rules (--config, $SHOTSYNC_CONFIG, XDG); an error when none is found.
Result<Config> LoadConfigFor(const GlobalOptions& options);

// Creates the state dir (0700) and opens its manifest.
Result<std::unique_ptr<Manifest>> OpenManifestFor(const Config& config);

struct SyncCommandOptions {
  bool dry_run = false;
  int jobs = 0;
  int rpm = 0;
  std::int64_t bwlimit = 0;
};

struct PullCommandOptions {
  std::string member;
  bool favorites = false;
  bool restore = false;
  bool dry_run = false;
  int jobs = 0;
  int rpm = 0;
  std::string include;
  std::string dest;
};

struct TeamCommandOptions {
  std::string action;  // status | invite | revoke
  std::string csv;
  std::string team;    // default team for CSV lines without one
  std::vector<std::string> emails;
  bool dry_run = false;
};

// `pull` and `team` register their own options (pull_cmd.cpp, team_cmd.cpp).
CLI::App* AddPullCommand(CLI::App& app, PullCommandOptions& options);
CLI::App* AddTeamCommand(CLI::App& app, TeamCommandOptions& options);
int RunPullCommand(const GlobalOptions& options, const PullCommandOptions& pull);
int RunTeamCommand(const GlobalOptions& options, const TeamCommandOptions& team);

int RunPlan(const GlobalOptions& options);
int RunSyncCommand(const GlobalOptions& options, const SyncCommandOptions& sync);

}  // namespace shotsync::cli
