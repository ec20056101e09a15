// One token bucket's arithmetic, shared by the manifest's throttle table
// (one host) and the studio's PostgreSQL buckets (many hosts): both read the
// row, call Take, and write the row back inside one transaction.
#pragma once

#include <algorithm>
#include <utility>

namespace shotsync::bucket {

struct State {
  double tokens = 0, refilled_at = 0, paused_until = 0;
  bool Paused(double now_s) const { return paused_until > 0 && now_s < paused_until; }
};

// Refills `b` to now_s and takes `count` tokens (into debt when `reserve`).
// Returns {count, seconds until the first is due}, or {0, seconds to wait}
// (paused, or not enough tokens without `reserve`: nothing taken).
inline std::pair<int, double> Take(State& b, double rate_per_s, double burst, int count, bool reserve,
                                   double now_s) {
  if (now_s > b.refilled_at) {
    b.tokens = std::min(burst, b.tokens + (now_s - b.refilled_at) * rate_per_s);
    b.refilled_at = now_s;
  }
  b.tokens = std::min(b.tokens, burst);  // the burst may have been lowered
  if (b.Paused(now_s)) return {0, b.paused_until - now_s};
  if (b.paused_until > 0) {
    // The pause is over: the server's window was reset at paused_until,
    // so the request that was waiting for it may go right away.
    b.tokens = std::max(b.tokens, 1.0);
    b.paused_until = 0;
  }
  const double first = std::max(0.0, (1.0 - b.tokens) / rate_per_s);
  if (!reserve && b.tokens < count) return {0, first};
  b.tokens -= count;  // reserved: may go into debt
  return {count, first};
}

}  // namespace shotsync::bucket
