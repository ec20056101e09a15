// SyncFixture: a temp profile (photos, state dir, config) wired to a running
// emulator, with helpers to run the shotsync CLI and to compare what the
// emulator stored with the files on disk.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "child_process.hpp"
#include "emulator_process.hpp"
#include "temp_dir.hpp"

namespace shotsync::testing {

std::string Sha256File(const std::filesystem::path& path);

// A counter from the emulator's /_emulator/stats (0 when absent).
inline std::uint64_t StatU(const nlohmann::json& stats, const char* key) {
  return stats.contains(key) ? stats.at(key).get<std::uint64_t>() : 0;
}

class SyncFixture {
 public:
  explicit SyncFixture(std::vector<std::string> emulator_args = {"--shootbin-rpm", "1000000"});

  TempDir tmp;
  std::unique_ptr<EmulatorProcess> emu;
  std::filesystem::path photos, state, config;

  // Writes `count` small JPEGs (photos/dNN/IMG_NNNN.jpg), seeds from `first_seed`.
  void MakePhotos(int count, int first_seed = 1, int per_dir = 50, int width = 64);
  // (Re)writes the config; extra TOML is appended at the top level.
  void WriteConfig(const std::string& extra_top = "", int rpm = 1000000);
  // Runs `shotsync --config <config> args...` to the end.
  RunResult Cli(std::vector<std::string> args, std::map<std::string, std::string> env = {});
  std::unique_ptr<ChildProcess> StartCli(std::vector<std::string> args);
  // Waits (generously) until `run` holds the run lock: the lock file names its pid.
  bool WaitForLock(const ChildProcess& run) const;
  // Stored photos of project 1 / album 1, by original_filename.
  std::map<std::string, nlohmann::json> RemotePhotos() const;
  // Every local photo is on the server exactly once with the same bytes.
  // Returns "" or a description of the first difference.
  std::string CompareWithServer() const;
  std::map<std::string, std::string> Env() const;

 private:
  int runs_ = 0;
};

}  // namespace shotsync::testing
