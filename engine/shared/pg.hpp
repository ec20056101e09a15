// A small libpq layer for the studio's shared store: RAII for the
// connection and results, typed parameters (bytea for names, which may not
// be UTF-8), and transactions that are run again after a lost connection.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "shotsync/status.hpp"

namespace shotsync::pg {

struct ConnClose {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct ResultClear {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnClose>;
using ResultPtr = std::unique_ptr<PGresult, ResultClear>;

// A statement parameter. Bytes are sent in binary (bytea), the rest as text.
struct Param {
  std::string value;
  bool binary = false;
  bool null = false;
};
Param Text(std::string_view s);
Param Bytes(std::string_view s);
Param Int(std::int64_t v);
Param Real(double v);

// The rows of one statement (text format; bytea columns come as hex).
class Rows {
 public:
  explicit Rows(ResultPtr r) : r_(std::move(r)) {}
  int size() const { return PQntuples(r_.get()); }
  bool Null(int row, int col) const { return PQgetisnull(r_.get(), row, col); }
  std::string Text(int row, int col) const { return PQgetvalue(r_.get(), row, col); }
  std::int64_t Int(int row, int col) const;
  double Real(int row, int col) const;
  bool Bool(int row, int col) const { return Text(row, col) == "t"; }
  std::string Bytes(int row, int col) const;  // decodes bytea's "\x..." form
  std::int64_t affected() const;              // rows an INSERT/UPDATE/DELETE changed

 private:
  ResultPtr r_;
};

// What the transaction body runs its statements through.
class Tx {
 public:
  explicit Tx(PGconn* c) : c_(c) {}
  Result<Rows> Exec(std::string_view sql, std::initializer_list<Param> params = {});
  Result<Rows> Exec(std::string_view sql, const std::vector<Param>& params);
  // Several statements without parameters (a migration).
  Status Script(const std::string& sql);

 private:
  PGconn* c_;
};

// One connection to the database, used one statement at a time.
class Session {
 public:
  // kNetwork when the server cannot be reached within the connect timeout.
  static Result<std::unique_ptr<Session>> Connect(const std::string& url, double connect_timeout_s,
                                                  double retry_for_s);
  const std::string& display() const { return display_; }

  // Runs `body` in BEGIN ... COMMIT. A lost connection, a server shutting
  // down or a serialization failure rolls back and runs `body` again on a new
  // connection, with backoff, for up to retry_for_s seconds; then kNetwork
  // naming the server. Every body must therefore be safe to run twice.
  Status Transact(const std::function<Status(Tx&)>& body);
  // One statement in its own transaction, retried the same way.
  Result<Rows> Exec(std::string_view sql, std::initializer_list<Param> params = {});

 private:
  Session(ConnPtr conn, std::string url, std::string display, double connect_timeout_s, double retry_for_s);
  Status Reconnect();

  std::mutex mu_;
  ConnPtr conn_;
  std::string url_, display_;
  double connect_timeout_s_, retry_for_s_;
};

// "host:port/dbname" of a connection URI or keyword string, without the
// user, the password or any option; "" when it does not parse.
std::string DisplayName(const std::string& url);

}  // namespace shotsync::pg
