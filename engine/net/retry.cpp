#include "shotsync/retry.hpp"

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "shotsync/throttle.hpp"

namespace shotsync {

std::string_view VerdictName(Verdict verdict) noexcept {
  switch (verdict) {
    case Verdict::kSuccess: return "success";
    case Verdict::kRetry: return "retry";
    case Verdict::kReconcile: return "reconcile";
    case Verdict::kReject: return "reject";
    case Verdict::kFatal: return "fatal";
    case Verdict::kPause: return "pause";
    case Verdict::kStop: return "stop";
  }
  return "?";
}

Status HttpsRedirect(const HttpResponse& r, const std::string& what) {
  if (r.status < 300 || r.status >= 400) return Status::Ok();
  std::string to = r.Header("location");
  if (!to.starts_with("https://")) return Status::Ok();
  // Only scheme and host: the rest may hold a query, never worth printing.
  const std::size_t end = to.find_first_of("/?#", 8);
  if (end != std::string::npos) to.resize(end);
  if (to.size() > 200) to.resize(200);
  return Status::Invalid(what + ": the server redirects to " + to + " (HTTP " + std::to_string(r.status) +
                         "): it takes https only; set base_url to " + to);
}

Code HttpStatusCode(long http) noexcept {
  if (http >= 200 && http < 300) return Code::kOk;
  if (http >= 300 && http < 400) return Code::kUnauthenticated;
  switch (http) {
    case 400:
    case 413:
    case 422: return Code::kRejected;
    case 401: return Code::kUnauthenticated;
    case 403: return Code::kForbidden;
    case 404: return Code::kNotFound;
    case 407:
    case 408: return Code::kNetwork;
    case 409: return Code::kConflict;
    case 429: return Code::kRateLimited;
    default: break;
  }
  return Code::kServer;  // 5xx, and anything unexpected (the safe side for a write)
}

bool HttpStatusListed(long http) noexcept {
  return (http >= 200 && http < 400) || (http >= 500 && http < 600) ||
         HttpStatusCode(http) != Code::kServer;
}

Verdict VerdictFor(Code code, bool idempotent, bool body_sent) noexcept {
  // A write whose body went out without a usable answer may have been stored.
  const Verdict unanswered_write = body_sent ? Verdict::kReconcile : Verdict::kRetry;
  switch (code) {
    case Code::kOk: return Verdict::kSuccess;
    case Code::kUnauthenticated:
    case Code::kInvalidArgument: return Verdict::kFatal;
    case Code::kRateLimited: return Verdict::kPause;
    case Code::kConflict: return idempotent ? Verdict::kReject : Verdict::kRetry;
    case Code::kServer: return idempotent ? Verdict::kRetry : Verdict::kReconcile;
    case Code::kNetwork: return idempotent ? Verdict::kRetry : unanswered_write;
    case Code::kCorrupt:
    case Code::kIo:
    case Code::kInternal: return idempotent ? Verdict::kReject : unanswered_write;
    case Code::kCancelled:
      return !idempotent && body_sent ? Verdict::kReconcile : Verdict::kStop;
    default: return Verdict::kReject;
  }
}

Verdict Classify(const AttemptFacts& f) noexcept {
  if (f.transport != Code::kOk || f.http == 0) {
    return VerdictFor(f.transport == Code::kOk ? Code::kNetwork : f.transport, f.idempotent,
                      f.body_sent);
  }
  if (f.http == 407) return Verdict::kFatal;  // the proxy refuses every request alike
  if (f.http >= 200 && f.http < 300) {
    if (f.body == BodyKind::kHtml) return Verdict::kFatal;  // a login page
    if (f.body == BodyKind::kCut) return VerdictFor(Code::kCorrupt, f.idempotent, true);
    return Verdict::kSuccess;
  }
  if (!HttpStatusListed(f.http)) return f.idempotent ? Verdict::kReject : Verdict::kReconcile;
  if (f.http == 429 && !f.rate_limit_429) return Verdict::kReject;
  // An answer says what the server did: a 408 or a 409 was not stored (a
  // 5xx may have been: kServer reconciles whatever went out).
  return VerdictFor(HttpStatusCode(f.http), f.idempotent, /*body_sent=*/false);
}

std::chrono::milliseconds BackoffDelay(const BackoffPolicy& policy, int attempts, double u,
                                       std::optional<double> retry_after_s) {
  const double ceiling =
      std::min(policy.cap_s, policy.base_s * double(1 << std::clamp(attempts, 0, 6)));
  const double floor = std::clamp(policy.floor, 0.0, 1.0);
  double wait = ceiling * (floor + (1 - floor) * std::clamp(u, 0.0, 1.0));
  if (retry_after_s && *retry_after_s > wait) wait = std::min(*retry_after_s, kMaxRateLimitPause);
  return std::chrono::milliseconds(std::int64_t(wait * 1000));
}

std::optional<double> RetryAfterSeconds(const HttpResponse& response, double now_s) {
  const std::string value = response.Header("retry-after");
  if (value.empty()) return std::nullopt;
  const auto until = ParseResetTime(value, now_s);
  if (!until) return std::nullopt;
  return std::max(0.0, *until - now_s);
}

namespace {

// The default random source: one seeded generator per Backoff, shared by
// the threads that use it.
Backoff::Random SeededRandom() {
  struct State {
    std::mutex mu;
    std::mt19937_64 rng{std::random_device{}()};
  };
  auto state = std::make_shared<State>();
  return [state] {
    std::lock_guard lock(state->mu);
    return std::uniform_real_distribution<double>(0.0, 1.0)(state->rng);
  };
}

}  // namespace

Backoff::Backoff(BackoffPolicy policy, Random random)
    : policy_(policy), random_(random ? std::move(random) : SeededRandom()) {}

std::chrono::milliseconds Backoff::Delay(int attempts, std::optional<double> retry_after_s) const {
  return BackoffDelay(policy_, attempts, random_(), retry_after_s);
}

RetrySleep SleepUnlessStopped(std::stop_token stop) {
  return [stop](std::chrono::milliseconds delay) {
    if (!stop.stop_possible()) {
      std::this_thread::sleep_for(delay);
      return true;
    }
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    // Nothing notifies cv: only the stop or the timeout ends the wait.
    (void)cv.wait_for(lock, stop, delay, [] { return false; });
    return !stop.stop_requested();
  };
}

HttpResponse RetryLoop(const std::function<HttpResponse()>& perform,
                       const std::function<Verdict(const HttpResponse&)>& verdict,
                       const Backoff& backoff, const RetrySleep& sleep) {
  for (int attempts = 1;; ++attempts) {
    HttpResponse r = perform();
    if (verdict(r) != Verdict::kRetry || backoff.Exhausted(attempts)) return r;
    if (!sleep(backoff.Delay(attempts, RetryAfterSeconds(r, WallSeconds())))) return r;
  }
}

}  // namespace shotsync
