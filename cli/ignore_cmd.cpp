// shotsync ignore: acknowledge rejected files (not an image, over 10 MB),
// so that they no longer turn the exit code to 1; --list, --remove.
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "json_out.hpp"
#include "shotsync/planner.hpp"

namespace shotsync::cli {
namespace {

struct IgnoreOptions {
  std::vector<std::string> paths;
  bool list = false;
  bool remove = false;
};

int List(const GlobalOptions& options, Profile& profile) {
  auto acked = profile.manifest->AcknowledgedFiles();
  auto roots = profile.manifest->Roots();
  if (!acked.ok() || !roots.ok()) return FailWith(options, "ignore", !acked.ok() ? acked.status() : roots.status(), kExitUsage);
  nlohmann::json out = nlohmann::json::array();
  for (const Manifest::Acknowledged& a : *acked) {
    std::string path = a.rel_path;
    for (const RootRecord& r : *roots) {
      if (r.id == a.root_id) path = r.path + "/" + a.rel_path;
    }
    if (options.json) {
      out.push_back({{"path", path}, {"at", a.at}});
    } else {
      std::printf("%s\n", path.c_str());
    }
  }
  if (options.json) {
    JsonReport json("ignore");
    json["acknowledged"] = out;
    json.Print(kExitOk);
  }
  return kExitOk;
}

int RunIgnore(const GlobalOptions& options, const IgnoreOptions& o) {
  int failed = kExitOk;
  auto profile = OpenProfile(options, &failed);
  if (!profile) return FailedEarly(options, "ignore", failed);
  if (o.list) return List(options, *profile);
  if (o.paths.empty()) {
    return FailWith(options, "ignore", Status::Invalid("ignore: name the files (or --list)"), kExitUsage);
  }
  const Config& config = profile->config;
  Manifest& manifest = *profile->manifest;
  int code = kExitOk;
  JsonReport json("ignore");
  nlohmann::json files = nlohmann::json::array();  // --json: each path's result
  for (const std::string& path : o.paths) {
    auto target = LocateFile(config, path);
    if (!target.ok()) {
      PrintError(options, target.status());
      json.AddError(target.status().message(), path, {}, CodeName(target.status().code()));
      code = kExitUsage;
      continue;
    }
    const RootConfig& rc = config.roots[target->root_index];
    auto root_id = manifest.UpsertRoot({0, rc.path, rc.project, rc.album});
    if (!root_id.ok()) return FailWith(options, "ignore", root_id.status(), kExitUsage);
    if (o.remove) {
      auto removed = manifest.Unacknowledge(*root_id, target->rel_path);
      if (!removed.ok()) return FailWith(options, "ignore", removed.status(), kExitUsage);
      files.push_back({{"path", path}, {"result", *removed ? "removed" : "not_ignored"}, {"reason", ""}});
      if (!options.quiet && !options.json) std::printf("%s %s\n", *removed ? "no longer ignored:" : "was not ignored:", path.c_str());
      continue;
    }
    if (Status st = manifest.Acknowledge(*root_id, target->rel_path); !st.ok()) {
      return FailWith(options, "ignore", st, kExitUsage);
    }
    auto row = manifest.GetFile(*root_id, target->rel_path);
    const bool rejected = row.ok() && row->has_value() && (*row)->state == FileState::kRejected;
    files.push_back({{"path", path}, {"result", "ignored"}, {"reason", rejected ? (*row)->reason : ""}});
    if (!options.quiet && !options.json) {
      std::printf("ignored: %s%s\n", path.c_str(),
                  rejected ? ("  (" + (*row)->reason + ")").c_str()
                           : "  (not rejected now; should it be, it will not fail a run)");
    }
  }
  if (options.json) {
    json["files"] = files;
    json.Print(code);
  }
  return code;
}

}  // namespace

Command AddIgnoreCommand(CLI::App& app) {
  auto opts = std::make_shared<IgnoreOptions>();
  auto* ignore = app.add_subcommand(
      "ignore", "acknowledge rejected files so they no longer make the exit code 1 (--list, --remove)");
  ignore->add_option("paths", opts->paths, "files under a configured root");
  ignore->add_flag("--list", opts->list, "list the acknowledged files");
  ignore->add_flag("--remove", opts->remove, "stop ignoring these files");
  return {ignore, [opts](const GlobalOptions& g) { return RunIgnore(g, *opts); }};
}

}  // namespace shotsync::cli
