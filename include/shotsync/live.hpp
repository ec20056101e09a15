// LiveStats: what a running sync is doing and waiting for, for a progress
// line or a periodic stats line (cli/progress.cpp) to say honestly why a
// run is slow: the throttle's pace, a retry's backoff, uploads being
// confirmed in the album listing.
//
// The engine writes it from any of its threads; a reader takes a Snapshot
// at any time. The throttle's figures are read through a source the engine
// registers for the length of the run (SetThrottleSource), so the reader
// always sees the throttle's own numbers, never a copy that went stale.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

namespace shotsync {

class LiveStats {
 public:
  struct Throttle {
    double rpm = 0;              // the pace in requests per minute (0: no throttle yet)
    std::int64_t requests = 0;   // requests granted so far
    std::int64_t throttled_429 = 0;
    double paused_until = 0;     // Unix seconds (0: not paused)
  };
  struct Snapshot {
    std::string phase;            // "connecting", "scanning", "sending", "confirming"; "" = not started
    std::int64_t found = 0;       // files found by the walk so far
    std::int64_t retries = 0;     // resends after a transient failure, so far
    std::int64_t retrying = 0;    // resends waiting for their backoff now
    std::string retry_cause;      // the latest one's cause: "503", "a reset connection"
    std::int64_t confirming = 0;  // sent without a clear answer: being looked up in the album
    std::int64_t bwlimit = 0;     // bytes/s in force (0: none)
    Throttle throttle;
  };

  Snapshot Read() const;

  void SetPhase(std::string phase);
  void AddFound(std::int64_t files) { found_.fetch_add(files, std::memory_order_relaxed); }
  // A resend was scheduled (cause: what failed); RetryStarted when it goes.
  void RetryScheduled(std::string cause);
  void RetryStarted() { retrying_.fetch_sub(1, std::memory_order_relaxed); }
  void AddConfirming(std::int64_t n) { confirming_.fetch_add(n, std::memory_order_relaxed); }
  void SetBwLimit(std::int64_t bytes_per_s) { bwlimit_.store(bytes_per_s, std::memory_order_relaxed); }
  // Registered by the run for its length (an empty function unregisters).
  void SetThrottleSource(std::function<Throttle()> source);

 private:
  mutable std::mutex mu_;  // phase_, cause_, source_
  std::string phase_;
  std::string cause_;
  std::function<Throttle()> source_;
  std::atomic<std::int64_t> found_{0}, retries_{0}, retrying_{0}, confirming_{0}, bwlimit_{0};
};

}  // namespace shotsync
