// Recorder: the one thread that writes what the transfer loop learns. The
// curl loop only queues (Record); recorder_ writes each group in order (the
// answered photos in one transaction), and only then counts each result in
// the report and gives its outstanding_ back (Done): whatever the report
// says, the manifest already holds.
#include "upload/sync_run.hpp"

#include "shotsync/hasher.hpp"

#include <map>
#include <utility>
#include <vector>

namespace shotsync::upload {

Status SyncRun::Finished(Job& j, std::int64_t photo_id, bool reconciled) {
  // Claimed unread, and what was sent is unknown (reconciled): the file's
  // hash if it is still the version planned, else none (the next plan revises).
  if (j.hash.empty()) j.hash = HashIfStill(j.abs_path, {j.size, j.mtime_ns, j.inode});
  SHOTSYNC_RETURN_IF_ERROR(db_->FinishJob(j.job_id, photo_id, j.fit_quality, j.hash));
  const Job* jobs[] = {&j};
  FinishShared(jobs, std::span<const std::int64_t>(&photo_id, 1));
  Recorded(j, reconciled);
  return Status::Ok();
}

// After the job's done row is committed.
void SyncRun::Recorded(const Job& j, bool reconciled) {
  {
    std::lock_guard lock(mu_);
    (j.kind == JobKind::kUpload ? report_.uploaded : report_.revised) += 1;
    if (reconciled) ++report_.reconciled;
    report_.bytes_sent += j.size;
  }
  SyncEvent done{SyncEvent::kDone, nullptr, j.abs_path, j.size, reconciled ? "found on the server" : ""};
  done.revision = j.kind == JobKind::kRevision;
  Emit(done);
}

// Any thread but the recorder's. A failure that comes after the recorder
// finished (a late task while stopping) is written here instead, as before.
void SyncRun::Record(Recording r) {
  std::vector<Recording> late;
  if (std::holds_alternative<Failed>(r)) late.push_back(r);
  if (recorder_.Add(std::move(r)) || late.empty()) return;
  const Status st = CommitRecordings(late);
  AfterRecorded(late.front(), st);
}

// One transaction for what arrived meanwhile: what the answers taught the
// album index, then the answered jobs' done rows, whose write is durable and
// commits the batch (one commit where there were two, with the pages both
// touch written once); then the failed jobs' rows (their errors are not the
// run's: the job stays for a later run, as it was).
Status SyncRun::CommitRecordings(std::vector<Recording>& batch) {
  SHOTSYNC_RETURN_IF_ERROR(db_->BeginBatch());
  const Status st = WriteRecordings(batch);
  const Status committed = db_->CommitBatch();
  return st.ok() ? committed : st;
}

Status SyncRun::WriteRecordings(std::vector<Recording>& batch) {
  // The album holds these photos now, whatever becomes of the done rows.
  std::map<std::pair<std::int64_t, std::int64_t>, std::vector<AlbumIndex::Answer>> learnt;
  std::vector<FinishedJob> rows;
  std::vector<const Job*> jobs;
  std::vector<std::int64_t> ids;
  for (const Recording& r : batch) {
    const auto* a = std::get_if<Answered>(&r);
    if (!a) continue;
    rows.push_back({a->job.job_id, a->photo.id, a->job.fit_quality, a->job.hash});
    jobs.push_back(&a->job);
    ids.push_back(a->photo.id);
    if (a->job.kind != JobKind::kUpload) continue;
    const Target& t = targets_[a->job.root_index];
    learnt[{t.project, t.album}].push_back({a->job.rel_path, &a->photo});
  }
  for (const auto& [target, answers] : learnt) index_.Learned(target.first, target.second, answers);
  Status st = rows.empty() ? Status::Ok() : db_->FinishJobs(rows);
  if (st.ok() && shared_) FinishShared(jobs, ids);
  for (const Recording& r : batch) {
    const auto* f = std::get_if<Failed>(&r);
    if (!f) continue;
    if (f->unpin) {
      // The album (or photo) is gone: unpin the ids so that the next run
      // looks them up again, and drop the album's index.
      (void)db_->SetRootTarget(targets_[f->job.root_index].root_id, 0, 0);
      (void)db_->ForgetAlbumIndex(targets_[f->job.root_index].album);
      if (SharedUsable()) (void)shared_->ForgetListing(targets_[f->job.root_index].album);
    }
    (void)CloseJob(f->job, f->reason, f->permanent);
  }
  return st;
}

void SyncRun::AfterRecorded(Recording& r, const Status& committed) {
  if (auto* a = std::get_if<Answered>(&r)) return AfterAnswered(*a, committed);
  AfterFailed(std::get<Failed>(r));
}

void SyncRun::AfterAnswered(Answered& a, const Status& committed) {
  // Not recorded: the job stays in flight and the next run finds the photo.
  if (committed.ok()) Recorded(a.job, false); else SetFatal(committed);
  Done();
}

void SyncRun::AfterFailed(Failed& f) {
  if (f.unsent) {
    std::lock_guard lock(mu_);
    ++report_.failed;
  }
  if (f.report) AddFailure(f.job, *f.report, f.permanent);
  if (!f.fatal.ok()) SetFatal(f.fatal);
  Done();
}

}  // namespace shotsync::upload
