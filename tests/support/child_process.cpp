#include "child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "temp_dir.hpp"

extern char** environ;

namespace shotsync::testing {
namespace {

// This process's environment with `env` added (and overriding), as "K=V".
std::vector<std::string> MergedEnv(const std::map<std::string, std::string>& env) {
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    const auto eq = kv.find('=');
    if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (auto& [k, v] : env) merged[k] = v;
  std::vector<std::string> out;
  for (auto& [k, v] : merged) out.push_back(k + "=" + v);
  return out;
}

// Null-terminated pointers into `strings` (which must outlive them).
std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int ExitCode(int wait_status) {
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env,
                           std::string out_prefix)
    : out_prefix_(std::move(out_prefix)) {
  std::vector<std::string> env_strings = MergedEnv(env);
  std::vector<char*> envp = CStrings(env_strings), args = CStrings(argv);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, (out_prefix_ + ".out").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, (out_prefix_ + ".err").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int rc = posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("spawn " + argv[0] + ": " + std::strerror(rc));
}

ChildProcess::~ChildProcess() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (reaped_) return code_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      code_ = ExitCode(st);
      return code_;
    }
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void ChildProcess::Kill(int sig) {
  if (!reaped_ && pid_ > 0) ::kill(pid_, sig);
}

std::string ChildProcess::Stdout() const { return ReadFileText(out_prefix_ + ".out"); }
std::string ChildProcess::Stderr() const { return ReadFileText(out_prefix_ + ".err"); }

RunResult RunProgram(std::vector<std::string> argv, std::map<std::string, std::string> env,
                     const std::string& out_prefix) {
  ChildProcess p(std::move(argv), std::move(env), out_prefix);
  RunResult r;
  r.code = p.Wait().value_or(-1);
  r.out = p.Stdout();
  r.err = p.Stderr();
  return r;
}

RunResult RunOnPty(std::vector<std::string> argv, std::map<std::string, std::string> env,
                   const std::string& out_prefix) {
  std::vector<std::string> env_strings = MergedEnv(env);
  std::vector<char*> envp = CStrings(env_strings), args = CStrings(argv);
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  char slave[128] = {};
  if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0 ||
      ::ptsname_r(master, slave, sizeof slave) != 0) {
    const int err = errno;
    if (master >= 0) ::close(master);
    throw std::runtime_error(std::string("RunOnPty: no pseudo-terminal: ") + std::strerror(err));
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(master);
    throw std::runtime_error(std::string("RunOnPty: fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec. A new session, so
    // that opening the slave makes it the controlling terminal.
    if (::setsid() < 0) ::_exit(126);
    const int fd = ::open(slave, O_RDWR);
    if (fd < 0) ::_exit(126);
    for (int std_fd = 0; std_fd < 3; ++std_fd) ::dup2(fd, std_fd);
    if (fd > 2) ::close(fd);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  // Read until every holder of the slave is gone (EIO on Linux), or EOF.
  RunResult r;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(master, buf, sizeof buf);
    if (n > 0) {
      r.out.append(buf, std::size_t(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  ::close(master);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  r.code = ExitCode(st);
  if (FILE* f = std::fopen((out_prefix + ".out").c_str(), "wb")) {
    std::fwrite(r.out.data(), 1, r.out.size(), f);
    std::fclose(f);
  }
  return r;
}

}  // namespace shotsync::testing
