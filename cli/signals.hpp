// StopSignals: SIGINT/SIGTERM become flags instead of killing the process.
// The first signal sets `stop` (finish running transfers, start no more);
// a second one sets `abort` too (cancel running transfers; still safe to
// resume). Signals are blocked in every thread and taken by one sigwait
// thread, so no handler touches shared state.
#pragma once

#include <signal.h>

#include <atomic>
#include <thread>

namespace shotsync::cli {

class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  const std::atomic<bool>& stop() const { return stop_; }
  const std::atomic<bool>& abort() const { return abort_; }

 private:
  std::atomic<bool> stop_{false}, abort_{false};
  sigset_t set_{};
  std::thread thread_;
};

}  // namespace shotsync::cli
