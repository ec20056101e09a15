// The album index: album_index and album_photos cache what each Shootbin
// album holds; the server is the truth (docs/resume.md).
#include <algorithm>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "store/manifest_impl.hpp"

namespace shotsync {

namespace {

using manifest_internal::NowUnix;
using sql::Blob;
using sql::Stmt;

constexpr char kAlbumIndex[] =
    "SELECT complete, listed_to, name_mode, "
    "(SELECT max(photo_id) FROM album_photos WHERE album_id = ?1) FROM album_index WHERE album_id = ?1";
constexpr char kUpsertAlbumIndex[] =
    "INSERT INTO album_index(album_id, project_id, complete, listed_to, listed_at) "
    "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(album_id) DO UPDATE SET project_id = excluded.project_id, "
    "complete = max(complete, excluded.complete), listed_to = max(listed_to, excluded.listed_to), "
    "listed_at = CASE WHEN excluded.listed_to > 0 THEN excluded.listed_at ELSE listed_at END";
constexpr char kUpsertAlbumPhoto[] =
    "INSERT INTO album_photos(album_id, photo_id, name, size, approved) VALUES(?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT(album_id, photo_id) DO UPDATE SET name = excluded.name, size = excluded.size, "
    "approved = excluded.approved";
constexpr char kSetNameMode[] = "UPDATE album_index SET name_mode = ?2 WHERE album_id = ?1";
constexpr char kAlbumPhotosNamed[] =
    "SELECT photo_id, name, size, approved FROM album_photos WHERE album_id = ?1 AND name = ?2 "
    "ORDER BY photo_id DESC";
constexpr char kAlbumPhotosPrefix[] =
    "SELECT photo_id, name, size, approved FROM album_photos WHERE album_id = ?1 "
    "AND length(name) >= ?3 AND length(name) < length(?2) AND substr(?2, 1, length(name)) = name "
    "ORDER BY photo_id DESC";
constexpr char kForgetAlbumPhotos[] = "DELETE FROM album_photos WHERE album_id = ?1";
constexpr char kForgetAlbumIndex[] = "DELETE FROM album_index WHERE album_id = ?1";

AlbumPhoto ReadAlbumPhoto(Stmt& r) {
  return AlbumPhoto{r.Int64(0), r.Bytes(1),
                    r.OptInt64(2) ? std::optional<std::uint64_t>(std::uint64_t(*r.OptInt64(2))) : std::nullopt,
                    r.Int64(3) != 0};
}

}  // namespace

Result<AlbumIndexInfo> Manifest::AlbumIndex(std::int64_t album_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kAlbumIndex));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(album_id));
  SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
  AlbumIndexInfo info;
  if (!row) return info;
  info.known = true;
  info.complete = st->Int64(0) != 0;
  info.listed_to = st->Int64(1);
  info.name_mode = st->Text(2);
  info.max_photo_id = std::max(info.listed_to, st->OptInt64(3).value_or(0));
  return info;
}

Status Manifest::IndexAlbumPhotos(std::int64_t album_id, std::int64_t project_id,
                                  std::span<const AlbumPhoto> photos, std::int64_t listed_to, bool complete) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write([&]() -> Status {
    {
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kUpsertAlbumIndex));
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(album_id, project_id, complete, listed_to, NowUnix()));
      SHOTSYNC_RETURN_IF_ERROR(st->Run());
    }
    for (const AlbumPhoto& p : photos) {
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kUpsertAlbumPhoto));
      std::optional<std::int64_t> size;
      if (p.size) size = std::int64_t(*p.size);
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(album_id, p.photo_id, Blob{p.name}, size, p.approved));
      SHOTSYNC_RETURN_IF_ERROR(st->Run());
    }
    return {};
  });
}

Status Manifest::SetAlbumNameMode(std::int64_t album_id, std::string_view mode) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write([&]() -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kSetNameMode));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(album_id, mode));
    return st->Run();
  });
}

Result<std::vector<AlbumPhoto>> Manifest::AlbumPhotosNamed(std::int64_t album_id, std::string_view name) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kAlbumPhotosNamed));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(album_id, Blob{name}));
  return Impl::Rows<AlbumPhoto>(*st, ReadAlbumPhoto);
}

Result<std::vector<AlbumPhoto>> Manifest::AlbumPhotosPrefixOf(std::int64_t album_id, std::string_view name,
                                                              std::size_t min_len) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kAlbumPhotosPrefix));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(album_id, Blob{name}, std::int64_t(min_len)));
  return Impl::Rows<AlbumPhoto>(*st, ReadAlbumPhoto);
}

Status Manifest::ForgetAlbumIndex(std::int64_t album_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write([&]() -> Status {
    for (const char* sql : {kForgetAlbumPhotos, kForgetAlbumIndex}) {
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(sql));
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(album_id));
      SHOTSYNC_RETURN_IF_ERROR(st->Run());
    }
    return {};
  });
}

}  // namespace shotsync
