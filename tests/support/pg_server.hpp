// PgServer: a real, private PostgreSQL server for one test. initdb into a
// fresh temporary folder, started on an ephemeral 127.0.0.1 port with
// durability off (fast), stopped and removed when the object goes away.
// As root it runs the server as nobody (postgres refuses to run as root).
//
//   PgServer pg;                       // throws if PostgreSQL cannot start
//   Connect(pg.url()); pg.Restart();   // same port and data after a restart
#pragma once

#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace shotsync::testing {

class PgServer {
 public:
  PgServer();
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // "postgresql://shotsync@127.0.0.1:PORT/studio" (a libpq URI).
  const std::string& url() const { return url_; }
  int port() const { return port_; }

  void Stop();     // pg_ctl stop -m fast; SIGKILL if that fails. Idempotent.
  void Start();    // Again on the same port with the same data (after Stop).
  void Restart();  // Stop + Start.

  // Runs `sql` as the superuser on the studio database; the first column of
  // every row of the last result (empty for commands). Throws on error.
  std::vector<std::string> Query(const std::string& sql) const;

 private:
  // Runs a PostgreSQL program (as nobody when root); its exit code, stderr in *err.
  int Run(const std::vector<std::string>& argv, std::string* err) const;
  // pg_ctl start; false (no throw) only when the port was taken.
  bool TryStart();
  void KillPostmaster() const;

  TempDir root_;  // holds data/, the server log and the unix socket
  std::string bin_, data_, log_, url_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace shotsync::testing
