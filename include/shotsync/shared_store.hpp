// SharedStore: studio mode's PostgreSQL database (docs/studio.md). Several
// hosts on one Shootbin account and one HeadshotPro organization coordinate
// through it; each keeps its own SQLite manifest for what is about its disk
// (the stat/hash cache, its roots, its own jobs).
//
// What it holds, one table each (schema in engine/shared/schema.cpp):
//   owners     every running shotsync process (host, pid) and its lease;
//              a process whose lease ran out is dead to every other host
//   photos     the registry of what is on the server, by (album, the name
//              sent): photo id, content hash, size; and the upload or
//              revision claim in flight on it, with its owner
//   buckets    the rate-limit buckets per service and account, timed by the
//              database server's clock (now()), so host clocks do not
//              matter; a 429 pause written by one host holds for all
//   album_index, album_photos
//              the album listings every host made (AlbumIndex): a host
//              lists from the server only what is newer than any host has
//   downloads  HeadshotPro download claims per shared destination folder
//   runs       the run records of every host (`status` shows them)
//
// Every statement is short and can be run again after a lost connection:
// a claim already ours is granted again, a finish or release changes only
// rows still ours, a bucket taken twice only wastes tokens. Connection
// failures are retried with backoff for up to `retry_for` seconds; after
// that the call fails with kUnavailable and the caller stops sending
// (never a silent fallback to a private bucket, which would multiply the
// account's rate by the number of hosts).
//
// Thread-safe: one connection, one statement at a time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <stop_token>
#include <string_view>
#include <thread>
#include <vector>

#include "shotsync/manifest.hpp"
#include "shotsync/status.hpp"
#include "shotsync/throttle.hpp"

namespace shotsync {

inline constexpr int kSharedSchemaVersion = 1;

struct SharedOptions {
  std::string url;            // libpq connection URI (password only via PGPASSFILE/~/.pgpass/passfile)
  std::string host;           // this host's name in owners and runs ("" = gethostname)
  double lease_s = 30;        // an owner not renewed for this long is dead
  double retry_for_s = 10;    // connection failures are retried this long
  double connect_timeout_s = 5;
};

// A claim on (album, name) in the registry.
struct SharedClaimRequest {
  std::int64_t album_id = 0;
  std::string name;            // client_original_filename as sent (the root-relative path)
  JobKind kind = JobKind::kUpload;
  std::int64_t photo_id = 0;   // kRevision: the photo revised
  std::string hash;            // content being sent
  std::uint64_t size = 0;
  std::int64_t watermark = 0;  // largest photo id known in the album before sending
};

struct SharedClaim {
  enum Kind {
    kGranted,    // ours: send it
    kDone,       // the server holds this content already (photo_id): nothing to send
    kBusy,       // a live process (holder) has it in flight
    kReconcile,  // taken over from a dead owner: look on the server before sending
    kConflict,   // the name holds other content than this file's (reason)
  } kind = kGranted;
  std::int64_t photo_id = 0;
  std::int64_t watermark = 0;  // kReconcile: the dead owner's watermark
  std::string holder;          // kBusy: "host (pid N)"
  std::string reason;
};

struct SharedPhoto {
  std::int64_t album_id = 0;
  std::string name;
  std::int64_t photo_id = 0;
  std::string hash;
  std::uint64_t size = 0;
};

// What the hosts together have listed of an album (AlbumIndex's cache).
struct SharedListing {
  std::int64_t listed_to = 0;  // every photo id <= this was in some host's listing (0 = none)
  std::string name_mode;       // how the server stores names ("" = not learnt)
  std::vector<AlbumPhoto> photos;
};

struct SharedDownloadClaim {
  enum Kind { kGranted, kDone, kBusy } kind = kGranted;
  std::string holder;  // kDone / kBusy: the host that has or had it
};

struct SharedRun {
  std::string host;
  RunRecord run;
};

struct SharedOwner {
  std::string token, host, command;
  int pid = 0;
  double started_at = 0, lease_left_s = 0;  // lease_left_s < 0: expired
};

class SharedStore {
 public:
  // Connects and checks the schema. kUnavailable when the server cannot be
  // reached (one line naming host:port/db, never the password);
  // kUnsupported when the schema is missing or older than this binary (the
  // message says to run `shotsync shared init`) or newer (upgrade).
  // `check_schema` false: connect only (shared init).
  static Result<std::unique_ptr<SharedStore>> Open(const SharedOptions& options, bool check_schema = true);
  ~SharedStore();
  SharedStore(const SharedStore&) = delete;
  SharedStore& operator=(const SharedStore&) = delete;

  // "host:port/dbname" (user, password and options left out).
  const std::string& display() const;
  const std::string& host() const;
  double lease_s() const;

  // Creates the schema or migrates it forward (one transaction); returns the
  // version it was at (0 = none).
  Result<int> Init();
  Result<int> SchemaVersion();

  // --- Owners ------------------------------------------------------------
  Status RegisterOwner(std::string_view token, int pid, std::string_view command);
  Status RenewOwner(std::string_view token);
  Status DropOwner(std::string_view token);
  // Whether the owner's lease is current (false for an unknown token).
  Result<bool> OwnerAlive(std::string_view token);
  Result<std::vector<SharedOwner>> Owners();

  // --- Registry and claims -----------------------------------------------
  // One transaction for the batch; a result per request, in order.
  Result<std::vector<SharedClaim>> Claim(std::span<const SharedClaimRequest> requests, std::string_view owner);
  // The server stored `photo_id` for (album, name) with this content. Clears
  // the claim when it is `owner`'s; records the photo in any case.
  Status Finish(std::span<const SharedPhoto> photos, std::string_view owner);
  // Gives the claim up (nothing was stored): only when it is `owner`'s.
  Status Release(std::int64_t album_id, std::string_view name, std::string_view owner);
  // Takes a claim over from a dead owner; false when it is not `from`'s.
  Result<bool> AdoptClaim(std::int64_t album_id, std::string_view name, std::string_view from,
                          std::string_view to);
  // Records photos the album is known to hold (adoption, import); a name
  // already registered to another photo is left as it is.
  Status Register(std::span<const SharedPhoto> photos);
  Result<std::vector<SharedPhoto>> Registered(std::int64_t album_id);
  // The server lost the photo (verify --remote --repair): its row goes, so
  // that the next claim of its name is granted and the file sent again.
  Status Forget(std::int64_t album_id, std::int64_t photo_id);

  // --- Album listings (the album index, shared) ----------------------------
  // The photos above `above_id` and the listing's state.
  Result<SharedListing> AlbumListing(std::int64_t album_id, std::int64_t above_id);
  // Adds photos; raises listed_to (never lowers it; 0 = our own uploads, which
  // must not hide older photos); sets the name mode when not empty.
  Status StoreListing(std::int64_t album_id, std::span<const AlbumPhoto> photos, std::int64_t listed_to,
                      std::string_view name_mode);
  // The album is gone (404) or was listed whole again (verify --remote).
  Status ForgetListing(std::int64_t album_id);

  // --- Download claims ---------------------------------------------------
  Result<SharedDownloadClaim> ClaimDownload(std::string_view dest_id, std::string_view remote_id,
                                            std::string_view path, std::string_view owner);
  Status FinishDownload(std::string_view dest_id, std::string_view remote_id, std::uint64_t size,
                        std::string_view owner);
  Status ReleaseDownload(std::string_view dest_id, std::string_view remote_id, std::string_view owner);

  // --- Buckets (see BucketStore; times are the database server's) ---------
  Result<std::pair<int, double>> Reserve(std::string_view key, double rate_per_s, double burst, int count,
                                         bool into_debt);
  // No tokens for `for_s` seconds from the database's now().
  Status Pause(std::string_view key, double for_s);
  Result<std::vector<Manifest::BucketRecord>> Buckets();

  // --- Runs --------------------------------------------------------------
  Result<std::int64_t> BeginRun(std::string_view command, int pid);
  Status EndRun(std::int64_t run_id, const RunCounts& counts, int exit_code);
  Result<std::vector<SharedRun>> RecentRuns(int limit);

  struct Impl;

 private:
  explicit SharedStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The shared store's buckets as the Throttle's BucketStore. Strict: when
// the database cannot be asked, no token is handed out (waits instead).
class SharedBuckets : public BucketStore {
 public:
  explicit SharedBuckets(SharedStore& store) : store_(store) {}
  Result<double> Take(std::string_view key, double rate, double burst, double now) override;
  Result<std::pair<int, double>> Reserve(std::string_view key, double rate, double burst, int count,
                                         double now) override;
  Status Pause(std::string_view key, double until) override;
  bool strict() const override { return true; }

 private:
  SharedStore& store_;
};

// This process in the shared store's owners table while it lives: renewed
// by its own thread every lease/3, dropped when it ends (so that its
// unfinished claims are reconciled by the next host at once, not after the
// lease). Held() says whether the lease is surely still ours: a host that
// could not renew for two thirds of a lease must stop sending, since
// another host may take its claims over once it has run out. A lease that
// ran out is never renewed (RenewOwner refuses): it is lost for good, and
// `on_lost` is called once, from a thread of the lease's, when it is.
class SharedLease {
 public:
  static Result<std::unique_ptr<SharedLease>> Start(SharedStore& store, std::string token,
                                                    std::string_view command,
                                                    std::function<void()> on_lost = {});
  ~SharedLease();
  SharedLease(const SharedLease&) = delete;
  SharedLease& operator=(const SharedLease&) = delete;
  const std::string& token() const { return token_; }
  bool Held() const;

 private:
  SharedLease(SharedStore& store, std::string token, std::function<void()> on_lost);
  void Renew(std::stop_token stop);
  void Watch(std::stop_token stop);  // calls on_lost_ when held_until_ passes unrenewed

  SharedStore& store_;
  std::string token_;
  std::function<void()> on_lost_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::chrono::steady_clock::time_point held_until_;
  bool lost_ = false;
  std::jthread renewer_, watchdog_;  // last: stopped before the rest goes
};

// A destination folder's identity, the same on every host that mounts it:
// the id in <dest>/.shotsync-dest, created (O_EXCL) by the first host.
Result<std::string> DestinationId(const std::string& dest);

}  // namespace shotsync
