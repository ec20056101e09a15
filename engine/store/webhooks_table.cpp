// The webhook_events table: HeadshotPro event keys `watch` has seen.
#include <mutex>
#include <string_view>

#include "store/manifest_impl.hpp"

namespace shotsync {

namespace {

// Longer than HeadshotPro's retries (+5 min, +15 min, +1 h) by far.
constexpr double kWebhookKeepSeconds = 7 * 24 * 3600.0;

// The received_at index makes the prune a range scan of what is old only.
constexpr char kPruneWebhookEvents[] = "DELETE FROM webhook_events WHERE received_at < ?1";
constexpr char kInsertWebhookEvent[] =
    "INSERT INTO webhook_events(key, received_at) VALUES(?1, ?2) ON CONFLICT(key) DO NOTHING";

}  // namespace

Result<bool> Manifest::RememberWebhookEvent(std::string_view key, double now_s) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  bool fresh = false;
  SHOTSYNC_RETURN_IF_ERROR(impl_->Write(
      [&]() -> Status {
        {
          SHOTSYNC_ASSIGN_OR_RETURN(auto prune, impl_->Acquire(kPruneWebhookEvents));
          SHOTSYNC_RETURN_IF_ERROR(prune->BindAll(now_s - kWebhookKeepSeconds));
          SHOTSYNC_RETURN_IF_ERROR(prune->Run());
        }
        SHOTSYNC_ASSIGN_OR_RETURN(auto insert, impl_->Acquire(kInsertWebhookEvent));
        SHOTSYNC_RETURN_IF_ERROR(insert->BindAll(key, now_s));
        SHOTSYNC_RETURN_IF_ERROR(insert->Run());
        fresh = impl_->db.Changes() == 1;
        return {};
      },
      // Remembered means on disk before HeadshotPro gets its 2xx.
      /*durable=*/true));
  return fresh;
}

}  // namespace shotsync
