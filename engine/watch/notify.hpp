// SystemdNotifier: `watch` under systemd's Type=notify (docs/watch.md):
// READY=1 once the first rescan is under way and the listeners are bound,
// RELOADING=1 around a SIGHUP reload, STOPPING=1 on SIGTERM, STATUS= lines,
// and WATCHDOG=1 while the watcher's loop is alive. Without $NOTIFY_SOCKET
// (not started by systemd) every call does nothing and no thread starts.
// Thread-safe: any thread may call any member.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

namespace shotsync {

class SystemdNotifier {
 public:
  SystemdNotifier();  // reads $NOTIFY_SOCKET, $WATCHDOG_USEC, $WATCHDOG_PID
  ~SystemdNotifier();  // stops the watchdog thread
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  void Ready(std::string_view status);  // also after a reload: ends RELOADING=1
  void Reloading();
  void Stopping();
  void Status(std::string_view status);

  // The watcher's loop calls Heartbeat at least every watchdog_interval()/2;
  // WATCHDOG=1 is sent only while heartbeats come, so a hung loop gets the
  // service restarted. Zero interval: no watchdog configured.
  void Heartbeat();
  std::chrono::microseconds watchdog_interval() const;

  // A sync or pull runs on the loop's thread for as long as it takes (a
  // first rescan of thousands of photos at 60 requests/min): the ping goes
  // on meanwhile. The engine bounds each run's waits itself (stall_timeout,
  // the busy wait, backoff caps), so a run cannot hang for ever.
  class Busy {
   public:
    explicit Busy(SystemdNotifier& n) : n_(n) { n_.busy_.fetch_add(1, std::memory_order_relaxed); }
    ~Busy() {
      n_.Heartbeat();
      n_.busy_.fetch_sub(1, std::memory_order_relaxed);
    }
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;

   private:
    SystemdNotifier& n_;
  };

 private:
  void Send(std::string_view state);
  void WatchdogLoop(std::stop_token stop);

  bool enabled_ = false;  // $NOTIFY_SOCKET was set
  std::string socket_;    // its value
  std::chrono::microseconds watchdog_interval_{0};
  // steady_clock ticks of the last Heartbeat (the constructor counts as one).
  std::atomic<std::chrono::steady_clock::rep> last_heartbeat_{0};
  std::atomic<int> busy_{0};  // runs in progress (Busy)
  std::mutex wait_mu_;  // only for wait_cv_: the thread sleeps until stop or the next ping
  std::condition_variable_any wait_cv_;
  // Last member: destroyed (stop requested, joined) before what it reads.
  std::jthread watchdog_;
};

}  // namespace shotsync
