// Planner: from folders on disk to an exact plan (architecture §1-3).
//
// For each configured root it walks the folder (Scanner), compares every file
// with its manifest row (Differ: unchanged size, mtime_ns and inode means
// unchanged, and the file is not read), hashes only new or changed files
// (Hasher, in parallel, bounded), records stats and hashes in the manifest,
// and decides per file:
//   upload    not yet on Shootbin
//   revision  on Shootbin, content changed since the last upload
//   skip      on Shootbin with this content (or a duplicate, with dedupe)
//   rejected  over 10 MiB (unless its root fits JPEGs: shotsync/fit.hpp),
//             empty, unreadable, or a path clash between two
//             roots feeding one album (whether the bytes are an image is the
//             server's decision)
//   adopt / move / conflict   see Action (decided by the caller's
//             resolve_upload against the album index)
// Files gone from disk are marked missing in the manifest (never deleted
// remotely). Decisions stream out through a callback as they are made, so a
// sync can start uploading before the walk ends and memory stays flat.
//
// A second plan with nothing changed on disk reads no file content.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "shotsync/config.hpp"
#include "shotsync/manifest.hpp"
#include "shotsync/status.hpp"

namespace shotsync {

class FileFilter;
class LiveStats;

// kAdopt: the album already holds a photo of this name: recorded as synced
// with that photo, not uploaded. kMove: the content of a synced file that
// vanished from its old path: the remote photo follows it. kConflict: a name
// the server cannot tell from another one (or a size that differs from the
// album's photo of that name): reported, not sent, decided again next run.
enum class Action { kUpload, kRevision, kSkip, kRejected, kAdopt, kMove, kConflict };
std::string_view ActionName(Action a) noexcept;

struct PlanItem {
  Action action = Action::kSkip;
  std::string reason;  // why this action, one line
  std::size_t root_index = 0;  // into Config::roots
  FileRecord file;     // the manifest row as recorded by this plan
  std::string abs_path;
};

struct PlanStats {
  std::int64_t upload = 0, revision = 0, skip = 0, rejected = 0;
  std::int64_t adopt = 0, moved = 0, conflict = 0;
  std::int64_t missing = 0;   // files gone from disk since the last run
  std::int64_t hashed = 0;    // files whose content was read
  std::int64_t scanned = 0;   // files seen on disk
  std::uint64_t bytes_to_send = 0;
  std::int64_t errors = 0;    // unreadable directories and similar walk problems
  std::int64_t warnings = 0;  // dangling symlinks, symlink loops (Code::kSkipped): not failures
  std::int64_t acknowledged = 0;  // rejected, but the user said so (`shotsync ignore`): not failures
};

// One file of a root, for plans that do not walk (push).
struct PlanTarget {
  std::size_t root_index = 0;  // into Config::roots
  std::string rel_path;        // '/'-separated, relative to the root
};

struct PlanOptions {
  int hash_threads = 0;  // 0 = hardware concurrency
  bool dedupe = false;
  // Set when on_item may block (a sync handing work to the transfer engine):
  // the plan's manifest batch is then committed before each upload/revision
  // item goes out, so no write lock is held while the caller waits.
  bool flush_before_emit = false;
  std::stop_token cancel;  // stop early (SIGINT)
  // false: files unchanged on disk whose decision is skip or rejected are
  // counted in PlanStats but not handed to on_item (a no-op resync of a large
  // library then costs a stat and a manifest row per file, nothing more).
  bool emit_unchanged = true;
  // Non-empty: plan only these files (a hook's `push`). Nothing is walked,
  // nothing else is marked missing; a listed file that is not on disk is an
  // error for that file.
  std::vector<PlanTarget> only;
  // Rejected files are decided again as if new (sync --retry-rejected).
  bool retry_rejected = false;
  // Called for each upload decision before it is counted or handed to
  // on_item, with the planner's batch committed: it may turn the item into
  // kAdopt, kMove or kConflict (reason set). May block (it may list the
  // album); runs on the planner's threads.
  std::function<void(PlanItem&)> resolve_upload;
  // Indexes into Config::roots not to plan at all (their target did not
  // resolve): not walked, nothing marked missing.
  std::vector<std::size_t> skip_roots;
  // The run's rclone-style filter: only the files it admits are planned,
  // and nothing is marked missing (the run did not look at everything).
  const FileFilter* filter = nullptr;
  // Counts the files the walk finds, as it finds them (a progress line).
  LiveStats* live = nullptr;
  // A file that must be sent whatever its bytes is not read by the plan: a
  // new one (no remote photo, and no synced file of its size that it could
  // have moved from) or a synced one whose size changed. Its row is written
  // with the new stat and no hash; the send hashes the bytes as it reads
  // them (docs/resume.md, "One read per changed photo"). Off for dedupe, for
  // files its root fits, and in studio mode (the registry compares hashes).
  bool send_unread = false;
};

using PlanItemFn = std::function<void(const PlanItem&)>;
// A problem that does not stop the plan: path and reason.
using PlanErrorFn = std::function<void(const std::string& path, const Status& status)>;

// The decision for one file from its manifest row (pure; used for files the
// differ found unchanged, and after hashing). `duplicate_of` is a synced file
// with the same content when dedupe is on.
// A rejected row stands only when this version refused it (rejected_by) and
// retry_rejected is off; a file over the size limit is always rejected,
// unless its root fits it (a JPEG re-encoded to fit: shotsync/fit.hpp).
Action Decide(const FileRecord& file, const FileRecord* duplicate_of, std::string& reason,
              bool retry_rejected = false);

// The root and relative path of a file named on the command line (absolute
// or relative to the working directory; symlinks resolved on both sides).
// kNotFound when no such file; kInvalidArgument when it lies under no
// configured root, or under an ignored name (IsIgnored).
Result<PlanTarget> LocateFile(const Config& config, const std::string& path);

// Runs the whole local pipeline. Fails only when the run cannot go on
// (manifest error, no root readable); per-file problems go to on_error and
// into rejected decisions.
Result<PlanStats> BuildPlan(const Config& config, Manifest& manifest, const PlanOptions& options,
                            const PlanItemFn& on_item, const PlanErrorFn& on_error);

}  // namespace shotsync
