// Batcher (engine/util/batcher.hpp): group commit of what is queued, and the
// linger that waits for items on their way, never for items that are not.
#include "util/batcher.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "wait.hpp"

using shotsync::Batcher;
using shotsync::Linger;
using shotsync::Status;

namespace {

// What a Batcher<int> committed, batch by batch.
struct Commits {
  std::mutex mu;
  std::vector<std::vector<int>> batches;
  std::size_t size() {
    std::lock_guard lock(mu);
    return batches.size();
  }
  // A Batcher<int> that records here, lingering as `linger` says.
  std::unique_ptr<Batcher<int>> Make(Linger linger) {
    return std::make_unique<shotsync::Batcher<int>>(
        [this](std::vector<int>& items) {
          std::lock_guard lock(mu);
          batches.push_back(items);
          return Status::Ok();
        },
        [](int&, const Status&) {}, std::move(linger));
  }
};

}  // namespace

TEST_CASE("a lingering batch takes the items that were on their way into one commit", "[batcher][concurrency]") {
  Commits commits;
  std::atomic<int> on_the_way{2};
  auto b = commits.Make(Linger{std::chrono::seconds(60), [&] { return on_the_way > 0; }});
  --on_the_way;
  REQUIRE(b->Add(1));  // waits: one more is coming
  --on_the_way;
  REQUIRE(b->Add(2));  // the last one: the batch is complete
  REQUIRE(shotsync::testing::WaitFor([&] { return commits.size() == 1; }));
  b->Finish();
  CHECK(commits.batches == std::vector<std::vector<int>>{{1, 2}});
}

TEST_CASE("a batch does not linger when nothing more is coming", "[batcher][concurrency]") {
  Commits commits;
  auto b = commits.Make(Linger{std::chrono::seconds(60), [] { return false; }});
  REQUIRE(b->Add(7));
  // Committed at once, not after the linger's 60 s (WaitFor gives up at 30 s).
  CHECK(shotsync::testing::WaitFor([&] { return commits.size() == 1; }, std::chrono::seconds(30)));
  b->Finish();
  CHECK(commits.batches == std::vector<std::vector<int>>{{7}});
}

TEST_CASE("finishing a lingering batch commits what it holds at once", "[batcher][concurrency]") {
  Commits commits;
  auto b = commits.Make(Linger{std::chrono::seconds(60), [] { return true; }});
  REQUIRE(b->Add(1));
  b->Finish();  // closes the queue: the lingering batch ends with what it has
  CHECK(commits.batches == std::vector<std::vector<int>>{{1}});
}
