// Contract tests: the emulator's HeadshotPro Organization API (V2) and its
// signed-URL CDN against ../shared/api/headshotpro.md.
//
// Each TEST_CASE starts its own emulator. Written from the contract, not from
// the emulator's code: an emulator more lenient than the contract fails here.
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <csetjmp>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <jpeglib.h>
#include <nlohmann/json.hpp>

#include "emulator_process.hpp"
#include "http.hpp"

namespace {

namespace http = shotsync::testing::http;
using shotsync::testing::EmulatorProcess;
using Json = nlohmann::json;

constexpr const char* kKey = "hp-test-key";

http::Headers Auth(const std::string& key = kKey) {
  return {{"Authorization", "Bearer " + key}, {"Accept", "application/json"}};
}

// A HeadshotPro client bound to one emulator and key; paths are relative to /api/v2.
struct Hp {
  const EmulatorProcess& emu;
  std::string key = kKey;

  std::string Url(const std::string& path) const { return emu.url("/api/v2" + path); }
  http::Response Get(const std::string& path) const { return http::Get(Url(path), Auth(key)); }
  http::Response Send(const std::string& method, const std::string& path, const Json& body) const {
    return http::SendJson(method, Url(path), body, Auth(key));
  }
  http::Response Post(const std::string& path, const Json& body) const {
    return Send("POST", path, body);
  }
  http::Response Delete(const std::string& path) const {
    return http::Delete(Url(path), Auth(key));
  }
  // GET that must succeed; returns the body.
  Json Ok(const std::string& path) const {
    auto r = Get(path);
    INFO("GET " << path << " -> " << r.describe());
    REQUIRE(r.status == 200);
    Json j = r.json();
    REQUIRE(j["success"] == true);
    return j;
  }
};

bool IsIsoMillis(const Json& v) {
  static const std::regex re(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");
  return v.is_string() && std::regex_match(v.get<std::string>(), re);
}

// "2024-01-15T10:31:00.000Z" -> unix seconds (REQUIREs the format).
long long ParseIso(const std::string& s) {
  static const std::regex re(R"(^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.\d{3}Z$)");
  std::smatch m;
  INFO("timestamp " << s);
  REQUIRE(std::regex_match(s, m, re));
  std::tm tm{};
  tm.tm_year = std::stoi(m[1]) - 1900;
  tm.tm_mon = std::stoi(m[2]) - 1;
  tm.tm_mday = std::stoi(m[3]);
  tm.tm_hour = std::stoi(m[4]);
  tm.tm_min = std::stoi(m[5]);
  tm.tm_sec = std::stoi(m[6]);
  return static_cast<long long>(timegm(&tm));
}

long long NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool IsObjectId(const Json& v) {
  static const std::regex re(R"(^[0-9a-f]{24}$)");
  return v.is_string() && std::regex_match(v.get<std::string>(), re);
}

bool IsInteger(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The documented error envelope {success:false, error, code}.
void RequireHpError(const http::Response& r, long status, const std::string& code) {
  INFO(r.describe());
  REQUIRE(r.status == status);
  auto ct = r.header("Content-Type");
  REQUIRE(ct.has_value());
  CHECK(ct->find("application/json") != std::string::npos);
  Json j = r.json();
  REQUIRE(j.is_object());
  CHECK(j["success"] == false);
  REQUIRE(j["error"].is_string());
  CHECK_FALSE(j["error"].get<std::string>().empty());
  CHECK(j["code"] == code);
}

// The three X-RateLimit-* headers in HeadshotPro's form (integer, integer, ISO time).
void RequireRateHeaders(const http::Response& r, long long limit) {
  INFO(r.describe());
  auto l = r.header("X-RateLimit-Limit");
  auto rem = r.header("X-RateLimit-Remaining");
  auto reset = r.header("X-RateLimit-Reset");
  REQUIRE(l.has_value());
  REQUIRE(rem.has_value());
  REQUIRE(reset.has_value());
  REQUIRE(IsInteger(*l));
  REQUIRE(IsInteger(*rem));
  CHECK(std::stoll(*l) == limit);
  CHECK(std::stoll(*rem) <= limit);
  CHECK(IsIsoMillis(Json(*reset)));
  const long long t = ParseIso(*reset);
  const long long now = NowUnix();
  CHECK(t >= now - 1);
  CHECK(t <= now + 61);
}

long long Remaining(const http::Response& r) {
  auto v = r.header("X-RateLimit-Remaining");
  INFO(r.describe());
  REQUIRE(v.has_value());
  REQUIRE(IsInteger(*v));
  return std::stoll(*v);
}

void RequirePagination(const Json& j, long long total, long long limit, long long offset,
                       bool has_more) {
  INFO(j["pagination"].dump());
  REQUIRE(j["pagination"].is_object());
  CHECK(j["pagination"]["total"] == total);
  CHECK(j["pagination"]["limit"] == limit);
  CHECK(j["pagination"]["offset"] == offset);
  CHECK(j["pagination"]["hasMore"] == has_more);
}

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

// Fully decodes a JPEG with libjpeg; false on any error or warning (e.g.
// "premature end of data"). All state lives in one heap object so nothing
// local is modified between setjmp and longjmp.
struct JpegDecoder {
  jpeg_decompress_struct cinfo{};
  jpeg_error_mgr mgr{};
  std::jmp_buf jump{};
  std::vector<unsigned char> row;
};
void OnJpegError(j_common_ptr cinfo) {
  std::longjmp(static_cast<JpegDecoder*>(cinfo->client_data)->jump, 1);
}
void OnJpegMessage(j_common_ptr) {}
bool DecodeWith(JpegDecoder* d, const std::string* bytes) {
  d->cinfo.err = jpeg_std_error(&d->mgr);
  d->mgr.error_exit = &OnJpegError;
  d->mgr.output_message = &OnJpegMessage;
  d->cinfo.client_data = d;
  jpeg_create_decompress(&d->cinfo);
  if (setjmp(d->jump) != 0) {
    jpeg_destroy_decompress(&d->cinfo);
    return false;
  }
  jpeg_mem_src(&d->cinfo, reinterpret_cast<const unsigned char*>(bytes->data()),
               static_cast<unsigned long>(bytes->size()));
  jpeg_read_header(&d->cinfo, TRUE);
  jpeg_start_decompress(&d->cinfo);
  d->row.resize(static_cast<std::size_t>(d->cinfo.output_width) * d->cinfo.output_components);
  while (d->cinfo.output_scanline < d->cinfo.output_height) {
    JSAMPROW rows[1] = {d->row.data()};
    jpeg_read_scanlines(&d->cinfo, rows, 1);
  }
  jpeg_finish_decompress(&d->cinfo);
  const bool clean = d->mgr.num_warnings == 0;
  jpeg_destroy_decompress(&d->cinfo);
  return clean;
}
bool DecodesAsJpeg(const std::string& bytes) {
  if (bytes.size() < 4) return false;
  auto d = std::make_unique<JpegDecoder>();
  return DecodeWith(d.get(), &bytes);
}

bool StartsWithJpegMagic(const std::string& b) {
  return b.size() >= 3 && static_cast<unsigned char>(b[0]) == 0xFF &&
         static_cast<unsigned char>(b[1]) == 0xD8 && static_cast<unsigned char>(b[2]) == 0xFF;
}

// Seeds and returns the finished models (all pages of /organization/models).
std::vector<Json> AllModels(const Hp& hp) {
  Json j = hp.Ok("/organization/models?limit=200");
  std::vector<Json> out(j["models"].begin(), j["models"].end());
  REQUIRE(j["pagination"]["hasMore"] == false);
  return out;
}

// First page of a model's photos.
Json Photos(const Hp& hp, const std::string& model, const std::string& query = "") {
  return hp.Ok("/organization/models/" + model + "/photos" + (query.empty() ? "" : "?" + query));
}

std::string ModelId(const Json& model) { return model.at("id").get<std::string>(); }

}  // namespace

// ---------------------------------------------------------------------------
// Authentication and envelope

TEST_CASE("headshotpro: wrong or missing key gets 401 with the UNAUTHORIZED envelope") {
  EmulatorProcess emu;
  SECTION("wrong key") {
    auto r = http::Get(emu.url("/api/v2/organization"), Auth("wrong-key"));
    RequireHpError(r, 401, "UNAUTHORIZED");
    CHECK(r.json()["error"] == "Invalid API key");
  }
  SECTION("missing key") {
    RequireHpError(http::Get(emu.url("/api/v2/organization"), {{"Accept", "application/json"}}), 401,
                   "UNAUTHORIZED");
  }
  SECTION("not a Bearer header") {
    RequireHpError(http::Get(emu.url("/api/v2/organization/credits"),
                             {{"Authorization", std::string("Token ") + kKey}}),
                   401, "UNAUTHORIZED");
  }
  SECTION("a Shootbin token is not a HeadshotPro key") {
    RequireHpError(http::Get(emu.url("/api/v2/organization/models"), Auth("sb-test-token")), 401,
                   "UNAUTHORIZED");
  }
  SECTION("on a write endpoint, without Accept") {
    RequireHpError(http::SendJson("POST", emu.url("/api/v2/organization/invites"),
                                  {{"email", "a@example.com"}}, {{"Authorization", "Bearer nope"}}),
                   401, "UNAUTHORIZED");
  }
}

TEST_CASE("headshotpro: organization, credits and teams have the documented shape") {
  EmulatorProcess emu;
  Hp hp{emu};
  Json org = hp.Ok("/organization");
  REQUIRE(org["organization"].is_object());
  const Json& o = org["organization"];
  REQUIRE(o["uid"].is_string());
  CHECK(o["uid"].get<std::string>().rfind("org_", 0) == 0);
  CHECK(o["name"].is_string());
  CHECK(o.contains("website"));
  REQUIRE(o["teams"].is_array());
  for (const auto& t : o["teams"]) {
    CHECK(t["id"].is_string());
    CHECK(t["name"].is_string());
  }

  Json credits = hp.Ok("/organization/credits");
  REQUIRE(credits["credits"].is_number_integer());
  CHECK(credits["credits"].get<long long>() > 0);

  Json teams = hp.Ok("/organization/teams");
  REQUIRE(teams["teams"].is_array());
  CHECK(teams["teams"] == o["teams"]);

  // No members until seeded.
  Json team = hp.Ok("/organization/team");
  CHECK(team["members"].empty());
  RequirePagination(team, 0, 50, 0, false);
  Json models = hp.Ok("/organization/models");
  CHECK(models["models"].empty());
  Json invites = hp.Ok("/organization/invites");
  CHECK(invites["invites"].is_array());
}

TEST_CASE("headshotpro: every API response carries X-RateLimit headers with an ISO reset") {
  EmulatorProcess emu;
  Hp hp{emu};
  std::vector<http::Response> rs;
  rs.push_back(hp.Get("/organization"));
  rs.push_back(hp.Get("/organization/credits"));
  rs.push_back(hp.Get("/organization/models?limit=0"));              // 400
  rs.push_back(hp.Get("/organization/models/0123456789abcdef01234567"));  // 404
  rs.push_back(hp.Post("/organization/invites", {{"email", "bad"}}));      // 400
  CHECK(rs[2].status == 400);
  CHECK(rs[3].status == 404);
  CHECK(rs[4].status == 400);
  long long prev = 300;
  for (const auto& r : rs) {
    RequireRateHeaders(r, 300);  // Professional plan
    const long long rem = Remaining(r);
    CHECK(rem == prev - 1);
    prev = rem;
    CHECK_FALSE(r.has_header("Retry-After"));
  }
}

TEST_CASE("headshotpro: with --headshotpro-rpm 5 the 6th request gets 429 RATE_LIMIT_EXCEEDED") {
  EmulatorProcess emu({"--headshotpro-rpm", "5"});
  emu.Seed({{"members", 1}, {"models_per_member", 1}, {"photos_per_model", 3}});
  Hp hp{emu};
  emu.FreezeClock();  // keep the burst inside one fixed minute window
  auto r1 = hp.Get("/organization/models");
  REQUIRE(r1.status == 200);
  RequireRateHeaders(r1, 5);
  CHECK(Remaining(r1) == 4);
  const std::string model = ModelId(r1.json()["models"][0]);
  auto r2 = hp.Get("/organization/models/" + model + "/photos");
  REQUIRE(r2.status == 200);
  CHECK(Remaining(r2) == 3);
  const std::string url = r2.json()["photos"][0]["urls"]["main"].get<std::string>();

  // CDN downloads are not counted against the API limit.
  for (int i = 0; i < 3; ++i) CHECK(http::Get(url).status == 200);
  auto r3 = hp.Get("/organization/credits");
  CHECK(Remaining(r3) == 2);
  CHECK(hp.Get("/organization").status == 200);
  CHECK(hp.Get("/organization/teams").status == 200);

  auto limited = hp.Get("/organization");
  RequireHpError(limited, 429, "RATE_LIMIT_EXCEEDED");
  CHECK(limited.json()["error"] == "Rate limit exceeded");
  RequireRateHeaders(limited, 5);
  CHECK(Remaining(limited) == 0);
  CHECK_FALSE(limited.has_header("Retry-After"));
  RequireHpError(hp.Post("/organization/invites", {{"email", "a@example.com"}}), 429,
                 "RATE_LIMIT_EXCEEDED");

  // The CDN still serves.
  CHECK(http::Get(url).status == 200);
  // The next window has a fresh budget.
  emu.AdvanceClock(60);
  CHECK(hp.Get("/organization").status == 200);
}

// ---------------------------------------------------------------------------
// Team, models, photos

TEST_CASE("headshotpro: seeded organization lists 3 finished members, 6 models and 170 photos each") {
  EmulatorProcess emu;
  emu.Seed({{"members", 3}, {"models_per_member", 2}, {"photos_per_model", 170}});
  Hp hp{emu};

  // Members by status.
  Json finished = hp.Ok("/organization/team?status=finished");
  REQUIRE(finished["members"].size() == 3);
  RequirePagination(finished, 3, 50, 0, false);
  std::set<std::string> emails;
  for (const auto& m : finished["members"]) {
    CHECK(IsObjectId(m["id"]));
    REQUIRE(m["email"].is_string());
    emails.insert(m["email"].get<std::string>());
    CHECK(m.contains("name"));
    CHECK(m["status"] == "finished");
    CHECK(IsObjectId(m["modelId"]));
    CHECK(m["modelStatus"] == "active");
    CHECK(IsIsoMillis(m["joinedAt"]));
  }
  CHECK(emails.size() == 3);
  Json fin2 = hp.Ok("/organization/team/finished");
  CHECK(fin2["count"] == 3);
  CHECK(fin2["members"].size() == 3);
  for (const char* s : {"accepted", "pending"}) {
    Json j = hp.Ok(std::string("/organization/team/") + s);
    CHECK(j["members"].is_array());
    CHECK(j["count"] == j["members"].size());
  }
  CHECK(hp.Ok("/organization/team?limit=2")["members"].size() == 2);

  // Models: limit=200 returns all 6, newest first.
  Json mj = hp.Ok("/organization/models?limit=200");
  REQUIRE(mj["models"].size() == 6);
  RequirePagination(mj, 6, 200, 0, false);
  std::map<std::string, int> per_email;
  std::vector<std::string> model_ids;
  std::string prev_created = "9999";
  for (const auto& m : mj["models"]) {
    CHECK(IsObjectId(m["id"]));
    CHECK(m["status"] == "active");
    CHECK(IsIsoMillis(m["createdAt"]));
    CHECK(IsIsoMillis(m["finishedAt"]));
    CHECK(m["isDevelopment"].is_boolean());
    CHECK(m["createdAt"].get<std::string>() <= prev_created);
    prev_created = m["createdAt"].get<std::string>();
    per_email[m["email"].get<std::string>()]++;
    model_ids.push_back(ModelId(m));
  }
  CHECK(per_email.size() == 3);
  for (const auto& [e, n] : per_email) CHECK(n == 2);
  CHECK(std::set<std::string>(model_ids.begin(), model_ids.end()).size() == 6);

  // Models paged 4 + 2.
  Json m1 = hp.Ok("/organization/models?limit=4");
  RequirePagination(m1, 6, 4, 0, true);
  Json m2 = hp.Ok("/organization/models?limit=4&offset=4");
  RequirePagination(m2, 6, 4, 4, false);
  REQUIRE(m2["models"].size() == 2);
  std::vector<std::string> paged;
  for (const auto& m : m1["models"]) paged.push_back(ModelId(m));
  for (const auto& m : m2["models"]) paged.push_back(ModelId(m));
  CHECK(paged == model_ids);

  // One model by id.
  Json one = hp.Ok("/organization/models/" + model_ids[0]);
  CHECK(one["model"]["id"] == model_ids[0]);

  // Photos of every model, 50 at a time, to the end.
  std::set<std::string> all_photos;
  for (const auto& model : model_ids) {
    INFO("model " << model);
    std::set<std::string> ids;
    std::vector<std::string> order;
    long long offset = 0;
    for (int page = 0; page < 10; ++page) {
      Json j = Photos(hp, model, "limit=50&offset=" + std::to_string(offset));
      const auto n = static_cast<long long>(j["photos"].size());
      const bool more = offset + n < 170;
      RequirePagination(j, 170, 50, offset, more);
      for (const auto& p : j["photos"]) {
        CHECK(IsObjectId(p["id"]));
        CHECK(p["status"] == "active");
        CHECK(IsIsoMillis(p["createdAt"]));
        CHECK(IsIsoMillis(p["expiresAt"]));
        REQUIRE(p["urls"]["main"].is_string());
        CHECK(p["urls"]["main"].get<std::string>().rfind(emu.base_url() + "/", 0) == 0);
        CHECK_FALSE(p["urls"].contains("original"));  // include defaults to main
        ids.insert(p["id"].get<std::string>());
        order.push_back(p["createdAt"].get<std::string>());
      }
      offset += n;
      if (!j["pagination"]["hasMore"].get<bool>()) break;
    }
    CHECK(offset == 170);
    CHECK(ids.size() == 170);
    CHECK(std::is_sorted(order.rbegin(), order.rend()));  // createdAt descending
    all_photos.insert(ids.begin(), ids.end());
  }
  CHECK(all_photos.size() == 6 * 170);

  // limit above 200 is clamped; below 1 or a negative offset is refused.
  Json clamped = Photos(hp, model_ids[0], "limit=500");
  RequirePagination(clamped, 170, 200, 0, false);
  CHECK(clamped["photos"].size() == 170);
  RequireHpError(hp.Get("/organization/models/" + model_ids[0] + "/photos?limit=0"), 400,
                 "INVALID_REQUEST");
  RequireHpError(hp.Get("/organization/models/" + model_ids[0] + "/photos?offset=-1"), 400,
                 "INVALID_REQUEST");
  RequireHpError(hp.Get("/organization/models?limit=0"), 400, "INVALID_REQUEST");
  RequireHpError(hp.Get("/organization/team?limit=0"), 400, "INVALID_REQUEST");
  Json past = Photos(hp, model_ids[0], "offset=1000");
  CHECK(past["photos"].empty());
  CHECK(past["pagination"]["hasMore"] == false);

  // include=all: main, thumbnail and original, all signed loopback URLs.
  Json all = Photos(hp, model_ids[0], "include=all&limit=5");
  for (const auto& p : all["photos"]) {
    const Json& u = p["urls"];
    REQUIRE(u["main"].is_string());
    REQUIRE(u["thumbnail"].is_string());
    REQUIRE(u["original"].is_string());
    std::set<std::string> distinct{u["main"], u["thumbnail"], u["original"]};
    CHECK(distinct.size() == 3);
    for (const auto& s : distinct) CHECK(s.rfind(emu.base_url() + "/", 0) == 0);
  }
  // expiresAt is 24 h ahead by default.
  const long long exp = ParseIso(all["photos"][0]["expiresAt"].get<std::string>());
  CHECK(std::llabs(exp - (NowUnix() + 86400)) <= 60);

  // Unknown ids.
  RequireHpError(hp.Get("/organization/models/0123456789abcdef01234567"), 404, "NOT_FOUND");
  RequireHpError(hp.Get("/organization/models/0123456789abcdef01234567/photos"), 404, "NOT_FOUND");
}

// ---------------------------------------------------------------------------
// Signed downloads

TEST_CASE("headshotpro: a signed URL downloads a JPEG and honours Range with 206 and 416") {
  EmulatorProcess emu;
  emu.Seed({{"members", 1}, {"models_per_member", 1}, {"photos_per_model", 2}});
  Hp hp{emu};
  const std::string model = ModelId(AllModels(hp).at(0));
  Json p = Photos(hp, model, "include=all")["photos"][0];
  const std::string id = p["id"].get<std::string>();
  const std::string url = p["urls"]["main"].get<std::string>();

  auto full = http::Get(url);
  INFO(full.describe().substr(0, 80));
  REQUIRE(full.status == 200);
  CHECK(full.header("Content-Type").value_or("").find("image/jpeg") != std::string::npos);
  REQUIRE(StartsWithJpegMagic(full.body));
  CHECK(DecodesAsJpeg(full.body));
  CHECK(full.body.size() > 1000);
  // The CDN is not the API: no rate-limit headers.
  CHECK_FALSE(full.has_header("X-RateLimit-Limit"));
  // Deterministic bytes per photo.
  CHECK(http::Get(url).body == full.body);

  // The emulator's own record of the bytes (docs/emulator.md).
  auto rec = http::Get(emu.url("/_emulator/headshotpro/photos/" + id), {{"Accept", "application/json"}});
  INFO(rec.describe());
  REQUIRE(rec.status == 200);
  {
    Json jr = rec.json();
    INFO(jr.dump());
    REQUIRE(jr.contains("sha256"));
    CHECK(jr["sha256"] == Sha256Hex(full.body));
  }

  const std::size_t n = full.body.size();
  SECTION("bytes=100-") {
    auto r = http::Get(url, {{"Range", "bytes=100-"}});
    INFO(r.describe().substr(0, 120));
    REQUIRE(r.status == 206);
    CHECK(r.header("Content-Range") ==
          "bytes 100-" + std::to_string(n - 1) + "/" + std::to_string(n));
    CHECK(r.body == full.body.substr(100));
  }
  SECTION("bytes=0-99") {
    auto r = http::Get(url, {{"Range", "bytes=0-99"}});
    REQUIRE(r.status == 206);
    CHECK(r.header("Content-Range") == "bytes 0-99/" + std::to_string(n));
    CHECK(r.body == full.body.substr(0, 100));
  }
  SECTION("suffix bytes=-50") {
    auto r = http::Get(url, {{"Range", "bytes=-50"}});
    REQUIRE(r.status == 206);
    CHECK(r.body == full.body.substr(n - 50));
  }
  SECTION("range past the end") {
    auto r = http::Get(url, {{"Range", "bytes=" + std::to_string(n) + "-"}});
    INFO(r.describe().substr(0, 120));
    CHECK(r.status == 416);
    auto r2 = http::Get(url, {{"Range", "bytes=" + std::to_string(n + 10) + "-" + std::to_string(n + 20)}});
    CHECK(r2.status == 416);
  }
  SECTION("original and thumbnail") {
    auto orig = http::Get(p["urls"]["original"].get<std::string>());
    REQUIRE(orig.status == 200);
    CHECK(StartsWithJpegMagic(orig.body));
    CHECK(DecodesAsJpeg(orig.body));
    auto thumb = http::Get(p["urls"]["thumbnail"].get<std::string>());
    CHECK(thumb.status == 200);
    CHECK_FALSE(thumb.body.empty());
  }
  SECTION("another photo has other bytes") {
    Json q = Photos(hp, model)["photos"][1];
    auto other = http::Get(q["urls"]["main"].get<std::string>());
    REQUIRE(other.status == 200);
    CHECK(DecodesAsJpeg(other.body));
    CHECK(other.body != full.body);
  }
}

// An emulator knob, not the API: benchmarks/download.sh seeds large headshots.
TEST_CASE("headshotpro: seed photo_bytes pads the main JPEG to that size, still decodable") {
  EmulatorProcess emu;
  emu.Seed({{"members", 1}, {"photos_per_model", 1}, {"photo_bytes", 300000}});
  Hp hp{emu};
  Json p = Photos(hp, ModelId(AllModels(hp).at(0)), "include=all")["photos"][0];
  auto main = http::Get(p["urls"]["main"].get<std::string>());
  REQUIRE(main.status == 200);
  CHECK(main.body.size() == 300000);
  CHECK(DecodesAsJpeg(main.body));
  auto rec = http::Get(emu.url("/_emulator/headshotpro/photos/" + p["id"].get<std::string>()),
                       {{"Accept", "application/json"}});
  REQUIRE(rec.status == 200);
  CHECK(rec.json()["size"] == 300000);
  CHECK(http::Get(p["urls"]["thumbnail"].get<std::string>()).body.size() < 300000);
}

TEST_CASE("headshotpro: with --url-ttl 1 a URL is refused with 403 2 s later, a fresh listing works") {
  EmulatorProcess emu({"--url-ttl", "1"});
  emu.FreezeClock();  // a 1-s lifetime must not run out on a loaded machine, only when we say
  emu.Seed({{"members", 1}, {"models_per_member", 1}, {"photos_per_model", 1}});
  Hp hp{emu};
  const std::string model = ModelId(AllModels(hp).at(0));
  Json p = Photos(hp, model)["photos"][0];
  const long long exp = ParseIso(p["expiresAt"].get<std::string>());
  CHECK(exp >= NowUnix() - 1);
  CHECK(exp <= NowUnix() + 2);
  const std::string old_url = p["urls"]["main"].get<std::string>();

  emu.AdvanceClock(2);  // the emulator's clock, not a wait
  auto expired = http::Get(old_url);
  INFO(expired.describe().substr(0, 200));
  CHECK(expired.status == 403);
  CHECK(expired.header("Content-Type").value_or("").find("json") == std::string::npos);

  Json fresh = Photos(hp, model)["photos"][0];
  CHECK(fresh["id"] == p["id"]);
  const std::string new_url = fresh["urls"]["main"].get<std::string>();
  CHECK(new_url != old_url);
  auto ok = http::Get(new_url);
  CHECK(ok.status == 200);
  CHECK(StartsWithJpegMagic(ok.body));
}

TEST_CASE("headshotpro: a tampered or unsigned URL is refused with 403") {
  EmulatorProcess emu;
  emu.Seed({{"members", 1}, {"models_per_member", 1}, {"photos_per_model", 2}});
  Hp hp{emu};
  const std::string model = ModelId(AllModels(hp).at(0));
  Json photos = Photos(hp, model)["photos"];
  const std::string a = photos[0]["urls"]["main"].get<std::string>();
  const std::string b = photos[1]["urls"]["main"].get<std::string>();
  REQUIRE(http::Get(a).status == 200);
  const auto qa = a.find('?');
  const auto qb = b.find('?');
  REQUIRE(qa != std::string::npos);
  REQUIRE(qb != std::string::npos);

  SECTION("one character of the signature changed") {
    std::string t = a;
    auto sig = t.find("signature=");
    std::size_t pos = sig != std::string::npos ? sig + 10 : t.size() - 1;
    REQUIRE(pos < t.size());
    t[pos] = t[pos] == 'a' ? 'b' : 'a';
    CHECK(http::Get(t).status == 403);
  }
  SECTION("no query string") { CHECK(http::Get(a.substr(0, qa)).status == 403); }
  SECTION("another photo's path with this photo's signature") {
    CHECK(http::Get(b.substr(0, qb) + a.substr(qa)).status == 403);
  }
  SECTION("a later expiry with the old signature") {
    std::string t = a;
    for (const char* name : {"expires=", "exp=", "expiresAt=", "Expires="}) {
      auto e = t.find(name);
      if (e == std::string::npos) continue;
      e += std::string(name).size();
      auto end = t.find('&', e);
      if (end == std::string::npos) end = t.size();
      const std::string v = t.substr(e, end - e);
      if (!IsInteger(v)) continue;
      t.replace(e, end - e, std::to_string(std::stoll(v) + 3600));
      CHECK(http::Get(t).status == 403);
      break;
    }
  }
}

// ---------------------------------------------------------------------------
// Invites

TEST_CASE("headshotpro: invites are capped at credits x 2 pending, revoke frees capacity") {
  EmulatorProcess emu;
  emu.Seed({{"credits", 2}});
  Hp hp{emu};
  REQUIRE(hp.Ok("/organization/credits")["credits"] == 2);

  auto r = hp.Post("/organization/invites", {{"email", "a@example.com"}});
  INFO(r.describe());
  REQUIRE(r.status == 200);
  Json j = r.json();
  CHECK(j["success"] == true);
  CHECK(j["input"]["email"] == "a@example.com");
  CHECK(j["message"] == "Invite sent");
  CHECK(j["link"].is_string());
  CHECK(j["id"].is_string());

  // Listed as pending, and found by email.
  Json list = hp.Ok("/organization/invites");
  REQUIRE(list["invites"].size() == 1);
  CHECK(list["invites"][0]["email"] == "a@example.com");
  CHECK(list["invites"][0]["status"] == "pending");
  CHECK(IsIsoMillis(list["invites"][0]["createdAt"]));
  CHECK(hp.Ok("/organization/invites/a%40example.com")["invite"]["email"] == "a@example.com");
  RequireHpError(hp.Get("/organization/invites/zz%40example.com"), 404, "NOT_FOUND");

  // Errors.
  RequireHpError(hp.Post("/organization/invites", {{"email", "a@example.com"}}), 400, "ALREADY_EXISTS");
  RequireHpError(hp.Post("/organization/invites", {{"email", "not-an-email"}}), 400, "INVALID_EMAIL");
  RequireHpError(hp.Post("/organization/invites", Json::object()), 400, "INVALID_REQUEST");

  // Up to 4 pending (2 credits x 2), then 429 INVITE_LIMIT_EXCEEDED.
  for (const char* e : {"b@example.com", "c@example.com", "d@example.com"}) {
    auto ok = hp.Post("/organization/invites", {{"email", e}});
    INFO(e << ": " << ok.describe());
    CHECK(ok.status == 200);
  }
  auto capped = hp.Post("/organization/invites", {{"email", "e@example.com"}});
  RequireHpError(capped, 429, "INVITE_LIMIT_EXCEEDED");
  RequireRateHeaders(capped, 300);
  // Credits are not consumed by invites.
  CHECK(hp.Ok("/organization/credits")["credits"] == 2);

  // Revoke frees a slot.
  auto rv = hp.Post("/organization/invites/revoke", {{"email", "a@example.com"}});
  INFO(rv.describe());
  REQUIRE(rv.status == 200);
  Json jr = rv.json();
  CHECK(jr["success"] == true);
  CHECK(jr["message"] == "Invite revoked");
  CHECK(jr["input"]["email"] == "a@example.com");
  CHECK(hp.Ok("/organization/invites/a%40example.com")["invite"]["status"] == "revoked");
  auto after = hp.Post("/organization/invites", {{"email", "e@example.com"}});
  INFO(after.describe());
  CHECK(after.status == 200);
  RequireHpError(hp.Post("/organization/invites", {{"email", "f@example.com"}}), 429,
                 "INVITE_LIMIT_EXCEEDED");

  // Revoking twice / an unknown invite.
  RequireHpError(hp.Post("/organization/invites/revoke", {{"email", "a@example.com"}}), 400,
                 "ALREADY_DELETED");
  RequireHpError(hp.Post("/organization/invites/revoke", {{"email", "nobody@example.com"}}), 404,
                 "NOT_FOUND");
}

TEST_CASE("headshotpro: invites without credits get 402 INSUFFICIENT_CREDITS") {
  EmulatorProcess emu;
  emu.Seed({{"credits", 0}});
  Hp hp{emu};
  REQUIRE(hp.Ok("/organization/credits")["credits"] == 0);
  auto r = hp.Post("/organization/invites", {{"email", "a@example.com"}});
  RequireHpError(r, 402, "INSUFFICIENT_CREDITS");
  CHECK(r.json()["error"] == "Insufficient credits");
}

TEST_CASE("headshotpro: an invite with a teamId echoes the team") {
  EmulatorProcess emu;
  Hp hp{emu};
  auto t = hp.Post("/organization/teams", {{"name", "Marketing QA"}});
  REQUIRE(t.status == 200);
  std::string team_id;
  const Json org = t.json();
  for (const auto& x : org["organization"]["teams"]) {
    if (x["name"] == "Marketing QA") team_id = x["id"].get<std::string>();
  }
  REQUIRE_FALSE(team_id.empty());
  auto r = hp.Post("/organization/invites", {{"email", "t@example.com"}, {"teamId", team_id}});
  INFO(r.describe());
  REQUIRE(r.status == 200);
  CHECK(r.json()["teamId"] == team_id);
  Json inv = hp.Ok("/organization/invites/t%40example.com")["invite"];
  CHECK(inv["teamId"] == team_id);
  CHECK(inv["teamName"] == "Marketing QA");
}

// ---------------------------------------------------------------------------
// Teams

TEST_CASE("headshotpro: teams can be created, renamed and deleted") {
  EmulatorProcess emu;
  Hp hp{emu};
  auto c = hp.Post("/organization/teams", {{"name", "Product"}});
  INFO(c.describe());
  REQUIRE(c.status == 200);
  Json org = c.json();
  CHECK(org["success"] == true);
  REQUIRE(org["organization"]["teams"].is_array());
  std::string id;
  for (const auto& t : org["organization"]["teams"]) {
    if (t["name"] == "Product") id = t["id"].get<std::string>();
  }
  REQUIRE_FALSE(id.empty());
  RequireHpError(hp.Post("/organization/teams", {{"name", "Product"}}), 400, "INVALID_REQUEST");
  RequireHpError(hp.Post("/organization/teams", Json::object()), 400, "INVALID_REQUEST");

  auto u = hp.Send("PUT", "/organization/teams/" + id, {{"name", "Product & Brand"}});
  INFO(u.describe());
  REQUIRE(u.status == 200);
  Json teams = hp.Ok("/organization/teams")["teams"];
  CHECK(std::any_of(teams.begin(), teams.end(),
                    [&](const Json& t) { return t["id"] == id && t["name"] == "Product & Brand"; }));

  auto d = hp.Delete("/organization/teams/" + id);
  INFO(d.describe());
  CHECK(d.status == 200);
  teams = hp.Ok("/organization/teams")["teams"];
  CHECK(std::none_of(teams.begin(), teams.end(), [&](const Json& t) { return t["id"] == id; }));
  RequireHpError(hp.Delete("/organization/teams/" + id), 404, "NOT_FOUND");
}

// ---------------------------------------------------------------------------
// Favorites

TEST_CASE("headshotpro: favorite endpoints have the documented shape") {
  EmulatorProcess emu;
  emu.Seed({{"members", 2}, {"models_per_member", 1}, {"photos_per_model", 4}});
  Hp hp{emu};
  int with_favorite = 0;
  for (const auto& m : AllModels(hp)) {
    const std::string model = ModelId(m);
    Json f = hp.Ok("/organization/models/" + model + "/photos/favorite");
    REQUIRE(f.contains("photo"));
    if (f["photo"].is_null()) continue;
    ++with_favorite;
    const Json& p = f["photo"];
    CHECK(IsObjectId(p["id"]));
    CHECK(p["modelId"] == model);
    CHECK(p["status"] == "active");
    CHECK(p.contains("likedStatus"));
    CHECK(IsIsoMillis(p["createdAt"]));
    REQUIRE(p["urls"]["main"].is_string());
    CHECK(http::Get(p["urls"]["main"].get<std::string>()).status == 200);
    CHECK(IsIsoMillis(p["expiresAt"]));
    // The favorite is one of the model's photos.
    Json photos = Photos(hp, model)["photos"];
    CHECK(std::any_of(photos.begin(), photos.end(), [&](const Json& x) { return x["id"] == p["id"]; }));
  }

  Json all = hp.Ok("/organization/photos/favorites");
  REQUIRE(all["favorites"].is_array());
  CHECK(all["favorites"].size() == static_cast<std::size_t>(with_favorite));
  RequirePagination(all, with_favorite, 50, 0, false);
  for (const auto& f : all["favorites"]) {
    CHECK(IsObjectId(f["modelId"]));
    CHECK(f["email"].is_string());
    CHECK(f.contains("name"));
    CHECK(f.contains("teamId"));
    CHECK(f.contains("teamName"));
    CHECK(IsObjectId(f["photo"]["id"]));
    CHECK(f["photo"]["urls"]["main"].is_string());
    CHECK(IsIsoMillis(f["photo"]["expiresAt"]));
  }
  if (with_favorite == 0) WARN("the seed chose no favorites: only the empty shapes were checked");

  RequireHpError(hp.Get("/organization/models/0123456789abcdef01234567/photos/favorite"), 404,
                 "NOT_FOUND");
}

// ---------------------------------------------------------------------------
// Whitelabel models and filters

TEST_CASE("headshotpro: creating a model without whitelabel is 403 FORBIDDEN") {
  EmulatorProcess emu;
  Hp hp{emu};
  RequireHpError(hp.Post("/organization/models", {{"email", "user@example.com"}, {"isDevelopment", true}}),
                 403, "FORBIDDEN");
  CHECK(hp.Ok("/organization/models")["models"].empty());
}

TEST_CASE("headshotpro: a new whitelabel model has no photos until it is active") {
  EmulatorProcess emu;
  emu.Seed({{"whitelabel", true}});
  Hp hp{emu};
  auto r = hp.Post("/organization/models", {{"email", "user@example.com"}, {"isDevelopment", true}});
  INFO(r.describe());
  REQUIRE(r.status == 200);
  Json j = r.json();
  CHECK(j["success"] == true);
  REQUIRE(IsObjectId(j["modelId"]));
  CHECK(j["status"] == "onboarding");
  CHECK(j["signedUrl"].is_string());
  const std::string id = j["modelId"].get<std::string>();
  Json photos = Photos(hp, id);
  CHECK(photos["photos"].empty());
  Json m = hp.Ok("/organization/models/" + id)["model"];
  CHECK(m["status"] == "onboarding");
  CHECK(m["finishedAt"].is_null());
  CHECK(m["isDevelopment"] == true);
  // Filter by status.
  Json onboarding = hp.Ok("/organization/models?status=onboarding");
  CHECK(onboarding["models"].size() == 1);
  CHECK(hp.Ok("/organization/models?status=active")["models"].empty());
}
