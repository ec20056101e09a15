// The HTTP/1.1 that `watch`'s listener speaks (RFC 9112), as pure functions
// over bytes so that the fuzzer reaches them (tests/fuzz/webhook_fuzz.cpp):
// a request head, a chunked body, and an answer. Only what three small
// routes need: no multipart, no ranges, no upgrades. Anything a request
// smuggler relies on (both Content-Length and Transfer-Encoding, two
// lengths, folded headers, bare LF) is refused, not guessed at.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shotsync::watch {

inline constexpr std::size_t kMaxRequestHead = 8 * 1024;

struct RequestHead {
  std::string method;
  std::string path;  // the target without its query
  std::vector<std::pair<std::string, std::string>> headers;
  std::size_t content_length = 0;
  bool chunked = false;
  bool keep_alive = true;        // HTTP/1.1 unless "Connection: close"; 1.0 only if asked
  bool expect_continue = false;  // "Expect: 100-continue"

  // The first header of that name (case-insensitive), or nullopt.
  std::optional<std::string_view> Header(std::string_view name) const;
};

// What a parse step found: the status to answer with when it failed.
struct WireError {
  int status;  // 400, 431, 501, 505
  std::string reason;
};

struct HeadParse {
  enum { kIncomplete, kDone, kBad } state = kIncomplete;
  RequestHead head;
  std::size_t consumed = 0;  // bytes of the head, its blank line included (kDone)
  WireError error{400, ""};
};
// Parses the head at the start of `in` (at most kMaxRequestHead bytes).
HeadParse ParseRequestHead(std::string_view in);

struct ChunkedParse {
  enum { kIncomplete, kDone, kBad } state = kIncomplete;
  std::string body;
  std::size_t consumed = 0;  // bytes of the chunked body, trailers included (kDone)
  std::string reason;
};
// Decodes a chunked body at the start of `in`; more than `max_body` bytes
// of content is kBad ("too large").
ChunkedParse DecodeChunked(std::string_view in, std::size_t max_body);

// A whole answer: status line, Content-Type, Content-Length, Connection and
// any extra headers ("Name: value" each), then the body.
std::string FormatAnswer(int status, std::string_view content_type, std::string_view body, bool keep_alive,
                         const std::vector<std::string>& extra_headers = {});

}  // namespace shotsync::watch
