// When a noticed file is due to be sent (engine/watch/settle.hpp), on a
// clock the test moves by hand.
#include <catch2/catch.hpp>

#include "watch/settle.hpp"

using shotsync::watch::Activity;
using shotsync::watch::Settler;
using namespace std::chrono_literals;

namespace {
const Settler::Clock::time_point t0{};
}

TEST_CASE("settle: a file closed after writing is due once it has been quiet for the settle time", "[settle]") {
  Settler s(1s, 10min);
  s.Saw("/r/a.jpg", Activity::kOpened, t0);
  s.Saw("/r/a.jpg", Activity::kModified, t0);
  s.Saw("/r/a.jpg", Activity::kClosedWrite, t0 + 100ms);
  CHECK(s.pending() == 1);
  CHECK(s.TakeDue(t0 + 1099ms).empty());
  REQUIRE(s.NextDue() == t0 + 1100ms);
  CHECK(s.TakeDue(t0 + 1100ms) == std::vector<std::string>{"/r/a.jpg"});
  CHECK(s.pending() == 0);
  CHECK(!s.NextDue());
}

TEST_CASE("settle: a file held open by its writer waits for the close, however quiet it is", "[settle]") {
  Settler s(1s, 10min);
  s.Saw("/r/slow.jpg", Activity::kOpened, t0);
  for (int i = 0; i < 10; ++i) s.Saw("/r/slow.jpg", Activity::kModified, t0 + i * 3s);
  // 3 s between writes, longer than the settle time: still open, not due.
  CHECK(s.TakeDue(t0 + 30s).empty());
  s.Saw("/r/slow.jpg", Activity::kClosedWrite, t0 + 31s);
  CHECK(s.TakeDue(t0 + 31s + 999ms).empty());
  CHECK(s.TakeDue(t0 + 32s) == std::vector<std::string>{"/r/slow.jpg"});
}

TEST_CASE("settle: a reader's open and close (our own hashing) queue nothing", "[settle]") {
  Settler s(1s, 10min);
  s.Saw("/r/a.jpg", Activity::kOpened, t0);
  s.Saw("/r/a.jpg", Activity::kClosedRead, t0 + 1ms);
  CHECK(s.pending() == 0);
  CHECK(!s.NextDue());
  // A close without an open (opened before the watch began) is ignored too.
  s.Saw("/r/b.jpg", Activity::kClosedRead, t0);
  CHECK(s.pending() == 0);
}

TEST_CASE("settle: a file moved in is due after the settle time, and writes push it back", "[settle]") {
  Settler s(500ms, 10min);
  s.Saw("/r/x.jpg", Activity::kArrived, t0);
  s.Saw("/r/x.jpg", Activity::kModified, t0 + 400ms);  // rewritten in place right after
  CHECK(s.TakeDue(t0 + 500ms).empty());
  CHECK(s.TakeDue(t0 + 900ms) == std::vector<std::string>{"/r/x.jpg"});
}

TEST_CASE("settle: a file someone keeps open without writing is sent after max_hold", "[settle]") {
  Settler s(1s, 10min);
  s.Saw("/r/v.jpg", Activity::kOpened, t0);  // a viewer that never closes it
  s.Saw("/r/v.jpg", Activity::kModified, t0);
  CHECK(s.TakeDue(t0 + 9min).empty());
  REQUIRE(s.NextDue() == t0 + 10min);
  CHECK(s.TakeDue(t0 + 10min) == std::vector<std::string>{"/r/v.jpg"});
  // Its opens are still counted: the viewer's close does not queue it again.
  s.Saw("/r/v.jpg", Activity::kClosedRead, t0 + 11min);
  CHECK(s.pending() == 0);
}

TEST_CASE("settle: a retry scheduled for later never delays an earlier due time", "[settle]") {
  Settler s(1s, 10min);
  s.Schedule("/r/f.jpg", t0 + 30s);
  CHECK(s.pending() == 1);
  s.Schedule("/r/f.jpg", t0 + 60s);
  CHECK(s.NextDue() == t0 + 30s);
  s.Saw("/r/g.jpg", Activity::kArrived, t0);
  CHECK(s.TakeDue(t0 + 1s) == std::vector<std::string>{"/r/g.jpg"});
  CHECK(s.TakeDue(t0 + 30s) == std::vector<std::string>{"/r/f.jpg"});
}
