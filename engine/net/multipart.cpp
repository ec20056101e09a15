// MultipartBody (net/multipart.hpp).
#include "net/multipart.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <random>
#include <string_view>

namespace shotsync::net {
namespace {

// " CR LF as %22 %0D %0A: what curl (without CURLMIMEOPT_FORMESCAPE) and
// the HTML form encoding send, and what form parsers undo.
std::string Escaped(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '"') out += "%22";
    else if (c == '\r') out += "%0D";
    else if (c == '\n') out += "%0A";
    else out += c;
  }
  return out;
}

bool EndsWithNoCase(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  s.remove_prefix(s.size() - suffix.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    if (c != suffix[i]) return false;
  }
  return true;
}

// curl's table for a part with a filename and no type of its own; unknown
// extensions get no Content-Type line, as from curl.
std::string_view TypeForFilename(std::string_view filename) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 10> kTypes{{
      {".gif", "image/gif"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".png", "image/png"},
      {".svg", "image/svg+xml"},
      {".txt", "text/plain"},
      {".htm", "text/html"},
      {".html", "text/html"},
      {".pdf", "application/pdf"},
      {".xml", "application/xml"},
  }};
  for (const auto& [ext, type] : kTypes) {
    if (EndsWithNoCase(filename, ext)) return type;
  }
  return {};
}

// 32 random hex digits after curl's 24 dashes. std::random_device is the
// kernel's generator (getrandom), never OpenSSL's.
std::string Boundary() {
  std::random_device rd;
  std::string out(24, '-');
  constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) out.push_back(kHex[rd() % 16]);
  return out;
}

}  // namespace

Result<std::unique_ptr<FilePart>> FilePart::Open(const std::string& path) {
  auto fp = std::make_unique<FilePart>();
  fp->fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fp->fd) return Status::Io(path, errno);
  struct stat st {};
  if (::fstat(fp->fd.get(), &st) != 0) return Status::Io(path, errno);
  fp->size = std::uint64_t(st.st_size);
  ::posix_fadvise(fp->fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  return fp;
}

Result<std::unique_ptr<MultipartBody>> MultipartBody::Build(const std::vector<MimePart>& parts,
                                                            BodyPacer* pacer) {
  auto body = std::make_unique<MultipartBody>();
  body->pacer_ = pacer;
  const std::string boundary = Boundary();
  body->content_type_ = "Content-Type: multipart/form-data; boundary=" + boundary;
  std::string text;  // what goes before the next file part
  for (const MimePart& p : parts) {
    text += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + Escaped(p.name) + "\"";
    std::string filename = p.filename;
    if (!p.file_path.empty() && filename.empty()) filename = p.file_path.substr(p.file_path.rfind('/') + 1);
    if (!filename.empty()) text += "; filename=\"" + Escaped(filename) + "\"";
    const std::string_view type = p.content_type.empty() ? TypeForFilename(filename) : p.content_type;
    if (!type.empty()) text += "\r\nContent-Type: " + std::string(type);
    text += "\r\n\r\n";
    if (p.file_path.empty()) {
      text += p.value;
    } else {
      SHOTSYNC_ASSIGN_OR_RETURN(std::unique_ptr<FilePart> fp, FilePart::Open(p.file_path));
      if (p.hash_sent) fp->hash = std::make_unique<StreamHash>();
      body->size_ += curl_off_t(text.size() + fp->size);
      body->segments_.push_back({std::move(text), nullptr});
      body->segments_.push_back({{}, fp.get()});
      body->files_.push_back(std::move(fp));
      text.clear();
    }
    text += "\r\n";
  }
  text += "--" + boundary + "--\r\n";
  body->size_ += curl_off_t(text.size());
  body->segments_.push_back({std::move(text), nullptr});
  return body;
}

// Fills `buf` across segments, as curl's own mime reader does, so that a
// part's headers go out in one send with its first bytes; a file read ends
// the call (the pacer may have paused the transfer).
std::size_t MultipartBody::ReadSome(char* buf, std::size_t want) {
  std::size_t done = 0;
  while (done < want && seg_ < segments_.size()) {
    Segment& s = segments_[seg_];
    if (!s.file) {
      const std::size_t n = std::min(want - done, s.text.size() - offset_);
      std::memcpy(buf + done, s.text.data() + offset_, n);
      done += n;
      offset_ += n;
      if (offset_ == s.text.size()) ++seg_, offset_ = 0;
      continue;
    }
    FilePart& f = *s.file;
    if (f.Complete()) {
      ++seg_;
      continue;
    }
    std::size_t ask = want - done;
    if (pacer_) ask = pacer_->Allow(ask);
    ask = std::size_t(std::min<std::uint64_t>(ask, f.size - f.pos));
    for (;;) {
      const ssize_t got = ::pread(f.fd.get(), buf + done, ask, off_t(f.pos));
      if (got < 0 && errno == EINTR) continue;
      // An error, or a file shorter than when the request was sized.
      if (got <= 0) return CURL_READFUNC_ABORT;
      f.pos += std::uint64_t(got);
      file_bytes_sent_ = true;
      if (f.hash) f.hash->Update(buf + done, std::size_t(got));
      if (pacer_) pacer_->Spend(std::size_t(got));
      return done + std::size_t(got);
    }
  }
  return done;
}

size_t MultipartBody::Read(char* buf, size_t size, size_t n, void* arg) {
  return static_cast<MultipartBody*>(arg)->ReadSome(buf, size * n);
}

// libcurl silently re-sends a request whose reused connection died before
// any answer ("Connection died, retrying a fresh connect"), rewinding the
// body. For an upload that is exactly the case where the server may already
// have stored the photo, so the body refuses to rewind once a file byte went
// out: libcurl then reports the failure (CURLE_SEND_FAIL_REWIND) and the
// caller reconciles (docs/resume.md).
int MultipartBody::Seek(void* arg, curl_off_t offset, int origin) {
  auto* body = static_cast<MultipartBody*>(arg);
  if (origin != SEEK_SET || offset != 0 || body->file_bytes_sent_) return CURL_SEEKFUNC_CANTSEEK;
  body->seg_ = body->offset_ = 0;
  for (auto& f : body->files_) {
    if (f->hash) f->hash->Reset();  // a rewind restarts the hash with the body
  }
  return CURL_SEEKFUNC_OK;
}

}  // namespace shotsync::net
