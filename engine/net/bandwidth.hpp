// ByteBucket: one direction's bandwidth limit as a token bucket of bytes,
// for the transfer loop (engine/net/transfer.cpp; docs/architecture.md,
// "Bandwidth").
//
// It is a Throttle whose token is kChunk bytes, so everything the request
// throttle does for sharing comes with it: the bucket lives in the manifest's
// throttle table when a BucketStore is given (a push beside a sync stay
// within one limit together), a keeper thread reserves from the store ahead
// of need, and the transfer loop never touches SQLite. The Throttle holds
// two tokens, so a chunk asked for a little late (the loop was busy) is not
// lost: over a run the bytes granted stay within rate * time + 2 chunks and
// reach the rate whenever transfers want it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "shotsync/throttle.hpp"

namespace shotsync::net {

class ByteBucket {
 public:
  // Bytes per token: large enough that even 20 MB/s costs a few hundred
  // grants a second, small enough that two of them are a short burst.
  static constexpr std::int64_t kChunk = 64 << 10;

  ByteBucket(std::string key, BucketStore* store, std::function<double()> clock)
      : key_(std::move(key)), store_(store), clock_(std::move(clock)) {}

  // bytes/s, 0 = none. The first limit creates the Throttle (and its keeper);
  // `on_create` then registers the loop's wake-up with it.
  void SetRate(std::int64_t bytes_per_s, const std::function<void(Throttle&)>& on_create) {
    rate_ = std::max<std::int64_t>(0, bytes_per_s);
    if (rate_ == 0) return;
    const double rpm = double(rate_) / double(kChunk) * 60.0;
    if (throttle_) {
      throttle_->SetRpm(rpm);
      return;
    }
    throttle_ = std::make_unique<Throttle>(Throttle::Options{
        .key = key_,
        .rpm = rpm,
        .safety = 1.0,  // the limit is the user's figure, not a server's to stay under
        .shared = store_,
        .clock = clock_,
        .notice = [](const std::string&) {},  // no server feedback: nothing to say
        .name = "bwlimit",
        .burst = 2});
    if (on_create) on_create(*throttle_);
  }
  std::int64_t rate() const { return rate_; }
  bool limited() const { return rate_ > 0; }
  const Throttle* throttle() const { return throttle_.get(); }

  // One chunk: nullopt = taken (kChunk more bytes may go), else when to ask
  // again (the wake-up may come earlier). Needs limited().
  std::optional<std::chrono::milliseconds> TakeChunk() { return throttle_->TryAcquire(); }

 private:
  std::string key_;
  BucketStore* store_;
  std::function<double()> clock_;
  std::int64_t rate_ = 0;
  std::unique_ptr<Throttle> throttle_;
};

}  // namespace shotsync::net
