#include "shotsync/config.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <ctime>
#include <limits>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <libpq-fe.h>
#include <toml++/toml.h>

#include "shotsync/filter.hpp"

namespace shotsync {
namespace {

// "file:line: message" (line omitted when unknown).
Status Bad(const std::string& source, const toml::source_region& where, std::string_view msg) {
  std::string m = source.empty() ? std::string("config") : source;
  if (where.begin.line > 0) m += ":" + std::to_string(where.begin.line);
  m += ": ";
  m += msg;
  return Status::Invalid(std::move(m));
}

class Reader {
 public:
  Reader(const std::string& source, const toml::table& table, std::string section)
      : source_(source), table_(table), section_(std::move(section)) {}

  // Every key must be one we know.
  Status CheckKeys(std::initializer_list<std::string_view> known) const {
    const std::set<std::string_view> k(known);
    for (const auto& [key, node] : table_) {
      if (!k.contains(key.str())) {
        static const std::set<std::string_view> kSecretish = {"token", "api_token", "api_key", "key", "password", "secret"};
        if (kSecretish.contains(key.str())) {
          // Config files get shared and backed up; secrets live elsewhere.
          return Bad(source_, key.source(),
                     "'" + Qualified(key.str()) + "': secrets are not read from the config file; set "
                     "SHOOTBIN_API_TOKEN / HEADSHOTPRO_API_KEY, or token_file / key_file (mode 600)");
        }
        return Bad(source_, key.source(), "unknown key '" + Qualified(key.str()) + "'");
      }
    }
    return Status::Ok();
  }

  Status String(std::string_view key, std::string& out) const {
    const toml::node* n = table_.get(key);
    if (!n) return Status::Ok();
    if (!n->is_string()) return Bad(source_, n->source(), "'" + Qualified(key) + "' must be a string");
    out = *n->value<std::string>();
    return Status::Ok();
  }
  // A Shootbin id as a TOML integer (project = 12) or an id or a name as a
  // string (project = "12", project = "Client Smith"); `out` is the text.
  Status IdOrName(std::string_view key, std::string& out) const {
    const toml::node* n = table_.get(key);
    if (!n) return Status::Ok();
    if (n->is_integer()) {
      const std::int64_t v = *n->value<std::int64_t>();
      if (v < 1)
        return Bad(source_, n->source(),
                   "'" + Qualified(key) + "' must be a positive id or a name");
      out = std::to_string(v);
      return Status::Ok();
    }
    if (!n->is_string()) {
      return Bad(source_, n->source(),
                 "'" + Qualified(key) + "' must be an id (12) or a name (\"Selects\")");
    }
    out = *n->value<std::string>();
    return Status::Ok();
  }
  Status Bool(std::string_view key, bool& out) const {
    const toml::node* n = table_.get(key);
    if (!n) return Status::Ok();
    if (!n->is_boolean()) return Bad(source_, n->source(), "'" + Qualified(key) + "' must be true or false");
    out = *n->value<bool>();
    return Status::Ok();
  }
  Status Int(std::string_view key, int& out, std::int64_t lo, std::int64_t hi) const {
    const toml::node* n = table_.get(key);
    if (!n) return Status::Ok();
    if (!n->is_integer()) return Bad(source_, n->source(), "'" + Qualified(key) + "' must be an integer");
    const std::int64_t v = *n->value<std::int64_t>();
    if (v < lo || v > hi) {
      return Bad(source_, n->source(), "'" + Qualified(key) + "' must be between " +
                                           std::to_string(lo) + " and " + std::to_string(hi));
    }
    out = static_cast<int>(v);
    return Status::Ok();
  }
  // A duration in seconds: a number, or rclone's spelling ("90s", "15m",
  // "1h30m"); "off" and 0 are 0 where zero is allowed.
  Status Duration(std::string_view key, double& out, double lo, double hi) const {
    const toml::node* n = table_.get(key);
    if (!n) return Status::Ok();
    std::optional<double> v;
    if (n->is_integer()) v = double(*n->value<std::int64_t>());
    else if (n->is_floating_point()) v = *n->value<double>();
    else if (n->is_string()) v = *n->value<std::string>() == "off" ? std::optional<double>(0.0)
                                                                  : ParseAgeSeconds(*n->value<std::string>());
    if (!v || !std::isfinite(*v)) {
      return Bad(source_, n->source(), "'" + Qualified(key) + "' must be a duration (\"30s\", \"15m\", \"1h\") or seconds");
    }
    if (*v < lo || *v > hi) {
      std::string range = "'" + Qualified(key) + "' must be between ";
      range += std::to_string(std::int64_t(lo));
      range += " and ";
      range += std::to_string(std::int64_t(hi));
      range += " seconds";
      return Bad(source_, n->source(), range);
    }
    out = *v;
    return Status::Ok();
  }
  Status StringList(std::string_view key, std::vector<std::string>& out) const {
    const toml::node* n = table_.get(key);
    if (!n) return Status::Ok();
    const toml::array* arr = n->as_array();
    if (!arr) return Bad(source_, n->source(), "'" + Qualified(key) + "' must be a list of strings");
    for (const auto& item : *arr) {
      if (!item.is_string()) {
        return Bad(source_, item.source(), "'" + Qualified(key) + "' must be a list of strings");
      }
      out.push_back(*item.value<std::string>());
    }
    return Status::Ok();
  }
  const toml::source_region& Where(std::string_view key) const {
    const toml::node* n = table_.get(key);
    return n ? n->source() : table_.source();
  }

 private:
  std::string Qualified(std::string_view key) const {
    return section_.empty() ? std::string(key) : section_ + "." + std::string(key);
  }
  const std::string& source_;
  const toml::table& table_;
  std::string section_;
};

const toml::table* Section(const toml::table& root, std::string_view name) {
  const toml::node* n = root.get(name);
  return n ? n->as_table() : nullptr;
}

}  // namespace

std::string UrlHost(std::string_view url) {
  url.remove_prefix(std::min(url.find("://") + 3, url.size()));
  url = url.substr(0, url.find_first_of("/?#"));
  if (const auto at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
  if (url.starts_with("[")) return std::string(url.substr(1, url.find(']') - 1));
  return std::string(url.substr(0, url.find(':')));
}

bool IsLoopbackUrl(std::string_view url) {
  const std::string host = UrlHost(url);
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

namespace {


// https://, or http:// to this machine (a local test server): elsewhere the
// token would cross the network in clear text, unless the user says so.
Status CheckUrl(const std::string& source, const toml::source_region& where, std::string_view key,
                const std::string& url, bool allow_insecure_http) {
  if (url.starts_with("https://")) return Status::Ok();
  if (!url.starts_with("http://")) return Bad(source, where, std::string(key) + " must start with https://");
  if (!allow_insecure_http && !IsLoopbackUrl(url)) {
    return Bad(source, where,
               std::string(key) + " is http:// to " + UrlHost(url) +
                   ": the token would travel in clear text; use https://, or set allow_insecure_http = true");
  }
  return Status::Ok();
}

// A libpq connection URI. A password in the config file is refused (secrets
// never live in the config): ~/.pgpass, PGPASSFILE or passfile= instead.
Status CheckSharedUrl(const std::string& source, const toml::source_region& where, const std::string& url,
                      bool in_file) {
  const std::string where_name = in_file ? "shared.url" : "SHOTSYNC_SHARED_URL";
  if (!url.starts_with("postgresql://") && !url.starts_with("postgres://")) {
    return Bad(source, where, where_name + " must be a PostgreSQL URI: postgresql://user@host:port/dbname");
  }
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (!opts) {
    std::string why = err ? err : "does not parse";
    if (err) PQfreemem(err);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return Bad(source, where, where_name + ": " + why);
  }
  bool password = false;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (std::strcmp(o->keyword, "password") == 0 && o->val && *o->val) password = true;
  }
  PQconninfoFree(opts);
  if (password && in_file) {
    return Bad(source, where, "shared.url must not hold a password: put it in ~/.pgpass (mode 600) or PGPASSFILE");
  }
  return Status::Ok();
}

// A secret from the environment, or from a file only its owner can read.
Status LoadSecret(const std::string& source, const toml::source_region& where, const EnvFn& env,
                  std::string_view env_name, const std::string& file, std::string& out,
                  std::string& out_source) {
  if (auto v = env(env_name); v && !v->empty()) {
    out = *v;
    out_source = std::string(env_name);
    return Status::Ok();
  }
  if (file.empty()) return Status::Ok();
  const std::string path = ExpandHome(file, env);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Bad(source, where, path + ": " + std::strerror(errno));
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return Bad(source, where,
               path + ": holds a secret but is readable by others; run: chmod 600 '" + path + "'");
  }
  std::ifstream in(path);
  if (!in) return Bad(source, where, path + ": cannot read");
  std::getline(in, out);
  while (!out.empty() && (out.back() == '\r' || out.back() == ' ')) out.pop_back();
  if (out.empty()) return Bad(source, where, path + ": is empty");
  out_source = path;
  return Status::Ok();
}

// A listen address: "HOST:PORT" ("127.0.0.1:8787", "[::1]:8787",
// "0.0.0.0:8787"), port 1-65535.
Status CheckListen(const std::string& source, const toml::source_region& where, std::string_view key,
                   const std::string& value) {
  if (!ParseListenAddress(value)) {
    return Bad(source, where, "'" + std::string(key) + "' must be HOST:PORT, like \"127.0.0.1:8787\": " + value);
  }
  return Status::Ok();
}

}  // namespace

std::optional<ListenAddress> ParseListenAddress(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = text.substr(0, colon), port = text.substr(colon + 1);
  if (host.starts_with('[')) {
    if (!host.ends_with(']') || host.size() < 3) return std::nullopt;
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return std::nullopt;  // an IPv6 address needs its brackets
  }
  if (port.empty() || port.size() > 5) return std::nullopt;
  int p = 0;
  for (char ch : port) {
    if (ch < '0' || ch > '9') return std::nullopt;
    p = p * 10 + (ch - '0');
  }
  if (p > 65535) return std::nullopt;  // 0: any free port (tests; watch logs the one it got)
  return ListenAddress{std::string(host), p};
}

std::string ConfigFolder(const EnvFn& env) {
  if (auto x = env("XDG_CONFIG_HOME"); x && !x->empty()) return *x + "/shotsync";
  if (auto home = env("HOME"); home && !home->empty()) return *home + "/.config/shotsync";
  return "";
}

namespace {

std::optional<std::int64_t> ParseOneRate(std::string_view text) {
  if (text == "off" || text == "0") return 0;
  std::size_t digits = 0;
  while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  double v = 0;
  try {
    v = std::stod(std::string(text.substr(0, digits)));
  } catch (const std::exception&) {  // std::stod reports bad numbers by exception
    return std::nullopt;
  }
  const std::string_view unit = text.substr(digits);
  static const std::pair<std::string_view, double> kUnits[] = {
      {"", 1},       {"b", 1},       {"k", 1024},   {"K", 1024},      {"KiB", 1024},  {"kiB", 1024},
      {"M", 1 << 20}, {"m", 1 << 20}, {"MiB", 1 << 20}, {"G", 1 << 30}, {"g", 1 << 30}, {"GiB", 1 << 30},
      {"kB", 1e3},   {"KB", 1e3},    {"MB", 1e6},   {"GB", 1e9}};
  for (const auto& [name, mult] : kUnits) {
    if (unit == name) {
      if (!(v > 0)) return std::nullopt;
      return std::int64_t(v * mult);
    }
  }
  return std::nullopt;
}

}  // namespace

namespace {

// RATE or UP:DOWN.
std::optional<BwLimit::Slot> ParseRatePair(std::string_view text) {
  const std::size_t colon = text.find(':');
  auto up = ParseOneRate(text.substr(0, colon));
  auto down = colon == std::string_view::npos ? up : ParseOneRate(text.substr(colon + 1));
  if (!up || !down) return std::nullopt;
  return BwLimit::Slot{0, *up, *down};
}

constexpr int kWeekMinutes = 7 * 24 * 60;

// rclone's weekday names (fs/bwtimetable.go): "mon" or "monday", any case; Sunday = 0.
std::optional<int> ParseWeekday(std::string_view text) {
  static const char* const kDays[] = {"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};
  std::string lower(text);
  for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  for (int d = 0; d < 7; ++d) {
    const std::string_view full = kDays[d];
    if (lower == full || lower == full.substr(0, 3)) return d;
  }
  return std::nullopt;
}

// "HH:MM" exactly (rclone's validateHour); the error says what is wrong.
Result<int> ParseHhMm(std::string_view text) {
  auto digit = [&](std::size_t i) { return std::isdigit(static_cast<unsigned char>(text[i])) != 0; };
  if (text.size() != 5 || text[2] != ':' || !digit(0) || !digit(1) || !digit(3) || !digit(4)) {
    return Status::Invalid("the time must be HH:MM");
  }
  const int h = (text[0] - '0') * 10 + (text[1] - '0');
  const int m = (text[3] - '0') * 10 + (text[4] - '0');
  if (h > 23) return Status::Invalid("the hour must be 00 to 23");
  if (m > 59) return Status::Invalid("the minute must be 00 to 59");
  return h * 60 + m;
}

}  // namespace

Result<BwLimit> ParseBwLimit(std::string_view text) {
  // rclone: a single value without a space or comma is a constant limit.
  if (text.find_first_of(" ,") == std::string_view::npos) {
    auto pair = ParseRatePair(text);
    if (!pair) {
      std::string msg = "bwlimit: '";
      msg.append(text);
      msg += "' is not a rate like 512k, 4M, 4MB, off or UP:DOWN, nor a timetable like \"08:00,512k 23:00,off\"";
      return Status::Invalid(msg);
    }
    return BwLimit{pair->up, pair->down, {}};
  }
  BwLimit out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (text[pos] == ' ') {
      ++pos;
      continue;
    }
    const std::size_t end = std::min(text.find(' ', pos), text.size());
    const std::string_view entry = text.substr(pos, end - pos);
    pos = end;
    auto bad = [&](std::string_view why) {
      std::string msg = "bwlimit timetable entry '";
      msg.append(entry);
      msg += "': ";
      msg.append(why);
      return Status::Invalid(msg);
    };
    const std::size_t comma = entry.find(',');
    if (comma == std::string_view::npos || entry.find(',', comma + 1) != std::string_view::npos) {
      return bad("must be [DAY-]HH:MM,RATE");
    }
    std::string_view when = entry.substr(0, comma);
    auto rate = ParseRatePair(entry.substr(comma + 1));
    if (!rate) return bad("the rate must be like 512k, 4M, 4MB, off or UP:DOWN");
    std::optional<int> day;  // none: every day
    if (const std::size_t dash = when.find('-'); dash != std::string_view::npos) {
      day = ParseWeekday(when.substr(0, dash));
      if (!day) return bad("the day must be Mon, Tue, Wed, Thu, Fri, Sat or Sun");
      when.remove_prefix(dash + 1);
    }
    auto minute = ParseHhMm(when);
    if (!minute.ok()) return bad(minute.status().message());
    for (int d = day.value_or(0); d <= day.value_or(6); ++d) {
      out.timetable.push_back(BwLimit::Slot{d * 24 * 60 + *minute, rate->up, rate->down});
    }
  }
  if (out.timetable.empty()) return Status::Invalid("bwlimit: empty timetable");
  return out;
}

const BwLimit::Slot& BwLimit::SlotAt(int week_minute) const {
  const Slot* at_or_before = nullptr;
  const Slot* last = &timetable.front();
  for (const Slot& s : timetable) {
    // ">=": of entries at one minute, the one written last wins (rclone).
    if (s.week_minute <= week_minute && (!at_or_before || s.week_minute >= at_or_before->week_minute)) {
      at_or_before = &s;
    }
    if (s.week_minute >= last->week_minute) last = &s;
  }
  return at_or_before ? *at_or_before : *last;  // before the week's first entry: the last one wraps
}

BwLimit::InForce BwLimit::At(double unix_s) const {
  if (timetable.empty()) return {up, down, std::numeric_limits<double>::infinity()};
  const std::time_t t = std::time_t(std::floor(unix_s));
  std::tm local{};
  ::localtime_r(&t, &local);
  const int now = local.tm_wday * 24 * 60 + local.tm_hour * 60 + local.tm_min;
  const Slot& s = SlotAt(now);
  // The next entry's minute, wrapping around the week.
  int next = kWeekMinutes;
  for (const Slot& e : timetable) {
    const int ahead = (e.week_minute - now + kWeekMinutes - 1) % kWeekMinutes + 1;  // 1..week
    next = std::min(next, ahead);
  }
  const double minute_start = double(t) - local.tm_sec;
  // At most an hour ahead: a daylight-saving change moves local minutes.
  return {s.up, s.down, std::min(minute_start + next * 60.0, unix_s + 3600.0)};
}

bool BwLimit::limited() const {
  return up > 0 || down > 0 ||
         std::any_of(timetable.begin(), timetable.end(), [](const Slot& s) { return s.up > 0 || s.down > 0; });
}


std::vector<std::string> DefaultInclude() {
  return {"*.jpg", "*.jpeg", "*.jpe", "*.png", "*.gif", "*.webp", "*.tif", "*.tiff",
          "*.heic", "*.heif", "*.avif", "*.bmp"};
}

std::string DefaultStateDir(const std::string& source, const EnvFn& env) {
  std::string base = "~/.local/state/shotsync";
  if (auto x = env("XDG_STATE_HOME"); x && !x->empty()) base = *x + "/shotsync";
  if (source.empty()) return base + "/config";
  std::error_code ec;
  std::filesystem::path file = std::filesystem::absolute(source, ec);
  if (ec) file = source;
  file = file.lexically_normal();
  std::string name = file.stem().string();
  if (name.empty()) name = "config";
  // Two config.toml files in two folders are two profiles: outside the
  // config folder, the name carries a hash of the file's path.
  if (file.parent_path() != std::filesystem::path(ConfigFolder(env)).lexically_normal()) {
    std::uint32_t h = 2166136261u;  // FNV-1a: stable across builds and machines
    for (unsigned char ch : file.string()) h = (h ^ ch) * 16777619u;
    char hex[12];
    std::snprintf(hex, sizeof hex, "-%08x", h);
    name += hex;
  }
  return base + "/" + name;
}

EnvFn ProcessEnv() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::string ExpandHome(std::string_view path, const EnvFn& env) {
  if (path == "~" || path.rfind("~/", 0) == 0) {
    if (auto home = env("HOME"); home && !home->empty()) return *home + std::string(path.substr(1));
  }
  return std::string(path);
}

std::optional<std::string> FindConfigFile(const std::optional<std::string>& flag, const EnvFn& env) {
  if (flag) return *flag;
  if (auto v = env("SHOTSYNC_CONFIG"); v && !v->empty()) return *v;
  const std::string folder = ConfigFolder(env);
  if (folder.empty()) return std::nullopt;
  std::string path = folder + "/config.toml";
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return path;
  return std::nullopt;
}

Result<Config> ParseConfig(std::string_view text, const std::string& source, const EnvFn& env) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {  // toml++ reports syntax errors by exception
    return Bad(source, e.source(), std::string(e.description()));
  }

  Config c;
  c.source = source;
  c.state_dir = DefaultStateDir(source, env);
  const std::string derived_state_dir = c.state_dir;
  c.headshotpro.dest = "~/Pictures/headshots";

  Reader top(source, root, "");
  SHOTSYNC_RETURN_IF_ERROR(
      top.CheckKeys({"state_dir", "jobs", "dedupe", "ca_file", "stall_timeout", "reconcile_delay",
                     "allow_unapprove", "allow_insecure_http", "on_rejected", "bwlimit", "shootbin", "headshotpro", "shared",
                     "watch", "roots"}));
  SHOTSYNC_RETURN_IF_ERROR(top.String("state_dir", c.state_dir));
  SHOTSYNC_RETURN_IF_ERROR(top.Int("jobs", c.jobs, 1, 64));
  SHOTSYNC_RETURN_IF_ERROR(top.Bool("dedupe", c.dedupe));
  SHOTSYNC_RETURN_IF_ERROR(top.String("ca_file", c.ca_file));
  SHOTSYNC_RETURN_IF_ERROR(top.Int("stall_timeout", c.stall_timeout, 1, 3600));
  SHOTSYNC_RETURN_IF_ERROR(top.Int("reconcile_delay", c.reconcile_delay, 0, 3600));
  SHOTSYNC_RETURN_IF_ERROR(top.Bool("allow_unapprove", c.allow_unapprove));
  SHOTSYNC_RETURN_IF_ERROR(top.Bool("allow_insecure_http", c.allow_insecure_http));
  std::string on_rejected = "fail";
  SHOTSYNC_RETURN_IF_ERROR(top.String("on_rejected", on_rejected));
  if (on_rejected != "fail" && on_rejected != "warn") {
    return Bad(source, top.Where("on_rejected"), "'on_rejected' must be \"fail\" or \"warn\"");
  }
  c.rejected_fails = on_rejected == "fail";
  std::string bwlimit;
  SHOTSYNC_RETURN_IF_ERROR(top.String("bwlimit", bwlimit));
  if (!bwlimit.empty()) {
    auto limit = ParseBwLimit(bwlimit);
    if (!limit) {
      return Bad(source, top.Where("bwlimit"),
                 "'bwlimit' must be a rate like \"4M\", \"512k\", \"4MB\", \"off\", \"UP:DOWN\" or a timetable (" +
                     limit.status().message() + ")");
    }
    c.bwlimit = *limit;
  }
  for (std::string_view s : {"shootbin", "headshotpro", "shared", "watch"}) {
    if (root.get(s) && !Section(root, s)) return Bad(source, top.Where(s), "'" + std::string(s) + "' must be a table");
  }

  std::string token_file, key_file, webhook_secret_file;
  if (const toml::table* sb = Section(root, "shootbin")) {
    Reader r(source, *sb, "shootbin");
    SHOTSYNC_RETURN_IF_ERROR(r.CheckKeys({"base_url", "rpm", "token_file"}));
    SHOTSYNC_RETURN_IF_ERROR(r.String("base_url", c.shootbin.base_url));
    SHOTSYNC_RETURN_IF_ERROR(CheckUrl(source, r.Where("base_url"), "shootbin.base_url", c.shootbin.base_url,
                                                  c.allow_insecure_http));
    SHOTSYNC_RETURN_IF_ERROR(r.Int("rpm", c.shootbin.rpm, 1, 1000000));
    SHOTSYNC_RETURN_IF_ERROR(r.String("token_file", token_file));
    SHOTSYNC_RETURN_IF_ERROR(LoadSecret(source, r.Where("token_file"), env, "SHOOTBIN_API_TOKEN",
                                        token_file, c.shootbin.token, c.shootbin.token_source));
  } else {
    SHOTSYNC_RETURN_IF_ERROR(LoadSecret(source, root.source(), env, "SHOOTBIN_API_TOKEN", "",
                                        c.shootbin.token, c.shootbin.token_source));
  }
  if (const toml::table* hp = Section(root, "headshotpro")) {
    Reader r(source, *hp, "headshotpro");
    SHOTSYNC_RETURN_IF_ERROR(r.CheckKeys({"base_url", "rpm", "dest", "include", "layout", "key_file",
                                          "webhook_listen", "webhook_secret_file"}));
    SHOTSYNC_RETURN_IF_ERROR(r.String("base_url", c.headshotpro.base_url));
    SHOTSYNC_RETURN_IF_ERROR(CheckUrl(source, r.Where("base_url"), "headshotpro.base_url",
                                                  c.headshotpro.base_url, c.allow_insecure_http));
    SHOTSYNC_RETURN_IF_ERROR(r.Int("rpm", c.headshotpro.rpm, 1, 1000000));
    SHOTSYNC_RETURN_IF_ERROR(r.String("dest", c.headshotpro.dest));
    SHOTSYNC_RETURN_IF_ERROR(r.String("include", c.headshotpro.include));
    if (c.headshotpro.include != "main" && c.headshotpro.include != "all") {
      return Bad(source, r.Where("include"), "'headshotpro.include' must be \"main\" or \"all\"");
    }
    SHOTSYNC_RETURN_IF_ERROR(r.String("layout", c.headshotpro.layout));
    if (c.headshotpro.layout.find("{photo}") == std::string::npos) {
      return Bad(source, r.Where("layout"), "'headshotpro.layout' must contain {photo} so that names are unique");
    }
    SHOTSYNC_RETURN_IF_ERROR(r.String("key_file", key_file));
    SHOTSYNC_RETURN_IF_ERROR(LoadSecret(source, r.Where("key_file"), env, "HEADSHOTPRO_API_KEY",
                                        key_file, c.headshotpro.key, c.headshotpro.key_source));
    SHOTSYNC_RETURN_IF_ERROR(r.String("webhook_listen", c.headshotpro.webhook_listen));
    if (!c.headshotpro.webhook_listen.empty()) {
      SHOTSYNC_RETURN_IF_ERROR(CheckListen(source, r.Where("webhook_listen"), "headshotpro.webhook_listen",
                                           c.headshotpro.webhook_listen));
    }
    SHOTSYNC_RETURN_IF_ERROR(r.String("webhook_secret_file", webhook_secret_file));
    SHOTSYNC_RETURN_IF_ERROR(LoadSecret(source, r.Where("webhook_secret_file"), env, "HEADSHOTPRO_WEBHOOK_SECRET",
                                        webhook_secret_file, c.headshotpro.webhook_secret,
                                        c.headshotpro.webhook_secret_source));
  } else {
    SHOTSYNC_RETURN_IF_ERROR(LoadSecret(source, root.source(), env, "HEADSHOTPRO_API_KEY", "",
                                        c.headshotpro.key, c.headshotpro.key_source));
    SHOTSYNC_RETURN_IF_ERROR(LoadSecret(source, root.source(), env, "HEADSHOTPRO_WEBHOOK_SECRET", "",
                                        c.headshotpro.webhook_secret, c.headshotpro.webhook_secret_source));
  }
  if (const toml::table* w = Section(root, "watch")) {
    Reader r(source, *w, "watch");
    SHOTSYNC_RETURN_IF_ERROR(r.CheckKeys({"settle", "rescan_interval", "poll_interval", "metrics_listen"}));
    SHOTSYNC_RETURN_IF_ERROR(r.Duration("settle", c.watch.settle_s, 0.05, 3600));
    SHOTSYNC_RETURN_IF_ERROR(r.Duration("rescan_interval", c.watch.rescan_interval_s, 0, 30 * 86400.0));
    if (c.watch.rescan_interval_s > 0 && c.watch.rescan_interval_s < 10) {
      return Bad(source, r.Where("rescan_interval"), "'watch.rescan_interval' must be 0 (off) or at least 10 seconds");
    }
    SHOTSYNC_RETURN_IF_ERROR(r.Duration("poll_interval", c.watch.poll_interval_s, 0, 30 * 86400.0));
    if (c.watch.poll_interval_s > 0 && c.watch.poll_interval_s < 60) {
      return Bad(source, r.Where("poll_interval"), "'watch.poll_interval' must be 0 (off) or at least 60 seconds");
    }
    SHOTSYNC_RETURN_IF_ERROR(r.String("metrics_listen", c.watch.metrics_listen));
    if (!c.watch.metrics_listen.empty()) {
      SHOTSYNC_RETURN_IF_ERROR(CheckListen(source, r.Where("metrics_listen"), "watch.metrics_listen",
                                           c.watch.metrics_listen));
    }
  }

  if (const toml::table* sh = Section(root, "shared")) {
    Reader r(source, *sh, "shared");
    SHOTSYNC_RETURN_IF_ERROR(r.CheckKeys({"url", "host", "lease"}));
    SHOTSYNC_RETURN_IF_ERROR(r.String("url", c.shared.url));
    SHOTSYNC_RETURN_IF_ERROR(r.String("host", c.shared.host));
    SHOTSYNC_RETURN_IF_ERROR(r.Int("lease", c.shared.lease, 5, 3600));
    if (!c.shared.url.empty()) SHOTSYNC_RETURN_IF_ERROR(CheckSharedUrl(source, r.Where("url"), c.shared.url, true));
  }
  if (auto url = env("SHOTSYNC_SHARED_URL"); url && !url->empty()) {
    SHOTSYNC_RETURN_IF_ERROR(CheckSharedUrl(source, {}, *url, false));
    c.shared.url = *url;
  }

  if (const toml::node* rn = root.get("roots")) {
    const toml::array* roots = rn->as_array();
    if (!roots) return Bad(source, rn->source(), "'roots' must be an array of tables: [[roots]]");
    for (const auto& item : *roots) {
      const toml::table* t = item.as_table();
      if (!t) return Bad(source, item.source(), "each [[roots]] entry must be a table");
      Reader r(source, *t, "roots");
      RootConfig rc;
      rc.where = (source.empty() ? std::string("config") : source) + ":" + std::to_string(t->source().begin.line);
      SHOTSYNC_RETURN_IF_ERROR(r.CheckKeys({"path", "project", "album", "create", "ignore", "include", "fit"}));
      SHOTSYNC_RETURN_IF_ERROR(r.String("path", rc.path));
      SHOTSYNC_RETURN_IF_ERROR(r.IdOrName("project", rc.project));
      SHOTSYNC_RETURN_IF_ERROR(r.IdOrName("album", rc.album));
      SHOTSYNC_RETURN_IF_ERROR(r.Bool("create", rc.create));
      SHOTSYNC_RETURN_IF_ERROR(r.Bool("fit", rc.fit));
      SHOTSYNC_RETURN_IF_ERROR(r.StringList("ignore", rc.ignore));
      if (t->get("include")) {
        rc.include.clear();
        SHOTSYNC_RETURN_IF_ERROR(r.StringList("include", rc.include));
        if (rc.include.empty()) return Bad(source, r.Where("include"), "'roots.include' is empty: nothing would be sent (use [\"*\"] for every file)");
        if (std::find(rc.include.begin(), rc.include.end(), "*") != rc.include.end()) rc.include.clear();
      }
      if (rc.path.empty()) return Bad(source, t->source(), "[[roots]] needs a 'path'");
      if (rc.project.empty()) return Bad(source, t->source(), "[[roots]] needs a 'project' (id or name)");
      if (rc.album.empty()) return Bad(source, t->source(), "[[roots]] needs an 'album' (id or name)");
      rc.path = ExpandHome(rc.path, env);
      if (rc.path.empty() || rc.path[0] != '/') {
        return Bad(source, r.Where("path"), "roots.path must be absolute (or start with ~/): " + rc.path);
      }
      while (rc.path.size() > 1 && rc.path.back() == '/') rc.path.pop_back();
      for (const auto& other : c.roots) {
        if (other.path == rc.path) return Bad(source, t->source(), "root listed twice: " + rc.path);
      }
      c.roots.push_back(std::move(rc));
    }
  }
  if (c.state_dir == derived_state_dir) {
    c.legacy_state_dir = ExpandHome(std::filesystem::path(c.state_dir).parent_path().string(), env);
  }
  c.state_dir = ExpandHome(c.state_dir, env);
  c.headshotpro.dest = ExpandHome(c.headshotpro.dest, env);
  if (!c.ca_file.empty()) c.ca_file = ExpandHome(c.ca_file, env);
  return c;
}

Result<Config> LoadConfig(const std::string& path, const EnvFn& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Io(path, errno ? errno : ENOENT);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path, env);
}

}  // namespace shotsync
