// Fuzzes the rate-limit header parsers (include/shotsync/throttle.hpp):
// ParseResetTime (Retry-After / X-RateLimit-Reset: delta seconds, epoch
// seconds, ISO-8601, IMF-fixdate) with any `now`, RateLimitPauseUntil (what
// a 429 or X-RateLimit-Remaining: 0 answer does), and a Throttle fed those
// headers. Checks the documented contracts: a reset time is finite, not
// negative and at most 1e11; a pause ends within [now, now + 24 h]
// (kMaxRateLimitPause); the throttle never asks to wait a negative or absurd
// time; OnResponse with a body reports a 429 only when Is429RateLimit says so.
//
// Input: byte 0 picks `now`, byte 1 the status and which headers are sent
// (bit 6: the rest is also sent as the Date header); then lines:
// Retry-After, X-RateLimit-Reset, X-RateLimit-Remaining; the rest is given to
// ParseResetTime as one more value (and as X-RateLimit-Limit, Date and the
// body when the shape says so).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "shotsync/throttle.hpp"

using namespace shotsync;
using fuzz::Violated;

namespace {

double NowOf(std::uint8_t b, fuzz::Input& in) {
  switch (b % 8) {
    case 0: return 1732800000.0;  // 2024-11-28
    case 1: return 1732800000.0 + (b >> 3) * 37.25;
    case 2: return 0;
    case 3: return -1;
    case 4: return 1e11;
    case 5: return std::numeric_limits<double>::quiet_NaN();
    case 6: return std::numeric_limits<double>::infinity();
    default: {
      // Any bit pattern.
      std::uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = bits << 8 | in.Byte();
      double d;
      std::memcpy(&d, &bits, sizeof d);
      return d;
    }
  }
}

void CheckReset(std::string_view value, double now) {
  auto t = ParseResetTime(value, now);
  if (t && (!std::isfinite(*t) || *t < 0 || *t > 1e11)) Violated("ParseResetTime out of range", value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  const std::uint8_t now_choice = in.Byte();
  const std::uint8_t shape = in.Byte();
  const double now = NowOf(now_choice, in);
  const std::string_view retry_after = in.Line();
  const std::string_view reset = in.Line();
  const std::string_view remaining = in.Line();
  const std::string_view rest = in.Rest();

  for (std::string_view v : {retry_after, reset, remaining, rest}) {
    CheckReset(v, now);
    CheckReset(v, 1732800000.0);
  }

  std::multimap<std::string, std::string> headers;
  if (shape & 1) headers.emplace("retry-after", retry_after);
  if (shape & 2) headers.emplace("x-ratelimit-reset", reset);
  if (shape & 4) headers.emplace("x-ratelimit-remaining", remaining);
  if (shape & 8) headers.emplace("x-ratelimit-limit", rest);
  if (shape & 64) headers.emplace("date", rest);
  static constexpr long kStatuses[] = {429, 200, 201, 503};
  const long status = kStatuses[(shape >> 4) % 4];

  const auto pause = RateLimitPauseUntil(status, headers, now);
  if (std::isfinite(now)) {
    if (status == 429 && !pause) Violated("a 429 without a pause");
    if (pause && (!std::isfinite(*pause) || *pause < now || *pause > now + kMaxRateLimitPause)) {
      Violated("pause outside [now, now + kMaxRateLimitPause]");
    }
  }

  // A throttle on a fake clock, fed the same answer.
  Throttle throttle(Throttle::Options{.key = "fuzz",
                                      .rpm = 60,
                                      .clock = [now] { return now; },
                                      .notice = [](const std::string&) {}});
  (void)throttle.TryAcquire();
  const bool got_429 = throttle.OnResponse(status, headers);
  if (got_429 != (status == 429)) Violated("OnResponse misreports a 429");
  const bool body_429 = throttle.OnResponse(status, headers, rest);
  if (body_429 != (status == 429 && Is429RateLimit(rest)))
    Violated("OnResponse(body) misreports a 429");
  const auto wait = throttle.TryAcquire();
  const double paused = throttle.paused_until();
  if (std::isfinite(now) && std::fabs(now) < 1e12) {
    if (!std::isfinite(paused)) Violated("paused_until is not finite");
    // The longest pause plus jitter, or a bucket paced at 1 request/min.
    if (wait &&
        (wait->count() < 1 || wait->count() > std::int64_t(kMaxRateLimitPause * 1000) + 1000)) {
      Violated("throttle wait out of range");
    }
    if (!(throttle.rpm() >= 1 && throttle.rpm() <= 60))
      Violated("pace outside [1, configured rpm]");
  }
  return 0;
}
