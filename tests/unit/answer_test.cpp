// How server answers are read: ClassifyShootbinAnswer (one row per HTTP
// status and per transport error, shootbin.md §5.1), ParsePhotoAnswer /
// ParsePhotoPage (cut-off bodies, approved_at), project/album name lookup
// (ambiguous and case-insensitive names), and HeadshotPro 429s that are not
// rate limits (INVITE_LIMIT_EXCEEDED). The last tests run the emulator.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <string>
#include <vector>

#include "emulator_process.hpp"
#include "shotsync/headshotpro.hpp"
#include "shotsync/shootbin.hpp"
#include "shotsync/throttle.hpp"
#include "shotsync/transfer.hpp"

using shotsync::ClassifyShootbinAnswer;
using shotsync::Code;
using shotsync::CodeName;
using shotsync::FindIdByNameOrId;
using shotsync::HttpResponse;
using shotsync::IdLookup;
using shotsync::ShootbinAnswerContext;
using shotsync::ShootbinClient;
using shotsync::Status;

namespace {

const ShootbinAnswerContext kContext{"https://studio.example.com/api", "SHOOTBIN_API_TOKEN"};

constexpr const char* kJson = "application/json";
constexpr const char* kHtml = "text/html; charset=UTF-8";

const std::string kGatewayPage =
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
    "Gateway</h1></center>"
    "<hr><center>nginx</center></body></html>";
const std::string kLoginPage =
    "<!DOCTYPE html><html><head><title>Log in</title></head><body><form "
    "action=\"/login\"></form></body></html>";

std::string Lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool OneLine(const std::string& s) {
  return std::none_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

HttpResponse Answer(long status, std::string content_type, std::string body) {
  HttpResponse r;
  r.status = status;
  if (!content_type.empty()) r.headers.emplace("content-type", std::move(content_type));
  r.body = std::move(body);
  return r;
}

}  // namespace

TEST_CASE("ClassifyShootbinAnswer: one row per HTTP status", "[answer]") {
  struct Row {
    long status;
    const char* content_type;
    std::string body;
    Code code;
    std::string must_contain;  // "" = anything
  };
  const std::vector<Row> rows = {
      {200, kJson, R"([{"id":1,"name":"P"}])", Code::kOk, ""},
      {200, kHtml, kLoginPage, Code::kUnauthenticated,
       "refused the API token from SHOOTBIN_API_TOKEN (HTTP 200)"},
      {201, kJson, R"({"success":true,"photo":{"id":12,"origi)", Code::kOk,
       ""},  // cut off: see ParsePhotoAnswer
      {204, "", "", Code::kOk, ""},
      {301, "", "", Code::kUnauthenticated, "(HTTP 301)"},
      {302, kHtml, kLoginPage, Code::kUnauthenticated,
       "refused the API token from SHOOTBIN_API_TOKEN (HTTP 302)"},
      {401, kJson, R"({"message":"Unauthenticated."})", Code::kUnauthenticated,
       "Shootbin refused the API token from SHOOTBIN_API_TOKEN (HTTP 401)"},
      {401, kHtml, kLoginPage, Code::kUnauthenticated, "(HTTP 401)"},
      {400, kJson,
       R"({"message":"Bad request.","errors":{"name":["The name field is required."]}})",
       Code::kRejected, "Bad request. The name field is required. (HTTP 400)"},
      {400, kHtml, "<html><body>400 Bad Request</body></html>", Code::kRejected,
       "an HTML page, not the API's JSON (HTTP 400)"},
      {403, kJson, R"({"message":"This project is locked for review."})", Code::kForbidden,
       "what: This project is locked for review. (HTTP 403)"},
      {403, kJson, R"({"message":"Photo limit for this project reached."})", Code::kForbidden,
       "Photo limit for this project reached. (HTTP 403)"},
      {403, kHtml, "<html>Attention Required! | Cloudflare</html>", Code::kForbidden, "(HTTP 403)"},
      {404, kJson, R"({"message":"Not found."})", Code::kNotFound, "Not found. (HTTP 404)"},
      {407, kHtml, "<html>Proxy Authentication Required</html>", Code::kNetwork,
       "a proxy between here and studio.example.com asks for credentials (HTTP 407)"},
      {408, kHtml, "<html>Request Timeout</html>", Code::kNetwork, "(HTTP 408)"},
      {409, kJson, R"({"message":"A revision is already being processed for this photo."})",
       Code::kConflict, "A revision is already being processed for this photo. (HTTP 409)"},
      {413, kHtml, "<html><center><h1>413 Request Entity Too Large</h1></center>nginx</html>",
       Code::kRejected, "what: too large for the server or a proxy in front of it (HTTP 413)"},
      {413, kJson, R"({"message":"Payload too large."})", Code::kRejected,
       "Payload too large.: too large for the server or a proxy in front of it (HTTP 413)"},
      {422, kJson,
       R"({"message":"The photo must be an image.","errors":{"photo":["The photo must be an image."]}})",
       Code::kRejected, "The photo must be an image. (HTTP 422)"},
      {422, kJson, R"({"errors":{"photo":["The photo may not be greater than 10240 kilobytes."]}})",
       Code::kRejected, "The photo may not be greater than 10240 kilobytes. (HTTP 422)"},
      {429, kJson, R"({"message":"Too Many Attempts."})", Code::kRateLimited,
       "Too Many Attempts. (HTTP 429)"},
      {500, kJson, R"({"message":"Server Error"})", Code::kServer,
       "server error: Server Error (HTTP 500)"},
      {500, kHtml, "<html>Whoops</html>", Code::kServer, "gateway error (HTTP 500)"},
      {502, kHtml, kGatewayPage, Code::kServer, "what: gateway error (HTTP 502)"},
      {502, "", "", Code::kServer, "gateway error (HTTP 502)"},
      {503, kJson, R"({"message":"Service Unavailable"})", Code::kServer, "(HTTP 503)"},
      {503, kHtml, "<html>503 Service Temporarily Unavailable</html>", Code::kServer,
       "gateway error (HTTP 503)"},
      {504, kHtml, "<html><h1>504 Gateway Time-out</h1></html>", Code::kServer,
       "what: gateway error (HTTP 504)"},
      {520, kHtml, "<html>Web server is returning an unknown error | Cloudflare</html>",
       Code::kServer, "gateway error (HTTP 520)"},
      {522, kHtml, "<html>Connection timed out | Cloudflare</html>", Code::kServer,
       "gateway error (HTTP 522)"},
      {524, kHtml, "<html>A timeout occurred | Cloudflare</html>", Code::kServer,
       "what: gateway error (HTTP 524)"},
      {527, kHtml, "<html>Railgun error</html>", Code::kServer, "gateway error (HTTP 527)"},
      {418, kJson, R"({"message":"I'm a teapot"})", Code::kServer,
       "unexpected answer: I'm a teapot (HTTP 418)"},
  };
  for (const Row& row : rows) {
    const Status st =
        ClassifyShootbinAnswer(row.status, row.content_type, row.body, "what", kContext);
    INFO("HTTP " << row.status << " " << row.content_type << " -> " << CodeName(st.code()) << ": "
                 << st.message());
    CHECK(st.code() == row.code);
    if (row.code == Code::kOk) continue;
    CHECK(st.message().rfind("what: ", 0) == 0);
    CHECK(OneLine(st.message()));
    if (!row.must_contain.empty()) CHECK(st.message().find(row.must_contain) != std::string::npos);
    // An HTML page is never quoted.
    if (std::string(row.content_type).find("html") != std::string::npos) {
      CHECK(st.message().find("<") == std::string::npos);
    }
    // Only a refused token talks about the token: never a gateway, a
    // proxy, a size limit or a 403 on one target.
    if (row.code != Code::kUnauthenticated)
      CHECK(Lower(st.message()).find("token") == std::string::npos);
    if (row.status >= 500 || row.status == 407 || row.status == 413) {
      CHECK(Lower(st.message()).find("token") == std::string::npos);
      CHECK(st.code() != Code::kUnauthenticated);
    }
  }
}

TEST_CASE("ClassifyShootbinAnswer on a whole response: transport errors keep their code",
          "[answer]") {
  struct Row {
    Code code;
    std::string transport_message;
    bool request_sent;
  };
  const std::vector<Row> rows = {
      {Code::kNetwork,
       "POST https://studio.example.com/api/projects/1/albums/2/photos: Connection reset by peer "
       "(curl 56)",
       true},
      {Code::kNetwork,
       "GET https://studio.example.com/api/projects: Couldn't connect to server (curl 7)", false},
      {Code::kNetwork,
       "POST https://studio.example.com/api/...: Operation timed out after 300000 ms (curl 28)",
       true},
      {Code::kInvalidArgument,
       "GET https://studio.example.com/api/projects: SSL certificate problem (curl 60); if the "
       "server uses your own CA, pass --ca-file",
       false},
      {Code::kIo, "/photos/a.jpg: No such file or directory", false},
      {Code::kCorrupt,
       "GET https://studio.example.com/api/projects: answer body over 16777216 bytes", false},
      {Code::kCancelled, "POST https://studio.example.com/api/...: shutting down", false},
  };
  for (const Row& row : rows) {
    HttpResponse r;
    r.transport = Status(row.code, row.transport_message);
    r.request_sent = row.request_sent;
    const Status st = ClassifyShootbinAnswer(r, "/photos/a.jpg", kContext);
    INFO(CodeName(row.code) << ": " << st.message());
    CHECK(st.code() == row.code);
    CHECK(st.message() == "/photos/a.jpg: " + row.transport_message);
    CHECK(Lower(st.message()).find("token") == std::string::npos);
  }
  // And a response with an answer goes through the status table.
  auto gateway = Answer(504, kHtml, "<html>504</html>");
  CHECK(ClassifyShootbinAnswer(gateway, "x", kContext).code() == Code::kServer);
  auto login = Answer(200, "Text/HTML", kLoginPage);
  CHECK(ClassifyShootbinAnswer(login, "x", kContext).code() == Code::kUnauthenticated);
}

TEST_CASE(
    "403: a target-level refusal, whatever its wording, no word such as \"locked\" needed",
    "[answer]") {
  for (const char* body :
       {R"({"message":"This project is locked for review."})",
        R"({"message":"Dieses Projekt ist gesperrt."})",
        R"({"message":"This API token does not have permission to upload photos."})", "{}"}) {
    const Status st = ClassifyShootbinAnswer(403, kJson, body, "upload", kContext);
    INFO(st.message());
    CHECK(st.code() == Code::kForbidden);
    CHECK(ShootbinClient::BlocksTargetOnly(st));
  }
  // The server's message is carried verbatim (made printable).
  CHECK(ClassifyShootbinAnswer(403, kJson, R"({"message":"Plan limit\nreached."})", "up", kContext)
            .message() == "up: Plan limit reached. (HTTP 403)");
  for (Code c :
       {Code::kUnauthenticated, Code::kServer, Code::kRejected, Code::kNotFound, Code::kOk}) {
    CHECK_FALSE(ShootbinClient::BlocksTargetOnly(Status(c, "x")));
  }
}

TEST_CASE("ParsePhotoAnswer: a cut-off or unreadable 2xx is kCorrupt (ambiguous), never a success",
          "[answer]") {
  struct Row {
    long status;
    std::string body;
    bool ok;
    std::int64_t id;
    std::string approved_at;
  };
  const std::vector<Row> rows = {
      {201,
       R"({"success":true,"message":"Photo uploaded.","photo":{"id":12,"original_filename":"a.jpg","approved_at":null}})",
       true, 12, ""},
      {201,
       R"({"id":13,"original_filename":"b.jpg","approved_at":"2025-03-10T09:15:00.000000Z","file_size":10})",
       true, 13, "2025-03-10T09:15:00.000000Z"},
      {200, R"({"photo":{"id":14,"approved_at":"2025-04-02T10:12:00.000000Z"}})", true, 14,
       "2025-04-02T10:12:00.000000Z"},
      {201, R"({"success":true,"message":"Photo uploaded.","photo":{"id":12,"original_fi)", false,
       0, ""},
      {201, R"({"success":true,"photo":{"id":12)", false, 0, ""},
      {201, "", false, 0, ""},
      {201, "<html>ok</html>", false, 0, ""},
      {201, R"({"success":true})", false, 0, ""},
      {201, R"({"photo":{"id":0}})", false, 0, ""},
      {201, R"({"photo":{"id":"12"}})", false, 0, ""},
      {201, "[]", false, 0, ""},
  };
  for (const Row& row : rows) {
    auto got = ShootbinClient::ParsePhotoAnswer(Answer(row.status, kJson, row.body));
    INFO(row.body << " -> " << got.status().message());
    REQUIRE(got.ok() == row.ok);
    if (row.ok) {
      CHECK(got->id == row.id);
      CHECK(got->approved_at == row.approved_at);
    } else {
      CHECK(got.status().code() == Code::kCorrupt);
      CHECK(got.status().message().find("may have been stored") != std::string::npos);
      CHECK(got.status().message().find("(HTTP " + std::to_string(row.status)) !=
            std::string::npos);
    }
  }
}

TEST_CASE("ParsePhotoPage fills approved_at (\"\" for null or absent) and keeps file_size optional",
          "[answer]") {
  auto page = shotsync::ParsePhotoPage(
      R"({"data":[{"id":3,"original_filename":"a.jpg","approved_at":"2025-03-10T09:15:00.000000Z","file_size":42},
                  {"id":2,"original_filename":"b.jpg","approved_at":null},
                  {"id":1,"original_filename":"c.jpg"}],
          "next_cursor":null,"has_more":false})",
      "listing");
  REQUIRE(page.ok());
  REQUIRE(page->photos.size() == 3);
  CHECK(page->photos[0].approved_at == "2025-03-10T09:15:00.000000Z");
  CHECK(page->photos[0].file_size == std::uint64_t(42));
  CHECK(page->photos[1].approved_at.empty());
  CHECK_FALSE(page->photos[1].file_size.has_value());
  CHECK(page->photos[2].approved_at.empty());
}

TEST_CASE("SimpleCaseFold folds ASCII and common scripts, keeps bytes that are not UTF-8",
          "[answer]") {
  using shotsync::SimpleCaseFold;
  CHECK(SimpleCaseFold("Main") == "main");
  CHECK(SimpleCaseFold("MAIN 2025") == "main 2025");
  CHECK(SimpleCaseFold("ÉTÉ À PARIS") == "été à paris");
  CHECK(SimpleCaseFold("ŁÓDŹ") == "łódź");
  CHECK(SimpleCaseFold("ΑΘΉΝΑ") == SimpleCaseFold("αθήνα"));
  CHECK(SimpleCaseFold("ΟΔΟΣ") == SimpleCaseFold("οδος"));
  CHECK(SimpleCaseFold("οδός") == SimpleCaseFold("ΟΔΌΣ"));  // final sigma
  CHECK(SimpleCaseFold("МОСКВА Ёлка") == "москва ёлка");
  CHECK(SimpleCaseFold("ẞ") == "ß");
  CHECK(SimpleCaseFold("ＡＢＣ") == "ａｂｃ");
  CHECK(SimpleCaseFold("日本") == "日本");
  CHECK(SimpleCaseFold(std::string("A\xff\xc3(B", 5)) == std::string("a\xff\xc3(b", 5));
  CHECK(SimpleCaseFold("") == "");
}

TEST_CASE("FindIdByNameOrId: ids, exact names, case-insensitive names, ambiguity", "[answer]") {
  const std::string albums = R"([
    {"id": 12, "team_id": 3, "name": "Main"},
    {"id": 15, "team_id": 3, "name": "main"},
    {"id": 16, "team_id": 3, "name": "BTS"},
    {"id": 17, "team_id": 3, "name": "Look 1"},
    {"id": 18, "team_id": 3, "name": "Look 1"},
    {"id": 19, "team_id": 3, "name": "Été"},
    {"id": 20, "team_id": 3, "name": "Selects  Final"},
    {"id": 21, "team_id": 3, "name": "2025"}
  ])";
  const IdLookup lookup{"album", " in project 3"};
  struct Row {
    std::string wanted;
    Code code;
    std::int64_t id;
    std::string must_contain;
  };
  const std::vector<Row> rows = {
      {"16", Code::kOk, 16, ""},   // digits: an id
      {"BTS", Code::kOk, 16, ""},  // exact, unique
      {"bts", Code::kOk, 16, ""},  // case-insensitive, unique: accepted
      {"Bts", Code::kOk, 16, ""},
      {"ÉTÉ", Code::kOk, 19, ""},   // Unicode simple case
      // Names differing only in case: ambiguous even for an exact match (never a silent pick).
      {"Main", Code::kInvalidArgument, 0, "album \"Main\" is ambiguous in project 3: ids 12 (\"Main\"), 15 (\"main\")"},
      {"main", Code::kInvalidArgument, 0, "ids 15 (\"main\"), 12 (\"Main\")"},
      {"MAIN", Code::kInvalidArgument, 0,
       "album \"MAIN\" is ambiguous in project 3: ids 12 (\"Main\"), 15 (\"main\"); set album = "
       "<id> in the config"},
      {"Look 1", Code::kInvalidArgument, 0,
       "album \"Look 1\" is ambiguous in project 3: ids 17 (\"Look 1\"), 18 (\"Look 1\"); set "
       "album = <id> in the config"},
      {"look 1", Code::kInvalidArgument, 0, "ids 17 (\"Look 1\"), 18 (\"Look 1\")"},
      {"Selects Final", Code::kInvalidArgument, 0,
       "close to: id 20 (\"Selects  Final\")"},  // near: never created beside
      {" bts ", Code::kInvalidArgument, 0, "close to: id 16 (\"BTS\")"},
      {"99", Code::kNotFound, 0, "album \"99\" not found in project 3"},
      {"Nope", Code::kNotFound, 0, "album \"Nope\" not found in project 3"},
  };
  for (const Row& row : rows) {
    auto got = FindIdByNameOrId(albums, row.wanted, "listing albums", lookup);
    INFO("\"" << row.wanted << "\" -> " << got.status().message());
    CHECK(got.status().code() == row.code);
    if (got.ok()) CHECK(*got == row.id);
    if (!row.must_contain.empty())
      CHECK(got.status().message().find(row.must_contain) != std::string::npos);
  }
  // Digits are an id, never a name; a name equal to them is shown, not used.
  auto digits = FindIdByNameOrId(albums, "2025", "listing albums", lookup);
  CHECK(digits.status().code() == Code::kInvalidArgument);
  CHECK(digits.status().message().find("id 21 (\"2025\")") != std::string::npos);
  // Not a JSON array.
  CHECK(FindIdByNameOrId("{}", "x", "listing albums", lookup).status().code() == Code::kCorrupt);
  CHECK(FindIdByNameOrId("[{\"id\":1,\"na", "x", "listing albums", lookup).status().code() ==
        Code::kCorrupt);
  // The old three-argument form behaves the same.
  CHECK(*FindIdByNameOrId(albums, "bts", "listing albums") == 16);
  CHECK(FindIdByNameOrId(albums, "MAIN", "listing albums").status().code() ==
        Code::kInvalidArgument);

  const std::string projects =
      R"([{"id":1,"name":"Client Smith"},{"id":2,"name":"CLIENT SMITH"},{"id":3,"name":"Demo"}])";
  auto p = FindIdByNameOrId(projects, "client smith", "listing projects", IdLookup{"project", ""});
  CHECK(p.status().code() == Code::kInvalidArgument);
  CHECK(p.status().message() ==
        "project \"client smith\" is ambiguous: ids 1 (\"Client Smith\"), 2 (\"CLIENT SMITH\"); "
        "set project = <id> in "
        "the config");
  CHECK(*FindIdByNameOrId(projects, "demo", "listing projects", IdLookup{"project", ""}) == 3);
}

TEST_CASE("HeadshotPro: a 429 INVITE_LIMIT_EXCEEDED is the item's refusal, not a rate limit",
          "[answer]") {
  struct Row {
    std::string body;
    Code code;
    bool rate_limit;
  };
  const std::vector<Row> rows = {
      {R"({"success":false,"error":"Rate limit exceeded","code":"RATE_LIMIT_EXCEEDED"})",
       Code::kRateLimited, true},
      {R"({"success":false,"error":"Too many pending invites","code":"INVITE_LIMIT_EXCEEDED"})",
       Code::kRejected, false},
      {R"({"success":false,"data":{"error":"Too many pending invites","code":"INVITE_LIMIT_EXCEEDED"}})",
       Code::kRejected, false},
      {R"({"message":"Too Many Attempts."})", Code::kRateLimited, true},  // Shootbin's shape
      {"", Code::kRateLimited, true},
      {"<html>429 Too Many Requests</html>", Code::kRateLimited, true},
  };
  for (const Row& row : rows) {
    INFO(row.body);
    CHECK(shotsync::Is429RateLimit(row.body) == row.rate_limit);
    HttpResponse r = Answer(429, kJson, row.body);
    const auto a = shotsync::CheckHpAnswer(r, "inviting a@b.test", "HEADSHOTPRO_API_KEY");
    CHECK(a.status.code() == row.code);
    if (!row.rate_limit) {
      CHECK(a.code == "INVITE_LIMIT_EXCEEDED");
      CHECK(a.status.message() ==
            "inviting a@b.test: Too many pending invites [INVITE_LIMIT_EXCEEDED] (HTTP 429)");
    }
    // The throttle fed the same answer with its body: no pause, no resend.
    double now = 1705314660.0;
    shotsync::Throttle t({.key = "headshotpro:x", .rpm = 300, .clock = [&] { return now; }});
    const bool resend = t.OnResponse(429, {{"x-ratelimit-remaining", "250"}}, row.body);
    CHECK(resend == row.rate_limit);
    CHECK(t.throttled_429() == (row.rate_limit ? 1 : 0));
    CHECK((t.paused_until() > 0) == row.rate_limit);
  }
}

TEST_CASE("emulator: a case difference resolves to the existing album and project, never a new one",
          "[answer][emulator]") {
  shotsync::testing::EmulatorProcess emu({"--shootbin-rpm", "1000000"});
  emu.Seed({{"projects",
             {{{"name", "Client Smith"}, {"albums", {"Main", "BTS"}}},
              {{"name", "Twins"}, {"albums", {"Look", "LOOK"}}}}}});
  const auto before = emu.Stats().at("shootbin");
  shotsync::TransferEngine engine(
      shotsync::TransferOptions{.max_concurrent = 2, .max_per_host = 2});
  shotsync::Throttle throttle({.key = "shootbin:test", .rpm = 1000000});
  ShootbinClient client(engine, throttle, emu.base_url(), "sb-test-token", "SHOOTBIN_API_TOKEN");

  auto project = client.ResolveProject("client smith", /*create=*/true);
  INFO(project.status().message());
  REQUIRE(project.ok());
  auto main = client.ResolveAlbum(*project, "main", /*create=*/true);
  INFO(main.status().message());
  REQUIRE(main.ok());
  auto exact = client.ResolveAlbum(*project, "Main", false);
  REQUIRE(exact.ok());
  CHECK(*main == *exact);

  auto twins = client.ResolveProject("Twins", false);
  REQUIRE(twins.ok());
  auto ambiguous = client.ResolveAlbum(*twins, "look", /*create=*/true);
  CHECK(ambiguous.status().code() == Code::kInvalidArgument);
  CHECK(ambiguous.status().message().find("is ambiguous in project " + std::to_string(*twins)) !=
        std::string::npos);
  CHECK(ambiguous.status().message().find("(\"Look\")") != std::string::npos);
  CHECK(ambiguous.status().message().find("(\"LOOK\")") != std::string::npos);

  // Nothing was created.
  const auto after = emu.Stats().at("shootbin");
  CHECK(after.at("projects") == before.at("projects"));
  CHECK(after.at("albums") == before.at("albums"));

  // Really absent: the create hint, and create = true creates it.
  auto absent = client.ResolveAlbum(*project, "Selects", false);
  CHECK(absent.status().code() == Code::kNotFound);
  CHECK(absent.status().message().find("set create = true") != std::string::npos);
  auto created = client.ResolveAlbum(*project, "Selects", true);
  CHECK(created.ok());
  CHECK(emu.Stats().at("shootbin").at("albums").get<int>() == before.at("albums").get<int>() + 1);

  // A token whose plan has no API access: 403 on the project listing is the token's problem.
  ShootbinClient pro(engine, throttle, emu.base_url(), "sb-pro-token", "SHOOTBIN_API_TOKEN");
  auto refused = pro.ResolveProject("Client Smith", false);
  INFO(refused.status().message());
  CHECK(refused.status().code() == Code::kUnauthenticated);
  CHECK(refused.status().message().find("(HTTP 403)") != std::string::npos);
  CHECK_FALSE(ShootbinClient::BlocksTargetOnly(refused.status()));
}

TEST_CASE("emulator: HeadshotPro INVITE_LIMIT_EXCEEDED is refused at once, not paused and resent",
          "[answer][emulator]") {
  shotsync::testing::EmulatorProcess emu({"--headshotpro-rpm", "1000000"});
  emu.Seed({{"credits", 1}});  // pending-invite cap: 2
  shotsync::TransferEngine engine(
      shotsync::TransferOptions{.max_concurrent = 2, .max_per_host = 2});
  shotsync::Throttle throttle({.key = "headshotpro:test", .rpm = 1000000});
  shotsync::HeadshotProClient client(engine, throttle, emu.url("/api/v2"), "hp-test-key",
                                     "HEADSHOTPRO_API_KEY");
  CHECK(client.Invite("a1@acme.test", "").status.ok());
  CHECK(client.Invite("a2@acme.test", "").status.ok());
  auto refused = client.Invite("a3@acme.test", "");
  INFO(refused.status.message());
  CHECK(refused.status.code() == Code::kRejected);
  CHECK(refused.code == "INVITE_LIMIT_EXCEEDED");
  CHECK(refused.http == 429);
  CHECK(throttle.throttled_429() == 0);
  CHECK(throttle.paused_until() == 0);
  CHECK(emu.Stats().at("status_counts").value("429", 0) == 1);  // sent once
}

TEST_CASE("an http:// base URL redirected to https:// is reported as such, not as a refused token", "[answer]") {
  HttpResponse r;
  r.status = 301;
  r.headers.emplace("location", "https://proofs.example.com/api/projects?page=2");
  const Status st = shotsync::HttpsRedirect(r, "listing Shootbin projects");
  CHECK(st.code() == Code::kInvalidArgument);
  CHECK(st.message() ==
        "listing Shootbin projects: the server redirects to https://proofs.example.com (HTTP 301): it takes https "
        "only; set base_url to https://proofs.example.com");
  const Status mapped = ClassifyShootbinAnswer(r, "listing Shootbin projects", ShootbinAnswerContext{"http://x/api", "T"});
  CHECK(mapped.code() == Code::kInvalidArgument);
  HttpResponse login;  // a redirect elsewhere is still the login page
  login.status = 302;
  login.headers.emplace("location", "/login");
  CHECK(shotsync::HttpsRedirect(login, "x").ok());
  CHECK(ClassifyShootbinAnswer(login, "x", ShootbinAnswerContext{"http://x/api", "T"}).code() ==
        Code::kUnauthenticated);
}

TEST_CASE("a project or album that is not found lists the ones that exist", "[answer]") {
  const std::vector<shotsync::NamedId> albums = {{12, "Main"}, {15, "BTS"}};
  auto r = shotsync::FindNamedId(albums, "Selects", IdLookup{"album", " in project 3"});
  CHECK(r.status().code() == Code::kNotFound);
  CHECK(shotsync::ListNamedIds(albums, 8) == "12 (\"Main\"), 15 (\"BTS\")");
  CHECK(shotsync::ListNamedIds(albums, 1) == "12 (\"Main\"), and 1 more");
  CHECK(shotsync::ListNamedIds({}, 8) == "none");
}

TEST_CASE("emulator: a listing since the last look returns only the newer photos, from a first page of 10",
          "[answer][emulator]") {
  shotsync::testing::EmulatorProcess emu({"--shootbin-rpm", "1000000"});
  emu.Seed({{"projects", {{{"name", "Web"}, {"albums", {{{"name", "Preloaded"}, {"photos", 40}}}}}}}});
  shotsync::TransferEngine engine(shotsync::TransferOptions{.max_concurrent = 2, .max_per_host = 2});
  shotsync::Throttle throttle({.key = "shootbin:test", .rpm = 1000000});
  ShootbinClient client(engine, throttle, emu.base_url(), "sb-test-token", "SHOOTBIN_API_TOKEN");
  auto project = client.ResolveProject("Web", false);
  REQUIRE(project.ok());
  auto album = client.ResolveAlbum(*project, "Preloaded", false);
  REQUIRE(album.ok());

  auto all = client.ListPhotos(*project, *album);
  REQUIRE(all.ok());
  REQUIRE(all->size() == 40);  // newest first
  auto requests = [&] { return throttle.granted(); };

  // Three photos newer than the last look: one small page, and only those three.
  const std::int64_t stop3 = (*all)[2].id;
  auto before = requests();
  auto three = client.ListPhotos(*project, *album, stop3);
  REQUIRE(three.ok());
  CHECK(requests() - before == 1);
  REQUIRE(three->size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK((*three)[i].id == (*all)[i].id);

  // Fifteen: the first page of 10, then one of 100; still only the newer ones.
  const std::int64_t stop15 = (*all)[14].id;
  before = requests();
  auto fifteen = client.ListPhotos(*project, *album, stop15);
  REQUIRE(fifteen.ok());
  CHECK(requests() - before == 2);
  REQUIRE(fifteen->size() == 15);
  for (const auto& p : *fifteen) CHECK(p.id >= stop15);
}
