// Claim: a planned upload or revision becomes a job, claimed in the manifest
// (claimer_ thread, group commit) before a byte is sent.
#include "upload/sync_run.hpp"

#include "shotsync/hasher.hpp"

namespace shotsync::upload {

void SyncRun::OnItem(const PlanItem& item) {
  Emit({SyncEvent::kPlanned, &item, item.abs_path, item.file.size, item.reason});
  if (item.action == Action::kConflict) {
    std::lock_guard lock(mu_);
    report_.failures.push_back({item.abs_path, item.reason, false});
  }
  if (options_.dry_run || Stopping(false)) return;
  if (item.action == Action::kRejected && !options_.files.empty()) {
    // push names its files: say why one is not sent (a sync's plan reports these itself)
    std::lock_guard lock(mu_);
    report_.failures.push_back({item.abs_path, item.reason, true});
  }
  if (item.action != Action::kUpload && item.action != Action::kRevision) return;
  const Target& t = targets_[item.root_index];
  Job j;
  j.file_id = item.file.id;
  j.root_index = item.root_index;
  j.abs_path = item.abs_path;
  j.rel_path = item.file.rel_path;
  j.hash = item.file.hash;
  j.size = item.file.size;
  j.mtime_ns = item.file.mtime_ns;
  j.inode = item.file.inode;
  if (!t.status.ok()) {
    // push: its target's one line was said; the file's outcome names it.
    std::lock_guard lock(mu_);
    ++report_.failed;
    report_.failures.push_back({j.abs_path, t.status.message(), false});
    return;
  }
  j.watermark = index_.Watermark(t.album);
  {
    std::lock_guard lock(mu_);
    ++outstanding_;
  }
  Claim(std::move(j), SteadyClock::now());
}

// Claims the file in the manifest and sends it. Holds one outstanding_.
// Upload or revision is decided by the claim, from the manifest as it is
// now: another process may have sent this file since it was planned.
// Claims go through claimer_: the files queued meanwhile are claimed in
// one durable transaction (one log sync for the group, not one per file).
void SyncRun::Claim(Job j, SteadyClock::time_point first_try) {
  (void)claimer_.Add({std::move(j), first_try, std::nullopt});
}

Status SyncRun::CommitClaims(std::vector<Pending>& batch) {
  if (Stopping(false)) return Status::Ok();
  std::vector<ClaimRequest> requests;
  requests.reserve(batch.size());
  for (const Pending& p : batch) {
    requests.push_back({p.job.file_id, p.job.hash, p.job.size, p.job.watermark, p.job.mtime_ns, p.job.inode});
  }
  SHOTSYNC_ASSIGN_OR_RETURN(std::vector<Result<JobClaim>> claims, db_->BeginJobs(requests, owner_));
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i].claim = std::move(claims[i]);
  return ClaimShared(batch);
}

// Holds one outstanding_, given back here or when the transfer ends.
void SyncRun::AfterClaim(Pending& p, const Status& committed) {
  if (!committed.ok()) {
    SetFatal(committed);
    return Done();
  }
  if (!p.claim) return Done();  // stopping
  Job& j = p.job;
  const Result<JobClaim>& claim = *p.claim;
  if (!claim.ok()) {
    const Code c = claim.status().code();
    const bool waited_enough =
        SteadyClock::now() - p.first_try > std::chrono::duration<double>(options_.busy_wait_s);
    if (c == Code::kBusy && !options_.files.empty() && !waited_enough) {
      // push: another process is sending this file; once it is done this
      // content may still differ (a newer export), so ask again.
      scheduler_.At(SteadyClock::now() + std::chrono::milliseconds(200),
                    [this, j = std::move(j), first_try = p.first_try]() mutable { Claim(std::move(j), first_try); });
      return;
    }
    if (c == Code::kAlreadyDone || c == Code::kBusy) {
      {
        std::lock_guard lock(mu_);
        ++report_.elsewhere;
      }
      Emit({SyncEvent::kDone, nullptr, j.abs_path, 0, claim.status().message()});
      return Done();
    }
    if (c == Code::kConflict) {
      AddFailure(j, j.abs_path + ": " + claim.status().message(), false);
      return Done();
    }
    SetFatal(claim.status());
    return Done();
  }
  if (claim->needs_hash) return HashThenClaim(std::move(j), p.first_try);
  j.job_id = claim->job_id;
  j.hash = claim->hash;
  j.hash_on_send = j.hash.empty();
  j.kind = claim->kind;
  j.photo_id = claim->photo_id;
  j.started_at = WallSeconds();
  if (p.reconcile) {
    // A dead host's claim: looked up with the run's other doubtful jobs.
    j.settle_at = SteadyClock::now() + std::chrono::seconds(config_.reconcile_delay);
    std::lock_guard lock(mu_);
    ambiguous_.push_back(std::move(j));
    --outstanding_;
    cv_.notify_all();
    return;
  }
  Send(std::move(j));
}

// A file planned unread whose row another plan rewrote since (a newer
// version): read it now, as the plan would have, and claim it again with
// its hash (the claim then tells upload, revision or already sent).
void SyncRun::HashThenClaim(Job j, SteadyClock::time_point first_try) {
  scheduler_.At(SteadyClock::now(), [this, j = std::move(j), first_try]() mutable {
    auto hashed = HashFile(j.abs_path);
    if (!hashed.ok() || hashed->changed) {
      AddFailure(j, hashed.ok() ? j.abs_path + ": changed while being read; the next run sends it"
                                : hashed.status().message(), false);
      return Done();
    }
    j.hash = hashed->hash;
    j.size = hashed->stat.size;
    j.mtime_ns = hashed->stat.mtime_ns;
    j.inode = hashed->stat.inode;
    Claim(std::move(j), first_try);
  });
}

}  // namespace shotsync::upload
