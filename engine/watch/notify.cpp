// SystemdNotifier (notify.hpp): sd_notify(3) datagrams, and the watchdog
// thread that pings only while the watcher's loop heartbeats.
//
// The protocol is written here rather than linked from libsystemd: it is a
// datagram of "KEY=VALUE" lines to the AF_UNIX socket $NOTIFY_SOCKET names
// (systemd documents it as a stable interface for exactly this), while the
// library brought six more libraries into every process, a hook's `push`
// per photo among them, for two calls.
#include "watch/notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "shotsync/fd.hpp"

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

// $WATCHDOG_USEC when it is meant for this process (sd_watchdog_enabled(3):
// a $WATCHDOG_PID, if set, must be ours); 0 when none.
std::uint64_t WatchdogUsec() {
  const char* usec = std::getenv("WATCHDOG_USEC");
  if (usec == nullptr || *usec == '\0') return 0;
  if (const char* pid = std::getenv("WATCHDOG_PID"); pid != nullptr && *pid != '\0') {
    long long owner = 0;
    const auto [end, ec] = std::from_chars(pid, pid + std::strlen(pid), owner);
    if (ec != std::errc() || *end != '\0' || owner != static_cast<long long>(::getpid())) return 0;
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(usec, usec + std::strlen(usec), value);
  return ec == std::errc() && *end == '\0' ? value : 0;
}

// One datagram to the socket: a path, or '@' for Linux's abstract namespace.
void SendDatagram(const std::string& socket, std::string_view state) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.empty() || (socket[0] != '/' && socket[0] != '@') || socket.size() >= sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, socket.data(), socket.size());
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return;
  (void)::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), len);
}

}  // namespace

SystemdNotifier::SystemdNotifier() : last_heartbeat_(SteadyNow()) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  if (!enabled_) return;
  socket_ = socket;
  // Only when WATCHDOG_PID (if any) is us: a child that inherited the
  // environment does not ping for its parent.
  if (const std::uint64_t usec = WatchdogUsec(); usec > 0) {
    watchdog_interval_ = std::chrono::microseconds(usec);
    watchdog_ = std::jthread([this](std::stop_token stop) { WatchdogLoop(std::move(stop)); });
  }
}

SystemdNotifier::~SystemdNotifier() = default;  // the jthread member stops and joins

void SystemdNotifier::Send(std::string_view state) {
  if (!enabled_) return;
  // Best effort: a lost datagram is a missed status line; systemd's own
  // timeouts (start, watchdog) cover a notifier that cannot reach it.
  SendDatagram(socket_, state);
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
