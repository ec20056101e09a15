#include "shared/pg.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "shotsync/retry.hpp"

namespace shotsync::pg {

namespace {

using SteadyClock = std::chrono::steady_clock;

// First line of a libpq message (they end in '\n' and may run on).
std::string FirstLine(const char* msg) {
  std::string s = msg ? msg : "";
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s.empty() ? "no answer" : s;
}

// Worth running the transaction again on a new connection: the connection
// is gone, the server is restarting, or the transaction lost a race.
bool Transient(PGconn* c, const PGresult* r) {
  if (PQstatus(c) == CONNECTION_BAD) return true;
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  if (!state) return r == nullptr;
  const std::string_view s(state);
  return s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03" || s == "40001" || s == "40P01";
}

struct Failure {
  Status status;
  bool transient = false;
};

}  // namespace

Param Text(std::string_view s) { return {std::string(s), false, false}; }
Param Bytes(std::string_view s) { return {std::string(s), true, false}; }
Param Int(std::int64_t v) { return {std::to_string(v), false, false}; }
Param Real(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return {buf, false, false};
}

std::int64_t Rows::Int(int row, int col) const { return std::strtoll(PQgetvalue(r_.get(), row, col), nullptr, 10); }
double Rows::Real(int row, int col) const { return std::strtod(PQgetvalue(r_.get(), row, col), nullptr); }
std::int64_t Rows::affected() const { return std::strtoll(PQcmdTuples(r_.get()), nullptr, 10); }

std::string Rows::Bytes(int row, int col) const {
  std::size_t n = 0;
  unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_.get(), row, col)), &n);
  if (!raw) return {};
  std::string out(reinterpret_cast<char*>(raw), n);
  PQfreemem(raw);
  return out;
}

Result<Rows> Tx::Exec(std::string_view sql, std::initializer_list<Param> params) {
  return Exec(sql, std::vector<Param>(params));
}

Result<Rows> Tx::Exec(std::string_view sql, const std::vector<Param>& params) {
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  for (const Param& p : params) {
    values.push_back(p.null ? nullptr : p.value.data());
    lengths.push_back(int(p.value.size()));
    formats.push_back(p.binary ? 1 : 0);
  }
  const std::string text(sql);
  ResultPtr r(PQexecParams(c_, text.c_str(), int(params.size()), nullptr, values.data(), lengths.data(),
                           formats.data(), 0));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Rows(std::move(r));
  const bool transient = Transient(c_, r.get());
  return Status(transient ? Code::kNetwork : Code::kInternal,
                FirstLine(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c_)));
}

Status Tx::Script(const std::string& sql) {
  ResultPtr r(PQexec(c_, sql.c_str()));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Status::Ok();
  return Status(Transient(c_, r.get()) ? Code::kNetwork : Code::kInternal,
                FirstLine(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c_)));
}

std::string DisplayName(const std::string& url) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (err) PQfreemem(err);
  if (!opts) return {};
  std::string host = "localhost", port = "5432", db;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    if (std::strcmp(o->keyword, "host") == 0 || (std::strcmp(o->keyword, "hostaddr") == 0 && host == "localhost")) {
      host = o->val;
    }
    if (std::strcmp(o->keyword, "port") == 0) port = o->val;
    if (std::strcmp(o->keyword, "dbname") == 0) db = o->val;
  }
  PQconninfoFree(opts);
  return host + ":" + port + "/" + db;
}

namespace {

Result<ConnPtr> Open(const std::string& url, const std::string& display, double connect_timeout_s) {
  const std::string timeout = std::to_string(std::max(1, int(connect_timeout_s + 0.5)));
  // The URI first (expand_dbname), then what shotsync needs on every
  // connection: bounded connects, keepalives that notice a dead server,
  // and statements that cannot hang a run.
  const char* keys[] = {"dbname", "connect_timeout", "application_name", "keepalives_idle",
                        "keepalives_interval", "keepalives_count", "tcp_user_timeout", "options", nullptr};
  const char* values[] = {url.c_str(), timeout.c_str(), "shotsync", "10", "5", "3", "15000",
                          "-c statement_timeout=15000 -c lock_timeout=10000 -c idle_in_transaction_session_timeout=60000",
                          nullptr};
  ConnPtr c(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  if (!c) return Status(Code::kNetwork, "shared store " + display + ": out of memory");
  if (PQstatus(c.get()) != CONNECTION_OK) {
    return Status(Code::kNetwork, "shared store " + display + ": " + FirstLine(PQerrorMessage(c.get())));
  }
  // The server's notices ("already exists, skipping") are not the user's business.
  PQsetNoticeProcessor(c.get(), [](void*, const char*) {}, nullptr);
  return c;
}

}  // namespace

Result<std::unique_ptr<Session>> Session::Connect(const std::string& url, double connect_timeout_s,
                                                  double retry_for_s) {
  std::string display = DisplayName(url);
  if (display.empty()) {
    return Status::Invalid("shared url is not a PostgreSQL connection URI (postgresql://user@host:port/dbname)");
  }
  SHOTSYNC_ASSIGN_OR_RETURN(ConnPtr c, Open(url, display, connect_timeout_s));
  return std::unique_ptr<Session>(new Session(std::move(c), url, std::move(display), connect_timeout_s, retry_for_s));
}

Session::Session(ConnPtr conn, std::string url, std::string display, double connect_timeout_s,
                 double retry_for_s)
    : conn_(std::move(conn)),
      url_(std::move(url)),
      display_(std::move(display)),
      connect_timeout_s_(connect_timeout_s),
      retry_for_s_(retry_for_s) {}

Status Session::Reconnect() {
  auto c = Open(url_, display_, connect_timeout_s_);
  if (!c.ok()) return c.status();
  conn_ = std::move(*c);
  return Status::Ok();
}

Status Session::Transact(const std::function<Status(Tx&)>& body) {
  std::lock_guard lock(mu_);
  const Backoff backoff(retry_policy::kSharedStore);
  const auto give_up = SteadyClock::now() + std::chrono::duration<double>(retry_for_s_);
  Status last;
  for (int attempt = 1;; ++attempt) {
    if (!conn_ || PQstatus(conn_.get()) == CONNECTION_BAD) {
      last = Reconnect();
    } else {
      Tx tx(conn_.get());
      last = tx.Exec("BEGIN").status();
      if (last.ok()) last = body(tx);
      if (last.ok()) last = tx.Exec("COMMIT").status();
      if (!last.ok() && PQstatus(conn_.get()) == CONNECTION_OK) (void)tx.Exec("ROLLBACK");
      if (last.ok()) return last;
      if (last.code() != Code::kNetwork) return last.WithContext("shared store " + display_);
    }
    if (last.ok()) continue;  // reconnected: run the body
    const auto delay = backoff.Delay(attempt);
    if (SteadyClock::now() + delay > give_up) break;
    std::this_thread::sleep_for(delay);
  }
  std::string msg = last.message();
  if (!msg.starts_with("shared store ")) msg = "shared store " + display_ + ": " + msg;
  return Status(Code::kNetwork, msg);
}

Result<Rows> Session::Exec(std::string_view sql, std::initializer_list<Param> params) {
  std::optional<Rows> out;
  const std::vector<Param> p(params);
  SHOTSYNC_RETURN_IF_ERROR(Transact([&](Tx& tx) -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(Rows rows, tx.Exec(sql, p));
    out.emplace(std::move(rows));
    return Status::Ok();
  }));
  return std::move(*out);
}

}  // namespace shotsync::pg
