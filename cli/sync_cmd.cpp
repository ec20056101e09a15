// shotsync sync: scan, plan and upload; the cron entry point.
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "json_out.hpp"
#include "lock.hpp"
#include "progress.hpp"
#include "shotsync/fit.hpp"
#include "shotsync/live.hpp"
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
  std::string max_transfer;  // --max-transfer, as typed
  std::string stats;         // --stats DURATION
  FilterSpec filters;        // --include, --exclude, --max-age, ...
  bool fit = false;          // --fit
};

int RunSyncCommand(const GlobalOptions& options, const SyncCommandOptions& sync) {
  StopSignals signals;  // first: every later thread inherits the blocked mask
  if (!sync.max_duration.empty()) {
    auto limit = ParseDuration(sync.max_duration);
    if (!limit) {
      return FailWith(options, "sync", Status(Code::kInvalidArgument, "--max-duration " + sync.max_duration +
                                                 ": expected a duration like 90s, 45m or 1h30m"),
                      kExitUsage);
    }
    signals.StopAfter(*limit);
  }
  auto filter = MakeFilter(sync.filters);
  if (!filter.ok()) return FailWith(options, "sync", filter.status(), kExitUsage);
  int failed = kExitOk;
  auto profile = OpenProfile(options, &failed);
  if (!profile) return FailedEarly(options, "sync", failed);
  Config& config = profile->config;
  auto& manifest = profile->manifest;
  if (sync.rpm > 0) config.shootbin.rpm = sync.rpm;
  if (sync.fit) FitAllRoots(config);
  auto lock = RunLock::Acquire(config.state_dir);
  if (!lock.ok()) return FailWith(options, "sync", lock.status(), ExitCodeFor(lock.status()));
  SyncOptions so;
  so.dry_run = sync.dry_run;
  so.jobs = sync.jobs;
  if (!sync.bwlimit.empty()) config.bwlimit = *ParseBwLimit(sync.bwlimit);  // checked at parse time
  so.retry_rejected = sync.retry_rejected;
  so.allow_unapprove = sync.allow_unapprove;
  so.stop = signals.stop();
  so.abort = signals.abort();
  so.shared = profile->shared.get();
  if (*filter) so.filter = &**filter;
  if (!sync.max_transfer.empty()) so.max_transfer = std::uint64_t(ParseSizeSuffix(sync.max_transfer).value_or(0));
  LiveStats live;
  so.live = &live;
  Progress progress(Progress::Wanted(options), {}, so.stop);
  Logger& log = *options.log;
  progress.Attach(&live);
  if (!sync.stats.empty()) {
    progress.StatsEvery(*ParseDuration(sync.stats), [&log, quiet = options.quiet](const std::string& line) {
      log.Log(LogLevel::kInfo, "stats: " + line, /*stderr_anyway=*/!quiet);
    });
  }
  ScopedSignalReporter reporter(signals, [&](const char* m) { progress.WithLineCleared([&] { log.Warn(m); }); });
  std::int64_t named_rejected = 0;  // rejected files named on stderr this run
  JsonReport json("sync");  // --json: filled as the run goes
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
          if (config.rejected_fails) json.AddError(e.reason, e.path, {}, "rejected");
          else json.AddWarning(e.reason, e.path);
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
        json.AddWarning(e.reason, e.path);
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
  if (options.end_counts) *options.end_counts = EndCounts(r);
  // Stopped as asked: a signal, --max-duration, or --max-transfer's budget.
  const bool by_user = InterruptedByUser(r.status, so.stop) ||
                       (r.status.code() == Code::kCancelled && so.max_transfer > 0);
  if (!r.status.ok() && !by_user) PrintError(options, r.status);
  if (!sync.dry_run && r.plan.rejected > named_rejected) {
    // Unchanged since an earlier run rejected them: not read again, so not
    // named above; the exit code still says they are there.
    const std::string line = std::to_string(r.plan.rejected - named_rejected) +
                             " files rejected by earlier runs are unchanged; `shotsync status` lists them with "
                             "reasons (`shotsync ignore PATH` acknowledges one)";
    config.rejected_fails ? log.Error(line) : log.Warn(line);
    if (config.rejected_fails) json.AddError(line, {}, {}, "rejected_earlier");
    else json.AddWarning(line);
  }
  if (options.json) {
    for (const auto& f : r.failures) {
      json.AddError(f.reason, f.path, {}, f.permanent ? "rejected" : "failed")["permanent"] = f.permanent;
    }
    if (!r.target_error.ok()) json.AddError(r.target_error.message(), {}, "root", CodeName(r.target_error.code()));
    json.Set({{"dry_run", sync.dry_run}, {"uploaded", r.uploaded}, {"revised", r.revised},
              {"adopted", r.plan.adopt}, {"skipped", r.plan.skip}, {"rejected", r.rejected + r.plan.rejected},
              {"failed", r.failed}, {"reconciled", r.reconciled}, {"moved", r.plan.moved},
              {"conflicts", r.plan.conflict}, {"held", r.held}, {"unconfirmed", r.unconfirmed},
              {"missing", r.plan.missing}, {"hashed", r.plan.hashed}, {"scanned", r.plan.scanned},
              {"bytes", r.bytes_sent}, {"seconds", r.seconds}, {"requests", r.requests},
              {"throttled_429", r.throttled_429}, {"retries", r.retries}});
    json.Print(code, r.status);
  } else if (!options.quiet && (by_user || (r.status.ok() && (r.target_error.ok() || r.plan.scanned > 0)))) {
    // After a fatal error (or when no root could be planned), its line is the summary.
    const double mb = double(r.bytes_sent) / 1e6;
    if (sync.dry_run) {
      // Nothing was sent: what a sync would do, in the conditional.
      std::printf("%s\n", PlanLine(r.plan).c_str());
    } else {
      std::printf("sync: %lld uploaded, %lld revised, %lld skipped, %lld rejected, %lld failed; "
                  "%.1f MB in %.1fs (%.2f MB/s); %lld retries, %lld 429s\n",
                  (long long)r.uploaded, (long long)r.revised, (long long)r.plan.skip,
                  (long long)(r.rejected + r.plan.rejected), (long long)r.failed, mb, r.seconds,
                  r.seconds > 0 ? mb / r.seconds : 0.0, (long long)r.retries, (long long)r.throttled_429);
    }
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
  sync->add_option("--bwlimit", so.bwlimit, "upload bandwidth limit: 512k, 4M (binary), 4MB (decimal), off, UP:DOWN, or a "
                   "timetable \"08:00,512k 23:00,off\" (Mon-08:00,... for weekdays)")
      ->check(BwLimitValidator());
  sync->add_option("--max-duration", so.max_duration,
                   "stop cleanly after this long (90s, 45m, 1h30m): running transfers finish, exit 5, the next run "
                   "resumes");
  sync->add_flag("--fit", so.fit, "send JPEGs over the 10 MiB limit re-encoded to fit (the originals stay as they are)");
  sync->add_option("--max-transfer", so.max_transfer,
                   "start no upload that would take the bytes sent past SIZE (10G, 500M); then stop as "
                   "--max-duration does (exit 5)")
      ->check(SizeValidator());
  sync->add_option("--stats", so.stats, "when stdout is not a terminal, a one-line stats line every DURATION on "
                                        "stderr (and in the log file)")
      ->check(DurationValidator());
  AddFilterOptions(*sync, so.filters);
  sync->add_flag("--retry-rejected", so.retry_rejected, "send files the server (or this version) refused again");
  sync->add_flag("--allow-unapprove", so.allow_unapprove,
                 "send revisions of photos the client approved (resets the approval, clears annotations)");
  return {sync, [opts](const GlobalOptions& g) {
            return RunSyncCommand(g, *opts);
          }};
}

}  // namespace shotsync::cli
