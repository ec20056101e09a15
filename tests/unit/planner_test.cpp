// The local pipeline end to end (scan, diff, hash, plan) on temp folders.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "jpeg_synth.hpp"
#include "shotsync/manifest.hpp"
#include "shotsync/planner.hpp"
#include "shotsync/version.hpp"
#include "temp_dir.hpp"
#include "unprivileged.hpp"

namespace fs = std::filesystem;
using namespace shotsync;

namespace {

// One process owning its jobs; every other owner counts as running.
shotsync::JobOwner TestOwner() { return shotsync::JobOwner{"test-owner", nullptr}; }

void WriteBytes(const fs::path& p, const std::vector<std::uint8_t>& b) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

void WriteJpeg(const fs::path& p, std::uint64_t seed) {
  WriteBytes(p, testing::SynthJpeg({.width = 64, .height = 48, .seed = seed}));
}

struct Fixture {
  testing::TempDir tmp;
  Config config;
  std::unique_ptr<Manifest> manifest;
  fs::path root;

  Fixture() {
    root = tmp.path() / "photos";
    fs::create_directories(root);
    config.state_dir = (tmp.path() / "state").string();
    fs::create_directories(config.state_dir);
    config.roots.push_back({root.string(), "Demo", "Main", false, {"*.xmp"}});
    auto m = Manifest::Open(config.ManifestPath());
    REQUIRE(m.ok());
    manifest = std::move(*m);
  }

  struct Outcome {
    PlanStats stats;
    std::map<std::string, PlanItem> items;  // by rel_path
    std::vector<std::string> errors;
  };

  Outcome Plan(bool dedupe = false) {
    Outcome o;
    auto s = BuildPlan(config, *manifest, PlanOptions{.hash_threads = 2, .dedupe = dedupe},
                       [&](const PlanItem& it) { o.items[it.file.rel_path] = it; },
                       [&](const std::string& path, const Status& st) {
                         o.errors.push_back(path + ": " + st.message());
                       });
    REQUIRE(s.ok());
    o.stats = *s;
    return o;
  }

  // What a successful upload records (the sync does this through FinishJob).
  void MarkUploaded(const PlanItem& item, std::int64_t photo_id) {
    auto job = manifest->BeginJob(item.file.id, item.file.hash, item.file.size, TestOwner());
    REQUIRE(job.ok());
    REQUIRE(manifest->FinishJob(job->job_id, photo_id).ok());
  }
};

}  // namespace

TEST_CASE("new photos are planned for upload and a second plan reads nothing", "[planner]") {
  Fixture f;
  WriteJpeg(f.root / "a.jpg", 1);
  WriteJpeg(f.root / "day1/b.jpg", 2);
  WriteJpeg(f.root / "day1/deep/c.jpg", 3);
  auto first = f.Plan();
  CHECK(first.stats.upload == 3);
  CHECK(first.stats.hashed == 3);
  CHECK(first.items.at("day1/deep/c.jpg").action == Action::kUpload);
  auto second = f.Plan();
  CHECK(second.stats.upload == 3);  // still not sent
  CHECK(second.stats.hashed == 0);  // but nothing was read again
  CHECK(second.stats.scanned == 3);
}

TEST_CASE("changed content becomes a revision, a touch without change does not", "[planner]") {
  Fixture f;
  WriteJpeg(f.root / "a.jpg", 1);
  WriteJpeg(f.root / "b.jpg", 2);
  auto first = f.Plan();
  f.MarkUploaded(first.items.at("a.jpg"), 101);
  f.MarkUploaded(first.items.at("b.jpg"), 102);
  auto synced = f.Plan();
  CHECK(synced.stats.skip == 2);
  CHECK(synced.stats.hashed == 0);

  WriteJpeg(f.root / "a.jpg", 99);  // new content
  // b.jpg touched: same bytes, new mtime.
  const auto b = f.root / "b.jpg";
  fs::last_write_time(b, fs::last_write_time(b) + std::chrono::seconds(5));
  auto after = f.Plan();
  CHECK(after.items.at("a.jpg").action == Action::kRevision);
  CHECK(after.items.at("b.jpg").action == Action::kSkip);
  CHECK(after.stats.hashed == 2);
  auto again = f.Plan();
  CHECK(again.stats.hashed == 0);  // the touch's new stat was recorded
  CHECK(again.items.at("b.jpg").action == Action::kSkip);
}

TEST_CASE("only the size limit and empty files are refused locally, formats are the server's decision",
          "[planner]") {
  Fixture f;
  std::vector<std::uint8_t> big = testing::SynthJpeg({.width = 64, .height = 48});
  big.insert(big.begin() + 2, kShootbinMaxUpload, 0);
  WriteBytes(f.root / "big.jpg", big);
  WriteBytes(f.root / "empty.jpg", {});
  WriteBytes(f.root / "fake.jpg", {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!', '!', '\n'});
  // A motion photo: a JPEG with an MP4 after its end-of-image marker.
  auto motion = testing::SynthJpeg({.width = 64, .height = 48});
  for (int i = 0; i < 1000; ++i) motion.push_back(std::uint8_t(i));
  WriteBytes(f.root / "motion.jpg", motion);
  WriteJpeg(f.root / "ok.jpg", 5);
  auto o = f.Plan();
  CHECK(o.items.at("big.jpg").action == Action::kRejected);
  CHECK(o.items.at("big.jpg").reason.find("over the upload limit of 10.5 MB (10 MiB): ") != std::string::npos);
  CHECK(o.items.at("empty.jpg").action == Action::kRejected);
  CHECK(o.items.at("empty.jpg").reason == "empty file");
  CHECK(o.items.at("fake.jpg").action == Action::kUpload);    // the server's 422 decides
  CHECK(o.items.at("motion.jpg").action == Action::kUpload);
  CHECK(o.items.at("ok.jpg").action == Action::kUpload);
  CHECK(o.stats.hashed == 4);  // the over-size file is never read
  auto again = f.Plan();
  CHECK(again.stats.rejected == 2);
  CHECK(again.stats.hashed == 0);
}

TEST_CASE("a refusal stands for this version only, and --retry-rejected decides it again", "[planner]") {
  FileRecord row;
  row.id = 1;
  row.size = 100;
  row.hash = "h";
  row.state = FileState::kRejected;
  row.reason = "The photo must be an image. (HTTP 422)";
  row.rejected_by = shotsync::kVersion;
  std::string reason;
  CHECK(Decide(row, nullptr, reason) == Action::kRejected);
  CHECK(reason == row.reason);
  CHECK(Decide(row, nullptr, reason, /*retry_rejected=*/true) == Action::kUpload);
  row.rejected_by = "0.0.1";  // refused by an older shotsync
  CHECK(Decide(row, nullptr, reason) == Action::kUpload);
  row.size = kShootbinMaxUpload + 1;  // the size limit holds whatever the version
  CHECK(Decide(row, nullptr, reason, true) == Action::kRejected);
}

TEST_CASE("deleted and renamed files: the old path is missing, the new one is uploaded", "[planner]") {
  Fixture f;
  WriteJpeg(f.root / "keep.jpg", 1);
  WriteJpeg(f.root / "old.jpg", 2);
  WriteJpeg(f.root / "gone/x.jpg", 3);
  auto first = f.Plan();
  f.MarkUploaded(first.items.at("old.jpg"), 7);
  fs::rename(f.root / "old.jpg", f.root / "new.jpg");
  fs::remove_all(f.root / "gone");
  auto o = f.Plan();
  CHECK(o.stats.missing == 2);
  CHECK(o.items.count("old.jpg") == 0);
  CHECK(o.items.at("new.jpg").action == Action::kUpload);
  auto row = f.manifest->GetFile(o.items.at("keep.jpg").file.root_id, "old.jpg");
  REQUIRE(row.ok());
  REQUIRE(row->has_value());
  CHECK((*row)->state == FileState::kMissing);
  CHECK((*row)->remote_photo_id == 7);  // never forgotten, never deleted remotely
}

TEST_CASE("ignored, hidden and partial files are not planned", "[planner]") {
  Fixture f;
  WriteJpeg(f.root / "a.jpg", 1);
  WriteJpeg(f.root / ".hidden.jpg", 2);
  WriteJpeg(f.root / "b.jpg.part", 3);
  WriteBytes(f.root / "a.xmp", {'<', 'x', '/', '>'});
  auto o = f.Plan();
  CHECK(o.items.size() == 1);
  CHECK(o.items.count("a.jpg") == 1);
}

TEST_CASE("the same content under two paths is uploaded twice unless dedupe is on", "[planner]") {
  Fixture f;
  WriteJpeg(f.root / "a.jpg", 1);
  auto first = f.Plan();
  f.MarkUploaded(first.items.at("a.jpg"), 1);
  fs::copy_file(f.root / "a.jpg", f.root / "copy.jpg");
  CHECK(f.Plan().items.at("copy.jpg").action == Action::kUpload);
  auto deduped = f.Plan(/*dedupe=*/true);
  CHECK(deduped.items.at("copy.jpg").action == Action::kSkip);
  CHECK(deduped.items.at("copy.jpg").reason.find("a.jpg") != std::string::npos);
}

TEST_CASE("an unreadable file is rejected with its reason and retried next time", "[planner]") {
  testing::Unprivileged as_nobody;  // root would read the file anyway; the fixture is nobody's
  Fixture f;
  WriteJpeg(f.root / "locked.jpg", 1);
  ::chmod((f.root / "locked.jpg").c_str(), 0);
  auto o = f.Plan();
  CHECK(o.items.at("locked.jpg").action == Action::kRejected);
  CHECK(o.items.at("locked.jpg").reason.find("unreadable") != std::string::npos);
  REQUIRE_FALSE(o.errors.empty());
  ::chmod((f.root / "locked.jpg").c_str(), 0644);
  CHECK(f.Plan().items.at("locked.jpg").action == Action::kUpload);
}

TEST_CASE("two roots feeding one album with the same relative path are refused", "[planner]") {
  Fixture f;
  const fs::path other = f.tmp.path() / "other";
  f.config.roots.push_back({other.string(), "Demo", "Main", false, {}});
  WriteJpeg(f.root / "same.jpg", 1);
  WriteJpeg(other / "same.jpg", 2);
  f.Plan();  // both rows exist after the first pass
  auto o = f.Plan();
  CHECK(o.stats.rejected >= 1);
}

TEST_CASE("a missing root is reported and the other roots are still planned", "[planner]") {
  Fixture f;
  f.config.roots.insert(f.config.roots.begin(), {(f.tmp.path() / "nope").string(), "P", "A", false, {}});
  WriteJpeg(f.root / "a.jpg", 1);
  auto o = f.Plan();
  CHECK(o.stats.upload == 1);
  REQUIRE(o.errors.size() == 1);
  CHECK(o.errors[0].find("nope") != std::string::npos);
}
