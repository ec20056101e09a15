// ManifestBuckets: the manifest's throttle table as the BucketStore that
// Throttle shares across processes on this host (sync, pull, team, push).
#pragma once

#include <string_view>

#include "shotsync/manifest.hpp"
#include "shotsync/throttle.hpp"

namespace shotsync {

class ManifestBuckets : public BucketStore {
 public:
  explicit ManifestBuckets(Manifest& m) : m_(m) {}
  Result<double> Take(std::string_view key, double rate, double burst, double now) override {
    return m_.TakeToken(key, rate, burst, now);
  }
  Result<std::pair<int, double>> Reserve(std::string_view key, double rate, double burst, int count,
                                         double now) override {
    return m_.ReserveTokens(key, rate, burst, count, now);
  }
  Status Pause(std::string_view key, double until) override { return m_.PauseBucket(key, until); }

 private:
  Manifest& m_;
};

}  // namespace shotsync
