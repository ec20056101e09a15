// SyncRun: one sync or push run (RunSync), internal to the engine. The
// stages are defined in a file each under upload/ (the thread table is at
// the top of sync_run.cpp):
//   sync_run.cpp   the run itself, its report and the wait for the end
//   targets.cpp    the roots' project/album ids
//   resolve.cpp    adopt / move / conflict against the album index, at plan time
//   claim.cpp      a planned file becomes a job, claimed in the manifest
//   gate.cpp       per album, one send until the server said yes
//   send.cpp       sending, the answer, retries
//   reconcile.cpp  the exactly-once rule: look on the server before resending
//   recorder.cpp   the recorder batcher: every result written, then counted
//   studio.cpp     studio mode: claims, finishes and releases in the shared store
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "shotsync/album_index.hpp"
#include "shotsync/owner.hpp"
#include "shotsync/shootbin.hpp"
#include "shotsync/retry.hpp"
#include "shotsync/session.hpp"
#include "shotsync/shared_store.hpp"
#include "shotsync/sync.hpp"
#include "shotsync/throttle.hpp"
#include "shotsync/transfer.hpp"
#include "util/batcher.hpp"
#include "util/scheduler.hpp"

namespace shotsync::upload {

using SteadyClock = std::chrono::steady_clock;

struct Target {
  std::int64_t root_id = 0;
  std::int64_t project = 0;
  std::int64_t album = 0;
  bool resolved = false;  // project/album known (pinned in the manifest, or looked up)
  Status status;  // why this root's files cannot be sent (album not found...)
};

struct Job {
  std::int64_t job_id = 0;
  std::int64_t file_id = 0;
  JobKind kind = JobKind::kUpload;
  std::size_t root_index = 0;
  std::string abs_path, rel_path, hash;
  std::uint64_t size = 0;
  std::int64_t photo_id = 0;   // revisions: the photo revised
  int attempts = 0;
  double started_at = 0;       // wall seconds of the first send
  std::int64_t watermark = 0;  // largest photo id known in the album before the first send
  // Until then, a photo missing from the album may still be stored by a
  // request the server received before its client vanished (reconcile_delay).
  SteadyClock::time_point settle_at{};
  double conflict_at = 0;      // wall seconds of the last 409 (revisions)
  bool probe = false;          // the one send that opens its album's gate
  bool approval_checked = false;  // revisions: the photo was read before sending
  bool budgeted = false;       // counted against --max-transfer
  int fit_quality = 0;         // the JPEG quality of the fitted copy sent (docs/fit.md)
  // The stat planned; hash_on_send: claimed unread, `hash` is what the last
  // attempt sent (the transfer hashes the body as it reads it).
  std::int64_t mtime_ns = 0;
  std::uint64_t inode = 0;
  bool hash_on_send = false;
};

// Per album, per run: the first send goes alone, and only once it succeeded
// do the others follow. A locked project or a plan limit (403) then costs at
// most two requests, not one per file, and the first answer teaches how the
// server stores names (AlbumIndex) before two names could collide.
struct Gate {
  bool open = false;
  bool probing = false;
  int refusals = 0;     // 403s in this run
  Status blocked;       // not ok: nothing more goes to this album this run
  std::int64_t held = 0;  // files not sent because of `blocked`
  std::size_t root_index = 0;
  std::deque<Job> parked;  // waiting for the probe's answer
};

class SyncRun {
 public:
  SyncRun(const Config& config, Manifest& manifest, std::unique_ptr<Manifest> jobs_db, OwnerLease lease,
          const SyncOptions& options, const SyncEventFn& on_event);
  SyncRun(const SyncRun&) = delete;
  SyncRun& operator=(const SyncRun&) = delete;

  SyncReport Run();
  void WakeWaiters();  // a stop was requested: whoever waits on cv_ looks again

 private:
  // A file being claimed (claimer_): the files queued meanwhile are claimed
  // in one durable transaction (one log sync for the group, not one per file).
  struct Pending {
    Job job;
    SteadyClock::time_point first_try;
    std::optional<Result<JobClaim>> claim;  // unset: not claimed (stopping)
    bool reconcile = false;  // the shared claim was a dead host's: look on the server first
  };
  // What the recorder writes: a photo the server answered with...
  struct Answered {
    Job job;
    RemotePhoto photo;
  };
  // ...or a job that ends in this run without one. Counted once written.
  struct Failed {
    Job job;
    std::string reason;                 // the job's row
    bool permanent = false;
    std::optional<std::string> report;  // counted as a failure with this text
    Status fatal;                       // not ok: the run stops, once written
    bool unsent = false;                // counted failed (its gate counted it held)
    bool unpin = false;                 // 404: the root's ids and the album's index go first
  };
  using Recording = std::variant<Answered, Failed>;

  // sync_run.cpp
  bool Stopping(bool abort_only) const;
  void SetFatal(Status st);
  void Emit(const SyncEvent& e);
  void AddFailure(const Job& job, const std::string& reason, bool permanent);
  void Done();
  void FinishOutstanding();
  // targets.cpp
  void LocateFiles();
  bool Involved(std::size_t root_index) const;
  Status ResolveTargets();
  std::vector<std::size_t> UnresolvedRoots() const;
  Status ResolveTarget(const RootConfig& rc, std::optional<std::vector<NamedId>>& projects, Target& t);
  std::optional<std::size_t> RootIndexOf(std::int64_t root_id) const;
  // resolve.cpp
  void ResolveUpload(PlanItem& item);
  bool ResolveMove(PlanItem& item);
  // claim.cpp
  void OnItem(const PlanItem& item);
  void Claim(Job j, SteadyClock::time_point first_try);
  Status CommitClaims(std::vector<Pending>& batch);
  void AfterClaim(Pending& p, const Status& committed);
  void HashThenClaim(Job j, SteadyClock::time_point first_try);
  // gate.cpp
  Status GateStatus(std::int64_t album);
  void Block(std::int64_t album, std::size_t root_index, const Status& why);
  void Unsent(const Job& j, const Status& why);
  void ReportBlocked();
  void DrainParked();
  void OpenGate(const Job& probe);
  void PassProbe(const Job& probe);
  // send.cpp
  void Send(Job j);
  void CheckApproval(Job j);
  void Transmit(Job j);
  void OnAnswer(Job& j, const HttpResponse& r);
  void Ambiguous(Job& j, const HttpResponse& r, bool answered);
  void Refused(Job& j, const Status& st);
  // cause: what failed ("503", "a network error"), for the progress line.
  void Retry(Job j, std::chrono::milliseconds delay, std::string cause);
  bool WithinBudget(Job& j);
  // reconcile.cpp
  Status ReconcileUnfinished();
  Status Reconcile(std::vector<Job>& jobs, std::vector<Job>& resend);
  bool WaitUntil(SteadyClock::time_point when);
  Status LookUp(std::vector<Job>& jobs, std::vector<Job>& resend);
  void RecheckRevision(Job j);
  static bool RevisionLanded(const RemotePhoto& photo, const Job& j);
  // studio.cpp (every call is a no-op without a shared store)
  Status StartShared();
  void EndShared(const RunCounts& counts, int exit_code);
  Status ClaimShared(std::vector<Pending>& batch);
  void AdoptShared(const Job& j, std::string_view from_owner);
  void FinishShared(std::span<const Job* const> jobs, std::span<const std::int64_t> photo_ids);
  Status CloseJob(const Job& j, std::string_view reason, bool permanent);
  bool LeaseHeld();
  void LoseShared(const Status& why);
  bool SharedUsable() const;
  // recorder.cpp
  Status Finished(Job& j, std::int64_t photo_id, bool reconciled);
  void Recorded(const Job& j, bool reconciled);
  void Record(Recording r);
  Status CommitRecordings(std::vector<Recording>& batch);
  Status WriteRecordings(std::vector<Recording>& batch);
  void AfterRecorded(Recording& r, const Status& committed);
  void AfterAnswered(Answered& a, const Status& committed);
  void AfterFailed(Failed& f);

  const Config& config_;
  Manifest& plan_db_;               // the planner's connection (batched writes)
  // Jobs, runs and the shared bucket (durable writes): a second connection
  // for a sync, so that the transfer side never waits behind the planner's
  // batches; a push (a few rows) uses the planner's, one open less.
  std::unique_ptr<Manifest> own_jobs_db_;
  Manifest* db_;
  OwnerLease lease_;                // proves to other processes that our jobs are live
  JobOwner owner_;
  const SyncOptions& options_;
  std::vector<PlanTarget> only_;    // push: the named files
  const SyncEventFn& on_event_;
  ShootbinSession session_;  // engine + throttle (the manifest's bucket) + client
  TransferEngine& engine_ = session_.engine();
  Throttle& throttle_ = session_.throttle();
  ShootbinClient& client_ = session_.client();
  const shotsync::Backoff upload_backoff_{retry_policy::kUpload};
  const shotsync::Backoff forbidden_backoff_{retry_policy::kForbiddenRecheck};
  const shotsync::Backoff conflict_backoff_{retry_policy::kConflict};
  AlbumIndex index_{*db_, client_, options_.shared, &plan_db_};
  SharedStore* shared_ = options_.shared;       // studio mode, else null
  std::unique_ptr<SharedLease> shared_lease_;   // our owner row while the run sends
  std::int64_t shared_run_ = 0;
  std::atomic<bool> shared_lost_{false};        // the store failed: no more shared calls this run
  std::vector<Target> targets_;
  Status target_error_;  // the first root whose target did not resolve (the caller's thread)

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  SyncReport report_;
  std::int64_t outstanding_ = 0;
  std::vector<Job> ambiguous_;
  std::map<std::int64_t, Gate> gates_;               // album -> its gate
  std::atomic<bool> fatal_{false};
  std::uint64_t budget_used_ = 0;               // --max-transfer: bytes of uploads started
  std::atomic<bool> budget_reached_{false};
  std::stop_source plan_stop_;                  // the plan's cancel: a stop, or the budget reached
  std::mutex event_mu_;
  Batcher<Pending> claimer_{[this](std::vector<Pending>& b) { return CommitClaims(b); },
                            [this](Pending& p, const Status& st) { AfterClaim(p, st); }};
  // Done rows wait up to 3 ms for the answers of the transfers still
  // running: a few commits of many rows, not one per photo (none of them
  // syncs; a push, one transfer, never waits).
  Batcher<Recording> recorder_{[this](std::vector<Recording>& b) { return CommitRecordings(b); },
                               [this](Recording& r, const Status& st) { AfterRecorded(r, st); },
                               Linger{std::chrono::milliseconds(3), [this] { return engine_.counters().active > 0; }}};
  Scheduler scheduler_;  // last: its thread stops before the rest is destroyed
};

}  // namespace shotsync::upload
