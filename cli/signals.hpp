// StopSignals: SIGINT/SIGTERM become stop requests instead of killing the
// process. The first signal requests `stop` (finish running transfers, start
// no more); a second one requests `abort` too (cancel running transfers;
// still safe to resume). Signals are blocked in every thread and taken by one
// sigwait thread, so no handler touches shared state, and the requests wake
// whoever waits on the tokens (std::stop_callback): nobody polls a flag.
#pragma once

#include <signal.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>

namespace shotsync::cli {

class StopSignals {
 public:
  // hangup: SIGHUP is taken too and calls the OnHangup function (watch's
  // reload); otherwise SIGHUP keeps its default.
  explicit StopSignals(bool hangup = false);
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  std::stop_token stop() const { return stop_.get_token(); }
  std::stop_token abort() const { return abort_.get_token(); }

  // Where "stopping..." / "aborting..." go (default: stderr). A progress
  // line sets one that clears the line first. Cleared by passing nullptr
  // before whatever it refers to goes away.
  void SetReporter(std::function<void(const char* message)> report);

  // --max-duration: requests `stop` after `after`, as a first signal would
  // (the running transfers finish, the next run resumes).
  void StopAfter(std::chrono::milliseconds after);

  // What SIGHUP does (needs hangup = true); runs on the signal thread.
  void OnHangup(std::function<void()> fn);

 private:
  void Report(const char* message);
  std::stop_source stop_, abort_;
  std::mutex report_mu_;
  std::function<void(const char*)> report_;
  std::function<void()> hangup_;  // report_mu_
  sigset_t set_{};
  std::jthread timer_;   // StopAfter's; its destructor wakes and joins it
  std::jthread thread_;  // last: started once the members it uses exist
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
