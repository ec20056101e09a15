// Throttle: a token bucket per service and token, with server feedback.
//
// The bucket refills at rate = rpm / 60 tokens per second times a small safety
// factor, with a burst of one token: then no 60-second window, sliding or
// fixed, can hold more than rpm requests, and the achieved rate stays within
// 2% of the allowed one. Server feedback lowers the pace before the server
// refuses: X-RateLimit-Remaining of 0 pauses until X-RateLimit-Reset (epoch
// seconds for Shootbin, ISO-8601 for HeadshotPro: both are parsed); a 429
// pauses the bucket until Retry-After / X-RateLimit-Reset plus jitter.
// Reset times are read against the server's own clock (its Date header)
// when it sends one, so a skewed local clock changes nothing. An
// X-RateLimit-Limit below the configured rpm lowers the pace to the
// server's figure (said once, through Options::notice). A 429 that, by its
// body, is not about the request rate (HeadshotPro's INVITE_LIMIT_EXCEEDED)
// neither pauses nor is resent: see OnResponse(status, headers, body).
//
// The bucket can be shared by processes on one host through a BucketStore
// (the manifest's throttle table): a hook's push and a cron sync then stay
// within the one account limit together. The store is a SQLite transaction
// that may wait seconds behind another writer, so no caller of TryAcquire or
// OnResponse ever touches it: a shared Throttle owns a "bucket keeper"
// thread that reserves tokens from the store ahead of need and writes the
// pauses, and TryAcquire only hands out tokens already reserved (asking the
// keeper for more, and telling wake-up callbacks when they arrive).
//
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

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
  // Strict: when the store cannot be asked, nothing is sent (the throttle
  // waits and asks again) instead of this process's own bucket serving. A
  // store shared by hosts is strict: a private bucket per host would
  // multiply the account's rate by the number of hosts.
  virtual bool strict() const { return false; }
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

// Longest pause any answer can cause: a Retry-After of any length up to
// this is honoured.
inline constexpr double kMaxRateLimitPause = 24 * 3600.0;
// Longest pause read from an absolute time (X-RateLimit-Reset, a Retry-After
// date) when the answer has no Date header to say what time the server
// thinks it is: both APIs reset their window every minute, and a longer
// wait then more likely means that the local clock is wrong.
inline constexpr double kMaxUnverifiedResetPause = 65;

// The server's clock, from an answer's Date header (IMF-fixdate, or ISO-8601),
// in Unix seconds; nullopt without a plausible one (before 2001 or garbage).
std::optional<double> ServerNow(const std::multimap<std::string, std::string>& headers);

// The pause that an answer's rate-limit headers call for (lower-cased names;
// pure, fuzzed in tests/fuzz), in local Unix seconds:
// - a 429 pauses for Retry-After (delta seconds: any length up to 24 h; an
//   HTTP date), else until X-RateLimit-Reset, else 60 s; 1 s when the time
//   given has already passed;
// - any other answer with X-RateLimit-Remaining: 0 pauses until
//   X-RateLimit-Reset when that is known and ahead.
// An absolute time (reset, Retry-After date) is turned into a wait against
// the server's Date header when there is one (wait = reset - Date), else
// against now_s and then capped at kMaxUnverifiedResetPause. nullopt = no
// pause. For a finite now_s the result is finite and within
// [now_s, now_s + kMaxRateLimitPause]. No jitter.
std::optional<double> RateLimitPauseUntil(long status,
                                          const std::multimap<std::string, std::string>& headers,
                                          double now_s);

// Whether a 429's body says the request rate was exceeded. False only for a
// JSON body whose machine-readable "code" names something else (HeadshotPro:
// INVITE_LIMIT_EXCEEDED, headshotpro.md §1): that is a refusal of the item,
// not a reason to pause and resend. Anything else (Shootbin's
// {"message": "Too Many Attempts."}, RATE_LIMIT_EXCEEDED, no body) is true.
bool Is429RateLimit(std::string_view body);

// X-RateLimit-Limit as requests per minute; nullopt when absent or not a
// positive integer.
std::optional<double> ServerRpm(const std::multimap<std::string, std::string>& headers);

class Throttle {
 public:
  struct Options {
    std::string key;          // bucket name, e.g. "shootbin:" + token fingerprint
    double rpm = 60;          // allowed requests per minute
    double safety = 0.985;    // fraction of rpm actually used
    BucketStore* shared = nullptr;  // nullptr = this process only
    // Wall clock in Unix seconds; empty = WallSeconds. Tests pass a fake one.
    std::function<double()> clock;
    // One-line notices (the pace lowered to the server's X-RateLimit-Limit).
    // Empty = "shotsync: <line>" on stderr.
    std::function<void(const std::string& line)> notice;
    // Names the service in notices; "" = the key up to its ':' ("shootbin").
    std::string name;
    // Tokens the bucket may hold (>= 1). A byte bucket (engine/net/bandwidth)
    // holds two, so that a token asked for a little late is not lost.
    double burst = 1;
  };
  explicit Throttle(Options options);
  ~Throttle();  // stops the keeper after it has stored a pending pause
  Throttle(const Throttle&) = delete;
  Throttle& operator=(const Throttle&) = delete;

  // nullopt = a token was taken, the request may start now; otherwise how
  // long to wait before asking again. Never calls the BucketStore: with a
  // shared store, when no reserved token is left it asks the keeper for more
  // and returns a wait; the wake-up callbacks run when they arrive earlier.
  std::optional<std::chrono::milliseconds> TryAcquire();

  // Registers (or, with an empty `wake`, removes) the callback that `owner`
  // wants run when the keeper has an answer from the store: tokens to hand
  // out, a wait, or a failure (then the local bucket serves). Runs on the
  // keeper thread, under the throttle's lock: it must only signal (e.g.
  // curl_multi_wakeup), never call back into this Throttle.
  void SetWakeup(const void* owner, std::function<void()> wake);

  // Blocks until the keeper has done everything asked of it so far (tests,
  // which step a fake clock only while the keeper is idle). No-op unshared.
  void WaitForKeeper();

  // Feedback from a response of this service (lower-cased header names).
  // Returns true when the answer was a 429 (the request must be retried
  // after the pause; it is not a failure). A 429 arriving after the previous
  // pause ended pauses at least 1, 2, 4 ... 60 s (a wrong reset time cannot
  // cause a 429 a second).
  bool OnResponse(long status, const std::multimap<std::string, std::string>& headers);
  // The same, for a caller that has the body: a 429 that is not about the
  // request rate (!Is429RateLimit(body)) is an ordinary answer: no pause, not
  // counted in throttled_429(), returns false (do not resend it).
  bool OnResponse(long status, const std::multimap<std::string, std::string>& headers,
                  std::string_view body);

  // Blocks until a token is granted (TryAcquire and sleep), for callers that
  // send without the engine's throttling (HttpRequest::throttle = nullptr).
  void Acquire();

  // The pace in requests per minute: the configured rpm, or the server's
  // X-RateLimit-Limit when that is lower.
  double rpm() const;
  // Changes the configured rpm (a bandwidth timetable's boundary); tokens
  // already reserved keep their slots, the next ones follow the new pace.
  void SetRpm(double rpm);
  std::int64_t granted() const;
  std::int64_t throttled_429() const;
  // Seconds during which some request waited for a token (the time the
  // throttle held the pipeline back, not the sum over waiting requests).
  double waited_s() const;
  // Unix seconds until which the bucket is paused (0 = not paused).
  double paused_until() const;

 private:
  bool Feedback(long status, const std::multimap<std::string, std::string>& headers,
                bool rate_limited);
  std::optional<std::chrono::milliseconds> TryAcquireLocked(double now);
  // The bucket keeper (shared stores only): the one thread that calls
  // options_.shared.
  void KeeperLoop(std::stop_token stop);
  void AskKeeper();  // under mu_
  void ReserveFromStore(std::unique_lock<std::mutex>& lock);

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
  double wait_began_ = -1;  // when a request was first told to wait (-1: none waiting)
  double waited_s_ = 0;
  std::int64_t got_429_ = 0;
  double rpm_ = 60;           // in use: min(options_.rpm, the server's limit)
  double announced_rpm_ = 0;  // the last lowered pace said in a notice
  int streak_429_ = 0;        // 429s after their pause had ended, in a row

  // Keeper state (under mu_). want_slots_: TryAcquire asks for a reservation;
  // pause_to_store_: a pause to write (0 = none); pauses_ counts local
  // pauses, so that a reservation made before one is dropped.
  bool want_slots_ = false;
  bool keeper_busy_ = false;
  bool reserving_ = false;        // the keeper is in the store for tokens
  bool store_failed_ = false;     // the last store call failed: the local bucket serves once
  double store_wait_until_ = 0;   // the store said: no token before this
  double pause_to_store_ = 0;
  std::uint64_t pauses_ = 0;
  std::uint64_t answers_ = 0;     // store answers so far (Acquire waits for the next)
  std::map<const void*, std::function<void()>> wakeups_;
  std::condition_variable_any keeper_cv_;  // work for the keeper
  std::condition_variable_any answer_cv_;  // the keeper answered / went idle
  std::jthread keeper_;  // last: stopped and joined before the rest goes
};

}  // namespace shotsync
