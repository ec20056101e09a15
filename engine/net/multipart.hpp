// A multipart/form-data request body, streamed to libcurl through its read
// callback: the fields' text from memory, each file part from disk.
//
// Built here rather than with curl_mime because curl_mime_init draws its
// boundary from OpenSSL's DRBG, whose first use in a process costs ~0.5 ms
// (a hook's `push` pays it once per photo); the boundary needs to be unique,
// not secret (the kernel's generator). The layout is curl's: `--BOUNDARY`, the part's
// headers, the data, and `--BOUNDARY--` at the end; names and filenames are
// escaped as curl and browsers do (" CR LF as %22 %0D %0A).
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shotsync/fd.hpp"
#include "shotsync/hasher.hpp"
#include "shotsync/status.hpp"
#include "shotsync/transfer.hpp"

namespace shotsync::net {

// Paces a transfer's body under the bandwidth limit (the transfer's Job).
class BodyPacer {
 public:
  // How many of `want` bytes to read now (never 0: out of bytes, a small
  // step on credit, and the transfer is paused until the loop resumes it).
  virtual std::size_t Allow(std::size_t want) = 0;
  virtual void Spend(std::size_t n) = 0;

 protected:
  ~BodyPacer() = default;
};

// A file part, read with pread at its own position.
struct FilePart {
  UniqueFd fd;
  std::uint64_t size = 0;  // at open; the body's Content-Length counts it
  std::uint64_t pos = 0;
  std::unique_ptr<StreamHash> hash;  // MimePart::hash_sent: the bytes as read, in order

  static Result<std::unique_ptr<FilePart>> Open(const std::string& path);
  bool Complete() const { return pos == size; }
};

class MultipartBody {
 public:
  // Opens the file parts (an unreadable file is the error, naming it).
  static Result<std::unique_ptr<MultipartBody>> Build(const std::vector<MimePart>& parts, BodyPacer* pacer);

  // "Content-Type: multipart/form-data; boundary=...", for the request's headers.
  const std::string& ContentTypeHeader() const { return content_type_; }
  curl_off_t Size() const { return size_; }
  const std::vector<std::unique_ptr<FilePart>>& Files() const { return files_; }

  // CURLOPT_READFUNCTION / CURLOPT_SEEKFUNCTION, with this body as their data.
  static size_t Read(char* buf, size_t size, size_t n, void* arg);
  static int Seek(void* arg, curl_off_t offset, int origin);

 private:
  struct Segment {
    std::string text;         // written as is, when file is null
    FilePart* file = nullptr;
  };
  std::size_t ReadSome(char* buf, std::size_t want);

  std::string content_type_;
  std::vector<Segment> segments_;
  std::vector<std::unique_ptr<FilePart>> files_;
  BodyPacer* pacer_ = nullptr;
  curl_off_t size_ = 0;
  std::size_t seg_ = 0;     // the segment being read
  std::size_t offset_ = 0;  // into a text segment
  bool file_bytes_sent_ = false;
};

}  // namespace shotsync::net
