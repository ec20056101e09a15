// Helpers shared by the fuzz targets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace shotsync::fuzz {

// abort() with a note: libFuzzer reports it as a crash and saves the input.
[[noreturn]] inline void Violated(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz contract violated: %s: %.*s\n", what, int(detail.size() > 300 ? 300 : detail.size()),
               detail.data());
  std::abort();
}

// One line, nothing a terminal would interpret.
inline bool Printable(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// Reads the input from the front: bytes for choices, the rest as text.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  std::uint8_t Byte() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  // Up to the next '\n' (not included), or everything left.
  std::string_view Line() {
    std::size_t i = 0;
    while (i < n_ && p_[i] != '\n') ++i;
    std::string_view out(reinterpret_cast<const char*>(p_), i);
    const std::size_t used = i < n_ ? i + 1 : i;
    p_ += used;
    n_ -= used;
    return out;
  }
  std::string_view Rest() {
    std::string_view out(reinterpret_cast<const char*>(p_), n_);
    p_ += n_;
    n_ = 0;
    return out;
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

}  // namespace shotsync::fuzz
