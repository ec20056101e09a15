// EmulatorProcess: runs one shotsync-emulator for the lifetime of the object.
//
//   shotsync::testing::EmulatorProcess emu({"--shootbin-rpm", "5"});
//   auto r = http::Get(emu.url("/api/projects"), {...});
//   auto stats = emu.Stats();
//
// The constructor spawns the emulator executable (posix_spawn, no shell) as
//   <exe> --port 0 <args...>
// with stdout on a pipe, and waits (10 s at most) for the first stdout line,
// which is the base URL ("http://127.0.0.1:PORT"). A child that exits or stays
// silent makes the constructor throw std::runtime_error naming the command.
// Later stdout lines are drained by a background thread (kept, last 64 KiB,
// for output()); stderr is inherited so emulator logs land in the test log.
//
// The destructor (or Stop()) sends SIGTERM, waits up to the grace period and
// then SIGKILLs, and always reaps the child.
//
// Executable: the `exe` argument, else $SHOTSYNC_EMULATOR (to run another
// build, e.g. a sanitizer one, from a benchmark), else the emulator built by
// this tree (compile definition SHOTSYNC_EMULATOR_PATH of the support lib).
//
// Admin helpers talk to the emulator's /_emulator/* endpoints (no auth) and
// throw std::runtime_error with the answer when the status is not 2xx.
//
// Thread safety: the admin helpers may be called from several threads; the
// object itself must not be moved or destroyed while they run.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace shotsync::testing {

class EmulatorProcess {
 public:
  explicit EmulatorProcess(std::vector<std::string> args = {}, std::string exe = {});
  ~EmulatorProcess();
  EmulatorProcess(const EmulatorProcess&) = delete;
  EmulatorProcess& operator=(const EmulatorProcess&) = delete;

  // "http://127.0.0.1:PORT" (no trailing slash).
  const std::string& base_url() const { return base_url_; }
  // base_url() + path; `path` starts with '/'.
  std::string url(std::string_view path) const { return base_url_ + std::string(path); }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Whatever the emulator wrote to stdout after the first line (last 64 KiB).
  std::string output() const;

  // GET /_emulator/stats
  nlohmann::json Stats() const;
  // POST /_emulator/reset: all state back to the defaults.
  void Reset() const;
  // POST /_emulator/seed with `body`; returns the emulator's answer (created ids).
  nlohmann::json Seed(const nlohmann::json& body) const;
  // POST /_emulator/faults: change fault knobs at run time.
  void SetFaults(const nlohmann::json& body) const;
  // POST /_emulator/tokens: add a token with a plan/scopes/revoked flag.
  void AddToken(const nlohmann::json& body) const;
  // POST /_emulator/config: other run-time options (e.g. revision_processing_ms).
  void Config(const nlohmann::json& body) const;
  // GET /_emulator/faults: every fault knob as it is now.
  nlohmann::json GetFaults() const;
  // Polls GET /_emulator/stats (every `poll`) until `pred(stats)` holds;
  // returns the stats that satisfied it, or throws std::runtime_error with
  // the last stats after `timeout`. For waiting on a condition (a late store,
  // requests in flight) instead of sleeping; the timeout is a failure bound
  // for a loaded machine, not a speed check.
  nlohmann::json WaitForStats(const std::function<bool(const nlohmann::json&)>& pred,
                              std::chrono::milliseconds timeout = std::chrono::seconds(60),
                              std::chrono::milliseconds poll = std::chrono::milliseconds(20)) const;
  // Waits until no API request is being handled and no late store is pending
  // (stats in_flight == 0 and late_stores_pending == 0); returns those stats.
  nlohmann::json WaitIdle(std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;
  // Shootbin shortcuts over POST /_emulator/seed ("project_updates" /
  // "album_updates"): lock or unlock a project with the 403 message its
  // uploads, revisions and album creation then get; set an album's plan
  // photo limit (0 = none).
  void LockProject(long long project, bool locked = true, const std::string& message = {}) const;
  void SetAlbumPhotoLimit(long long album, long long limit) const;
  // POST /_emulator/clock: move the emulator's clock (rate-limit window,
  // signed-URL expiry, Date) forward, or stop it so that a burst of requests
  // cannot straddle a minute boundary. Neither waits.
  void AdvanceClock(long long seconds) const;
  void FreezeClock(bool frozen = true) const;
  // Any admin call: METHOD /_emulator/<name> with an optional JSON body;
  // returns the parsed answer (null for an empty body).
  nlohmann::json Admin(const std::string& method, const std::string& name,
                       const nlohmann::json* body = nullptr) const;

  // SIGTERM, wait `grace`, then SIGKILL. Returns the wait status (as from
  // waitpid); idempotent (later calls return the first result).
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

  // The executable the no-argument constructor runs.
  static std::string DefaultExecutable();

 private:
  std::string command_;  // for messages
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
  std::string base_url_;
  bool stopped_ = false;
  int wait_status_ = 0;
  std::thread drain_;
  mutable std::mutex out_mu_;
  std::string out_;  // guarded by out_mu_
};

}  // namespace shotsync::testing
