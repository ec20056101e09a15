// FileFilter: rclone's filter flags for one run (--include, --exclude,
// --filter, --filter-from, --max-age, --min-age, --max-size, --min-size),
// applied by the walk on top of each root's own include and ignore lists.
// A file the filter leaves out is not part of the run at all: not planned,
// not sent, and not marked missing (a filtered run says nothing about the
// files it did not look at).
//
// Globs follow rclone's rules (rclone.org/filtering):
//   - a pattern starting with '/' matches from the root; any other matches
//     the end of the path at a '/' boundary ("*.jpg" matches "a/b/x.jpg")
//   - '*' matches within one path segment, '**' across '/', '?' one
//     character but not '/', "[a-z]" / "[!a-z]" classes, "{a,b}" either,
//     '\' escapes the next character
//   - a pattern ending in '/' is a directory rule: an excluded directory is
//     not entered
// Rules are tried in order and the first that matches decides: every
// --include, then every --exclude, then --filter and --filter-from rules
// ("+ glob", "- glob", "!" clears the rules so far; '#' and ';' start
// comments); when any --include is given, everything else is excluded (an
// implicit "- **" at the end). Case-sensitive unless ignore_case.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shotsync/status.hpp"

namespace shotsync {

// The flags as typed (each value is checked by FileFilter::Make).
struct FilterSpec {
  std::vector<std::string> include, exclude, filter, filter_from;
  std::string max_age, min_age;    // "24h", "7d", "2w", "1M", "1y", or a date "2026-01-31" / "2026-01-31 18:00:00"
  std::string max_size, min_size;  // "10M" (MiB), "500k" (KiB), "1G", "10MB" (decimal); a bare number is KiB, as in rclone
  bool ignore_case = false;

  bool empty() const {
    return include.empty() && exclude.empty() && filter.empty() && filter_from.empty() && max_age.empty() &&
           min_age.empty() && max_size.empty() && min_size.empty();
  }
};

// rclone's size spellings: B, k/K/KiB, M/MiB, G/GiB, T/TiB (binary), kB/KB,
// MB, GB, TB (decimal); a bare number is KiB. nullopt when not a size.
std::optional<std::int64_t> ParseSizeSuffix(std::string_view text);

// rclone's duration spellings: ms, s, m, h, d, w, M (30 d), y (365 d), and
// combinations ("1h30m"); a bare number is seconds. nullopt when not one.
std::optional<double> ParseAgeSeconds(std::string_view text);

class FileFilter {
 public:
  // Reads the --filter-from files and checks every value; `now_s` (Unix
  // seconds) is what the ages count back from. Errors name the flag and the
  // value (or the file and line).
  static Result<FileFilter> Make(const FilterSpec& spec, double now_s);

  // rel_path: '/'-separated, relative to the root. mtime_ns: Unix ns.
  bool Admits(std::string_view rel_path, std::uint64_t size, std::int64_t mtime_ns) const;
  // A directory the walk may enter (only directory rules decide; rel_path
  // without a trailing '/').
  bool AdmitsDir(std::string_view rel_path) const;

  struct Rule {
    bool include = false;
    bool anchored = false;  // started with '/'
    bool dir = false;       // ended with '/'
    std::vector<std::string> alternatives;  // the glob with its {a,b} expanded, no leading/trailing '/'
  };

 private:
  bool Matches(const Rule& rule, std::string_view path) const;

  std::vector<Rule> rules_;
  bool ignore_case_ = false;
  std::optional<std::int64_t> min_mtime_ns_, max_mtime_ns_;  // from max_age / min_age
  std::optional<std::uint64_t> max_size_, min_size_;
};

}  // namespace shotsync
