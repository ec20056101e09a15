// SharedLease: this process's owner row, renewed while it runs.
#include <unistd.h>

#include "shotsync/shared_store.hpp"

namespace shotsync {

namespace {
using Steady = std::chrono::steady_clock;
Steady::duration Seconds(double s) {
  return std::chrono::duration_cast<Steady::duration>(std::chrono::duration<double>(s));
}
}  // namespace

Result<std::unique_ptr<SharedLease>> SharedLease::Start(SharedStore& store, std::string token,
                                                        std::string_view command, std::function<void()> on_lost) {
  const auto asked = Steady::now();
  SHOTSYNC_RETURN_IF_ERROR(store.RegisterOwner(token, int(::getpid()), command));
  std::unique_ptr<SharedLease> lease(new SharedLease(store, std::move(token), std::move(on_lost)));
  // Counted from before the request: the database's lease began no earlier.
  // Two thirds of it: a margin for the clocks' rates and for a send that has
  // just started, before another host may take the claims over.
  lease->held_until_ = asked + Seconds(store.lease_s() * 2 / 3);
  lease->renewer_ = std::jthread([l = lease.get()](std::stop_token stop) { l->Renew(stop); });
  lease->watchdog_ = std::jthread([l = lease.get()](std::stop_token stop) { l->Watch(stop); });
  return lease;
}

SharedLease::SharedLease(SharedStore& store, std::string token, std::function<void()> on_lost)
    : store_(store), token_(std::move(token)), on_lost_(std::move(on_lost)) {}

SharedLease::~SharedLease() {
  renewer_.request_stop();
  watchdog_.request_stop();
  if (renewer_.joinable()) renewer_.join();
  if (watchdog_.joinable()) watchdog_.join();
  // Our claims are free at once for the next host (best effort: otherwise
  // the lease simply runs out). A lost lease is not ours to drop.
  if (!lost_) (void)store_.DropOwner(token_);
}

bool SharedLease::Held() const {
  std::lock_guard lock(mu_);
  return !lost_ && Steady::now() < held_until_;
}

void SharedLease::Renew(std::stop_token stop) {
  const auto every = Seconds(store_.lease_s() / 3);
  std::unique_lock lock(mu_);
  while (!lost_) {
    (void)cv_.wait_for(lock, stop, every, [] { return false; });  // woken by the stop only
    if (stop.stop_requested()) break;
    lock.unlock();
    const auto asked = Steady::now();
    const Status st = store_.RenewOwner(token_);
    lock.lock();
    if (st.ok() && !lost_) {
      held_until_ = asked + Seconds(store_.lease_s() * 2 / 3);
      cv_.notify_all();  // the watchdog's deadline moves
    }
  }
}

void SharedLease::Watch(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    const auto deadline = held_until_;
    if (cv_.wait_until(lock, stop, deadline, [&] { return held_until_ != deadline; })) continue;  // renewed
    if (stop.stop_requested()) return;
    lost_ = true;
    lock.unlock();
    if (on_lost_) on_lost_();
    return;
  }
}

}  // namespace shotsync
