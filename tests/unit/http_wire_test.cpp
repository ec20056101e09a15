// The listener's HTTP/1.1 parsing (engine/watch/http_wire.hpp): what a
// webhook sender, a Prometheus scraper and a request smuggler send.
#include "watch/http_wire.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace shotsync::watch;

TEST_CASE("a request head is parsed once it is whole", "[http_wire]") {
  const std::string head =
      "POST /webhooks/headshotpro?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
      "X-HeadshotPro-Signature:  sha256=ab \r\n\r\nhello";
  for (std::size_t cut = 0; cut < head.size() - 5; ++cut) {
    INFO(cut);
    CHECK(ParseRequestHead(std::string_view(head).substr(0, cut)).state == HeadParse::kIncomplete);
  }
  const HeadParse p = ParseRequestHead(head);
  REQUIRE(p.state == HeadParse::kDone);
  CHECK(p.consumed == head.size() - 5);
  CHECK(p.head.method == "POST");
  CHECK(p.head.path == "/webhooks/headshotpro");
  CHECK(p.head.content_length == 5);
  CHECK(p.head.keep_alive);
  CHECK(p.head.Header("x-headshotpro-signature").value_or("") == "sha256=ab");
  CHECK_FALSE(p.head.Header("X-HeadshotPro-Timestamp"));
}

TEST_CASE("HTTP/1.0 closes unless it asks to be kept alive, and Connection close is honoured",
          "[http_wire]") {
  CHECK_FALSE(ParseRequestHead("GET / HTTP/1.0\r\n\r\n").head.keep_alive);
  CHECK(ParseRequestHead("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").head.keep_alive);
  CHECK_FALSE(ParseRequestHead("GET / HTTP/1.1\r\nConnection: TE, close\r\n\r\n").head.keep_alive);
  CHECK(ParseRequestHead("GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n").head.expect_continue);
}

TEST_CASE("ambiguous or malformed heads are refused with the status that says why", "[http_wire]") {
  auto status = [](const std::string& in) {
    const HeadParse p = ParseRequestHead(in);
    return p.state == HeadParse::kBad ? p.error.status : 0;
  };
  CHECK(status("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n") == 400);
  CHECK(status("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n") == 400);
  CHECK(status("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n") == 0);
  CHECK(status("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n") == 400);
  CHECK(status("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n") == 400);
  CHECK(status("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 501);
  CHECK(status("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n") == 400);  // folded
  CHECK(status("GET / HTTP/1.1\r\nA b\r\n\r\n") == 400);
  CHECK(status("GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n") == 400);  // bare LF
  CHECK(status("GET  / HTTP/1.1\r\n\r\n") == 400);
  CHECK(status("GET http://x/ HTTP/1.1\r\n\r\n") == 400);
  CHECK(status("GET / HTTP/2.0\r\n\r\n") == 505);
  CHECK(status("GET / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n") == 400);
  CHECK(status("GET / HTTP/1.1\r\nA: " + std::string(kMaxRequestHead, 'x')) == 431);
}

TEST_CASE("a chunked body is decoded, its extensions and trailers dropped", "[http_wire]") {
  const std::string in = "5;name=v\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
  for (std::size_t cut = 0; cut < in.size() - 4; ++cut) {
    INFO(cut);
    CHECK(DecodeChunked(std::string_view(in).substr(0, cut), 100).state == ChunkedParse::kIncomplete);
  }
  const ChunkedParse p = DecodeChunked(in, 100);
  REQUIRE(p.state == ChunkedParse::kDone);
  CHECK(p.body == "hello world");
  CHECK(p.consumed == in.size() - 4);
  CHECK(DecodeChunked(in, 10).state == ChunkedParse::kBad);  // over the limit
  CHECK(DecodeChunked("5\r\nhelloXX0\r\n\r\n", 100).state == ChunkedParse::kBad);
  CHECK(DecodeChunked("z\r\n", 100).state == ChunkedParse::kBad);
  CHECK(DecodeChunked("fffffffff\r\n", 100).state == ChunkedParse::kBad);
}

TEST_CASE("an answer carries its length and whether the connection stays", "[http_wire]") {
  CHECK(FormatAnswer(405, "text/plain", "no\n", true, {"Allow: POST"}) ==
        "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
        "Allow: POST\r\nConnection: keep-alive\r\n\r\nno\n");
  CHECK(FormatAnswer(200, "", "", false) == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}
