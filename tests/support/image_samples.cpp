#include "image_samples.hpp"

namespace shotsync::testing {
// An ISO-BMFF box: 32-bit size, type, payload.
std::string Box(const std::string& type, const std::string& payload) {
  const std::size_t size = 8 + payload.size();
  std::string b;
  b += static_cast<char>((size >> 24) & 0xFF);
  b += static_cast<char>((size >> 16) & 0xFF);
  b += static_cast<char>((size >> 8) & 0xFF);
  b += static_cast<char>(size & 0xFF);
  return b + type + payload;
}

// A minimal valid 1x1 PNG (8-bit grayscale).
std::string Png1x1() {
  static const unsigned char k[] = {
      0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
      0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3A,
      0x7E, 0x9B, 0x55, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x60,
      0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x48, 0xAF, 0xA4, 0x71, 0x00, 0x00, 0x00, 0x00, 0x49,
      0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82};
  return std::string(reinterpret_cast<const char*>(k), sizeof k);
}

// A minimal valid 1x1 uncompressed grayscale little-endian TIFF.
std::string Tiff1x1() {
  std::string t = {'I', 'I', 42, 0, 8, 0, 0, 0};
  auto u16 = [&](unsigned v) {
    t += static_cast<char>(v & 0xFF);
    t += static_cast<char>((v >> 8) & 0xFF);
  };
  auto u32 = [&](unsigned v) {
    u16(v & 0xFFFF);
    u16(v >> 16);
  };
  const unsigned entries = 8;
  const unsigned pixel_offset = 8 + 2 + entries * 12 + 4;
  u16(entries);
  auto entry = [&](unsigned tag, unsigned type, unsigned value) {
    u16(tag);
    u16(type);
    u32(1);
    if (type == 3) {
      u16(value);
      u16(0);
    } else {
      u32(value);
    }
  };
  entry(256, 3, 1);             // ImageWidth
  entry(257, 3, 1);             // ImageLength
  entry(258, 3, 8);             // BitsPerSample
  entry(259, 3, 1);             // Compression: none
  entry(262, 3, 1);             // Photometric: BlackIsZero
  entry(273, 4, pixel_offset);  // StripOffsets
  entry(278, 3, 1);             // RowsPerStrip
  entry(279, 4, 1);             // StripByteCounts
  u32(0);                       // no next IFD
  t += static_cast<char>(0x80);  // the pixel
  return t;
}

// The smallest lossless WebP (1x1).
std::string Webp1x1() {
  static const unsigned char k[] = {0x52, 0x49, 0x46, 0x46, 0x1A, 0x00, 0x00, 0x00, 0x57, 0x45, 0x42, 0x50,
                                    0x56, 0x50, 0x38, 0x4C, 0x0D, 0x00, 0x00, 0x00, 0x2F, 0x00, 0x00, 0x00,
                                    0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xFE, 0x07, 0x00};
  return std::string(reinterpret_cast<const char*>(k), sizeof k);
}

// A minimal HEIF-family file: ftyp (major brand + compatible brands), meta
// with a 'pict' handler, and an mdat.
std::string Bmff(const std::string& major, const std::vector<std::string>& compatible, bool with_meta) {
  std::string ftyp = major + std::string(4, '\0');
  for (const auto& c : compatible) ftyp += c;
  std::string hdlr = std::string(4, '\0') + std::string(4, '\0') + "pict" + std::string(12, '\0') + std::string(1, '\0');
  std::string meta = std::string(4, '\0') + Box("hdlr", hdlr);
  std::string out = Box("ftyp", ftyp);
  if (with_meta) out += Box("meta", meta);
  return out + Box("mdat", std::string(16, '\x5A'));
}

}  // namespace shotsync::testing
