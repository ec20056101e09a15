// GET /metrics: WatchMetrics in Prometheus' text exposition format 0.0.4.
#include "shotsync/metrics.hpp"

#include <array>
#include <charconv>
#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>

namespace shotsync {

namespace {

// One series' HELP and TYPE lines (no sample).
void MetricHeader(std::string* out, std::string_view name, std::string_view type,
                  std::string_view help) {
  out->append("# HELP shotsync_").append(name).append(1, ' ').append(help).append(1, '\n');
  out->append("# TYPE shotsync_").append(name).append(1, ' ').append(type).append(1, '\n');
}

void MetricSample(std::string* out, std::string_view name, std::string_view labels,
                  std::string_view value) {
  out->append("shotsync_").append(name).append(labels).append(1, ' ').append(value).append(1, '\n');
}

void MetricInt(std::string* out, std::string_view name, std::string_view type,
               std::string_view help, const std::atomic<std::int64_t>& v) {
  MetricHeader(out, name, type, help);
  MetricSample(out, name, "", std::to_string(v.load(std::memory_order_relaxed)));
}

}  // namespace

std::string RenderPrometheus(const WatchMetrics& m) {
  std::string out;
  out.reserve(4096);
  const auto counter = [&](std::string_view name, std::string_view help,
                           const std::atomic<std::int64_t>& v) {
    MetricInt(&out, name, "counter", help, v);
  };
  const auto gauge = [&](std::string_view name, std::string_view help,
                         const std::atomic<std::int64_t>& v) {
    MetricInt(&out, name, "gauge", help, v);
  };
  counter("uploads_total", "Photos uploaded to Shootbin.", m.uploads);
  counter("revisions_total", "Changed photos sent to Shootbin as revisions.", m.revisions);
  counter("failed_total", "Transfers that failed after their retries.", m.failed);
  counter("rejected_total", "Files the server or shotsync refused permanently.", m.rejected);
  counter("bytes_sent_total", "Bytes of photos uploaded.", m.bytes_sent);
  counter("downloads_total", "Headshots downloaded from HeadshotPro.", m.downloads);
  counter("bytes_received_total", "Bytes of headshots downloaded.", m.bytes_received);
  counter("retries_total", "Requests retried after a transient error.", m.retries);
  counter("throttled_429_total", "Answers 429 (rate limited) from either service.",
          m.throttled_429);

  // Microseconds are what the throttle adds up; Prometheus wants seconds.
  MetricHeader(&out, "throttle_wait_seconds_total", "counter",
               "Time requests waited for a rate-limit token.");
  {
    char buf[32];
    const double seconds =
        static_cast<double>(m.throttle_wait_us.load(std::memory_order_relaxed)) / 1e6;
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, seconds);
    MetricSample(
        &out, "throttle_wait_seconds_total", "",
        ec == std::errc() ? std::string_view(buf, static_cast<std::size_t>(end - buf)) : "0");
  }

  counter("rescans_total", "Full rescans of the roots.", m.rescans);
  counter("inotify_overflows_total", "inotify queue overflows (each forces a rescan).",
          m.overflows);
  counter("pulls_total", "Pulls from HeadshotPro run.", m.pulls);

  MetricHeader(&out, "webhook_events_total", "counter",
               "HeadshotPro webhook deliveries by result.");
  constexpr WebhookVerdict kVerdicts[] = {WebhookVerdict::kAccepted, WebhookVerdict::kDuplicate,
                                          WebhookVerdict::kBadSignature, WebhookVerdict::kStale,
                                          WebhookVerdict::kMalformed};
  static_assert(std::size(kVerdicts) == std::tuple_size_v<decltype(WatchMetrics::webhooks)>,
                "one sample per verdict");
  for (WebhookVerdict v : kVerdicts) {
    std::string labels = "{result=\"";
    labels.append(WebhookVerdictName(v)).append("\"}");
    MetricSample(
        &out, "webhook_events_total", labels,
        std::to_string(m.webhooks[static_cast<std::size_t>(v)].load(std::memory_order_relaxed)));
  }

  gauge("queue_depth", "Files noticed and not yet sent or settled.", m.queue_depth);
  gauge("last_sync_success_timestamp_seconds",
        "Unix time of the last successful sync (0: none yet).", m.last_sync_success_s);
  gauge("last_pull_success_timestamp_seconds",
        "Unix time of the last successful pull (0: none yet).", m.last_pull_success_s);
  gauge("start_time_seconds", "Unix time the watcher started.", m.started_s);
  return out;
}

}  // namespace shotsync
