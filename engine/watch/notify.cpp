// SystemdNotifier (notify.hpp): sd_notify(3) datagrams, and the watchdog
// thread that pings only while the watcher's loop heartbeats.
#include "watch/notify.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace shotsync {

namespace {

std::chrono::steady_clock::rep SteadyNow() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

// CLOCK_MONOTONIC in microseconds: systemd 253+ pairs RELOADING=1 with it
// to tell this reload from an earlier one (252 ignores the field).
std::uint64_t MonotonicUsec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace

SystemdNotifier::SystemdNotifier() : last_heartbeat_(SteadyNow()) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  if (!enabled_) return;
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if any) is us: a
  // child that inherited the environment does not ping for its parent.
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    watchdog_interval_ = std::chrono::microseconds(usec);
    watchdog_ = std::jthread([this](std::stop_token stop) { WatchdogLoop(std::move(stop)); });
  }
}

SystemdNotifier::~SystemdNotifier() = default;  // the jthread member stops and joins

void SystemdNotifier::Send(std::string_view state) {
  if (!enabled_) return;
  // Best effort: a lost datagram is a missed status line; systemd's own
  // timeouts (start, watchdog) cover a notifier that cannot reach it.
  (void)sd_notify(0, std::string(state).c_str());
}

void SystemdNotifier::Ready(std::string_view status) {
  std::string msg = "READY=1\nSTATUS=";
  msg += status;
  Send(msg);
}

void SystemdNotifier::Reloading() {
  std::string msg = "RELOADING=1\nMONOTONIC_USEC=";
  msg += std::to_string(MonotonicUsec());
  Send(msg);
}

void SystemdNotifier::Stopping() { Send("STOPPING=1"); }

void SystemdNotifier::Status(std::string_view status) {
  std::string msg = "STATUS=";
  msg += status;
  Send(msg);
}

void SystemdNotifier::Heartbeat() { last_heartbeat_.store(SteadyNow(), std::memory_order_relaxed); }

std::chrono::microseconds SystemdNotifier::watchdog_interval() const { return watchdog_interval_; }

void SystemdNotifier::WatchdogLoop(std::stop_token stop) {
  // Pinging every interval/2 leaves a full half interval for a late wake-up.
  const auto period = watchdog_interval_ / 2;
  const auto alive_for = std::chrono::duration_cast<std::chrono::steady_clock::duration>(watchdog_interval_);
  std::unique_lock lock(wait_mu_);
  while (!stop.stop_requested()) {
    // Wakes early only on a stop request: no predicate to become true.
    wait_cv_.wait_for(lock, stop, period, [] { return false; });
    if (stop.stop_requested()) break;
    const auto last = std::chrono::steady_clock::duration(last_heartbeat_.load(std::memory_order_relaxed));
    if (busy_.load(std::memory_order_relaxed) > 0 ||
        std::chrono::steady_clock::now().time_since_epoch() - last <= alive_for) {
      Send("WATCHDOG=1");
    }
  }
}

}  // namespace shotsync
