// The emulator's own "is this a decodable image?" check, written for the
// emulator and independent of the client (which leaves format decisions to the server):
// a client that agrees with itself must not pass against its own judge.
//
// It judges the way a decoder walks a file, not by magic bytes alone, and it
// is streamed: Feed() takes the upload's bytes in whatever chunks the HTTP
// server hands over and keeps only a few bytes of state (a segment/chunk/box
// header being assembled, how many bytes to skip), never the file.
//
//   JPEG  FF D8 FF, then the marker segments are walked by their lengths
//         (so an EOI inside an EXIF thumbnail does not count) and the
//         entropy-coded data after each SOS is scanned for the next marker
//         (FF 00 stuffing and RSTn skipped). Valid once an EOI (FF D9) ends a
//         stream that had a frame header (SOFn) and a scan (SOS). Anything
//         after EOI is ignored: Samsung/Pixel "motion photos" carry an MP4
//         there. A JPEG cut before its EOI is refused.
//   PNG   signature, then chunks walked by length; IHDR first, an IDAT, and
//         an IEND; CRCs of the critical chunks (IHDR, PLTE, IDAT, IEND) are
//         checked. Bytes after IEND are ignored.
//   GIF   GIF87a/GIF89a, logical screen (+ global colour table), then the
//         blocks (extensions, image descriptors with their sub-blocks) up to
//         the 0x3B trailer; at least one image.
//   WebP  RIFF <size> WEBP, chunks walked up to the RIFF end, the first one
//         VP8 (key-frame start code 9D 01 2A), VP8L (signature 0x2F) or VP8X;
//         the file must hold the whole RIFF.
//   TIFF  II*\0 / MM\0* (and BigTIFF II+\0 / MM\0+); the first IFD (entry
//         count, entries, next-IFD offset) must lie inside the file.
//   HEIF  ISO-BMFF: top-level boxes walked by size, the first an `ftyp` with
//         brand heic/heix/heim/heis/hevc/hevx/mif1/msf1/avif/avis (major or
//         compatible), a `meta` box present, and the file ends on a box
//         boundary (or inside a box of size 0 = "to the end of the file").
//         Covers HEIC, HEIF and AVIF.
//
// Size limits (empty, > 10 MiB) are the caller's business; Valid() of an
// empty stream is false.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace emu {

enum class ImageFormat { kNone, kJpeg, kPng, kGif, kWebp, kTiff, kHeif };

const char* ImageFormatName(ImageFormat f);

class ImageCheck {
 public:
  ImageCheck();
  ~ImageCheck();
  ImageCheck(const ImageCheck&) = delete;
  ImageCheck& operator=(const ImageCheck&) = delete;

  void Feed(const void* data, std::size_t n);
  // After the last Feed: the format when the stream is a complete image of a
  // known format, else kNone.
  ImageFormat Finish();
  std::uint64_t size() const { return size_; }

  // Parser of one format (defined in image_check.cpp).
  struct Parser;

 private:
  std::uint64_t size_ = 0;
  std::string head_;  // the first bytes, until the format is known
  std::unique_ptr<Parser> parser_;
  bool undetectable_ = false;
  void Detect();
};

}  // namespace emu
