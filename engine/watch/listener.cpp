// WatchListener (watch/listener.hpp): one owned thread serving the webhook,
// /metrics and /healthz over HTTP/1.1 (watch/http_wire.hpp), blocked in
// poll(2) on the listening socket, its connections and an eventfd (the
// stop). Its own small server rather than a library's: three routes need
// little, and every shared library shotsync links is loaded by every
// command, a `push` hook's most of all (docs/hooks.md#cost).
//
// Each connection reads one request at a time (head, then a body of at most
// kMaxWebhookBody), is answered by the route on this thread (the hooks only
// remember and queue: milliseconds), and is kept alive for the next request
// for kKeepAlive. A request must arrive whole within kIoTimeout of its first
// byte, and an answer be taken as fast, or the connection is closed: a slow
// or silent client holds one of kMaxConnections slots, never the thread.
#include "watch/listener.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "shotsync/fd.hpp"
#include "shotsync/metrics.hpp"
#include "shotsync/throttle.hpp"
#include "watch/http_wire.hpp"

namespace shotsync {

namespace {

using Clock = std::chrono::steady_clock;
using watch::RequestHead;

constexpr char kWebhookPath[] = "/webhooks/headshotpro";
constexpr std::size_t kMaxConnections = 32;
constexpr auto kKeepAlive = std::chrono::seconds(2);
constexpr auto kIoTimeout = std::chrono::seconds(10);
// After an answer that closes the connection: the unread rest of the
// request is read and dropped for this long, so that closing does not
// reset the connection before the client has read the answer.
constexpr auto kLinger = std::chrono::seconds(1);

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

std::string PeerAddress(const sockaddr_storage& ss) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, text, sizeof text);
  } else if (ss.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, text, sizeof text);
  }
  return text;
}

struct Request {
  RequestHead head;
  std::string body;
  std::string remote;  // the peer's address, for the log
};

struct Answer {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::string> headers;
};

Answer AnswerJson(int status, bool ok, std::string_view result) {
  std::string body = ok ? "{\"ok\":true,\"result\":\"" : "{\"ok\":false,\"result\":\"";
  body.append(result).append("\"}\n");
  return {status, "application/json", std::move(body), {}};
}

Answer AnswerText(int status, std::string text) {
  return {status, "text/plain; charset=utf-8", std::move(text), {}};
}

struct Conn {
  enum class State { kRead, kWrite, kLinger };
  UniqueFd fd;
  std::string remote;
  State state = State::kRead;
  std::string in;                   // read, not yet parsed
  std::optional<RequestHead> head;  // parsed; its body is awaited
  bool started = false;             // a request's first byte has arrived
  std::string out;                  // the answer being written
  std::size_t sent = 0;
  bool close_after = false;
  Clock::time_point deadline;
};

}  // namespace

struct WatchListener::Impl {
  Routes routes;
  Hooks hooks;
  UniqueFd listen_fd;
  UniqueFd wake;  // eventfd: the destructor's stop
  int port = 0;
  std::vector<std::unique_ptr<Conn>> conns;
  std::jthread thread;

  double Now() const { return hooks.now ? hooks.now() : WallSeconds(); }

  void Count(WebhookVerdict v) {
    if (hooks.metrics)
      hooks.metrics->webhooks[static_cast<std::size_t>(v)].fetch_add(1, std::memory_order_relaxed);
  }

  // One line about a delivery; the body and the signature stay out of it.
  void Warn(const std::string& remote, std::string_view what) {
    if (!hooks.log) return;
    std::string line = "webhook from ";
    line.append(remote).append(": ").append(what);
    hooks.log->Warn(line);
  }

  Answer Refuse(const std::string& remote, WebhookVerdict v, int status, std::string_view detail) {
    Count(v);
    std::string what = "refused (";
    what.append(WebhookVerdictName(v)).append(")");
    if (!detail.empty()) what.append(": ").append(detail);
    Warn(remote, what);
    return AnswerJson(status, false, WebhookVerdictName(v));
  }

  Answer Webhook(const Request& req) {
    const WebhookVerdict sig = VerifyWebhookSignature(
        hooks.secret, req.head.Header("X-HeadshotPro-Timestamp").value_or(""),
        req.head.Header("X-HeadshotPro-Signature").value_or(""), req.body, Now());
    if (sig != WebhookVerdict::kAccepted) return Refuse(req.remote, sig, 401, "");
    Result<WebhookEvent> ev = ParseWebhookEvent(req.body);
    if (!ev.ok()) return Refuse(req.remote, WebhookVerdict::kMalformed, 400, ev.status().message());
    Result<bool> fresh = hooks.remember ? hooks.remember(ev->dedupe_key) : Result<bool>(true);
    if (!fresh.ok()) {
      // Not counted by verdict: HeadshotPro delivers it again, and that
      // delivery is the one counted.
      std::string what = "could not be remembered, answered 503: ";
      what.append(fresh.status().message());
      Warn(req.remote, what);
      return AnswerJson(503, false, "unavailable");
    }
    if (!*fresh) {
      Count(WebhookVerdict::kDuplicate);
      return AnswerJson(200, true, WebhookVerdictName(WebhookVerdict::kDuplicate));
    }
    if (hooks.on_event) hooks.on_event(*ev);
    Count(WebhookVerdict::kAccepted);
    return AnswerJson(200, true, WebhookVerdictName(WebhookVerdict::kAccepted));
  }

  Answer Metrics() {
    static const WatchMetrics kNone;  // no counters given: every series at zero
    return {200, "text/plain; version=0.0.4; charset=utf-8",
            RenderPrometheus(hooks.metrics ? *hooks.metrics : kNone), {}};
  }

  Answer Health() {
    const Status st = hooks.health ? hooks.health() : Status::Ok();
    if (st.ok()) return AnswerText(200, "ok\n");
    return AnswerText(503, st.message() + "\n");
  }

  static bool Lists(std::string_view methods, std::string_view method) {
    while (!methods.empty()) {
      const auto comma = methods.find(", ");
      if (methods.substr(0, comma) == method) return true;
      if (comma == std::string_view::npos) break;
      methods.remove_prefix(comma + 2);
    }
    return false;
  }

  // The routes this listener serves: the methods a path takes ("" = none).
  std::string_view Allowed(const std::string& path) const {
    if (routes.webhooks && path == kWebhookPath) return "POST";
    if (routes.metrics && (path == "/metrics" || path == "/healthz")) return "GET, HEAD";
    return "";
  }

  // Before the body is read: an answer that refuses the request, if any.
  std::optional<Answer> Screen(const Conn& c, const RequestHead& h) {
    const std::string_view allowed = Allowed(h.path);
    if (allowed.empty()) return AnswerText(404, "not found\n");
    if (!Lists(allowed, h.method)) {
      Answer a = AnswerText(405, "method not allowed\n");
      a.headers.push_back("Allow: " + std::string(allowed));
      return a;
    }
    if (h.content_length > kMaxWebhookBody) {
      if (h.path == kWebhookPath) return Refuse(c.remote, WebhookVerdict::kMalformed, 400, "body too large");
      return AnswerText(413, "body too large\n");
    }
    return std::nullopt;
  }

  Answer Route(const Request& req) {
    if (req.head.path == kWebhookPath) return Webhook(req);
    if (req.head.path == "/metrics") return Metrics();
    return Health();
  }

  // ---------------------------------------------------------------- wire

  void Queue(Conn& c, const Answer& a, bool keep_alive, bool head_only) {
    c.close_after = c.close_after || !keep_alive;
    c.out = watch::FormatAnswer(a.status, a.content_type, a.body, !c.close_after, a.headers);
    if (head_only) c.out.resize(c.out.size() - a.body.size());
    c.sent = 0;
    c.state = Conn::State::kWrite;
    c.deadline = Clock::now() + kIoTimeout;
    Write(c);
  }

  // Refuses what cannot be read on: answered, then closed.
  void Fail(Conn& c, const Answer& a) {
    c.head.reset();
    c.in.clear();
    Queue(c, a, false, false);
  }

  // Parses and answers what `in` holds, one request after another.
  void Advance(Conn& c) {
    while (c.state == Conn::State::kRead && !c.in.empty()) {
      if (!c.started) {
        c.started = true;
        c.deadline = Clock::now() + kIoTimeout;
      }
      if (!c.head) {
        watch::HeadParse hp = watch::ParseRequestHead(c.in);
        if (hp.state == watch::HeadParse::kIncomplete) return;
        if (hp.state == watch::HeadParse::kBad) return Fail(c, AnswerText(hp.error.status, hp.error.reason + "\n"));
        c.in.erase(0, hp.consumed);
        if (std::optional<Answer> refused = Screen(c, hp.head)) {
          // Its body, if any, is not read: the connection ends with the answer.
          const bool has_body = hp.head.content_length > 0 || hp.head.chunked;
          if (has_body) return Fail(c, *refused);
          c.started = false;
          Queue(c, *refused, hp.head.keep_alive, hp.head.method == "HEAD");
          continue;
        }
        if (hp.head.expect_continue) {
          static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
          // A fresh socket's buffer takes 25 bytes; if not, the client sends after its own wait.
          (void)::send(c.fd.get(), kContinue, sizeof kContinue - 1, MSG_NOSIGNAL);
        }
        c.head = std::move(hp.head);
      }
      Request req;
      if (c.head->chunked) {
        watch::ChunkedParse cp = watch::DecodeChunked(c.in, kMaxWebhookBody);
        if (cp.state == watch::ChunkedParse::kIncomplete) return;
        if (cp.state == watch::ChunkedParse::kBad) {
          if (cp.reason == "too large" && c.head->path == kWebhookPath)
            return Fail(c, Refuse(c.remote, WebhookVerdict::kMalformed, 400, "body too large"));
          return Fail(c, AnswerText(400, cp.reason + "\n"));
        }
        req.body = std::move(cp.body);
        c.in.erase(0, cp.consumed);
      } else {
        if (c.in.size() < c.head->content_length) return;
        req.body = c.in.substr(0, c.head->content_length);
        c.in.erase(0, c.head->content_length);
      }
      req.head = std::move(*c.head);
      req.remote = c.remote;
      c.head.reset();
      c.started = false;
      Queue(c, Route(req), req.head.keep_alive, req.head.method == "HEAD");
    }
    if (c.state == Conn::State::kRead && c.in.empty() && !c.started) c.deadline = Clock::now() + kKeepAlive;
  }

  // Writes what the socket takes; once written, the connection reads the
  // next request (Advance's loop, or Serve's when the socket was full).
  void Write(Conn& c) {
    while (c.sent < c.out.size()) {
      const ssize_t n = ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += std::size_t(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      c.fd.reset();  // the peer went away
      return;
    }
    c.out.clear();
    if (c.close_after) {
      ::shutdown(c.fd.get(), SHUT_WR);
      c.state = Conn::State::kLinger;
      c.deadline = Clock::now() + kLinger;
      return;
    }
    c.state = Conn::State::kRead;
    if (c.in.empty()) c.deadline = Clock::now() + kKeepAlive;
  }

  // Reads what arrived; EOF or an error ends the connection.
  void Read(Conn& c) {
    char buf[16 * 1024];
    for (;;) {
      const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
      if (n > 0) {
        if (c.state == Conn::State::kRead) c.in.append(buf, std::size_t(n));
        // Beyond a head and a body of the largest size, a client is not waiting for an answer.
        if (c.in.size() > watch::kMaxRequestHead + kMaxWebhookBody + 64 * 1024)
          return Fail(c, AnswerText(400, "request too large\n"));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      c.fd.reset();
      return;
    }
    if (c.state == Conn::State::kRead) Advance(c);
  }

  void Accept() {
    while (conns.size() < kMaxConnections) {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      const int fd = ::accept4(listen_fd.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a connection that failed before it was taken
      auto c = std::make_unique<Conn>();
      c->fd.reset(fd);
      c->remote = PeerAddress(ss);
      c->deadline = Clock::now() + kIoTimeout;  // the first request's first byte, at least
      conns.push_back(std::move(c));
    }
  }

  void Serve() {
    std::vector<pollfd> fds;
    bool stopping = false;
    Clock::time_point stop_by{};
    for (;;) {
      fds.clear();
      fds.push_back({wake.get(), POLLIN, 0});
      const bool accepting = !stopping && conns.size() < kMaxConnections;
      fds.push_back({accepting ? listen_fd.get() : -1, POLLIN, 0});  // poll skips a negative fd
      Clock::time_point next = stopping ? stop_by : Clock::time_point::max();
      for (const auto& c : conns) {
        fds.push_back({c->fd.get(), short(c->state == Conn::State::kWrite ? POLLOUT : POLLIN), 0});
        next = std::min(next, c->deadline);
      }
      int timeout_ms = -1;
      if (next != Clock::time_point::max()) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
        timeout_ms = int(std::clamp<long long>(left, 0, 60'000));
      }
      if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) return;
      const auto now = Clock::now();
      for (std::size_t i = 0; i < conns.size(); ++i) {
        Conn& c = *conns[i];
        const short ev = fds[i + 2].revents;
        if (ev & (POLLIN | POLLOUT | POLLERR | POLLHUP)) {
          if (c.state == Conn::State::kWrite) {
            Write(c);
            if (c.fd && c.state == Conn::State::kRead) Advance(c);
          } else {
            Read(c);
          }
        } else if (now >= c.deadline) {
          c.fd.reset();  // too slow, idle too long, or done lingering
        }
      }
      std::erase_if(conns, [](const auto& c) { return !c->fd; });
      if (fds[0].revents & POLLIN) {
        // Stop: no new connections; answers being written get a second to go out.
        stopping = true;
        stop_by = now + std::chrono::seconds(1);
        listen_fd.reset();
        std::erase_if(conns, [](const auto& c) { return c->state != Conn::State::kWrite; });
      }
      if (stopping && (conns.empty() || now >= stop_by)) return;
      if (accepting && (fds[1].revents & POLLIN)) Accept();
    }
  }
};

WatchListener::WatchListener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<WatchListener>> WatchListener::Start(const ListenAddress& at, Routes routes,
                                                            Hooks hooks) {
  auto impl = std::make_unique<Impl>();
  impl->routes = routes;
  impl->hooks = std::move(hooks);
  auto failed = [&at](std::string_view why) {
    std::string msg = "cannot listen on ";
    msg.append(HostPort(at.host, at.port)).append(": ").append(why);
    return Status(Code::kIo, std::move(msg));
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(at.port);
  if (const int rc = ::getaddrinfo(at.host.empty() ? nullptr : at.host.c_str(), service.c_str(), &hints, &found);
      rc != 0) {
    return failed(::gai_strerror(rc));
  }
  const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, &::freeaddrinfo);
  int err = EADDRNOTAVAIL;
  for (const addrinfo* a = found; a && !impl->listen_fd; a = a->ai_next) {
    UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd) {
      err = errno;
      continue;
    }
    // SO_REUSEADDR only (not SO_REUSEPORT): a second `watch` on the same
    // port must fail to start, not share the webhooks in silence.
    int yes = 1;
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd.get(), 64) != 0) {
      err = errno;
      continue;
    }
    impl->listen_fd = std::move(fd);
  }
  if (!impl->listen_fd) return failed(std::strerror(err));
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(impl->listen_fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0)
    return failed(std::strerror(errno));
  impl->port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(bound).sin6_port
                                                 : reinterpret_cast<sockaddr_in&>(bound).sin_port);
  impl->wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!impl->wake) return failed(std::strerror(errno));
  // Listening already: a connection made before the thread runs waits in the backlog.
  Impl* raw = impl.get();
  raw->thread = std::jthread([raw] { raw->Serve(); });
  return std::make_unique<WatchListener>(std::move(impl));
}

WatchListener::~WatchListener() {
  if (!impl_) return;
  const std::uint64_t one = 1;
  (void)::write(impl_->wake.get(), &one, sizeof one);
  if (impl_->thread.joinable()) impl_->thread.join();
}

int WatchListener::port() const {
  return impl_->port;
}

}  // namespace shotsync
