#include "shotsync/live.hpp"

#include <utility>

namespace shotsync {

LiveStats::Snapshot LiveStats::Read() const {
  Snapshot s;
  s.found = found_.load(std::memory_order_relaxed);
  s.retries = retries_.load(std::memory_order_relaxed);
  s.retrying = retrying_.load(std::memory_order_relaxed);
  s.confirming = confirming_.load(std::memory_order_relaxed);
  s.bwlimit = bwlimit_.load(std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  s.phase = phase_;
  s.retry_cause = cause_;
  if (source_) s.throttle = source_();
  return s;
}

void LiveStats::SetPhase(std::string phase) {
  std::lock_guard lock(mu_);
  phase_ = std::move(phase);
}

void LiveStats::RetryScheduled(std::string cause) {
  retries_.fetch_add(1, std::memory_order_relaxed);
  retrying_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  cause_ = std::move(cause);
}

void LiveStats::SetThrottleSource(std::function<Throttle()> source) {
  std::lock_guard lock(mu_);
  source_ = std::move(source);
}

}  // namespace shotsync
