// Scheduler: runs callbacks at a later time on its own thread (retry
// backoff, and hops off a thread that must not block, such as the transfer
// loop). Thread-safe: At() and Drain() may be called from any thread.
// Tasks still waiting when it is destroyed are dropped, not run.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <stop_token>
#include <thread>

namespace shotsync {

class Scheduler {
 public:
  using Clock = std::chrono::steady_clock;

  Scheduler() : thread_([this](std::stop_token stop) { Loop(stop); }) {}
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void At(Clock::time_point when, std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      tasks_.emplace(when, std::move(fn));
    }
    cv_.notify_all();
  }

  // Runs everything still waiting now, on the caller's thread (used when stopping).
  void Drain() {
    std::multimap<Clock::time_point, std::function<void()>> tasks;
    {
      std::lock_guard lock(mu_);
      tasks.swap(tasks_);
    }
    for (auto& [when, fn] : tasks) fn();
  }

 private:
  void Loop(std::stop_token stop) {
    std::unique_lock lock(mu_);
    while (!stop.stop_requested()) {
      if (tasks_.empty()) {
        cv_.wait(lock, stop, [&] { return !tasks_.empty(); });
        continue;
      }
      auto first = tasks_.begin();
      if (first->first > Clock::now()) {
        const auto when = first->first;  // a copy: Cancel/Drain may free the node meanwhile
        // Wakes early for a task due sooner (or a Drain); re-looks either way.
        cv_.wait_until(lock, stop, when, [&] { return tasks_.empty() || tasks_.begin()->first < when; });
        continue;
      }
      auto fn = std::move(first->second);
      tasks_.erase(first);
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable_any cv_;  // _any: its waits end on the jthread's stop request
  std::multimap<Clock::time_point, std::function<void()>> tasks_;
  std::jthread thread_;  // last: starts after the members it uses, stops and joins first
};

}  // namespace shotsync
