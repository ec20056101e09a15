// Settler: when a noticed file is ready to send. A file is due once
// nothing has written to it for `settle` and nobody holds it open (opens
// are counted from inotify's IN_OPEN / IN_CLOSE_*), so a file still being
// written, or written in bursts, goes once and complete. A file held open
// for longer than `max_hold` without a write is sent anyway (a viewer that
// keeps it open must not hold it back for ever).
//
// Not thread-safe: the watcher guards it with its mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "watch/inotify.hpp"

namespace shotsync::watch {

class Settler {
 public:
  using Clock = std::chrono::steady_clock;

  Settler(Clock::duration settle, Clock::duration max_hold) : settle_(settle), max_hold_(max_hold) {}
  void set_settle(Clock::duration settle) { settle_ = settle; }

  void Saw(const std::string& path, Activity what, Clock::time_point now);
  // Due at `at` (a retry's backoff), unless it is already pending sooner.
  void Schedule(const std::string& path, Clock::time_point at);
  // The due files, removed from the pending set.
  std::vector<std::string> TakeDue(Clock::time_point now);
  // When the next pending file may become due (nullopt: none pending).
  std::optional<Clock::time_point> NextDue() const;
  std::int64_t pending() const { return pending_; }

 private:
  struct Entry {
    int opens = 0;
    bool pending = false;
    Clock::time_point due{};
    Clock::time_point last_activity{};
  };
  bool Due(const Entry& e, Clock::time_point now) const;
  Clock::time_point DueAt(const Entry& e) const;
  void Drop(std::unordered_map<std::string, Entry>::iterator it);

  Clock::duration settle_, max_hold_;
  std::unordered_map<std::string, Entry> files_;  // pending, or open right now
  std::int64_t pending_ = 0;
};

}  // namespace shotsync::watch
