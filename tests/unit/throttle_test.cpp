// Throttle: token-bucket pacing, server feedback (429, X-RateLimit-*), the
// reset-time parser (hostile input), and a bucket shared through a store.
#include "shotsync/throttle.hpp"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "buckets.hpp"

using shotsync::BucketStore;
using shotsync::ParseResetTime;
using shotsync::Result;
using shotsync::Status;
using shotsync::Throttle;
using Headers = std::multimap<std::string, std::string>;

namespace {

using shotsync::testing::GatedBuckets;
using shotsync::testing::MemoryBuckets;

constexpr double kT0 = 1705314660.0;  // 2024-01-15T10:31:00Z

// A fake wall clock the throttles (and their keeper threads) read.
struct FakeClock {
  std::shared_ptr<std::atomic<double>> now = std::make_shared<std::atomic<double>>(kT0);
  std::function<double()> fn() const {
    return [n = now] { return n->load(); };
  }
  void advance(double s) { now->store(now->load() + s); }
  double operator()() const { return now->load(); }
};

// Steps the fake clock in `step` seconds for `seconds`, asking every throttle
// each step (and letting their keepers answer before the clock moves);
// returns the grant times.
std::vector<double> Drive(FakeClock& clock, std::vector<Throttle*> throttles, double seconds,
                          double step) {
  std::vector<double> grants;
  const double end = clock() + seconds;
  std::mt19937 rng(7);
  while (clock() < end) {
    std::shuffle(throttles.begin(), throttles.end(), rng);  // who asks first varies
    for (Throttle* t : throttles) {
      if (!t->TryAcquire()) grants.push_back(clock());
    }
    for (Throttle* t : throttles) t->WaitForKeeper();
    clock.advance(step);
  }
  return grants;
}

// The most grants inside any window of `window` seconds (closed interval).
std::size_t MaxInWindow(const std::vector<double>& times, double window) {
  std::size_t best = 0, lo = 0;
  for (std::size_t hi = 0; hi < times.size(); ++hi) {
    while (times[hi] - times[lo] > window) ++lo;
    best = std::max(best, hi - lo + 1);
  }
  return best;
}

}  // namespace

TEST_CASE("ParseResetTime reads epochs, deltas, ISO-8601 and HTTP dates", "[throttle]") {
  const double now = kT0 - 100;
  CHECK(ParseResetTime("30", now) == Approx(now + 30));
  CHECK(ParseResetTime("0", now) == Approx(now));
  CHECK(ParseResetTime(" 30\r\n", now) == Approx(now + 30));
  CHECK(ParseResetTime("1.5", now) == Approx(now + 1.5));
  CHECK(ParseResetTime("1705314660", now) == Approx(kT0));
  CHECK(ParseResetTime("2024-01-15T10:31:00.000Z", now) == Approx(kT0));
  CHECK(ParseResetTime("2024-01-15T10:31:00Z", now) == Approx(kT0));
  CHECK(ParseResetTime("2024-01-15T10:31:00.250Z", now) == Approx(kT0 + 0.25));
  CHECK(ParseResetTime("2024-01-15T10:31:00.123456Z", now) == Approx(kT0 + 0.123456));
  CHECK(ParseResetTime("2024-01-15T10:31:00", now) == Approx(kT0));  // no zone: UTC
  CHECK(ParseResetTime("2024-01-15T11:31:00+01:00", now) == Approx(kT0));
  CHECK(ParseResetTime("2024-01-15T09:01:00-0130", now) == Approx(kT0));
  CHECK(ParseResetTime("2024-01-15 10:31:00Z", now) == Approx(kT0));
  CHECK(ParseResetTime("2024-02-29T00:00:00Z", now) == Approx(1709164800.0));
  CHECK(ParseResetTime("1970-01-01T00:00:00Z", now) == Approx(0.0));
  CHECK(ParseResetTime("Mon, 15 Jan 2024 10:31:00 GMT", now) == Approx(kT0));
}

TEST_CASE("ParseResetTime refuses garbage without crashing", "[throttle]") {
  const double now = kT0;
  const char* bad[] = {"",
                       "   ",
                       "abc",
                       "-5",
                       "-1705314660",
                       "+30",
                       "12abc",
                       "1e5",
                       "0x10",
                       "NaN",
                       "inf",
                       "1.",
                       ".5",
                       "1..5",
                       "30 s",
                       "99999999999999999999",
                       "999999999999",
                       "100000000000.5",
                       "2024-13-45T10:00:00Z",
                       "2024-01-15T25:00:00Z",
                       "2024-01-15T10:60:00Z",
                       "2024-02-30T00:00:00Z",
                       "2023-02-29T00:00:00Z",
                       "2024-00-10T00:00:00Z",
                       "1969-12-31T23:59:59Z",
                       "2024-01-15",
                       "2024-01-15T10:31",
                       "2024-01-15T10:31:00.Z",
                       "2024-01-15T10:31:00Zjunk",
                       "2024-01-15T10:31:00+25:00",
                       "2024-01-15T10:31:00+01:",
                       "2024-1-15T10:31:00Z",
                       "2024-01-15X10:31:00Z",
                       "Mon, 15 Foo 2024 10:31:00 GMT",
                       "Mon, 15 Jan 2024 10:31:00 UTC",
                       "Mon, 32 Jan 2024 10:31:00 GMT",
                       "\xff\xfe",
                       "2024-01-15T10:31:00.1234567890123Z"};
  for (const char* s : bad) {
    INFO("input: \"" << s << "\"");
    CHECK_FALSE(ParseResetTime(s, now).has_value());
  }
  CHECK_FALSE(ParseResetTime(std::string("30\0", 3), now).has_value());
  CHECK_FALSE(ParseResetTime(std::string(200, '9'), now).has_value());
  CHECK_FALSE(ParseResetTime(std::string(10000, '1'), now).has_value());
  CHECK_FALSE(ParseResetTime("30", NAN).has_value());

  // Random bytes, and random mutations of good values: no crash, and
  // anything accepted is a finite, plausible time.
  std::mt19937 rng(42);
  const std::string seeds[] = {"2024-01-15T10:31:00.000Z", "1705314660", "30",
                               "Mon, 15 Jan 2024 10:31:00 GMT"};
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    if (i % 2 == 0) {
      s.resize(rng() % 40);
      for (char& c : s) c = char(rng() % 256);
    } else {
      s = seeds[rng() % 4];
      for (int k = 0; k < 3; ++k) s[rng() % s.size()] = "0123456789-:TZ.+ ,x"[rng() % 19];
    }
    const auto v = ParseResetTime(s, now);
    if (v) {
      INFO("input: \"" << s << "\" -> " << *v);
      CHECK(std::isfinite(*v));
      CHECK(*v >= 0);
      CHECK(*v <= 1e11);
    }
  }
}

TEST_CASE("Throttle paces at rpm/60*safety with a burst of one", "[throttle]") {
  FakeClock clock;
  Throttle t({.key = "k", .rpm = 600, .clock = clock.fn()});
  // 3 s at 600 rpm (9.85/s): 30 +- 1 grants, the first at once.
  REQUIRE_FALSE(t.TryAcquire().has_value());
  auto second = t.TryAcquire();
  REQUIRE(second.has_value());
  CHECK(second->count() == Approx(1000.0 / 9.85).margin(1.0));
  const auto grants = Drive(clock, {&t}, 3.0, 0.001);
  CHECK(std::abs(int(grants.size()) + 1 - 30) <= 1);
  CHECK(t.granted() == std::int64_t(grants.size()) + 1);
}

TEST_CASE("Throttle never exceeds rpm in any 60 s window and achieves >= 0.97", "[throttle]") {
  for (double rpm : {60.0, 300.0, 1000.0}) {
    FakeClock clock;
    Throttle t({.key = "k", .rpm = rpm, .clock = clock.fn()});
    const auto grants = Drive(clock, {&t}, 600.0, 0.001);
    INFO("rpm " << rpm << ", grants " << grants.size());
    CHECK(MaxInWindow(grants, 60.0) <= std::size_t(rpm));
    CHECK(double(grants.size()) / (rpm * 10) >= 0.97);
  }
}

TEST_CASE("Throttle real-clock rate: rpm 600 for 3 s gives 30 +- 1 grants", "[throttle]") {
  Throttle t({.key = "k", .rpm = 600});
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(3000);
  int grants = 0;
  while (std::chrono::steady_clock::now() < end) {
    if (auto wait = t.TryAcquire()) {
      std::this_thread::sleep_for(
          std::min<std::chrono::milliseconds>(*wait, std::chrono::milliseconds(5)));
    } else {
      ++grants;
    }
  }
  CHECK(std::abs(grants - 30) <= 1);
}

TEST_CASE("429 with Retry-After pauses for that long plus jitter", "[throttle]") {
  FakeClock clock;
  Throttle t({.key = "k", .rpm = 6000, .clock = clock.fn()});
  REQUIRE_FALSE(t.TryAcquire());
  CHECK(t.OnResponse(
      429, {{"retry-after", "30"}, {"x-ratelimit-reset", std::to_string(long(kT0 + 50))}}));
  CHECK(t.throttled_429() == 1);
  CHECK(t.paused_until() >= kT0 + 30.05);
  CHECK(t.paused_until() <= kT0 + 30.25);
  auto wait = t.TryAcquire();
  REQUIRE(wait);
  CHECK(wait->count() >= 30050);
  CHECK(wait->count() <= 30250);
  clock.advance(29.9);
  CHECK(t.TryAcquire());
  clock.advance(0.4);
  CHECK_FALSE(t.TryAcquire());  // the pause is over: the waiting request goes at once
  CHECK(t.paused_until() == 0);
}

TEST_CASE("429 with only X-RateLimit-Reset (epoch or ISO) pauses until the reset", "[throttle]") {
  FakeClock clock;
  SECTION("Shootbin: epoch seconds") {
    Throttle t({.key = "k", .rpm = 60, .clock = clock.fn()});
    CHECK(t.OnResponse(429, {{"x-ratelimit-reset", "1705314702"}}));
    CHECK(t.paused_until() == Approx(kT0 + 42 + 0.15).margin(0.1001));
  }
  SECTION("HeadshotPro: ISO-8601") {
    Throttle t({.key = "k", .rpm = 300, .clock = clock.fn()});
    CHECK(t.OnResponse(429, {{"x-ratelimit-reset", "2024-01-15T10:31:20.500Z"}}));
    CHECK(t.paused_until() == Approx(kT0 + 20.5 + 0.15).margin(0.1001));
  }
  SECTION("garbage Retry-After falls back to the reset") {
    Throttle t({.key = "k", .rpm = 60, .clock = clock.fn()});
    CHECK(t.OnResponse(429, {{"retry-after", "soon"}, {"x-ratelimit-reset", "1705314670"}}));
    CHECK(t.paused_until() == Approx(kT0 + 10.15).margin(0.1001));
  }
  SECTION("no usable header: 60 s") {
    Throttle t({.key = "k", .rpm = 60, .clock = clock.fn()});
    CHECK(t.OnResponse(429, {{"x-ratelimit-reset", "tomorrow"}}));
    CHECK(t.paused_until() == Approx(kT0 + 60.15).margin(0.1001));
  }
  SECTION("reset in the past: 1 s") {
    Throttle t({.key = "k", .rpm = 60, .clock = clock.fn()});
    CHECK(t.OnResponse(429, {{"x-ratelimit-reset", "1705314000"}}));
    CHECK(t.paused_until() == Approx(kT0 + 1.15).margin(0.1001));
  }
  SECTION("reset far ahead and no Date header to check it against: capped at 65 s") {
    Throttle t({.key = "k", .rpm = 60, .clock = clock.fn()});
    CHECK(t.OnResponse(429, {{"x-ratelimit-reset", "2030-01-01T00:00:00Z"}}));
    CHECK(t.paused_until() == Approx(kT0 + 65.15).margin(0.1001));
    CHECK(t.throttled_429() == 1);
  }
  SECTION("a Retry-After of any length is honoured, up to 24 h") {
    Throttle t({.key = "k", .rpm = 60, .clock = clock.fn()});
    CHECK(t.OnResponse(429, {{"retry-after", "86400"}}));
    CHECK(t.paused_until() == Approx(kT0 + 86400.15).margin(0.1001));
    CHECK(t.OnResponse(429, {{"retry-after", "999999"}}));
    CHECK(t.paused_until() == Approx(kT0 + 86400.15).margin(0.1001));
    CHECK(t.throttled_429() == 2);
  }
}

TEST_CASE("RateLimitPauseUntil: one row per header combination", "[throttle]") {
  const double now = kT0;  // local clock: 2024-01-15T10:31:00Z (a Monday)
  const std::string ahead_1h = "Mon, 15 Jan 2024 11:31:00 GMT";   // server clock 1 h ahead of ours
  const std::string behind_1h = "Mon, 15 Jan 2024 09:31:00 GMT";  // server clock 1 h behind
  const std::string same = "Mon, 15 Jan 2024 10:31:00 GMT";
  struct Row {
    const char* what;
    long status;
    Headers headers;
    std::optional<double> wait;  // seconds from now; nullopt = no pause
  };
  const std::vector<Row> rows = {
      {"Retry-After 120", 429, {{"retry-after", "120"}}, 120},
      {"Retry-After 3600", 429, {{"retry-after", "3600"}}, 3600},
      {"Retry-After beyond 24 h", 429, {{"retry-after", "200000"}}, 86400},
      {"Retry-After wins over the reset",
       429,
       {{"retry-after", "120"}, {"x-ratelimit-reset", "1705314670"}},
       120},
      {"Retry-After is clock-free: a Date changes nothing",
       429,
       {{"retry-after", "120"}, {"date", ahead_1h}},
       120},
      {"Retry-After as an HTTP date, on the server's clock",
       429,
       {{"retry-after", "Mon, 15 Jan 2024 11:33:00 GMT"}, {"date", ahead_1h}},
       120},
      {"Shootbin reset (epoch), Date 1 h ahead",
       429,
       {{"x-ratelimit-reset", std::to_string(long(kT0 + 3600 + 30))}, {"date", ahead_1h}},
       30},
      {"Shootbin reset (epoch), Date 1 h behind",
       429,
       {{"x-ratelimit-reset", std::to_string(long(kT0 - 3600 + 30))}, {"date", behind_1h}},
       30},
      {"HeadshotPro reset (ISO), Date 1 h ahead",
       429,
       {{"x-ratelimit-reset", "2024-01-15T11:31:20.500Z"}, {"date", ahead_1h}},
       20.5},
      {"HeadshotPro reset (ISO), Date 1 h behind",
       429,
       {{"x-ratelimit-reset", "2024-01-15T09:31:20.500Z"}, {"date", behind_1h}},
       20.5},
      {"reset 10 min ahead, vouched for by the Date",
       429,
       {{"x-ratelimit-reset", std::to_string(long(kT0 + 600))}, {"date", same}},
       600},
      {"reset 1 h ahead by our clock, no Date: capped",
       429,
       {{"x-ratelimit-reset", std::to_string(long(kT0 + 3600 + 30))}},
       65},
      {"reset 1 h behind by our clock, no Date: 1 s",
       429,
       {{"x-ratelimit-reset", std::to_string(long(kT0 - 3600 + 30))}},
       1},
      {"garbage Date: our clock",
       429,
       {{"x-ratelimit-reset", "1705314700"}, {"date", "yesterday"}},
       40},
      {"Date of 1970: our clock",
       429,
       {{"x-ratelimit-reset", "1705314700"}, {"date", "Thu, 01 Jan 1970 00:00:00 GMT"}},
       40},
      {"reset passed on the server's clock too: 1 s",
       429,
       {{"x-ratelimit-reset", std::to_string(long(kT0 + 3600 - 5))}, {"date", ahead_1h}},
       1},
      {"no header: 60 s", 429, {}, 60},
      {"Remaining 0 with reset and Date 1 h ahead",
       200,
       {{"x-ratelimit-remaining", "0"},
        {"x-ratelimit-reset", "2024-01-15T11:31:45Z"},
        {"date", ahead_1h}},
       45},
      {"Remaining 0 with a past reset: no pause",
       200,
       {{"x-ratelimit-remaining", "0"},
        {"x-ratelimit-reset", "2024-01-15T11:30:45Z"},
        {"date", ahead_1h}},
       std::nullopt},
      {"Remaining 5: no pause",
       200,
       {{"x-ratelimit-remaining", "5"}, {"x-ratelimit-reset", "1705314690"}},
       std::nullopt},
  };
  for (const Row& row : rows) {
    INFO(row.what);
    const auto until = shotsync::RateLimitPauseUntil(row.status, row.headers, now);
    REQUIRE(until.has_value() == row.wait.has_value());
    if (row.wait) CHECK(*until - now == Approx(*row.wait).margin(0.001));
  }
  CHECK(shotsync::ServerNow({{"date", ahead_1h}}) == Approx(kT0 + 3600));
  CHECK_FALSE(shotsync::ServerNow({{"date", "30"}}).has_value());
  CHECK_FALSE(shotsync::ServerNow({}).has_value());
}

TEST_CASE(
    "A Date header 1 h ahead of the local clock: the throttle waits the server's 30 s, not 1 s",
    "[throttle]") {
  FakeClock clock;
  Throttle t({.key = "shootbin:x", .rpm = 60, .clock = clock.fn()});
  REQUIRE_FALSE(t.TryAcquire());
  CHECK(t.OnResponse(429, {{"x-ratelimit-reset", std::to_string(long(kT0 + 3600 + 30))},
                           {"date", "Mon, 15 Jan 2024 11:31:00 GMT"}}));
  CHECK(t.paused_until() == Approx(kT0 + 30.15).margin(0.1001));
  auto wait = t.TryAcquire();
  REQUIRE(wait);
  CHECK(wait->count() >= 30050);
}

TEST_CASE("429s in a row after their pause ended wait 1, 2, 4 ... s: never a 429 a second",
          "[throttle]") {
  FakeClock clock;
  Throttle t({.key = "k", .rpm = 6000, .clock = clock.fn()});
  const Headers passed = {
      {"x-ratelimit-reset", "1705314000"}};  // always in the past: a wrong clock
  double expected = 1;
  for (int i = 0; i < 8; ++i) {
    INFO("429 number " << i + 1);
    CHECK(t.OnResponse(429, passed));
    CHECK(t.paused_until() - clock() == Approx(expected + 0.15).margin(0.1001));
    clock.advance(t.paused_until() - clock() + 0.001);
    expected = std::min(60.0, expected * 2);
  }
  // 429s of requests already in flight during a pause do not lengthen it.
  Throttle u({.key = "k", .rpm = 6000, .clock = clock.fn()});
  CHECK(u.OnResponse(429, {{"retry-after", "5"}}));
  for (int i = 0; i < 7; ++i) CHECK(u.OnResponse(429, {{"retry-after", "5"}}));
  CHECK(u.paused_until() - clock() <= 5.25);
  // An answer that is not a 429 ends the streak.
  clock.advance(6);
  CHECK_FALSE(u.OnResponse(200, {}));
  CHECK(u.OnResponse(429, passed));
  CHECK(u.paused_until() - clock() == Approx(1.15).margin(0.1001));
}

TEST_CASE("X-RateLimit-Limit below the configured rpm lowers the pace, said once", "[throttle]") {
  FakeClock clock;
  std::vector<std::string> notices;
  Throttle t({.key = "shootbin:abc",
              .rpm = 60,
              .clock = clock.fn(),
              .notice = [&](const std::string& line) { notices.push_back(line); }});
  CHECK(t.rpm() == 60);
  CHECK_FALSE(t.OnResponse(200, {{"x-ratelimit-limit", "30"}, {"x-ratelimit-remaining", "29"}}));
  CHECK(t.rpm() == 30);
  for (int i = 0; i < 5; ++i) (void)t.OnResponse(200, {{"x-ratelimit-limit", "30"}});
  REQUIRE(notices.size() == 1);
  CHECK(notices[0] ==
        "shootbin: the server allows 30 requests/min, below the configured 60; pacing at 30");
  // Paced at 30/min: 10 minutes give ~300 grants, never more than 30 in a minute.
  const auto grants = Drive(clock, {&t}, 600.0, 0.01);
  CHECK(MaxInWindow(grants, 60.0) <= 30);
  CHECK(double(grants.size()) / 300.0 >= 0.97);
  // A higher or garbage figure never raises the pace above the configured rpm.
  (void)t.OnResponse(200, {{"x-ratelimit-limit", "1000"}});
  CHECK(t.rpm() == 60);
  (void)t.OnResponse(200, {{"x-ratelimit-limit", "abc"}});
  (void)t.OnResponse(200, {{"x-ratelimit-limit", "0"}});
  (void)t.OnResponse(200, {{"x-ratelimit-limit", "-5"}});
  CHECK(t.rpm() == 60);
  CHECK(notices.size() == 1);
  // A limit at or above the configured rpm says nothing.
  std::vector<std::string> quiet;
  Throttle h({.key = "headshotpro:k",
              .rpm = 300,
              .clock = clock.fn(),
              .notice = [&](const std::string& line) { quiet.push_back(line); }});
  (void)h.OnResponse(200, {{"x-ratelimit-limit", "300"}});
  (void)h.OnResponse(200, {{"x-ratelimit-limit", "1000"}});
  CHECK(quiet.empty());
  CHECK(h.rpm() == 300);
}

TEST_CASE("A 429 whose body says it is not about the rate neither pauses nor counts",
          "[throttle]") {
  FakeClock clock;
  Throttle t({.key = "headshotpro:k", .rpm = 300, .clock = clock.fn()});
  CHECK_FALSE(t.OnResponse(
      429, {{"x-ratelimit-remaining", "120"}},
      R"({"success":false,"error":"Too many pending invites","code":"INVITE_LIMIT_EXCEEDED"})"));
  CHECK(t.paused_until() == 0);
  CHECK(t.throttled_429() == 0);
  // ... but its Remaining: 0 is still read.
  CHECK_FALSE(t.OnResponse(
      429, {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "2024-01-15T10:31:10Z"}},
      R"({"success":false,"code":"INVITE_LIMIT_EXCEEDED"})"));
  CHECK(t.paused_until() == Approx(kT0 + 10.15).margin(0.1001));
  // A real one does both.
  CHECK(t.OnResponse(
      429, {{"x-ratelimit-reset", "2024-01-15T10:31:20Z"}},
      R"({"success":false,"error":"Rate limit exceeded","code":"RATE_LIMIT_EXCEEDED"})"));
  CHECK(t.throttled_429() == 1);
  CHECK(t.paused_until() == Approx(kT0 + 20.15).margin(0.1001));
}

TEST_CASE("X-RateLimit-Remaining 0 pauses until the reset without a 429", "[throttle]") {
  FakeClock clock;
  Throttle t({.key = "k", .rpm = 6000, .clock = clock.fn()});
  CHECK_FALSE(
      t.OnResponse(200, {{"x-ratelimit-remaining", "5"}, {"x-ratelimit-reset", "1705314690"}}));
  CHECK(t.paused_until() == 0);
  CHECK_FALSE(
      t.OnResponse(200, {{"x-ratelimit-remaining", "0"}}));  // no reset known: nothing to do
  CHECK(t.paused_until() == 0);
  CHECK_FALSE(t.OnResponse(
      201, {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "2024-01-15T10:31:30.000Z"}}));
  CHECK(t.paused_until() == Approx(kT0 + 30.15).margin(0.1001));
  CHECK(t.throttled_429() == 0);
  CHECK(t.TryAcquire());
  clock.advance(30.3);
  CHECK_FALSE(t.TryAcquire());
}

TEST_CASE("Two throttles sharing a store stay within the rate together", "[throttle]") {
  FakeClock clock;
  MemoryBuckets store;
  Throttle a({.key = "shootbin:abc", .rpm = 120, .shared = &store, .clock = clock.fn()});
  Throttle b({.key = "shootbin:abc", .rpm = 120, .shared = &store, .clock = clock.fn()});
  const auto grants = Drive(clock, {&a, &b}, 300.0, 0.001);
  CHECK(MaxInWindow(grants, 60.0) <= 120);
  CHECK(double(grants.size()) / (120 * 5) >= 0.97);
  CHECK(a.granted() > 100);
  CHECK(b.granted() > 100);
  CHECK(a.granted() + b.granted() == std::int64_t(grants.size()));

  // A 429 seen by one pauses the other through the store (written by a's
  // keeper). b may still use the one token its keeper took before the pause
  // was stored; then it asks the store, which says wait.
  CHECK(a.OnResponse(429, {{"retry-after", "20"}}));
  a.WaitForKeeper();
  CHECK(store.pauses == 1);
  CHECK(store.paused_until("shootbin:abc") > clock() + 20);
  const double stored = store.paused_until("shootbin:abc");
  int extra = 0;
  std::optional<std::chrono::milliseconds> wait;
  for (int i = 0; i < 10; ++i) {
    wait = b.TryAcquire();
    b.WaitForKeeper();
    if (!wait) {
      ++extra;
      continue;
    }
    if (clock() + double(wait->count()) / 1000.0 >= stored - 0.001) break;
    clock.advance(double(wait->count()) / 1000.0);  // b's next question goes to the store
  }
  CHECK(extra <= 1);
  REQUIRE(wait);
  CHECK(clock() + double(wait->count()) / 1000.0 >= stored - 0.001);
}

TEST_CASE("At a high rate, throttles sharing a store reserve tokens in batches and still keep the rate",
          "[throttle]") {
  FakeClock clock;
  MemoryBuckets store;
  // 60,000 rpm: 985 requests/s between the two, one store write per ~24 of them.
  Throttle a({.key = "k", .rpm = 60000, .shared = &store, .clock = clock.fn()});
  Throttle b({.key = "k", .rpm = 60000, .shared = &store, .clock = clock.fn()});
  const auto grants = Drive(clock, {&a, &b}, 10.0, 0.0002);
  const double rate = 60000 / 60.0 * 0.985;
  CHECK(MaxInWindow(grants, 1.0) <= std::size_t(1 + rate * 1.0) + 1);
  CHECK(MaxInWindow(grants, 5.0) <= std::size_t(1 + rate * 5.0) + 1);
  CHECK(double(grants.size()) / (rate * 10) >= 0.97);
  CHECK(a.granted() > 1000);
  CHECK(b.granted() > 1000);
  a.WaitForKeeper();
  b.WaitForKeeper();
  CHECK(store.takes == 0);
  CHECK(store.reserves * 10 < int(grants.size()));
  // A 429 drops what was reserved: no request goes out before the pause ends.
  CHECK(a.OnResponse(429, {{"retry-after", "5"}}));
  auto wait = a.TryAcquire();
  REQUIRE(wait);
  CHECK(wait->count() >= 5000);
}

TEST_CASE("Shared store: real threads in two throttles never exceed the rate", "[throttle]") {
  MemoryBuckets store;
  Throttle a({.key = "k", .rpm = 1200, .shared = &store});  // 19.7/s
  Throttle b({.key = "k", .rpm = 1200, .shared = &store});
  std::mutex mu;
  std::vector<double> times;
  auto worker = [&](Throttle& t) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(2000);
    while (std::chrono::steady_clock::now() < end) {
      if (auto wait = t.TryAcquire()) {
        std::this_thread::sleep_for(
            std::min<std::chrono::milliseconds>(*wait, std::chrono::milliseconds(3)));
      } else {
        std::lock_guard lock(mu);
        times.push_back(shotsync::WallSeconds());
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back(worker, std::ref(a));
    threads.emplace_back(worker, std::ref(b));
  }
  for (auto& th : threads) th.join();
  // 1 + 2 s * 19.7/s = 40.4 at most.
  CHECK(times.size() <= 41);
  CHECK(times.size() >= 38);
  CHECK(a.granted() + b.granted() == std::int64_t(times.size()));
}

TEST_CASE("A failing store falls back to the local bucket", "[throttle]") {
  FakeClock clock;
  MemoryBuckets store;
  store.fail = true;
  Throttle t({.key = "k", .rpm = 60, .shared = &store, .clock = clock.fn()});
  CHECK(t.TryAcquire());  // asks the keeper
  t.WaitForKeeper();
  CHECK_FALSE(t.TryAcquire());  // the store failed: the local bucket's token
  CHECK(t.TryAcquire());        // asks the store again
  t.WaitForKeeper();
  CHECK(t.TryAcquire());  // failed again, and the local bucket is empty
  clock.advance(1.1);
  CHECK(t.TryAcquire());
  t.WaitForKeeper();
  CHECK_FALSE(t.TryAcquire());
  CHECK(store.takes == 3);
}

TEST_CASE("A stuck store never blocks TryAcquire or OnResponse, reserved tokens still go out",
          "[throttle]") {
  FakeClock clock;
  GatedBuckets store;
  // 60,000 rpm: leases of up to 24 tokens.
  Throttle t({.key = "k", .rpm = 60000, .shared = &store, .clock = clock.fn()});
  const double interval = 1 / (60000 / 60.0 * 0.985);
  // Reserve a lease of 1, then 2, while the store answers.
  CHECK(t.TryAcquire());
  t.WaitForKeeper();
  CHECK_FALSE(t.TryAcquire());  // the last of the lease: the keeper reserves the next at once
  t.WaitForKeeper();
  store.shut();  // another process holds the manifest's write lock
  clock.advance(3 * interval);  // both due, whatever the rounding
  CHECK_FALSE(t.TryAcquire());
  CHECK_FALSE(t.TryAcquire());  // the lease is used up: the keeper goes to the store, and sticks
  store.wait_stuck();
  const auto wait = t.TryAcquire();  // does not wait for the store
  REQUIRE(wait);
  // A 429 pauses this process at once; the store learns it when it is free.
  CHECK(t.OnResponse(429, {{"retry-after", "5"}}));
  CHECK(t.paused_until() > clock() + 5);
  CHECK(t.TryAcquire());
  CHECK(store.pauses == 0);
  store.open();
  t.WaitForKeeper();
  CHECK(store.pauses == 1);
  CHECK(store.paused_until("k") > clock() + 5);
  // What was reserved before the 429 is dropped.
  clock.advance(1);
  CHECK(t.TryAcquire());
  CHECK(t.granted() == 3);
}

TEST_CASE("The keeper wakes the registered callbacks when the store answers", "[throttle]") {
  FakeClock clock;
  GatedBuckets store;
  Throttle t({.key = "k", .rpm = 60, .shared = &store, .clock = clock.fn()});
  std::mutex mu;
  std::condition_variable cv;
  int wakes = 0;
  int owner = 0;
  t.SetWakeup(&owner, [&] {
    std::lock_guard lock(mu);
    ++wakes;
    cv.notify_all();
  });
  store.shut();
  const auto wait = t.TryAcquire();
  REQUIRE(wait);
  CHECK(wait->count() >= 1000);  // the wake-up, not the wait, says when to ask again
  store.wait_stuck();
  store.open();
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return wakes == 1; });
  }
  t.WaitForKeeper();
  CHECK_FALSE(t.TryAcquire());
  t.SetWakeup(&owner, nullptr);
  CHECK(t.TryAcquire());  // asks the store: no token for a second
  t.WaitForKeeper();
  CHECK(wakes == 1);
}

TEST_CASE("Acquire returns as soon as the keeper has a token", "[throttle]") {
  GatedBuckets store;
  Throttle t({.key = "k", .rpm = 60, .shared = &store});
  store.shut();
  std::atomic<bool> done{false};
  std::thread caller([&] {
    t.Acquire();
    done = true;
  });
  store.wait_stuck();
  CHECK_FALSE(done);
  store.open();
  caller.join();
  CHECK(done);
  CHECK(t.granted() == 1);
}
