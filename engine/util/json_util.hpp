// Defensive JSON access for server answers: a hostile or broken server must
// produce an error value, never an exception or a crash.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace shotsync::json {

using Json = nlohmann::json;

// Parses without exceptions; nullopt for invalid JSON.
inline std::optional<Json> Parse(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

inline const Json* Field(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

inline std::string String(const Json& obj, std::string_view key) {
  const Json* f = Field(obj, key);
  return f && f->is_string() ? f->get<std::string>() : std::string();
}

inline std::optional<std::int64_t> Int(const Json& obj, std::string_view key) {
  const Json* f = Field(obj, key);
  if (!f) return std::nullopt;
  if (f->is_number_integer()) return f->get<std::int64_t>();
  if (f->is_number_unsigned()) {
    const auto u = f->get<std::uint64_t>();
    if (u > std::uint64_t(INT64_MAX)) return std::nullopt;
    return std::int64_t(u);
  }
  return std::nullopt;
}

inline bool Bool(const Json& obj, std::string_view key, bool fallback = false) {
  const Json* f = Field(obj, key);
  return f && f->is_boolean() ? f->get<bool>() : fallback;
}

// One line, bounded, no control characters, no trailing blanks: safe to
// print what a server (or a user) said.
inline std::string Printable(std::string_view s, std::size_t max = 300) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    out += (c < 0x20 || c == 0x7f) ? ' ' : char(c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace shotsync::json
