// Sync: carries out the plan against Shootbin, exactly once
// (architecture §5, docs/resume.md).
//
//   targets     project/album ids, pinned in the manifest once resolved
//   index       before the first upload into an album, its index is brought
//               up to date (AlbumIndex): a name it holds is adopted, a
//               synced file that moved keeps its photo, a name the server
//               would confuse with another is a conflict
//   gate        per album, the first send goes alone until one succeeds: a
//               locked project costs two requests, not one per file

//   reconcile   jobs left in_flight by an earlier (killed) run are looked up
//               on the server before anything is sent again
//   plan        BuildPlan streams upload/revision decisions
//   dispatch    each job is committed in_flight, then handed to the
//               TransferEngine (bounded: back-pressure reaches the planner)
//   answer      2xx: done + remote id in one transaction; permanent refusal:
//               rejected with the server's message; transient: retried with
//               exponential backoff and full jitter; ambiguous (no answer
//               after the body went out, or 5xx): reconciled by listing the
//               album before any resend
//
// Concurrency: a `sync` and any number of `push` runs may share one manifest.
// Each process holds an OwnerLease; a job is claimed in the manifest
// (Manifest::BeginJob) before any byte is sent, so a file is never sent by
// two processes at once, and only jobs of dead owners are reconciled.
//
// Stop (SIGINT/SIGTERM) stops new transfers, lets running ones end, commits
// and returns kCancelled; the next run resumes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <stop_token>
#include <string>
#include <vector>

#include "shotsync/config.hpp"
#include "shotsync/manifest.hpp"
#include "shotsync/planner.hpp"
#include "shotsync/status.hpp"

namespace shotsync {

class SharedStore;
class FileFilter;
class LiveStats;

struct SyncOptions {
  bool dry_run = false;
  int jobs = 0;                 // 0 = config.jobs
  std::int64_t bwlimit = 0;     // bytes/s, 0 = none
  int max_attempts = 5;         // per file per run, for transient failures
  std::string command = "sync"; // recorded in the runs table
  // push: only these files (absolute, or relative to the working directory),
  // no walk; their roots' Shootbin ids come from the manifest when known.
  // A file another process is sending is waited for, then claimed again.
  std::vector<std::string> files;
  double busy_wait_s = 600;     // push: longest wait for another process's transfer
  bool report_unchanged = true; // dry run: hand unchanged files to on_event too
  bool retry_rejected = false;  // decide rejected files again (sync --retry-rejected)
  bool allow_unapprove = false; // send revisions of approved photos (also config allow_unapprove)
  std::stop_token stop;   // finish running transfers, start no more
  std::stop_token abort;  // cancel running transfers too
  // Studio mode (docs/studio.md): claims, the registry, the buckets and the
  // run record are shared with the other hosts through this store.
  SharedStore* shared = nullptr;
  // sync --include/--exclude/--max-age...: only the files it admits.
  const FileFilter* filter = nullptr;
  // sync --max-transfer: no upload starts that would take the bytes sent
  // past this (0 = no limit); the run then stops as a stop request does
  // (kCancelled, exit 5) and the next run sends the rest.
  std::uint64_t max_transfer = 0;
  // What the run is doing and waiting for, for a progress or stats line.
  LiveStats* live = nullptr;
};

struct SyncFailure {
  std::string path;
  std::string reason;
  bool permanent = false;  // rejected (will not be retried) vs failed (next run retries)
};

// Progress events, delivered from engine threads one at a time.
// kPlanComplete comes once, after the last kPlanned: from then on the totals
// (plan->upload + plan->revision files, plan->bytes_to_send) are final.
struct SyncEvent {
  // kWarning: a permanent condition worth a line that does not fail the
  // run (a dangling symlink, a plan without a token).
  enum Kind { kPlanned, kStarted, kDone, kFailed, kWarning, kPlanComplete } kind = kPlanned;
  const PlanItem* item = nullptr;  // kPlanned
  std::string path;
  std::uint64_t bytes = 0;
  std::string reason;
  const PlanStats* plan = nullptr;  // kPlanComplete
  bool revision = false;            // kDone: a revision (else an upload)
};
using SyncEventFn = std::function<void(const SyncEvent&)>;

struct SyncReport {
  PlanStats plan;
  std::int64_t uploaded = 0, revised = 0, failed = 0, rejected = 0, reconciled = 0;
  std::int64_t elsewhere = 0;  // sent (or being sent) by another shotsync process meanwhile
  std::int64_t held = 0;       // revisions of approved photos not sent (allow_unapprove)
  std::int64_t unconfirmed = 0;  // push: may still be stored by the server; the next run checks
  std::uint64_t bytes_sent = 0;
  double seconds = 0;
  std::int64_t requests = 0, throttled_429 = 0;
  std::int64_t retries = 0;  // resends after a transient failure (429s are counted apart)
  double throttle_wait_s = 0;  // time the request throttle held requests back
  std::vector<SyncFailure> failures;  // every failed or rejected file, with its reason
  Status status;  // ok; kCancelled when stopped; kUnauthenticated/kForbidden when the token failed
  // The first root whose project or album did not resolve ("file:line:
  // ..."); its files were not planned. The run went on with the rest.
  Status target_error;
  bool rejected_fails = true;  // Config::rejected_fails: rejected files count for exit code 1
};

// Runs a whole sync (or, with dry_run, only the plan). The report is always
// filled in as far as the run got; report.status says how it ended.
SyncReport RunSync(const Config& config, Manifest& manifest, const SyncOptions& options,
                   const SyncEventFn& on_event);

}  // namespace shotsync

namespace shotsync {
// The process exit code for a finished sync (README "Exit codes"): 0 all
// done; 1 some files failed or were rejected; 3 authentication or
// authorization; 5 interrupted.
int SyncExitCode(const SyncReport& report);
}  // namespace shotsync
