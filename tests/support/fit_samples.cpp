#include "fit_samples.hpp"

#include <turbojpeg.h>

#include <algorithm>
#include <memory>
#include <random>

namespace shotsync::testing {
namespace {

struct TjDestroy {
  void operator()(void* h) const noexcept { tjDestroy(h); }
};
using Tj = std::unique_ptr<void, TjDestroy>;

const unsigned char* Bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace

std::string NoiseJpeg(int width, int height, int quality, int subsamp, std::uint64_t seed, int amplitude) {
  std::vector<unsigned char> rgb(std::size_t(width) * std::size_t(height) * 3);
  std::mt19937_64 rng(seed);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      unsigned char* px = &rgb[(std::size_t(y) * std::size_t(width) + std::size_t(x)) * 3];
      const std::uint64_t r = rng();
      for (int c = 0; c < 3; ++c) {
        const int base = (x * 255 / width + y * 255 / height + c * 60) / 2;
        const int noise = int((r >> (c * 8)) & 0xFF) * amplitude / 255 - amplitude / 2;
        px[c] = (unsigned char)(std::clamp(base + noise, 0, 255));
      }
    }
  }
  Tj tj(tjInitCompress());
  unsigned char* out = nullptr;
  unsigned long size = 0;
  if (!tj || tjCompress2(tj.get(), rgb.data(), width, 0, height, TJPF_RGB, &out, &size, subsamp, quality, 0) != 0) {
    tjFree(out);
    return {};
  }
  std::string jpeg(reinterpret_cast<const char*>(out), size);
  tjFree(out);
  return jpeg;
}

std::string Segment(unsigned char marker, std::string_view payload) {
  std::string s = "\xFF";
  s += char(marker);
  const std::size_t len = payload.size() + 2;
  s += char(len >> 8);
  s += char(len & 0xFF);
  s.append(payload);
  return s;
}

std::vector<std::string> SampleMetadata(std::size_t padding) {
  using namespace std::string_literals;
  // EXIF: a little-endian TIFF header with an empty IFD0.
  const std::string exif = "Exif\0\0"s + "II\x2A\0\x08\0\0\0"s + "\0\0"s + "\0\0\0\0"s;
  std::string xmp = "http://ns.adobe.com/xap/1.0/\0"s +
                    "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/"
                    "22-rdf-syntax-ns#\"><rdf:Description dc:creator=\"shotsync test\"/></rdf:RDF></x:xmpmeta>";
  xmp.append(padding, ' ');
  // An ICC profile split over two APP2 segments (sequence 1 and 2 of 2).
  std::string icc1 = "ICC_PROFILE\0\x01\x02"s, icc2 = "ICC_PROFILE\0\x02\x02"s;
  for (int i = 0; i < 3000; ++i) icc1 += char(i * 7), icc2 += char(i * 13);
  const std::string iptc = "Photoshop 3.0\0"s + "8BIM\x04\x04\0\0\0\0\0\x0A"s + "\x1C\x02\x78\0\x05Hello"s;
  return {Segment(0xE1, exif), Segment(0xE1, xmp), Segment(0xE2, icc1), Segment(0xE2, icc2),
          Segment(0xED, iptc), Segment(0xFE, "a comment")};
}

std::string WithSegments(std::string_view jpeg, const std::vector<std::string>& segments, bool drop_app0) {
  std::size_t rest = 2;
  if (drop_app0 && jpeg.size() > 6 && Bytes(jpeg)[2] == 0xFF && Bytes(jpeg)[3] == 0xE0) {
    rest = 4 + ((std::size_t(Bytes(jpeg)[4]) << 8) | Bytes(jpeg)[5]);
  }
  std::string out(jpeg.substr(0, 2));
  for (const std::string& s : segments) out += s;
  out.append(jpeg.substr(rest));
  return out;
}

bool Decodes(std::string_view jpeg, int* width, int* height) {
  Tj tj(tjInitDecompress());
  int w = 0, h = 0, samp = 0, cs = 0;
  if (!tj || tjDecompressHeader3(tj.get(), Bytes(jpeg), jpeg.size(), &w, &h, &samp, &cs) != 0) return false;
  std::vector<unsigned char> rgb(std::size_t(w) * std::size_t(h) * 3);
  if (tjDecompress2(tj.get(), Bytes(jpeg), jpeg.size(), rgb.data(), w, 0, h, TJPF_RGB, 0) != 0) return false;
  if (width) *width = w;
  if (height) *height = h;
  return true;
}

bool HasSegmentsInOrder(std::string_view jpeg, const std::vector<std::string>& segments) {
  const std::size_t scan = jpeg.find("\xFF\xDA");
  std::size_t at = 0;
  for (const std::string& s : segments) {
    at = jpeg.find(s, at);
    if (at == std::string_view::npos || at > scan) return false;
    at += s.size();
  }
  return true;
}

int SubsamplingOf(std::string_view jpeg) {
  Tj tj(tjInitDecompress());
  int w = 0, h = 0, samp = -1, cs = 0;
  if (!tj || tjDecompressHeader3(tj.get(), Bytes(jpeg), jpeg.size(), &w, &h, &samp, &cs) != 0) return -1;
  return samp;
}

}  // namespace shotsync::testing
