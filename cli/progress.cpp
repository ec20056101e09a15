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
constexpr auto kRateWindow = std::chrono::seconds(3);

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

void Progress::Finish() {
  if (!enabled_) return;
  {
    std::lock_guard lock(mu_);
    finished_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(out_mu_);
  ClearLocked();
  last_text_.clear();  // nothing to redraw after a later WithLineCleared
}

void Progress::Loop() {
  std::unique_lock lock(mu_);
  // Wait first: a run that ends within one tick never flashes a bar.
  while (!cv_.wait_for(lock, kRedrawEvery, [this] { return finished_; })) {
    std::string text = Render();
    lock.unlock();
    {
      std::lock_guard out(out_mu_);
      if (text != last_text_ || !shown_) DrawLocked(text);
    }
    lock.lock();
  }
}

// mu_ held.
std::string Progress::Render() {
  const auto now = Clock::now();
  const std::uint64_t bytes = bytes_done_.load(std::memory_order_relaxed);
  samples_.emplace_back(now, bytes);
  // Keep the newest sample at or before the window start as the base.
  while (samples_.size() > 1 && samples_[1].first <= now - kRateWindow) samples_.pop_front();
  const double dt = std::chrono::duration<double>(now - samples_.front().first).count();
  const double rate = dt >= 0.5 ? double(bytes - samples_.front().second) / dt : 0.0;  // bytes/s

  const bool final = total_final_.load(std::memory_order_relaxed);
  const std::int64_t done = done_.load(std::memory_order_relaxed);
  const std::int64_t total = total_.load(std::memory_order_relaxed);
  const std::uint64_t bytes_total = bytes_total_.load(std::memory_order_relaxed);

  std::string phase = stop_.stop_requested() ? "stopping" : phase_;
  phase.resize(std::max<std::size_t>(phase.size(), 9), ' ');
  std::string t = phase + std::to_string(done);
  if (final || total > 0) t += "/" + std::to_string(total) + (final ? "" : "+");
  t += " " + labels_.files + "  " + Megabytes(bytes);
  if (bytes_total > 0) t += "/" + Megabytes(bytes_total);
  char buf[64];
  std::snprintf(buf, sizeof buf, " MB  %.2f MB/s", rate / 1e6);
  t += buf;
  if (final && bytes_total > bytes) {
    t += rate > 0 ? "  ETA " + Duration(double(bytes_total - bytes) / rate) : "  ETA --:--";
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
