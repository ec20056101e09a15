// WatchListener: cpp-httplib serving the webhook, /metrics and /healthz on
// a thread of its own (watch/listener.hpp).
#include "watch/listener.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

#include "shotsync/metrics.hpp"
#include "shotsync/throttle.hpp"

namespace shotsync {

namespace {

constexpr char kWebhookPath[] = "/webhooks/headshotpro";
// Few requests, each short: a webhook now and then, a scrape every few
// seconds. Idle keep-alive connections hold a worker, so they end soon.
constexpr std::size_t kListenerThreads = 3;
constexpr time_t kKeepAliveSeconds = 2;
constexpr time_t kIoTimeoutSeconds = 10;

// "host:port", IPv6 hosts in brackets.
std::string HostPort(const std::string& host, int port) {
  std::string out;
  const bool v6 = host.find(':') != std::string::npos;
  if (v6) out.append(1, '[');
  out.append(host);
  if (v6) out.append(1, ']');
  out.append(1, ':').append(std::to_string(port));
  return out;
}

void AnswerJson(httplib::Response& res, int status, bool ok, std::string_view result) {
  std::string body = ok ? "{\"ok\":true,\"result\":\"" : "{\"ok\":false,\"result\":\"";
  body.append(result).append("\"}\n");
  res.status = status;
  res.set_content(body, "application/json");
}

}  // namespace

struct WatchListener::Impl {
  Routes routes;
  Hooks hooks;
  httplib::Server server;
  int port = 0;
  std::atomic<bool> served{false};  // listen_after_bind returned
  std::jthread thread;

  double Now() const { return hooks.now ? hooks.now() : WallSeconds(); }

  void Count(WebhookVerdict v) {
    if (hooks.metrics)
      hooks.metrics->webhooks[static_cast<std::size_t>(v)].fetch_add(1, std::memory_order_relaxed);
  }

  // One line about a delivery; the body and the signature stay out of it.
  void Warn(const httplib::Request& req, std::string_view what) {
    if (!hooks.log) return;
    std::string line = "webhook from ";
    line.append(req.remote_addr).append(": ").append(what);
    hooks.log->Warn(line);
  }

  void Refuse(const httplib::Request& req, httplib::Response& res, WebhookVerdict v, int status,
              std::string_view detail) {
    Count(v);
    std::string what = "refused (";
    what.append(WebhookVerdictName(v)).append(")");
    if (!detail.empty()) what.append(": ").append(detail);
    Warn(req, what);
    AnswerJson(res, status, false, WebhookVerdictName(v));
  }

  void Webhook(const httplib::Request& req, httplib::Response& res) {
    if (req.body.size() > kMaxWebhookBody) {
      Refuse(req, res, WebhookVerdict::kMalformed, 400, "body too large");
      return;
    }
    const WebhookVerdict sig =
        VerifyWebhookSignature(hooks.secret, req.get_header_value("X-HeadshotPro-Timestamp"),
                               req.get_header_value("X-HeadshotPro-Signature"), req.body, Now());
    if (sig != WebhookVerdict::kAccepted) {
      Refuse(req, res, sig, 401, "");
      return;
    }
    Result<WebhookEvent> ev = ParseWebhookEvent(req.body);
    if (!ev.ok()) {
      Refuse(req, res, WebhookVerdict::kMalformed, 400, ev.status().message());
      return;
    }
    Result<bool> fresh = hooks.remember ? hooks.remember(ev->dedupe_key) : Result<bool>(true);
    if (!fresh.ok()) {
      // Not counted by verdict: HeadshotPro delivers it again, and that
      // delivery is the one counted.
      std::string what = "could not be remembered, answered 503: ";
      what.append(fresh.status().message());
      Warn(req, what);
      AnswerJson(res, 503, false, "unavailable");
      return;
    }
    if (!*fresh) {
      Count(WebhookVerdict::kDuplicate);
      AnswerJson(res, 200, true, WebhookVerdictName(WebhookVerdict::kDuplicate));
      return;
    }
    if (hooks.on_event) hooks.on_event(*ev);
    Count(WebhookVerdict::kAccepted);
    AnswerJson(res, 200, true, WebhookVerdictName(WebhookVerdict::kAccepted));
  }

  void Metrics(httplib::Response& res) {
    static const WatchMetrics kNone;  // no counters given: every series at zero
    res.set_content(RenderPrometheus(hooks.metrics ? *hooks.metrics : kNone),
                    "text/plain; version=0.0.4; charset=utf-8");
  }

  void Health(httplib::Response& res) {
    const Status st = hooks.health ? hooks.health() : Status::Ok();
    if (st.ok()) {
      res.set_content("ok\n", "text/plain; charset=utf-8");
      return;
    }
    res.status = 503;
    std::string text = st.message();
    text.append(1, '\n');
    res.set_content(text, "text/plain; charset=utf-8");
  }

  // httplib answers a body over the payload limit with 413 before any
  // route runs; a webhook gets the documented 400 (and is counted).
  httplib::Server::HandlerResponse OnError(const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty())
      return httplib::Server::HandlerResponse::Unhandled;  // a route's own answer
    if (res.status == 413 && routes.webhooks && req.path == kWebhookPath) {
      Refuse(req, res, WebhookVerdict::kMalformed, 400, "body too large");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (res.status == 404) {
      res.set_content("not found\n", "text/plain; charset=utf-8");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  }

  void Configure() {
    // httplib owns the queue it gets from this factory (its API takes a raw pointer).
    server.new_task_queue = [] { return new httplib::ThreadPool(kListenerThreads); };
    server.set_keep_alive_timeout(kKeepAliveSeconds);
    server.set_read_timeout(kIoTimeoutSeconds);
    server.set_write_timeout(kIoTimeoutSeconds);
    server.set_payload_max_length(kMaxWebhookBody);
    // httplib's default adds SO_REUSEPORT: a second `watch` on the same port
    // would then share the webhooks silently instead of failing to start.
    server.set_socket_options([](socket_t sock) {
      int yes = 1;
      (void)::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    server.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request& req, httplib::Response& res) { return OnError(req, res); }));
    if (routes.webhooks) {
      server.Post(kWebhookPath, [this](const httplib::Request& req, httplib::Response& res) {
        Webhook(req, res);
      });
    }
    if (routes.metrics) {
      server.Get("/metrics",
                 [this](const httplib::Request&, httplib::Response& res) { Metrics(res); });
      server.Get("/healthz",
                 [this](const httplib::Request&, httplib::Response& res) { Health(res); });
    }
  }
};

WatchListener::WatchListener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<WatchListener>> WatchListener::Start(const ListenAddress& at, Routes routes,
                                                            Hooks hooks) {
  auto impl = std::make_unique<Impl>();
  impl->routes = routes;
  impl->hooks = std::move(hooks);
  impl->Configure();

  // httplib reports only success; the socket calls' errno says why not.
  errno = 0;
  int port = -1;
  if (at.port == 0) {
    port = impl->server.bind_to_any_port(at.host);
  } else if (impl->server.bind_to_port(at.host, at.port)) {
    port = at.port;
  }
  if (port <= 0) {
    const int err = errno;
    std::string msg = "cannot listen on ";
    msg.append(HostPort(at.host, at.port)).append(": ");
    msg.append(err != 0 ? std::strerror(err) : "the address cannot be bound");
    return Status(Code::kIo, std::move(msg));
  }
  impl->port = port;

  Impl* raw = impl.get();
  raw->thread = std::jthread([raw] {
    raw->server.listen_after_bind();
    raw->served.store(true);
  });
  // stop() is a no-op until the server runs: wait for it, so that a
  // listener destroyed at once still ends. httplib 0.11 has no ready
  // signal to wait on; this wait lasts until the thread enters its accept
  // loop (microseconds), once per listener.
  while (!raw->server.is_running() && !raw->served.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return std::make_unique<WatchListener>(std::move(impl));
}

WatchListener::~WatchListener() {
  if (!impl_) return;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int WatchListener::port() const {
  return impl_->port;
}

}  // namespace shotsync
