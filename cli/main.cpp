// shotsync command line. Thin: parses arguments, calls the engine, maps
// results to exit codes (cli.hpp).
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "cli.hpp"

using namespace shotsync::cli;

int main(int argc, char** argv) {
  CLI::App app{"shotsync: bulk photo sync to Shootbin and HeadshotPro"};
  app.footer(
      "Exit codes: 0 all done; 1 finished but some files failed or were rejected; 2 usage or "
      "config error;\n3 authentication/authorization; 4 locked by another run; 5 interrupted "
      "(run the same command to resume).");
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the command
  GlobalOptions g;
  std::string config_path;
  app.add_option("--config", config_path, "config file (TOML)");
  app.add_flag("-q,--quiet", g.quiet, "print only errors");
  app.add_flag("-v,--verbose", g.verbose, "one line per file");
  app.add_flag("--json", g.json, "machine-readable output");

  auto* version = app.add_subcommand("version", "print the version");
  auto* plan = app.add_subcommand("plan", "show what a sync would upload, revise, skip or reject");
  SyncCommandOptions so;
  std::string bwlimit;
  auto* sync = app.add_subcommand("sync", "scan, plan and upload new photos and revisions");
  sync->add_flag("--dry-run", so.dry_run, "plan only, send nothing");
  sync->add_option("-j,--jobs", so.jobs, "concurrent uploads (default: config jobs, 8)")->check(CLI::Range(1, 64));
  sync->add_option("--rpm", so.rpm, "Shootbin requests per minute")->check(CLI::Range(1, 1000000));
  sync->add_option("--bwlimit", bwlimit, "bandwidth limit in bytes/s (suffix K, M, G)");
  PullCommandOptions pull_options;
  auto* pull = AddPullCommand(app, pull_options);
  TeamCommandOptions team_options;
  auto* team = AddTeamCommand(app, team_options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {  // CLI11 reports usage errors by exception
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (!config_path.empty()) g.config_path = config_path;
  if (version->parsed()) {
    std::printf("shotsync %s\n", SHOTSYNC_VERSION);
    return kExitOk;
  }
  if (plan->parsed()) return RunPlan(g);
  if (pull->parsed()) return RunPullCommand(g, pull_options);
  if (team->parsed()) return RunTeamCommand(g, team_options);
  if (sync->parsed()) {
    if (!bwlimit.empty()) {
      auto rate = ParseRate(bwlimit);
      if (!rate) {
        std::fprintf(stderr, "shotsync: --bwlimit %s: expected bytes/s like 500K or 4M\n", bwlimit.c_str());
        return kExitUsage;
      }
      so.bwlimit = *rate;
    }
    return RunSyncCommand(g, so);
  }
  return kExitUsage;
}
