// Fuzzes what `watch` does with a webhook delivery from the network
// (include/shotsync/webhook.hpp): any headers and body must give a verdict
// and, for the body, an event or an error value, never a crash, an
// exception or a read past the input.
//
// Input layout: "<timestamp>\n<signature>\n<body>" (missing parts empty).
// The whole input is also read as what arrives on the listener's socket:
// a request head, then a chunked body (watch/http_wire.hpp).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shotsync/webhook.hpp"
#include "watch/http_wire.hpp"

namespace {

void Wire(std::string_view in) {
  namespace w = shotsync::watch;
  const w::HeadParse head = w::ParseRequestHead(in);
  if (head.state == w::HeadParse::kDone) {
    if (head.consumed > in.size() || head.consumed > w::kMaxRequestHead) __builtin_trap();
    if (head.head.path.empty() || head.head.path.front() != '/') __builtin_trap();
    if (head.head.chunked && head.head.content_length != 0) __builtin_trap();  // never both
    in.remove_prefix(head.consumed);
  } else if (head.state == w::HeadParse::kBad && head.error.status < 400) {
    __builtin_trap();
  }
  const w::ChunkedParse body = w::DecodeChunked(in, shotsync::kMaxWebhookBody);
  if (body.state == w::ChunkedParse::kDone && (body.consumed > in.size() || body.body.size() > shotsync::kMaxWebhookBody))
    __builtin_trap();
  (void)w::FormatAnswer(200, "text/plain", body.body, head.head.keep_alive);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  Wire(rest);
  auto line = [&rest]() {
    const auto nl = rest.find('\n');
    const std::string_view head = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    return head;
  };
  const std::string_view timestamp = line();
  const std::string_view signature = line();
  const std::string_view body = rest;
  const auto verdict = shotsync::VerifyWebhookSignature("0123456789abcdef", timestamp, signature, body, 1700000000);
  (void)shotsync::WebhookVerdictName(verdict);
  auto event = shotsync::ParseWebhookEvent(body);
  if (event.ok() && event->dedupe_key.empty()) __builtin_trap();  // every accepted event can be de-duplicated
  return 0;
}
