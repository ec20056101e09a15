// Manifest: the SQLite record of every file shotsync has seen, hashed, sent
// or downloaded, of every job in flight, of past runs, and of the request
// budget shared by processes on this host.
//
// One file per sync profile (<state_dir>/manifest.db), WAL mode,
// synchronous=NORMAL, busy_timeout so that a hook's `push` and a cron `sync`
// can use it at the same time. Schema versioned with PRAGMA user_version and
// forward migrations; a newer schema than this binary knows is refused, a
// corrupt or foreign file is reported and never replaced.
//
// Thread safety: every public method locks an internal mutex, so one Manifest
// may be shared by threads; for throughput the engine funnels bulk writes
// through one writer (BeginBatch/CommitBatch). Job state changes
// (BeginJob/FinishJob/FailJob) are durable when they return: exactly-once
// depends on it (docs/resume.md).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shotsync/status.hpp"

namespace shotsync {

inline constexpr int kManifestSchemaVersion = 8;
// PRAGMA application_id of a shotsync manifest ("ShSy"): a SQLite file
// without it is not ours and is refused, never migrated.
inline constexpr std::int32_t kManifestApplicationId = 0x53685379;

enum class FileState { kNew, kSynced, kMissing, kRejected };
std::string_view FileStateName(FileState s) noexcept;

struct RootRecord {
  std::int64_t id = 0;
  std::string path;     // absolute, as configured
  std::string project;  // as configured (id or name)
  std::string album;
  // Shootbin ids the project/album resolved to (0 = not yet): lets `push`
  // send without looking them up. Forgotten when project/album change.
  std::int64_t remote_project_id = 0;
  std::int64_t remote_album_id = 0;
};

struct FileRecord {
  std::int64_t id = 0;  // 0 = not yet stored
  std::int64_t root_id = 0;
  std::string rel_path;  // relative to the root, '/'-separated, raw bytes (may be non-UTF-8)
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t inode = 0;
  std::string hash;  // XXH3-128 as 32 lowercase hex digits; empty = not hashed
  std::optional<std::int64_t> remote_photo_id;  // Shootbin photo id once uploaded
  std::string remote_hash;  // hash of the content the server holds (last upload/revision)
  FileState state = FileState::kNew;
  std::string reason;  // why rejected / last failure, one line
  std::string rejected_by;  // kRejected: the shotsync version that refused it ("" = the server)
};

// A job the server answered: its photo, and the JPEG quality of the copy
// sent when the file was fitted (docs/fit.md; 0 = the file itself).
struct FinishedJob {
  std::int64_t job_id = 0;
  std::int64_t remote_photo_id = 0;
  int fit_quality = 0;
  // The sent bytes' hash, for a job claimed unread; "" = the job's own.
  std::string hash;
};

enum class JobKind { kUpload, kRevision };
enum class JobState { kPending, kInFlight, kDone, kFailed, kRejected };
std::string_view JobKindName(JobKind k) noexcept;
std::string_view JobStateName(JobState s) noexcept;

struct JobRecord {
  std::int64_t id = 0;
  std::int64_t file_id = 0;
  JobKind kind = JobKind::kUpload;
  JobState state = JobState::kPending;
  std::string hash;  // content hash being sent
  std::uint64_t size = 0;
  int attempts = 0;
  std::string last_error;
  std::int64_t started_at = 0;  // unix seconds
  std::int64_t finished_at = 0;
  std::string owner;  // JobOwner::token of the process that runs it
  std::int64_t watermark = 0;  // largest photo id known in the album before it was sent
  std::int64_t mtime_ns = 0;   // the stat it was planned with (schema 7)
  std::uint64_t inode = 0;
};

// The process running jobs: a token unique to it, and how to tell whether
// the process behind another token is still running (OwnerLease::IsAlive).
// Without `alive` every other owner counts as running.
struct JobOwner {
  std::string token;
  std::function<bool(std::string_view token)> alive;
};

struct ClaimRequest {
  std::int64_t file_id = 0;
  // "": the plan did not read the file (it must be sent whatever its bytes):
  // the send hashes them, and the stat below is the version it planned.
  std::string hash;
  std::uint64_t size = 0;
  std::int64_t watermark = 0;  // recorded with the job (JobRecord::watermark)
  std::int64_t mtime_ns = 0;   // the planned stat, recorded with the job
  std::uint64_t inode = 0;
};

// The album index (schema 3): what a Shootbin album holds, as its listing
// says. The server's album is the truth; this is its cache.
struct AlbumPhoto {
  std::int64_t photo_id = 0;
  std::string name;                   // original_filename as the server echoes it
  std::optional<std::uint64_t> size;  // file_size, when the listing gives it
  bool approved = false;              // approved_at set
};
struct AlbumIndexInfo {
  bool known = false;       // a row exists
  bool complete = false;    // a whole listing has been stored
  std::int64_t listed_to = 0;  // every photo id <= this has been seen in a listing
  std::int64_t max_photo_id = 0;  // largest id indexed (listings and our own uploads)
  std::string name_mode;    // how the server stores names ("" = not learnt yet)
};

struct JobClaim {
  std::int64_t job_id = 0;
  JobKind kind = JobKind::kUpload;
  std::int64_t photo_id = 0;  // kRevision: the photo it revises
  // The content hash the job sends: the request's, or for an unread request
  // the file row's if someone hashed this version since; "" = hash on send.
  std::string hash;
  // An unread request whose file row another plan has rewritten since (a
  // newer version): nothing claimed; hash the file and ask again.
  bool needs_hash = false;
};

enum class DownloadState { kPending, kPartial, kDone, kFailed };
std::string_view DownloadStateName(DownloadState s) noexcept;

struct DownloadRecord {
  std::string remote_id;  // HeadshotPro photo id
  std::string member_id;
  std::string model_id;
  std::string dest_path;
  std::uint64_t size = 0;        // expected length, 0 = unknown
  std::uint64_t bytes_done = 0;  // bytes in <dest>.part
  DownloadState state = DownloadState::kPending;
  std::string last_error;
};

struct RunCounts {
  std::int64_t uploaded = 0, revised = 0, skipped = 0, rejected = 0, failed = 0, downloaded = 0;
  std::uint64_t bytes = 0;
};

struct RunRecord {
  std::int64_t id = 0;
  std::string command;
  std::int64_t started_at = 0, finished_at = 0;  // unix seconds; finished 0 = running or killed
  RunCounts counts;
  int exit_code = -1;
  int pid = 0;
};

class Manifest {
 public:
  struct Options {
    int busy_timeout_ms = 10000;
    bool read_only = false;
  };

  // Opens or creates the manifest. Errors: kCorrupt (not a SQLite database,
  // or not a shotsync manifest), kUnsupported (schema newer than this binary),
  // kIo (cannot create/open), kBusy (locked beyond busy_timeout). The file is
  // never deleted or replaced.
  static Result<std::unique_ptr<Manifest>> Open(const std::string& path, Options options);
  static Result<std::unique_ptr<Manifest>> Open(const std::string& path) { return Open(path, Options{}); }
  // Another connection to this manifest whose writes take turns with this
  // one's in-process (no busy-handler sleeps between them): a sync's planner
  // writes on one connection while its claims and done rows go on another.
  Result<std::unique_ptr<Manifest>> OpenPeer();
  ~Manifest();
  Manifest(const Manifest&) = delete;
  Manifest& operator=(const Manifest&) = delete;

  int SchemaVersion() const;
  // SQLite checkpoints the WAL once it holds `pages` pages (default 1000).
  // The next process to open the manifest reads every page of it (WAL
  // recovery): a hook's `push`, a process per photo, keeps it short.
  Status SetAutoCheckpoint(int pages);

  // --- Roots -------------------------------------------------------------
  // Returns the id of the root with this path, creating or updating it.
  Result<std::int64_t> UpsertRoot(const RootRecord& root);
  Result<std::vector<RootRecord>> Roots();

  // --- Files -------------------------------------------------------------
  Result<std::optional<FileRecord>> GetFile(std::int64_t root_id, std::string_view rel_path);
  Result<std::optional<FileRecord>> GetFileById(std::int64_t file_id);
  // Calls fn for every file of `root_id` whose rel_path lies directly in `dir`
  // ("" = the root itself), in name order. The differ uses this one directory
  // at a time so that memory does not grow with the tree. The directory's rows
  // are read first, then fn is called without the lock: fn may call this
  // Manifest (MarkMissing, PutFile).
  Status ForEachFileInDir(std::int64_t root_id, std::string_view dir,
                          const std::function<void(const FileRecord&)>& fn);
  // The same rows as one vector, sorted by name (byte order).
  Result<std::vector<FileRecord>> FilesInDir(std::int64_t root_id, std::string_view dir);
  // Every directory (as above) that holds at least one non-missing file.
  Result<std::vector<std::string>> Dirs(std::int64_t root_id);
  // All files of a root, or of every root when root_id == 0, in rel_path order
  // (bytes). Streams through a second read-only connection (an open batch is
  // committed first so that its rows are seen); fn may call this Manifest.
  Status ForEachFile(std::int64_t root_id, const std::function<void(const FileRecord&)>& fn);
  // Another synced file of the same root set with this hash, for dedupe.
  Result<std::optional<FileRecord>> FindSyncedByHash(std::string_view hash);
  // Inserts (id == 0) or updates by id; sets record.id on insert. An insert of
  // a (root_id, rel_path) already stored updates that row and returns its id.
  // An update never changes remote_photo_id or remote_hash (FinishJob owns
  // them), and new/synced follows from them; rejected/missing are kept as given.
  // kNotFound for an unknown id; kInvalidArgument for an empty, absolute or
  // '/'-terminated rel_path.
  Status PutFile(FileRecord& record);
  // Marks the file missing from disk (the row stays: never a remote delete).
  // kNotFound when no such row.
  Status MarkMissing(std::int64_t root_id, std::string_view rel_path);

  // Remembers the Shootbin ids a root resolved to (RootRecord).
  Status SetRootTarget(std::int64_t root_id, std::int64_t project_id, std::int64_t album_id);

  // Groups many writes into one transaction (BEGIN IMMEDIATE ... COMMIT).
  // Without a batch every write is its own transaction. The transaction
  // starts at the batch's first write (an idle batch holds no lock); batches
  // nest (only the outermost CommitBatch commits). A durable write inside a
  // batch (BeginJob, FinishJob, FailJob, BeginRun, EndRun) commits the batch
  // together with itself, and the batch goes on in a new transaction at its
  // next write. A failing write inside a batch is undone alone (savepoint).
  // The batch is one connection-wide transaction: writes from other threads
  // through this Manifest join it. An open batch is committed on destruction.
  Status BeginBatch();
  Status CommitBatch();
  // True while a peer connection (OpenPeer) waits to write: a long batch
  // then commits at its next row, so that a claim or a throttle token does
  // not wait for the rest of it.
  bool WriteWanted() const;

  // --- Jobs (exactly-once protocol, docs/resume.md) ------------------------
  // Claims the file for sending the content `hash`: records the job as
  // in_flight, owned by owner.token, and commits before returning (with any
  // open batch, see BeginBatch). Several processes may plan the same file
  // (a `sync` and a hook's `push`), so the claim is decided from the rows as
  // they are inside this transaction, not as the caller planned them:
  //   kAlreadyDone  the server already holds this content: nothing to send
  //   kBusy         another running process has the file in flight
  //   kConflict     a dead process left it in flight: reconcile first
  //   otherwise     an upload, or a revision of the file's remote photo.
  // A file has at most one job row that is not done or rejected: when it has
  // one (pending, failed, or in flight under this owner) that row is taken
  // over (same id, attempts kept) instead of a new one being added.
  Result<JobClaim> BeginJob(std::int64_t file_id, std::string_view hash, std::uint64_t size,
                            const JobOwner& owner);
  // Many BeginJobs in one durable transaction (one log sync for the group):
  // a result per request, in order, each what BeginJob would have returned.
  // Fails as a whole only when the database does.
  Result<std::vector<Result<JobClaim>>> BeginJobs(std::span<const ClaimRequest> requests, const JobOwner& owner);
  // Takes over an in_flight job of `from_owner` (a dead process) so that only
  // one process reconciles it. false when the job is no longer in flight
  // under from_owner (someone else adopted or finished it).
  Result<bool> AdoptJob(std::int64_t job_id, std::string_view from_owner, std::string_view to_owner);
  // The job is done: job row and file row (remote id, remote hash, state
  // synced) change in one transaction. A job claimed unread takes `hash`
  // (what was sent); the file row takes it too while its stat is still the
  // one the job planned (else a newer version is there: its hash stays "",
  // and the next plan revises it).
  Status FinishJob(std::int64_t job_id, std::int64_t remote_photo_id, int fit_quality = 0,
                   std::string_view hash = {});
  // Many FinishJobs in one transaction.
  Status FinishJobs(std::span<const FinishedJob> done);
  // failed (retry on a later run) or rejected (permanent); reason is one line
  // (newlines become spaces). attempts + 1; the file row gets the reason and,
  // when permanent, state rejected. Same transaction, durable.
  Status FailJob(std::int64_t job_id, std::string_view reason, bool permanent);
  // Jobs left in_flight by an earlier (killed) process, or pending.
  Result<std::vector<JobRecord>> UnfinishedJobs();
  Result<std::vector<JobRecord>> RecentFailures(int limit);

  // --- Album index (docs/resume.md) ----------------------------------------
  Result<AlbumIndexInfo> AlbumIndex(std::int64_t album_id);
  // Adds or updates photos of the album. `listed_to` > 0 (a listing reached
  // every id down to the previous listed_to) raises listed_to; `complete`
  // marks a whole listing. Our own uploads come with listed_to = 0: they
  // must not hide older photos another host stored meanwhile.
  Status IndexAlbumPhotos(std::int64_t album_id, std::int64_t project_id,
                          std::span<const AlbumPhoto> photos, std::int64_t listed_to, bool complete);
  Status SetAlbumNameMode(std::int64_t album_id, std::string_view mode);
  // Photos of the album whose stored name is `name` (newest first).
  Result<std::vector<AlbumPhoto>> AlbumPhotosNamed(std::int64_t album_id, std::string_view name);
  // Photos whose stored name is a prefix (>= min_len bytes) of `name`: a
  // server that truncates long names.
  Result<std::vector<AlbumPhoto>> AlbumPhotosPrefixOf(std::int64_t album_id, std::string_view name,
                                                      std::size_t min_len);
  // Drops the album's index (its id no longer resolves): rebuilt on next use.
  Status ForgetAlbumIndex(std::int64_t album_id);
  // The file bound to a remote photo (remote_photo_id), if any.
  Result<std::optional<FileRecord>> FileWithPhoto(std::int64_t photo_id);
  // Files of any root with this content and size that are bound to a remote
  // photo: candidates for a move (the caller checks that their path is gone).
  Result<std::vector<FileRecord>> BoundWithContent(std::string_view hash, std::uint64_t size);
  // Whether any file of this size is bound to a remote photo: a new file of
  // another size cannot be a move, so the plan need not read it.
  Result<bool> AnyBoundOfSize(std::uint64_t size);
  // Binds the file to a photo the album already holds (adoption, or a move
  // when `from_file_id` != 0: that row loses the photo in the same
  // transaction). The file becomes synced with remote_hash = its hash, or
  // `hash` for a file the plan did not read (it becomes the row's too).
  // kConflict when the file is already bound to another photo, or the photo
  // to another file (other than from_file_id).
  Status BindRemote(std::int64_t file_id, std::int64_t photo_id, std::int64_t from_file_id = 0,
                    std::string_view hash = {});

  // --- Downloads ---------------------------------------------------------
  Result<std::optional<DownloadRecord>> GetDownload(std::string_view remote_id);
  Status PutDownload(const DownloadRecord& record);
  // Every download recorded done (remote_id, dest_path, size): `shared import`.
  Result<std::vector<DownloadRecord>> DoneDownloads();

  // --- Shared token bucket -----------------------------------------------
  // Takes one token from the bucket `key` (service + token fingerprint),
  // refilling at rate_per_s up to burst. Returns 0 when a token was taken,
  // else the seconds to wait before asking again (nothing taken). Atomic
  // across processes (BEGIN IMMEDIATE). A new bucket starts full. now_s must
  // come from a clock every process shares (CLOCK_MONOTONIC or the wall
  // clock, the same one everywhere). rate_per_s <= 0 is kInvalidArgument.
  Result<double> TakeToken(std::string_view key, double rate_per_s, double burst, double now_s);
  // Reserves the next `count` tokens at once, the bucket going into debt if
  // need be (later takers wait for it to be repaid): token i (0-based) is
  // the caller's at now_s + first + i / rate_per_s. Returns {count, first};
  // while the bucket is paused nothing is reserved: {0, seconds to wait}.
  // One transaction for many requests when the rate is high.
  Result<std::pair<int, double>> ReserveTokens(std::string_view key, double rate_per_s, double burst, int count,
                                               double now_s);
  // Server feedback: no tokens before `until_s` (a 429's reset time, on the
  // clock of TakeToken's now_s). Empties the bucket (a debt stays); paused_until only grows.
  // When the pause is over one token is available at once (the server's
  // window was reset), then the rate applies again.
  Status PauseBucket(std::string_view key, double until_s);

  // --- Acknowledged rejections (`shotsync ignore`) ------------------------
  // While such a file stays rejected, the plan counts it as acknowledged:
  // not named again, and no reason for exit code 1.
  struct Acknowledged {
    std::int64_t root_id = 0;
    std::string rel_path;
    std::int64_t at = 0;  // unix seconds
  };
  Status Acknowledge(std::int64_t root_id, std::string_view rel_path);
  Result<bool> Unacknowledge(std::int64_t root_id, std::string_view rel_path);  // false: was not
  Result<std::vector<Acknowledged>> AcknowledgedFiles();

  // --- Webhook events (`shotsync watch`) ----------------------------------
  // Records a HeadshotPro event's de-duplication key (webhook.hpp); true
  // when it was new, false for a redelivery. Keys older than 7 days are
  // dropped in the same transaction (HeadshotPro retries for about an hour).
  // Committed before it returns (a batch open on this Manifest included).
  Result<bool> RememberWebhookEvent(std::string_view key, double now_s);

  // --- Runs --------------------------------------------------------------
  Result<std::int64_t> BeginRun(std::string_view command, int pid);
  Status EndRun(std::int64_t run_id, const RunCounts& counts, int exit_code);
  Result<std::vector<RunRecord>> RecentRuns(int limit);

  // PRAGMA wal_checkpoint(TRUNCATE) at the end of a run (commits an open
  // batch first). Best effort: when another process keeps the database busy
  // for over a second it returns ok and leaves the WAL to SQLite's automatic
  // checkpoints.
  Status Checkpoint();
  // PRAGMA quick_check; ok or kCorrupt with the first problem.
  Status IntegrityCheck();

  // --- Reports (status, verify) --------------------------------------------
  struct RootCounts {
    std::int64_t root_id = 0;
    std::string path;
    std::int64_t synced = 0, pending = 0, missing = 0, rejected = 0;  // pending: new or changed
  };
  Result<std::vector<RootCounts>> CountsByRoot();
  // Files in `state`, most recently changed first.
  Result<std::vector<FileRecord>> FilesInState(FileState state, int limit);
  struct BucketRecord {
    std::string key;  // service + token fingerprint, never the token
    double tokens = 0, refilled_at = 0, paused_until = 0;  // wall-clock seconds
  };
  Result<std::vector<BucketRecord>> Buckets();
  // The server no longer has the file's photo (verify --remote --repair):
  // forget the remote id and hash so that the next sync uploads it again.
  Status ForgetRemote(std::int64_t file_id);

 private:
  // TakeToken and ReserveTokens: `count` tokens, with `reserve` into debt.
  Result<std::pair<int, double>> TakeFromBucket(std::string_view key, double rate_per_s, double burst, int count,
                                                bool reserve, double now_s);
  struct Impl;
  explicit Manifest(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shotsync
