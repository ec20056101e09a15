// Fit: an over-size JPEG re-encoded into a copy that Shootbin takes
// (`fit = true` on a root, or `--fit`; docs/fit.md).
//
// The original is decoded once and encoded again at the highest quality in
// [kFitMinQuality, kFitMaxQuality] whose output, metadata included, is at
// most the limit (a binary search; never over the limit). Its APPn segments
// (EXIF, XMP, ICC in parts, IPTC, others) and COM segments go into the copy
// byte for byte and in order. The same input gives the same bytes every
// time (one libjpeg-turbo, fixed settings): the album's photo of a fitted
// file can be recognised by fitting again. The original is only read.
//
// Stateless and thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shotsync/config.hpp"
#include "shotsync/status.hpp"

namespace shotsync {

inline constexpr int kFitMaxQuality = 95;
inline constexpr int kFitMinQuality = 60;

// `--fit` on sync and push: every root fits.
inline void FitAllRoots(Config& config) {
  for (RootConfig& root : config.roots) root.fit = true;
}

// *.jpg / *.jpeg, any case.
bool IsJpegName(std::string_view name) noexcept;
// The root fits this file instead of rejecting it: fit is on, the name is a
// JPEG's and the file is over the upload limit.
bool FitApplies(const RootConfig& root, std::string_view rel_path, std::uint64_t size) noexcept;

// One marker segment of a JPEG header: the whole segment, from its 0xFF.
struct JpegSegment {
  unsigned char marker = 0;  // 0xE0..0xEF (APPn), 0xFE (COM), ...
  std::string_view bytes;
};
// The APPn and COM segments before the frame header (SOFn), in file order.
// kInvalidArgument when the header is not a JPEG's.
Result<std::vector<JpegSegment>> JpegMetadata(std::string_view jpeg);

struct Fitted {
  std::string bytes;  // the copy, at most the limit
  int quality = 0;
};
// kRejected (message: the reason, one line) when even kFitMinQuality is
// over `limit`; kInvalidArgument when the bytes do not decode.
Result<Fitted> FitJpeg(std::string_view jpeg, std::uint64_t limit = kShootbinMaxUpload);
// FitJpeg of a file's content (kIo when it cannot be read).
Result<Fitted> FitJpegFile(const std::string& path, std::uint64_t limit = kShootbinMaxUpload);

// --- the temporary copies (state folder) -------------------------------------

struct FitCopy {
  std::string path;  // the copy to send
  std::uint64_t size = 0;
  int quality = 0;
};
// Fits `src` into <state_dir>/fit/<pid>.<file_id>.jpg (folder private, file
// mode 600, written to a temporary name and renamed). The first call of a
// process for a state folder removes the copies of processes that are gone.
Result<FitCopy> FitFileCopy(const std::string& src, const std::string& state_dir, std::int64_t file_id,
                            std::uint64_t limit = kShootbinMaxUpload);
// What a send of the file carries: the file itself (quality 0), or, where
// its root fits it (FitApplies, from the file's size now), a fresh copy.
Result<FitCopy> SendBody(const RootConfig& root, const std::string& abs_path, std::string_view rel_path,
                         const std::string& state_dir, std::int64_t file_id);
// The path FitFileCopy writes for this process.
std::string FitCopyPath(const std::string& state_dir, std::int64_t file_id);
// Removes this process's copy of a file (after its send).
void RemoveFitCopy(const std::string& state_dir, std::int64_t file_id) noexcept;

}  // namespace shotsync
