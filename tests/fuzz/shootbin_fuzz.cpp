// Fuzzes every parser of Shootbin answers (include/shotsync/shootbin.hpp):
// CheckAnswer (status, content type, error message extraction), the
// project/album lookup, the created id, photo pages and photo answers.
//
// Input: byte 0 picks the HTTP status, byte 1 the content type, the rest is
// the body. Every parser sees the same body.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.hpp"
#include "shotsync/shootbin.hpp"
#include "shotsync/throttle.hpp"
#include "shotsync/transfer.hpp"

using namespace shotsync;
using fuzz::Violated;

namespace {

constexpr const char* kToken = "sb-fuzz-secret-token";

// CheckAnswer is a member: one client for the whole run (starting a
// TransferEngine per input would be far too slow). Never destroyed.
ShootbinClient& Client() {
  static auto* engine = new TransferEngine(TransferOptions{.max_concurrent = 1, .max_per_host = 1});
  static auto* throttle = new Throttle(Throttle::Options{.key = "shootbin:fuzz", .rpm = 60});
  static auto* client =
      new ShootbinClient(*engine, *throttle, "https://studio.example.com", kToken, "SHOOTBIN_API_TOKEN");
  return *client;
}

long StatusOf(std::uint8_t b) {
  static constexpr long kCommon[] = {200, 201, 204, 301, 302, 400, 401, 403,
                                     404, 409, 413, 422, 429, 500, 502, 503};
  if (b < 128) return kCommon[b % 16];
  return 100 + long(b - 128) * 4;  // 100..608
}

void CheckMessage(const Status& st, const std::string& body) {
  if (st.ok()) return;
  if (st.message().empty()) Violated("empty error message");
  if (!fuzz::Printable(st.message())) Violated("error message is not one printable line", st.message());
  if (body.find(kToken) == std::string::npos && st.message().find(kToken) != std::string::npos) {
    Violated("the token appears in a message", st.message());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)Client();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  HttpResponse r;
  r.status = StatusOf(in.Byte());
  const std::uint8_t ct = in.Byte();
  static const char* kTypes[] = {"application/json", "text/html; charset=UTF-8", "", "application/json; charset=utf-8"};
  if (*kTypes[ct % 4]) r.headers.emplace("content-type", kTypes[ct % 4]);
  r.body = std::string(in.Rest());

  // CheckAnswer: ok exactly for a 2xx that is not an HTML (login) page.
  const Status st = Client().CheckAnswer(r, "fuzzing");
  const bool html = ct % 4 == 1;
  if (st.ok() != (r.status >= 200 && r.status < 300 && !html)) Violated("CheckAnswer ok for a wrong status");
  CheckMessage(st, r.body);
  (void)ShootbinClient::BlocksTargetOnly(st);

  (void)ErrorMessageOf(r.body);

  for (const char* wanted : {"Demo", "1", "Client Smith", ""}) {
    auto id = FindIdByNameOrId(r.body, wanted, "listing");
    CheckMessage(id.status(), r.body);
  }
  CheckMessage(ParseCreatedId(r.body, "creating").status(), r.body);

  auto page = ParsePhotoPage(r.body, "listing photos");
  if (page.ok()) {
    for (const RemotePhoto& p : page->photos) {
      if (p.id <= 0) Violated("photo page with an id <= 0");
    }
    if (page->has_more && page->next_cursor.empty()) Violated("has_more without a cursor");
  } else {
    CheckMessage(page.status(), r.body);
  }

  auto photo = ShootbinClient::ParsePhotoAnswer(r);
  if (photo.ok() && photo->id <= 0) Violated("photo answer with an id <= 0");
  CheckMessage(photo.status(), r.body);
  return 0;
}
