// Throttle: a token bucket per service and token, with server feedback.
//
// The bucket refills at rate = rpm / 60 tokens per second times a small safety
// factor, with a burst of one token: then no 60-second window, sliding or
// fixed, can hold more than rpm requests, and the achieved rate stays within
// 2% of the allowed one. Server feedback lowers the pace before the server
// refuses: X-RateLimit-Remaining of 0 pauses until X-RateLimit-Reset (epoch
// seconds for Shootbin, ISO-8601 for HeadshotPro: both are parsed); a 429
// pauses the bucket until Retry-After / X-RateLimit-Reset plus jitter.
//
// The bucket can be shared by processes on one host through a BucketStore
// (the manifest's throttle table): a hook's push and a cron sync then stay
// within the one account limit together.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "shotsync/status.hpp"

namespace shotsync {

// Cross-process bucket state (implemented over the manifest's SQLite file).
class BucketStore {
 public:
  virtual ~BucketStore() = default;
  // Takes one token; 0 when taken, else seconds to wait (nothing taken).
  virtual Result<double> Take(std::string_view key, double rate_per_s, double burst, double now_s) = 0;
  // Reserves the next `count` tokens (the bucket may go into debt): token i
  // is the caller's at now_s + first + i / rate_per_s. {count, first}; while
  // paused {0, seconds to wait}. The default takes one token with Take.
  virtual Result<std::pair<int, double>> Reserve(std::string_view key, double rate_per_s, double burst, int count,
                                                 double now_s) {
    (void)count;
    SHOTSYNC_ASSIGN_OR_RETURN(double wait, Take(key, rate_per_s, burst, now_s));
    return wait <= 0 ? std::pair<int, double>{1, 0.0} : std::pair<int, double>{0, wait};
  }
  virtual Status Pause(std::string_view key, double until_s) = 0;
};

// Wall-clock seconds since the epoch, as a double (shared across processes).
double WallSeconds();

// The shared bucket's key for a service and API token: "shootbin:" plus 12
// hex digits of the token's hash. Processes using the same token share one
// bucket; the token itself is never stored.
std::string BucketKey(std::string_view service, std::string_view token);

// Parses X-RateLimit-Reset / Retry-After style values: integer epoch seconds,
// a small integer delta (Retry-After), or an ISO-8601 UTC timestamp with
// optional fraction ("2024-01-15T10:31:00.000Z"). Returns epoch seconds.
// `now_s` disambiguates deltas from epochs. nullopt for garbage.
std::optional<double> ParseResetTime(std::string_view value, double now_s);

// The pause that an answer's rate-limit headers call for (lower-cased names;
// pure, fuzzed in tests/fuzz): a 429 pauses until Retry-After, else
// X-RateLimit-Reset (now + 60 s without either, now + 1 s when the time given
// has already passed); any other answer with X-RateLimit-Remaining: 0 pauses
// until X-RateLimit-Reset when that is known and ahead. Capped at now + 65 s
// (a longer pause means a wrong clock). nullopt = no pause. For a finite
// now_s the result is finite and within [now_s, now_s + 65]. No jitter.
std::optional<double> RateLimitPauseUntil(long status,
                                          const std::multimap<std::string, std::string>& headers,
                                          double now_s);

class Throttle {
 public:
  struct Options {
    std::string key;          // bucket name, e.g. "shootbin:" + token fingerprint
    double rpm = 60;          // allowed requests per minute
    double safety = 0.985;    // fraction of rpm actually used
    BucketStore* shared = nullptr;  // nullptr = this process only
    // Wall clock in Unix seconds; empty = WallSeconds. Tests pass a fake one.
    std::function<double()> clock;
  };
  explicit Throttle(Options options);

  // nullopt = a token was taken, the request may start now; otherwise how
  // long to wait before asking again.
  std::optional<std::chrono::milliseconds> TryAcquire();

  // Feedback from a response of this service (lower-cased header names).
  // Returns true when the answer was a 429 (the request must be retried
  // after the pause; it is not a failure).
  bool OnResponse(long status, const std::multimap<std::string, std::string>& headers);

  std::int64_t granted() const;
  std::int64_t throttled_429() const;
  // Unix seconds until which the bucket is paused (0 = not paused).
  double paused_until() const;

 private:
  Options options_;
  mutable std::mutex mu_;
  double tokens_ = 1;
  double refilled_at_ = 0;
  double paused_until_ = 0;
  // Tokens reserved in the shared store and not used yet: the next is ours
  // at next_slot_, then one every 1/rate seconds.
  int slots_left_ = 0;
  double next_slot_ = 0;
  int lease_ = 1;  // how many to reserve next time
  std::int64_t granted_ = 0;
  std::int64_t got_429_ = 0;
};

}  // namespace shotsync
