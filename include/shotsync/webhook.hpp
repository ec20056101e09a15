// HeadshotPro webhooks (headshotpro.md §3): the signature check and the
// event, for `shotsync watch`'s receiver (docs/watch.md).
//
// A delivery is POST JSON with X-HeadshotPro-Timestamp (Unix seconds) and
// X-HeadshotPro-Signature "sha256=<hex HMAC-SHA256 of "{timestamp}.{raw
// body}" keyed with the webhook secret>". The comparison takes constant
// time; a timestamp more than `max_skew_s` away from now is refused (a
// replayed or delayed delivery), as is a body over kMaxWebhookBody.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "shotsync/status.hpp"

namespace shotsync {

inline constexpr std::size_t kMaxWebhookBody = 64 * 1024;

// What became of one delivery; the names are the metric's `result` label.
enum class WebhookVerdict {
  kAccepted,      // verified, new: a pull was asked for (or the event needs none)
  kDuplicate,     // verified, seen before (HeadshotPro retries): 2xx, nothing done
  kBadSignature,  // 401
  kStale,         // timestamp outside the window: 401
  kMalformed,     // not the documented JSON shape, or too large: 400
};
std::string_view WebhookVerdictName(WebhookVerdict v);  // "accepted", "duplicate", "bad_signature", ...

// kAccepted when the signature and the timestamp hold; kBadSignature or
// kStale otherwise. `now_s`: Unix seconds.
WebhookVerdict VerifyWebhookSignature(std::string_view secret, std::string_view timestamp_header,
                                      std::string_view signature_header, std::string_view body, double now_s,
                                      double max_skew_s = 300);

struct WebhookEvent {
  std::string dedupe_key;  // the event's "id", else "event|object._id|object.status"
  std::string event;       // "model.photos_ready", ...
  std::string model_id;    // object._id for objectType "model" ("" otherwise)
  bool wants_pull = false; // model.photos_ready, model.favorite_selected
};
// kInvalidArgument (one line, without the body) when it is not the shape.
Result<WebhookEvent> ParseWebhookEvent(std::string_view body);

}  // namespace shotsync
