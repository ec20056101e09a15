#include "http.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <stdexcept>

namespace shotsync::testing::http {
namespace {

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct MimeDeleter {
  void operator()(curl_mime* m) const { curl_mime_free(m); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;
using MimePtr = std::unique_ptr<curl_mime, MimeDeleter>;

void GlobalInitOnce() {
  static const bool done = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)done;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return std::string(s);
}

void CheckLoopback(const std::string& url) {
  // The host must be exactly 127.0.0.1 (followed by ':' or '/' or the end).
  static constexpr std::string_view kPrefix = "http://127.0.0.1";
  if (url.compare(0, kPrefix.size(), kPrefix) != 0 ||
      (url.size() > kPrefix.size() && url[kPrefix.size()] != ':' && url[kPrefix.size()] != '/')) {
    throw std::invalid_argument("test HTTP client only talks to http://127.0.0.1, not: " + url);
  }
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<Headers*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();  // a new response (e.g. after 100 Continue): keep only the final one
  } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
    headers->emplace_back(Trim(line.substr(0, colon)), Trim(line.substr(colon + 1)));
  }
  return size * n;
}

}  // namespace

Part Part::Field(std::string name, std::string value) {
  Part p;
  p.name = std::move(name);
  p.value = std::move(value);
  return p;
}

Part Part::File(std::string name, std::filesystem::path path, std::string filename,
                std::string content_type) {
  Part p;
  p.name = std::move(name);
  p.filename = filename.empty() ? path.filename().string() : std::move(filename);
  p.file = std::move(path);
  p.content_type = std::move(content_type);
  return p;
}

Part Part::Bytes(std::string name, std::string_view bytes, std::string filename,
                 std::string content_type) {
  Part p;
  p.name = std::move(name);
  p.value.assign(bytes.data(), bytes.size());
  p.filename = std::move(filename);
  p.content_type = std::move(content_type);
  return p;
}

Part Part::Bytes(std::string name, const std::vector<std::uint8_t>& bytes, std::string filename,
                 std::string content_type) {
  return Bytes(std::move(name),
               std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
               std::move(filename), std::move(content_type));
}

std::optional<std::string> Response::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name)) return v;
  }
  return std::nullopt;
}

nlohmann::json Response::json() const {
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error("response body is not JSON (" + describe() + "): " + e.what());
  }
}

std::string Response::describe() const {
  if (curl_code != 0) {
    return "transport error " + std::to_string(curl_code) + ": " + error;
  }
  std::string b = body.size() > 400 ? body.substr(0, 400) + "..." : body;
  return "HTTP " + std::to_string(status) + ": " + b;
}

Response Perform(const Request& request) {
  CheckLoopback(request.url);
  GlobalInitOnce();

  EasyPtr easy(curl_easy_init());
  if (!easy) throw std::runtime_error("curl_easy_init failed");
  CURL* h = easy.get();

  Response response;
  char errbuf[CURL_ERROR_SIZE] = {};

  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, CURLPROTO_HTTP);
#endif
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &response.headers);

  // Headers. "Expect:" is always suppressed so that bodies go out at once
  // (predictable for fault tests); "Name:" with no value removes a default.
  SlistPtr slist;
  auto add = [&](const std::string& line) {
    // Appends at the tail; the head only changes for the first element.
    curl_slist* head = curl_slist_append(slist.get(), line.c_str());
    if (head == nullptr) throw std::runtime_error("curl_slist_append failed");
    if (!slist) slist.reset(head);
  };
  bool has_expect = false;
  for (const auto& [name, value] : request.headers) {
    if (IEquals(name, "Expect")) has_expect = true;
    add(value.empty() ? name + ":" : name + ": " + value);
  }
  if (!has_expect) add("Expect:");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, slist.get());

  // Body and method.
  MimePtr mime;
  if (!request.parts.empty()) {
    mime.reset(curl_mime_init(h));
    for (const Part& part : request.parts) {
      curl_mimepart* mp = curl_mime_addpart(mime.get());
      curl_mime_name(mp, part.name.c_str());
      if (part.file) {
        if (!std::filesystem::is_regular_file(*part.file)) {
          throw std::invalid_argument("multipart file part not found: " + part.file->string());
        }
        if (curl_mime_filedata(mp, part.file->string().c_str()) != CURLE_OK) {
          throw std::invalid_argument("cannot read multipart file: " + part.file->string());
        }
      } else {
        curl_mime_data(mp, part.value.data(), part.value.size());
      }
      if (part.filename) curl_mime_filename(mp, part.filename->c_str());
      if (!part.content_type.empty()) curl_mime_type(mp, part.content_type.c_str());
    }
    curl_easy_setopt(h, CURLOPT_MIMEPOST, mime.get());
    if (request.method != "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (request.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
        request.method == "PATCH") {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    }
    if (request.method != "POST") {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
  }

  CURLcode rc = curl_easy_perform(h);
  // On a transport error the status stays 0 unless a status line had already
  // arrived before the failure.
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  if (rc != CURLE_OK) {
    response.curl_code = static_cast<int>(rc);
    response.error = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(rc);
  }
  return response;
}

Response Get(const std::string& url, Headers headers) {
  return Perform({.method = "GET", .url = url, .headers = std::move(headers)});
}

Response Delete(const std::string& url, Headers headers) {
  return Perform({.method = "DELETE", .url = url, .headers = std::move(headers)});
}

Response SendJson(const std::string& method, const std::string& url, const nlohmann::json& body,
                  Headers headers) {
  headers.emplace_back("Content-Type", "application/json");
  return Perform(
      {.method = method, .url = url, .headers = std::move(headers), .body = body.dump()});
}

Response PostMultipart(const std::string& url, std::vector<Part> parts, Headers headers) {
  return Perform(
      {.method = "POST", .url = url, .headers = std::move(headers), .parts = std::move(parts)});
}

}  // namespace shotsync::testing::http
