// WatchListener: the HTTP endpoint of `shotsync watch` (docs/watch.md):
//   POST /webhooks/headshotpro  HeadshotPro's signed events (shotsync/webhook.hpp)
//   GET  /metrics               Prometheus text (shotsync/metrics.hpp)
//   GET  /healthz               200 "ok" / 503 with the reason
// One listener serves the routes it is given; `watch` starts one for
// webhook_listen and, when metrics_listen differs, a second one.
//
// A webhook is answered as soon as it is verified and remembered (2xx in
// milliseconds); the pull it asks for runs later on the watcher's thread
// (Hooks::on_event only queues it).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "shotsync/config.hpp"
#include "shotsync/log.hpp"
#include "shotsync/metrics.hpp"
#include "shotsync/status.hpp"
#include "shotsync/webhook.hpp"

namespace shotsync {

class WatchListener {
 public:
  struct Routes {
    bool webhooks = false;  // POST /webhooks/headshotpro
    bool metrics = false;   // GET /metrics and /healthz
  };
  struct Hooks {
    std::string secret;  // the webhook secret; never logged
    // Records an event's de-duplication key; true when it was new. An error
    // answers 503, so that HeadshotPro delivers the event again.
    std::function<Result<bool>(const std::string& key)> remember;
    // A new, verified event: must only queue work and return.
    std::function<void(const WebhookEvent&)> on_event;
    WatchMetrics* metrics = nullptr;  // counts webhooks by verdict; rendered on /metrics
    std::function<Status()> health;   // /healthz: ok -> 200 "ok", else 503 and the message
    Logger* log = nullptr;
    std::function<double()> now;      // Unix seconds; empty = the system clock
  };

  // Binds (kIo naming the address and the reason when it cannot)
  // and serves on its own thread until destroyed.
  static Result<std::unique_ptr<WatchListener>> Start(const ListenAddress& at, Routes routes, Hooks hooks);
  struct Impl;
  explicit WatchListener(std::unique_ptr<Impl> impl);  // use Start
  ~WatchListener();  // stops accepting, finishes the requests in hand, joins
  WatchListener(const WatchListener&) = delete;
  WatchListener& operator=(const WatchListener&) = delete;

  int port() const;  // the bound port (at.port 0: the one the system chose)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace shotsync
