// shotsync sync: scan, plan and upload; the cron entry point.
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "lock.hpp"
#include "progress.hpp"
#include "shotsync/sync.hpp"
#include "signals.hpp"

namespace shotsync::cli {

namespace {

struct SyncCommandOptions {
  bool dry_run = false;
  int jobs = 0;
  int rpm = 0;
  std::string bwlimit;  // --bwlimit, as typed
  bool retry_rejected = false;
  bool allow_unapprove = false;
  std::string max_duration;  // --max-duration
};

int RunSyncCommand(const GlobalOptions& options, const SyncCommandOptions& sync) {
  StopSignals signals;  // first: every later thread inherits the blocked mask
  if (!sync.max_duration.empty()) {
    auto limit = ParseDuration(sync.max_duration);
    if (!limit) {
      options.log->Error("--max-duration " + sync.max_duration + ": expected a duration like 90s, 45m or 1h30m");
      return kExitUsage;
    }
    signals.StopAfter(*limit);
  }
  int failed = kExitOk;
  auto profile = OpenProfile(options, &failed);
  if (!profile) return failed;
  Config& config = profile->config;
  auto& manifest = profile->manifest;
  if (sync.rpm > 0) config.shootbin.rpm = sync.rpm;
  auto lock = RunLock::Acquire(config.state_dir);
  if (!lock.ok()) {
    PrintError(options, lock.status());
    return ExitCodeFor(lock.status());
  }
  SyncOptions so;
  so.dry_run = sync.dry_run;
  so.jobs = sync.jobs;
  if (!sync.bwlimit.empty()) config.bwlimit = *ParseBwLimit(sync.bwlimit);  // checked at parse time
  so.retry_rejected = sync.retry_rejected;
  so.allow_unapprove = sync.allow_unapprove;
  so.stop = signals.stop();
  so.abort = signals.abort();
  so.shared = profile->shared.get();
  Progress progress(Progress::Wanted(options), {}, so.stop);
  Logger& log = *options.log;
  ScopedSignalReporter reporter(signals, [&](const char* m) { progress.WithLineCleared([&] { log.Warn(m); }); });
  std::int64_t named_rejected = 0;  // rejected files named on stderr this run
  nlohmann::json warnings = nlohmann::json::array();
  auto on_event = [&](const SyncEvent& e) {
    switch (e.kind) {
      case SyncEvent::kPlanned:
        if (e.item && (e.item->action == Action::kUpload || e.item->action == Action::kRevision)) {
          progress.AddToTotal(1, e.bytes);
        } else if (e.item && e.item->action == Action::kConflict) {
          progress.AddSkipped();
          if (!sync.dry_run) progress.WithLineCleared([&] { log.Error(e.path + ": " + e.reason); });
        } else if (e.item && (e.item->action == Action::kAdopt || e.item->action == Action::kMove)) {
          log.Info(std::string(e.item->action == Action::kAdopt ? "adopted " : "moved ") + e.path + ": " + e.reason);
        } else if (e.item && e.item->action == Action::kRejected) {
          progress.AddSkipped();
          ++named_rejected;
          // README: every rejected file is named on stderr with its reason
          // (a warning under on_rejected = "warn": it does not fail the run).
          if (!sync.dry_run) {
            progress.WithLineCleared([&] {
              config.rejected_fails ? log.Error(e.path + ": " + e.reason) : log.Warn(e.path + ": " + e.reason);
            });
          }
        }
        progress.SetPhase("planning");
        if (e.item && log.Enabled(LogLevel::kDebug)) {
          log.Debug("planned " + std::string(ActionName(e.item->action)) + " " + e.path +
                    (e.reason.empty() ? "" : " (" + e.reason + ")"));
        }
        break;
      case SyncEvent::kPlanComplete:
        if (e.plan) {
          progress.SetTotal(e.plan->upload + e.plan->revision, e.plan->bytes_to_send);
          log.Info("plan: " + std::to_string(e.plan->upload) + " uploads, " + std::to_string(e.plan->revision) +
                   " revisions, " + std::to_string(e.plan->bytes_to_send) + " bytes to send");
        }
        progress.SetPhase(sync.dry_run ? "planned" : "sending");
        break;
      case SyncEvent::kStarted:
        if (log.Enabled(LogLevel::kDebug)) log.Debug("sending " + e.path + " (" + std::to_string(e.bytes) + " bytes)");
        break;
      case SyncEvent::kDone:
        progress.AddDone(e.bytes);
        log.Info((e.revision ? "sent revision " : "sent ") + e.path + " (" + std::to_string(e.bytes) + " bytes)" +
                 (e.reason.empty() ? "" : ": " + e.reason));
        break;
      case SyncEvent::kFailed:
        progress.AddFailed();
        progress.WithLineCleared([&] { log.Error(e.reason); });
        break;
      case SyncEvent::kWarning:
        progress.WithLineCleared([&] { log.Warn(e.reason); });
        warnings.push_back({{"path", e.path}, {"reason", e.reason}});
        break;
    }
    if (options.verbose && !options.json) {
      if (e.kind == SyncEvent::kDone) {
        progress.Print("sent     " + Escaped(e.path) + (e.reason.empty() ? "" : "  ") + Escaped(e.reason));
      } else if (e.kind == SyncEvent::kPlanned && e.item && sync.dry_run) {
        char action[16];
        std::snprintf(action, sizeof action, "%-8s", std::string(ActionName(e.item->action)).c_str());
        progress.Print(action + (" " + Escaped(e.path)) + "  (" + Escaped(e.reason) + ")");
      }
    }
  };
  SyncReport r = RunSync(config, *manifest, so, on_event);
  progress.Finish();  // the summary below replaces the bar
  const int code = SyncExitCode(r);
  const bool by_user = InterruptedByUser(r.status, so.stop);
  if (!r.status.ok() && !by_user) PrintError(options, r.status);
  if (!sync.dry_run && r.plan.rejected > named_rejected) {
    // Unchanged since an earlier run rejected them: not read again, so not
    // named above; the exit code still says they are there.
    const std::string line = std::to_string(r.plan.rejected - named_rejected) +
                             " files rejected by earlier runs are unchanged; `shotsync status` lists them with "
                             "reasons (`shotsync ignore PATH` acknowledges one)";
    config.rejected_fails ? log.Error(line) : log.Warn(line);
  }
  if (options.json) {
    nlohmann::json failures = nlohmann::json::array();
    for (const auto& f : r.failures) {
      failures.push_back({{"file", f.path}, {"reason", f.reason}, {"permanent", f.permanent}});
    }
    nlohmann::json out = {
        {"uploaded", r.uploaded}, {"revised", r.revised}, {"skipped", r.plan.skip},
        {"rejected", r.rejected + r.plan.rejected}, {"failed", r.failed},
        {"reconciled", r.reconciled}, {"adopted", r.plan.adopt}, {"moved", r.plan.moved},
        {"conflicts", r.plan.conflict}, {"held", r.held}, {"unconfirmed", r.unconfirmed},
        {"missing", r.plan.missing}, {"hashed", r.plan.hashed},
        {"scanned", r.plan.scanned}, {"bytes", r.bytes_sent}, {"seconds", r.seconds},
        {"requests", r.requests}, {"throttled_429", r.throttled_429},
        {"failures", failures}, {"warnings", warnings}, {"exit_code", code},
        {"status", r.status.ok() ? "ok" : std::string(CodeName(r.status.code()))}};
    if (!r.status.ok()) out["error"] = r.status.message();
    if (!r.target_error.ok()) out["target_error"] = r.target_error.message();
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else if (!options.quiet && (by_user || (r.status.ok() && (r.target_error.ok() || r.plan.scanned > 0)))) {
    // After a fatal error (or when no root could be planned), its line is the summary.
    const double mb = double(r.bytes_sent) / 1e6;
    std::printf("%s: %lld uploaded, %lld revised, %lld skipped, %lld rejected, %lld failed; "
                "%.1f MB in %.1fs (%.2f MB/s)\n",
                sync.dry_run ? "plan" : "sync", (long long)r.uploaded, (long long)r.revised,
                (long long)r.plan.skip, (long long)(r.rejected + r.plan.rejected), (long long)r.failed,
                mb, r.seconds, r.seconds > 0 ? mb / r.seconds : 0.0);
    if (r.plan.adopt + r.plan.moved + r.plan.conflict + r.held > 0) {
      std::printf("%lld adopted (already in the album), %lld moved, %lld conflicts, %lld revisions held\n",
                  (long long)r.plan.adopt, (long long)r.plan.moved, (long long)r.plan.conflict, (long long)r.held);
    }
    if (by_user) std::printf("%s\n", r.status.message().c_str());
  }
  return code;
}

}  // namespace

Command AddSyncCommand(CLI::App& app) {
  auto opts = std::make_shared<SyncCommandOptions>();
  SyncCommandOptions& so = *opts;
  auto* sync = app.add_subcommand("sync", "scan, plan and upload new photos and revisions");
  sync->add_flag("-n,--dry-run", so.dry_run, "plan only, send nothing");
  sync->add_option("-j,--jobs,--transfers", so.jobs, "concurrent uploads (default: config jobs, 8)")->check(CLI::Range(1, 64));
  sync->add_option("--rpm", so.rpm, "Shootbin requests per minute")->check(CLI::Range(1, 1000000));
  sync->add_option("--bwlimit", so.bwlimit, "bandwidth limit: 512k, 4M (binary), 4MB (decimal), off, or UP:DOWN")
      ->check(BwLimitValidator());
  sync->add_option("--max-duration", so.max_duration,
                   "stop cleanly after this long (90s, 45m, 1h30m): running transfers finish, exit 5, the next run "
                   "resumes");
  sync->add_flag("--retry-rejected", so.retry_rejected, "send files the server (or this version) refused again");
  sync->add_flag("--allow-unapprove", so.allow_unapprove,
                 "send revisions of photos the client approved (resets the approval, clears annotations)");
  return {sync, [opts](const GlobalOptions& g) {
            return RunSyncCommand(g, *opts);
          }};
}

}  // namespace shotsync::cli
