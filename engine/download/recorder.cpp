// Recording (main thread): a renamed file is counted and queued as a done
// row; Flush makes the renames durable (directory fsync) and then writes the
// done and failed rows in one manifest transaction. This is the only place
// the pull run writes download rows.

#include "download/pull_run.hpp"

#include "shotsync/fs.hpp"

namespace shotsync::download {

void PullRun::OnFinished(Task& t, const Status& st) {
  --finishing_;
  if (!st.ok()) {
    if (st.code() == Code::kIo) {
      t.state = Task::kQueued;
      return SetFatal(Status(Code::kIo, st.message() + " (partial files are kept for the next run)"));
    }
    Truncate(t);
    return Retry(t, st.message());
  }
  t.state = Task::kDone;
  ++report_.downloaded;
  done_rows_.push_back(DoneRow(t, t.expected));
  dirty_dirs_.insert(t.dir);
  Emit({PullEvent::kDownloaded, t.final_path, t.expected, ""});
}

DownloadRecord PullRun::DoneRow(const Task& t, std::uint64_t size) const {
  return {t.remote_id, models_[t.model].member_id, models_[t.model].id, t.final_path, size, size,
          DownloadState::kDone, ""};
}

// Makes the renames durable (directory fsync), then records the ids as done.
void PullRun::Flush() {
  last_flush_ = Clock::now();
  if (done_rows_.empty() && failed_rows_.empty()) return;
  for (const std::string& d : dirty_dirs_) (void)SyncFolder(d);
  dirty_dirs_.clear();
  Status st = db_.BeginBatch();
  for (const DownloadRecord& r : done_rows_) {
    if (st.ok()) st = db_.PutDownload(r);
  }
  for (const DownloadRecord& r : failed_rows_) {
    if (st.ok()) st = db_.PutDownload(r);
  }
  Status commit = db_.CommitBatch();
  if (st.ok()) st = commit;
  if (!st.ok()) SetFatal(st.WithContext("recording downloads in the manifest"));
  if (st.ok()) FinishShared(done_rows_);
  done_rows_.clear();
  failed_rows_.clear();
}

}  // namespace shotsync::download
