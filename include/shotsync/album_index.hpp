// AlbumIndex: what a Shootbin album already holds, by original_filename
// (shootbin.md §5.4; docs/resume.md "The album is the truth").
//
// The server does not deduplicate and has no idempotency key, so the only
// defence against a second copy of a photo is to look first. The index is
// built by one whole listing the first time an album is used (new or lost
// state folder, a second profile or host feeding it, photos uploaded through
// the web UI) and kept in the manifest (album_index, album_photos); later
// runs list only what is newer than the last listing (the listing is newest
// first), and only when they have something to send to that album, so a
// no-op resync costs no request.
//
// Names: shotsync sends client_original_filename = the path relative to the
// root. A server may keep it, keep only the base name, normalise it (NFC) or
// cut it. The index matches on what the server echoes: the way this server
// stores names (NameMode) is learnt from the first upload answer into the
// album, and until then every plausible stored form is tried.
//
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shotsync/manifest.hpp"
#include "shotsync/shootbin.hpp"
#include "shotsync/status.hpp"

namespace shotsync {

// How a server stores a sent client_original_filename.
//   kFull      the whole relative path (possibly NFC-normalised)
//   kBasename  only what follows the last '/' (possibly NFC-normalised)
//   kOther     something else (cut to a length): matched by prefix too
enum class NameMode { kUnknown, kFull, kBasename, kOther };
std::string_view NameModeName(NameMode m) noexcept;
NameMode ParseNameMode(std::string_view s) noexcept;

// Unicode NFC of a UTF-8 string; bytes that are not UTF-8 are kept as they are.
std::string Nfc(std::string_view s);
// The names under which a server in `mode` may have stored `sent`, most
// likely first, without repeats.
std::vector<std::string> StoredNames(NameMode mode, std::string_view sent);
// What an answer tells about the server: it was sent `sent` and echoed `echoed`.
NameMode LearnNameMode(std::string_view sent, std::string_view echoed);

struct AlbumMatch {
  enum Kind { kNone, kFound, kConflict } kind = kNone;
  std::int64_t photo_id = 0;
  std::string reason;  // kFound: how it matched; kConflict: why not adopted
};

class SharedStore;

class AlbumIndex {
 public:
  // With a shared store (studio mode), the listings every host made are
  // merged in first, and what this host lists or uploads is stored there
  // too: each host lists from the server only what is newer than any has.
  // `reads` (default: `db`) answers the lookups: a sync asks them on its
  // planner's connection, so that a plan's per-file questions never wait
  // behind a claim's log sync on the connection that writes.
  AlbumIndex(Manifest& db, ShootbinClient& client, SharedStore* shared = nullptr, Manifest* reads = nullptr)
      : db_(db), reads_(reads ? *reads : db), client_(client), shared_(shared) {}

  // Brings the album's index up to date, once per run: a whole listing the
  // first time, then the photos newer than the last listing. Concurrent
  // callers for one album share one listing.
  Status Refresh(std::int64_t project, std::int64_t album);
  // Lists what is newer than the last listing again (a reconcile after sends).
  Status Relist(std::int64_t project, std::int64_t album);

  // The album's photo for a local file (row `file_id`, `size` bytes) that
  // would be sent as `sent`. kConflict: a photo of that name whose listed
  // size differs, or that is bound to another local file.
  Result<AlbumMatch> Find(std::int64_t album, std::string_view sent, std::uint64_t size,
                          std::int64_t file_id);
  // Photos above `above_id` that a send of `sent` may have created (reconcile).
  Result<std::vector<AlbumPhoto>> Created(std::int64_t album, std::string_view sent, std::int64_t above_id);

  // Two files of one run that this server would store under one name.
  // Records `sent` for `file_id`; returns the other file's name on a clash.
  std::optional<std::string> Reserve(std::int64_t album, std::string_view sent, std::int64_t file_id);

  // Uploads' answers in one album: learns the name mode and indexes the
  // photos, in one transaction (the recorder hands over a batch).
  struct Answer {
    std::string_view sent;  // the name sent (client_original_filename)
    const RemotePhoto* photo;
  };
  void Learned(std::int64_t project, std::int64_t album, std::span<const Answer> answers);
  NameMode Mode(std::int64_t album);
  // Largest photo id known in the album (0 = none): a reconcile looks above it.
  std::int64_t Watermark(std::int64_t album);


 private:
  Status List(std::int64_t project, std::int64_t album, bool force);
  Status MergeShared(std::int64_t project, std::int64_t album, AlbumIndexInfo& info);

  Manifest& db_;
  Manifest& reads_;
  ShootbinClient& client_;
  SharedStore* shared_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::int64_t> refreshed_;   // albums listed this run
  std::set<std::int64_t> listing_;     // albums being listed now
  std::map<std::int64_t, NameMode> modes_;
  std::map<std::pair<std::int64_t, std::string>, std::int64_t> reserved_;  // (album, key) -> file
};

}  // namespace shotsync
