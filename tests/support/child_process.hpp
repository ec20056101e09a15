// ChildProcess: runs a program (no shell) with extra environment variables,
// capturing stdout and stderr into files, for tests of the shotsync CLI.
// The destructor kills (SIGKILL) and reaps a child that is still running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace shotsync::testing {

class ChildProcess {
 public:
  // argv[0] is the executable path. `env` is added to (and overrides) this
  // process's environment. Output goes to <out_prefix>.out / .err.
  ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env,
               std::string out_prefix);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Waits for the exit; returns the exit code, or 128+signal. nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout = std::chrono::minutes(5));
  void Kill(int sig);
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int code_ = -1;
  std::string out_prefix_;
};

// Runs to completion; returns {exit code, stdout, stderr}.
struct RunResult {
  int code = -1;
  std::string out, err;
};
RunResult RunProgram(std::vector<std::string> argv, std::map<std::string, std::string> env,
                     const std::string& out_prefix);

// Runs to completion with a fresh pseudo-terminal as its controlling
// terminal and stdin/stdout/stderr, as a person at a terminal runs it; `out`
// is everything the terminal showed (also saved to <out_prefix>.out), `err`
// is empty. Needs no `script` binary and works as any user; throws
// std::runtime_error when no pty can be made (a loud failure, not a skip).
RunResult RunOnPty(std::vector<std::string> argv, std::map<std::string, std::string> env,
                   const std::string& out_prefix);

}  // namespace shotsync::testing
