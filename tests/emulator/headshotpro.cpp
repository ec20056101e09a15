// HeadshotPro Organization API (V2) routes and the signed-URL CDN of the
// emulator, following ../shared/api/headshotpro.md (documented shapes, and the
// shotsync assumptions where the docs are silent).
//
// All service state lives in one State object guarded by State::mu, shared by
// the route lambdas and the reset/seed/stats hooks through a shared_ptr; there
// is no global mutable state. Generated JPEG bytes are cached per photo and
// variant (generated lazily, outside the lock, once).
//
// Routes (relative to the emulator base URL):
//   /api/v2/organization...            the API of headshotpro.md §0
//   GET /cdn/photos/<id>[_thumb|_original].jpg?expires=..&signature=..
//                                      signed photo bytes (no auth, no rate limit)
//   GET  /_emulator/headshotpro/photos/<id>[?variant=main|thumbnail|original]
//                                      {"id","modelId","variant","sha256","size"}
//   POST /_emulator/headshotpro/models/<id>
//                                      {"status","add_photos","delete_photos","favorite"}
//                                      mutate a model (tests: new/deleted photos)
//   POST /_emulator/headshotpro/members/<id>
//                                      {"name","list_first"} rename a member (null: no
//                                      name) / list it first (tests: equal names, order)
//   POST /_emulator/headshotpro/webhook {"url","secret","retry_scale"}
//   POST /_emulator/headshotpro/webhook/send {"event","model","id",...}
//   GET  /_emulator/headshotpro/webhook/deliveries
//                                      signed webhooks (§3), delivered by the Webhooks
//                                      class's own thread; see docs/emulator.md
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <functional>
#include <stop_token>
#include <thread>
#include <utility>

#include "emulator.hpp"
#include "jpeg_synth.hpp"

namespace emu {
namespace {

constexpr const char* kOrgUid = "org_abc123def456";
constexpr const char* kOrgName = "Acme Corporation";
constexpr const char* kOrgWebsite = "https://acme.com";
constexpr const char* kDefaultTeamId = "team_xyz789";
constexpr const char* kDefaultTeamName = "Marketing";
constexpr int kDefaultCredits = 100;
constexpr std::int64_t kBaseMs = 1705314600000;  // 2024-01-15T10:30:00.000Z: seeded data starts here
constexpr int kDefaultLimit = 50;
constexpr int kMaxLimit = 200;
constexpr const char* kJson = "application/json";

using httplib::Request;
using httplib::Response;

enum class Variant { kMain = 0, kThumb = 1, kOriginal = 2 };

struct Team {
  std::string id;
  std::string name;
};

struct Member {
  std::string id;
  std::string email;
  std::optional<std::string> name;
  std::string status;  // accepted | pending | finished
  std::optional<std::string> team_id;
  std::int64_t joined_ms = 0;
  std::vector<std::string> model_ids;  // creation order; the last is "the" model
};

struct Invite {
  std::string id;
  std::string email;
  std::string status;  // pending | accepted | revoked | uploading | generating | completed | deleted
  std::optional<std::string> team_id;
  std::optional<std::string> model_id;
  std::int64_t created_ms = 0;
};

struct Model {
  std::string id;
  std::string uid;
  std::string email;
  std::optional<std::string> title;
  std::string status;
  std::optional<std::string> team_id;
  bool is_development = false;
  std::int64_t created_ms = 0;
  std::optional<std::int64_t> finished_ms;
  std::vector<std::string> photo_ids;  // creation order
  std::optional<std::string> favorite;
};

struct Photo {
  std::string id;
  std::string model_id;
  std::string status = "active";  // active | deleted
  std::string liked = "none";     // none | liked | loved
  std::int64_t created_ms = 0;
  std::size_t main_bytes = 0;  // seed's "photo_bytes": the main variant padded to this size (0: as made)
};

// Everything reset() restores. Guarded by State::mu.
struct Data {
  int credits = kDefaultCredits;
  bool whitelabel = false;
  std::vector<Team> teams{{kDefaultTeamId, kDefaultTeamName}};
  std::map<std::string, Member> members;
  std::map<std::string, Invite> invites;  // by lower-case email
  std::map<std::string, Model> models;
  std::map<std::string, Photo> photos;
  std::uint64_t counter = 0;        // id counter
  std::uint64_t seeded_members = 0; // seeded timestamps advance with this
  std::uint64_t fault_rr = 0;       // CDN 5xx status rotation
  // Webhook events raised under the lock, handed to the delivery queue by
  // the caller once the lock is released (the queue has its own).
  std::vector<std::pair<std::string, Json>> outbox;  // {event, object}
};

struct State {
  explicit State(std::uint64_t seed_value)
      : seed(seed_value), secret("hp-cdn-secret-" + std::to_string(seed_value)) {}
  const std::uint64_t seed;
  const std::string secret;  // HMAC key of the signed CDN URLs
  std::mutex mu;
  Data d;  // guarded by mu
  std::map<std::pair<std::string, int>, std::shared_ptr<const std::string>> images;  // guarded by mu
};

// ---------------------------------------------------------------- helpers

std::uint64_t SplitMix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string Hex(std::uint64_t v, int digits) {
  static const char* kDigits = "0123456789abcdef";
  std::string s(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i) {
    s[static_cast<size_t>(i)] = kDigits[v & 0xf];
    v >>= 4;
  }
  return s;
}

std::string HexBytes(const unsigned char* p, size_t n) {
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) s += Hex(p[i], 2);
  return s;
}

// 24-hex ObjectId-like id, deterministic from the emulator seed and a counter.
std::string NewId(const State& st, Data& d) {
  const std::uint64_t n = ++d.counter;
  return Hex(0x65a50000u + n, 8) + Hex(SplitMix(st.seed * 0x100000001b3ULL + n), 16);
}

std::string NewTeamId(const State& st, Data& d) {
  const std::uint64_t n = ++d.counter;
  return "team_" + Hex(SplitMix(st.seed ^ (n * 0x9e37ULL)), 12) + Hex(n & 0xff, 2);
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Iso(std::int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

Json OptStr(const std::optional<std::string>& s) { return s ? Json(*s) : Json(nullptr); }

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

bool ValidEmail(const std::string& e) {
  if (e.size() > 254) return false;
  const auto at = e.find('@');
  if (at == std::string::npos || at == 0 || e.find('@', at + 1) != std::string::npos) return false;
  const std::string domain = e.substr(at + 1);
  const auto dot = domain.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 2 > domain.size()) return false;
  if (domain.find("..") != std::string::npos) return false;
  for (unsigned char c : e) {
    if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')' || c == '<' || c == '>' || c == ',' ||
        c == ';' || c == ':' || c == '\\' || c == '"' || c == '[' || c == ']')
      return false;
  }
  return true;
}

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// Sets the body; with the slow-body fault it trickles at slow_body_bps.
void SetBody(Response& res, std::shared_ptr<const std::string> body, const char* type, int bps) {
  if (bps <= 0 || body->empty()) {
    res.set_content(*body, type);
    return;
  }
  res.set_content_provider(
      body->size(), type, [body, bps](size_t offset, size_t length, httplib::DataSink& sink) {
        const size_t chunk = std::min(length, std::max<size_t>(1, static_cast<size_t>(bps) / 10));
        std::this_thread::sleep_for(std::chrono::microseconds(
            static_cast<std::int64_t>(chunk) * 1000000 / bps));
        return sink.write(body->data() + offset, chunk);
      });
}

// One answer of an API handler, computed under the state lock and sent
// after it is released (emu's own locks are never taken under State::mu).
struct Reply {
  int status = 200;
  Json body;
};

void Send(Emulator& emu, Response& res, const Reply& r) {
  res.status = r.status;
  SetBody(res, std::make_shared<const std::string>(Dump(r.body)), kJson, emu.faults().slow_body_bps);
  emu.RecordStatus(r.status);
}

Reply Ok(Json body) {
  body["success"] = true;
  return {200, std::move(body)};
}

Reply Fail(int status, const std::string& code, const std::string& error) {
  return {status, Json{{"success", false}, {"error", error}, {"code", code}}};
}

Reply NotFound(const std::string& what) { return Fail(404, "NOT_FOUND", what + " not found"); }

Reply BadRequest(const std::string& error) { return Fail(400, "INVALID_REQUEST", error); }

// Parses a JSON object body; nullopt (and `err` set) when it is not one.
std::optional<Json> BodyObject(const Request& req, Reply& err) {
  Json j = Json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    err = BadRequest("Request body must be a JSON object");
    return std::nullopt;
  }
  return j;
}

bool ParseInt(const std::string& s, long long& out) {
  if (s.empty()) return false;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  auto [p, ec] = std::from_chars(b, e, out);
  return ec == std::errc() && p == e;
}

struct Page {
  int limit = kDefaultLimit;
  int offset = 0;
};

// limit (default 50, >200 clamped, <1 -> 400) and offset (default 0, <0 -> 400).
std::optional<Page> ParsePage(const Request& req, Reply& err) {
  Page p;
  if (req.has_param("limit")) {
    long long v = 0;
    if (!ParseInt(req.get_param_value("limit"), v) || v < 1) {
      err = BadRequest("limit must be a positive integer");
      return std::nullopt;
    }
    p.limit = static_cast<int>(std::min<long long>(v, kMaxLimit));
  }
  if (req.has_param("offset")) {
    long long v = 0;
    if (!ParseInt(req.get_param_value("offset"), v) || v < 0 || v > 1'000'000'000) {
      err = BadRequest("offset must be a non-negative integer");
      return std::nullopt;
    }
    p.offset = static_cast<int>(v);
  }
  return p;
}

const Team* FindTeam(const Data& d, const std::optional<std::string>& id) {
  if (!id) return nullptr;
  for (const auto& t : d.teams) {
    if (t.id == *id) return &t;
  }
  return nullptr;
}

Json TeamName(const Data& d, const std::optional<std::string>& id) {
  const Team* t = FindTeam(d, id);
  return t ? Json(t->name) : Json(nullptr);
}

Json TeamsJson(const Data& d) {
  Json a = Json::array();
  for (const auto& t : d.teams) a.push_back({{"id", t.id}, {"name", t.name}});
  return a;
}

Json OrgJson(const Data& d) {
  return {{"uid", kOrgUid}, {"name", kOrgName}, {"website", kOrgWebsite}, {"teams", TeamsJson(d)}};
}

Json ModelJson(const Data& d, const Model& m) {
  return {{"id", m.id},
          {"uid", m.uid},
          {"email", m.email},
          {"title", OptStr(m.title)},
          {"status", m.status},
          {"teamId", OptStr(m.team_id)},
          {"teamName", TeamName(d, m.team_id)},
          {"isDevelopment", m.is_development},
          {"createdAt", Iso(m.created_ms)},
          {"finishedAt", m.finished_ms ? Json(Iso(*m.finished_ms)) : Json(nullptr)}};
}

// The "object" of a webhook payload (headshotpro.md §3) for a model.
Json WebhookObject(const Model& m, std::int64_t now) {
  constexpr std::int64_t kInviteLifetimeMs = 30LL * 24 * 3600 * 1000;
  return {{"_id", m.id},
          {"uid", m.uid},
          {"title", OptStr(m.title)},
          {"trigger", (m.id.back() & 1) ? "female" : "male"},
          {"status", m.status},
          {"isDevelopment", m.is_development},
          {"finishedAt", m.finished_ms ? Json(Iso(*m.finished_ms)) : Json(nullptr)},
          {"deletedAt", m.status == "deleted" ? Json(Iso(now)) : Json(nullptr)},
          {"inviteExpiresAt", Iso(m.created_ms + kInviteLifetimeMs)},
          {"createdAt", Iso(m.created_ms)},
          {"organization", kOrgUid}};
}

Json InviteJson(const Data& d, const Invite& i) {
  Json j = {{"id", i.id},
            {"email", i.email},
            {"status", i.status},
            {"teamId", OptStr(i.team_id)},
            {"teamName", TeamName(d, i.team_id)},
            {"createdAt", Iso(i.created_ms)}};
  if (i.model_id) j["modelId"] = *i.model_id;
  return j;
}

bool InviteIsPending(const Invite& i) {
  return i.status == "pending" || i.status == "accepted" || i.status == "uploading" ||
         i.status == "generating";
}

int PendingInvites(const Data& d) {
  int n = 0;
  for (const auto& [_, i] : d.invites) n += InviteIsPending(i) ? 1 : 0;
  return n;
}

// Signs CDN URLs for one listing answer.
struct UrlSigner {
  const State* st = nullptr;
  std::string base;       // "http://host:port"
  std::uint64_t expires;  // unix seconds

  static std::string Signature(const std::string& secret, const std::string& path,
                               std::uint64_t expires) {
    const std::string msg = path + std::to_string(expires);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
    return HexBytes(mac, len);
  }
  std::string Url(const std::string& photo_id, Variant v) const {
    static const char* kSuffix[] = {"", "_thumb", "_original"};
    const std::string path = "/cdn/photos/" + photo_id + kSuffix[static_cast<int>(v)] + ".jpg";
    return base + path + "?expires=" + std::to_string(expires) +
           "&signature=" + Signature(st->secret, path, expires);
  }
  Json Urls(const std::string& photo_id, bool all) const {
    Json u = {{"main", Url(photo_id, Variant::kMain)}};
    if (all) {
      u["thumbnail"] = Url(photo_id, Variant::kThumb);
      u["original"] = Url(photo_id, Variant::kOriginal);
    }
    return u;
  }
  std::string ExpiresAt() const { return Iso(static_cast<std::int64_t>(expires) * 1000); }
};

int UrlTtl(Emulator& emu) { return emu.UrlTtlSeconds(); }

UrlSigner MakeSigner(Emulator& emu, const State& st, const Request& req) {
  UrlSigner s;
  s.st = &st;
  const std::string host = req.get_header_value("Host");
  const bool host_ok =
      !host.empty() && host.size() < 256 &&
      std::all_of(host.begin(), host.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '.' || c == ':' || c == '-' || c == '[' || c == ']';
      });
  s.base = host_ok ? "http://" + host : emu.BaseUrl();
  s.expires = emu.NowUnix() + static_cast<std::uint64_t>(std::max(0, UrlTtl(emu)));
  return s;
}

Json PhotoJson(const Photo& p, const UrlSigner& s, bool all) {
  return {{"id", p.id},
          {"status", p.status},
          {"likedStatus", p.liked},
          {"createdAt", Iso(p.created_ms)},
          {"urls", s.Urls(p.id, all)},
          {"expiresAt", s.ExpiresAt()}};
}

// createdAt descending; ties broken by id descending so pages are stable.
bool NewerFirst(std::int64_t a_ms, const std::string& a_id, std::int64_t b_ms,
                const std::string& b_id) {
  return a_ms != b_ms ? a_ms > b_ms : a_id > b_id;
}

void SortPhotos(std::vector<const Photo*>& v) {
  std::sort(v.begin(), v.end(), [](const Photo* a, const Photo* b) {
    return NewerFirst(a->created_ms, a->id, b->created_ms, b->id);
  });
}

std::string LikedFor(size_t i) {
  if (i % 10 == 3) return "loved";
  if (i % 4 == 1) return "liked";
  return "none";
}

// Adds `n` photos to an active model; createdAt = start + (i / 2) s so that
// pairs share a timestamp (exercises the stable tie-break).
void AddPhotos(const State& st, Data& d, Model& m, size_t n, std::int64_t start_ms) {
  const size_t first = m.photo_ids.size();
  for (size_t i = 0; i < n; ++i) {
    Photo p;
    p.id = NewId(st, d);
    p.model_id = m.id;
    p.liked = LikedFor(first + i);
    p.created_ms = start_ms + static_cast<std::int64_t>(i / 2) * 1000;
    m.photo_ids.push_back(p.id);
    d.photos.emplace(p.id, std::move(p));
  }
}

std::string HostileName(size_t k) {
  switch (k % 8) {
    case 0: return "../../etc/passwd";
    case 1: return "/abs/path/name";
    case 2: return std::string("ctl\x01name\x1f\x7f") + "\ttab";
    case 3: return std::string(300, 'L') + " Longname";
    case 4: return "..";
    case 5: return "a/b\\c:d*e?f\"g<h>i|j";
    case 6: return "CON";
    default: return " trailing dot. ";
  }
}

// ------------------------------------------------------------- JPEG bytes

// Pads a JPEG to `target` bytes with COM segments after SOI and JFIF's APP0
// (decoders skip comments), filled with noise so that nothing on the way can
// compress them. Gives large files cheaply, for the download benchmark; a
// shortfall under 4 bytes (the smallest segment) is left as it is.
void PadJpeg(std::vector<std::uint8_t>& jpeg, size_t target, std::uint64_t seed) {
  if (jpeg.size() < 4 || target < jpeg.size() + 4) return;
  size_t at = 2;
  if (jpeg[2] == 0xFF && jpeg[3] == 0xE0 && jpeg.size() > 6) at += 2 + (size_t{jpeg[4]} << 8 | jpeg[5]);
  std::vector<std::uint8_t> pad;
  pad.reserve(target - jpeg.size());
  size_t need = target - jpeg.size();
  while (need >= 4) {
    size_t seg = std::min<size_t>(need, 65537);  // marker (2) + length (2) + at most 65533
    if (need - seg > 0 && need - seg < 4) seg -= 4;  // room for a last segment
    const size_t len = seg - 2;
    pad.insert(pad.end(), {0xFF, 0xFE, static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len & 0xFF)});
    for (size_t i = 0; i < seg - 4; i += 8) {
      const std::uint64_t r = SplitMix(seed++);
      for (size_t b = 0; b < 8 && i + b < seg - 4; ++b) pad.push_back(static_cast<std::uint8_t>(r >> (8 * b)));
    }
    need -= seg;
  }
  jpeg.insert(jpeg.begin() + static_cast<std::ptrdiff_t>(at), pad.begin(), pad.end());
}

std::shared_ptr<const std::string> Image(State& st, const std::string& photo_id, Variant v) {
  const auto key = std::make_pair(photo_id, static_cast<int>(v));
  size_t pad_to = 0;
  {
    std::lock_guard lk(st.mu);
    auto it = st.images.find(key);
    if (it != st.images.end()) return it->second;
    const auto p = st.d.photos.find(photo_id);
    if (v == Variant::kMain && p != st.d.photos.end()) pad_to = p->second.main_bytes;
  }
  shotsync::testing::JpegSpec spec;
  const int side = v == Variant::kThumb ? 128 : v == Variant::kOriginal ? 1024 : 512;
  spec.width = side;
  spec.height = side;
  spec.quality = 90;
  spec.noise = 24;
  spec.seed = SplitMix(std::hash<std::string>{}(photo_id) ^ (static_cast<std::uint64_t>(v) << 56));
  auto bytes = shotsync::testing::SynthJpeg(spec);
  if (pad_to > 0) PadJpeg(bytes, pad_to, spec.seed);
  auto img = std::make_shared<const std::string>(bytes.begin(), bytes.end());
  std::lock_guard lk(st.mu);
  auto [it, inserted] = st.images.emplace(key, img);
  return it->second;
}

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return HexBytes(md, len);
}

// ------------------------------------------------------------------ seed

Json Seed(State& st, const Json& body) {
  static const char* kKeys[] = {"members",         "models_per_member", "photos_per_model",
                                "credits",         "favorites",         "pending_members",
                                "accepted_members", "hostile_names",    "whitelabel",
                                "teams",           "deleted_photos_per_model", "pregenerate",
                                "photo_bytes"};
  bool any = false;
  for (const char* k : kKeys) any = any || body.contains(k);
  if (!any) return Json::object();

  auto num = [&](const char* k, long long def) {
    const auto it = body.find(k);
    if (it == body.end() || !it->is_number_integer()) return def;
    return std::max<long long>(0, it->get<long long>());
  };
  auto flag = [&](const char* k, bool def) {
    const auto it = body.find(k);
    return it != body.end() && it->is_boolean() ? it->get<bool>() : def;
  };
  const auto members = static_cast<size_t>(num("members", 0));
  const auto models_per_member = static_cast<size_t>(num("models_per_member", 1));
  const auto photos_per_model = static_cast<size_t>(num("photos_per_model", 40));
  const auto deleted_per_model = static_cast<size_t>(num("deleted_photos_per_model", 0));
  const auto photo_bytes = static_cast<size_t>(num("photo_bytes", 0));
  const auto pending = static_cast<size_t>(num("pending_members", 0));
  const auto accepted = static_cast<size_t>(num("accepted_members", 0));
  const auto extra_teams = static_cast<size_t>(num("teams", 0));
  const bool favorites = flag("favorites", true);
  const bool hostile = flag("hostile_names", false);

  std::unique_lock lk(st.mu);
  Data& d = st.d;
  if (body.contains("credits")) d.credits = static_cast<int>(num("credits", kDefaultCredits));
  if (body.contains("whitelabel")) d.whitelabel = flag("whitelabel", false);
  for (size_t t = 0; t < extra_teams; ++t) {
    d.teams.push_back({NewTeamId(st, d), "Team " + std::to_string(d.teams.size() + 1)});
  }

  Json out_members = Json::array();
  Json out_models = Json::array();
  size_t photo_total = 0;
  auto make_member = [&](const std::string& status) -> Member& {
    const std::uint64_t k = ++d.seeded_members;
    Member m;
    m.id = NewId(st, d);
    m.email = "member" + std::to_string(k) + "@acme.test";
    m.name = hostile ? HostileName(k - 1) : "Member " + std::to_string(k);
    m.status = status;
    m.team_id = d.teams[(k - 1) % d.teams.size()].id;
    m.joined_ms = kBaseMs + static_cast<std::int64_t>(k) * 3'600'000;
    Invite inv;
    inv.id = NewId(st, d);
    inv.email = m.email;
    inv.status = status == "finished" ? "completed" : status == "pending" ? "uploading" : "accepted";
    inv.team_id = m.team_id;
    inv.created_ms = m.joined_ms - 60'000;
    d.invites[Lower(inv.email)] = inv;
    auto [it, _] = d.members.emplace(m.id, std::move(m));
    return it->second;
  };

  for (size_t i = 0; i < members; ++i) {
    Member& mem = make_member("finished");
    Json mj = {{"id", mem.id}, {"email", mem.email}, {"name", OptStr(mem.name)},
               {"status", mem.status}, {"teamId", OptStr(mem.team_id)}, {"models", Json::array()}};
    for (size_t j = 0; j < models_per_member; ++j) {
      Model m;
      m.id = NewId(st, d);
      m.uid = "anon_" + Hex(SplitMix(st.seed + d.counter), 12);
      m.email = mem.email;
      m.title = mem.name;
      m.status = "active";
      m.team_id = mem.team_id;
      m.created_ms = mem.joined_ms + 600'000 + static_cast<std::int64_t>(j) * 60'000;
      m.finished_ms = m.created_ms + 4'500'000;
      AddPhotos(st, d, m, photos_per_model + deleted_per_model, *m.finished_ms);
      for (const auto& pid : m.photo_ids) d.photos[pid].main_bytes = photo_bytes;
      // The oldest `deleted_per_model` photos are deleted.
      for (size_t p = 0; p < deleted_per_model && p < m.photo_ids.size(); ++p) {
        d.photos[m.photo_ids[p]].status = "deleted";
      }
      if (favorites) {  // the first loved photo, else the newest active one (made loved)
        for (const auto& pid : m.photo_ids) {
          Photo& ph = d.photos[pid];
          if (ph.status == "active" && ph.liked == "loved") {
            m.favorite = pid;
            break;
          }
        }
        if (!m.favorite && !m.photo_ids.empty() && d.photos[m.photo_ids.back()].status == "active") {
          m.favorite = m.photo_ids.back();
          d.photos[*m.favorite].liked = "loved";
        }
      }
      photo_total += m.photo_ids.size();
      mem.model_ids.push_back(m.id);
      d.invites[Lower(mem.email)].model_id = m.id;
      mj["models"].push_back(m.id);
      out_models.push_back({{"id", m.id},
                            {"memberId", mem.id},
                            {"photos", photos_per_model},
                            {"deletedPhotos", deleted_per_model},
                            {"favorite", OptStr(m.favorite)}});
      d.models.emplace(m.id, std::move(m));
    }
    out_members.push_back(std::move(mj));
  }
  Json out_pending = Json::array();
  for (size_t i = 0; i < pending; ++i) out_pending.push_back(make_member("pending").id);
  Json out_accepted = Json::array();
  for (size_t i = 0; i < accepted; ++i) out_accepted.push_back(make_member("accepted").id);

  std::vector<std::string> fresh;  // photos of this seed, for "pregenerate"
  if (flag("pregenerate", false)) {
    for (const auto& m : out_models) {
      for (const auto& pid : d.models[m["id"].get<std::string>()].photo_ids) fresh.push_back(pid);
    }
  }
  Json out = {{"headshotpro",
           {{"members", out_members},
            {"models", out_models},
            {"pending_members", out_pending},
            {"accepted_members", out_accepted},
            {"photos", photo_total},
            {"credits", d.credits},
            {"teams", TeamsJson(d)},
            {"whitelabel", d.whitelabel}}}};
  lk.unlock();
  for (const auto& pid : fresh) Image(st, pid, Variant::kMain);  // generated outside the lock
  return out;
}

// ------------------------------------------------------------------- CDN

struct ByteRange {
  size_t first = 0;
  size_t length = 0;
};

enum class RangeResult { kNone, kOk, kUnsatisfiable };

// Single byte range only ("bytes=N-", "bytes=N-M", "bytes=-S"); anything else
// (several ranges, other units, garbage) is ignored and the whole body served.
RangeResult ParseRange(const std::string& h, size_t size, ByteRange& out) {
  if (h.rfind("bytes=", 0) != 0) return RangeResult::kNone;
  const std::string spec = h.substr(6);
  if (spec.find(',') != std::string::npos) return RangeResult::kNone;
  const auto dash = spec.find('-');
  if (dash == std::string::npos) return RangeResult::kNone;
  const std::string a = spec.substr(0, dash);
  const std::string b = spec.substr(dash + 1);
  long long first = -1;
  long long last = -1;
  if (!a.empty() && !ParseInt(a, first)) return RangeResult::kNone;
  if (!b.empty() && !ParseInt(b, last)) return RangeResult::kNone;
  if (first < 0 && last < 0) return RangeResult::kNone;
  const auto n = static_cast<long long>(size);
  if (first < 0) {  // suffix
    if (last == 0 || n == 0) return RangeResult::kUnsatisfiable;
    first = std::max(0LL, n - last);
    last = n - 1;
  } else {
    if (last >= 0 && last < first) return RangeResult::kNone;
    if (first >= n) return RangeResult::kUnsatisfiable;
    if (last < 0 || last >= n) last = n - 1;
  }
  out.first = static_cast<size_t>(first);
  out.length = static_cast<size_t>(last - first + 1);
  return RangeResult::kOk;
}

void PlainText(Response& res, int status, const std::string& text) {
  res.status = status;
  res.set_content(text, "text/plain");
}

void ServeCdn(Emulator& emu, State& st, const Request& req, Response& res) {
  static const std::string kRoute = "GET /cdn/photos/{file}";
  // cpp-httplib would otherwise apply the Range header to whatever body we set
  // (error bodies too); the CDN handles ranges itself. `req` is non-const in
  // the server, so dropping the parsed ranges is well-defined.
  const_cast<Request&>(req).ranges.clear();

  const Faults faults = emu.faults();
  if (faults.latency_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(faults.latency_ms));

  const std::string photo_id = req.matches[1];
  const std::string suffix = req.matches[2];
  const Variant variant =
      suffix == "_thumb" ? Variant::kThumb : suffix == "_original" ? Variant::kOriginal : Variant::kMain;

  const std::string expires_s = req.get_param_value("expires");
  const std::string sig = req.get_param_value("signature");
  long long expires = 0;
  if (!ParseInt(expires_s, expires) || expires < 0 || sig.empty()) {
    PlainText(res, 403, "Forbidden: missing or malformed signature\n");
    emu.Count(kRoute, 403);
    return;
  }
  const std::string want =
      UrlSigner::Signature(st.secret, req.path, static_cast<std::uint64_t>(expires));
  if (sig.size() != want.size() || CRYPTO_memcmp(sig.data(), want.data(), want.size()) != 0) {
    PlainText(res, 403, "Forbidden: bad signature\n");
    emu.Count(kRoute, 403);
    return;
  }
  if (static_cast<long long>(emu.NowUnix()) > expires) {
    PlainText(res, 403, "Forbidden: URL expired\n");
    emu.Count(kRoute, 403);
    return;
  }
  {
    std::lock_guard lk(st.mu);
    if (st.d.photos.find(photo_id) == st.d.photos.end()) {
      PlainText(res, 404, "Not Found\n");
      emu.Count(kRoute, 404);
      return;
    }
  }
  if (faults.rate_5xx > 0 && emu.Draw(faults.rate_5xx)) {
    static const int kCodes[] = {500, 502, 503};
    int code = 0;
    {
      std::lock_guard lk(st.mu);
      code = kCodes[st.d.fault_rr++ % 3];
    }
    PlainText(res, code, "Server error\n");
    emu.Count(kRoute, code);
    return;
  }
  if (faults.rate_close_keepalive > 0 && emu.Draw(faults.rate_close_keepalive)) {
    res.set_header("Connection", "close");
  }
  const bool reset = faults.rate_reset > 0 && emu.Draw(faults.rate_reset);

  const auto body = Image(st, photo_id, variant);
  const size_t size = body->size();
  ByteRange range{0, size};
  int status = 200;
  switch (ParseRange(req.get_header_value("Range"), size, range)) {
    case RangeResult::kUnsatisfiable:
      res.status = 416;
      res.set_header("Content-Range", "bytes */" + std::to_string(size));
      emu.Count(kRoute, 416);
      return;
    case RangeResult::kOk:
      status = 206;
      res.set_header("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                          std::to_string(range.first + range.length - 1) + "/" +
                                          std::to_string(size));
      break;
    case RangeResult::kNone:
      break;
  }
  res.status = status;
  res.set_header("Accept-Ranges", "bytes");
  res.set_header("Cache-Control", "private, max-age=0");
  emu.Count(kRoute, status);
  if (req.method == "HEAD") {
    res.set_header("Content-Length", std::to_string(range.length));
    return;
  }
  emu.WithStats([](Stats& s) { ++s.downloads; });
  if (range.length == 0) return;

  const size_t reset_at = reset ? range.length / 2 : range.length + 1;
  const int bps = faults.slow_body_bps;
  const size_t start = range.first;
  Emulator* e = &emu;
  const Request* r = &req;  // the provider runs while the request is being answered
  res.set_content_provider(
      range.length, "image/jpeg",
      [body, start, reset_at, bps, e, r](size_t offset, size_t length, httplib::DataSink& sink) {
        if (offset >= reset_at) {
          e->ResetConnection(*r);
          return false;
        }
        size_t chunk = std::min(length, bps > 0 ? std::max<size_t>(1, static_cast<size_t>(bps) / 10)
                                                : size_t{64 * 1024});
        chunk = std::min(chunk, reset_at - offset);
        if (bps > 0) {
          std::this_thread::sleep_for(std::chrono::microseconds(
              static_cast<std::int64_t>(chunk) * 1000000 / bps));
        }
        if (!sink.write(body->data() + start + offset, chunk)) return false;
        e->WithStats([chunk](Stats& s) { s.bytes_sent += chunk; });
        return true;
      });
}

// ------------------------------------------------------------- API routes

// What an API handler sees: the request, the state (locked), and a signer for
// CDN URLs prepared before the lock was taken.
struct Ctx {
  const Request& req;
  const State& st;
  Data& d;
  const UrlSigner& signer;
};

Json MemberJson(const Data& d, const Member& m, bool full) {
  Json j = {{"id", m.id},
            {"email", m.email},
            {"name", OptStr(m.name)},
            {"teamId", OptStr(m.team_id)},
            {"teamName", TeamName(d, m.team_id)},
            {"joinedAt", Iso(m.joined_ms)}};
  if (full) {
    j["status"] = m.status;
    const Model* model = nullptr;
    if (!m.model_ids.empty()) {
      auto it = d.models.find(m.model_ids.back());
      if (it != d.models.end()) model = &it->second;
    }
    j["modelId"] = model ? Json(model->id) : Json(nullptr);
    j["modelStatus"] = model ? Json(model->status) : Json(nullptr);
  }
  return j;
}

std::vector<const Member*> MembersNewestFirst(const Data& d, const std::string& status) {
  std::vector<const Member*> v;
  for (const auto& [_, m] : d.members) {
    if (status.empty() || m.status == status) v.push_back(&m);
  }
  std::sort(v.begin(), v.end(), [](const Member* a, const Member* b) {
    return NewerFirst(a->joined_ms, a->id, b->joined_ms, b->id);
  });
  return v;
}

Json PageJson(size_t total, const Page& p, size_t end) {
  return {{"total", total}, {"limit", p.limit}, {"offset", p.offset}, {"hasMore", end < total}};
}

// ---- organization
Reply GetOrganization(Ctx& c) { return Ok({{"organization", OrgJson(c.d)}}); }
Reply GetCredits(Ctx& c) { return Ok({{"credits", c.d.credits}}); }

// ---- invites
Reply ListInvites(Ctx& c) {
  std::vector<const Invite*> v;
  for (const auto& [_, i] : c.d.invites) v.push_back(&i);
  std::sort(v.begin(), v.end(), [](const Invite* a, const Invite* b) {
    return NewerFirst(a->created_ms, a->id, b->created_ms, b->id);
  });
  Json a = Json::array();
  for (const auto* i : v) a.push_back(InviteJson(c.d, *i));
  return Ok({{"invites", std::move(a)}});
}

Reply CreateInvite(Ctx& c) {
  Reply err;
  auto body = BodyObject(c.req, err);
  if (!body) return err;
  const auto em = body->find("email");
  if (em == body->end() || !em->is_string() || em->get<std::string>().empty()) {
    return BadRequest("Email is required");
  }
  const std::string email = *em;
  if (!ValidEmail(email)) return Fail(400, "INVALID_EMAIL", "Invalid email address");
  std::optional<std::string> team_id;
  const auto tm = body->find("teamId");
  if (tm != body->end() && !tm->is_null()) {
    if (!tm->is_string()) return BadRequest("teamId must be a string");
    team_id = tm->get<std::string>();
    if (!FindTeam(c.d, team_id)) return NotFound("Team");
  }
  const std::string key = Lower(email);
  const auto it = c.d.invites.find(key);
  const bool member_exists = std::any_of(c.d.members.begin(), c.d.members.end(),
                                         [&](const auto& kv) { return Lower(kv.second.email) == key; });
  if (member_exists ||
      (it != c.d.invites.end() && it->second.status != "revoked" && it->second.status != "deleted")) {
    return Fail(400, "ALREADY_EXISTS", "A user or invite with this email already exists");
  }
  if (c.d.credits <= 0) return Fail(402, "INSUFFICIENT_CREDITS", "Insufficient credits");
  if (PendingInvites(c.d) >= c.d.credits * 2) {
    return Fail(429, "INVITE_LIMIT_EXCEEDED", "Too many pending invites (the limit is credits x 2)");
  }
  Invite inv;
  inv.id = NewId(c.st, c.d);
  inv.email = email;
  inv.status = "pending";
  inv.team_id = team_id;
  inv.created_ms = NowMs();
  c.d.invites[key] = inv;
  return Ok({{"input", {{"email", email}}},
             {"message", "Invite sent"},
             {"link", "https://www.headshotpro.com/auth/signup?invite=" + inv.id},
             {"id", inv.id},
             {"teamId", OptStr(team_id)}});
}

Reply GetInvite(Ctx& c) {
  const auto it = c.d.invites.find(Lower(c.req.matches[1]));
  if (it == c.d.invites.end()) return NotFound("Invite");
  return Ok({{"invite", InviteJson(c.d, it->second)}});
}

Reply RevokeInvite(Ctx& c) {
  Reply err;
  auto body = BodyObject(c.req, err);
  if (!body) return err;
  const auto em = body->find("email");
  if (em == body->end() || !em->is_string()) return BadRequest("Email is required");
  const std::string email = *em;
  const auto it = c.d.invites.find(Lower(email));
  if (it == c.d.invites.end()) return NotFound("Invite");
  if (it->second.status == "revoked" || it->second.status == "deleted") {
    return Fail(400, "ALREADY_DELETED", "Invite already revoked");
  }
  it->second.status = "revoked";
  return Ok({{"message", "Invite revoked"}, {"input", {{"email", email}}}});
}

// ---- team members
Reply ListTeam(Ctx& c) {
  Reply err;
  const auto page = ParsePage(c.req, err);
  if (!page) return err;
  const std::string status = c.req.get_param_value("status");
  if (c.req.has_param("status") && status != "accepted" && status != "pending" && status != "finished") {
    return BadRequest("status must be accepted, pending or finished");
  }
  const auto v = MembersNewestFirst(c.d, status);
  const size_t begin = std::min(v.size(), static_cast<size_t>(page->offset));
  const size_t end = std::min(v.size(), begin + static_cast<size_t>(page->limit));
  Json a = Json::array();
  for (size_t i = begin; i < end; ++i) a.push_back(MemberJson(c.d, *v[i], true));
  return Ok({{"members", std::move(a)}, {"pagination", PageJson(v.size(), *page, end)}});
}

Reply ListTeamByStatus(Ctx& c) {
  Json a = Json::array();
  for (const auto* m : MembersNewestFirst(c.d, c.req.matches[1])) a.push_back(MemberJson(c.d, *m, false));
  const size_t n = a.size();
  return Ok({{"members", std::move(a)}, {"count", n}});
}

// ---- teams
std::optional<std::string> TeamNameArg(Ctx& c, const std::string* except_id, Reply& err) {
  auto body = BodyObject(c.req, err);
  if (!body) return std::nullopt;
  const auto it = body->find("name");
  if (it == body->end() || !it->is_string() || it->get<std::string>().empty()) {
    err = BadRequest("Team name is required");
    return std::nullopt;
  }
  const std::string name = *it;
  for (const auto& t : c.d.teams) {
    if (t.name == name && (!except_id || t.id != *except_id)) {
      err = BadRequest("Team with this name already exists");
      return std::nullopt;
    }
  }
  return name;
}

Reply ListTeams(Ctx& c) { return Ok({{"teams", TeamsJson(c.d)}}); }

Reply CreateTeam(Ctx& c) {
  Reply err;
  const auto name = TeamNameArg(c, nullptr, err);
  if (!name) return err;
  c.d.teams.push_back({NewTeamId(c.st, c.d), *name});
  return Ok({{"organization", OrgJson(c.d)}});
}

Reply UpdateTeam(Ctx& c) {
  const std::string id = c.req.matches[1];
  auto it = std::find_if(c.d.teams.begin(), c.d.teams.end(), [&](const Team& t) { return t.id == id; });
  if (it == c.d.teams.end()) return NotFound("Team");
  Reply err;
  const auto name = TeamNameArg(c, &id, err);
  if (!name) return err;
  it->name = *name;
  return Ok({{"organization", OrgJson(c.d)}});
}

Reply DeleteTeam(Ctx& c) {
  const std::string id = c.req.matches[1];
  auto it = std::find_if(c.d.teams.begin(), c.d.teams.end(), [&](const Team& t) { return t.id == id; });
  if (it == c.d.teams.end()) return NotFound("Team");
  c.d.teams.erase(it);
  // Members stay in the organization, without a team.
  for (auto& [_, m] : c.d.members) {
    if (m.team_id == id) m.team_id.reset();
  }
  for (auto& [_, m] : c.d.models) {
    if (m.team_id == id) m.team_id.reset();
  }
  for (auto& [_, i] : c.d.invites) {
    if (i.team_id == id) i.team_id.reset();
  }
  return Ok({{"organization", OrgJson(c.d)}});
}

Reply AssignTeamMembers(Ctx& c) {
  const std::optional<std::string> id = std::string(c.req.matches[1]);
  if (!FindTeam(c.d, id)) return NotFound("Team");
  Reply err;
  auto body = BodyObject(c.req, err);
  if (!body) return err;
  const auto it = body->find("emails");
  if (it == body->end() || !it->is_array()) return BadRequest("emails must be an array");
  std::set<std::string> emails;
  for (const auto& x : *it) {
    if (!x.is_string()) return BadRequest("emails must be strings");
    emails.insert(Lower(x.get<std::string>()));
  }
  int updated = 0;
  for (auto& [_, m] : c.d.members) {
    if (!emails.count(Lower(m.email))) continue;
    m.team_id = id;
    ++updated;
    for (const auto& mid : m.model_ids) {
      auto mi = c.d.models.find(mid);
      if (mi != c.d.models.end()) mi->second.team_id = id;
    }
  }
  for (auto& [key, i] : c.d.invites) {
    if (emails.count(key)) i.team_id = id;
  }
  return Ok({{"updated", updated}});
}

// ---- models
Reply ListModels(Ctx& c) {
  Reply err;
  const auto page = ParsePage(c.req, err);
  if (!page) return err;
  const bool by_status = c.req.has_param("status");
  const std::string status = c.req.get_param_value("status");
  const bool by_team = c.req.has_param("teamId");
  const std::string team = c.req.get_param_value("teamId");
  std::vector<const Model*> v;
  for (const auto& [_, m] : c.d.models) {
    if (by_status && m.status != status) continue;
    if (by_team && m.team_id.value_or("") != team) continue;
    v.push_back(&m);
  }
  std::sort(v.begin(), v.end(), [](const Model* a, const Model* b) {
    return NewerFirst(a->created_ms, a->id, b->created_ms, b->id);
  });
  const size_t begin = std::min(v.size(), static_cast<size_t>(page->offset));
  const size_t end = std::min(v.size(), begin + static_cast<size_t>(page->limit));
  Json a = Json::array();
  for (size_t i = begin; i < end; ++i) a.push_back(ModelJson(c.d, *v[i]));
  return Ok({{"models", std::move(a)}, {"pagination", PageJson(v.size(), *page, end)}});
}

Reply GetModel(Ctx& c) {
  const auto it = c.d.models.find(c.req.matches[1]);
  if (it == c.d.models.end()) return NotFound("Model");
  return Ok({{"model", ModelJson(c.d, it->second)}});
}

// Whitelabel: creates an anonymous user's model in "onboarding".
Reply CreateModel(Ctx& c) {
  if (!c.d.whitelabel) return Fail(403, "FORBIDDEN", "Whitelabel is not enabled for this organization");
  Reply err;
  auto body = BodyObject(c.req, err);
  if (!body) return err;
  const auto em = body->find("email");
  if (em == body->end() || !em->is_string() || em->get<std::string>().empty()) {
    return BadRequest("Email is required");
  }
  const std::string email = *em;
  if (!ValidEmail(email)) return Fail(400, "INVALID_EMAIL", "Invalid email address");
  std::optional<std::string> team_id;
  const auto tm = body->find("teamId");
  if (tm != body->end() && !tm->is_null()) {
    if (!tm->is_string()) return BadRequest("teamId must be a string");
    team_id = tm->get<std::string>();
    if (!FindTeam(c.d, team_id)) return NotFound("Team");
  }
  const auto dv = body->find("isDevelopment");
  const bool dev = dv != body->end() && dv->is_boolean() && dv->get<bool>();
  if (!dev) {
    if (c.d.credits <= 0) return Fail(402, "INSUFFICIENT_CREDITS", "Insufficient credits");
    --c.d.credits;
  }
  Model m;
  m.id = NewId(c.st, c.d);
  m.uid = "anon_" + Hex(SplitMix(c.st.seed + c.d.counter), 12);
  m.email = email;
  m.status = "onboarding";
  m.team_id = team_id;
  m.is_development = dev;
  m.created_ms = NowMs();
  const std::string token = Hex(SplitMix(c.st.seed ^ c.d.counter), 16) + Hex(SplitMix(c.d.counter), 16);
  Reply r = Ok({{"modelId", m.id},
                {"status", m.status},
                {"signedUrl", "https://yourproheadshots.com/auth/social?token=" + token + "&anonymous=1"}});
  c.d.outbox.emplace_back("model.created", WebhookObject(m, m.created_ms));
  c.d.models.emplace(m.id, std::move(m));
  return r;
}

// ---- photos
Reply ListPhotos(Ctx& c) {
  const auto it = c.d.models.find(c.req.matches[1]);
  if (it == c.d.models.end()) return NotFound("Model");
  Reply err;
  const auto page = ParsePage(c.req, err);
  if (!page) return err;
  const std::string status = c.req.has_param("status") ? c.req.get_param_value("status") : "active";
  if (status != "active" && status != "deleted") return BadRequest("status must be active or deleted");
  const bool by_liked = c.req.has_param("likedStatus");
  const std::string liked = c.req.get_param_value("likedStatus");
  if (by_liked && liked != "none" && liked != "liked" && liked != "loved") {
    return BadRequest("likedStatus must be none, liked or loved");
  }
  const std::string include = c.req.has_param("include") ? c.req.get_param_value("include") : "main";
  if (include != "main" && include != "all") return BadRequest("include must be main or all");
  const Model& m = it->second;
  std::vector<const Photo*> v;
  if (m.status == "active") {  // only active models have photos to show
    for (const auto& pid : m.photo_ids) {
      const auto pit = c.d.photos.find(pid);
      if (pit == c.d.photos.end()) continue;
      const Photo& p = pit->second;
      if (p.status != status || (by_liked && p.liked != liked)) continue;
      v.push_back(&p);
    }
  }
  SortPhotos(v);
  const size_t begin = std::min(v.size(), static_cast<size_t>(page->offset));
  const size_t end = std::min(v.size(), begin + static_cast<size_t>(page->limit));
  Json a = Json::array();
  for (size_t i = begin; i < end; ++i) a.push_back(PhotoJson(*v[i], c.signer, include == "all"));
  return Ok({{"photos", std::move(a)}, {"pagination", PageJson(v.size(), *page, end)}});
}

Reply GetFavorite(Ctx& c) {
  const auto it = c.d.models.find(c.req.matches[1]);
  if (it == c.d.models.end()) return NotFound("Model");
  const Model& m = it->second;
  const Photo* p = nullptr;
  if (m.favorite) {
    const auto pit = c.d.photos.find(*m.favorite);
    if (pit != c.d.photos.end()) p = &pit->second;
  }
  if (!p) return Ok({{"photo", nullptr}});
  Json j = PhotoJson(*p, c.signer, false);
  j["modelId"] = m.id;
  return Ok({{"photo", std::move(j)}});
}

Reply ListFavorites(Ctx& c) {
  Reply err;
  const auto page = ParsePage(c.req, err);
  if (!page) return err;
  const bool by_team = c.req.has_param("teamId");
  const std::string team = c.req.get_param_value("teamId");
  std::vector<const Model*> v;
  for (const auto& [_, m] : c.d.models) {
    if (!m.favorite || !c.d.photos.count(*m.favorite)) continue;
    if (by_team && m.team_id.value_or("") != team) continue;
    v.push_back(&m);
  }
  std::sort(v.begin(), v.end(), [](const Model* a, const Model* b) {
    return NewerFirst(a->created_ms, a->id, b->created_ms, b->id);
  });
  const size_t begin = std::min(v.size(), static_cast<size_t>(page->offset));
  const size_t end = std::min(v.size(), begin + static_cast<size_t>(page->limit));
  Json a = Json::array();
  for (size_t i = begin; i < end; ++i) {
    const Model& m = *v[i];
    a.push_back({{"modelId", m.id},
                 {"email", m.email},
                 {"name", OptStr(m.title)},
                 {"teamId", OptStr(m.team_id)},
                 {"teamName", TeamName(c.d, m.team_id)},
                 {"photo",
                  {{"id", *m.favorite},
                   {"urls", c.signer.Urls(*m.favorite, false)},
                   {"expiresAt", c.signer.ExpiresAt()}}}});
  }
  return Ok({{"favorites", std::move(a)}, {"pagination", PageJson(v.size(), *page, end)}});
}

// ---- webhooks (headshotpro.md §3)

// After a failed attempt: retried immediately, then 5 min, 15 min and 1 h
// after the attempt before (about 80 min in all), then given up.
constexpr std::array<double, 4> kRetryDelaysS = {0, 300, 900, 3600};
constexpr int kMaxRepeat = 1000;

struct WebhookTarget {
  std::string origin;  // "http://127.0.0.1:8787", what httplib::Client takes
  std::string path;    // "/webhooks/headshotpro"
};

// Only http:// to a loopback address: the emulator must never reach beyond
// the machine (and TLS is the reverse proxy's business, not the receiver's).
std::optional<WebhookTarget> ParseLoopbackUrl(const std::string& url, std::string& why) {
  const std::string scheme = "http://";
  why = "webhook url must be http://127.0.0.1, [::1] or localhost: ";
  why += url;
  if (url.rfind(scheme, 0) != 0) return std::nullopt;
  const size_t slash = url.find('/', scheme.size());
  const std::string authority = url.substr(scheme.size(), slash == std::string::npos ? std::string::npos
                                                                                     : slash - scheme.size());
  std::string host = authority;
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return std::nullopt;
      port = authority.substr(close + 2);
    }
  } else if (const size_t colon = authority.find(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  in_addr v4{};
  const bool loopback = host == "localhost" || host == "::1" ||
                        (inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127);
  if (!loopback || !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return std::nullopt;
  }
  why.clear();
  WebhookTarget t;
  t.origin = scheme;
  t.origin += authority;
  t.path = slash == std::string::npos ? "/" : url.substr(slash);
  return t;
}

bool ValidSecret(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c); });
}

// hex HMAC-SHA256 of "{timestamp}.{body}": the emulator's own, written from
// the contract (never the client's webhook.hpp, which is what is tested).
std::string WebhookSignature(const std::string& secret, std::uint64_t timestamp, const std::string& body) {
  std::string msg = std::to_string(timestamp);
  msg += '.';
  msg += body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
  return HexBytes(mac, len);
}

// Webhook configuration, the delivery queue and its log; deliveries run on
// one thread of their own so that the request that raised an event is never
// held up by the receiver. Never takes State::mu (events arrive built).
class Webhooks {
 public:
  Webhooks(Emulator& emu, const Options& o) : emu_(emu), seed_(o.seed) {
    initial_.url = o.webhook_url;
    initial_.secret = o.webhook_secret;
    initial_.retry_scale = o.webhook_retry_scale;
    if (!initial_.url.empty()) {
      std::string why;
      initial_.target = ParseLoopbackUrl(initial_.url, why);  // checked by main
      if (initial_.secret.empty()) {
        initial_.secret = NewSecret();
        std::fprintf(stderr, "shotsync-emulator: webhook secret %s\n", initial_.secret.c_str());
      }
    }
    config_ = initial_;
    thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
  }
  ~Webhooks() { Shutdown(); }
  Webhooks(const Webhooks&) = delete;
  Webhooks& operator=(const Webhooks&) = delete;

  void Shutdown() {
    thread_.request_stop();
    if (thread_.joinable()) thread_.join();
  }

  // POST /_emulator/headshotpro/webhook {"url", "secret", "retry_scale"}.
  // Returns {status, answer}.
  std::pair<int, Json> Configure(const Json& body) {
    const auto uv = body.find("url");
    if (uv == body.end() || !(uv->is_string() || uv->is_null())) return {400, {{"error", "url must be a string or null"}}};
    const std::string url = uv->is_string() ? uv->get<std::string>() : std::string();
    std::optional<WebhookTarget> target;
    if (!url.empty()) {
      std::string why;
      target = ParseLoopbackUrl(url, why);
      if (!target) return {400, {{"error", why}}};
    }
    const auto sv = body.find("secret");
    if (sv != body.end() && !(sv->is_string() && ValidSecret(sv->get<std::string>()))) {
      return {400, {{"error", "secret must be 64 hex digits"}}};
    }
    const auto rv = body.find("retry_scale");
    if (rv != body.end() && !(rv->is_number() && rv->get<double>() > 0)) {
      return {400, {{"error", "retry_scale must be a number > 0"}}};
    }
    std::lock_guard lk(mu_);
    config_.url = url;
    config_.target = target;
    // Like the real settings page: a new secret on every save that brings
    // none, shown in this answer only.
    config_.secret = sv != body.end() ? sv->get<std::string>() : NewSecret();
    if (rv != body.end()) config_.retry_scale = rv->get<double>();
    if (!target) queue_.clear();  // no URL: nothing left to deliver to
    return {200, {{"url", url.empty() ? Json(nullptr) : Json(url)},
                  {"secret", config_.secret},
                  {"retry_scale", config_.retry_scale}}};
  }

  // Events raised by a change: queued for delivery now, if a URL is set.
  void Raise(std::vector<std::pair<std::string, Json>> events) {
    if (events.empty()) return;
    std::lock_guard lk(mu_);
    if (!config_.target) return;
    for (auto& [event, object] : events) {
      Delivery d;
      d.id = NewEventId();
      d.event = event;
      d.model = object.value("_id", std::string());
      d.body = Dump(Payload(d.id, event, std::move(object)));
      d.generation = generation_;
      queue_.emplace(Clock::now(), std::move(d));
    }
    cv_.notify_all();
  }

  // POST /_emulator/headshotpro/webhook/send: crafted deliveries, sent now
  // from the caller's thread, one attempt each, never retried.
  std::pair<int, Json> Send(const Json& body, const Json& object) {
    const std::string event = body.value("event", std::string("model.photos_ready"));
    const auto iv = body.find("id");
    const bool replay = iv != body.end() && iv->is_string();
    const long long repeat = body.value("repeat", 1LL);
    if (repeat < 1 || repeat > kMaxRepeat) return {400, {{"error", "repeat must be 1..1000"}}};
    const std::int64_t offset = body.value("timestamp_offset", std::int64_t{0});
    const bool bad = body.value("bad_signature", false);
    Config cfg;
    std::vector<Delivery> sends;
    {
      std::lock_guard lk(mu_);
      cfg = config_;
      if (!cfg.target) return {409, {{"error", "no webhook url configured"}}};
      for (long long i = 0; i < repeat; ++i) {
        Delivery d;
        d.id = replay ? iv->get<std::string>() : NewEventId();
        d.event = event;
        d.model = object.value("_id", std::string());
        d.body = Dump(Payload(d.id, event, object));
        sends.push_back(std::move(d));
      }
    }
    // A well-formed signature made with another key.
    const std::string key = bad ? "not-" + cfg.secret : cfg.secret;
    Json results = Json::array();
    for (Delivery& d : sends) {
      const std::uint64_t ts = static_cast<std::uint64_t>(static_cast<std::int64_t>(emu_.NowUnix()) + offset);
      const int status = Post(*cfg.target, key, ts, d.body);
      d.attempt = 1;
      std::lock_guard lk(mu_);
      Log(d, status);
      results.push_back({{"id", d.id}, {"status", status}, {"timestamp", ts}});
    }
    return {200, {{"deliveries", std::move(results)}}};
  }

  Json Deliveries() {
    std::lock_guard lk(mu_);
    return log_;
  }

  size_t Pending() {
    std::lock_guard lk(mu_);
    return queue_.size() + (busy_ ? 1 : 0);
  }

  void Reset() {
    std::lock_guard lk(mu_);
    config_ = initial_;
    queue_.clear();
    log_ = Json::array();
    ++generation_;  // an attempt under way is neither logged nor retried
    cv_.notify_all();
  }

 private:
  struct Config {
    std::string url, secret;
    std::optional<WebhookTarget> target;
    double retry_scale = 1.0;
  };
  struct Delivery {
    std::string id, event, model;
    std::string body;  // the same bytes on every attempt; only the timestamp changes
    int attempt = 0;   // attempts made
    std::uint64_t generation = 0;
  };

  static Json Payload(const std::string& id, const std::string& event, Json object) {
    return {{"id", id},
            {"event", event},
            {"createdAt", Iso(NowMs())},
            {"objectType", "model"},
            {"object", std::move(object)}};
  }

  // Call with mu_ held.
  std::string NewEventId() {
    const std::uint64_t a = SplitMix(seed_ * 0x2545f4914f6cdd1dULL + ++counter_);
    const std::uint64_t b = SplitMix(a ^ counter_);
    std::string id = "evt_";
    id += Hex(a >> 32, 8);
    id += '-';
    id += Hex((a >> 16) & 0xffff, 4);
    id += '-';
    id += Hex(0x4000 | (a & 0x0fff), 4);
    id += '-';
    id += Hex(0x8000 | ((b >> 48) & 0x3fff), 4);
    id += '-';
    id += Hex(b & 0xffffffffffffULL, 12);
    return id;
  }
  std::string NewSecret() {
    std::string s;
    for (int i = 0; i < 4; ++i) s += Hex(SplitMix(seed_ ^ (0x5ec7e7ULL << 8) ^ (++counter_ * 0x9e37ULL)), 16);
    return s;
  }

  // One attempt: the HTTP status, or 0 when no answer came.
  static int Post(const WebhookTarget& t, const std::string& key, std::uint64_t ts, const std::string& body) {
    httplib::Client cli(t.origin);
    cli.set_connection_timeout(5);
    cli.set_read_timeout(10);
    std::string sig = "sha256=";
    sig += WebhookSignature(key, ts, body);
    const httplib::Headers headers = {{"X-HeadshotPro-Signature", sig},
                                      {"X-HeadshotPro-Timestamp", std::to_string(ts)},
                                      {"User-Agent", "HeadshotPro-Webhooks (shotsync-emulator)"}};
    const auto res = cli.Post(t.path, headers, body, kJson);
    return res ? res->status : 0;
  }

  // Call with mu_ held.
  void Log(const Delivery& d, int status) {
    log_.push_back({{"id", d.id},
                    {"event", d.event},
                    {"model", d.model},
                    {"status", status},
                    {"attempt", d.attempt},
                    {"at", Iso(NowMs())}});
  }

  void Run(std::stop_token stop) {
    std::unique_lock lk(mu_);
    while (!stop.stop_requested()) {
      if (queue_.empty()) {
        cv_.wait(lk, stop, [&] { return !queue_.empty(); });
        continue;
      }
      const auto due = queue_.begin()->first;
      if (due > Clock::now()) {
        cv_.wait_until(lk, stop, due, [&] { return queue_.empty() || queue_.begin()->first < due; });
        continue;
      }
      Delivery d = std::move(queue_.begin()->second);
      queue_.erase(queue_.begin());
      if (d.generation != generation_ || !config_.target) continue;
      const Config cfg = config_;
      busy_ = true;
      lk.unlock();
      const int status = Post(*cfg.target, cfg.secret, emu_.NowUnix(), d.body);
      lk.lock();
      busy_ = false;
      if (d.generation != generation_) continue;
      ++d.attempt;
      Log(d, status);
      const bool acknowledged = status >= 200 && status < 300;
      const size_t retries_made = static_cast<size_t>(d.attempt - 1);
      if (!acknowledged && retries_made < kRetryDelaysS.size()) {
        const auto delay = std::chrono::duration<double>(kRetryDelaysS[retries_made] * config_.retry_scale);
        queue_.emplace(Clock::now() + std::chrono::duration_cast<Clock::duration>(delay), std::move(d));
      }
    }
  }

  Emulator& emu_;
  const std::uint64_t seed_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  Config initial_;                                // guarded by mu_ (after construction)
  Config config_;                                 // guarded by mu_
  std::multimap<Clock::time_point, Delivery> queue_;  // by due time; guarded by mu_
  Json log_ = Json::array();                      // guarded by mu_
  std::uint64_t counter_ = 0;                     // ids and secrets; guarded by mu_
  std::uint64_t generation_ = 0;                  // bumped by Reset; guarded by mu_
  bool busy_ = false;                             // an attempt is under way; guarded by mu_
  std::jthread thread_;                           // last: started once the rest exists
};

// ---- admin additions (no auth; counted by route)

void AdminJson(Emulator& emu, Response& res, const std::string& route, int status, const Json& body) {
  res.status = status;
  res.set_content(Dump(body), kJson);
  emu.Count(route, status);
}

// GET /_emulator/headshotpro/photos/<id>[?variant=main|thumbnail|original]
void AdminPhoto(Emulator& emu, State& st, const Request& req, Response& res) {
  static const std::string kRoute = "GET /_emulator/headshotpro/photos/{id}";
  const std::string id = req.matches[1];
  const std::string vname = req.has_param("variant") ? req.get_param_value("variant") : "main";
  if (vname != "main" && vname != "thumbnail" && vname != "original") {
    return AdminJson(emu, res, kRoute, 400, {{"error", "variant must be main, thumbnail or original"}});
  }
  const Variant v = vname == "thumbnail" ? Variant::kThumb : vname == "original" ? Variant::kOriginal : Variant::kMain;
  std::string model_id;
  std::string status;
  {
    std::lock_guard lk(st.mu);
    const auto it = st.d.photos.find(id);
    if (it != st.d.photos.end()) {
      model_id = it->second.model_id;
      status = it->second.status;
    }
  }
  if (model_id.empty()) return AdminJson(emu, res, kRoute, 404, {{"error", "unknown photo"}});
  const auto bytes = Image(st, id, v);
  AdminJson(emu, res, kRoute, 200,
            {{"id", id},
             {"modelId", model_id},
             {"status", status},
             {"variant", vname},
             {"sha256", Sha256Hex(*bytes)},
             {"size", bytes->size()}});
}

// POST /_emulator/headshotpro/models/<id> {"status", "add_photos", "delete_photos", "favorite"}
void AdminModel(Emulator& emu, State& st, Webhooks& hooks, const Request& req, Response& res) {
  static const std::string kRoute = "POST /_emulator/headshotpro/models/{id}";
  const Json body = Json::parse(req.body.empty() ? std::string("{}") : req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return AdminJson(emu, res, kRoute, 400, {{"error", "body must be a JSON object"}});
  }
  int status = 200;
  Json out;
  std::vector<std::pair<std::string, Json>> events;
  {
    std::lock_guard lk(st.mu);
    Data& d = st.d;
    const auto it = d.models.find(req.matches[1]);
    if (it == d.models.end()) {
      status = 404;
      out = {{"error", "unknown model"}};
    } else {
      Model& m = it->second;
      const std::int64_t now = NowMs();
      const std::string status_before = m.status;
      const auto sv = body.find("status");
      if (sv != body.end() && sv->is_string()) {
        m.status = sv->get<std::string>();
        if (m.status == "active" && !m.finished_ms) m.finished_ms = now;
        for (auto& [_, mem] : d.members) {
          if (!mem.model_ids.empty() && mem.model_ids.back() == m.id) {
            mem.status = m.status == "active" ? "finished" : "pending";
          }
        }
      }
      Json added = Json::array();
      const auto av = body.find("add_photos");
      if (av != body.end() && av->is_number_integer()) {
        const auto n = static_cast<size_t>(std::clamp<long long>(av->get<long long>(), 0, 100000));
        const size_t before = m.photo_ids.size();
        AddPhotos(st, d, m, n, now);
        for (size_t i = before; i < m.photo_ids.size(); ++i) added.push_back(m.photo_ids[i]);
      }
      Json deleted = Json::array();
      const auto dv = body.find("delete_photos");
      if (dv != body.end() && dv->is_number_integer()) {
        long long n = dv->get<long long>();
        for (const auto& pid : m.photo_ids) {  // oldest first
          if (n <= 0) break;
          Photo& p = d.photos[pid];
          if (p.status == "deleted") continue;
          p.status = "deleted";
          deleted.push_back(pid);
          if (m.favorite == pid) m.favorite.reset();
          --n;
        }
      }
      const auto fv = body.find("favorite");
      bool favorite_selected = false;
      if (fv != body.end()) {
        if (fv->is_string() && d.photos.count(fv->get<std::string>())) {
          m.favorite = fv->get<std::string>();
          d.photos[*m.favorite].liked = "loved";
          favorite_selected = true;
        } else if (fv->is_null()) {
          m.favorite.reset();
        }
      }
      size_t active = 0;
      for (const auto& pid : m.photo_ids) active += d.photos[pid].status == "active" ? 1 : 0;
      // The events this change raises, in this order; each carries the
      // model as it is after the whole change.
      if (m.status != status_before) {
        d.outbox.emplace_back(m.status == "deleted" ? "model.deleted" : "model.status.updated", WebhookObject(m, now));
      }
      const bool became_ready = m.status == "active" && status_before != "active";
      if (m.status == "active" && active > 0 && (became_ready || !added.empty())) {
        d.outbox.emplace_back("model.photos_ready", WebhookObject(m, now));
      }
      if (favorite_selected) d.outbox.emplace_back("model.favorite_selected", WebhookObject(m, now));
      out = {{"model", ModelJson(d, m)},
             {"added", std::move(added)},
             {"deleted", std::move(deleted)},
             {"activePhotos", active},
             {"favorite", OptStr(m.favorite)}};
    }
    events = std::move(d.outbox);
    d.outbox.clear();
  }
  hooks.Raise(std::move(events));
  AdminJson(emu, res, kRoute, status, out);
}

// POST /_emulator/headshotpro/webhook {"url": "http://127.0.0.1:…" | null, "secret", "retry_scale"}
void AdminWebhook(Emulator& emu, Webhooks& hooks, const Request& req, Response& res) {
  static const std::string kRoute = "POST /_emulator/headshotpro/webhook";
  const Json body = Json::parse(req.body.empty() ? std::string("{}") : req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return AdminJson(emu, res, kRoute, 400, {{"error", "body must be a JSON object"}});
  }
  const auto [status, out] = hooks.Configure(body);
  AdminJson(emu, res, kRoute, status, out);
}

// POST /_emulator/headshotpro/webhook/send {"event", "model", "id", "timestamp_offset",
// "bad_signature", "repeat"}: crafted deliveries for a receiver's negative tests.
void AdminWebhookSend(Emulator& emu, State& st, Webhooks& hooks, const Request& req, Response& res) {
  static const std::string kRoute = "POST /_emulator/headshotpro/webhook/send";
  const Json body = Json::parse(req.body.empty() ? std::string("{}") : req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("model") || !body["model"].is_string()) {
    return AdminJson(emu, res, kRoute, 400, {{"error", "body must be a JSON object with \"model\""}});
  }
  Json object;
  {
    std::lock_guard lk(st.mu);
    const auto it = st.d.models.find(body["model"].get<std::string>());
    if (it != st.d.models.end()) object = WebhookObject(it->second, NowMs());
  }
  if (object.is_null()) return AdminJson(emu, res, kRoute, 404, {{"error", "unknown model"}});
  try {
    const auto [status, out] = hooks.Send(body, object);
    AdminJson(emu, res, kRoute, status, out);
  } catch (const Json::exception& ex) {  // a field of the wrong type
    AdminJson(emu, res, kRoute, 400, {{"error", ex.what()}});
  }
}

// POST /_emulator/headshotpro/members/<id> {"name": string|null, "list_first": true}
void AdminMember(Emulator& emu, State& st, const Request& req, Response& res) {
  static const std::string kRoute = "POST /_emulator/headshotpro/members/{id}";
  const Json body = Json::parse(req.body.empty() ? std::string("{}") : req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return AdminJson(emu, res, kRoute, 400, {{"error", "body must be a JSON object"}});
  }
  const auto nv = body.find("name");
  if (nv != body.end() && !nv->is_string() && !nv->is_null()) {
    return AdminJson(emu, res, kRoute, 400, {{"error", "name must be a string or null"}});
  }
  Json out;
  {
    std::lock_guard lk(st.mu);
    Data& d = st.d;
    const auto it = d.members.find(req.matches[1]);
    if (it == d.members.end()) {
      out = {{"error", "unknown member"}};
    } else {
      Member& m = it->second;
      if (nv != body.end()) m.name = nv->is_null() ? std::nullopt : std::optional<std::string>(nv->get<std::string>());
      if (body.value("list_first", false)) {
        // Lists are newest first: joined after everyone else.
        for (const auto& [_, other] : d.members) m.joined_ms = std::max(m.joined_ms, other.joined_ms + 1);
      }
      out = MemberJson(d, m, true);
    }
  }
  AdminJson(emu, res, kRoute, out.contains("error") ? 404 : 200, out);
}

}  // namespace

void RegisterHeadshotPro(Emulator& emu) {
  auto st = std::make_shared<State>(emu.options().seed);
  auto wh = std::make_shared<Webhooks>(emu, emu.options());
  auto& svr = emu.server();
  Emulator* e = &emu;
  const std::string api = "/api/v2/organization";

  // Admission (auth, rate limit, faults), then the handler under the state
  // lock; the answer is sent after the lock is released, and so are the
  // webhook events the handler raised.
  auto route = [st, wh, e](Reply (*fn)(Ctx&)) {
    return [st, wh, e, fn](const Request& req, Response& res) {
      auto gate = e->Admit(Service::kHeadshotPro, req, res);
      if (!gate) return;
      const UrlSigner signer = MakeSigner(*e, *st, req);
      Reply r;
      std::vector<std::pair<std::string, Json>> events;
      {
        std::lock_guard lk(st->mu);
        Ctx c{req, *st, st->d, signer};
        r = fn(c);
        events = std::move(st->d.outbox);
        st->d.outbox.clear();
      }
      wh->Raise(std::move(events));
      Send(*e, res, r);
    };
  };

  svr.Get(api, route(GetOrganization));
  svr.Get(api + "/credits", route(GetCredits));
  svr.Get(api + "/invites", route(ListInvites));
  svr.Post(api + "/invites", route(CreateInvite));
  svr.Post(api + "/invites/revoke", route(RevokeInvite));
  svr.Get(api + "/invites/(.+)", route(GetInvite));  // path is URL-decoded by httplib
  svr.Get(api + "/team", route(ListTeam));
  svr.Get(api + "/team/(accepted|pending|finished)", route(ListTeamByStatus));
  svr.Get(api + "/teams", route(ListTeams));
  svr.Post(api + "/teams", route(CreateTeam));
  svr.Put(api + "/teams/([^/]+)", route(UpdateTeam));
  svr.Delete(api + "/teams/([^/]+)", route(DeleteTeam));
  svr.Post(api + "/teams/([^/]+)/members", route(AssignTeamMembers));
  svr.Get(api + "/models", route(ListModels));
  svr.Post(api + "/models", route(CreateModel));
  svr.Get(api + "/models/([^/]+)", route(GetModel));
  svr.Get(api + "/models/([^/]+)/photos", route(ListPhotos));
  svr.Get(api + "/models/([^/]+)/photos/favorite", route(GetFavorite));
  svr.Get(api + "/photos/favorites", route(ListFavorites));

  // CDN: no auth, no rate limit, no X-RateLimit headers.
  svr.Get(R"(/cdn/photos/([0-9a-f]{24})(_thumb|_original)?\.jpg)",
          [st, e](const Request& req, Response& res) { ServeCdn(*e, *st, req, res); });

  svr.Get(R"(/_emulator/headshotpro/photos/([^/]+))",
          [st, e](const Request& req, Response& res) { AdminPhoto(*e, *st, req, res); });
  svr.Post(R"(/_emulator/headshotpro/models/([^/]+))",
           [st, wh, e](const Request& req, Response& res) { AdminModel(*e, *st, *wh, req, res); });
  svr.Post("/_emulator/headshotpro/webhook",
           [wh, e](const Request& req, Response& res) { AdminWebhook(*e, *wh, req, res); });
  svr.Post("/_emulator/headshotpro/webhook/send",
           [st, wh, e](const Request& req, Response& res) { AdminWebhookSend(*e, *st, *wh, req, res); });
  svr.Get("/_emulator/headshotpro/webhook/deliveries", [wh, e](const Request&, Response& res) {
    AdminJson(*e, res, "GET /_emulator/headshotpro/webhook/deliveries", 200, wh->Deliveries());
  });
  svr.Post(R"(/_emulator/headshotpro/members/([^/]+))",
           [st, e](const Request& req, Response& res) { AdminMember(*e, *st, req, res); });

  Emulator::ServiceHooks hooks;
  hooks.reset = [st, wh] {
    {
      std::lock_guard lk(st->mu);
      st->d = Data{};
      st->images.clear();
    }
    wh->Reset();
  };
  hooks.shutdown = [wh] { wh->Shutdown(); };
  hooks.seed = [st](const Json& body) { return Seed(*st, body); };
  hooks.stats = [st, wh](Json& stats) {
    std::lock_guard lk(st->mu);
    size_t photos = 0;
    for (const auto& [_, p] : st->d.photos) photos += p.status == "active" ? 1 : 0;
    stats["headshotpro"] = {{"members", st->d.members.size()},
                            {"models", st->d.models.size()},
                            {"photos", photos},
                            {"pending_invites", PendingInvites(st->d)},
                            {"credits", st->d.credits},
                            {"images_cached", st->images.size()}};
    stats["headshotpro"]["webhooks_pending"] = wh->Pending();  // never takes st->mu
  };
  emu.AddServiceHooks(std::move(hooks));
}

std::string WebhookOptionsError(const Options& o) {
  std::string why;
  if (!o.webhook_url.empty() && !ParseLoopbackUrl(o.webhook_url, why)) return why;
  if (!o.webhook_secret.empty() && !ValidSecret(o.webhook_secret)) return "webhook secret must be 64 hex digits";
  if (!(o.webhook_retry_scale > 0)) return "webhook retry scale must be > 0";
  return {};
}

}  // namespace emu
