// A small, synchronous HTTP client over libcurl for tests and benchmarks.
//
// Test-only: the product has its own transfer engine. This client is
// deliberately literal: it sends exactly the headers it is given (plus what
// libcurl needs for the body), follows no redirects, never uses a proxy, and
// refuses any URL that is not http://127.0.0.1 (tests must stay on loopback).
//
// Transport failures (connection reset, refused, timeout) are not exceptions:
// they come back as a Response with status 0 and `curl_code`/`error` set, so a
// test can assert on them. Misuse (a non-loopback URL, an unreadable file
// part) throws std::invalid_argument.
//
// Thread safety: Perform() may be called from many threads at once; each call
// uses its own easy handle. Call curl_global_init before starting threads if
// you need strict libcurl semantics (Perform() does it once, thread-safely,
// via a function-local static).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace shotsync::testing::http {

// One multipart/form-data part: a plain field, a file read from disk, or
// in-memory bytes sent as a file.
struct Part {
  std::string name;
  std::string value;                        // field value, or the bytes of an in-memory file
  std::optional<std::filesystem::path> file;  // send this file's contents
  std::optional<std::string> filename;      // set => sent as a file part with this filename
  std::string content_type;                 // optional, e.g. "image/jpeg"

  static Part Field(std::string name, std::string value);
  // Contents of `path`; filename = `filename` or the path's basename.
  static Part File(std::string name, std::filesystem::path path, std::string filename = {},
                   std::string content_type = {});
  static Part Bytes(std::string name, std::string_view bytes, std::string filename,
                    std::string content_type = {});
  static Part Bytes(std::string name, const std::vector<std::uint8_t>& bytes, std::string filename,
                    std::string content_type = {});
};

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method = "GET";
  std::string url;               // must start with http://127.0.0.1
  Headers headers;               // sent as given; an empty value removes a libcurl default
                                 // (e.g. {"Accept", ""} sends no Accept header at all)
  std::string body;              // raw body (ignored when `parts` is non-empty)
  std::vector<Part> parts;       // non-empty => multipart/form-data
  std::chrono::milliseconds timeout{30000};
};

struct Response {
  long status = 0;               // 0 when no HTTP answer arrived
  int curl_code = 0;             // CURLcode; 0 = transport OK
  std::string error;             // libcurl's message when curl_code != 0
  Headers headers;               // of the final answer, in arrival order, names as sent
  std::string body;

  bool transport_ok() const { return curl_code == 0; }
  // Case-insensitive lookup of the first header with this name.
  std::optional<std::string> header(std::string_view name) const;
  bool has_header(std::string_view name) const { return header(name).has_value(); }
  // Parses the body as JSON; throws nlohmann::json::parse_error with the body
  // in the message when it is not JSON.
  nlohmann::json json() const;
  // "HTTP 422: {...}" or "transport error 56: ..." for failure messages.
  std::string describe() const;
};

Response Perform(const Request& request);

// Convenience wrappers.
Response Get(const std::string& url, Headers headers = {});
Response Delete(const std::string& url, Headers headers = {});
// Sends `body` as JSON (adds Content-Type: application/json).
Response SendJson(const std::string& method, const std::string& url, const nlohmann::json& body,
                  Headers headers = {});
Response PostMultipart(const std::string& url, std::vector<Part> parts, Headers headers = {});

}  // namespace shotsync::testing::http
