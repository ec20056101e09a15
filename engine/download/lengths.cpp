// The lengths a CDN answer states (Content-Range's total, Content-Length):
// pure parsers of untrusted headers, fuzzed in tests/fuzz (a file of their
// own so that the fuzz build needs no more of the pull run).
#include <cstdlib>

#include "shotsync/pull.hpp"
#include "shotsync/transfer.hpp"

namespace shotsync {

std::optional<std::uint64_t> RangeTotal(const std::string& v) {
  const auto slash = v.rfind('/');
  if (slash == std::string::npos || slash + 1 >= v.size() || v[slash + 1] == '*') return std::nullopt;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v.c_str() + slash + 1, &end, 10);
  if (end == v.c_str() + slash + 1) return std::nullopt;
  return std::uint64_t(n);
}

std::optional<std::uint64_t> ContentLength(const HttpResponse& r) {
  const std::string v = r.Header("content-length");
  if (v.empty()) return std::nullopt;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (end == v.c_str()) return std::nullopt;
  return std::uint64_t(n);
}

}  // namespace shotsync

