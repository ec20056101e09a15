// The emulator's streamed image check; see image_check.hpp.
#include "image_check.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace emu {

const char* ImageFormatName(ImageFormat f) {
  switch (f) {
    case ImageFormat::kJpeg: return "jpeg";
    case ImageFormat::kPng: return "png";
    case ImageFormat::kGif: return "gif";
    case ImageFormat::kWebp: return "webp";
    case ImageFormat::kTiff: return "tiff";
    case ImageFormat::kHeif: return "heif";
    case ImageFormat::kNone: break;
  }
  return "none";
}

struct ImageCheck::Parser {
  explicit Parser(ImageFormat f) : format(f) {}
  virtual ~Parser() = default;
  virtual void Feed(const unsigned char* p, std::size_t n) = 0;
  // Whether the stream (of `total` bytes, all fed) is a complete image.
  virtual bool Complete(std::uint64_t total) = 0;
  const ImageFormat format;
  bool failed = false;
};

namespace {

using Parser = ImageCheck::Parser;

std::uint32_t Be32(const unsigned char* p) {
  return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}
std::uint32_t Le32(const unsigned char* p) {
  return std::uint32_t(p[3]) << 24 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[1]) << 8 | p[0];
}
std::uint64_t Be64(const unsigned char* p) { return std::uint64_t(Be32(p)) << 32 | Be32(p + 4); }

// Appends bytes from p[i..n) to buf until it holds `want` bytes; true once full.
bool Collect(unsigned char* buf, std::size_t& have, std::size_t want, const unsigned char* p,
             std::size_t n, std::size_t& i) {
  const std::size_t take = std::min(want - have, n - i);
  std::memcpy(buf + have, p + i, take);
  have += take;
  i += take;
  return have == want;
}

// ---------------------------------------------------------------- JPEG
class JpegParser final : public Parser {
 public:
  JpegParser() : Parser(ImageFormat::kJpeg) {}

  void Feed(const unsigned char* p, std::size_t n) override {
    std::size_t i = 0;
    while (i < n && !failed && s_ != kDone) {
      switch (s_) {
        case kSoi0:
          if (p[i++] != 0xFF) failed = true;
          s_ = kSoi1;
          break;
        case kSoi1:
          if (p[i++] != 0xD8) failed = true;
          s_ = kMarker;
          break;
        case kMarker: {
          // Bytes that are not a marker where one is due: a decoder warns
          // ("extraneous bytes before marker") and looks for the next 0xFF.
          const void* ff = std::memchr(p + i, 0xFF, n - i);
          if (ff == nullptr) {
            i = n;
          } else {
            i = std::size_t(static_cast<const unsigned char*>(ff) - p) + 1;
            s_ = kCode;
          }
          break;
        }
        case kCode:
          Code(p[i++]);
          break;
        case kLenHi:
          len_hi_ = p[i++];
          s_ = kLenLo;
          break;
        case kLenLo: {
          const unsigned len = len_hi_ << 8 | p[i++];
          if (len < 2) {
            failed = true;
            break;
          }
          skip_ = len - 2;
          s_ = skip_ > 0 ? kSkip : AfterSegment();
          break;
        }
        case kSkip: {
          const std::size_t take = std::size_t(std::min<std::uint64_t>(skip_, n - i));
          i += take;
          skip_ -= take;
          if (skip_ == 0) s_ = AfterSegment();
          break;
        }
        case kEntropy: {
          const void* ff = std::memchr(p + i, 0xFF, n - i);
          if (ff == nullptr) {
            i = n;
          } else {
            i = std::size_t(static_cast<const unsigned char*>(ff) - p) + 1;
            s_ = kEntropyFF;
          }
          break;
        }
        case kEntropyFF: {
          const unsigned b = p[i++];
          if (b == 0x00 || (b >= 0xD0 && b <= 0xD7)) {
            s_ = kEntropy;  // stuffed 0xFF or a restart marker: still scan data
          } else {
            Code(b);
          }
          break;
        }
        case kDone:
          break;
      }
    }
  }

  bool Complete(std::uint64_t) override { return !failed && s_ == kDone; }

 private:
  enum State { kSoi0, kSoi1, kMarker, kCode, kLenHi, kLenLo, kSkip, kEntropy, kEntropyFF, kDone };
  State s_ = kSoi0;
  unsigned marker_ = 0, len_hi_ = 0;
  std::uint64_t skip_ = 0;
  bool sof_ = false, sos_ = false;

  State AfterSegment() const { return marker_ == 0xDA ? kEntropy : kMarker; }

  // The byte after a 0xFF where a marker may be.
  void Code(unsigned b) {
    if (b == 0xFF) {  // fill byte
      s_ = kCode;
    } else if (b == 0x00) {  // not a marker: garbage, keep looking
      s_ = kMarker;
    } else if (b == 0xD9) {  // EOI: the image ends here; anything after it is not ours
      if (sof_ && sos_) s_ = kDone;
      else failed = true;  // "no image" (no frame or no scan)
    } else if (b == 0xD8) {  // a second SOI
      failed = true;
    } else if (b == 0x01 || (b >= 0xD0 && b <= 0xD7)) {  // TEM, RSTn: no length
      s_ = kMarker;
    } else {
      if (b >= 0xC0 && b <= 0xCF && b != 0xC4 && b != 0xC8 && b != 0xCC) sof_ = true;
      if (b == 0xDA) {
        if (!sof_) {
          failed = true;  // SOS before SOF
          return;
        }
        sos_ = true;
      }
      marker_ = b;
      s_ = kLenHi;
    }
  }
};

// ---------------------------------------------------------------- PNG
class PngParser final : public Parser {
 public:
  PngParser() : Parser(ImageFormat::kPng) {}

  void Feed(const unsigned char* p, std::size_t n) override {
    std::size_t i = 0;
    while (i < n && !failed && s_ != kDone) {
      switch (s_) {
        case kSig:
          if (Collect(buf_, have_, 8, p, n, i)) {
            static const unsigned char kSigBytes[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
            if (std::memcmp(buf_, kSigBytes, 8) != 0) failed = true;
            have_ = 0;
            s_ = kHeader;
          }
          break;
        case kHeader:
          if (Collect(buf_, have_, 8, p, n, i)) {
            have_ = 0;
            Header();
          }
          break;
        case kData: {
          const std::size_t take = std::size_t(std::min<std::uint64_t>(left_, n - i));
          if (check_crc_) crc_ = Crc(crc_, p + i, take);
          i += take;
          left_ -= take;
          if (left_ == 0) s_ = kCrc;
          break;
        }
        case kCrc:
          if (Collect(buf_, have_, 4, p, n, i)) {
            have_ = 0;
            if (check_crc_ && Be32(buf_) != (crc_ ^ 0xFFFFFFFFu)) {
              failed = true;
            } else if (std::memcmp(type_, "IEND", 4) == 0) {
              if (ihdr_ && idat_) s_ = kDone;
              else failed = true;
            } else {
              s_ = kHeader;
            }
          }
          break;
        case kDone:
          break;
      }
    }
  }

  bool Complete(std::uint64_t) override { return !failed && s_ == kDone; }

 private:
  enum State { kSig, kHeader, kData, kCrc, kDone };
  State s_ = kSig;
  unsigned char buf_[8] = {};
  std::size_t have_ = 0;
  char type_[4] = {};
  std::uint64_t left_ = 0;
  std::uint32_t crc_ = 0;
  bool check_crc_ = false, first_ = true, ihdr_ = false, idat_ = false;

  void Header() {
    const std::uint32_t len = Be32(buf_);
    std::memcpy(type_, buf_ + 4, 4);
    for (char c : type_) {
      if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) failed = true;
    }
    if (len > 0x7FFFFFFFu) failed = true;
    const bool is_ihdr = std::memcmp(type_, "IHDR", 4) == 0;
    if (first_ != is_ihdr || (is_ihdr && len != 13)) failed = true;  // IHDR first, and only first
    if (std::memcmp(type_, "IDAT", 4) == 0) {
      if (!ihdr_) failed = true;
      idat_ = true;
    }
    if (std::memcmp(type_, "IEND", 4) == 0 && len != 0) failed = true;
    ihdr_ = ihdr_ || is_ihdr;
    first_ = false;
    // Critical chunks (upper-case first letter): a decoder refuses a bad CRC.
    check_crc_ = (type_[0] & 0x20) == 0;
    crc_ = Crc(0xFFFFFFFFu, reinterpret_cast<const unsigned char*>(type_), 4);
    left_ = len;
    s_ = left_ > 0 ? kData : kCrc;
  }

  static std::uint32_t Crc(std::uint32_t c, const unsigned char* p, std::size_t n) {
    static const std::array<std::uint32_t, 256> table = [] {
      std::array<std::uint32_t, 256> t{};
      for (std::uint32_t k = 0; k < 256; ++k) {
        std::uint32_t v = k;
        for (int j = 0; j < 8; ++j) v = (v & 1) ? 0xEDB88320u ^ (v >> 1) : v >> 1;
        t[k] = v;
      }
      return t;
    }();
    for (std::size_t k = 0; k < n; ++k) c = table[(c ^ p[k]) & 0xFF] ^ (c >> 8);
    return c;
  }
};

// ---------------------------------------------------------------- GIF
class GifParser final : public Parser {
 public:
  GifParser() : Parser(ImageFormat::kGif) {}

  void Feed(const unsigned char* p, std::size_t n) override {
    std::size_t i = 0;
    while (i < n && !failed && s_ != kDone) {
      switch (s_) {
        case kHeader:
          if (Collect(buf_, have_, 13, p, n, i)) {
            have_ = 0;
            if (std::memcmp(buf_, "GIF87a", 6) != 0 && std::memcmp(buf_, "GIF89a", 6) != 0) failed = true;
            SkipTable(buf_[10], kBlock);
          }
          break;
        case kSkip: {
          const std::size_t take = std::min(skip_, n - i);
          i += take;
          skip_ -= take;
          if (skip_ == 0) s_ = next_;
          break;
        }
        case kBlock: {
          const unsigned b = p[i++];
          if (b == 0x21) {
            s_ = kExtLabel;
          } else if (b == 0x2C) {
            s_ = kImage;
          } else if (b == 0x3B) {  // trailer
            if (image_) s_ = kDone;
            else failed = true;
          } else {
            failed = true;
          }
          break;
        }
        case kExtLabel:
          ++i;
          s_ = kSubLen;
          break;
        case kImage:
          if (Collect(buf_, have_, 9, p, n, i)) {
            have_ = 0;
            image_ = true;
            SkipTable(buf_[8], kLzwMin);
          }
          break;
        case kLzwMin: {
          const unsigned b = p[i++];
          if (b < 1 || b > 11) failed = true;
          s_ = kSubLen;
          break;
        }
        case kSubLen: {
          const unsigned b = p[i++];
          if (b == 0) {
            s_ = kBlock;
          } else {
            skip_ = b;
            next_ = kSubLen;
            s_ = kSkip;
          }
          break;
        }
        case kDone:
          break;
      }
    }
  }

  bool Complete(std::uint64_t) override { return !failed && s_ == kDone; }

 private:
  enum State { kHeader, kSkip, kBlock, kExtLabel, kImage, kLzwMin, kSubLen, kDone };
  State s_ = kHeader, next_ = kBlock;
  unsigned char buf_[13] = {};
  std::size_t have_ = 0, skip_ = 0;
  bool image_ = false;

  // A colour table follows when bit 7 of the flags is set.
  void SkipTable(unsigned flags, State then) {
    if (flags & 0x80) {
      skip_ = std::size_t(3) << ((flags & 7) + 1);
      next_ = then;
      s_ = kSkip;
    } else {
      s_ = then;
    }
  }
};

// ---------------------------------------------------------------- WebP
class WebpParser final : public Parser {
 public:
  WebpParser() : Parser(ImageFormat::kWebp) {}

  void Feed(const unsigned char* p, std::size_t n) override {
    std::size_t i = 0;
    while (i < n && !failed && s_ != kDone) {
      switch (s_) {
        case kRiff:
          if (Collect(buf_, have_, 12, p, n, i)) {
            have_ = 0;
            if (std::memcmp(buf_, "RIFF", 4) != 0 || std::memcmp(buf_ + 8, "WEBP", 4) != 0) failed = true;
            const std::uint32_t size = Le32(buf_ + 4);
            if (size < 4 + 8 + 1) failed = true;
            riff_end_ = 8 + std::uint64_t(size);
            pos_ = 12;
            s_ = kChunk;
          }
          break;
        case kChunk:
          if (Collect(buf_, have_, 8, p, n, i)) {
            have_ = 0;
            pos_ += 8;
            const std::uint32_t size = Le32(buf_ + 4);
            if (first_) {
              std::memcpy(fourcc_, buf_, 4);
              if (std::memcmp(fourcc_, "VP8 ", 4) != 0 && std::memcmp(fourcc_, "VP8L", 4) != 0 &&
                  std::memcmp(fourcc_, "VP8X", 4) != 0) {
                failed = true;
              }
              first_size_ = size;
            }
            const std::uint64_t end = pos_ + size;
            // The last chunk may lack its pad byte when the RIFF size says so.
            if (end > riff_end_) failed = true;
            left_ = std::min<std::uint64_t>(riff_end_, end + (size & 1)) - pos_;
            s_ = left_ > 0 ? kData : (pos_ == riff_end_ ? kDone : kChunk);
            if (s_ != kData) CheckFirst();
          }
          break;
        case kData: {
          const std::size_t take = std::size_t(std::min<std::uint64_t>(left_, n - i));
          if (first_ && first_have_ < sizeof first_data_) {
            const std::size_t keep = std::min(take, sizeof first_data_ - first_have_);
            std::memcpy(first_data_ + first_have_, p + i, keep);
            first_have_ += keep;
          }
          i += take;
          left_ -= take;
          pos_ += take;
          if (left_ == 0) {
            CheckFirst();
            s_ = pos_ >= riff_end_ ? kDone : kChunk;
          }
          break;
        }
        case kDone:
          break;
      }
    }
  }

  bool Complete(std::uint64_t) override { return !failed && s_ == kDone && !first_; }

 private:
  enum State { kRiff, kChunk, kData, kDone };
  State s_ = kRiff;
  unsigned char buf_[12] = {};
  std::size_t have_ = 0;
  std::uint64_t riff_end_ = 0, pos_ = 0, left_ = 0;
  bool first_ = true;
  char fourcc_[4] = {};
  std::uint32_t first_size_ = 0;
  unsigned char first_data_[10] = {};
  std::size_t first_have_ = 0;

  // The bitstream signature of the first chunk (once its bytes are in).
  void CheckFirst() {
    if (!first_) return;
    first_ = false;
    if (std::memcmp(fourcc_, "VP8 ", 4) == 0) {
      // frame tag (3 bytes), then the key-frame start code.
      if (first_size_ < 10 || first_have_ < 10 || first_data_[3] != 0x9D || first_data_[4] != 0x01 ||
          first_data_[5] != 0x2A) {
        failed = true;
      }
    } else if (std::memcmp(fourcc_, "VP8L", 4) == 0) {
      if (first_size_ < 5 || first_data_[0] != 0x2F) failed = true;
    } else if (first_size_ < 10) {  // VP8X: flags + canvas size
      failed = true;
    }
  }
};

// ---------------------------------------------------------------- TIFF
class TiffParser final : public Parser {
 public:
  TiffParser() : Parser(ImageFormat::kTiff) {}

  void Feed(const unsigned char* p, std::size_t n) override {
    std::size_t i = 0;
    while (i < n && !failed) {
      if (!header_done_) {
        if (!Collect(buf_, have_, want_, p, n, i)) continue;
        if (want_ == 8) {
          le_ = buf_[0] == 'I';
          if (!((buf_[0] == 'I' && buf_[1] == 'I') || (buf_[0] == 'M' && buf_[1] == 'M'))) failed = true;
          const unsigned version = U16(buf_ + 2);
          if (version == 43) {  // BigTIFF: 16-byte header
            big_ = true;
            want_ = 16;
            continue;
          }
          if (version != 42) failed = true;
          ifd_ = U32(buf_ + 4);
        } else {
          if (U16(buf_ + 4) != 8 || U16(buf_ + 6) != 0) failed = true;  // offset size 8
          ifd_ = U64(buf_ + 8);
        }
        header_done_ = true;
        pos_ = want_;
        if (ifd_ < want_) failed = true;
        continue;
      }
      // The IFD's entry count, wherever it lies in the stream.
      const std::size_t take = n - i;
      const std::uint64_t from = pos_, to = pos_ + take;
      const std::size_t count_len = big_ ? 8 : 2;
      const std::uint64_t c0 = ifd_, c1 = ifd_ + count_len;
      if (from < c1 && to > c0) {
        const std::uint64_t a = std::max(from, c0), b = std::min(to, c1);
        std::memcpy(count_ + (a - c0), p + i + (a - from), std::size_t(b - a));
        count_have_ += std::size_t(b - a);
      }
      pos_ = to;
      i = n;
    }
  }

  bool Complete(std::uint64_t total) override {
    if (failed || !header_done_) return false;
    const std::size_t count_len = big_ ? 8 : 2;
    if (count_have_ < count_len) return false;
    const std::uint64_t count = big_ ? U64(count_) : U16(count_);
    if (count == 0 || count > 65535) return false;
    const std::uint64_t entry = big_ ? 20 : 12, next = big_ ? 8 : 4;
    return total >= ifd_ + count_len + count * entry + next;
  }

 private:
  unsigned char buf_[16] = {}, count_[8] = {};
  std::size_t have_ = 0, want_ = 8, count_have_ = 0;
  bool header_done_ = false, le_ = true, big_ = false;
  std::uint64_t ifd_ = 0, pos_ = 0;

  unsigned U16(const unsigned char* p) const { return le_ ? unsigned(p[0] | p[1] << 8) : unsigned(p[0] << 8 | p[1]); }
  std::uint32_t U32(const unsigned char* p) const { return le_ ? Le32(p) : Be32(p); }
  std::uint64_t U64(const unsigned char* p) const {
    return le_ ? std::uint64_t(Le32(p + 4)) << 32 | Le32(p) : Be64(p);
  }
};

// ---------------------------------------------------------------- HEIF / AVIF (ISO-BMFF)
class BmffParser final : public Parser {
 public:
  BmffParser() : Parser(ImageFormat::kHeif) {}

  void Feed(const unsigned char* p, std::size_t n) override {
    std::size_t i = 0;
    while (i < n && !failed) {
      switch (s_) {
        case kHeader:
          if (Collect(hdr_, have_, 8, p, n, i)) {
            const std::uint32_t size = Be32(hdr_);
            Type();
            if (size == 1) {
              s_ = kLarge;  // have_ stays 8: the 64-bit size follows
            } else if (size == 0) {
              have_ = 0;
              s_ = kToEnd;  // the box runs to the end of the file
            } else {
              have_ = 0;
              if (size < 8) failed = true;
              Payload(size - 8);
            }
          }
          break;
        case kLarge:
          if (Collect(hdr_, have_, 16, p, n, i)) {
            have_ = 0;
            const std::uint64_t size = Be64(hdr_ + 8);
            if (size < 16) failed = true;
            Payload(size - 16);
          }
          break;
        case kPayload: {
          const std::size_t take = std::size_t(std::min<std::uint64_t>(left_, n - i));
          Keep(p + i, take);
          i += take;
          left_ -= take;
          if (left_ == 0) EndBox();
          break;
        }
        case kToEnd:
          Keep(p + i, n - i);
          i = n;
          break;
      }
    }
  }

  bool Complete(std::uint64_t) override {
    if (in_ftyp_) Brands();  // an ftyp of size 0 (to the end)
    const bool at_boundary = (s_ == kHeader && have_ == 0) || s_ == kToEnd;
    return !failed && at_boundary && brand_ok_ && meta_;
  }

 private:
  enum State { kHeader, kLarge, kPayload, kToEnd };
  State s_ = kHeader;
  unsigned char hdr_[16] = {};
  std::size_t have_ = 0;
  std::uint64_t left_ = 0;
  bool first_ = true, in_ftyp_ = false, brand_ok_ = false, meta_ = false;
  std::string ftyp_;

  void Type() {
    for (int k = 4; k < 8; ++k) {
      if (hdr_[k] < 0x20 || hdr_[k] > 0x7E) failed = true;  // box types are printable
    }
    const bool is_ftyp = std::memcmp(hdr_ + 4, "ftyp", 4) == 0;
    if (first_ != is_ftyp) failed = true;  // ftyp first, once
    first_ = false;
    in_ftyp_ = is_ftyp;
    if (std::memcmp(hdr_ + 4, "meta", 4) == 0) meta_ = true;
  }
  void Payload(std::uint64_t left) {
    left_ = left;
    if (left_ > 0) s_ = kPayload;
    else EndBox();
  }
  void Keep(const unsigned char* p, std::size_t n) {
    if (in_ftyp_ && ftyp_.size() < 1024) ftyp_.append(reinterpret_cast<const char*>(p), std::min(n, 1024 - ftyp_.size()));
  }
  void EndBox() {
    if (in_ftyp_) Brands();
    in_ftyp_ = false;
    s_ = kHeader;
  }
  void Brands() {
    in_ftyp_ = false;
    static const char* const kBrands[] = {"heic", "heix", "heim", "heis", "hevc", "hevx",
                                          "mif1", "msf1", "avif", "avis"};
    auto accepted = [](const char* b) {
      return std::any_of(std::begin(kBrands), std::end(kBrands), [&](const char* k) { return std::memcmp(b, k, 4) == 0; });
    };
    if (ftyp_.size() < 8 || ftyp_.size() % 4 != 0) {
      failed = true;
      return;
    }
    if (accepted(ftyp_.data())) brand_ok_ = true;  // major brand
    for (std::size_t k = 8; k + 4 <= ftyp_.size(); k += 4) {
      if (accepted(ftyp_.data() + k)) brand_ok_ = true;  // compatible brands
    }
  }
};

}  // namespace

ImageCheck::ImageCheck() = default;
ImageCheck::~ImageCheck() = default;

void ImageCheck::Detect() {
  const auto* h = reinterpret_cast<const unsigned char*>(head_.data());
  const std::size_t n = head_.size();
  auto starts = [&](const char* sig, std::size_t len, std::size_t at = 0) {
    return n >= at + len && std::memcmp(h + at, sig, len) == 0;
  };
  if (starts("\xFF\xD8\xFF", 3)) parser_ = std::make_unique<JpegParser>();
  else if (starts("\x89PNG\r\n\x1A\n", 8)) parser_ = std::make_unique<PngParser>();
  else if (starts("GIF87a", 6) || starts("GIF89a", 6)) parser_ = std::make_unique<GifParser>();
  else if (starts("RIFF", 4) && starts("WEBP", 4, 8)) parser_ = std::make_unique<WebpParser>();
  else if (starts("II*\0", 4) || starts("MM\0*", 4) || starts("II+\0", 4) || starts("MM\0+", 4)) parser_ = std::make_unique<TiffParser>();
  else if (starts("ftyp", 4, 4)) parser_ = std::make_unique<BmffParser>();
  if (!parser_) {
    undetectable_ = true;
    head_.clear();
    return;
  }
  parser_->Feed(h, n);
  head_.clear();
  head_.shrink_to_fit();
}

void ImageCheck::Feed(const void* data, std::size_t n) {
  size_ += n;
  if (undetectable_ || n == 0) return;
  const auto* p = static_cast<const unsigned char*>(data);
  if (parser_) {
    if (!parser_->failed) parser_->Feed(p, n);
    return;
  }
  // 12 bytes tell every format apart (RIFF....WEBP is the longest).
  constexpr std::size_t kDetect = 12;
  const std::size_t take = std::min(n, kDetect - head_.size());
  head_.append(reinterpret_cast<const char*>(p), take);
  if (head_.size() < kDetect) return;
  Detect();
  if (parser_ && take < n && !parser_->failed) parser_->Feed(p + take, n - take);
}

ImageFormat ImageCheck::Finish() {
  if (!parser_ && !undetectable_) Detect();
  if (!parser_ || size_ == 0) return ImageFormat::kNone;
  return !parser_->failed && parser_->Complete(size_) ? parser_->format : ImageFormat::kNone;
}

}  // namespace emu
