// Resolve (at plan time, before an upload is counted): adopt, move or
// conflict, against the album's index.
#include "upload/sync_run.hpp"

#include <sys/stat.h>

#include <cerrno>

#include "shotsync/hasher.hpp"

namespace shotsync::upload {

// Before an upload is counted: does the album already hold it (adopt), is
// it a synced file that moved (move), or would the server confuse its
// name with another file's (conflict)? The album's index is brought up to
// date first, once per run and only for albums that get uploads.
void SyncRun::ResolveUpload(PlanItem& item) {
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
    // Planned unread (it looked new): the album has it by name and size, so
    // it is read once here, for the hash its row and remote_hash record. A
    // file changing meanwhile is bound without one: the next plan revises it.
    std::string hash;
    if (item.file.hash.empty()) {
      hash = HashIfStill(item.abs_path, {item.file.size, item.file.mtime_ns, item.file.inode});
      item.file.hash = hash;
    }
    if (Status st = db_->BindRemote(item.file.id, match->photo_id, 0, hash); !st.ok()) {
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
bool SyncRun::ResolveMove(PlanItem& item) {
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

}  // namespace shotsync::upload
