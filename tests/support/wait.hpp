// WaitFor: polls a predicate until it holds, for tests that must wait on a
// condition (a file written, a request seen, a process gone) instead of
// sleeping a guessed time.
//
//   REQUIRE(WaitFor([&] { return f.emu->InFlight() == 0; }));
//
// The timeout is a generous failure bound for a loaded machine, never an
// assertion of speed: a test that needs "fast" belongs in benchmarks/.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace shotsync::testing {

inline constexpr std::chrono::milliseconds kWaitForTimeout = std::chrono::seconds(60);

// True as soon as `pred()` holds; false if it still does not after `timeout`.
inline bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout = kWaitForTimeout,
                    std::chrono::milliseconds poll = std::chrono::milliseconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(poll);
  }
}

}  // namespace shotsync::testing
