// The multipart/form-data body of uploads (engine/net/multipart.hpp): its
// bytes as a form parser sees them, its size, its hash of the file as read,
// and the rewind that is refused once a file byte went out.
#include "net/multipart.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "temp_dir.hpp"

using namespace shotsync;
using shotsync::net::MultipartBody;

namespace {

std::string WriteFile(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
  return p.string();
}

// All of the body, `step` bytes per callback at most.
std::string ReadAll(MultipartBody& body, std::size_t step) {
  std::string out;
  std::string buf(step, '\0');
  for (;;) {
    const std::size_t n = MultipartBody::Read(buf.data(), 1, step, &body);
    REQUIRE(n != CURL_READFUNC_ABORT);
    if (n == 0) return out;
    out.append(buf.data(), n);
  }
}

std::string BoundaryOf(const MultipartBody& body) {
  const std::string& h = body.ContentTypeHeader();
  const std::string key = "boundary=";
  return h.substr(h.find(key) + key.size());
}

}  // namespace

TEST_CASE("a multipart body is laid out as curl lays out a form, and its size is its Content-Length",
          "[multipart]") {
  testing::TempDir dir;
  const std::string photo = "\xff\xd8\xff\xe0 jpeg bytes \r\n--not-a-boundary\r\n";
  const std::string path = WriteFile(dir.path() / "IMG_1.JPG", photo);
  auto body = MultipartBody::Build({MimePart{.name = "photo", .file_path = path, .filename = "odd\"na\nme.JPG"},
                                    MimePart{.name = "client_original_filename", .value = "day1/IMG_1.JPG"}},
                                   nullptr);
  REQUIRE(body.ok());
  const std::string b = BoundaryOf(**body);
  CHECK(b.size() == 24 + 32);
  CHECK(b.substr(0, 24) == std::string(24, '-'));
  CHECK((*body)->ContentTypeHeader() == "Content-Type: multipart/form-data; boundary=" + b);
  const std::string expected = "--" + b +
                               "\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"odd%22na%0Ame.JPG\"\r\n"
                               "Content-Type: image/jpeg\r\n\r\n" +
                               photo + "\r\n--" + b +
                               "\r\nContent-Disposition: form-data; name=\"client_original_filename\"\r\n\r\n"
                               "day1/IMG_1.JPG\r\n--" +
                               b + "--\r\n";
  for (std::size_t step : {1u, 7u, 4096u}) {
    INFO(step);
    auto again = MultipartBody::Build({MimePart{.name = "photo", .file_path = path, .filename = "odd\"na\nme.JPG"},
                                       MimePart{.name = "client_original_filename", .value = "day1/IMG_1.JPG"}},
                                      nullptr);
    REQUIRE(again.ok());
    const std::string got = ReadAll(**again, step);
    CHECK(got.size() == std::size_t((*again)->Size()));
    const std::string b2 = BoundaryOf(**again);
    CHECK(b2 != b);  // a new boundary per body
    std::string want = expected;
    for (std::size_t at = want.find(b); at != std::string::npos; at = want.find(b, at + b2.size()))
      want.replace(at, b.size(), b2);
    CHECK(got == want);
  }
  CHECK(ReadAll(**body, 64) == expected);
}

TEST_CASE("a file part gets curl's type for its extension, or none", "[multipart]") {
  testing::TempDir dir;
  const std::string path = WriteFile(dir.path() / "x", "data");
  auto type_line = [&](const std::string& filename) {
    auto body = MultipartBody::Build({MimePart{.name = "f", .file_path = path, .filename = filename}}, nullptr);
    REQUIRE(body.ok());
    const std::string all = ReadAll(**body, 4096);
    const auto at = all.find("Content-Type: ");
    return at == std::string::npos ? std::string() : all.substr(at + 14, all.find("\r\n", at) - at - 14);
  };
  CHECK(type_line("a.jpeg") == "image/jpeg");
  CHECK(type_line("a.PNG") == "image/png");
  CHECK(type_line("a.heic").empty());
  CHECK(type_line("noext").empty());
}

TEST_CASE("the body hashes the file as it is read, and rewinds only before the first file byte",
          "[multipart]") {
  testing::TempDir dir;
  std::string photo(300000, '\0');
  for (std::size_t i = 0; i < photo.size(); ++i) photo[i] = char(i * 31 + 7);
  const std::string path = WriteFile(dir.path() / "p.jpg", photo);
  MimePart part{.name = "photo", .file_path = path};
  part.hash_sent = true;
  auto body = MultipartBody::Build({part}, nullptr);
  REQUIRE(body.ok());
  MultipartBody& m = **body;
  REQUIRE(m.Files().size() == 1);

  char head[16];
  REQUIRE(MultipartBody::Read(head, 1, sizeof head, &m) == sizeof head);  // the part's headers only
  CHECK(MultipartBody::Seek(&m, 0, SEEK_SET) == CURL_SEEKFUNC_OK);
  const std::string all = ReadAll(m, 65536);
  CHECK(all.size() == std::size_t(m.Size()));
  CHECK(all.find(photo) != std::string::npos);
  CHECK(m.Files()[0]->Complete());
  CHECK(m.Files()[0]->hash->Hex() == HashBytes(photo.data(), photo.size()));
  CHECK(MultipartBody::Seek(&m, 0, SEEK_SET) == CURL_SEEKFUNC_CANTSEEK);
}

TEST_CASE("a file that shrinks while it is sent aborts the body, and a missing file names itself",
          "[multipart]") {
  testing::TempDir dir;
  const std::string path = WriteFile(dir.path() / "p.jpg", std::string(5000, 'x'));
  auto body = MultipartBody::Build({MimePart{.name = "photo", .file_path = path}}, nullptr);
  REQUIRE(body.ok());
  std::filesystem::resize_file(path, 100);
  std::string buf(1 << 20, '\0');
  std::size_t n = 0;
  do {
    n = MultipartBody::Read(buf.data(), 1, buf.size(), body->get());
  } while (n != 0 && n != CURL_READFUNC_ABORT);
  CHECK(n == CURL_READFUNC_ABORT);

  auto missing = MultipartBody::Build({MimePart{.name = "photo", .file_path = (dir.path() / "gone.jpg").string()}},
                                      nullptr);
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.status().message(), Catch::Contains("gone.jpg"));
}
