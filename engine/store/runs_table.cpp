// The runs table (one row per command run) and the status report's counts.
#include <mutex>
#include <string>
#include <vector>

#include "store/manifest_impl.hpp"

namespace shotsync {

namespace {

using manifest_internal::NowUnix;
using sql::Stmt;

constexpr char kBeginRun[] =
    "INSERT INTO runs(command, pid, started_at) VALUES(?1, ?2, ?3) RETURNING id";
constexpr char kEndRun[] =
    "UPDATE runs SET finished_at = ?2, uploaded = ?3, revised = ?4, skipped = ?5, rejected = ?6, "
    "failed = ?7, downloaded = ?8, bytes = ?9, exit_code = ?10 WHERE id = ?1";
constexpr char kRecentRuns[] =
    "SELECT id, command, started_at, finished_at, uploaded, revised, skipped, rejected, failed, "
    "downloaded, bytes, exit_code, pid FROM runs ORDER BY id DESC LIMIT ?1";
constexpr char kCountsByRoot[] =
    "SELECT r.id, r.path, "
    "SUM(f.state = 'synced'), SUM(f.state = 'new'), SUM(f.state = 'missing'), SUM(f.state = 'rejected') "
    "FROM roots r LEFT JOIN files f ON f.root_id = r.id GROUP BY r.id ORDER BY r.id";

}  // namespace

Result<std::int64_t> Manifest::BeginRun(std::string_view command, int pid) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::int64_t id = 0;
  SHOTSYNC_RETURN_IF_ERROR(impl_->Write(
      [&]() -> Status {
        SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kBeginRun));
        SHOTSYNC_RETURN_IF_ERROR(st->BindAll(command, pid, NowUnix()));
        SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
        if (!row) return Status::Internal(impl_->path + ": insert run returned no id");
        id = st->Int64(0);
        return {};
      },
      /*durable=*/true));
  return id;
}

Status Manifest::EndRun(std::int64_t run_id, const RunCounts& c, int exit_code) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write(
      [&]() -> Status {
        SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kEndRun));
        SHOTSYNC_RETURN_IF_ERROR(st->BindAll(run_id, NowUnix(), c.uploaded, c.revised, c.skipped,
                                             c.rejected, c.failed, c.downloaded, c.bytes,
                                             exit_code));
        SHOTSYNC_RETURN_IF_ERROR(st->Run());
        if (impl_->db.Changes() == 0) {
          return Status::NotFound(impl_->path + ": no run " + std::to_string(run_id));
        }
        return {};
      },
      /*durable=*/true);
}

Result<std::vector<RunRecord>> Manifest::RecentRuns(int limit) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kRecentRuns));
  SHOTSYNC_RETURN_IF_ERROR(st->BindAll(limit));
  std::vector<RunRecord> out;
  for (;;) {
    SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    RunRecord r;
    r.id = st->Int64(0);
    r.command = st->Text(1);
    r.started_at = st->Int64(2);
    r.finished_at = st->Int64(3);
    r.counts.uploaded = st->Int64(4);
    r.counts.revised = st->Int64(5);
    r.counts.skipped = st->Int64(6);
    r.counts.rejected = st->Int64(7);
    r.counts.failed = st->Int64(8);
    r.counts.downloaded = st->Int64(9);
    r.counts.bytes = st->UInt64(10);
    r.exit_code = st->Int(11);
    r.pid = st->Int(12);
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<Manifest::RootCounts>> Manifest::CountsByRoot() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kCountsByRoot));
  return Impl::Rows<RootCounts>(*st, [](Stmt& r) {
    return RootCounts{r.Int64(0), r.Bytes(1), r.Int64(2), r.Int64(3), r.Int64(4), r.Int64(5)};
  });
}

}  // namespace shotsync
