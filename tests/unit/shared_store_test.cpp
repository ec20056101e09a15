// SharedStore against a real PostgreSQL: the schema, the claims of two
// owners, a dead owner's claim taken over once, the shared buckets on the
// database's clock, the lease thread, the download claims.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <latch>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "pg_server.hpp"
#include "shared/pg.hpp"
#include "shotsync/shared_store.hpp"
#include "wait.hpp"

using shotsync::Code;
using shotsync::JobKind;
using shotsync::SharedClaim;
using shotsync::SharedClaimRequest;
using shotsync::SharedDownloadClaim;
using shotsync::SharedLease;
using shotsync::SharedOptions;
using shotsync::SharedPhoto;
using shotsync::SharedStore;
using shotsync::testing::PgServer;
using shotsync::testing::WaitFor;

namespace {

std::unique_ptr<SharedStore> Open(const PgServer& pg, const std::string& host, double lease_s = 30) {
  auto s = SharedStore::Open(SharedOptions{.url = pg.url(), .host = host, .lease_s = lease_s});
  INFO(s.status().message());
  REQUIRE(s.ok());
  return std::move(*s);
}

SharedClaim ClaimOne(SharedStore& s, const SharedClaimRequest& q, const std::string& owner) {
  auto got = s.Claim(std::span<const SharedClaimRequest>(&q, 1), owner);
  INFO(got.status().message());
  REQUIRE(got.ok());
  return got->at(0);
}

void Init(const PgServer& pg) {
  auto bare = SharedStore::Open(SharedOptions{.url = pg.url()}, /*check_schema=*/false);
  REQUIRE(bare.ok());
  auto from = (*bare)->Init();
  INFO(from.status().message());
  REQUIRE(from.ok());
}

}  // namespace

TEST_CASE("shared store: a missing schema is named with the command that makes it, init is idempotent",
          "[shared]") {
  PgServer pg;
  auto none = SharedStore::Open(SharedOptions{.url = pg.url()});
  REQUIRE(!none.ok());
  CHECK(none.status().code() == Code::kUnsupported);
  CHECK(none.status().message().find("shotsync shared init") != std::string::npos);
  auto bare = SharedStore::Open(SharedOptions{.url = pg.url()}, false);
  REQUIRE(bare.ok());
  CHECK((*bare)->Init().value() == 0);
  CHECK((*bare)->Init().value() == shotsync::kSharedSchemaVersion);
  CHECK(SharedStore::Open(SharedOptions{.url = pg.url()}).ok());
  pg.Query("UPDATE shotsync_meta SET value = '99' WHERE key = 'schema_version'");
  auto newer = SharedStore::Open(SharedOptions{.url = pg.url()});
  REQUIRE(!newer.ok());
  CHECK(newer.status().message().find("upgrade shotsync") != std::string::npos);
}

TEST_CASE("shared store: an unreachable server is one error naming host:port/db, never the password",
          "[shared]") {
  auto s = SharedStore::Open(SharedOptions{.url = "postgresql://me:secret@127.0.0.1:1/studio",
                                           .retry_for_s = 0.2, .connect_timeout_s = 1});
  REQUIRE(!s.ok());
  CHECK(s.status().code() == Code::kNetwork);
  CHECK(s.status().message().find("127.0.0.1:1/studio") != std::string::npos);
  CHECK(s.status().message().find("secret") == std::string::npos);
  CHECK(s.status().message().find('\n') == std::string::npos);
}

TEST_CASE("shared store: claims keep two owners apart and the registry answers for a photo already sent",
          "[shared]") {
  PgServer pg;
  Init(pg);
  auto a = Open(pg, "a"), b = Open(pg, "b");
  REQUIRE(a->RegisterOwner("A", 1, "sync").ok());
  REQUIRE(b->RegisterOwner("B", 2, "sync").ok());
  const SharedClaimRequest up{.album_id = 9, .name = "d1/IMG_1.jpg", .hash = "h1", .size = 10, .watermark = 3};
  CHECK(ClaimOne(*a, up, "A").kind == SharedClaim::kGranted);
  CHECK(ClaimOne(*a, up, "A").kind == SharedClaim::kGranted);  // run again after a lost answer: still ours
  const SharedClaim busy = ClaimOne(*b, up, "B");
  CHECK(busy.kind == SharedClaim::kBusy);
  CHECK(busy.holder == "a (pid 1)");

  const SharedPhoto stored{9, "d1/IMG_1.jpg", 77, "h1", 10};
  REQUIRE(a->Finish(std::span<const SharedPhoto>(&stored, 1), "A").ok());
  const SharedClaim done = ClaimOne(*b, up, "B");
  CHECK(done.kind == SharedClaim::kDone);
  CHECK(done.photo_id == 77);
  SharedClaimRequest other = up;
  other.hash = "h2";
  CHECK(ClaimOne(*b, other, "B").kind == SharedClaim::kConflict);  // a second upload under one name: never
  SharedClaimRequest revision = other;
  revision.kind = JobKind::kRevision;
  revision.photo_id = 77;
  CHECK(ClaimOne(*b, revision, "B").kind == SharedClaim::kGranted);
  CHECK(ClaimOne(*a, revision, "A").kind == SharedClaim::kBusy);

  // A claim given up (nothing stored) is free for the next one.
  const SharedClaimRequest up2{.album_id = 9, .name = "d1/IMG_2.jpg", .hash = "x", .size = 1};
  CHECK(ClaimOne(*a, up2, "A").kind == SharedClaim::kGranted);
  REQUIRE(a->Release(9, "d1/IMG_2.jpg", "B").ok());  // not B's: nothing changes
  CHECK(ClaimOne(*b, up2, "B").kind == SharedClaim::kBusy);
  REQUIRE(a->Release(9, "d1/IMG_2.jpg", "A").ok());
  CHECK(ClaimOne(*b, up2, "B").kind == SharedClaim::kGranted);

  // Names are bytes: a name that is not UTF-8 is a name like any other.
  const SharedClaimRequest raw{.album_id = 9, .name = std::string("caf\xe9.jpg"), .hash = "r", .size = 1};
  CHECK(ClaimOne(*a, raw, "A").kind == SharedClaim::kGranted);
  const SharedPhoto raw_done{9, raw.name, 78, "r", 1};
  REQUIRE(a->Finish(std::span<const SharedPhoto>(&raw_done, 1), "A").ok());
  auto registered = a->Registered(9);
  REQUIRE(registered.ok());
  REQUIRE(registered->size() == 2);
  CHECK(registered->at(0).name == raw.name);
}

TEST_CASE("shared store: a dead owner's claim is taken over by exactly one other owner, from its watermark",
          "[shared]") {
  PgServer pg;
  Init(pg);
  auto dead = Open(pg, "dead", /*lease_s=*/0.5);
  auto a = Open(pg, "a"), b = Open(pg, "b");
  REQUIRE(dead->RegisterOwner("D", 1, "push").ok());
  REQUIRE(a->RegisterOwner("A", 2, "sync").ok());
  REQUIRE(b->RegisterOwner("B", 3, "sync").ok());
  const SharedClaimRequest q{.album_id = 4, .name = "x.jpg", .hash = "h", .size = 5, .watermark = 10};
  REQUIRE(ClaimOne(*dead, q, "D").kind == SharedClaim::kGranted);
  // D stops renewing: its lease runs out on the database's clock.
  REQUIRE(WaitFor([&] {
    auto alive = dead->OwnerAlive("D");
    return alive.ok() && !*alive;
  }));
  SharedClaimRequest later = q;
  later.watermark = 50;
  const SharedClaim taken = ClaimOne(*a, later, "A");
  CHECK(taken.kind == SharedClaim::kReconcile);
  CHECK(taken.watermark == 10);  // the dead owner's: its photo may be above 10
  CHECK(ClaimOne(*b, later, "B").kind == SharedClaim::kBusy);  // once: A reconciles it
  CHECK(b->AdoptClaim(4, "x.jpg", "D", "B").value() == false);
}

TEST_CASE("shared store: buckets are shared by every host and timed by the database", "[shared][throttle]") {
  PgServer pg;
  Init(pg);
  auto a = Open(pg, "a"), b = Open(pg, "b");
  auto first = a->Reserve("shootbin:k", 1.0, 1, 1, false);
  REQUIRE(first.ok());
  CHECK(first->first == 1);
  auto second = b->Reserve("shootbin:k", 1.0, 1, 1, false);  // the other host: the token is gone
  REQUIRE(second.ok());
  CHECK(second->first == 0);
  CHECK(second->second > 0.5);
  CHECK(second->second <= 1.0);
  auto debt = b->Reserve("shootbin:k", 1.0, 1, 3, true);  // reserved into debt, due one a second
  REQUIRE(debt.ok());
  CHECK(debt->first == 3);
  REQUIRE(a->Pause("shootbin:k", 30).ok());  // a 429 seen by one host pauses all
  auto paused = b->Reserve("shootbin:k", 1.0, 1, 1, true);
  REQUIRE(paused.ok());
  CHECK(paused->first == 0);
  CHECK(paused->second > 25);
}

TEST_CASE("shared store: a lease is renewed while it lives and dropped when it ends", "[shared][lease]") {
  PgServer pg;
  Init(pg);
  auto s = Open(pg, "h", /*lease_s=*/1.5);
  const std::string expiry = "SELECT extract(epoch from lease_until) FROM owners WHERE token = 'T'";
  {
    auto lease = SharedLease::Start(*s, "T", "sync");
    REQUIRE(lease.ok());
    CHECK((*lease)->Held());
    const auto initial = pg.Query(expiry);
    REQUIRE(initial.size() == 1);
    REQUIRE(WaitFor([&] {
      auto now = pg.Query(expiry);
      return !now.empty() && std::stod(now[0]) > std::stod(initial[0]);
    }));
    CHECK((*lease)->Held());
    CHECK(s->OwnerAlive("T").value());
  }
  CHECK(pg.Query(expiry).empty());
}

TEST_CASE("shared store: download claims per destination", "[shared][pull]") {
  PgServer pg;
  Init(pg);
  auto a = Open(pg, "a"), b = Open(pg, "b");
  REQUIRE(a->RegisterOwner("A", 1, "pull").ok());
  REQUIRE(b->RegisterOwner("B", 2, "pull").ok());
  CHECK(a->ClaimDownload("dest1", "p1", "m/p1.jpg", "A").value().kind == SharedDownloadClaim::kGranted);
  CHECK(b->ClaimDownload("dest1", "p1", "m/p1.jpg", "B").value().kind == SharedDownloadClaim::kBusy);
  CHECK(b->ClaimDownload("dest2", "p1", "m/p1.jpg", "B").value().kind == SharedDownloadClaim::kGranted);
  REQUIRE(a->FinishDownload("dest1", "p1", 100, "A").ok());
  const auto done = b->ClaimDownload("dest1", "p1", "m/p1.jpg", "B").value();
  CHECK(done.kind == SharedDownloadClaim::kDone);
  CHECK(done.holder == "a");
  REQUIRE(b->ReleaseDownload("dest2", "p1", "B").ok());
  CHECK(a->ClaimDownload("dest2", "p1", "m/p1.jpg", "A").value().kind == SharedDownloadClaim::kGranted);
}

// A host's lease must stay renewed while its claims or buckets wait on
// another host's row lock: the renewal goes on a connection of its own.
TEST_CASE("shared store: a lease renews while the store's other work waits on another host's row lock",
          "[shared][lease]") {
  PgServer pg;
  Init(pg);
  auto a = Open(pg, "a");
  REQUIRE(a->RegisterOwner("A", 1, "sync").ok());
  REQUIRE(a->Reserve("shootbin:k", 1, 10, 1, false).ok());  // the bucket row exists
  // Another host holds the bucket's row lock in an open transaction until
  // `release`.
  auto other = shotsync::pg::Session::Connect(pg.url(), 5, 0);
  REQUIRE(other.ok());
  std::latch locked(1), release(1);
  std::jthread holder([&] {
    (void)(*other)->Transact([&](shotsync::pg::Tx& tx) {
      const auto rows = tx.Exec("SELECT tokens FROM buckets WHERE key = 'shootbin:k' FOR UPDATE", {});
      locked.count_down();
      release.wait();
      return rows.status();
    });
  });
  locked.wait();
  std::jthread reserving([&] { (void)a->Reserve("shootbin:k", 1, 10, 1, false); });
  auto reservation_waits = [&] {
    return pg.Query("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") ==
           std::vector<std::string>{"1"};
  };
  REQUIRE(WaitFor(reservation_waits));
  auto renewed = std::async(std::launch::async, [&] { return a->RenewOwner("A"); });
  auto renewal_done = [&] { return renewed.wait_for(std::chrono::seconds(0)) == std::future_status::ready; };
  // The renewal ends while the reservation still waits (on the shared
  // connection it ended only once the reservation gave up, ~10 s later).
  REQUIRE(WaitFor([&] { return renewal_done() || !reservation_waits(); }));
  const bool renewed_first = renewal_done() && reservation_waits();
  release.count_down();  // lets the waiting reservation (and a waiting renewal) end
  CHECK(renewed_first);
  CHECK(renewed.get().ok());
}
