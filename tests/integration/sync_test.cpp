// shotsync sync against the emulator over loopback: exactly once, whatever
// fails or is killed.
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "jpeg_synth.hpp"
#include "shotsync/config.hpp"
#include "shotsync/manifest.hpp"
#include "shotsync/sync.hpp"
#include "sync_fixture.hpp"

namespace fs = std::filesystem;
using shotsync::testing::StatU;
using shotsync::testing::SyncFixture;

namespace {

std::uint64_t TotalRequests(const nlohmann::json& stats) {
  std::uint64_t n = 0;
  for (const auto& [route, count] : stats.at("requests").items()) {
    if (route.find("/_emulator") == std::string::npos) n += count.get<std::uint64_t>();
  }
  return n;
}

// Runs sync until it exits 0 (at most `tries` times); returns the last code.
int SyncUntilDone(SyncFixture& f, int tries, std::string* log = nullptr) {
  int code = -1;
  for (int i = 0; i < tries && code != 0; ++i) {
    auto r = f.Cli({"sync"});
    code = r.code;
    if (log) *log += "exit " + std::to_string(r.code) + ": " + r.out + r.err + "\n";
  }
  return code;
}

}  // namespace

TEST_CASE("1,000 photos are uploaded once, 50 edits give exactly 50 revisions, a no-op resync sends nothing",
          "[sync]") {
  SyncFixture f;
  f.MakePhotos(1000);
  auto first = f.Cli({"sync", "--json"});
  INFO(first.out << first.err);
  REQUIRE(first.code == 0);
  auto summary = nlohmann::json::parse(first.out);
  CHECK(summary.at("uploaded") == 1000);
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "uploads") == 1000);
  CHECK(StatU(stats, "duplicates") == 0);
  CHECK(f.CompareWithServer() == "");

  // Edit 50 photos (new content, same names).
  for (int i = 1; i <= 50; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "d%02d/IMG_%04d.jpg", (i * 20 - 1) / 50 + 1, i * 20);
    auto bytes = shotsync::testing::SynthJpeg({.width = 80, .height = 60, .seed = 500000u + i});
    std::ofstream(f.photos / name, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
  auto second = f.Cli({"sync", "--json"});
  INFO(second.out << second.err);
  REQUIRE(second.code == 0);
  CHECK(nlohmann::json::parse(second.out).at("revised") == 50);
  stats = f.emu->Stats();
  CHECK(StatU(stats, "revisions") == 50);
  CHECK(StatU(stats, "uploads") == 1000);
  CHECK(f.CompareWithServer() == "");

  const auto before = TotalRequests(f.emu->Stats());
  auto third = f.Cli({"sync", "--json"});
  REQUIRE(third.code == 0);
  auto s3 = nlohmann::json::parse(third.out);
  CHECK(s3.at("uploaded") == 0);
  CHECK(s3.at("revised") == 0);
  CHECK(s3.at("hashed") == 0);
  // The ids are pinned and nothing is to be sent: no request at all.
  CHECK(TotalRequests(f.emu->Stats()) - before == 0);
}

TEST_CASE("under 5xx, resets, 429 bursts and latency every photo arrives exactly once", "[sync][faults]") {
  SyncFixture f({"--shootbin-rpm", "1000000", "--fault-5xx", "0.2", "--fault-reset", "0.1",
                 "--fault-reset-after-store", "0.05", "--fault-429-burst", "5", "--latency-ms", "300",
                 "--seed", "7"});
  f.MakePhotos(120);
  std::string log;
  const int code = SyncUntilDone(f, 8, &log);
  INFO(log);
  CHECK(code == 0);
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "duplicates") == 0);
  CHECK(StatU(stats, "uploads") == 120);
  CHECK(f.CompareWithServer() == "");
}

TEST_CASE("kill -9 at random moments, then resume: nothing lost, nothing duplicated", "[sync][crash]") {
  SyncFixture f({"--shootbin-rpm", "1000000", "--latency-ms", "25", "--seed", "3"});
  std::mt19937 rng(12345);
  int next_seed = 1;
  int kills = 0;
  // Each trial adds fresh work and kills the sync at a random moment within
  // max_delay. A run that finished before the kill does not count, and
  // shortens max_delay, so the trials land inside runs however fast the
  // machine is.
  int max_delay_ms = 400;
  for (int attempt = 0; kills < 20 && attempt < 100; ++attempt) {
    f.MakePhotos(15, next_seed);
    next_seed += 15;
    auto child = f.StartCli({"sync", "--quiet"});
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(5, max_delay_ms)(rng)));
    child->Kill(SIGKILL);
    auto code = child->Wait(std::chrono::seconds(30));
    REQUIRE(code.has_value());
    if (*code == 128 + SIGKILL) {
      ++kills;
    } else {
      max_delay_ms = std::max(20, max_delay_ms * 3 / 4);
    }
  }
  std::string log;
  const int code = SyncUntilDone(f, 3, &log);
  INFO(log << " kills=" << kills);
  CHECK(code == 0);
  CHECK(kills == 20);
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "duplicates") == 0);
  CHECK(StatU(stats, "uploads") == std::uint64_t(next_seed - 1));
  CHECK(f.CompareWithServer() == "");
}

TEST_CASE("a bad token stops the run with exit code 3 and names where the token came from", "[sync]") {
  SyncFixture f;
  f.MakePhotos(3);
  auto r = f.Cli({"sync"}, {{"SHOOTBIN_API_TOKEN", "not-a-real-token"}});
  CHECK(r.code == 3);
  CHECK(r.err.find("SHOOTBIN_API_TOKEN") != std::string::npos);
  CHECK(r.err.find("not-a-real-token") == std::string::npos);
  CHECK(StatU(f.emu->Stats(), "uploads") == 0);
}

TEST_CASE("rejected files are reported with their reason and the rest are uploaded (exit 1)", "[sync]") {
  SyncFixture f;
  f.MakePhotos(4);
  std::ofstream(f.photos / "notes.jpg") << "this is not a photo\n";
  auto r = f.Cli({"sync"});
  CHECK(r.code == 1);
  CHECK(r.out.find("4 uploaded") != std::string::npos);
  CHECK(StatU(f.emu->Stats(), "uploads") == 4);
}

TEST_CASE("the configured rate is kept: no 429, and two processes sharing a profile stay within it together",
          "[sync][throttle]") {
  SyncFixture f({"--shootbin-rpm", "120"});
  // Process A (the CLI) syncs root 1; process B (this test, through the
  // engine) syncs a second root of the same profile at the same time.
  f.MakePhotos(20);
  f.WriteConfig("", 120);
  const fs::path other = f.tmp.path() / "other";
  fs::create_directories(other / "x");
  for (int i = 0; i < 20; ++i) {
    auto bytes = shotsync::testing::SynthJpeg({.width = 64, .height = 48, .seed = 90000u + i});
    std::ofstream(other / "x" / ("o" + std::to_string(i) + ".jpg"), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
  fs::create_directories(f.state);
  auto child = f.StartCli({"sync", "--quiet"});
  auto config = shotsync::LoadConfig(f.config.string(), shotsync::ProcessEnv());
  REQUIRE(config.ok());
  config->roots[0].path = other.string();
  config->shootbin.token = "sb-test-token";
  config->shootbin.token_source = "test";
  auto manifest = shotsync::Manifest::Open(config->ManifestPath());
  INFO(manifest.status().message());
  REQUIRE(manifest.ok());
  auto report = shotsync::RunSync(*config, **manifest, {}, {});
  CHECK(report.status.ok());
  CHECK(report.uploaded == 20);
  CHECK(child->Wait(std::chrono::minutes(3)) == 0);
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "uploads") == 40);
  CHECK(StatU(stats, "rate_limited") == 0);
  CHECK(stats.at("status_counts").value("429", 0) == 0);
  for (const auto& [token, max] : stats.at("max_requests_per_minute").items()) {
    CHECK(max.get<std::uint64_t>() <= 120);
  }
}
