// shotsync plan: what a sync would do, without sending anything.
#include <cstdio>
#include <memory>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "json_out.hpp"
#include "shotsync/planner.hpp"
#include "shotsync/sync.hpp"

namespace shotsync::cli {

namespace {

int RunPlan(const GlobalOptions& options, const FilterSpec& filters) {
  auto filter = MakeFilter(filters);
  if (!filter.ok()) return FailWith(options, "plan", filter.status(), kExitUsage);
  int failed = kExitOk;
  auto profile = OpenProfile(options, &failed);
  if (!profile) return FailedEarly(options, "plan", failed);
  Config& config = profile->config;
  auto& manifest = profile->manifest;
  nlohmann::json items = nlohmann::json::array();
  JsonReport json("plan");  // --json: filled as the plan goes
  std::int64_t named_rejected = 0;
  auto on_event = [&](const SyncEvent& e) {
    if (e.kind == SyncEvent::kFailed) {
      PrintError(options, Status(Code::kNotFound, e.reason));
      json.AddError(e.reason, e.path, {}, "scan_error");
      return;
    }
    if (e.kind == SyncEvent::kWarning) {
      options.log->Warn(e.reason);
      json.AddWarning(e.reason, e.path);
      return;
    }
    if (e.kind != SyncEvent::kPlanned || !e.item) return;
    const PlanItem& item = *e.item;
    const bool notable = item.action == Action::kRejected || item.action == Action::kConflict;
    // What would fail the sync is explained in errors[] (or warnings[] under on_rejected = "warn").
    if (item.action == Action::kConflict) json.AddError(item.reason, item.abs_path, {}, "conflict");
    if (item.action == Action::kRejected && config.rejected_fails) json.AddError(item.reason, item.abs_path, {}, "rejected");
    if (item.action == Action::kRejected && !config.rejected_fails) json.AddWarning(item.reason, item.abs_path);
    if (item.action == Action::kRejected) ++named_rejected;
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
  if (*filter) so.filter = &**filter;
  SyncReport r = RunSync(config, *manifest, so, on_event);
  if (!r.status.ok()) return FailWith(options, "plan", r.status, ExitCodeFor(r.status));
  const PlanStats& s = r.plan;
  // A root whose project or album does not resolve is the config's mistake.
  const int code = !r.target_error.ok()                 ? ExitCodeFor(r.target_error)
                   : s.errors > 0 || s.conflict > 0 ? kExitPartial
                                                    : kExitOk;
  if (options.json) {
    // What a sync would do, under the names a sync reports (docs/json.md).
    json.Set({{"dry_run", true}, {"uploaded", s.upload}, {"revised", s.revision}, {"adopted", s.adopt},
              {"skipped", s.skip}, {"rejected", s.rejected}, {"moved", s.moved}, {"conflicts", s.conflict},
              {"missing", s.missing}, {"hashed", s.hashed}, {"scanned", s.scanned},
              {"bytes_to_send", s.bytes_to_send}, {"scan_errors", s.errors}});
    if (!r.target_error.ok()) json.AddError(r.target_error.message(), {}, "root", CodeName(r.target_error.code()));
    if (s.rejected > named_rejected) {  // rejected by earlier runs, unchanged: not read again
      std::string line = std::to_string(s.rejected - named_rejected);
      line += " files rejected by earlier runs are unchanged; `shotsync status` lists them with reasons";
      if (config.rejected_fails) json.AddError(line, {}, {}, "rejected_earlier");
      else json.AddWarning(line);
    }
    if (options.verbose) json["items"] = std::move(items);
    json.Print(code);
  } else if (!options.quiet && (r.target_error.ok() || s.scanned > 0)) {  // else the error line says it
    std::printf("%s\n", PlanLine(s).c_str());
  }
  return code;
}

}  // namespace

Command AddPlanCommand(CLI::App& app) {
  auto* plan = app.add_subcommand("plan", "show what a sync would upload, revise, skip or reject");
  auto filters = std::make_shared<FilterSpec>();
  AddFilterOptions(*plan, *filters);
  return {plan, [filters](const GlobalOptions& g) { return RunPlan(g, *filters); }};
}

}  // namespace shotsync::cli
