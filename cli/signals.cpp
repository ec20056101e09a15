#include "signals.hpp"

#include <pthread.h>

#include <condition_variable>
#include <cstdio>

namespace shotsync::cli {

StopSignals::StopSignals(bool hangup) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  if (hangup) sigaddset(&set_, SIGHUP);
  sigaddset(&set_, SIGUSR1);  // our own wake-up at shutdown
  // Must run before any other thread starts so they all inherit the mask.
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  thread_ = std::jthread([this] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set_, &sig) != 0) continue;
      if (sig == SIGUSR1) return;
      if (sig == SIGHUP) {
        std::lock_guard lock(report_mu_);
        if (hangup_) hangup_();
        continue;
      }
      if (stop_.request_stop()) {
        Report("stopping after the running transfers (again to abort)");
      } else {
        abort_.request_stop();
        Report("aborting; the next run resumes");
      }
    }
  });
}

void StopSignals::StopAfter(std::chrono::milliseconds after) {
  timer_ = std::jthread([this, after](std::stop_token done) {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    // Woken early only by the destructor's stop request.
    cv.wait_for(lock, done, after, [] { return false; });
    if (done.stop_requested()) return;
    if (stop_.request_stop()) Report("--max-duration reached: stopping after the running transfers");
  });
}

void StopSignals::OnHangup(std::function<void()> fn) {
  std::lock_guard lock(report_mu_);
  hangup_ = std::move(fn);
}

void StopSignals::SetReporter(std::function<void(const char*)> report) {
  std::lock_guard lock(report_mu_);
  report_ = std::move(report);
}

void StopSignals::Report(const char* message) {
  std::lock_guard lock(report_mu_);
  if (report_) {
    report_(message);
  } else {
    std::fprintf(stderr, "shotsync: %s\n", message);
  }
}

StopSignals::~StopSignals() {
  // sigwait is not a stop_token wait: wake it with our own signal.
  pthread_kill(thread_.native_handle(), SIGUSR1);
}

}  // namespace shotsync::cli
