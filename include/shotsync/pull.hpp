// Pull: downloads the generated headshots of a HeadshotPro organization into
// <dest>/<layout> (default "{member}/{photo}.{ext}"), incrementally.
//
// - Listing (one lister thread): finished members -> their active models
//   (matched by email, plus the member's modelId) -> photos (include main or
//   all), or only favorites (per model with --member, else org-wide).
// - Downloads run through the TransferEngine, at most `jobs` at once, into
//   <file>.part; an interrupted file is resumed with Range from the .part
//   size, the length is checked against Content-Length / Content-Range, the
//   file is fsync'ed (by a small finisher pool) and renamed into place; the
//   directories are fsync'ed before the manifest records the ids as done.
// - Signed URLs: when expiresAt is past or close (closer than min(5 min, a
//   quarter of the lifetime seen at listing)) or the CDN answers 401/403/410,
//   that model's photos are listed again and the download retried; a refusal
//   right after the listing it caused is a real error, not a loop.
// - Incremental: a photo is skipped ("already here") when its file is in
//   THIS destination with the size the manifest recorded; a row written for
//   another destination proves nothing here. A photo downloaded into this
//   destination keeps the path it was downloaded to, even when the layout
//   (or a member's folder name) has changed since: only new photos use the
//   current layout. A done file deleted from the folder it was fetched to is
//   fetched again only with `restore`.
// - Names from the server are sanitized (SanitizeComponent) and every
//   directory is checked with realpath to lie inside dest.
// - A local I/O error (disk full, unwritable dest) stops the run with one
//   clear line; .part files stay for the next run.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "shotsync/config.hpp"
#include "shotsync/manifest.hpp"
#include "shotsync/status.hpp"

namespace shotsync {

class SharedStore;

struct HttpResponse;

struct PullOptions {
  std::string member;       // member id or email; "" = every finished member
  std::string model;        // model id; "" = every model of those members (else only its photos)
  bool favorites = false;   // favorites only
  bool restore = false;     // fetch again files deleted locally
  bool dry_run = false;     // list and report, download nothing
  int jobs = 0;             // concurrent downloads, 0 = config.jobs
  std::string include;      // "main" | "all"; "" = config
  int max_attempts = 6;     // per file per run, for transient failures
  std::string command = "pull";
  std::stop_token stop;   // finish running downloads, start no more
  std::stop_token abort;  // cancel running downloads too (.part kept)
  // Studio mode: download claims per shared destination, the organization's
  // buckets and the run record are shared with the other hosts.
  SharedStore* shared = nullptr;
};

// Delivered on the calling thread of RunPull.
struct PullEvent {
  // kQueued: a file will be downloaded (the total grows); kListed: the
  // listing is complete, the total is final. kPlanned (dry run): reason is
  // "would download" or "would update" (a local file would be replaced).
  enum Kind { kDownloaded, kSkipped, kPlanned, kFailed, kQueued, kListed } kind = kDownloaded;
  std::string path;    // destination file (or what failed)
  std::uint64_t bytes = 0;
  std::string reason;
};
using PullEventFn = std::function<void(const PullEvent&)>;

struct PullFailure {
  std::string what;
  std::string reason;
};

struct PullReport {
  std::int64_t members = 0, models = 0, listed = 0;  // what the listing found
  std::int64_t downloaded = 0, skipped = 0, planned = 0;
  std::int64_t planned_updates = 0;  // of planned: would replace a local file (dry run)
  std::int64_t not_restored = 0;  // done before, deleted locally, no --restore
  std::int64_t gone = 0;          // listed, then gone from the server (404 / no longer listed)
  std::int64_t failed = 0;
  std::int64_t refreshes = 0;     // listings made again for fresh signed URLs
  std::int64_t resumed = 0;       // downloads continued from a .part
  std::int64_t retries = 0;
  std::uint64_t bytes = 0;        // body bytes received
  double seconds = 0;
  std::int64_t requests = 0, throttled_429 = 0;
  double throttle_wait_s = 0;  // time the request throttle held requests back
  std::vector<PullFailure> failures;
  Status status;  // ok; kCancelled when stopped; the fatal error otherwise
};

PullReport RunPull(const Config& config, Manifest& manifest, const PullOptions& options,
                   const PullEventFn& on_event);

// 0 all done; 1 some files failed; 2 config; 3 auth; 5 interrupted.
int PullExitCode(const PullReport& report);

// --- Name safety (exposed for tests) -----------------------------------------

// One path component from a server-supplied string: no '/', '\\', NUL or
// other control characters, no characters Windows shares refuse, no leading
// dots or spaces (so never "." or ".."), no trailing dots or spaces, not a
// reserved device name (CON, NUL, COM1...), valid UTF-8, at most max_bytes.
// Empty after cleaning -> `fallback` (cleaned the same way), else "_".
std::string SanitizeComponent(std::string_view raw, std::string_view fallback = {},
                              std::size_t max_bytes = 100);

// The extension of a URL's path ("jpg"), lower case, [a-z0-9]{1,5}; "jpg" otherwise.
std::string UrlExtension(std::string_view url);

// Checks a layout pattern from the config: relative, no "." / ".." segment,
// only known {variables}, contains {photo}.
Status ValidateLayout(std::string_view layout);

// One downloaded file as the server names it (raw values).
struct LayoutSubject {
  std::string_view member_id, member_name, email, team, model_id, model_title, photo_id, variant, url;
};
// The layout's variables for that file, each made safe with SanitizeComponent
// (with fallbacks: member name -> email -> id, team -> "no-team"). {photo} is
// the photo id, with "-<8 hex>" (a hash of the raw id) appended when the id
// had to be sanitised or has upper case, so that two ids never share a name,
// not even on a case-insensitive file system. A variant other than "main" is
// appended to {photo} when the layout has no {variant}.
std::map<std::string, std::string> LayoutValues(const LayoutSubject& s, bool variant_in_layout);

// A team member as {member} names them (raw values from the server).
struct LayoutMember {
  std::string id, name, email;
};
// The {member} value of every member, by id: the name (-> email -> id, as in
// LayoutValues), made unique ignoring case (macOS, Windows and NAS shares
// ignore it; SimpleCaseFold): members whose names are equal after sanitising
// or folding each get " (<email>)", or " (<id>)" when the email does not tell
// them apart. It depends only on the set of members, never on their order.
std::map<std::string, std::string> MemberFolders(const std::vector<LayoutMember>& members);
// True when {member} must come from MemberFolders: the layout has {member}
// and nothing else that gives each member its own path ({member_id},
// {email}, {model}: such layouts, e.g. the old default, are left as they were).
bool LayoutNeedsMemberFolders(std::string_view layout);

// Fills in the layout; every value is sanitized with SanitizeComponent
// first. Returns a relative '/'-separated path whose segments are all
// non-empty, not "." or "..", and at most 255 bytes.
Result<std::string> ExpandLayout(std::string_view layout,
                                 const std::map<std::string, std::string>& vars);

// True when `path` is `root` or lies below it (both canonical, no trailing '/').
bool PathInside(std::string_view path, std::string_view root);

// --- Parsers of server answers (pure; fuzzed in tests/fuzz) -----------------

// The total N of a Content-Range value ("bytes a-b/N" or "bytes */N" -> N;
// nullopt when absent or "*").
std::optional<std::uint64_t> RangeTotal(const std::string& content_range);
// The Content-Length of an answer; nullopt when absent or not a number.
std::optional<std::uint64_t> ContentLength(const HttpResponse& response);

}  // namespace shotsync
