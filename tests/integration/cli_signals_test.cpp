// SIGINT/SIGTERM during a sync: stop cleanly (exit 5), a second signal
// aborts the transfers in flight; either way the same command resumes with
// nothing lost and nothing sent twice.
#include <catch2/catch.hpp>

#include <signal.h>

#include <thread>

#include "sync_fixture.hpp"
#include "wait.hpp"

using shotsync::testing::StatU;
using shotsync::testing::SyncFixture;
using shotsync::testing::WaitFor;

namespace {

// latency_ms per answer keeps each upload in flight a while; the signals are
// sent once the first upload has reached the server.
void InterruptThenResume(const std::vector<int>& signals, int latency_ms) {
  SyncFixture f({"--shootbin-rpm", "1000000", "--latency-ms", std::to_string(latency_ms)});
  f.MakePhotos(40);
  auto sync = f.StartCli({"sync", "-j", "4"});
  const char* kUpload = "POST /api/projects/{id}/albums/{id}/photos";
  f.emu->WaitForStats([&](const nlohmann::json& s) { return s["requests"].value(kUpload, 0) > 0; });
  for (std::size_t i = 0; i < signals.size(); ++i) {
    sync->Kill(signals[i]);
    // A second signal sent before the first was handled would merge with it.
    if (i + 1 < signals.size()) REQUIRE(WaitFor([&] { return sync->Stderr().find("(again to abort)") != std::string::npos; }));
  }
  auto code = sync->Wait(std::chrono::seconds(60));
  INFO(sync->Stderr());
  REQUIRE(code.has_value());
  CHECK(*code == 5);
  CHECK(sync->Stderr().find(signals.size() > 1 ? "aborting" : "stopping after the running transfers") !=
        std::string::npos);
  CHECK(StatU(f.emu->Stats(), "uploads") < 40);  // really interrupted

  f.emu->SetFaults({{"latency_ms", 0}});
  auto again = f.Cli({"sync"});
  INFO(again.out << again.err);
  CHECK(again.code == 0);
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "duplicates") == 0);
  CHECK(StatU(stats, "uploads") == 40);
  CHECK(f.CompareWithServer() == "");
}

}  // namespace

TEST_CASE("SIGINT stops a sync after its running transfers, exit 5, and the same command resumes", "[signals]") {
  InterruptThenResume({SIGINT}, 300);
}

TEST_CASE("SIGTERM (systemd stop) behaves like SIGINT", "[signals]") {
  InterruptThenResume({SIGTERM}, 300);
}

TEST_CASE("a second SIGINT aborts the transfers in flight, still exit 5 and safe to resume", "[signals]") {
  InterruptThenResume({SIGINT, SIGINT}, 1000);
}
