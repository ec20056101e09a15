// The manifest's schema: the append-only migrations and the checks that a
// file is a shotsync manifest of a version this build can use
// (docs/architecture.md §4-5).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <string>

#include "shotsync/fd.hpp"
#include "shotsync/fs.hpp"
#include "store/manifest_impl.hpp"

namespace shotsync {

namespace {

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
    // v4: rejected files the user acknowledged (`shotsync ignore`): they no
    // longer turn the exit code to 1.
    R"sql(
CREATE TABLE acknowledged(
  root_id  INTEGER NOT NULL REFERENCES roots(id),
  rel_path BLOB NOT NULL,
  at       INTEGER NOT NULL,
  PRIMARY KEY(root_id, rel_path)
);
)sql",
    // v5: the JPEG quality of a fitted copy an upload or revision sent
    // (docs/fit.md); 0 = the file itself.
    R"sql(
ALTER TABLE jobs ADD COLUMN fit_quality INTEGER NOT NULL DEFAULT 0;
)sql",
    // v6: the HeadshotPro webhook events `watch` has seen (their id, or
    // event|model|status), so that a redelivery is answered without a second
    // pull; received_at (Unix seconds) lets old keys be pruned.
    R"sql(
CREATE TABLE webhook_events(
  key         TEXT PRIMARY KEY,
  received_at REAL NOT NULL
);
CREATE INDEX webhook_events_by_age ON webhook_events(received_at);
)sql",
    // v7: one read per changed photo (docs/resume.md). A job claimed before
    // its file was read records the stat it planned, so that its finish (or
    // its reconcile after a crash) knows whether the bytes it sent are still
    // the file's; the plan asks whether a new file could be a move by size.
    R"sql(
ALTER TABLE jobs ADD COLUMN mtime_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN inode INTEGER NOT NULL DEFAULT 0;
CREATE INDEX files_bound_by_size ON files(size) WHERE remote_photo_id IS NOT NULL;
)sql",
    // v8: the content index only holds files bound to a photo, the only ones
    // a lookup by hash asks for (a move, a copy): the first plan of a
    // library no longer maintains an index entry per file it hashes
    // (benchmarks/noop_plan.sh: a million-file first plan, bytes per file).
    R"sql(
DROP INDEX files_by_hash;
CREATE INDEX files_bound_by_hash ON files(hash) WHERE remote_photo_id IS NOT NULL;
)sql",
};
static_assert(std::size(kMigrations) == kManifestSchemaVersion, "one migration per schema version");

// Tables every manifest of the current version must have.
constexpr const char* kTables[] = {"roots",       "files",        "jobs",         "downloads",
                                   "throttle",    "runs",         "album_index",  "album_photos",
                                   "acknowledged", "webhook_events"};

}  // namespace

// Reading the header is the first access: a file that is not a database
// fails here (SQLITE_NOTADB), before anything could be written. One
// statement, so one snapshot: another process creating the manifest
// meanwhile is seen either not at all or completely. A read-only open also
// needs a manifest that is there and current: it cannot create or migrate it.
Status Manifest::Impl::CheckHeader() {
  std::int64_t app_id = 0, version = 0, tables = 0;
  Status read = [&]() -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(
        sql::Stmt st, db.Prepare("SELECT (SELECT application_id FROM pragma_application_id), "
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

  header_current = ours && version == kManifestSchemaVersion;
  if (options.read_only) {
    if (empty) return Status::NotFound(path + ": empty, no shotsync manifest has been written yet");
    if (version < kManifestSchemaVersion) {
      return Status(Code::kUnsupported,
                    path + ": schema version " + std::to_string(version) +
                        " needs an upgrade; run a shotsync command that writes the manifest");
    }
  }
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

// Creating a manifest in place cost six syncs: SQLite switches a new file
// to WAL through a rollback-journal transaction (journal, folder, journal,
// database), then creates the WAL (its header, its folder). Built beside it
// with synchronous=OFF instead, it costs two: the finished file before
// link(2) puts it in place, and the folder once the link and an empty WAL
// are there (SQLite then opens that WAL, never creates it: no connection
// would sync the folder for it). link never replaces: a manifest another
// process created meanwhile wins, and ours is removed.
bool Manifest::Impl::CreateBeside(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 || errno != ENOENT) return false;
  // A WAL without its database (deleted by hand) would be replayed into
  // the new one: the in-place open reports what it finds instead.
  if (::lstat((path + "-wal").c_str(), &st) == 0 || errno != ENOENT) return false;
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".new-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  auto remove_all = [&] {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) ::unlink((tmp + suffix).c_str());
  };
  remove_all();
  const bool built = [&] {
    auto db = sql::Db::Open(tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (!db.ok()) return false;
    Impl scratch;
    scratch.path = tmp;
    scratch.db = std::move(*db);
    if (!scratch.db.Exec("PRAGMA synchronous=OFF").ok()) return false;
    auto mode = scratch.db.QueryText("PRAGMA journal_mode=WAL");
    if (!mode.ok() || *mode != "wal" || !scratch.Migrate().ok()) return false;
    auto ckpt = scratch.db.Prepare("PRAGMA wal_checkpoint(TRUNCATE)");
    if (!ckpt.ok()) return false;
    auto row = ckpt->Step();
    return row.ok() && *row && ckpt->Int64(0) == 0;  // 0: not busy, everything copied
  }();
  bool linked = false;
  if (built) {
    ::unlink((tmp + "-wal").c_str());  // empty now: the file holds everything
    ::unlink((tmp + "-shm").c_str());
    UniqueFd fd(::open(tmp.c_str(), O_RDWR | O_CLOEXEC));
    linked = fd && ::fstat(fd.get(), &st) == 0 && ::fdatasync(fd.get()) == 0 &&
             ::link(tmp.c_str(), path.c_str()) == 0;
  }
  remove_all();
  if (!linked) return false;
  // From here the manifest is in place and another process may already use
  // it: nothing is removed. A folder that cannot be synced is a failing
  // disk, which the first durable commit then reports.
  UniqueFd wal(::open((path + "-wal").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, st.st_mode & 0777));
  const std::string folder = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
  return wal && SyncFolder(folder).ok();
}

// A manifest of the current version must have every table: one query when
// it has (every open), one per table to name the one that is missing.
Status Manifest::Impl::CheckTables() {
  std::string all = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (";
  for (const char* table : kTables) {
    all += all.back() == '(' ? "'" : ", '";
    all += table;
    all += "'";
  }
  all += ")";
  SHOTSYNC_ASSIGN_OR_RETURN(std::int64_t present, db.QueryInt(all.c_str()));
  if (present == static_cast<std::int64_t>(std::size(kTables))) return {};
  for (const char* table : kTables) {
    SHOTSYNC_ASSIGN_OR_RETURN(sql::Stmt st, db.Prepare("SELECT 1 FROM sqlite_master WHERE type = "
                                                       "'table' AND name = ?1"));
    SHOTSYNC_RETURN_IF_ERROR(st.BindAll(table));
    SHOTSYNC_ASSIGN_OR_RETURN(bool found, st.Step());
    if (!found) {
      return Status::Corrupt(path + ": damaged shotsync manifest: table \"" + table +
                             "\" is missing; it was left untouched");
    }
  }
  return {};
}

}  // namespace shotsync
