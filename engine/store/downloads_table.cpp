// The downloads table: one row per HeadshotPro image being pulled, with how
// many of its bytes are on disk (docs/architecture.md §5).
#include <mutex>
#include <string>

#include "store/manifest_impl.hpp"

namespace shotsync {

std::string_view DownloadStateName(DownloadState s) noexcept {
  switch (s) {
    case DownloadState::kPending:
      return "pending";
    case DownloadState::kPartial:
      return "partial";
    case DownloadState::kDone:
      return "done";
    case DownloadState::kFailed:
      return "failed";
  }
  return "unknown";
}

namespace {

using manifest_internal::NowUnix;
using manifest_internal::OneLine;
using manifest_internal::ParseName;
using sql::Blob;

constexpr char kGetDownload[] =
    "SELECT remote_id, member_id, model_id, dest_path, size, bytes_done, state, last_error "
    "FROM downloads WHERE remote_id = ?1";
constexpr char kPutDownload[] =
    "INSERT INTO downloads(remote_id, member_id, model_id, dest_path, size, bytes_done, state, "
    "last_error, updated_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
    "ON CONFLICT(remote_id) DO UPDATE SET member_id = excluded.member_id, "
    "model_id = excluded.model_id, dest_path = excluded.dest_path, size = excluded.size, "
    "bytes_done = excluded.bytes_done, state = excluded.state, last_error = excluded.last_error, "
    "updated_at = excluded.updated_at";

constexpr char kDoneDownloads[] =
    "SELECT remote_id, dest_path, size FROM downloads WHERE state = 'done' ORDER BY remote_id";

constexpr DownloadState kDownloadStates[] = {DownloadState::kPending, DownloadState::kPartial,
                                             DownloadState::kDone, DownloadState::kFailed};

}  // namespace

Result<std::optional<DownloadRecord>> Manifest::GetDownload(std::string_view remote_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kGetDownload));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(remote_id));
  SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) return std::optional<DownloadRecord>();
  DownloadRecord d;
  d.remote_id = st->Text(0);
  d.member_id = st->Text(1);
  d.model_id = st->Text(2);
  d.dest_path = st->Bytes(3);
  d.size = st->UInt64(4);
  d.bytes_done = st->UInt64(5);
  std::string state = st->Text(6);
  if (!ParseName(state, kDownloadStates, &DownloadStateName, &d.state)) {
    return Status::Corrupt(impl_->path + ": download " + d.remote_id + " has unknown state \"" +
                           state + "\"");
  }
  d.last_error = st->Text(7);
  return std::optional<DownloadRecord>(std::move(d));
}

Status Manifest::PutDownload(const DownloadRecord& record) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write([&]() -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kPutDownload));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(
        record.remote_id, record.member_id, record.model_id, Blob{record.dest_path}, record.size,
        record.bytes_done, DownloadStateName(record.state), OneLine(record.last_error), NowUnix()));
    return st->Run();
  });
}

Result<std::vector<DownloadRecord>> Manifest::DoneDownloads() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kDoneDownloads));
  return Impl::Rows<DownloadRecord>(*st, [](sql::Stmt& r) {
    DownloadRecord d;
    d.remote_id = r.Text(0);
    d.dest_path = r.Bytes(1);
    d.size = r.UInt64(2);
    d.state = DownloadState::kDone;
    return d;
  });
}

}  // namespace shotsync
