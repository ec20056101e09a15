// The retry policy (shotsync/retry.hpp): the HTTP status -> Code table, the
// verdict of one attempt (one row per status and per transport error, for a
// read and for a write), the backoff with a fixed random source, and the
// retry loop with a fake clock (nothing sleeps for real).
#include <catch2/catch.hpp>
#include <chrono>
#include <stop_token>
#include <string>
#include <vector>

#include "shotsync/retry.hpp"

using shotsync::AttemptFacts;
using shotsync::Backoff;
using shotsync::BackoffDelay;
using shotsync::BackoffPolicy;
using shotsync::BodyKind;
using shotsync::Classify;
using shotsync::Code;
using shotsync::CodeName;
using shotsync::HttpResponse;
using shotsync::HttpStatusCode;
using shotsync::Status;
using shotsync::Verdict;
using shotsync::VerdictName;
using std::chrono::milliseconds;
namespace policy = shotsync::retry_policy;

TEST_CASE("HttpStatusCode: the shared table", "[retry]") {
  const std::vector<std::pair<long, Code>> rows = {
      {200, Code::kOk},           {201, Code::kOk},         {204, Code::kOk},
      {301, Code::kUnauthenticated}, {302, Code::kUnauthenticated},
      {400, Code::kRejected},     {401, Code::kUnauthenticated}, {403, Code::kForbidden},
      {404, Code::kNotFound},     {405, Code::kServer},     {407, Code::kNetwork},
      {408, Code::kNetwork},      {409, Code::kConflict},   {410, Code::kServer},
      {413, Code::kRejected},     {418, Code::kServer},     {422, Code::kRejected},
      {429, Code::kRateLimited},  {500, Code::kServer},     {502, Code::kServer},
      {503, Code::kServer},       {504, Code::kServer},     {520, Code::kServer},
      {100, Code::kServer},       {600, Code::kServer},
  };
  for (const auto& [http, code] : rows) {
    INFO("HTTP " << http << " -> " << CodeName(HttpStatusCode(http)));
    CHECK(HttpStatusCode(http) == code);
  }
  CHECK(shotsync::HttpStatusListed(409));
  CHECK(shotsync::HttpStatusListed(503));
  CHECK_FALSE(shotsync::HttpStatusListed(418));
  CHECK_FALSE(shotsync::HttpStatusListed(600));
}

TEST_CASE("Classify: one row per HTTP status, for a read and a write", "[retry]") {
  struct Row {
    long http;
    BodyKind body;
    Verdict read;   // idempotent
    Verdict write;  // not idempotent, body sent
  };
  const std::vector<Row> rows = {
      {200, BodyKind::kJson, Verdict::kSuccess, Verdict::kSuccess},
      {201, BodyKind::kOther, Verdict::kSuccess, Verdict::kSuccess},
      {201, BodyKind::kCut, Verdict::kReject, Verdict::kReconcile},  // may be stored
      {200, BodyKind::kHtml, Verdict::kFatal, Verdict::kFatal},      // a login page
      {302, BodyKind::kHtml, Verdict::kFatal, Verdict::kFatal},
      {400, BodyKind::kJson, Verdict::kReject, Verdict::kReject},
      {401, BodyKind::kJson, Verdict::kFatal, Verdict::kFatal},
      {403, BodyKind::kJson, Verdict::kReject, Verdict::kReject},
      {404, BodyKind::kJson, Verdict::kReject, Verdict::kReject},
      {407, BodyKind::kHtml, Verdict::kFatal, Verdict::kFatal},
      {408, BodyKind::kHtml, Verdict::kRetry, Verdict::kRetry},  // not stored
      {409, BodyKind::kJson, Verdict::kReject, Verdict::kRetry},
      {413, BodyKind::kHtml, Verdict::kReject, Verdict::kReject},
      {418, BodyKind::kJson, Verdict::kReject, Verdict::kReconcile},  // unexpected
      {422, BodyKind::kJson, Verdict::kReject, Verdict::kReject},
      {429, BodyKind::kJson, Verdict::kPause, Verdict::kPause},
      {500, BodyKind::kJson, Verdict::kRetry, Verdict::kReconcile},
      {502, BodyKind::kHtml, Verdict::kRetry, Verdict::kReconcile},
      {503, BodyKind::kJson, Verdict::kRetry, Verdict::kReconcile},
      {504, BodyKind::kHtml, Verdict::kRetry, Verdict::kReconcile},
      {522, BodyKind::kHtml, Verdict::kRetry, Verdict::kReconcile},
      {600, BodyKind::kJson, Verdict::kReject, Verdict::kReconcile},
  };
  for (const Row& row : rows) {
    AttemptFacts f{.http = row.http, .body_sent = true, .body = row.body, .idempotent = true};
    INFO("HTTP " << row.http << " read -> " << VerdictName(Classify(f)));
    CHECK(Classify(f) == row.read);
    f.idempotent = false;
    INFO("HTTP " << row.http << " write -> " << VerdictName(Classify(f)));
    CHECK(Classify(f) == row.write);
  }
}

TEST_CASE("Classify: a 429 that is not about the rate is this item's refusal", "[retry]") {
  CHECK(Classify({.http = 429, .rate_limit_429 = false}) == Verdict::kReject);
  CHECK(Classify({.http = 429, .idempotent = true, .rate_limit_429 = false}) == Verdict::kReject);
}

TEST_CASE("Classify: one row per transport error, body sent or not", "[retry]") {
  struct Row {
    Code transport;
    Verdict read;
    Verdict write_unsent;  // the body did not go out completely
    Verdict write_sent;    // it did: the server may have it
  };
  const std::vector<Row> rows = {
      {Code::kNetwork, Verdict::kRetry, Verdict::kRetry, Verdict::kReconcile},
      {Code::kCancelled, Verdict::kStop, Verdict::kStop, Verdict::kReconcile},
      {Code::kInvalidArgument, Verdict::kFatal, Verdict::kFatal, Verdict::kFatal},  // certificate
      {Code::kCorrupt, Verdict::kReject, Verdict::kRetry, Verdict::kReconcile},
      {Code::kIo, Verdict::kReject, Verdict::kRetry, Verdict::kReconcile},
      {Code::kInternal, Verdict::kReject, Verdict::kRetry, Verdict::kReconcile},
  };
  for (const Row& row : rows) {
    INFO("transport " << CodeName(row.transport));
    CHECK(Classify({.transport = row.transport, .idempotent = true}) == row.read);
    CHECK(Classify({.transport = row.transport, .body_sent = true, .idempotent = true}) == row.read);
    CHECK(Classify({.transport = row.transport}) == row.write_unsent);
    CHECK(Classify({.transport = row.transport, .body_sent = true}) == row.write_sent);
    // A transport error after the headers is no answer either.
    CHECK(Classify({.http = 200, .transport = row.transport, .body_sent = true}) == row.write_sent);
  }
}

TEST_CASE("VerdictFor: the Codes the service mappers report", "[retry]") {
  using shotsync::VerdictFor;
  CHECK(VerdictFor(Code::kOk, true, false) == Verdict::kSuccess);
  CHECK(VerdictFor(Code::kServer, true, false) == Verdict::kRetry);  // HeadshotPro success:false
  CHECK(VerdictFor(Code::kCorrupt, true, false) == Verdict::kReject);
  CHECK(VerdictFor(Code::kUnauthenticated, true, false) == Verdict::kFatal);
  CHECK(VerdictFor(Code::kRejected, false, true) == Verdict::kReject);
  CHECK(VerdictFor(Code::kRateLimited, false, true) == Verdict::kPause);
}

TEST_CASE("BackoffDelay: exponential ceilings, jitter, cap", "[retry]") {
  // The ceiling doubles per attempt: u = 1 (just below) reaches it.
  const double top = 0.999999;
  CHECK(BackoffDelay(policy::kShootbinRead, 1, top) == milliseconds(499));
  CHECK(BackoffDelay(policy::kShootbinRead, 2, top) == milliseconds(999));
  CHECK(BackoffDelay(policy::kShootbinRead, 3, top) == milliseconds(1999));
  CHECK(BackoffDelay(policy::kShootbinRead, 4, top) == milliseconds(3999));
  // Full jitter: anywhere from 0.
  CHECK(BackoffDelay(policy::kShootbinRead, 4, 0.0) == milliseconds(0));
  CHECK(BackoffDelay(policy::kShootbinRead, 4, 0.5) == milliseconds(2000));
  // Equal jitter: from half the ceiling.
  CHECK(BackoffDelay(policy::kHeadshotPro, 1, 0.0) == milliseconds(250));
  CHECK(BackoffDelay(policy::kHeadshotPro, 1, 0.5) == milliseconds(375));
  // Capped (and the exponent stops growing after 6).
  CHECK(BackoffDelay(policy::kHeadshotPro, 6, top) == milliseconds(7999));
  CHECK(BackoffDelay(policy::kHeadshotPro, 40, top) == milliseconds(7999));
  CHECK(BackoffDelay(policy::kDownload, 40, 0.0) == milliseconds(5000));
  CHECK(BackoffDelay(policy::kUpload, 40, top) == milliseconds(31999));  // 0.5 x 64
  CHECK(BackoffDelay(policy::kConflict, 40, top) == milliseconds(59999));
  CHECK(BackoffDelay(policy::kForbiddenRecheck, 1, top) == milliseconds(3999));
  CHECK(BackoffDelay(BackoffPolicy{.base_s = 1, .cap_s = 60}, 0, top) == milliseconds(999));
}

TEST_CASE("BackoffDelay: never less than the server's Retry-After", "[retry]") {
  CHECK(BackoffDelay(policy::kShootbinRead, 1, 0.5, 3.0) == milliseconds(3000));
  CHECK(BackoffDelay(policy::kShootbinRead, 1, 0.5, 0.1) == milliseconds(250));  // our wait is longer
  // Above the cap too, up to the longest pause any answer may ask for.
  CHECK(BackoffDelay(policy::kHeadshotPro, 1, 0.5, 120.0) == milliseconds(120000));
  CHECK(BackoffDelay(policy::kHeadshotPro, 1, 0.5, 1e9) ==
        milliseconds(std::int64_t(shotsync::kMaxRateLimitPause * 1000)));
}

TEST_CASE("RetryAfterSeconds: delta seconds, none, garbage", "[retry]") {
  HttpResponse r;
  CHECK_FALSE(shotsync::RetryAfterSeconds(r, 1.7e9).has_value());
  r.headers.emplace("retry-after", "7");
  REQUIRE(shotsync::RetryAfterSeconds(r, 1.7e9).has_value());
  CHECK(*shotsync::RetryAfterSeconds(r, 1.7e9) == Approx(7.0));
  r.headers.clear();
  r.headers.emplace("retry-after", "soon");
  CHECK_FALSE(shotsync::RetryAfterSeconds(r, 1.7e9).has_value());
}

TEST_CASE("Backoff: the injected random source and the attempt bound", "[retry]") {
  std::vector<double> draws = {0.0, 0.5, 0.999999};
  std::size_t next = 0;
  const Backoff b(policy::kShootbinRead, [&] { return draws[next++ % draws.size()]; });
  CHECK(b.Delay(4) == milliseconds(0));
  CHECK(b.Delay(4) == milliseconds(2000));
  CHECK(b.Delay(4) == milliseconds(3999));
  CHECK_FALSE(b.Exhausted(4));
  CHECK(b.Exhausted(5));
  // The default source stays within the ceiling.
  const Backoff seeded(policy::kUpload);
  for (int i = 0; i < 100; ++i) CHECK(seeded.Delay(1) <= milliseconds(1000));
}

namespace {

HttpResponse WithStatus(long status) {
  HttpResponse r;
  r.status = status;
  return r;
}

Verdict ReadVerdict(const HttpResponse& r) {
  return Classify({.http = r.status, .transport = r.transport.code(), .idempotent = true});
}

}  // namespace

TEST_CASE("RetryLoop: retries transient answers with the policy's waits (fake clock)",
          "[retry]") {
  std::vector<milliseconds> waited;
  const auto fake_sleep = [&](milliseconds d) {
    waited.push_back(d);
    return true;
  };
  const Backoff b(policy::kShootbinRead, [] { return 0.5; });

  SECTION("a 503, a network error, then a 200") {
    std::vector<HttpResponse> answers = {WithStatus(503), HttpResponse{}, WithStatus(200)};
    answers[1].transport = Status(Code::kNetwork, "GET x: connection reset");
    std::size_t sent = 0;
    const HttpResponse r = shotsync::RetryLoop([&] { return answers[sent++]; }, ReadVerdict, b, fake_sleep);
    CHECK(r.status == 200);
    CHECK(sent == 3);
    CHECK(waited == std::vector<milliseconds>{milliseconds(250), milliseconds(500)});
  }
  SECTION("gives up after the policy's attempts, with the last answer") {
    int sent = 0;
    const HttpResponse r = shotsync::RetryLoop(
        [&] {
          ++sent;
          return WithStatus(502);
        },
        ReadVerdict, b, fake_sleep);
    CHECK(r.status == 502);
    CHECK(sent == policy::kShootbinRead.max_attempts);
    CHECK(waited.size() == std::size_t(policy::kShootbinRead.max_attempts - 1));
  }
  SECTION("a refusal is not retried") {
    int sent = 0;
    const HttpResponse r = shotsync::RetryLoop(
        [&] {
          ++sent;
          return WithStatus(404);
        },
        ReadVerdict, b, fake_sleep);
    CHECK(r.status == 404);
    CHECK(sent == 1);
    CHECK(waited.empty());
  }
  SECTION("a Retry-After longer than the backoff is waited in full") {
    HttpResponse busy = WithStatus(503);
    busy.headers.emplace("retry-after", "4");
    std::vector<HttpResponse> answers = {busy, WithStatus(200)};
    std::size_t sent = 0;
    (void)shotsync::RetryLoop([&] { return answers[sent++]; }, ReadVerdict, b, fake_sleep);
    REQUIRE(waited.size() == 1);
    CHECK(waited[0] >= milliseconds(3900));
    CHECK(waited[0] <= milliseconds(4000));
  }
  SECTION("a stop during the wait ends the loop") {
    int sent = 0;
    const HttpResponse r = shotsync::RetryLoop(
        [&] {
          ++sent;
          return WithStatus(500);
        },
        ReadVerdict, b, [](milliseconds) { return false; });
    CHECK(r.status == 500);
    CHECK(sent == 1);
  }
}

TEST_CASE("SleepUnlessStopped: a requested stop ends the wait at once", "[retry]") {
  std::stop_source stop;
  stop.request_stop();
  // An hour's wait returns at once (and says it was stopped).
  CHECK_FALSE(shotsync::SleepUnlessStopped(stop.get_token())(milliseconds(3600 * 1000)));
  CHECK(shotsync::SleepUnlessStopped()(milliseconds(0)));
}
