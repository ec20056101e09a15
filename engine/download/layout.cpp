// Layout expansion and name safety: turning server-supplied names into a
// path under dest that is safe on any file system (pull.hpp, "Name safety").
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <set>
#include <string>

#include "shotsync/pull.hpp"
#include "shotsync/shootbin.hpp"  // SimpleCaseFold
#include "util/json_util.hpp"

namespace shotsync {

// ------------------------------------------------------------ name safety

namespace {

bool IsReservedDeviceName(std::string_view s) {
  // Windows device names, with or without an extension (a NAS share may refuse them).
  std::string stem(s.substr(0, s.find('.')));
  for (char& c : stem) c = char(std::toupper(static_cast<unsigned char>(c)));
  while (!stem.empty() && stem.back() == ' ') stem.pop_back();
  static const char* kNames[] = {"CON", "PRN", "AUX", "NUL"};
  for (const char* n : kNames) {
    if (stem == n) return true;
  }
  if (stem.size() == 4 && (stem.compare(0, 3, "COM") == 0 || stem.compare(0, 3, "LPT") == 0) &&
      stem[3] >= '1' && stem[3] <= '9') {
    return true;
  }
  return false;
}

// Length of the valid UTF-8 sequence at s[i], 0 when invalid.
std::size_t Utf8Len(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  }
  if (n == 2 && c < 0xc2) return 0;  // overlong
  return n;
}

std::string Clean(std::string_view raw, std::size_t max_bytes) {
  std::string out;
  for (std::size_t i = 0; i < raw.size();) {
    const auto c = static_cast<unsigned char>(raw[i]);
    const std::size_t n = Utf8Len(raw, i);
    if (n == 0) {  // invalid byte
      out += '_';
      ++i;
      continue;
    }
    if (n == 1) {
      if (c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == ':' || c == '*' || c == '?' ||
          c == '"' || c == '<' || c == '>' || c == '|') {
        out += '_';
      } else {
        out += char(c);
      }
    } else if (n == 2 && c == 0xc2 && static_cast<unsigned char>(raw[i + 1]) < 0xa0) {
      out += '_';  // C1 control characters
    } else {
      if (out.size() + n > max_bytes) break;
      out.append(raw.substr(i, n));
    }
    i += n;
    if (out.size() >= max_bytes) break;
  }
  if (out.size() > max_bytes) out.resize(max_bytes);
  // No leading dots/spaces (never "." or "..", never hidden), no trailing dots/spaces.
  std::size_t b = 0;
  while (b < out.size() && (out[b] == '.' || out[b] == ' ')) ++b;
  std::size_t e = out.size();
  while (e > b && (out[e - 1] == '.' || out[e - 1] == ' ')) --e;
  out = out.substr(b, e - b);
  if (!out.empty() && IsReservedDeviceName(out)) out = "_" + out;
  return out;
}

}  // namespace

std::string SanitizeComponent(std::string_view raw, std::string_view fallback, std::size_t max_bytes) {
  max_bytes = std::clamp<std::size_t>(max_bytes, 8, 200);
  std::string out = Clean(raw, max_bytes);
  if (out.empty()) out = Clean(fallback, max_bytes);
  if (out.empty()) out = "_";
  return out;
}

std::string UrlExtension(std::string_view url) {
  auto q = url.find_first_of("?#");
  std::string_view path = url.substr(0, q);
  const auto slash = path.rfind('/');
  if (slash != std::string_view::npos) path = path.substr(slash + 1);
  const auto dot = path.rfind('.');
  if (dot == std::string_view::npos || dot + 1 >= path.size()) return "jpg";
  std::string ext(path.substr(dot + 1));
  if (ext.size() > 5) return "jpg";
  for (char& c : ext) {
    c = char(std::tolower(static_cast<unsigned char>(c)));
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return "jpg";
  }
  return ext;
}

namespace {
const std::set<std::string>& LayoutVariables() {
  static const std::set<std::string> kVars = {"member", "member_id", "email", "team",  "model",
                                               "model_title", "photo", "ext",  "variant"};
  return kVars;
}
}  // namespace

Status ValidateLayout(std::string_view layout) {
  // The layout may hold any bytes (the fuzzer found control characters): quote it printable.
  const std::string where = "headshotpro.layout \"" + json::Printable(layout, 120) + "\": ";
  if (layout.empty() || layout.front() == '/') return Status::Invalid(where + "must be a relative path");
  if (layout.find("{photo}") == std::string_view::npos) return Status::Invalid(where + "must contain {photo}");
  std::size_t start = 0;
  while (start <= layout.size()) {
    auto end = layout.find('/', start);
    if (end == std::string_view::npos) end = layout.size();
    std::string_view seg = layout.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") {
      return Status::Invalid(where + "has an empty, \".\" or \"..\" segment");
    }
    for (std::size_t i = 0; i < seg.size(); ++i) {
      if (seg[i] == '\\' || static_cast<unsigned char>(seg[i]) < 0x20) {
        return Status::Invalid(where + "has a backslash or control character");
      }
      if (seg[i] != '{') continue;
      const auto close = seg.find('}', i);
      if (close == std::string_view::npos) return Status::Invalid(where + "has an unclosed {");
      const std::string var(seg.substr(i + 1, close - i - 1));
      if (!LayoutVariables().count(var)) {
        return Status::Invalid(where + "unknown variable {" + json::Printable(var, 40) +
                               "} (known: member, member_id, email, team, model, model_title, photo, ext, variant)");
      }
      i = close;
    }
    start = end + 1;
  }
  return Status::Ok();
}

namespace {

// FNV-1a: a short, stable tag of a raw server value (not a security measure).
std::string HashTag(std::string_view raw) {
  std::uint32_t h = 2166136261u;
  for (char c : raw) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  static const char kHex[] = "0123456789abcdef";
  std::string out(8, '0');
  for (int i = 7; i >= 0; --i, h >>= 4) out[std::size_t(i)] = kHex[h & 0xf];
  return out;
}

// {photo}: the id itself when it is safe as it is and has no upper case (real
// ids are lower-case hex). Otherwise sanitising or a case-insensitive file
// system could give two ids one name: a tag of the raw id keeps them apart,
// whichever is listed first.
std::string PhotoValue(std::string_view id) {
  std::string out = SanitizeComponent(id);
  if (out == id && SimpleCaseFold(out) == out) return out;
  std::string tagged = SanitizeComponent(id, {}, 90);
  tagged += '-';
  tagged += HashTag(id);
  return tagged;
}

std::string MemberBase(std::string_view name, std::string_view email, std::string_view id) {
  return SanitizeComponent(name, SanitizeComponent(email, id));
}

}  // namespace

bool LayoutNeedsMemberFolders(std::string_view layout) {
  return layout.find("{member}") != std::string_view::npos && layout.find("{member_id}") == std::string_view::npos &&
         layout.find("{email}") == std::string_view::npos && layout.find("{model}") == std::string_view::npos;
}

std::map<std::string, std::string> MemberFolders(const std::vector<LayoutMember>& listed) {
  // Everything below depends on counts over the whole set, never on its order.
  std::map<std::string, const LayoutMember*> members;  // by id (a member listed twice counts once)
  for (const LayoutMember& m : listed) members.emplace(m.id, &m);
  const auto fold_of = [](const LayoutMember& m) { return SimpleCaseFold(MemberBase(m.name, m.email, m.id)); };
  const auto email_key = [](const std::string& fold, const LayoutMember& m) {
    std::string key = fold;
    key += '\n';
    key += SimpleCaseFold(m.email);
    return key;
  };
  std::map<std::string, int> name_count, email_count;
  for (const auto& [id, m] : members) ++name_count[fold_of(*m)];
  for (const auto& [id, m] : members) ++email_count[email_key(fold_of(*m), *m)];
  const auto tagged = [](const LayoutMember& m, std::string_view raw_tag) {
    const std::string tag = SanitizeComponent(raw_tag, {}, 60);
    // The name is shortened first so that ExpandLayout's 100-byte limit never cuts the tag.
    std::string out = SanitizeComponent(MemberBase(m.name, m.email, m.id), {}, 100 - 3 - tag.size());
    out += " (";
    out += tag;
    out += ')';
    return out;
  };
  std::map<std::string, std::string> out;
  for (const auto& [id, m] : members) {
    const std::string fold = fold_of(*m);
    if (name_count[fold] == 1) {
      out[id] = MemberBase(m->name, m->email, m->id);
      continue;
    }
    // The email tells the member apart unless another of the same name has it
    // too, or it is the name already (a member without a name): else the id.
    const bool email_tells = !m->email.empty() && email_count[email_key(fold, *m)] == 1 &&
                             SimpleCaseFold(m->email) != fold;
    out[id] = tagged(*m, email_tells ? std::string_view(m->email) : std::string_view(id));
  }
  // A tagged name may be someone else's plain name ("Jane Doe (jane@x.com)"):
  // then the tagged ones fall back to their ids, which are unique.
  std::map<std::string, int> label_count;
  for (const auto& [id, label] : out) ++label_count[SimpleCaseFold(label)];
  for (const auto& [id, m] : members) {
    if (name_count[fold_of(*m)] > 1 && label_count[SimpleCaseFold(out[id])] > 1) out[id] = tagged(*m, id);
  }
  return out;
}

std::map<std::string, std::string> LayoutValues(const LayoutSubject& s, bool variant_in_layout) {
  const std::string suffix = s.variant != "main" && !variant_in_layout ? "_" + std::string(s.variant) : "";
  return {{"member", MemberBase(s.member_name, s.email, s.member_id)},
          {"member_id", SanitizeComponent(s.member_id)},
          {"email", SanitizeComponent(s.email, s.member_id)},
          {"team", SanitizeComponent(s.team, "no-team")},
          {"model", SanitizeComponent(s.model_id)},
          {"model_title", SanitizeComponent(s.model_title, s.model_id)},
          {"photo", PhotoValue(s.photo_id) + suffix},
          {"ext", UrlExtension(s.url)},
          {"variant", SanitizeComponent(s.variant)}};
}

Result<std::string> ExpandLayout(std::string_view layout, const std::map<std::string, std::string>& vars) {
  SHOTSYNC_RETURN_IF_ERROR(ValidateLayout(layout));
  std::string out;
  std::size_t start = 0;
  while (start <= layout.size()) {
    auto end = layout.find('/', start);
    if (end == std::string_view::npos) end = layout.size();
    std::string_view seg = layout.substr(start, end - start);
    std::string expanded;
    for (std::size_t i = 0; i < seg.size(); ++i) {
      if (seg[i] != '{') {
        expanded += seg[i];
        continue;
      }
      const auto close = seg.find('}', i);
      const std::string var(seg.substr(i + 1, close - i - 1));
      auto it = vars.find(var);
      expanded += SanitizeComponent(it == vars.end() ? std::string_view() : std::string_view(it->second));
      i = close;
    }
    // The literal parts come from the config, the values are clean; check the result anyway.
    if (expanded.empty() || expanded == "." || expanded == ".." || expanded.size() > 255 ||
        expanded.find('\0') != std::string::npos) {
      return Status::Invalid("layout gives an unusable path segment \"" + SanitizeComponent(expanded) + "\"");
    }
    if (!out.empty()) out += '/';
    out += expanded;
    start = end + 1;
  }
  if (out.size() > 3000) return Status::Invalid("layout gives a path longer than 3000 bytes");
  return out;
}

bool PathInside(std::string_view path, std::string_view root) {
  if (root == "/") return !path.empty() && path.front() == '/';
  if (path.size() < root.size() || path.compare(0, root.size(), root) != 0) return false;
  return path.size() == root.size() || path[root.size()] == '/';
}

}  // namespace shotsync
