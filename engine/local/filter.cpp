// FileFilter: rclone's filter rules (include/shotsync/filter.hpp).
#include "shotsync/filter.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>

namespace shotsync {
namespace {

char Lower(char c) { return char(std::tolower(static_cast<unsigned char>(c))); }

// [...] at p (just after '['): whether c is in the class; p is left after ']'.
bool MatchClass(std::string_view p, std::size_t& i, char c, bool fold) {
  bool negate = false;
  if (i < p.size() && (p[i] == '!' || p[i] == '^')) negate = true, ++i;
  bool in = false;
  bool first = true;
  while (i < p.size() && (p[i] != ']' || first)) {
    first = false;
    char lo = p[i] == '\\' && i + 1 < p.size() ? p[++i] : p[i];
    ++i;
    char hi = lo;
    if (i + 1 < p.size() && p[i] == '-' && p[i + 1] != ']') {
      hi = p[i + 1] == '\\' && i + 2 < p.size() ? p[i + 2] : p[i + 1];
      i += p[i + 1] == '\\' ? 3 : 2;
    }
    if (fold) {
      in = in || (Lower(c) >= Lower(lo) && Lower(c) <= Lower(hi));
    }
    in = in || (c >= lo && c <= hi);
  }
  if (i < p.size()) ++i;  // the ']'
  return c != '/' && in != negate;
}

// Glob p against all of s (rclone's glob: see filter.hpp).
bool GlobMatch(std::string_view p, std::string_view s, bool fold) {
  std::size_t i = 0, j = 0;
  while (i < p.size()) {
    const char c = p[i];
    if (c == '*') {
      const bool any = i + 1 < p.size() && p[i + 1] == '*';
      std::size_t rest = i + (any ? 2 : 1);
      // Try every split; '*' stops at '/', '**' does not.
      for (std::size_t k = j;; ++k) {
        if (GlobMatch(p.substr(rest), s.substr(k), fold)) return true;
        if (k == s.size() || (!any && s[k] == '/')) return false;
      }
    }
    if (j == s.size()) return false;
    if (c == '?') {
      if (s[j] == '/') return false;
      ++i, ++j;
    } else if (c == '[') {
      ++i;
      if (!MatchClass(p, i, s[j], fold)) return false;
      ++j;
    } else {
      char lit = c;
      if (c == '\\' && i + 1 < p.size()) lit = p[++i];
      if (fold ? Lower(lit) != Lower(s[j]) : lit != s[j]) return false;
      ++i, ++j;
    }
  }
  return j == s.size();
}

// "{a,b}x{c,d}" -> axc, axd, bxc, bxd (nested braces included).
Status ExpandBraces(const std::string& glob, std::vector<std::string>& out) {
  std::size_t open = std::string::npos;
  int depth = 0;
  for (std::size_t i = 0; i < glob.size(); ++i) {
    if (glob[i] == '\\') {
      ++i;
    } else if (glob[i] == '{') {
      if (depth++ == 0) open = i;
    } else if (glob[i] == '}' && depth > 0 && --depth == 0) {
      std::vector<std::string> parts;
      std::string part;
      int inner = 0;
      for (std::size_t k = open + 1; k < i; ++k) {
        const char c = glob[k];
        if (c == '\\' && k + 1 < i) {
          part += c;
          part += glob[++k];
          continue;
        }
        if (c == '{') ++inner;
        if (c == '}') --inner;
        if (c == ',' && inner == 0) {
          parts.push_back(std::move(part));
          part.clear();
        } else {
          part += c;
        }
      }
      parts.push_back(std::move(part));
      if (out.size() + parts.size() > 4096) return Status::Invalid("too many {a,b} alternatives");
      for (const std::string& alt : parts) {
        SHOTSYNC_RETURN_IF_ERROR(ExpandBraces(glob.substr(0, open) + alt + glob.substr(i + 1), out));
      }
      return Status::Ok();
    }
  }
  if (depth != 0) return Status::Invalid("unclosed {");
  out.push_back(glob);
  return Status::Ok();
}

Result<FileFilter::Rule> MakeRule(bool include, std::string glob) {
  FileFilter::Rule r;
  r.include = include;
  if (glob.empty()) return Status::Invalid("empty pattern");
  if (glob.front() == '/') r.anchored = true, glob.erase(0, 1);
  if (!glob.empty() && glob.back() == '/') r.dir = true, glob.pop_back();
  if (glob.empty()) glob = "**";  // "/" alone: everything
  SHOTSYNC_RETURN_IF_ERROR(ExpandBraces(glob, r.alternatives));
  return r;
}

// "+ glob" / "- glob" / "!"; nullopt rule for "!", an error when malformed.
Status AddFilterRule(std::string_view line, std::vector<FileFilter::Rule>& rules) {
  if (line == "!") {
    rules.clear();
    return Status::Ok();
  }
  if (line.size() < 3 || (line[0] != '+' && line[0] != '-') || line[1] != ' ') {
    return Status::Invalid("expected \"+ GLOB\", \"- GLOB\" or \"!\"");
  }
  SHOTSYNC_ASSIGN_OR_RETURN(FileFilter::Rule r, MakeRule(line[0] == '+', std::string(line.substr(2))));
  rules.push_back(std::move(r));
  return Status::Ok();
}

// A date or date-time (local time), as rclone takes for --max-age.
std::optional<double> ParseDate(std::string_view text) {
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char sep = 0;
  const std::string t(text);
  const int n = std::sscanf(t.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d", &y, &mo, &d, &sep, &h, &mi, &s);
  if (n != 3 && n != 7) return std::nullopt;
  if (n == 7 && sep != ' ' && sep != 'T') return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d, tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = s;
  tm.tm_isdst = -1;
  const std::time_t at = std::mktime(&tm);
  if (at == std::time_t(-1)) return std::nullopt;
  return double(at);
}

}  // namespace

std::optional<std::int64_t> ParseSizeSuffix(std::string_view text) {
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
      {"", 1024.0},      {"b", 1},          {"B", 1},          {"k", 1024.0},     {"K", 1024.0},
      {"KiB", 1024.0},   {"m", 1048576.0},  {"M", 1048576.0},  {"MiB", 1048576.0}, {"g", 1073741824.0},
      {"G", 1073741824.0}, {"GiB", 1073741824.0}, {"t", 1099511627776.0}, {"T", 1099511627776.0},
      {"TiB", 1099511627776.0}, {"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}};
  for (const auto& [name, mult] : kUnits) {
    if (unit == name) {
      const double bytes = v * mult;
      if (!(bytes >= 0) || bytes > 9e18) return std::nullopt;
      return std::int64_t(bytes);
    }
  }
  return std::nullopt;
}

std::optional<double> ParseAgeSeconds(std::string_view text) {
  double total = 0;
  std::size_t at = 0;
  if (text.empty()) return std::nullopt;
  while (at < text.size()) {
    std::size_t end = at;
    while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) ++end;
    if (end == at) return std::nullopt;
    double v = 0;
    try {
      v = std::stod(std::string(text.substr(at, end - at)));
    } catch (const std::exception&) {  // std::stod reports bad numbers by exception
      return std::nullopt;
    }
    at = end;
    double unit = 1;
    const std::string_view rest = text.substr(at);
    if (rest.empty()) {
      if (total > 0) return std::nullopt;  // "1h30": a unit after the first part
    } else if (rest.starts_with("ms")) {
      unit = 0.001, at += 2;
    } else {
      switch (rest[0]) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        case 'M': unit = 30 * 86400; break;
        case 'y': unit = 365 * 86400; break;
        default: return std::nullopt;
      }
      ++at;
    }
    total += v * unit;
  }
  if (!std::isfinite(total) || total > 1e11) return std::nullopt;
  return total;
}

Result<FileFilter> FileFilter::Make(const FilterSpec& spec, double now_s) {
  FileFilter f;
  f.ignore_case_ = spec.ignore_case;
  auto bad = [](const std::string& flag, const std::string& value, const std::string& why) {
    return Status::Invalid(flag + " \"" + value + "\": " + why);
  };
  for (const std::string& g : spec.include) {
    auto r = MakeRule(true, g);
    if (!r.ok()) return bad("--include", g, r.status().message());
    f.rules_.push_back(std::move(*r));
  }
  for (const std::string& g : spec.exclude) {
    auto r = MakeRule(false, g);
    if (!r.ok()) return bad("--exclude", g, r.status().message());
    f.rules_.push_back(std::move(*r));
  }
  for (const std::string& line : spec.filter) {
    if (Status st = AddFilterRule(line, f.rules_); !st.ok()) return bad("--filter", line, st.message());
  }
  for (const std::string& path : spec.filter_from) {
    std::ifstream in(path);
    if (!in) return Status::Invalid("--filter-from " + path + ": cannot be read");
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      // rclone trims each line and skips blank and comment lines.
      const auto b = line.find_first_not_of(" \t\r");
      if (b == std::string::npos || line[b] == '#' || line[b] == ';') continue;
      line = line.substr(b, line.find_last_not_of(" \t\r") + 1 - b);
      if (Status st = AddFilterRule(line, f.rules_); !st.ok()) {
        return Status::Invalid(path + ":" + std::to_string(n) + ": " + st.message());
      }
    }
  }
  if (!spec.include.empty()) f.rules_.push_back(*MakeRule(false, "/**"));
  auto age = [&](const std::string& flag, const std::string& value) -> Result<std::optional<std::int64_t>> {
    if (value.empty() || value == "off") return std::optional<std::int64_t>();
    std::optional<double> at;
    if (auto s = ParseAgeSeconds(value)) at = now_s - *s;
    else at = ParseDate(value);
    if (!at) return bad(flag, value, "expected an age like 24h, 7d, 2w, 1M or a date like 2026-01-31");
    return std::optional<std::int64_t>(std::int64_t(*at * 1e9));
  };
  SHOTSYNC_ASSIGN_OR_RETURN(f.min_mtime_ns_, age("--max-age", spec.max_age));
  SHOTSYNC_ASSIGN_OR_RETURN(f.max_mtime_ns_, age("--min-age", spec.min_age));
  auto size = [&](const std::string& flag, const std::string& value) -> Result<std::optional<std::uint64_t>> {
    if (value.empty() || value == "off") return std::optional<std::uint64_t>();
    auto s = ParseSizeSuffix(value);
    if (!s) return bad(flag, value, "expected a size like 10M, 500k or 20MB");
    return std::optional<std::uint64_t>(std::uint64_t(*s));
  };
  SHOTSYNC_ASSIGN_OR_RETURN(f.max_size_, size("--max-size", spec.max_size));
  SHOTSYNC_ASSIGN_OR_RETURN(f.min_size_, size("--min-size", spec.min_size));
  return f;
}

bool FileFilter::Matches(const Rule& rule, std::string_view path) const {
  for (const std::string& alt : rule.alternatives) {
    if (rule.anchored) {
      if (GlobMatch(alt, path, ignore_case_)) return true;
      continue;
    }
    // Unanchored: the end of the path, starting at a segment boundary.
    for (std::size_t at = 0;;) {
      if (GlobMatch(alt, path.substr(at), ignore_case_)) return true;
      const auto slash = path.find('/', at);
      if (slash == std::string_view::npos) break;
      at = slash + 1;
    }
  }
  return false;
}

bool FileFilter::Admits(std::string_view rel_path, std::uint64_t size, std::int64_t mtime_ns) const {
  if (max_size_ && size > *max_size_) return false;
  if (min_size_ && size < *min_size_) return false;
  if (min_mtime_ns_ && mtime_ns < *min_mtime_ns_) return false;
  if (max_mtime_ns_ && mtime_ns > *max_mtime_ns_) return false;
  for (const Rule& r : rules_) {
    if (!r.dir && Matches(r, rel_path)) return r.include;
  }
  return true;
}

bool FileFilter::AdmitsDir(std::string_view rel_path) const {
  for (const Rule& r : rules_) {
    if (r.dir && Matches(r, rel_path)) return r.include;
  }
  return true;
}

}  // namespace shotsync
