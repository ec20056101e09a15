#include "pg_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ports.hpp"

namespace shotsync::testing {
namespace {

namespace fs = std::filesystem;

constexpr uid_t kNobodyId = 65534;
constexpr const char* kNotInstalled = "PostgreSQL server not installed: apt-get install -y postgresql";

using Conn = std::unique_ptr<PGconn, decltype(&PQfinish)>;
using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

bool IsServerBin(const fs::path& dir) {
  return fs::exists(dir / "initdb") && fs::exists(dir / "pg_ctl");
}

// $SHOTSYNC_PG_BIN, else the highest /usr/lib/postgresql/<version>/bin.
std::string FindBin() {
  if (const char* env = std::getenv("SHOTSYNC_PG_BIN"); env != nullptr && *env != '\0') {
    if (!IsServerBin(env)) throw std::runtime_error(std::string(kNotInstalled) + " (no initdb/pg_ctl in " + env + ")");
    return env;
  }
  fs::path best;
  double best_version = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const double version = std::strtod(entry.path().filename().c_str(), nullptr);
    if (version > best_version && IsServerBin(entry.path() / "bin")) {
      best_version = version;
      best = entry.path() / "bin";
    }
  }
  if (best.empty()) throw std::runtime_error(kNotInstalled);
  return best.string();
}

std::string ReadFrom(const std::string& path, std::uintmax_t offset) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(std::streamoff(offset));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::uintmax_t FileSize(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

std::string Tail(const std::string& text, std::size_t n = 3000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

// Alive and not a zombie (an orphaned postmaster may never be reaped here).
bool Alive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

Conn Connect(const std::string& url) {
  Conn conn(PQconnectdb(url.c_str()), &PQfinish);
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error("PgServer: cannot connect to " + url + ": " +
                             (conn ? PQerrorMessage(conn.get()) : "out of memory"));
  }
  PQsetNoticeProcessor(conn.get(), [](void*, const char*) {}, nullptr);  // "drop cascades to ..."
  return conn;
}

std::vector<std::string> Exec(const std::string& url, const std::string& sql) {
  const Conn conn = Connect(url);
  const Result res(PQexec(conn.get(), sql.c_str()), &PQclear);
  const ExecStatusType status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error("PgServer: query failed: " + sql + ": " + PQerrorMessage(conn.get()));
  }
  std::vector<std::string> rows;
  if (status == PGRES_TUPLES_OK && PQnfields(res.get()) > 0) {
    for (int i = 0; i < PQntuples(res.get()); ++i) rows.emplace_back(PQgetvalue(res.get(), i, 0));
  }
  return rows;
}

}  // namespace

PgServer::PgServer()
    : bin_(FindBin()),
      data_((root_.path() / "data").string()),
      log_((root_.path() / "server.log").string()) {
  // Postgres refuses root: as root the server runs as nobody, which must own
  // the folder that holds the data, the log and the socket.
  if (::geteuid() == 0 && ::chown(root_.path().c_str(), kNobodyId, kNobodyId) != 0) {
    throw std::runtime_error("PgServer: chown " + root_.path().string() + " failed");
  }
  std::string err;
  std::vector<std::string> initdb = {bin_ + "/initdb", "-D", data_, "-U", "shotsync",
                                     "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"};
  std::string help;
  Run({bin_ + "/initdb", "--help"}, &help);  // --help prints to stdout, captured below too
  if (help.find("--no-instructions") != std::string::npos) initdb.push_back("--no-instructions");
  if (Run(initdb, &err) != 0) throw std::runtime_error("PgServer: initdb failed: " + err);

  // Small and fast, many clients; the socket where nobody can write it.
  std::string socket_dir = root_.path().string();
  for (std::size_t i = 0; (i = socket_dir.find('\'', i)) != std::string::npos; i += 2) socket_dir.insert(i, "'");
  std::ofstream(data_ + "/postgresql.conf", std::ios::app)
      << "\nlisten_addresses = '127.0.0.1'\n"
      << "unix_socket_directories = '" << socket_dir << "'\n"
      << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
      << "max_connections = 100\nshared_buffers = 32MB\n";

  try {
    for (int attempt = 0;; ++attempt) {
      port_ = FreeLoopbackPort();  // a race until postgres binds it: retried
      if (TryStart()) break;
      if (attempt == 4) throw std::runtime_error("PgServer: no free port after 5 attempts:\n" + Tail(ReadFrom(log_, 0)));
    }
    url_ = "postgresql://shotsync@127.0.0.1:" + std::to_string(port_) + "/studio";
    Exec("postgresql://shotsync@127.0.0.1:" + std::to_string(port_) + "/postgres", "CREATE DATABASE studio");
  } catch (...) {
    KillPostmaster();  // no destructor runs for a half-built object
    throw;
  }
}

PgServer::~PgServer() {
  try {
    Stop();
  } catch (...) {
    try {
      KillPostmaster();
    } catch (...) {
    }
  }
  // root_ then removes the folder.
}

void PgServer::Stop() {
  if (!running_) return;
  running_ = false;
  std::string err;
  if (Run({bin_ + "/pg_ctl", "stop", "-D", data_, "-m", "fast", "-w", "-t", "20"}, &err) != 0) {
    KillPostmaster();
  }
}

void PgServer::Start() {
  if (running_) return;
  if (!TryStart()) {
    throw std::runtime_error("PgServer: port " + std::to_string(port_) + " is taken:\n" + Tail(ReadFrom(log_, 0)));
  }
}

void PgServer::Restart() {
  Stop();
  Start();
}

std::vector<std::string> PgServer::Query(const std::string& sql) const { return Exec(url_, sql); }

bool PgServer::TryStart() {
  const auto log_start = FileSize(log_);
  std::string err;
  const int rc = Run({bin_ + "/pg_ctl", "start", "-D", data_, "-l", log_, "-w", "-t", "60", "-o",
                      "-p " + std::to_string(port_)},
                     &err);
  if (rc == 0) {
    running_ = true;
    return true;
  }
  KillPostmaster();  // a server that came up too slowly must not linger
  const std::string log = ReadFrom(log_, log_start);
  if (log.find("Address already in use") != std::string::npos) return false;
  throw std::runtime_error("PgServer: pg_ctl start failed: " + err + "\nserver log:\n" + Tail(log));
}

void PgServer::KillPostmaster() const {
  const std::string pid_file = data_ + "/postmaster.pid";
  std::ifstream in(pid_file);
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 0) return;
  ::kill(pid, SIGKILL);
  for (int i = 0; i < 100 && Alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // A dead postmaster's pid file would stop the next start (a zombie's pid still "exists").
  std::error_code ec;
  if (!Alive(pid)) fs::remove(pid_file, ec);
}

int PgServer::Run(const std::vector<std::string>& argv, std::string* err) const {
  // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const std::string err_path = (root_.path() / "command.err").string();
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const bool drop = ::geteuid() == 0;
  const char* dir = root_.path().c_str();
  if (null_fd < 0 || err_fd < 0) throw std::runtime_error("PgServer: cannot open " + err_path);

  const pid_t pid = ::fork();
  if (pid == 0) {
    // stdout joins stderr: initdb --help prints there, and errors are wanted whole.
    if (::dup2(null_fd, 0) < 0 || ::dup2(err_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) ::_exit(126);
    if (drop && (::setgroups(0, nullptr) != 0 || ::setgid(kNobodyId) != 0 || ::setuid(kNobodyId) != 0)) {
      ::_exit(126);
    }
    if (::chdir(dir) != 0) ::_exit(126);  // nobody may not be able to read the caller's cwd
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(null_fd);
  ::close(err_fd);
  if (pid < 0) throw std::runtime_error("PgServer: fork failed");
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  *err = ReadFrom(err_path, 0);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (code == 126 || code == 127) *err += "\n(could not run " + argv[0] + " as " + (drop ? "nobody" : "this user") + ")";
  return code;
}

}  // namespace shotsync::testing
