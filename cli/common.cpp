#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string>

#include "cli.hpp"
#include "shotsync/fs.hpp"

namespace shotsync::cli {

std::string Escaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\\') out += "\\\\";
    else if (u < 0x20 || u == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", u);
      out += hex;
    } else {
      out += c;
    }
  }
  return out;
}

void PrintError(const GlobalOptions& options, const Status& status) {
  options.log->Error(status.message());
}

std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text) {
  double total_s = 0;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(text.substr(at), &used);
    } catch (const std::exception&) {  // std::stod reports bad numbers by exception
      return std::nullopt;
    }
    if (!(v >= 0) || v > 1e7) return std::nullopt;  // nan, inf, or past any sane run
    at += used;
    double unit = 1;
    if (at < text.size()) {
      const std::string_view rest = std::string_view(text).substr(at);
      if (rest.starts_with("ms")) unit = 0.001, at += 2;
      else if (rest[0] == 's') unit = 1, ++at;
      else if (rest[0] == 'm') unit = 60, ++at;
      else if (rest[0] == 'h') unit = 3600, ++at;
      else if (rest[0] == 'd') unit = 86400, ++at;
      else return std::nullopt;
    } else if (total_s > 0) {
      return std::nullopt;  // "1h30": a unit is needed after the first part
    }
    total_s += v * unit;
  }
  if (!(total_s > 0)) return std::nullopt;
  return std::chrono::milliseconds(std::int64_t(total_s * 1000));
}

CLI::Validator BwLimitValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (ParseBwLimit(text)) return "";
        return "expected a rate like 512k, 4M, 4MB, off or UP:DOWN (4M:off), not '" + text + "'";
      },
      "RATE");
}

Result<Config> LoadConfigFor(const GlobalOptions& options) {
  const EnvFn env = ProcessEnv();
  auto path = FindConfigFile(options.config_path, env);
  if (!path) {
    return Status::Invalid(
        "no config file: pass --config FILE, set SHOTSYNC_CONFIG, or create "
        "~/.config/shotsync/config.toml (shotsync init writes one)");
  }
  auto config = LoadConfig(*path, env);
  if (config.ok() && !options.ca_file.empty()) config->ca_file = options.ca_file;
  if (config.ok()) {
    options.log->AddSecret(config->shootbin.token);
    options.log->AddSecret(config->headshotpro.key);
  }
  return config;
}

std::optional<Profile> OpenProfile(const GlobalOptions& options, int* exit_code) {
  auto config = LoadConfigFor(options);
  if (!config.ok()) {
    PrintError(options, config.status());
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  auto manifest = OpenManifestFor(*config, options.log);
  if (!manifest.ok()) {
    PrintError(options, manifest.status());
    *exit_code = ExitCodeFor(manifest.status());
    return std::nullopt;
  }
  auto shared = OpenSharedFor(*config);
  if (!shared.ok()) {
    PrintError(options, shared.status());
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  return Profile{std::move(*config), std::move(*manifest), std::move(*shared)};
}

Result<std::unique_ptr<SharedStore>> OpenSharedFor(const Config& config, bool check_schema) {
  if (config.shared.url.empty()) return std::unique_ptr<SharedStore>();
  return SharedStore::Open(
      SharedOptions{.url = config.shared.url, .host = config.shared.host, .lease_s = double(config.shared.lease)},
      check_schema);
}

Result<std::unique_ptr<Manifest>> OpenManifestFor(const Config& config, Logger* log) {
  const std::string manifest = config.ManifestPath();
  if (log && !config.legacy_state_dir.empty() && ::access(manifest.c_str(), F_OK) != 0 &&
      ::access((config.legacy_state_dir + "/manifest.db").c_str(), F_OK) == 0) {
    // Nothing is sent twice without it (the albums are looked up), but the
    // history (status, verify, revisions of approved photos) lives there.
    log->Warn("a manifest of shotsync 0.1 (shared by every config) is in " + config.legacy_state_dir +
              "; this profile's is now " + config.state_dir + ". To keep its history, stop shotsync and run: mv " +
              config.legacy_state_dir + "/manifest.db* " + config.state_dir + "/");
  }
  if (Status st = MakePrivateDirs(config.state_dir); !st.ok()) return Status(st.code(), "state_dir " + st.message());
  ::chmod(config.state_dir.c_str(), 0700);  // logs and manifest name the user's files
  return Manifest::Open(manifest);
}

}  // namespace shotsync::cli
