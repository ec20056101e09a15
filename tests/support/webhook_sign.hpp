// The signature HeadshotPro puts on a webhook delivery (headshotpro.md §3),
// computed by OpenSSL's one-shot HMAC: the tests' own, never the engine's
// code under test (engine/watch/webhook.cpp).
#pragma once

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <stdexcept>
#include <string>

namespace shotsync::testing {

// "sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">".
inline std::string SignWebhook(const std::string& secret, const std::string& timestamp, const std::string& body) {
  const std::string text = timestamp + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac, &len) == nullptr) {
    throw std::runtime_error("HMAC failed");
  }
  std::string out = "sha256=";
  char hex[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(hex, sizeof hex, "%02x", mac[i]);
    out += hex;
  }
  return out;
}

}  // namespace shotsync::testing
