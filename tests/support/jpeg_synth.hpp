// Deterministic, decodable JPEG images for tests, the demo and the emulator's
// generated headshots. The picture is a smooth gradient with seeded noise so
// that files compress to realistic sizes (about 0.3 bytes/pixel at q=90 with
// noise) and no two seeds give the same bytes.
#pragma once

#include <cstdint>
#include <vector>

namespace shotsync::testing {

struct JpegSpec {
  int width = 640;
  int height = 480;
  int quality = 90;
  int noise = 24;          // 0..127 amplitude of per-pixel noise (more = bigger file)
  std::uint64_t seed = 1;
};

std::vector<std::uint8_t> SynthJpeg(const JpegSpec& spec);

}  // namespace shotsync::testing
