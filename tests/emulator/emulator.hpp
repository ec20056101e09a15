// shotsync-emulator: a loopback stand-in for Shootbin and HeadshotPro that
// follows ../shared/api/*.md (the contract), with deterministic fault
// injection and admin endpoints for tests and benchmarks.
//
// Layout:
//   emulator.hpp, core.cpp  HTTP server, tokens, per-token rate limiting,
//                           faults, stats, admin endpoints (/_emulator/*)
//   shootbin_routes.cpp     Shootbin routes under /api/...
//   headshotpro.cpp         HeadshotPro V2 routes under /api/v2/... and the
//                           CDN (signed photo URLs under /cdn/...)
//   emu_main.cpp            flags (CLI11) and signal handling
//
// Threading: cpp-httplib serves each connection on a pool thread; every piece
// of shared state below is guarded by its own mutex.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace emu {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

enum class Service { kShootbin, kHeadshotPro };

// Fault knobs; all rates are probabilities in [0,1] drawn from one PRNG seeded
// with `seed`, so a run with the same seed and request order is repeatable.
struct Faults {
  int latency_ms = 0;              // added before every API answer
  double rate_5xx = 0;             // share of API requests answered 500/502/503
  double rate_reset = 0;           // share of uploads whose connection is reset mid-body
  double rate_reset_after_store = 0;  // share of uploads stored, then connection reset before the answer
  int burst_429 = 0;               // the next N API requests get 429 (with proper headers)
  int slow_body_bps = 0;           // >0: response bodies trickle at this many bytes/s
  double rate_hang = 0;            // share of API requests that never answer (until the client gives up)
  double rate_close_keepalive = 0; // share of answers sent with "Connection: close"
  // Shootbin uploads and revisions only (docs/emulator.md, "Ambiguous outcomes"):
  double rate_gateway = 0;         // share answered by a "gateway" with an HTML 5xx page
  int gateway_status = 502;        // 502, 504 or 524
  bool gateway_stores = true;      // the app behind the gateway stored the photo anyway
  double rate_cut_2xx = 0;         // share stored, 201 headers sent, connection closed mid-body
  double rate_late_store = 0;      // share reset after the body arrived, stored late_store_ms later
  int late_store_ms = 2000;
  std::string filename_mode = "exact";  // see filename.hpp
  // Rate-limit realism (both services):
  int retry_after_s = 1;           // Retry-After (and X-RateLimit-Reset - now) of burst_429 answers
  std::int64_t clock_skew_s = 0;   // the emulator's clock (Date, X-RateLimit-Reset) = real + this
  int advertised_limit = 0;        // >0: X-RateLimit-Limit and the enforced per-minute limit
};

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  int shootbin_rpm = 60;       // shootbin.md assumption: Laravel default 60/min/token
  int headshotpro_rpm = 300;   // Professional plan
  int url_ttl_seconds = 86400; // signed CDN URL lifetime
  int revision_processing_ms = 0;  // a revision "is processed" this long; a second one meanwhile -> 409
  std::uint64_t seed = 1;
  std::string store_dir;       // when set, uploaded bytes are kept here; else only hashed
  int threads = 64;            // server worker threads (one per keep-alive connection)
  std::string tls_cert, tls_key;  // PEM files: serve HTTPS (tests of certificate checks)
  // HeadshotPro webhooks (headshotpro.md §3): a loopback URL to deliver to,
  // its 64-hex secret ("" = generated), and a factor on the documented retry
  // delays (5 min, 15 min, 1 h) so that a test can see retries in seconds.
  std::string webhook_url, webhook_secret;
  double webhook_retry_scale = 1.0;
  Faults faults;
};

struct TokenInfo {
  Service service = Service::kShootbin;
  std::string plan;            // shootbin: "agency"|"pro"|"free"; headshotpro: "standard"|"professional"|"enterprise"
  std::set<std::string> scopes;  // shootbin: "create", "update" (aliases normalised)
  int rpm = 0;                 // 0 = the service default from Options
  bool revoked = false;
  std::string user = "owner";  // shootbin user name; revisions need the project owner
};

// Counters behind GET /_emulator/stats.
struct Stats {
  std::map<std::string, std::uint64_t> requests;       // "POST /api/projects/{project}/albums/{album}/photos" -> n
  std::map<int, std::uint64_t> status_counts;          // 201 -> n
  std::uint64_t uploads = 0;                           // photos stored
  std::uint64_t revisions = 0;                         // revisions stored
  std::uint64_t duplicates = 0;                        // a photo stored under a name another photo of its album has
  std::uint64_t downloads = 0;                         // CDN bodies served (full or partial)
  std::uint64_t bytes_received = 0;                    // upload body bytes
  std::uint64_t bytes_sent = 0;                        // CDN body bytes
  std::uint64_t rate_limited = 0;                      // 429s answered (any cause)
  std::uint64_t resets = 0;                            // connections reset on purpose (faults)
  std::map<std::string, std::uint64_t> max_requests_per_minute;  // token label -> max in any sliding 60 s
  std::map<std::string, std::vector<Clock::time_point>> window;  // sliding-window samples per token label
  // Per token: requests in all, and the first and last one's time (achieved rate).
  struct Span {
    std::uint64_t count = 0;
    Clock::time_point first{}, last{};
  };
  std::map<std::string, Span> spans;
};

class Emulator {
 public:
  explicit Emulator(Options options);
  ~Emulator();
  Emulator(const Emulator&) = delete;
  Emulator& operator=(const Emulator&) = delete;

  // Binds options.host:options.port (0 = any free port); returns the port or -1.
  int Bind();
  // Serves until Stop(); call from one thread.
  void Serve();
  void Stop();
  std::string BaseUrl() const;  // "http://127.0.0.1:PORT"

  httplib::Server& server() { return *server_; }
  // False when TLS was asked for and the certificate or key could not be loaded.
  bool valid() const { return server_->is_valid(); }
  const Options& options() const { return options_; }
  // The signed-URL lifetime now (POST /_emulator/config may change it at run
  // time, so read it through this locked getter, not options()).
  int UrlTtlSeconds() const;
  int RevisionProcessingMs() const;
  bool Stopping() const { return stopping_.load(); }

  // Every API handler (not admin, not CDN) starts with:
  //   auto gate = emu.Admit(Service::kShootbin, req, res);
  //   if (!gate) return;           // response already written (auth/429/fault)
  //   const TokenInfo& tok = *gate;
  // Admit checks the Bearer token for the service (401 in that service's error
  // shape, or 302 to /login for Shootbin without Accept: application/json),
  // counts the request, applies the per-token rate limit (fixed 60-s window) and
  // sets the service's X-RateLimit-* headers, then applies faults (latency, 5xx,
  // 429 bursts, hang). Shootbin plan check (403 unless agency) is done here too.
  std::optional<TokenInfo> Admit(Service service, const httplib::Request& req, httplib::Response& res);

  // Counts a request in stats under its route pattern (Admit does this for API
  // routes; admin and CDN handlers call it themselves).
  void Count(const std::string& route, int status);
  // Called by Admit's caller when the final status is known (for status_counts).
  void RecordStatus(int status);

  // Fault draws (thread-safe, deterministic from the seed).
  bool Draw(double probability);
  Faults faults() const;

  // Drops the TCP connection serving `req` (mid-body reset): finds the socket
  // by its peer address, sets SO_LINGER 0 and shuts it down, so the client sees
  // a reset, not an HTTP answer. The handler must return right after.
  void ResetConnection(const httplib::Request& req);

  // Stats access (locks internally).
  void WithStats(const std::function<void(Stats&)>& fn);

  // Service hooks for admin endpoints: each service registers how it resets
  // and seeds its own state, and what it adds to /_emulator/stats.
  struct ServiceHooks {
    std::function<void()> reset;                          // back to the defaults
    std::function<Json(const Json& body)> seed;           // POST /_emulator/seed
    std::function<void(Json& stats)> stats;               // extra keys in /_emulator/stats
    std::function<void()> shutdown;                       // Stop(): join the service's own threads
  };
  void AddServiceHooks(ServiceHooks hooks);

  // Tokens (added from --config, or by tests through POST /_emulator/tokens).
  void AddToken(const std::string& token, TokenInfo info);

  // The emulator's clock in unix seconds: the wall clock (or the instant it
  // was frozen at) plus what POST /_emulator/clock advanced it by, plus the
  // clock_skew_s fault. Date headers, X-RateLimit-Reset, the rate-limit
  // window and signed-URL expiry all use it, so a test can move past a
  // window or an expiry without waiting for it.
  std::uint64_t NowUnix() const;
  // POST /_emulator/clock: `advance_s` moves the clock forward; `freeze`
  // stops (true) or restarts (false) it at its current value.
  void AdvanceClock(std::int64_t seconds);
  void FreezeClock(bool frozen);
  // Requests being handled now (API and CDN; admin calls not counted).
  int InFlight() const { return in_flight_.load(); }

 private:
  Options options_;
  std::unique_ptr<httplib::Server> server_;  // httplib::SSLServer with tls_cert
  int port_ = -1;
  mutable std::mutex mu_;
  std::map<std::string, TokenInfo> tokens_;
  Stats stats_;
  std::mt19937_64 rng_;
  std::vector<ServiceHooks> hooks_;
  struct Window { std::int64_t minute = -1; int count = 0; };
  std::map<std::string, Window> windows_;
  void RegisterAdmin();
  void RegisterClockAdmin();
  // The test-controlled clock (not under mu_: NowUnix is called with mu_ held).
  mutable std::mutex clock_mu_;
  std::int64_t clock_advance_s_ = 0;  // guarded by clock_mu_
  std::int64_t frozen_at_ = -1;       // wall-clock unix seconds it froze at, or -1; guarded by clock_mu_
  std::atomic<bool> stopping_{false};
  // What POST /_emulator/reset restores: the options and tokens as they were
  // when Bind() was called (flags, --config, built-in defaults).
  Options initial_options_;
  std::map<std::string, TokenInfo> initial_tokens_;
  // Peers ("addr:port") whose connection ResetConnection cut: httplib still
  // "writes" (into the dead socket) and logs one answer for them, which the
  // logger leaves out of status_counts.
  std::set<std::string> reset_peers_;
  std::atomic<int> in_flight_{0};
  std::atomic<std::int64_t> clock_skew_s_{0};  // mirror of options_.faults.clock_skew_s (read under mu_)
  void ApplyFaultMirrors();                     // call with mu_ held after options_.faults changed
};

// Route registration for each service (defined in shootbin.cpp / headshotpro.cpp).
void RegisterShootbin(Emulator& emu);
void RegisterHeadshotPro(Emulator& emu);
// "" when the webhook options can be used, else why not (a URL that is not
// http:// on loopback, a secret that is not 64 hex digits, a scale <= 0).
std::string WebhookOptionsError(const Options& options);

}  // namespace emu
