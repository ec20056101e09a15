#include "shotsync/verify.hpp"

#include "shotsync/album_index.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "shotsync/fit.hpp"
#include "shotsync/hasher.hpp"
#include "shotsync/owner.hpp"
#include "shotsync/session.hpp"
#include "shotsync/shared_store.hpp"
#include "shotsync/shootbin.hpp"

namespace shotsync {

std::string_view DifferenceName(Difference::Kind kind) noexcept {
  switch (kind) {
    case Difference::kMissingOnDisk: return "missing";
    case Difference::kReappeared: return "reappeared";
    case Difference::kChanged: return "changed";
    case Difference::kNotRegular: return "not-a-file";
    case Difference::kUnreadable: return "unreadable";
    case Difference::kUnknownRoot: return "unknown-root";
    case Difference::kInFlight: return "in-flight";
    case Difference::kMissingOnServer: return "not-on-server";
    case Difference::kServerOnly: return "server-only";
    case Difference::kSizeDiffers: return "size-differs";
  }
  return "?";
}

namespace {

class VerifyRun {
 public:
  VerifyRun(const Config& c, Manifest& m, const VerifyOptions& o) : config_(c), m_(m), options_(o) {}

  VerifyReport Run() {
    report_.status = m_.IntegrityCheck();
    if (report_.status.ok()) report_.status = Local();
    if (report_.status.ok()) report_.status = Jobs();
    if (report_.status.ok() && options_.remote) report_.status = Remote();
    return std::move(report_);
  }

 private:
  void Add(Difference::Kind kind, std::string path, std::string detail, bool repaired = false) {
    report_.differences.push_back({kind, std::move(path), std::move(detail), repaired});
  }

  // The configured root each manifest root is, by path.
  Status MapRoots() {
    SHOTSYNC_ASSIGN_OR_RETURN(std::vector<RootRecord> roots, m_.Roots());
    for (RootRecord& r : roots) {
      std::size_t index = SIZE_MAX;
      for (std::size_t i = 0; i < config_.roots.size(); ++i) {
        if (config_.roots[i].path == r.path) index = i;
      }
      roots_.emplace(r.id, std::make_pair(index, std::move(r)));
    }
    return {};
  }

  Status Local() {
    SHOTSYNC_RETURN_IF_ERROR(MapRoots());
    std::vector<FileRecord> repairs_missing;
    std::vector<std::pair<FileRecord, Difference::Kind>> repairs_rehash;  // reappeared or changed
    for (const auto& [id, entry] : roots_) {
      // Not a structured binding: clang 14 cannot capture one in the lambda below.
      const auto& index = entry.first;
      const auto& root = entry.second;
      std::int64_t rows = 0;
      SHOTSYNC_RETURN_IF_ERROR(m_.ForEachFile(id, [&](const FileRecord& f) {
        ++rows;
        if (index == SIZE_MAX) return;
        ++report_.files_checked;
        const std::string path = root.path + "/" + f.rel_path;
        // stat, not lstat: the scanner follows symlinks, so the row describes
        // the target (a dangling link is gone, as the scanner sees it).
        struct stat st{};
        if (::stat(path.c_str(), &st) != 0) {
          const int err = errno;
          if (err == ENOENT || err == ENOTDIR) {
            if (f.state != FileState::kMissing) repairs_missing.push_back(f);
          } else {
            // EACCES, EIO...: it may well be there; never marked missing for it.
            Add(Difference::kUnreadable, path, std::string("cannot stat: ") + std::strerror(err));
          }
          return;
        }
        if (!S_ISREG(st.st_mode)) {
          if (f.state != FileState::kMissing) Add(Difference::kNotRegular, path, "no longer a regular file");
          return;
        }
        if (f.state == FileState::kMissing) {
          repairs_rehash.emplace_back(f, Difference::kReappeared);
          return;
        }
        const std::int64_t mtime = std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        if (std::uint64_t(st.st_size) != f.size || mtime != f.mtime_ns) {
          repairs_rehash.emplace_back(f, Difference::kChanged);
        }
      }));
      if (index == SIZE_MAX && rows > 0) {
        Add(Difference::kUnknownRoot, root.path,
            std::to_string(rows) + " files recorded for a root that is no longer configured (kept)");
      }
    }
    for (const FileRecord& f : repairs_missing) {
      bool repaired = false;
      if (options_.repair) {
        SHOTSYNC_RETURN_IF_ERROR(m_.MarkMissing(f.root_id, f.rel_path));
        repaired = true;
      }
      Add(Difference::kMissingOnDisk, PathOf(f), "recorded, but gone from disk", repaired);
    }
    for (auto& [f, kind] : repairs_rehash) {
      const bool repaired = options_.repair;
      if (repaired) {
        // No hash, and an mtime no file has: the next plan reads the file
        // again (or, its size changed, sends it) and uploads or revises it.
        // (A row whose stat matches and has no hash would mean "decided
        // changed, unread": planner.hpp, send_unread.) PutFile never touches
        // the remote id/hash, so a revision still goes to the same photo.
        f.hash.clear();
        f.mtime_ns = 0;
        f.state = FileState::kNew;
        SHOTSYNC_RETURN_IF_ERROR(m_.PutFile(f));
      }
      Add(kind, PathOf(f),
          kind == Difference::kReappeared ? "recorded as missing, but back on disk"
                                          : "size or mtime differ from the record; the next sync hashes it and may revise it",
          repaired);
    }
    return {};
  }

  Status Jobs() {
    SHOTSYNC_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, m_.UnfinishedJobs());
    for (const JobRecord& j : jobs) {
      auto file = m_.GetFileById(j.file_id);
      const std::string path = file.ok() && *file ? PathOf(**file) : "file " + std::to_string(j.file_id);
      const bool alive = OwnerLease::IsAlive(config_.state_dir, j.owner);
      Add(Difference::kInFlight, path,
          std::string(JobKindName(j.kind)) +
              (alive ? " being sent by a running shotsync" : " left in flight by an interrupted run; the next sync checks the server first"));
    }
    return {};
  }

  Status Remote() {
    if (config_.shootbin.token.empty()) {
      return Status(Code::kUnauthenticated, "no Shootbin token: set SHOOTBIN_API_TOKEN (or shootbin.token_file)");
    }
    ShootbinSession session(config_, &m_, SessionOptions{.shared = options_.shared});  // two transfers: a few listings
    ShootbinClient& client = session.client();
    // One listing per album, shared by the roots that feed it.
    std::map<std::pair<std::string, std::string>, std::vector<std::int64_t>> albums;
    for (const auto& [id, entry] : roots_) {
      if (entry.first != SIZE_MAX) {
        const RootConfig& rc = config_.roots[entry.first];
        albums[{rc.project, rc.album}].push_back(id);
      }
    }
    for (const auto& [names, root_ids] : albums) {
      SHOTSYNC_ASSIGN_OR_RETURN(std::int64_t project, client.ResolveProject(names.first, false));
      SHOTSYNC_ASSIGN_OR_RETURN(std::int64_t album, client.ResolveAlbum(project, names.second, false));
      SHOTSYNC_ASSIGN_OR_RETURN(std::vector<RemotePhoto> photos, client.ListPhotos(project, album));
      report_.remote_checked += std::int64_t(photos.size());
      std::map<std::int64_t, const RemotePhoto*> by_id;
      for (const RemotePhoto& p : photos) by_id.emplace(p.id, &p);
      std::set<std::int64_t> known;
      std::vector<FileRecord> forget;
      for (std::int64_t root_id : root_ids) {
        const std::size_t ri = roots_.at(root_id).first;
        SHOTSYNC_RETURN_IF_ERROR(m_.ForEachFile(root_id, [&](const FileRecord& f) {
          if (!f.remote_photo_id) return;
          known.insert(*f.remote_photo_id);
          // A fitted photo has the re-encoded copy's size on the server (docs/fit.md).
          const bool fitted = ri != SIZE_MAX && FitApplies(config_.roots[ri], f.rel_path, f.size);
          auto it = by_id.find(*f.remote_photo_id);
          if (it == by_id.end()) {
            // Gone from disk too: nothing will be sent again, nothing to report.
            if (f.state == FileState::kMissing) return;
            forget.push_back(f);
          } else if (!fitted && it->second->file_size && f.hash == f.remote_hash && *it->second->file_size != f.size) {
            Add(Difference::kSizeDiffers, PathOf(f),
                "photo " + std::to_string(*f.remote_photo_id) + " has " + std::to_string(*it->second->file_size) +
                    " bytes on the server, " + std::to_string(f.size) + " here");
          }
        }));
      }
      // The album is the truth: a photo under the name of a local file that
      // the manifest has not bound (a lost state folder, the web UI) is that
      // file's photo. --repair adopts it, as a sync would.
      std::vector<AlbumPhoto> rows;
      std::int64_t top = 0;
      for (const RemotePhoto& p : photos) {
        rows.push_back({p.id, p.original_filename, p.file_size, !p.approved_at.empty()});
        top = std::max(top, p.id);
      }
      // A whole listing replaces the cached index (photos deleted in the web UI drop out).
      SHOTSYNC_RETURN_IF_ERROR(m_.ForgetAlbumIndex(album));
      SHOTSYNC_RETURN_IF_ERROR(m_.IndexAlbumPhotos(album, project, rows, top, /*complete=*/true));
      if (options_.shared) {
        SHOTSYNC_RETURN_IF_ERROR(options_.shared->ForgetListing(album));
        SHOTSYNC_RETURN_IF_ERROR(options_.shared->StoreListing(album, rows, top, ""));
      }
      AlbumIndex index(m_, client);
      std::vector<std::pair<FileRecord, std::int64_t>> adopt;
      for (std::int64_t root_id : root_ids) {
        const std::size_t ri = roots_.at(root_id).first;
        SHOTSYNC_RETURN_IF_ERROR(m_.ForEachFile(root_id, [&](const FileRecord& f) {
          if (f.remote_photo_id || f.state == FileState::kMissing) return;
          // A fitted photo is stored at its copy's size: fitting is deterministic.
          std::uint64_t size = f.size;
          if (ri != SIZE_MAX && FitApplies(config_.roots[ri], f.rel_path, f.size)) {
            auto copy = FitJpegFile(PathOf(f));
            if (!copy.ok()) return;
            size = copy->bytes.size();
          }
          auto match = index.Find(album, f.rel_path, size, f.id);
          if (match.ok() && match->kind == AlbumMatch::kFound && !known.contains(match->photo_id)) {
            known.insert(match->photo_id);
            adopt.emplace_back(f, match->photo_id);
          }
        }));
      }
      for (const auto& [f, photo] : adopt) {
        bool repaired = false;
        if (options_.repair) {
          // A row the plan did not read (it was to be sent unread) gets the
          // hash of the file as it is, if still the version recorded.
          const std::string hash = f.hash.empty() ? HashIfStill(PathOf(f), {f.size, f.mtime_ns, f.inode}) : "";
          SHOTSYNC_RETURN_IF_ERROR(m_.BindRemote(f.id, photo, 0, hash));
          repaired = true;
        }
        Add(Difference::kServerOnly, PathOf(f),
            "photo " + std::to_string(photo) + " in album '" + names.second + "' holds this file's name" +
                (repaired ? ": adopted" : "; --repair adopts it"),
            repaired);
      }
      for (const FileRecord& f : forget) {
        bool repaired = false;
        if (options_.repair) {
          SHOTSYNC_RETURN_IF_ERROR(m_.ForgetRemote(f.id));
          if (options_.shared) SHOTSYNC_RETURN_IF_ERROR(options_.shared->Forget(album, *f.remote_photo_id));
          repaired = true;
        }
        Add(Difference::kMissingOnServer, PathOf(f),
            "photo " + std::to_string(*f.remote_photo_id) + " is not in album '" + names.second +
                "'" + (repaired ? "; the next sync uploads it again" : ""),
            repaired);
      }
      for (const RemotePhoto& p : photos) {
        if (!known.contains(p.id)) {
          Add(Difference::kServerOnly, p.original_filename,
              "photo " + std::to_string(p.id) + " in album '" + names.second + "' is not in the manifest");
        }
      }
    }
    return {};
  }

  std::string PathOf(const FileRecord& f) const {
    auto it = roots_.find(f.root_id);
    return it == roots_.end() ? f.rel_path : it->second.second.path + "/" + f.rel_path;
  }

  const Config& config_;
  Manifest& m_;
  const VerifyOptions& options_;
  VerifyReport report_;
  std::map<std::int64_t, std::pair<std::size_t, RootRecord>> roots_;  // manifest root id -> config index, row
};

}  // namespace

VerifyReport Verify(const Config& config, Manifest& manifest, const VerifyOptions& options) {
  VerifyRun run(config, manifest, options);
  return run.Run();
}

}  // namespace shotsync
