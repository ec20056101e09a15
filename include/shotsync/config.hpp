// Config: the TOML profile that says which folders go where.
//
// Found via --config FILE, then $SHOTSYNC_CONFIG, then
// $XDG_CONFIG_HOME/shotsync/config.toml (~/.config/... when unset).
// Unknown keys, wrong types and bad values fail with "file:line: message".
// Secrets never live in the config itself: the Shootbin token comes from
// $SHOOTBIN_API_TOKEN and the HeadshotPro key from $HEADSHOTPRO_API_KEY, or
// from a file named by `token_file` / `key_file` that only its owner may read.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shotsync/status.hpp"

namespace shotsync {

inline constexpr std::uint64_t kShootbinMaxUpload = 10ull * 1024 * 1024;  // shootbin.md §4

// "*.jpg", "*.jpeg", "*.png", ... (shootbin.md §2: standard image formats plus TIFF).
std::vector<std::string> DefaultInclude();

struct RootConfig {
  std::string path;     // absolute (~ expanded)
  // Shootbin project id or name; an id written as a TOML integer
  // (project = 12) arrives here as its digits ("12"), like project = "12".
  std::string project;
  std::string album;    // album id or name in it (an integer too, as above)
  bool create = false;  // create the project/album when missing
  std::vector<std::string> ignore;  // fnmatch globs
  // File-name globs (case-insensitive) of the candidates: by default the
  // image formats Shootbin takes, so RAW files, sidecars and PSDs are not
  // candidates at all. ["*"]: every file.
  std::vector<std::string> include = DefaultInclude();
  std::string where;    // "file:line" of its [[roots]] table, for messages
  // JPEGs over the upload limit are sent as a re-encoded copy that fits
  // (shotsync/fit.hpp, docs/fit.md) instead of being rejected. Last: the
  // positional initialisers of the fields above stay valid.
  bool fit = false;
};

// Studio mode (docs/studio.md): hosts that share one account coordinate
// through PostgreSQL. Empty url = this host alone, on its SQLite manifest.
struct SharedConfig {
  // libpq URI, from [shared] url or $SHOTSYNC_SHARED_URL (which wins). A
  // password comes from PGPASSFILE / ~/.pgpass or the URI's passfile; one
  // written in the config file itself is refused.
  std::string url;
  std::string host;   // this host's name in the shared store ("" = its hostname)
  int lease = 30;     // seconds without renewal after which a host counts as dead
};

struct ShootbinConfig {
  std::string base_url = "https://studio.example.com";  // the customer's instance
  int rpm = 60;                // shootbin.md: assumed Laravel default
  std::string token;           // from the environment or token_file; never logged
  std::string token_source;    // "SHOOTBIN_API_TOKEN" or the file path, for messages
};

struct HeadshotProConfig {
  std::string base_url = "https://server.headshotpro.com/api/v2";
  int rpm = 300;               // 1000 on Enterprise
  std::string dest;            // download folder (~ expanded)
  std::string include = "main";  // "main" or "all"
  std::string layout = "{member}/{photo}.{ext}";
  std::string key;             // from the environment or key_file; never logged
  std::string key_source;
  // `watch` receives HeadshotPro's webhooks here ("127.0.0.1:8787"; "" =
  // none). The secret comes from $HEADSHOTPRO_WEBHOOK_SECRET or
  // webhook_secret_file (mode 600); never logged.
  std::string webhook_listen;
  std::string webhook_secret;
  std::string webhook_secret_source;
};

// `shotsync watch` (docs/watch.md).
struct WatchConfig {
  double settle_s = 1.0;            // quiet time after the last write before a file is sent
  double rescan_interval_s = 3600;  // full rescan (inotify can miss events); 0 = only at start
  double poll_interval_s = 3600;    // incremental pull without a webhook; 0 = never
  std::string metrics_listen;       // "" = /metrics on webhook_listen (or nowhere)
};

// A bandwidth limit in bytes/s per direction, 0 = none: a constant one, or
// rclone's timetable (docs/architecture.md, "Bandwidth").
struct BwLimit {
  std::int64_t up = 0;    // uploads (sync, push); with a timetable: unused
  std::int64_t down = 0;  // downloads (pull)
  // One timetable entry: from this minute of the week (0 = Sunday 00:00,
  // rclone's numbering) on. An entry without a weekday is one per day.
  struct Slot {
    int week_minute = 0;
    std::int64_t up = 0, down = 0;
  };
  std::vector<Slot> timetable;  // in the order written; empty = constant
  // The limits in force at a Unix time (local time), and the Unix time
  // until which they hold at least (+inf for a constant limit).
  struct InForce {
    std::int64_t up = 0, down = 0;
    double until = 0;
  };
  InForce At(double unix_s) const;
  // The entry in force at a minute of the week: the latest one at or before
  // it, wrapping around to the week's last entry; of entries at the same
  // minute the one written last. Needs a timetable.
  const Slot& SlotAt(int week_minute) const;
  bool limited() const;  // any limit, in any direction, at any time
};
// rclone's spellings: "off"; "512k", "4M", "1G" (binary: k/K/KiB = 1024,
// M/MiB, G/GiB); "4MB", "500kB" (decimal: 10^3, 10^6, 10^9); plain bytes/s;
// "UP:DOWN" for each direction ("4M:off"); a timetable of space-separated
// "[DAY-]HH:MM,RATE" entries (DAY: Mon or Monday..., any case; RATE any of
// the above), e.g. "Mon-08:00,512k Sat-10:00,off". The error is one line
// naming the bad entry.
Result<BwLimit> ParseBwLimit(std::string_view text);

struct Config {
  std::string source;          // file the config came from ("" = built-in defaults)
  std::string state_dir;       // manifest.db, lock, logs (~ expanded); see DefaultStateDir
  // Set when state_dir is the default: the folder every config shared
  // before 0.2 (its manifest may be this profile's history).
  std::string legacy_state_dir;
  int jobs = 8;                // concurrent transfers
  bool dedupe = false;         // same content under two paths: upload once
  std::string ca_file;         // extra CA bundle (TLS verification is always on)
  int stall_timeout = 30;      // seconds under 1 KB/s (no answer, stuck body) before a transfer is abandoned
  // Seconds a server is given to finish a request whose client vanished (a
  // crash, a reset after the body went out, a 502/504) before "the photo is
  // not in the album" is believed and the file is sent again. Shootbin has
  // no idempotency key, so this is the only guard against a late store.
  // Gateway timeouts are typically 60-100 s (shootbin.md §1 "Server
  // errors"), hence 120. Range 0-3600.
  int reconcile_delay = 120;
  // false: a revision of a photo the client has approved (approved_at set)
  // is held and reported, because a revision resets the approval
  // (shootbin.md §3.5); true: it is sent.
  bool allow_unapprove = false;
  // http:// base URLs are refused for anything but loopback (the token
  // would travel in clear text) unless this is true.
  bool allow_insecure_http = false;
  // on_rejected = "fail" (true): a file the server or shotsync refuses (not
  // an image, over 10 MB) makes the exit code 1 until it changes or is
  // acknowledged (`shotsync ignore`); "warn" (false): it is named as a
  // warning and the exit code stays 0.
  bool rejected_fails = true;
  BwLimit bwlimit;  // bwlimit = "4M" or "1M:8M"; --bwlimit overrides it
  ShootbinConfig shootbin;
  HeadshotProConfig headshotpro;
  SharedConfig shared;
  WatchConfig watch;
  std::vector<RootConfig> roots;

  std::string ManifestPath() const { return state_dir + "/manifest.db"; }
};

// Environment lookup, injected so that tests need no global state.
using EnvFn = std::function<std::optional<std::string>(std::string_view name)>;
EnvFn ProcessEnv();

// $XDG_CONFIG_HOME/shotsync (~/.config/shotsync): where config files live;
// "" without either variable.
std::string ConfigFolder(const EnvFn& env);

// Where the config is, by the rules above; nullopt when none exists.
std::optional<std::string> FindConfigFile(const std::optional<std::string>& flag, const EnvFn& env);

// Parses TOML text; `source` names it in error messages.
Result<Config> ParseConfig(std::string_view text, const std::string& source, const EnvFn& env);
Result<Config> LoadConfig(const std::string& path, const EnvFn& env);

// The state folder of a config that names none: one per config file, so
// two profiles never share a manifest or a lock:
// $XDG_STATE_HOME/shotsync/<name> (~/.local/state/shotsync/<name>), where
// <name> is the file's name without .toml for a file in the config folder
// ($XDG_CONFIG_HOME/shotsync), and that name plus a hash of its path for a
// file elsewhere. Not yet ~-expanded.
std::string DefaultStateDir(const std::string& source, const EnvFn& env);

// The host of an http(s) URL (no user info, port or brackets), and whether
// it is this machine (localhost, 127.0.0.0/8, ::1).
std::string UrlHost(std::string_view url);
bool IsLoopbackUrl(std::string_view url);

// A listen address from the config: "127.0.0.1:8787", "[::1]:8787"; port 0
// means any free port.
struct ListenAddress {
  std::string host;  // without brackets
  int port = 0;
};
std::optional<ListenAddress> ParseListenAddress(std::string_view text);

// Replaces a leading "~/" with $HOME.
std::string ExpandHome(std::string_view path, const EnvFn& env);

}  // namespace shotsync
