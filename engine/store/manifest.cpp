// The SQLite manifest (include/shotsync/manifest.hpp, docs/architecture.md §4-5).
//
// One connection per Manifest, every call under one mutex, prepared
// statements kept in a small pool (one per SQL text, more only when a
// statement is re-entered). Writes go through Impl::Write: its own
// BEGIN IMMEDIATE ... COMMIT, or a savepoint inside the open batch.
#include "shotsync/manifest.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "shotsync/version.hpp"
#include "store/sqlite.hpp"

namespace shotsync {

// --- Names -------------------------------------------------------------------

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

std::string_view JobKindName(JobKind k) noexcept {
  switch (k) {
    case JobKind::kUpload:
      return "upload";
    case JobKind::kRevision:
      return "revision";
  }
  return "unknown";
}

std::string_view JobStateName(JobState s) noexcept {
  switch (s) {
    case JobState::kPending:
      return "pending";
    case JobState::kInFlight:
      return "in_flight";
    case JobState::kDone:
      return "done";
    case JobState::kFailed:
      return "failed";
    case JobState::kRejected:
      return "rejected";
  }
  return "unknown";
}

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

using sql::Blob;
using sql::Null;
using sql::Stmt;

// --- Schema ------------------------------------------------------------------
//
// kMigrations[i] takes the schema from user_version i to i + 1. Append only:
// a released migration is never edited. All of them (plus application_id and
// user_version) run in one transaction.
//
// Paths (roots.path, files.dir, files.name, downloads.dest_path) are BLOBs so
// that names which are not UTF-8 round-trip byte for byte. files.dir is the
// rel_path up to its last '/', "" for files directly in the root.
constexpr const char* kMigrations[] = {
    // v1: initial schema.
    R"sql(
CREATE TABLE roots(
  id      INTEGER PRIMARY KEY,
  path    BLOB NOT NULL UNIQUE,
  project TEXT NOT NULL DEFAULT '',
  album   TEXT NOT NULL DEFAULT ''
);
CREATE TABLE files(
  id              INTEGER PRIMARY KEY,
  root_id         INTEGER NOT NULL REFERENCES roots(id),
  dir             BLOB NOT NULL,
  name            BLOB NOT NULL,
  size            INTEGER NOT NULL DEFAULT 0,
  mtime_ns        INTEGER NOT NULL DEFAULT 0,
  inode           INTEGER NOT NULL DEFAULT 0,
  hash            TEXT NOT NULL DEFAULT '',
  remote_photo_id INTEGER,
  remote_hash     TEXT NOT NULL DEFAULT '',
  state           TEXT NOT NULL DEFAULT 'new',
  reason          TEXT NOT NULL DEFAULT '',
  updated_at      INTEGER NOT NULL DEFAULT 0,
  UNIQUE(root_id, dir, name)
);
CREATE INDEX files_by_hash ON files(hash) WHERE hash <> '';
CREATE TABLE jobs(
  id              INTEGER PRIMARY KEY,
  file_id         INTEGER NOT NULL REFERENCES files(id),
  kind            TEXT NOT NULL,
  state           TEXT NOT NULL,
  hash            TEXT NOT NULL DEFAULT '',
  size            INTEGER NOT NULL DEFAULT 0,
  attempts        INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT NOT NULL DEFAULT '',
  remote_photo_id INTEGER,
  started_at      INTEGER NOT NULL DEFAULT 0,
  finished_at     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_file ON jobs(file_id);
CREATE INDEX jobs_unfinished ON jobs(state) WHERE state IN ('pending', 'in_flight');
CREATE INDEX jobs_failures ON jobs(finished_at) WHERE state IN ('failed', 'rejected');
CREATE TABLE downloads(
  remote_id  TEXT PRIMARY KEY,
  member_id  TEXT NOT NULL DEFAULT '',
  model_id   TEXT NOT NULL DEFAULT '',
  dest_path  BLOB NOT NULL,
  size       INTEGER NOT NULL DEFAULT 0,
  bytes_done INTEGER NOT NULL DEFAULT 0,
  state      TEXT NOT NULL DEFAULT 'pending',
  last_error TEXT NOT NULL DEFAULT '',
  updated_at INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE throttle(
  key          TEXT PRIMARY KEY,
  tokens       REAL NOT NULL,
  refilled_at  REAL NOT NULL,
  paused_until REAL NOT NULL DEFAULT 0
);
CREATE TABLE runs(
  id          INTEGER PRIMARY KEY,
  command     TEXT NOT NULL,
  pid         INTEGER NOT NULL DEFAULT 0,
  started_at  INTEGER NOT NULL,
  finished_at INTEGER NOT NULL DEFAULT 0,
  uploaded    INTEGER NOT NULL DEFAULT 0,
  revised     INTEGER NOT NULL DEFAULT 0,
  skipped     INTEGER NOT NULL DEFAULT 0,
  rejected    INTEGER NOT NULL DEFAULT 0,
  failed      INTEGER NOT NULL DEFAULT 0,
  downloaded  INTEGER NOT NULL DEFAULT 0,
  bytes       INTEGER NOT NULL DEFAULT 0,
  exit_code   INTEGER NOT NULL DEFAULT -1
);
)sql",
    // v2: jobs name the process that runs them (a `push` and a `sync` share
    // the manifest: a job in flight is only reconciled once its owner is
    // gone); roots remember their resolved Shootbin ids so that `push` sends
    // without looking them up.
    R"sql(
ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE roots ADD COLUMN remote_project_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE roots ADD COLUMN remote_album_id INTEGER NOT NULL DEFAULT 0;
)sql",
    // v3: the server's album is the truth, the manifest its cache
    // (docs/resume.md). album_index: one row per Shootbin album shotsync
    // sends to; listed_to is the largest photo id of the newest listing
    // (everything at or below it has been seen), complete once a whole
    // listing is stored; name_mode is how the server stores
    // client_original_filename (learnt from its answers). album_photos: what
    // the album holds, by the name the server echoes. jobs.watermark: the
    // largest photo id known before the job was sent (a reconcile only looks
    // above it). files.rejected_by: the shotsync version that refused the file
    // (a new version tries again).
    R"sql(
CREATE TABLE album_index(
  album_id   INTEGER PRIMARY KEY,
  project_id INTEGER NOT NULL,
  complete   INTEGER NOT NULL DEFAULT 0,
  listed_to  INTEGER NOT NULL DEFAULT 0,
  name_mode  TEXT NOT NULL DEFAULT '',
  listed_at  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE album_photos(
  album_id INTEGER NOT NULL,
  photo_id INTEGER NOT NULL,
  name     BLOB NOT NULL,
  size     INTEGER,
  approved INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(album_id, photo_id)
);
CREATE INDEX album_photos_by_name ON album_photos(album_id, name);
CREATE INDEX files_by_photo ON files(remote_photo_id) WHERE remote_photo_id IS NOT NULL;
ALTER TABLE jobs ADD COLUMN watermark INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN rejected_by TEXT NOT NULL DEFAULT '';
)sql",
};
static_assert(std::size(kMigrations) == kManifestSchemaVersion, "one migration per schema version");

// Tables every manifest of the current version must have.
constexpr const char* kTables[] = {"roots",    "files", "jobs",        "downloads",
                                   "throttle", "runs",  "album_index", "album_photos"};

// --- SQL ---------------------------------------------------------------------
// Keys of the statement pool are these pointers.

constexpr char kBeginImmediate[] = "BEGIN IMMEDIATE";
constexpr char kCommit[] = "COMMIT";
constexpr char kRollback[] = "ROLLBACK";
constexpr char kSavepoint[] = "SAVEPOINT w";
constexpr char kRelease[] = "RELEASE w";
constexpr char kRollbackTo[] = "ROLLBACK TO w";

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

#define SHOTSYNC_FILE_COLS                                                              \
  "id, root_id, dir, name, size, mtime_ns, inode, hash, remote_photo_id, remote_hash, " \
  "state, reason, rejected_by"
constexpr char kGetFile[] =
    "SELECT " SHOTSYNC_FILE_COLS " FROM files WHERE root_id = ?1 AND dir = ?2 AND name = ?3";
constexpr char kGetFileById[] = "SELECT " SHOTSYNC_FILE_COLS " FROM files WHERE id = ?1";
constexpr char kFilesInDir[] =
    "SELECT " SHOTSYNC_FILE_COLS " FROM files WHERE root_id = ?1 AND dir = ?2 ORDER BY name";
constexpr char kDirs[] =
    "SELECT DISTINCT dir FROM files WHERE root_id = ?1 AND state <> 'missing' ORDER BY dir";
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

#define SHOTSYNC_JOB_COLS \
  "id, file_id, kind, state, hash, size, attempts, last_error, started_at, finished_at, owner, watermark"
// At most one unfinished (or retryable) job per file: BeginJob takes it over.
constexpr char kFindReusableJob[] =
    "SELECT id, state, owner FROM jobs WHERE file_id = ?1 "
    "AND state IN ('pending', 'in_flight', 'failed') ORDER BY id DESC LIMIT 1";
constexpr char kFileRemote[] = "SELECT remote_photo_id, remote_hash FROM files WHERE id = ?1";
constexpr char kRestartJob[] =
    "UPDATE jobs SET kind = ?2, state = 'in_flight', hash = ?3, size = ?4, started_at = ?5, "
    "finished_at = 0, owner = ?6, watermark = ?7 WHERE id = ?1";
constexpr char kInsertJob[] =
    "INSERT INTO jobs(file_id, kind, state, hash, size, started_at, owner, watermark) "
    "VALUES(?1, ?2, 'in_flight', ?3, ?4, ?5, ?6, ?7) RETURNING id";
constexpr char kAdoptJob[] =
    "UPDATE jobs SET owner = ?3 WHERE id = ?1 AND owner = ?2 AND state = 'in_flight'";
constexpr char kFinishJob[] =
    "UPDATE jobs SET state = 'done', remote_photo_id = ?2, finished_at = ?3, last_error = '' "
    "WHERE id = ?1 RETURNING file_id, hash";
constexpr char kFileSynced[] =
    "UPDATE files SET remote_photo_id = ?2, remote_hash = ?3, state = 'synced', reason = '', "
    "updated_at = ?4 WHERE id = ?1";
constexpr char kFailJob[] =
    "UPDATE jobs SET state = ?2, attempts = attempts + 1, last_error = ?3, finished_at = ?4 "
    "WHERE id = ?1 RETURNING file_id";
constexpr char kFileFailed[] =
    "UPDATE files SET reason = ?2, state = CASE WHEN ?3 THEN 'rejected' ELSE state END, "
    "rejected_by = CASE WHEN ?3 THEN ?5 ELSE rejected_by END, "
    "updated_at = ?4 WHERE id = ?1";
constexpr char kUnfinishedJobs[] =
    "SELECT " SHOTSYNC_JOB_COLS " FROM jobs WHERE state IN ('pending', 'in_flight') ORDER BY id";
constexpr char kRecentFailures[] =
    "SELECT " SHOTSYNC_JOB_COLS
    " FROM jobs WHERE state IN ('failed', 'rejected') ORDER BY finished_at DESC, id DESC LIMIT ?1";

constexpr char kAlbumIndex[] =
    "SELECT complete, listed_to, name_mode, "
    "(SELECT max(photo_id) FROM album_photos WHERE album_id = ?1) FROM album_index WHERE album_id = ?1";
constexpr char kUpsertAlbumIndex[] =
    "INSERT INTO album_index(album_id, project_id, complete, listed_to, listed_at) "
    "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(album_id) DO UPDATE SET project_id = excluded.project_id, "
    "complete = max(complete, excluded.complete), listed_to = max(listed_to, excluded.listed_to), "
    "listed_at = CASE WHEN excluded.listed_to > 0 THEN excluded.listed_at ELSE listed_at END";
constexpr char kUpsertAlbumPhoto[] =
    "INSERT INTO album_photos(album_id, photo_id, name, size, approved) VALUES(?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT(album_id, photo_id) DO UPDATE SET name = excluded.name, size = excluded.size, "
    "approved = excluded.approved";
constexpr char kSetNameMode[] = "UPDATE album_index SET name_mode = ?2 WHERE album_id = ?1";
constexpr char kAlbumPhotosNamed[] =
    "SELECT photo_id, name, size, approved FROM album_photos WHERE album_id = ?1 AND name = ?2 "
    "ORDER BY photo_id DESC";
constexpr char kAlbumPhotosPrefix[] =
    "SELECT photo_id, name, size, approved FROM album_photos WHERE album_id = ?1 "
    "AND length(name) >= ?3 AND length(name) < length(?2) AND substr(?2, 1, length(name)) = name "
    "ORDER BY photo_id DESC";
constexpr char kForgetAlbumPhotos[] = "DELETE FROM album_photos WHERE album_id = ?1";
constexpr char kForgetAlbumIndex[] = "DELETE FROM album_index WHERE album_id = ?1";
constexpr char kFileWithPhoto[] =
    "SELECT " SHOTSYNC_FILE_COLS " FROM files WHERE remote_photo_id = ?1 ORDER BY id LIMIT 1";
constexpr char kBoundWithContent[] =
    "SELECT " SHOTSYNC_FILE_COLS " FROM files WHERE hash = ?1 AND size = ?2 "
    "AND remote_photo_id IS NOT NULL ORDER BY id";
constexpr char kUnbindFile[] =
    "UPDATE files SET remote_photo_id = NULL, remote_hash = '', "
    "state = CASE WHEN state = 'synced' THEN 'new' ELSE state END, updated_at = ?2 WHERE id = ?1";
constexpr char kBindFile[] =
    "UPDATE files SET remote_photo_id = ?2, remote_hash = hash, state = 'synced', reason = '', "
    "rejected_by = '', updated_at = ?3 WHERE id = ?1 AND (remote_photo_id IS NULL OR remote_photo_id = ?2)";

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

constexpr char kGetBucket[] =
    "SELECT tokens, refilled_at, paused_until FROM throttle WHERE key = ?1";
constexpr char kPutBucket[] =
    "INSERT INTO throttle(key, tokens, refilled_at, paused_until) VALUES(?1, ?2, ?3, ?4) "
    "ON CONFLICT(key) DO UPDATE SET tokens = excluded.tokens, "
    "refilled_at = excluded.refilled_at, paused_until = excluded.paused_until";
constexpr char kPauseBucket[] =
    "INSERT INTO throttle(key, tokens, refilled_at, paused_until) VALUES(?1, 0, ?2, ?2) "
    "ON CONFLICT(key) DO UPDATE SET tokens = min(tokens, 0), "
    "paused_until = max(paused_until, excluded.paused_until)";

constexpr char kBeginRun[] =
    "INSERT INTO runs(command, pid, started_at) VALUES(?1, ?2, ?3) RETURNING id";
constexpr char kEndRun[] =
    "UPDATE runs SET finished_at = ?2, uploaded = ?3, revised = ?4, skipped = ?5, rejected = ?6, "
    "failed = ?7, downloaded = ?8, bytes = ?9, exit_code = ?10 WHERE id = ?1";
constexpr char kRecentRuns[] =
    "SELECT id, command, started_at, finished_at, uploaded, revised, skipped, rejected, failed, "
    "downloaded, bytes, exit_code, pid FROM runs ORDER BY id DESC LIMIT ?1";

// --- Helpers -----------------------------------------------------------------

std::int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One line: newlines and other control characters become spaces.
std::string OneLine(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return out;
}

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

std::string JoinRelPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  std::string out;
  out.reserve(dir.size() + 1 + name.size());
  out += dir;
  out += '/';
  out += name;
  return out;
}

template <class E, std::size_t N>
bool ParseName(std::string_view text, const E (&values)[N], std::string_view (*name)(E) noexcept,
               E* out) {
  for (E v : values) {
    if (name(v) == text) {
      *out = v;
      return true;
    }
  }
  return false;
}

constexpr FileState kFileStates[] = {FileState::kNew, FileState::kSynced, FileState::kMissing,
                                     FileState::kRejected};
constexpr JobKind kJobKinds[] = {JobKind::kUpload, JobKind::kRevision};
constexpr JobState kJobStates[] = {JobState::kPending, JobState::kInFlight, JobState::kDone,
                                   JobState::kFailed, JobState::kRejected};
constexpr DownloadState kDownloadStates[] = {DownloadState::kPending, DownloadState::kPartial,
                                             DownloadState::kDone, DownloadState::kFailed};

}  // namespace

// --- Impl --------------------------------------------------------------------

struct Manifest::Impl {
  std::string path;
  Options options;
  sql::Db db;
  // Opened on first use by ForEachFile, so that a long read does not hold a
  // snapshot on the main (writing) connection.
  std::optional<sql::Db> reader;
  int schema_version = 0;
  std::mutex mu;
  int batch_depth = 0;          // BeginBatch nesting
  bool batch_txn_open = false;  // the batch's BEGIN IMMEDIATE was issued
  std::unordered_map<const char*, std::vector<std::unique_ptr<Stmt>>> pool;

  // A pooled statement, reset and returned to the pool when the lease ends.
  // Must end while `mu` is held.
  class Lease {
   public:
    Lease(Impl* impl, const char* key, std::unique_ptr<Stmt> st)
        : impl_(impl), key_(key), st_(std::move(st)) {}
    Lease(Lease&& o) noexcept
        : impl_(std::exchange(o.impl_, nullptr)), key_(o.key_), st_(std::move(o.st_)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (impl_ && st_) {
        st_->Reset();
        impl_->pool[key_].push_back(std::move(st_));
      }
    }
    Stmt* operator->() { return st_.get(); }
    Stmt& operator*() { return *st_; }

   private:
    Impl* impl_;
    const char* key_;
    std::unique_ptr<Stmt> st_;
  };

  Result<Lease> Acquire(const char* sql) {
    auto& free = pool[sql];
    if (!free.empty()) {
      std::unique_ptr<Stmt> st = std::move(free.back());
      free.pop_back();
      return Lease(this, sql, std::move(st));
    }
    SHOTSYNC_ASSIGN_OR_RETURN(Stmt st, db.Prepare(sql, /*persistent=*/true));
    return Lease(this, sql, std::make_unique<Stmt>(std::move(st)));
  }

  Status Run(const char* sql) {
    SHOTSYNC_ASSIGN_OR_RETURN(Lease st, Acquire(sql));
    return st->Run();
  }

  Status Commit() {
    Status st = Run(kCommit);
    if (!st.ok() && db.InTransaction()) (void)Run(kRollback);
    return st;
  }

  // Runs `body` (a sequence of statements returning Status) as one atomic
  // write. Outside a batch: BEGIN IMMEDIATE ... COMMIT. Inside a batch: a
  // savepoint in the batch's transaction; `durable` then commits the batch
  // (its earlier writes included) before returning, and the batch continues
  // in a new transaction at its next write.
  template <class F>
  Status Write(F&& body, bool durable = false) {
    if (options.read_only) {
      return Status(Code::kInvalidArgument, path + ": opened read-only, cannot write");
    }
    if (batch_depth == 0) {
      SHOTSYNC_RETURN_IF_ERROR(Run(kBeginImmediate));
      Status st = body();
      if (!st.ok()) {
        if (db.InTransaction()) (void)Run(kRollback);
        return st;
      }
      return Commit();
    }
    if (!batch_txn_open) {
      SHOTSYNC_RETURN_IF_ERROR(Run(kBeginImmediate));
      batch_txn_open = true;
    }
    Status st = Run(kSavepoint);
    if (st.ok()) st = body();
    if (!st.ok()) {
      if (!db.InTransaction()) {
        // SQLite rolled the whole transaction back (I/O error, full disk...).
        batch_txn_open = false;
        return st.WithContext("batch rolled back");
      }
      (void)Run(kRollbackTo);
      (void)Run(kRelease);
      return st;
    }
    SHOTSYNC_RETURN_IF_ERROR(Run(kRelease));
    if (durable) {
      batch_txn_open = false;
      return Commit();
    }
    return {};
  }

  Status CheckWritable() const {
    if (options.read_only) {
      return Status(Code::kInvalidArgument, path + ": opened read-only, cannot write");
    }
    return {};
  }

  Status Setup();
  Status Migrate();

  static Result<FileRecord> ReadFile(Stmt& st);
  // Every row of a query, each made by `read` (Stmt& -> Result<T> or T).
  template <class T, class Read>
  static Result<std::vector<T>> Rows(Stmt& st, Read read) {
    std::vector<T> out;
    for (;;) {
      SHOTSYNC_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return out;
      Result<T> item = read(st);
      if (!item.ok()) return item.status();
      out.push_back(std::move(*item));
    }
  }
  static Result<JobRecord> ReadJob(Stmt& st);
  Result<std::optional<FileRecord>> QueryOneFile(Lease& st);
};

Result<FileRecord> Manifest::Impl::ReadFile(Stmt& st) {
  FileRecord r;
  r.id = st.Int64(0);
  r.root_id = st.Int64(1);
  r.rel_path = JoinRelPath(st.Bytes(2), st.Bytes(3));
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

Result<JobRecord> Manifest::Impl::ReadJob(Stmt& st) {
  JobRecord j;
  j.id = st.Int64(0);
  j.file_id = st.Int64(1);
  std::string kind = st.Text(2), state = st.Text(3);
  if (!ParseName(kind, kJobKinds, &JobKindName, &j.kind) ||
      !ParseName(state, kJobStates, &JobStateName, &j.state)) {
    return Status::Corrupt("manifest: job " + std::to_string(j.id) + " has unknown kind/state \"" +
                           kind + "\"/\"" + state + "\"");
  }
  j.hash = st.Text(4);
  j.size = st.UInt64(5);
  j.attempts = st.Int(6);
  j.last_error = st.Text(7);
  j.started_at = st.Int64(8);
  j.finished_at = st.Int64(9);
  j.owner = st.Text(10);
  j.watermark = st.Int64(11);
  return j;
}

Result<std::optional<FileRecord>> Manifest::Impl::QueryOneFile(Lease& st) {
  SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) return std::optional<FileRecord>();
  SHOTSYNC_ASSIGN_OR_RETURN(FileRecord rec, ReadFile(*st));
  return std::optional<FileRecord>(std::move(rec));
}

// Validates the file before anything is written to it, then (read-write)
// switches to WAL and applies the pending migrations.
Status Manifest::Impl::Setup() {
  sqlite3_busy_timeout(db.get(), options.busy_timeout_ms);

  // Reading the header is the first access: a file that is not a database
  // fails here (SQLITE_NOTADB), before anything could be written. One
  // statement, so one snapshot: another process creating the manifest
  // meanwhile is seen either not at all or completely.
  std::int64_t app_id = 0, version = 0, tables = 0;
  Status read = [&]() -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(
        Stmt st, db.Prepare("SELECT (SELECT application_id FROM pragma_application_id), "
                            "(SELECT user_version FROM pragma_user_version), "
                            "(SELECT count(*) FROM sqlite_master)"));
    SHOTSYNC_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return Status::Internal(path + ": reading the header returned no row");
    app_id = st.Int64(0);
    version = st.Int64(1);
    tables = st.Int64(2);
    return {};
  }();
  if (!read.ok()) {
    if (read.code() == Code::kCorrupt) {
      return Status::Corrupt(path +
                             ": not a shotsync manifest (file is not a SQLite database); it was "
                             "left untouched: move it away or use another state_dir");
    }
    if (read.code() == Code::kBusy) {
      return Status(Code::kBusy, path + ": locked by another process for more than " +
                                     std::to_string(options.busy_timeout_ms) + " ms");
    }
    return read;
  }
  const bool ours = app_id == kManifestApplicationId;
  const bool empty = app_id == 0 && version == 0 && tables == 0;
  if (!ours && !empty) {
    char id[16];
    std::snprintf(id, sizeof id, "0x%08" PRIx32, static_cast<std::uint32_t>(app_id));
    return Status::Corrupt(path +
                           ": a SQLite database but not a shotsync manifest (application_id " + id +
                           ", " + std::to_string(tables) +
                           " schema objects); it was left untouched: move it away or use another "
                           "state_dir");
  }
  if (version > kManifestSchemaVersion) {
    return Status(Code::kUnsupported, path + ": schema version " + std::to_string(version) +
                                          " is newer than this shotsync (" +
                                          std::to_string(kManifestSchemaVersion) +
                                          "); upgrade shotsync");
  }

  if (options.read_only) {
    if (empty) return Status::NotFound(path + ": empty, no shotsync manifest has been written yet");
    if (version < kManifestSchemaVersion) {
      return Status(Code::kUnsupported,
                    path + ": schema version " + std::to_string(version) +
                        " needs an upgrade; run a shotsync command that writes the manifest");
    }
  } else {
    // journal_mode=WAL is persistent; changing it needs a lock the busy
    // handler does not always wait for, so retry within busy_timeout.
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(std::max(options.busy_timeout_ms, 0));
    for (;;) {
      auto mode = db.QueryText("PRAGMA journal_mode=WAL");
      if (mode.ok()) break;
      if (mode.status().code() != Code::kBusy || std::chrono::steady_clock::now() >= deadline) {
        return mode.status();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    SHOTSYNC_RETURN_IF_ERROR(db.Exec("PRAGMA synchronous=NORMAL"));
    SHOTSYNC_RETURN_IF_ERROR(Migrate());
  }
  SHOTSYNC_RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys=ON"));

  // A manifest of the current version must have every table.
  for (const char* table : kTables) {
    SHOTSYNC_ASSIGN_OR_RETURN(Stmt st, db.Prepare("SELECT 1 FROM sqlite_master WHERE type = "
                                                  "'table' AND name = ?1"));
    SHOTSYNC_RETURN_IF_ERROR(st.BindAll(table));
    SHOTSYNC_ASSIGN_OR_RETURN(bool found, st.Step());
    if (!found) {
      return Status::Corrupt(path + ": damaged shotsync manifest: table \"" + table +
                             "\" is missing; it was left untouched");
    }
  }
  schema_version = kManifestSchemaVersion;
  return {};
}

Status Manifest::Impl::Migrate() {
  SHOTSYNC_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  auto body = [&]() -> Status {
    // Another process may have created or migrated it since we looked.
    SHOTSYNC_ASSIGN_OR_RETURN(std::int64_t app_id, db.QueryInt("PRAGMA application_id"));
    SHOTSYNC_ASSIGN_OR_RETURN(std::int64_t version, db.QueryInt("PRAGMA user_version"));
    if (app_id != kManifestApplicationId && app_id != 0) {
      return Status::Corrupt(path + ": a SQLite database but not a shotsync manifest");
    }
    if (version < 0) {  // found by tests/fuzz/manifest_fuzz: kMigrations[-1]
      return Status::Corrupt(path + ": schema version " + std::to_string(version) + " is not valid");
    }
    if (version > kManifestSchemaVersion) {
      return Status(Code::kUnsupported, path + ": schema version " + std::to_string(version) +
                                            " is newer than this shotsync (" +
                                            std::to_string(kManifestSchemaVersion) +
                                            "); upgrade shotsync");
    }
    if (version == kManifestSchemaVersion && app_id == kManifestApplicationId) return {};
    for (auto v = version; v < kManifestSchemaVersion; ++v) {
      SHOTSYNC_RETURN_IF_ERROR(
          db.Exec(kMigrations[v]).WithContext("migration to schema " + std::to_string(v + 1)));
    }
    SHOTSYNC_RETURN_IF_ERROR(
        db.Exec(("PRAGMA application_id = " + std::to_string(kManifestApplicationId)).c_str()));
    SHOTSYNC_RETURN_IF_ERROR(
        db.Exec(("PRAGMA user_version = " + std::to_string(kManifestSchemaVersion)).c_str()));
    return {};
  };
  Status st = body();
  if (!st.ok()) {
    if (db.InTransaction()) (void)db.Exec("ROLLBACK");
    return st;
  }
  st = db.Exec("COMMIT");
  if (!st.ok() && db.InTransaction()) (void)db.Exec("ROLLBACK");
  return st;
}

// --- Manifest ----------------------------------------------------------------

Manifest::Manifest(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Manifest::~Manifest() {
  if (!impl_) return;
  std::lock_guard<std::mutex> lock(impl_->mu);
  // An unfinished batch is committed: its rows describe work already done.
  if (impl_->batch_txn_open) (void)impl_->Commit();
  impl_->pool.clear();  // finalize statements before the connection closes
}

Result<std::unique_ptr<Manifest>> Manifest::Open(const std::string& path, Options options) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->options = options;
  int flags =
      options.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  SHOTSYNC_ASSIGN_OR_RETURN(impl->db, sql::Db::Open(path, flags));
  SHOTSYNC_RETURN_IF_ERROR(impl->Setup());
  return std::unique_ptr<Manifest>(new Manifest(std::move(impl)));
}

int Manifest::SchemaVersion() const {
  return impl_->schema_version;
}

// --- Roots -------------------------------------------------------------------

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
  if (impl_->batch_txn_open) {
    impl_->batch_txn_open = false;
    SHOTSYNC_RETURN_IF_ERROR(impl_->Commit());
  }
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

Status Manifest::BeginBatch() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_RETURN_IF_ERROR(impl_->CheckWritable());
  // The transaction itself starts at the batch's first write, so an idle
  // batch holds no lock.
  ++impl_->batch_depth;
  return {};
}

Status Manifest::CommitBatch() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->batch_depth == 0) {
    return Status::Internal(impl_->path + ": CommitBatch without BeginBatch");
  }
  if (--impl_->batch_depth > 0 || !impl_->batch_txn_open) return {};
  impl_->batch_txn_open = false;
  return impl_->Commit();
}

// --- Jobs --------------------------------------------------------------------

Result<JobClaim> Manifest::BeginJob(std::int64_t file_id, std::string_view hash, std::uint64_t size,
                                    const JobOwner& owner) {
  const ClaimRequest one{file_id, std::string(hash), size};
  SHOTSYNC_ASSIGN_OR_RETURN(std::vector<Result<JobClaim>> claims, BeginJobs({&one, 1}, owner));
  return std::move(claims.front());
}

Result<std::vector<Result<JobClaim>>> Manifest::BeginJobs(std::span<const ClaimRequest> requests,
                                                         const JobOwner& owner) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  // The one write that must survive power loss, not only a crash: once the
  // job is in flight the bytes may reach the server, and only this row makes
  // the next run look there before sending again. WAL + synchronous=FULL
  // syncs the log at this commit (one sync for the whole group); every other
  // write stays NORMAL (a lost done/failed row only costs a reconcile).
  // (The level cannot change inside a transaction: an open batch, which this
  // durable write would commit anyway, is committed first.)
  if (impl_->batch_txn_open) {
    impl_->batch_txn_open = false;
    SHOTSYNC_RETURN_IF_ERROR(impl_->Commit());
  }
  SHOTSYNC_RETURN_IF_ERROR(impl_->db.Exec("PRAGMA synchronous=FULL"));
  struct Restore {
    sql::Db& db;
    ~Restore() { (void)db.Exec("PRAGMA synchronous=NORMAL"); }
  } restore{impl_->db};
  const std::int64_t now = NowUnix();
  // One claim: a soft refusal (busy, already done, conflict, no such file)
  // is that request's result and writes nothing; an error fails the group.
  auto claim_one = [&](const ClaimRequest& r, std::vector<Result<JobClaim>>& out) -> Status {
    std::int64_t id = 0;
    {
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFindReusableJob));
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(r.file_id));
      SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
      if (row) {
        id = st->Int64(0);
        const std::string state = st->Text(1), other = st->Text(2);
        if (state == "in_flight" && other != owner.token) {
          if (!owner.alive || owner.alive(other)) {
            out.emplace_back(Status(Code::kBusy, "being sent by another shotsync process"));
          } else {
            out.emplace_back(Status(Code::kConflict,
                                    "left in flight by an interrupted run; the next run checks the server first"));
          }
          return {};
        }
      }
    }
    JobClaim claim;
    {
      // Decided from the row as it is now, not as the caller planned it:
      // another process may have sent this file in between.
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFileRemote));
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(r.file_id));
      SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        out.emplace_back(Status::NotFound(impl_->path + ": no file " + std::to_string(r.file_id)));
        return {};
      }
      const auto photo = st->OptInt64(0);
      if (photo && st->Text(1) == r.hash) {
        out.emplace_back(Status(Code::kAlreadyDone, "already on the server (sent by another run)"));
        return {};
      }
      claim.kind = photo ? JobKind::kRevision : JobKind::kUpload;
      claim.photo_id = photo.value_or(0);
    }
    if (id != 0) {
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kRestartJob));
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(id, JobKindName(claim.kind), r.hash, r.size, now, owner.token, r.watermark));
      SHOTSYNC_RETURN_IF_ERROR(st->Run());
      claim.job_id = id;
    } else {
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kInsertJob));
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(r.file_id, JobKindName(claim.kind), r.hash, r.size, now, owner.token, r.watermark));
      SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) return Status::Internal(impl_->path + ": insert job returned no id");
      claim.job_id = st->Int64(0);
    }
    out.emplace_back(claim);
    return {};
  };
  std::vector<Result<JobClaim>> out;
  SHOTSYNC_RETURN_IF_ERROR(impl_->Write(
      [&]() -> Status {
        out.clear();
        out.reserve(requests.size());
        for (const ClaimRequest& r : requests) SHOTSYNC_RETURN_IF_ERROR(claim_one(r, out));
        return {};
      },
      /*durable=*/true));
  return out;
}

Result<bool> Manifest::AdoptJob(std::int64_t job_id, std::string_view from_owner, std::string_view to_owner) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  bool adopted = false;
  SHOTSYNC_RETURN_IF_ERROR(impl_->Write(
      [&]() -> Status {
        SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kAdoptJob));
        SHOTSYNC_RETURN_IF_ERROR(st->BindAll(job_id, from_owner, to_owner));
        SHOTSYNC_RETURN_IF_ERROR(st->Run());
        adopted = impl_->db.Changes() == 1;
        return {};
      },
      /*durable=*/true));
  return adopted;
}

Status Manifest::FinishJob(std::int64_t job_id, std::int64_t remote_photo_id) {
  const std::pair<std::int64_t, std::int64_t> one{job_id, remote_photo_id};
  return FinishJobs({&one, 1});
}

Status Manifest::FinishJobs(std::span<const std::pair<std::int64_t, std::int64_t>> done) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write(
      [&]() -> Status {
        const std::int64_t now = NowUnix();
        for (const auto& [job_id, remote_photo_id] : done) {
          std::int64_t file_id = 0;
          std::string hash;
          {
            SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFinishJob));
            SHOTSYNC_RETURN_IF_ERROR(st->BindAll(job_id, remote_photo_id, now));
            SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
            if (!row) return Status::NotFound(impl_->path + ": no job " + std::to_string(job_id));
            file_id = st->Int64(0);
            hash = st->Text(1);
            SHOTSYNC_RETURN_IF_ERROR(st->Run());
          }
          SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFileSynced));
          SHOTSYNC_RETURN_IF_ERROR(st->BindAll(file_id, remote_photo_id, hash, now));
          SHOTSYNC_RETURN_IF_ERROR(st->Run());
        }
        return Status::Ok();
      },
      /*durable=*/true);
}

Status Manifest::FailJob(std::int64_t job_id, std::string_view reason, bool permanent) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::string line = OneLine(reason);
  return impl_->Write(
      [&]() -> Status {
        const std::int64_t now = NowUnix();
        std::int64_t file_id = 0;
        {
          SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFailJob));
          SHOTSYNC_RETURN_IF_ERROR(
              st->BindAll(job_id, JobStateName(permanent ? JobState::kRejected : JobState::kFailed),
                          line, now));
          SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
          if (!row) return Status::NotFound(impl_->path + ": no job " + std::to_string(job_id));
          file_id = st->Int64(0);
          SHOTSYNC_RETURN_IF_ERROR(st->Run());
        }
        SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFileFailed));
        SHOTSYNC_RETURN_IF_ERROR(st->BindAll(file_id, line, permanent, now, kVersion));
        return st->Run();
      },
      /*durable=*/true);
}

Result<std::vector<JobRecord>> Manifest::UnfinishedJobs() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kUnfinishedJobs));
  return Impl::Rows<JobRecord>(*st, Impl::ReadJob);
}

Result<std::vector<JobRecord>> Manifest::RecentFailures(int limit) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kRecentFailures));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(limit));
  return Impl::Rows<JobRecord>(*st, Impl::ReadJob);
}

// --- Album index -------------------------------------------------------------

namespace {
AlbumPhoto ReadAlbumPhoto(Stmt& r) {
  return AlbumPhoto{r.Int64(0), r.Bytes(1),
                    r.OptInt64(2) ? std::optional<std::uint64_t>(std::uint64_t(*r.OptInt64(2))) : std::nullopt,
                    r.Int64(3) != 0};
}
}  // namespace

Result<AlbumIndexInfo> Manifest::AlbumIndex(std::int64_t album_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kAlbumIndex));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(album_id));
  SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
  AlbumIndexInfo info;
  if (!row) return info;
  info.known = true;
  info.complete = st->Int64(0) != 0;
  info.listed_to = st->Int64(1);
  info.name_mode = st->Text(2);
  info.max_photo_id = std::max(info.listed_to, st->OptInt64(3).value_or(0));
  return info;
}

Status Manifest::IndexAlbumPhotos(std::int64_t album_id, std::int64_t project_id,
                                  std::span<const AlbumPhoto> photos, std::int64_t listed_to, bool complete) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write([&]() -> Status {
    {
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kUpsertAlbumIndex));
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(album_id, project_id, complete, listed_to, NowUnix()));
      SHOTSYNC_RETURN_IF_ERROR(st->Run());
    }
    for (const AlbumPhoto& p : photos) {
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kUpsertAlbumPhoto));
      std::optional<std::int64_t> size;
      if (p.size) size = std::int64_t(*p.size);
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(album_id, p.photo_id, Blob{p.name}, size, p.approved));
      SHOTSYNC_RETURN_IF_ERROR(st->Run());
    }
    return {};
  });
}

Status Manifest::SetAlbumNameMode(std::int64_t album_id, std::string_view mode) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write([&]() -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kSetNameMode));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(album_id, mode));
    return st->Run();
  });
}

Result<std::vector<AlbumPhoto>> Manifest::AlbumPhotosNamed(std::int64_t album_id, std::string_view name) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kAlbumPhotosNamed));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(album_id, Blob{name}));
  return Impl::Rows<AlbumPhoto>(*st, ReadAlbumPhoto);
}

Result<std::vector<AlbumPhoto>> Manifest::AlbumPhotosPrefixOf(std::int64_t album_id, std::string_view name,
                                                              std::size_t min_len) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kAlbumPhotosPrefix));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(album_id, Blob{name}, std::int64_t(min_len)));
  return Impl::Rows<AlbumPhoto>(*st, ReadAlbumPhoto);
}

Status Manifest::ForgetAlbumIndex(std::int64_t album_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write([&]() -> Status {
    for (const char* sql : {kForgetAlbumPhotos, kForgetAlbumIndex}) {
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(sql));
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(album_id));
      SHOTSYNC_RETURN_IF_ERROR(st->Run());
    }
    return {};
  });
}

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

Status Manifest::BindRemote(std::int64_t file_id, std::int64_t photo_id, std::int64_t from_file_id) {
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
        SHOTSYNC_RETURN_IF_ERROR(st->BindAll(file_id, photo_id, now));
        SHOTSYNC_RETURN_IF_ERROR(st->Run());
        if (impl_->db.Changes() == 0) {
          return Status(Code::kConflict, "file " + std::to_string(file_id) + " is bound to another photo");
        }
        return {};
      },
      /*durable=*/true);
}

// --- Downloads ---------------------------------------------------------------

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

// --- Token bucket ------------------------------------------------------------

namespace {

// A bucket row refilled to now_s (a new bucket starts full). Read and written
// inside one write transaction: BEGIN IMMEDIATE holds the database write lock
// from the read to the write, so a take is atomic across processes.
struct Bucket {
  double tokens = 0, refilled_at = 0, paused_until = 0;
  bool Paused(double now_s) const { return paused_until > 0 && now_s < paused_until; }
};

}  // namespace

Result<std::pair<int, double>> Manifest::TakeFromBucket(std::string_view key, double rate_per_s, double burst,
                                                       int count, bool reserve, double now_s) {
  if (!(rate_per_s > 0) || count < 1) return Status::Invalid("token bucket: rate and count must be > 0");
  burst = std::max(burst, 1.0);
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::pair<int, double> out{0, 0};
  SHOTSYNC_RETURN_IF_ERROR(impl_->Write([&]() -> Status {
    Bucket b{burst, now_s, 0};
    {
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kGetBucket));
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(key));
      SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
      if (row) b = {st->Double(0), st->Double(1), st->Double(2)};
    }
    if (now_s > b.refilled_at) {
      b.tokens = std::min(burst, b.tokens + (now_s - b.refilled_at) * rate_per_s);
      b.refilled_at = now_s;
    }
    b.tokens = std::min(b.tokens, burst);  // the burst may have been lowered
    if (b.Paused(now_s)) {
      out = {0, b.paused_until - now_s};
    } else {
      if (b.paused_until > 0) {
        // The pause is over: the server's window was reset at paused_until,
        // so the request that was waiting for it may go right away.
        b.tokens = std::max(b.tokens, 1.0);
        b.paused_until = 0;
      }
      const double first = std::max(0.0, (1.0 - b.tokens) / rate_per_s);
      if (reserve || b.tokens >= count) {
        out = {count, first};
        b.tokens -= count;  // reserved: may go into debt
      } else {
        out = {0, first};
      }
    }
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kPutBucket));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(key, b.tokens, b.refilled_at, b.paused_until));
    return st->Run();
  }, /*durable=*/true));  // never inside a planner's batch: other processes must see it
  return out;
}

Result<double> Manifest::TakeToken(std::string_view key, double rate_per_s, double burst, double now_s) {
  SHOTSYNC_ASSIGN_OR_RETURN(auto got, TakeFromBucket(key, rate_per_s, burst, 1, /*reserve=*/false, now_s));
  return got.first == 1 ? 0.0 : got.second;
}

Result<std::pair<int, double>> Manifest::ReserveTokens(std::string_view key, double rate_per_s, double burst,
                                                      int count, double now_s) {
  return TakeFromBucket(key, rate_per_s, burst, count, /*reserve=*/true, now_s);
}

Status Manifest::PauseBucket(std::string_view key, double until_s) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write([&]() -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kPauseBucket));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(key, until_s));
    return st->Run();
  }, /*durable=*/true);
}

// --- Runs --------------------------------------------------------------------

Result<std::int64_t> Manifest::BeginRun(std::string_view command, int pid) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::int64_t id = 0;
  SHOTSYNC_RETURN_IF_ERROR(impl_->Write(
      [&]() -> Status {
        SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kBeginRun));
        SHOTSYNC_RETURN_IF_ERROR(st->BindAll(command, pid, NowUnix()));
        SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
        if (!row) return Status::Internal(impl_->path + ": insert run returned no id");
        id = st->Int64(0);
        return {};
      },
      /*durable=*/true));
  return id;
}

Status Manifest::EndRun(std::int64_t run_id, const RunCounts& c, int exit_code) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write(
      [&]() -> Status {
        SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kEndRun));
        SHOTSYNC_RETURN_IF_ERROR(st->BindAll(run_id, NowUnix(), c.uploaded, c.revised, c.skipped,
                                             c.rejected, c.failed, c.downloaded, c.bytes,
                                             exit_code));
        SHOTSYNC_RETURN_IF_ERROR(st->Run());
        if (impl_->db.Changes() == 0) {
          return Status::NotFound(impl_->path + ": no run " + std::to_string(run_id));
        }
        return {};
      },
      /*durable=*/true);
}

Result<std::vector<RunRecord>> Manifest::RecentRuns(int limit) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kRecentRuns));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(limit));
  std::vector<RunRecord> out;
  for (;;) {
    SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    RunRecord r;
    r.id = st->Int64(0);
    r.command = st->Text(1);
    r.started_at = st->Int64(2);
    r.finished_at = st->Int64(3);
    r.counts.uploaded = st->Int64(4);
    r.counts.revised = st->Int64(5);
    r.counts.skipped = st->Int64(6);
    r.counts.rejected = st->Int64(7);
    r.counts.failed = st->Int64(8);
    r.counts.downloaded = st->Int64(9);
    r.counts.bytes = st->UInt64(10);
    r.exit_code = st->Int(11);
    r.pid = st->Int(12);
    out.push_back(std::move(r));
  }
  return out;
}

// --- Maintenance -------------------------------------------------------------

Status Manifest::Checkpoint() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->options.read_only) return {};
  if (impl_->batch_txn_open) {
    impl_->batch_txn_open = false;
    SHOTSYNC_RETURN_IF_ERROR(impl_->Commit());
  }
  // TRUNCATE waits for readers and writers through the busy handler; another
  // process that keeps the database open would make it wait the whole
  // busy_timeout, so wait at most a second. When it still cannot finish the
  // WAL simply stays (SQLite checkpoints it automatically later): not an error.
  sqlite3* db = impl_->db.get();
  sqlite3_busy_timeout(db, std::min(impl_->options.busy_timeout_ms, 1000));
  int log = 0, done = 0;
  int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
  sqlite3_busy_timeout(db, impl_->options.busy_timeout_ms);
  if (rc == SQLITE_OK || (rc & 0xff) == SQLITE_BUSY) return {};
  return impl_->db.Error(rc, "checkpoint");
}

Status Manifest::IntegrityCheck() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(Stmt st, impl_->db.Prepare("PRAGMA quick_check"));
  auto first = st.Step();
  if (!first.ok()) {
    Status s = std::move(first).status();
    if (s.code() == Code::kCorrupt) return Status::Corrupt(s.message());
    return s;
  }
  if (!*first) return Status::Corrupt(impl_->path + ": integrity check returned nothing");
  std::string result = st.Text(0);
  if (result != "ok") return Status::Corrupt(impl_->path + ": integrity check: " + result);
  return {};
}

// --- Reports -----------------------------------------------------------------

namespace {
constexpr char kCountsByRoot[] =
    "SELECT r.id, r.path, "
    "SUM(f.state = 'synced'), SUM(f.state = 'new'), SUM(f.state = 'missing'), SUM(f.state = 'rejected') "
    "FROM roots r LEFT JOIN files f ON f.root_id = r.id GROUP BY r.id ORDER BY r.id";
constexpr char kFilesInState[] =
    "SELECT " SHOTSYNC_FILE_COLS " FROM files WHERE state = ?1 ORDER BY updated_at DESC, id DESC LIMIT ?2";
constexpr char kBuckets[] = "SELECT key, tokens, refilled_at, paused_until FROM throttle ORDER BY key";
constexpr char kForgetRemote[] =
    "UPDATE files SET remote_photo_id = NULL, remote_hash = '', "
    "state = CASE WHEN state = 'synced' THEN 'new' ELSE state END, updated_at = ?2 WHERE id = ?1";
}  // namespace

Result<std::vector<Manifest::RootCounts>> Manifest::CountsByRoot() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kCountsByRoot));
  return Impl::Rows<RootCounts>(*st, [](Stmt& r) {
    return RootCounts{r.Int64(0), r.Bytes(1), r.Int64(2), r.Int64(3), r.Int64(4), r.Int64(5)};
  });
}

Result<std::vector<FileRecord>> Manifest::FilesInState(FileState state, int limit) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFilesInState));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(FileStateName(state), limit));
  return Impl::Rows<FileRecord>(*st, Impl::ReadFile);
}

Result<std::vector<Manifest::BucketRecord>> Manifest::Buckets() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kBuckets));
  return Impl::Rows<BucketRecord>(*st, [](Stmt& r) {
    return BucketRecord{r.Text(0), r.Double(1), r.Double(2), r.Double(3)};
  });
}

Status Manifest::ForgetRemote(std::int64_t file_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write([&]() -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kForgetRemote));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(file_id, NowUnix()));
    SHOTSYNC_RETURN_IF_ERROR(st->Run());
    if (impl_->db.Changes() == 0) return Status::NotFound(impl_->path + ": no file " + std::to_string(file_id));
    return {};
  });
}

}  // namespace shotsync
