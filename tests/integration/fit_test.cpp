// Over-size JPEGs fitted instead of refused (docs/fit.md): the CLI against
// the emulator, which keeps the uploaded bytes (--store) and judges images
// with its own code; the test reads them with libjpeg-turbo.
#include <sqlite3.h>
#include <turbojpeg.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "fit_samples.hpp"
#include "sync_fixture.hpp"

namespace fs = std::filesystem;
using namespace shotsync::testing;

namespace {

constexpr std::uint64_t kLimit = 10ull * 1024 * 1024;

// A profile whose emulator stores what it is sent.
struct FitProfile {
  TempDir store;
  SyncFixture f{{"--shootbin-rpm", "1000000", "--store", store.path().string()}};

  // `fit = true` on the root ([[roots]] is the config's last table).
  void FitRoot() { std::ofstream(f.config, std::ios::app) << "fit = true\n"; }
  void Write(const std::string& name, const std::string& bytes) const {
    std::ofstream(f.photos / name, std::ios::binary | std::ios::trunc) << bytes;
  }
  // The bytes the emulator stored for the album's photo of this name
  // (its latest revision).
  std::string Stored(const std::string& name) const {
    const auto photo = f.RemotePhotos().at(name);
    std::string file = "photo-" + std::to_string(photo.at("id").get<std::int64_t>());
    const auto revisions = photo.at("revisions").get<int>();
    if (revisions > 0) file += "-v" + std::to_string(revisions + 1);
    return ReadFileText(store.path() / file);
  }
  bool NoCopiesLeft() const { return !fs::exists(f.state / "fit") || fs::is_empty(f.state / "fit"); }
  // The largest JPEG quality the manifest recorded for a sent copy (0 = none).
  int RecordedQuality() const {
    sqlite3* db = nullptr;
    int quality = -1;
    if (sqlite3_open_v2((f.state / "manifest.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_exec(
          db, "SELECT max(fit_quality) FROM jobs WHERE state = 'done'",
          [](void* out, int, char** values, char**) {
            *static_cast<int*>(out) = values[0] ? std::atoi(values[0]) : 0;
            return 0;
          },
          &quality, nullptr);
    }
    sqlite3_close(db);
    return quality;
  }
};

// About 14 MB: noise at quality 100 (4:4:4), with EXIF, XMP and ICC (in two
// parts), IPTC and a comment, as a camera writes them (no JFIF APP0).
std::string BigPhoto(std::uint64_t seed) {
  return WithSegments(NoiseJpeg(2200, 1650, 100, TJSAMP_444, seed), SampleMetadata(), /*drop_app0=*/true);
}

}  // namespace

TEST_CASE("fit: a 14 MB JPEG is sent once as a copy under 10 MiB that decodes and keeps its metadata",
          "[fit][cli]") {
  FitProfile p;
  p.f.MakePhotos(2);
  const std::string big = BigPhoto(1);
  REQUIRE(big.size() > 13 * 1000 * 1000);
  REQUIRE(big.size() < 16 * 1000 * 1000);
  p.Write("big.jpg", big);
  const std::string before = Sha256File(p.f.photos / "big.jpg");

  // Without fit: refused by size, as before.
  auto refused = p.f.Cli({"sync"});
  INFO(refused.out << refused.err);
  CHECK(refused.code == 1);
  CHECK(refused.err.find("big.jpg") != std::string::npos);
  CHECK(refused.err.find("over the upload limit") != std::string::npos);
  CHECK(p.f.RemotePhotos().count("big.jpg") == 0);

  p.FitRoot();
  auto plan = p.f.Cli({"-v", "plan"});
  INFO(plan.out << plan.err);
  CHECK(plan.code == 0);
  CHECK((plan.out + plan.err).find("JPEG quality") != std::string::npos);

  auto sync = p.f.Cli({"sync"});
  INFO(sync.out << sync.err);
  REQUIRE(sync.code == 0);
  CHECK(StatU(p.f.emu->Stats(), "uploads") == 3);
  const auto remote = p.f.RemotePhotos();
  REQUIRE(remote.count("big.jpg") == 1);
  const std::string stored = p.Stored("big.jpg");
  CHECK(stored.size() <= kLimit);
  CHECK(stored.size() == remote.at("big.jpg").at("size").get<std::uint64_t>());
  int w = 0, h = 0;
  CHECK(Decodes(stored, &w, &h));
  CHECK(w == 2200);
  CHECK(h == 1650);
  CHECK(HasSegmentsInOrder(stored, SampleMetadata()));
  CHECK(Sha256File(p.f.photos / "big.jpg") == before);  // the original is only read
  CHECK(p.NoCopiesLeft());
  const int quality = p.RecordedQuality();  // the upload records the quality it used
  CHECK(quality >= 60);
  CHECK(quality <= 95);

  // Nothing changed: nothing sent.
  auto noop = p.f.Cli({"sync"});
  CHECK(noop.code == 0);
  CHECK(StatU(p.f.emu->Stats(), "uploads") == 3);

  // A lost state folder: the album's fitted photo is recognised, not sent again.
  fs::remove_all(p.f.state);
  auto again = p.f.Cli({"sync"});
  INFO(again.out << again.err);
  CHECK(again.code == 0);
  auto stats = p.f.emu->Stats();
  CHECK(StatU(stats, "uploads") == 3);
  CHECK(StatU(stats, "revisions") == 0);
  CHECK(StatU(stats, "duplicates") == 0);
  CHECK(p.f.RemotePhotos().size() == 3);

  // An edit of the over-size original: a revision, fitted too.
  p.Write("big.jpg", BigPhoto(2));
  auto revised = p.f.Cli({"sync"});
  INFO(revised.out << revised.err);
  CHECK(revised.code == 0);
  stats = p.f.emu->Stats();
  CHECK(StatU(stats, "uploads") == 3);
  CHECK(StatU(stats, "revisions") == 1);
  const std::string revision = p.Stored("big.jpg");
  CHECK(revision.size() <= kLimit);
  CHECK(revision != stored);
  CHECK(Decodes(revision));
  CHECK(HasSegmentsInOrder(revision, SampleMetadata()));
  CHECK(p.NoCopiesLeft());
}

TEST_CASE("fit: a JPEG that cannot fit even at the lowest quality is refused with the size reached",
          "[fit][cli]") {
  FitProfile p;
  p.FitRoot();
  // Full-range noise at 4:4:4 is over 10 MiB even at quality 60.
  p.Write("huge.jpg", NoiseJpeg(4400, 3300, 90, TJSAMP_444, 9));
  auto r = p.f.Cli({"sync"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  const auto line_at = r.err.find("huge.jpg");
  REQUIRE(line_at != std::string::npos);
  const std::string line = r.err.substr(line_at, r.err.find('\n', line_at) - line_at);
  CHECK(line.find("does not fit the upload limit of 10.5 MB") != std::string::npos);
  CHECK(line.find("quality 60: ") != std::string::npos);
  CHECK(StatU(p.f.emu->Stats(), "uploads") == 0);
  CHECK(p.NoCopiesLeft());
  // The refusal is recorded: the next run does not read the file again.
  auto again = p.f.Cli({"sync"});
  CHECK(again.code == 1);
  CHECK(StatU(p.f.emu->Stats(), "uploads") == 0);
}

TEST_CASE("fit: --fit on push and sync fits the roots of a config without it", "[fit][cli]") {
  FitProfile p;
  p.Write("one.jpg", BigPhoto(3));
  auto push = p.f.Cli({"push", "--fit", (p.f.photos / "one.jpg").string()});
  INFO(push.out << push.err);
  CHECK(push.code == 0);
  CHECK(p.Stored("one.jpg").size() <= kLimit);
  p.Write("two.jpg", BigPhoto(4));
  auto sync = p.f.Cli({"sync", "--fit"});
  INFO(sync.out << sync.err);
  CHECK(sync.code == 0);
  CHECK(p.Stored("two.jpg").size() <= kLimit);
  CHECK(StatU(p.f.emu->Stats(), "uploads") == 2);
}
