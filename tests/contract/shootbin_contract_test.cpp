// Contract tests: the emulator's Shootbin API against ../shared/api/shootbin.md.
//
// Each TEST_CASE starts its own emulator (EmulatorProcess) and talks to it
// over loopback with the test HTTP client. The tests are written from the
// contract, not from the emulator's code: an emulator that is more lenient
// than the contract fails here.
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <future>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "emulator_process.hpp"
#include "http.hpp"
#include "image_samples.hpp"
#include "jpeg_synth.hpp"
#include "temp_dir.hpp"

namespace {

namespace http = shotsync::testing::http;
using shotsync::testing::Bmff;
using shotsync::testing::Box;
using shotsync::testing::EmulatorProcess;
using shotsync::testing::Png1x1;
using shotsync::testing::Tiff1x1;
using shotsync::testing::Webp1x1;
using Json = nlohmann::json;

constexpr const char* kToken = "sb-test-token";           // agency, create+update, owner
constexpr const char* kProToken = "sb-pro-token";         // Pro plan: 403 everywhere
constexpr const char* kReadonlyToken = "sb-readonly-token";  // agency, no scopes
constexpr const char* kApproverToken = "sb-approver-token";  // agency, update, not the owner
constexpr std::size_t kTenMb = 10u * 1024u * 1024u;

// A fast emulator for tests that make many requests (the default is 60/min).
const std::vector<std::string> kNoRateLimit = {"--shootbin-rpm", "100000"};

http::Headers Auth(const std::string& token = kToken) {
  return {{"Authorization", "Bearer " + token}, {"Accept", "application/json"}};
}

std::string Bytes(const std::vector<std::uint8_t>& v) { return std::string(v.begin(), v.end()); }

// A small, real, decodable JPEG; different seeds give different bytes.
std::string Jpeg(std::uint64_t seed, int width = 64, int height = 48) {
  return Bytes(shotsync::testing::SynthJpeg(
      {.width = width, .height = height, .quality = 80, .noise = 16, .seed = seed}));
}

// Grows a JPEG to exactly `target` bytes with COM segments right after SOI,
// so it stays a complete, decodable JPEG (SOI ... EOI).
std::string PadJpeg(std::string jpeg, std::size_t target) {
  REQUIRE(jpeg.size() + 4 <= target);
  std::size_t need = target - jpeg.size();
  std::string pad;
  pad.reserve(need);
  while (need > 0) {
    std::size_t seg = std::min<std::size_t>(need, 65537);  // 4 header bytes + max 65533 payload
    if (need - seg > 0 && need - seg < 4) seg -= 4;
    const std::size_t len = seg - 2;  // the length field counts itself
    pad += '\xFF';
    pad += '\xFE';
    pad += static_cast<char>((len >> 8) & 0xFF);
    pad += static_cast<char>(len & 0xFF);
    pad.append(seg - 4, 'p');
    need -= seg;
  }
  jpeg.insert(2, pad);
  REQUIRE(jpeg.size() == target);
  return jpeg;
}

// Photo upload/revision answers may be wrapped ({success, message, photo}) or bare.
Json PhotoOf(const Json& j) {
  if (j.is_object() && j.contains("photo") && j["photo"].is_object()) return j["photo"];
  return j;
}

bool IsIsoMicros(const Json& v) {
  static const std::regex re(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$)");
  return v.is_string() && std::regex_match(v.get<std::string>(), re);
}

bool IsInteger(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

long long HeaderInt(const http::Response& r, const char* name) {
  auto v = r.header(name);
  INFO("header " << name << " of " << r.describe());
  REQUIRE(v.has_value());
  REQUIRE(IsInteger(*v));
  return std::stoll(*v);
}

// Status plus the documented error envelope: a JSON object with a non-empty `message`.
void RequireError(const http::Response& r, long status) {
  INFO(r.describe());
  REQUIRE(r.status == status);
  auto ct = r.header("Content-Type");
  REQUIRE(ct.has_value());
  CHECK(ct->find("application/json") != std::string::npos);
  Json j = r.json();
  REQUIRE(j.is_object());
  REQUIRE(j.contains("message"));
  REQUIRE(j["message"].is_string());
  CHECK_FALSE(j["message"].get<std::string>().empty());
}

// Validation failure: 422 with errors.<field> a non-empty list of strings.
void RequireValidation(const http::Response& r, const std::string& field) {
  RequireError(r, 422);
  Json j = r.json();
  INFO(r.describe());
  REQUIRE(j.contains("errors"));
  REQUIRE(j["errors"].is_object());
  REQUIRE(j["errors"].contains(field));
  REQUIRE(j["errors"][field].is_array());
  REQUIRE_FALSE(j["errors"][field].empty());
  CHECK(j["errors"][field][0].is_string());
}

// A Shootbin client bound to one emulator and token.
struct Sb {
  const EmulatorProcess& emu;
  std::string token = kToken;

  std::string Url(const std::string& path) const { return emu.url(path); }
  static std::string PhotosPath(long long p, long long a) {
    return "/api/projects/" + std::to_string(p) + "/albums/" + std::to_string(a) + "/photos";
  }
  static std::string PhotoPath(long long p, long long a, long long photo) {
    return PhotosPath(p, a) + "/" + std::to_string(photo);
  }

  http::Response Get(const std::string& path) const { return http::Get(Url(path), Auth(token)); }
  http::Response Json_(const std::string& method, const std::string& path, const Json& body) const {
    return http::SendJson(method, Url(path), body, Auth(token));
  }
  http::Response Post(const std::string& path, const Json& body) const {
    return Json_("POST", path, body);
  }
  http::Response Delete(const std::string& path) const {
    return http::Delete(Url(path), Auth(token));
  }
  http::Response Multipart(const std::string& path, std::vector<http::Part> parts) const {
    return http::PostMultipart(Url(path), std::move(parts), Auth(token));
  }
  // Upload with the documented field name `photo`; `client_name` empty = not sent.
  http::Response Upload(long long p, long long a, const std::string& bytes,
                        const std::string& filename, const std::string& client_name = {},
                        std::vector<http::Part> extra = {}) const {
    std::vector<http::Part> parts{http::Part::Bytes("photo", bytes, filename, "image/jpeg")};
    if (!client_name.empty()) parts.push_back(http::Part::Field("client_original_filename", client_name));
    for (auto& e : extra) parts.push_back(std::move(e));
    return Multipart(PhotosPath(p, a), std::move(parts));
  }
  // Uploads and returns the photo object (REQUIREs 201).
  Json UploadOk(long long p, long long a, const std::string& bytes, const std::string& filename,
                const std::string& client_name = {}) const {
    auto r = Upload(p, a, bytes, filename, client_name);
    INFO(r.describe());
    REQUIRE(r.status == 201);
    Json photo = PhotoOf(r.json());
    REQUIRE(photo.contains("id"));
    REQUIRE(photo["id"].is_number_integer());
    return photo;
  }
  http::Response Revision(long long p, long long a, long long photo, const std::string& bytes,
                          const std::string& filename, const std::string& client_name = {}) const {
    std::vector<http::Part> parts{http::Part::Bytes("revision", bytes, filename, "image/jpeg")};
    if (!client_name.empty()) parts.push_back(http::Part::Field("client_original_filename", client_name));
    return Multipart(PhotoPath(p, a, photo) + "/revisions", std::move(parts));
  }
  // Walks the whole photo list of an album; returns every item in order.
  std::vector<Json> ListAll(long long p, long long a, int per_page = 100) const {
    std::vector<Json> all;
    std::string cursor;
    for (int guard = 0; guard < 10000; ++guard) {
      std::string path = PhotosPath(p, a) + "?per_page=" + std::to_string(per_page);
      if (!cursor.empty()) path += "&cursor=" + cursor;
      auto r = Get(path);
      INFO(r.describe());
      REQUIRE(r.status == 200);
      Json j = r.json();
      for (const auto& item : j.at("data")) all.push_back(item);
      if (j.at("next_cursor").is_null()) return all;
      cursor = j["next_cursor"].get<std::string>();
    }
    FAIL("photo list never ended");
    return all;
  }
};

// Creates a project and an album in it with the default token; returns {project, album}.
std::pair<long long, long long> NewProjectAndAlbum(const Sb& sb, const std::string& name = "P") {
  auto p = sb.Post("/api/projects", {{"name", name}});
  INFO(p.describe());
  REQUIRE(p.status == 201);
  const long long pid = p.json().at("id").get<long long>();
  auto a = sb.Multipart("/api/projects/" + std::to_string(pid) + "/albums",
                        {http::Part::Field("name", name + " album")});
  INFO(a.describe());
  REQUIRE(a.status == 201);
  return {pid, a.json().at("id").get<long long>()};
}

long long NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Largest per-token value of stats.max_requests_per_minute (an object per
// token, or a plain integer).
long long MaxRpm(const Json& stats) {
  const Json& m = stats.at("max_requests_per_minute");
  if (m.is_number()) return m.get<long long>();
  long long best = 0;
  for (const auto& [k, v] : m.items()) best = std::max(best, v.get<long long>());
  return best;
}

// stats.status_counts[code]: an object keyed by the code as a string, or a
// list of [code, count] pairs (how a std::map<int, n> serialises).
long long StatusCount(const Json& stats, int code) {
  const Json& sc = stats.at("status_counts");
  if (sc.is_object()) return sc.value(std::to_string(code), 0LL);
  for (const auto& pair : sc) {
    if (pair.is_array() && pair.size() == 2 && pair[0] == code) return pair[1].get<long long>();
  }
  return 0;
}

}  // namespace

// ---------------------------------------------------------------------------
// Authentication, plans and scopes

TEST_CASE("shootbin: default token lists project 1 Demo with album 1 Main") {
  EmulatorProcess emu;
  Sb sb{emu};

  auto r = sb.Get("/api/projects");
  INFO(r.describe());
  REQUIRE(r.status == 200);
  Json projects = r.json();
  REQUIRE(projects.is_array());  // bare array, no pagination
  auto demo = std::find_if(projects.begin(), projects.end(),
                           [](const Json& p) { return p.value("id", 0) == 1; });
  REQUIRE(demo != projects.end());
  CHECK((*demo)["name"] == "Demo");
  CHECK((*demo)["personal_team"] == false);
  CHECK(IsIsoMicros((*demo)["created_at"]));
  CHECK(IsIsoMicros((*demo)["updated_at"]));

  auto a = sb.Get("/api/projects/1/albums");
  INFO(a.describe());
  REQUIRE(a.status == 200);
  Json albums = a.json();
  REQUIRE(albums.is_array());
  auto main = std::find_if(albums.begin(), albums.end(),
                           [](const Json& x) { return x.value("id", 0) == 1; });
  REQUIRE(main != albums.end());
  CHECK((*main)["name"] == "Main");
  CHECK((*main)["team_id"] == 1);
  CHECK((*main)["photos_count"] == 0);
  CHECK(main->contains("description"));
  CHECK(IsIsoMicros((*main)["created_at"]));

  // An unknown project is 404 (with the error envelope).
  RequireError(sb.Get("/api/projects/999999/albums"), 404);
}

TEST_CASE("shootbin: missing, wrong, malformed or revoked token gets 401 with a JSON message") {
  EmulatorProcess emu;
  emu.AddToken({{"token", "sb-revoked-token"}, {"service", "shootbin"}, {"plan", "agency"},
                {"scopes", {"create", "update"}}, {"revoked", true}});

  auto check401 = [](const http::Response& r) {
    RequireError(r, 401);
    CHECK(r.json()["message"] == "Unauthenticated.");
  };
  SECTION("missing") {
    check401(http::Get(emu.url("/api/projects"), {{"Accept", "application/json"}}));
  }
  SECTION("wrong") { check401(http::Get(emu.url("/api/projects"), Auth("nope"))); }
  SECTION("not a Bearer header") {
    check401(http::Get(emu.url("/api/projects"),
                       {{"Authorization", std::string("Token ") + kToken},
                        {"Accept", "application/json"}}));
  }
  SECTION("revoked") { check401(http::Get(emu.url("/api/projects"), Auth("sb-revoked-token"))); }
  SECTION("HeadshotPro key is not a Shootbin token") {
    check401(http::Get(emu.url("/api/projects"), Auth("hp-test-key")));
  }
  SECTION("on a write endpoint too") {
    check401(http::SendJson("POST", emu.url("/api/projects"), {{"name", "x"}}, Auth("nope")));
  }
}

TEST_CASE("shootbin: auth failure without Accept: application/json redirects to /login with HTML") {
  EmulatorProcess emu;
  auto check302 = [&](const http::Response& r) {
    INFO(r.describe());
    REQUIRE(r.status == 302);
    auto loc = r.header("Location");
    REQUIRE(loc.has_value());
    const std::string login = "/login";
    // "/login" or an absolute URL ending in /login.
    REQUIRE(loc->size() >= login.size());
    CHECK(loc->compare(loc->size() - login.size(), login.size(), login) == 0);
    auto ct = r.header("Content-Type");
    REQUIRE(ct.has_value());
    CHECK(ct->find("text/html") != std::string::npos);
    CHECK(r.body.find("<") != std::string::npos);
  };
  SECTION("no Accept header at all, wrong token") {
    check302(http::Get(emu.url("/api/projects"), {{"Authorization", "Bearer nope"}, {"Accept", ""}}));
  }
  SECTION("Accept: text/html, no token") {
    check302(http::Get(emu.url("/api/projects"), {{"Accept", "text/html"}}));
  }
  SECTION("curl's default Accept: */*, wrong token, on an upload") {
    check302(http::PostMultipart(emu.url("/api/projects/1/albums/1/photos"),
                                 {http::Part::Bytes("photo", Jpeg(1), "a.jpg", "image/jpeg")},
                                 {{"Authorization", "Bearer nope"}}));
  }
  // And nothing was stored by the refused upload.
  CHECK(emu.Stats().at("uploads") == 0);
}

TEST_CASE("shootbin: Pro-plan token is refused with 403 on every endpoint") {
  EmulatorProcess emu;
  // A photo to address, uploaded by the agency owner.
  Sb owner{emu};
  const long long photo = owner.UploadOk(1, 1, Jpeg(1), "a.jpg").at("id").get<long long>();
  const std::string pp = Sb::PhotoPath(1, 1, photo);

  Sb pro{emu, kProToken};
  std::vector<std::pair<std::string, http::Response>> answers;
  answers.emplace_back("GET projects", pro.Get("/api/projects"));
  answers.emplace_back("POST projects", pro.Post("/api/projects", {{"name", "x"}}));
  answers.emplace_back("GET albums", pro.Get("/api/projects/1/albums"));
  answers.emplace_back("POST albums",
                       pro.Multipart("/api/projects/1/albums", {http::Part::Field("name", "x")}));
  answers.emplace_back("GET photos", pro.Get(Sb::PhotosPath(1, 1)));
  answers.emplace_back("POST photo", pro.Upload(1, 1, Jpeg(2), "b.jpg"));
  answers.emplace_back("GET photo", pro.Get(pp));
  answers.emplace_back("PATCH approval", pro.Json_("PATCH", pp + "/approval", {{"approved", true}}));
  answers.emplace_back("POST revision", pro.Revision(1, 1, photo, Jpeg(3), "c.jpg"));
  answers.emplace_back("POST annotation", pro.Post(pp + "/annotations",
                                                   {{"comment", "x"}, {"x_position", 1}, {"y_position", 1}}));
  answers.emplace_back("DELETE annotation", pro.Delete(pp + "/annotations/1"));
  answers.emplace_back("GET user", pro.Get("/api/user"));
  for (const auto& [what, r] : answers) {
    INFO(what);
    RequireError(r, 403);
  }
  CHECK(emu.Stats().at("uploads") == 1);
}

TEST_CASE("shootbin: token without scopes can list but cannot create projects, albums or upload") {
  EmulatorProcess emu;
  Sb owner{emu};
  const long long photo = owner.UploadOk(1, 1, Jpeg(1), "a.jpg").at("id").get<long long>();

  Sb ro{emu, kReadonlyToken};
  {
    auto r = ro.Get("/api/projects");
    INFO(r.describe());
    CHECK(r.status == 200);
  }
  {
    auto r = ro.Get("/api/projects/1/albums");
    INFO(r.describe());
    CHECK(r.status == 200);
  }
  {
    auto r = ro.Get(Sb::PhotosPath(1, 1));
    INFO(r.describe());
    CHECK(r.status == 200);
  }
  {
    auto r = ro.Get(Sb::PhotoPath(1, 1, photo));
    INFO(r.describe());
    CHECK(r.status == 200);
  }
  RequireError(ro.Post("/api/projects", {{"name", "x"}}), 403);
  RequireError(ro.Multipart("/api/projects/1/albums", {http::Part::Field("name", "x")}), 403);
  RequireError(ro.Upload(1, 1, Jpeg(2), "b.jpg"), 403);
  RequireError(ro.Revision(1, 1, photo, Jpeg(3), "c.jpg"), 403);
  RequireError(ro.Post(Sb::PhotoPath(1, 1, photo) + "/annotations",
                       {{"comment", "x"}, {"x_position", 1}, {"y_position", 1}}),
               403);
  // Nothing was created.
  CHECK(emu.Stats().at("uploads") == 1);
  CHECK(owner.Get("/api/projects").json().size() == 1);
}

// ---------------------------------------------------------------------------
// Projects and albums

TEST_CASE("shootbin: create project returns 201 with personal_team false") {
  EmulatorProcess emu;
  Sb sb{emu};
  auto r = sb.Post("/api/projects", {{"name", "API Test Project"}});
  INFO(r.describe());
  REQUIRE(r.status == 201);
  Json p = r.json();
  REQUIRE(p["id"].is_number_integer());
  CHECK(p["id"] != 1);
  CHECK(p["name"] == "API Test Project");
  CHECK(p["personal_team"] == false);
  CHECK(IsIsoMicros(p["created_at"]));
  CHECK(IsIsoMicros(p["updated_at"]));

  Json list = sb.Get("/api/projects").json();
  CHECK(std::count_if(list.begin(), list.end(), [&](const Json& x) { return x["id"] == p["id"]; }) == 1);

  // Duplicate names are allowed (a new project each time).
  auto dup = sb.Post("/api/projects", {{"name", "API Test Project"}});
  REQUIRE(dup.status == 201);
  CHECK(dup.json()["id"] != p["id"]);

  // 255 characters is fine, 256 and a missing name are validation errors.
  CHECK(sb.Post("/api/projects", {{"name", std::string(255, 'n')}}).status == 201);
  RequireValidation(sb.Post("/api/projects", {{"name", std::string(256, 'n')}}), "name");
  RequireValidation(sb.Post("/api/projects", Json::object()), "name");
}

TEST_CASE("shootbin: create album takes multipart fields and returns 201 with photos_count 0") {
  EmulatorProcess emu;
  Sb sb{emu};
  auto r = sb.Multipart("/api/projects/1/albums", {http::Part::Field("name", "Look 1"),
                                                   http::Part::Field("description", "Terrace")});
  INFO(r.describe());
  REQUIRE(r.status == 201);
  Json a = r.json();
  REQUIRE(a["id"].is_number_integer());
  CHECK(a["team_id"] == 1);
  CHECK(a["name"] == "Look 1");
  CHECK(a["description"] == "Terrace");
  CHECK(a["photos_count"] == 0);
  CHECK(IsIsoMicros(a["created_at"]));
  CHECK(IsIsoMicros(a["updated_at"]));

  auto r2 = sb.Multipart("/api/projects/1/albums", {http::Part::Field("name", "BTS")});
  REQUIRE(r2.status == 201);
  Json b = r2.json();
  CHECK(b["description"].is_null());

  // Newest first.
  Json list = sb.Get("/api/projects/1/albums").json();
  REQUIRE(list.is_array());
  REQUIRE(list.size() == 3);
  CHECK(list[0]["id"] == b["id"]);
  CHECK(list[1]["id"] == a["id"]);
  CHECK(list[2]["id"] == 1);

  // JSON bodies are accepted too (shootbin.md assumption).
  CHECK(sb.Post("/api/projects/1/albums", {{"name", "From JSON"}}).status == 201);

  RequireValidation(sb.Multipart("/api/projects/1/albums", {http::Part::Field("description", "x")}),
                    "name");
  RequireValidation(
      sb.Multipart("/api/projects/1/albums", {http::Part::Field("name", std::string(256, 'a'))}),
      "name");
  RequireError(sb.Multipart("/api/projects/424242/albums", {http::Part::Field("name", "x")}), 404);
}

// ---------------------------------------------------------------------------
// Photo upload

TEST_CASE("shootbin: uploading a JPEG returns 201 with the photo and the client_original_filename") {
  EmulatorProcess emu;
  Sb sb{emu};
  const std::string jpeg = Jpeg(7, 320, 240);

  auto r = sb.Upload(1, 1, jpeg, "upload-tmp-1234.jpg", "IMG_0001.jpg");
  INFO(r.describe());
  REQUIRE(r.status == 201);
  Json body = r.json();
  if (body.contains("photo")) {  // the assumed wrapped form: check it fully
    CHECK(body["success"] == true);
    CHECK(body["message"].is_string());
  }
  Json photo = PhotoOf(body);
  REQUIRE(photo["id"].is_number_integer());
  CHECK(photo["album_id"] == 1);
  CHECK(photo["original_filename"] == "IMG_0001.jpg");
  CHECK(photo["title"] == "IMG_0001");  // default: original filename without extension
  CHECK(photo["description"].is_null());
  CHECK(photo["tags"].is_array());
  CHECK(photo["approved_at"].is_null());
  CHECK(photo["revision_uploaded_at"].is_null());
  CHECK(photo["has_annotations"] == false);
  CHECK(photo["image_url"].is_string());
  if (photo.contains("file_size")) CHECK(photo["file_size"] == jpeg.size());

  // Without client_original_filename the part's filename is stored.
  Json p2 = sb.UploadOk(1, 1, Jpeg(8), "Frame_007.jpg");
  CHECK(p2["original_filename"] == "Frame_007.jpg");
  CHECK(p2["title"] == "Frame_007");
  // RAW-looking names are stored as given.
  Json p3 = sb.UploadOk(1, 1, Jpeg(9), "x.jpg", "IMG_4821.CR3");
  CHECK(p3["original_filename"] == "IMG_4821.CR3");

  // Explicit title and description.
  auto r4 = sb.Upload(1, 1, Jpeg(10), "y.jpg", {},
                      {http::Part::Field("title", "Hero shot"), http::Part::Field("description", "Look 2")});
  REQUIRE(r4.status == 201);
  Json p4 = PhotoOf(r4.json());
  CHECK(p4["title"] == "Hero shot");
  CHECK(p4["description"] == "Look 2");

  // The album counts them; the listing shows them.
  Json albums = sb.Get("/api/projects/1/albums").json();
  auto main = std::find_if(albums.begin(), albums.end(), [](const Json& a) { return a["id"] == 1; });
  REQUIRE(main != albums.end());
  CHECK((*main)["photos_count"] == 4);
  auto got = sb.Get(Sb::PhotoPath(1, 1, photo["id"].get<long long>()));
  REQUIRE(got.status == 200);
  CHECK(PhotoOf(got.json())["original_filename"] == "IMG_0001.jpg");

  // Stored bytes match what was sent (when the emulator exposes a checksum).
  Json stats = emu.Stats();
  CHECK(stats["uploads"] == 4);
  CHECK(stats["bytes_received"].get<long long>() >= static_cast<long long>(jpeg.size()));

  // Unknown album / album of another project: 404.
  RequireError(sb.Upload(1, 9999, Jpeg(11), "z.jpg"), 404);
  RequireError(sb.Upload(9999, 1, Jpeg(11), "z.jpg"), 404);
}

TEST_CASE("shootbin: the file field is named photo, with file and image accepted as aliases") {
  EmulatorProcess emu;
  Sb sb{emu};
  for (const char* field : {"photo", "file", "image"}) {
    INFO(field);
    auto r = sb.Multipart(Sb::PhotosPath(1, 1),
                          {http::Part::Bytes(field, Jpeg(std::string(field).size()), "a.jpg", "image/jpeg")});
    INFO(r.describe());
    CHECK(r.status == 201);
  }
  // Any other field name: the photo is missing.
  RequireValidation(sb.Multipart(Sb::PhotosPath(1, 1),
                                 {http::Part::Bytes("upload", Jpeg(1), "a.jpg", "image/jpeg")}),
                    "photo");
  RequireValidation(sb.Multipart(Sb::PhotosPath(1, 1), {http::Part::Field("title", "no file")}),
                    "photo");
  CHECK(emu.Stats().at("uploads") == 3);
}

TEST_CASE("shootbin: PNG and TIFF uploads are accepted") {
  EmulatorProcess emu;
  Sb sb{emu};
  Json png = sb.UploadOk(1, 1, Png1x1(), "dot.png");
  CHECK(png["original_filename"] == "dot.png");
  Json tif = sb.UploadOk(1, 1, Tiff1x1(), "scan.tiff");
  CHECK(tif["original_filename"] == "scan.tiff");
}

TEST_CASE("shootbin: upload over 10 MB is refused with 422 and the documented error shape") {
  EmulatorProcess emu;
  Sb sb{emu};
  const std::string base = Jpeg(3, 320, 240);

  auto big = sb.Upload(1, 1, PadJpeg(base, kTenMb + 1), "big.jpg");
  RequireValidation(big, "photo");
  CHECK(big.json()["errors"]["photo"][0] == "The photo may not be greater than 10240 kilobytes.");
  CHECK(emu.Stats().at("uploads") == 0);

  // Exactly 10 MB (10 x 1024 x 1024 bytes) is within the limit.
  auto at_limit = sb.Upload(1, 1, PadJpeg(base, kTenMb), "limit.jpg");
  INFO(at_limit.describe());
  CHECK(at_limit.status == 201);
  Json stats = emu.Stats();
  CHECK(stats.at("uploads") == 1);
  CHECK(stats.at("bytes_received").get<long long>() >= static_cast<long long>(kTenMb));
}

TEST_CASE("shootbin: a text file renamed .jpg and a truncated JPEG are refused with 422") {
  EmulatorProcess emu;
  Sb sb{emu};
  SECTION("text renamed .jpg") {
    auto r = sb.Upload(1, 1, "this is not an image, just text\n", "fake.jpg");
    RequireValidation(r, "photo");
    CHECK(r.json()["message"] == "The photo must be an image.");
    CHECK(r.json()["errors"]["photo"][0] == "The photo must be an image.");
  }
  SECTION("truncated JPEG") {
    const std::string jpeg = Jpeg(5, 320, 240);
    RequireValidation(sb.Upload(1, 1, jpeg.substr(0, jpeg.size() / 2), "cut.jpg"), "photo");
  }
  SECTION("JPEG cut just before EOI") {
    const std::string jpeg = Jpeg(6, 320, 240);
    RequireValidation(sb.Upload(1, 1, jpeg.substr(0, jpeg.size() - 2), "cut2.jpg"), "photo");
  }
  SECTION("empty file") { RequireValidation(sb.Upload(1, 1, "", "empty.jpg"), "photo"); }
  SECTION("a PNG header with nothing after it") {
    RequireValidation(sb.Upload(1, 1, Png1x1().substr(0, 16), "cut.png"), "photo");
  }
  CHECK(emu.Stats().at("uploads") == 0);
  auto list = sb.Get(Sb::PhotosPath(1, 1));
  REQUIRE(list.status == 200);
  CHECK(list.json()["data"].empty());
}

// ---------------------------------------------------------------------------
// Photo listing

TEST_CASE("shootbin: photo list pagination walks 130 photos newest first, each exactly once") {
  EmulatorProcess emu(kNoRateLimit);
  Sb sb{emu};
  const std::string jpeg = Jpeg(1, 16, 16);
  std::vector<long long> uploaded;
  for (int i = 0; i < 130; ++i) {
    auto r = sb.Upload(1, 1, jpeg, "f" + std::to_string(i) + ".jpg");
    INFO(r.describe());
    REQUIRE(r.status == 201);
    uploaded.push_back(PhotoOf(r.json())["id"].get<long long>());
  }
  std::vector<long long> expected(uploaded.rbegin(), uploaded.rend());  // newest first

  std::vector<long long> seen;
  std::vector<std::size_t> page_sizes;
  std::string cursor;
  std::set<std::string> cursors;
  for (int page = 0; page < 10; ++page) {
    std::string path = Sb::PhotosPath(1, 1) + "?per_page=50";
    if (!cursor.empty()) path += "&cursor=" + cursor;
    auto r = sb.Get(path);
    INFO(r.describe());
    REQUIRE(r.status == 200);
    Json j = r.json();
    REQUIRE(j["data"].is_array());
    CHECK(j["photos"] == j["data"]);
    CHECK(j["per_page"] == 50);
    page_sizes.push_back(j["data"].size());
    for (const auto& p : j["data"]) {
      CHECK(p["album_id"] == 1);
      seen.push_back(p["id"].get<long long>());
    }
    if (j["next_cursor"].is_null()) {
      CHECK(j["has_more"] == false);
      break;
    }
    CHECK(j["has_more"] == true);
    REQUIRE(j["next_cursor"].is_string());
    cursor = j["next_cursor"].get<std::string>();
    CHECK(cursors.insert(cursor).second);  // no cursor repeats
  }
  CHECK(page_sizes == std::vector<std::size_t>{50, 50, 30});
  CHECK(seen == expected);

  // Default page size 50; per_page above 100 is clamped to 100.
  {
    Json j = sb.Get(Sb::PhotosPath(1, 1)).json();
    CHECK(j["per_page"] == 50);
    CHECK(j["data"].size() == 50);
  }
  {
    auto r = sb.Get(Sb::PhotosPath(1, 1) + "?per_page=500");
    INFO(r.describe());
    REQUIRE(r.status == 200);
    Json j = r.json();
    CHECK(j["per_page"] == 100);
    CHECK(j["data"].size() == 100);
    CHECK(j["has_more"] == true);
  }
  // The walk with per_page=100 gives the same sequence.
  std::vector<long long> walk100;
  for (const auto& p : sb.ListAll(1, 1, 100)) walk100.push_back(p["id"].get<long long>());
  CHECK(walk100 == expected);
}

TEST_CASE("shootbin: photo list rejects per_page below 1 and garbled cursors with 422") {
  EmulatorProcess emu;
  Sb sb{emu};
  sb.UploadOk(1, 1, Jpeg(1), "a.jpg");
  RequireError(sb.Get(Sb::PhotosPath(1, 1) + "?per_page=0"), 422);
  RequireError(sb.Get(Sb::PhotosPath(1, 1) + "?per_page=-5"), 422);
  auto bad = sb.Get(Sb::PhotosPath(1, 1) + "?cursor=%21%21not-a-cursor%21%21");
  RequireError(bad, 422);
  CHECK(bad.json()["message"] == "Invalid cursor.");
  RequireError(sb.Get(Sb::PhotosPath(1, 1) + "?cursor=eyJmb28iOiJiYXIifQ"), 422);  // {"foo":"bar"}
}

TEST_CASE("shootbin: photo list of an album outside the project is 404") {
  EmulatorProcess emu;
  Sb sb{emu};
  auto [project, album] = NewProjectAndAlbum(sb);
  RequireError(sb.Get(Sb::PhotosPath(1, album)), 404);       // album of another project
  RequireError(sb.Get(Sb::PhotosPath(project, 1)), 404);     // and the other way round
  RequireError(sb.Get(Sb::PhotosPath(1, 99999)), 404);
  RequireError(sb.Get(Sb::PhotosPath(99999, 1)), 404);
  auto ok = sb.Get(Sb::PhotosPath(project, album));
  INFO(ok.describe());
  CHECK(ok.status == 200);
  CHECK(ok.json()["data"].empty());
  CHECK(ok.json()["next_cursor"].is_null());
  CHECK(ok.json()["has_more"] == false);
}

TEST_CASE("shootbin: get photo returns it with annotations and revisions") {
  EmulatorProcess emu;
  Sb sb{emu};
  const long long id = sb.UploadOk(1, 1, Jpeg(1), "a.jpg", "IMG_1.jpg")["id"].get<long long>();
  auto r = sb.Get(Sb::PhotoPath(1, 1, id));
  INFO(r.describe());
  REQUIRE(r.status == 200);
  Json p = PhotoOf(r.json());
  CHECK(p["id"] == id);
  CHECK(p["album_id"] == 1);
  CHECK(p["original_filename"] == "IMG_1.jpg");
  REQUIRE(p["annotations"].is_array());
  CHECK(p["annotations"].empty());
  REQUIRE(p["revisions"].is_array());
  CHECK(p["revisions"].empty());

  auto [project, album] = NewProjectAndAlbum(sb);
  RequireError(sb.Get(Sb::PhotoPath(project, album, id)), 404);  // not in that album
  RequireError(sb.Get(Sb::PhotoPath(1, 1, id + 1000)), 404);
}

// ---------------------------------------------------------------------------
// Revisions

TEST_CASE("shootbin: revision upload returns 201 with the documented shape and resets approval") {
  EmulatorProcess emu;
  Sb sb{emu};
  const long long id = sb.UploadOk(1, 1, Jpeg(1), "a.jpg", "IMG_4821.jpg")["id"].get<long long>();
  const std::string pp = Sb::PhotoPath(1, 1, id);

  // Approve and annotate the live version first.
  auto ap = sb.Json_("PATCH", pp + "/approval", {{"approved", true}});
  INFO(ap.describe());
  REQUIRE(ap.status == 200);
  CHECK(IsIsoMicros(PhotoOf(ap.json())["approved_at"]));
  auto an = sb.Post(pp + "/annotations", {{"comment", "hair"}, {"x_position", 42.5}, {"y_position", 31.2}});
  REQUIRE(an.status == 201);

  auto r = sb.Revision(1, 1, id, Jpeg(2), "tmp-upload.jpg", "IMG_4821_v2.jpg");
  INFO(r.describe());
  REQUIRE(r.status == 201);
  Json body = r.json();
  CHECK(body["success"] == true);
  CHECK(body["message"].is_string());
  REQUIRE(body["photo"].is_object());
  Json p = body["photo"];
  CHECK(p["id"] == id);
  CHECK(p["album_id"] == 1);
  CHECK(p["original_filename"] == "IMG_4821_v2.jpg");
  CHECK(p["approved_at"].is_null());
  CHECK(IsIsoMicros(p["revision_uploaded_at"]));
  CHECK(p["has_annotations"] == false);
  CHECK(p["annotations"] == Json::array());
  CHECK(p["image_url"].is_string());
  REQUIRE(p["revisions"].is_array());
  REQUIRE(p["revisions"].size() == 1);
  Json rev = p["revisions"][0];
  CHECK(rev["revision_number"] == 1);
  CHECK(rev["original_filename"] == "IMG_4821.jpg");
  CHECK(IsIsoMicros(rev["uploaded_at"]));
  CHECK(rev["archived_annotations_count"] == 1);
  CHECK(rev["image_url"].is_string());

  // A second revision without client_original_filename stores the part's filename.
  auto r2 = sb.Revision(1, 1, id, Jpeg(3), "IMG_4821_v3.jpg");
  INFO(r2.describe());
  REQUIRE(r2.status == 201);
  Json p2 = r2.json()["photo"];
  CHECK(p2["original_filename"] == "IMG_4821_v3.jpg");
  REQUIRE(p2["revisions"].size() == 2);
  std::set<int> numbers;
  for (const auto& x : p2["revisions"]) numbers.insert(x["revision_number"].get<int>());
  CHECK(numbers == std::set<int>{1, 2});

  // Same photo, still one photo in the album; GET shows the history too.
  Json got = PhotoOf(sb.Get(pp).json());
  CHECK(got["revisions"].size() == 2);
  CHECK(got["original_filename"] == "IMG_4821_v3.jpg");
  CHECK(sb.ListAll(1, 1).size() == 1);
  Json stats = emu.Stats();
  CHECK(stats["revisions"] == 2);
  CHECK(stats["uploads"] == 1);

  // Unknown photo: 404.
  RequireError(sb.Revision(1, 1, id + 1000, Jpeg(4), "x.jpg"), 404);
}

TEST_CASE("shootbin: revision uploads are validated like photos, field name revision") {
  EmulatorProcess emu;
  Sb sb{emu};
  const long long id = sb.UploadOk(1, 1, Jpeg(1), "a.jpg")["id"].get<long long>();
  RequireValidation(sb.Revision(1, 1, id, "plain text", "fake.jpg"), "revision");
  const std::string jpeg = Jpeg(2, 320, 240);
  RequireValidation(sb.Revision(1, 1, id, jpeg.substr(0, jpeg.size() / 2), "cut.jpg"), "revision");
  RequireValidation(sb.Revision(1, 1, id, PadJpeg(jpeg, kTenMb + 1), "big.jpg"), "revision");
  // The file must come as `revision`.
  RequireValidation(sb.Multipart(Sb::PhotoPath(1, 1, id) + "/revisions",
                                 {http::Part::Bytes("photo", Jpeg(3), "a.jpg", "image/jpeg")}),
                    "revision");
  CHECK(emu.Stats()["revisions"] == 0);
  CHECK(PhotoOf(sb.Get(Sb::PhotoPath(1, 1, id)).json())["revisions"].empty());
}

TEST_CASE("shootbin: revision by a token that is not the project owner is refused with 403") {
  EmulatorProcess emu;
  Sb owner{emu};
  const long long id = owner.UploadOk(1, 1, Jpeg(1), "a.jpg")["id"].get<long long>();
  Sb approver{emu, kApproverToken};
  // The approver is a member: it can read.
  auto read = approver.Get(Sb::PhotoPath(1, 1, id));
  INFO(read.describe());
  CHECK(read.status == 200);
  RequireError(approver.Revision(1, 1, id, Jpeg(2), "b.jpg"), 403);
  CHECK(emu.Stats()["revisions"] == 0);
}

TEST_CASE("shootbin: concurrent revisions of one photo get 409") {
  EmulatorProcess emu;
  Sb sb{emu};
  const long long id = sb.UploadOk(1, 1, Jpeg(1), "a.jpg")["id"].get<long long>();
  emu.Config({{"revision_processing_ms", 1500}});

  const std::string a = Jpeg(2), b = Jpeg(3);
  auto f1 = std::async(std::launch::async, [&] { return sb.Revision(1, 1, id, a, "v2.jpg"); });
  auto f2 = std::async(std::launch::async, [&] { return sb.Revision(1, 1, id, b, "v3.jpg"); });
  http::Response r1 = f1.get(), r2 = f2.get();
  INFO(r1.describe());
  INFO(r2.describe());
  std::multiset<long> statuses{r1.status, r2.status};
  REQUIRE(statuses == std::multiset<long>{201, 409});
  const http::Response& conflict = r1.status == 409 ? r1 : r2;
  RequireError(conflict, 409);
  CHECK(conflict.json()["message"] == "A revision is already being processed for this photo.");

  // Once the first is done, the next revision goes through.
  emu.Config({{"revision_processing_ms", 0}});
  auto r3 = sb.Revision(1, 1, id, Jpeg(4), "v4.jpg");
  INFO(r3.describe());
  CHECK(r3.status == 201);
  CHECK(emu.Stats()["revisions"] == 2);
}

// ---------------------------------------------------------------------------
// Locked projects

TEST_CASE("shootbin: locked project refuses upload, revision and album create with 403") {
  EmulatorProcess emu;
  Sb sb{emu};
  Json seeded = emu.Seed({{"projects", {{{"name", "Locked"}, {"albums", {"A"}}, {"locked", true}}}}});
  INFO(seeded.dump());
  REQUIRE(seeded["projects"].is_array());
  REQUIRE(seeded["projects"].size() == 1);
  const long long project = seeded["projects"][0]["id"].get<long long>();
  const long long album = seeded["projects"][0]["albums"][0]["id"].get<long long>();

  // Reads still work.
  Json projects = sb.Get("/api/projects").json();
  CHECK(std::any_of(projects.begin(), projects.end(),
                    [&](const Json& p) { return p["id"] == project && p["name"] == "Locked"; }));
  CHECK(sb.Get("/api/projects/" + std::to_string(project) + "/albums").status == 200);
  CHECK(sb.Get(Sb::PhotosPath(project, album)).status == 200);

  auto up = sb.Upload(project, album, Jpeg(1), "a.jpg");
  RequireError(up, 403);
  CHECK(up.json()["message"] == "This project is locked for review.");
  RequireError(sb.Multipart("/api/projects/" + std::to_string(project) + "/albums",
                            {http::Part::Field("name", "New")}),
               403);
  CHECK(emu.Stats()["uploads"] == 0);

  // A revision: lock the project after a photo is in it (seeding a locked
  // project with photos), or, when the emulator cannot seed photos, a
  // revision of any photo id in the locked project must still not be 201.
  Json seeded2 = emu.Seed({{"projects",
                            {{{"name", "Locked2"}, {"albums", {{{"name", "B"}, {"photos", 1}}}},
                              {"locked", true}}}}});
  INFO(seeded2.dump());
  const long long p2 = seeded2["projects"][0]["id"].get<long long>();
  const long long a2 = seeded2["projects"][0]["albums"][0]["id"].get<long long>();
  std::vector<Json> photos = sb.ListAll(p2, a2);
  REQUIRE(photos.size() == 1);
  RequireError(sb.Revision(p2, a2, photos[0]["id"].get<long long>(), Jpeg(2), "b.jpg"), 403);
  CHECK(emu.Stats()["revisions"] == 0);
}

// ---------------------------------------------------------------------------
// Annotations

TEST_CASE("shootbin: annotations are created with 201, deleted with 204, validated with 422") {
  EmulatorProcess emu;
  Sb sb{emu};
  const long long id = sb.UploadOk(1, 1, Jpeg(1), "a.jpg")["id"].get<long long>();
  const std::string pp = Sb::PhotoPath(1, 1, id);

  auto r = sb.Post(pp + "/annotations",
                   {{"comment", "Please retouch the hair on the left side."}, {"x_position", 42.5},
                    {"y_position", 31.2}});
  INFO(r.describe());
  REQUIRE(r.status == 201);
  Json a = r.json();
  REQUIRE(a["id"].is_number_integer());
  CHECK(a["comment"] == "Please retouch the hair on the left side.");
  CHECK(a["x_position"].get<double>() == Approx(42.5));
  CHECK(a["y_position"].get<double>() == Approx(31.2));
  CHECK(IsIsoMicros(a["created_at"]));

  Json p = PhotoOf(sb.Get(pp).json());
  CHECK(p["has_annotations"] == true);
  REQUIRE(p["annotations"].size() == 1);
  CHECK(p["annotations"][0]["id"] == a["id"]);

  // Boundaries 0 and 100 are inside the range.
  CHECK(sb.Post(pp + "/annotations", {{"comment", "corner"}, {"x_position", 0}, {"y_position", 100}})
            .status == 201);

  // Validation.
  RequireValidation(sb.Post(pp + "/annotations", {{"x_position", 1}, {"y_position", 1}}), "comment");
  RequireValidation(
      sb.Post(pp + "/annotations", {{"comment", std::string(256, 'c')}, {"x_position", 1}, {"y_position", 1}}),
      "comment");
  RequireValidation(sb.Post(pp + "/annotations", {{"comment", "x"}, {"x_position", 100.5}, {"y_position", 1}}),
                    "x_position");
  RequireValidation(sb.Post(pp + "/annotations", {{"comment", "x"}, {"x_position", -0.1}, {"y_position", 1}}),
                    "x_position");
  RequireValidation(sb.Post(pp + "/annotations", {{"comment", "x"}, {"x_position", 1}, {"y_position", 101}}),
                    "y_position");
  RequireValidation(sb.Post(pp + "/annotations", {{"comment", "x"}, {"x_position", 1}}), "y_position");

  // Delete: 204 with an empty body; again: 404.
  const std::string apath = pp + "/annotations/" + std::to_string(a["id"].get<long long>());
  auto d = sb.Delete(apath);
  INFO(d.describe());
  CHECK(d.status == 204);
  CHECK(d.body.empty());
  RequireError(sb.Delete(apath), 404);
  Json after = PhotoOf(sb.Get(pp).json());
  CHECK(after["annotations"].size() == 1);  // the corner one

  // Photo not in that album: 404.
  auto [project, album] = NewProjectAndAlbum(sb);
  RequireError(sb.Post(Sb::PhotoPath(project, album, id) + "/annotations",
                       {{"comment", "x"}, {"x_position", 1}, {"y_position", 1}}),
               404);
}

// ---------------------------------------------------------------------------
// Rate limiting

TEST_CASE("shootbin: every response carries X-RateLimit-Limit and X-RateLimit-Remaining") {
  EmulatorProcess emu;
  Sb sb{emu};
  emu.FreezeClock();  // the rate-limit window is a fixed minute: no boundary inside the burst
  auto r1 = sb.Get("/api/projects");
  auto r2 = sb.Get("/api/projects/1/albums");
  auto r3 = sb.Get("/api/projects/1/albums/77/photos");  // a 404 counts and carries them too
  auto r4 = sb.Post("/api/projects", Json::object());    // and a 422
  CHECK(r3.status == 404);
  CHECK(r4.status == 422);
  CHECK(HeaderInt(r1, "X-RateLimit-Limit") == 60);
  CHECK(HeaderInt(r1, "X-RateLimit-Remaining") == 59);
  CHECK(HeaderInt(r2, "X-RateLimit-Remaining") == 58);
  CHECK(HeaderInt(r3, "X-RateLimit-Limit") == 60);
  CHECK(HeaderInt(r3, "X-RateLimit-Remaining") == 57);
  CHECK(HeaderInt(r4, "X-RateLimit-Remaining") == 56);
  // The budget is per token.
  auto other = http::Get(emu.url("/api/projects"), Auth(kReadonlyToken));
  CHECK(HeaderInt(other, "X-RateLimit-Remaining") == 59);
}

TEST_CASE("shootbin: with --shootbin-rpm 5 the 6th request gets 429 with Retry-After and X-RateLimit-Reset") {
  EmulatorProcess emu({"--shootbin-rpm", "5"});
  Sb sb{emu};
  emu.FreezeClock();  // the rate-limit window is a fixed minute: no boundary inside the burst
  for (int i = 0; i < 5; ++i) {
    auto r = sb.Get("/api/projects");
    INFO(i << ": " << r.describe());
    REQUIRE(r.status == 200);
    CHECK(HeaderInt(r, "X-RateLimit-Limit") == 5);
    CHECK(HeaderInt(r, "X-RateLimit-Remaining") == 4 - i);
  }
  const long long before = NowUnix();
  auto r = sb.Get("/api/projects");
  RequireError(r, 429);
  CHECK(r.json()["message"] == "Too Many Attempts.");
  const long long retry_after = HeaderInt(r, "Retry-After");
  CHECK(retry_after >= 1);
  CHECK(retry_after <= 60);
  const long long reset = HeaderInt(r, "X-RateLimit-Reset");  // unix epoch seconds
  CHECK(reset >= before);
  CHECK(reset <= before + 61);
  CHECK(HeaderInt(r, "X-RateLimit-Remaining") == 0);
  // Uploads are limited too, and nothing is stored.
  RequireError(sb.Upload(1, 1, Jpeg(1), "a.jpg"), 429);
  CHECK(emu.Stats()["uploads"] == 0);
  // Another token has its own budget.
  auto other = http::Get(emu.url("/api/projects"), Auth(kReadonlyToken));
  INFO(other.describe());
  CHECK(other.status == 200);

  Json stats = emu.Stats();
  CHECK(MaxRpm(stats) >= 5);
  // The next window has a fresh budget (the emulator's clock moved, not ours).
  emu.AdvanceClock(60);
  CHECK(sb.Get("/api/projects").status == 200);
}

// ---------------------------------------------------------------------------
// Stats and admin

TEST_CASE("shootbin: stats count uploads, duplicates, bytes received and requests per minute") {
  EmulatorProcess emu;
  Sb sb{emu};
  emu.FreezeClock();  // the rate-limit window is a fixed minute: no boundary inside the burst
  const std::string a = Jpeg(1, 200, 150), b = Jpeg(2, 200, 150);
  // A duplicate = a photo stored under a name another photo of the same
  // album already has (the client should have sent a revision or skipped).
  sb.UploadOk(1, 1, a, "tmp1.jpg", "IMG_1.jpg");
  sb.UploadOk(1, 1, a, "tmp2.jpg", "IMG_1.jpg");  // same name + same content: a duplicate
  sb.UploadOk(1, 1, a, "IMG_2.jpg");              // same content, other name: not one
  sb.UploadOk(1, 1, b, "tmp3.jpg", "IMG_1.jpg");  // same name, other content: one too
  // Shootbin does not dedupe: all four are listed.
  CHECK(sb.ListAll(1, 1).size() == 4);

  Json s = emu.Stats();
  INFO(s.dump());
  CHECK(s.at("uploads") == 4);
  CHECK(s.at("duplicates") == 2);
  CHECK(s.at("bytes_received").get<long long>() >= static_cast<long long>(3 * a.size() + b.size()));
  CHECK(MaxRpm(s) == 5);  // 4 uploads + 1 listing with one token
  REQUIRE(s.at("requests").is_object());
  long long total = 0;
  for (const auto& [k, v] : s["requests"].items()) total += v.get<long long>();
  CHECK(total >= 5);
  CHECK(StatusCount(s, 201) == 4);
  CHECK(s.contains("revisions"));

  // The same file into another album is not a duplicate (duplicates are per album).
  auto [project, album] = NewProjectAndAlbum(sb);
  sb.UploadOk(project, album, a, "tmp4.jpg", "IMG_1.jpg");
  CHECK(emu.Stats().at("duplicates") == 2);

  // Reset: back to the defaults.
  emu.Reset();
  Json projects = sb.Get("/api/projects").json();
  REQUIRE(projects.size() == 1);
  CHECK(projects[0]["name"] == "Demo");
  CHECK(sb.Get(Sb::PhotosPath(1, 1)).json()["data"].empty());
}

// ---------------------------------------------------------------------------
// Faults

TEST_CASE("shootbin: --fault-5xx 1 answers API requests with 5xx") {
  EmulatorProcess emu({"--fault-5xx", "1"});
  Sb sb{emu};
  for (int i = 0; i < 3; ++i) {
    auto r = sb.Get("/api/projects");
    INFO(r.describe());
    CHECK(r.status >= 500);
    CHECK(r.status <= 599);
  }
  auto up = sb.Upload(1, 1, Jpeg(1), "a.jpg");
  CHECK(up.status >= 500);
  CHECK(up.status <= 599);
  // Admin endpoints are not faulted; faults can be changed at run time.
  CHECK(emu.Stats()["uploads"] == 0);
  emu.SetFaults({{"rate_5xx", 0}});
  auto ok = sb.Get("/api/projects");
  INFO(ok.describe());
  CHECK(ok.status == 200);
}

TEST_CASE("shootbin: --fault-reset 1 makes an upload fail at the transport level") {
  EmulatorProcess emu({"--fault-reset", "1"});
  Sb sb{emu};
  auto r = sb.Upload(1, 1, Jpeg(1, 640, 480), "a.jpg", "IMG_1.jpg");
  INFO(r.describe());
  CHECK_FALSE(r.transport_ok());
  CHECK(r.status == 0);
  // Nothing was stored.
  CHECK(emu.Stats()["uploads"] == 0);
  emu.SetFaults({{"rate_reset", 0}});
  CHECK(sb.ListAll(1, 1).empty());
}

TEST_CASE("shootbin: --fault-reset-after-store 1 drops the connection but the photo is stored") {
  EmulatorProcess emu({"--fault-reset-after-store", "1"});
  Sb sb{emu};
  const std::string jpeg = Jpeg(1, 320, 240);
  auto r = sb.Upload(1, 1, jpeg, "tmp.jpg", "IMG_1.jpg");
  INFO(r.describe());
  CHECK_FALSE(r.transport_ok());
  CHECK(r.status == 0);
  emu.SetFaults({{"rate_reset_after_store", 0}});
  std::vector<Json> photos = sb.ListAll(1, 1);
  REQUIRE(photos.size() == 1);
  CHECK(photos[0]["original_filename"] == "IMG_1.jpg");
  CHECK(emu.Stats()["uploads"] == 1);
  // The naive retry makes a duplicate.
  sb.UploadOk(1, 1, jpeg, "tmp.jpg", "IMG_1.jpg");
  CHECK(emu.Stats()["duplicates"] == 1);
}

TEST_CASE("shootbin: --fault-429-burst 3 answers the first three requests with 429") {
  EmulatorProcess emu({"--fault-429-burst", "3"});
  Sb sb{emu};
  for (int i = 0; i < 3; ++i) {
    auto r = sb.Get("/api/projects");
    INFO(i << ": " << r.describe());
    RequireError(r, 429);
    CHECK(r.json()["message"] == "Too Many Attempts.");
    CHECK(HeaderInt(r, "Retry-After") >= 0);
    HeaderInt(r, "X-RateLimit-Reset");
  }
  auto ok = sb.Get("/api/projects");
  INFO(ok.describe());
  CHECK(ok.status == 200);
  // A burst can be set again at run time.
  emu.SetFaults({{"burst_429", 1}});
  CHECK(sb.Get("/api/projects").status == 429);
  CHECK(sb.Get("/api/projects").status == 200);
}

// ---------------------------------------------------------------------------
// Stored bytes, approval, users, latency

TEST_CASE("shootbin: the optional checksum_sha256 and file_size describe the bytes that were sent") {
  EmulatorProcess emu;
  Sb sb{emu};
  const std::string jpeg = Jpeg(21, 300, 200);
  Json p = sb.UploadOk(1, 1, jpeg, "a.jpg");
  if (p.contains("file_size")) CHECK(p["file_size"] == jpeg.size());
  if (p.contains("checksum_sha256")) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(jpeg.data(), jpeg.size(), md, &len, EVP_sha256(), nullptr);
    std::string hex;
    for (unsigned i = 0; i < len; ++i) {
      static const char* k = "0123456789abcdef";
      hex += k[md[i] >> 4];
      hex += k[md[i] & 15];
    }
    CHECK(p["checksum_sha256"] == hex);
  }
  for (const char* key : {"created_at", "updated_at"}) {
    if (p.contains(key)) CHECK(IsIsoMicros(p[key]));
  }
}

TEST_CASE("shootbin: approval toggle sets and clears approved_at and needs the update scope") {
  EmulatorProcess emu;
  Sb sb{emu};
  const long long id = sb.UploadOk(1, 1, Jpeg(1), "a.jpg")["id"].get<long long>();
  const std::string path = Sb::PhotoPath(1, 1, id) + "/approval";
  auto on = sb.Json_("PATCH", path, {{"approved", true}});
  INFO(on.describe());
  REQUIRE(on.status == 200);
  CHECK(IsIsoMicros(PhotoOf(on.json())["approved_at"]));
  auto off = sb.Json_("PATCH", path, {{"approved", false}});
  REQUIRE(off.status == 200);
  CHECK(PhotoOf(off.json())["approved_at"].is_null());
  Sb ro{emu, kReadonlyToken};
  RequireError(ro.Json_("PATCH", path, {{"approved", true}}), 403);
  RequireError(sb.Json_("PATCH", Sb::PhotoPath(1, 1, id + 1000) + "/approval", {{"approved", true}}), 404);
}

TEST_CASE("shootbin: user logins can be listed, created, read, updated and removed") {
  EmulatorProcess emu;
  Sb sb{emu};
  auto list = sb.Get("/api/user");
  INFO(list.describe());
  REQUIRE(list.status == 200);
  REQUIRE(list.json().is_array());
  const std::size_t before = list.json().size();
  for (const auto& u : list.json()) {
    CHECK(u["id"].is_number_integer());
    CHECK(u["name"].is_string());
    CHECK(u["email"].is_string());
    CHECK(u.contains("proofing_watermark_text"));
  }

  auto c = sb.Post("/api/user", {{"name", "Assistant"}, {"email", "assistant@example.com"},
                                 {"password", "s3cret-pass"}, {"password_confirmation", "s3cret-pass"},
                                 {"terms", "true"}});
  INFO(c.describe());
  REQUIRE(c.status == 201);
  Json u = c.json();
  CHECK(u["name"] == "Assistant");
  CHECK(u["email"] == "assistant@example.com");
  CHECK_FALSE(u.contains("password"));
  const std::string upath = "/api/user/" + std::to_string(u["id"].get<long long>());
  CHECK(sb.Get("/api/user").json().size() == before + 1);

  // Email unique platform-wide; required fields.
  RequireValidation(sb.Post("/api/user", {{"name", "Again"}, {"email", "assistant@example.com"},
                                          {"password", "s3cret-pass"},
                                          {"password_confirmation", "s3cret-pass"}, {"terms", "true"}}),
                    "email");
  RequireValidation(sb.Post("/api/user", {{"email", "x@example.com"}}), "name");

  auto g = sb.Get(upath);
  REQUIRE(g.status == 200);
  CHECK(g.json()["email"] == "assistant@example.com");
  auto p = sb.Json_("PUT", upath, {{"name", "Lead Assistant"}});
  INFO(p.describe());
  REQUIRE(p.status == 200);
  CHECK(p.json()["name"] == "Lead Assistant");
  auto d = sb.Delete(upath);
  INFO(d.describe());
  CHECK(d.status == 204);
  CHECK(d.body.empty());
  RequireError(sb.Get(upath), 404);
}

TEST_CASE("shootbin: an Agency account can add at most 5 logins") {
  EmulatorProcess emu;
  Sb sb{emu};
  const std::size_t existing = sb.Get("/api/user").json().size();  // the owner (and maybe others)
  int created = 0;
  http::Response last;
  for (int i = 0; i < 7; ++i) {
    const std::string email = "login" + std::to_string(i) + "@example.com";
    last = sb.Post("/api/user", {{"name", "L" + std::to_string(i)}, {"email", email},
                                 {"password", "s3cret-pass"}, {"password_confirmation", "s3cret-pass"},
                                 {"terms", "true"}});
    if (last.status != 201) break;
    ++created;
  }
  INFO("existing users: " << existing);
  CHECK(created <= 5);
  RequireError(last, 403);
}

TEST_CASE("shootbin: --latency-ms delays API answers") {
  EmulatorProcess emu({"--latency-ms", "300"});
  Sb sb{emu};
  const auto t0 = std::chrono::steady_clock::now();
  auto r = sb.Get("/api/projects");
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  CHECK(r.status == 200);
  CHECK(ms >= 290);
}

// ---------------------------------------------------------------------------
// Hostile-server behaviour: the emulator judges images itself, answers like
// gateways, stores late, renames files, and keeps its own clock. These talk
// to the emulator's fault knobs (docs/emulator.md).

namespace {

// The classic 1x1 GIF89a (global colour table, graphic control extension, one image).
std::string Gif1x1() {
  static const unsigned char k[] = {0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00,
                                    0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x21, 0xF9, 0x04, 0x01, 0x00, 0x00, 0x00,
                                    0x00, 0x2C, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02,
                                    0x44, 0x01, 0x00, 0x3B};
  return std::string(reinterpret_cast<const char*>(k), sizeof k);
}

// The same 1x1 TIFF as Tiff1x1, big-endian ("MM\0*").
std::string Tiff1x1BigEndian() {
  std::string t = {'M', 'M', 0, 42, 0, 0, 0, 8};
  auto u16 = [&](unsigned v) {
    t += static_cast<char>((v >> 8) & 0xFF);
    t += static_cast<char>(v & 0xFF);
  };
  auto u32 = [&](unsigned v) {
    u16(v >> 16);
    u16(v & 0xFFFF);
  };
  const unsigned entries = 8;
  const unsigned pixel_offset = 8 + 2 + entries * 12 + 4;
  u16(entries);
  auto entry = [&](unsigned tag, unsigned type, unsigned value) {
    u16(tag);
    u16(type);
    u32(1);
    if (type == 3) {
      u16(value);
      u16(0);
    } else {
      u32(value);
    }
  };
  entry(256, 3, 1);
  entry(257, 3, 1);
  entry(258, 3, 8);
  entry(259, 3, 1);
  entry(262, 3, 1);
  entry(273, 4, pixel_offset);
  entry(278, 3, 1);
  entry(279, 4, 1);
  u32(0);
  t += static_cast<char>(0x80);
  return t;
}

// A JPEG whose APP1 (EXIF-like) segment carries a complete thumbnail JPEG,
// EOI included, right after SOI.
std::string JpegWithThumbnail(const std::string& main, const std::string& thumb) {
  const std::string payload = std::string("Exif\0\0", 6) + thumb;
  const std::size_t len = payload.size() + 2;
  REQUIRE(len <= 65535);
  std::string seg = "\xFF\xE1";
  seg += static_cast<char>((len >> 8) & 0xFF);
  seg += static_cast<char>(len & 0xFF);
  return main.substr(0, 2) + seg + payload + main.substr(2);
}

// Any upload with an arbitrary field name/filename through the Sb helper.
http::Response UploadAs(const Sb& sb, long long p, long long a, const std::string& bytes, const std::string& name,
                        const std::string& content_type) {
  return sb.Multipart(Sb::PhotosPath(p, a), {http::Part::Bytes("photo", bytes, name, content_type),
                                             http::Part::Field("client_original_filename", name)});
}

// RFC 7231 IMF-fixdate -> unix seconds (REQUIREs the format).
long long ParseHttpDate(const http::Response& r) {
  auto d = r.header("Date");
  INFO(r.describe());
  REQUIRE(d.has_value());
  static const std::regex re(
      R"(^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$)");
  INFO("Date: " << *d);
  REQUIRE(std::regex_match(*d, re));
  std::tm tm{};
  REQUIRE(strptime(d->c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) != nullptr);
  return static_cast<long long>(timegm(&tm));
}

// stats[key][id] of the per-album maps (0 when absent).
long long ByAlbum(const Json& stats, const char* key, long long album) {
  INFO(stats.dump());
  REQUIRE(stats.contains(key));
  return stats[key].value(std::to_string(album), 0LL);
}

}  // namespace

TEST_CASE("shootbin: image check: a motion-photo JPEG (data after EOI) is accepted, a cut one is not") {
  EmulatorProcess emu;
  Sb sb{emu};
  const std::string jpeg = Jpeg(31, 320, 240);
  // Samsung/Pixel motion photo: a complete JPEG, then an MP4 after its EOI
  // (bytes that look like JPEG markers included).
  std::string mp4 = Box("ftyp", std::string("mp42") + std::string(4, '\0') + "isommp42");
  mp4 += Box("mdat", std::string("\xFF\xD8\xFF\xE0 not a jpeg \xFF\xD9 \xFF\x00", 20) + std::string(5000, '\x11'));
  const std::string motion = jpeg + mp4;
  Json p = sb.UploadOk(1, 1, motion, "PXL_20250310_091500000.MP.jpg");
  CHECK(p["file_size"] == motion.size());

  // Cut anywhere before its EOI: refused, the trailer does not save it.
  RequireValidation(sb.Upload(1, 1, jpeg.substr(0, jpeg.size() - 1), "cut.jpg"), "photo");
  RequireValidation(sb.Upload(1, 1, jpeg.substr(0, jpeg.size() / 3), "cut.jpg"), "photo");

  // An EOI inside a metadata segment (an EXIF thumbnail) does not end the
  // image: the whole file is fine, the same file cut in its scan is not.
  const std::string with_thumb = JpegWithThumbnail(jpeg, Jpeg(32, 16, 16));
  sb.UploadOk(1, 1, with_thumb, "thumb.jpg");
  RequireValidation(sb.Upload(1, 1, with_thumb.substr(0, with_thumb.size() - 300), "thumbcut.jpg"), "photo");

  // Magic bytes alone are not a JPEG.
  RequireValidation(sb.Upload(1, 1, std::string("\xFF\xD8\xFF\xD9", 4), "tiny.jpg"), "photo");
  RequireValidation(sb.Upload(1, 1, std::string("\xFF\xD8\xFF\xE0", 4) + std::string(4000, 'x'), "magic.jpg"), "photo");
  CHECK(emu.Stats().at("uploads") == 2);
}

TEST_CASE("shootbin: image check: minimal PNG, WebP, GIF, TIFF, HEIC and AVIF files are accepted") {
  EmulatorProcess emu;
  Sb sb{emu};
  struct Case {
    const char* name;
    std::string bytes;
    const char* type;
  };
  const std::vector<Case> ok = {
      {"dot.png", Png1x1(), "image/png"},
      {"dot.webp", Webp1x1(), "image/webp"},
      {"dot.gif", Gif1x1(), "image/gif"},
      {"scan.tif", Tiff1x1(), "image/tiff"},
      {"scan-be.tiff", Tiff1x1BigEndian(), "image/tiff"},
      {"IMG_0001.HEIC", Bmff("heic", {"mif1", "heic"}), "image/heic"},
      {"IMG_0002.HEIF", Bmff("mif1", {"mif1", "heix"}), "image/heif"},
      {"IMG_0003.avif", Bmff("avif", {"mif1", "miaf", "avif"}), "image/avif"},
  };
  for (const auto& c : ok) {
    INFO(c.name);
    auto r = UploadAs(sb, 1, 1, c.bytes, c.name, c.type);
    INFO(r.describe());
    CHECK(r.status == 201);
  }
  CHECK(emu.Stats().at("uploads") == ok.size());
}

TEST_CASE("shootbin: image check: truncated or fake PNG, WebP, GIF, TIFF and HEIF files get 422") {
  EmulatorProcess emu;
  Sb sb{emu};
  std::string bad_crc = Png1x1();
  bad_crc[bad_crc.size() - 20] ^= 0x01;  // a byte of the IDAT data: its CRC no longer matches
  const std::string heic = Bmff("heic", {"mif1", "heic"});
  const std::vector<std::pair<const char*, std::string>> bad = {
      {"no IEND", Png1x1().substr(0, Png1x1().size() - 12)},
      {"PNG with a bad IDAT CRC", bad_crc},
      {"WebP shorter than its RIFF size", Webp1x1().substr(0, Webp1x1().size() - 6)},
      {"RIFF WEBP with no image chunk", std::string("RIFF\x0C\0\0\0WEBPJUNK\0\0\0\0", 20)},
      {"GIF without its trailer", Gif1x1().substr(0, Gif1x1().size() - 1)},
      {"GIF header only", Gif1x1().substr(0, 13)},
      {"TIFF header only", Tiff1x1().substr(0, 8)},
      {"TIFF cut inside its IFD", Tiff1x1().substr(0, 40)},
      {"HEIC cut inside mdat", heic.substr(0, heic.size() - 5)},
      {"HEIC without meta", Bmff("heic", {"mif1"}, false)},
      {"an MP4 video (ftyp isom)", Bmff("isom", {"isom", "mp41"})},
  };
  for (const auto& [what, bytes] : bad) {
    INFO(what);
    RequireValidation(UploadAs(sb, 1, 1, bytes, "x.bin", "application/octet-stream"), "photo");
  }
  CHECK(emu.Stats().at("uploads") == 0);
}

TEST_CASE("shootbin: rate_gateway answers uploads with an HTML 5xx page, stored or not (gateway_stores)") {
  EmulatorProcess emu;
  Sb sb{emu};
  emu.SetFaults({{"rate_gateway", 1}, {"gateway_status", 504}});
  Json f = emu.GetFaults();
  CHECK(f["rate_gateway"] == 1);
  CHECK(f["gateway_status"] == 504);
  CHECK(f["gateway_stores"] == true);  // the default: the app behind it finished the request

  auto r = sb.Upload(1, 1, Jpeg(1), "tmp.jpg", "IMG_1.jpg");
  INFO(r.describe());
  REQUIRE(r.status == 504);
  auto ct = r.header("Content-Type");
  REQUIRE(ct.has_value());
  CHECK(ct->find("text/html") != std::string::npos);
  CHECK(r.body.find("<html") != std::string::npos);
  CHECK(r.body.find("504") != std::string::npos);
  // Stored behind the gateway's back.
  std::vector<Json> photos = sb.ListAll(1, 1);
  REQUIRE(photos.size() == 1);
  CHECK(photos[0]["original_filename"] == "IMG_1.jpg");
  CHECK(emu.Stats()["uploads"] == 1);
  // Only uploads and revisions are affected.
  CHECK(sb.Get("/api/projects").status == 200);

  // A revision behind a Cloudflare 524, this time not stored.
  emu.SetFaults({{"gateway_status", 524}, {"gateway_stores", false}});
  const long long id = photos[0]["id"].get<long long>();
  auto rv = sb.Revision(1, 1, id, Jpeg(2), "v2.jpg", "IMG_1.jpg");
  INFO(rv.describe());
  REQUIRE(rv.status == 524);
  CHECK(rv.header("Content-Type").value_or("").find("text/html") != std::string::npos);
  CHECK(rv.body.find("524") != std::string::npos);
  auto r2 = sb.Upload(1, 1, Jpeg(3), "tmp.jpg", "IMG_2.jpg");
  CHECK(r2.status == 524);
  Json s = emu.Stats();
  CHECK(s["uploads"] == 1);
  CHECK(s["revisions"] == 0);

  // 502 Bad Gateway, and invalid statuses are refused by the knob.
  emu.SetFaults({{"gateway_status", 502}, {"gateway_stores", true}});
  auto r3 = sb.Upload(1, 1, Jpeg(4), "tmp.jpg", "IMG_3.jpg");
  CHECK(r3.status == 502);
  CHECK(r3.body.find("Bad Gateway") != std::string::npos);
  auto refused = http::SendJson("POST", emu.url("/_emulator/faults"), {{"gateway_status", 503}});
  CHECK(refused.status == 400);
  emu.SetFaults({{"rate_gateway", 0}});
  CHECK(sb.ListAll(1, 1).size() == 2);
  CHECK(emu.Stats()["uploads"] == 2);
}

TEST_CASE("shootbin: rate_cut_2xx stores the photo and cuts the 201 body after its headers") {
  EmulatorProcess emu;
  Sb sb{emu};
  emu.SetFaults({{"rate_cut_2xx", 1}});
  CHECK(emu.GetFaults()["rate_cut_2xx"] == 1);
  auto r = sb.Upload(1, 1, Jpeg(1, 200, 150), "tmp.jpg", "IMG_1.jpg");
  INFO(r.describe());
  CHECK(r.status == 201);          // the status line and headers arrived
  CHECK_FALSE(r.transport_ok());   // ... but the connection closed early
  auto len = r.header("Content-Length");
  REQUIRE(len.has_value());
  CHECK(std::stoul(*len) > r.body.size());
  CHECK(Json::parse(r.body, nullptr, false).is_discarded());  // not valid JSON
  emu.SetFaults({{"rate_cut_2xx", 0}});
  std::vector<Json> photos = sb.ListAll(1, 1);
  REQUIRE(photos.size() == 1);
  CHECK(photos[0]["original_filename"] == "IMG_1.jpg");
  CHECK(emu.Stats()["uploads"] == 1);
}

TEST_CASE("shootbin: rate_late_store resets the upload and stores the photo late_store_ms later") {
  EmulatorProcess emu;
  Sb sb{emu};
  emu.SetFaults({{"rate_late_store", 1}, {"late_store_ms", 800}});
  Json f = emu.GetFaults();
  CHECK(f["rate_late_store"] == 1);
  CHECK(f["late_store_ms"] == 800);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = sb.Upload(1, 1, Jpeg(1, 320, 240), "tmp.jpg", "IMG_1.jpg");
  INFO(r.describe());
  CHECK_FALSE(r.transport_ok());
  CHECK(r.status == 0);
  emu.SetFaults({{"rate_late_store", 0}});
  {
    Json s = emu.Stats();
    INFO(s.dump());
    CHECK(s["uploads"] == 0);  // not yet
    CHECK(s["late_stores_pending"] == 1);
    CHECK(s["resets"] == 1);
  }
  CHECK(sb.ListAll(1, 1).empty());
  Json s = emu.WaitForStats([](const Json& st) { return st["uploads"] == 1; });
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  CHECK(waited.count() >= 700);
  CHECK(s["late_stores_pending"] == 0);
  std::vector<Json> photos = sb.ListAll(1, 1);
  REQUIRE(photos.size() == 1);
  CHECK(photos[0]["original_filename"] == "IMG_1.jpg");

  // A late revision: the photo stays "being processed" (409) until it lands.
  emu.SetFaults({{"rate_late_store", 1}, {"late_store_ms", 1500}});
  const long long id = photos[0]["id"].get<long long>();
  auto rv = sb.Revision(1, 1, id, Jpeg(2), "v2.jpg", "IMG_1_v2.jpg");
  CHECK_FALSE(rv.transport_ok());
  emu.SetFaults({{"rate_late_store", 0}});
  auto again = sb.Revision(1, 1, id, Jpeg(3), "v3.jpg", "IMG_1_v3.jpg");
  RequireError(again, 409);
  emu.WaitForStats([](const Json& st) { return st["revisions"] == 1; });
  CHECK(PhotoOf(sb.Get(Sb::PhotoPath(1, 1, id)).json())["original_filename"] == "IMG_1_v2.jpg");

  // A reset drops pending late stores.
  emu.SetFaults({{"rate_late_store", 1}, {"late_store_ms", 600}});
  CHECK_FALSE(sb.Upload(1, 1, Jpeg(4), "tmp.jpg", "IMG_4.jpg").transport_ok());
  CHECK(emu.Stats()["late_stores_pending"] == 1);
  emu.Reset();
  emu.SetFaults({{"rate_late_store", 0}});
  // Not pending any more: a store still queued would keep WaitIdle waiting
  // until it landed, and then be counted.
  Json after = emu.WaitIdle();
  CHECK(after["uploads"] == 0);
  CHECK(sb.ListAll(1, 1).empty());
}

TEST_CASE("shootbin: filename_mode normalises the stored name and every answer echoes it") {
  EmulatorProcess emu;
  Sb sb{emu};
  const std::string decomposed = "Cafe\xCC\x81.jpg";  // "Cafe" + U+0301 COMBINING ACUTE ACCENT
  const std::string composed = "Caf\xC3\xA9.jpg";     // U+00E9

  SECTION("exact (default) keeps the name as given") {
    CHECK(emu.GetFaults()["filename_mode"] == "exact");
    CHECK(sb.UploadOk(1, 1, Jpeg(1), "x.jpg", "shoot/day1/IMG_1.jpg")["original_filename"] == "shoot/day1/IMG_1.jpg");
    CHECK(sb.UploadOk(1, 1, Jpeg(2), "x.jpg", decomposed)["original_filename"] == decomposed);
  }
  SECTION("basename keeps what follows the last '/'") {
    emu.SetFaults({{"filename_mode", "basename"}});
    Json p = sb.UploadOk(1, 1, Jpeg(1), "x.jpg", "shoot/day1/IMG_1.jpg");
    CHECK(p["original_filename"] == "IMG_1.jpg");
    CHECK(p["title"] == "IMG_1");
    const long long id = p["id"].get<long long>();
    CHECK(PhotoOf(sb.Get(Sb::PhotoPath(1, 1, id)).json())["original_filename"] == "IMG_1.jpg");
    CHECK(sb.ListAll(1, 1).at(0)["original_filename"] == "IMG_1.jpg");
    // A revision's name is normalised too.
    auto rv = sb.Revision(1, 1, id, Jpeg(2), "v.jpg", "shoot/day2/IMG_1.jpg");
    REQUIRE(rv.status == 201);
    CHECK(rv.json()["photo"]["original_filename"] == "IMG_1.jpg");
    // Two paths with one base name are one name: the second is a duplicate.
    sb.UploadOk(1, 1, Jpeg(3), "x.jpg", "shoot/day3/IMG_1.jpg");
    CHECK(emu.Stats()["duplicates"] == 1);
  }
  SECTION("nfc composes, and composed/decomposed spellings collide") {
    emu.SetFaults({{"filename_mode", "nfc"}});
    CHECK(sb.UploadOk(1, 1, Jpeg(1), "x.jpg", decomposed)["original_filename"] == composed);
    CHECK(sb.UploadOk(1, 1, Jpeg(2), "x.jpg", "dir/" + decomposed)["original_filename"] == "dir/" + composed);
    CHECK(sb.UploadOk(1, 1, Jpeg(3), "x.jpg", composed)["original_filename"] == composed);
    CHECK(emu.Stats()["duplicates"] == 1);
  }
  SECTION("basename_nfc does both") {
    emu.SetFaults({{"filename_mode", "basename_nfc"}});
    CHECK(emu.GetFaults()["filename_mode"] == "basename_nfc");
    CHECK(sb.UploadOk(1, 1, Jpeg(1), "x.jpg", "a/b/" + decomposed)["original_filename"] == composed);
  }
  SECTION("truncate:N keeps N bytes without splitting a UTF-8 sequence") {
    emu.SetFaults({{"filename_mode", "truncate:9"}});
    const std::string a_ring = "\xC3\x85";  // U+00C5, two bytes
    // 5 x 2 bytes + "_photo.jpg": 9 bytes would cut the fifth character in half.
    Json p = sb.UploadOk(1, 1, Jpeg(1), "x.jpg", a_ring + a_ring + a_ring + a_ring + a_ring + "_photo.jpg");
    CHECK(p["original_filename"] == a_ring + a_ring + a_ring + a_ring);
    CHECK(sb.UploadOk(1, 1, Jpeg(2), "x.jpg", "IMG_0001.jpg")["original_filename"] == "IMG_0001.");
    CHECK(sb.UploadOk(1, 1, Jpeg(3), "x.jpg", "short.jpg")["original_filename"] == "short.jpg");
  }
  SECTION("unknown modes are refused") {
    for (const char* bad : {"lower", "truncate:", "truncate:0", "truncate:x"}) {
      INFO(bad);
      CHECK(http::SendJson("POST", emu.url("/_emulator/faults"), {{"filename_mode", bad}}).status == 400);
    }
    CHECK(emu.GetFaults()["filename_mode"] == "exact");
  }
}

TEST_CASE("shootbin: seed can preload an album with photos (name, size, approval, sha256)") {
  EmulatorProcess emu;
  Sb sb{emu};
  const std::string sha(64, 'a');
  Json seeded = emu.Seed(
      {{"projects",
        {{{"name", "Preloaded"},
          {"albums",
           {{{"name", "Web UI"},
             {"photos",
              {{{"original_filename", "IMG_1.jpg"}, {"size", 123456}, {"approved", true}},
               {{"original_filename", "IMG_2.jpg"}, {"size", 999}, {"approved", false}, {"sha256", sha}},
               {{"original_filename", "IMG_3.jpg"}}}}},
            {{"name", "Counted"}, {"photos", 3}}}}}}}});
  INFO(seeded.dump());
  const long long project = seeded["projects"][0]["id"].get<long long>();
  const long long album = seeded["projects"][0]["albums"][0]["id"].get<long long>();
  const long long counted = seeded["projects"][0]["albums"][1]["id"].get<long long>();
  CHECK(seeded["projects"][0]["albums"][0]["photos"].size() == 3);
  CHECK(sb.ListAll(project, counted).size() == 3);  // the integer form still works

  std::vector<Json> photos = sb.ListAll(project, album);
  REQUIRE(photos.size() == 3);
  std::map<std::string, Json> by_name;
  for (const auto& p : photos) by_name[p["original_filename"].get<std::string>()] = p;
  REQUIRE(by_name.count("IMG_1.jpg"));
  REQUIRE(by_name.count("IMG_2.jpg"));
  REQUIRE(by_name.count("IMG_3.jpg"));
  // What the seed does not give is not invented: the optional fields are absent.
  CHECK_FALSE(by_name["IMG_3.jpg"].contains("file_size"));
  CHECK_FALSE(by_name["IMG_3.jpg"].contains("checksum_sha256"));
  CHECK_FALSE(by_name["IMG_1.jpg"].contains("checksum_sha256"));
  CHECK(by_name["IMG_1.jpg"]["file_size"] == 123456);
  CHECK(IsIsoMicros(by_name["IMG_1.jpg"]["approved_at"]));
  CHECK(by_name["IMG_2.jpg"]["file_size"] == 999);
  CHECK(by_name["IMG_2.jpg"]["approved_at"].is_null());
  CHECK(by_name["IMG_2.jpg"]["checksum_sha256"] == sha);
  // Album counts include them; they are no uploads.
  Json albums = sb.Get("/api/projects/" + std::to_string(project) + "/albums").json();
  auto it = std::find_if(albums.begin(), albums.end(), [&](const Json& a) { return a["id"] == album; });
  REQUIRE(it != albums.end());
  CHECK((*it)["photos_count"] == 3);
  CHECK(emu.Stats()["uploads"] == 0);

  // Uploading a name that is already there is a duplicate.
  sb.UploadOk(project, album, Jpeg(1), "tmp.jpg", "IMG_1.jpg");
  CHECK(emu.Stats()["duplicates"] == 1);

  // Existing albums (the default one too) can be preloaded at run time.
  Json upd = emu.Seed({{"album_updates", {{{"id", 1}, {"photos", {{{"original_filename", "DSC_7.NEF"}, {"size", 42}}}}}}}});
  INFO(upd.dump());
  std::vector<Json> main = sb.ListAll(1, 1);
  REQUIRE(main.size() == 1);
  CHECK(main[0]["original_filename"] == "DSC_7.NEF");
  CHECK(main[0]["file_size"] == 42);

  // Malformed seeds are refused.
  Json bad = {{"album_updates", {{{"id", 1}, {"photos", {{{"size", 1}}}}}}}};
  CHECK(http::SendJson("POST", emu.url("/_emulator/seed"), bad).status == 400);
  Json nope = {{"album_updates", {{{"id", 4242}, {"photo_limit", 1}}}}};
  CHECK(http::SendJson("POST", emu.url("/_emulator/seed"), nope).status == 400);
}

TEST_CASE("shootbin: approval starts from the seed, shows in listings and GET, and a revision resets it") {
  EmulatorProcess emu;
  Sb sb{emu};
  Json seeded = emu.Seed({{"projects",
                           {{{"name", "Review"},
                             {"selection_limit", 2},
                             {"albums",
                              {{{"name", "A"},
                                {"photos",
                                 {{{"original_filename", "A.jpg"}, {"approved", true}},
                                  {{"original_filename", "B.jpg"}},
                                  {{"original_filename", "C.jpg"}}}}}}}}}}});
  const long long project = seeded["projects"][0]["id"].get<long long>();
  const long long album = seeded["projects"][0]["albums"][0]["id"].get<long long>();
  const Json ids = seeded["projects"][0]["albums"][0]["photos"];
  const long long a = ids[0].get<long long>(), b = ids[1].get<long long>(), c = ids[2].get<long long>();

  CHECK(IsIsoMicros(PhotoOf(sb.Get(Sb::PhotoPath(project, album, a)).json())["approved_at"]));
  CHECK(PhotoOf(sb.Get(Sb::PhotoPath(project, album, b)).json())["approved_at"].is_null());

  // PATCH approval (shootbin.md §3.3): set, and the listing shows it.
  auto on = sb.Json_("PATCH", Sb::PhotoPath(project, album, b) + "/approval", {{"approved", true}});
  INFO(on.describe());
  REQUIRE(on.status == 200);
  CHECK(IsIsoMicros(PhotoOf(on.json())["approved_at"]));
  for (const auto& p : sb.ListAll(project, album)) {
    INFO(p.dump());
    if (p["id"] == a || p["id"] == b) CHECK(IsIsoMicros(p["approved_at"]));
    else CHECK(p["approved_at"].is_null());
  }
  // The project's selection limit (2) is reached: a third approval is 422.
  auto over = sb.Json_("PATCH", Sb::PhotoPath(project, album, c) + "/approval", {{"approved", true}});
  RequireError(over, 422);
  CHECK(over.json()["message"] == "Selection limit exceeded.");
  RequireValidation(sb.Json_("PATCH", Sb::PhotoPath(project, album, c) + "/approval", {{"approved", "maybe"}}),
                    "approved");

  // A revision resets approval.
  auto rv = sb.Revision(project, album, a, Jpeg(1), "A_v2.jpg", "A.jpg");
  INFO(rv.describe());
  REQUIRE(rv.status == 201);
  CHECK(rv.json()["photo"]["approved_at"].is_null());
  CHECK(PhotoOf(sb.Get(Sb::PhotoPath(project, album, a)).json())["approved_at"].is_null());
  // ... which frees a selection slot.
  CHECK(sb.Json_("PATCH", Sb::PhotoPath(project, album, c) + "/approval", {{"approved", true}}).status == 200);
}

TEST_CASE("shootbin: a locked project's 403 message need not say 'locked' and the lock can change at run time") {
  EmulatorProcess emu;
  Sb sb{emu};
  const std::string message = "This project is out for client review.";
  Json seeded = emu.Seed({{"projects",
                           {{{"name", "Out"}, {"locked", true}, {"locked_message", message},
                             {"albums", {{{"name", "A"}, {"photos", 1}}}}}}}});
  const long long project = seeded["projects"][0]["id"].get<long long>();
  const long long album = seeded["projects"][0]["albums"][0]["id"].get<long long>();
  const long long photo = seeded["projects"][0]["albums"][0]["photos"][0].get<long long>();

  for (auto r : {sb.Upload(project, album, Jpeg(1), "a.jpg"), sb.Revision(project, album, photo, Jpeg(2), "b.jpg"),
                 sb.Multipart("/api/projects/" + std::to_string(project) + "/albums", {http::Part::Field("name", "N")})}) {
    RequireError(r, 403);
    CHECK(r.json()["message"] == message);
    CHECK(r.json()["message"].get<std::string>().find("locked") == std::string::npos);
  }
  {
    Json s = emu.Stats();
    CHECK(s["uploads"] == 0);
    CHECK(ByAlbum(s, "uploads_attempted_by_album", album) == 1);
    CHECK(ByAlbum(s, "revisions_attempted_by_album", album) == 1);
  }
  // Unlock: the same upload goes through; lock the default project instead.
  emu.LockProject(project, false);
  sb.UploadOk(project, album, Jpeg(3), "a.jpg");
  emu.LockProject(1, true, "Client review in progress.");
  auto r = sb.Upload(1, 1, Jpeg(4), "a.jpg");
  RequireError(r, 403);
  CHECK(r.json()["message"] == "Client review in progress.");
  emu.LockProject(1, false);
  sb.UploadOk(1, 1, Jpeg(4), "a.jpg");
}

TEST_CASE("shootbin: an album's plan photo limit refuses uploads with 403 and stats count attempts per album") {
  EmulatorProcess emu;
  Sb sb{emu};
  Json seeded = emu.Seed({{"projects", {{{"name", "Plan"}, {"albums", {{{"name", "Full"}, {"photo_limit", 2}}, "Free"}}}}}});
  const long long project = seeded["projects"][0]["id"].get<long long>();
  const long long full = seeded["projects"][0]["albums"][0]["id"].get<long long>();
  const long long other = seeded["projects"][0]["albums"][1]["id"].get<long long>();

  const long long first = sb.UploadOk(project, full, Jpeg(1), "1.jpg")["id"].get<long long>();
  sb.UploadOk(project, full, Jpeg(2), "2.jpg");
  for (int i = 0; i < 2; ++i) {
    auto r = sb.Upload(project, full, Jpeg(3 + i), "3.jpg");
    RequireError(r, 403);
    CHECK(r.json()["message"] == "Your plan's photo limit for this project has been reached.");
  }
  // Other albums and revisions in the full album are not blocked.
  sb.UploadOk(project, other, Jpeg(5), "x.jpg");
  CHECK(sb.Revision(project, full, first, Jpeg(6), "1.jpg").status == 201);

  Json s = emu.Stats();
  INFO(s.dump());
  CHECK(ByAlbum(s, "uploads_attempted_by_album", full) == 4);
  CHECK(ByAlbum(s, "uploads_attempted_by_album", other) == 1);
  CHECK(ByAlbum(s, "revisions_attempted_by_album", full) == 1);
  CHECK(ByAlbum(s, "photos_by_album", full) == 2);
  CHECK(s["uploads"] == 3);

  // Limits can be set on existing albums at run time, and lifted.
  emu.SetAlbumPhotoLimit(1, 1);
  sb.UploadOk(1, 1, Jpeg(7), "a.jpg");
  RequireError(sb.Upload(1, 1, Jpeg(8), "b.jpg"), 403);
  emu.SetAlbumPhotoLimit(1, 0);
  sb.UploadOk(1, 1, Jpeg(8), "b.jpg");
  // A project-wide limit counts every album of the project.
  emu.Seed({{"project_updates", {{{"id", project}, {"photo_limit", 3}}}}});
  emu.SetAlbumPhotoLimit(full, 0);
  RequireError(sb.Upload(project, full, Jpeg(9), "4.jpg"), 403);
  RequireError(sb.Upload(project, other, Jpeg(9), "y.jpg"), 403);
}

TEST_CASE("shootbin: every response carries a Date header from the emulator's clock") {
  EmulatorProcess emu;
  Sb sb{emu};
  const long long now = NowUnix();
  std::vector<std::pair<std::string, http::Response>> answers;
  answers.emplace_back("200", sb.Get("/api/projects"));
  answers.emplace_back("404", sb.Get("/api/projects/999/albums"));
  answers.emplace_back("401", http::Get(emu.url("/api/projects"), Auth("nope")));
  answers.emplace_back("unrouted", sb.Get("/api/nothing-here"));
  answers.emplace_back("422", sb.Upload(1, 1, "text", "a.jpg"));
  answers.emplace_back("admin", http::Get(emu.url("/_emulator/stats")));
  answers.emplace_back("HeadshotPro", http::Get(emu.url("/api/v2/organization"), Auth("hp-test-key")));
  for (const auto& [what, r] : answers) {
    INFO(what);
    const long long date = ParseHttpDate(r);
    CHECK(date >= now - 5);
    CHECK(date <= now + 5);
  }
}

TEST_CASE("shootbin: retry_after_s sets Retry-After of a 429 burst") {
  EmulatorProcess emu;
  Sb sb{emu};
  emu.SetFaults({{"burst_429", 1}, {"retry_after_s", 120}});
  const long long before = NowUnix();
  auto r = sb.Get("/api/projects");
  RequireError(r, 429);
  CHECK(HeaderInt(r, "Retry-After") == 120);
  const long long reset = HeaderInt(r, "X-RateLimit-Reset");
  CHECK(reset >= before + 119);
  CHECK(reset <= NowUnix() + 121);
  CHECK(sb.Get("/api/projects").status == 200);
  CHECK(emu.GetFaults()["retry_after_s"] == 120);
}

TEST_CASE("shootbin: clock_skew_s moves the emulator's clock: Date and X-RateLimit-Reset agree with each other") {
  EmulatorProcess emu({"--shootbin-rpm", "2"});
  Sb sb{emu};
  emu.SetFaults({{"clock_skew_s", 3600}});
  CHECK(emu.GetFaults()["clock_skew_s"] == 3600);
  emu.FreezeClock();  // the rate-limit window is a fixed minute: no boundary inside the burst
  const long long local = NowUnix();
  auto ok = sb.Get("/api/projects");
  REQUIRE(ok.status == 200);
  const long long date = ParseHttpDate(ok);
  CHECK(date >= local + 3600 - 5);
  CHECK(date <= local + 3600 + 5);
  sb.Get("/api/projects");
  auto limited = sb.Get("/api/projects");  // the third in the minute: over the limit
  RequireError(limited, 429);
  const long long server_now = ParseHttpDate(limited);
  const long long reset = HeaderInt(limited, "X-RateLimit-Reset");
  const long long retry_after = HeaderInt(limited, "Retry-After");
  // The reset time is the server's: an hour ahead of the local clock, and
  // consistent with the server's own Date and Retry-After.
  CHECK(reset > local + 3600 - 5);
  CHECK(std::llabs(reset - server_now - retry_after) <= 1);
  CHECK(retry_after <= 60);

  // A skew behind the real clock: the reset lies in the local past.
  emu.SetFaults({{"clock_skew_s", -7200}});
  const long long d2 = ParseHttpDate(sb.Get("/api/projects"));
  CHECK(d2 <= NowUnix() - 7200 + 5);
}

TEST_CASE("shootbin: advertised_limit is what X-RateLimit-Limit says and what is enforced") {
  EmulatorProcess emu;  // 60/min by default
  Sb sb{emu};
  emu.SetFaults({{"advertised_limit", 3}});
  CHECK(emu.GetFaults()["advertised_limit"] == 3);
  emu.FreezeClock();  // the rate-limit window is a fixed minute: no boundary inside the burst
  for (int i = 0; i < 3; ++i) {
    auto r = sb.Get("/api/projects");
    INFO(i << ": " << r.describe());
    REQUIRE(r.status == 200);
    CHECK(HeaderInt(r, "X-RateLimit-Limit") == 3);
    CHECK(HeaderInt(r, "X-RateLimit-Remaining") == 2 - i);
  }
  auto r = sb.Get("/api/projects");
  RequireError(r, 429);
  CHECK(HeaderInt(r, "X-RateLimit-Limit") == 3);
  HeaderInt(r, "Retry-After");
  emu.SetFaults({{"advertised_limit", 0}});  // back to the real rpm
  auto back = sb.Get("/api/projects");
  CHECK(back.status == 200);
  CHECK(HeaderInt(back, "X-RateLimit-Limit") == 60);
}

TEST_CASE("shootbin: stats in_flight counts requests being handled") {
  EmulatorProcess emu;
  Sb sb{emu};
  CHECK(emu.Stats()["in_flight"] == 0);
  emu.SetFaults({{"latency_ms", 1500}});
  auto slow = std::async(std::launch::async, [&] { return sb.Get("/api/projects"); });
  Json busy = emu.WaitForStats([](const Json& s) { return s["in_flight"] == 1; }, std::chrono::seconds(5));
  CHECK(busy["in_flight"] == 1);
  CHECK(slow.get().status == 200);
  emu.SetFaults({{"latency_ms", 0}});
  Json idle = emu.WaitIdle(std::chrono::seconds(5));
  CHECK(idle["in_flight"] == 0);
}
