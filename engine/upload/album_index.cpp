#include "shotsync/album_index.hpp"

#include "shotsync/shared_store.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace shotsync {
namespace {

// A cut name is matched by prefix only when enough of it is left to be
// specific: servers cut at 100 or 255 bytes, not at 10.
constexpr std::size_t kMinPrefix = 16;

std::string_view Basename(std::string_view s) {
  const std::size_t slash = s.rfind('/');
  return slash == std::string_view::npos ? s : s.substr(slash + 1);
}

void AddUnique(std::vector<std::string>& out, std::string s) {
  if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
}

std::string Key(NameMode mode, std::string_view sent) {
  return Nfc(mode == NameMode::kBasename || mode == NameMode::kOther ? Basename(sent) : sent);
}

}  // namespace

std::string_view NameModeName(NameMode m) noexcept {
  switch (m) {
    case NameMode::kUnknown: return "";
    case NameMode::kFull: return "full";
    case NameMode::kBasename: return "basename";
    case NameMode::kOther: return "other";
  }
  return "";
}

NameMode ParseNameMode(std::string_view s) noexcept {
  for (NameMode m : {NameMode::kFull, NameMode::kBasename, NameMode::kOther}) {
    if (NameModeName(m) == s) return m;
  }
  return NameMode::kUnknown;
}

std::string Nfc(std::string_view s) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), utf8proc_ssize_t(s.size()), &out,
                   utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) return std::string(s);  // not UTF-8: the server cannot have normalised it either
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(out, &std::free);
  return std::string(reinterpret_cast<const char*>(out), std::size_t(n));
}

std::vector<std::string> StoredNames(NameMode mode, std::string_view sent) {
  std::vector<std::string> out;
  if (mode != NameMode::kBasename) {
    AddUnique(out, std::string(sent));
    AddUnique(out, Nfc(sent));
  }
  if (mode != NameMode::kFull) {
    AddUnique(out, std::string(Basename(sent)));
    AddUnique(out, Nfc(Basename(sent)));
  }
  return out;
}

NameMode LearnNameMode(std::string_view sent, std::string_view echoed) {
  const bool full = echoed == sent || echoed == Nfc(sent);
  const bool base = echoed == Basename(sent) || echoed == Nfc(Basename(sent));
  if (full && base) return NameMode::kUnknown;  // no '/' sent: nothing learnt
  if (full) return NameMode::kFull;
  if (base) return NameMode::kBasename;
  return NameMode::kOther;
}

Status AlbumIndex::List(std::int64_t project, std::int64_t album, bool force) {
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !listing_.contains(album); });
    if (!force && refreshed_.contains(album)) return Status::Ok();
    listing_.insert(album);
  }
  auto done = [&](Status st) {
    std::lock_guard lock(mu_);
    listing_.erase(album);
    if (st.ok()) refreshed_.insert(album);
    cv_.notify_all();
    return st;
  };
  auto info = reads_.AlbumIndex(album);
  if (!info.ok()) return done(info.status());
  if (Status st = MergeShared(project, album, *info); !st.ok()) return done(st);
  {
    std::lock_guard lock(mu_);
    if (!modes_.contains(album)) modes_[album] = ParseNameMode(info->name_mode);
  }
  // Newest first: a refresh stops at the page that reaches the last listing.
  const std::int64_t known = info->complete ? info->listed_to : 0;
  // (A hostile listing may have left an absurd id: no overflow.)
  const std::int64_t stop_below = known > 0 && known < INT64_MAX ? known + 1 : known;
  auto photos = client_.ListPhotos(project, album, stop_below);
  if (!photos.ok()) return done(photos.status());
  std::vector<AlbumPhoto> rows;
  rows.reserve(photos->size());
  std::int64_t top = known;
  for (const RemotePhoto& p : *photos) {
    top = std::max(top, p.id);
    rows.push_back({p.id, p.original_filename, p.file_size, !p.approved_at.empty()});
  }
  // listed_to must be > 0 to mark the listing; an empty album stays at 0.
  Status st = db_.IndexAlbumPhotos(album, project, rows, top, /*complete=*/true);
  if (st.ok() && shared_) st = shared_->StoreListing(album, rows, top, info->name_mode);
  return done(st);
}

// Studio mode: what the other hosts listed (and uploaded) goes into this
// host's index first, so the server is asked only for what is newer.
Status AlbumIndex::MergeShared(std::int64_t project, std::int64_t album, AlbumIndexInfo& info) {
  if (!shared_) return Status::Ok();
  const std::int64_t known = info.complete ? info.listed_to : 0;
  SHOTSYNC_ASSIGN_OR_RETURN(SharedListing seen, shared_->AlbumListing(album, known));
  const bool further = seen.listed_to > known;
  if (!further && seen.photos.empty()) return Status::Ok();
  SHOTSYNC_RETURN_IF_ERROR(
      db_.IndexAlbumPhotos(album, project, seen.photos, further ? seen.listed_to : 0, /*complete=*/further));
  if (info.name_mode.empty() && !seen.name_mode.empty()) {
    SHOTSYNC_RETURN_IF_ERROR(db_.SetAlbumNameMode(album, seen.name_mode));
  }
  SHOTSYNC_ASSIGN_OR_RETURN(info, reads_.AlbumIndex(album));
  return Status::Ok();
}

Status AlbumIndex::Refresh(std::int64_t project, std::int64_t album) { return List(project, album, false); }
Status AlbumIndex::Relist(std::int64_t project, std::int64_t album) { return List(project, album, true); }

Result<AlbumMatch> AlbumIndex::Find(std::int64_t album, std::string_view sent, std::uint64_t size,
                                    std::int64_t file_id) {
  const NameMode mode = Mode(album);
  std::vector<AlbumPhoto> found;
  std::string matched;
  for (const std::string& name : StoredNames(mode, sent)) {
    SHOTSYNC_ASSIGN_OR_RETURN(found, reads_.AlbumPhotosNamed(album, name));
    if (!found.empty()) {
      matched = name;
      break;
    }
  }
  if (found.empty() && (mode == NameMode::kOther || mode == NameMode::kUnknown)) {
    for (const std::string& name : StoredNames(mode, sent)) {
      SHOTSYNC_ASSIGN_OR_RETURN(found, reads_.AlbumPhotosPrefixOf(album, name, kMinPrefix));
      if (found.size() == 1) {
        matched = found.front().name;
        break;
      }
      found.clear();  // a prefix shared by several photos tells nothing
    }
  }
  if (found.empty()) return AlbumMatch{};
  // Newest first; skip photos that belong to other local files.
  std::string bound_to;
  for (const AlbumPhoto& p : found) {
    SHOTSYNC_ASSIGN_OR_RETURN(std::optional<FileRecord> holder, reads_.FileWithPhoto(p.photo_id));
    if (holder && holder->id != file_id) {
      if (bound_to.empty()) bound_to = holder->rel_path;
      continue;
    }
    if (p.size && *p.size != size) {
      return AlbumMatch{AlbumMatch::kConflict, p.photo_id,
                        "the album already holds \"" + matched + "\" (photo " + std::to_string(p.photo_id) +
                            ") with " + std::to_string(*p.size) + " bytes, this file has " +
                            std::to_string(size) + ": not uploaded; rename the file or remove the photo"};
    }
    std::string how = "already in the album as \"" + matched + "\" (photo " + std::to_string(p.photo_id) + ")";
    if (found.size() > 1) how += "; the album holds " + std::to_string(found.size()) + " photos of this name";
    return AlbumMatch{AlbumMatch::kFound, p.photo_id, std::move(how)};
  }
  return AlbumMatch{AlbumMatch::kConflict, found.front().photo_id,
                    "the album's \"" + matched + "\" is already " + bound_to +
                        "; the server stores names so that the two cannot be told apart: rename one"};
}

Result<std::vector<AlbumPhoto>> AlbumIndex::Created(std::int64_t album, std::string_view sent,
                                                    std::int64_t above_id) {
  std::vector<AlbumPhoto> out;
  for (const std::string& name : StoredNames(Mode(album), sent)) {
    SHOTSYNC_ASSIGN_OR_RETURN(std::vector<AlbumPhoto> found, reads_.AlbumPhotosNamed(album, name));
    for (AlbumPhoto& p : found) {
      if (p.photo_id > above_id) out.push_back(std::move(p));
    }
    if (!out.empty()) return out;
  }
  if (Mode(album) == NameMode::kOther) {
    for (const std::string& name : StoredNames(NameMode::kOther, sent)) {
      SHOTSYNC_ASSIGN_OR_RETURN(std::vector<AlbumPhoto> found, reads_.AlbumPhotosPrefixOf(album, name, kMinPrefix));
      for (AlbumPhoto& p : found) {
        if (p.photo_id > above_id) out.push_back(std::move(p));
      }
      if (!out.empty()) return out;
    }
  }
  return out;
}

std::optional<std::string> AlbumIndex::Reserve(std::int64_t album, std::string_view sent, std::int64_t file_id) {
  const std::string key = Key(Mode(album), sent);
  std::lock_guard lock(mu_);
  auto [it, inserted] = reserved_.try_emplace({album, key}, file_id);
  if (inserted || it->second == file_id) return std::nullopt;
  auto other = reads_.GetFileById(it->second);
  return other.ok() && *other ? (*other)->rel_path : std::string("another file");
}

void AlbumIndex::Learned(std::int64_t project, std::int64_t album, std::span<const Answer> answers) {
  NameMode recorded = NameMode::kUnknown;
  std::vector<AlbumPhoto> rows;
  rows.reserve(answers.size());
  for (const Answer& a : answers) {
    const RemotePhoto& photo = *a.photo;
    if (photo.original_filename.empty()) continue;
    const NameMode learnt = LearnNameMode(a.sent, photo.original_filename);
    {
      std::lock_guard lock(mu_);
      NameMode& mode = modes_[album];
      // Only more specific: kOther (seen a cut name) is never undone.
      if (learnt != NameMode::kUnknown && mode != learnt && mode != NameMode::kOther) {
        mode = learnt;
        recorded = learnt;
      }
    }
    rows.push_back({photo.id, photo.original_filename, photo.file_size, !photo.approved_at.empty()});
  }
  if (recorded != NameMode::kUnknown) (void)db_.SetAlbumNameMode(album, NameModeName(recorded));
  if (rows.empty()) return;
  (void)db_.IndexAlbumPhotos(album, project, rows, /*listed_to=*/0, /*complete=*/false);
  // Best effort: the registry (SharedStore::Finish) has it in any case.
  if (shared_) {
    (void)shared_->StoreListing(album, rows, 0, recorded != NameMode::kUnknown ? NameModeName(recorded) : "");
  }
}

NameMode AlbumIndex::Mode(std::int64_t album) {
  {
    std::lock_guard lock(mu_);
    if (auto it = modes_.find(album); it != modes_.end()) return it->second;
  }
  auto info = reads_.AlbumIndex(album);
  const NameMode m = info.ok() ? ParseNameMode(info->name_mode) : NameMode::kUnknown;
  std::lock_guard lock(mu_);
  return modes_.try_emplace(album, m).first->second;
}

std::int64_t AlbumIndex::Watermark(std::int64_t album) {
  auto info = reads_.AlbumIndex(album);
  return info.ok() ? info->max_photo_id : 0;
}

}  // namespace shotsync
