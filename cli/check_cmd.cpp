// shotsync check (doctor): the whole set-up, once, read-only; and
// shotsync ls: the projects and albums the token sees, with ids.
#include <cstdio>
#include <memory>
#include <optional>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "json_out.hpp"
#include "shotsync/doctor.hpp"
#include "shotsync/session.hpp"

namespace shotsync::cli {

namespace {

const char* ResultName(CheckLine::Result r) {
  switch (r) {
    case CheckLine::kOk: return "ok";
    case CheckLine::kWarn: return "warn";
    case CheckLine::kFail: return "fail";
  }
  return "?";
}

void PrintJson(const std::vector<CheckLine>& lines, int code) {
  JsonReport json("check");
  nlohmann::json checks = nlohmann::json::array();
  for (const CheckLine& l : lines) {
    checks.push_back({{"subject", l.subject}, {"result", ResultName(l.result)}, {"message", l.message}});
    if (l.result == CheckLine::kFail) json.AddError(l.message, {}, l.subject, "check_failed");
    if (l.result == CheckLine::kWarn) json.AddWarning(l.subject + ": " + l.message);
  }
  json["checks"] = checks;
  json.Print(code);
}

int RunCheck(const GlobalOptions& options) {
  auto config = LoadConfigFor(options);
  if (!config.ok()) {
    const std::vector<CheckLine> lines = {{CheckLine::kFail, "config", config.status().message()}};
    if (options.json) PrintJson(lines, kExitUsage); else PrintError(options, config.status());
    return kExitUsage;
  }
  return PrintChecks(options, *config);
}

// ls [PROJECT]: every project and its albums, or one project's albums.
int RunLs(const GlobalOptions& options, const std::string& only) {
  auto config = LoadConfigFor(options);
  if (!config.ok()) return FailWith(options, "ls", config.status(), kExitUsage);
  if (config->shootbin.token.empty()) {
    return FailWith(options, "ls",
                    Status(Code::kUnauthenticated, "no Shootbin token: set SHOOTBIN_API_TOKEN (or "
                                                   "shootbin.token_file in " + config->source + ")"),
                    kExitAuth);
  }
  ShootbinSession session(*config, nullptr);
  ShootbinClient& client = session.client();
  auto projects = client.ListProjects();
  if (!projects.ok()) return FailWith(options, "ls", projects.status(), ExitCodeFor(projects.status()));
  std::vector<NamedId> shown = *projects;
  if (!only.empty()) {
    auto id = FindNamedId(*projects, only, IdLookup{"project", ""});
    if (!id.ok()) {
      return FailWith(options, "ls",
                      Status(id.status().code(), id.status().message() + "; its projects: " +
                                                     ListNamedIds(*projects, 8)),
                      ExitCodeFor(id.status()));
    }
    std::erase_if(shown, [&](const NamedId& p) { return p.id != *id; });
  }
  nlohmann::json out = nlohmann::json::array();
  for (const NamedId& p : shown) {
    auto albums = client.ListAlbums(p.id);
    if (!albums.ok()) return FailWith(options, "ls", albums.status(), ExitCodeFor(albums.status()));
    if (options.json) {
      nlohmann::json list = nlohmann::json::array();
      for (const NamedId& a : *albums) list.push_back({{"id", a.id}, {"name", a.name}});
      out.push_back({{"id", p.id}, {"name", p.name}, {"albums", list}});
      continue;
    }
    std::printf("%-8lld %s\n", (long long)p.id, p.name.c_str());
    for (const NamedId& a : *albums) std::printf("  %-8lld %s\n", (long long)a.id, a.name.c_str());
  }
  if (options.json) {
    JsonReport json("ls");
    json["projects"] = out;
    json.Print(kExitOk);
  } else if (shown.empty()) {
    std::printf("no projects (a root with create = true makes its project at the first sync)\n");
  }
  return kExitOk;
}

}  // namespace

int PrintChecks(const GlobalOptions& options, const Config& config) {
  std::vector<CheckLine> lines;
  CheckSetup(config, [&](const CheckLine& l) {
    lines.push_back(l);
    options.log->Info("check: " + std::string(ResultName(l.result)) + " " + l.subject + ": " + l.message);
    if (!options.json && (!options.quiet || l.result == CheckLine::kFail)) {
      std::printf("%-5s %s: %s\n", l.result == CheckLine::kFail ? "FAIL" : ResultName(l.result), l.subject.c_str(),
                  l.message.c_str());
      std::fflush(stdout);
    }
  });
  const int code = CheckExitCode(lines);
  if (options.json) {
    PrintJson(lines, code);
  } else if (!options.quiet) {
    const std::string with = config.source.empty() ? "" : " --config " + config.source;
    if (code == kExitOk) {
      std::printf("all checks passed; next: shotsync%s sync\n", with.c_str());
    } else {
      std::printf("fix the FAIL lines above, then run: shotsync%s check\n", with.c_str());
    }
  }
  return code;
}

Command AddCheckCommand(CLI::App& app) {
  auto* check = app.add_subcommand("check", "test the whole set-up once: config, token, servers, roots, folders");
  check->alias("doctor");
  return {check, RunCheck};
}

Command AddLsCommand(CLI::App& app) {
  auto project = std::make_shared<std::string>();
  auto* ls = app.add_subcommand("ls", "list the Shootbin projects and their albums, with ids");
  ls->add_option("project", *project, "only this project (id or name)");
  return {ls, [project](const GlobalOptions& g) { return RunLs(g, *project); }};
}

}  // namespace shotsync::cli
