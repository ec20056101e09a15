#include "emulator_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "http.hpp"

extern char** environ;

namespace shotsync::testing {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(10);
constexpr std::size_t kKeepOutput = 64 * 1024;

std::string Quote(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a.find_first_of(" \t\"'") == std::string::npos ? a : "'" + a + "'";
  }
  return s;
}

// Kills and reaps `pid` (used when the constructor fails).
void KillAndReap(pid_t pid) {
  ::kill(pid, SIGKILL);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

std::string DescribeWaitStatus(int st) {
  if (WIFEXITED(st)) return "exited with code " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return "killed by signal " + std::to_string(WTERMSIG(st));
  return "wait status " + std::to_string(st);
}

}  // namespace

std::string EmulatorProcess::DefaultExecutable() {
  if (const char* env = std::getenv("SHOTSYNC_EMULATOR"); env != nullptr && *env != '\0') {
    return env;
  }
#ifdef SHOTSYNC_EMULATOR_PATH
  return SHOTSYNC_EMULATOR_PATH;
#else
  return {};
#endif
}

EmulatorProcess::EmulatorProcess(std::vector<std::string> args, std::string exe) {
  if (exe.empty()) exe = DefaultExecutable();
  if (exe.empty()) {
    throw std::runtime_error(
        "EmulatorProcess: no emulator executable (pass one, set $SHOTSYNC_EMULATOR, or build the "
        "support library with SHOTSYNC_EMULATOR_PATH)");
  }
  std::vector<std::string> argv{exe, "--port", "0"};
  argv.insert(argv.end(), args.begin(), args.end());
  command_ = Quote(argv);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, exe.c_str(), &actions, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    throw std::runtime_error("EmulatorProcess: cannot start `" + command_ + "`: " +
                             std::strerror(rc));
  }

  // First stdout line = base URL.
  std::string buf;
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  std::string failure;
  while (buf.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      failure = "no base URL on stdout within 10 s";
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;  // timeout is handled at the top
    char chunk[4096];
    ssize_t got = ::read(fds[0], chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      // EOF: the child is exiting; give it a moment so the message can say how.
      int st = 0;
      pid_t reaped = 0;
      for (int i = 0; i < 100 && (reaped = ::waitpid(pid, &st, WNOHANG)) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (reaped == pid) {
        ::close(fds[0]);
        throw std::runtime_error("EmulatorProcess: `" + command_ + "` " + DescribeWaitStatus(st) +
                                 " before printing its base URL; stdout: \"" + buf + "\"");
      }
      failure = "stdout closed before the base URL";
      break;
    }
    buf.append(chunk, static_cast<std::size_t>(got));
  }
  std::string line;
  if (failure.empty()) {
    auto nl = buf.find('\n');
    line = buf.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out_ = buf.substr(nl + 1);
    // http://127.0.0.1:PORT, or https:// when the emulator serves TLS.
    const std::string_view host = "://127.0.0.1:";
    const std::size_t at = line.find(host);
    const std::string scheme = at == std::string::npos ? "" : line.substr(0, at);
    if (scheme != "http" && scheme != "https") {
      failure = "first stdout line is not http(s)://127.0.0.1:PORT: \"" + line + "\"";
    } else {
      try {
        std::size_t used = 0;
        port_ = std::stoi(line.substr(at + host.size()), &used);
        if (port_ <= 0 || port_ > 65535) failure = "bad port in \"" + line + "\"";
      } catch (const std::exception&) {
        failure = "bad port in \"" + line + "\"";
      }
    }
  }
  if (!failure.empty()) {
    KillAndReap(pid);
    ::close(fds[0]);
    throw std::runtime_error("EmulatorProcess: `" + command_ + "`: " + failure);
  }
  while (!line.empty() && line.back() == '/') line.pop_back();
  base_url_ = line;
  pid_ = pid;
  stdout_fd_ = fds[0];

  // Keep the pipe drained so a chatty emulator never blocks on stdout.
  drain_ = std::thread([this] {
    char chunk[4096];
    for (;;) {
      ssize_t got = ::read(stdout_fd_, chunk, sizeof chunk);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return;
      std::lock_guard<std::mutex> lock(out_mu_);
      out_.append(chunk, static_cast<std::size_t>(got));
      if (out_.size() > kKeepOutput) out_.erase(0, out_.size() - kKeepOutput);
    }
  });
}

EmulatorProcess::~EmulatorProcess() {
  Stop();
  // The child is reaped, so the write end of the pipe is closed and the
  // reader sees EOF (the emulator starts no processes of its own).
  if (drain_.joinable()) drain_.join();
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

int EmulatorProcess::Stop(std::chrono::milliseconds grace) {
  if (stopped_ || pid_ <= 0) return wait_status_;
  stopped_ = true;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      wait_status_ = st;
      return st;
    }
    if (r < 0 && errno != EINTR) return wait_status_;  // not our child any more
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  wait_status_ = st;
  return st;
}

std::string EmulatorProcess::output() const {
  std::lock_guard<std::mutex> lock(out_mu_);
  return out_;
}

nlohmann::json EmulatorProcess::Admin(const std::string& method, const std::string& name,
                                      const nlohmann::json* body) const {
  http::Request req{.method = method, .url = url("/_emulator/" + name),
                    .headers = {{"Accept", "application/json"}}};
  // Setup, not the thing under test: a seed that pregenerates headshots takes
  // its time under ASan on a loaded 2-core machine.
  req.timeout = std::chrono::seconds(120);
  if (body != nullptr) {
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = body->dump();
  }
  http::Response r = http::Perform(req);
  if (!r.transport_ok() || r.status < 200 || r.status >= 300) {
    throw std::runtime_error("emulator admin " + method + " /_emulator/" + name + " failed: " +
                             r.describe());
  }
  if (r.body.empty()) return nullptr;
  return r.json();
}

nlohmann::json EmulatorProcess::Stats() const { return Admin("GET", "stats"); }

void EmulatorProcess::Reset() const {
  const nlohmann::json empty = nlohmann::json::object();
  Admin("POST", "reset", &empty);
}

nlohmann::json EmulatorProcess::Seed(const nlohmann::json& body) const {
  return Admin("POST", "seed", &body);
}

void EmulatorProcess::SetFaults(const nlohmann::json& body) const { Admin("POST", "faults", &body); }

void EmulatorProcess::AddToken(const nlohmann::json& body) const { Admin("POST", "tokens", &body); }

void EmulatorProcess::Config(const nlohmann::json& body) const { Admin("POST", "config", &body); }

nlohmann::json EmulatorProcess::GetFaults() const { return Admin("GET", "faults"); }

nlohmann::json EmulatorProcess::WaitForStats(const std::function<bool(const nlohmann::json&)>& pred,
                                             std::chrono::milliseconds timeout,
                                             std::chrono::milliseconds poll) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    nlohmann::json stats = Stats();
    if (pred(stats)) return stats;
    if (std::chrono::steady_clock::now() >= deadline) {
      throw std::runtime_error("EmulatorProcess::WaitForStats: condition not met after " +
                               std::to_string(timeout.count()) + " ms; stats: " + stats.dump());
    }
    std::this_thread::sleep_for(poll);
  }
}

nlohmann::json EmulatorProcess::WaitIdle(std::chrono::milliseconds timeout) const {
  return WaitForStats(
      [](const nlohmann::json& s) {
        return s.value("in_flight", 0) == 0 && s.value("late_stores_pending", 0) == 0;
      },
      timeout);
}

void EmulatorProcess::LockProject(long long project, bool locked, const std::string& message) const {
  nlohmann::json update = {{"id", project}, {"locked", locked}};
  if (!message.empty()) update["locked_message"] = message;
  Seed({{"project_updates", nlohmann::json::array({update})}});
}

void EmulatorProcess::AdvanceClock(long long seconds) const {
  const nlohmann::json body = {{"advance_s", seconds}};
  Admin("POST", "clock", &body);
}

void EmulatorProcess::FreezeClock(bool frozen) const {
  const nlohmann::json body = {{"freeze", frozen}};
  Admin("POST", "clock", &body);
}

void EmulatorProcess::SetAlbumPhotoLimit(long long album, long long limit) const {
  Seed({{"album_updates", nlohmann::json::array({{{"id", album}, {"photo_limit", limit}}})}});
}

}  // namespace shotsync::testing
