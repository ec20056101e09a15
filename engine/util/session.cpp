#include "shotsync/session.hpp"

#include <chrono>

#include "store/manifest_buckets.hpp"

namespace shotsync {
namespace {

TransferOptions EngineOptions(const Config& config, const SessionOptions& options, BucketStore* bw_store) {
  TransferOptions t{.max_concurrent = options.jobs,
                    .max_per_host = options.jobs,
                    .bwlimit = options.bwlimit,
                    .bw_store = bw_store,
                    .ca_file = config.ca_file,
                    .stall_timeout = std::chrono::seconds(config.stall_timeout)};
  if (options.queue_capacity > 0) t.queue_capacity = options.queue_capacity;
  return t;
}

std::unique_ptr<BucketStore> Buckets(Manifest* bucket_db, const SessionOptions& options) {
  if (options.shared) return std::make_unique<SharedBuckets>(*options.shared);
  if (bucket_db) return std::make_unique<ManifestBuckets>(*bucket_db);
  return nullptr;
}

std::unique_ptr<BucketStore> BandwidthBuckets(Manifest* bucket_db, const SessionOptions& options) {
  if (!bucket_db || !options.bwlimit.limited()) return nullptr;
  return std::make_unique<ManifestBuckets>(*bucket_db);
}

}  // namespace

namespace detail {

SessionBase::SessionBase(const Config& config, Manifest* bucket_db, const SessionOptions& options,
                         std::string_view service, const std::string& token, int rpm)
    : buckets_(Buckets(bucket_db, options)),
      bw_buckets_(BandwidthBuckets(bucket_db, options)),
      engine_(EngineOptions(config, options, bw_buckets_.get())),
      throttle_(Throttle::Options{
          .key = BucketKey(service, token), .rpm = double(rpm), .shared = buckets_.get()}) {}

}  // namespace detail

ShootbinSession::ShootbinSession(const Config& config, Manifest* bucket_db,
                                 const SessionOptions& options)
    : SessionBase(config, bucket_db, options, "shootbin", config.shootbin.token,
                  config.shootbin.rpm),
      client_(engine_, throttle_, config.shootbin.base_url, config.shootbin.token,
              config.shootbin.token_source) {}

HeadshotProSession::HeadshotProSession(const Config& config, Manifest* bucket_db,
                                       const SessionOptions& options)
    : SessionBase(config, bucket_db, options, "headshotpro", config.headshotpro.key,
                  config.headshotpro.rpm),
      client_(engine_, throttle_, config.headshotpro.base_url, config.headshotpro.key,
              config.headshotpro.key_source) {}

}  // namespace shotsync
