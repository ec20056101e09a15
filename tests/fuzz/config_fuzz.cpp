// Fuzzes ParseConfig (include/shotsync/config.hpp): any text must give a
// Config or an error value, never a crash or an exception.
//
// The environment is fixed and has every secret set, so a token_file /
// key_file / webhook_secret_file in the input is never read (the target
// stays hermetic).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "shotsync/config.hpp"

namespace {

std::optional<std::string> FakeEnv(std::string_view name) {
  if (name == "HOME") return std::string("/home/fuzz");
  if (name == "SHOOTBIN_API_TOKEN") return std::string("x");
  if (name == "HEADSHOTPRO_API_KEY") return std::string("y");
  if (name == "HEADSHOTPRO_WEBHOOK_SECRET") return std::string("z");
  return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const shotsync::EnvFn env = FakeEnv;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = shotsync::ParseConfig(text, "fuzz.toml", env);
  if (config.ok()) {
    // What the rest of shotsync relies on (the bounds config.cpp enforces);
    // abort() makes a violation a finding.
    const shotsync::Config& c = *config;
    if (c.jobs < 1 || c.jobs > 64 || c.stall_timeout < 1 || c.stall_timeout > 3600 ||
        c.reconcile_delay < 0 || c.reconcile_delay > 600 ||
        c.shootbin.rpm < 1 || c.headshotpro.rpm < 1 ||
        (c.headshotpro.include != "main" && c.headshotpro.include != "all") ||
        c.headshotpro.layout.find("{photo}") == std::string::npos) {
      std::abort();
    }
    for (const auto& root : c.roots) {
      if (root.path.empty() || root.path[0] != '/' || root.project.empty() || root.album.empty()) {
        std::abort();
      }
    }
    (void)c.ManifestPath();
  } else if (config.status().message().empty()) {
    std::abort();  // errors say what is wrong
  }
  return 0;
}
