// Studio mode under load: N hosts (separate shotsync processes, state
// folders and photos) syncing into one album on one account at a fixed rpm,
// coordinated through a private PostgreSQL. For each N it prints the rate
// the hosts achieved together ÷ the allowed rate (goal >= 0.95), the worst
// sliding 60 s window ÷ the allowed rpm (must be <= 1), the 429s (0), and how
// evenly the hosts finished (no host starves). Then the cost of one claim in
// the shared store beside the local SQLite claim.
//
//   bench-studio --cli build/release/cli/shotsync [--rpm 120] [--seconds 70] [--hosts 1,2,4]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <map>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "child_process.hpp"
#include "emulator_process.hpp"
#include "jpeg_synth.hpp"
#include "pg_server.hpp"
#include "shotsync/manifest.hpp"
#include "shotsync/shared_store.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace shotsync;
using namespace shotsync::testing;

namespace {

struct Args {
  std::string cli;
  int rpm = 120;
  int seconds = 70;
  std::vector<int> hosts = {1, 2, 4};
};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--cli") a.cli = v;
    if (k == "--rpm") a.rpm = std::stoi(v);
    if (k == "--seconds") a.seconds = std::stoi(v);
    if (k == "--hosts") {
      a.hosts.clear();
      std::stringstream ss(v);
      for (std::string n; std::getline(ss, n, ',');) a.hosts.push_back(std::stoi(n));
    }
  }
  if (a.cli.empty()) {
    std::fprintf(stderr, "usage: bench-studio --cli PATH [--rpm N] [--seconds S] [--hosts 1,2,4]\n");
    std::exit(2);
  }
  return a;
}

void WritePhotos(const fs::path& dir, int count, int seed) {
  fs::create_directories(dir);
  for (int i = 0; i < count; ++i) {
    auto bytes = SynthJpeg({.width = 64, .height = 48, .seed = std::uint64_t(seed + i) * 7919});
    std::ofstream(dir / ("IMG_" + std::to_string(seed + i) + ".jpg"), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// One round: n hosts, each with its own photos (so that every host has
// work), started together.
void Round(const Args& a, PgServer& pg, EmulatorProcess& emu, const fs::path& root, int n) {
  emu.Reset();
  pg.Query("TRUNCATE owners, photos, album_index, album_photos, buckets, downloads, runs");  // a new server each round
  const int total = a.rpm * a.seconds / 60;
  std::vector<std::unique_ptr<ChildProcess>> runs;
  std::vector<Clock::time_point> ended(static_cast<std::size_t>(n));
  const fs::path dir = root / ("round" + std::to_string(n));
  for (int h = 0; h < n; ++h) {
    const fs::path host = dir / ("host" + std::to_string(h));
    // Names differ per host (h<h>/...): each host sends its own photos.
    WritePhotos(host / "photos" / ("h" + std::to_string(h)), total / n, 100000 * (h + 1));
    std::ofstream(host / "config.toml")
        << "state_dir = \"" << (host / "state").string() << "\"\n"
        << "[shared]\nurl = \"" << pg.url() << "\"\nhost = \"host" << h << "\"\n"
        << "[shootbin]\nbase_url = \"" << emu.base_url() << "\"\nrpm = " << a.rpm << "\n"
        << "[[roots]]\npath = \"" << (host / "photos").string() << "\"\nproject = \"Demo\"\nalbum = \"Main\"\n";
  }
  const auto t0 = Clock::now();
  for (int h = 0; h < n; ++h) {
    const fs::path host = dir / ("host" + std::to_string(h));
    runs.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{a.cli, "--config", (host / "config.toml").string(), "sync", "--quiet"},
        std::map<std::string, std::string>{{"SHOOTBIN_API_TOKEN", "sb-test-token"}}, (host / "run").string()));
  }
  int failed = 0;
  for (int h = 0; h < n; ++h) {
    if (runs[std::size_t(h)]->Wait(std::chrono::minutes(30)) != 0) ++failed;
    ended[std::size_t(h)] = Clock::now();
  }
  const auto stats = emu.Stats();
  const auto& span = stats.at("request_spans").at("sb-test-token");
  const double achieved = (span.at("requests").get<double>() - 1) / span.at("seconds").get<double>() * 60 / a.rpm;
  const double worst = stats.at("max_requests_per_minute").at("sb-test-token").get<double>() / a.rpm;
  double first = 1e9, last = 0;
  for (auto t : ended) {
    first = std::min(first, Ms(t - t0) / 1000);
    last = std::max(last, Ms(t - t0) / 1000);
  }
  std::printf("%5d  %9.3f  %12.3f  %5llu  %8llu  %9.1f  %9.1f%s\n", n, achieved, worst,
              (unsigned long long)stats.at("rate_limited").get<std::uint64_t>(),
              (unsigned long long)stats.at("uploads").get<std::uint64_t>(), first, last,
              failed ? "  (a host failed)" : "");
  std::fflush(stdout);
}

// The cost of a claim: the local SQLite job claim (a durable transaction)
// beside the shared one (one PostgreSQL transaction on loopback).
void ClaimCost(PgServer& pg, const fs::path& root) {
  constexpr int kClaims = 300;
  auto m = Manifest::Open((root / "claims.db").string());
  if (!m.ok()) return;
  (void)(*m)->UpsertRoot({0, "/r", "p", "a"});
  std::vector<std::int64_t> ids;
  for (int i = 0; i < kClaims; ++i) {
    FileRecord f{.root_id = 1, .rel_path = "f" + std::to_string(i), .size = 1, .hash = "h" + std::to_string(i)};
    (void)(*m)->PutFile(f);
    ids.push_back(f.id);
  }
  JobOwner owner{"bench", {}};
  auto t = Clock::now();
  for (std::int64_t id : ids) (void)(*m)->BeginJob(id, "x" + std::to_string(id), 1, owner);
  const double local = Ms(Clock::now() - t) / kClaims;

  auto store = SharedStore::Open(SharedOptions{.url = pg.url(), .host = "bench"});
  if (!store.ok()) return;
  (void)(*store)->RegisterOwner("bench", 1, "bench");
  t = Clock::now();
  for (int i = 0; i < kClaims; ++i) {
    const SharedClaimRequest q{.album_id = 1, .name = "c" + std::to_string(i), .hash = "h", .size = 1};
    (void)(*store)->Claim(std::span<const SharedClaimRequest>(&q, 1), "bench");
  }
  const double shared = Ms(Clock::now() - t) / kClaims;
  std::printf("\nOne claim (its own transaction, %d in a row):\n", kClaims);
  std::printf("  local SQLite manifest (durable, WAL)     %7.3f ms\n", local);
  std::printf("  shared PostgreSQL on loopback            %7.3f ms   (%.1fx)\n", shared, shared / local);
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = Parse(argc, argv);
  TempDir tmp;
  PgServer pg;
  {
    auto s = SharedStore::Open(SharedOptions{.url = pg.url()}, false);
    if (!s.ok() || !(*s)->Init().ok()) {
      std::fprintf(stderr, "bench-studio: cannot create the shared schema\n");
      return 1;
    }
  }
  EmulatorProcess emu({"--shootbin-rpm", std::to_string(a.rpm)});
  std::printf("Studio: N hosts, one account at %d rpm, ~%d s of work per round (%u cores)\n", a.rpm, a.seconds,
              std::thread::hardware_concurrency());
  std::printf("%5s  %9s  %12s  %5s  %8s  %9s  %9s\n", "hosts", "achieved", "worst 60s", "429s", "uploads",
              "first end", "last end");
  std::printf("%5s  %9s  %12s  %5s  %8s  %9s  %9s\n", "", "/allowed", "/allowed", "", "", "s", "s");
  for (int n : a.hosts) Round(a, pg, emu, tmp.path(), n);
  ClaimCost(pg, tmp.path());
  return 0;
}
