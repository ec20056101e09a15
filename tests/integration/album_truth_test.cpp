// The server's album is the truth, the manifest its cache (issue 12;
// docs/resume.md): whatever the state folder holds, and however the server
// answers, no photo is uploaded twice and none is lost to our own checks.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "http.hpp"
#include "image_samples.hpp"
#include "jpeg_synth.hpp"
#include "sync_fixture.hpp"
#include "wait.hpp"

namespace fs = std::filesystem;
using shotsync::testing::StatU;
using shotsync::testing::SyncFixture;
using shotsync::testing::WaitFor;

namespace {

void WriteBytes(const fs::path& p, const std::vector<std::uint8_t>& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::vector<std::uint8_t> Jpeg(std::uint64_t seed) {
  return shotsync::testing::SynthJpeg({.width = 64, .height = 48, .seed = seed});
}

nlohmann::json Json(const shotsync::testing::RunResult& r) {
  INFO(r.out << r.err);
  return nlohmann::json::parse(r.out);
}

// Every stored photo of project 1 / album 1, as the emulator's admin listing gives them.
nlohmann::json StoredPhotos(const SyncFixture& f, int project = 1, int album = 1) {
  auto list = f.emu->Admin("GET", "photos?project=" + std::to_string(project) + "&album=" + std::to_string(album));
  return list.is_array() ? list : list.at("photos");
}

// Points the fixture's root at another project and album.
void Retarget(SyncFixture& f, const std::string& project, const std::string& album) {
  std::string cfg;
  {
    std::ifstream in(f.config);
    cfg.assign(std::istreambuf_iterator<char>(in), {});
  }
  cfg.replace(cfg.find("project = \"Demo\""), 16, "project = \"" + project + "\"");
  cfg.replace(cfg.find("album = \"Main\""), 14, "album = \"" + album + "\"");
  std::ofstream(f.config, std::ios::trunc) << cfg;
}

}  // namespace

TEST_CASE("a lost state folder costs no duplicate and no needless revision", "[album]") {
  SyncFixture f;
  f.MakePhotos(20);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  REQUIRE(StatU(f.emu->Stats(), "uploads") == 20);

  fs::remove_all(f.state);  // a new laptop, a reinstall, a wiped ~/.local/state
  auto again = f.Cli({"sync", "--json"});
  INFO(again.out << again.err);
  REQUIRE(again.code == 0);
  auto j = Json(again);
  CHECK(j.at("uploaded") == 0);
  CHECK(j.at("revised") == 0);
  CHECK(j.at("adopted") == 20);
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "uploads") == 20);
  CHECK(StatU(stats, "revisions") == 0);
  CHECK(StatU(stats, "duplicates") == 0);
  CHECK(f.CompareWithServer() == "");

  // The adopted files are synced: an edit is a revision of the adopted photo.
  WriteBytes(f.photos / "d01/IMG_0003.jpg", Jpeg(777));
  auto edit = f.Cli({"sync", "--json"});
  REQUIRE(edit.code == 0);
  CHECK(Json(edit).at("revised") == 1);
  CHECK(StatU(f.emu->Stats(), "uploads") == 20);
  CHECK(f.CompareWithServer() == "");
}

TEST_CASE("a no-op resync lists nothing, a new file costs one incremental listing", "[album]") {
  SyncFixture f;
  f.MakePhotos(5);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  auto lists = [&] {
    auto req = f.emu->Stats().at("requests");
    std::uint64_t n = 0;
    for (const auto& [route, count] : req.items()) {
      if (route.find("GET") != std::string::npos && route.find("/photos") != std::string::npos) n += count.get<std::uint64_t>();
    }
    return n;
  };
  const auto before = lists();
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  CHECK(lists() == before);  // stat-only
  f.MakePhotos(1, 6);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  CHECK(lists() == before + 1);
  CHECK(f.CompareWithServer() == "");
}

TEST_CASE("an album that already holds some of the photos gets only the missing ones", "[album]") {
  SyncFixture f;
  f.MakePhotos(10);
  // Uploaded earlier through the web UI: the same names, no sizes.
  nlohmann::json photos = nlohmann::json::array();
  for (int i = 1; i <= 4; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "d01/IMG_%04d.jpg", i);
    photos.push_back({{"original_filename", name}, {"size", fs::file_size(f.photos / name)}});
  }
  f.emu->Seed({{"projects", {{{"name", "Web"}, {"albums", {{{"name", "Preloaded"}, {"photos", photos}}}}}}}});
  Retarget(f, "Web", "Preloaded");
  auto plan = f.Cli({"plan", "--json"});
  INFO(plan.out << plan.err);
  REQUIRE(plan.code == 0);
  CHECK(Json(plan).at("adopted") == 4);
  CHECK(Json(plan).at("uploaded") == 6);
  CHECK(StatU(f.emu->Stats(), "uploads") == 0);

  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(Json(r).at("uploaded") == 6);
  CHECK(Json(r).at("adopted") == 4);
  CHECK(StatU(f.emu->Stats(), "duplicates") == 0);
}

TEST_CASE("a second profile feeding the same album uploads nothing twice", "[album]") {
  SyncFixture f;
  f.MakePhotos(12);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  // Another machine: its own state folder, the same photos (a synced share).
  const fs::path other_state = f.tmp.path() / "other-state";
  std::string cfg;
  {
    std::ifstream in(f.config);
    cfg.assign(std::istreambuf_iterator<char>(in), {});
  }
  cfg.replace(cfg.find(f.state.string()), f.state.string().size(), other_state.string());
  const fs::path other_config = f.tmp.path() / "other.toml";
  std::ofstream(other_config, std::ios::trunc) << cfg;
  f.MakePhotos(3, 13);  // and three new ones
  const fs::path first_config = f.config;
  f.config = other_config;
  auto r = f.Cli({"sync", "--json"});
  f.config = first_config;
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(Json(r).at("uploaded") == 3);
  CHECK(Json(r).at("adopted") == 12);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);  // the first machine adopts the three
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "uploads") == 15);
  CHECK(StatU(stats, "duplicates") == 0);
  CHECK(f.CompareWithServer() == "");
}

TEST_CASE("a renamed or moved photo is not uploaded again and keeps its remote photo", "[album]") {
  SyncFixture f;
  f.MakePhotos(3);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  fs::create_directories(f.photos / "selects");
  fs::rename(f.photos / "d01/IMG_0002.jpg", f.photos / "selects/IMG_0002-final.jpg");
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(Json(r).at("uploaded") == 0);
  CHECK(Json(r).at("moved") == 1);
  CHECK(StatU(f.emu->Stats(), "uploads") == 3);
  // Edited at its new path: a revision of the same photo, not a new one.
  WriteBytes(f.photos / "selects/IMG_0002-final.jpg", Jpeg(4242));
  auto edit = f.Cli({"sync", "--json"});
  REQUIRE(edit.code == 0);
  CHECK(Json(edit).at("revised") == 1);
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "uploads") == 3);
  CHECK(StatU(stats, "revisions") == 1);
}

TEST_CASE("a size that differs from the album's photo of that name is a conflict, reported and not sent",
          "[album]") {
  SyncFixture f;
  f.MakePhotos(2);
  f.emu->Seed({{"projects",
                {{{"name", "Sized"},
                  {"albums", {{{"name", "A"}, {"photos", {{{"original_filename", "d01/IMG_0001.jpg"}, {"size", 3}}}}}}}}}}});
  Retarget(f, "Sized", "A");
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  auto j = Json(r);
  CHECK(j.at("uploaded") == 1);
  CHECK(j.at("conflicts") == 1);
  CHECK(r.err.find("IMG_0001.jpg") != std::string::npos);
  CHECK(StatU(f.emu->Stats(), "uploads") == 1);
}

TEST_CASE("gateway HTML 502s after storing, on 20% of uploads: every photo once, never a token error", "[album][faults]") {
  SyncFixture f;
  f.WriteConfig("reconcile_delay = 1");
  f.MakePhotos(40);
  f.emu->SetFaults({{"rate_gateway", 0.2}, {"gateway_status", 502}, {"gateway_stores", true}});
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.err.find("token") == std::string::npos);
  f.emu->SetFaults({{"rate_gateway", 0.0}});
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "duplicates") == 0);
  CHECK(f.CompareWithServer() == "");
}

TEST_CASE("gateway HTML 504s that did not store: the photos are sent again, once", "[album][faults]") {
  SyncFixture f;
  f.WriteConfig("reconcile_delay = 1");
  f.MakePhotos(20);
  f.emu->SetFaults({{"rate_gateway", 0.25}, {"gateway_status", 504}, {"gateway_stores", false}});
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  f.emu->SetFaults({{"rate_gateway", 0.0}});
  CHECK(StatU(f.emu->Stats(), "duplicates") == 0);
  CHECK(f.CompareWithServer() == "");
}

TEST_CASE("2xx answers cut off after their headers are reconciled, never resent", "[album][faults]") {
  SyncFixture f;
  f.WriteConfig("reconcile_delay = 1");
  f.MakePhotos(20);
  f.emu->SetFaults({{"rate_cut_2xx", 0.3}});
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  f.emu->SetFaults({{"rate_cut_2xx", 0.0}});
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "duplicates") == 0);
  CHECK(StatU(stats, "uploads") == 20);
  CHECK(f.CompareWithServer() == "");
}

TEST_CASE("an upload stored 20 s after its connection was reset is found, not sent twice", "[album][faults][slow]") {
  SyncFixture f;
  f.WriteConfig("reconcile_delay = 25");
  f.MakePhotos(3);
  f.emu->SetFaults({{"rate_late_store", 1.0}, {"late_store_ms", 20000}});
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  f.emu->SetFaults({{"rate_late_store", 0.0}});
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "duplicates") == 0);
  CHECK(StatU(stats, "uploads") == 3);
}

TEST_CASE("a server that keeps only base names: killed runs and a lost state folder cost no duplicate",
          "[album][crash]") {
  SyncFixture f;
  f.WriteConfig("reconcile_delay = 2");
  f.emu->SetFaults({{"filename_mode", "basename"}, {"latency_ms", 30}});
  f.MakePhotos(30);
  for (int trial = 0; trial < 3; ++trial) {
    auto run = f.StartCli({"sync", "--quiet", "-j", "4"});
    // Kill it once some photos are stored, whatever it is doing then.
    const auto target = std::uint64_t(5 + trial * 8);
    REQUIRE(WaitFor([&] { return StatU(f.emu->Stats(), "uploads") >= target || run->Wait(std::chrono::milliseconds(0)); }));
    run->Kill(SIGKILL);
    run->Wait();
  }
  fs::remove_all(f.state / "manifest.db-wal");  // what a crash may leave: a partial log
  int code = -1;
  for (int i = 0; i < 3 && code != 0; ++i) code = f.Cli({"sync", "--quiet"}).code;
  CHECK(code == 0);
  fs::remove_all(f.state);
  CHECK(f.Cli({"sync", "--quiet"}).code == 0);
  f.emu->SetFaults({{"latency_ms", 0}});
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "duplicates") == 0);
  CHECK(StatU(stats, "uploads") == 30);
  CHECK(StoredPhotos(f).size() == 30);
}

TEST_CASE("two files that a base-name server cannot tell apart are reported, not both sent", "[album]") {
  SyncFixture f;
  f.emu->SetFaults({{"filename_mode", "basename"}});
  WriteBytes(f.photos / "day1/IMG_0001.jpg", Jpeg(1));
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);  // learns how this server stores names
  WriteBytes(f.photos / "day2/IMG_0001.jpg", Jpeg(2));
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(Json(r).at("conflicts") == 1);
  CHECK(r.err.find("day2/IMG_0001.jpg") != std::string::npos);
  CHECK(StatU(f.emu->Stats(), "uploads") == 1);
}

TEST_CASE("motion-photo JPEGs, PNG, WebP, TIFF and HEIC are uploaded, the server decides the format",
          "[album]") {
  SyncFixture f;
  auto motion = Jpeg(9);
  const char mp4[] = "\0\0\0\x18" "ftypmp42\0\0\0\0mp42isom";
  motion.insert(motion.end(), mp4, mp4 + sizeof mp4);
  for (int i = 0; i < 3000; ++i) motion.push_back(std::uint8_t(i * 31));
  WriteBytes(f.photos / "PXL_20261201_MP.jpg", motion);
  auto bytes = [](const std::string& s) { return std::vector<std::uint8_t>(s.begin(), s.end()); };
  WriteBytes(f.photos / "a.png", bytes(shotsync::testing::Png1x1()));
  WriteBytes(f.photos / "b.webp", bytes(shotsync::testing::Webp1x1()));
  WriteBytes(f.photos / "c.tif", bytes(shotsync::testing::Tiff1x1()));
  WriteBytes(f.photos / "d.heic", bytes(shotsync::testing::Bmff("heic", {"mif1", "heic"})));
  WriteBytes(f.photos / "notes.jpg", {'h', 'i', '\n'});  // named as an image: the server's 422 decides, once
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  auto j = Json(r);
  CHECK(j.at("uploaded") == 5);
  CHECK(j.at("rejected") == 1);
  CHECK(r.err.find("notes.jpg") != std::string::npos);
  // A refusal stands until the file changes or --retry-rejected.
  auto again = f.Cli({"sync", "--json"});
  CHECK(Json(again).at("uploaded") == 0);
  CHECK(again.err.find("notes.jpg: The photo") == std::string::npos);  // not sent again
  auto retried = f.Cli({"sync", "--retry-rejected", "--json"});
  INFO(retried.out << retried.err);
  CHECK(Json(retried).at("rejected") == 1);
  CHECK(retried.err.find("notes.jpg: The photo must be an image") != std::string::npos);  // asked again
}

TEST_CASE("a locked project beside a normal one: the normal one completes, the locked one costs two requests",
          "[album]") {
  SyncFixture f;
  f.MakePhotos(10);
  auto seeded = f.emu->Seed({{"projects",
                              {{{"name", "Review"},
                                {"locked", true},
                                {"locked_message", "This project is out for client review."},
                                {"albums", {"Proofs"}}}}}});
  INFO(seeded.dump());
  const fs::path locked = f.tmp.path() / "locked";
  for (int i = 0; i < 8; ++i) WriteBytes(locked / ("L" + std::to_string(i) + ".jpg"), Jpeg(900 + i));
  {
    std::ofstream out(f.config, std::ios::app);
    out << "[[roots]]\npath = \"" << locked.string() << "\"\nproject = \"Review\"\nalbum = \"Proofs\"\n";
  }
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);  // not 3: the token is fine
  auto j = Json(r);
  CHECK(j.at("uploaded") == 10);
  CHECK(r.err.find("out for client review") != std::string::npos);
  CHECK(r.err.find("token") == std::string::npos);
  auto stats = f.emu->Stats();
  const auto& by_album = stats.at("uploads_attempted_by_album");
  std::uint64_t locked_attempts = 0;
  for (const auto& [album, n] : by_album.items()) {
    if (album != "1") locked_attempts += n.get<std::uint64_t>();
  }
  CHECK(locked_attempts <= 2);
  CHECK(f.CompareWithServer() == "");
}

TEST_CASE("a revision of a photo the client approved is held unless --allow-unapprove", "[album]") {
  SyncFixture f;
  f.MakePhotos(2);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  auto photos = StoredPhotos(f);
  std::int64_t id = 0;
  for (const auto& p : photos) {
    if (p.at("original_filename") == "d01/IMG_0001.jpg") id = p.at("id").get<std::int64_t>();
  }
  REQUIRE(id != 0);
  // The client approves it on the proofing site (the contract's approval toggle).
  auto approve = shotsync::testing::http::SendJson(
      "PATCH", f.emu->url("/api/projects/1/albums/1/photos/" + std::to_string(id) + "/approval"),
      {{"approved", true}}, {{"Authorization", "Bearer sb-test-token"}, {"Accept", "application/json"}});
  REQUIRE(approve.status == 200);
  WriteBytes(f.photos / "d01/IMG_0001.jpg", Jpeg(31337));
  auto held = f.Cli({"sync", "--json"});
  INFO(held.out << held.err);
  CHECK(held.code == 1);
  CHECK(Json(held).at("held") == 1);
  CHECK(held.err.find("approved") != std::string::npos);
  CHECK(StatU(f.emu->Stats(), "revisions") == 0);
  auto sent = f.Cli({"sync", "--allow-unapprove", "--json"});
  INFO(sent.out << sent.err);
  CHECK(sent.code == 0);
  CHECK(Json(sent).at("revised") == 1);
  CHECK(StatU(f.emu->Stats(), "revisions") == 1);
}

TEST_CASE("verify --remote --repair adopts what the album holds under a file's name", "[album]") {
  SyncFixture f;
  f.MakePhotos(6);
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  fs::remove_all(f.state);
  REQUIRE(f.Cli({"plan", "--quiet"}).code == 0);  // the files are known again, not bound
  auto v = f.Cli({"verify", "--remote", "--repair"});
  INFO(v.out << v.err);
  CHECK(v.out.find("adopted") != std::string::npos);
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(Json(r).at("uploaded") == 0);
  CHECK(Json(r).at("adopted") == 0);  // already bound by verify
  CHECK(Json(r).at("revised") == 0);   // bound with the files' hashes (the plan may not have read them)
  CHECK(StatU(f.emu->Stats(), "uploads") == 6);
  CHECK(StatU(f.emu->Stats(), "revisions") == 0);
}

TEST_CASE("a server that cuts long names: the photos are found by prefix after a lost state folder", "[album]") {
  SyncFixture f;
  f.emu->SetFaults({{"filename_mode", "truncate:20"}});
  for (int i = 1; i <= 5; ++i) {
    WriteBytes(f.photos / ("IMG_000" + std::to_string(i) + "_with_a_long_name_the_server_cuts.jpg"), Jpeg(50 + i));
  }
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  fs::remove_all(f.state);
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(Json(r).at("adopted") == 5);
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "uploads") == 5);
  CHECK(StatU(stats, "duplicates") == 0);
}

TEST_CASE("a revision answered 409 (another still processing) is re-read, then sent again once", "[album]") {
  SyncFixture f;
  f.MakePhotos(1);
  f.emu->Config({{"revision_processing_ms", 2500}});
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);
  WriteBytes(f.photos / "d01/IMG_0001.jpg", Jpeg(6001));
  REQUIRE(f.Cli({"sync", "--quiet"}).code == 0);  // revision 1: processing for 2.5 s
  WriteBytes(f.photos / "d01/IMG_0001.jpg", Jpeg(6002));
  auto r = f.Cli({"sync", "--json"});             // revision 2: 409 first
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(Json(r).at("revised") == 1);
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "revisions") == 2);
  CHECK(stats.at("status_counts").value("409", 0) >= 1);
  CHECK(f.CompareWithServer() == "");
}
