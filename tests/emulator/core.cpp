// Emulator core: HTTP server set-up, tokens, per-token rate limits, faults,
// stats and the /_emulator/* admin endpoints. See emulator.hpp.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <thread>

#include "emulator.hpp"

namespace emu {
namespace {

std::string IsoFromUnix(std::int64_t secs) {
  std::time_t t = secs;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buf;
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

void SendJson(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

}  // namespace

Emulator::Emulator(Options options) : options_(std::move(options)), rng_(options_.seed) {
  tokens_["sb-test-token"] = TokenInfo{Service::kShootbin, "agency", {"create", "update"}, 0, false, "owner"};
  tokens_["sb-pro-token"] = TokenInfo{Service::kShootbin, "pro", {"create", "update"}, 0, false, "owner"};
  tokens_["sb-readonly-token"] = TokenInfo{Service::kShootbin, "agency", {}, 0, false, "owner"};
  tokens_["sb-approver-token"] = TokenInfo{Service::kShootbin, "agency", {"create", "update"}, 0, false, "approver"};
  tokens_["sb-revoked-token"] = TokenInfo{Service::kShootbin, "agency", {"create", "update"}, 0, true, "owner"};
  tokens_["hp-test-key"] = TokenInfo{Service::kHeadshotPro, "professional", {}, 0, false, "owner"};

  const int threads = std::max(4, options_.threads);
  // httplib owns the queue it gets from this factory (its API takes a raw pointer).
  server_.new_task_queue = [threads] { return new httplib::ThreadPool(std::size_t(threads)); };
  server_.set_keep_alive_max_count(1000000);
  server_.set_keep_alive_timeout(30);
  server_.set_read_timeout(60);
  server_.set_write_timeout(60);
  server_.set_payload_max_length(std::size_t(1) << 30);
  server_.set_logger([this](const httplib::Request&, const httplib::Response& res) {
    std::lock_guard lock(mu_);
    ++stats_.status_counts[res.status];
    if (res.status == 429) ++stats_.rate_limited;
  });
  RegisterAdmin();
}

Emulator::~Emulator() { Stop(); }

int Emulator::Bind() {
  if (options_.port == 0) {
    port_ = server_.bind_to_any_port(options_.host);
  } else {
    port_ = server_.bind_to_port(options_.host, options_.port) ? options_.port : -1;
  }
  return port_;
}

void Emulator::Serve() { server_.listen_after_bind(); }

void Emulator::Stop() {
  stopping_ = true;
  server_.stop();
}

std::string Emulator::BaseUrl() const { return "http://" + options_.host + ":" + std::to_string(port_); }

std::uint64_t Emulator::NowUnix() const { return std::uint64_t(std::time(nullptr)); }

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
  // httplib does not expose the socket; find it by its address pair.
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return;
  while (dirent* e = ::readdir(dir)) {
    const int fd = std::atoi(e->d_name);
    if (fd <= 2) continue;
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;
    if (local.ss_family != AF_INET || peer.ss_family != AF_INET) continue;
    const auto* l4 = reinterpret_cast<sockaddr_in*>(&local);
    const auto* p4 = reinterpret_cast<sockaddr_in*>(&peer);
    if (ntohs(l4->sin_port) != port_ || ntohs(p4->sin_port) != req.remote_port) continue;
    linger lg{1, 0};  // close -> RST, not FIN
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::shutdown(fd, SHUT_RDWR);
    break;
  }
  ::closedir(dir);
}

std::optional<TokenInfo> Emulator::Admit(Service service, const httplib::Request& req,
                                         httplib::Response& res) {
  const bool sb = service == Service::kShootbin;
  const std::string route = RouteKey(req.method, req.path);
  std::string auth = req.get_header_value("Authorization");
  std::string token = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : "";
  std::optional<TokenInfo> info;
  Faults f;
  int limit = 0, count = 0;
  std::int64_t window_end = 0;
  bool burst = false;
  {
    std::lock_guard lock(mu_);
    ++stats_.requests[route];
    auto it = tokens_.find(token);
    if (it != tokens_.end() && it->second.service == service && !it->second.revoked) info = it->second;
    if (info) {
      // Sliding 60-s window of every request the token made (for stats).
      const std::string label = token;
      auto& w = stats_.window[label];
      const auto now = Clock::now();
      w.push_back(now);
      auto keep = std::find_if(w.begin(), w.end(), [&](auto t) { return now - t < std::chrono::seconds(60); });
      w.erase(w.begin(), keep);
      auto& mx = stats_.max_requests_per_minute[label];
      mx = std::max<std::uint64_t>(mx, w.size());
      // Fixed one-minute window for the limit itself.
      limit = info->rpm > 0 ? info->rpm : (sb ? options_.shootbin_rpm : options_.headshotpro_rpm);
      const std::int64_t minute = std::int64_t(NowUnix() / 60);
      Window& win = windows_[token];
      if (win.minute != minute) win = Window{minute, 0};
      count = ++win.count;
      window_end = (minute + 1) * 60;
      f = options_.faults;
      if (options_.faults.burst_429 > 0) {
        --options_.faults.burst_429;
        burst = true;
      }
    }
  }
  if (!info) {
    if (sb) {
      const std::string accept = req.get_header_value("Accept");
      if (accept.find("application/json") == std::string::npos) {
        // What a Laravel app does for a browser-like client (shootbin.md §1).
        res.status = 302;
        res.set_header("Location", "/login");
        res.set_content("<html><body>Redirecting to <a href=\"/login\">/login</a></body></html>", "text/html");
      } else {
        SendJson(res, 401, ShootbinError("Unauthenticated."));
      }
    } else {
      SendJson(res, 401, HpError("Invalid API key", "UNAUTHORIZED"));
    }
    return std::nullopt;
  }
  const int remaining = std::max(0, limit - count);
  const std::int64_t now = std::int64_t(NowUnix());
  res.set_header("X-RateLimit-Limit", std::to_string(limit));
  res.set_header("X-RateLimit-Remaining", std::to_string(remaining));
  if (!sb) res.set_header("X-RateLimit-Reset", IsoFromUnix(burst && count <= limit ? now + 1 : window_end));
  if (count > limit || burst) {
    // A burst (fault) is a short refusal: retry in a second. Exhausting the
    // window means waiting for the next one.
    const std::int64_t reset_at = burst && count <= limit ? now + 1 : window_end;
    if (sb) {
      res.set_header("Retry-After", std::to_string(std::max<std::int64_t>(1, reset_at - now)));
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
    for (int i = 0; i < 1200 && !stopping_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
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
  server_.Get("/_emulator/stats", [this](const httplib::Request&, httplib::Response& res) {
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
      out = Json{{"requests", requests},
                 {"status_counts", statuses},
                 {"uploads", stats_.uploads},
                 {"revisions", stats_.revisions},
                 {"duplicates", stats_.duplicates},
                 {"downloads", stats_.downloads},
                 {"bytes_received", stats_.bytes_received},
                 {"bytes_sent", stats_.bytes_sent},
                 {"rate_limited", stats_.rate_limited},
                 {"max_requests_per_minute", maxrpm}};
      for (auto& h : hooks_) {
        if (h.stats) extra.push_back(h.stats);
      }
    }
    for (auto& fn : extra) fn(out);
    SendJson(res, 200, out);
  });
  server_.Post("/_emulator/reset", [this](const httplib::Request&, httplib::Response& res) {
    std::vector<std::function<void()>> resets;
    {
      std::lock_guard lock(mu_);
      stats_ = Stats{};
      windows_.clear();
      for (auto& h : hooks_) {
        if (h.reset) resets.push_back(h.reset);
      }
    }
    for (auto& fn : resets) fn();
    SendJson(res, 200, Json{{"ok", true}});
  });
  server_.Post("/_emulator/seed", [this](const httplib::Request& req, httplib::Response& res) {
    Json body = Json::parse(req.body.empty() ? "{}" : req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return SendJson(res, 400, Json{{"error", "body must be a JSON object"}});
    std::vector<std::function<Json(const Json&)>> seeds;
    {
      std::lock_guard lock(mu_);
      for (auto& h : hooks_) {
        if (h.seed) seeds.push_back(h.seed);
      }
    }
    Json out = Json::object();
    for (auto& fn : seeds) {
      Json part = fn(body);
      if (part.is_object()) out.update(part);
    }
    SendJson(res, 200, out);
  });
  auto faults_json = [this] {
    std::lock_guard lock(mu_);
    const Faults& f = options_.faults;
    return Json{{"latency_ms", f.latency_ms}, {"rate_5xx", f.rate_5xx}, {"rate_reset", f.rate_reset},
                {"rate_reset_after_store", f.rate_reset_after_store}, {"burst_429", f.burst_429},
                {"slow_body_bps", f.slow_body_bps}, {"rate_hang", f.rate_hang},
                {"rate_close_keepalive", f.rate_close_keepalive}};
  };
  server_.Get("/_emulator/faults", [faults_json](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, faults_json());
  });
  server_.Post("/_emulator/faults", [this, faults_json](const httplib::Request& req, httplib::Response& res) {
    Json b = Json::parse(req.body, nullptr, false);
    if (b.is_discarded() || !b.is_object()) return SendJson(res, 400, Json{{"error", "body must be a JSON object"}});
    {
      std::lock_guard lock(mu_);
      Faults& f = options_.faults;
      f.latency_ms = b.value("latency_ms", f.latency_ms);
      f.rate_5xx = b.value("rate_5xx", f.rate_5xx);
      f.rate_reset = b.value("rate_reset", f.rate_reset);
      f.rate_reset_after_store = b.value("rate_reset_after_store", f.rate_reset_after_store);
      f.burst_429 = b.value("burst_429", f.burst_429);
      f.slow_body_bps = b.value("slow_body_bps", f.slow_body_bps);
      f.rate_hang = b.value("rate_hang", f.rate_hang);
      f.rate_close_keepalive = b.value("rate_close_keepalive", f.rate_close_keepalive);
    }
    SendJson(res, 200, faults_json());
  });
  server_.Post("/_emulator/tokens", [this](const httplib::Request& req, httplib::Response& res) {
    Json b = Json::parse(req.body, nullptr, false);
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
  server_.Post("/_emulator/config", [this](const httplib::Request& req, httplib::Response& res) {
    Json b = Json::parse(req.body, nullptr, false);
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

}  // namespace emu
