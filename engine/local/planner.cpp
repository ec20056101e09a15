#include "shotsync/planner.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "shotsync/bounded_queue.hpp"
#include "shotsync/hasher.hpp"
#include "shotsync/version.hpp"
#include "shotsync/scanner.hpp"

namespace shotsync {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::string Megabytes(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", double(bytes) / (1024.0 * 1024.0));
  return buf;
}

// Funnels the plan's manifest writes into short transactions: at most 256
// rows or 100 ms each, so that another process (a hook's push) never waits
// long for the write lock, and a crash loses at most one short batch of stats
// (which only costs re-hashing those files).
class BatchWriter {
 public:
  explicit BatchWriter(Manifest& m) : m_(m) {}
  ~BatchWriter() { (void)Flush(); }

  Status Put(FileRecord& row) {
    std::lock_guard lock(mu_);
    SHOTSYNC_RETURN_IF_ERROR(OpenLocked());
    SHOTSYNC_RETURN_IF_ERROR(m_.PutFile(row));
    ++rows_;
    return MaybeCommitLocked();
  }
  Status Missing(std::int64_t root_id, std::string_view rel) {
    std::lock_guard lock(mu_);
    SHOTSYNC_RETURN_IF_ERROR(OpenLocked());
    SHOTSYNC_RETURN_IF_ERROR(m_.MarkMissing(root_id, rel));
    ++rows_;
    return MaybeCommitLocked();
  }
  Status Flush() {
    std::lock_guard lock(mu_);
    if (!open_) return Status::Ok();
    open_ = false;
    return m_.CommitBatch();
  }

 private:
  Status OpenLocked() {
    if (open_) return Status::Ok();
    SHOTSYNC_RETURN_IF_ERROR(m_.BeginBatch());
    open_ = true;
    rows_ = 0;
    opened_ = SteadyClock::now();
    return Status::Ok();
  }
  Status MaybeCommitLocked() {
    if (!open_) return Status::Ok();
    if (rows_ < 256 && SteadyClock::now() - opened_ < std::chrono::milliseconds(100)) {
      return Status::Ok();
    }
    open_ = false;
    return m_.CommitBatch();
  }

  Manifest& m_;
  std::mutex mu_;
  bool open_ = false;
  int rows_ = 0;
  SteadyClock::time_point opened_;
};

struct HashJob {
  std::size_t root_index;
  FileRecord row;  // stat from the walk; hash etc. from the manifest if known
  int attempts = 0;
};

class PlanRun {
 public:
  PlanRun(const Config& c, Manifest& m, const PlanOptions& o, const PlanItemFn& item,
          const PlanErrorFn& err)
      : config_(c), manifest_(m), options_(o), on_item_(item), on_error_(err), writer_(m) {}

  Result<PlanStats> Run() {
    for (std::size_t i = 0; i < config_.roots.size(); ++i) {
      const RootConfig& rc = config_.roots[i];
      SHOTSYNC_ASSIGN_OR_RETURN(std::int64_t id,
                                manifest_.UpsertRoot({0, rc.path, rc.project, rc.album}));
      root_ids_.push_back(id);
    }
    std::size_t readable = 0;
    for (std::size_t i = 0; i < config_.roots.size(); ++i) {
      if (!options_.only.empty() && std::none_of(options_.only.begin(), options_.only.end(),
                                                 [i](const PlanTarget& t) { return t.root_index == i; })) {
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

 private:
  std::string AbsPath(std::size_t root_index, std::string_view rel) const {
    return config_.roots[root_index].path + "/" + std::string(rel);
  }

  bool Cancelled() const { return options_.cancel && options_.cancel->load(); }

  void Fail(Status st) {
    std::lock_guard lock(mu_);
    if (!failed_.load()) fatal_ = std::move(st);
    failed_ = true;
  }

  void Emit(std::size_t root_index, Action action, std::string reason, const FileRecord& row) {
    if ((options_.flush_before_emit || options_.resolve_upload) &&
        (action == Action::kUpload || action == Action::kRevision)) {
      if (Status w = writer_.Flush(); !w.ok()) return Fail(w);
    }
    PlanItem item{action, std::move(reason), root_index, row, AbsPath(root_index, row.rel_path)};
    // What the album already holds (adopt), a move, or a name conflict: asked
    // without the planner's lock (it may list the album).
    if (action == Action::kUpload && options_.resolve_upload) options_.resolve_upload(item);
    std::lock_guard lock(mu_);
    switch (item.action) {
      case Action::kUpload: ++stats_.upload; stats_.bytes_to_send += row.size; break;
      case Action::kRevision: ++stats_.revision; stats_.bytes_to_send += row.size; break;
      case Action::kSkip: ++stats_.skip; break;
      case Action::kRejected: ++stats_.rejected; break;
      case Action::kAdopt: ++stats_.adopt; break;
      case Action::kMove: ++stats_.moved; break;
      case Action::kConflict: ++stats_.conflict; break;
    }
    on_item_(item);
  }

  // Another root feeding the same album with the same relative path: the
  // server could not tell the two apart (original_filename is the match key).
  std::optional<std::string> PathClash(std::size_t root_index, std::string_view rel) {
    const RootConfig& me = config_.roots[root_index];
    for (std::size_t j = 0; j < config_.roots.size(); ++j) {
      const RootConfig& other = config_.roots[j];
      if (j == root_index || other.project != me.project || other.album != me.album) continue;
      auto row = manifest_.GetFile(root_ids_[j], rel);
      if (row.ok() && row->has_value() && (*row)->state != FileState::kMissing) {
        return "same relative path also in root " + other.path + ", and both feed album '" +
               me.album + "': rename one or use separate albums";
      }
    }
    return std::nullopt;
  }

  void Decided(std::size_t root_index, const FileRecord& row) {
    std::string reason;
    std::optional<FileRecord> dup;
    if (options_.dedupe && !row.remote_photo_id && !row.hash.empty()) {
      auto d = manifest_.FindSyncedByHash(row.hash);
      if (d.ok() && d->has_value() && (*d)->id != row.id) dup = **d;
    }
    Action a = Decide(row, dup ? &*dup : nullptr, reason, options_.retry_rejected);
    if (a == Action::kUpload) {
      if (auto clash = PathClash(root_index, row.rel_path)) {
        a = Action::kRejected;
        reason = *clash;
      }
    }
    Emit(root_index, a, std::move(reason), row);
  }

  // Differ for one directory: unchanged files are decided from their row,
  // changed and new ones go to the hasher, vanished ones become missing.
  // `complete`: files is the whole directory (a walk); otherwise only some
  // of its files (push), and rows of the others are left alone.
  void OnDir(std::size_t root_index, std::string_view dir, std::span<const ScanEntry> files,
             BoundedQueue<HashJob>& queue, bool complete = true) {
    if (failed_.load() || Cancelled()) return;
    const std::int64_t root_id = root_ids_[root_index];
    visited_.insert(std::string(dir));
    // Rows arrive sorted by name, as the walk's files do (both byte order):
    // a merge join, no per-file map.
    std::vector<FileRecord> rows;
    if (complete) {
      auto listed = manifest_.FilesInDir(root_id, dir);
      if (!listed.ok()) return Fail(listed.status());
      rows = std::move(*listed);
    } else {
      for (const ScanEntry& e : files) {
        auto row = manifest_.GetFile(root_id, JoinRel(dir, e.name));
        if (!row.ok()) return Fail(row.status());
        if (*row) rows.push_back(std::move(**row));
      }
    }
    const std::size_t prefix = dir.empty() ? 0 : dir.size() + 1;
    auto row_name = [&](const FileRecord& r) { return std::string_view(r.rel_path).substr(prefix); };
    std::vector<bool> seen(rows.size(), false);
    std::size_t ri = 0;

    // Writes first (missing, oversize), committed before anything that can
    // block: the hash queue and the caller's callback.
    std::vector<HashJob> to_hash;
    std::int64_t quiet_skips = 0, quiet_rejects = 0;
    for (const ScanEntry& e : files) {
      while (ri < rows.size() && row_name(rows[ri]) < std::string_view(e.name)) ++ri;
      FileRecord row;
      if (ri < rows.size() && row_name(rows[ri]) == std::string_view(e.name)) {
        seen[ri] = true;
        const FileRecord& known = rows[ri];
        const bool same_stat =
            known.size == e.size && known.mtime_ns == e.mtime_ns && known.inode == e.inode;
        if (same_stat && known.state != FileState::kMissing &&
            (!known.hash.empty() || known.state == FileState::kRejected)) {
          if (!options_.emit_unchanged) {
            // Nothing to do for it: counted, not reported.
            std::string unused;
            const Action a = Decide(known, nullptr, unused, options_.retry_rejected);
            if (a == Action::kSkip) { ++quiet_skips; continue; }
            if (a == Action::kRejected) { ++quiet_rejects; continue; }
          }
          to_hash.push_back(HashJob{root_index, known, -1});  // -1: unchanged
          continue;
        }
        row = known;
      } else {
        row.root_id = root_id;
        row.rel_path = JoinRel(dir, e.name);
      }
      row.size = e.size;
      row.mtime_ns = e.mtime_ns;
      row.inode = e.inode;
      if (e.size > kShootbinMaxUpload) {
        // Rejected without reading it; a later edit that shrinks it changes the stat.
        row.state = FileState::kRejected;
        row.reason = "over the 10 MB upload limit (" + Megabytes(e.size) + ")";
        row.rejected_by = kVersion;
        if (Status w = writer_.Put(row); !w.ok()) return Fail(w);
        to_hash.push_back(HashJob{root_index, std::move(row), -1});
        continue;
      }
      to_hash.push_back(HashJob{root_index, std::move(row), 0});
    }
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const FileRecord& row = rows[i];
      if (seen[i] || row.state == FileState::kMissing) continue;
      if (Status w = writer_.Missing(root_id, row.rel_path); !w.ok()) return Fail(w);
      std::lock_guard lock(mu_);
      ++stats_.missing;
    }
    if (Status w = writer_.Flush(); !w.ok()) return Fail(w);
    {
      std::lock_guard lock(mu_);
      stats_.scanned += std::int64_t(files.size());
      stats_.skip += quiet_skips;
      stats_.rejected += quiet_rejects;
    }
    for (HashJob& job : to_hash) {
      if (Cancelled()) return;
      if (job.attempts < 0) {
        Decided(root_index, job.row);  // decided from the manifest row, file not read
      } else if (!queue.Push(std::move(job))) {
        return;
      }
    }
  }

  void OnHashed(HashJob&& job, Result<HashOutcome>&& outcome, std::vector<HashJob>& again) {
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

  Status PlanRoot(std::size_t root_index) {
    const RootConfig& rc = config_.roots[root_index];
    const std::int64_t root_id = root_ids_[root_index];
    visited_.clear();
    ScanOptions scan_options{rc.ignore};
    // A few named files (push) are hashed on this thread: no pool to start.
    const int threads = options_.hash_threads > 0 ? options_.hash_threads
                        : !options_.only.empty() && options_.only.size() <= 4
                            ? 1
                            : int(std::max(1u, std::thread::hardware_concurrency()));
    BoundedQueue<HashJob> queue(std::size_t(threads) * 8);
    Status walk_status;
    // The walk (stat calls, all kernel time) and the differ (manifest reads)
    // run on two threads, one directory apart or more: a no-op resync then
    // costs about what the walk alone costs.
    struct Dir {
      std::string path;
      std::vector<ScanEntry> files;
    };
    BoundedQueue<Dir> walked(16);
    std::thread walker([&] {
      if (!options_.only.empty()) {
        walked.Close();
        return;
      }
      Scanner scanner;
      walk_status = scanner.Walk(
          rc.path, scan_options,
          [&](std::string_view dir, std::span<const ScanEntry> files) {
            walked.Push(Dir{std::string(dir), {files.begin(), files.end()}});
          },
          [&](const std::string& path, const Status& st) { ReportError(path, st); });
      walked.Close();
    });
    std::thread differ([&] {
      if (!options_.only.empty()) {
        StatListed(root_index, queue);
      } else {
        while (std::optional<Dir> d = walked.Pop()) OnDir(root_index, d->path, d->files, queue);
      }
      queue.Close();
    });

    std::vector<HashJob> again;
    std::unordered_map<std::uint64_t, HashJob> pending;
    std::uint64_t next_cookie = 0;
    auto run_hashes = [&](const std::function<std::optional<HashJob>()>& source) {
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
    };
    run_hashes([&] { return queue.Pop(); });
    differ.join();
    walker.join();
    // Files that changed while being read get up to two more tries, now that
    // the writer has (probably) finished.
    while (!again.empty() && !failed_.load()) {
      std::vector<HashJob> round = std::move(again);
      again.clear();
      std::size_t next = 0;
      run_hashes([&]() -> std::optional<HashJob> {
        if (next == round.size()) return std::nullopt;
        return std::move(round[next++]);
      });
    }
    if (!walk_status.ok()) return walk_status;
    if (failed_.load() || !options_.only.empty()) return writer_.Flush();

    // Directories that vanished as a whole.
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
    return writer_.Flush();
  }

  // Push: stats the listed files of this root and hands them to OnDir one
  // directory at a time, as a walk would.
  void StatListed(std::size_t root_index, BoundedQueue<HashJob>& queue) {
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

  void ReportError(const std::string& path, const Status& st) {
    {
      std::lock_guard lock(mu_);
      ++stats_.errors;
    }
    on_error_(path, st);
  }

  const Config& config_;
  Manifest& manifest_;
  const PlanOptions& options_;
  const PlanItemFn& on_item_;
  const PlanErrorFn& on_error_;
  BatchWriter writer_;
  std::mutex mu_;  // guards stats_, fatal_ and calls to on_item_
  PlanStats stats_;
  Status fatal_;
  std::atomic<bool> failed_{false};
  std::vector<std::int64_t> root_ids_;
  std::unordered_set<std::string> visited_;  // differ thread only, then the caller
};

}  // namespace

std::string_view ActionName(Action a) noexcept {
  switch (a) {
    case Action::kUpload: return "upload";
    case Action::kRevision: return "revision";
    case Action::kSkip: return "skip";
    case Action::kRejected: return "rejected";
    case Action::kAdopt: return "adopt";
    case Action::kMove: return "move";
    case Action::kConflict: return "conflict";
  }
  return "?";
}

Action Decide(const FileRecord& file, const FileRecord* duplicate_of, std::string& reason, bool retry_rejected) {
  if (file.size > kShootbinMaxUpload) {
    reason = "over the 10 MB upload limit (" + Megabytes(file.size) + ")";
    return Action::kRejected;
  }
  // A refusal stands until the file changes (its row is then decided anew),
  // this shotsync is another version, or the user asks (--retry-rejected).
  if (file.state == FileState::kRejected && file.rejected_by == kVersion && !retry_rejected) {
    reason = file.reason;
    return Action::kRejected;
  }
  if (!file.remote_photo_id) {
    if (duplicate_of) {
      reason = "same content as " + duplicate_of->rel_path + " (dedupe)";
      return Action::kSkip;
    }
    reason = "new";
    return Action::kUpload;
  }
  if (file.remote_hash != file.hash) {
    reason = "content changed since the last upload";
    return Action::kRevision;
  }
  reason = "up to date";
  return Action::kSkip;
}

Result<PlanTarget> LocateFile(const Config& config, const std::string& path) {
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) return Status::Invalid(path + ": " + ec.message());
  // The file itself is not resolved (it may be a symlink the walk would
  // skip); its folder is, as are the roots.
  const std::filesystem::path dir = std::filesystem::canonical(abs.parent_path(), ec);
  if (ec) return Status::NotFound(path + ": " + ec.message());
  const std::string file = (dir / abs.filename()).string();
  if (::access(file.c_str(), F_OK) != 0) return Status::Io(path, errno);
  std::optional<PlanTarget> best;
  std::size_t best_len = 0;
  for (std::size_t i = 0; i < config.roots.size(); ++i) {
    std::error_code rec;
    const std::string root = std::filesystem::canonical(config.roots[i].path, rec).string();
    if (rec || root.size() < best_len) continue;
    if (file.size() > root.size() + 1 && file.compare(0, root.size(), root) == 0 &&
        (root.back() == '/' || file[root.size()] == '/')) {
      best = PlanTarget{i, file.substr(root.size() + (root.back() == '/' ? 0 : 1))};
      best_len = root.size();
    }
  }
  if (!best) return Status::Invalid(path + ": not under any configured root (see roots in the config)");
  // Each folder on the way and the name itself against the root's ignore rules.
  const ScanOptions scan{config.roots[best->root_index].ignore};
  std::string_view rel = best->rel_path;
  for (std::size_t start = 0;;) {
    const std::size_t slash = rel.find('/', start);
    const std::string_view dir = start == 0 ? std::string_view() : rel.substr(0, start - 1);
    const std::string_view name = rel.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (IsIgnored(dir, name, scan)) {
      return Status::Invalid(path + ": ignored by the root's ignore rules (hidden, *.part or an ignore glob)");
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return *best;
}

Result<PlanStats> BuildPlan(const Config& config, Manifest& manifest, const PlanOptions& options,
                            const PlanItemFn& on_item, const PlanErrorFn& on_error) {
  PlanRun run(config, manifest, options, on_item, on_error);
  return run.Run();
}

}  // namespace shotsync
