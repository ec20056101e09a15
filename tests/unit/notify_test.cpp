// SystemdNotifier (engine/watch/notify.hpp) against a stand-in for systemd:
// an AF_UNIX datagram socket named by $NOTIFY_SOCKET, read with poll
// timeouts (waiting on the datagram, never on a guessed sleep).
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

// A private engine header: the unit suite has only include/ on its path.
#include "watch/notify.hpp"
#include "temp_dir.hpp"

using shotsync::SystemdNotifier;
using namespace std::chrono_literals;

namespace {

// Sets (or with nullptr unsets) one environment variable for a scope.
class NotifyEnvVar {
 public:
  NotifyEnvVar(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~NotifyEnvVar() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  NotifyEnvVar(const NotifyEnvVar&) = delete;
  NotifyEnvVar& operator=(const NotifyEnvVar&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// systemd's end of the notify protocol, bound in a temporary folder.
class FakeNotifySocket {
 public:
  FakeNotifySocket() : path_((dir_.path() / "notify").string()) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path_.size() < sizeof(addr.sun_path));  // else: a shorter $TMPDIR
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  ~FakeNotifySocket() { ::close(fd_); }
  FakeNotifySocket(const FakeNotifySocket&) = delete;
  FakeNotifySocket& operator=(const FakeNotifySocket&) = delete;

  const std::string& path() const { return path_; }

  // The next datagram, or nullopt when none arrives within `timeout`.
  std::optional<std::string> Next(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      const int n = ::poll(&p, 1, static_cast<int>(std::max(left.count(), std::chrono::milliseconds::rep{0})));
      if (n < 0 && errno == EINTR) continue;
      REQUIRE(n >= 0);
      if (n == 0) return std::nullopt;
      char buf[4096];
      const ssize_t got = ::recv(fd_, buf, sizeof(buf), 0);
      REQUIRE(got >= 0);
      return std::string(buf, static_cast<std::size_t>(got));
    }
  }

 private:
  shotsync::testing::TempDir dir_;
  std::string path_;
  int fd_ = -1;
};

// A failure bound for a loaded machine, never an assertion of speed.
constexpr auto kNotifyArrives = 30s;

}  // namespace

TEST_CASE("systemd notify: without NOTIFY_SOCKET nothing starts") {
  NotifyEnvVar socket("NOTIFY_SOCKET", nullptr);
  NotifyEnvVar usec("WATCHDOG_USEC", "200000");
  NotifyEnvVar pid("WATCHDOG_PID", std::to_string(::getpid()).c_str());
  SystemdNotifier notifier;
  CHECK(notifier.watchdog_interval() == 0us);
  notifier.Ready("ready");
  notifier.Heartbeat();
  notifier.Stopping();
}

TEST_CASE("systemd notify: READY, STATUS, RELOADING with MONOTONIC_USEC and STOPPING reach the socket") {
  FakeNotifySocket sock;
  NotifyEnvVar socket("NOTIFY_SOCKET", sock.path().c_str());
  NotifyEnvVar usec("WATCHDOG_USEC", nullptr);
  NotifyEnvVar pid("WATCHDOG_PID", nullptr);
  SystemdNotifier notifier;
  CHECK(notifier.watchdog_interval() == 0us);

  notifier.Ready("watching 2 roots");
  CHECK(sock.Next(kNotifyArrives) == std::optional<std::string>("READY=1\nSTATUS=watching 2 roots"));
  notifier.Status("3 queued");
  CHECK(sock.Next(kNotifyArrives) == std::optional<std::string>("STATUS=3 queued"));

  notifier.Reloading();
  const auto reloading = sock.Next(kNotifyArrives);
  REQUIRE(reloading);
  const std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
  REQUIRE(reloading->rfind(prefix, 0) == 0);
  const std::string usec_text = reloading->substr(prefix.size());
  REQUIRE(!usec_text.empty());
  CHECK(usec_text.find_first_not_of("0123456789") == std::string::npos);
  CHECK(std::stoull(usec_text) > 0);

  notifier.Stopping();
  CHECK(sock.Next(kNotifyArrives) == std::optional<std::string>("STOPPING=1"));
}

TEST_CASE("systemd notify: a WATCHDOG_PID of another process starts no watchdog") {
  FakeNotifySocket sock;
  NotifyEnvVar socket("NOTIFY_SOCKET", sock.path().c_str());
  NotifyEnvVar usec("WATCHDOG_USEC", "200000");
  // Inherited from a parent that systemd watches: not ours to ping for.
  NotifyEnvVar pid("WATCHDOG_PID", std::to_string(::getppid()).c_str());
  SystemdNotifier notifier;
  CHECK(notifier.watchdog_interval() == 0us);
}

TEST_CASE("systemd notify: WATCHDOG=1 is sent while heartbeats come, and only then") {
  FakeNotifySocket sock;
  NotifyEnvVar socket("NOTIFY_SOCKET", sock.path().c_str());
  NotifyEnvVar usec("WATCHDOG_USEC", "200000");
  NotifyEnvVar pid("WATCHDOG_PID", std::to_string(::getpid()).c_str());
  SystemdNotifier notifier;
  const auto interval = std::chrono::duration_cast<std::chrono::milliseconds>(notifier.watchdog_interval());
  REQUIRE(interval == 200ms);

  // Heartbeats well within each interval (the poll returns early on a ping).
  const auto beats_until = [&](int wanted) {
    int pings = 0;
    const auto deadline = std::chrono::steady_clock::now() + kNotifyArrives;
    while (pings < wanted && std::chrono::steady_clock::now() < deadline) {
      notifier.Heartbeat();
      if (const auto msg = sock.Next(interval / 4)) {
        REQUIRE(*msg == "WATCHDOG=1");
        ++pings;
      }
    }
    return pings;
  };
  REQUIRE(beats_until(3) == 3);

  // Heartbeats stop. Drain until a whole interval passes without a ping: the
  // last heartbeat is then over an interval old, so no check can pass again.
  while (const auto msg = sock.Next(interval)) REQUIRE(*msg == "WATCHDOG=1");
  // The thread keeps waking every interval/2, and stays quiet.
  CHECK_FALSE(sock.Next(3 * interval));

  // The thread did not die: heartbeats bring the pings back.
  REQUIRE(beats_until(1) == 1);
}
