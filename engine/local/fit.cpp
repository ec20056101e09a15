// Fit (shotsync/fit.hpp): decode once, binary search over the quality,
// the original's metadata segments spliced into the encoder's output.
#include "shotsync/fit.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <mutex>
#include <set>

#include "local/plan_run.hpp"
#include "shotsync/fd.hpp"
#include "shotsync/fs.hpp"

namespace shotsync {
namespace {

struct TjDestroy {
  void operator()(void* h) const noexcept { tjDestroy(h); }
};
using TjHandle = std::unique_ptr<void, TjDestroy>;
struct TjFree {
  void operator()(unsigned char* p) const noexcept { tjFree(p); }
};

bool IsMetadataMarker(unsigned char m) { return (m >= 0xE0 && m <= 0xEF) || m == 0xFE; }

// The header's segments up to the first that is neither APPn nor COM (or SOS):
// those, and the offset of the first other one.
Status HeaderSegments(std::string_view jpeg, std::vector<JpegSegment>& out, std::size_t& rest) {
  const auto* p = reinterpret_cast<const unsigned char*>(jpeg.data());
  const std::size_t n = jpeg.size();
  if (n < 4 || p[0] != 0xFF || p[1] != 0xD8) return Status(Code::kInvalidArgument, "not a JPEG (no SOI marker)");
  std::size_t i = 2;
  while (true) {
    if (i + 4 > n || p[i] != 0xFF) return Status(Code::kInvalidArgument, "not a JPEG (a header segment is cut or bad)");
    std::size_t at = i;
    while (at + 1 < n && p[at + 1] == 0xFF) ++at;  // fill bytes
    if (at + 4 > n) return Status(Code::kInvalidArgument, "not a JPEG (a header segment is cut)");
    const unsigned char marker = p[at + 1];
    if (!IsMetadataMarker(marker)) {
      rest = i;
      return Status::Ok();
    }
    const std::size_t len = (std::size_t(p[at + 2]) << 8) | p[at + 3];
    if (len < 2 || at + 2 + len > n) return Status(Code::kInvalidArgument, "not a JPEG (a segment overruns the file)");
    out.push_back({marker, jpeg.substr(at, 2 + len)});
    i = at + 2 + len;
  }
}

// The pixel format and subsampling to encode with: the original's where
// libjpeg-turbo names it, else 4:2:0.
struct Layout {
  int pixel_format = TJPF_RGB;
  int subsamp = TJSAMP_420;
};

Layout LayoutOf(int subsamp, int colorspace) {
  Layout l;
  if (colorspace == TJCS_GRAY) return {TJPF_GRAY, TJSAMP_GRAY};
  if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) l.pixel_format = TJPF_CMYK;
  if (subsamp >= 0 && subsamp < TJ_NUMSAMP && subsamp != TJSAMP_GRAY) l.subsamp = subsamp;
  return l;
}

class Encoder {
 public:
  Encoder(const std::vector<unsigned char>& pixels, int width, int height, Layout layout,
          const std::vector<JpegSegment>& metadata)
      : pixels_(pixels), width_(width), height_(height), layout_(layout), metadata_(metadata) {
    for (const JpegSegment& s : metadata_) metadata_size_ += s.bytes.size();
  }

  std::uint64_t metadata_size() const { return metadata_size_; }

  // The whole copy at `quality`: SOI, the encoder's APPn segments of a kind
  // the original lacks (its JFIF APP0, Adobe APP14), the original's
  // metadata in order, then the encoder's tables and scan.
  Result<std::string> At(int quality) const {
    TjHandle tj(tjInitCompress());
    if (!tj) return Status(Code::kInternal, std::string("libjpeg-turbo: ") + tjGetErrorStr2(nullptr));
    unsigned char* raw = nullptr;
    unsigned long size = 0;
    const int rc = tjCompress2(tj.get(), pixels_.data(), width_, 0, height_, layout_.pixel_format, &raw, &size,
                               layout_.subsamp, quality, TJFLAG_ACCURATEDCT);
    std::unique_ptr<unsigned char, TjFree> owned(raw);
    if (rc != 0) return Status(Code::kInternal, std::string("JPEG encoder: ") + tjGetErrorStr2(tj.get()));
    const std::string_view encoded(reinterpret_cast<const char*>(raw), size);
    std::vector<JpegSegment> own;
    std::size_t rest = 0;
    SHOTSYNC_RETURN_IF_ERROR(HeaderSegments(encoded, own, rest));
    std::string out;
    out.reserve(size + metadata_size_);
    out.append(encoded.substr(0, 2));
    for (const JpegSegment& s : own) {
      const bool replaced = std::any_of(metadata_.begin(), metadata_.end(),
                                        [&](const JpegSegment& m) { return m.marker == s.marker; });
      if (!replaced) out.append(s.bytes);
    }
    for (const JpegSegment& s : metadata_) out.append(s.bytes);
    out.append(encoded.substr(rest));
    return out;
  }

 private:
  const std::vector<unsigned char>& pixels_;
  int width_, height_;
  Layout layout_;
  const std::vector<JpegSegment>& metadata_;
  std::uint64_t metadata_size_ = 0;
};

std::string TooBig(int quality, std::uint64_t reached, std::uint64_t limit) {
  // Built piecewise (GCC 12's false -Warray-bounds on operator+ chains).
  std::string why = "does not fit the upload limit of ";
  why += local::Megabytes(limit);
  why += " even re-encoded at JPEG quality ";
  why += std::to_string(quality);
  why += ": ";
  why += local::Megabytes(reached);
  return why;
}

// Copies of processes that are gone (crashed, killed); a running one's (a
// push beside a sync) are its own.
void RemoveStaleCopies(const std::string& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
  if (!d) return;
  while (const dirent* e = ::readdir(d.get())) {
    long pid = 0;
    if (std::sscanf(e->d_name, "%ld.", &pid) != 1 || pid <= 0) continue;
    if (pid == long(::getpid()) || ::kill(pid_t(pid), 0) == 0 || errno == EPERM) continue;
    (void)::unlink((dir + "/" + e->d_name).c_str());
  }
}

Result<std::string> ReadAll(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::Io(path, errno);
  struct stat sb {};
  if (::fstat(fd.get(), &sb) != 0) return Status::Io(path, errno);
  std::string data;
  data.reserve(std::size_t(sb.st_size));
  char buf[1 << 16];
  while (true) {
    const ssize_t got = ::read(fd.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Status::Io(path, errno);
    if (got == 0) break;
    data.append(buf, std::size_t(got));
  }
  return data;
}

Status WriteAll(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return Status::Io(tmp, errno);
  while (!bytes.empty()) {
    const ssize_t put = ::write(fd.get(), bytes.data(), bytes.size());
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) {
      const int err = errno;
      (void)::unlink(tmp.c_str());
      return Status::Io(tmp, err);
    }
    bytes.remove_prefix(std::size_t(put));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    (void)::unlink(tmp.c_str());
    return Status::Io(path, err);
  }
  return Status::Ok();
}

}  // namespace

bool IsJpegName(std::string_view name) noexcept {
  auto ends_with = [&](std::string_view ext) {
    if (name.size() < ext.size()) return false;
    const std::string_view tail = name.substr(name.size() - ext.size());
    return std::equal(tail.begin(), tail.end(), ext.begin(),
                      [](char a, char b) { return (a >= 'A' && a <= 'Z' ? char(a + 32) : a) == b; });
  };
  return ends_with(".jpg") || ends_with(".jpeg");
}

bool FitApplies(const RootConfig& root, std::string_view rel_path, std::uint64_t size) noexcept {
  return root.fit && size > kShootbinMaxUpload && IsJpegName(rel_path);
}

Result<std::vector<JpegSegment>> JpegMetadata(std::string_view jpeg) {
  std::vector<JpegSegment> out;
  std::size_t rest = 0;
  SHOTSYNC_RETURN_IF_ERROR(HeaderSegments(jpeg, out, rest));
  // Metadata may also follow the tables (DQT, DHT) before the scan.
  const auto* p = reinterpret_cast<const unsigned char*>(jpeg.data());
  std::size_t i = rest;
  while (i + 4 <= jpeg.size() && p[i] == 0xFF) {
    const unsigned char marker = p[i + 1];
    if (marker == 0xDA || (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC)) {
      break;  // a frame or the first scan: no metadata beyond that matters here
    }
    const std::size_t len = (std::size_t(p[i + 2]) << 8) | p[i + 3];
    if (len < 2 || i + 2 + len > jpeg.size()) return Status(Code::kInvalidArgument, "not a JPEG (a segment overruns the file)");
    if (IsMetadataMarker(marker)) out.push_back({marker, jpeg.substr(i, 2 + len)});
    i += 2 + len;
  }
  return out;
}

Result<Fitted> FitJpeg(std::string_view jpeg, std::uint64_t limit) {
  SHOTSYNC_ASSIGN_OR_RETURN(std::vector<JpegSegment> metadata, JpegMetadata(jpeg));
  TjHandle tj(tjInitDecompress());
  if (!tj) return Status(Code::kInternal, std::string("libjpeg-turbo: ") + tjGetErrorStr2(nullptr));
  auto* src = reinterpret_cast<const unsigned char*>(jpeg.data());
  int width = 0, height = 0, subsamp = -1, colorspace = -1;
  if (tjDecompressHeader3(tj.get(), src, jpeg.size(), &width, &height, &subsamp, &colorspace) != 0) {
    return Status(Code::kInvalidArgument, std::string("not a JPEG that decodes: ") + tjGetErrorStr2(tj.get()));
  }
  const Layout layout = LayoutOf(subsamp, colorspace);
  std::vector<unsigned char> pixels(std::size_t(width) * std::size_t(height) * std::size_t(tjPixelSize[layout.pixel_format]));
  if (tjDecompress2(tj.get(), src, jpeg.size(), pixels.data(), width, 0, height, layout.pixel_format,
                    TJFLAG_ACCURATEDCT) != 0 &&
      tjGetErrorCode(tj.get()) == TJERR_FATAL) {
    return Status(Code::kInvalidArgument, std::string("not a JPEG that decodes: ") + tjGetErrorStr2(tj.get()));
  }
  const Encoder encode(pixels, width, height, layout, metadata);
  if (encode.metadata_size() >= limit) return Status(Code::kRejected, TooBig(kFitMinQuality, encode.metadata_size(), limit));
  SHOTSYNC_ASSIGN_OR_RETURN(std::string lowest, encode.At(kFitMinQuality));
  if (lowest.size() > limit) return Status(Code::kRejected, TooBig(kFitMinQuality, lowest.size(), limit));
  // The top first: a file a little over the limit (the usual case) costs
  // two encodes. Then best.quality fits and hi does not.
  SHOTSYNC_ASSIGN_OR_RETURN(std::string top, encode.At(kFitMaxQuality));
  if (top.size() <= limit) return Fitted{std::move(top), kFitMaxQuality};
  Fitted best{std::move(lowest), kFitMinQuality};
  int hi = kFitMaxQuality;
  while (hi - best.quality > 1) {
    const int mid = best.quality + (hi - best.quality) / 2;
    SHOTSYNC_ASSIGN_OR_RETURN(std::string out, encode.At(mid));
    if (out.size() <= limit) {
      best = {std::move(out), mid};
    } else {
      hi = mid;
    }
  }
  return best;
}

Result<Fitted> FitJpegFile(const std::string& path, std::uint64_t limit) {
  SHOTSYNC_ASSIGN_OR_RETURN(std::string original, ReadAll(path));
  return FitJpeg(original, limit);
}

std::string FitCopyPath(const std::string& state_dir, std::int64_t file_id) {
  std::string path = state_dir;
  path += "/fit/";
  path += std::to_string(long(::getpid()));
  path += '.';
  path += std::to_string(file_id);
  path += ".jpg";
  return path;
}

Result<FitCopy> FitFileCopy(const std::string& src, const std::string& state_dir, std::int64_t file_id,
                            std::uint64_t limit) {
  const std::string dir = state_dir + "/fit";
  SHOTSYNC_RETURN_IF_ERROR(MakePrivateDirs(dir));
  {
    static std::mutex mu;
    static std::set<std::string> swept;  // once per state folder and process
    std::lock_guard lock(mu);
    if (swept.insert(dir).second) RemoveStaleCopies(dir);
  }
  SHOTSYNC_ASSIGN_OR_RETURN(Fitted fitted, FitJpegFile(src, limit));
  FitCopy copy{FitCopyPath(state_dir, file_id), fitted.bytes.size(), fitted.quality};
  SHOTSYNC_RETURN_IF_ERROR(WriteAll(copy.path, fitted.bytes));
  return copy;
}

Result<FitCopy> SendBody(const RootConfig& root, const std::string& abs_path, std::string_view rel_path,
                         const std::string& state_dir, std::int64_t file_id) {
  struct stat sb {};
  // Not there: the send itself says so, as for any file.
  if (::stat(abs_path.c_str(), &sb) != 0 || !FitApplies(root, rel_path, std::uint64_t(sb.st_size))) {
    return FitCopy{abs_path, std::uint64_t(sb.st_size), 0};
  }
  return FitFileCopy(abs_path, state_dir, file_id);
}

void RemoveFitCopy(const std::string& state_dir, std::int64_t file_id) noexcept {
  (void)::unlink(FitCopyPath(state_dir, file_id).c_str());
}

}  // namespace shotsync
