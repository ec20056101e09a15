// Image recognition by content: is this byte stream a complete image of a
// format Shootbin accepts? Looks only at the first and last bytes of a file,
// so it is cheap enough to run on every file the planner considers and on
// every body the emulator receives (which streams and never holds the file).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "shotsync/status.hpp"

namespace shotsync {

enum class ImageType { kUnknown, kJpeg, kPng, kGif, kWebp, kHeif, kTiff };

std::string_view ImageTypeName(ImageType type) noexcept;

// Bytes needed at each end for a verdict.
inline constexpr std::size_t kSniffHeadBytes = 64;
inline constexpr std::size_t kSniffTailBytes = 64;

// `head` = the first bytes of the file (up to kSniffHeadBytes), `tail` = the
// last bytes (up to kSniffTailBytes; may overlap head for small files),
// `total_size` = the file's length. kUnknown when the magic is unknown or the
// end marker shows the file is truncated (JPEG EOI, PNG IEND, GIF trailer,
// RIFF length, TIFF first IFD offset).
ImageType SniffImage(std::span<const std::uint8_t> head, std::span<const std::uint8_t> tail,
                     std::uint64_t total_size) noexcept;

// Reads the two ends of a file and sniffs them. Error when it cannot be read.
Result<ImageType> SniffImageFile(const std::string& path);

}  // namespace shotsync
