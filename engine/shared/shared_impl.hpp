// SharedStore's internals, shared by its files (store.cpp: connection,
// schema, owners, buckets, runs; registry.cpp: photos and downloads).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "shared/pg.hpp"
#include "shotsync/shared_store.hpp"

namespace shotsync {

struct SharedStore::Impl {
  SharedOptions options;
  std::unique_ptr<pg::Session> db;
  // The owner lease's renewals have a connection of their own: on `db` they
  // waited behind whatever claim or bucket transaction held it (one waiting
  // on another host's row lock, or a slow loaded server), and a lease ran
  // out while its host was working. Opened by RegisterOwner.
  std::mutex lease_mu;
  std::unique_ptr<pg::Session> lease_db;
  std::string host;
};

}  // namespace shotsync
