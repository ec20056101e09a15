// The jobs table: one row per upload or revision, claimed in flight before
// the bytes are sent and finished or failed after (docs/resume.md).
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "shotsync/version.hpp"
#include "store/manifest_impl.hpp"

namespace shotsync {

std::string_view JobKindName(JobKind k) noexcept {
  switch (k) {
    case JobKind::kUpload:
      return "upload";
    case JobKind::kRevision:
      return "revision";
  }
  return "unknown";
}

std::string_view JobStateName(JobState s) noexcept {
  switch (s) {
    case JobState::kPending:
      return "pending";
    case JobState::kInFlight:
      return "in_flight";
    case JobState::kDone:
      return "done";
    case JobState::kFailed:
      return "failed";
    case JobState::kRejected:
      return "rejected";
  }
  return "unknown";
}

namespace {

using manifest_internal::NowUnix;
using manifest_internal::OneLine;
using manifest_internal::ParseName;
using sql::Stmt;

#define SHOTSYNC_JOB_COLS \
  "id, file_id, kind, state, hash, size, attempts, last_error, started_at, finished_at, owner, watermark, " \
  "mtime_ns, inode"
// At most one unfinished (or retryable) job per file: BeginJob takes it over.
constexpr char kFindReusableJob[] =
    "SELECT id, state, owner FROM jobs WHERE file_id = ?1 "
    "AND state IN ('pending', 'in_flight', 'failed') ORDER BY id DESC LIMIT 1";
constexpr char kFileRemote[] =
    "SELECT remote_photo_id, remote_hash, hash, size, mtime_ns, inode FROM files WHERE id = ?1";
constexpr char kRestartJob[] =
    "UPDATE jobs SET kind = ?2, state = 'in_flight', hash = ?3, size = ?4, started_at = ?5, "
    "finished_at = 0, owner = ?6, watermark = ?7, mtime_ns = ?8, inode = ?9 WHERE id = ?1";
constexpr char kInsertJob[] =
    "INSERT INTO jobs(file_id, kind, state, hash, size, started_at, owner, watermark, mtime_ns, inode) "
    "VALUES(?1, ?2, 'in_flight', ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id";
constexpr char kAdoptJob[] =
    "UPDATE jobs SET owner = ?3 WHERE id = ?1 AND owner = ?2 AND state = 'in_flight'";
constexpr char kFinishJob[] =
    "UPDATE jobs SET state = 'done', remote_photo_id = ?2, finished_at = ?3, last_error = '', fit_quality = ?4, "
    "hash = CASE WHEN hash = '' THEN ?5 ELSE hash END "
    "WHERE id = ?1 RETURNING file_id, hash, size, mtime_ns, inode";
// A job claimed unread gives its file row the hash it sent only while that
// row still holds the version it planned (ClaimRequest).
constexpr char kFileSynced[] =
    "UPDATE files SET remote_photo_id = ?2, remote_hash = ?3, state = 'synced', reason = '', updated_at = ?4, "
    "hash = CASE WHEN hash = '' AND size = ?5 AND mtime_ns = ?6 AND inode = ?7 THEN ?3 ELSE hash END "
    "WHERE id = ?1";
constexpr char kFailJob[] =
    "UPDATE jobs SET state = ?2, attempts = attempts + 1, last_error = ?3, finished_at = ?4 "
    "WHERE id = ?1 RETURNING file_id";
constexpr char kFileFailed[] =
    "UPDATE files SET reason = ?2, state = CASE WHEN ?3 THEN 'rejected' ELSE state END, "
    "rejected_by = CASE WHEN ?3 THEN ?5 ELSE rejected_by END, "
    "updated_at = ?4 WHERE id = ?1";
constexpr char kUnfinishedJobs[] =
    "SELECT " SHOTSYNC_JOB_COLS " FROM jobs WHERE state IN ('pending', 'in_flight') ORDER BY id";
constexpr char kRecentFailures[] =
    "SELECT " SHOTSYNC_JOB_COLS
    " FROM jobs WHERE state IN ('failed', 'rejected') ORDER BY finished_at DESC, id DESC LIMIT ?1";

constexpr JobKind kJobKinds[] = {JobKind::kUpload, JobKind::kRevision};
constexpr JobState kJobStates[] = {JobState::kPending, JobState::kInFlight, JobState::kDone,
                                   JobState::kFailed, JobState::kRejected};

}  // namespace

Result<JobRecord> Manifest::Impl::ReadJob(Stmt& st) {
  JobRecord j;
  j.id = st.Int64(0);
  j.file_id = st.Int64(1);
  std::string kind = st.Text(2), state = st.Text(3);
  if (!ParseName(kind, kJobKinds, &JobKindName, &j.kind) ||
      !ParseName(state, kJobStates, &JobStateName, &j.state)) {
    return Status::Corrupt("manifest: job " + std::to_string(j.id) + " has unknown kind/state \"" +
                           kind + "\"/\"" + state + "\"");
  }
  j.hash = st.Text(4);
  j.size = st.UInt64(5);
  j.attempts = st.Int(6);
  j.last_error = st.Text(7);
  j.started_at = st.Int64(8);
  j.finished_at = st.Int64(9);
  j.owner = st.Text(10);
  j.watermark = st.Int64(11);
  j.mtime_ns = st.Int64(12);
  j.inode = st.UInt64(13);
  return j;
}

Result<JobClaim> Manifest::BeginJob(std::int64_t file_id, std::string_view hash, std::uint64_t size,
                                    const JobOwner& owner) {
  const ClaimRequest one{file_id, std::string(hash), size};
  SHOTSYNC_ASSIGN_OR_RETURN(std::vector<Result<JobClaim>> claims, BeginJobs({&one, 1}, owner));
  return std::move(claims.front());
}

Result<std::vector<Result<JobClaim>>> Manifest::BeginJobs(std::span<const ClaimRequest> requests,
                                                         const JobOwner& owner) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  // The one write that must survive power loss, not only a crash: once the
  // job is in flight the bytes may reach the server, and only this row makes
  // the next run look there before sending again. WAL + synchronous=FULL
  // syncs the log at this commit (one sync for the whole group); every other
  // write stays NORMAL (a lost done/failed row only costs a reconcile).
  // (The level cannot change inside a transaction: an open batch, which this
  // durable write would commit anyway, is committed first.)
  SHOTSYNC_RETURN_IF_ERROR(impl_->CommitOpenBatch());
  SHOTSYNC_RETURN_IF_ERROR(impl_->db.Exec("PRAGMA synchronous=FULL"));
  struct Restore {
    sql::Db& db;
    ~Restore() { (void)db.Exec("PRAGMA synchronous=NORMAL"); }
  } restore{impl_->db};
  const std::int64_t now = NowUnix();
  // One claim: a soft refusal (busy, already done, conflict, no such file)
  // is that request's result and writes nothing; an error fails the group.
  auto claim_one = [&](const ClaimRequest& r, std::vector<Result<JobClaim>>& out) -> Status {
    std::int64_t id = 0;
    {
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFindReusableJob));
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(r.file_id));
      SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
      if (row) {
        id = st->Int64(0);
        const std::string state = st->Text(1), other = st->Text(2);
        if (state == "in_flight" && other != owner.token) {
          if (!owner.alive || owner.alive(other)) {
            out.emplace_back(Status(Code::kBusy, "being sent by another shotsync process"));
          } else {
            out.emplace_back(Status(Code::kConflict,
                                    "left in flight by an interrupted run; the next run checks the server first"));
          }
          return {};
        }
      }
    }
    JobClaim claim;
    {
      // Decided from the row as it is now, not as the caller planned it:
      // another process may have sent this file in between.
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFileRemote));
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(r.file_id));
      SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        out.emplace_back(Status::NotFound(impl_->path + ": no file " + std::to_string(r.file_id)));
        return {};
      }
      const auto photo = st->OptInt64(0);
      claim.hash = r.hash;
      if (claim.hash.empty()) {
        // Planned unread: still the version this plan saw? Another plan may
        // have rewritten the row since (a newer version), or hashed it.
        const bool same = st->UInt64(3) == r.size && st->Int64(4) == r.mtime_ns && st->UInt64(5) == r.inode;
        if (!same) {
          claim.needs_hash = true;
          out.emplace_back(std::move(claim));
          return {};
        }
        claim.hash = st->Text(2);
      }
      if (photo && !claim.hash.empty() && st->Text(1) == claim.hash) {
        out.emplace_back(Status(Code::kAlreadyDone, "already on the server (sent by another run)"));
        return {};
      }
      claim.kind = photo ? JobKind::kRevision : JobKind::kUpload;
      claim.photo_id = photo.value_or(0);
    }
    if (id != 0) {
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kRestartJob));
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(id, JobKindName(claim.kind), claim.hash, r.size, now, owner.token,
                                           r.watermark, r.mtime_ns, r.inode));
      SHOTSYNC_RETURN_IF_ERROR(st->Run());
      claim.job_id = id;
    } else {
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kInsertJob));
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(r.file_id, JobKindName(claim.kind), claim.hash, r.size, now, owner.token,
                                           r.watermark, r.mtime_ns, r.inode));
      SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) return Status::Internal(impl_->path + ": insert job returned no id");
      claim.job_id = st->Int64(0);
    }
    out.emplace_back(claim);
    return {};
  };
  std::vector<Result<JobClaim>> out;
  SHOTSYNC_RETURN_IF_ERROR(impl_->Write(
      [&]() -> Status {
        out.clear();
        out.reserve(requests.size());
        for (const ClaimRequest& r : requests) SHOTSYNC_RETURN_IF_ERROR(claim_one(r, out));
        return {};
      },
      /*durable=*/true));
  return out;
}

Result<bool> Manifest::AdoptJob(std::int64_t job_id, std::string_view from_owner, std::string_view to_owner) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  bool adopted = false;
  SHOTSYNC_RETURN_IF_ERROR(impl_->Write(
      [&]() -> Status {
        SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kAdoptJob));
        SHOTSYNC_RETURN_IF_ERROR(st->BindAll(job_id, from_owner, to_owner));
        SHOTSYNC_RETURN_IF_ERROR(st->Run());
        adopted = impl_->db.Changes() == 1;
        return {};
      },
      /*durable=*/true));
  return adopted;
}

Status Manifest::FinishJob(std::int64_t job_id, std::int64_t remote_photo_id, int fit_quality,
                           std::string_view hash) {
  const FinishedJob one{job_id, remote_photo_id, fit_quality, std::string(hash)};
  return FinishJobs({&one, 1});
}

Status Manifest::FinishJobs(std::span<const FinishedJob> done) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write(
      [&]() -> Status {
        const std::int64_t now = NowUnix();
        for (const FinishedJob& f : done) {
          std::int64_t file_id = 0, mtime_ns = 0;
          std::uint64_t size = 0, inode = 0;
          std::string hash;
          {
            SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFinishJob));
            SHOTSYNC_RETURN_IF_ERROR(st->BindAll(f.job_id, f.remote_photo_id, now, f.fit_quality, f.hash));
            SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
            if (!row) return Status::NotFound(impl_->path + ": no job " + std::to_string(f.job_id));
            file_id = st->Int64(0);
            hash = st->Text(1);
            size = st->UInt64(2);
            mtime_ns = st->Int64(3);
            inode = st->UInt64(4);
            SHOTSYNC_RETURN_IF_ERROR(st->Run());
          }
          SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFileSynced));
          SHOTSYNC_RETURN_IF_ERROR(st->BindAll(file_id, f.remote_photo_id, hash, now, size, mtime_ns, inode));
          SHOTSYNC_RETURN_IF_ERROR(st->Run());
        }
        return Status::Ok();
      },
      /*durable=*/true);
}

Status Manifest::FailJob(std::int64_t job_id, std::string_view reason, bool permanent) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::string line = OneLine(reason);
  return impl_->Write(
      [&]() -> Status {
        const std::int64_t now = NowUnix();
        std::int64_t file_id = 0;
        {
          SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFailJob));
          SHOTSYNC_RETURN_IF_ERROR(
              st->BindAll(job_id, JobStateName(permanent ? JobState::kRejected : JobState::kFailed),
                          line, now));
          SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
          if (!row) return Status::NotFound(impl_->path + ": no job " + std::to_string(job_id));
          file_id = st->Int64(0);
          SHOTSYNC_RETURN_IF_ERROR(st->Run());
        }
        SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kFileFailed));
        SHOTSYNC_RETURN_IF_ERROR(st->BindAll(file_id, line, permanent, now, kVersion));
        return st->Run();
      },
      /*durable=*/true);
}

Result<std::vector<JobRecord>> Manifest::UnfinishedJobs() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kUnfinishedJobs));
  return Impl::Rows<JobRecord>(*st, Impl::ReadJob);
}

Result<std::vector<JobRecord>> Manifest::RecentFailures(int limit) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kRecentFailures));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(limit));
  return Impl::Rows<JobRecord>(*st, Impl::ReadJob);
}

}  // namespace shotsync
