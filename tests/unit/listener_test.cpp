// WatchListener over loopback: the webhook's answers, /metrics, /healthz.
#include "watch/listener.hpp"


#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "http.hpp"
#include "shotsync/fd.hpp"
#include "shotsync/log.hpp"
#include "temp_dir.hpp"
#include "webhook_sign.hpp"

namespace http = shotsync::testing::http;
using shotsync::WatchListener;

namespace {

const std::string kLsSecret = "0b1d3f5a7c9e2b4d6f8a1c3e5b7d9f0a2c4e6b8d1f3a5c7e9b0d2f4a6c8e1b3d";
constexpr double kLsNow = 1'705'320'000;

std::string LsSign(const std::string& timestamp, const std::string& body) {
  return shotsync::testing::SignWebhook(kLsSecret, timestamp, body);
}

std::string LsEvent(const std::string& id) {
  return R"({"id":")" + id +
         R"(","event":"model.photos_ready","objectType":"model","object":{"_id":"m42","status":"active"}})";
}

// Warnings to <dir>/watch.log only (stderr stays quiet).
shotsync::Logger LsOpenLog(const shotsync::testing::TempDir& dir) {
  auto opened =
      shotsync::Logger::Open({shotsync::LogLevel::kError, (dir.path() / "watch.log").string(),
                              shotsync::LogLevel::kDebug});
  REQUIRE(opened.ok());
  return std::move(*opened);
}

// A listener on 127.0.0.1:0 with both routes, its hooks recording calls.
struct LsFixture {
  shotsync::testing::TempDir dir;
  shotsync::Logger log = LsOpenLog(dir);
  shotsync::WatchMetrics metrics;
  std::mutex mu;
  std::set<std::string> keys;
  std::vector<shotsync::WebhookEvent> events;
  std::atomic<bool> remember_fails{false};
  std::atomic<bool> healthy{true};
  std::unique_ptr<WatchListener> listener;

  LsFixture() {
    WatchListener::Hooks hooks;
    hooks.secret = kLsSecret;
    hooks.remember = [this](const std::string& key) -> shotsync::Result<bool> {
      if (remember_fails) return shotsync::Status(shotsync::Code::kBusy, "manifest.db: locked");
      std::lock_guard lock(mu);
      return keys.insert(key).second;
    };
    hooks.on_event = [this](const shotsync::WebhookEvent& ev) {
      std::lock_guard lock(mu);
      events.push_back(ev);
    };
    hooks.metrics = &metrics;
    hooks.health = [this] {
      return healthy ? shotsync::Status::Ok()
                     : shotsync::Status(shotsync::Code::kNetwork, "Shootbin unreachable");
    };
    hooks.log = &log;
    hooks.now = [] { return kLsNow; };
    auto started = WatchListener::Start({"127.0.0.1", 0}, {true, true}, std::move(hooks));
    INFO(started.status().ToString());
    REQUIRE(started.ok());
    listener = std::move(started).value();
    REQUIRE(listener->port() > 0);
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(listener->port()) + path;
  }

  http::Response Post(const std::string& body, const std::string& timestamp,
                      const std::string& signature) {
    http::Request req;
    req.method = "POST";
    req.url = Url("/webhooks/headshotpro");
    req.headers = {{"Content-Type", "application/json"},
                   {"X-HeadshotPro-Timestamp", timestamp},
                   {"X-HeadshotPro-Signature", signature}};
    req.body = body;
    return http::Perform(req);
  }
  http::Response PostSigned(const std::string& body, double at = kLsNow) {
    const std::string ts = std::to_string(static_cast<long long>(at));
    return Post(body, ts, LsSign(ts, body));
  }

  // Copies under the hooks' mutex: they ran on the listener's threads.
  std::vector<shotsync::WebhookEvent> Events() {
    std::lock_guard lock(mu);
    return events;
  }
  std::size_t EventCount() { return Events().size(); }
  std::size_t KeyCount() {
    std::lock_guard lock(mu);
    return keys.size();
  }
  std::int64_t Count(shotsync::WebhookVerdict v) const {
    return metrics.webhooks[static_cast<std::size_t>(v)].load();
  }
};

}  // namespace

TEST_CASE("the listener accepts a signed webhook once and answers its redelivery as a duplicate",
          "[webhook][listener]") {
  LsFixture f;
  const std::string body = LsEvent("evt_1");
  auto first = f.PostSigned(body);
  INFO(first.describe());
  REQUIRE(first.status == 200);
  CHECK(first.json().at("result") == "accepted");
  const auto events = f.Events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].model_id == "m42");
  CHECK(events[0].wants_pull);

  auto again = f.PostSigned(body, kLsNow + 1);
  REQUIRE(again.status == 200);
  CHECK(again.json().at("result") == "duplicate");
  CHECK(f.EventCount() == 1);
  CHECK(f.Count(shotsync::WebhookVerdict::kAccepted) == 1);
  CHECK(f.Count(shotsync::WebhookVerdict::kDuplicate) == 1);
}

TEST_CASE("the listener refuses bad signatures, stale, oversize and malformed webhooks",
          "[webhook][listener]") {
  LsFixture f;
  const std::string body = LsEvent("evt_2");
  const std::string ts = std::to_string(static_cast<long long>(kLsNow));
  const std::string good = LsSign(ts, body);

  std::string wrong = good;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  auto bad = f.Post(body, ts, wrong);
  CHECK(bad.status == 401);
  CHECK(f.Post(body, ts, "").status == 401);
  CHECK(f.PostSigned(body, kLsNow - 3600).status == 401);  // stale

  std::string big = LsEvent("evt_big");
  big.insert(big.size() - 1, ",\"pad\":\"" + std::string(shotsync::kMaxWebhookBody, 'x') + "\"");
  auto oversize = f.PostSigned(big);
  INFO(oversize.describe());
  CHECK(oversize.status == 400);

  CHECK(f.PostSigned("{\"event\":").status == 400);
  CHECK(f.PostSigned(R"({"event":"model.deleted","object":{}})").status == 400);

  CHECK(f.EventCount() == 0);
  CHECK(f.KeyCount() == 0);
  CHECK(f.Count(shotsync::WebhookVerdict::kBadSignature) == 2);
  CHECK(f.Count(shotsync::WebhookVerdict::kStale) == 1);
  CHECK(f.Count(shotsync::WebhookVerdict::kMalformed) == 3);

  // The log names verdicts and the peer, never the secret, signature or body.
  const std::string logged = shotsync::testing::ReadFileText(f.dir.path() / "watch.log");
  CHECK(logged.find("bad_signature") != std::string::npos);
  CHECK(logged.find("stale") != std::string::npos);
  CHECK(logged.find("127.0.0.1") != std::string::npos);
  CHECK(logged.find(kLsSecret) == std::string::npos);
  CHECK(logged.find(good.substr(7)) == std::string::npos);
  CHECK(logged.find(wrong.substr(7)) == std::string::npos);
  CHECK(logged.find("m42") == std::string::npos);
}

TEST_CASE("the listener answers 503 when the event cannot be remembered, so that it comes again",
          "[webhook][listener]") {
  LsFixture f;
  f.remember_fails = true;
  const std::string body = LsEvent("evt_3");
  CHECK(f.PostSigned(body).status == 503);
  CHECK(f.EventCount() == 0);
  f.remember_fails = false;
  CHECK(f.PostSigned(body).status == 200);
  CHECK(f.EventCount() == 1);
}

TEST_CASE("the listener serves /metrics with the webhook counts, /healthz, and 404 elsewhere",
          "[webhook][listener][metrics]") {
  LsFixture f;
  f.metrics.uploads = 7;
  REQUIRE(f.PostSigned(LsEvent("evt_4")).status == 200);
  REQUIRE(f.PostSigned(LsEvent("evt_4")).status == 200);
  REQUIRE(f.Post(LsEvent("evt_5"), "1", "sha256=00").status == 401);

  auto metrics = http::Get(f.Url("/metrics"));
  REQUIRE(metrics.status == 200);
  CHECK(metrics.header("Content-Type").value_or("") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(metrics.body.find("\nshotsync_uploads_total 7\n") != std::string::npos);
  CHECK(metrics.body.find("\nshotsync_webhook_events_total{result=\"accepted\"} 1\n") !=
        std::string::npos);
  CHECK(metrics.body.find("\nshotsync_webhook_events_total{result=\"duplicate\"} 1\n") !=
        std::string::npos);
  CHECK(metrics.body.find("\nshotsync_webhook_events_total{result=\"bad_signature\"} 1\n") !=
        std::string::npos);

  auto ok = http::Get(f.Url("/healthz"));
  CHECK(ok.status == 200);
  CHECK(ok.body == "ok\n");
  f.healthy = false;
  auto sick = http::Get(f.Url("/healthz"));
  CHECK(sick.status == 503);
  CHECK(sick.body.find("Shootbin unreachable") != std::string::npos);

  CHECK(http::Get(f.Url("/nope")).status == 404);
  auto wrong_method = http::Get(f.Url("/webhooks/headshotpro"));
  CHECK(wrong_method.status == 405);
  CHECK(wrong_method.header("Allow").value_or("") == "POST");
}

TEST_CASE("a listener serves only its routes, and a taken port is an error naming it",
          "[webhook][listener]") {
  LsFixture f;
  WatchListener::Hooks hooks;
  auto metrics_only = WatchListener::Start({"127.0.0.1", 0}, {false, true}, hooks);
  REQUIRE(metrics_only.ok());
  const std::string base = "http://127.0.0.1:" + std::to_string((*metrics_only)->port());
  CHECK(http::Get(base + "/metrics").status == 200);
  http::Request post;
  post.method = "POST";
  post.url = base + "/webhooks/headshotpro";
  post.body = "{}";
  CHECK(http::Perform(post).status == 404);

  auto taken = WatchListener::Start({"127.0.0.1", f.listener->port()}, {true, false}, hooks);
  REQUIRE_FALSE(taken.ok());
  CHECK(taken.status().message().find("cannot listen on 127.0.0.1:" +
                                      std::to_string(f.listener->port())) == 0);
}

namespace {

// A client speaking HTTP by hand, for what curl does not send: pipelined
// requests, half a request, an oversize head. Reads wait at most 10 s (a
// hung listener fails the test instead of hanging it).
struct RawClient {
  shotsync::UniqueFd fd;
  std::string in;

  explicit RawClient(int port) : fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd);
    timeval tv{10, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  void Send(const std::string& bytes) {
    REQUIRE(::send(fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
  }
  bool Fill() {
    char buf[4096];
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) return false;
    in.append(buf, static_cast<std::size_t>(n));
    return true;
  }
  // One whole answer (head and Content-Length body), or "" at EOF.
  std::string Answer() {
    std::size_t end;
    while ((end = in.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return "";
    }
    if (in.rfind("HTTP/1.1 100 ", 0) == 0) {  // an interim answer: a head alone
      std::string out = in.substr(0, end + 4);
      in.erase(0, end + 4);
      return out;
    }
    const auto cl = in.find("Content-Length: ");
    REQUIRE(cl < end);
    const std::size_t total = end + 4 + std::stoul(in.substr(cl + 16));
    while (in.size() < total) {
      if (!Fill()) return "";
    }
    std::string out = in.substr(0, total);
    in.erase(0, total);
    return out;
  }
  bool AtEof() { return in.empty() && !Fill(); }
};

}  // namespace

TEST_CASE("the listener answers pipelined requests in order on one kept-alive connection, chunked "
          "bodies and 100-continue included",
          "[webhook][listener]") {
  LsFixture f;
  const std::string body = LsEvent("evt_chunked");
  const std::string ts = std::to_string(static_cast<long long>(kLsNow));
  const std::string half = body.substr(0, body.size() / 2);
  const std::string rest = body.substr(body.size() / 2);
  auto hex = [](std::size_t n) {
    char b[16];
    std::snprintf(b, sizeof b, "%zx", n);
    return std::string(b);
  };
  RawClient c(f.listener->port());
  c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
         "POST /webhooks/headshotpro HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
         "Expect: 100-continue\r\nX-HeadshotPro-Timestamp: " + ts +
         "\r\nX-HeadshotPro-Signature: " + LsSign(ts, body) + "\r\n\r\n" + hex(half.size()) + "\r\n" + half +
         "\r\n" + hex(rest.size()) + ";x=y\r\n" + rest + "\r\n0\r\n\r\n");
  const std::string health = c.Answer();
  CHECK(health.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(health.find("Connection: keep-alive") != std::string::npos);
  CHECK(health.substr(health.size() - 3) == "ok\n");
  CHECK(c.Answer().rfind("HTTP/1.1 404", 0) == 0);
  CHECK(c.Answer() == "HTTP/1.1 100 Continue\r\n\r\n");
  const std::string webhook = c.Answer();
  INFO(webhook);
  CHECK(webhook.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(webhook.find("\"accepted\"") != std::string::npos);
  REQUIRE(f.EventCount() == 1);
  CHECK(f.Events()[0].model_id == "m42");
  // HTTP/1.0 without keep-alive: answered, then closed.
  c.Send("GET /metrics HTTP/1.0\r\n\r\n");
  CHECK(c.Answer().find("Connection: close") != std::string::npos);
  CHECK(c.AtEof());
}

TEST_CASE("a client that sends half a request holds up no one, and an oversize head is refused",
          "[webhook][listener]") {
  LsFixture f;
  RawClient slow(f.listener->port());
  slow.Send("GET /healthz HTTP/1.1\r\nHo");
  CHECK(http::Get(f.Url("/healthz")).status == 200);  // served while the other request is half sent
  slow.Send("st: x\r\n\r\n");
  CHECK(slow.Answer().rfind("HTTP/1.1 200 OK", 0) == 0);

  RawClient big(f.listener->port());
  big.Send("GET /healthz HTTP/1.1\r\nX-Pad: " + std::string(9000, 'x') + "\r\n\r\n");
  const std::string refused = big.Answer();
  CHECK(refused.rfind("HTTP/1.1 431", 0) == 0);
  CHECK(refused.find("Connection: close") != std::string::npos);
  CHECK(big.AtEof());

  RawClient smuggler(f.listener->port());
  smuggler.Send("POST /webhooks/headshotpro HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  CHECK(smuggler.Answer().rfind("HTTP/1.1 400", 0) == 0);
  CHECK(smuggler.AtEof());
  CHECK(f.EventCount() == 0);
}
