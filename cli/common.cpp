#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "cli.hpp"
#include "shotsync/filter.hpp"
#include "shotsync/fs.hpp"
#include "shotsync/pull.hpp"
#include "shotsync/sync.hpp"

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

CLI::Validator DurationValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (ParseDuration(text)) return "";
        return "expected a duration like 30s, 5m or 1h30m, not '" + text + "'";
      },
      "DURATION");
}

CLI::Validator SizeValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (text == "off" || ParseSizeSuffix(text)) return "";
        return "expected a size like 500k, 10M, 1G or 20MB, not '" + text + "'";
      },
      "SIZE");
}

void AddFilterOptions(CLI::App& cmd, FilterSpec& spec) {
  const std::string group = "Filters (rclone's rules; docs/filtering.md)";
  cmd.add_option("--include", spec.include, "only files matching GLOB (everything else is left out)")
      ->group(group)->type_name("GLOB")->allow_extra_args(false);
  // One value per occurrence: "--include a --include b", never eating the next word.
  cmd.add_option("--exclude", spec.exclude, "leave out files matching GLOB")->group(group)->type_name("GLOB")->allow_extra_args(false);
  cmd.add_option("--filter", spec.filter, "a rule: \"+ GLOB\" or \"- GLOB\"")->group(group)->type_name("RULE")->allow_extra_args(false);
  cmd.add_option("--filter-from", spec.filter_from, "read rules from FILE, one per line")
      ->group(group)->type_name("FILE")->allow_extra_args(false);
  cmd.add_option("--max-age", spec.max_age, "only files modified within this long (24h, 7d) or since a date")
      ->group(group)->type_name("AGE");
  cmd.add_option("--min-age", spec.min_age, "only files not modified for this long, or before a date")
      ->group(group)->type_name("AGE");
  cmd.add_option("--max-size", spec.max_size, "only files up to this size (10M = 10 MiB, 10MB = 10^7 bytes)")
      ->group(group)->check(SizeValidator());
  cmd.add_option("--min-size", spec.min_size, "only files at least this size")->group(group)->check(SizeValidator());
  cmd.add_flag("--ignore-case", spec.ignore_case, "match the globs case-insensitively")->group(group);
}

Result<std::optional<FileFilter>> MakeFilter(const FilterSpec& spec) {
  if (spec.empty()) return std::optional<FileFilter>();
  const double now_s = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  SHOTSYNC_ASSIGN_OR_RETURN(FileFilter filter, FileFilter::Make(spec, now_s));
  return std::optional<FileFilter>(std::move(filter));
}

std::string EndCounts(const SyncReport& r) {
  std::string out = std::to_string(r.uploaded) + " uploaded, ";
  out += std::to_string(r.revised) + " revised, ";
  out += std::to_string(r.plan.adopt) + " adopted, ";
  out += std::to_string(r.plan.skip) + " skipped, ";
  out += std::to_string(r.rejected + r.plan.rejected) + " rejected, ";
  out += std::to_string(r.failed) + " failed, ";
  out += std::to_string(r.bytes_sent) + " bytes, ";
  out += std::to_string(r.retries) + " retries, ";
  return out + std::to_string(r.throttled_429) + " 429s";
}

std::string PlanLine(const PlanStats& s) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "plan: would upload %lld, revise %lld, skip %lld, adopt %lld, move %lld; %lld rejected, "
                "%lld conflicts, %lld missing (%lld files scanned, %lld hashed, %.1f MB to send)",
                (long long)s.upload, (long long)s.revision, (long long)s.skip, (long long)s.adopt,
                (long long)s.moved, (long long)s.rejected, (long long)s.conflict, (long long)s.missing,
                (long long)s.scanned, (long long)s.hashed, double(s.bytes_to_send) / 1e6);
  return buf;
}

std::string EndCounts(const PullReport& r) {
  std::string out = std::to_string(r.downloaded) + " downloaded, ";
  out += std::to_string(r.skipped) + " already here, ";
  out += std::to_string(r.failed) + " failed, ";
  out += std::to_string(r.bytes) + " bytes, ";
  out += std::to_string(r.retries) + " retries, ";
  return out + std::to_string(r.throttled_429) + " 429s";
}

CLI::Validator BwLimitValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        auto limit = ParseBwLimit(text);
        if (limit) return "";
        return limit.status().message();
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
    options.log->AddSecret(config->headshotpro.webhook_secret);
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
