// A service session: the TransferEngine, the Throttle (sharing the
// manifest's bucket table with the other processes on this host when a
// manifest is given, or the studio's shared buckets with every host) and the client of one service, wired from a Config.
// Every command that talks to a service builds one of these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "shotsync/config.hpp"
#include "shotsync/headshotpro.hpp"
#include "shotsync/manifest.hpp"
#include "shotsync/shared_store.hpp"
#include "shotsync/shootbin.hpp"
#include "shotsync/throttle.hpp"
#include "shotsync/transfer.hpp"

namespace shotsync {

struct SessionOptions {
  int jobs = 2;                    // transfers at once, and connections per host
  // Bandwidth limit (uploads: up, downloads: down), shared through the
  // manifest's bucket table with the profile's other processes.
  BwLimit bwlimit;
  std::size_t queue_capacity = 0;  // 0 = the engine's default
  // Studio mode: the buckets are the shared store's (every host's), not the
  // manifest's (this host's). Must outlive the session.
  SharedStore* shared = nullptr;
};

namespace detail {
// The parts both sessions share. The bucket store comes first: the
// throttle uses it to its end.
class SessionBase {
 protected:
  SessionBase(const Config& config, Manifest* bucket_db, const SessionOptions& options,
              std::string_view service, const std::string& token, int rpm);

  std::unique_ptr<BucketStore> buckets_;  // null: this process's bucket only
  // The bandwidth buckets': always this host's manifest (a studio's hosts
  // each have their own uplink); null without a limit or a manifest.
  std::unique_ptr<BucketStore> bw_buckets_;
  TransferEngine engine_;
  Throttle throttle_;

 public:
  TransferEngine& engine() { return engine_; }
  Throttle& throttle() { return throttle_; }
};
}  // namespace detail

// bucket_db (may be null) must outlive the session.
class ShootbinSession : public detail::SessionBase {
 public:
  ShootbinSession(const Config& config, Manifest* bucket_db, const SessionOptions& options = {});
  ShootbinClient& client() { return client_; }

 private:
  ShootbinClient client_;
};

class HeadshotProSession : public detail::SessionBase {
 public:
  HeadshotProSession(const Config& config, Manifest* bucket_db, const SessionOptions& options = {});
  HeadshotProClient& client() { return client_; }

 private:
  HeadshotProClient client_;
};

}  // namespace shotsync
