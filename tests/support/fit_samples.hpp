// Test JPEGs for the fit tests (tests/unit/fit_test.cpp,
// tests/integration/fit_test.cpp), made and read with libjpeg-turbo's own
// API, not with the client's fit code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shotsync::testing {

// A w x h photo of noise (amplitude 0..255 around a gradient) encoded at
// `quality` with TurboJPEG subsampling `subsamp` (TJSAMP_*).
std::string NoiseJpeg(int width, int height, int quality, int subsamp, std::uint64_t seed, int amplitude = 255);
// One marker segment: FF marker, length, payload.
std::string Segment(unsigned char marker, std::string_view payload);
// An EXIF APP1, an XMP APP1, an ICC profile in two APP2 parts, an IPTC
// APP13 and a COM, in that order (about `padding` bytes more in the XMP).
std::vector<std::string> SampleMetadata(std::size_t padding = 0);
// `jpeg` with `segments` right after its SOI; its own APP0 dropped when
// `drop_app0` (a camera's file: EXIF first, no JFIF).
std::string WithSegments(std::string_view jpeg, const std::vector<std::string>& segments, bool drop_app0);
// Decodes the whole image (TurboJPEG); its size in *width, *height.
bool Decodes(std::string_view jpeg, int* width = nullptr, int* height = nullptr);
// Every segment occurs in `jpeg` byte for byte, in this order, before its first scan.
bool HasSegmentsInOrder(std::string_view jpeg, const std::vector<std::string>& segments);
// TurboJPEG's idea of the subsampling (TJSAMP_*), -1 when it cannot tell.
int SubsamplingOf(std::string_view jpeg);

}  // namespace shotsync::testing
