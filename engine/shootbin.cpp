#include "shotsync/shootbin.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <thread>

#include "json_util.hpp"

namespace shotsync {
namespace {

using json::Json;

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

RemotePhoto PhotoFrom(const Json& p) {
  RemotePhoto r;
  r.id = json::Int(p, "id").value_or(0);
  r.original_filename = json::String(p, "original_filename");
  r.title = json::String(p, "title");
  if (auto size = json::Int(p, "file_size"); size && *size >= 0) r.file_size = std::uint64_t(*size);
  r.checksum_sha256 = json::String(p, "checksum_sha256");
  r.revision_uploaded_at = json::String(p, "revision_uploaded_at");
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

Result<std::int64_t> FindIdByNameOrId(std::string_view text, const std::string& wanted,
                                      const std::string& what) {
  auto body = json::Parse(text);
  if (!body || !body->is_array()) return Status::Corrupt(what + ": answer is not a JSON array");
  const bool by_id = AllDigits(wanted);
  for (const Json& p : *body) {
    const auto id = json::Int(p, "id");
    if (!id) continue;
    if (by_id ? std::to_string(*id) == wanted : json::String(p, "name") == wanted) return *id;
  }
  return Status::NotFound(what + ": " + Quote(wanted) + " not found");
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

// ------------------------------------------------------------------ client

ShootbinClient::ShootbinClient(TransferEngine& engine, Throttle& throttle, std::string base_url,
                               std::string token, std::string token_source)
    : engine_(engine), throttle_(throttle), token_(std::move(token)),
      token_source_(std::move(token_source)) {
  while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
  if (base_url.size() < 4 || base_url.compare(base_url.size() - 4, 4, "/api") != 0) base_url += "/api";
  api_ = std::move(base_url);
}

HttpResponse ShootbinClient::PerformRead(HttpRequest request) {
  // Reads are idempotent: network errors and 5xx are retried with
  // exponential backoff and full jitter (0.5 s, 1 s, 2 s, 4 s caps).
  HttpResponse r;
  for (int attempt = 0;; ++attempt) {
    r = engine_.Perform(request);
    const bool transient = !r.transport.ok() ? r.transport.code() == Code::kNetwork : r.status >= 500;
    if (!transient || attempt == 4) return r;
    double cap = 0.5 * double(1 << attempt);
    double wait;
    {
      std::lock_guard lock(rng_mu_);
      wait = std::uniform_real_distribution<double>(0, cap)(rng_);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::int64_t(wait * 1000)));
  }
}

HttpRequest ShootbinClient::Base(std::string method, std::string path) const {
  HttpRequest r;
  r.method = std::move(method);
  r.url = api_ + path;
  r.headers = {"Authorization: Bearer " + token_, "Accept: application/json"};
  r.throttle = &throttle_;
  return r;
}

bool ShootbinClient::IsLockedProject(const Status& status) {
  if (status.code() != Code::kForbidden) return false;
  std::string m = status.message();
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::tolower(c); });
  return m.find("locked") != std::string::npos;
}

Status ShootbinClient::CheckAnswer(const HttpResponse& r, const std::string& what) const {
  if (!r.transport.ok()) return Status(r.transport.code(), what + ": " + r.transport.message());
  const std::string ctype = r.Header("content-type");
  const bool html = ctype.find("text/html") != std::string::npos;
  if (r.status >= 200 && r.status < 300 && !html) return Status::Ok();
  std::string message = ErrorMessageOf(r.body);
  message = json::Printable(message.empty() ? "no message" : message);
  const std::string tail = " (HTTP " + std::to_string(r.status) + ")";
  if (r.status == 401 || (r.status >= 300 && r.status < 400) || html) {
    return Status(Code::kUnauthenticated,
                  what + ": Shootbin refused the API token from " + token_source_ +
                      tail + ": check that it is current, not revoked, and for this instance (" +
                      api_ + ")");
  }
  if (r.status == 403) return Status(Code::kForbidden, what + ": " + message + tail);
  if (r.status == 404) return Status(Code::kNotFound, what + ": " + message + tail);
  if (r.status == 409) return Status(Code::kConflict, what + ": " + message + tail);
  if (r.status == 400 || r.status == 413 || r.status == 422) {
    return Status(Code::kRejected, what + ": " + message + tail);
  }
  if (r.status == 429) return Status(Code::kRateLimited, what + ": " + message + tail);
  if (r.status >= 500) return Status(Code::kServer, what + ": server error" + tail);
  return Status(Code::kServer, what + ": unexpected answer: " + message + tail);
}

Result<std::int64_t> ShootbinClient::ResolveProject(const std::string& project, bool create) {
  HttpResponse r = PerformRead(Base("GET", "/projects"));
  SHOTSYNC_RETURN_IF_ERROR(CheckAnswer(r, "listing Shootbin projects"));
  auto found = FindIdByNameOrId(r.body, project, "listing Shootbin projects");
  if (found.ok() || found.status().code() != Code::kNotFound) return found;
  if (AllDigits(project) || !create) {
    return Status::NotFound("Shootbin project " + Quote(project) +
                            " not found (set create = true on the root to create it)");
  }
  HttpRequest req = Base("POST", "/projects");
  req.headers.push_back("Content-Type: application/json");
  req.body = Json{{"name", project}}.dump();
  r = engine_.Perform(std::move(req));
  SHOTSYNC_RETURN_IF_ERROR(CheckAnswer(r, "creating Shootbin project " + Quote(project)));
  return ParseCreatedId(r.body, "creating Shootbin project");
}

Result<std::int64_t> ShootbinClient::ResolveAlbum(std::int64_t project, const std::string& album,
                                                  bool create) {
  const std::string path = "/projects/" + std::to_string(project) + "/albums";
  HttpResponse r = PerformRead(Base("GET", path));
  SHOTSYNC_RETURN_IF_ERROR(CheckAnswer(r, "listing albums of project " + std::to_string(project)));
  auto found = FindIdByNameOrId(r.body, album, "listing albums");
  if (found.ok() || found.status().code() != Code::kNotFound) return found;
  if (AllDigits(album) || !create) {
    return Status::NotFound("Shootbin album " + Quote(album) + " not found in project " +
                            std::to_string(project) + " (set create = true on the root to create it)");
  }
  // The albums page documents multipart form fields for album creation.
  HttpRequest req = Base("POST", path);
  req.mime = {MimePart{.name = "name", .value = album}};
  r = engine_.Perform(std::move(req));
  SHOTSYNC_RETURN_IF_ERROR(CheckAnswer(r, "creating Shootbin album " + Quote(album)));
  return ParseCreatedId(r.body, "creating Shootbin album");
}

Result<std::vector<RemotePhoto>> ShootbinClient::ListPhotos(std::int64_t project, std::int64_t album,
                                                            std::int64_t stop_below_id) {
  std::vector<RemotePhoto> photos;
  std::string cursor;
  const std::string what = "listing photos of album " + std::to_string(album);
  for (int page = 0; page < 100000; ++page) {
    std::string path = "/projects/" + std::to_string(project) + "/albums/" + std::to_string(album) +
                       "/photos?per_page=100";
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
      photos.push_back(std::move(photo));
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
  auto body = json::Parse(response.body);
  if (!body || !body->is_object()) return Status::Corrupt("photo answer is not a JSON object");
  const Json* photo = json::Field(*body, "photo");
  RemotePhoto p = PhotoFrom(photo && photo->is_object() ? *photo : *body);
  if (p.id <= 0) return Status::Corrupt("photo answer has no photo id");
  return p;
}

}  // namespace shotsync
