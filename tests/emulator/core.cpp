// Emulator core: HTTP server set-up, tokens, per-token rate limits, faults,
// stats and the /_emulator/* admin endpoints. See emulator.hpp.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>

#include "emulator.hpp"
#include "filename.hpp"

namespace emu {
namespace {

// Set by the pre-routing handler on the worker thread that serves a counted
// (non-admin) request, cleared by the logger once its answer was written:
// httplib routes, handles and logs a request on one thread.
thread_local bool t_in_flight = false;

// RFC 7231 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (no locale).
std::string HttpDate(std::int64_t secs) {
  static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t t = secs;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7], tm.tm_mday,
                kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string IsoFromUnix(std::int64_t secs) {
  std::time_t t = secs;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buf;
}

// Debian's cpp-httplib is built with a listen backlog of 5: eight clients
// connecting at once then lose SYNs and wait a 1 s retransmission (seen as
// rare one-second stalls in the upload benchmark, for curl and shotsync
// alike). listen() again on the bound socket raises the backlog.
void WidenListenBacklog(int port) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (dirent* e = ::readdir(dir)) {
    const int fd = std::atoi(e->d_name);
    if (fd <= 2 || fd == ::dirfd(dir)) continue;
    int listening = 0;
    socklen_t len = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    const int bound = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                      : addr.ss_family == AF_INET  ? ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port)
                                                   : -1;
    if (bound == port) (void)::listen(fd, SOMAXCONN);
  }
  ::closedir(dir);
}

// "POST /api/projects/{id}/albums/{id}/photos": numbers and 24-hex ids folded.
std::string RouteKey(const std::string& method, const std::string& path) {
  std::string out = method + " ";
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = path.find('/', i + 1);
    if (j == std::string::npos) j = path.size();
    std::string seg = path.substr(i, j - i);  // includes the leading '/'
    std::string body = seg.size() > 1 ? seg.substr(1) : "";
    const bool digits = !body.empty() && std::all_of(body.begin(), body.end(), ::isdigit);
    const bool hex24 = body.size() == 24 && std::all_of(body.begin(), body.end(), ::isxdigit);
    out += (digits || hex24) ? "/{id}" : seg;
    i = j;
  }
  return out;
}

Json ShootbinError(const std::string& message) { return Json{{"message", message}}; }
Json HpError(const std::string& error, const std::string& code) {
  return Json{{"success", false}, {"error", error}, {"code", code}};
}

// Laravel's wantsJson(): the Accept header asks for JSON ("application/json",
// or a "+json" type). "*/*" (curl's default) and a missing header do not.
bool AcceptsJson(const httplib::Request& req) {
  const std::string accept = req.get_header_value("Accept");
  return accept.find("/json") != std::string::npos || accept.find("+json") != std::string::npos;
}

// Admin POSTs may come without a body (`curl -X POST .../reset`): httplib
// answers 400 to a POST with neither Content-Length nor chunked encoding
// unless the route takes a ContentReader, so admin routes read it themselves.
std::string ReadBody(const httplib::Request& req, const httplib::ContentReader& reader) {
  std::string body;
  if (req.has_header("Content-Length") || req.get_header_value("Transfer-Encoding") == "chunked") {
    reader([&](const char* data, std::size_t n) {
      if (body.size() < (std::size_t(16) << 20)) body.append(data, n);
      return true;
    });
  }
  return body;
}

// Calls fn(fd, local port, peer address, peer port) for every connected TCP
// socket of this process until fn returns false.
void ForEachConnection(const std::function<bool(int, int, const std::string&, int)>& fn) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return;
  while (dirent* e = ::readdir(dir)) {
    const int fd = std::atoi(e->d_name);
    if (fd <= 2 || fd == ::dirfd(dir)) continue;
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;
    char addr[INET6_ADDRSTRLEN] = {};
    int lport = -1, pport = -1;
    if (local.ss_family == AF_INET && peer.ss_family == AF_INET) {
      const auto* l4 = reinterpret_cast<sockaddr_in*>(&local);
      const auto* p4 = reinterpret_cast<sockaddr_in*>(&peer);
      lport = ntohs(l4->sin_port), pport = ntohs(p4->sin_port);
      ::inet_ntop(AF_INET, &p4->sin_addr, addr, sizeof addr);
    } else if (local.ss_family == AF_INET6 && peer.ss_family == AF_INET6) {
      const auto* l6 = reinterpret_cast<sockaddr_in6*>(&local);
      const auto* p6 = reinterpret_cast<sockaddr_in6*>(&peer);
      lport = ntohs(l6->sin6_port), pport = ntohs(p6->sin6_port);
      ::inet_ntop(AF_INET6, &p6->sin6_addr, addr, sizeof addr);
    } else {
      continue;
    }
    if (!fn(fd, lport, addr, pport)) break;
  }
  ::closedir(dir);
}

void SendJson(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

// The knobs of POST /_emulator/faults applied to `f`; `error` names the
// first invalid one (and the result is then to be dropped). Throws
// Json::exception on a value of the wrong JSON type.
Faults ApplyFaults(Faults f, const Json& b, std::string& error) {
  auto rate = [&](const char* key, double& v) {
    if (!b.contains(key)) return;
    const double x = b.at(key).get<double>();
    if (!(x >= 0 && x <= 1)) error = std::string(key) + " must be within 0..1";
    else v = x;
  };
  f.latency_ms = b.value("latency_ms", f.latency_ms);
  f.rate_5xx = b.value("rate_5xx", f.rate_5xx);
  f.rate_reset = b.value("rate_reset", f.rate_reset);
  f.rate_reset_after_store = b.value("rate_reset_after_store", f.rate_reset_after_store);
  f.burst_429 = b.value("burst_429", f.burst_429);
  f.slow_body_bps = b.value("slow_body_bps", f.slow_body_bps);
  f.rate_hang = b.value("rate_hang", f.rate_hang);
  f.rate_close_keepalive = b.value("rate_close_keepalive", f.rate_close_keepalive);
  rate("rate_gateway", f.rate_gateway);
  rate("rate_cut_2xx", f.rate_cut_2xx);
  rate("rate_late_store", f.rate_late_store);
  if (b.contains("gateway_status")) {
    const int s = b.at("gateway_status").get<int>();
    if (s != 502 && s != 504 && s != 524) error = "gateway_status must be 502, 504 or 524";
    else f.gateway_status = s;
  }
  f.gateway_stores = b.value("gateway_stores", f.gateway_stores);
  if (b.contains("late_store_ms")) {
    const int ms = b.at("late_store_ms").get<int>();
    if (ms < 0) error = "late_store_ms must be >= 0";
    else f.late_store_ms = ms;
  }
  if (b.contains("filename_mode")) {
    std::string why;
    auto mode = ParseFilenameMode(b.at("filename_mode").get<std::string>(), &why);
    if (!mode) error = why;
    else f.filename_mode = *mode;
  }
  if (b.contains("retry_after_s")) {
    const int s = b.at("retry_after_s").get<int>();
    if (s < 0) error = "retry_after_s must be >= 0";
    else f.retry_after_s = s;
  }
  f.clock_skew_s = b.value("clock_skew_s", f.clock_skew_s);
  if (b.contains("advertised_limit")) {
    const int n = b.at("advertised_limit").get<int>();
    if (n < 0) error = "advertised_limit must be >= 0 (0 = the token's rpm)";
    else f.advertised_limit = n;
  }
  return f;
}

}  // namespace

namespace {
std::unique_ptr<httplib::Server> MakeServer(const Options& o) {
  if (o.tls_cert.empty()) return std::make_unique<httplib::Server>();
  return std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
}
}  // namespace

Emulator::Emulator(Options options)
    : options_(std::move(options)), server_(MakeServer(options_)), rng_(options_.seed) {
  tokens_["sb-test-token"] = TokenInfo{Service::kShootbin, "agency", {"create", "update"}, 0, false, "owner"};
  tokens_["sb-pro-token"] = TokenInfo{Service::kShootbin, "pro", {"create", "update"}, 0, false, "owner"};
  tokens_["sb-readonly-token"] = TokenInfo{Service::kShootbin, "agency", {}, 0, false, "owner"};
  tokens_["sb-approver-token"] = TokenInfo{Service::kShootbin, "agency", {"create", "update"}, 0, false, "approver"};
  tokens_["sb-revoked-token"] = TokenInfo{Service::kShootbin, "agency", {"create", "update"}, 0, true, "owner"};
  tokens_["hp-test-key"] = TokenInfo{Service::kHeadshotPro, "professional", {}, 0, false, "owner"};

  const int threads = std::max(4, options_.threads);
  // httplib owns the queue it gets from this factory (its API takes a raw pointer).
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(std::size_t(threads)); };
  server_->set_keep_alive_max_count(1000000);
  server_->set_keep_alive_timeout(30);
  server_->set_tcp_nodelay(true);  // no 40 ms delayed-ACK stalls between header and body writes
  server_->set_read_timeout(60);
  server_->set_write_timeout(60);
  // Bodies over 10 MB must still get the contract's 422 (uploads are streamed
  // and only counted), so the transport limit is far above that.
  server_->set_payload_max_length(std::size_t(1) << 30);
  // Called after the answer was written (not for connections reset on
  // purpose): the final status of every API and CDN answer.
  server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response&) {
    if (req.path.rfind("/_emulator/", 0) != 0) {
      t_in_flight = true;
      ++in_flight_;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server_->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    if (t_in_flight) {
      t_in_flight = false;
      --in_flight_;
    }
    if (req.path.rfind("/_emulator/", 0) == 0) return;
    std::lock_guard lock(mu_);
    if (!reset_peers_.empty() && reset_peers_.erase(req.remote_addr + ":" + std::to_string(req.remote_port))) return;
    ++stats_.status_counts[res.status];
    if (res.status == 429) ++stats_.rate_limited;
  });
  // Unrouted Shootbin paths: a JSON 404/405 like the app's, not an empty body.
  server_->set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) {
    const bool shootbin = req.path.rfind("/api/", 0) == 0 && req.path.rfind("/api/v2/", 0) != 0 &&
                          req.path != "/api/v2";
    if (!shootbin || !res.body.empty() || res.content_provider_ || res.has_header("Content-Type")) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    if (res.status == 404) SendJson(res, 404, ShootbinError("Not Found."));
    else if (res.status == 405) SendJson(res, 405, ShootbinError("The " + req.method + " method is not supported for this route."));
    else return httplib::Server::HandlerResponse::Unhandled;
    return httplib::Server::HandlerResponse::Handled;
  }));
  // Slow-body fault for Shootbin answers (HeadshotPro and the CDN trickle
  // their own bodies): the finished body is re-served by a content provider
  // that sleeps between chunks. Content-Length is already set from the body.
  server_->set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // Every answer carries a Date (RFC 7231 §7.1.1.2), from the emulator's
    // possibly skewed clock: a client can tell the server's time from it.
    res.set_header("Date", HttpDate(std::int64_t(NowUnix())));
    if (req.path.rfind("/api/", 0) != 0 || req.path.rfind("/api/v2", 0) == 0 || res.body.empty()) return;
    const int bps = faults().slow_body_bps;
    if (bps <= 0) return;
    auto body = std::make_shared<const std::string>(std::move(res.body));
    res.body.clear();
    const std::string type = res.get_header_value("Content-Type");
    res.headers.erase("Content-Type");  // set_content_provider adds it again
    res.set_content_provider(body->size(), type.c_str(),
                             [body, bps](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                               const std::size_t chunk = std::min(length, std::max<std::size_t>(1, std::size_t(bps) / 10));
                               std::this_thread::sleep_for(std::chrono::microseconds(std::int64_t(chunk) * 1000000 / bps));
                               return sink.write(body->data() + offset, chunk);
                             });
  });
  ApplyFaultMirrors();
  initial_options_ = options_;
  initial_tokens_ = tokens_;
  RegisterAdmin();
  RegisterClockAdmin();
}

Emulator::~Emulator() { Stop(); }

int Emulator::Bind() {
  {
    // Everything configured so far (flags, --config tokens) is the state
    // POST /_emulator/reset goes back to.
    std::lock_guard lock(mu_);
    initial_options_ = options_;
    initial_tokens_ = tokens_;
  }
  if (!options_.store_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options_.store_dir, ec);
  }
  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.host);
  } else {
    port_ = server_->bind_to_port(options_.host, options_.port) ? options_.port : -1;
  }
  if (port_ > 0) WidenListenBacklog(port_);
  return port_;
}

void Emulator::Serve() { server_->listen_after_bind(); }

void Emulator::Stop() {
  if (stopping_.exchange(true)) return;
  server_->stop();
  // The services' own threads (late stores) end and are joined now.
  std::vector<std::function<void()>> shutdowns;
  {
    std::lock_guard lock(mu_);
    for (auto& h : hooks_) {
      if (h.shutdown) shutdowns.push_back(h.shutdown);
    }
  }
  for (auto& fn : shutdowns) fn();
  if (port_ <= 0) return;
  // httplib's workers wait out the keep-alive timeout on idle connections
  // before they notice the stop; shut the server's connections down (not
  // close: httplib owns the descriptors) so Serve() returns at once.
  ForEachConnection([&](int fd, int lport, const std::string&, int) {
    if (lport == port_) ::shutdown(fd, SHUT_RDWR);
    return true;
  });
}

std::string Emulator::BaseUrl() const {
  return (options_.tls_cert.empty() ? "http://" : "https://") + options_.host + ":" + std::to_string(port_);
}

std::uint64_t Emulator::NowUnix() const {
  std::int64_t base = 0;
  {
    std::lock_guard lock(clock_mu_);
    base = (frozen_at_ >= 0 ? frozen_at_ : std::int64_t(std::time(nullptr))) + clock_advance_s_;
  }
  return std::uint64_t(base + clock_skew_s_.load());
}

void Emulator::AdvanceClock(std::int64_t seconds) {
  std::lock_guard lock(clock_mu_);
  clock_advance_s_ += seconds;
}

void Emulator::FreezeClock(bool frozen) {
  std::lock_guard lock(clock_mu_);
  const std::int64_t wall = std::int64_t(std::time(nullptr));
  if (frozen && frozen_at_ < 0) {
    frozen_at_ = wall;
  } else if (!frozen && frozen_at_ >= 0) {
    clock_advance_s_ += frozen_at_ - wall;  // restart from where it stood
    frozen_at_ = -1;
  }
}

void Emulator::ApplyFaultMirrors() { clock_skew_s_ = options_.faults.clock_skew_s; }

int Emulator::UrlTtlSeconds() const {
  std::lock_guard lock(mu_);
  return options_.url_ttl_seconds;
}

int Emulator::RevisionProcessingMs() const {
  std::lock_guard lock(mu_);
  return options_.revision_processing_ms;
}

Faults Emulator::faults() const {
  std::lock_guard lock(mu_);
  return options_.faults;
}

bool Emulator::Draw(double probability) {
  if (probability <= 0) return false;
  std::lock_guard lock(mu_);
  return std::uniform_real_distribution<double>(0, 1)(rng_) < probability;
}

void Emulator::Count(const std::string& route, int) {
  std::lock_guard lock(mu_);
  ++stats_.requests[route];
}

// Status codes are recorded for every answer by the server's logger; this
// exists for handlers that want to be explicit and is deliberately a no-op.
void Emulator::RecordStatus(int) {}

void Emulator::WithStats(const std::function<void(Stats&)>& fn) {
  std::lock_guard lock(mu_);
  fn(stats_);
}

void Emulator::AddServiceHooks(ServiceHooks hooks) {
  std::lock_guard lock(mu_);
  hooks_.push_back(std::move(hooks));
}

void Emulator::AddToken(const std::string& token, TokenInfo info) {
  std::lock_guard lock(mu_);
  tokens_[token] = std::move(info);
}

void Emulator::ResetConnection(const httplib::Request& req) {
  // httplib does not expose the socket; find it by its address pair
  // (local port, peer address, peer port).
  ForEachConnection([&](int fd, int lport, const std::string& addr, int pport) {
    if (lport != port_ || pport != req.remote_port) return true;
    if (!req.remote_addr.empty() && req.remote_addr != addr) return true;
    {
      // Counted before the peer can see the reset: a test reading the stats
      // right after its request failed must find it.
      std::lock_guard lock(mu_);
      ++stats_.resets;
      reset_peers_.insert(req.remote_addr + ":" + std::to_string(req.remote_port));
    }
    linger lg{1, 0};  // last close -> RST, not FIN, and unread data dropped
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    // httplib owns the descriptor number and will close it, so it must stay
    // valid: put a fresh unconnected socket in its place. That drops the
    // last reference to the connection (the peer gets a RST at once), and
    // httplib's next read/write on the number fails (ENOTCONN), ending its
    // keep-alive loop. A plain shutdown() is the fallback; it sends a FIN,
    // and httplib would go on parsing the unread rest of the body as
    // requests.
    const int dummy = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (dummy >= 0 && ::dup2(dummy, fd) == fd) {
      ::close(dummy);
    } else {
      if (dummy >= 0) ::close(dummy);
      ::shutdown(fd, SHUT_RDWR);
    }
    return false;
  });
}

std::optional<TokenInfo> Emulator::Admit(Service service, const httplib::Request& req,
                                         httplib::Response& res) {
  const bool sb = service == Service::kShootbin;
  const std::string route = RouteKey(req.method, req.path);
  std::string auth = req.get_header_value("Authorization");
  std::string token = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : "";
  // Shootbin (a Laravel app) answers JSON only to clients that ask for it
  // (shootbin.md §1: the Accept header is required). Auth failures without it
  // are a 302 to the login page. Our choice for *authenticated* requests
  // without it: the same 302 + HTML, so a client that forgets the header
  // fails loudly instead of passing against a lenient emulator. Such a
  // request is counted (stats, sliding window) but uses no rate budget.
  const bool wants_json = !sb || AcceptsJson(req);
  std::optional<TokenInfo> info;
  Faults f;
  int limit = 0, count = 0;
  std::int64_t window_end = 0;
  bool burst = false, over = false;
  {
    std::lock_guard lock(mu_);
    ++stats_.requests[route];
    auto it = tokens_.find(token);
    if (it != tokens_.end() && it->second.service == service && !it->second.revoked) info = it->second;
    if (info) {
      // Sliding 60-s window of every request the token made, admitted or
      // refused (for stats). Timestamps are appended in order under the lock,
      // so the expired prefix is found by binary search and erased only when
      // it is at least half the vector: amortised O(1) per request.
      auto& w = stats_.window[token];
      const auto now = Clock::now();
      w.push_back(now);
      const auto first = std::upper_bound(w.begin(), w.end(), now - std::chrono::seconds(60));
      const std::size_t expired = std::size_t(first - w.begin());
      const std::size_t in_window = w.size() - expired;
      if (expired > 0 && expired * 2 >= w.size()) w.erase(w.begin(), first);
      auto& mx = stats_.max_requests_per_minute[token];
      mx = std::max<std::uint64_t>(mx, in_window);
      auto& span = stats_.spans[token];
      if (span.count++ == 0) span.first = now;
      span.last = now;
      // Fixed one-minute window (epoch minute) for the limit itself.
      f = options_.faults;
      limit = info->rpm > 0 ? info->rpm : (sb ? options_.shootbin_rpm : options_.headshotpro_rpm);
      if (f.advertised_limit > 0) limit = f.advertised_limit;  // header and enforcement alike
      const std::int64_t minute = std::int64_t(NowUnix() / 60);
      Window& win = windows_[token];
      if (win.minute != minute) win = Window{minute, 0};
      window_end = (minute + 1) * 60;
      if (wants_json) {
        if (options_.faults.burst_429 > 0) {
          --options_.faults.burst_429;
          burst = true;
        } else if (win.count >= limit) {
          over = true;  // refused requests use no budget (Laravel counts hits only when admitted)
        } else {
          ++win.count;
        }
      }
      count = win.count;
    }
  }
  if (!wants_json) {
    // What a Laravel app does for a browser-like client (shootbin.md §1).
    res.status = 302;
    res.set_header("Location", "/login");
    res.set_content("<!DOCTYPE html>\n<html><head><meta http-equiv=\"refresh\" content=\"0;url='/login'\">"
                    "<title>Redirecting to /login</title></head>"
                    "<body>Redirecting to <a href=\"/login\">/login</a>.</body></html>\n",
                    "text/html; charset=UTF-8");
    return std::nullopt;
  }
  if (!info) {
    if (sb) SendJson(res, 401, ShootbinError("Unauthenticated."));
    else SendJson(res, 401, HpError("Invalid API key", "UNAUTHORIZED"));
    return std::nullopt;
  }
  const int remaining = over ? 0 : std::max(0, limit - count);
  const std::int64_t now = std::int64_t(NowUnix());
  // A burst (fault) is a short refusal: retry in retry_after_s (default 1).
  // Exhausting the window means waiting for the next one.
  const std::int64_t burst_wait = std::max(0, f.retry_after_s);
  const std::int64_t reset_at = burst && !over ? now + burst_wait : window_end;
  res.set_header("X-RateLimit-Limit", std::to_string(limit));
  res.set_header("X-RateLimit-Remaining", std::to_string(burst ? 0 : remaining));
  if (!sb) res.set_header("X-RateLimit-Reset", IsoFromUnix(reset_at));
  if (over || burst) {
    if (sb) {
      const std::int64_t retry_after = burst ? burst_wait : std::max<std::int64_t>(1, reset_at - now);
      res.set_header("Retry-After", std::to_string(retry_after));
      res.set_header("X-RateLimit-Reset", std::to_string(reset_at));
      SendJson(res, 429, ShootbinError("Too Many Attempts."));
    } else {
      SendJson(res, 429, HpError("Rate limit exceeded", "RATE_LIMIT_EXCEEDED"));
    }
    return std::nullopt;
  }
  if (sb && info->plan != "agency") {
    SendJson(res, 403, ShootbinError("API access requires the Agency plan."));
    return std::nullopt;
  }
  if (f.latency_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(f.latency_ms));
  if (Draw(f.rate_hang)) {
    // A server that stopped answering: the request is held, then dropped
    // unprocessed. (One that stores it minutes after its client gave up
    // cannot be told apart from a lost request by any client of an API
    // without idempotency keys; docs/emulator.md.)
    for (int i = 0; i < 1200 && !stopping_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ResetConnection(req);
    return std::nullopt;
  }
  if (Draw(f.rate_5xx)) {
    static constexpr int kCodes[] = {500, 502, 503};
    int code = 500;
    {
      std::lock_guard lock(mu_);
      code = kCodes[rng_() % 3];
    }
    if (sb) SendJson(res, code, ShootbinError("Server Error"));
    else SendJson(res, code, HpError("Internal server error", "INTERNAL_ERROR"));
    return std::nullopt;
  }
  if (Draw(f.rate_close_keepalive)) res.set_header("Connection", "close");
  return info;
}

void Emulator::RegisterAdmin() {
  server_->Get("/_emulator/stats", [this](const httplib::Request&, httplib::Response& res) {
    Json out;
    std::vector<std::function<void(Json&)>> extra;
    {
      std::lock_guard lock(mu_);
      Json requests = Json::object();
      for (auto& [k, v] : stats_.requests) requests[k] = v;
      Json statuses = Json::object();
      for (auto& [k, v] : stats_.status_counts) statuses[std::to_string(k)] = v;
      Json maxrpm = Json::object();
      for (auto& [k, v] : stats_.max_requests_per_minute) maxrpm[k] = v;
      Json spans = Json::object();
      for (auto& [k, v] : stats_.spans) {
        spans[k] = {{"requests", v.count}, {"seconds", std::chrono::duration<double>(v.last - v.first).count()}};
      }
      out = Json{{"requests", requests},
                 {"status_counts", statuses},
                 {"uploads", stats_.uploads},
                 {"revisions", stats_.revisions},
                 {"duplicates", stats_.duplicates},
                 {"downloads", stats_.downloads},
                 {"bytes_received", stats_.bytes_received},
                 {"bytes_sent", stats_.bytes_sent},
                 {"rate_limited", stats_.rate_limited},
                 {"resets", stats_.resets},
                 {"in_flight", in_flight_.load()},
                 {"max_requests_per_minute", maxrpm},
                 {"request_spans", spans}};
      for (auto& h : hooks_) {
        if (h.stats) extra.push_back(h.stats);
      }
    }
    for (auto& fn : extra) fn(out);
    SendJson(res, 200, out);
  });
  server_->Post("/_emulator/reset", [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    ReadBody(req, reader);  // ignored
    std::vector<std::function<void()>> resets;
    {
      std::lock_guard lock(mu_);
      stats_ = Stats{};
      windows_.clear();
      // Faults, limits and tokens as given by flags/--config; the PRNG restarts.
      const std::string host = options_.host;
      const int port = options_.port;
      options_ = initial_options_;
      options_.host = host;
      options_.port = port;
      tokens_ = initial_tokens_;
      rng_.seed(options_.seed);
      ApplyFaultMirrors();
      for (auto& h : hooks_) {
        if (h.reset) resets.push_back(h.reset);
      }
    }
    {
      std::lock_guard clock_lock(clock_mu_);
      clock_advance_s_ = 0;
      frozen_at_ = -1;
    }
    for (auto& fn : resets) fn();
    SendJson(res, 200, Json{{"ok", true}});
  });
  server_->Post("/_emulator/seed", [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    const std::string raw = ReadBody(req, reader);
    Json body = Json::parse(raw.empty() ? "{}" : raw, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return SendJson(res, 400, Json{{"error", "body must be a JSON object"}});
    std::vector<std::function<Json(const Json&)>> seeds;
    {
      std::lock_guard lock(mu_);
      for (auto& h : hooks_) {
        if (h.seed) seeds.push_back(h.seed);
      }
    }
    Json out = Json::object();
    try {
      for (auto& fn : seeds) {
        Json part = fn(body);
        if (part.is_object()) out.update(part);
      }
    } catch (const std::exception& e) {  // a malformed seed (what was seeded before it stays)
      return SendJson(res, 400, Json{{"error", e.what()}});
    }
    SendJson(res, 200, out);
  });
  auto faults_json = [this] {
    std::lock_guard lock(mu_);
    const Faults& f = options_.faults;
    return Json{{"latency_ms", f.latency_ms}, {"rate_5xx", f.rate_5xx}, {"rate_reset", f.rate_reset},
                {"rate_reset_after_store", f.rate_reset_after_store}, {"burst_429", f.burst_429},
                {"slow_body_bps", f.slow_body_bps}, {"rate_hang", f.rate_hang},
                {"rate_close_keepalive", f.rate_close_keepalive}, {"rate_gateway", f.rate_gateway},
                {"gateway_status", f.gateway_status}, {"gateway_stores", f.gateway_stores},
                {"rate_cut_2xx", f.rate_cut_2xx}, {"rate_late_store", f.rate_late_store},
                {"late_store_ms", f.late_store_ms}, {"filename_mode", f.filename_mode},
                {"retry_after_s", f.retry_after_s}, {"clock_skew_s", f.clock_skew_s},
                {"advertised_limit", f.advertised_limit}};
  };
  server_->Get("/_emulator/faults", [faults_json](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, faults_json());
  });
  server_->Post("/_emulator/faults", [this, faults_json](const httplib::Request& req, httplib::Response& res,
                                                        const httplib::ContentReader& reader) {
    const std::string raw = ReadBody(req, reader);
    Json b = Json::parse(raw.empty() ? "{}" : raw, nullptr, false);
    if (b.is_discarded() || !b.is_object()) return SendJson(res, 400, Json{{"error", "body must be a JSON object"}});
    {
      std::lock_guard lock(mu_);
      // All or nothing: the knobs are applied to a copy, checked, then kept.
      Faults f = options_.faults;
      std::string error;
      try {
        f = ApplyFaults(f, b, error);
      } catch (const Json::exception& e) {
        error = std::string("bad value: ") + e.what();
      }
      if (!error.empty()) return SendJson(res, 400, Json{{"error", error}});
      options_.faults = f;
      ApplyFaultMirrors();
      if (b.contains("seed") && b["seed"].is_number_unsigned()) rng_.seed(b["seed"].get<std::uint64_t>());  // restart the draws
    }
    SendJson(res, 200, faults_json());
  });
  server_->Post("/_emulator/tokens", [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    Json b = Json::parse(ReadBody(req, reader), nullptr, false);
    if (b.is_discarded() || !b.is_object() || !b.contains("token")) {
      return SendJson(res, 400, Json{{"error", "need {\"token\": ...}"}});
    }
    TokenInfo t;
    t.service = b.value("service", std::string("shootbin")) == "headshotpro" ? Service::kHeadshotPro : Service::kShootbin;
    t.plan = b.value("plan", std::string(t.service == Service::kShootbin ? "agency" : "professional"));
    for (const auto& s : b.value("scopes", Json::array())) {
      std::string scope = s.get<std::string>();
      if (scope.rfind("post:", 0) == 0) scope = scope.substr(5);
      t.scopes.insert(scope);
    }
    t.rpm = b.value("rpm", 0);
    t.revoked = b.value("revoked", false);
    t.user = b.value("user", std::string("owner"));
    AddToken(b.at("token").get<std::string>(), t);
    SendJson(res, 200, Json{{"ok", true}});
  });
  server_->Get("/_emulator/config", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu_);
    SendJson(res, 200, Json{{"shootbin_rpm", options_.shootbin_rpm},
                            {"headshotpro_rpm", options_.headshotpro_rpm},
                            {"url_ttl_seconds", options_.url_ttl_seconds},
                            {"revision_processing_ms", options_.revision_processing_ms}});
  });
  server_->Post("/_emulator/config", [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    const std::string raw = ReadBody(req, reader);
    Json b = Json::parse(raw.empty() ? "{}" : raw, nullptr, false);
    if (b.is_discarded() || !b.is_object()) return SendJson(res, 400, Json{{"error", "body must be a JSON object"}});
    std::lock_guard lock(mu_);
    options_.shootbin_rpm = b.value("shootbin_rpm", options_.shootbin_rpm);
    options_.headshotpro_rpm = b.value("headshotpro_rpm", options_.headshotpro_rpm);
    options_.url_ttl_seconds = b.value("url_ttl_seconds", options_.url_ttl_seconds);
    options_.revision_processing_ms = b.value("revision_processing_ms", options_.revision_processing_ms);
    SendJson(res, 200, Json{{"shootbin_rpm", options_.shootbin_rpm},
                            {"headshotpro_rpm", options_.headshotpro_rpm},
                            {"url_ttl_seconds", options_.url_ttl_seconds},
                            {"revision_processing_ms", options_.revision_processing_ms}});
  });
}

// GET/POST /_emulator/clock: the clock behind the rate-limit window and the
// signed-URL expiry (docs/emulator.md), so tests need not wait for either.
void Emulator::RegisterClockAdmin() {
  auto answer = [this](httplib::Response& res) {
    bool frozen = false;
    std::int64_t advanced = 0;
    {
      std::lock_guard lock(clock_mu_);
      frozen = frozen_at_ >= 0;
      advanced = clock_advance_s_;
    }
    SendJson(res, 200, Json{{"now_unix", NowUnix()}, {"frozen", frozen}, {"advanced_s", advanced}});
  };
  server_->Get("/_emulator/clock", [answer](const httplib::Request&, httplib::Response& res) { answer(res); });
  server_->Post("/_emulator/clock", [this, answer](const httplib::Request& req, httplib::Response& res,
                                                   const httplib::ContentReader& reader) {
    const std::string raw = ReadBody(req, reader);
    const Json b = Json::parse(raw.empty() ? "{}" : raw, nullptr, false);
    if (b.is_discarded() || !b.is_object()) return SendJson(res, 400, Json{{"error", "body must be a JSON object"}});
    if (b.contains("advance_s") && (!b["advance_s"].is_number_integer() || b["advance_s"].get<std::int64_t>() < 0)) {
      return SendJson(res, 400, Json{{"error", "advance_s must be a non-negative integer"}});
    }
    if (b.contains("freeze") && !b["freeze"].is_boolean()) {
      return SendJson(res, 400, Json{{"error", "freeze must be true or false"}});
    }
    if (b.contains("freeze")) FreezeClock(b["freeze"].get<bool>());
    if (b.contains("advance_s")) AdvanceClock(b["advance_s"].get<std::int64_t>());
    answer(res);
  });
}

}  // namespace emu
