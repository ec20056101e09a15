// Verify: the manifest against the disk (and, with `remote`, against
// Shootbin), for `shotsync verify`. Differences are listed; `repair` fixes
// the manifest side only, never a file and never the server, so that the
// next sync does the right thing:
//   missing on disk     marked missing (never deleted remotely)
//   reappeared, changed its hash is cleared and it is new again: the next
//                       plan reads it (remote id kept: a change is a revision)
//   missing on server   its remote id is forgotten: the next sync uploads it
// Everything else is reported only (jobs in flight are reconciled by the
// next sync; server-only photos are the studio's business; unreadable paths
// are never taken for missing).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shotsync/config.hpp"
#include "shotsync/manifest.hpp"
#include "shotsync/status.hpp"

namespace shotsync {

class SharedStore;

struct VerifyOptions {
  bool repair = false;
  bool remote = false;
  // Studio mode: --remote --repair also drops the photos the server lost
  // from the shared registry (else another host would take them as done);
  // the listings use the shared buckets.
  SharedStore* shared = nullptr;
};

struct Difference {
  enum Kind {
    kMissingOnDisk,    // recorded, gone from disk
    kReappeared,       // recorded missing, back on disk
    kChanged,          // size or mtime differ from the record
    kNotRegular,       // now a directory, fifo...
    kUnreadable,       // stat failed other than "no such file" (never repaired)
    kUnknownRoot,      // rows of a root no longer in the config
    kInFlight,         // a job not finished
    kMissingOnServer,  // recorded as uploaded, the server does not have it
    kServerOnly,       // on the server, not in the manifest
    kSizeDiffers,      // the server's size is not the size sent
  } kind;
  std::string path;
  std::string detail;
  bool repaired = false;
};
std::string_view DifferenceName(Difference::Kind kind) noexcept;

struct VerifyReport {
  std::vector<Difference> differences;
  std::int64_t files_checked = 0;   // manifest rows looked at
  std::int64_t remote_checked = 0;  // server photos looked at
  Status status;                    // ok, or why verify could not finish
};

VerifyReport Verify(const Config& config, Manifest& manifest, const VerifyOptions& options);

}  // namespace shotsync
