// Targets: the project and album ids of every configured root, before anything is planned.
#include "upload/sync_run.hpp"

namespace shotsync::upload {

// push: the roots and relative paths of the named files.
void SyncRun::LocateFiles() {
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

bool SyncRun::Involved(std::size_t root_index) const {
  return options_.files.empty() || std::any_of(only_.begin(), only_.end(), [&](const PlanTarget& t) {
           return t.root_index == root_index;
         });
}

// Project and album ids of every root: pinned in the manifest once
// resolved (a name is looked up again only after a 404 unpinned it), so a
// renamed or a second album of the same name never redirects the uploads.
// A 401 or a 403 on the project listing is the token's (fatal); a missing
// or refused album blocks that root only.
Status SyncRun::ResolveTargets() {
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

std::optional<std::size_t> SyncRun::RootIndexOf(std::int64_t root_id) const {
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    if (targets_[i].root_id == root_id) return i;
  }
  return std::nullopt;
}

}  // namespace shotsync::upload
