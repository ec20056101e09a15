// shotsync command line. Thin: parses arguments, calls the engine, maps
// results to exit codes (cli.hpp). Each command registers its own options
// in its <name>_cmd.cpp.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "shotsync/version.hpp"

using namespace shotsync;
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
  app.add_option("--log-file", g.log_file, "append timestamped log lines to FILE (tokens redacted)");
  app.add_option("--ca-file", g.ca_file, "trust the CA certificates in FILE (PEM) for TLS; verification stays on")
      ->check(CLI::ExistingFile);

  auto* version = app.add_subcommand("version", "print the version");
  const std::vector<Command> commands = {
      AddPlanCommand(app),
      AddSyncCommand(app),
      AddPushCommand(app),
      AddPullCommand(app),
      AddTeamCommand(app),
      AddStatusCommand(app),
      AddVerifyCommand(app),
      AddInitCommand(app),
      AddSharedCommand(app),
      AddCheckCommand(app),
      AddLsCommand(app),
      AddIgnoreCommand(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {  // CLI11 reports usage errors by exception
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
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
  for (const char* var : {"SHOOTBIN_API_TOKEN", "HEADSHOTPRO_API_KEY"}) {
    if (const char* v = std::getenv(var)) log->AddSecret(v);
  }
  g.log = &*log;
  if (version->parsed()) {
    std::printf("shotsync %.*s\n", static_cast<int>(shotsync::kVersion.size()), shotsync::kVersion.data());
    return kExitOk;
  }
  for (const Command& c : commands) {
    if (c.app->parsed()) return c.run(g);
  }
  return kExitUsage;
}
