// The throttle table: token buckets shared by every shotsync process on this
// host (engine/net/throttle.cpp, store/manifest_buckets.hpp).
#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

#include "store/bucket_state.hpp"
#include "store/manifest_impl.hpp"

namespace shotsync {

namespace {

using sql::Stmt;

constexpr char kGetBucket[] =
    "SELECT tokens, refilled_at, paused_until FROM throttle WHERE key = ?1";
constexpr char kPutBucket[] =
    "INSERT INTO throttle(key, tokens, refilled_at, paused_until) VALUES(?1, ?2, ?3, ?4) "
    "ON CONFLICT(key) DO UPDATE SET tokens = excluded.tokens, "
    "refilled_at = excluded.refilled_at, paused_until = excluded.paused_until";
constexpr char kPauseBucket[] =
    "INSERT INTO throttle(key, tokens, refilled_at, paused_until) VALUES(?1, 0, ?2, ?2) "
    "ON CONFLICT(key) DO UPDATE SET tokens = min(tokens, 0), "
    "paused_until = max(paused_until, excluded.paused_until)";
constexpr char kBuckets[] = "SELECT key, tokens, refilled_at, paused_until FROM throttle ORDER BY key";

}  // namespace

Result<std::pair<int, double>> Manifest::TakeFromBucket(std::string_view key, double rate_per_s, double burst,
                                                       int count, bool reserve, double now_s) {
  if (!(rate_per_s > 0) || count < 1) return Status::Invalid("token bucket: rate and count must be > 0");
  burst = std::max(burst, 1.0);
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::pair<int, double> out{0, 0};
  SHOTSYNC_RETURN_IF_ERROR(impl_->Write([&]() -> Status {
    // Read and written inside one write transaction: BEGIN IMMEDIATE holds
    // the database write lock from the read to the write, so a take is
    // atomic across processes. A new bucket starts full.
    bucket::State b{burst, now_s, 0};
    {
      SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kGetBucket));
      SHOTSYNC_RETURN_IF_ERROR(st->BindAll(key));
      SHOTSYNC_ASSIGN_OR_RETURN(bool row, st->Step());
      if (row) b = {st->Double(0), st->Double(1), st->Double(2)};
    }
    out = bucket::Take(b, rate_per_s, burst, count, reserve, now_s);
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kPutBucket));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(key, b.tokens, b.refilled_at, b.paused_until));
    return st->Run();
  }, /*durable=*/true));  // never inside a planner's batch: other processes must see it
  return out;
}

Result<double> Manifest::TakeToken(std::string_view key, double rate_per_s, double burst, double now_s) {
  SHOTSYNC_ASSIGN_OR_RETURN(auto got, TakeFromBucket(key, rate_per_s, burst, 1, /*reserve=*/false, now_s));
  return got.first == 1 ? 0.0 : got.second;
}

Result<std::pair<int, double>> Manifest::ReserveTokens(std::string_view key, double rate_per_s, double burst,
                                                      int count, double now_s) {
  return TakeFromBucket(key, rate_per_s, burst, count, /*reserve=*/true, now_s);
}

Status Manifest::PauseBucket(std::string_view key, double until_s) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Write([&]() -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kPauseBucket));
    SHOTSYNC_RETURN_IF_ERROR(st->BindAll(key, until_s));
    return st->Run();
  }, /*durable=*/true);
}

Result<std::vector<Manifest::BucketRecord>> Manifest::Buckets() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SHOTSYNC_ASSIGN_OR_RETURN(auto st, impl_->Acquire(kBuckets));
  return Impl::Rows<BucketRecord>(*st, [](Stmt& r) {
    return BucketRecord{r.Text(0), r.Double(1), r.Double(2), r.Double(3)};
  });
}

}  // namespace shotsync
