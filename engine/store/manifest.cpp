// The SQLite manifest (include/shotsync/manifest.hpp, docs/architecture.md §4-5):
// opening and closing, the connection's pragmas, batches and maintenance.
// Manifest::Impl (store/manifest_impl.hpp) is shared by the files that
// implement the manifest one table at a time:
//   store/schema.cpp           schema, migrations, version checks
//   store/roots_table.cpp      roots
//   store/files_table.cpp      files and their binding to remote photos
//   store/jobs_table.cpp       upload jobs: claims, finish, fail, adopt
//   store/album_table.cpp      album_index, album_photos
//   store/downloads_table.cpp  downloads
//   store/buckets_table.cpp    throttle (token buckets)
//   store/runs_table.cpp       runs and the status report
#include "shotsync/manifest.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <utility>

#include "store/manifest_impl.hpp"

namespace shotsync {

// Validates the file before anything is written to it, then (read-write)
// switches to WAL and applies the pending migrations.
Status Manifest::Impl::Setup() {
  sqlite3_busy_timeout(db.get(), options.busy_timeout_ms);
  SHOTSYNC_RETURN_IF_ERROR(CheckHeader());
  if (!options.read_only) {
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
    if (!header_current) SHOTSYNC_RETURN_IF_ERROR(Migrate());
  }
  SHOTSYNC_RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys=ON"));
  SHOTSYNC_RETURN_IF_ERROR(CheckTables());
  schema_version = kManifestSchemaVersion;
  return {};
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
  if (!options.read_only) (void)Impl::CreateBeside(path);
  SHOTSYNC_ASSIGN_OR_RETURN(impl->db, sql::Db::Open(path, flags));
  SHOTSYNC_RETURN_IF_ERROR(impl->Setup());
  return std::unique_ptr<Manifest>(new Manifest(std::move(impl)));
}

Result<std::unique_ptr<Manifest>> Manifest::OpenPeer() {
  SHOTSYNC_ASSIGN_OR_RETURN(std::unique_ptr<Manifest> peer, Open(impl_->path, impl_->options));
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!impl_->turn) {
    impl_->turn = std::make_shared<WriteTurn>();
    if (impl_->db.InTransaction()) {  // an open batch: its turn is now
      (void)impl_->turn->Take(std::chrono::milliseconds(0));
      impl_->holds_turn = true;
    }
  }
  peer->impl_->turn = impl_->turn;
  return peer;
}

int Manifest::SchemaVersion() const {
  return impl_->schema_version;
}

Status Manifest::SetAutoCheckpoint(int pages) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const int rc = sqlite3_wal_autocheckpoint(impl_->db.get(), pages);
  return rc == SQLITE_OK ? Status() : impl_->db.Error(rc, "setting the WAL's checkpoint size");
}

// --- Batches -----------------------------------------------------------------

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
  if (--impl_->batch_depth > 0) return {};
  return impl_->CommitOpenBatch();
}

bool Manifest::WriteWanted() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->turn && impl_->turn->Wanted();
}

// --- Maintenance -------------------------------------------------------------

Status Manifest::Checkpoint() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->options.read_only) return {};
  SHOTSYNC_RETURN_IF_ERROR(impl_->CommitOpenBatch());
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
  SHOTSYNC_ASSIGN_OR_RETURN(sql::Stmt st, impl_->db.Prepare("PRAGMA quick_check"));
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

}  // namespace shotsync
