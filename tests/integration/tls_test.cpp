// TLS: certificate checks are always on. A server with a self-signed
// certificate is refused with a clear message, and accepted only when its
// CA is named explicitly (--ca-file, or ca_file in the config).
#include <catch2/catch.hpp>

#include "sync_fixture.hpp"

using shotsync::testing::RunProgram;
using shotsync::testing::SyncFixture;
using shotsync::testing::TempDir;

namespace {

// A self-signed certificate for 127.0.0.1, made with the openssl tool.
struct SelfSigned {
  TempDir dir;
  std::string cert = (dir.path() / "cert.pem").string();
  std::string key = (dir.path() / "key.pem").string();
  SelfSigned() {
    auto r = RunProgram({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
                         cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
                        {}, (dir.path() / "openssl").string());
    INFO(r.err);
    REQUIRE(r.code == 0);
  }
};

}  // namespace

TEST_CASE("TLS: a self-signed server is refused by default and accepted only with --ca-file", "[tls]") {
  SelfSigned tls;
  SyncFixture f({"--shootbin-rpm", "1000000", "--tls-cert", tls.cert, "--tls-key", tls.key});
  REQUIRE(f.emu->base_url().rfind("https://", 0) == 0);
  f.MakePhotos(3);

  auto refused = f.Cli({"sync"});
  INFO(refused.out << refused.err);
  CHECK(refused.code == 2);  // a setup problem: nothing is retried
  CHECK(refused.err.find("certificate") != std::string::npos);
  CHECK(refused.err.find("--ca-file") != std::string::npos);
  CHECK(refused.err.find("sb-test-token") == std::string::npos);

  auto accepted = f.Cli({"sync", "--json", "--ca-file", tls.cert});
  INFO(accepted.out << accepted.err);
  REQUIRE(accepted.code == 0);
  CHECK(nlohmann::json::parse(accepted.out).at("uploaded") == 3);

  SECTION("ca_file in the config works the same way") {
    f.WriteConfig("ca_file = \"" + tls.cert + "\"");
    auto again = f.Cli({"sync", "--json"});
    INFO(again.out << again.err);
    CHECK(again.code == 0);
    CHECK(nlohmann::json::parse(again.out).at("skipped") == 3);
  }
}
