#include "shotsync/headshotpro.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <set>

#include "shotsync/retry.hpp"
#include "shotsync/throttle.hpp"
#include "util/json_util.hpp"

namespace shotsync {
namespace {

using json::Json;

constexpr int kPageLimit = 200;     // headshotpro.md §1 Pagination: max 200
constexpr int kMaxPages = 100000;
constexpr int kMax429 = 10;  // rate-limit 429s in a row before a POST gives up (as the engine)

std::string UrlEscape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += char(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// The object holding the resource keys: `data` when it is an object, else the top level.
const Json& Payload(const Json& body) {
  const Json* data = json::Field(body, "data");
  return data && data->is_object() ? *data : body;
}

HpPhoto PhotoFrom(const Json& p) {
  HpPhoto photo;
  photo.id = json::String(p, "id");
  photo.model_id = json::String(p, "modelId");
  photo.status = json::String(p, "status");
  photo.liked = json::String(p, "likedStatus");
  if (const Json* urls = json::Field(p, "urls"); urls && urls->is_object()) {
    for (const char* v : {"main", "thumbnail", "original"}) {
      std::string u = json::String(*urls, v);
      if (!u.empty()) photo.urls.emplace_back(v, std::move(u));
    }
  }
  photo.expires_at = json::String(p, "expiresAt");
  photo.expires_s = HeadshotProClient::ParseIso(photo.expires_at).value_or(0);
  return photo;
}

HpMember MemberFrom(const Json& m) {
  return {json::String(m, "id"),       json::String(m, "email"),    json::String(m, "name"),
          json::String(m, "status"),   json::String(m, "teamId"),   json::String(m, "teamName"),
          json::String(m, "modelId"),  json::String(m, "modelStatus")};
}

HpModel ModelFrom(const Json& m) {
  return {json::String(m, "id"),     json::String(m, "email"),  json::String(m, "title"),
          json::String(m, "status"), json::String(m, "teamId"), json::String(m, "teamName")};
}

HpInvite InviteFrom(const Json& i) {
  return {json::String(i, "id"),       json::String(i, "email"),   json::String(i, "status"),
          json::String(i, "teamId"),   json::String(i, "teamName"), json::String(i, "modelId"),
          json::String(i, "createdAt")};
}

// Never throws on invalid UTF-8 (a CSV may hold anything).
std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace

// ------------------------------------------------ parsers of server answers

HpAnswer CheckHpAnswer(const HttpResponse& r, const std::string& what, std::string_view key_source) {
  HpAnswer a;
  a.http = r.status;
  if (!r.transport.ok()) {
    a.status = Status(r.transport.code(), what + ": " + r.transport.message());
    return a;
  }
  if (Status st = HttpsRedirect(r, what); !st.ok()) {
    a.status = std::move(st);
    return a;
  }
  auto body = json::Parse(r.body);
  const bool is_obj = body && body->is_object();
  std::string error, code;
  if (is_obj) {
    error = json::String(*body, "error");
    code = json::String(*body, "code");
    if (error.empty() && code.empty()) {  // the error fields inside `data`, just in case
      error = json::String(Payload(*body), "error");
      code = json::String(Payload(*body), "code");
    }
  }
  a.code = json::Printable(code, 60);
  const std::string tail = " (HTTP " + std::to_string(r.status) + ")";
  const std::string said =
      (error.empty() ? std::string("no error message") : json::Printable(error)) +
      (a.code.empty() ? "" : " [" + a.code + "]") + tail;
  if (r.status >= 200 && r.status < 300) {
    if (!is_obj) {
      a.status = Status::Corrupt(what + ": answer is not a JSON object" + tail);
    } else if (!json::Bool(*body, "success", false)) {
      // 200 with success:false (or no success at all): an error all the same.
      a.status = Status(Code::kServer, what + ": " + (json::Field(*body, "success") ? said
                                                       : "answer has no \"success\" field" + tail));
    }
    return a;
  }
  // The Code is the shared table's (HttpStatusCode), with HeadshotPro's
  // rules: no login page (a redirect is unexpected), every 4xx it does not
  // list is that request's refusal, and a 429 may be the invite cap.
  Code mapped = HttpStatusCode(r.status);
  if (r.status >= 300 && r.status < 400) {
    mapped = Code::kServer;
  } else if (r.status >= 400 && r.status < 500 && !HttpStatusListed(r.status)) {
    mapped = Code::kRejected;
  } else if (r.status == 429 && !Is429RateLimit(r.body)) {
    // INVITE_LIMIT_EXCEEDED: this item's refusal, not a reason to pause and resend.
    mapped = Code::kRejected;
  }
  if (mapped == Code::kUnauthenticated) {
    a.status = Status(mapped, what + ": " + said + ": HeadshotPro refused the API key from " +
                                  std::string(key_source) +
                                  " (deleted or regenerated keys stop working at once)");
  } else if (r.status < 400) {  // 1xx, 3xx
    a.status = Status(mapped, what + ": unexpected answer: " + said);
  } else {
    a.status = Status(mapped, what + ": " + said);
  }
  return a;
}

namespace {

// The items of one page's `key` array, de-duplicated on id (or on the id of
// the item's photo, for favorites), each handed to `add`.
template <class T, class Add>
Result<HpPage<T>> ParsePage(std::string_view text, const char* key, const std::string& what,
                            std::set<std::string>& seen, Add add) {
  auto body = json::Parse(text);
  if (!body || !body->is_object()) return Status::Corrupt(what + ": answer is not a JSON object");
  const Json& data = Payload(*body);
  const Json* items = json::Field(data, key);
  if (!items || !items->is_array()) {
    return Status::Corrupt(what + ": answer has no \"" + std::string(key) + "\" array");
  }
  HpPage<T> page;
  for (const Json& item : *items) {
    if (!item.is_object()) continue;
    // The id of the item, or of its photo for favorites.
    std::string id = json::String(item, "id");
    if (id.empty()) {
      if (const Json* p = json::Field(item, "photo"); p && p->is_object()) id = json::String(*p, "id");
    }
    if (id.empty() || !seen.insert(id).second) continue;
    add(page.items, item);
  }
  const Json* pg = json::Field(data, "pagination");
  if (!pg) pg = json::Field(*body, "pagination");
  page.returned = items->size();
  page.has_more = pg && json::Bool(*pg, "hasMore", false);
  return page;
}

}  // namespace

Result<HpPage<HpMember>> ParseMembersPage(std::string_view body, const std::string& what,
                                          std::set<std::string>& seen) {
  return ParsePage<HpMember>(body, "members", what, seen,
                             [](std::vector<HpMember>& out, const Json& m) { out.push_back(MemberFrom(m)); });
}

Result<HpPage<HpModel>> ParseModelsPage(std::string_view body, const std::string& what,
                                        std::set<std::string>& seen) {
  return ParsePage<HpModel>(body, "models", what, seen,
                            [](std::vector<HpModel>& out, const Json& m) { out.push_back(ModelFrom(m)); });
}

Result<HpPage<HpPhoto>> ParsePhotosPage(std::string_view body, const std::string& model_id,
                                        const std::string& what, std::set<std::string>& seen) {
  return ParsePage<HpPhoto>(body, "photos", what, seen, [&](std::vector<HpPhoto>& out, const Json& p) {
    HpPhoto photo = PhotoFrom(p);
    if (photo.model_id.empty()) photo.model_id = model_id;
    out.push_back(std::move(photo));
  });
}

Result<HpPage<HpFavorite>> ParseFavoritesPage(std::string_view body, const std::string& what,
                                              std::set<std::string>& seen) {
  return ParsePage<HpFavorite>(body, "favorites", what, seen, [](std::vector<HpFavorite>& out, const Json& f) {
    HpFavorite fav{json::String(f, "modelId"), json::String(f, "email"), json::String(f, "name"),
                   json::String(f, "teamId"), {}};
    if (const Json* p = json::Field(f, "photo"); p && p->is_object()) fav.photo = PhotoFrom(*p);
    if (fav.photo.model_id.empty()) fav.photo.model_id = fav.model_id;
    if (!fav.photo.id.empty()) out.push_back(std::move(fav));
  });
}

Result<std::optional<HpPhoto>> ParseFavoriteAnswer(std::string_view text, const std::string& model_id,
                                                   const std::string& what) {
  auto body = json::Parse(text);
  if (!body || !body->is_object()) return Status::Corrupt(what + ": answer is not a JSON object");
  const Json* p = json::Field(Payload(*body), "photo");
  if (!p || !p->is_object()) return std::optional<HpPhoto>();
  HpPhoto photo = PhotoFrom(*p);
  if (photo.id.empty()) return std::optional<HpPhoto>();
  if (photo.model_id.empty()) photo.model_id = model_id;
  return std::optional<HpPhoto>(std::move(photo));
}

Result<std::int64_t> ParseCreditsAnswer(std::string_view text, const std::string& what) {
  auto body = json::Parse(text);
  const auto credits = body ? json::Int(Payload(*body), "credits") : std::nullopt;
  if (!credits) return Status::Corrupt(what + ": answer has no credits number");
  return *credits;
}

Result<std::vector<HpInvite>> ParseInvitesAnswer(std::string_view text, const std::string& what) {
  auto body = json::Parse(text);
  const Json* items = body ? json::Field(Payload(*body), "invites") : nullptr;
  if (!items || !items->is_array()) return Status::Corrupt(what + ": answer has no \"invites\" array");
  std::vector<HpInvite> out;
  for (const Json& i : *items) {
    if (i.is_object()) out.push_back(InviteFrom(i));
  }
  return out;
}

// ------------------------------------------------------------------ client

HeadshotProClient::HeadshotProClient(TransferEngine& engine, Throttle& throttle, std::string base_url,
                                     std::string key, std::string key_source)
    : engine_(engine), throttle_(throttle), key_(std::move(key)), key_source_(std::move(key_source)) {
  while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
  api_ = std::move(base_url);
}

std::optional<double> HeadshotProClient::ParseIso(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fff][Z|+00:00]
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' ||
      s[16] != ':') {
    return std::nullopt;
  }
  auto num = [&](std::size_t at, std::size_t n) -> int {
    int v = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  std::tm tm{};
  const int y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), se = num(17, 2);
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 ||
      se > 60) {
    return std::nullopt;
  }
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  double frac = 0;
  std::size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    double scale = 0.1;
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, scale /= 10) frac += (s[i] - '0') * scale;
  }
  // Only UTC is documented; an explicit offset is applied when present.
  double offset = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-') && i + 6 <= s.size() && s[i + 3] == ':') {
    const int oh = num(i + 1, 2), om = num(i + 4, 2);
    if (oh < 0 || om < 0) return std::nullopt;
    offset = (s[i] == '+' ? 1 : -1) * double(oh * 3600 + om * 60);
  }
  const std::time_t t = ::timegm(&tm);
  if (t == std::time_t(-1)) return std::nullopt;
  return double(t) + frac - offset;
}

HttpRequest HeadshotProClient::Base(std::string method, const std::string& path) const {
  HttpRequest r;
  r.method = std::move(method);
  r.url = api_ + path;
  r.headers = {"Authorization: Bearer " + key_, "Accept: application/json"};
  r.throttle = &throttle_;
  r.timeout = std::chrono::seconds(120);
  return r;
}

HpAnswer HeadshotProClient::Check(const HttpResponse& r, const std::string& what) const {
  return CheckHpAnswer(r, what, key_source_);
}

Result<std::string> HeadshotProClient::Get(const std::string& path, const std::string& what) {
  // GETs are idempotent: network errors and 5xx (a 200 with success:false
  // included) are sent again (retry_policy::kHeadshotPro).
  std::optional<HpAnswer> last;
  HttpResponse r = RetryLoop([&] { return engine_.Perform(Base("GET", path)); },
                             [&](const HttpResponse& got) {
                               last = Check(got, what);
                               return VerdictFor(last->status.code(), true, got.request_sent);
                             },
                             backoff_, retry_sleep_);
  if (!last->status.ok()) return last->status;
  return std::move(r.body);
}

HpAnswer HeadshotProClient::Post(const std::string& path, const std::string& body,
                                 const std::string& what, std::string* answer) {
  for (int attempt = 1;; ++attempt) {
    HttpRequest req = Base("POST", path);
    req.headers.push_back("Content-Type: application/json");
    req.body = body;
    // Paced here rather than by the engine, which resends every 429: a 429
    // INVITE_LIMIT_EXCEEDED is a refusal of this invite and must not be sent
    // again. A 429 about the rate was refused unprocessed: wait and resend.
    req.throttle = nullptr;
    throttle_.Acquire();
    HttpResponse r = engine_.Perform(std::move(req));
    const bool rate_limited = r.status != 0 && throttle_.OnResponse(r.status, r.headers, r.body);
    if (rate_limited && attempt < kMax429 && r.transport.code() != Code::kCancelled) continue;
    HpAnswer a = Check(r, what);
    if (answer) *answer = std::move(r.body);
    return a;
  }
}

template <class T, class Parse>
Result<std::vector<T>> HeadshotProClient::Pages(const std::string& path, const std::string& what,
                                                Parse parse) {
  const char sep = path.find('?') == std::string::npos ? '?' : '&';
  std::set<std::string> seen;
  std::vector<T> out;
  std::int64_t offset = 0;
  for (int page = 0; page < kMaxPages; ++page) {
    SHOTSYNC_ASSIGN_OR_RETURN(std::string text,
                              Get(path + sep + "limit=" + std::to_string(kPageLimit) +
                                      "&offset=" + std::to_string(offset),
                                  what));
    SHOTSYNC_ASSIGN_OR_RETURN(HpPage<T> got, parse(text, seen));
    for (T& item : got.items) out.push_back(std::move(item));
    if (!got.has_more || got.returned == 0) return out;
    offset += std::int64_t(got.returned);
  }
  return Status::Corrupt(what + ": the server keeps returning pages");
}

Result<std::vector<HpMember>> HeadshotProClient::ListMembers(std::string_view status) {
  const std::string path = "/organization/team" + (status.empty() ? std::string() : "?status=" + UrlEscape(status));
  const std::string what = "listing HeadshotPro team members";
  return Pages<HpMember>(path, what, [&](std::string_view body, std::set<std::string>& seen) {
    return ParseMembersPage(body, what, seen);
  });
}

Result<std::vector<HpModel>> HeadshotProClient::ListModels(std::string_view status) {
  const std::string path = "/organization/models" + (status.empty() ? std::string() : "?status=" + UrlEscape(status));
  const std::string what = "listing HeadshotPro models";
  return Pages<HpModel>(path, what, [&](std::string_view body, std::set<std::string>& seen) {
    return ParseModelsPage(body, what, seen);
  });
}

Result<std::vector<HpPhoto>> HeadshotProClient::ListPhotos(const std::string& model_id,
                                                           std::string_view include) {
  const std::string path = "/organization/models/" + UrlEscape(model_id) +
                           "/photos?include=" + UrlEscape(include.empty() ? "main" : include);
  const std::string what = "listing photos of model " + json::Printable(model_id, 40);
  return Pages<HpPhoto>(path, what, [&](std::string_view body, std::set<std::string>& seen) {
    return ParsePhotosPage(body, model_id, what, seen);
  });
}

Result<std::optional<HpPhoto>> HeadshotProClient::Favorite(const std::string& model_id) {
  const std::string what = "reading the favorite of model " + json::Printable(model_id, 40);
  SHOTSYNC_ASSIGN_OR_RETURN(std::string text,
                            Get("/organization/models/" + UrlEscape(model_id) + "/photos/favorite", what));
  return ParseFavoriteAnswer(text, model_id, what);
}

Result<std::vector<HpFavorite>> HeadshotProClient::ListFavorites() {
  const std::string what = "listing HeadshotPro favorites";
  return Pages<HpFavorite>("/organization/photos/favorites", what,
                           [&](std::string_view body, std::set<std::string>& seen) {
                             return ParseFavoritesPage(body, what, seen);
                           });
}

Result<std::int64_t> HeadshotProClient::Credits() {
  const std::string what = "reading HeadshotPro credits";
  SHOTSYNC_ASSIGN_OR_RETURN(std::string text, Get("/organization/credits", what));
  return ParseCreditsAnswer(text, what);
}

Result<std::vector<HpInvite>> HeadshotProClient::ListInvites() {
  const std::string what = "listing HeadshotPro invites";
  SHOTSYNC_ASSIGN_OR_RETURN(std::string text, Get("/organization/invites", what));
  return ParseInvitesAnswer(text, what);
}

HpAnswer HeadshotProClient::Invite(const std::string& email, const std::string& team_id) {
  Json body = {{"email", email}};
  if (!team_id.empty()) body["teamId"] = team_id;
  return Post("/organization/invites", Dump(body), "inviting " + json::Printable(email, 120), nullptr);
}

HpAnswer HeadshotProClient::Revoke(const std::string& email) {
  return Post("/organization/invites/revoke", Dump(Json{{"email", email}}),
              "revoking the invite of " + json::Printable(email, 120), nullptr);
}

}  // namespace shotsync
