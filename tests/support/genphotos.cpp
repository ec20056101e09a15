// shotsync-genphotos: writes deterministic, decodable sample JPEGs.
//   shotsync-genphotos DIR [--count N] [--width W] [--height H] [--noise A]
//                      [--seed S] [--per-dir K] [--prefix IMG_]
// Files go into DIR/day01, DIR/day02, ... (K per folder) as IMG_0001.jpg, ...
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "jpeg_synth.hpp"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: shotsync-genphotos DIR [--count N] [--width W] [--height H] [--noise A] "
                 "[--seed S] [--per-dir K] [--prefix P]\n");
    return 2;
  }
  fs::path dir = argv[1];
  int count = 20, width = 2400, height = 1600, noise = 24, per_dir = 25;
  unsigned long long seed = 1;
  std::string prefix = "IMG_";
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--count") count = std::atoi(v);
    else if (k == "--width") width = std::atoi(v);
    else if (k == "--height") height = std::atoi(v);
    else if (k == "--noise") noise = std::atoi(v);
    else if (k == "--seed") seed = std::strtoull(v, nullptr, 10);
    else if (k == "--per-dir") per_dir = std::atoi(v);
    else if (k == "--prefix") prefix = v;
    else {
      std::fprintf(stderr, "shotsync-genphotos: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (count < 0 || width < 8 || height < 8 || per_dir < 1) {
    std::fprintf(stderr, "shotsync-genphotos: bad sizes\n");
    return 2;
  }
  std::uint64_t total = 0;
  for (int i = 0; i < count; ++i) {
    char sub[32], name[96];
    std::snprintf(sub, sizeof sub, "day%02d", i / per_dir + 1);
    std::snprintf(name, sizeof name, "%s%04d.jpg", prefix.c_str(), i + 1);
    const fs::path folder = dir / sub;
    std::error_code ec;
    fs::create_directories(folder, ec);
    if (ec) {
      std::fprintf(stderr, "shotsync-genphotos: %s: %s\n", folder.c_str(), ec.message().c_str());
      return 1;
    }
    const auto bytes = shotsync::testing::SynthJpeg(
        {.width = width, .height = height, .quality = 90, .noise = noise, .seed = seed + i});
    std::ofstream out(folder / name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "shotsync-genphotos: %s: %s\n", (folder / name).c_str(),
                   std::strerror(errno));
      return 1;
    }
    total += bytes.size();
  }
  std::printf("%d photos, %.1f MB in %s\n", count, double(total) / 1e6, dir.c_str());
  return 0;
}
