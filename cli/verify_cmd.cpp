// shotsync verify: the manifest against the disk (and the server with
// --remote); --repair fixes the manifest side only (include/shotsync/verify.hpp).
#include <cstdio>
#include <memory>
#include <optional>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "json_out.hpp"
#include "lock.hpp"
#include "shotsync/verify.hpp"

namespace shotsync::cli {
namespace {

int RunVerify(const GlobalOptions& options, const VerifyOptions& vo) {
  int failed = kExitOk;
  auto profile = OpenProfile(options, &failed);
  if (!profile) return FailedEarly(options, "verify", failed);
  Config& config = profile->config;
  auto& manifest = profile->manifest;
  // Repairs write the manifest: not while a sync is running.
  std::optional<RunLock> lock;
  if (vo.repair) {
    auto held = RunLock::Acquire(config.state_dir);
    if (!held.ok()) return FailWith(options, "verify", held.status(), ExitCodeFor(held.status()));
    lock.emplace(std::move(*held));
  }
  VerifyOptions with_store = vo;
  with_store.shared = profile->shared.get();
  VerifyReport r = Verify(config, *manifest, with_store);
  int code = r.differences.empty() ? kExitOk : kExitPartial;
  if (!r.status.ok()) {
    PrintError(options, r.status);
    code = r.status.code() == Code::kCorrupt ? kExitUsage : ExitCodeFor(r.status);
  }
  std::int64_t repaired = 0;
  for (const Difference& d : r.differences) repaired += d.repaired ? 1 : 0;
  if (options.json) {
    JsonReport json("verify");
    nlohmann::json diffs = nlohmann::json::array();
    for (const Difference& d : r.differences) {
      diffs.push_back({{"kind", DifferenceName(d.kind)}, {"path", d.path}, {"reason", d.detail}, {"repaired", d.repaired}});
    }
    if (!r.differences.empty()) {
      std::string line = std::to_string(r.differences.size());
      line += " differences between the manifest and the disk or server (differences[] lists them)";
      json.AddError(line, {}, {}, "differences");
    }
    json.Set({{"differences", diffs}, {"files_checked", r.files_checked}, {"remote_checked", r.remote_checked},
              {"repaired", repaired}});
    json.Print(code, r.status);
    return code;
  }
  for (const Difference& d : r.differences) {
    std::printf("%-14s %s  (%s%s)\n", std::string(DifferenceName(d.kind)).c_str(), d.path.c_str(),
                d.detail.c_str(), d.repaired ? "; repaired" : "");
  }
  if (!options.quiet) {
    std::printf("verify: %lld files checked%s, %zu differences, %lld repaired in the manifest\n",
                (long long)r.files_checked,
                vo.remote ? (", " + std::to_string(r.remote_checked) + " photos on the server").c_str() : "",
                r.differences.size(), (long long)repaired);
  }
  return code;
}

}  // namespace

Command AddVerifyCommand(CLI::App& app) {
  auto opts = std::make_shared<VerifyOptions>();
  auto* verify = app.add_subcommand("verify", "check the manifest against the disk (and the server with --remote)");
  verify->add_flag("--repair", opts->repair, "fix the manifest side (never files, never the server)");
  verify->add_flag("--remote", opts->remote, "also list the albums on Shootbin and compare");
  return {verify, [opts](const GlobalOptions& g) { return RunVerify(g, *opts); }};
}

}  // namespace shotsync::cli
