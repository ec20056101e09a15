// Token bucket with server feedback (see include/shotsync/throttle.hpp).
//
// rate = rpm / 60 * safety tokens per second, burst 1 (a fresh bucket holds
// one token). With a burst of one, any window of W seconds holds at most
// 1 + W * rate grants, which for W = 60 is 1 + 0.985 * rpm < rpm + 1: never
// more than rpm in any minute, sliding or fixed.
//
// With Options::shared set the tokens live in the BucketStore (atomic across
// processes); the local fields then hold the pause (also pushed to the
// store), the counters and the tokens reserved from the store and not used
// yet, each with its own time slot (so the bound above holds across
// processes). When the store fails (e.g. the database is unreadable) the
// local bucket takes over, so a broken store slows nothing down beyond this
// process's own limit.
//
// Threads. TryAcquire, OnResponse, Acquire and the getters run on any
// thread (the transfer engine's curl loop, a client's caller thread) and
// only read and write the fields under mu_: none of them touches SQLite.
// A shared Throttle owns one std::jthread, the bucket keeper, which is the
// only thread that calls the BucketStore (SQLite writes on the manifest):
//   - when TryAcquire finds no reserved token it sets want_slots_ and
//     returns a wait; the keeper then takes one token (Take, below 80/s) or
//     reserves the next 25 ms of tokens (Reserve; the lease doubles with use,
//     1, 2, 4 ...), and at those rates asks again as soon as the last one is
//     handed out, so a busy run never waits for the store;
//   - a pause (429, X-RateLimit-Remaining 0) holds locally at once and is
//     written to the store by the keeper (also when the Throttle is being
//     destroyed), so the processes sharing the store pause too;
//   - every answer runs the wake-up callbacks (the engine's
//     curl_multi_wakeup), so a request parked on a wait starts as soon as
//     its token is there. A reservation made before a local pause is dropped.
#include "shotsync/throttle.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>
#include <utility>

#include "util/json_util.hpp"
#include "shotsync/hasher.hpp"

namespace shotsync {
namespace {

constexpr double kJitterMin = 0.050, kJitterMax = 0.250;
constexpr double kLeaseSeconds = 0.025;  // tokens reserved ahead from a shared store
constexpr int kMaxLease = 512;
constexpr double kKeeperWait = 10;  // waiting for the keeper, when it will wake us
constexpr double kStrictStoreRetry = 1;  // a strict store that failed is asked again after this
constexpr double kFallbackPause = 60;  // 429 without any usable header
constexpr double kPastResetPause = 1;  // reset already passed: clocks disagree, wait a little
constexpr double kMaxStreakPause = 60;  // floor for 429s in a row: 1, 2, 4 ... 60 s
constexpr double kEpochMin = 1e9;      // 2001-09-09: below this a number is a delta
constexpr double kEpochMax = 1e11;     // year 5138: above this it is garbage

double Jitter() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(kJitterMin, kJitterMax)(rng);
}

std::string_view Trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// Reads exactly n digits at s[pos..]; advances pos.
bool Digits(std::string_view s, std::size_t& pos, int n, int& out) {
  if (pos + std::size_t(n) > s.size()) return false;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    const char c = s[pos + std::size_t(i)];
    if (!IsDigit(c)) return false;
    v = v * 10 + (c - '0');
  }
  pos += std::size_t(n);
  out = v;
  return true;
}

bool Expect(std::string_view s, std::size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}

bool IsLeap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t DaysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = unsigned(y - era * 400);
  const unsigned doy = unsigned((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + std::int64_t(doe) - 719468;
}

std::optional<double> ToEpoch(int y, int mo, int d, int h, int mi, int s, double frac) {
  if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, mo) || h > 23 ||
      mi > 59 || s > 60) {
    return std::nullopt;
  }
  return double(DaysFromCivil(y, mo, d)) * 86400.0 + h * 3600.0 + mi * 60.0 + s + frac;
}

// "2024-01-15T10:31:00.000Z", also without fraction, with any number of
// fraction digits, "+01:00" / "+0100" / "+01" offsets, or no zone (UTC).
std::optional<double> ParseIso(std::string_view v) {
  std::size_t p = 0;
  int y, mo, d, h, mi, s;
  if (!Digits(v, p, 4, y) || !Expect(v, p, '-') || !Digits(v, p, 2, mo) || !Expect(v, p, '-') ||
      !Digits(v, p, 2, d)) {
    return std::nullopt;
  }
  if (p >= v.size() || (v[p] != 'T' && v[p] != 't' && v[p] != ' ')) return std::nullopt;
  ++p;
  if (!Digits(v, p, 2, h) || !Expect(v, p, ':') || !Digits(v, p, 2, mi) || !Expect(v, p, ':') ||
      !Digits(v, p, 2, s)) {
    return std::nullopt;
  }
  double frac = 0;
  if (p < v.size() && (v[p] == '.' || v[p] == ',')) {
    ++p;
    double scale = 0.1;
    const std::size_t start = p;
    while (p < v.size() && IsDigit(v[p])) {
      frac += (v[p] - '0') * scale;
      scale /= 10;
      ++p;
    }
    if (p == start || p - start > 12) return std::nullopt;
  }
  double offset = 0;
  if (p < v.size()) {
    const char z = v[p];
    if (z == 'Z' || z == 'z') {
      ++p;
    } else if (z == '+' || z == '-') {
      ++p;
      int oh = 0, om = 0;
      if (!Digits(v, p, 2, oh)) return std::nullopt;
      if (p < v.size()) {
        Expect(v, p, ':');
        if (!Digits(v, p, 2, om)) return std::nullopt;
      }
      if (oh > 23 || om > 59) return std::nullopt;
      offset = (z == '+' ? 1 : -1) * (oh * 3600.0 + om * 60.0);
    } else {
      return std::nullopt;
    }
  }
  if (p != v.size()) return std::nullopt;
  auto t = ToEpoch(y, mo, d, h, mi, s, frac);
  if (!t) return std::nullopt;
  return *t - offset;
}

// RFC 9110 IMF-fixdate, the other Retry-After form: "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<double> ParseHttpDate(std::string_view v) {
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (v.size() != 29 || v[3] != ',' || v[4] != ' ' || v.substr(25) != " GMT") return std::nullopt;
  std::size_t p = 5;
  int d, y, h, mi, s;
  if (!Digits(v, p, 2, d) || !Expect(v, p, ' ')) return std::nullopt;
  const std::string_view mon = v.substr(p, 3);
  int mo = 0;
  for (int i = 0; i < 12; ++i) {
    if (kMonths[i] == mon) mo = i + 1;
  }
  if (mo == 0) return std::nullopt;
  p += 3;
  if (!Expect(v, p, ' ') || !Digits(v, p, 4, y) || !Expect(v, p, ' ') || !Digits(v, p, 2, h) ||
      !Expect(v, p, ':') || !Digits(v, p, 2, mi) || !Expect(v, p, ':') || !Digits(v, p, 2, s)) {
    return std::nullopt;
  }
  return ToEpoch(y, mo, d, h, mi, s, 0);
}

// "30", "1705314660", "1.5": a delta when small, epoch seconds when large.
std::optional<double> ParseNumber(std::string_view v, double now_s) {
  std::size_t p = 0;
  double value = 0;
  while (p < v.size() && IsDigit(v[p])) {
    value = value * 10 + (v[p] - '0');
    ++p;
  }
  if (p == 0 || p > 12) return std::nullopt;  // no digits, or absurdly many
  if (p < v.size()) {
    if (v[p] != '.') return std::nullopt;
    ++p;
    double scale = 0.1;
    const std::size_t start = p;
    while (p < v.size() && IsDigit(v[p])) {
      value += (v[p] - '0') * scale;
      scale /= 10;
      ++p;
    }
    if (p == start || p != v.size() || p - start > 9) return std::nullopt;
  }
  if (value >= kEpochMin) {
    if (value > kEpochMax) return std::nullopt;
    return value;
  }
  if (!std::isfinite(now_s)) return std::nullopt;
  return now_s + value;
}

// A time header's value: seconds from now (`absolute` false: a small number,
// the Retry-After delta form) or a Unix time read on the server's clock.
struct When {
  double t;
  bool absolute;
};

std::optional<When> ReadTime(const std::multimap<std::string, std::string>& headers,
                             const char* name) {
  auto it = headers.find(name);
  if (it == headers.end()) return std::nullopt;
  const std::string_view v = Trim(it->second);
  const auto t = ParseResetTime(v, 0.0);  // a delta d reads as 0 + d
  if (!t) return std::nullopt;
  const bool number = !v.empty() && IsDigit(v.front()) && !(v.size() >= 10 && v[4] == '-');
  return When{*t, !(number && *t < kEpochMin)};
}

}  // namespace

double WallSeconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::optional<double> ParseResetTime(std::string_view value, double now_s) {
  value = Trim(value);
  if (value.empty() || value.size() > 64) return std::nullopt;
  std::optional<double> t;
  if (IsDigit(value.front()) && value.size() >= 10 && value[4] == '-') {
    t = ParseIso(value);
  } else if (IsDigit(value.front())) {
    t = ParseNumber(value, now_s);
  } else {
    t = ParseHttpDate(value);
  }
  // Whatever the form, the answer is a plausible Unix time.
  if (!t || !std::isfinite(*t) || *t < 0 || *t > kEpochMax) return std::nullopt;
  return t;
}

Throttle::Throttle(Options options) : options_(std::move(options)) {
  if (!(options_.rpm > 0) || !std::isfinite(options_.rpm)) options_.rpm = 60;
  if (!(options_.safety > 0 && options_.safety <= 1)) options_.safety = 0.985;
  if (!(options_.burst >= 1) || !std::isfinite(options_.burst)) options_.burst = 1;
  if (!options_.clock) options_.clock = WallSeconds;
  if (options_.name.empty()) options_.name = options_.key.substr(0, options_.key.find(':'));
  if (!options_.notice) {
    options_.notice = [](const std::string& line) {
      std::fprintf(stderr, "shotsync: %s\n", line.c_str());
    };
  }
  rpm_ = options_.rpm;
  if (options_.shared) keeper_ = std::jthread([this](std::stop_token stop) { KeeperLoop(stop); });
}

Throttle::~Throttle() {
  if (keeper_.joinable()) {
    keeper_.request_stop();
    keeper_.join();  // before the members it reads go
  }
}

namespace {

// Round up: asking again a little late is fine, early only costs a retry.
std::chrono::milliseconds WaitFor(double seconds) {
  const auto ms = std::int64_t(std::ceil(seconds * 1000.0));
  return std::chrono::milliseconds(std::max<std::int64_t>(ms, 1));
}

// Tokens per store transaction: the next kLeaseSeconds of them, at least one.
int LeaseCap(double rate) {
  return int(std::clamp(std::floor(rate * kLeaseSeconds), 1.0, double(kMaxLease)));
}

}  // namespace

std::optional<std::chrono::milliseconds> Throttle::TryAcquire() {
  const double now = options_.clock();
  std::lock_guard lock(mu_);
  const auto wait = TryAcquireLocked(now);
  if (wait) {
    if (wait_began_ < 0) wait_began_ = now;
  } else if (wait_began_ >= 0) {
    waited_s_ += std::max(0.0, now - wait_began_);
    wait_began_ = -1;
  }
  return wait;
}

double Throttle::waited_s() const {
  std::lock_guard lock(mu_);
  return waited_s_;
}

std::optional<std::chrono::milliseconds> Throttle::TryAcquireLocked(double now) {
  const double rate = rpm_ / 60.0 * options_.safety;
  if (paused_until_ > 0) {
    if (now < paused_until_) return WaitFor(paused_until_ - now);
    // The server's window was reset at paused_until: the request that was
    // waiting for it may go at once.
    paused_until_ = 0;
    tokens_ = std::max(tokens_, 1.0);
    refilled_at_ = now;
  }
  if (options_.shared && !store_failed_) {
    if (slots_left_ > 0) {
      if (next_slot_ > now) return WaitFor(next_slot_ - now);
      --slots_left_;
      next_slot_ += 1.0 / rate;
      ++granted_;
      // At a high rate, reserve the next lease before anyone waits for it.
      if (slots_left_ == 0 && LeaseCap(rate) > 1) AskKeeper();
      return std::nullopt;
    }
    if (store_wait_until_ > now) return WaitFor(store_wait_until_ - now);
    AskKeeper();
    // A wake-up callback says when the answer is there (the long wait only
    // bounds a store stuck that long); without one the caller asks again
    // after a token's interval.
    return WaitFor(wakeups_.empty() ? std::clamp(1.0 / rate, 0.001, 1.0) : kKeeperWait);
  }
  // No store, or it failed just now: this process's own bucket (the next
  // request asks the store again).
  store_failed_ = false;
  if (refilled_at_ == 0) refilled_at_ = now;  // a fresh bucket holds its one token
  if (now > refilled_at_) {
    tokens_ = std::min(options_.burst, tokens_ + (now - refilled_at_) * rate);
    refilled_at_ = now;
  }
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    ++granted_;
    return std::nullopt;
  }
  return WaitFor((1.0 - tokens_) / rate);
}

void Throttle::AskKeeper() {
  if (reserving_) return;  // its answer is on the way
  want_slots_ = true;
  keeper_cv_.notify_one();
}

void Throttle::SetWakeup(const void* owner, std::function<void()> wake) {
  std::lock_guard lock(mu_);
  if (wake) {
    wakeups_[owner] = std::move(wake);
  } else {
    wakeups_.erase(owner);
  }
}

void Throttle::WaitForKeeper() {
  std::unique_lock lock(mu_);
  answer_cv_.wait(lock, [&] {
    return !keeper_.joinable() || (!keeper_busy_ && !want_slots_ && pause_to_store_ == 0);
  });
}

void Throttle::KeeperLoop(std::stop_token stop) {
  std::unique_lock lock(mu_);
  for (;;) {
    keeper_cv_.wait(lock, stop, [&] { return want_slots_ || pause_to_store_ > 0; });
    keeper_busy_ = true;
    if (pause_to_store_ > 0) {
      const double until = std::exchange(pause_to_store_, 0.0);
      lock.unlock();
      // Best effort: the local pause holds for this process whatever happens.
      (void)options_.shared->Pause(options_.key, until);
      lock.lock();
    }
    if (stop.stop_requested()) break;
    if (want_slots_) ReserveFromStore(lock);
    keeper_busy_ = false;
    answer_cv_.notify_all();
  }
  keeper_busy_ = false;
  answer_cv_.notify_all();
}

// Keeper thread, with `lock` held on entry and exit (released for the store).
void Throttle::ReserveFromStore(std::unique_lock<std::mutex>& lock) {
  want_slots_ = false;
  reserving_ = true;
  const double rate = rpm_ / 60.0 * options_.safety;
  const int cap = LeaseCap(rate);
  const int want = std::min(lease_, cap);
  const std::uint64_t pauses = pauses_;
  lock.unlock();
  const double now = options_.clock();
  // {tokens, seconds until the first}; {0, wait} = none yet.
  Result<std::pair<int, double>> got = std::pair<int, double>{0, 0.0};
  if (cap == 1) {
    // One token at a time, taken only when it is due: nothing sits reserved.
    Result<double> taken = options_.shared->Take(options_.key, rate, options_.burst, now);
    if (!taken.ok()) {
      got = taken.status();
    } else {
      got = *taken > 0 ? std::pair<int, double>{0, *taken} : std::pair<int, double>{1, 0.0};
    }
  } else {
    got = options_.shared->Reserve(options_.key, rate, options_.burst, want, now);
  }
  lock.lock();
  reserving_ = false;
  ++answers_;
  if (!got.ok()) {
    if (options_.shared->strict()) {
      store_wait_until_ = now + kStrictStoreRetry;  // the store retried already: ask again later
    } else {
      store_failed_ = true;
    }
  } else if (pauses != pauses_) {
    // Reserved before the server said stop: dropped, like held slots.
  } else if (got->first == 0) {
    store_wait_until_ = now + got->second;
  } else {
    slots_left_ = got->first;
    next_slot_ = now + got->second;
    if (cap > 1) lease_ = std::min(lease_ * 2, cap);
  }
  for (auto& [owner, wake] : wakeups_) wake();
}

std::optional<double> ServerNow(const std::multimap<std::string, std::string>& headers) {
  auto date = ReadTime(headers, "date");
  if (!date || !date->absolute || date->t < kEpochMin) return std::nullopt;
  return date->t;
}

std::optional<double> ServerRpm(const std::multimap<std::string, std::string>& headers) {
  auto it = headers.find("x-ratelimit-limit");
  if (it == headers.end()) return std::nullopt;
  const std::string_view v = Trim(it->second);
  if (v.empty() || v.size() > 9) return std::nullopt;
  double n = 0;
  for (char c : v) {
    if (!IsDigit(c)) return std::nullopt;
    n = n * 10 + (c - '0');
  }
  if (n < 1) return std::nullopt;
  return n;
}

bool Is429RateLimit(std::string_view body) {
  auto j = json::Parse(body);
  if (!j || !j->is_object()) return true;
  std::string code = json::String(*j, "code");
  if (code.empty()) {
    if (const json::Json* data = json::Field(*j, "data")) code = json::String(*data, "code");
  }
  if (code.empty()) return true;
  for (char& c : code) c = char(std::toupper(static_cast<unsigned char>(c)));
  return code == "RATE_LIMIT_EXCEEDED" || code == "RATE_LIMITED" || code == "TOO_MANY_REQUESTS";
}

std::optional<double> RateLimitPauseUntil(long status,
                                          const std::multimap<std::string, std::string>& headers,
                                          double now) {
  const std::optional<double> server_now = ServerNow(headers);
  // A time header as a local Unix time. Absolute times are read on the
  // server's clock when it says what time it is; else on ours, capped.
  auto local = [&](const When& w) {
    if (!w.absolute) return now + w.t;
    if (server_now) return now + (w.t - *server_now);
    return std::min(w.t, now + kMaxUnverifiedResetPause);
  };
  if (status == 429) {
    auto when = ReadTime(headers, "retry-after");
    if (!when) when = ReadTime(headers, "x-ratelimit-reset");
    double until = when ? local(*when) : now + kFallbackPause;
    if (!(until > now)) until = now + kPastResetPause;
    return std::min(until, now + kMaxRateLimitPause);
  }
  // The last request of the window went through: wait for the reset rather
  // than collect a 429. Only when the reset time is known and ahead.
  auto it = headers.find("x-ratelimit-remaining");
  if (it != headers.end() && Trim(it->second) == "0") {
    if (auto reset = ReadTime(headers, "x-ratelimit-reset")) {
      const double until = local(*reset);
      if (until > now) return std::min(until, now + kMaxRateLimitPause);
    }
  }
  return std::nullopt;
}

bool Throttle::OnResponse(long status, const std::multimap<std::string, std::string>& headers) {
  return Feedback(status, headers, status == 429);
}

bool Throttle::OnResponse(long status, const std::multimap<std::string, std::string>& headers,
                          std::string_view body) {
  return Feedback(status, headers, status == 429 && Is429RateLimit(body));
}

bool Throttle::Feedback(long status, const std::multimap<std::string, std::string>& headers,
                        bool rate_limited) {
  const double now = options_.clock();
  // A 429 that is not about the rate is read like any other answer.
  const long as = status == 429 && !rate_limited ? 0 : status;
  const auto pause = RateLimitPauseUntil(as, headers, now);
  const auto server_rpm = ServerRpm(headers);
  std::string notice;
  {
    std::lock_guard lock(mu_);
    if (server_rpm) {
      rpm_ = std::min(options_.rpm, *server_rpm);
      if (rpm_ < options_.rpm && rpm_ != announced_rpm_) {
        announced_rpm_ = rpm_;
        auto figure = [](double v) {
          char buf[32];
          std::snprintf(buf, sizeof buf, "%.0f", v);
          return std::string(buf);
        };
        notice = options_.name + ": the server allows " + figure(rpm_) +
                 " requests/min, below the configured " + figure(options_.rpm) + "; pacing at " +
                 figure(rpm_);
      }
    }
    double until = 0;
    if (rate_limited) {
      ++got_429_;
      // A 429 for a request sent after the last pause ended, when the server
      // named no Retry-After: the reset time was wrong (or the clocks
      // disagree); wait longer each time. A Retry-After is honoured as given.
      if (!(now < paused_until_)) streak_429_ = std::min(streak_429_ + 1, 16);
      const double floor = headers.contains("retry-after")
                               ? 0.0
                               : std::min(kMaxStreakPause, double(1 << std::clamp(streak_429_ - 1, 0, 6)));
      until = std::max(pause.value_or(now), now + floor) + Jitter();
    } else {
      if (status != 429) streak_429_ = 0;
      if (pause) until = *pause + Jitter();
    }
    if (until > 0) {
      if (until > paused_until_) paused_until_ = until;
      tokens_ = 0;
      slots_left_ = 0;  // reserved before the server said stop
      lease_ = 1;
      ++pauses_;
      if (options_.shared) {
        // The keeper stores it for the other processes.
        pause_to_store_ = std::max(pause_to_store_, until);
        keeper_cv_.notify_one();
      }
    }
  }
  if (!notice.empty()) options_.notice(notice);
  return rate_limited;
}

void Throttle::Acquire() {
  std::unique_lock lock(mu_);
  for (;;) {
    auto wait = TryAcquireLocked(options_.clock());
    if (!wait) return;
    // Until the wait is over or the keeper answers, whichever is first.
    const std::uint64_t seen = answers_;
    answer_cv_.wait_for(lock, *wait, [&] { return answers_ != seen; });
  }
}

double Throttle::rpm() const {
  std::lock_guard lock(mu_);
  return rpm_;
}

void Throttle::SetRpm(double rpm) {
  if (!(rpm > 0) || !std::isfinite(rpm)) return;
  std::lock_guard lock(mu_);
  options_.rpm = rpm;
  rpm_ = rpm;
  lease_ = 1;  // the lease grows again at the new pace
}

std::int64_t Throttle::granted() const {
  std::lock_guard lock(mu_);
  return granted_;
}

std::int64_t Throttle::throttled_429() const {
  std::lock_guard lock(mu_);
  return got_429_;
}

double Throttle::paused_until() const {
  const double now = options_.clock();
  std::lock_guard lock(mu_);
  return paused_until_ > now ? paused_until_ : 0;
}

std::string BucketKey(std::string_view service, std::string_view token) {
  return std::string(service) + ":" + HashBytes(token.data(), token.size()).substr(0, 12);
}

}  // namespace shotsync
