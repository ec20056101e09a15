// PlanRun (engine-only): one BuildPlan, root by root. Its members are
// defined by stage:
//   plan_run.cpp  Run, PlanRoot (the walker / differ / hash threads), the
//                 hash orchestration, vanished folders, push's StatListed,
//                 Emit (the way out to the caller); the thread table
//   differ.cpp    OnDir and Decided: each file against its manifest row, and
//                 Decide (public, pure)
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "local/batch_writer.hpp"
#include "shotsync/bounded_queue.hpp"
#include "shotsync/hasher.hpp"
#include "shotsync/planner.hpp"
#include "shotsync/scanner.hpp"

namespace shotsync::local {

// "12.3 MB", for reasons.
std::string Megabytes(std::uint64_t bytes);
// "over the upload limit of 10.5 MB (10 MiB): 11.2 MB"
std::string OverUploadLimit(std::uint64_t bytes);

struct HashJob {
  std::size_t root_index;
  FileRecord row;  // stat from the walk; hash etc. from the manifest if known
  int attempts = 0;  // -1: decided without reading the file
};

// One directory as the walker hands it to the differ.
struct WalkedDir {
  std::string path;
  std::vector<ScanEntry> files;
};

class PlanRun {
 public:
  PlanRun(const Config& c, Manifest& m, const PlanOptions& o, const PlanItemFn& item,
          const PlanErrorFn& err)
      : config_(c), manifest_(m), options_(o), on_item_(item), on_error_(err), writer_(m) {}

  Result<PlanStats> Run();

 private:
  std::string AbsPath(std::size_t root_index, std::string_view rel) const {
    return config_.roots[root_index].path + "/" + std::string(rel);
  }
  bool Cancelled() const { return options_.cancel.stop_requested(); }
  void Fail(Status st);
  void ReportError(const std::string& path, const Status& st);
  void Emit(std::size_t root_index, Action action, std::string reason, const FileRecord& row);

  // --- one root (plan_run.cpp) -------------------------------------------------
  Status PlanRoot(std::size_t root_index);
  int HashThreads() const;
  // Walker thread: the root's directories into `walked`, then closes it.
  Status Walk(const RootConfig& rc, BoundedQueue<WalkedDir>& walked);
  // Hashes every job `source` gives, on `threads` threads; files that changed
  // while being read go to `again`.
  void HashJobs(int threads, const std::function<std::optional<HashJob>()>& source,
                std::vector<HashJob>& again);
  void OnHashed(HashJob&& job, Result<HashOutcome>&& outcome, std::vector<HashJob>& again);
  Status MarkVanishedDirs(std::int64_t root_id);
  void StatListed(std::size_t root_index, BoundedQueue<HashJob>& queue);

  // --- the differ (differ.cpp) -------------------------------------------------
  void OnDir(std::size_t root_index, std::string_view dir, std::span<const ScanEntry> files,
             BoundedQueue<HashJob>& queue, bool complete = true);
  Result<std::vector<FileRecord>> KnownRows(std::int64_t root_id, std::string_view dir,
                                            std::span<const ScanEntry> files, bool complete);
  void HandOn(std::size_t root_index, std::vector<HashJob>& to_hash, BoundedQueue<HashJob>& queue);
  std::optional<std::string> PathClash(std::size_t root_index, std::string_view rel);
  Result<bool> SendsUnread(std::size_t root_index, const FileRecord* before, const FileRecord& now);
  void Decided(std::size_t root_index, const FileRecord& row);

  const Config& config_;
  Manifest& manifest_;
  const PlanOptions& options_;
  const PlanItemFn& on_item_;
  const PlanErrorFn& on_error_;
  BatchWriter writer_;
  std::mutex mu_;  // guards stats_, fatal_, emitting_
  // One on_item_ call at a time, in the order the items were counted; the
  // call itself runs without mu_ (see Emit).
  std::condition_variable emit_turn_;
  bool emitting_ = false;
  PlanStats stats_;
  Status fatal_;
  std::atomic<bool> failed_{false};
  std::vector<std::int64_t> root_ids_;
  std::unordered_set<std::string> visited_;  // differ thread only, then the caller
  // (root id, rel_path) of rejections the user acknowledged; read-only once Run starts.
  std::set<std::pair<std::int64_t, std::string>> acknowledged_;
};

}  // namespace shotsync::local
