// HeadshotPro webhooks: the signature check and the event's shape
// (headshotpro.md §3).
#include "shotsync/webhook.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace shotsync {

namespace {

constexpr std::string_view kSignaturePrefix = "sha256=";
constexpr std::size_t kSha256Size = 32;

int WebhookHexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The 32 bytes a 64-digit hex string (either case) stands for; false when
// it is not one.
bool DecodeSha256Hex(std::string_view hex, std::array<unsigned char, kSha256Size>* out) {
  if (hex.size() != 2 * kSha256Size) return false;
  for (std::size_t i = 0; i < kSha256Size; ++i) {
    const int hi = WebhookHexValue(hex[2 * i]);
    const int lo = WebhookHexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

}  // namespace

std::string_view WebhookVerdictName(WebhookVerdict v) {
  switch (v) {
    case WebhookVerdict::kAccepted:
      return "accepted";
    case WebhookVerdict::kDuplicate:
      return "duplicate";
    case WebhookVerdict::kBadSignature:
      return "bad_signature";
    case WebhookVerdict::kStale:
      return "stale";
    case WebhookVerdict::kMalformed:
      return "malformed";
  }
  return "malformed";
}

WebhookVerdict VerifyWebhookSignature(std::string_view secret, std::string_view timestamp_header,
                                      std::string_view signature_header, std::string_view body,
                                      double now_s, double max_skew_s) {
  // An empty secret would make every sender's HMAC "valid".
  if (secret.empty()) return WebhookVerdict::kBadSignature;
  // Digits only (no sign, no spaces): the signed string is the header as
  // sent, so a lenient parse would let two spellings share one signature.
  if (timestamp_header.empty() || timestamp_header.size() > 18)
    return WebhookVerdict::kBadSignature;
  std::int64_t ts = 0;
  for (char c : timestamp_header) {
    if (c < '0' || c > '9') return WebhookVerdict::kBadSignature;
  }
  auto [end, ec] = std::from_chars(timestamp_header.data(),
                                   timestamp_header.data() + timestamp_header.size(), ts);
  if (ec != std::errc() || end != timestamp_header.data() + timestamp_header.size()) {
    return WebhookVerdict::kBadSignature;
  }
  if (signature_header.substr(0, kSignaturePrefix.size()) != kSignaturePrefix)
    return WebhookVerdict::kBadSignature;
  std::array<unsigned char, kSha256Size> given{};
  if (!DecodeSha256Hex(signature_header.substr(kSignaturePrefix.size()), &given)) {
    return WebhookVerdict::kBadSignature;
  }

  std::string signed_text;
  signed_text.reserve(timestamp_header.size() + 1 + body.size());
  signed_text.append(timestamp_header).append(1, '.').append(body);
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  std::size_t mac_len = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(),
                mac.data(), mac.size(), &mac_len) == nullptr ||
      mac_len != kSha256Size) {
    return WebhookVerdict::kBadSignature;
  }
  if (CRYPTO_memcmp(mac.data(), given.data(), kSha256Size) != 0)
    return WebhookVerdict::kBadSignature;

  // Only an authentic delivery is judged on its age: "stale" in the log then
  // means HeadshotPro's (or a replayed) message, not a stranger's.
  if (std::fabs(now_s - static_cast<double>(ts)) > max_skew_s) return WebhookVerdict::kStale;
  return WebhookVerdict::kAccepted;
}

Result<WebhookEvent> ParseWebhookEvent(std::string_view body) {
  using nlohmann::json;
  // The messages name fields, never values: the body is the sender's.
  const json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Invalid("webhook body is not JSON");
  if (!j.is_object()) return Status::Invalid("webhook body is not a JSON object");

  // A string member, "" when absent or null; false when it is another type.
  auto text = [](const json& obj, const char* name, std::string* out) {
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return true;
    if (!it->is_string()) return false;
    *out = it->get<std::string>();
    return true;
  };

  WebhookEvent ev;
  std::string id, object_type, object_id, status;
  if (!text(j, "id", &id)) return Status::Invalid("webhook body: \"id\" is not a string");
  if (!text(j, "event", &ev.event))
    return Status::Invalid("webhook body: \"event\" is not a string");
  if (ev.event.empty()) return Status::Invalid("webhook body: \"event\" is missing");
  if (!text(j, "objectType", &object_type)) {
    return Status::Invalid("webhook body: \"objectType\" is not a string");
  }
  auto object = j.find("object");
  if (object == j.end() || !object->is_object()) {
    return Status::Invalid("webhook body: \"object\" is missing or not an object");
  }
  if (!text(*object, "_id", &object_id))
    return Status::Invalid("webhook body: \"object._id\" is not a string");
  if (object_id.empty()) return Status::Invalid("webhook body: \"object._id\" is missing");
  if (!text(*object, "status", &status)) {
    return Status::Invalid("webhook body: \"object.status\" is not a string");
  }

  if (!id.empty()) {
    ev.dedupe_key = std::move(id);
  } else {
    // headshotpro.md §3: `id` is optional; a retry repeats the rest.
    ev.dedupe_key.reserve(ev.event.size() + object_id.size() + status.size() + 2);
    ev.dedupe_key.append(ev.event).append(1, '|').append(object_id).append(1, '|').append(status);
  }
  if (object_type == "model") ev.model_id = object_id;
  ev.wants_pull = ev.event == "model.photos_ready" || ev.event == "model.favorite_selected";
  return ev;
}

}  // namespace shotsync
