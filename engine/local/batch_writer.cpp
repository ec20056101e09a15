#include "local/batch_writer.hpp"

namespace shotsync::local {

Status BatchWriter::Put(FileRecord& row) {
  std::lock_guard lock(mu_);
  SHOTSYNC_RETURN_IF_ERROR(OpenLocked());
  SHOTSYNC_RETURN_IF_ERROR(m_.PutFile(row));
  ++rows_;
  return MaybeCommitLocked();
}

Status BatchWriter::Missing(std::int64_t root_id, std::string_view rel) {
  std::lock_guard lock(mu_);
  SHOTSYNC_RETURN_IF_ERROR(OpenLocked());
  SHOTSYNC_RETURN_IF_ERROR(m_.MarkMissing(root_id, rel));
  ++rows_;
  return MaybeCommitLocked();
}

Status BatchWriter::Flush() {
  std::lock_guard lock(mu_);
  if (!open_) return Status::Ok();
  open_ = false;
  return m_.CommitBatch();
}

Status BatchWriter::OpenLocked() {
  if (open_) return Status::Ok();
  SHOTSYNC_RETURN_IF_ERROR(m_.BeginBatch());
  open_ = true;
  rows_ = 0;
  opened_ = std::chrono::steady_clock::now();
  return Status::Ok();
}

Status BatchWriter::MaybeCommitLocked() {
  if (!open_) return Status::Ok();
  // Up to 256 rows or 100 ms per transaction, less when a claim, a done row
  // or a throttle token waits for the write turn (the first uploads of a
  // new library waited for the plan's first batch).
  if (rows_ < 256 && std::chrono::steady_clock::now() - opened_ < std::chrono::milliseconds(100) &&
      !m_.WriteWanted()) {
    return Status::Ok();
  }
  open_ = false;
  return m_.CommitBatch();
}

}  // namespace shotsync::local
