#include "shotsync/shootbin.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <utility>
#include "shotsync/retry.hpp"
#include "util/json_util.hpp"

namespace shotsync {
namespace {

using json::Json;

// The first page of a look since the last one (ListPhotos with a stop).
constexpr int kSincePageSize = 10;

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

std::string BaseName(const std::string& rel) {
  const auto slash = rel.rfind('/');
  return slash == std::string::npos ? rel : rel.substr(slash + 1);
}

std::string Stem(const std::string& rel) {
  std::string base = BaseName(rel);
  const auto dot = base.rfind('.');
  return dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// One UTF-8 sequence at s[i..]: the code point and its length; {-1, 1} for a
// byte that does not start a valid, shortest-form sequence.
std::pair<std::int32_t, std::size_t> DecodeUtf8(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return {c, 1};
  std::size_t n;
  std::int32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, cp = c & 0x07;
  } else {
    return {-1, 1};
  }
  if (i + n > s.size()) return {-1, 1};
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return {-1, 1};
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
    return {-1, 1};
  }
  return {cp, n};
}

void EncodeUtf8(std::int32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// Unicode simple case folding (CaseFolding.txt, status C and S) for the
// scripts names are usually written in.
std::int32_t FoldCodePoint(std::int32_t c) {
  auto even_to_odd = [&](std::int32_t lo, std::int32_t hi) {
    return c >= lo && c <= hi && (c - lo) % 2 == 0;
  };
  if (c >= 'A' && c <= 'Z') return c + 0x20;
  if (c < 0x80) return c;
  if (c == 0xB5) return 0x3BC;                               // micro sign -> mu
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;  // Latin-1
  if (even_to_odd(0x100, 0x12F) || even_to_odd(0x132, 0x137) || even_to_odd(0x14A, 0x177))
    return c + 1;
  if ((c >= 0x139 && c <= 0x148 && c % 2 == 1) || (c >= 0x179 && c <= 0x17E && c % 2 == 1))
    return c + 1;
  if (c == 0x178) return 0xFF;
  if (c == 0x17F) return 's';
  if (c == 0x386) return 0x3AC;  // Greek
  if (c >= 0x388 && c <= 0x38A) return c + 37;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 63;
  if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 0x20;
  if (c == 0x3C2) return 0x3C3;                   // final sigma
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;  // Cyrillic
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;
  if (even_to_odd(0x460, 0x481) || even_to_odd(0x48A, 0x4BF) || even_to_odd(0x4D0, 0x52F))
    return c + 1;
  if (c == 0x4C0) return 0x4CF;
  if (c >= 0x4C1 && c <= 0x4CE && c % 2 == 1) return c + 1;
  if (c >= 0x531 && c <= 0x556) return c + 0x30;  // Armenian
  if (even_to_odd(0x1E00, 0x1E95) || even_to_odd(0x1EA0, 0x1EFF))
    return c + 1;                                   // Latin Extended Additional
  if (c == 0x1E9E) return 0xDF;                     // capital sharp s
  if (c >= 0xFF21 && c <= 0xFF3A) return c + 0x20;  // full-width Latin
  return c;
}

bool Blank(std::int32_t c) {
  return c == ' ' || c == '\t' || c == 0xA0 || c == 0x3000;
}

// Trimmed, runs of blanks squeezed to one space, case-folded.
std::string NearKey(std::string_view s) {
  std::string squeezed;
  bool pending_space = false;
  for (std::size_t i = 0; i < s.size();) {
    auto [cp, n] = DecodeUtf8(s, i);
    if (cp >= 0 && Blank(cp)) {
      pending_space = !squeezed.empty();
    } else {
      if (pending_space) squeezed += ' ';
      pending_space = false;
      squeezed.append(s.substr(i, n));
    }
    i += n;
  }
  return SimpleCaseFold(squeezed);
}

// The URL without user info ("https://user:pw@host/api" -> "https://host/api").
std::string WithoutUserInfo(std::string_view url) {
  const auto scheme = url.find("://");
  const std::size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
  const auto end = url.find_first_of("/?#", start);
  const auto at =
      url.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start)
          .rfind('@');
  if (at == std::string_view::npos) return json::Printable(url, 300);
  return json::Printable(
      std::string(url.substr(0, start)) + std::string(url.substr(start + at + 1)), 300);
}

// "host[:port]" of a URL, without scheme, path or user info.
std::string HostOf(std::string_view url) {
  if (auto scheme = url.find("://"); scheme != std::string_view::npos)
    url.remove_prefix(scheme + 3);
  url = url.substr(0, url.find_first_of("/?#"));
  if (auto at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
  return json::Printable(url, 200);
}

std::string Quoted(const std::string& s) {
  return "\"" + json::Printable(s, 120) + "\"";
}

RemotePhoto PhotoFrom(const Json& p) {
  RemotePhoto r;
  r.id = json::Int(p, "id").value_or(0);
  r.original_filename = json::String(p, "original_filename");
  r.title = json::String(p, "title");
  if (auto size = json::Int(p, "file_size"); size && *size >= 0) r.file_size = std::uint64_t(*size);
  r.checksum_sha256 = json::String(p, "checksum_sha256");
  r.revision_uploaded_at = json::String(p, "revision_uploaded_at");
  r.approved_at = json::String(p, "approved_at");
  return r;
}

std::string Quote(const std::string& s) { return "'" + json::Printable(s, 120) + "'"; }

}  // namespace

// ------------------------------------------------ parsers of server answers

std::string ErrorMessageOf(std::string_view text) {
  std::string message;
  if (auto body = json::Parse(text)) {
    message = json::String(*body, "message");
    if (const Json* errors = json::Field(*body, "errors"); errors && errors->is_object()) {
      for (const auto& [field, list] : errors->items()) {
        if (list.is_array() && !list.empty() && list[0].is_string()) {
          const std::string first = list[0].get<std::string>();
          if (first != message) message += (message.empty() ? "" : " ") + first;
          break;
        }
      }
    }
  }
  return message;
}

std::string SimpleCaseFold(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    auto [cp, n] = DecodeUtf8(s, i);
    if (cp < 0) {
      out += s[i];
    } else {
      EncodeUtf8(FoldCodePoint(cp), out);
    }
    i += n;
  }
  return out;
}

std::string ListNamedIds(const std::vector<NamedId>& entries, std::size_t at_most) {
  if (entries.empty()) return "none";
  std::string out;
  for (std::size_t i = 0; i < entries.size() && i < at_most; ++i) {
    out += (out.empty() ? "" : ", ") + std::to_string(entries[i].id) + " (" + Quoted(entries[i].name) + ")";
  }
  if (entries.size() > at_most) out += ", and " + std::to_string(entries.size() - at_most) + " more";
  return out;
}

Result<std::vector<NamedId>> ParseNamedIds(std::string_view text, const std::string& what) {
  auto body = json::Parse(text);
  if (!body || !body->is_array()) return Status::Corrupt(what + ": answer is not a JSON array");
  std::vector<NamedId> out;
  for (const Json& p : *body) {
    if (const auto id = json::Int(p, "id")) out.push_back({*id, json::String(p, "name")});
  }
  return out;
}

Result<std::int64_t> FindNamedId(const std::vector<NamedId>& entries, const std::string& wanted,
                                 const IdLookup& lookup) {
  std::vector<NamedId> exact, folded, near;
  const bool by_id = AllDigits(wanted);
  const std::string wanted_fold = SimpleCaseFold(wanted), wanted_near = NearKey(wanted);
  for (const NamedId& e : entries) {
    if (by_id) {
      if (std::to_string(e.id) == wanted) return e.id;  // ids are unique: the first one
      if (e.name == wanted) near.push_back(e);
      continue;
    }
    if (e.name == wanted) {
      exact.push_back(e);
    } else if (SimpleCaseFold(e.name) == wanted_fold) {
      folded.push_back(e);
    } else if (NearKey(e.name) == wanted_near) {
      near.push_back(e);
    }
  }
  auto list = [](const std::vector<NamedId>& all) { return ListNamedIds(all, SIZE_MAX); };
  const std::string named = lookup.kind + " " + Quoted(wanted);
  // A name that another differs from only in case is ambiguous: never a silent pick.
  if (exact.size() == 1 && folded.empty()) return exact[0].id;
  if (exact.empty() && folded.size() == 1) return folded[0].id;
  if (!exact.empty() || !folded.empty()) {
    std::vector<NamedId> all = exact;
    all.insert(all.end(), folded.begin(), folded.end());
    return Status::Invalid(named + " is ambiguous" + lookup.scope + ": ids " + list(all) +
                           "; set " + lookup.kind + " = <id> in the config");
  }
  if (!near.empty()) {
    return Status::Invalid(
        named + " not found" + lookup.scope +
        (by_id ? ", but named so: id" : ", but close to: id") + (near.size() > 1 ? "s " : " ") +
        list(near) + "; set " + lookup.kind +
        " = <id> in the config, or the exact name (nothing is created beside a near match)");
  }
  return Status::NotFound(named + " not found" + lookup.scope);
}

Result<std::int64_t> FindIdByNameOrId(std::string_view text, const std::string& wanted,
                                      const std::string& what, const IdLookup& lookup) {
  SHOTSYNC_ASSIGN_OR_RETURN(std::vector<NamedId> entries, ParseNamedIds(text, what));
  return FindNamedId(entries, wanted, lookup);
}

Result<std::int64_t> FindIdByNameOrId(std::string_view text, const std::string& wanted,
                                      const std::string& what) {
  return FindIdByNameOrId(text, wanted, what, IdLookup{});
}

Result<std::int64_t> ParseCreatedId(std::string_view text, const std::string& what) {
  auto created = json::Parse(text);
  const auto id = created ? json::Int(*created, "id") : std::nullopt;
  if (!id) return Status::Corrupt(what + ": answer has no id");
  return *id;
}

Result<PhotoPage> ParsePhotoPage(std::string_view text, const std::string& what) {
  auto body = json::Parse(text);
  if (!body || !body->is_object()) return Status::Corrupt(what + ": answer is not a JSON object");
  const Json* data = json::Field(*body, "data");
  if (!data) data = json::Field(*body, "photos");  // backward-compatible alias
  if (!data || !data->is_array()) return Status::Corrupt(what + ": answer has no data array");
  PhotoPage page;
  for (const Json& p : *data) {
    RemotePhoto photo = PhotoFrom(p);
    if (photo.id <= 0) continue;
    page.photos.push_back(std::move(photo));
  }
  page.next_cursor = json::String(*body, "next_cursor");
  page.has_more = json::Bool(*body, "has_more", !page.next_cursor.empty()) &&
                  !page.next_cursor.empty() && !data->empty();
  return page;
}

Status ClassifyShootbinAnswer(long status, std::string_view content_type, std::string_view body,
                              const std::string& what, const ShootbinAnswerContext& context) {
  const bool html = AsciiLower(content_type).find("text/html") != std::string::npos;
  const bool success = status >= 200 && status < 300;
  if (success && !html) return Status::Ok();
  const std::string tail = " (HTTP " + std::to_string(status) + ")";
  // An HTML page is never quoted: it is a login form or a proxy's page.
  std::string said = html ? std::string() : json::Printable(ErrorMessageOf(body));
  const std::string message =
      said.empty() ? (html ? "an HTML page, not the API's JSON" : "no message") : said;

  // The Code is the shared table's (HttpStatusCode); the messages are Shootbin's.
  const Code code = HttpStatusCode(status);
  // The login page (shootbin.md §5.1): a redirect, an HTML page with a
  // 2xx/3xx status, or a 401 of any kind.
  if (code == Code::kUnauthenticated || (success && html)) {
    std::string why = status == 401                     ? ""
                      : (status >= 300 && status < 400) ? " (a redirect, to the login page)"
                                                        : " (a login page instead of JSON)";
    return Status(Code::kUnauthenticated,
                  what + ": Shootbin refused the API token from " + context.token_source + tail +
                      why + ": check that it is current, not revoked, and for this instance (" +
                      WithoutUserInfo(context.api) + ")");
  }
  if (status == 407) {
    return Status(code, what + ": a proxy between here and " + HostOf(context.api) +
                            " asks for credentials" + tail +
                            ": set them in the proxy URL (https_proxy=http://user:password@proxy:port)");
  }
  if (status == 408) return Status(code, what + ": the server timed out waiting for the request" + tail);
  if (status == 413) {
    return Status(code, what + ": " + (said.empty() ? "" : said + ": ") +
                            "too large for the server or a proxy in front of it" + tail);
  }
  if (status >= 500 && status < 600) {
    // A gateway's page (nginx, a load balancer, Cloudflare): the app behind
    // it may still finish the request (shootbin.md §1 "Server errors").
    const bool gateway = html || status == 502 || status == 504 || (status >= 520 && status <= 527);
    if (gateway || said.empty())
      return Status(code, what + (gateway ? ": gateway error" : ": server error") + tail);
    return Status(code, what + ": server error: " + said + tail);
  }
  if (!HttpStatusListed(status)) return Status(code, what + ": unexpected answer: " + message + tail);
  return Status(code, what + ": " + message + tail);
}

Status ClassifyShootbinAnswer(const HttpResponse& r, const std::string& what,
                              const ShootbinAnswerContext& context) {
  if (!r.transport.ok()) return Status(r.transport.code(), what + ": " + r.transport.message());
  if (Status st = HttpsRedirect(r, what); !st.ok()) return st;
  return ClassifyShootbinAnswer(r.status, r.Header("content-type"), r.body, what, context);
}

// ------------------------------------------------------------------ client

ShootbinClient::ShootbinClient(TransferEngine& engine, Throttle& throttle, std::string base_url,
                               std::string token, std::string token_source)
    : engine_(engine), throttle_(throttle), token_(std::move(token)),
      token_source_(std::move(token_source)) {
  while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
  if (base_url.size() < 4 || base_url.compare(base_url.size() - 4, 4, "/api") != 0) base_url += "/api";
  api_ = std::move(base_url);
  context_ = ShootbinAnswerContext{api_, token_source_};
}

HttpResponse ShootbinClient::PerformRead(const HttpRequest& request) {
  // Reads are idempotent: what Classify calls transient (network errors,
  // 408, 5xx) is sent again (retry_policy::kShootbinRead). The body is
  // judged by the parsers afterwards: only HTML counts here.
  bool first = true;
  return RetryLoop([&] {
                     if (!std::exchange(first, false)) read_retries_.fetch_add(1, std::memory_order_relaxed);
                     return engine_.Perform(request);
                   },
                   [](const HttpResponse& r) {
                     const bool html = AsciiLower(r.Header("content-type")).find("text/html") !=
                                       std::string::npos;
                     return Classify(AttemptFacts{.http = r.status,
                                                  .transport = r.transport.code(),
                                                  .body_sent = r.request_sent,
                                                  .body = html ? BodyKind::kHtml : BodyKind::kJson,
                                                  .idempotent = true});
                   },
                   read_backoff_, retry_sleep_);
}

HttpRequest ShootbinClient::Base(std::string method, std::string path) const {
  HttpRequest r;
  r.method = std::move(method);
  r.url = api_ + path;
  r.headers = {"Authorization: Bearer " + token_, "Accept: application/json"};
  r.throttle = &throttle_;
  return r;
}

bool ShootbinClient::BlocksTargetOnly(const Status& status) {
  return status.code() == Code::kForbidden;
}

Status ShootbinClient::CheckAnswer(const HttpResponse& r, const std::string& what) const {
  return ClassifyShootbinAnswer(r, what, context_);
}

HttpResponse ShootbinClient::ProbeProjects() { return PerformRead(Base("GET", "/projects")); }

Result<std::vector<NamedId>> ShootbinClient::ListProjects() {
  HttpResponse r = ProbeProjects();
  Status listed = CheckAnswer(r, "listing Shootbin projects");
  if (listed.code() == Code::kForbidden) {
    // Any token with API access may list projects (shootbin.md §3.1): a 403
    // here is the token's or the plan's problem, not one project's.
    return Status(
        Code::kUnauthenticated,
        listed.message() + ": Shootbin refuses the API token from " + token_source_ +
            " on the project listing, which every token with API access may read: the account "
            "needs the Agency plan, or the token is not allowed to use the API");
  }
  SHOTSYNC_RETURN_IF_ERROR(listed);
  return ParseNamedIds(r.body, "listing Shootbin projects");
}

Result<std::vector<NamedId>> ShootbinClient::ListAlbums(std::int64_t project) {
  HttpResponse r = PerformRead(Base("GET", "/projects/" + std::to_string(project) + "/albums"));
  const std::string what = "listing albums of project " + std::to_string(project);
  SHOTSYNC_RETURN_IF_ERROR(CheckAnswer(r, what));
  return ParseNamedIds(r.body, what);
}

Result<std::int64_t> ShootbinClient::CreateProject(const std::string& name) {
  HttpRequest req = Base("POST", "/projects");
  req.headers.push_back("Content-Type: application/json");
  req.body = Json{{"name", name}}.dump(-1, ' ', false, Json::error_handler_t::replace);
  HttpResponse r = engine_.Perform(std::move(req));
  SHOTSYNC_RETURN_IF_ERROR(CheckAnswer(r, "creating Shootbin project " + Quote(name)));
  return ParseCreatedId(r.body, "creating Shootbin project");
}

Result<std::int64_t> ShootbinClient::CreateAlbum(std::int64_t project, const std::string& name) {
  // The albums page documents multipart form fields for album creation.
  HttpRequest req = Base("POST", "/projects/" + std::to_string(project) + "/albums");
  req.mime = {MimePart{.name = "name", .value = name}};
  HttpResponse r = engine_.Perform(std::move(req));
  SHOTSYNC_RETURN_IF_ERROR(CheckAnswer(r, "creating Shootbin album " + Quote(name)));
  return ParseCreatedId(r.body, "creating Shootbin album");
}

Result<std::int64_t> ShootbinClient::ResolveProject(const std::string& project, bool create) {
  SHOTSYNC_ASSIGN_OR_RETURN(std::vector<NamedId> projects, ListProjects());
  return ResolveProjectIn(projects, project, create);
}

Result<std::int64_t> ShootbinClient::ResolveProjectIn(std::vector<NamedId>& projects, const std::string& project,
                                                      bool create) {
  auto found = FindNamedId(projects, project, IdLookup{"project", ""});
  if (found.ok() || found.status().code() != Code::kNotFound) return found;
  if (AllDigits(project) || !create) {
    return Status::NotFound(found.status().message() + " on Shootbin; its projects: " + ListNamedIds(projects, 8) +
                            (AllDigits(project) ? "" : "; set create = true on the root to create it"));
  }
  auto created = CreateProject(project);
  if (created.ok()) projects.push_back({*created, project});  // the next root of this name finds it
  return created;
}

Result<std::int64_t> ShootbinClient::ResolveAlbum(std::int64_t project, const std::string& album,
                                                  bool create) {
  SHOTSYNC_ASSIGN_OR_RETURN(std::vector<NamedId> albums, ListAlbums(project));
  auto found = FindNamedId(albums, album, IdLookup{"album", " in project " + std::to_string(project)});
  if (found.ok() || found.status().code() != Code::kNotFound) return found;
  if (AllDigits(album) || !create) {
    return Status::NotFound("Shootbin " + found.status().message() + "; its albums: " + ListNamedIds(albums, 8) +
                            (AllDigits(album) ? "" : "; set create = true on the root to create it"));
  }
  return CreateAlbum(project, album);
}

Result<std::vector<RemotePhoto>> ShootbinClient::ListPhotos(std::int64_t project, std::int64_t album,
                                                            std::int64_t stop_below_id) {
  std::vector<RemotePhoto> photos;
  std::string cursor;
  const std::string what = "listing photos of album " + std::to_string(album);
  for (int page = 0; page < 100000; ++page) {
    // A look since the last one (newest first) mostly finds a few photos: its
    // first page is small, so that a hook's push does not fetch and parse
    // 100 photos it knows; a long absence costs one page more, then full ones.
    const int per_page = page == 0 && stop_below_id > 0 ? kSincePageSize : 100;
    std::string path = "/projects/" + std::to_string(project) + "/albums/" + std::to_string(album) +
                       "/photos?per_page=" + std::to_string(per_page);
    if (!cursor.empty()) {
      // The cursor is opaque; it only needs URL-escaping.
      std::string escaped;
      for (unsigned char c : cursor) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
          escaped += char(c);
        } else {
          char buf[4];
          std::snprintf(buf, sizeof buf, "%%%02X", c);
          escaped += buf;
        }
      }
      path += "&cursor=" + escaped;
    }
    HttpResponse r = PerformRead(Base("GET", path));
    SHOTSYNC_RETURN_IF_ERROR(CheckAnswer(r, what));
    SHOTSYNC_ASSIGN_OR_RETURN(PhotoPage got, ParsePhotoPage(r.body, what));
    std::int64_t smallest = INT64_MAX;
    for (RemotePhoto& photo : got.photos) {
      smallest = std::min(smallest, photo.id);
      // Below the stop: listed by the last look already.
      if (stop_below_id <= 0 || photo.id >= stop_below_id) photos.push_back(std::move(photo));
    }
    cursor = std::move(got.next_cursor);
    if (!got.has_more) return photos;
    if (stop_below_id > 0 && smallest < stop_below_id) return photos;
  }
  return Status::Corrupt(what + ": the server keeps returning pages");
}

Result<RemotePhoto> ShootbinClient::GetPhoto(std::int64_t project, std::int64_t album,
                                             std::int64_t photo) {
  HttpResponse r = PerformRead(Base("GET", "/projects/" + std::to_string(project) + "/albums/" +
                                                   std::to_string(album) + "/photos/" +
                                                   std::to_string(photo)));
  SHOTSYNC_RETURN_IF_ERROR(CheckAnswer(r, "reading photo " + std::to_string(photo)));
  return ParsePhotoAnswer(r);
}

HttpRequest ShootbinClient::UploadRequest(std::int64_t project, std::int64_t album,
                                          const std::string& abs_path,
                                          const std::string& rel_path) const {
  HttpRequest r = Base("POST", "/projects/" + std::to_string(project) + "/albums/" +
                                   std::to_string(album) + "/photos");
  r.mime = {
      MimePart{.name = "photo", .file_path = abs_path, .filename = BaseName(rel_path)},
      MimePart{.name = "client_original_filename", .value = rel_path},
      MimePart{.name = "title", .value = Stem(rel_path)},
  };
  return r;
}

HttpRequest ShootbinClient::RevisionRequest(std::int64_t project, std::int64_t album,
                                            std::int64_t photo, const std::string& abs_path,
                                            const std::string& rel_path) const {
  HttpRequest r = Base("POST", "/projects/" + std::to_string(project) + "/albums/" +
                                   std::to_string(album) + "/photos/" + std::to_string(photo) +
                                   "/revisions");
  r.mime = {
      MimePart{.name = "revision", .file_path = abs_path, .filename = BaseName(rel_path)},
      MimePart{.name = "client_original_filename", .value = rel_path},
  };
  return r;
}

Result<RemotePhoto> ShootbinClient::ParsePhotoAnswer(const HttpResponse& response) {
  // A 2xx whose body is cut off or unreadable is neither a success nor a
  // refusal: the photo may be stored (shootbin.md §1 "Server errors").
  const std::string tail = " (HTTP " + std::to_string(response.status) +
                           "; cut off or unreadable: the photo may have been stored)";
  auto body = json::Parse(response.body);
  if (!body || !body->is_object())
    return Status::Corrupt("photo answer is not a JSON object" + tail);
  const Json* photo = json::Field(*body, "photo");
  RemotePhoto p = PhotoFrom(photo && photo->is_object() ? *photo : *body);
  if (p.id <= 0) return Status::Corrupt("photo answer has no photo id" + tail);
  return p;
}

}  // namespace shotsync
