// Manifest::Impl: what every table file of the manifest shares (engine-internal).
//
// One connection per Manifest, every call under one mutex, prepared
// statements kept in a small pool (one per SQL text, more only when a
// statement is re-entered). Writes go through Impl::Write: its own
// BEGIN IMMEDIATE ... COMMIT, or a savepoint inside the open batch.
//
// The table files (store/*_table.cpp) each keep their own SQL next to the
// Manifest members that run it; the pool is keyed by those arrays' addresses,
// so each SQL constant is defined in exactly one file.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "shotsync/manifest.hpp"
#include "store/sqlite.hpp"

// The columns Impl::ReadFile reads, in its order (files, album and report
// queries all return file rows).
#define SHOTSYNC_FILE_COLS                                                              \
  "id, root_id, dir, name, size, mtime_ns, inode, hash, remote_photo_id, remote_hash, " \
  "state, reason, rejected_by"

namespace shotsync {

namespace manifest_internal {

inline std::int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One line: newlines and other control characters become spaces.
inline std::string OneLine(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return out;
}

// The enum value among `values` whose name(v) is `text`.
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

}  // namespace manifest_internal

// Connections of one process to one manifest (Manifest::OpenPeer) take
// turns at writing through this, in-process: SQLite's own busy handler
// polls with sleeps of 1 to 100 ms while another connection holds the write
// lock, which a sync's planner, claimer and recorder would otherwise pay on
// every overlap. Other processes still meet SQLite's lock.
//
// Turns go in the order they were asked for: Give hands the turn to the
// longest waiter. A semaphore let the planner, which commits and writes
// again at once, keep the turn through a whole plan while the first claim's
// throttle token waited (300 uploads: no send for the plan's first 50 ms).
class WriteTurn {
 public:
  // False when the turn did not come within `timeout`.
  bool Take(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!held_ && waiting_.empty()) {
      held_ = true;
      return true;
    }
    const std::uint64_t me = next_++;
    waiting_.push_back(me);
    cv_.notify_all();  // AwaitWaiting
    if (cv_.wait_for(lock, timeout, [&] { return granted_ == me; })) {
      granted_ = 0;  // held_ stays true: Give handed it over
      return true;
    }
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), me));
    return false;
  }
  // True while a taker waits: the holder's batch should commit soon.
  bool Wanted() {
    std::lock_guard lock(mu_);
    return !waiting_.empty();
  }
  // For tests: true once `n` takers wait for the turn.
  bool AwaitWaiting(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return waiting_.size() >= n; });
  }
  // By whichever thread commits.
  void Give() {
    std::lock_guard lock(mu_);
    if (waiting_.empty()) {
      held_ = false;
      return;
    }
    granted_ = waiting_.front();
    waiting_.pop_front();
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  std::deque<std::uint64_t> waiting_;  // tickets, oldest first
  std::uint64_t next_ = 1;             // 0: no ticket
  std::uint64_t granted_ = 0;          // the ticket Give handed the turn to
};

struct Manifest::Impl {
  // Transaction control, keyed in the pool like every other statement
  // (static constexpr members are inline: one address in every file).
  static constexpr char kBeginImmediate[] = "BEGIN IMMEDIATE";
  static constexpr char kCommit[] = "COMMIT";
  static constexpr char kRollback[] = "ROLLBACK";
  static constexpr char kSavepoint[] = "SAVEPOINT w";
  static constexpr char kRelease[] = "RELEASE w";
  static constexpr char kRollbackTo[] = "ROLLBACK TO w";

  std::string path;
  Options options;
  sql::Db db;
  // Opened on first use by ForEachFile, so that a long read does not hold a
  // snapshot on the main (writing) connection.
  std::optional<sql::Db> reader;
  int schema_version = 0;
  // CheckHeader found a manifest of this version: no migration transaction
  // (a hook's `push` opens the manifest once per photo).
  bool header_current = false;
  std::mutex mu;
  int batch_depth = 0;          // BeginBatch nesting
  bool batch_txn_open = false;  // the batch's BEGIN IMMEDIATE was issued
  std::shared_ptr<WriteTurn> turn;  // shared with peers (OpenPeer); null: alone
  bool holds_turn = false;
  std::unordered_map<const char*, std::vector<std::unique_ptr<sql::Stmt>>> pool;

  // A pooled statement, reset and returned to the pool when the lease ends.
  // Must end while `mu` is held.
  class Lease {
   public:
    Lease(Impl* impl, const char* key, std::unique_ptr<sql::Stmt> st)
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
    sql::Stmt* operator->() { return st_.get(); }
    sql::Stmt& operator*() { return *st_; }

   private:
    Impl* impl_;
    const char* key_;
    std::unique_ptr<sql::Stmt> st_;
  };

  Result<Lease> Acquire(const char* sql) {
    auto& free = pool[sql];
    if (!free.empty()) {
      std::unique_ptr<sql::Stmt> st = std::move(free.back());
      free.pop_back();
      return Lease(this, sql, std::move(st));
    }
    SHOTSYNC_ASSIGN_OR_RETURN(sql::Stmt st, db.Prepare(sql, /*persistent=*/true));
    return Lease(this, sql, std::make_unique<sql::Stmt>(std::move(st)));
  }

  Status Run(const char* sql) {
    SHOTSYNC_ASSIGN_OR_RETURN(Lease st, Acquire(sql));
    return st->Run();
  }

  // BEGIN IMMEDIATE once it is this connection's turn among its peers.
  Status Begin() {
    if (turn && !holds_turn) {
      if (!turn->Take(std::chrono::milliseconds(std::max(options.busy_timeout_ms, 0)))) {
        return Status(Code::kBusy, path + ": another connection of this process kept the write lock for " +
                                       std::to_string(options.busy_timeout_ms) + " ms");
      }
      holds_turn = true;
    }
    Status st = Run(kBeginImmediate);
    if (!st.ok()) GiveTurn();
    return st;
  }
  // After a transaction ended (committed or rolled back).
  void GiveTurn() {
    if (holds_turn && !db.InTransaction()) {
      holds_turn = false;
      turn->Give();
    }
  }

  Status Commit() {
    Status st = Run(kCommit);
    if (!st.ok() && db.InTransaction()) (void)Run(kRollback);
    GiveTurn();
    return st;
  }

  // Commits the open batch's transaction, if any; the batch continues in a
  // new transaction at its next write.
  Status CommitOpenBatch() {
    if (!batch_txn_open) return {};
    batch_txn_open = false;
    return Commit();
  }

  Status CheckWritable() const {
    if (options.read_only) {
      return Status(Code::kInvalidArgument, path + ": opened read-only, cannot write");
    }
    return {};
  }

  // Runs `body` (a sequence of statements returning Status) as one atomic
  // write. Outside a batch: BEGIN IMMEDIATE ... COMMIT. Inside a batch: a
  // savepoint in the batch's transaction; `durable` then commits the batch
  // (its earlier writes included) before returning, and the batch continues
  // in a new transaction at its next write.
  template <class F>
  Status Write(F&& body, bool durable = false) {
    SHOTSYNC_RETURN_IF_ERROR(CheckWritable());
    if (batch_depth == 0) {
      SHOTSYNC_RETURN_IF_ERROR(Begin());
      Status st = body();
      if (!st.ok()) {
        if (db.InTransaction()) (void)Run(kRollback);
        GiveTurn();
        return st;
      }
      return Commit();
    }
    if (!batch_txn_open) {
      SHOTSYNC_RETURN_IF_ERROR(Begin());
      batch_txn_open = true;
    }
    Status st = Run(kSavepoint);
    if (st.ok()) st = body();
    if (!st.ok()) {
      if (!db.InTransaction()) {
        // SQLite rolled the whole transaction back (I/O error, full disk...).
        batch_txn_open = false;
        GiveTurn();
        return st.WithContext("batch rolled back");
      }
      (void)Run(kRollbackTo);
      (void)Run(kRelease);
      return st;
    }
    SHOTSYNC_RETURN_IF_ERROR(Run(kRelease));
    if (durable) return CommitOpenBatch();
    return {};
  }

  // Opening (store/manifest.cpp) and the schema (store/schema.cpp).
  Status Setup();
  Status CheckHeader();
  Status Migrate();
  // A manifest that does not exist yet, built beside `path` and linked into
  // place (store/schema.cpp). False when it could not be done that way (the
  // caller creates it in place) or another process created it meanwhile.
  static bool CreateBeside(const std::string& path);
  Status CheckTables();

  // Every row of a query, each made by `read` (Stmt& -> Result<T> or T).
  template <class T, class Read>
  static Result<std::vector<T>> Rows(sql::Stmt& st, Read read) {
    std::vector<T> out;
    for (;;) {
      SHOTSYNC_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return out;
      Result<T> item = read(st);
      if (!item.ok()) return item.status();
      out.push_back(std::move(*item));
    }
  }
  // Row readers: a SHOTSYNC_FILE_COLS row (store/files_table.cpp), a job row
  // (store/jobs_table.cpp).
  static Result<FileRecord> ReadFile(sql::Stmt& st);
  static Result<JobRecord> ReadJob(sql::Stmt& st);
  Result<std::optional<FileRecord>> QueryOneFile(Lease& st);
};

}  // namespace shotsync
