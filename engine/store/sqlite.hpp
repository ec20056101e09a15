// Thin RAII wrappers around the SQLite C API, private to the engine.
//
// Db owns a sqlite3* and knows the file's path, so that every error it builds
// names the file ("<path>: <what>: <sqlite message>"). Stmt owns a
// sqlite3_stmt*; BindAll binds every parameter at once, Step/Run execute it,
// and the column helpers read the current row. Errors become Status values
// with a code derived from the SQLite result code (busy, corrupt, io, ...).
//
// A Stmt keeps a pointer to its Db (for error messages): do not move a Db
// while statements prepared on it are alive.
//
// Neither class is thread-safe: connections are opened with
// SQLITE_OPEN_NOMUTEX and the owner (Manifest) serialises every call.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "shotsync/status.hpp"

namespace shotsync::sql {

// Binds as a BLOB (raw bytes, never interpreted as UTF-8); an empty view binds
// a zero-length blob, not NULL.
struct Blob {
  std::string_view bytes;
};
// Binds SQL NULL.
struct Null {};

// Maps an SQLite (extended) result code to a shotsync Code.
Code CodeForSqlite(int rc) noexcept;

class Stmt;

class Db {
 public:
  Db() = default;
  // Opens `path` with sqlite3_open_v2 `flags` (SQLITE_OPEN_NOMUTEX and
  // SQLITE_OPEN_EXRESCODE are added). The file is not read yet: SQLite reads
  // the header on the first statement.
  static Result<Db> Open(const std::string& path, int flags);
  ~Db();
  Db(Db&& other) noexcept : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)) {}
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  sqlite3* get() const noexcept { return db_; }
  const std::string& path() const noexcept { return path_; }

  // Runs one or more statements that return no rows of interest.
  Status Exec(const char* sql);
  // Prepares one statement; `persistent` hints a long-lived (cached) one.
  Result<Stmt> Prepare(std::string_view sql, bool persistent = false);
  // Runs a statement that yields a single integer (e.g. "PRAGMA user_version").
  Result<std::int64_t> QueryInt(const char* sql);
  Result<std::string> QueryText(const char* sql);

  // "<path>: <what>: <sqlite3_errmsg>" with the code mapped from rc.
  Status Error(int rc, std::string_view what) const;

  int Changes() const noexcept { return sqlite3_changes(db_); }
  bool InTransaction() const noexcept { return sqlite3_get_autocommit(db_) == 0; }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

class Stmt {
 public:
  Stmt() = default;
  Stmt(const Db* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(Stmt&& o) noexcept : db_(o.db_), stmt_(std::exchange(o.stmt_, nullptr)) {}
  Stmt& operator=(Stmt&& o) noexcept {
    if (this != &o) {
      sqlite3_finalize(stmt_);
      db_ = o.db_;
      stmt_ = std::exchange(o.stmt_, nullptr);
    }
    return *this;
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  sqlite3_stmt* get() const noexcept { return stmt_; }

  // Binding, 1-based. Integers bind as INTEGER (unsigned 64-bit values keep
  // their bits: read them back with UInt64), string_view as TEXT.
  Status Bind(int index, std::int64_t v);
  Status Bind(int index, int v) { return Bind(index, static_cast<std::int64_t>(v)); }
  Status Bind(int index, std::uint64_t v) { return Bind(index, static_cast<std::int64_t>(v)); }
  Status Bind(int index, bool v) { return Bind(index, static_cast<std::int64_t>(v ? 1 : 0)); }
  Status Bind(int index, double v);
  Status Bind(int index, std::string_view v);
  Status Bind(int index, const std::string& v) { return Bind(index, std::string_view(v)); }
  Status Bind(int index, const char* v) { return Bind(index, std::string_view(v)); }
  Status Bind(int index, Blob v);
  Status Bind(int index, Null);
  template <class T>
  Status Bind(int index, const std::optional<T>& v) {
    return v ? Bind(index, *v) : Bind(index, Null{});
  }
  // Binds args to parameters 1..N.
  template <class... Args>
  Status BindAll(const Args&... args) {
    int i = 0;
    Status st;
    ((st.ok() ? (void)(st = Bind(++i, args)) : (void)0), ...);
    return st;
  }

  // One step: true = a row is available, false = done. On error the
  // statement is reset and the error returned.
  Result<bool> Step();
  // Steps to completion, ignoring rows (INSERT/UPDATE/DELETE).
  Status Run();
  // Resets and clears bindings so the statement can be reused; releases any
  // read lock it held.
  void Reset() noexcept;

  // Column access on the current row, 0-based.
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::int64_t Int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::uint64_t UInt64(int col) const { return static_cast<std::uint64_t>(Int64(col)); }
  int Int(int col) const { return sqlite3_column_int(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) const;
  // The raw bytes of a BLOB (or TEXT) column.
  std::string Bytes(int col) const;
  // The same, as a view valid until the next Step/Reset (no copy).
  std::string_view BytesView(int col) const;
  std::optional<std::int64_t> OptInt64(int col) const {
    if (IsNull(col)) return std::nullopt;
    return Int64(col);
  }

 private:
  Status BindResult(int rc, int index);

  const Db* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace shotsync::sql
