#include "store/manifest_buckets.hpp"
#include "shotsync/sync.hpp"

#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <condition_variable>
#include <map>
#include <set>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "shotsync/album_index.hpp"
#include "shotsync/bounded_queue.hpp"
#include "shotsync/hasher.hpp"
#include "shotsync/owner.hpp"
#include "shotsync/shootbin.hpp"
#include "shotsync/throttle.hpp"
#include "shotsync/transfer.hpp"

namespace shotsync {
namespace {

using SteadyClock = std::chrono::steady_clock;

// The manifest's throttle table as the cross-process bucket.
// Runs callbacks at a later time on its own thread (retry backoff).
class Scheduler {
 public:
  Scheduler() : thread_([this] { Loop(); }) {}
  ~Scheduler() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void At(SteadyClock::time_point when, std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      tasks_.emplace(when, std::move(fn));
    }
    cv_.notify_all();
  }
  // Runs everything still waiting now (used when stopping).
  void Drain() {
    std::multimap<SteadyClock::time_point, std::function<void()>> tasks;
    {
      std::lock_guard lock(mu_);
      tasks.swap(tasks_);
    }
    for (auto& [when, fn] : tasks) fn();
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (!done_) {
      if (tasks_.empty()) {
        cv_.wait(lock);
        continue;
      }
      auto first = tasks_.begin();
      if (first->first > SteadyClock::now()) {
        const auto when = first->first;  // a copy: Cancel/Drain may free the node meanwhile
        cv_.wait_until(lock, when);
        continue;
      }
      auto fn = std::move(first->second);
      tasks_.erase(first);
      lock.unlock();
      fn();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<SteadyClock::time_point, std::function<void()>> tasks_;
  bool done_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

// A thread that takes whatever is queued when it gets to it (up to 256
// items), handles the group with `commit` (one transaction: group commit),
// then runs `after` for each item. Producers only queue; the queue is
// bounded, so they wait if the database falls far behind.
template <typename Item>
class Batcher {
 public:
  using CommitFn = std::function<Status(std::vector<Item>&)>;
  using AfterFn = std::function<void(Item&, const Status&)>;
  Batcher(CommitFn commit, AfterFn after)
      : commit_(std::move(commit)), after_(std::move(after)), thread_([this] { Loop(); }) {}
  ~Batcher() { Finish(); }
  void Add(Item item) { queue_.Push(std::move(item)); }
  // Records everything queued, then stops the thread (idempotent).
  void Finish() {
    queue_.Close();
    if (thread_.joinable()) thread_.join();
  }

 private:
  static constexpr std::size_t kMaxBatch = 256;
  void Loop() {
    while (std::optional<Item> first = queue_.Pop()) {
      std::vector<Item> batch;
      batch.push_back(std::move(*first));
      while (batch.size() < kMaxBatch) {
        std::optional<Item> more = queue_.TryPop();
        if (!more) break;
        batch.push_back(std::move(*more));
      }
      const Status st = commit_(batch);
      for (Item& item : batch) after_(item, st);
    }
  }
  CommitFn commit_;
  AfterFn after_;
  BoundedQueue<Item> queue_{1024};
  std::thread thread_;  // last: starts after the members it uses
};

struct Target {
  std::int64_t root_id = 0;
  std::int64_t project = 0;
  std::int64_t album = 0;
  bool resolved = false;  // project/album known (pinned in the manifest, or looked up)
  Status status;  // why this root's files cannot be sent (album not found...)
};

struct Job {
  std::int64_t job_id = 0;
  std::int64_t file_id = 0;
  JobKind kind = JobKind::kUpload;
  std::size_t root_index = 0;
  std::string abs_path, rel_path, hash;
  std::uint64_t size = 0;
  std::int64_t photo_id = 0;   // revisions: the photo revised
  int attempts = 0;
  double started_at = 0;       // wall seconds of the first send
  std::int64_t watermark = 0;  // largest photo id known in the album before the first send
  // Until then, a photo missing from the album may still be stored by a
  // request the server received before its client vanished (reconcile_delay).
  SteadyClock::time_point settle_at{};
  double conflict_at = 0;      // wall seconds of the last 409 (revisions)
  bool probe = false;          // the one send that opens its album's gate
  bool approval_checked = false;  // revisions: the photo was read before sending
};

// Per album, per run: the first send goes alone, and only once it succeeded
// do the others follow. A locked project or a plan limit (403) then costs at
// most two requests, not one per file, and the first answer teaches how the
// server stores names (AlbumIndex) before two names could collide.
struct Gate {
  bool open = false;
  bool probing = false;
  int refusals = 0;     // 403s in this run
  Status blocked;       // not ok: nothing more goes to this album this run
  std::int64_t held = 0;  // files not sent because of `blocked`
  std::size_t root_index = 0;
  std::deque<Job> parked;  // waiting for the probe's answer
};

class SyncRun {
 public:
  SyncRun(const Config& config, Manifest& manifest, std::unique_ptr<Manifest> jobs_db, OwnerLease lease,
          const SyncOptions& options, const SyncEventFn& on_event)
      : config_(config), plan_db_(manifest), own_jobs_db_(std::move(jobs_db)),
        db_(own_jobs_db_ ? own_jobs_db_.get() : &manifest), lease_(std::move(lease)),
        owner_(lease_.AsJobOwner()), options_(options), on_event_(on_event), buckets_(*db_),
        engine_(TransferOptions{.max_concurrent = options.jobs > 0 ? options.jobs : config.jobs,
                                .max_per_host = options.jobs > 0 ? options.jobs : config.jobs,
                                .bwlimit = options.bwlimit,
                                .ca_file = config.ca_file,
                                .stall_timeout = std::chrono::seconds(config.stall_timeout)}),
        throttle_(Throttle::Options{.key = BucketKey("shootbin", config.shootbin.token),
                                    .rpm = double(config.shootbin.rpm),
                                    .shared = &buckets_}),
        client_(engine_, throttle_, config.shootbin.base_url, config.shootbin.token,
                config.shootbin.token_source),
        rng_(std::random_device{}()) {}

  SyncReport Run() {
    const auto t0 = SteadyClock::now();
    auto run_id = db_->BeginRun(options_.command, int(::getpid()));
    if (!options_.dry_run) {
      if (config_.shootbin.token.empty()) {
        report_.status = Status(Code::kUnauthenticated,
                                "no Shootbin token: set SHOOTBIN_API_TOKEN (or shootbin.token_file in " +
                                    (config_.source.empty() ? std::string("the config") : config_.source) + ")");
      } else {
        LocateFiles();
        report_.status = ResolveTargets();
        if (report_.status.ok()) report_.status = ReconcileUnfinished();
      }
    } else {
      LocateFiles();
      // plan: with a token, the albums are looked at too (adoptions, moves
      // and conflicts are shown as such); offline it plans from the cache.
      if (!config_.shootbin.token.empty()) {
        if (Status st = ResolveTargets(); !st.ok()) {
          Emit({SyncEvent::kFailed, nullptr, config_.shootbin.base_url, 0,
                st.message() + " (planned without the server)"});
          targets_.clear();
        }
      }
    }
    const bool nothing_to_push = !options_.files.empty() && only_.empty();
    if (report_.status.ok() && !nothing_to_push) {
      PlanOptions po{.hash_threads = 0, .dedupe = config_.dedupe,
                     .flush_before_emit = !options_.dry_run, .cancel = options_.stop,
                     .emit_unchanged = (options_.dry_run && options_.report_unchanged) || !options_.files.empty(),
                     .only = only_, .retry_rejected = options_.retry_rejected,
                     .resolve_upload = [this](PlanItem& item) { ResolveUpload(item); }};
      auto plan = BuildPlan(config_, plan_db_, po, [&](const PlanItem& item) { OnItem(item); },
                            [&](const std::string& path, const Status& st) {
                              Emit({SyncEvent::kFailed, nullptr, path, 0, st.message()});
                            });
      if (plan.ok()) {
        report_.plan = *plan;
        SyncEvent done{SyncEvent::kPlanComplete};
        done.plan = &report_.plan;
        Emit(done);
      } else {
        SetFatal(plan.status());
      }
      FinishOutstanding();
    }
    engine_.Shutdown(Stopping(true));
    scheduler_.Drain();
    ReportBlocked();
    claimer_.Finish();   // claims queued by the last retries end here (stopping: unsent)
    recorder_.Finish();  // every answer recorded before the report is made
    if (report_.status.ok() && Stopping(false)) {
      report_.status = Status(Code::kCancelled, "interrupted: run the same command to resume");
    }
    report_.seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    report_.throttled_429 = throttle_.throttled_429();
    report_.requests = throttle_.granted();
    if (run_id.ok()) {
      RunCounts counts{report_.uploaded, report_.revised, report_.plan.skip,
                       report_.rejected + report_.plan.rejected, report_.failed, 0,
                       report_.bytes_sent};
      (void)db_->EndRun(*run_id, counts, SyncExitCode(report_));
    }
    // A push is a few rows: SQLite's automatic checkpoints are enough, and a
    // TRUNCATE checkpoint would cost fsyncs here and at the next start.
    if (options_.files.empty()) (void)db_->Checkpoint();
    return std::move(report_);
  }

 private:
  bool Stopping(bool abort_only) const {
    if (options_.abort && options_.abort->load()) return true;
    if (abort_only) return false;
    return fatal_.load() || (options_.stop && options_.stop->load());
  }

  void SetFatal(Status st) {
    std::lock_guard lock(mu_);
    if (report_.status.ok()) report_.status = std::move(st);
    fatal_ = true;
  }

  void Emit(const SyncEvent& e) {
    std::lock_guard lock(event_mu_);
    if (on_event_) on_event_(e);
  }

  void AddFailure(const Job& job, const std::string& reason, bool permanent) {
    {
      std::lock_guard lock(mu_);
      (permanent ? report_.rejected : report_.failed) += 1;
      report_.failures.push_back({job.abs_path, reason, permanent});
    }
    Emit({SyncEvent::kFailed, nullptr, job.abs_path, 0, reason});
  }

  // push: the roots and relative paths of the named files.
  void LocateFiles() {
    for (const std::string& path : options_.files) {
      auto target = LocateFile(config_, path);
      if (!target.ok()) {
        std::lock_guard lock(mu_);
        ++report_.rejected;
        report_.failures.push_back({path, target.status().message(), true});
        Emit({SyncEvent::kFailed, nullptr, path, 0, target.status().message()});
        continue;
      }
      only_.push_back(std::move(*target));
    }
  }

  bool Involved(std::size_t root_index) const {
    return options_.files.empty() || std::any_of(only_.begin(), only_.end(), [&](const PlanTarget& t) {
             return t.root_index == root_index;
           });
  }

  // Project and album ids of every root: pinned in the manifest once
  // resolved (a name is looked up again only after a 404 unpinned it), so a
  // renamed or a second album of the same name never redirects the uploads.
  // A 401 or a 403 on the project listing is the token's (fatal); a missing
  // or refused album blocks that root only.
  Status ResolveTargets() {
    std::map<std::pair<std::string, std::string>, Target> resolved;
    std::map<std::int64_t, RootRecord> known;
    SHOTSYNC_ASSIGN_OR_RETURN(std::vector<RootRecord> roots, plan_db_.Roots());
    for (RootRecord& r : roots) known.emplace(r.id, std::move(r));
    for (std::size_t i = 0; i < config_.roots.size(); ++i) {
      const RootConfig& rc = config_.roots[i];
      Target t;
      auto root_id = plan_db_.UpsertRoot({0, rc.path, rc.project, rc.album});
      if (!root_id.ok()) return root_id.status();
      t.root_id = *root_id;
      auto key = std::make_pair(rc.project, rc.album);
      bool recorded = false;  // the manifest already holds these ids
      if (auto k = known.find(t.root_id); k != known.end() && k->second.remote_album_id != 0 &&
                                           k->second.project == rc.project && k->second.album == rc.album) {
        t.project = k->second.remote_project_id;
        t.album = k->second.remote_album_id;
        t.resolved = true;
        recorded = true;
      } else if (!Involved(i)) {
        // push: not needed for the files named
      } else if (auto it = resolved.find(key); it != resolved.end()) {
        t.project = it->second.project;
        t.album = it->second.album;
        t.resolved = it->second.resolved;
        t.status = it->second.status;
      } else {
        auto project = client_.ResolveProject(rc.project, rc.create);
        if (!project.ok()) {
          const Code c = project.status().code();
          // kInvalidArgument: an untrusted certificate, or an ambiguous project name.
          if (c == Code::kUnauthenticated || c == Code::kForbidden || c == Code::kNetwork ||
              c == Code::kServer || c == Code::kRateLimited || c == Code::kInvalidArgument) {
            return project.status();
          }
          t.status = project.status();
        } else {
          t.project = *project;
          auto album = client_.ResolveAlbum(*project, rc.album, rc.create);
          if (album.ok()) t.album = *album; else t.status = album.status();
          const Code c = t.status.code();
          if (c == Code::kUnauthenticated || c == Code::kNetwork || c == Code::kServer) return t.status;
        }
        t.resolved = t.status.ok();
        resolved[key] = t;
      }
      if (t.resolved && !recorded && !options_.dry_run) {
        SHOTSYNC_RETURN_IF_ERROR(db_->SetRootTarget(t.root_id, t.project, t.album));
      }
      if (!t.status.ok()) Emit({SyncEvent::kFailed, nullptr, rc.path, 0, t.status.message()});
      targets_.push_back(t);
    }
    return Status::Ok();
  }

  std::optional<std::size_t> RootIndexOf(std::int64_t root_id) const {
    for (std::size_t i = 0; i < targets_.size(); ++i) {
      if (targets_[i].root_id == root_id) return i;
    }
    return std::nullopt;
  }

  // Jobs a process that is gone left in flight: ask the server before
  // resending. Jobs of running processes (a push beside this sync) are theirs.
  Status ReconcileUnfinished() {
    SHOTSYNC_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, db_->UnfinishedJobs());
    std::vector<Job> pending;
    for (const JobRecord& jr : jobs) {
      if (owner_.alive(jr.owner)) continue;
      auto file = db_->GetFileById(jr.file_id);
      if (!file.ok()) return file.status();
      constexpr std::size_t kNoRoot = SIZE_MAX;
      std::size_t root = kNoRoot;
      if (*file) root = RootIndexOf((*file)->root_id).value_or(kNoRoot);
      if (root != kNoRoot && !targets_[root].resolved && targets_[root].status.ok()) continue;  // push: another root
      SHOTSYNC_ASSIGN_OR_RETURN(bool mine, db_->AdoptJob(jr.id, jr.owner, owner_.token));
      if (!mine) continue;  // another process got to it first
      if (root == kNoRoot || !targets_[root].status.ok()) {
        SHOTSYNC_RETURN_IF_ERROR(db_->FailJob(jr.id, "root no longer configured or its album is unavailable", false));
        continue;
      }
      Job j;
      j.job_id = jr.id;
      j.file_id = jr.file_id;
      j.kind = jr.kind;
      j.root_index = root;
      j.rel_path = (*file)->rel_path;
      j.abs_path = config_.roots[root].path + "/" + j.rel_path;
      j.hash = jr.hash;
      j.size = jr.size;
      j.photo_id = (*file)->remote_photo_id.value_or(0);
      j.started_at = double(jr.started_at);
      j.watermark = jr.watermark;
      // The owner may have died a moment ago, its last body already with the server.
      j.settle_at = SteadyClock::now() + std::chrono::seconds(config_.reconcile_delay);
      pending.push_back(std::move(j));
    }
    if (pending.empty()) return Status::Ok();
    std::vector<Job> resend;
    SHOTSYNC_RETURN_IF_ERROR(Reconcile(pending, resend));
    for (const Job& j : resend) {
      // Not on the server: the next plan sends it again (as a new job).
      SHOTSYNC_RETURN_IF_ERROR(db_->FailJob(j.job_id, "interrupted before the server stored it; sending again", false));
    }
    return Status::Ok();
  }

  // Looks up each job's result on the server. Found: done. Not found: into
  // `resend`, but only once its settle time has passed: a job still settling
  // is looked up again after it (so a crash or a reset costs a few seconds,
  // never a duplicate). Stopped while waiting: left in flight for the next run.
  Status Reconcile(std::vector<Job>& jobs, std::vector<Job>& resend) {
    std::vector<Job> missing;
    SHOTSYNC_RETURN_IF_ERROR(LookUp(jobs, missing));
    SteadyClock::time_point settle{};
    for (const Job& j : missing) settle = std::max(settle, j.settle_at);
    if (settle > SteadyClock::now() + std::chrono::seconds(2) && !options_.files.empty()) {
      // A hook must return fast: these stay in flight, and the next run
      // (once its owner, this process, is gone) looks for them again.
      std::lock_guard lock(mu_);
      report_.unconfirmed += std::int64_t(missing.size());
      for (const Job& j : missing) {
        report_.failures.push_back({j.abs_path, "the server may still store it (no clear answer); the next run checks", false});
      }
      return Status::Ok();
    }
    if (settle > SteadyClock::now()) {
      if (!WaitUntil(settle)) return Status::Ok();
      std::vector<Job> again;
      again.swap(missing);
      SHOTSYNC_RETURN_IF_ERROR(LookUp(again, missing));
    }
    for (Job& j : missing) resend.push_back(std::move(j));
    return Status::Ok();
  }

  // Sleeps until `when`; false if the run is being stopped.
  bool WaitUntil(SteadyClock::time_point when) {
    std::unique_lock lock(mu_);
    while (SteadyClock::now() < when) {
      if (Stopping(false)) return false;
      // The stop flag is set from a signal handler, which cannot notify: look every 200 ms.
      cv_.wait_until(lock, std::min(when, SteadyClock::now() + std::chrono::milliseconds(200)));
    }
    return !Stopping(false);
  }

  Status LookUp(std::vector<Job>& jobs, std::vector<Job>& resend) {
    std::map<std::pair<std::int64_t, std::int64_t>, std::vector<Job*>> uploads;
    for (Job& j : jobs) {
      const Target& t = targets_[j.root_index];
      if (j.kind == JobKind::kUpload) {
        uploads[{t.project, t.album}].push_back(&j);
        continue;
      }
      auto photo = client_.GetPhoto(t.project, t.album, j.photo_id);
      if (!photo.ok()) {
        if (photo.status().code() == Code::kNotFound) {
          resend.push_back(j);
          continue;
        }
        return photo.status();
      }
      if (RevisionLanded(*photo, j)) {
        SHOTSYNC_RETURN_IF_ERROR(Finished(j, j.photo_id, /*reconciled=*/true));
      } else {
        resend.push_back(j);
      }
    }
    for (auto& [target, list] : uploads) {
      // One listing of what is new in the album for all of them.
      SHOTSYNC_RETURN_IF_ERROR(index_.Relist(target.first, target.second));
      std::set<std::int64_t> taken;  // one photo answers one job
      for (Job* j : list) {
        SHOTSYNC_ASSIGN_OR_RETURN(std::vector<AlbumPhoto> created,
                                  index_.Created(target.second, j->rel_path, j->watermark));
        // Oldest first: a late duplicate (if any) is not the one to bind.
        std::int64_t found = 0;
        for (auto it = created.rbegin(); it != created.rend() && found == 0; ++it) {
          if (taken.contains(it->photo_id) || (it->size && *it->size != j->size)) continue;
          SHOTSYNC_ASSIGN_OR_RETURN(std::optional<FileRecord> holder, db_->FileWithPhoto(it->photo_id));
          if (holder && holder->id != j->file_id) continue;
          found = it->photo_id;
        }
        if (found != 0) {
          taken.insert(found);
          SHOTSYNC_RETURN_IF_ERROR(Finished(*j, found, /*reconciled=*/true));
        } else {
          resend.push_back(*j);
        }
      }
    }
    return Status::Ok();
  }

  Status Finished(const Job& j, std::int64_t photo_id, bool reconciled) {
    SHOTSYNC_RETURN_IF_ERROR(db_->FinishJob(j.job_id, photo_id));
    Recorded(j, reconciled);
    return Status::Ok();
  }

  // After the job's done row is committed.
  void Recorded(const Job& j, bool reconciled) {
    {
      std::lock_guard lock(mu_);
      (j.kind == JobKind::kUpload ? report_.uploaded : report_.revised) += 1;
      if (reconciled) ++report_.reconciled;
      report_.bytes_sent += j.size;
    }
    SyncEvent done{SyncEvent::kDone, nullptr, j.abs_path, j.size, reconciled ? "found on the server" : ""};
    done.revision = j.kind == JobKind::kRevision;
    Emit(done);
  }

  // Recorder: one transaction for the answers that arrived meanwhile, then
  // what the answers taught the album index (off the transfer loop).
  struct Answered {
    Job job;
    RemotePhoto photo;
  };
  Status CommitAnswered(std::vector<Answered>& batch) {
    std::vector<std::pair<std::int64_t, std::int64_t>> rows;
    rows.reserve(batch.size());
    for (const Answered& a : batch) rows.emplace_back(a.job.job_id, a.photo.id);
    SHOTSYNC_RETURN_IF_ERROR(db_->FinishJobs(rows));
    for (const Answered& a : batch) {
      const Target& t = targets_[a.job.root_index];
      if (a.job.kind == JobKind::kUpload) index_.Learned(t.project, t.album, a.job.rel_path, a.photo);
    }
    return Status::Ok();
  }
  void AfterAnswered(Answered& a, const Status& committed) {
    // Not recorded: the job stays in flight and the next run finds the photo.
    if (committed.ok()) Recorded(a.job, false); else SetFatal(committed);
    Done();
  }

  // Before an upload is counted: does the album already hold it (adopt), is
  // it a synced file that moved (move), or would the server confuse its
  // name with another file's (conflict)? The album's index is brought up to
  // date first, once per run and only for albums that get uploads.
  void ResolveUpload(PlanItem& item) {
    if (targets_.empty()) return;  // plan without the server
    const Target& t = targets_[item.root_index];
    if (!t.resolved || !t.status.ok()) return;  // reported when it would be sent
    if (ResolveMove(item)) return;
    if (!GateStatus(t.album).ok()) return;  // blocked: reported at send
    if (Status st = index_.Refresh(t.project, t.album); !st.ok()) {
      if (options_.dry_run) {
        item.reason += " (album not listed: " + st.message() + ")";
        return;
      }
      // Never upload into an album that could not be looked at.
      return Block(t.album, item.root_index, st);
    }
    auto match = index_.Find(t.album, item.file.rel_path, item.file.size, item.file.id);
    if (!match.ok()) return SetFatal(match.status());
    if (match->kind == AlbumMatch::kNone) {
      if (auto other = index_.Reserve(t.album, item.file.rel_path, item.file.id)) {
        item.action = Action::kConflict;
        item.reason = "this server would store it under the same name as " + *other + ": rename one";
      }
      return;
    }
    if (match->kind == AlbumMatch::kConflict) {
      item.action = Action::kConflict;
      item.reason = match->reason;
      return;
    }
    if (!options_.dry_run) {
      if (Status st = db_->BindRemote(item.file.id, match->photo_id); !st.ok()) {
        if (st.code() != Code::kConflict) return SetFatal(st);
        item.action = Action::kConflict;
        item.reason = st.message();
        return;
      }
    }
    item.action = Action::kAdopt;
    item.reason = match->reason;
  }

  // A file with the content of a synced file of the same album whose path is
  // gone from disk: the remote photo follows it to its new path.
  bool ResolveMove(PlanItem& item) {
    if (item.file.hash.empty()) return false;
    auto bound = db_->BoundWithContent(item.file.hash, item.file.size);
    if (!bound.ok()) {
      SetFatal(bound.status());
      return false;
    }
    for (const FileRecord& old : *bound) {
      if (old.id == item.file.id) continue;
      const auto root = RootIndexOf(old.root_id);
      if (!root || targets_[*root].album != targets_[item.root_index].album) continue;
      struct stat sb;
      const std::string old_path = config_.roots[*root].path + "/" + old.rel_path;
      if (::lstat(old_path.c_str(), &sb) == 0 || errno != ENOENT) continue;  // still there: dedupe's case
      if (!options_.dry_run) {
        if (Status st = db_->BindRemote(item.file.id, *old.remote_photo_id, old.id); !st.ok()) {
          if (st.code() != Code::kConflict) SetFatal(st);
          continue;
        }
      }
      item.action = Action::kMove;
      item.reason = "moved from " + old.rel_path + " (photo " + std::to_string(*old.remote_photo_id) + ")";
      return true;
    }
    return false;
  }

  void OnItem(const PlanItem& item) {
    Emit({SyncEvent::kPlanned, &item, item.abs_path, item.file.size, item.reason});
    if (item.action == Action::kConflict) {
      std::lock_guard lock(mu_);
      report_.failures.push_back({item.abs_path, item.reason, false});
    }
    if (options_.dry_run || Stopping(false)) return;
    if (item.action == Action::kRejected && !options_.files.empty()) {
      // push names its files: say why one is not sent (a sync's plan reports these itself)
      std::lock_guard lock(mu_);
      report_.failures.push_back({item.abs_path, item.reason, true});
    }
    if (item.action != Action::kUpload && item.action != Action::kRevision) return;
    const Target& t = targets_[item.root_index];
    Job j;
    j.file_id = item.file.id;
    j.root_index = item.root_index;
    j.abs_path = item.abs_path;
    j.rel_path = item.file.rel_path;
    j.hash = item.file.hash;
    j.size = item.file.size;
    if (!t.status.ok()) {
      AddFailure(j, t.status.message(), false);
      return;
    }
    j.watermark = index_.Watermark(t.album);
    {
      std::lock_guard lock(mu_);
      ++outstanding_;
    }
    Claim(std::move(j), SteadyClock::now());
  }

  // Claims the file in the manifest and sends it. Holds one outstanding_.
  // Upload or revision is decided by the claim, from the manifest as it is
  // now: another process may have sent this file since it was planned.
  // Claims go through claimer_: the files queued meanwhile are claimed in
  // one durable transaction (one log sync for the group, not one per file).
  struct Pending {
    Job job;
    SteadyClock::time_point first_try;
    std::optional<Result<JobClaim>> claim;  // unset: not claimed (stopping)
  };
  void Claim(Job j, SteadyClock::time_point first_try) { claimer_.Add({std::move(j), first_try, std::nullopt}); }

  Status CommitClaims(std::vector<Pending>& batch) {
    if (Stopping(false)) return Status::Ok();
    std::vector<ClaimRequest> requests;
    requests.reserve(batch.size());
    for (const Pending& p : batch) requests.push_back({p.job.file_id, p.job.hash, p.job.size, p.job.watermark});
    SHOTSYNC_ASSIGN_OR_RETURN(std::vector<Result<JobClaim>> claims, db_->BeginJobs(requests, owner_));
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i].claim = std::move(claims[i]);
    return Status::Ok();
  }

  // Holds one outstanding_, given back here or when the transfer ends.
  void AfterClaim(Pending& p, const Status& committed) {
    if (!committed.ok()) {
      SetFatal(committed);
      return Done();
    }
    if (!p.claim) return Done();  // stopping
    Job& j = p.job;
    const Result<JobClaim>& claim = *p.claim;
    if (!claim.ok()) {
      const Code c = claim.status().code();
      const bool waited_enough =
          SteadyClock::now() - p.first_try > std::chrono::duration<double>(options_.busy_wait_s);
      if (c == Code::kBusy && !options_.files.empty() && !waited_enough) {
        // push: another process is sending this file; once it is done this
        // content may still differ (a newer export), so ask again.
        scheduler_.At(SteadyClock::now() + std::chrono::milliseconds(200),
                      [this, j = std::move(j), first_try = p.first_try]() mutable { Claim(std::move(j), first_try); });
        return;
      }
      if (c == Code::kAlreadyDone || c == Code::kBusy) {
        {
          std::lock_guard lock(mu_);
          ++report_.elsewhere;
        }
        Emit({SyncEvent::kDone, nullptr, j.abs_path, 0, claim.status().message()});
        return Done();
      }
      if (c == Code::kConflict) {
        AddFailure(j, j.abs_path + ": " + claim.status().message(), false);
        return Done();
      }
      SetFatal(claim.status());
      return Done();
    }
    j.job_id = claim->job_id;
    j.kind = claim->kind;
    j.photo_id = claim->photo_id;
    j.started_at = WallSeconds();
    Send(std::move(j));
  }

  // --- Gates: one send per album until the server said yes -----------------

  Status GateStatus(std::int64_t album) {
    std::lock_guard lock(mu_);
    auto it = gates_.find(album);
    return it == gates_.end() ? Status::Ok() : it->second.blocked;
  }

  // Nothing more goes to this album in this run. The files parked at its
  // gate are given back (failed, retried by a later run).
  void Block(std::int64_t album, std::size_t root_index, const Status& why) {
    if (why.code() == Code::kUnauthenticated) SetFatal(why);  // the token, not the album
    if (why.code() == Code::kForbidden) {
      // Whether it is the token after all (a plan without API access): once, off this thread.
      scheduler_.At(SteadyClock::now(), [this, root_index] {
        auto project = client_.ResolveProject(config_.roots[root_index].project, false);
        const Code c = project.status().code();
        if (c == Code::kForbidden || c == Code::kUnauthenticated) SetFatal(project.status());
      });
    }
    std::deque<Job> parked;
    {
      std::lock_guard lock(mu_);
      Gate& g = gates_[album];
      if (g.blocked.ok()) {
        g.blocked = why;
        g.root_index = root_index;
      }
      g.open = false;
      g.probing = false;
      parked.swap(g.parked);
    }
    for (Job& j : parked) Unsent(j, why);
  }

  // A claimed job that is not sent in this run (its album is blocked).
  void Unsent(const Job& j, const Status& why) {
    (void)db_->FailJob(j.job_id, why.message() + "; will retry on a later run", false);
    {
      std::lock_guard lock(mu_);
      ++report_.failed;
      ++gates_[targets_[j.root_index].album].held;
    }
    Done();
  }

  // Once per blocked album: one line naming it and the server's reason.
  void ReportBlocked() {
    std::vector<SyncFailure> lines;
    {
      std::lock_guard lock(mu_);
      for (const auto& [album, g] : gates_) {
        if (g.blocked.ok()) continue;
        const RootConfig& rc = config_.roots[g.root_index];
        std::string line = "album '" + rc.album + "' of project '" + rc.project + "' is not accepting uploads: " +
                           g.blocked.message();
        if (g.held > 0) line += " (" + std::to_string(g.held) + " files left for a later run)";
        report_.failures.push_back({rc.path, line, false});
        lines.push_back(report_.failures.back());
      }
    }
    for (const SyncFailure& f : lines) Emit({SyncEvent::kFailed, nullptr, f.path, 0, f.reason});
  }

  void Send(Job j) {
    if (Stopping(false)) {
      // Never sent this time: leave it to the next run, no reconciling needed.
      (void)db_->FailJob(j.job_id, "interrupted before sending", false);
      return Done();
    }
    const std::int64_t album = targets_[j.root_index].album;
    {
      std::unique_lock lock(mu_);
      Gate& g = gates_[album];
      if (!g.blocked.ok()) {
        const Status why = g.blocked;
        lock.unlock();
        return Unsent(j, why);
      }
      if (!g.open && !j.probe) {
        if (g.probing) {
          g.parked.push_back(std::move(j));
          return;
        }
        g.probing = true;
        j.probe = true;
      }
    }
    if (j.kind == JobKind::kRevision && !j.approval_checked && !config_.allow_unapprove &&
        !options_.allow_unapprove) {
      // A revision resets the client's approval and clears its annotations:
      // look first (off the transfer loop), hold it if the photo is approved.
      j.approval_checked = true;
      return scheduler_.At(SteadyClock::now(), [this, j = std::move(j)]() mutable { CheckApproval(std::move(j)); });
    }
    Transmit(std::move(j));
  }

  void CheckApproval(Job j) {
    const Target& t = targets_[j.root_index];
    auto photo = client_.GetPhoto(t.project, t.album, j.photo_id);
    if (photo.ok() && !photo->approved_at.empty()) {
      const std::string why = "approved by the client (" + photo->approved_at +
                              "): revision held, as it would reset the approval and clear the "
                              "annotations; sync --allow-unapprove sends it";
      (void)db_->FailJob(j.job_id, why, false);
      {
        std::lock_guard lock(mu_);
        ++report_.held;
        report_.failures.push_back({j.abs_path, why, false});
      }
      Emit({SyncEvent::kFailed, nullptr, j.abs_path, 0, why});
      PassProbe(j);
      return Done();
    }
    // Not found, or not readable now: the revision's own answer will tell.
    Transmit(std::move(j));
  }

  void Transmit(Job j) {
    const Target& t = targets_[j.root_index];
    HttpRequest req = j.kind == JobKind::kUpload
                          ? client_.UploadRequest(t.project, t.album, j.abs_path, j.rel_path)
                          : client_.RevisionRequest(t.project, t.album, j.photo_id, j.abs_path, j.rel_path);
    Emit({SyncEvent::kStarted, nullptr, j.abs_path, j.size, ""});
    auto shared = std::make_shared<Job>(std::move(j));
    engine_.Submit(std::move(req), [this, shared](HttpResponse&& r) { OnAnswer(*shared, r); });
  }

  // Stopping: what waits at a gate is not sent in this run.
  void DrainParked() {
    std::vector<Job> parked;
    {
      std::lock_guard lock(mu_);
      for (auto& [album, g] : gates_) {
        for (Job& j : g.parked) parked.push_back(std::move(j));
        g.parked.clear();
      }
    }
    for (const Job& j : parked) {
      (void)db_->FailJob(j.job_id, "interrupted before sending", false);
      Done();
    }
  }

  // The probe succeeded: everything parked at the gate goes.
  void OpenGate(const Job& probe) {
    std::deque<Job> parked;
    {
      std::lock_guard lock(mu_);
      Gate& g = gates_[targets_[probe.root_index].album];
      g.open = true;
      g.probing = false;
      parked.swap(g.parked);
    }
    // Not from the transfer loop (Submit may block): the scheduler sends them.
    for (Job& j : parked) {
      scheduler_.At(SteadyClock::now(), [this, j = std::move(j)]() mutable { Send(std::move(j)); });
    }
  }

  // The probe ended without a yes (a transient failure): the next parked
  // job becomes the probe.
  void PassProbe(const Job& probe) {
    if (!probe.probe) return;
    std::optional<Job> next;
    {
      std::lock_guard lock(mu_);
      Gate& g = gates_[targets_[probe.root_index].album];
      g.probing = false;
      if (!g.parked.empty()) {
        next = std::move(g.parked.front());
        g.parked.pop_front();
        g.probing = true;
        next->probe = true;
      }
    }
    if (next) scheduler_.At(SteadyClock::now(), [this, j = std::move(*next)]() mutable { Send(std::move(j)); });
  }

  void Done() {
    std::lock_guard lock(mu_);
    --outstanding_;
    cv_.notify_all();
  }

  std::chrono::milliseconds Backoff(int attempt, double base_s) {
    // Exponential backoff with full jitter, capped at 60 s.
    const double cap = std::min(60.0, base_s * double(1 << std::min(attempt, 6)));
    std::lock_guard lock(mu_);
    std::uniform_real_distribution<double> d(0.0, cap);
    return std::chrono::milliseconds(std::int64_t(d(rng_) * 1000));
  }

  void Retry(Job j, std::chrono::milliseconds delay) {
    scheduler_.At(SteadyClock::now() + delay, [this, j = std::move(j)]() mutable { Send(std::move(j)); });
  }

  // Runs on the transfer loop: no blocking and no manifest write here except
  // FailJob on the rare paths; the common answers go to the recorder.
  void OnAnswer(Job& j, const HttpResponse& r) {
    Status st = client_.CheckAnswer(r, j.abs_path);
    if (st.ok()) {
      auto photo = ShootbinClient::ParsePhotoAnswer(r);
      if (photo.ok()) {
        if (j.probe) OpenGate(j);
        return recorder_.Add({j, *photo});  // Done() once recorded
      }
      // A 2xx we cannot read: the server has most likely stored it.
      st = Status(Code::kServer, j.abs_path + ": unreadable answer to a " + std::to_string(r.status) + ": " +
                                     photo.status().message());
    }
    ++j.attempts;
    const Code c = st.code();
    // A transport error after the headers (a body cut off) is no answer either.
    const bool answered = r.status != 0 && r.transport.ok();
    // The server may have stored it: an answer-less failure after the whole
    // body went out, a 5xx (a gateway's HTML page included), or an
    // unreadable 2xx. Reconcile before resending.
    // bytes_sent >= size: the whole file may have reached the server even
    // when curl cannot tell the size of the multipart body.
    const bool ambiguous = (!answered && (r.request_sent || r.bytes_sent >= j.size)) || c == Code::kServer;
    if (c == Code::kCancelled) {
      PassProbe(j);
      if (!r.request_sent && r.bytes_sent == 0) {
        // Cancelled before it started: nothing to reconcile.
        (void)db_->FailJob(j.job_id, "interrupted before sending", false);
        return Done();
      }
      // Aborted mid-transfer: the server may have it. The job stays in_flight
      // so that the next run reconciles it before sending anything.
      return Done();
    }
    if (c == Code::kUnauthenticated) {
      (void)db_->FailJob(j.job_id, st.message(), false);
      AddFailure(j, st.message(), false);
      SetFatal(st);
      return Done();
    }
    if (c == Code::kForbidden) return Refused(j, st);
    if (c == Code::kConflict && j.kind == JobKind::kRevision && j.attempts < options_.max_attempts) {
      // 409: a revision of this photo is still processing (perhaps ours):
      // read the photo before sending it again.
      PassProbe(j);
      j.probe = false;
      j.conflict_at = WallSeconds();
      auto delay = Backoff(j.attempts, 5.0);
      return scheduler_.At(SteadyClock::now() + delay, [this, j]() mutable { RecheckRevision(std::move(j)); });
    }
    if (c == Code::kNotFound) {
      // The album (or photo) is gone: unpin the ids so that the next run
      // looks them up again, and drop the album's index.
      (void)db_->SetRootTarget(targets_[j.root_index].root_id, 0, 0);
      (void)db_->ForgetAlbumIndex(targets_[j.root_index].album);
    }
    PassProbe(j);
    j.probe = false;
    if (c == Code::kRejected || c == Code::kNotFound) {
      const bool permanent = c == Code::kRejected;
      (void)db_->FailJob(j.job_id, st.message(), permanent);
      AddFailure(j, st.message(), permanent);
      return Done();
    }
    if (ambiguous) {
      // Reconciled in a batch at the end (FinishOutstanding enforces the attempt
      // bound). Without an answer, or with a gateway's 502/504/52x, the server
      // behind may still be storing it.
      const bool gateway_page = r.status >= 500 && r.Header("content-type").find("text/html") != std::string::npos;
      if (!answered || gateway_page || r.status == 502 || r.status == 504 || r.status >= 520) {
        j.settle_at = SteadyClock::now() + std::chrono::seconds(config_.reconcile_delay);
      }
      std::lock_guard lock(mu_);
      ambiguous_.push_back(j);
      --outstanding_;
      cv_.notify_all();
      return;
    }
    if (j.attempts >= options_.max_attempts) {
      (void)db_->FailJob(j.job_id, st.message(), false);
      AddFailure(j, st.message() + " (gave up after " + std::to_string(j.attempts) + " attempts)", false);
      return Done();
    }
    Retry(j, Backoff(j.attempts, c == Code::kConflict ? 5.0 : 0.5));
  }

  // A 403 on an upload or revision: the token was good for the listings, so
  // it is this album or project (locked for review, a plan limit, a scope).
  // The second refusal in a run blocks the album; whether it is the token
  // after all (a plan without API access) is checked once, off this thread.
  void Refused(Job& j, const Status& st) {
    const std::int64_t album = targets_[j.root_index].album;
    int refusals = 0;
    {
      std::lock_guard lock(mu_);
      Gate& g = gates_[album];
      refusals = ++g.refusals;
      g.open = false;  // one at a time again
      if (!g.probing) g.probing = j.probe = true;
    }
    if (refusals < 2 && j.probe && j.attempts < options_.max_attempts) return Retry(j, Backoff(j.attempts, 2.0));
    Block(album, j.root_index, st);
    Unsent(j, st);
  }

  // After a 409 (the server refused this revision: another one of the photo
  // was processing): read the photo before sending again. Gone: the photo
  // was deleted. Revised since the 409 with our size: sent meanwhile (our
  // content). Otherwise it is sent again.
  void RecheckRevision(Job j) {
    const Target& t = targets_[j.root_index];
    auto photo = client_.GetPhoto(t.project, t.album, j.photo_id);
    if (!photo.ok() && photo.status().code() == Code::kNotFound) {
      (void)db_->FailJob(j.job_id, photo.status().message(), false);
      AddFailure(j, photo.status().message(), false);
      return Done();
    }
    if (photo.ok()) {
      const auto revised_at = ParseResetTime(photo->revision_uploaded_at, WallSeconds());
      if (revised_at && *revised_at > j.conflict_at && photo->file_size && *photo->file_size == j.size) {
        if (Status st = Finished(j, j.photo_id, /*reconciled=*/true); !st.ok()) SetFatal(st);
        return Done();
      }
    }
    Send(std::move(j));
  }

  static bool RevisionLanded(const RemotePhoto& photo, const Job& j) {
    // Revised after we started sending (a few seconds of clock skew
    // allowed), with the size we sent where the server gives sizes.
    const auto revised_at = ParseResetTime(photo.revision_uploaded_at, WallSeconds());
    const bool size_ok = !photo.file_size || *photo.file_size == j.size;
    return revised_at && *revised_at >= j.started_at - 5 && size_ok;
  }

  // Waits for every job, then reconciles ambiguous ones in batches (one album
  // listing for many) and resends what the server does not have.
  void FinishOutstanding() {
    for (int round = 0;; ++round) {
      {
        std::unique_lock lock(mu_);
        while (outstanding_ > 0 && !Stopping(true)) {
          cv_.wait_for(lock, std::chrono::milliseconds(200));
          if (Stopping(false)) {
            // Retries waiting for their backoff give up now (Send sees the
            // stop), and queued transfers are cancelled unsent; running ones end.
            lock.unlock();
            scheduler_.Drain();
            DrainParked();
            engine_.Stop(false);
            lock.lock();
          }
        }
        if (Stopping(true)) return;
      }
      std::vector<Job> batch;
      {
        std::lock_guard lock(mu_);
        batch.swap(ambiguous_);
      }
      if (batch.empty()) return;
      if (Stopping(false)) return;  // left in_flight: the next run reconciles them
      std::vector<Job> resend;
      if (Status st = Reconcile(batch, resend); !st.ok()) {
        SetFatal(st);
        return;
      }
      for (Job& j : resend) {
        if (j.attempts >= options_.max_attempts) {
          (void)db_->FailJob(j.job_id, "no answer from the server after " + std::to_string(j.attempts) + " attempts", false);
          AddFailure(j, "no answer from the server after " + std::to_string(j.attempts) + " attempts", false);
          continue;
        }
        {
          std::lock_guard lock(mu_);
          ++outstanding_;
        }
        Retry(std::move(j), Backoff(j.attempts, 0.5));
      }
    }
  }

  const Config& config_;
  Manifest& plan_db_;               // the planner's connection (batched writes)
  // Jobs, runs and the shared bucket (durable writes): a second connection
  // for a sync, so that the transfer side never waits behind the planner's
  // batches; a push (a few rows) uses the planner's, one open less.
  std::unique_ptr<Manifest> own_jobs_db_;
  Manifest* db_;
  OwnerLease lease_;                // proves to other processes that our jobs are live
  JobOwner owner_;
  const SyncOptions& options_;
  std::vector<PlanTarget> only_;    // push: the named files
  const SyncEventFn& on_event_;
  ManifestBuckets buckets_;
  TransferEngine engine_;
  Throttle throttle_;
  ShootbinClient client_;
  AlbumIndex index_{*db_, client_};
  std::vector<Target> targets_;

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  SyncReport report_;
  std::int64_t outstanding_ = 0;
  std::vector<Job> ambiguous_;
  std::map<std::int64_t, Gate> gates_;               // album -> its gate
  std::mt19937_64 rng_;
  std::atomic<bool> fatal_{false};
  std::mutex event_mu_;
  Batcher<Pending> claimer_{[this](std::vector<Pending>& b) { return CommitClaims(b); },
                            [this](Pending& p, const Status& st) { AfterClaim(p, st); }};
  Batcher<Answered> recorder_{[this](std::vector<Answered>& b) { return CommitAnswered(b); },
                               [this](Answered& a, const Status& st) { AfterAnswered(a, st); }};
  Scheduler scheduler_;  // last: its thread stops before the rest is destroyed
};

}  // namespace

int SyncExitCode(const SyncReport& report) {
  switch (report.status.code()) {
    case Code::kOk: break;
    case Code::kUnauthenticated:
    case Code::kForbidden: return 3;
    case Code::kCancelled: return 5;
    case Code::kInvalidArgument:
    case Code::kNotFound: return 2;
    default: return 1;
  }
  return report.failed + report.rejected + report.plan.rejected + report.plan.conflict + report.held +
                     report.unconfirmed >
                 0 ||
             report.plan.errors > 0
         ? 1
         : 0;
}

SyncReport RunSync(const Config& config, Manifest& manifest, const SyncOptions& options,
                   const SyncEventFn& on_event) {
  Result<std::unique_ptr<Manifest>> jobs_db = std::unique_ptr<Manifest>();
  if (options.files.empty()) jobs_db = Manifest::Open(config.ManifestPath());
  auto lease = OwnerLease::Acquire(config.state_dir);
  if (!jobs_db.ok() || !lease.ok()) {
    SyncReport report;
    report.status = !jobs_db.ok() ? jobs_db.status() : lease.status();
    return report;
  }
  SyncRun run(config, manifest, std::move(*jobs_db), std::move(*lease), options, on_event);
  return run.Run();
}

}  // namespace shotsync
