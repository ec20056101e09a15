// The emulator's HeadshotPro webhooks (headshotpro.md §3, docs/emulator.md):
// what it delivers to a receiver on loopback — headers, signature, payload,
// the retry schedule (scaled) and the crafted deliveries of the send route.
// The signature is checked here with OpenSSL directly, from the contract, not
// with the client's webhook code.
#include <catch2/catch.hpp>

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "emulator_process.hpp"
#include "wait.hpp"

// A named namespace (the suite is a unity build): the cases are in it too,
// so that its names win over any a neighbouring file puts at global scope.
namespace emulator_webhook_test {

using shotsync::testing::EmulatorProcess;
using shotsync::testing::WaitFor;
using Json = nlohmann::json;

const std::string kSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Received {
  std::string signature, timestamp, content_type, body;
};

// A webhook receiver on 127.0.0.1: records every POST and answers with the
// next status of `statuses` (200 once they are used up).
class Receiver {
 public:
  explicit Receiver(std::deque<int> statuses = {}) : statuses_(std::move(statuses)) {
    svr_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      got_.push_back({req.get_header_value("X-HeadshotPro-Signature"), req.get_header_value("X-HeadshotPro-Timestamp"),
                      req.get_header_value("Content-Type"), req.body});
      res.status = 200;
      if (!statuses_.empty()) {
        res.status = statuses_.front();
        statuses_.pop_front();
      }
      res.set_content("{}", "application/json");
    });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    // stop() before the listener runs would be lost and the join would hang.
    REQUIRE(WaitFor([this] { return svr_.is_running(); }));
  }
  ~Receiver() {
    svr_.stop();
    thread_.join();
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  std::vector<Received> got() {
    std::lock_guard lock(mu_);
    return got_;
  }
  size_t count() { return got().size(); }

 private:
  httplib::Server svr_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::deque<int> statuses_;    // guarded by mu_
  std::vector<Received> got_;  // guarded by mu_
};

std::string HmacHex(const std::string& key, const std::string& msg) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), mac, &len);
  static const char* kDigits = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex += kDigits[mac[i] >> 4];
    hex += kDigits[mac[i] & 0xf];
  }
  return hex;
}

// The contract's signature: "sha256=" + hex HMAC-SHA256 of "{timestamp}.{raw body}".
bool SignedWith(const Received& r, const std::string& secret) {
  std::string msg = r.timestamp;
  msg += '.';
  msg += r.body;
  return r.signature == "sha256=" + HmacHex(secret, msg);
}

Json Configure(const EmulatorProcess& emu, const Json& body) { return emu.Admin("POST", "headshotpro/webhook", &body); }

// POST /_emulator/headshotpro/<name> for answers that may be 4xx (Admin throws on those).
std::string AdminError(const EmulatorProcess& emu, const std::string& name, const Json& body) {
  try {
    emu.Admin("POST", name, &body);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

std::string OneModel(const EmulatorProcess& emu) {
  const Json seeded = emu.Seed({{"members", 1}, {"photos_per_model", 2}});
  return seeded.at("headshotpro").at("models").at(0).at("id").get<std::string>();
}

Json Deliveries(const EmulatorProcess& emu) { return emu.Admin("GET", "headshotpro/webhook/deliveries"); }

std::uint64_t Pending(const EmulatorProcess& emu) {
  return emu.Stats().at("headshotpro").at("webhooks_pending").get<std::uint64_t>();
}

TEST_CASE("emulator webhooks: an admin change delivers signed status, photos_ready and favorite events",
          "[emulator][webhook]") {
  EmulatorProcess emu;
  Receiver rx;
  const std::string model = OneModel(emu);
  // Not yet configured: this change is delivered to no one.
  const Json pending = {{"status", "pending"}};
  emu.Admin("POST", "headshotpro/models/" + model, &pending);
  const Json answer = Configure(emu, {{"url", rx.url()}, {"secret", kSecret}});
  CHECK(answer.at("secret") == kSecret);

  const Json ready = {{"status", "active"}, {"add_photos", 2}};
  const Json changed = emu.Admin("POST", "headshotpro/models/" + model, &ready);
  const Json favorite = {{"favorite", changed.at("added").at(0)}};
  emu.Admin("POST", "headshotpro/models/" + model, &favorite);
  REQUIRE(WaitFor([&] { return rx.count() >= 3; }));
  REQUIRE(WaitFor([&] { return Pending(emu) == 0; }));

  const auto got = rx.got();
  REQUIRE(got.size() == 3);
  std::vector<std::string> events;
  std::set<std::string> ids;
  for (const Received& r : got) {
    INFO(r.body);
    CHECK(SignedWith(r, kSecret));
    CHECK_FALSE(SignedWith(r, std::string(64, 'b')));
    CHECK(r.content_type.rfind("application/json", 0) == 0);
    CHECK(std::all_of(r.timestamp.begin(), r.timestamp.end(), [](unsigned char c) { return std::isdigit(c); }));
    CHECK_FALSE(r.timestamp.empty());
    const Json j = Json::parse(r.body);
    CHECK(j.at("id").get<std::string>().rfind("evt_", 0) == 0);
    CHECK(j.at("objectType") == "model");
    CHECK(j.at("createdAt").is_string());
    CHECK(j.at("object").at("_id") == model);
    CHECK(j.at("object").at("status") == "active");
    CHECK(j.at("object").at("organization").is_string());
    CHECK(j.at("object").at("uid").is_string());
    CHECK(j.at("object").contains("title"));
    events.push_back(j.at("event"));
    ids.insert(j.at("id"));
  }
  CHECK(events == std::vector<std::string>{"model.status.updated", "model.photos_ready", "model.favorite_selected"});
  CHECK(ids.size() == 3);

  const Json log = Deliveries(emu);
  REQUIRE(log.size() == 3);
  for (const Json& d : log) {
    CHECK(d.at("status") == 200);
    CHECK(d.at("attempt") == 1);
    CHECK(d.at("model") == model);
    CHECK(d.at("at").is_string());
  }

  // Photos added to a model that is already active: ready again.
  const Json more = {{"add_photos", 1}};
  emu.Admin("POST", "headshotpro/models/" + model, &more);
  REQUIRE(WaitFor([&] { return rx.count() == 4; }));
  CHECK(Json::parse(rx.got().back().body).at("event") == "model.photos_ready");
}

TEST_CASE("emulator webhooks: a failing receiver gets four retries on the scaled schedule, then no more",
          "[emulator][webhook]") {
  EmulatorProcess emu({"--webhook-retry-scale", "0.001"});
  Receiver rx({500, 500, 500, 500, 500, 500, 500});
  const std::string model = OneModel(emu);
  Configure(emu, {{"url", rx.url()}, {"secret", kSecret}});
  const Json favorite = {{"favorite", nullptr}, {"status", "generatingHeadshots"}};
  emu.Admin("POST", "headshotpro/models/" + model, &favorite);
  // 1 attempt + 4 retries (0, 0.3 s, 0.9 s, 3.6 s at this scale), then given up.
  REQUIRE(WaitFor([&] { return Deliveries(emu).size() == 5 && Pending(emu) == 0; }));
  const auto got = rx.got();
  REQUIRE(got.size() == 5);
  for (const Received& r : got) {
    CHECK(r.body == got.front().body);  // the same event; only the timestamp may change
    CHECK(SignedWith(r, kSecret));
  }
  const Json log = Deliveries(emu);
  for (size_t i = 0; i < log.size(); ++i) {
    CHECK(log[i].at("attempt") == i + 1);
    CHECK(log[i].at("status") == 500);
    CHECK(log[i].at("event") == "model.status.updated");
  }
  CHECK(rx.count() == 5);
}

TEST_CASE("emulator webhooks: a retry that is acknowledged ends the delivery", "[emulator][webhook]") {
  EmulatorProcess emu({"--webhook-retry-scale", "0.001"});
  Receiver rx({503, 500});
  const std::string model = OneModel(emu);
  Configure(emu, {{"url", rx.url()}, {"secret", kSecret}});
  const Json deleted = {{"status", "deleted"}};
  emu.Admin("POST", "headshotpro/models/" + model, &deleted);
  REQUIRE(WaitFor([&] { return Deliveries(emu).size() == 3 && Pending(emu) == 0; }));
  const Json log = Deliveries(emu);
  CHECK(log[0].at("status") == 503);
  CHECK(log[1].at("status") == 500);
  CHECK(log[2].at("status") == 200);
  CHECK(log[2].at("attempt") == 3);
  CHECK(log[2].at("event") == "model.deleted");
  CHECK(rx.count() == 3);
}

TEST_CASE("emulator webhooks: crafted sends - bad signature, stale timestamp, replayed id, a flood",
          "[emulator][webhook]") {
  EmulatorProcess emu;
  Receiver rx;
  const std::string model = OneModel(emu);
  Configure(emu, {{"url", rx.url()}, {"secret", kSecret}});
  emu.FreezeClock();
  const Json clock = emu.Admin("GET", "clock");
  const auto now = clock.at("now_unix").get<long long>();

  Json send = {{"model", model}, {"bad_signature", true}};
  Json out = emu.Admin("POST", "headshotpro/webhook/send", &send);
  REQUIRE(out.at("deliveries").size() == 1);
  CHECK(out.at("deliveries").at(0).at("status") == 200);  // the receiver's answer, whatever it is
  REQUIRE(rx.count() == 1);  // synchronous: delivered before the answer
  CHECK_FALSE(SignedWith(rx.got().at(0), kSecret));
  CHECK(rx.got().at(0).signature.rfind("sha256=", 0) == 0);
  CHECK(Json::parse(rx.got().at(0).body).at("event") == "model.photos_ready");

  send = {{"model", model}, {"timestamp_offset", -600}, {"event", "model.favorite_selected"}};
  emu.Admin("POST", "headshotpro/webhook/send", &send);
  REQUIRE(rx.count() == 2);
  CHECK(rx.got().at(1).timestamp == std::to_string(now - 600));
  CHECK(SignedWith(rx.got().at(1), kSecret));  // signed right, only stale
  CHECK(Json::parse(rx.got().at(1).body).at("event") == "model.favorite_selected");

  send = {{"model", model}, {"id", "evt_replayed"}, {"repeat", 2}};
  out = emu.Admin("POST", "headshotpro/webhook/send", &send);
  REQUIRE(out.at("deliveries").size() == 2);
  REQUIRE(rx.count() == 4);
  for (size_t i = 2; i < 4; ++i) {
    CHECK(Json::parse(rx.got().at(i).body).at("id") == "evt_replayed");
    CHECK(rx.got().at(i).timestamp == std::to_string(now));
  }

  send = {{"model", model}, {"repeat", 20}};
  out = emu.Admin("POST", "headshotpro/webhook/send", &send);
  REQUIRE(out.at("deliveries").size() == 20);
  REQUIRE(rx.count() == 24);
  std::set<std::string> ids;
  for (size_t i = 4; i < 24; ++i) {
    const Json j = Json::parse(rx.got().at(i).body);
    CHECK(j.at("object").at("_id") == model);
    ids.insert(j.at("id"));
  }
  CHECK(ids.size() == 20);  // distinct events for one model
  CHECK(Deliveries(emu).size() == 24);

  CHECK(AdminError(emu, "headshotpro/webhook/send", {{"model", "000000000000000000000000"}}).find("HTTP 404") !=
        std::string::npos);
}

TEST_CASE("emulator webhooks: only loopback URLs and 64-hex secrets, a secret is generated when none is given",
          "[emulator][webhook]") {
  EmulatorProcess emu;
  for (const char* url : {"http://example.com/hook", "http://10.0.0.1/hook", "https://127.0.0.1/hook",
                          "http://127.0.0.1@example.com/", "ftp://127.0.0.1/"}) {
    INFO(url);
    CHECK(AdminError(emu, "headshotpro/webhook", {{"url", url}}).find("HTTP 400") != std::string::npos);
  }
  CHECK(AdminError(emu, "headshotpro/webhook", {{"url", "http://127.0.0.1:9/hook"}, {"secret", "abc"}})
            .find("HTTP 400") != std::string::npos);
  const Json answer = Configure(emu, {{"url", "http://localhost:9/hook"}});
  const std::string secret = answer.at("secret");
  CHECK(secret.size() == 64);
  CHECK(std::all_of(secret.begin(), secret.end(), [](unsigned char c) { return std::isxdigit(c); }));
  CHECK(Configure(emu, {{"url", "http://[::1]:9/hook"}}).at("secret") != secret);  // each save rotates it

  // No URL: nothing to send to.
  Configure(emu, {{"url", nullptr}});
  const std::string model = OneModel(emu);
  CHECK(AdminError(emu, "headshotpro/webhook/send", {{"model", model}}).find("HTTP 409") != std::string::npos);
}

}  // namespace emulator_webhook_test
