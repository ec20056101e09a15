// One read per changed photo (issue 17; docs/resume.md): a photo the plan
// knows must be sent is read once, by the send, which hashes the bytes as
// curl reads them; the manifest records that hash. Reads are counted by the
// kernel (inotify IN_OPEN on the photo folders), not by shotsync.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "shotsync/hasher.hpp"
#include "shotsync/manifest.hpp"
#include "open_counter.hpp"
#include "raw_sql.hpp"
#include "sync_fixture.hpp"

namespace fs = std::filesystem;
using shotsync::testing::OpenCounter;
using shotsync::testing::RawExec;
using shotsync::testing::RawInt;
using shotsync::testing::StatU;
using shotsync::testing::SyncFixture;

namespace {

std::vector<std::string> Photos(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), root).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Row {
  std::string hash, remote_hash;
};

Row RowOf(const SyncFixture& f, const std::string& rel) {
  auto m = shotsync::Manifest::Open((f.state / "manifest.db").string());
  REQUIRE(m.ok());
  auto roots = (*m)->Roots();
  REQUIRE(roots.ok());
  REQUIRE(roots->size() == 1);
  auto row = (*m)->GetFile(roots->front().id, rel);
  REQUIRE(row.ok());
  REQUIRE(row->has_value());
  return {(**row).hash, (**row).remote_hash};
}

std::string HashOf(const fs::path& p) {
  auto h = shotsync::HashFile(p.string());
  REQUIRE(h.ok());
  return h->hash;
}

void Append(const fs::path& p, std::string_view bytes) {
  std::ofstream(p, std::ios::binary | std::ios::app) << bytes;
}

// Same size, other bytes: a few bytes of the JPEG's entropy data flipped.
void Scribble(const fs::path& p) {
  std::fstream io(p, std::ios::binary | std::ios::in | std::ios::out);
  io.seekp(std::streamoff(fs::file_size(p) / 2));
  io.write("\x55\xaa\x55\xaa", 4);
}

}  // namespace

TEST_CASE("a new photo is read once: the send hashes it, the manifest keeps that hash, a resync reads nothing",
          "[sync][reads]") {
  SyncFixture f;
  f.WriteConfig();
  f.MakePhotos(12, 1, 4);
  OpenCounter opens(f.photos);
  auto r = f.Cli({"sync"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const auto first = opens.Take();
  for (const std::string& rel : Photos(f.photos)) {
    INFO(rel);
    CHECK(first.count(rel) == 1);
    if (first.count(rel)) CHECK(first.at(rel) == 1);
    const Row row = RowOf(f, rel);
    CHECK(row.hash == HashOf(f.photos / rel));
    CHECK(row.remote_hash == row.hash);
  }
  CHECK(f.CompareWithServer() == "");
  CHECK(StatU(f.emu->Stats(), "uploads") == 12);

  (void)opens.Take();  // this test's own reads (hashes, the comparison)
  auto again = f.Cli({"sync"});
  INFO(again.out << again.err);
  CHECK(again.code == 0);
  CHECK(opens.Take().empty());
  CHECK(StatU(f.emu->Stats(), "uploads") == 12);
  CHECK(StatU(f.emu->Stats(), "revisions") == 0);
}

TEST_CASE("a photo whose size changed is read once for its revision, a touched or same-size edit is hashed first",
          "[sync][reads]") {
  SyncFixture f;
  f.WriteConfig();
  f.MakePhotos(3, 1, 3);
  REQUIRE(f.Cli({"sync"}).code == 0);
  const auto names = Photos(f.photos);
  REQUIRE(names.size() == 3);
  const std::string grown = names[0], touched = names[1], scribbled = names[2];
  Append(f.photos / grown, "trailing bytes after EOI");
  fs::last_write_time(f.photos / touched, fs::last_write_time(f.photos / touched) + std::chrono::seconds(5));
  Scribble(f.photos / scribbled);
  fs::last_write_time(f.photos / scribbled, fs::last_write_time(f.photos / scribbled) + std::chrono::seconds(5));
  OpenCounter opens(f.photos);  // after the edits, which open the files too

  auto r = f.Cli({"sync"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const auto seen = opens.Take();
  CHECK(seen.at(grown) == 1);      // sent, hashed as it went
  CHECK(seen.at(touched) == 1);    // hashed: the same bytes, nothing sent
  CHECK(seen.at(scribbled) == 2);  // hashed (it might have been a touch), then sent
  CHECK(StatU(f.emu->Stats(), "revisions") == 2);
  for (const std::string& rel : names) {
    INFO(rel);
    const Row row = RowOf(f, rel);
    CHECK(row.hash == HashOf(f.photos / rel));
    CHECK(row.remote_hash == row.hash);
  }
  CHECK(f.CompareWithServer() == "");
  REQUIRE(f.Cli({"sync"}).code == 0);
  CHECK(StatU(f.emu->Stats(), "revisions") == 2);
}

TEST_CASE("unread uploads whose answers were cut off are reconciled and recorded with their hash, never resent",
          "[sync][reads][faults]") {
  SyncFixture f;
  f.WriteConfig("reconcile_delay = 1");
  f.MakePhotos(8, 1, 4);
  f.emu->SetFaults({{"rate_cut_2xx", 1.0}});
  auto r = f.Cli({"sync"});
  INFO(r.out << r.err);
  f.emu->SetFaults({{"rate_cut_2xx", 0.0}});
  CHECK(r.code == 0);
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "uploads") == 8);
  CHECK(StatU(stats, "duplicates") == 0);
  for (const std::string& rel : Photos(f.photos)) {
    INFO(rel);
    const Row row = RowOf(f, rel);
    CHECK(row.hash == HashOf(f.photos / rel));
    CHECK(row.remote_hash == row.hash);
  }
  REQUIRE(f.Cli({"sync"}).code == 0);
  stats = f.emu->Stats();
  CHECK(StatU(stats, "uploads") == 8);
  CHECK(StatU(stats, "revisions") == 0);
}

TEST_CASE("a new file of the size of a synced one that moved is hashed first and recognised as the move",
          "[sync][reads]") {
  SyncFixture f;
  f.WriteConfig();
  f.MakePhotos(2, 1, 2);
  REQUIRE(f.Cli({"sync"}).code == 0);
  const auto names = Photos(f.photos);
  const fs::path from = f.photos / names[0];
  const fs::path to = f.photos / "moved" / fs::path(names[0]).filename();
  fs::create_directories(to.parent_path());
  fs::rename(from, to);
  OpenCounter opens(f.photos);
  auto r = f.Cli({"sync"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(opens.Take().at(fs::relative(to, f.photos).string()) == 1);  // hashed, not sent
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "uploads") == 2);
  CHECK(StatU(stats, "revisions") == 0);
}

// A library planned but not yet uploaded (a `plan` before the first sync, or
// a sync stopped early) keeps rows decided from the stat: the next plan
// neither reads those photos nor rewrites their rows.
TEST_CASE("a plan of photos an earlier plan decided unread reads none of them and rewrites no row", "[plan][reads]") {
  SyncFixture f;
  f.WriteConfig();
  f.MakePhotos(6, 1, 3);
  OpenCounter opens(f.photos);
  auto first = f.Cli({"plan"});
  INFO(first.out << first.err);
  REQUIRE(first.code == 0);
  CHECK(opens.Take().empty());  // new photos, no synced file of their size: sent unread
  const std::string db = (f.state / "manifest.db").string();
  REQUIRE(RawInt(db, "SELECT count(*) FROM files WHERE hash = ''") == 6);
  // A rewrite would set updated_at to the time of the next plan.
  RawExec(db, "UPDATE files SET updated_at = 0");

  auto second = f.Cli({"plan"});
  INFO(second.out << second.err);
  CHECK(second.code == 0);
  CHECK(second.out.find("would upload 6,") != std::string::npos);
  CHECK(opens.Take().empty());
  CHECK(RawInt(db, "SELECT count(*) FROM files WHERE updated_at = 0 AND hash = ''") == 6);
}
