// Studio mode (docs/studio.md): the local claim of a job is followed by
// its claim in the shared store, keyed by (album, the name sent), so that
// hosts with their own manifests never send one photo twice:
//   granted    ours: send it
//   done       another host stored this content: the job is done, bound to that photo
//   busy       a live host is sending it: not ours this run (push waits and asks again)
//   reconcile  a dead host's claim, now ours: looked up on the server before sending
//   conflict   the name holds other content: reported, decided again next run
// Finished jobs register their photo; jobs that end unsent give the claim up.
// The store unreachable (after its own retries): nothing more is sent, and
// the run ends "interrupted, run again" (exit 5).
#include "upload/sync_run.hpp"

#include <unistd.h>

namespace shotsync::upload {

// After this, no shared call is made in this run: each would wait out the
// store's retries again. The claims left run out with our lease.
void SyncRun::LoseShared(const Status& why) {
  shared_lost_ = true;
  SetFatal(Status(Code::kCancelled, why.message() + "; stopped sending (nothing is lost): run again when " +
                                        shared_->display() + " is back"));
}

bool SyncRun::SharedUsable() const { return shared_ && !shared_lost_; }

Status SyncRun::StartShared() {
  if (!shared_) return Status::Ok();
  auto lease = SharedLease::Start(*shared_, owner_.token, options_.command, [this] { (void)LeaseHeld(); });
  if (!lease.ok()) return lease.status();
  shared_lease_ = std::move(*lease);
  auto run = shared_->BeginRun(options_.command, int(::getpid()));
  if (run.ok()) shared_run_ = *run;
  return Status::Ok();
}

void SyncRun::EndShared(const RunCounts& counts, int exit_code) {
  // Not when the store was lost: a run record is not worth a long wait.
  if (SharedUsable() && shared_run_ > 0 && shared_lease_->Held()) (void)shared_->EndRun(shared_run_, counts, exit_code);
}

bool SyncRun::LeaseHeld() {
  if (!shared_lease_ || shared_lease_->Held()) return true;
  LoseShared(Status(Code::kNetwork, "shared store " + shared_->display() + ": this host's lease could not be renewed"));
  return false;
}

// Claimer thread, after the local claims of the batch were committed.
Status SyncRun::ClaimShared(std::vector<Pending>& batch) {
  if (!shared_) return Status::Ok();
  std::vector<SharedClaimRequest> requests;
  std::vector<Pending*> claimed;
  for (Pending& p : batch) {
    if (!p.claim || !p.claim->ok()) continue;
    const JobClaim& c = **p.claim;
    requests.push_back({targets_[p.job.root_index].album, p.job.rel_path, c.kind, c.photo_id, p.job.hash,
                        p.job.size, p.job.watermark});
    claimed.push_back(&p);
  }
  if (requests.empty()) return Status::Ok();
  Result<std::vector<SharedClaim>> shared = Status(Code::kCancelled, "stopping");
  if (SharedUsable() && LeaseHeld()) shared = shared_->Claim(requests, owner_.token);
  if (!shared.ok()) {
    for (Pending* p : claimed) (void)db_->FailJob((**p->claim).job_id, "not sent: shared store unreachable", false);
    if (shared.status().code() != Code::kCancelled) LoseShared(shared.status());
    for (Pending* p : claimed) p->claim.reset();  // unclaimed: stopping
    return Status::Ok();
  }
  for (std::size_t i = 0; i < claimed.size(); ++i) {
    Pending& p = *claimed[i];
    const SharedClaim& sc = (*shared)[i];
    const std::int64_t job_id = (**p.claim).job_id;
    switch (sc.kind) {
      case SharedClaim::kGranted:
        break;
      case SharedClaim::kDone:
        SHOTSYNC_RETURN_IF_ERROR(db_->FinishJob(job_id, sc.photo_id));
        p.claim = Status(Code::kAlreadyDone, "already in the album as photo " + std::to_string(sc.photo_id) +
                                                 " (sent by another host)");
        break;
      case SharedClaim::kBusy:
        SHOTSYNC_RETURN_IF_ERROR(db_->FailJob(job_id, "another host is sending it: " + sc.holder, false));
        p.claim = Status(Code::kBusy, "being sent by " + sc.holder);
        break;
      case SharedClaim::kConflict:
        SHOTSYNC_RETURN_IF_ERROR(db_->FailJob(job_id, sc.reason, false));
        p.claim = Status(Code::kConflict, sc.reason);
        break;
      case SharedClaim::kReconcile:
        // The dead host may have stored it: look from its watermark, after
        // the settle time (AfterClaim), before anything is sent.
        p.reconcile = true;
        p.job.watermark = sc.watermark;
        break;
    }
  }
  return Status::Ok();
}

// ReconcileUnfinished adopted a dead local owner's job: its shared claim
// (same owner token) becomes ours too, unless another host took it first.
void SyncRun::AdoptShared(const Job& j, std::string_view from_owner) {
  if (!SharedUsable()) return;
  (void)shared_->AdoptClaim(targets_[j.root_index].album, j.rel_path, from_owner, owner_.token);
}

// Recorder thread, after the local done rows were committed.
void SyncRun::FinishShared(std::span<const Job* const> jobs, std::span<const std::int64_t> photo_ids) {
  if (!SharedUsable() || jobs.empty()) return;
  std::vector<SharedPhoto> photos;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    photos.push_back({targets_[jobs[i]->root_index].album, jobs[i]->rel_path, photo_ids[i], jobs[i]->hash,
                      jobs[i]->size});
  }
  // Not registered: the claim stays ours until our lease ends, and the host
  // that takes it over finds the photo on the server. Nothing is lost.
  if (Status st = shared_->Finish(photos, owner_.token); !st.ok()) LoseShared(st);
}

Status SyncRun::CloseJob(const Job& j, std::string_view reason, bool permanent) {
  SHOTSYNC_RETURN_IF_ERROR(db_->FailJob(j.job_id, reason, permanent));
  if (!SharedUsable()) return Status::Ok();
  if (Status st = shared_->Release(targets_[j.root_index].album, j.rel_path, owner_.token); !st.ok()) {
    LoseShared(st);  // the claim runs out with our lease
  }
  return Status::Ok();
}

}  // namespace shotsync::upload
