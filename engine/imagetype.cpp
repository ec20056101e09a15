#include "shotsync/imagetype.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "shotsync/fd.hpp"

namespace shotsync {
namespace {

bool StartsWith(std::span<const std::uint8_t> s, std::string_view magic, std::size_t at = 0) {
  if (s.size() < at + magic.size()) return false;
  return std::memcmp(s.data() + at, magic.data(), magic.size()) == 0;
}

std::uint32_t Le32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
         std::uint32_t(p[3]) << 24;
}
std::uint32_t Be32(const std::uint8_t* p) {
  return std::uint32_t(p[3]) | std::uint32_t(p[2]) << 8 | std::uint32_t(p[1]) << 16 |
         std::uint32_t(p[0]) << 24;
}

bool JpegComplete(std::span<const std::uint8_t> tail) {
  // EOI (FF D9) must be at the end; encoders and cameras sometimes pad a few
  // bytes after it, so accept it anywhere in the last 32 bytes.
  const std::size_t n = tail.size();
  const std::size_t from = n > 32 ? n - 32 : 0;
  for (std::size_t i = n; i-- > from + 1;) {
    if (tail[i - 1] == 0xFF && tail[i] == 0xD9) return true;
  }
  return false;
}

bool IsHeifBrand(std::string_view brand) {
  static constexpr std::array<std::string_view, 8> kBrands = {"heic", "heix", "hevc", "hevx",
                                                              "heim", "heis", "mif1", "msf1"};
  return std::find(kBrands.begin(), kBrands.end(), brand) != kBrands.end();
}

}  // namespace

std::string_view ImageTypeName(ImageType type) noexcept {
  switch (type) {
    case ImageType::kJpeg: return "jpeg";
    case ImageType::kPng: return "png";
    case ImageType::kGif: return "gif";
    case ImageType::kWebp: return "webp";
    case ImageType::kHeif: return "heif";
    case ImageType::kTiff: return "tiff";
    case ImageType::kUnknown: break;
  }
  return "unknown";
}

ImageType SniffImage(std::span<const std::uint8_t> head, std::span<const std::uint8_t> tail,
                     std::uint64_t total_size) noexcept {
  if (head.size() < 12 || tail.empty()) return ImageType::kUnknown;
  if (head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF) {
    return JpegComplete(tail) ? ImageType::kJpeg : ImageType::kUnknown;
  }
  if (StartsWith(head, "\x89PNG\r\n\x1a\n")) {
    static constexpr std::string_view kIend("IEND\xAE\x42\x60\x82", 8);
    if (tail.size() < kIend.size()) return ImageType::kUnknown;
    return StartsWith(tail, kIend, tail.size() - kIend.size()) ? ImageType::kPng
                                                               : ImageType::kUnknown;
  }
  if (StartsWith(head, "GIF87a") || StartsWith(head, "GIF89a")) {
    return tail.back() == 0x3B ? ImageType::kGif : ImageType::kUnknown;
  }
  if (StartsWith(head, "RIFF") && StartsWith(head, "WEBP", 8)) {
    // RIFF length counts everything after the first 8 bytes.
    return std::uint64_t(Le32(head.data() + 4)) + 8 <= total_size ? ImageType::kWebp
                                                                  : ImageType::kUnknown;
  }
  if (StartsWith(head, "II*\0") || StartsWith(head, std::string_view("MM\0*", 4))) {
    const bool le = head[0] == 'I';
    const std::uint32_t ifd = le ? Le32(head.data() + 4) : Be32(head.data() + 4);
    return ifd >= 8 && ifd + 2 <= total_size ? ImageType::kTiff : ImageType::kUnknown;
  }
  if (StartsWith(head, "ftyp", 4)) {
    const std::uint32_t box = Be32(head.data());
    if (box < 16 || box > total_size) return ImageType::kUnknown;
    if (IsHeifBrand({reinterpret_cast<const char*>(head.data() + 8), 4})) return ImageType::kHeif;
    for (std::uint32_t off = 16; off + 4 <= box && off + 4 <= head.size(); off += 4) {
      if (IsHeifBrand({reinterpret_cast<const char*>(head.data() + off), 4})) {
        return ImageType::kHeif;
      }
    }
  }
  return ImageType::kUnknown;
}

Result<ImageType> SniffImageFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::Io(path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::Io(path, errno);
  std::array<std::uint8_t, kSniffHeadBytes> head{};
  std::array<std::uint8_t, kSniffTailBytes> tail{};
  const ssize_t h = ::pread(fd.get(), head.data(), head.size(), 0);
  if (h < 0) return Status::Io(path, errno);
  const off_t tail_off = st.st_size > off_t(tail.size()) ? st.st_size - off_t(tail.size()) : 0;
  const ssize_t t = ::pread(fd.get(), tail.data(), tail.size(), tail_off);
  if (t < 0) return Status::Io(path, errno);
  return SniffImage({head.data(), std::size_t(h)}, {tail.data(), std::size_t(t)},
                    std::uint64_t(st.st_size));
}

}  // namespace shotsync
