// SyncRun: the run (RunSync). Its threads, and what each may do:
//
//   thread             owns / does                              writes the manifest
//   caller (planner)   Run(): targets, reconcile of dead owners' plan_db_: the plan's batches;
//                      jobs, the plan (BuildPlan streams items  db_: root targets, reconciled
//                      to OnItem, ResolveUpload), waits in      and interrupted jobs
//                      FinishOutstanding, reconciles ambiguous
//                      answers, drains the scheduler when stopping
//   hasher pool        (BuildPlan's) hashes files for the plan  no (the planner's thread does)
//   claimer_ batcher   claims queued jobs in one transaction,   db_: BeginJobs; a send cut off
//                      then sends them (AfterClaim -> Send)     by a stop
//   recorder_ batcher  everything the transfer loop learns:     db_: FinishJobs, failed jobs,
//                      answered photos (album index), failed    unpinned targets (404); then
//                      jobs, 404 unpins; then counts + Done()   the report counts them
//   scheduler_         backoff retries, sends from opened gates, db_: a retry cut off by a stop,
//                      approval and 409 checks, the 403 check   held / rechecked revisions
//   curl transfer loop (TransferEngine's) OnAnswer: classifies  never: it queues to the
//                      the answer, updates gates under mu_      recorder or the scheduler
//
// mu_ guards the report, the gates and the outstanding count; event_mu_
// serializes the event callback. The batchers and the scheduler own a
// jthread each: the batchers' end in Run() once their queues are written,
// the scheduler's when the run is destroyed (its member is the last).
#include "upload/sync_run.hpp"

#include "shotsync/exit_code.hpp"
#include "shotsync/live.hpp"

#include <unistd.h>

namespace shotsync {
namespace upload {

SyncRun::SyncRun(const Config& config, Manifest& manifest, std::unique_ptr<Manifest> jobs_db, OwnerLease lease,
        const SyncOptions& options, const SyncEventFn& on_event)
    : config_(config), plan_db_(manifest), own_jobs_db_(std::move(jobs_db)),
      db_(own_jobs_db_ ? own_jobs_db_.get() : &manifest), lease_(std::move(lease)),
      owner_(lease_.AsJobOwner()), options_(options), on_event_(on_event),
      session_(config, db_, SessionOptions{.jobs = options.jobs > 0 ? options.jobs : config.jobs,
                                           .bwlimit = options.bwlimit > 0 ? BwLimit{options.bwlimit, options.bwlimit, {}}
                                                                          : config.bwlimit,
                                           .shared = options.shared}) {}

SyncReport SyncRun::Run() {
  // Waits (FinishOutstanding, WaitUntil) wake on a stop request: nothing polls the tokens.
  std::stop_callback on_stop(options_.stop, [this] { WakeWaiters(); });
  std::stop_callback on_abort(options_.abort, [this] { WakeWaiters(); });
  std::stop_callback stop_plan(options_.stop, [this] { plan_stop_.request_stop(); });
  LiveStats* live = options_.live;
  if (live) {
    live->SetThrottleSource([this] {
      return LiveStats::Throttle{throttle_.rpm(), throttle_.granted(), throttle_.throttled_429(),
                                 throttle_.paused_until()};
    });
    live->SetBwLimit(options_.bwlimit > 0 ? options_.bwlimit : config_.bwlimit.At(WallSeconds()).up);
    live->SetPhase("connecting");
  }
  // The source reads this run's throttle: gone before the run is.
  struct Unregister {
    LiveStats* live;
    ~Unregister() {
      if (live) live->SetThrottleSource({});
    }
  } unregister{live};
  const auto t0 = SteadyClock::now();
  auto run_id = db_->BeginRun(options_.command, int(::getpid()));
  if (!options_.dry_run) report_.status = StartShared();
  if (!options_.dry_run && report_.status.ok()) {
    if (config_.shootbin.token.empty()) {
      report_.status = Status(Code::kUnauthenticated,
                              "no Shootbin token: set SHOOTBIN_API_TOKEN (or shootbin.token_file in " +
                                  (config_.source.empty() ? std::string("the config") : config_.source) + ")");
    } else {
      LocateFiles();
      report_.status = ResolveTargets();
      if (report_.status.ok()) report_.status = ReconcileUnfinished();
    }
  } else if (options_.dry_run) {
    LocateFiles();
    // plan: with a token, the targets are resolved and the albums looked
    // at (read-only: adoptions, moves and conflicts are shown as such), so
    // a planned upload can be sent; without one it plans from the cache.
    if (!config_.shootbin.token.empty()) {
      report_.status = ResolveTargets();
    } else {
      Emit({SyncEvent::kWarning, nullptr, config_.shootbin.base_url, 0,
            "no Shootbin token: planned from the manifest alone; the projects and albums are not checked"});
    }
  }
  const bool nothing_to_push = !options_.files.empty() && only_.empty();
  if (report_.status.ok() && !nothing_to_push) {
    if (live) live->SetPhase("scanning");
    PlanOptions po{.hash_threads = 0, .dedupe = config_.dedupe,
                   .flush_before_emit = !options_.dry_run, .cancel = plan_stop_.get_token(),
                   .emit_unchanged = (options_.dry_run && options_.report_unchanged) || !options_.files.empty(),
                   .only = only_, .retry_rejected = options_.retry_rejected,
                   .resolve_upload = [this](PlanItem& item) { ResolveUpload(item); },
                   .skip_roots = UnresolvedRoots(), .filter = options_.filter, .live = live,
                   .send_unread = !config_.dedupe && shared_ == nullptr};
    auto plan = BuildPlan(config_, plan_db_, po, [&](const PlanItem& item) { OnItem(item); },
                          [&](const std::string& path, const Status& st) {
                            Emit({st.code() == Code::kSkipped ? SyncEvent::kWarning : SyncEvent::kFailed,
                                  nullptr, path, 0, st.message()});
                          });
    if (live) live->SetPhase(options_.dry_run ? "planned" : "sending");
    if (plan.ok()) {
      report_.plan = *plan;
      SyncEvent done{SyncEvent::kPlanComplete};
      done.plan = &report_.plan;
      Emit(done);
    } else {
      SetFatal(plan.status());
    }
    FinishOutstanding();
  }
  engine_.Shutdown(Stopping(true));
  scheduler_.Drain();
  ReportBlocked();
  claimer_.Finish();   // claims queued by the last retries end here (stopping: unsent)
  recorder_.Finish();  // every answer recorded before the report is made
  if (report_.status.ok() && budget_reached_) {
    report_.status = Status(Code::kCancelled, "--max-transfer reached (" + std::to_string(budget_used_) +
                                                  " bytes started): run the same command to send the rest");
  } else if (report_.status.ok() && Stopping(false)) {
    report_.status = Status(Code::kCancelled, "interrupted: run the same command to resume");
  }
  report_.seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  report_.throttled_429 = throttle_.throttled_429();
  report_.requests = throttle_.granted();
  report_.throttle_wait_s = throttle_.waited_s();
  report_.retries += client_.read_retries();
  report_.target_error = target_error_;
  report_.rejected_fails = config_.rejected_fails;
  if (run_id.ok()) {
    RunCounts counts{report_.uploaded, report_.revised, report_.plan.skip,
                     report_.rejected + report_.plan.rejected, report_.failed, 0,
                     report_.bytes_sent};
    (void)db_->EndRun(*run_id, counts, SyncExitCode(report_));
    EndShared(counts, SyncExitCode(report_));
  }
  shared_lease_.reset();  // every claim is recorded: the owner row goes (its threads use mu_)
  // A push is a few rows: SQLite's automatic checkpoints are enough, and a
  // TRUNCATE checkpoint would cost fsyncs here and at the next start.
  if (options_.files.empty()) (void)db_->Checkpoint();
  return std::move(report_);
}

// A sync leaves out the files of roots whose target did not resolve (one
// line said why); a push names its files, and each gets its outcome.
std::vector<std::size_t> SyncRun::UnresolvedRoots() const {
  std::vector<std::size_t> out;
  if (!options_.files.empty()) return out;
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    if (!targets_[i].status.ok()) out.push_back(i);
  }
  return out;
}

bool SyncRun::Stopping(bool abort_only) const {
  if (options_.abort.stop_requested()) return true;
  if (abort_only) return false;
  return fatal_.load() || options_.stop.stop_requested();
}

void SyncRun::SetFatal(Status st) {
  std::lock_guard lock(mu_);
  if (report_.status.ok()) report_.status = std::move(st);
  fatal_ = true;
  cv_.notify_all();
}

void SyncRun::WakeWaiters() {
  std::lock_guard lock(mu_);
  cv_.notify_all();
}

void SyncRun::Emit(const SyncEvent& e) {
  std::lock_guard lock(event_mu_);
  if (on_event_) on_event_(e);
}

void SyncRun::AddFailure(const Job& job, const std::string& reason, bool permanent) {
  {
    std::lock_guard lock(mu_);
    (permanent ? report_.rejected : report_.failed) += 1;
    report_.failures.push_back({job.abs_path, reason, permanent});
  }
  // on_rejected = "warn": a refusal is named, but not as a failure.
  const bool warn = permanent && !config_.rejected_fails;
  Emit({warn ? SyncEvent::kWarning : SyncEvent::kFailed, nullptr, job.abs_path, 0, reason});
}

void SyncRun::Done() {
  std::lock_guard lock(mu_);
  --outstanding_;
  cv_.notify_all();
}

// Waits for every job, then reconciles ambiguous ones in batches (one album
// listing for many) and resends what the server does not have.
void SyncRun::FinishOutstanding() {
  for (int round = 0;; ++round) {
    {
      std::unique_lock lock(mu_);
      bool drained = false;
      while (outstanding_ > 0 && !Stopping(true)) {
        // Woken by Done(), SetFatal() and the stop tokens' callbacks.
        cv_.wait(lock, [&] { return outstanding_ <= 0 || Stopping(true) || (!drained && Stopping(false)); });
        if (!drained && Stopping(false)) {
          // Retries waiting for their backoff give up now (Send sees the
          // stop), and queued transfers are cancelled unsent; running ones end.
          drained = true;
          lock.unlock();
          scheduler_.Drain();
          DrainParked();
          engine_.Stop(false);
          lock.lock();
        }
      }
      if (Stopping(true)) return;
    }
    std::vector<Job> batch;
    {
      std::lock_guard lock(mu_);
      batch.swap(ambiguous_);
    }
    if (batch.empty()) return;
    if (Stopping(false)) return;  // left in_flight: the next run reconciles them
    std::vector<Job> resend;
    LiveStats* live = options_.live;
    const auto confirming = std::int64_t(batch.size());
    if (live) live->SetPhase("confirming");
    const Status reconciled = Reconcile(batch, resend);
    if (live) {
      live->AddConfirming(-confirming);
      live->SetPhase("sending");
    }
    if (!reconciled.ok()) {
      SetFatal(reconciled);
      return;
    }
    for (Job& j : resend) {
      if (j.attempts >= options_.max_attempts) {
        (void)CloseJob(j, "no answer from the server after " + std::to_string(j.attempts) + " attempts", false);
        AddFailure(j, "no answer from the server after " + std::to_string(j.attempts) + " attempts", false);
        continue;
      }
      {
        std::lock_guard lock(mu_);
        ++outstanding_;
      }
      Retry(std::move(j), upload_backoff_.Delay(j.attempts), "an unconfirmed send");
    }
  }
}

}  // namespace upload

int SyncExitCode(const SyncReport& report) {
  const std::int64_t rejected = report.rejected_fails ? report.rejected + report.plan.rejected : 0;
  const bool anything_failed =
      report.failed + rejected + report.plan.conflict + report.held + report.unconfirmed > 0 || report.plan.errors > 0;
  // A target that did not resolve is the config's mistake (2), however
  // the rest went; the token's or a stop's code comes first.
  if (report.status.ok() && !report.target_error.ok()) return ExitCodeFor(report.target_error);
  return RunExitCode(report.status, anything_failed);
}

SyncReport RunSync(const Config& config, Manifest& manifest, const SyncOptions& options,
                   const SyncEventFn& on_event) {
  Result<std::unique_ptr<Manifest>> jobs_db = std::unique_ptr<Manifest>();
  if (options.files.empty()) jobs_db = manifest.OpenPeer();
  auto lease = OwnerLease::Acquire(config.state_dir);
  if (!jobs_db.ok() || !lease.ok()) {
    SyncReport report;
    report.status = !jobs_db.ok() ? jobs_db.status() : lease.status();
    return report;
  }
  upload::SyncRun run(config, manifest, std::move(*jobs_db), std::move(*lease), options, on_event);
  return run.Run();
}

}  // namespace shotsync
