// Batcher: a thread that takes whatever is queued when it gets to it (up to
// 256 items), handles the group with `commit` (one transaction: group
// commit), then runs `after` for each item, in queue order. Producers only
// queue; the queue is bounded, so they wait if the database falls far
// behind. Add() may be called from any thread but the batcher's own (a full
// queue would wait for itself).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include "shotsync/bounded_queue.hpp"
#include "shotsync/status.hpp"

namespace shotsync {

template <typename Item>
class Batcher {
 public:
  using CommitFn = std::function<Status(std::vector<Item>&)>;
  using AfterFn = std::function<void(Item&, const Status&)>;

  Batcher(CommitFn commit, AfterFn after)
      : commit_(std::move(commit)), after_(std::move(after)),
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
      std::vector<Item> batch;
      batch.push_back(std::move(*first));
      while (batch.size() < kMaxBatch) {
        std::optional<Item> more = queue_.TryPop();
        if (!more) break;
        batch.push_back(std::move(*more));
      }
      const Status st = commit_(batch);
      for (Item& item : batch) after_(item, st);
    }
  }

  CommitFn commit_;
  AfterFn after_;
  BoundedQueue<Item> queue_{1024};
  std::jthread thread_;  // last: starts after the members it uses, stops and joins first
};

}  // namespace shotsync
