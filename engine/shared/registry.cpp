// The registry of what is on the server (photos), the upload and revision
// claims on it, and the download claims: exactly once across hosts
// (docs/studio.md). A claim is a row's claim_owner; it is live while its
// owner's lease is (owners.lease_until > now() on the database's clock).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <numeric>
#include <random>

#include "shared/shared_impl.hpp"
#include "shotsync/fd.hpp"

namespace shotsync {

namespace {

using pg::Bytes;
using pg::Int;
using pg::Text;

// The row of (album, name), locked, with whether its claim's owner lives.
constexpr char kLockPhoto[] =
    "SELECT p.photo_id, p.hash, p.claim_owner, p.claim_watermark, "
    "coalesce(o.lease_until > clock_timestamp(), false), coalesce(o.host, p.claim_host), coalesce(o.pid, 0) "
    "FROM photos p LEFT JOIN owners o ON o.token = p.claim_owner "
    "WHERE p.album_id = $1 AND p.name = $2 FOR UPDATE OF p";
constexpr char kTakeClaim[] =
    "UPDATE photos SET claim_owner = $3, claim_host = $4, claim_kind = $5, claim_hash = $6, claim_size = $7, "
    "claim_watermark = $8, claimed_at = now() WHERE album_id = $1 AND name = $2";

std::string_view KindName(JobKind k) { return k == JobKind::kUpload ? "upload" : "revision"; }

std::string Holder(const pg::Rows& row) {
  return row.Text(0, 5) + (row.Int(0, 6) > 0 ? " (pid " + row.Text(0, 6) + ")" : "");
}

// One request of a batch, decided from the row as it is inside the
// transaction. (Status + out parameter: GCC 12 at -O1 warns falsely on a
// Result<SharedClaim> here.)
Status ClaimOne(pg::Tx& tx, const SharedClaimRequest& q, std::string_view owner, const std::string& host,
                SharedClaim& out) {
  SHOTSYNC_RETURN_IF_ERROR(tx.Exec("INSERT INTO photos(album_id, name) VALUES($1, $2) ON CONFLICT DO NOTHING",
                                   {Int(q.album_id), Bytes(q.name)})
                               .status());
  SHOTSYNC_ASSIGN_OR_RETURN(pg::Rows row, tx.Exec(kLockPhoto, {Int(q.album_id), Bytes(q.name)}));
  if (row.size() != 1) return Status::Internal("registry row vanished");
  const bool has_photo = !row.Null(0, 0);
  const std::int64_t photo = has_photo ? row.Int(0, 0) : 0;
  const std::string owner_now = row.Null(0, 2) ? "" : row.Text(0, 2);
  out = {};
  std::int64_t watermark = q.watermark;
  if (owner_now == owner) {
    return Status::Ok();  // ours already (this claim run again after a lost answer)
  } else if (!owner_now.empty() && row.Bool(0, 4)) {
    out.kind = SharedClaim::kBusy;
    out.holder = Holder(row);
    return Status::Ok();
  } else if (!owner_now.empty()) {
    // Its owner died holding it: this process looks on the server before
    // anything is sent, from the dead owner's watermark.
    out.kind = SharedClaim::kReconcile;
    if (!row.Null(0, 3)) watermark = std::min(watermark, row.Int(0, 3));
    out.watermark = watermark;
    out.holder = Holder(row);
  } else if (has_photo && row.Text(0, 1) == q.hash) {
    out.kind = SharedClaim::kDone;
    out.photo_id = photo;
    return Status::Ok();
  } else if (has_photo && (q.kind == JobKind::kUpload || photo != q.photo_id)) {
    out.kind = SharedClaim::kConflict;
    out.photo_id = photo;
    out.reason = "another host stored other content under this name as photo " + std::to_string(photo) +
                 "; the next run decides again";
    return Status::Ok();
  }
  return tx
      .Exec(kTakeClaim, {Int(q.album_id), Bytes(q.name), Text(owner), Text(host), Text(KindName(q.kind)),
                         Text(q.hash), Int(std::int64_t(q.size)), Int(watermark)})
      .status();
}

}  // namespace

Result<std::vector<SharedClaim>> SharedStore::Claim(std::span<const SharedClaimRequest> requests,
                                                    std::string_view owner) {
  // Rows are locked in one order on every host, so two batches never deadlock.
  std::vector<std::size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::tie(requests[a].album_id, requests[a].name) < std::tie(requests[b].album_id, requests[b].name);
  });
  std::vector<SharedClaim> out;
  SHOTSYNC_RETURN_IF_ERROR(impl_->db->Transact([&](pg::Tx& tx) -> Status {
    out.assign(requests.size(), SharedClaim{});
    for (std::size_t i : order) {
      SHOTSYNC_RETURN_IF_ERROR(ClaimOne(tx, requests[i], owner, impl_->host, out[i]));
    }
    return Status::Ok();
  }));
  return out;
}

Status SharedStore::Finish(std::span<const SharedPhoto> photos, std::string_view owner) {
  return impl_->db->Transact([&](pg::Tx& tx) -> Status {
    for (const SharedPhoto& p : photos) {
      SHOTSYNC_RETURN_IF_ERROR(tx.Exec("INSERT INTO photos(album_id, name) VALUES($1, $2) ON CONFLICT DO NOTHING",
                                       {Int(p.album_id), Bytes(p.name)})
                                   .status());
      // A name bound to another photo keeps it (the first upload is the one
      // the album index adopts); the claim is cleared only when it is ours.
      SHOTSYNC_RETURN_IF_ERROR(
          tx.Exec("UPDATE photos SET "
                  "photo_id = CASE WHEN photo_id IS NULL OR photo_id = $3 THEN $3 ELSE photo_id END, "
                  "hash = CASE WHEN photo_id IS NULL OR photo_id = $3 THEN $4 ELSE hash END, "
                  "size = CASE WHEN photo_id IS NULL OR photo_id = $3 THEN $5 ELSE size END, "
                  "host = $7, updated_at = now(), "
                  "claim_owner = CASE WHEN claim_owner = $6 THEN NULL ELSE claim_owner END "
                  "WHERE album_id = $1 AND name = $2",
                  {Int(p.album_id), Bytes(p.name), Int(p.photo_id), Text(p.hash), Int(std::int64_t(p.size)),
                   Text(owner), Text(impl_->host)})
              .status());
    }
    return Status::Ok();
  });
}

Status SharedStore::Release(std::int64_t album_id, std::string_view name, std::string_view owner) {
  return impl_->db->Transact([&](pg::Tx& tx) -> Status {
    SHOTSYNC_RETURN_IF_ERROR(tx.Exec("UPDATE photos SET claim_owner = NULL WHERE album_id = $1 AND name = $2 "
                                     "AND claim_owner = $3",
                                     {Int(album_id), Bytes(name), Text(owner)})
                                 .status());
    return tx
        .Exec("DELETE FROM photos WHERE album_id = $1 AND name = $2 AND photo_id IS NULL AND claim_owner IS NULL",
              {Int(album_id), Bytes(name)})
        .status();
  });
}

Result<bool> SharedStore::AdoptClaim(std::int64_t album_id, std::string_view name, std::string_view from,
                                     std::string_view to) {
  SHOTSYNC_ASSIGN_OR_RETURN(
      pg::Rows rows, impl_->db->Exec("UPDATE photos SET claim_owner = $4, claim_host = $5 "
                                     "WHERE album_id = $1 AND name = $2 AND claim_owner = $3",
                                     {Int(album_id), Bytes(name), Text(from), Text(to), Text(impl_->host)}));
  return rows.affected() == 1;
}

Status SharedStore::Register(std::span<const SharedPhoto> photos) {
  return impl_->db->Transact([&](pg::Tx& tx) -> Status {
    for (const SharedPhoto& p : photos) {
      SHOTSYNC_RETURN_IF_ERROR(
          tx.Exec("INSERT INTO photos(album_id, name, photo_id, hash, size, host, updated_at) "
                  "VALUES($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (album_id, name) DO UPDATE SET "
                  "photo_id = excluded.photo_id, hash = excluded.hash, size = excluded.size, "
                  "host = excluded.host, updated_at = now() "
                  "WHERE photos.photo_id IS NULL OR photos.photo_id = excluded.photo_id",
                  {Int(p.album_id), Bytes(p.name), Int(p.photo_id), Text(p.hash), Int(std::int64_t(p.size)),
                   Text(impl_->host)})
              .status());
    }
    return Status::Ok();
  });
}

Result<std::vector<SharedPhoto>> SharedStore::Registered(std::int64_t album_id) {
  SHOTSYNC_ASSIGN_OR_RETURN(pg::Rows rows,
                            impl_->db->Exec("SELECT name, photo_id, coalesce(hash, ''), coalesce(size, 0) FROM photos "
                                            "WHERE album_id = $1 AND photo_id IS NOT NULL ORDER BY name",
                                            {Int(album_id)}));
  std::vector<SharedPhoto> out;
  for (int i = 0; i < rows.size(); ++i) {
    out.push_back({album_id, rows.Bytes(i, 0), rows.Int(i, 1), rows.Text(i, 2), std::uint64_t(rows.Int(i, 3))});
  }
  return out;
}

Status SharedStore::Forget(std::int64_t album_id, std::int64_t photo_id) {
  return impl_->db
      ->Exec("DELETE FROM photos WHERE album_id = $1 AND photo_id = $2 AND claim_owner IS NULL",
             {Int(album_id), Int(photo_id)})
      .status();
}

// --- Album listings ------------------------------------------------------------

Result<SharedListing> SharedStore::AlbumListing(std::int64_t album_id, std::int64_t above_id) {
  SharedListing out;
  SHOTSYNC_RETURN_IF_ERROR(impl_->db->Transact([&](pg::Tx& tx) -> Status {
    out = {};
    SHOTSYNC_ASSIGN_OR_RETURN(pg::Rows state,
                              tx.Exec("SELECT listed_to, name_mode FROM album_index WHERE album_id = $1", {Int(album_id)}));
    if (state.size() == 1) out = {state.Int(0, 0), state.Text(0, 1), {}};
    SHOTSYNC_ASSIGN_OR_RETURN(pg::Rows rows,
                              tx.Exec("SELECT photo_id, name, size, approved FROM album_photos "
                                      "WHERE album_id = $1 AND photo_id > $2 ORDER BY photo_id DESC",
                                      {Int(album_id), Int(above_id)}));
    for (int i = 0; i < rows.size(); ++i) {
      out.photos.push_back({rows.Int(i, 0), rows.Bytes(i, 1),
                            rows.Null(i, 2) ? std::nullopt : std::optional<std::uint64_t>(rows.Int(i, 2)),
                            rows.Bool(i, 3)});
    }
    return Status::Ok();
  }));
  return out;
}

Status SharedStore::StoreListing(std::int64_t album_id, std::span<const AlbumPhoto> photos, std::int64_t listed_to,
                                 std::string_view name_mode) {
  return impl_->db->Transact([&](pg::Tx& tx) -> Status {
    for (const AlbumPhoto& p : photos) {
      pg::Param size = p.size ? Int(std::int64_t(*p.size)) : pg::Param{"", false, true};
      SHOTSYNC_RETURN_IF_ERROR(tx.Exec("INSERT INTO album_photos(album_id, photo_id, name, size, approved) "
                                       "VALUES($1, $2, $3, $4, $5) ON CONFLICT (album_id, photo_id) DO UPDATE SET "
                                       "name = excluded.name, size = excluded.size, approved = excluded.approved",
                                       {Int(album_id), Int(p.photo_id), Bytes(p.name), size,
                                        Text(p.approved ? "true" : "false")})
                                   .status());
    }
    return tx
        .Exec("INSERT INTO album_index(album_id, listed_to, name_mode) VALUES($1, $2, $3) "
              "ON CONFLICT (album_id) DO UPDATE SET listed_to = greatest(album_index.listed_to, excluded.listed_to), "
              "name_mode = CASE WHEN excluded.name_mode = '' THEN album_index.name_mode ELSE excluded.name_mode END, "
              "updated_at = now()",
              {Int(album_id), Int(listed_to), Text(name_mode)})
        .status();
  });
}

Status SharedStore::ForgetListing(std::int64_t album_id) {
  return impl_->db->Transact([&](pg::Tx& tx) -> Status {
    SHOTSYNC_RETURN_IF_ERROR(tx.Exec("DELETE FROM album_photos WHERE album_id = $1", {Int(album_id)}).status());
    return tx.Exec("DELETE FROM album_index WHERE album_id = $1", {Int(album_id)}).status();
  });
}

// --- Downloads -------------------------------------------------------------

Result<SharedDownloadClaim> SharedStore::ClaimDownload(std::string_view dest_id, std::string_view remote_id,
                                                       std::string_view path, std::string_view owner) {
  SharedDownloadClaim out;
  SHOTSYNC_RETURN_IF_ERROR(impl_->db->Transact([&](pg::Tx& tx) -> Status {
    SHOTSYNC_RETURN_IF_ERROR(tx.Exec("INSERT INTO downloads(dest_id, remote_id, path, state, owner, host) "
                                     "VALUES($1, $2, $3, 'in_flight', $4, $5) ON CONFLICT DO NOTHING",
                                     {Text(dest_id), Text(remote_id), Bytes(path), Text(owner), Text(impl_->host)})
                                 .status());
    SHOTSYNC_ASSIGN_OR_RETURN(
        pg::Rows row,
        tx.Exec("SELECT d.state, coalesce(d.owner, ''), coalesce(o.lease_until > clock_timestamp(), false), d.host "
                "FROM downloads d LEFT JOIN owners o ON o.token = d.owner "
                "WHERE d.dest_id = $1 AND d.remote_id = $2 FOR UPDATE OF d",
                {Text(dest_id), Text(remote_id)}));
    if (row.size() != 1) return Status::Internal("download row vanished");
    out = {};
    if (row.Text(0, 0) == "done") {
      out = {SharedDownloadClaim::kDone, row.Text(0, 3)};
      return Status::Ok();
    }
    if (row.Text(0, 1) == owner) return Status::Ok();
    if (row.Bool(0, 2)) {
      out = {SharedDownloadClaim::kBusy, row.Text(0, 3)};
      return Status::Ok();
    }
    // Its owner died: the partial file it left is resumed by whoever takes it.
    return tx
        .Exec("UPDATE downloads SET owner = $3, host = $4, updated_at = now() WHERE dest_id = $1 AND remote_id = $2",
              {Text(dest_id), Text(remote_id), Text(owner), Text(impl_->host)})
        .status();
  }));
  return out;
}

Status SharedStore::FinishDownload(std::string_view dest_id, std::string_view remote_id, std::uint64_t size,
                                   std::string_view owner) {
  (void)owner;  // the file is in place, whoever held the claim
  return impl_->db
      ->Exec("UPDATE downloads SET state = 'done', size = $3, owner = NULL, host = $4, updated_at = now() "
             "WHERE dest_id = $1 AND remote_id = $2 AND state <> 'done'",  // who fetched it stays named
             {Text(dest_id), Text(remote_id), Int(std::int64_t(size)), Text(impl_->host)})
      .status();
}

Status SharedStore::ReleaseDownload(std::string_view dest_id, std::string_view remote_id, std::string_view owner) {
  return impl_->db
      ->Exec("DELETE FROM downloads WHERE dest_id = $1 AND remote_id = $2 AND owner = $3 AND state = 'in_flight'",
             {Text(dest_id), Text(remote_id), Text(owner)})
      .status();
}

// --- Destination identity ----------------------------------------------------

namespace {

// The id in an existing marker file; "" when there is none (ENOENT).
Status ReadDestinationId(const std::string& path, std::string& id) {
  id.clear();
  std::ifstream in(path);
  if (!in) return errno == ENOENT ? Status::Ok() : Status::Io(path, errno);
  in >> id;
  if (id.size() < 16) return Status::Corrupt(path + ": not a shotsync destination id (delete it to make a new one)");
  return Status::Ok();
}

}  // namespace

Result<std::string> DestinationId(const std::string& dest) {
  const std::string path = dest + "/.shotsync-dest";
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string existing;
    SHOTSYNC_RETURN_IF_ERROR(ReadDestinationId(path, existing));
    if (!existing.empty()) return existing;
    std::random_device rd;
    std::string id;
    constexpr char kHex[] = "0123456789abcdef";
    for (int i = 0; i < 32; ++i) id.push_back(kHex[rd() % 16]);
    // Written whole under a private name, then linked into place: a host
    // never reads a half-written id, and only one id ever wins.
    const std::string tmp = path + "." + id + ".tmp";
    {
      UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
      if (out.get() < 0) return Status::Io(tmp, errno);
      const std::string line = id + "\n";
      if (::write(out.get(), line.data(), line.size()) != ssize_t(line.size()) || ::fsync(out.get()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        return Status::Io(tmp, err);
      }
    }
    const int linked = ::link(tmp.c_str(), path.c_str());
    const int err = errno;
    ::unlink(tmp.c_str());
    if (linked == 0) return id;
    if (err != EEXIST) return Status::Io(path, err);
    // another host made it first: read theirs
  }
  return Status::Io(path, EAGAIN);
}

}  // namespace shotsync
