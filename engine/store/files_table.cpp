// The files table: one row per file seen under a root, its content hash and
// the Shootbin photo it is bound to (docs/architecture.md §4-5).
#include <sqlite3.h>

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "store/manifest_impl.hpp"

namespace shotsync {

std::string_view FileStateName(FileState s) noexcept {
  switch (s) {
    case FileState::kNew:
      return "new";
    case FileState::kSynced:
      return "synced";
    case FileState::kMissing:
      return "missing";
    case FileState::kRejected:
      return "rejected";
  }
  return "unknown";
}

namespace {

using manifest_internal::NowUnix;
using manifest_internal::ParseName;
using sql::Blob;
using sql::Stmt;

constexpr char kGetFile[] =
    "SELECT " SHOTSYNC_FILE_COLS " FROM files WHERE root_id = ?1 AND dir = ?2 AND name = ?3";
constexpr char kGetFileById[] = "SELECT " SHOTSYNC_FILE_COLS " FROM files WHERE id = ?1";
constexpr char kFilesInDir[] =
    "SELECT " SHOTSYNC_FILE_COLS " FROM files WHERE root_id = ?1 AND dir = ?2 ORDER BY name";
// A skip scan over the (root_id, dir, name) index: one seek per folder, not
// a visit of every row (a no-op plan of a million files asks once per root).
constexpr char kDirs[] =
    "WITH RECURSIVE d(dir) AS ("
    " SELECT (SELECT min(dir) FROM files WHERE root_id = ?1)"
    " UNION ALL SELECT (SELECT min(dir) FROM files WHERE root_id = ?1 AND dir > d.dir) FROM d"
    " WHERE d.dir IS NOT NULL) "
    "SELECT dir FROM d WHERE dir IS NOT NULL AND EXISTS(SELECT 1 FROM files "
    "WHERE root_id = ?1 AND files.dir = d.dir AND state <> 'missing')";
// rel_path order: dir || '/' || name compared as bytes. Both branches must be
// BLOBs: SQLite sorts every TEXT value before every BLOB.
constexpr char kAllFiles[] = "SELECT " SHOTSYNC_FILE_COLS
                             " FROM files WHERE ?1 = 0 OR root_id = ?1 "
                             "ORDER BY root_id, CASE WHEN dir = x'' THEN CAST(name AS BLOB) "
                             "ELSE CAST(dir || x'2f' || name AS BLOB) END";
constexpr char kSyncedByHash[] =
    "SELECT " SHOTSYNC_FILE_COLS
    " FROM files WHERE hash = ?1 AND hash <> '' "
    "AND state = 'synced' AND remote_photo_id IS NOT NULL ORDER BY id LIMIT 1";
// An update never writes remote_photo_id / remote_hash: only FinishJob (and
// ForgetRemote) do, in their own transactions. A planner's row read before
// another process (a hook's `push`) finished that file must not undo it. For
// the same reason new/synced is derived from the row's remote columns.
#define SHOTSYNC_KEEP_SYNC_STATE(state, hash)                                      \
  "CASE WHEN " state " IN ('new', 'synced') THEN CASE WHEN remote_photo_id IS NOT " \
  "NULL AND remote_hash = " hash " THEN 'synced' ELSE 'new' END ELSE " state " END"
constexpr char kInsertFile[] =
    "INSERT INTO files(root_id, dir, name, size, mtime_ns, inode, hash, remote_photo_id, "
    "remote_hash, state, reason, updated_at, rejected_by) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
    "?9, ?10, ?11, ?12, ?13) "
    "ON CONFLICT(root_id, dir, name) DO UPDATE SET size = excluded.size, "
    "mtime_ns = excluded.mtime_ns, inode = excluded.inode, hash = excluded.hash, "
    "state = " SHOTSYNC_KEEP_SYNC_STATE("excluded.state", "excluded.hash") ", "
    "reason = excluded.reason, updated_at = excluded.updated_at, rejected_by = excluded.rejected_by "
    "RETURNING id";
constexpr char kUpdateFile[] =
    "UPDATE files SET root_id = ?1, dir = ?2, name = ?3, size = ?4, mtime_ns = ?5, inode = ?6, "
    "hash = ?7, state = " SHOTSYNC_KEEP_SYNC_STATE("?10", "?7") ", reason = ?11, "
    "updated_at = ?12, rejected_by = ?13 WHERE id = ?14";  // ?8, ?9 (remote columns) bound but unused: see above
constexpr char kMarkMissing[] =
    "UPDATE files SET state = 'missing', updated_at = ?4 "
    "WHERE root_id = ?1 AND dir = ?2 AND name = ?3";
constexpr char kFilesInState[] =
    "SELECT " SHOTSYNC_FILE_COLS " FROM files WHERE state = ?1 ORDER BY updated_at DESC, id DESC LIMIT ?2";

// Binding files to the photos of their album (album_table.cpp holds the album).
constexpr char kFileWithPhoto[] =
    "SELECT " SHOTSYNC_FILE_COLS " FROM files WHERE remote_photo_id = ?1 ORDER BY id LIMIT 1";
constexpr char kBoundWithContent[] =
    "SELECT " SHOTSYNC_FILE_COLS " FROM files WHERE hash = ?1 AND size = ?2 "
    "AND remote_photo_id IS NOT NULL ORDER BY id";
// Also ForgetRemote's: a file forgets its photo.
constexpr char kUnbindFile[] =
    "UPDATE files SET remote_photo_id = NULL, remote_hash = '', "
    "state = CASE WHEN state = 'synced' THEN 'new' ELSE state END, updated_at = ?2 WHERE id = ?1";
constexpr char kAnyBoundOfSize[] =
    "SELECT EXISTS(SELECT 1 FROM files WHERE size = ?1 AND remote_photo_id IS NOT NULL)";
constexpr char kBindFile[] =
    "UPDATE files SET remote_photo_id = ?2, remote_hash = CASE WHEN ?4 = '' THEN hash ELSE ?4 END, "
    "hash = CASE WHEN hash = '' THEN ?4 ELSE hash END, state = 'synced', reason = '', "
    "rejected_by = '', updated_at = ?3 WHERE id = ?1 AND (remote_photo_id IS NULL OR remote_photo_id = ?2)";

struct PathParts {
  std::string_view dir, name;
};

Result<PathParts> SplitRelPath(std::string_view rel) {
  if (rel.empty() || rel.front() == '/' || rel.back() == '/') {
    return Status::Invalid("manifest: bad relative path \"" + std::string(rel) + "\"");
  }
  std::size_t slash = rel.rfind('/');
  if (slash == std::string_view::npos) return PathParts{{}, rel};
  return PathParts{rel.substr(0, slash), rel.substr(slash + 1)};
}

// One allocation per row: a million-file plan reads every row.
std::string JoinRelPath(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out;
  out.reserve(dir.size() + 1 + name.size());
  out += dir;
  out += '/';
  out += name;
  return out;
}

constexpr FileState kFileStates[] = {FileState::kNew, FileState::kSynced, FileState::kMissing,
                                     FileState::kRejected};

}  // namespace

// --- Row readers -------------------------------------------------------------

Result<FileRecord> Manifest::Impl::ReadFile(Stmt& st) {
  FileRecord r;
  r.id = st.Int64(0);
  r.root_id = st.Int64(1);
  r.rel_path = JoinRelPath(st.BytesView(2), st.BytesView(3));
  r.size = st.UInt64(4);
  r.mtime_ns = st.Int64(5);
  r.inode = st.UInt64(6);
  r.hash = st.Text(7);
  r.remote_photo_id = st.OptInt64(8);
  r.remote_hash = st.Text(9);
  std::string state = st.Text(10);
  if (!ParseName(state, kFileStates, &FileStateName, &r.state)) {
    return Status::Corrupt("manifest: file " + std::to_string(r.id) + " has unknown state \"" +
                           state + "\"");
  }
  r.reason = st.Text(11);
  r.rejected_by = st.Text(12);
  return r;
}

Result<std::optional<FileRecord>> Manifest::Impl::QueryOneFile(Lease& st) {
  SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) return std::optional<FileRecord>();
  SHOTSYNC_ASSIGN_OR_RETURN(FileRecord rec, ReadFile(*st));
  return std::optional<FileRecord>(std::move(rec));
}

// --- Files -------------------------------------------------------------------

Result<std::optional<FileRecord>> Manifest::GetFile(std::int64_t root_id,
                                                    std::string_view rel_path) {
  SHOTSYNC_ASSIGN_OR_RETURN(PathParts p, SplitRelPath(rel_path));
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kGetFile));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(root_id, Blob{p.dir}, Blob{p.name}));
  return impl_->QueryOneFile(st);
}

Result<std::optional<FileRecord>> Manifest::GetFileById(std::int64_t file_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kGetFileById));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(file_id));
  return impl_->QueryOneFile(st);
}

Result<std::vector<FileRecord>> Manifest::FilesInDir(std::int64_t root_id, std::string_view dir) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFilesInDir));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(root_id, Blob{dir}));
  return Impl::Rows<FileRecord>(*st, Impl::ReadFile);
}

Status Manifest::ForEachFileInDir(std::int64_t root_id, std::string_view dir,
                                  const std::function<void(const FileRecord&)>& fn) {
  // The directory's rows are read first and fn is called without the lock
  // and with no statement open, so fn may call this Manifest (MarkMissing,
  // PutFile). Memory is bounded by the largest directory, not the tree.
  SHOTSYNC_ASSIGN_OR_RETURN(std::vector<FileRecord> rows, FilesInDir(root_id, dir));
  for (const FileRecord& rec : rows) fn(rec);
  return {};
}

Result<std::vector<std::string>> Manifest::Dirs(std::int64_t root_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kDirs));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(root_id));
  return Impl::Rows<std::string>(*st, [](Stmt& r) { return r.Bytes(0); });
}

Status Manifest::ForEachFile(std::int64_t root_id,
                             const std::function<void(const FileRecord&)>& fn) {
  // Streams through a second, read-only connection: its snapshot does not
  // pin the main connection, so fn (and other threads) may write meanwhile
  // without SQLITE_BUSY_SNAPSHOT. An open batch is committed first so that
  // its rows are seen.
  std::unique_lock<std::mutex> lock(impl_->mu);
  SHOTSYNC_RETURN_IF_ERROR(impl_->CommitOpenBatch());
  if (!impl_->reader) {
    SHOTSYNC_ASSIGN_OR_RETURN(sql::Db r, sql::Db::Open(impl_->path, SQLITE_OPEN_READONLY));
    sqlite3_busy_timeout(r.get(), impl_->options.busy_timeout_ms);
    impl_->reader.emplace(std::move(r));
  }
  SHOTSYNC_ASSIGN_OR_RETURN(Stmt st, impl_->reader->Prepare(kAllFiles));
  SHOTSYNC_RETURN_IF_ERROR(st.BindAll(root_id));
  struct Relock {
    std::unique_lock<std::mutex>& l;
    ~Relock() { l.lock(); }
  };
  for (;;) {
    SHOTSYNC_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return {};
    SHOTSYNC_ASSIGN_OR_RETURN(FileRecord rec, Impl::ReadFile(st));
    lock.unlock();
    Relock relock{lock};  // st is finalized under the lock, even if fn throws
    fn(rec);
  }
}

Result<std::optional<FileRecord>> Manifest::FindSyncedByHash(std::string_view hash) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kSyncedByHash));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(hash));
  return impl_->QueryOneFile(st);
}

Status Manifest::PutFile(FileRecord& record) {
  SHOTSYNC_ASSIGN_OR_RETURN(PathParts p, SplitRelPath(record.rel_path));
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::int64_t now = NowUnix();
  std::int64_t id = record.id;
  SHOTSYNC_RETURN_IF_ERROR(impl_->Write([&]() -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(id == 0 ? kInsertFile : kUpdateFile));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(record.root_id, Blob{p.dir}, Blob{p.name}, record.size,
                                         record.mtime_ns, record.inode, record.hash,
                                         record.remote_photo_id, record.remote_hash,
                                         FileStateName(record.state), record.reason, now));
    SHOTSYNC_RETURN_IF_ERROR(st->Bind(13, record.rejected_by));
    if (id != 0) {
      SHOTSYNC_RETURN_IF_ERROR(st->Bind(14, id));
      SHOTSYNC_RETURN_IF_ERROR(st->Run());
      if (impl_->db.Changes() == 0) {
        return Status::NotFound(impl_->path + ": no file with id " + std::to_string(id));
      }
      return {};
    }
    SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return Status::Internal(impl_->path + ": insert file returned no id");
    id = st->Int64(0);
    return {};
  }));
  record.id = id;
  return {};
}

Status Manifest::MarkMissing(std::int64_t root_id, std::string_view rel_path) {
  SHOTSYNC_ASSIGN_OR_RETURN(PathParts p, SplitRelPath(rel_path));
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write([&]() -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kMarkMissing));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(root_id, Blob{p.dir}, Blob{p.name}, NowUnix()));
    SHOTSYNC_RETURN_IF_ERROR(st->Run());
    if (impl_->db.Changes() == 0) {
      return Status::NotFound(impl_->path + ": no file \"" + std::string(rel_path) + "\" in root " +
                              std::to_string(root_id));
    }
    return {};
  });
}

Result<std::vector<FileRecord>> Manifest::FilesInState(FileState state, int limit) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFilesInState));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(FileStateName(state), limit));
  return Impl::Rows<FileRecord>(*st, Impl::ReadFile);
}

// --- Remote binding ----------------------------------------------------------

Result<std::optional<FileRecord>> Manifest::FileWithPhoto(std::int64_t photo_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFileWithPhoto));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(photo_id));
  return impl_->QueryOneFile(st);
}

Result<std::vector<FileRecord>> Manifest::BoundWithContent(std::string_view hash, std::uint64_t size) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kBoundWithContent));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(hash, size));
  return Impl::Rows<FileRecord>(*st, Impl::ReadFile);
}

Result<bool> Manifest::AnyBoundOfSize(std::uint64_t size) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kAnyBoundOfSize));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(size));
  SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
  return row && st->Int64(0) != 0;
}

Status Manifest::BindRemote(std::int64_t file_id, std::int64_t photo_id, std::int64_t from_file_id,
                            std::string_view hash) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write(
      [&]() -> Status {
        const std::int64_t now = NowUnix();
        {
          SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFileWithPhoto));
          SHOTSYNC_RETURN_IF_ERROR(st->BindAll(photo_id));
          SHOTSYNC_ASSIGN_OR_RETURN(std::optional<FileRecord> holder, impl_->QueryOneFile(st));
          if (holder && holder->id != file_id && holder->id != from_file_id) {
            return Status(Code::kConflict, "photo " + std::to_string(photo_id) + " is already bound to " +
                                               holder->rel_path);
          }
        }
        if (from_file_id != 0) {
          SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kUnbindFile));
          SHOTSYNC_RETURN_IF_ERROR(st->BindAll(from_file_id, now));
          SHOTSYNC_RETURN_IF_ERROR(st->Run());
        }
        SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kBindFile));
        SHOTSYNC_RETURN_IF_ERROR(st->BindAll(file_id, photo_id, now, hash));
        SHOTSYNC_RETURN_IF_ERROR(st->Run());
        if (impl_->db.Changes() == 0) {
          return Status(Code::kConflict, "file " + std::to_string(file_id) + " is bound to another photo");
        }
        return {};
      },
      /*durable=*/true);
}

Status Manifest::ForgetRemote(std::int64_t file_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write([&]() -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kUnbindFile));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(file_id, NowUnix()));
    SHOTSYNC_RETURN_IF_ERROR(st->Run());
    if (impl_->db.Changes() == 0) return Status::NotFound(impl_->path + ": no file " + std::to_string(file_id));
    return {};
  });
}

}  // namespace shotsync
