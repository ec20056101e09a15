// Local trouble: photos that vanish mid-run, a full disk under the download
// folder, a read-only state folder. Each gives one clear line naming the file
// or folder; what was recorded before stays recorded; a later run completes.
#include <catch2/catch.hpp>

#include <sys/mount.h>

#include <filesystem>
#include <thread>

#include "sync_fixture.hpp"

namespace fs = std::filesystem;
using shotsync::testing::StatU;
using shotsync::testing::SyncFixture;

namespace {

// A mount that is undone on scope exit. ok() is false where mounting is not
// allowed (not root, no CAP_SYS_ADMIN): those tests then fail, loudly.
class Mount {
 public:
  Mount(const fs::path& target, const char* type, const char* source, unsigned long flags, const char* data)
      : target_(target) {
    ok_ = ::mount(source, target.c_str(), type, flags, data) == 0;
  }
  ~Mount() {
    if (ok_) ::umount2(target_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }

 private:
  fs::path target_;
  bool ok_ = false;
};

}  // namespace

TEST_CASE("photos deleted while a sync runs are named, and the next run finishes without them", "[local]") {
  SyncFixture f({"--shootbin-rpm", "1000000", "--latency-ms", "250"});
  f.MakePhotos(20);
  auto sync = f.StartCli({"sync", "-j", "2"});
  f.emu->WaitForStats([](const nlohmann::json& s) { return StatU(s, "uploads") >= 2; });  // planned, a few sent
  std::vector<std::string> gone;
  for (int n = 16; n <= 20; ++n) {
    char rel[32];
    std::snprintf(rel, sizeof rel, "d01/IMG_%04d.jpg", n);
    fs::remove(f.photos / rel);
    gone.push_back(rel);
  }
  auto code = sync->Wait(std::chrono::minutes(2));
  INFO(sync->Stderr());
  REQUIRE(code.has_value());
  CHECK(*code == 1);
  for (const auto& rel : gone) CHECK(sync->Stderr().find(rel) != std::string::npos);

  auto again = f.Cli({"sync", "--json"});
  INFO(again.out << again.err);
  CHECK(again.code == 0);
  CHECK(StatU(f.emu->Stats(), "duplicates") == 0);
  CHECK(f.CompareWithServer() == "");  // the 15 left, each once
}

// [root]: needs mount(2), so it fails (never skips) where it cannot mount;
// exclude the tag explicitly to leave it out.
TEST_CASE("a full disk under the download folder stops pull with one clear line and loses nothing recorded",
          "[local][root]") {
  SyncFixture f({"--headshotpro-rpm", "1000000"});
  f.emu->Seed({{"members", 1}, {"models_per_member", 1}, {"photos_per_model", 40}});
  const fs::path dest = f.tmp.path() / "headshots";
  fs::create_directories(dest);
  Mount small(dest, "tmpfs", "tmpfs", 0, "size=192k");
  if (!small.ok()) FAIL("cannot mount a small tmpfs here (needs root; exclude [root] to leave this out)");
  auto r = f.Cli({"pull"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(r.err.find("No space left on device") != std::string::npos);
  CHECK(r.err.find(dest.string()) != std::string::npos);  // names where
  // The manifest is intact and still usable.
  CHECK(f.Cli({"pull", "--dry-run"}).code == 0);
}

TEST_CASE("a read-only state folder is one clear error, and the manifest is untouched", "[local][root]") {
  SyncFixture f;
  f.MakePhotos(3);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  Mount bind(f.state, nullptr, f.state.c_str(), MS_BIND, nullptr);
  if (!bind.ok()) FAIL("cannot bind-mount here (needs root; exclude [root] to leave this out)");
  Mount ro(f.state, nullptr, f.state.c_str(), MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr);
  REQUIRE(ro.ok());
  f.MakePhotos(2, 4);
  auto r = f.Cli({"sync"});
  INFO(r.out << r.err);
  CHECK(r.code != 0);
  CHECK(r.err.find(f.state.string()) != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') <= 2);
}
