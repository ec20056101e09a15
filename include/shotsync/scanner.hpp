// Scanner: walks a root folder one directory at a time and reports the
// regular files in it with their stat (size, mtime in ns, inode).
//
// Memory is bounded by the largest single directory plus the depth of the
// tree, never by the size of the tree: each directory's entries are handed to
// the caller and dropped before the walk goes on. Uses openat/fstatat on
// directory fds (no path re-resolution per file). Symlinks are followed;
// a symlink loop, an unreadable directory or a vanished entry is reported
// through on_error and skipped, and the walk goes on. Dangling symlinks and
// symlink loops are reported as Code::kSkipped: permanent conditions the
// user may leave as they are (warnings, not failures).
//
// Not thread-safe per object; use one Scanner per walk.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shotsync/status.hpp"

namespace shotsync {

class FileFilter;

struct ScanEntry {
  std::string name;  // file name inside its directory (raw bytes)
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t inode = 0;
};

// Folders nested deeper than this below the root are reported and skipped.
inline constexpr std::size_t kMaxScanDepth = 256;

struct ScanOptions {
  // fnmatch(3) globs; a glob without '/' matches the file or directory name,
  // one with '/' matches the path relative to the root (FNM_PATHNAME: '*'
  // does not cross '/'; a leading '/' is allowed and anchors at the root).
  // An ignored directory is not entered.
  std::vector<std::string> ignore;
  // Hidden names (leading '.') and temporary downloads (*.part) are always skipped.
  // fnmatch(3) globs for file names, case-insensitive: only files that match
  // one are candidates (folders are always entered). Empty: every file.
  std::vector<std::string> include;
  // The run's rclone-style filter (--include, --max-age, ...), applied on
  // top of the two lists above; nullptr = none.
  const FileFilter* filter = nullptr;
};

// True when a file named `name` is a candidate under options.include.
bool IsIncluded(std::string_view name, const ScanOptions& options);

// True when `name` (inside directory `dir_rel`) is to be skipped.
bool IsIgnored(std::string_view dir_rel, std::string_view name, const ScanOptions& options);

class Scanner {
 public:
  // dir_rel: the directory relative to the root ("" for the root), '/'-separated.
  // files: its regular files, sorted by name.
  using DirFn = std::function<void(std::string_view dir_rel, std::span<const ScanEntry> files)>;
  // path: the offending path (absolute); status: the reason.
  using ErrorFn = std::function<void(const std::string& path, const Status& status)>;

  // Walks `root`, depth first, subfolders in name order; on_dir is called once
  // per readable folder (also with no files). A folder that cannot be read as
  // a whole is reported and on_dir is not called for it (a partial listing
  // would look like deletions). Returns an error only when the root itself
  // cannot be read (missing folder, not a directory, permission denied).
  Status Walk(const std::string& root, const ScanOptions& options, const DirFn& on_dir,
              const ErrorFn& on_error);
};

// Joins a directory and a name into a rel_path ("" + "a.jpg" -> "a.jpg").
std::string JoinRel(std::string_view dir_rel, std::string_view name);

}  // namespace shotsync
