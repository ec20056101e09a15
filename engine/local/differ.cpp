// The differ: each file the walk (or a push) found against its manifest row.
// Unchanged size, mtime_ns and inode means unchanged: decided from the row,
// the file is not read; changed and new files go to the hash queue; rows of
// files gone from the directory become missing. Decide turns a row into an
// action.
#include <cstdio>

#include "local/plan_run.hpp"
#include "shotsync/fit.hpp"
#include "shotsync/version.hpp"

namespace shotsync {
namespace local {


std::string Megabytes(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", double(bytes) / 1e6);  // decimal, as the progress line
  return buf;
}

// shootbin.md §4: 10 MiB, spelled in the decimal MB every size message
// uses. Appended piecewise: GCC 12 warns falsely on operator+ chains here.
std::string OverUploadLimit(std::uint64_t bytes) {
  std::string reason = "over the upload limit of 10.5 MB (10 MiB): ";
  reason += Megabytes(bytes);
  return reason;
}

// Another root feeding the same album with the same relative path: the
// server could not tell the two apart (original_filename is the match key).
std::optional<std::string> PlanRun::PathClash(std::size_t root_index, std::string_view rel) {
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

// Decide (below), with the size rule lifted for a file its root fits.
static Action DecideSized(const FileRecord& file, const FileRecord* duplicate_of, std::string& reason,
                          bool retry_rejected, bool fits);

void PlanRun::Decided(std::size_t root_index, const FileRecord& row) {
  const bool fits = FitApplies(config_.roots[root_index], row.rel_path, row.size);
  std::string reason;
  std::optional<FileRecord> dup;
  if (options_.dedupe && !row.remote_photo_id && !row.hash.empty()) {
    auto d = manifest_.FindSyncedByHash(row.hash);
    if (d.ok() && d->has_value() && (*d)->id != row.id) dup = **d;
  }
  Action a = DecideSized(row, dup ? &*dup : nullptr, reason, options_.retry_rejected, fits);
  if (a == Action::kUpload) {
    if (auto clash = PathClash(root_index, row.rel_path)) {
      a = Action::kRejected;
      reason = *clash;
    }
  }
  if (!fits || (a != Action::kUpload && a != Action::kRevision)) return Emit(root_index, a, std::move(reason), row);
  // An over-size JPEG of a root with fit on (docs/fit.md), fitted here in
  // memory: the item carries the size of the copy, which is what the album
  // will hold (adoption and reconcile compare it) and what the job records;
  // the send writes the copy again (same bytes). The row keeps the original's
  // size and hash. One that cannot fit is rejected, recorded like any refusal.
  auto fitted = FitJpegFile(AbsPath(root_index, row.rel_path));
  if (!fitted.ok()) {
    const Status& st = fitted.status();
    if (st.code() == Code::kIo) return Emit(root_index, Action::kRejected, "unreadable: " + st.message(), row);
    FileRecord refused = row;
    refused.state = FileState::kRejected;
    refused.reason = st.code() == Code::kRejected ? st.message() : "cannot be fitted: " + st.message();
    refused.rejected_by = kVersion;
    if (Status w = writer_.Put(refused); !w.ok()) return Fail(w);
    return Emit(root_index, Action::kRejected, refused.reason, refused);
  }
  FileRecord sent = row;
  sent.size = fitted->bytes.size();
  reason += "; sent re-encoded at JPEG quality ";
  reason += std::to_string(fitted->quality);
  reason += ", ";
  reason += Megabytes(sent.size);
  reason += " (the original stays as it is)";
  Emit(root_index, a, std::move(reason), sent);
}

namespace {

// A file an earlier plan decided from its stat (no hash: its send will hash
// it) that is still at that stat and was not sent since.
bool PlannedUnread(const FileRecord* before, const FileRecord& now) {
  return before && before->hash.empty() && before->state == FileState::kNew && before->size == now.size &&
         before->mtime_ns == now.mtime_ns && before->inode == now.inode;
}

}  // namespace

// Differ for one directory: unchanged files are decided from their row,
// changed and new ones go to the hasher, vanished ones become missing.
// `complete`: files is the whole directory (a walk); otherwise only some
// of its files (push), and rows of the others are left alone.
void PlanRun::OnDir(std::size_t root_index, std::string_view dir, std::span<const ScanEntry> files,
                    BoundedQueue<HashJob>& queue, bool complete) {
  if (failed_.load() || Cancelled()) return;
  const std::int64_t root_id = root_ids_[root_index];
  visited_.insert(std::string(dir));
  // Rows arrive sorted by name, as the walk's files do (both byte order):
  // a merge join, no per-file map.
  auto known_rows = KnownRows(root_id, dir, files, complete);
  if (!known_rows.ok()) return Fail(known_rows.status());
  const std::vector<FileRecord>& rows = *known_rows;
  const std::size_t prefix = dir.empty() ? 0 : dir.size() + 1;
  auto row_name = [&](const FileRecord& r) { return std::string_view(r.rel_path).substr(prefix); };
  std::vector<bool> seen(rows.size(), false);
  std::size_t ri = 0;

  // Writes first (missing, oversize), committed before anything that can
  // block: the hash queue and the caller's callback.
  std::vector<HashJob> to_hash;
  std::int64_t quiet_skips = 0, quiet_rejects = 0, quiet_acks = 0;
  for (const ScanEntry& e : files) {
    while (ri < rows.size() && row_name(rows[ri]) < std::string_view(e.name)) ++ri;
    FileRecord row;
    const FileRecord* before = nullptr;  // the file's row, if it has one
    if (ri < rows.size() && row_name(rows[ri]) == std::string_view(e.name)) {
      seen[ri] = true;
      const FileRecord& known = rows[ri];
      before = &known;
      const bool same_stat =
          known.size == e.size && known.mtime_ns == e.mtime_ns && known.inode == e.inode;
      // Refused as over-size (not read) before its root fitted: read it now.
      const bool fits = FitApplies(config_.roots[root_index], known.rel_path, known.size);
      if (same_stat && !(fits && known.hash.empty()) && known.state != FileState::kMissing &&
          (!known.hash.empty() || known.state == FileState::kRejected)) {
        if (!options_.emit_unchanged) {
          // Nothing to do for it: counted, not reported.
          std::string unused;
          const Action a = DecideSized(known, nullptr, unused, options_.retry_rejected, fits);
          if (a == Action::kSkip) { ++quiet_skips; continue; }
          if (a == Action::kRejected) {
            ++(acknowledged_.contains({root_id, known.rel_path}) ? quiet_acks : quiet_rejects);
            continue;
          }
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
    if (e.size > kShootbinMaxUpload && !FitApplies(config_.roots[root_index], row.rel_path, e.size)) {
      // Rejected without reading it; a later edit that shrinks it changes the stat.
      row.state = FileState::kRejected;
      row.reason = OverUploadLimit(e.size);
      row.rejected_by = kVersion;
      if (Status w = writer_.Put(row); !w.ok()) return Fail(w);
      to_hash.push_back(HashJob{root_index, std::move(row), -1});
      continue;
    }
    auto unread = SendsUnread(root_index, before, row);
    if (!unread.ok()) return Fail(unread.status());
    if (*unread) {
      // Decided from the stat: written without a hash (the send hashes it),
      // unless an earlier plan wrote it so and it was not sent since (a
      // library planned but not yet uploaded is not rewritten per plan).
      const bool written = PlannedUnread(before, row) && before->reason.empty() && before->rejected_by.empty();
      row.hash.clear();
      row.state = FileState::kNew;
      row.reason.clear();
      row.rejected_by.clear();
      if (Status w = written ? Status::Ok() : writer_.Put(row); !w.ok()) return Fail(w);
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
    stats_.acknowledged += quiet_acks;
  }
  HandOn(root_index, to_hash, queue);
}

// Whether the file (its row `before`, if any; `now` with the walk's stat)
// must be sent whatever its bytes are (PlanOptions::send_unread): then the
// plan does not read it and the send hashes it as it goes.
Result<bool> PlanRun::SendsUnread(std::size_t root_index, const FileRecord* before, const FileRecord& now) {
  if (!options_.send_unread || now.size == 0 || FitApplies(config_.roots[root_index], now.rel_path, now.size)) {
    return false;
  }
  if (before && before->remote_photo_id) {
    // A revision: its size changed, or an earlier plan decided so unread and
    // it was not sent yet. Same size, new mtime may be a touch: read it.
    const bool same_stat = before->size == now.size && before->mtime_ns == now.mtime_ns && before->inode == now.inode;
    return before->size != now.size || (same_stat && before->hash.empty() && before->state != FileState::kMissing);
  }
  // Planned unread by an earlier plan and not sent since: still so, and no
  // move (it was already here): no query per file of a library planned but
  // not yet uploaded.
  if (PlannedUnread(before, now)) return true;
  // An upload, unless a synced file of the same size may have moved here
  // (a move is recognised by its content).
  SHOTSYNC_ASSIGN_OR_RETURN(bool maybe_moved, manifest_.AnyBoundOfSize(now.size));
  return !maybe_moved;
}

// The directory's manifest rows, sorted by name: all of them (a walk), or
// those of the listed files only (push).
Result<std::vector<FileRecord>> PlanRun::KnownRows(std::int64_t root_id, std::string_view dir,
                                                   std::span<const ScanEntry> files, bool complete) {
  if (complete) return manifest_.FilesInDir(root_id, dir);
  std::vector<FileRecord> rows;
  for (const ScanEntry& e : files) {
    auto row = manifest_.GetFile(root_id, JoinRel(dir, e.name));
    if (!row.ok()) return row.status();
    if (*row) rows.push_back(std::move(**row));
  }
  return rows;
}

// After the directory's writes are committed: decides the files known
// unchanged, queues the others for hashing (may block: the queue is bounded).
void PlanRun::HandOn(std::size_t root_index, std::vector<HashJob>& to_hash, BoundedQueue<HashJob>& queue) {
  for (HashJob& job : to_hash) {
    if (Cancelled()) return;
    if (job.attempts < 0) {
      Decided(root_index, job.row);  // decided from the manifest row, file not read
    } else if (!queue.Push(std::move(job))) {
      return;
    }
  }
}

static Action DecideSized(const FileRecord& file, const FileRecord* duplicate_of, std::string& reason,
                          bool retry_rejected, bool fits) {
  if (file.size > kShootbinMaxUpload && !fits) {
    reason = local::OverUploadLimit(file.size);
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
  // No hash on a synced row: decided changed without reading it (its size
  // changed; PlanOptions::send_unread), or the bytes last sent are unknown.
  if (file.hash.empty() || file.remote_hash != file.hash) {
    reason = file.hash.empty() ? "changed since the last upload" : "content changed since the last upload";
    return Action::kRevision;
  }
  reason = "up to date";
  return Action::kSkip;
}

}  // namespace local

Action Decide(const FileRecord& file, const FileRecord* duplicate_of, std::string& reason, bool retry_rejected) {
  return local::DecideSized(file, duplicate_of, reason, retry_rejected, /*fits=*/false);
}

}  // namespace shotsync
