// shotsync pull: download a HeadshotPro team's headshots (incremental, resumable).
#include <cstdio>
#include <filesystem>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "json_out.hpp"
#include "shotsync/fs.hpp"
#include "lock.hpp"
#include "progress.hpp"
#include "shotsync/pull.hpp"
#include "signals.hpp"

namespace shotsync::cli {

namespace {

struct PullCommandOptions {
  std::string member;
  std::string model;
  bool favorites = false;
  bool restore = false;
  bool dry_run = false;
  int jobs = 0;
  int rpm = 0;
  std::string include;
  std::string dest;
  std::string bwlimit;  // --bwlimit, as typed
  std::string stats;    // --stats DURATION
};

int RunPull(const GlobalOptions& options, const PullCommandOptions& pull);

}  // namespace

Command AddPullCommand(CLI::App& app) {
  auto opts = std::make_shared<PullCommandOptions>();
  PullCommandOptions& o = *opts;
  auto* pull = app.add_subcommand("pull", "download the team's HeadshotPro headshots into headshotpro.dest");
  pull->add_option("--member", o.member, "only this member (id or email)");
  pull->add_option("--model", o.model, "only this model's photos (a model id, as a webhook names it)");
  pull->add_flag("--favorites", o.favorites, "only favorites (the member's, or the organization's)");
  pull->add_flag("--restore", o.restore, "fetch again files that were deleted locally");
  pull->add_flag("-n,--dry-run", o.dry_run, "list what would be downloaded, download nothing");
  pull->add_option("-j,--jobs", o.jobs, "concurrent downloads (default: config jobs, 8)")->check(CLI::Range(1, 64));
  pull->add_option("--rpm", o.rpm, "HeadshotPro requests per minute (300; 1000 on Enterprise)")
      ->check(CLI::Range(1, 1000000));
  pull->add_option("--include", o.include, "photo variants: main or all (default: config)")
      ->check(CLI::IsMember({"main", "all"}));
  pull->add_option("--dest", o.dest, "download folder (default: headshotpro.dest)");
  pull->add_option("--stats", o.stats, "when stdout is not a terminal, a one-line stats line every DURATION on stderr")
      ->check(DurationValidator());
  pull->add_option("--bwlimit", o.bwlimit, "download bandwidth limit: 512k, 4M, 4MB, off, UP:DOWN (DOWN is used), or a "
                   "timetable \"08:00,512k 23:00,off\"")
      ->check(BwLimitValidator());
  return {pull, [opts](const GlobalOptions& g) { return RunPull(g, *opts); }};
}

namespace {

int RunPull(const GlobalOptions& options, const PullCommandOptions& pull) {
  StopSignals signals;  // first: every later thread inherits the blocked mask
  int failed = kExitOk;
  auto profile = OpenProfile(options, &failed);
  if (!profile) return FailedEarly(options, "pull", failed);
  Config& config = profile->config;
  auto& manifest = profile->manifest;
  if (pull.rpm > 0) config.headshotpro.rpm = pull.rpm;
  if (!pull.bwlimit.empty()) config.bwlimit = *ParseBwLimit(pull.bwlimit);  // checked at parse time
  if (!pull.dest.empty()) config.headshotpro.dest = ExpandHome(pull.dest, ProcessEnv());
  // Its own lock: a pull and a sync of the same profile may run together
  // (the manifest allows it), two pulls may not.
  const std::string lock_dir = config.state_dir + "/pull";
  if (Status st = MakePrivateDirs(lock_dir); !st.ok()) return FailWith(options, "pull", st, kExitUsage);
  auto lock = RunLock::Acquire(lock_dir);
  if (!lock.ok()) return FailWith(options, "pull", lock.status(), ExitCodeFor(lock.status()));
  PullOptions po;
  po.member = pull.member;
  po.model = pull.model;
  po.favorites = pull.favorites;
  po.restore = pull.restore;
  po.dry_run = pull.dry_run;
  po.jobs = pull.jobs;
  po.include = pull.include;
  po.stop = signals.stop();
  po.abort = signals.abort();
  po.shared = profile->shared.get();
  Progress progress(Progress::Wanted(options), {.files = "files", .skipped = "already here"}, po.stop);
  if (!pull.stats.empty()) {
    progress.StatsEvery(*ParseDuration(pull.stats), [&log = *options.log, quiet = options.quiet](const std::string& line) {
      log.Log(LogLevel::kInfo, "stats: " + line, /*stderr_anyway=*/!quiet);
    });
  }
  progress.SetPhase(pull.dry_run ? "listing" : "pulling");
  Logger& log = *options.log;
  ScopedSignalReporter reporter(signals, [&](const char* m) { progress.WithLineCleared([&] { log.Warn(m); }); });
  auto on_event = [&](const PullEvent& e) {
    switch (e.kind) {
      case PullEvent::kDownloaded:
        progress.AddDone(e.bytes);
        log.Info("got " + e.path + " (" + std::to_string(e.bytes) + " bytes)");
        break;
      case PullEvent::kSkipped:
        progress.AddSkipped();
        if (log.Enabled(LogLevel::kDebug)) log.Debug("skip " + e.path + ": " + e.reason);
        break;
      case PullEvent::kPlanned:
        progress.AddToTotal(1, 0);
        if (log.Enabled(LogLevel::kDebug)) log.Debug(e.reason + " " + e.path);
        break;
      case PullEvent::kFailed:
        progress.AddFailed();
        progress.WithLineCleared([&] { log.Error(e.path + ": " + e.reason); });
        return;
      case PullEvent::kQueued:
        progress.AddToTotal(1, 0);
        return;
      case PullEvent::kListed:
        progress.TotalIsFinal();
        return;
    }
    if (!options.json && (options.verbose || (e.kind == PullEvent::kPlanned && !options.quiet))) {
      // A planned file's reason is its verb ("would download" / "would update").
      const bool planned = e.kind == PullEvent::kPlanned;
      const std::string word = e.kind == PullEvent::kDownloaded ? "got" : planned ? e.reason : "skip";
      const std::string reason = planned ? "" : e.reason;
      char head[24];
      std::snprintf(head, sizeof head, "%-14s ", word.c_str());
      progress.Print(head + e.path + (reason.empty() ? "" : "  ") + reason);
    }
  };
  PullReport r = RunPull(config, *manifest, po, on_event);
  progress.Finish();  // the summary below replaces the bar
  const int code = PullExitCode(r);
  if (options.end_counts) *options.end_counts = EndCounts(r);
  const bool by_user = InterruptedByUser(r.status, po.stop);
  if (!r.status.ok() && !by_user) PrintError(options, r.status);
  if (options.json) {
    JsonReport json("pull");
    for (const auto& f : r.failures) {  // `what` is a file, or "listing" for a listing that failed
      if (f.what == "listing") json.AddError(f.reason, {}, f.what, "failed");
      else json.AddError(f.reason, f.what, {}, "failed");
    }
    json.Set({{"dry_run", pull.dry_run}, {"members", r.members}, {"models", r.models}, {"listed", r.listed},
              {"downloaded", r.downloaded}, {"skipped", r.skipped}, {"planned", r.planned},
              {"not_restored", r.not_restored}, {"gone", r.gone}, {"failed", r.failed},
              {"refreshes", r.refreshes}, {"resumed", r.resumed}, {"retries", r.retries},
              {"bytes", r.bytes}, {"seconds", r.seconds}, {"requests", r.requests},
              {"throttled_429", r.throttled_429}});
    if (pull.dry_run) {
      // "downloaded" stays (0) for scripts that read it on every run.
      json["would_download"] = r.planned;
      json["would_update"] = r.planned_updates;
    }
    json.Print(code, r.status);
  } else if (!options.quiet) {
    if (pull.dry_run) {
      std::printf("pull (dry run): would download %lld (%lld of them would update a local file), ",
                  (long long)r.planned, (long long)r.planned_updates);
    } else {
      std::printf("pull: %lld downloaded, ", (long long)r.downloaded);
    }
    std::printf("%lld already here, %lld failed, %lld deleted locally (--restore), %lld gone; "
                "%lld members, %lld models, %lld photos listed",
                (long long)r.skipped, (long long)r.failed, (long long)r.not_restored, (long long)r.gone,
                (long long)r.members, (long long)r.models, (long long)r.listed);
    if (pull.dry_run) {
      std::printf(" in %.1fs\n", r.seconds);
    } else {
      std::printf("; %.1f MB in %.1fs (%.1f files/s)\n", double(r.bytes) / 1e6, r.seconds,
                  r.seconds > 0 ? double(r.downloaded) / r.seconds : 0.0);
    }
    if (by_user) std::printf("%s\n", r.status.message().c_str());
  }
  return code;
}

}  // namespace
}  // namespace shotsync::cli
