// Fuzzes what `watch` does with a webhook delivery from the network
// (include/shotsync/webhook.hpp): any headers and body must give a verdict
// and, for the body, an event or an error value, never a crash, an
// exception or a read past the input.
//
// Input layout: "<timestamp>\n<signature>\n<body>" (missing parts empty).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shotsync/webhook.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
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
