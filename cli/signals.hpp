// StopSignals: SIGINT/SIGTERM become flags instead of killing the process.
// The first signal sets `stop` (finish running transfers, start no more);
// a second one sets `abort` too (cancel running transfers; still safe to
// resume). Signals are blocked in every thread and taken by one sigwait
// thread, so no handler touches shared state.
#pragma once

#include <signal.h>

#include <atomic>
#include <functional>
#include <mutex>
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

  // Where "stopping..." / "aborting..." go (default: stderr). A progress
  // line sets one that clears the line first. Cleared by passing nullptr
  // before whatever it refers to goes away.
  void SetReporter(std::function<void(const char* message)> report);

 private:
  void Report(const char* message);
  std::atomic<bool> stop_{false}, abort_{false};
  std::mutex report_mu_;
  std::function<void(const char*)> report_;
  sigset_t set_{};
  std::thread thread_;
};

// Routes StopSignals' messages through `report` while it lives (declare it
// after whatever `report` uses, so that it is destroyed first).
class ScopedSignalReporter {
 public:
  ScopedSignalReporter(StopSignals& signals, std::function<void(const char*)> report) : signals_(signals) {
    signals_.SetReporter(std::move(report));
  }
  ~ScopedSignalReporter() { signals_.SetReporter(nullptr); }
  ScopedSignalReporter(const ScopedSignalReporter&) = delete;
  ScopedSignalReporter& operator=(const ScopedSignalReporter&) = delete;

 private:
  StopSignals& signals_;
};

}  // namespace shotsync::cli
