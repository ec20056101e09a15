// HeadshotPro webhooks: the signature check, the event's shape, the
// Prometheus text, and the manifest's memory of events seen.
#include "shotsync/webhook.hpp"


#include <catch2/catch.hpp>
#include <cctype>
#include <cstdio>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "shotsync/manifest.hpp"
#include "shotsync/metrics.hpp"
#include "temp_dir.hpp"
#include "webhook_sign.hpp"

using shotsync::WebhookVerdict;

namespace {

// The secret's documented shape: 64 hex characters.
const std::string kWhSecret = "3f9a1c0e7b2d4f6a8c1e3b5d7f9a2c4e6b8d0f1a3c5e7b9d2f4a6c8e0b1d3f5a";
const std::string kWhBody = R"({
  "id": "evt_6f1c2b9e-0d6a-4c1e-9f0b-3b1d2a7c9e11",
  "event": "model.photos_ready",
  "createdAt": "2024-01-15T12:00:00.000Z",
  "objectType": "model",
  "object": {
    "_id": "507f1f77bcf86cd799439011", "uid": "anon_abc123", "title": "John Doe",
    "trigger": "male", "status": "active", "isDevelopment": false,
    "finishedAt": "2024-01-15T11:45:00.000Z", "deletedAt": null,
    "inviteExpiresAt": "2024-02-14T10:30:00.000Z", "createdAt": "2024-01-15T10:30:00.000Z",
    "organization": "org_abc123def456"
  }
})";
constexpr double kWhNow = 1'705'320'000;

std::string WhSign(const std::string& secret, const std::string& timestamp,
                   const std::string& body) {
  return shotsync::testing::SignWebhook(secret, timestamp, body);
}

std::string WhTs(double t) {
  return std::to_string(static_cast<long long>(t));
}

WebhookVerdict WhVerify(const std::string& ts, const std::string& sig,
                        const std::string& body = kWhBody, double now = kWhNow) {
  return shotsync::VerifyWebhookSignature(kWhSecret, ts, sig, body, now);
}

}  // namespace

TEST_CASE("a webhook signed as documented is accepted", "[webhook]") {
  const std::string ts = WhTs(kWhNow);
  CHECK(WhVerify(ts, WhSign(kWhSecret, ts, kWhBody)) == WebhookVerdict::kAccepted);
  // Hex in capitals is the same digest.
  std::string upper = WhSign(kWhSecret, ts, kWhBody);
  for (std::size_t i = 7; i < upper.size(); ++i)
    upper[i] = static_cast<char>(std::toupper(upper[i]));
  CHECK(WhVerify(ts, upper) == WebhookVerdict::kAccepted);
}

TEST_CASE("a webhook with a wrong secret, a changed byte or a garbled header is refused",
          "[webhook]") {
  const std::string ts = WhTs(kWhNow);
  const std::string good = WhSign(kWhSecret, ts, kWhBody);
  CHECK(WhVerify(ts, WhSign("another-secret", ts, kWhBody)) == WebhookVerdict::kBadSignature);
  std::string changed = kWhBody;
  changed[changed.find("John")] = 'j';
  CHECK(WhVerify(ts, good, changed) == WebhookVerdict::kBadSignature);
  // The timestamp is part of what is signed.
  CHECK(WhVerify(WhTs(kWhNow + 1), good, kWhBody, kWhNow) == WebhookVerdict::kBadSignature);
  CHECK(WhVerify(ts, "") == WebhookVerdict::kBadSignature);
  CHECK(WhVerify("", good) == WebhookVerdict::kBadSignature);
  CHECK(WhVerify(ts, good.substr(7)) == WebhookVerdict::kBadSignature);  // no "sha256="
  CHECK(WhVerify(ts, "sha1=" + good.substr(7)) == WebhookVerdict::kBadSignature);
  CHECK(WhVerify(ts, good.substr(0, good.size() - 2)) == WebhookVerdict::kBadSignature);  // short
  CHECK(WhVerify(ts, good + "00") == WebhookVerdict::kBadSignature);                      // long
  std::string not_hex = good;
  not_hex.back() = 'g';
  CHECK(WhVerify(ts, not_hex) == WebhookVerdict::kBadSignature);
  // A timestamp that is not all digits, even when signed as sent.
  for (const std::string& bad_ts :
       {std::string("+") + ts, ts + " ", std::string("-5"), std::string("1e9")}) {
    CHECK(WhVerify(bad_ts, WhSign(kWhSecret, bad_ts, kWhBody)) == WebhookVerdict::kBadSignature);
  }
  // No secret configured: nothing verifies.
  CHECK(shotsync::VerifyWebhookSignature("", ts, WhSign("", ts, kWhBody), kWhBody, kWhNow) ==
        WebhookVerdict::kBadSignature);
}

TEST_CASE("a webhook outside the five-minute window is stale, either way, and the edge holds",
          "[webhook]") {
  for (double t : {kWhNow - 301, kWhNow + 301, kWhNow - 86400}) {
    const std::string ts = WhTs(t);
    CHECK(WhVerify(ts, WhSign(kWhSecret, ts, kWhBody)) == WebhookVerdict::kStale);
  }
  for (double t : {kWhNow - 300, kWhNow + 300}) {
    const std::string ts = WhTs(t);
    CHECK(WhVerify(ts, WhSign(kWhSecret, ts, kWhBody)) == WebhookVerdict::kAccepted);
  }
  const std::string ts = WhTs(kWhNow - 60);
  CHECK(shotsync::VerifyWebhookSignature(kWhSecret, ts, WhSign(kWhSecret, ts, kWhBody), kWhBody,
                                         kWhNow, 30) == WebhookVerdict::kStale);
}

TEST_CASE("a webhook event's key is its id, else event, model and status", "[webhook]") {
  auto ev = shotsync::ParseWebhookEvent(kWhBody);
  REQUIRE(ev.ok());
  CHECK(ev->dedupe_key == "evt_6f1c2b9e-0d6a-4c1e-9f0b-3b1d2a7c9e11");
  CHECK(ev->event == "model.photos_ready");
  CHECK(ev->model_id == "507f1f77bcf86cd799439011");
  CHECK(ev->wants_pull);

  for (const char* body : {R"({"event":"model.favorite_selected","objectType":"model",
                               "object":{"_id":"m1","status":"active"}})",
                           R"({"id":"","event":"model.favorite_selected","objectType":"model",
                               "object":{"_id":"m1","status":"active"}})"}) {
    auto fb = shotsync::ParseWebhookEvent(body);
    REQUIRE(fb.ok());
    CHECK(fb->dedupe_key == "model.favorite_selected|m1|active");
    CHECK(fb->model_id == "m1");
    CHECK(fb->wants_pull);
  }

  auto deleted = shotsync::ParseWebhookEvent(
      R"({"event":"model.deleted","objectType":"model","object":{"_id":"m2"}})");
  REQUIRE(deleted.ok());
  CHECK(deleted->dedupe_key == "model.deleted|m2|");
  CHECK_FALSE(deleted->wants_pull);

  auto other =
      shotsync::ParseWebhookEvent(R"({"id":"e9","event":"model.photos_ready","objectType":"invite",
                                               "object":{"_id":"i1","status":"sent"}})");
  REQUIRE(other.ok());
  CHECK(other->model_id.empty());
  CHECK(other->dedupe_key == "e9");
}

TEST_CASE("a webhook body that is not the documented shape is invalid, without echoing it",
          "[webhook]") {
  const std::string secret_looking = "TOPSECRETVALUE";
  for (const std::string& body : {
           std::string("{not json ") + secret_looking,
           std::string("[\"") + secret_looking + "\"]",
           std::string(""),
           std::string(R"({"id":")") + secret_looking +
               R"(","objectType":"model","object":{"_id":"m"}})",  // no event
           std::string(R"({"event":")") + secret_looking +
               R"(","object":"m"})",                                 // object not an object
           std::string(R"({"event":"model.deleted","object":{}})"),  // no _id
           std::string(R"({"id":7,"event":"model.deleted","object":{"_id":"m"}})"),
           std::string(R"({"event":["x"],"object":{"_id":"m"}})"),
           std::string(R"({"event":"model.deleted","objectType":1,"object":{"_id":"m"}})"),
           std::string(R"({"event":"model.deleted","object":{"_id":5}})"),
           std::string(R"({"event":"model.deleted","object":{"_id":"m","status":true}})"),
       }) {
    INFO(body);
    auto ev = shotsync::ParseWebhookEvent(body);
    REQUIRE_FALSE(ev.ok());
    CHECK(ev.status().code() == shotsync::Code::kInvalidArgument);
    CHECK(ev.status().message().find(secret_looking) == std::string::npos);
    CHECK(ev.status().message().find('\n') == std::string::npos);
  }
}

TEST_CASE("the Prometheus text has every series, at zero too, one sample per line",
          "[webhook][metrics]") {
  shotsync::WatchMetrics m;
  const std::string empty = shotsync::RenderPrometheus(m);
  m.uploads = 3;
  m.throttle_wait_us = 1'500'000;
  m.webhooks[static_cast<std::size_t>(WebhookVerdict::kStale)] = 2;
  m.started_s = 1'700'000'000;
  const std::string text = shotsync::RenderPrometheus(m);

  const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-z_]+="[a-z_]+"\})? (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)$)");
  const std::regex meta(R"(^# (HELP|TYPE) (shotsync_[a-z0-9_]+) (.+)$)");
  std::set<std::string> names, typed;
  std::map<std::string, std::string> values;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    INFO(line);
    std::smatch mm;
    if (line.rfind("#", 0) == 0) {
      REQUIRE(std::regex_match(line, mm, meta));
      if (mm[1] == "TYPE") {
        typed.insert(mm[2]);
        CHECK((mm[3] == "counter" || mm[3] == "gauge"));
        if (mm[3] == "counter") CHECK(mm[2].str().size() > 6);
        if (mm[3] == "counter") CHECK(mm[2].str().substr(mm[2].str().size() - 6) == "_total");
      }
      continue;
    }
    REQUIRE(std::regex_match(line, mm, sample));
    CHECK(mm[1].str().rfind("shotsync_", 0) == 0);
    CHECK(typed.count(mm[1]) == 1);  // TYPE before the sample
    names.insert(mm[1]);
    values[mm[1].str() + mm[2].str()] = mm[3];
  }
  for (const char* name :
       {"uploads_total", "revisions_total", "failed_total", "rejected_total", "bytes_sent_total",
        "downloads_total", "bytes_received_total", "retries_total", "throttled_429_total",
        "throttle_wait_seconds_total", "rescans_total", "inotify_overflows_total", "pulls_total",
        "webhook_events_total", "queue_depth", "last_sync_success_timestamp_seconds",
        "last_pull_success_timestamp_seconds", "start_time_seconds"}) {
    INFO(name);
    CHECK(names.count(std::string("shotsync_") + name) == 1);
    CHECK(empty.find(std::string("\nshotsync_") + name) != std::string::npos);
  }
  for (const char* result : {"accepted", "duplicate", "bad_signature", "stale", "malformed"}) {
    const std::string series =
        std::string("shotsync_webhook_events_total{result=\"") + result + "\"}";
    INFO(series);
    REQUIRE(values.count(series) == 1);
    CHECK(values[series] == (std::string(result) == "stale" ? "2" : "0"));
  }
  CHECK(values["shotsync_uploads_total"] == "3");
  CHECK(std::stod(values["shotsync_throttle_wait_seconds_total"]) == 1.5);
  CHECK(values["shotsync_start_time_seconds"] == "1700000000");
  CHECK(values["shotsync_queue_depth"] == "0");
}

TEST_CASE("the manifest remembers webhook events for 7 days, across a reopen",
          "[webhook][manifest]") {
  shotsync::testing::TempDir dir;
  const std::string path = (dir.path() / "manifest.db").string();
  const double t0 = 1'700'000'000;
  const double week = 7 * 24 * 3600.0;
  {
    auto m = shotsync::Manifest::Open(path);
    REQUIRE(m.ok());
    CHECK((*m)->RememberWebhookEvent("evt_a", t0).value());
    CHECK_FALSE((*m)->RememberWebhookEvent("evt_a", t0 + 60).value());
    CHECK((*m)->RememberWebhookEvent("model.deleted|m1|", t0 + 60).value());
  }
  auto m = shotsync::Manifest::Open(path);
  REQUIRE(m.ok());
  CHECK_FALSE((*m)->RememberWebhookEvent("evt_a", t0 + week - 1).value());
  // A week later evt_a is pruned (by this call, for another key)...
  CHECK((*m)->RememberWebhookEvent("evt_b", t0 + week + 1).value());
  // ...so it counts as new again; the later key is still known.
  CHECK((*m)->RememberWebhookEvent("evt_a", t0 + week + 2).value());
  CHECK_FALSE((*m)->RememberWebhookEvent("evt_b", t0 + week + 3).value());
}
