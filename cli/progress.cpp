#include "progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace shotsync::cli {
namespace {

constexpr auto kRedrawEvery = std::chrono::milliseconds(100);  // at most 10 redraws a second
constexpr auto kRateWindow = std::chrono::seconds(3);   // the speed shown
constexpr auto kPaceWindow = std::chrono::seconds(10);  // the ETA's byte rate, the request pace

int TerminalWidth() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

std::string Megabytes(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", double(bytes) / 1e6);
  return buf;
}

std::string Duration(double seconds) {
  const long s = long(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

// A bandwidth limit as rclone spells it: "4M", "512k", else decimal MB/s.
std::string Rate(std::int64_t bytes_per_s) {
  char buf[32];
  if (bytes_per_s % (1 << 20) == 0) std::snprintf(buf, sizeof buf, "%lldM", (long long)(bytes_per_s >> 20));
  else if (bytes_per_s % 1024 == 0) std::snprintf(buf, sizeof buf, "%lldk", (long long)(bytes_per_s >> 10));
  else std::snprintf(buf, sizeof buf, "%.2f MB/s", double(bytes_per_s) / 1e6);
  return buf;
}

void Write(std::string_view s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
}

}  // namespace

bool Progress::Wanted(const GlobalOptions& options) {
  if (options.quiet || options.json) return false;
  if (options.progress) return *options.progress;
  if (!::isatty(STDOUT_FILENO)) return false;
  const char* term = std::getenv("TERM");
  return !(term && std::strcmp(term, "dumb") == 0);
}

Progress::Progress(bool enabled, Labels labels, std::stop_token stop)
    : enabled_(enabled), labels_(std::move(labels)), stop_(std::move(stop)) {
  if (enabled_) thread_ = std::thread([this] { Loop(); });
}

Progress::~Progress() { Finish(); }

void Progress::SetPhase(std::string phase) {
  std::lock_guard lock(mu_);
  phase_ = std::move(phase);
}

void Progress::AddToTotal(std::int64_t files, std::uint64_t bytes) {
  total_.fetch_add(files, std::memory_order_relaxed);
  bytes_total_.fetch_add(bytes, std::memory_order_relaxed);
}

void Progress::SetTotal(std::int64_t files, std::uint64_t bytes) {
  total_.store(files, std::memory_order_relaxed);
  bytes_total_.store(bytes, std::memory_order_relaxed);
  total_final_.store(true, std::memory_order_relaxed);
}

void Progress::AddDone(std::uint64_t bytes) {
  done_.fetch_add(1, std::memory_order_relaxed);
  bytes_done_.fetch_add(bytes, std::memory_order_relaxed);
}

void Progress::Print(std::string_view line) {
  if (!enabled_) {
    Write(line);
    Write("\n");
    return;
  }
  std::lock_guard lock(out_mu_);
  ClearLocked();
  Write(line);
  Write("\n");
  DrawLocked(last_text_);
}

void Progress::StatsEvery(std::chrono::milliseconds every, std::function<void(const std::string&)> emit) {
  if (enabled_ || every.count() <= 0 || thread_.joinable()) return;
  stats_every_ = every;
  stats_emit_ = std::move(emit);
  thread_ = std::thread([this] { Loop(); });
}

void Progress::Finish() {
  {
    std::lock_guard lock(mu_);
    finished_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!enabled_) return;
  std::lock_guard lock(out_mu_);
  ClearLocked();
  last_text_.clear();  // nothing to redraw after a later WithLineCleared
}

void Progress::Loop() {
  std::unique_lock lock(mu_);
  // Wait first: a run that ends within one tick never flashes a bar.
  const auto every = enabled_ ? std::chrono::duration_cast<std::chrono::milliseconds>(kRedrawEvery) : stats_every_;
  while (!cv_.wait_for(lock, every, [this] { return finished_; })) {
    std::string text = Render();
    lock.unlock();
    if (enabled_) {
      std::lock_guard out(out_mu_);
      if (text != last_text_ || !shown_) DrawLocked(text);
    } else {
      stats_emit_(text);
    }
    lock.lock();
  }
}

std::string Progress::Limit(const LiveStats::Snapshot& live, double byte_rate, double request_rate,
                            bool* throttled) const {
  *throttled = false;
  const double now_s = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  if (live.throttle.paused_until > now_s) {
    return "paused by the server (429) for " + Duration(live.throttle.paused_until - now_s);
  }
  if (live.retrying > 0) {
    return "retrying " + std::to_string(live.retrying) + " after " + (live.retry_cause.empty() ? "an error" : live.retry_cause);
  }
  if (live.confirming > 0) {
    return "confirming " + std::to_string(live.confirming) + (live.confirming == 1 ? " upload" : " uploads");
  }
  // The pace is the limit when requests go out at (nearly) the allowed rate.
  if (live.throttle.rpm > 0 && request_rate >= 0.8 * live.throttle.rpm / 60) {
    *throttled = true;
    char buf[48];
    std::snprintf(buf, sizeof buf, "limit %g req/min", live.throttle.rpm);
    return buf;
  }
  if (live.bwlimit > 0 && byte_rate >= 0.8 * double(live.bwlimit)) return "limit bwlimit " + Rate(live.bwlimit);
  return "";
}

// mu_ held.
std::string Progress::Render() {
  const auto now = Clock::now();
  const std::uint64_t bytes = bytes_done_.load(std::memory_order_relaxed);
  const LiveStats* attached = live_.load(std::memory_order_acquire);
  LiveStats::Snapshot live;
  if (attached) live = attached->Read();
  samples_.push_back({now, bytes, live.throttle.requests});
  // Keep the newest sample at or before the window start as the base.
  while (samples_.size() > 1 && samples_[1].at <= now - kPaceWindow) samples_.pop_front();
  auto rate_since = [&](Clock::time_point from, auto field) {
    std::size_t i = 0;
    while (i + 1 < samples_.size() && samples_[i + 1].at <= from) ++i;
    const double dt = std::chrono::duration<double>(now - samples_[i].at).count();
    return dt >= 0.5 ? double(field(samples_.back()) - field(samples_[i])) / dt : 0.0;
  };
  auto bytes_of = [](const Sample& x) { return double(x.bytes); };
  auto requests_of = [](const Sample& x) { return double(x.requests); };
  const double rate = rate_since(now - kRateWindow, bytes_of);         // bytes/s shown
  const double pace_rate = rate_since(now - kPaceWindow, bytes_of);    // bytes/s for the ETA
  const double request_rate = rate_since(now - kPaceWindow, requests_of);

  const bool final = total_final_.load(std::memory_order_relaxed);
  const std::int64_t done = done_.load(std::memory_order_relaxed);
  const std::int64_t total = total_.load(std::memory_order_relaxed);
  const std::uint64_t bytes_total = bytes_total_.load(std::memory_order_relaxed);

  std::string phase = stop_.stop_requested() ? "stopping" : !live.phase.empty() ? live.phase : phase_;
  const bool walking = live.phase == "connecting" || live.phase == "scanning";
  phase.resize(std::max<std::size_t>(phase.size(), 9), ' ');
  std::string t = phase;
  if (walking && live.found > 0) t += std::to_string(live.found) + " found  ";
  t += std::to_string(done);
  if (final || total > 0) t += "/" + std::to_string(total) + (final ? "" : "+");
  t += " " + labels_.files + "  " + Megabytes(bytes);
  if (bytes_total > 0) t += "/" + Megabytes(bytes_total);
  char buf[64];
  std::snprintf(buf, sizeof buf, " MB  %.2f MB/s", rate / 1e6);
  t += buf;
  bool throttled = false;
  const std::string limit = attached ? Limit(live, rate, request_rate, &throttled) : "";
  if (final && total > done && live.throttle.rpm > 0) {
    // Each file left costs a request at the pace: a floor for the ETA,
    // and all of it when the pace is the limit.
    double eta = double(total - done) * 60 / live.throttle.rpm;
    if (!throttled && bytes_total > bytes) {
      double by_bytes = pace_rate > 0 ? double(bytes_total - bytes) / pace_rate : 0;
      if (live.bwlimit > 0) by_bytes = std::max(by_bytes, double(bytes_total - bytes) / double(live.bwlimit));
      eta = std::max(eta, by_bytes);
    }
    t += "  ETA " + Duration(eta);
  } else if (final && bytes_total > bytes) {
    t += pace_rate > 0 ? "  ETA " + Duration(double(bytes_total - bytes) / pace_rate) : "  ETA --:--";
  } else if (final && bytes_total == 0 && total > done) {
    // Sizes unknown until each file arrives (pull): files per second so far.
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    t += done > 0 && elapsed > 0.5 ? "  ETA " + Duration(double(total - done) * elapsed / double(done))
                                   : "  ETA --:--";
  }
  if (const auto f = failed_.load(std::memory_order_relaxed); f > 0) t += "  " + std::to_string(f) + " failed";
  if (const auto s = skipped_.load(std::memory_order_relaxed); s > 0) {
    t += "  " + std::to_string(s) + " " + labels_.skipped;
  }
  if (!limit.empty()) t += "  " + limit;
  return t;
}

void Progress::ClearLocked() {
  if (!shown_) return;
  Write("\r\033[K");
  std::fflush(stdout);  // before anyone writes to stderr
  shown_ = false;
}

void Progress::DrawLocked(const std::string& text) {
  if (text.empty()) return;
  last_text_ = text;
  // One column short of the width: a full last column makes some terminals wrap.
  const std::size_t width = std::size_t(std::max(TerminalWidth() - 1, 10));
  Write("\r");
  Write(std::string_view(text).substr(0, width));
  Write("\033[K");
  std::fflush(stdout);
  shown_ = true;
}

}  // namespace shotsync::cli
