// shotsync push: the export-hook fast path, alone and beside a running sync.
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "jpeg_synth.hpp"
#include "open_counter.hpp"
#include "shotsync/manifest.hpp"
#include "sync_fixture.hpp"
#include "wait.hpp"

namespace fs = std::filesystem;
using shotsync::testing::OpenCounter;
using shotsync::testing::RunProgram;
using shotsync::testing::StatU;
using shotsync::testing::SyncFixture;
using shotsync::testing::WaitFor;

namespace {

std::string Photo(const SyncFixture& f, int n) {
  char rel[32];
  std::snprintf(rel, sizeof rel, "d%02d/IMG_%04d.jpg", (n - 1) / 50 + 1, n);
  return (f.photos / rel).string();
}

// Overwrites the photo with new content (an export of an edit).
void Edit(const std::string& path, std::uint64_t seed) {
  auto bytes = shotsync::testing::SynthJpeg({.width = 64, .height = 48, .seed = seed});
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::uint64_t Requests(const SyncFixture& f) {
  const nlohmann::json stats = f.emu->Stats();  // alive for the loop: items() refers into it
  std::uint64_t n = 0;
  for (const auto& [route, count] : stats.at("requests").items()) n += count.get<std::uint64_t>();
  return n;
}

std::int64_t ManifestRows(const SyncFixture& f) {
  auto m = shotsync::Manifest::Open((f.state / "manifest.db").string());
  REQUIRE(m.ok());
  std::int64_t n = 0;
  REQUIRE((*m)->ForEachFile(0, [&](const shotsync::FileRecord&) { ++n; }).ok());
  return n;
}

}  // namespace

TEST_CASE("push uploads just the named file, without walking the roots", "[push]") {
  SyncFixture f;
  f.MakePhotos(30);
  auto r = f.Cli({"push", Photo(f, 7)});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("uploaded") != std::string::npos);
  CHECK(StatU(f.emu->Stats(), "uploads") == 1);
  CHECK(ManifestRows(f) == 1);  // the other 29 were never looked at
  CHECK(f.RemotePhotos().count("d01/IMG_0007.jpg") == 1);

  SECTION("a later sync sends the rest and not this one again") {
    REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
    CHECK(StatU(f.emu->Stats(), "uploads") == 30);
    CHECK(StatU(f.emu->Stats(), "duplicates") == 0);
    CHECK(f.CompareWithServer() == "");
  }
}

// A hook runs a process per exported photo: what one costs is counted here
// (benchmarks/push.sh times it). After the first push of a profile, which
// resolves the project and album, a push of a new photo is two requests
// (the album's photos since the last look, then the upload), one open of the
// manifest, and one read of the photo.
TEST_CASE("a push of a new photo costs two requests one manifest open and one read of the photo", "[push][cost]") {
  SyncFixture f;
  f.MakePhotos(3);
  REQUIRE(f.Cli({"push", "--quiet", Photo(f, 1)}).code == 0);
  OpenCounter photo_opens(f.photos);
  OpenCounter state_opens(f.state);
  const std::uint64_t before = Requests(f);
  auto r = f.Cli({"push", "--quiet", Photo(f, 2)});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(Requests(f) - before == 2);
  CHECK(photo_opens.Take() == std::map<std::string, int>{{"d01/IMG_0002.jpg", 1}});
  CHECK(state_opens.Take().at("manifest.db") == 1);
  CHECK(StatU(f.emu->Stats(), "uploads") == 2);
}

TEST_CASE("push of an unchanged file sends nothing, and of an edited one sends a revision", "[push]") {
  SyncFixture f;
  f.MakePhotos(3);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  auto same = f.Cli({"push", "--json", Photo(f, 2)});
  REQUIRE(same.code == 0);
  auto j = nlohmann::json::parse(same.out);
  CHECK(j.at("skipped") == 1);
  CHECK(j.at("files").at(0).at("outcome") == "unchanged");

  Edit(Photo(f, 2), 4242);
  auto edited = f.Cli({"push", "--json", Photo(f, 2)});
  INFO(edited.out << edited.err);
  REQUIRE(edited.code == 0);
  j = nlohmann::json::parse(edited.out);
  CHECK(j.at("revised") == 1);
  CHECK(j.at("files").at(0).at("outcome") == "revised");
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "uploads") == 3);
  CHECK(StatU(stats, "revisions") == 1);
  CHECK(f.CompareWithServer() == "");
}

TEST_CASE("push reads paths from stdin with '-', newline or NUL separated", "[push]") {
  SyncFixture f;
  f.MakePhotos(6);
  const std::string cli = std::string(SHOTSYNC_CLI_PATH) + " --config '" + f.config.string() + "'";
  auto lines = RunProgram({"/bin/sh", "-c", "printf '%s\\n' '" + Photo(f, 1) + "' '" + Photo(f, 2) + "' | " + cli + " push -"},
                          f.Env(), (f.tmp.path() / "stdin1").string());
  INFO(lines.out << lines.err);
  CHECK(lines.code == 0);
  auto nul = RunProgram({"/bin/sh", "-c", "printf '%s\\0' '" + Photo(f, 3) + "' '" + Photo(f, 4) + "' | " + cli + " push -0 -"},
                        f.Env(), (f.tmp.path() / "stdin2").string());
  INFO(nul.out << nul.err);
  CHECK(nul.code == 0);
  CHECK(StatU(f.emu->Stats(), "uploads") == 4);
}

TEST_CASE("push names each file it cannot send and sends the others (exit 1)", "[push]") {
  SyncFixture f;
  f.MakePhotos(2);
  const fs::path outside = f.tmp.path() / "elsewhere.jpg";
  fs::copy_file(Photo(f, 1), outside);
  const fs::path not_image = f.photos / "d01" / "notes.jpg";
  std::ofstream(not_image) << "just text";
  auto r = f.Cli({"push", Photo(f, 1), outside.string(), not_image.string(), (f.photos / "gone.jpg").string()});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(r.err.find(outside.string() + ": not under any configured root") != std::string::npos);
  CHECK(r.err.find("notes.jpg: The photo must be an image") != std::string::npos);  // the server's 422
  CHECK(r.err.find("gone.jpg") != std::string::npos);
  CHECK(StatU(f.emu->Stats(), "uploads") == 1);
}

TEST_CASE("push with no files, or no config, is a usage error (exit 2)", "[push]") {
  SyncFixture f;
  CHECK(f.Cli({"push"}).code == 2);
  auto none = RunProgram({SHOTSYNC_CLI_PATH, "--config", (f.tmp.path() / "nope.toml").string(), "push", "x.jpg"},
                         f.Env(), (f.tmp.path() / "noconf").string());
  CHECK(none.code == 2);
}

TEST_CASE("push beside a running sync: no lock conflict, no duplicate, no lost edit", "[push][concurrency]") {
  // Slow answers keep the sync busy while the pushes run.
  SyncFixture f({"--shootbin-rpm", "1000000", "--latency-ms", "40", "--seed", "5"});
  f.MakePhotos(120);
  auto sync = f.StartCli({"sync", "--quiet", "-j", "2"});
  // The sync is sending: its first uploads are being answered slowly.
  f.emu->WaitForStats([](const nlohmann::json& s) { return s.value("in_flight", 0) > 0 || StatU(s, "uploads") > 0; });
  // Files the sync is about to send or is sending, some of them edited
  // first (the edit must win), pushed from two hooks at once.
  std::vector<std::string> first, second;
  for (int n = 1; n <= 120; n += 7) {
    if (n % 2 == 0) Edit(Photo(f, n), 100000 + std::uint64_t(n));
    (n % 3 == 0 ? first : second).push_back(Photo(f, n));
  }
  std::vector<std::string> a = {"push", "--quiet"}, b = {"push", "--quiet"};
  a.insert(a.end(), first.begin(), first.end());
  b.insert(b.end(), second.begin(), second.end());
  auto push_a = f.StartCli(a);
  auto push_b = f.StartCli(b);
  auto code_a = push_a->Wait(std::chrono::minutes(3));
  auto code_b = push_b->Wait(std::chrono::minutes(3));
  auto code_sync = sync->Wait(std::chrono::minutes(3));
  INFO(push_a->Stderr() << push_b->Stderr() << sync->Stderr());
  CHECK(code_a == 0);
  CHECK(code_b == 0);
  CHECK(code_sync == 0);  // not refused: push takes no run lock
  // Whatever raced, a final sync leaves disk and server identical.
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "duplicates") == 0);
  CHECK(StatU(stats, "uploads") == 120);
  CHECK(f.CompareWithServer() == "");
}

TEST_CASE("a push killed mid-upload is reconciled by the next run without a duplicate", "[push][crash]") {
  SyncFixture f({"--shootbin-rpm", "1000000", "--fault-reset-after-store", "0", "--latency-ms", "400"});
  f.MakePhotos(4);
  std::vector<std::string> args = {"push", "--quiet"};
  for (int n = 1; n <= 4; ++n) args.push_back(Photo(f, n));
  auto push = f.StartCli(args);
  // With 400 ms per answer, an upload is in flight (or stored, unanswered) once one is counted.
  f.emu->WaitForStats([](const nlohmann::json& s) { return s.value("in_flight", 0) > 0 || StatU(s, "uploads") > 0; });
  push->Kill(SIGKILL);
  REQUIRE(push->Wait(std::chrono::seconds(30)).has_value());
  f.emu->SetFaults({{"latency_ms", 0}});
  auto r = f.Cli({"sync"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  // Every request the killed push left behind has been answered (or stored late).
  auto stats = f.emu->WaitIdle();
  CHECK(StatU(stats, "duplicates") == 0);
  CHECK(StatU(stats, "uploads") == 4);
  CHECK(f.CompareWithServer() == "");
}

TEST_CASE("an upload the server stores after its client was killed is found by the next run, not sent twice",
          "[push][crash]") {
  // Shootbin has no idempotency key: a body that reached the server before
  // the kill may be stored a moment later. The next run must wait for it
  // (reconcile_delay) instead of trusting an album listing taken too early.
  SyncFixture f({"--shootbin-rpm", "1000000"});
  f.MakePhotos(2);
  f.WriteConfig("reconcile_delay = 4");
  std::filesystem::remove(Photo(f, 2));
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);  // ids of project and album now recorded
  f.MakePhotos(2);
  f.emu->SetFaults({{"latency_ms", 1500}});
  const char* kUpload = "POST /api/projects/{id}/albums/{id}/photos";
  auto uploads_seen = [&] {
    auto req = f.emu->Stats()["requests"];
    return req.contains(kUpload) ? req[kUpload].get<std::uint64_t>() : 0;
  };
  const auto before = uploads_seen();
  auto push = f.StartCli({"push", "--quiet", Photo(f, 2)});
  // The upload has reached the server, which holds it 1.5 s before storing it.
  REQUIRE(WaitFor([&] { return uploads_seen() != before; }));
  REQUIRE(uploads_seen() == before + 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  push->Kill(SIGKILL);
  REQUIRE(push->Wait(std::chrono::seconds(30)).has_value());
  f.emu->SetFaults({{"latency_ms", 0}});
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  // The held request is over (stored or dropped) before "no duplicate" is judged.
  auto stats = f.emu->WaitIdle();
  CHECK(StatU(stats, "duplicates") == 0);
  CHECK(StatU(stats, "uploads") == 2);
  CHECK(f.CompareWithServer() == "");
}
