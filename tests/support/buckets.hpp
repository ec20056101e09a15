// BucketStores for tests of the throttle and the transfer engine: one in
// memory with the manifest's semantics, and one whose calls can be held at a
// gate (a manifest whose write lock another process holds).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "shotsync/throttle.hpp"

namespace shotsync::testing {

// In-memory BucketStore with the manifest's semantics (Manifest::TakeToken).
class MemoryBuckets : public BucketStore {
 public:
  Result<double> Take(std::string_view key, double rate, double burst, double now) override {
    std::lock_guard lock(mu_);
    ++takes;
    if (fail) return Status(shotsync::Code::kIo, "store down");
    auto [taken, wait] = TakeLocked(key, rate, burst, now, 1, false);
    return taken == 1 ? 0.0 : wait;
  }
  Result<std::pair<int, double>> Reserve(std::string_view key, double rate, double burst, int count,
                                         double now) override {
    std::lock_guard lock(mu_);
    ++reserves;
    if (fail) return Status(shotsync::Code::kIo, "store down");
    return TakeLocked(key, rate, burst, now, count, true);
  }
  Status Pause(std::string_view key, double until) override {
    std::lock_guard lock(mu_);
    auto [it, fresh] = rows_.try_emplace(std::string(key), Row{0, until, until});
    it->second.tokens = std::min(it->second.tokens, 0.0);
    it->second.paused_until = std::max(it->second.paused_until, until);
    ++pauses;
    return Status::Ok();
  }
  double paused_until(const std::string& key) {
    std::lock_guard lock(mu_);
    return rows_.count(key) ? rows_[key].paused_until : 0;
  }
  std::atomic<int> takes{0}, reserves{0}, pauses{0};
  std::atomic<bool> fail{false};

 private:
  struct Row {
    double tokens, refilled_at, paused_until;
  };
  // Manifest::TakeToken / ReserveTokens semantics.
  std::pair<int, double> TakeLocked(std::string_view key, double rate, double burst, double now, int count,
                                    bool reserve) {
    burst = std::max(burst, 1.0);
    auto [it, fresh] = rows_.try_emplace(std::string(key), Row{burst, now, 0});
    Row& r = it->second;
    if (now > r.refilled_at) {
      r.tokens = std::min(burst, r.tokens + (now - r.refilled_at) * rate);
      r.refilled_at = now;
    }
    if (r.paused_until > 0 && now < r.paused_until) return {0, r.paused_until - now};
    if (r.paused_until > 0) {
      r.tokens = std::max(r.tokens, 1.0);
      r.paused_until = 0;
    }
    const double first = std::max(0.0, (1.0 - r.tokens) / rate);
    if (!reserve && r.tokens < count) return {0, first};
    r.tokens -= count;
    return {count, first};
  }
  std::mutex mu_;
  std::map<std::string, Row> rows_;
};

// A store whose calls can be held at a gate, as a manifest whose write lock
// another process holds: shut() makes every call wait inside until open().
class GatedBuckets : public MemoryBuckets {
 public:
  Result<double> Take(std::string_view key, double rate, double burst, double now) override {
    Gate();
    return MemoryBuckets::Take(key, rate, burst, now);
  }
  Result<std::pair<int, double>> Reserve(std::string_view key, double rate, double burst, int count,
                                         double now) override {
    Gate();
    return MemoryBuckets::Reserve(key, rate, burst, count, now);
  }
  Status Pause(std::string_view key, double until) override {
    Gate();
    return MemoryBuckets::Pause(key, until);
  }
  void shut() {
    std::lock_guard lock(gate_mu_);
    open_ = false;
  }
  void open() {
    {
      std::lock_guard lock(gate_mu_);
      open_ = true;
    }
    gate_cv_.notify_all();
  }
  // Blocks until a call is waiting at the shut gate.
  void wait_stuck() {
    std::unique_lock lock(gate_mu_);
    gate_cv_.wait(lock, [&] { return stuck_ > 0; });
  }

 private:
  void Gate() {
    std::unique_lock lock(gate_mu_);
    ++stuck_;
    gate_cv_.notify_all();
    gate_cv_.wait(lock, [&] { return open_; });
    --stuck_;
  }
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool open_ = true;
  int stuck_ = 0;
};

}  // namespace shotsync::testing
