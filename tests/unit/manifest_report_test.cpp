// The manifest's read methods for `status` and `verify`, and ForgetRemote.
#include <catch2/catch.hpp>

#include <string>

#include "shotsync/manifest.hpp"
#include "temp_dir.hpp"

using shotsync::Code;
using shotsync::FileRecord;
using shotsync::FileState;
using shotsync::Manifest;
using shotsync::testing::TempDir;

namespace {

std::unique_ptr<Manifest> MustOpen(const TempDir& dir) {
  auto m = Manifest::Open((dir.path() / "manifest.db").string());
  INFO(m.status().ToString());
  REQUIRE(m.ok());
  return std::move(m).value();
}

std::int64_t AddRoot(Manifest& m, std::string path) {
  auto id = m.UpsertRoot({0, std::move(path), "Demo", "Main"});
  REQUIRE(id.ok());
  return *id;
}

// A row in `state`; synced rows carry a remote id and the hash sent.
FileRecord Put(Manifest& m, std::int64_t root, std::string rel, FileState state, std::string reason = "") {
  FileRecord f;
  f.root_id = root;
  f.rel_path = std::move(rel);
  f.size = 100;
  f.mtime_ns = 1'700'000'000'000'000'000;
  f.hash = "0123456789abcdef0123456789abcdef";
  f.state = state;
  f.reason = std::move(reason);
  REQUIRE(m.PutFile(f).ok());
  if (state == FileState::kSynced || state == FileState::kMissing) {
    // Only FinishJob sets the remote side, as a real upload does.
    auto job = m.BeginJob(f.id, f.hash, f.size, shotsync::JobOwner{"test-owner", nullptr});
    REQUIRE(job.ok());
    REQUIRE(m.FinishJob(job->job_id, 1000 + f.id).ok());
    if (state == FileState::kMissing) REQUIRE(m.MarkMissing(root, f.rel_path).ok());
  }
  auto got = m.GetFileById(f.id);
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  return **got;
}

}  // namespace

TEST_CASE("CountsByRoot counts each state per root, including roots without files", "[manifest][report]") {
  TempDir dir;
  auto m = MustOpen(dir);
  const std::int64_t a = AddRoot(*m, "/photos/a");
  const std::int64_t b = AddRoot(*m, "/photos/b");
  const std::int64_t empty = AddRoot(*m, "/photos/empty");
  Put(*m, a, "1.jpg", FileState::kSynced);
  Put(*m, a, "2.jpg", FileState::kSynced);
  Put(*m, a, "3.jpg", FileState::kNew);
  Put(*m, a, "4.jpg", FileState::kMissing);
  Put(*m, b, "x.jpg", FileState::kRejected, "not a valid image");
  Put(*m, b, "y.jpg", FileState::kNew);

  auto counts = m->CountsByRoot();
  REQUIRE(counts.ok());
  REQUIRE(counts->size() == 3);
  const auto& ca = (*counts)[0];
  CHECK(ca.root_id == a);
  CHECK(ca.path == "/photos/a");
  CHECK(ca.synced == 2);
  CHECK(ca.pending == 1);
  CHECK(ca.missing == 1);
  CHECK(ca.rejected == 0);
  const auto& cb = (*counts)[1];
  CHECK(cb.root_id == b);
  CHECK(cb.synced == 0);
  CHECK(cb.pending == 1);
  CHECK(cb.rejected == 1);
  const auto& ce = (*counts)[2];
  CHECK(ce.root_id == empty);
  CHECK(ce.synced + ce.pending + ce.missing + ce.rejected == 0);
}

TEST_CASE("FilesInState lists only that state, with reasons, up to the limit", "[manifest][report]") {
  TempDir dir;
  auto m = MustOpen(dir);
  const std::int64_t root = AddRoot(*m, "/photos");
  Put(*m, root, "ok.jpg", FileState::kSynced);
  Put(*m, root, "bad1.jpg", FileState::kRejected, "not a valid image");
  Put(*m, root, "bad2.jpg", FileState::kRejected, "422: unsupported type");
  Put(*m, root, "bad3.jpg", FileState::kRejected, "too large");

  auto all = m->FilesInState(FileState::kRejected, 100);
  REQUIRE(all.ok());
  REQUIRE(all->size() == 3);
  for (const FileRecord& f : *all) {
    CHECK(f.state == FileState::kRejected);
    CHECK_FALSE(f.reason.empty());
  }
  // Same second: the newest row first.
  CHECK((*all)[0].rel_path == "bad3.jpg");
  CHECK((*all)[0].reason == "too large");
  auto two = m->FilesInState(FileState::kRejected, 2);
  REQUIRE(two.ok());
  CHECK(two->size() == 2);
  auto synced = m->FilesInState(FileState::kSynced, 10);
  REQUIRE(synced.ok());
  REQUIRE(synced->size() == 1);
  CHECK((*synced)[0].rel_path == "ok.jpg");
  CHECK(m->FilesInState(FileState::kMissing, 10)->empty());
}

TEST_CASE("Buckets lists the throttle rows by key, with their pause, never a token", "[manifest][report]") {
  TempDir dir;
  auto m = MustOpen(dir);
  CHECK(m->Buckets()->empty());
  REQUIRE(m->TakeToken("shootbin:abc", 1.0, 1.0, 1000.0).ok());
  REQUIRE(m->TakeToken("headshotpro:def", 5.0, 1.0, 1000.0).ok());
  REQUIRE(m->PauseBucket("shootbin:abc", 1060.0).ok());
  auto buckets = m->Buckets();
  REQUIRE(buckets.ok());
  REQUIRE(buckets->size() == 2);
  CHECK((*buckets)[0].key == "headshotpro:def");
  CHECK((*buckets)[0].tokens == Approx(0.0));
  CHECK((*buckets)[0].refilled_at == Approx(1000.0));
  CHECK((*buckets)[0].paused_until == Approx(0.0));
  CHECK((*buckets)[1].key == "shootbin:abc");
  CHECK((*buckets)[1].paused_until == Approx(1060.0));
}

TEST_CASE("ForgetRemote makes a synced file new again, and keeps missing files missing", "[manifest][report]") {
  TempDir dir;
  auto m = MustOpen(dir);
  const std::int64_t root = AddRoot(*m, "/photos");
  const FileRecord synced = Put(*m, root, "a.jpg", FileState::kSynced);
  const FileRecord missing = Put(*m, root, "b.jpg", FileState::kMissing);
  REQUIRE(synced.remote_photo_id.has_value());
  REQUIRE(synced.state == FileState::kSynced);

  REQUIRE(m->ForgetRemote(synced.id).ok());
  auto got = m->GetFileById(synced.id);
  REQUIRE(got.ok());
  CHECK((*got)->state == FileState::kNew);
  CHECK_FALSE((*got)->remote_photo_id.has_value());
  CHECK((*got)->remote_hash.empty());
  CHECK((*got)->hash == synced.hash);  // the content is known; only the server side is forgotten

  REQUIRE(m->ForgetRemote(missing.id).ok());
  got = m->GetFileById(missing.id);
  CHECK((*got)->state == FileState::kMissing);
  CHECK_FALSE((*got)->remote_photo_id.has_value());

  CHECK(m->ForgetRemote(987654).code() == Code::kNotFound);
}
