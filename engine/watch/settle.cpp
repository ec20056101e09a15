#include "watch/settle.hpp"

#include <algorithm>

namespace shotsync::watch {

void Settler::Saw(const std::string& path, Activity what, Clock::time_point now) {
  auto it = files_.find(path);
  if (it == files_.end()) {
    // A close of a file opened before the watch began, or our own read
    // ending after it was taken: nothing to track.
    if (what == Activity::kClosedRead) return;
    it = files_.emplace(path, Entry{}).first;
  }
  Entry& e = it->second;
  e.last_activity = now;
  switch (what) {
    case Activity::kOpened: ++e.opens; return;
    case Activity::kClosedRead:
      e.opens = std::max(0, e.opens - 1);
      if (!e.pending && e.opens == 0) Drop(it);
      return;
    case Activity::kClosedWrite: e.opens = std::max(0, e.opens - 1); break;
    case Activity::kModified:
    case Activity::kArrived: break;
  }
  if (!e.pending) ++pending_;
  e.pending = true;
  e.due = now + settle_;
}

void Settler::Schedule(const std::string& path, Clock::time_point at) {
  Entry& e = files_[path];
  if (e.pending) {
    e.due = std::min(e.due, at);
    return;
  }
  e.pending = true;
  e.due = at;
  ++pending_;
}

Settler::Clock::time_point Settler::DueAt(const Entry& e) const {
  return e.opens > 0 ? std::max(e.due, e.last_activity + max_hold_) : e.due;
}

bool Settler::Due(const Entry& e, Clock::time_point now) const { return e.pending && DueAt(e) <= now; }

void Settler::Drop(std::unordered_map<std::string, Entry>::iterator it) {
  if (it->second.pending) --pending_;
  files_.erase(it);
}

std::vector<std::string> Settler::TakeDue(Clock::time_point now) {
  std::vector<std::string> due;
  for (auto it = files_.begin(); it != files_.end();) {
    if (!Due(it->second, now)) {
      ++it;
      continue;
    }
    due.push_back(it->first);
    --pending_;
    if (it->second.opens > 0) {
      it->second.pending = false;  // still open (held past max_hold): keep counting its opens
      ++it;
    } else {
      it = files_.erase(it);
    }
  }
  std::sort(due.begin(), due.end());
  return due;
}

std::optional<Settler::Clock::time_point> Settler::NextDue() const {
  std::optional<Clock::time_point> next;
  for (const auto& [path, e] : files_) {
    if (e.pending && (!next || DueAt(e) < *next)) next = DueAt(e);
  }
  return next;
}

}  // namespace shotsync::watch
