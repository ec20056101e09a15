#include "store/sqlite.hpp"

#include <unistd.h>

#include <cstring>

namespace shotsync::sql {

namespace {

// SQLite's unix VFS fsyncs a WAL's folder at the first sync after any open
// that may create the WAL, and it opens every WAL with SQLITE_OPEN_CREATE: a
// hook's `push` (a process per photo) paid a second fsync for its one durable
// claim. Only a WAL that is created needs its folder synced, so this VFS
// opens one that is already there without SQLITE_OPEN_CREATE; everything
// else is the default VFS's own.
struct WalVfs {
  sqlite3_vfs vfs;
  sqlite3_vfs* base;
};

const WalVfs& RegisteredWalVfs();

int WalVfsOpen(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  sqlite3_vfs* base = RegisteredWalVfs().base;
  if ((flags & SQLITE_OPEN_WAL) && (flags & SQLITE_OPEN_CREATE) && name && ::access(name, F_OK) == 0) {
    int rc = base->xOpen(base, name, file, flags & ~SQLITE_OPEN_CREATE, out_flags);
    if (rc == SQLITE_OK) return rc;  // else it vanished meanwhile: create it, folder sync and all
  }
  return base->xOpen(base, name, file, flags, out_flags);
}

// Registered once per process and never changed after (SQLite keeps VFSes
// in a process-wide list). Without a default VFS to wrap (not on Linux),
// connections open with SQLite's own choice.
const WalVfs& RegisteredWalVfs() {
  static const WalVfs wal = [] {
    WalVfs w{};
    w.base = sqlite3_vfs_find(nullptr);
    if (w.base) {
      w.vfs = *w.base;
      w.vfs.zName = "shotsync-wal";
      w.vfs.pNext = nullptr;
      w.vfs.xOpen = &WalVfsOpen;
    }
    return w;
  }();
  static const bool registered =
      wal.base && sqlite3_vfs_register(const_cast<sqlite3_vfs*>(&wal.vfs), 0) == SQLITE_OK;
  (void)registered;
  return wal;
}

const char* WalVfsName() {
  const WalVfs& w = RegisteredWalVfs();
  return w.base ? w.vfs.zName : nullptr;
}

}  // namespace

Code CodeForSqlite(int rc) noexcept {
  switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
      return Code::kOk;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Code::kBusy;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_FORMAT:
      return Code::kCorrupt;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
    case SQLITE_AUTH:
      return Code::kIo;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
      return Code::kInvalidArgument;
    case SQLITE_INTERRUPT:
      return Code::kCancelled;
    default:
      return Code::kInternal;
  }
}

Result<Db> Db::Open(const std::string& path, int flags) {
  Db db;
  db.path_ = path;
  int rc = sqlite3_open_v2(path.c_str(), &db.db_,
                           flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, WalVfsName());
  if (rc != SQLITE_OK) {
    Status st = db.db_ ? db.Error(rc, "cannot open")
                       : Status(Code::kInternal, path + ": cannot open: out of memory");
    return st;
  }
  // No checkpoint when a connection closes: a hook's `push` would pay fsyncs
  // on every exit. A sync checkpoints at its end (Manifest::Checkpoint), and
  // SQLite's automatic checkpoints keep the WAL bounded in between.
  sqlite3_db_config(db.db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  return db;
}

Db::~Db() {
  // sqlite3_close_v2 defers the close until every statement is finalized, so
  // the order in which an owner destroys its statements does not matter.
  if (db_) sqlite3_close_v2(db_);
}

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    if (db_) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
  }
  return *this;
}

Status Db::Error(int rc, std::string_view what) const {
  std::string m = path_;
  m += ": ";
  m += what;
  m += ": ";
  const char* msg = db_ ? sqlite3_errmsg(db_) : nullptr;
  // sqlite3_errmsg describes the most recent failing call; when it no longer
  // matches rc (e.g. an error reported later by Step), use the generic text.
  if (msg == nullptr || (db_ && (sqlite3_extended_errcode(db_) & 0xff) != (rc & 0xff))) {
    msg = sqlite3_errstr(rc);
  }
  m += msg;
  Code code = CodeForSqlite(rc);
  if (code == Code::kIo && db_) {
    int err = sqlite3_system_errno(db_);
    if (err != 0) {
      m += " (";
      m += std::strerror(err);
      m += ")";
    }
  }
  return {code, std::move(m)};
}

Status Db::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return {};
  std::string what = std::string(sql).substr(0, 60);
  if (err) sqlite3_free(err);
  return Error(rc, what);
}

Result<Stmt> Db::Prepare(std::string_view sql, bool persistent) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              persistent ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Error(rc, "prepare \"" + std::string(sql.substr(0, 60)) + "\"");
  }
  return Stmt(this, stmt);
}

Result<std::int64_t> Db::QueryInt(const char* sql) {
  SHOTSYNC_ASSIGN_OR_RETURN(Stmt st, Prepare(sql));
  SHOTSYNC_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Status(Code::kInternal, path_ + ": " + sql + ": no row");
  return st.Int64(0);
}

Result<std::string> Db::QueryText(const char* sql) {
  SHOTSYNC_ASSIGN_OR_RETURN(Stmt st, Prepare(sql));
  SHOTSYNC_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Status(Code::kInternal, path_ + ": " + sql + ": no row");
  return st.Text(0);
}

Status Stmt::BindResult(int rc, int index) {
  if (rc == SQLITE_OK) return {};
  return db_->Error(rc, "bind parameter " + std::to_string(index));
}

Status Stmt::Bind(int index, std::int64_t v) {
  return BindResult(sqlite3_bind_int64(stmt_, index, v), index);
}

Status Stmt::Bind(int index, double v) {
  return BindResult(sqlite3_bind_double(stmt_, index, v), index);
}

Status Stmt::Bind(int index, std::string_view v) {
  // A null data pointer would bind NULL; an empty view must stay ''.
  const char* p = v.data() ? v.data() : "";
  return BindResult(sqlite3_bind_text64(stmt_, index, p, v.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
                    index);
}

Status Stmt::Bind(int index, Blob v) {
  if (v.bytes.empty()) return BindResult(sqlite3_bind_zeroblob(stmt_, index, 0), index);
  return BindResult(
      sqlite3_bind_blob64(stmt_, index, v.bytes.data(), v.bytes.size(), SQLITE_TRANSIENT), index);
}

Status Stmt::Bind(int index, Null) {
  return BindResult(sqlite3_bind_null(stmt_, index), index);
}

Result<bool> Stmt::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // With sqlite3_prepare_v3 the step result already is the specific error.
  Status st =
      db_->Error(rc, std::string("\"") + std::string(sqlite3_sql(stmt_)).substr(0, 60) + "\"");
  sqlite3_reset(stmt_);
  return st;
}

Status Stmt::Run() {
  for (;;) {
    SHOTSYNC_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return {};
  }
}

void Stmt::Reset() noexcept {
  if (stmt_) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

std::string Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
}

std::string Stmt::Bytes(int col) const { return std::string(BytesView(col)); }

std::string_view Stmt::BytesView(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  if (!p || n <= 0) return {};
  return {static_cast<const char*>(p), static_cast<std::size_t>(n)};
}

}  // namespace shotsync::sql
