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
// The projects are listed once for all roots. A failure of the token, the
// network or the server is the run's (returned); a target that does not
// resolve (not found, ambiguous, refused) is that root's: one line naming
// the config's file:line, and a sync does not plan the root's files.
Status SyncRun::ResolveTargets() {
  std::map<std::pair<std::string, std::string>, Target> resolved;
  std::map<std::int64_t, RootRecord> known;
  std::optional<std::vector<NamedId>> projects;
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
      SHOTSYNC_RETURN_IF_ERROR(ResolveTarget(rc, projects, t));
      if (!t.status.ok()) t.status = Status(t.status.code(), rc.where + ": " + t.status.message());
      resolved[key] = t;
    }
    if (t.resolved && !recorded && !options_.dry_run) {
      SHOTSYNC_RETURN_IF_ERROR(db_->SetRootTarget(t.root_id, t.project, t.album));
    }
    if (!t.status.ok()) {
      Emit({SyncEvent::kFailed, nullptr, rc.path, 0, t.status.message()});
      if (target_error_.ok()) target_error_ = t.status;
    }
    targets_.push_back(t);
  }
  return Status::Ok();
}

// One root's project and album (t.status when they do not resolve); an
// error only when the run cannot go on. A plan creates nothing: what
// `create` would create stays unresolved, and its files count as uploads.
Status SyncRun::ResolveTarget(const RootConfig& rc, std::optional<std::vector<NamedId>>& projects, Target& t) {
  auto runs_fatal = [](const Status& st) {
    const Code c = st.code();
    return c == Code::kUnauthenticated || c == Code::kNetwork || c == Code::kServer || c == Code::kRateLimited ||
           c == Code::kCancelled;
  };
  if (!projects) {
    auto listed = client_.ListProjects();
    if (!listed.ok()) {
      // An answer that is not the listing (cut off, not JSON) is the
      // server's fault, retried by the next run; the rest (an untrusted
      // certificate too) is every root's.
      if (listed.status().code() == Code::kCorrupt) return Status(Code::kServer, listed.status().message());
      return listed.status();
    }
    projects = std::move(*listed);
  }
  const bool create = rc.create && !options_.dry_run;
  auto would_create = [&](const Status& st) { return rc.create && options_.dry_run && st.code() == Code::kNotFound; };
  auto project = client_.ResolveProjectIn(*projects, rc.project, create);
  if (!project.ok()) {
    if (runs_fatal(project.status())) return project.status();
    if (!would_create(project.status())) t.status = project.status();
    return Status::Ok();
  }
  t.project = *project;
  auto album = client_.ResolveAlbum(*project, rc.album, create);
  if (album.ok()) {
    t.album = *album;
    t.resolved = true;
  } else if (runs_fatal(album.status())) {
    return album.status();
  } else if (!would_create(album.status())) {
    t.status = album.status();
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
