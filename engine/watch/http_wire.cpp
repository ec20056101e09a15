// HTTP/1.1 request heads, chunked bodies and answers (watch/http_wire.hpp).
#include "watch/http_wire.hpp"

#include <charconv>
#include <cstdint>

namespace shotsync::watch {

namespace {

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = char(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = char(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// RFC 9110 token characters (method and header names).
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether a comma-separated header value lists `token` (Connection, Expect).
bool ListHas(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const auto comma = value.find(',');
    if (IEquals(TrimOws(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

bool ParseDecimal(std::string_view s, std::size_t& out) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  out = std::size_t(v);
  return true;
}

HeadParse Bad(int status, std::string reason) {
  HeadParse p;
  p.state = HeadParse::kBad;
  p.error = {status, std::move(reason)};
  return p;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
  }
}

}  // namespace

std::optional<std::string_view> RequestHead::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (IEquals(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

HeadParse ParseRequestHead(std::string_view in) {
  const std::size_t end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (in.size() >= kMaxRequestHead) return Bad(431, "request head over 8 KiB");
    return {};
  }
  if (end + 4 > kMaxRequestHead) return Bad(431, "request head over 8 KiB");
  std::string_view rest = in.substr(0, end + 2);  // every line ends in CRLF
  auto next_line = [&rest]() {
    const auto crlf = rest.find("\r\n");
    const std::string_view line = rest.substr(0, crlf);
    rest.remove_prefix(crlf + 2);
    return line;
  };
  HeadParse p;
  RequestHead& h = p.head;
  const std::string_view request_line = next_line();
  if (request_line.find_first_of("\r\n") != std::string_view::npos) return Bad(400, "bare CR or LF");
  const auto sp1 = request_line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos)
    return Bad(400, "malformed request line");
  const std::string_view method = request_line.substr(0, sp1);
  const std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = request_line.substr(sp2 + 1);
  if (!IsToken(method)) return Bad(400, "malformed method");
  if (target.empty() || target.front() != '/') return Bad(400, "the target is not a path");
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return Bad(400, "malformed target");
  }
  if (version == "HTTP/1.0") {
    h.keep_alive = false;
  } else if (version != "HTTP/1.1") {
    return Bad(version.substr(0, 5) == "HTTP/" ? 505 : 400, "not HTTP/1.1");
  }
  h.method = method;
  h.path = target.substr(0, target.find('?'));

  bool have_length = false;
  while (!rest.empty()) {
    const std::string_view line = next_line();
    if (line.find_first_of("\r\n") != std::string_view::npos) return Bad(400, "bare CR or LF");
    if (line.front() == ' ' || line.front() == '\t') return Bad(400, "folded header");
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) return Bad(400, "malformed header");
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = TrimOws(line.substr(colon + 1));
    for (char c : value) {
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) return Bad(400, "control byte in a header");
    }
    if (IEquals(name, "Content-Length")) {
      std::size_t n = 0;
      if (!ParseDecimal(value, n)) return Bad(400, "malformed Content-Length");
      if (have_length && n != h.content_length) return Bad(400, "two Content-Lengths");
      have_length = true;
      h.content_length = n;
    } else if (IEquals(name, "Transfer-Encoding")) {
      if (!IEquals(value, "chunked") || h.chunked) return Bad(501, "unsupported Transfer-Encoding");
      h.chunked = true;
    } else if (IEquals(name, "Connection")) {
      if (ListHas(value, "close")) h.keep_alive = false;
      if (ListHas(value, "keep-alive") && version == "HTTP/1.0") h.keep_alive = true;
    } else if (IEquals(name, "Expect")) {
      if (!IEquals(value, "100-continue")) return Bad(400, "unsupported Expect");
      h.expect_continue = true;
    }
    h.headers.emplace_back(name, value);
  }
  if (h.chunked && have_length) return Bad(400, "both Content-Length and Transfer-Encoding");
  p.state = HeadParse::kDone;
  p.consumed = end + 4;
  return p;
}

ChunkedParse DecodeChunked(std::string_view in, std::size_t max_body) {
  ChunkedParse p;
  std::size_t at = 0;
  auto bad = [&p](std::string reason) {
    p.state = ChunkedParse::kBad;
    p.reason = std::move(reason);
    p.body.clear();
    return p;
  };
  for (;;) {
    const auto crlf = in.find("\r\n", at);
    if (crlf == std::string_view::npos) return in.size() - at > 1024 ? bad("malformed chunk size") : ChunkedParse{};
    std::string_view size_line = in.substr(at, crlf - at);
    size_line = size_line.substr(0, size_line.find(';'));  // chunk extensions are ignored
    size_line = TrimOws(size_line);
    if (size_line.empty() || size_line.size() > 8) return bad("malformed chunk size");
    std::size_t n = 0;
    for (char c : size_line) {
      int d = -1;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      if (d < 0) return bad("malformed chunk size");
      n = n * 16 + std::size_t(d);
    }
    at = crlf + 2;
    if (n == 0) break;
    if (p.body.size() + n > max_body) return bad("too large");
    if (in.size() < at + n + 2) return ChunkedParse{};
    if (in.substr(at + n, 2) != "\r\n") return bad("chunk without its CRLF");
    p.body.append(in.substr(at, n));
    at += n + 2;
  }
  // Trailer fields, then the blank line.
  for (;;) {
    const auto crlf = in.find("\r\n", at);
    if (crlf == std::string_view::npos) return in.size() - at > kMaxRequestHead ? bad("trailers too large") : ChunkedParse{};
    const bool blank = crlf == at;
    at = crlf + 2;
    if (blank) break;
  }
  p.state = ChunkedParse::kDone;
  p.consumed = at;
  return p;
}

std::string FormatAnswer(int status, std::string_view content_type, std::string_view body, bool keep_alive,
                         const std::vector<std::string>& extra_headers) {
  std::string out = "HTTP/1.1 ";
  out.append(std::to_string(status)).append(1, ' ').append(ReasonPhrase(status)).append("\r\n");
  if (!content_type.empty()) out.append("Content-Type: ").append(content_type).append("\r\n");
  out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  for (const std::string& h : extra_headers) out.append(h).append("\r\n");
  out.append(keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
  out.append(body);
  return out;
}

}  // namespace shotsync::watch
