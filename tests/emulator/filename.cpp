// Server-side filename normalisation modes; see filename.hpp.
#include "filename.hpp"

#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utypes.h>

#include <cctype>
#include <climits>
#include <vector>

namespace emu {
namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

// One step in canonical form, or "" when invalid.
std::string Step(const std::string& step) {
  if (step == "exact" || step == "basename" || step == "nfc") return step;
  const std::string prefix = "truncate:";
  if (step.rfind(prefix, 0) != 0) return "";
  const std::string digits = step.substr(prefix.size());
  if (digits.empty() || digits.size() > 9) return "";
  for (char c : digits) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return "";
  }
  const long n = std::stol(digits);
  if (n < 1) return "";
  return prefix + std::to_string(n);
}

// The first `n` bytes, shortened further so that no UTF-8 sequence is cut.
std::string TruncateUtf8(const std::string& s, std::size_t n) {
  if (s.size() <= n) return s;
  std::size_t cut = n;
  // s[cut] is the first byte dropped: while it continues a sequence, the
  // sequence it belongs to started inside the kept part; drop that too.
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut);
}

}  // namespace

std::optional<std::string> ParseFilenameMode(const std::string& mode, std::string* error) {
  std::string m = mode == "basename_nfc" ? "basename+nfc" : mode;
  if (m.empty()) m = "exact";
  std::string canonical;
  for (const std::string& raw : Split(m, '+')) {
    const std::string step = raw == "basename_nfc" ? "basename+nfc" : Step(raw);
    if (step.empty()) {
      if (error) {
        *error = "filename_mode: unknown step \"" + raw +
                 "\" (exact, basename, nfc, basename_nfc, truncate:N, joined by '+')";
      }
      return std::nullopt;
    }
    if (step == "exact") continue;
    if (!canonical.empty()) canonical += '+';
    canonical += step;
  }
  if (canonical.empty()) return std::string("exact");
  if (canonical == "basename+nfc") return std::string("basename_nfc");  // the documented spelling
  return canonical;
}

std::optional<std::string> NfcUtf8(const std::string& utf8) {
  if (utf8.size() > INT32_MAX / 4) return std::nullopt;
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* nfc = unorm2_getNFCInstance(&err);
  if (U_FAILURE(err)) return std::nullopt;
  // UTF-8 -> UTF-16 (ICU's native form); invalid UTF-8 is an error, not U+FFFD.
  int32_t len16 = 0;
  err = U_ZERO_ERROR;
  u_strFromUTF8(nullptr, 0, &len16, utf8.data(), int32_t(utf8.size()), &err);
  if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err)) return std::nullopt;
  std::vector<UChar> src(std::size_t(len16) + 1);
  err = U_ZERO_ERROR;
  u_strFromUTF8(src.data(), int32_t(src.size()), &len16, utf8.data(), int32_t(utf8.size()), &err);
  if (U_FAILURE(err)) return std::nullopt;
  err = U_ZERO_ERROR;
  if (unorm2_isNormalized(nfc, src.data(), len16, &err) && U_SUCCESS(err)) return utf8;
  // Normalise (NFC can grow a string: preflight for the size).
  err = U_ZERO_ERROR;
  const int32_t need = unorm2_normalize(nfc, src.data(), len16, nullptr, 0, &err);
  if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err)) return std::nullopt;
  std::vector<UChar> dst(std::size_t(need) + 1);
  err = U_ZERO_ERROR;
  const int32_t got = unorm2_normalize(nfc, src.data(), len16, dst.data(), int32_t(dst.size()), &err);
  if (U_FAILURE(err)) return std::nullopt;
  // UTF-16 -> UTF-8.
  int32_t len8 = 0;
  err = U_ZERO_ERROR;
  u_strToUTF8(nullptr, 0, &len8, dst.data(), got, &err);
  if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err)) return std::nullopt;
  std::string out(std::size_t(len8), '\0');
  err = U_ZERO_ERROR;
  u_strToUTF8(out.data(), int32_t(out.size()), &len8, dst.data(), got, &err);
  if (U_FAILURE(err) && err != U_STRING_NOT_TERMINATED_WARNING) return std::nullopt;
  out.resize(std::size_t(len8));
  return out;
}

std::string NormaliseFilename(const std::string& name, const std::string& mode) {
  if (mode.empty() || mode == "exact") return name;
  std::string out = name;
  for (const std::string& step : Split(mode == "basename_nfc" ? "basename+nfc" : mode, '+')) {
    if (step == "basename") {
      const std::size_t slash = out.rfind('/');
      if (slash != std::string::npos && slash + 1 < out.size()) out = out.substr(slash + 1);
    } else if (step == "nfc") {
      if (auto n = NfcUtf8(out)) out = *n;
    } else if (step.rfind("truncate:", 0) == 0) {
      const std::string t = TruncateUtf8(out, std::size_t(std::stoul(step.substr(9))));
      if (!t.empty()) out = t;
    }
  }
  return out;
}

}  // namespace emu
