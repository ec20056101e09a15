// Batcher: a thread that takes whatever is queued when it gets to it (up to
// 256 items), handles the group with `commit` (one transaction: group
// commit), then runs `after` for each item, in queue order. Producers only
// queue; the queue is bounded, so they wait if the database falls far
// behind. Add() may be called from any thread but the batcher's own (a full
// queue would wait for itself).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include "shotsync/bounded_queue.hpp"
#include "shotsync/status.hpp"

namespace shotsync {

// A batch may wait a little for more items that are on their way: while
// `more_coming()` says so, for at most `max_wait` after its first item.
// Commits that do not sync (done rows) are cheap in time but not in CPU and
// log: each rewrites the pages it touches, and eight answers a few
// milliseconds apart otherwise make eight commits of the same pages.
struct Linger {
  std::chrono::microseconds max_wait{0};
  std::function<bool()> more_coming;  // any thread's; called by the batcher's
};

template <typename Item>
class Batcher {
 public:
  using CommitFn = std::function<Status(std::vector<Item>&)>;
  using AfterFn = std::function<void(Item&, const Status&)>;

  Batcher(CommitFn commit, AfterFn after, Linger linger = {})
      : commit_(std::move(commit)), after_(std::move(after)), linger_(std::move(linger)),
        thread_([this](std::stop_token stop) { Loop(stop); }) {}
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // False once finished: the item was not queued.
  bool Add(Item item) { return queue_.Push(std::move(item)); }

  // Records everything queued, then stops the thread (idempotent). The
  // jthread's destructor does the same.
  void Finish() {
    thread_.request_stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  static constexpr std::size_t kMaxBatch = 256;

  void Loop(std::stop_token stop) {
    // A stop closes the queue: what is queued is still handled, then Pop ends.
    std::stop_callback close(stop, [this] { queue_.Close(); });
    while (std::optional<Item> first = queue_.Pop()) {
      const auto deadline = std::chrono::steady_clock::now() + linger_.max_wait;
      std::vector<Item> batch;
      batch.push_back(std::move(*first));
      while (batch.size() < kMaxBatch) {
        std::optional<Item> more = queue_.TryPop();
        if (!more && linger_.more_coming && linger_.more_coming()) more = queue_.PopUntil(deadline);
        if (!more) break;
        batch.push_back(std::move(*more));
      }
      const Status st = commit_(batch);
      for (Item& item : batch) after_(item, st);
    }
  }

  CommitFn commit_;
  AfterFn after_;
  const Linger linger_;
  BoundedQueue<Item> queue_{1024};
  std::jthread thread_;  // last: starts after the members it uses, stops and joins first
};

}  // namespace shotsync
