// Retry policy in one place, in the style of rclone's fserrors:
// - HttpStatusCode: the HTTP status -> Code table both service mappers
//   (ClassifyShootbinAnswer, CheckHpAnswer) start from; their messages and
//   a few documented service rules stay theirs.
// - Classify / VerdictFor: what to do with one attempt's outcome (pure).
// - BackoffPolicy / Backoff: how long to wait before the next attempt, and
//   how many attempts there are; the named policies below are every backoff
//   shotsync uses.
// - RetryLoop: the blocking retry loop of the clients' idempotent reads.
// Table-tested in tests/unit/retry_test.cpp.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <stop_token>
#include <string_view>

#include "shotsync/status.hpp"
#include "shotsync/transfer.hpp"

namespace shotsync {

// What to do after one attempt.
enum class Verdict {
  kSuccess,
  kRetry,      // transient: send again after a backoff (within the attempt bound)
  kReconcile,  // the server may have stored it: look before resending, never resend blind
  kReject,     // this item (or target) is refused, permanently or for this run
  kFatal,      // the token, the account or the setup: stop the run
  kPause,      // 429 about the rate: the throttle pauses and the engine resends
  kStop,       // cancelled: the run is stopping; neither a retry nor a failure
};
std::string_view VerdictName(Verdict verdict) noexcept;

// How the answer's body reads.
enum class BodyKind {
  kJson,   // the API's JSON (or an empty body)
  kHtml,   // Content-Type text/html: a login page, a proxy's or gateway's page
  kOther,  // anything else
  kCut,    // cut off or unparsable where JSON was due
};

// The facts of one attempt that decide its verdict.
struct AttemptFacts {
  long http = 0;                    // 0 = no HTTP answer
  Code transport = Code::kOk;       // the curl result (HttpResponse::transport's code)
  bool body_sent = false;           // the whole request body went out
  BodyKind body = BodyKind::kJson;
  bool idempotent = false;          // reads: resending is always safe
  // A 429 whose body names another limit (HeadshotPro INVITE_LIMIT_EXCEEDED,
  // see Is429RateLimit) is this item's refusal: false.
  bool rate_limit_429 = true;
};

// The Code of an HTTP status (no body rules):
//   2xx ok; 3xx kUnauthenticated (an API call redirected: the login page);
//   400, 413, 422 kRejected; 401 kUnauthenticated; 403 kForbidden;
//   404 kNotFound; 407, 408 kNetwork (a proxy's credentials; a timeout);
//   409 kConflict; 429 kRateLimited; 5xx kServer; anything else kServer
//   ("unexpected": ambiguous, the safe side for a write).
Code HttpStatusCode(long http) noexcept;
// A 3xx whose Location is an https:// URL: a server that refuses clear
// text (base_url names http://). The error to report instead of a refused
// token (kInvalidArgument, exit 2), naming the URL to use; Ok otherwise.
Status HttpsRedirect(const HttpResponse& r, const std::string& what);
// The statuses the table above names (2xx-5xx rows); false = "unexpected".
bool HttpStatusListed(long http) noexcept;

// The verdict for an error Code as the service mappers (and the transport)
// report it:
//   kOk success; kUnauthenticated, kInvalidArgument (an untrusted
//   certificate) fatal; kRateLimited pause; kForbidden, kNotFound, kRejected
//   and the rest reject; kConflict retry (reject for a read); kServer retry
//   for a read, reconcile for a write; kNetwork retry, reconcile once a
//   write's body went out; kCorrupt (a cut-off or oversized answer), kIo (an
//   unreadable part) and kInternal (curl's setup) reject for a read, as
//   kNetwork for a write; kCancelled stop, reconcile once a write's body
//   went out.
Verdict VerdictFor(Code code, bool idempotent, bool body_sent) noexcept;

// The verdict for one attempt: no answer -> VerdictFor(transport); a 407
// (the proxy refuses every request) fatal; a 2xx HTML page (a login page)
// fatal; a 2xx cut off -> as kCorrupt; an unexpected status (not listed
// above) reject for a read, reconcile for a write; a 429 that is not
// about the rate reject; else VerdictFor(HttpStatusCode(http)).
Verdict Classify(const AttemptFacts& facts) noexcept;

// Exponential backoff with jitter and a cap. After `attempts` attempts
// (1 = the first one failed) the wait is drawn uniformly from
// [floor x ceiling, ceiling], ceiling = min(cap_s, base_s x 2^min(attempts, 6)).
struct BackoffPolicy {
  double base_s = 0.25;
  double cap_s = 60;
  int max_attempts = 5;  // attempts in all, the first included
  double floor = 0;      // 0 = full jitter, 0.5 = "equal jitter"
};

// Every backoff shotsync uses (the attempt bounds of uploads and downloads
// are the run's max_attempts option; the ones here are the defaults).
namespace retry_policy {
// Shootbin reads (listings, GET photo): 0.5, 1, 2, 4 s ceilings, 5 attempts.
inline constexpr BackoffPolicy kShootbinRead{.base_s = 0.25, .cap_s = 60, .max_attempts = 5};
// Uploads and revisions after a transient failure, and resends after reconciling.
inline constexpr BackoffPolicy kUpload{.base_s = 0.5, .cap_s = 60, .max_attempts = 5};
// The second try of an album after its first 403 (SyncRun::Refused).
inline constexpr BackoffPolicy kForbiddenRecheck{.base_s = 2.0, .cap_s = 60, .max_attempts = 5};
// A 409 (a revision still processing): read the photo, or resend, after this.
inline constexpr BackoffPolicy kConflict{.base_s = 5.0, .cap_s = 60, .max_attempts = 5};
// CDN downloads (PullRun), equal jitter.
inline constexpr BackoffPolicy kDownload{.base_s = 0.25, .cap_s = 10, .max_attempts = 6, .floor = 0.5};
// HeadshotPro API GETs, equal jitter.
inline constexpr BackoffPolicy kHeadshotPro{.base_s = 0.25, .cap_s = 8, .max_attempts = 5, .floor = 0.5};
// The studio's PostgreSQL after a lost connection (bounded by time, SharedOptions::retry_for_s).
inline constexpr BackoffPolicy kSharedStore{.base_s = 0.1, .cap_s = 2, .max_attempts = 1000, .floor = 0.5};
}  // namespace retry_policy

// The wait after `attempts` attempts for a uniform draw u in [0, 1); never
// less than retry_after_s (the server's Retry-After, honoured up to
// kMaxRateLimitPause). Pure.
std::chrono::milliseconds BackoffDelay(const BackoffPolicy& policy, int attempts, double u,
                                       std::optional<double> retry_after_s = std::nullopt);

// The seconds an answer's Retry-After asks for (delta seconds or an HTTP
// date, read against now_s); nullopt without one.
std::optional<double> RetryAfterSeconds(const HttpResponse& response, double now_s);

// A policy with its random source. Thread-safe when the random source is
// (the default one is: a seeded generator behind a mutex).
class Backoff {
 public:
  using Random = std::function<double()>;  // uniform in [0, 1)
  explicit Backoff(BackoffPolicy policy, Random random = {});

  // The wait after `attempts` attempts (see BackoffDelay).
  std::chrono::milliseconds Delay(int attempts,
                                  std::optional<double> retry_after_s = std::nullopt) const;
  // No attempt is left after `attempts`.
  bool Exhausted(int attempts) const { return attempts >= policy_.max_attempts; }
  const BackoffPolicy& policy() const { return policy_; }

 private:
  BackoffPolicy policy_;
  Random random_;
};

// The blocking wait of RetryLoop: waits `delay`; false = a stop was
// requested (give up now). Tests pass a fake clock.
using RetrySleep = std::function<bool(std::chrono::milliseconds delay)>;
// The real one: sleeps, waking early when `stop` is requested.
RetrySleep SleepUnlessStopped(std::stop_token stop = {});

// Performs a request until its verdict is not kRetry, the policy has no
// attempt left, or the sleep is interrupted; the last response.
HttpResponse RetryLoop(const std::function<HttpResponse()>& perform,
                       const std::function<Verdict(const HttpResponse&)>& verdict,
                       const Backoff& backoff, const RetrySleep& sleep);

}  // namespace shotsync
