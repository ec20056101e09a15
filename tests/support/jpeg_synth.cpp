#include "jpeg_synth.hpp"

#include <cstdio>
#include <cstdlib>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>

namespace shotsync::testing {
namespace {

// splitmix64: tiny, fast, good enough for pixel noise.
std::uint64_t Mix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<std::uint8_t> SynthJpeg(const JpegSpec& spec) {
  jpeg_compress_struct cinfo{};
  jpeg_error_mgr jerr{};
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);

  unsigned char* out = nullptr;  // owned by libjpeg's mem dest until we free it
  unsigned long out_size = 0;
  jpeg_mem_dest(&cinfo, &out, &out_size);

  cinfo.image_width = static_cast<JDIMENSION>(spec.width);
  cinfo.image_height = static_cast<JDIMENSION>(spec.height);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, spec.quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);

  std::uint64_t s = spec.seed * 0x2545F4914F6CDD1DULL + 7;
  const int r0 = int(Mix(s) % 200), g0 = int(Mix(s) % 200), b0 = int(Mix(s) % 200);
  std::vector<unsigned char> row(static_cast<std::size_t>(spec.width) * 3);
  const int amp = spec.noise > 0 ? spec.noise : 0;
  while (cinfo.next_scanline < cinfo.image_height) {
    const int y = int(cinfo.next_scanline);
    for (int x = 0; x < spec.width; ++x) {
      std::uint64_t n = amp ? Mix(s) : 0;
      auto px = [&](int base, int shift) {
        int v = base + (x * 55) / (spec.width ? spec.width : 1) + (y * 55) / (spec.height ? spec.height : 1);
        if (amp) v += int((n >> shift) % unsigned(2 * amp + 1)) - amp;
        return static_cast<unsigned char>(v < 0 ? 0 : v > 255 ? 255 : v);
      };
      row[std::size_t(x) * 3 + 0] = px(r0, 0);
      row[std::size_t(x) * 3 + 1] = px(g0, 16);
      row[std::size_t(x) * 3 + 2] = px(b0, 32);
    }
    JSAMPROW rp = row.data();
    jpeg_write_scanlines(&cinfo, &rp, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::vector<std::uint8_t> bytes(out, out + out_size);
  jpeg_destroy_compress(&cinfo);
  std::free(out);
  return bytes;
}

}  // namespace shotsync::testing
