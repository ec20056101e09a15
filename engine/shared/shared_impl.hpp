// SharedStore's internals, shared by its files (store.cpp: connection,
// schema, owners, buckets, runs; registry.cpp: photos and downloads).
#pragma once

#include <memory>
#include <string>

#include "shared/pg.hpp"
#include "shotsync/shared_store.hpp"

namespace shotsync {

struct SharedStore::Impl {
  SharedOptions options;
  std::unique_ptr<pg::Session> db;
  std::string host;
};

}  // namespace shotsync
