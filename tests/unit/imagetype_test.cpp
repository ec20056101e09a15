#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "jpeg_synth.hpp"
#include "shotsync/imagetype.hpp"
#include "temp_dir.hpp"

using shotsync::ImageType;

namespace {

ImageType Sniff(const std::vector<std::uint8_t>& b) {
  const std::size_t h = std::min(b.size(), shotsync::kSniffHeadBytes);
  const std::size_t t = std::min(b.size(), shotsync::kSniffTailBytes);
  return shotsync::SniffImage({b.data(), h}, {b.data() + b.size() - t, t}, b.size());
}

std::vector<std::uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

}  // namespace

TEST_CASE("a complete JPEG is recognised and a truncated one is not") {
  auto jpeg = shotsync::testing::SynthJpeg({.width = 64, .height = 48});
  CHECK(Sniff(jpeg) == ImageType::kJpeg);
  jpeg.resize(jpeg.size() / 2);
  CHECK(Sniff(jpeg) == ImageType::kUnknown);
}

TEST_CASE("text renamed to .jpg is not an image") {
  CHECK(Sniff(Bytes("hello, this is definitely not a photograph at all\n")) == ImageType::kUnknown);
}

TEST_CASE("PNG needs its IEND chunk, GIF its trailer") {
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR0123456789abc", 29);
  auto complete = Bytes(png + std::string("\0\0\0\0IEND\xAE\x42\x60\x82", 12));
  CHECK(Sniff(complete) == ImageType::kPng);
  CHECK(Sniff(Bytes(png + "garbage-garbage")) == ImageType::kUnknown);
  CHECK(Sniff(Bytes("GIF89a0123456789;")) == ImageType::kGif);
  CHECK(Sniff(Bytes("GIF89a0123456789x")) == ImageType::kUnknown);
}

TEST_CASE("WebP, TIFF and HEIC are recognised by their headers") {
  std::string webp("RIFF\x0c\0\0\0WEBPVP8 ", 16);
  CHECK(Sniff(Bytes(webp + "abcd")) == ImageType::kWebp);
  CHECK(Sniff(Bytes(std::string("RIFF\xff\0\0\0WEBPVP8 abcd", 20))) == ImageType::kUnknown);
  CHECK(Sniff(Bytes(std::string("II*\0\x08\0\0\0\0\0\0\0\0\0", 14))) == ImageType::kTiff);
  CHECK(Sniff(Bytes(std::string("MM\0*\0\0\0\x08\0\0\0\0\0\0", 14))) == ImageType::kTiff);
  std::string heic("\0\0\0\x18" "ftypheic\0\0\0\0mif1heic", 24);
  CHECK(Sniff(Bytes(heic + "moredata")) == ImageType::kHeif);
  std::string mp4("\0\0\0\x18" "ftypisom\0\0\0\0isomavc1", 24);
  CHECK(Sniff(Bytes(mp4 + "moredata")) == ImageType::kUnknown);
}

TEST_CASE("sniffing a file reads only its ends and reports unreadable files") {
  shotsync::testing::TempDir dir;
  const auto path = dir.path() / "a.jpg";
  const auto jpeg = shotsync::testing::SynthJpeg({.width = 32, .height = 32});
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(jpeg.data()),
                                              std::streamsize(jpeg.size()));
  auto r = shotsync::SniffImageFile(path.string());
  REQUIRE(r.ok());
  CHECK(*r == ImageType::kJpeg);
  auto missing = shotsync::SniffImageFile((dir.path() / "nope.jpg").string());
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == shotsync::Code::kIo);
  CHECK(missing.status().message().find("nope.jpg") != std::string::npos);
}
