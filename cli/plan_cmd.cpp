// shotsync plan: what a sync would do, without sending anything.
#include <cstdio>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "shotsync/planner.hpp"
#include "shotsync/sync.hpp"

namespace shotsync::cli {

namespace {

int RunPlan(const GlobalOptions& options) {
  int failed = kExitOk;
  auto profile = OpenProfile(options, &failed);
  if (!profile) return failed;
  Config& config = profile->config;
  auto& manifest = profile->manifest;
  nlohmann::json items = nlohmann::json::array();
  nlohmann::json warnings = nlohmann::json::array();
  auto on_event = [&](const SyncEvent& e) {
    if (e.kind == SyncEvent::kFailed) {
      PrintError(options, Status(Code::kNotFound, e.reason));
      return;
    }
    if (e.kind == SyncEvent::kWarning) {
      options.log->Warn(e.reason);
      warnings.push_back({{"path", e.path}, {"reason", e.reason}});
      return;
    }
    if (e.kind != SyncEvent::kPlanned || !e.item) return;
    const PlanItem& item = *e.item;
    const bool notable = item.action == Action::kRejected || item.action == Action::kConflict;
    if (options.json && options.verbose) {
      items.push_back({{"action", ActionName(item.action)},
                       {"path", item.abs_path},
                       {"size", item.file.size},
                       {"reason", item.reason}});
    } else if (options.verbose || (notable && !options.quiet && !options.json)) {
      std::printf("%-8s %s  (%s)\n", std::string(ActionName(item.action)).c_str(),
                  Escaped(item.abs_path).c_str(), Escaped(item.reason).c_str());
    }
  };
  // A dry run: with a token the albums are looked at (adoptions, moves and
  // conflicts are shown as such); nothing is sent or bound.
  SyncOptions so;
  so.dry_run = true;
  so.command = "plan";
  so.report_unchanged = options.verbose;
  SyncReport r = RunSync(config, *manifest, so, on_event);
  if (!r.status.ok()) {
    PrintError(options, r.status);
    return ExitCodeFor(r.status);
  }
  const PlanStats& s = r.plan;
  if (options.json) {
    nlohmann::json out = {{"upload", s.upload},   {"revision", s.revision}, {"skip", s.skip},
                          {"rejected", s.rejected}, {"adopt", s.adopt},     {"move", s.moved},
                          {"conflict", s.conflict}, {"missing", s.missing}, {"hashed", s.hashed},
                          {"scanned", s.scanned}, {"bytes_to_send", s.bytes_to_send},
                          {"errors", s.errors}, {"warnings", warnings}};
    if (!r.target_error.ok()) out["target_error"] = r.target_error.message();
    if (options.verbose) out["items"] = std::move(items);
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else if (!options.quiet && (r.target_error.ok() || s.scanned > 0)) {  // else the error line says it
    std::printf("plan: %lld upload, %lld revision, %lld skip, %lld rejected, %lld adopt, %lld move, "
                "%lld conflict, %lld missing (%lld files scanned, %lld hashed, %.1f MB to send)\n",
                (long long)s.upload, (long long)s.revision, (long long)s.skip, (long long)s.rejected,
                (long long)s.adopt, (long long)s.moved, (long long)s.conflict, (long long)s.missing,
                (long long)s.scanned, (long long)s.hashed, double(s.bytes_to_send) / 1e6);
  }
  // A root whose project or album does not resolve is the config's mistake.
  if (!r.target_error.ok()) return ExitCodeFor(r.target_error);
  return s.errors > 0 || s.conflict > 0 ? kExitPartial : kExitOk;
}

}  // namespace

Command AddPlanCommand(CLI::App& app) {
  auto* plan = app.add_subcommand("plan", "show what a sync would upload, revise, skip or reject");
  return {plan, RunPlan};
}

}  // namespace shotsync::cli
