// PlanRun: one root at a time, three stages on their own threads, one
// directory or more apart, so that a no-op resync costs about what the walk
// alone costs.
//
//   thread          runs                            owns / writes
//   caller          Run, PlanRoot; after the joins  root_ids_; visited_ (once the differ
//                   the retries of changed files    is joined); marks vanished folders
//                   and the vanished folders        missing (through writer_)
//   walker          Walk: Scanner::Walk (stat       nothing of the run; pushes WalkedDir
//                   calls, all kernel time)         into `walked` (16 deep); ReportError
//   differ          OnDir per directory, or push's  visited_; reads rows; writes missing and
//                   StatListed (differ.cpp)         oversize rows (writer_); Emit for files
//                                                   decided unread; pushes HashJobs (bounded)
//   hash pipeline   HashMany: `threads` workers     the workers only read files; the serial
//                   read and hash; a serial stage   stage runs OnHashed: hashed rows
//                   hands back results in order     (writer_), Emit
// Every manifest write goes through writer_ (BatchWriter, its own lock);
// stats_ and fatal_ are under mu_. on_item_ is called from the differ and
// the hash pipeline, one call at a time and in counting order (the emit
// turn), and never while mu_ is held: a caller whose callback blocks (a sync
// feeding its uploads) stalls only the thread that emits. on_error_ may be
// called from any of these threads.
#include "local/plan_run.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <thread>
#include <unordered_map>

#include "shotsync/live.hpp"
#include "shotsync/version.hpp"

namespace shotsync::local {

Result<PlanStats> PlanRun::Run() {
  for (std::size_t i = 0; i < config_.roots.size(); ++i) {
    const RootConfig& rc = config_.roots[i];
    SHOTSYNC_ASSIGN_OR_RETURN(std::int64_t id,
                              manifest_.UpsertRoot({0, rc.path, rc.project, rc.album}));
    root_ids_.push_back(id);
  }
  SHOTSYNC_ASSIGN_OR_RETURN(std::vector<Manifest::Acknowledged> acked, manifest_.AcknowledgedFiles());
  for (Manifest::Acknowledged& a : acked) acknowledged_.emplace(a.root_id, std::move(a.rel_path));
  std::size_t readable = 0;
  for (std::size_t i = 0; i < config_.roots.size(); ++i) {
    if ((!options_.only.empty() && std::none_of(options_.only.begin(), options_.only.end(),
                                                [i](const PlanTarget& t) { return t.root_index == i; })) ||
        std::find(options_.skip_roots.begin(), options_.skip_roots.end(), i) != options_.skip_roots.end()) {
      ++readable;
      continue;
    }
    Status st = PlanRoot(i);
    if (failed_.load()) return fatal_;
    if (st.ok()) {
      ++readable;
    } else {
      ++stats_.errors;
      on_error_(config_.roots[i].path, st);
    }
  }
  SHOTSYNC_RETURN_IF_ERROR(writer_.Flush());
  if (!config_.roots.empty() && readable == 0) {
    return Status::Invalid("no root folder could be read");
  }
  return stats_;
}

void PlanRun::Fail(Status st) {
  std::lock_guard lock(mu_);
  if (!failed_.load()) fatal_ = std::move(st);
  failed_ = true;
}

void PlanRun::ReportError(const std::string& path, const Status& st) {
  {
    std::lock_guard lock(mu_);
    ++(st.code() == Code::kSkipped ? stats_.warnings : stats_.errors);
  }
  on_error_(path, st);
}

void PlanRun::Emit(std::size_t root_index, Action action, std::string reason, const FileRecord& row) {
  if ((options_.flush_before_emit || options_.resolve_upload) &&
      (action == Action::kUpload || action == Action::kRevision)) {
    if (Status w = writer_.Flush(); !w.ok()) return Fail(w);
  }
  if (action == Action::kRejected && acknowledged_.contains({root_ids_[root_index], row.rel_path})) {
    std::lock_guard lock(mu_);
    ++stats_.acknowledged;  // `shotsync ignore`: known, and not a failure
    return;
  }
  PlanItem item{action, std::move(reason), root_index, row, AbsPath(root_index, row.rel_path)};
  // What the album already holds (adopt), a move, or a name conflict: asked
  // without the planner's lock (it may list the album).
  if (action == Action::kUpload && options_.resolve_upload) options_.resolve_upload(item);
  {
    // Wait for the turn, count, then call without the lock: calls stay one at
    // a time and in the order counted, and a blocking callback holds up no
    // other thread's stats, errors or failure.
    std::unique_lock lock(mu_);
    emit_turn_.wait(lock, [&] { return !emitting_; });
    emitting_ = true;
    switch (item.action) {
      case Action::kUpload: ++stats_.upload; stats_.bytes_to_send += row.size; break;
      case Action::kRevision: ++stats_.revision; stats_.bytes_to_send += row.size; break;
      case Action::kSkip: ++stats_.skip; break;
      case Action::kRejected: ++stats_.rejected; break;
      case Action::kAdopt: ++stats_.adopt; break;
      case Action::kMove: ++stats_.moved; break;
      case Action::kConflict: ++stats_.conflict; break;
    }
  }
  struct TurnEnd {  // hands the turn on however on_item_ returns
    PlanRun& run;
    ~TurnEnd() {
      {
        std::lock_guard lock(run.mu_);
        run.emitting_ = false;
      }
      run.emit_turn_.notify_one();
    }
  } turn_end{*this};
  on_item_(item);
}

void PlanRun::OnHashed(HashJob&& job, Result<HashOutcome>&& outcome, std::vector<HashJob>& again) {
  if (failed_.load() || Cancelled()) return;
  FileRecord& row = job.row;
  const std::string path = AbsPath(job.root_index, row.rel_path);
  {
    std::lock_guard lock(mu_);
    ++stats_.hashed;
  }
  if (!outcome.ok()) {
    // Not recorded: the next run tries again (a permission fix does not change mtime).
    on_error_(path, outcome.status());
    Emit(job.root_index, Action::kRejected, "unreadable: " + outcome.status().message(), row);
    return;
  }
  if (outcome->changed) {
    if (++job.attempts < 3) {
      again.push_back(std::move(job));
    } else {
      on_error_(path, Status(Code::kRejected, path + ": keeps changing while being read; will retry next run"));
      Emit(job.root_index, Action::kRejected, "file kept changing while being read", row);
    }
    return;
  }
  row.size = outcome->stat.size;
  row.mtime_ns = outcome->stat.mtime_ns;
  row.inode = outcome->stat.inode;
  row.hash = outcome->hash;
  row.reason.clear();
  // Whether the bytes are an image is the server's decision (a motion
  // photo, a RAW or a format we do not know may be fine): only what it
  // would refuse by size alone is refused here.
  if (row.size == 0) {
    row.state = FileState::kRejected;
    row.reason = "empty file";
    row.rejected_by = kVersion;
  } else {
    row.state = row.remote_photo_id && row.remote_hash == row.hash ? FileState::kSynced
                                                                     : FileState::kNew;
    row.rejected_by.clear();
  }
  if (Status w = writer_.Put(row); !w.ok()) return Fail(w);
  Decided(job.root_index, row);
}

int PlanRun::HashThreads() const {
  // A few named files (push) are hashed on this thread: no pool to start.
  return options_.hash_threads > 0 ? options_.hash_threads
         : !options_.only.empty() && options_.only.size() <= 4
             ? 1
             : int(std::max(1u, std::thread::hardware_concurrency()));
}

Status PlanRun::Walk(const RootConfig& rc, BoundedQueue<WalkedDir>& walked) {
  ScanOptions scan_options{rc.ignore, rc.include, options_.filter};
  Scanner scanner;
  Status st = scanner.Walk(
      rc.path, scan_options,
      [&](std::string_view dir, std::span<const ScanEntry> files) {
        if (options_.live) options_.live->AddFound(std::int64_t(files.size()));
        walked.Push(WalkedDir{std::string(dir), {files.begin(), files.end()}});
      },
      [&](const std::string& path, const Status& err) { ReportError(path, err); });
  walked.Close();
  return st;
}

void PlanRun::HashJobs(int threads, const std::function<std::optional<HashJob>()>& source,
                       std::vector<HashJob>& again) {
  // `next` and `done` never run at once (HashMany): `pending` needs no lock.
  std::unordered_map<std::uint64_t, HashJob> pending;
  std::uint64_t next_cookie = 0;
  HashMany(
      threads,
      [&]() -> std::optional<HashTask> {
        std::optional<HashJob> job = source();
        if (!job) return std::nullopt;
        const std::uint64_t cookie = next_cookie++;
        HashTask task{AbsPath(job->root_index, job->row.rel_path), cookie};
        pending.emplace(cookie, std::move(*job));
        return task;
      },
      [&](HashTask&& task, Result<HashOutcome>&& outcome) {
        auto it = pending.find(task.cookie);
        HashJob job = std::move(it->second);
        pending.erase(it);
        OnHashed(std::move(job), std::move(outcome), again);
      });
}

Status PlanRun::PlanRoot(std::size_t root_index) {
  const RootConfig& rc = config_.roots[root_index];
  const std::int64_t root_id = root_ids_[root_index];
  visited_.clear();
  const int threads = HashThreads();
  std::vector<HashJob> again;
  Status walk_status;
  if (!options_.only.empty()) {
    // A push's named files are stat'ed and queued on this thread, then
    // hashed where they must be: a hook's process per photo starts no walker
    // or differ. Room for every file, so queueing never waits for the hasher.
    BoundedQueue<HashJob> queue(std::max(options_.only.size(), std::size_t(threads) * 8));
    StatListed(root_index, queue);
    queue.Close();
    HashJobs(threads, [&] { return queue.Pop(); }, again);
  } else {
    BoundedQueue<HashJob> queue(std::size_t(threads) * 8);
    BoundedQueue<WalkedDir> walked(16);
    std::thread walker([&] { walk_status = Walk(rc, walked); });
    std::thread differ([&] {
      // A filtered walk saw only part of each folder: nothing is missing.
      const bool complete = options_.filter == nullptr;
      while (std::optional<WalkedDir> d = walked.Pop()) OnDir(root_index, d->path, d->files, queue, complete);
      queue.Close();
    });
    HashJobs(threads, [&] { return queue.Pop(); }, again);
    differ.join();
    walker.join();
  }
  // Files that changed while being read get up to two more tries, now that
  // the writer has (probably) finished.
  while (!again.empty() && !failed_.load()) {
    std::vector<HashJob> round = std::move(again);
    again.clear();
    std::size_t next = 0;
    HashJobs(
        threads,
        [&]() -> std::optional<HashJob> {
          if (next == round.size()) return std::nullopt;
          return std::move(round[next++]);
        },
        again);
  }
  if (!walk_status.ok()) return walk_status;
  if (failed_.load() || !options_.only.empty() || options_.filter) return writer_.Flush();
  SHOTSYNC_RETURN_IF_ERROR(MarkVanishedDirs(root_id));
  return writer_.Flush();
}

// Directories that vanished as a whole (the walk never visited them).
Status PlanRun::MarkVanishedDirs(std::int64_t root_id) {
  SHOTSYNC_ASSIGN_OR_RETURN(std::vector<std::string> dirs, manifest_.Dirs(root_id));
  for (const std::string& dir : dirs) {
    if (visited_.contains(dir)) continue;
    std::vector<std::string> gone;
    SHOTSYNC_RETURN_IF_ERROR(manifest_.ForEachFileInDir(root_id, dir, [&](const FileRecord& r) {
      if (r.state != FileState::kMissing) gone.push_back(r.rel_path);
    }));
    for (const std::string& rel : gone) {
      SHOTSYNC_RETURN_IF_ERROR(writer_.Missing(root_id, rel));
      ++stats_.missing;
    }
  }
  return Status::Ok();
}

// Push: stats the listed files of this root and hands them to OnDir one
// directory at a time, as a walk would.
void PlanRun::StatListed(std::size_t root_index, BoundedQueue<HashJob>& queue) {
  std::map<std::string, std::vector<ScanEntry>> by_dir;
  for (const PlanTarget& t : options_.only) {
    if (t.root_index != root_index) continue;
    const std::string path = AbsPath(root_index, t.rel_path);
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0) {
      ReportError(path, Status::Io(path, errno));
      continue;
    }
    if (!S_ISREG(st.st_mode)) {
      ReportError(path, Status::Invalid(path + ": not a regular file"));
      continue;
    }
    const auto slash = t.rel_path.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : t.rel_path.substr(0, slash);
    ScanEntry e{t.rel_path.substr(slash == std::string::npos ? 0 : slash + 1), std::uint64_t(st.st_size),
                std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, std::uint64_t(st.st_ino)};
    by_dir[dir].push_back(std::move(e));
  }
  for (auto& [dir, entries] : by_dir) {
    std::sort(entries.begin(), entries.end(), [](const ScanEntry& a, const ScanEntry& b) { return a.name < b.name; });
    entries.erase(std::unique(entries.begin(), entries.end(),
                              [](const ScanEntry& a, const ScanEntry& b) { return a.name == b.name; }),
                  entries.end());
    OnDir(root_index, dir, entries, queue, /*complete=*/false);
  }
}

}  // namespace shotsync::local
