// shotsync command line. Thin: parses arguments, calls the engine, maps
// results to exit codes (cli.hpp). Each command registers its own options
// in its <name>_cmd.cpp.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "shotsync/doctor.hpp"
#include "shotsync/version.hpp"

using namespace shotsync;
using namespace shotsync::cli;

namespace {

// Global options that take a value: their value is not a command name.
bool TakesValue(std::string_view arg) {
  return arg == "--config" || arg == "--log-file" || arg == "--ca-file";
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The first word that is neither an option nor an option's value: the
// command as typed ("" when there is none).
std::string TypedCommand(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--") return i + 1 < argc ? argv[i + 1] : "";
    if (TakesValue(a)) {
      ++i;
      continue;
    }
    if (!a.empty() && a[0] == '-') continue;
    return std::string(a);
  }
  return "";
}

bool IsCommand(const CLI::App& app, const std::string& word) {
  const auto subs = app.get_subcommands([](const CLI::App*) { return true; });
  return std::any_of(subs.begin(), subs.end(), [&](const CLI::App* sub) { return sub->check_name(word); });
}

// "unknown command 'snyc'; did you mean 'sync'?" (or the list of commands).
std::string UnknownCommand(const std::string& typed, const CLI::App& app) {
  std::string best, all;
  std::size_t best_d = 3;  // at most two edits away
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    for (const std::string& name : [&] {
           std::vector<std::string> names = sub->get_aliases();
           names.insert(names.begin(), sub->get_name());
           return names;
         }()) {
      if (const std::size_t d = EditDistance(typed, name); d < best_d) {
        best_d = d;
        best = name;
      }
    }
    all += (all.empty() ? "" : ", ") + sub->get_name();
  }
  return "unknown command '" + typed + "'; " + (best.empty() ? "the commands are: " + all : "did you mean '" + best + "'?") +
         " (shotsync --help)";
}

struct CommandEntry {
  std::string_view name;
  Command (*add)(CLI::App&);
};
constexpr CommandEntry kCommands[] = {
    {"plan", AddPlanCommand},     {"sync", AddSyncCommand},     {"push", AddPushCommand},
    {"pull", AddPullCommand},     {"team", AddTeamCommand},     {"status", AddStatusCommand},
    {"verify", AddVerifyCommand}, {"init", AddInitCommand},     {"shared", AddSharedCommand},
    {"check", AddCheckCommand},   {"ls", AddLsCommand},         {"ignore", AddIgnoreCommand},
    {"watch", AddWatchCommand},
};

// Each command's help names the global options and shows an example or two.
const std::map<std::string, std::string>& Examples() {
  static const std::map<std::string, std::string> kExamples = {
      {"plan", "  shotsync plan\n  shotsync --json -v plan            # every file with its action"},
      {"sync", "  shotsync sync\n  shotsync --quiet --log-file ~/.local/state/shotsync/config/sync.log sync   # cron"},
      {"push", "  shotsync push ~/Photos/Exports/IMG_0001.jpg\n  find . -name '*.jpg' -print0 | shotsync push -0 -"},
      {"pull", "  shotsync pull\n  shotsync pull --member MEMBER_ID --favorites"},
      {"team", "  shotsync team status\n  shotsync team invite --csv people.csv --dry-run"},
      {"status", "  shotsync status\n  shotsync --json status --runs 20"},
      {"verify", "  shotsync verify --remote\n  shotsync verify --repair"},
      {"init", "  shotsync init --base-url https://proofs.example.com --root ~/Photos/Exports --project P --album A"},
      {"shared", "  shotsync shared init\n  shotsync shared import"},
      {"check", "  shotsync check\n  shotsync --config ~/.config/shotsync/weddings.toml check"},
      {"ls", "  shotsync ls\n  shotsync --json ls \"Client Smith\""},
      {"ignore", "  shotsync ignore ~/Photos/Exports/notes.jpg\n  shotsync ignore --list"},
      {"watch", "  shotsync watch\n  systemctl --user enable --now shotsync-watch@weddings   # docs/watch.md"},
  };
  return kExamples;
}

constexpr char kGlobalOptions[] =
    "Global options (before or after the command): --config FILE, -q/--quiet, -v/--verbose, --json,\n"
    "  -P/--progress, --no-progress, --log-file FILE, --ca-file PEM. See shotsync --help.";

}  // namespace

int main(int argc, char** argv) {
  const auto started = std::chrono::steady_clock::now();
  CLI::App app{"shotsync: bulk photo sync to Shootbin and HeadshotPro", "shotsync"};
  app.footer(
      "Exit codes: 0 all done; 1 finished but some files failed or were rejected; 2 usage or "
      "config error;\n3 authentication/authorization; 4 locked by another run; 5 interrupted "
      "(run the same command to resume).");
  app.require_subcommand(0, 1);
  app.fallthrough();  // global options may also follow the command
  GlobalOptions g;
  std::string config_path;
  bool show_version = false, progress = false, no_progress = false;
  app.add_option("--config", config_path, "config file (TOML)");
  app.add_flag("-q,--quiet", g.quiet, "print only errors");
  app.add_flag("-v,--verbose", g.verbose, "one line per file (with --version: the libraries too)");
  app.add_flag("--json", g.json, "machine-readable output");
  app.add_flag("-P,--progress", progress, "show the progress line even when stdout is not a terminal");
  app.add_flag("--no-progress", no_progress, "never show the progress line");
  app.add_flag("--version", show_version, "print the version (with -v: libcurl, TLS, SQLite, libpq)");
  app.add_option("--log-file", g.log_file, "append timestamped log lines to FILE (tokens redacted)");
  app.add_option("--ca-file", g.ca_file, "trust the CA certificates in FILE (PEM) for TLS; verification stays on")
      ->check(CLI::ExistingFile);

  auto* version = app.add_subcommand("version", "print the version (-v: the libraries too)");
  // Only the typed command's options are built when it is named exactly and
  // no help is asked for: a push hook runs this per photo, and all thirteen
  // commands' options cost it half a millisecond.
  const std::string typed = TypedCommand(argc, argv);
  const bool wants_help = std::any_of(argv + 1, argv + argc, [](const char* a) {
    return std::string_view(a) == "-h" || std::string_view(a) == "--help";
  });
  const bool just_one = !wants_help && std::any_of(std::begin(kCommands), std::end(kCommands),
                                                  [&](const CommandEntry& c) { return typed == c.name; });
  std::vector<Command> commands;
  for (const CommandEntry& c : kCommands) {
    if (!just_one || typed == c.name) commands.push_back(c.add(app));
  }
  for (const Command& c : commands) {
    auto it = Examples().find(c.app->get_name());
    c.app->footer(std::string(kGlobalOptions) + (it == Examples().end() ? "" : "\nExamples:\n" + it->second));
  }
  if (argc <= 1) {  // bare `shotsync`: what it can do
    std::printf("%s", app.help().c_str());
    return kExitOk;
  }
  if (!typed.empty() && !IsCommand(app, typed)) {
    std::fprintf(stderr, "shotsync: %s\n", UnknownCommand(typed, app).c_str());
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {  // CLI11 reports usage errors by exception
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (show_version || version->parsed()) {
    std::printf("shotsync %.*s\n", static_cast<int>(shotsync::kVersion.size()), shotsync::kVersion.data());
    if (g.verbose) std::printf("%s\n", LibraryVersions().c_str());
    return kExitOk;
  }
  if (progress && no_progress) {
    std::fprintf(stderr, "shotsync: --progress and --no-progress: choose one\n");
    return kExitUsage;
  }
  if (progress) g.progress = true;
  if (no_progress) g.progress = false;
  if (!config_path.empty()) g.config_path = config_path;
  Logger::Options lo;
  lo.stderr_level = g.quiet ? LogLevel::kError : LogLevel::kWarn;
  lo.file = g.log_file;
  lo.file_level = g.verbose ? LogLevel::kDebug : LogLevel::kInfo;
  auto log = Logger::Open(lo);
  if (!log.ok()) {
    std::fprintf(stderr, "shotsync: %s\n", log.status().message().c_str());
    return kExitUsage;
  }
  // Tokens from the environment are redacted even before a config is read.
  for (const char* var : {"SHOOTBIN_API_TOKEN", "HEADSHOTPRO_API_KEY", "HEADSHOTPRO_WEBHOOK_SECRET"}) {
    if (const char* v = std::getenv(var)) log->AddSecret(v);
  }
  g.log = &*log;
  std::string end_counts;
  g.end_counts = &end_counts;
  for (const Command& c : commands) {
    if (!c.app->parsed()) continue;
    // One start and one end line per run: a push and a sync writing one
    // log can be told apart (pid), and each run's outcome found.
    const std::string what = c.app->get_name() + " (pid " + std::to_string(::getpid()) + ", shotsync " +
                             std::string(kVersion) + ", config " + (config_path.empty() ? "default" : config_path) + ")";
    log->Info("start: " + what);
    const int code = c.run(g);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    char took[32];
    std::snprintf(took, sizeof took, "%.1f", seconds);
    log->Info("end: " + c.app->get_name() + " (pid " + std::to_string(::getpid()) + ") exit " + std::to_string(code) +
              " after " + took + " s" + (end_counts.empty() ? "" : ": " + end_counts));
    return code;
  }
  std::fprintf(stderr, "shotsync: a command is required (shotsync --help lists them)\n");
  return kExitUsage;
}
