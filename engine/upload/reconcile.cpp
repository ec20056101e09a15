// Reconcile: the exactly-once rule. A job that may have reached the server
// (in flight when its process died, or sent without a clear answer) is never
// simply sent again: the server is asked first (the album's new photos for
// an upload, the photo for a revision). Found: it is done, bound to that
// photo. Not found: sent again, but only after its settle time, since a
// request the server received before its client vanished may still be
// stored. No clear answer in time: it stays in flight for the next run.
// Duplicates are worse than a delay, so every doubt waits or is left.
#include "upload/sync_run.hpp"

namespace shotsync::upload {

// Jobs a process that is gone left in flight: ask the server before
// resending. Jobs of running processes (a push beside this sync) are theirs.
Status SyncRun::ReconcileUnfinished() {
  SHOTSYNC_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, db_->UnfinishedJobs());
  std::vector<Job> pending;
  for (const JobRecord& jr : jobs) {
    if (owner_.alive(jr.owner)) continue;
    auto file = db_->GetFileById(jr.file_id);
    if (!file.ok()) return file.status();
    constexpr std::size_t kNoRoot = SIZE_MAX;
    std::size_t root = kNoRoot;
    if (*file) root = RootIndexOf((*file)->root_id).value_or(kNoRoot);
    if (root != kNoRoot && !targets_[root].resolved && targets_[root].status.ok()) continue;  // push: another root
    SHOTSYNC_ASSIGN_OR_RETURN(bool mine, db_->AdoptJob(jr.id, jr.owner, owner_.token));
    if (!mine) continue;  // another process got to it first
    if (root == kNoRoot || !targets_[root].status.ok()) {
      SHOTSYNC_RETURN_IF_ERROR(db_->FailJob(jr.id, "root no longer configured or its album is unavailable", false));
      continue;
    }
    Job j;
    j.job_id = jr.id;
    j.file_id = jr.file_id;
    j.kind = jr.kind;
    j.root_index = root;
    j.rel_path = (*file)->rel_path;
    j.abs_path = config_.roots[root].path + "/" + j.rel_path;
    j.hash = jr.hash;
    j.size = jr.size;
    j.photo_id = (*file)->remote_photo_id.value_or(0);
    j.started_at = double(jr.started_at);
    j.watermark = jr.watermark;
    j.mtime_ns = jr.mtime_ns;
    j.inode = jr.inode;
    AdoptShared(j, jr.owner);
    // The owner may have died a moment ago, its last body already with the server.
    j.settle_at = SteadyClock::now() + std::chrono::seconds(config_.reconcile_delay);
    pending.push_back(std::move(j));
  }
  if (pending.empty()) return Status::Ok();
  std::vector<Job> resend;
  SHOTSYNC_RETURN_IF_ERROR(Reconcile(pending, resend));
  for (const Job& j : resend) {
    // Not on the server: the next plan sends it again (as a new job).
    SHOTSYNC_RETURN_IF_ERROR(CloseJob(j, "interrupted before the server stored it; sending again", false));
  }
  return Status::Ok();
}

// Looks up each job's result on the server. Found: done. Not found: into
// `resend`, but only once its settle time has passed: a job still settling
// is looked up again after it (so a crash or a reset costs a few seconds,
// never a duplicate). Stopped while waiting: left in flight for the next run.
Status SyncRun::Reconcile(std::vector<Job>& jobs, std::vector<Job>& resend) {
  std::vector<Job> missing;
  SHOTSYNC_RETURN_IF_ERROR(LookUp(jobs, missing));
  SteadyClock::time_point settle{};
  for (const Job& j : missing) settle = std::max(settle, j.settle_at);
  if (settle > SteadyClock::now() + std::chrono::seconds(2) && !options_.files.empty()) {
    // A hook must return fast: these stay in flight, and the next run
    // (once its owner, this process, is gone) looks for them again.
    std::lock_guard lock(mu_);
    report_.unconfirmed += std::int64_t(missing.size());
    for (const Job& j : missing) {
      report_.failures.push_back({j.abs_path, "the server may still store it (no clear answer); the next run checks", false});
    }
    return Status::Ok();
  }
  if (settle > SteadyClock::now()) {
    if (!WaitUntil(settle)) return Status::Ok();
    std::vector<Job> again;
    again.swap(missing);
    SHOTSYNC_RETURN_IF_ERROR(LookUp(again, missing));
  }
  for (Job& j : missing) resend.push_back(std::move(j));
  return Status::Ok();
}

// Sleeps until `when`; false if the run is being stopped.
bool SyncRun::WaitUntil(SteadyClock::time_point when) {
  std::unique_lock lock(mu_);
  // A stop request wakes it (the stop callbacks notify cv_).
  return !cv_.wait_until(lock, when, [&] { return Stopping(false); });
}

Status SyncRun::LookUp(std::vector<Job>& jobs, std::vector<Job>& resend) {
  std::map<std::pair<std::int64_t, std::int64_t>, std::vector<Job*>> uploads;
  for (Job& j : jobs) {
    const Target& t = targets_[j.root_index];
    if (j.kind == JobKind::kUpload) {
      uploads[{t.project, t.album}].push_back(&j);
      continue;
    }
    auto photo = client_.GetPhoto(t.project, t.album, j.photo_id);
    if (!photo.ok()) {
      if (photo.status().code() == Code::kNotFound) {
        resend.push_back(j);
        continue;
      }
      return photo.status();
    }
    if (RevisionLanded(*photo, j)) {
      SHOTSYNC_RETURN_IF_ERROR(Finished(j, j.photo_id, /*reconciled=*/true));
    } else {
      resend.push_back(j);
    }
  }
  for (auto& [target, list] : uploads) {
    // One listing of what is new in the album for all of them.
    SHOTSYNC_RETURN_IF_ERROR(index_.Relist(target.first, target.second));
    std::set<std::int64_t> taken;  // one photo answers one job
    for (Job* j : list) {
      SHOTSYNC_ASSIGN_OR_RETURN(std::vector<AlbumPhoto> created,
                                index_.Created(target.second, j->rel_path, j->watermark));
      // Oldest first: a late duplicate (if any) is not the one to bind.
      std::int64_t found = 0;
      for (auto it = created.rbegin(); it != created.rend() && found == 0; ++it) {
        if (taken.contains(it->photo_id) || (it->size && *it->size != j->size)) continue;
        SHOTSYNC_ASSIGN_OR_RETURN(std::optional<FileRecord> holder, db_->FileWithPhoto(it->photo_id));
        if (holder && holder->id != j->file_id) continue;
        found = it->photo_id;
      }
      if (found != 0) {
        taken.insert(found);
        SHOTSYNC_RETURN_IF_ERROR(Finished(*j, found, /*reconciled=*/true));
      } else {
        resend.push_back(*j);
      }
    }
  }
  return Status::Ok();
}

// After a 409 (the server refused this revision: another one of the photo
// was processing): read the photo before sending again. Gone: the photo
// was deleted. Revised since the 409 with our size: sent meanwhile (our
// content). Otherwise it is sent again.
void SyncRun::RecheckRevision(Job j) {
  const Target& t = targets_[j.root_index];
  auto photo = client_.GetPhoto(t.project, t.album, j.photo_id);
  if (!photo.ok() && photo.status().code() == Code::kNotFound) {
    (void)CloseJob(j, photo.status().message(), false);
    AddFailure(j, photo.status().message(), false);
    return Done();
  }
  if (photo.ok()) {
    const auto revised_at = ParseResetTime(photo->revision_uploaded_at, WallSeconds());
    if (revised_at && *revised_at > j.conflict_at && photo->file_size && *photo->file_size == j.size) {
      if (Status st = Finished(j, j.photo_id, /*reconciled=*/true); !st.ok()) SetFatal(st);
      return Done();
    }
  }
  Send(std::move(j));
}

bool SyncRun::RevisionLanded(const RemotePhoto& photo, const Job& j) {
  // Revised after we started sending (a few seconds of clock skew
  // allowed), with the size we sent where the server gives sizes.
  const auto revised_at = ParseResetTime(photo.revision_uploaded_at, WallSeconds());
  const bool size_ok = !photo.file_size || *photo.file_size == j.size;
  return revised_at && *revised_at >= j.started_at - 5 && size_ok;
}

}  // namespace shotsync::upload
