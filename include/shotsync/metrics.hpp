// WatchMetrics: the counters `shotsync watch` exposes on GET /metrics in
// Prometheus' text format (docs/watch.md lists every series). Written by
// the watcher's threads, read by the listener's; all relaxed atomics.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "shotsync/webhook.hpp"

namespace shotsync {

struct WatchMetrics {
  std::atomic<std::int64_t> uploads{0}, revisions{0}, failed{0}, rejected{0};
  std::atomic<std::int64_t> bytes_sent{0};
  std::atomic<std::int64_t> downloads{0}, bytes_received{0};
  std::atomic<std::int64_t> retries{0}, throttled_429{0};
  std::atomic<std::int64_t> throttle_wait_us{0};  // time requests waited for a token
  std::atomic<std::int64_t> queue_depth{0};       // files noticed, not yet sent or settled
  std::atomic<std::int64_t> rescans{0}, overflows{0}, pulls{0};
  std::atomic<std::int64_t> last_sync_success_s{0};  // Unix seconds, 0 = none yet
  std::atomic<std::int64_t> last_pull_success_s{0};
  std::atomic<std::int64_t> started_s{0};
  std::array<std::atomic<std::int64_t>, 5> webhooks{};  // by WebhookVerdict
};

// The text exposition format (version 0.0.4): HELP and TYPE for each
// series, names prefixed shotsync_.
std::string RenderPrometheus(const WatchMetrics& m);

}  // namespace shotsync
