// The roots table: one row per configured root, with the Shootbin project and
// album it sends to (docs/architecture.md §4); and the files of a root whose
// rejection the user acknowledged.
#include <mutex>
#include <string>

#include "store/manifest_impl.hpp"

namespace shotsync {

namespace {

using sql::Blob;
using sql::Stmt;

constexpr char kUpsertRoot[] =
    "INSERT INTO roots(path, project, album) VALUES(?1, ?2, ?3) "
    "ON CONFLICT(path) DO UPDATE SET project = excluded.project, album = excluded.album, "
    "remote_project_id = CASE WHEN project = excluded.project AND album = excluded.album "
    "THEN remote_project_id ELSE 0 END, "
    "remote_album_id = CASE WHEN project = excluded.project AND album = excluded.album "
    "THEN remote_album_id ELSE 0 END "
    "RETURNING id";
constexpr char kRootByPath[] = "SELECT id, project, album FROM roots WHERE path = ?1";
constexpr char kRoots[] =
    "SELECT id, path, project, album, remote_project_id, remote_album_id FROM roots ORDER BY id";
constexpr char kSetRootTarget[] =
    "UPDATE roots SET remote_project_id = ?2, remote_album_id = ?3 WHERE id = ?1";
constexpr char kAcknowledge[] =
    "INSERT INTO acknowledged(root_id, rel_path, at) VALUES(?1, ?2, ?3) "
    "ON CONFLICT(root_id, rel_path) DO UPDATE SET at = excluded.at";
constexpr char kUnacknowledge[] = "DELETE FROM acknowledged WHERE root_id = ?1 AND rel_path = ?2";
constexpr char kAcknowledgedFiles[] = "SELECT root_id, rel_path, at FROM acknowledged ORDER BY root_id, rel_path";

}  // namespace

Result<std::int64_t> Manifest::UpsertRoot(const RootRecord& root) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::int64_t id = 0;
  {
    // Usually the root is there as configured: no write transaction then.
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kRootByPath));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(Blob{root.path}));
    SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
    if (row && st->Text(1) == root.project && st->Text(2) == root.album) return st->Int64(0);
  }
  SHOTSYNC_RETURN_IF_ERROR(impl_->Write([&]() -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kUpsertRoot));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(Blob{root.path}, root.project, root.album));
    SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return Status::Internal(impl_->path + ": upsert root returned no id");
    id = st->Int64(0);
    return {};
  }));
  return id;
}

Result<std::vector<RootRecord>> Manifest::Roots() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kRoots));
  return Impl::Rows<RootRecord>(*st, [](Stmt& r) {
    return RootRecord{r.Int64(0), r.Bytes(1), r.Text(2), r.Text(3), r.Int64(4), r.Int64(5)};
  });
}

Status Manifest::SetRootTarget(std::int64_t root_id, std::int64_t project_id, std::int64_t album_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write([&]() -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kSetRootTarget));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(root_id, project_id, album_id));
    return st->Run();
  });
}

Status Manifest::Acknowledge(std::int64_t root_id, std::string_view rel_path) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write([&]() -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kAcknowledge));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(root_id, Blob{rel_path}, manifest_internal::NowUnix()));
    return st->Run();
  }, /*durable=*/true);
}

Result<bool> Manifest::Unacknowledge(std::int64_t root_id, std::string_view rel_path) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  bool removed = false;
  SHOTSYNC_RETURN_IF_ERROR(impl_->Write([&]() -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kUnacknowledge));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(root_id, Blob{rel_path}));
    SHOTSYNC_RETURN_IF_ERROR(st->Run());
    removed = impl_->db.Changes() > 0;
    return {};
  }, /*durable=*/true));
  return removed;
}

Result<std::vector<Manifest::Acknowledged>> Manifest::AcknowledgedFiles() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kAcknowledgedFiles));
  return Impl::Rows<Acknowledged>(*st, [](Stmt& r) { return Acknowledged{r.Int64(0), r.Bytes(1), r.Int64(2)}; });
}

}  // namespace shotsync
