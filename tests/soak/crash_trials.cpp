// shotsync-crash-trials: kill -9 a sync (and a pull beside it) at random
// moments, N times, resume until done, then check the emulator against the
// disk. Prints one line:
//   trials=N kills=K lost=L duplicates=D resent_bytes=R pull_missing=M pull_corrupt=C
// and exits 0 only when lost, duplicates, pull_missing and pull_corrupt are 0.
//
//   shotsync-crash-trials [--trials 100] [--photos 300] [--seed 1] [--no-pull]
// tests/soak/crash-trials builds and runs it; CI runs a short version (ctest).
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>

#include "sync_fixture.hpp"

namespace fs = std::filesystem;
using shotsync::testing::Sha256File;
using shotsync::testing::StatU;
using shotsync::testing::SyncFixture;

namespace {

struct Options {
  int trials = 100;
  int photos = 300;
  unsigned seed = 1;
  bool pull = true;
};

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--trials" && (v = value())) o.trials = std::atoi(v);
    else if (a == "--photos" && (v = value())) o.photos = std::atoi(v);
    else if (a == "--seed" && (v = value())) o.seed = unsigned(std::atoi(v));
    else if (a == "--no-pull") o.pull = false;
    else return false;
  }
  return o.trials > 0 && o.photos > 0;
}

// Runs `args` until it exits 0 (at most `tries` times); returns the last code.
int RunUntilDone(SyncFixture& f, const std::vector<std::string>& args, int tries) {
  int code = -1;
  for (int i = 0; i < tries && code != 0; ++i) code = f.Cli(args).code;
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, o)) {
    std::fprintf(stderr, "usage: shotsync-crash-trials [--trials N] [--photos N] [--seed N] [--no-pull]\n");
    return 2;
  }
  // Some latency keeps bodies in flight and commits racing the kill.
  SyncFixture f({"--shootbin-rpm", "1000000", "--headshotpro-rpm", "1000000", "--latency-ms", "15",
                 "--seed", std::to_string(o.seed)});
  if (o.pull) f.emu->Seed({{"members", 2}, {"models_per_member", 2}, {"photos_per_model", 60}});
  std::mt19937 rng(o.seed);
  // Photos arrive over the trials (an export session), each trial adding some.
  const int per_trial = std::max(1, o.photos / o.trials);
  int made = 0, kills = 0;
  int max_delay_ms = 400;
  // A run that finished before its kill does not count as a trial.
  for (int attempt = 0; kills < o.trials && attempt < o.trials * 5; ++attempt) {
    const int add = kills + 1 == o.trials ? o.photos - made : std::min(per_trial, o.photos - made);
    if (add > 0) {
      f.MakePhotos(add, made + 1, 50, 800);  // ~150 KB each: bodies take a while
      made += add;
    }
    auto sync = f.StartCli({"sync", "--quiet"});
    std::unique_ptr<shotsync::testing::ChildProcess> pull;
    if (o.pull) pull = f.StartCli({"pull", "--quiet"});
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(1, max_delay_ms)(rng)));
    sync->Kill(SIGKILL);
    if (pull) pull->Kill(SIGKILL);
    auto code = sync->Wait(std::chrono::seconds(60));
    if (pull) (void)pull->Wait(std::chrono::seconds(60));
    if (code && *code == 128 + SIGKILL) {
      ++kills;
    } else {
      // It finished first: aim earlier, so that the kills land inside runs.
      max_delay_ms = std::max(20, max_delay_ms * 3 / 4);
    }
  }
  const int sync_code = RunUntilDone(f, {"sync", "--quiet"}, 5);
  const int pull_code = o.pull ? RunUntilDone(f, {"pull", "--quiet"}, 5) : 0;

  // Lost: on disk, not (or not byte-identical) on the server.
  std::int64_t lost = 0;
  std::map<std::string, nlohmann::json> remote;
  std::string compare_error;
  try {
    remote = f.RemotePhotos();
  } catch (const std::exception& e) {
    compare_error = e.what();  // a duplicate name on the server
  }
  std::uint64_t disk_bytes = 0;
  for (auto it = fs::recursive_directory_iterator(f.photos); it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_regular_file()) continue;
    disk_bytes += it->file_size();
    auto r = remote.find(fs::relative(it->path(), f.photos).string());
    if (r == remote.end() || r->second.at("sha256").get<std::string>() != Sha256File(it->path())) ++lost;
  }
  const auto stats = f.emu->Stats();
  const std::uint64_t duplicates = StatU(stats, "duplicates");
  const std::uint64_t received = StatU(stats, "bytes_received");
  // Multipart framing is counted as resent too (a few hundred bytes per request).
  const std::int64_t resent = std::int64_t(received) - std::int64_t(disk_bytes);

  std::int64_t pull_missing = 0, pull_corrupt = 0;
  if (o.pull) {
    const fs::path dest = f.tmp.path() / "headshots";
    std::map<std::string, fs::path> files;
    if (fs::exists(dest)) {
      for (auto it = fs::recursive_directory_iterator(dest); it != fs::recursive_directory_iterator(); ++it) {
        if (it->is_regular_file() && it->path().extension() != ".part") files[it->path().stem().string()] = it->path();
      }
    }
    const std::int64_t expected = 2 * 2 * 60;
    pull_missing = expected - std::int64_t(files.size());
    for (const auto& [id, path] : files) {
      auto info = f.emu->Admin("GET", "headshotpro/photos/" + id);
      if (info.at("sha256").get<std::string>() != Sha256File(path)) ++pull_corrupt;
    }
  }
  std::printf("trials=%d kills=%d lost=%lld duplicates=%llu resent_bytes=%lld pull_missing=%lld pull_corrupt=%lld\n",
              o.trials, kills, (long long)lost, (unsigned long long)duplicates, (long long)resent,
              (long long)pull_missing, (long long)pull_corrupt);
  if (!compare_error.empty()) std::printf("server: %s\n", compare_error.c_str());
  if (sync_code != 0 || pull_code != 0) std::printf("final runs: sync exit %d, pull exit %d\n", sync_code, pull_code);
  const bool ok = lost == 0 && duplicates == 0 && pull_missing == 0 && pull_corrupt == 0 &&
                  compare_error.empty() && sync_code == 0 && pull_code == 0;
  return ok ? 0 : 1;
}
