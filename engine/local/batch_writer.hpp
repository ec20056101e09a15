// BatchWriter: funnels the plan's manifest writes into short transactions:
// at most 256 rows or 100 ms each, so that another process (a hook's push)
// never waits long for the write lock, and a crash loses at most one short
// batch of stats (which only costs re-hashing those files). Thread-safe: the
// differ and the hash pipeline write through one BatchWriter.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string_view>

#include "shotsync/manifest.hpp"
#include "shotsync/status.hpp"

namespace shotsync::local {

class BatchWriter {
 public:
  explicit BatchWriter(Manifest& m) : m_(m) {}
  ~BatchWriter() { (void)Flush(); }
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  Status Put(FileRecord& row);
  Status Missing(std::int64_t root_id, std::string_view rel);
  // Commits the open transaction, if any.
  Status Flush();

 private:
  Status OpenLocked();
  Status MaybeCommitLocked();

  Manifest& m_;
  std::mutex mu_;
  bool open_ = false;
  int rows_ = 0;
  std::chrono::steady_clock::time_point opened_;
};

}  // namespace shotsync::local
