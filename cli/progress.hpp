// Progress: one live status line on a terminal for sync, pull and push.
//
//   sending  12/40 files  3.4/12.0 MB  1.20 MB/s  ETA 0:07  2 failed
//   sending  12/40 files  3.4/12.0 MB  0.08 MB/s  ETA 0:28  limit 60 req/min
//
// With the engine's LiveStats attached the line says what limits the run
// (the throttle's pace, --bwlimit, a retry's backoff, uploads being
// confirmed, a server's 429 pause) and the ETA follows from it: every file
// left needs a request, so files left / pace is a floor that does not jump
// with bursty completions; the byte rate is taken over 10 s.
//
// Events only bump counters; a small owned thread redraws the line at most
// 10 times a second ("\r" + text + "\033[K", cut to the terminal width).
// Not on a terminal, StatsEvery (--stats) makes the same thread hand the
// same text to a callback every interval, one line each.
// Anything else printed while the line is shown goes through Print() or
// WithLineCleared(), which clear the line first and redraw it after, so
// messages are never glued to the bar. Disabled (every call a no-op) unless
// stdout is a terminal: nothing of it can reach a pipe or the log file.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "cli.hpp"
#include "shotsync/live.hpp"

namespace shotsync::cli {

class Progress {
 public:
  struct Labels {
    std::string files = "files";    // "12/40 files"
    std::string skipped = "rejected";  // the extra counter: "3 rejected", "5 already here"
  };

  // A live line belongs on this stdout: a terminal, TERM is not "dumb",
  // neither --quiet nor --json.
  static bool Wanted(const GlobalOptions& options);

  // `stop` (optional): the SIGINT flag, shown as phase "stopping".
  Progress(bool enabled, Labels labels, std::stop_token stop = {});
  explicit Progress(bool enabled) : Progress(enabled, Labels{}) {}
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  bool enabled() const { return enabled_; }

  // Before the run starts. `live` outlives this Progress.
  void Attach(const LiveStats* live) { live_.store(live, std::memory_order_release); }
  // --stats: every `every`, `emit` gets the line's text (only when the live
  // line is off: a terminal already shows it). Before the run starts.
  void StatsEvery(std::chrono::milliseconds every, std::function<void(const std::string&)> emit);

  void SetPhase(std::string phase);
  // The total grows while planning; SetTotal makes it final (ETA from then on).
  void AddToTotal(std::int64_t files, std::uint64_t bytes);
  void SetTotal(std::int64_t files, std::uint64_t bytes);
  // The total added so far is final (sizes unknown: the ETA is from files/s).
  void TotalIsFinal() { total_final_.store(true, std::memory_order_relaxed); }
  void AddDone(std::uint64_t bytes);
  void AddFailed() { failed_.fetch_add(1, std::memory_order_relaxed); }
  void AddSkipped() { skipped_.fetch_add(1, std::memory_order_relaxed); }

  // Prints `line` (a '\n' is added) on stdout without garbling the bar.
  void Print(std::string_view line);
  // Runs `emit` (e.g. a log call writing to stderr) with the bar line cleared.
  template <class F>
  void WithLineCleared(F&& emit) {
    if (!enabled_) return std::forward<F>(emit)();
    std::lock_guard lock(out_mu_);
    ClearLocked();
    std::forward<F>(emit)();
    DrawLocked(last_text_);
  }

  // Stops the redraw thread and clears the line; the caller prints its
  // summary after this. Idempotent; the destructor calls it.
  void Finish();

 private:
  using Clock = std::chrono::steady_clock;

  void Loop();
  std::string Render();       // current text, not yet cut to width
  void ClearLocked();         // out_mu_ held
  void DrawLocked(const std::string& text);  // out_mu_ held

  struct Sample {
    Clock::time_point at;
    std::uint64_t bytes = 0;
    std::int64_t requests = 0;
  };
  // The limiting factor's words ("limit 60 req/min"); "" when nothing in
  // particular. Sets *throttled when the request pace is the limit.
  std::string Limit(const LiveStats::Snapshot& live, double byte_rate, double request_rate, bool* throttled) const;

  const bool enabled_;
  const Labels labels_;
  std::stop_token stop_;
  std::atomic<const LiveStats*> live_{nullptr};  // the redraw thread may already run
  std::chrono::milliseconds stats_every_{0};
  std::function<void(const std::string&)> stats_emit_;
  const Clock::time_point start_ = Clock::now();

  std::atomic<std::int64_t> done_{0}, total_{0}, failed_{0}, skipped_{0};
  std::atomic<std::uint64_t> bytes_done_{0}, bytes_total_{0};
  std::atomic<bool> total_final_{false};

  std::mutex mu_;  // phase_, samples_, finished_
  std::condition_variable cv_;
  std::string phase_ = "scanning";
  bool finished_ = false;
  std::deque<Sample> samples_;  // over the last ~10 s

  std::mutex out_mu_;  // the terminal line
  std::string last_text_;
  bool shown_ = false;

  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace shotsync::cli
