// shotsync watch, end to end: the CLI as a subprocess against the emulator.
// Every wait is on a condition (a photo stored, a file downloaded, a line
// logged); nothing asserts how fast it happened (benchmarks/watch.sh does).
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "jpeg_synth.hpp"
#include "shotsync/fd.hpp"
#include "sync_fixture.hpp"
#include "wait.hpp"

namespace fs = std::filesystem;
using shotsync::testing::SyncFixture;
using shotsync::testing::WaitFor;

namespace {

// 64 hex characters, like the secret HeadshotPro shows once.
const std::string kWebhookSecret = "3f9a1c5e7b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a";

std::string WatchConfig(const std::string& rescan = "off", const std::string& poll = "off") {
  // reconcile_delay first: the fixture adds its default only when absent,
  // and everything after [watch] belongs to that table.
  std::string text = "reconcile_delay = 2\n[watch]\nsettle = \"0.2s\"\npoll_interval = \"";
  text += poll;
  text += "\"\nrescan_interval = \"";
  text += rescan;
  text += "\"\n";
  return text;
}

std::vector<std::uint8_t> Jpeg(int seed, int width = 64) {
  return shotsync::testing::SynthJpeg({.width = width, .height = width * 3 / 4, .seed = std::uint64_t(seed) * 104729});
}

void WritePhoto(const fs::path& p, const std::vector<std::uint8_t>& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::string ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The watcher, started and stopped with SIGTERM (exit 0 asserted).
struct RunningWatch {
  RunningWatch(SyncFixture& f, std::vector<std::string> args = {}, std::map<std::string, std::string> env = {})
      : fixture(f) {
    std::vector<std::string> argv = {SHOTSYNC_CLI_PATH, "--config", f.config.string(), "--log-file",
                                     (f.tmp.path() / "watch.log").string(), "watch"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto e = f.Env();
    for (auto& [k, v] : env) e[k] = v;
    proc = std::make_unique<shotsync::testing::ChildProcess>(argv, e, (f.tmp.path() / "watch").string());
    REQUIRE(WaitFor([&] { return Logged("watch: watching"); }));
  }
  ~RunningWatch() {
    if (!stopped) proc->Kill(SIGKILL);
  }
  bool Logged(const std::string& text) const { return ReadText(fixture.tmp.path() / "watch.log").find(text) != std::string::npos; }
  std::size_t CountLogged(const std::string& text) const {
    const std::string log = ReadText(fixture.tmp.path() / "watch.log");
    std::size_t n = 0;
    for (auto at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
    return n;
  }
  int Stop() {
    proc->Kill(SIGTERM);
    auto code = proc->Wait();
    stopped = true;
    REQUIRE(code.has_value());
    return *code;
  }
  // The listener's address, from the status file the watcher keeps.
  std::string Listen() const {
    auto j = nlohmann::json::parse(ReadText(fixture.state / "watch.json"));
    return j.at("listen").get<std::string>();
  }
  SyncFixture& fixture;
  std::unique_ptr<shotsync::testing::ChildProcess> proc;
  bool stopped = false;
};

bool StoredOnce(const SyncFixture& f, std::size_t count) {
  return f.RemotePhotos().size() == count && f.CompareWithServer().empty();
}

}  // namespace

TEST_CASE("watch: a copied file and a tmp-then-rename export are each uploaded once and complete", "[watch]") {
  SyncFixture f;
  f.WriteConfig(WatchConfig());
  RunningWatch w(f);
  WritePhoto(f.photos / "copied.jpg", Jpeg(1));
  // An export tool's way: write a hidden temporary name, rename into place.
  WritePhoto(f.photos / "exports" / ".IMG_0002.jpg.tmp", Jpeg(2, 256));
  fs::rename(f.photos / "exports" / ".IMG_0002.jpg.tmp", f.photos / "exports" / "IMG_0002.jpg");
  REQUIRE(WaitFor([&] { return StoredOnce(f, 2); }));
  CHECK(w.Stop() == 0);
  // Nothing was sent twice, and a sync afterwards has nothing to do.
  auto r = f.Cli({"--json", "sync"});
  CHECK(r.code == 0);
  CHECK(nlohmann::json::parse(r.out).at("uploaded") == 0);
  CHECK(StoredOnce(f, 2));
}

TEST_CASE("watch: a photo edited in place after its upload is sent once more, as a revision", "[watch]") {
  SyncFixture f;
  f.WriteConfig(WatchConfig());
  RunningWatch w(f);
  WritePhoto(f.photos / "edited.jpg", Jpeg(11));
  REQUIRE(WaitFor([&] { return w.CountLogged("watch: uploaded") == 1; }));
  WritePhoto(f.photos / "edited.jpg", Jpeg(12, 128));  // the editor saves over it
  REQUIRE(WaitFor([&] { return w.CountLogged("watch: revised") == 1; }));
  CHECK(StoredOnce(f, 1));  // one photo, holding the new bytes
  CHECK(shotsync::testing::StatU(f.emu->Stats(), "revisions") == 1);
  CHECK(shotsync::testing::StatU(f.emu->Stats(), "uploads") == 1);
  CHECK(w.Stop() == 0);
}

TEST_CASE("watch: 50 files dropped at once are each uploaded once, within the throttle", "[watch]") {
  SyncFixture f;
  f.WriteConfig(WatchConfig(), /*rpm=*/600);
  RunningWatch w(f);
  for (int i = 0; i < 50; ++i) WritePhoto(f.photos / "batch" / ("IMG_" + std::to_string(1000 + i) + ".jpg"), Jpeg(100 + i));
  REQUIRE(WaitFor([&] { return StoredOnce(f, 50); }, std::chrono::seconds(120)));
  CHECK(shotsync::testing::StatU(f.emu->Stats(), "rate_limited") == 0);
  CHECK(shotsync::testing::StatU(f.emu->Stats(), "duplicates") == 0);
  CHECK(w.Stop() == 0);
}

TEST_CASE("watch: a file written slowly, held open for seconds, is sent once, complete", "[watch]") {
  SyncFixture f;
  f.WriteConfig(WatchConfig());
  RunningWatch w(f);
  const auto bytes = Jpeg(7, 512);
  {
    // Appended in 10 pieces over ~3 s by one writer that keeps the file open:
    // longer than the settle time between pieces is never quiet AND closed.
    std::ofstream out(f.photos / "slow.jpg", std::ios::binary);
    const std::size_t piece = bytes.size() / 10 + 1;
    for (std::size_t at = 0; at < bytes.size(); at += piece) {
      out.write(reinterpret_cast<const char*>(bytes.data() + at), std::streamsize(std::min(piece, bytes.size() - at)));
      out.flush();
      std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the slow writer (the stimulus, not a wait)
    }
  }
  REQUIRE(WaitFor([&] { return StoredOnce(f, 1); }));
  REQUIRE(WaitFor([&] { return w.CountLogged("watch: uploaded") == 1; }));
  CHECK(w.CountLogged("watch: revised") == 0);
  CHECK(w.Stop() == 0);
}

TEST_CASE("watch: beside a sync and a push on the same files, every photo is stored once", "[watch]") {
  SyncFixture f;
  f.WriteConfig(WatchConfig());
  RunningWatch w(f);
  f.MakePhotos(30);
  std::vector<std::string> push = {"push"};
  for (const auto& e : fs::recursive_directory_iterator(f.photos)) {
    if (e.is_regular_file()) push.push_back(e.path().string());
  }
  auto sync = f.StartCli({"sync"});
  auto pushed = f.Cli(push);
  CHECK((pushed.code == 0));
  REQUIRE(sync->Wait().has_value());
  REQUIRE(WaitFor([&] { return StoredOnce(f, 30); }));
  // The watcher's own turn for those files ends too (it finds them sent).
  REQUIRE(WaitFor([&] { return f.emu->WaitIdle().is_object(); }));
  CHECK(w.Stop() == 0);
  CHECK(StoredOnce(f, 30));
}

TEST_CASE("watch: the service down for a while, then back: the queued files go up once", "[watch]") {
  SyncFixture f;
  f.WriteConfig(WatchConfig());
  RunningWatch w(f);
  f.emu->SetFaults({{"rate_5xx", 1.0}});
  WritePhoto(f.photos / "during-outage-1.jpg", Jpeg(21));
  WritePhoto(f.photos / "during-outage-2.jpg", Jpeg(22));
  // The watcher tried, failed, and keeps the files queued.
  REQUIRE(WaitFor([&] { return w.Logged("the files are tried again"); }));
  CHECK(f.RemotePhotos().empty());
  f.emu->SetFaults({{"rate_5xx", 0.0}});
  REQUIRE(WaitFor([&] { return StoredOnce(f, 2); }, std::chrono::seconds(120)));
  CHECK(WaitFor([&] { return w.Logged("the service answers again"); }));
  CHECK(w.Stop() == 0);
}

TEST_CASE("watch: SIGTERM mid-transfer exits 0, and the next run sends the rest once", "[watch]") {
  // Each answer takes 300 ms: the uploads are in the server's hands a while.
  SyncFixture f({"--shootbin-rpm", "1000000", "--latency-ms", "300"});
  f.WriteConfig(WatchConfig());
  RunningWatch w(f);
  for (int i = 0; i < 12; ++i) WritePhoto(f.photos / ("big" + std::to_string(i) + ".jpg"), Jpeg(40 + i, 256));
  f.emu->WaitForStats([](const nlohmann::json& s) { return s.value("in_flight", 0) > 0; });
  CHECK(w.Stop() == 0);
  f.emu->SetFaults({{"latency_ms", 0}});
  auto r = f.Cli({"sync"});
  CHECK(r.code == 0);
  CHECK(StoredOnce(f, 12));
}

TEST_CASE("watch: a root missing at start is said once and watched when it appears, the other roots go on", "[watch]") {
  SyncFixture f;
  const fs::path later = f.tmp.path() / "later";
  f.WriteConfig(WatchConfig());
  {
    std::ofstream out(f.config, std::ios::app);
    out << "[[roots]]\npath = \"" << later.string() << "\"\nproject = \"Demo\"\nalbum = \"Later\"\ncreate = true\n";
  }
  RunningWatch w(f);
  WritePhoto(f.photos / "present.jpg", Jpeg(51));
  REQUIRE(WaitFor([&] { return f.RemotePhotos().size() == 1; }));
  CHECK(w.CountLogged(later.string() + ": No such file") + w.CountLogged(later.string() + ": no such file") == 1);
  fs::create_directories(later);
  REQUIRE(WaitFor([&] { return w.Logged("is back: rescanning"); }));
  WritePhoto(later / "arrived.jpg", Jpeg(52));
  REQUIRE(WaitFor([&] { return w.Logged("watch: uploaded " + (later / "arrived.jpg").string()); }));
  CHECK(w.Stop() == 0);
}

TEST_CASE("watch: SIGHUP reads the config again, a second watcher on the profile is refused, status shows it",
          "[watch]") {
  SyncFixture f;
  const fs::path second = f.tmp.path() / "second";
  fs::create_directories(second);
  f.WriteConfig(WatchConfig());
  RunningWatch w(f);
  auto again = f.Cli({"watch"});
  CHECK(again.code == 4);
  CHECK(again.err.find("another shotsync watch") != std::string::npos);
  auto status = f.Cli({"--json", "status"});
  REQUIRE(status.code == 0);
  auto watcher = nlohmann::json::parse(status.out).at("watcher");
  CHECK(watcher.at("running") == true);
  CHECK(watcher.at("pid") == int(w.proc->pid()));
  // A root added to the config is watched after SIGHUP.
  {
    std::ofstream out(f.config, std::ios::app);
    out << "[[roots]]\npath = \"" << second.string() << "\"\nproject = \"Demo\"\nalbum = \"Second\"\ncreate = true\n";
  }
  w.proc->Kill(SIGHUP);
  REQUIRE(WaitFor([&] { return w.Logged("reload: config read again"); }));
  WritePhoto(second / "new-root.jpg", Jpeg(61));
  REQUIRE(WaitFor([&] { return w.Logged("watch: uploaded " + (second / "new-root.jpg").string()); }));
  // A broken config is refused and the running one stays.
  {
    std::ofstream out(f.config, std::ios::app);
    out << "no_such_key = 1\n";
  }
  w.proc->Kill(SIGHUP);
  REQUIRE(WaitFor([&] { return w.Logged("the running config stays"); }));
  WritePhoto(f.photos / "still-watched.jpg", Jpeg(62));
  REQUIRE(WaitFor([&] { return w.Logged("watch: uploaded " + (f.photos / "still-watched.jpg").string()); }));
  CHECK(w.Stop() == 0);
  f.WriteConfig(WatchConfig());
  status = f.Cli({"--json", "status"});
  CHECK(nlohmann::json::parse(status.out).at("watcher").at("running") == false);
}

TEST_CASE("watch: a signed model.photos_ready webhook downloads that model's photos, forged and replayed ones do not",
          "[watch]") {
  SyncFixture f;
  auto seeded = f.emu->Seed({{"members", 2}, {"photos_per_model", 3}});
  const auto& models = seeded.at("headshotpro").at("models");
  const std::string model = models.at(0).at("id");
  f.WriteConfig(WatchConfig());
  RunningWatch w(f, {"--webhook-listen", "127.0.0.1:0"}, {{"HEADSHOTPRO_WEBHOOK_SECRET", kWebhookSecret}});
  const std::string url = "http://" + w.Listen() + "/webhooks/headshotpro";
  nlohmann::json configure = {{"url", url}, {"secret", kWebhookSecret}};
  f.emu->Admin("POST", "headshotpro/webhook", &configure);
  auto headshots = [&] {
    std::size_t n = 0;
    if (fs::exists(f.tmp.path() / "headshots")) {
      for (const auto& e : fs::recursive_directory_iterator(f.tmp.path() / "headshots")) n += e.is_regular_file();
    }
    return n;
  };
  // Polling is off: nothing arrives without an event.
  CHECK(headshots() == 0);

  nlohmann::json forged = {{"event", "model.photos_ready"}, {"model", model}, {"bad_signature", true}};
  auto sent = f.emu->Admin("POST", "headshotpro/webhook/send", &forged);
  CHECK(sent.dump().find("401") != std::string::npos);
  nlohmann::json stale = {{"event", "model.photos_ready"}, {"model", model}, {"timestamp_offset", -900}};
  sent = f.emu->Admin("POST", "headshotpro/webhook/send", &stale);
  CHECK(sent.dump().find("401") != std::string::npos);
  CHECK(w.CountLogged("watch: pull") == 0);

  nlohmann::json ready = {{"event", "model.photos_ready"}, {"model", model}, {"id", "evt_test-1"}};
  sent = f.emu->Admin("POST", "headshotpro/webhook/send", &ready);
  CHECK(sent.dump().find("200") != std::string::npos);
  REQUIRE(WaitFor([&] { return headshots() == 3; }));
  REQUIRE(WaitFor([&] { return w.CountLogged("watch: pull for model " + model) == 1; }));
  // The same event again (HeadshotPro's retry): acknowledged, no second pull.
  sent = f.emu->Admin("POST", "headshotpro/webhook/send", &ready);
  CHECK(sent.dump().find("200") != std::string::npos);
  // A flood of distinct events for one model: one more pull, not twenty.
  nlohmann::json flood = {{"event", "model.photos_ready"}, {"model", model}, {"repeat", 20}};
  f.emu->Admin("POST", "headshotpro/webhook/send", &flood);
  REQUIRE(WaitFor([&] { return w.CountLogged("watch: pull for model " + model) == 2; }));
  CHECK(headshots() == 3);  // the other member's model was never pulled
  // The emulator's own delivery when the other model gets new photos.
  const std::string other = models.at(1).at("id");
  nlohmann::json more = {{"add_photos", 2}};
  f.emu->Admin("POST", "headshotpro/models/" + other, &more);
  REQUIRE(WaitFor([&] { return headshots() == 3 + 5; }));  // its 3 seeded photos and the 2 new ones
  CHECK(w.Stop() == 0);
  CHECK(w.CountLogged("watch: pull for model " + model) == 2);
  CHECK(w.CountLogged("watch: pull for model " + other) == 1);
  // Nothing of the secret or a signature reached the log.
  const std::string log = ReadText(f.tmp.path() / "watch.log");
  CHECK(log.find(kWebhookSecret) == std::string::npos);
  CHECK(log.find("sha256=") == std::string::npos);
}

TEST_CASE("watch: /metrics and /healthz describe the running watcher, which polls HeadshotPro at start", "[watch]") {
  SyncFixture f;
  f.emu->Seed({{"members", 1}, {"photos_per_model", 4}});
  f.WriteConfig(WatchConfig("off", "1h"));
  RunningWatch w(f, {"--metrics-listen", "127.0.0.1:0"});
  WritePhoto(f.photos / "counted.jpg", Jpeg(71));
  REQUIRE(WaitFor([&] { return StoredOnce(f, 1); }));
  const std::string base = "http://" + w.Listen();
  shotsync::testing::RunResult metrics;
  // Counted once the run that sent it has recorded it (just after the store).
  REQUIRE(WaitFor([&] {
    metrics = shotsync::testing::RunProgram({"/usr/bin/curl", "-fsS", base + "/metrics"}, {}, (f.tmp.path() / "curl1").string());
    return metrics.code == 0 && metrics.out.find("shotsync_uploads_total 1") != std::string::npos;
  }));
  CHECK(metrics.out.find("# TYPE shotsync_queue_depth gauge") != std::string::npos);
  // No webhook: the poll at start fetched the member's headshots.
  REQUIRE(WaitFor([&] {
    metrics = shotsync::testing::RunProgram({"/usr/bin/curl", "-fsS", base + "/metrics"}, {}, (f.tmp.path() / "curl3").string());
    // The timestamp is set last, once the pull is done.
    return metrics.out.find("shotsync_downloads_total 4") != std::string::npos &&
           metrics.out.find("shotsync_last_pull_success_timestamp_seconds 0") == std::string::npos;
  }));
  CHECK(metrics.out.find("shotsync_pulls_total 1") != std::string::npos);
  auto health = shotsync::testing::RunProgram({"/usr/bin/curl", "-fsS", base + "/healthz"}, {}, (f.tmp.path() / "curl2").string());
  CHECK(health.code == 0);
  CHECK(w.Stop() == 0);
}

TEST_CASE("watch: under systemd it says READY=1 once watching and STOPPING=1 on SIGTERM", "[watch]") {
  SyncFixture f;
  f.WriteConfig(WatchConfig());
  const std::string sock_path = (f.tmp.path() / "notify.sock").string();
  shotsync::UniqueFd sock(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  REQUIRE(sock);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(sock_path.size() < sizeof addr.sun_path);
  std::memcpy(addr.sun_path, sock_path.c_str(), sock_path.size() + 1);
  REQUIRE(::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  // The datagrams systemd would get, until one holds `what`.
  std::string seen;
  auto wait_for = [&](const std::string& what) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (seen.find(what) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{sock.get(), POLLIN, 0};
      if (::poll(&p, 1, 1000) == 1) {
        char buf[4096];
        const ssize_t n = ::recv(sock.get(), buf, sizeof buf, 0);
        if (n > 0) seen.append(buf, std::size_t(n)).append("\n");
      }
    }
    return seen.find(what) != std::string::npos;
  };
  RunningWatch w(f, {}, {{"NOTIFY_SOCKET", sock_path}});
  REQUIRE(wait_for("READY=1"));
  CHECK(seen.find("STATUS=watching 1 root(s)") != std::string::npos);
  w.proc->Kill(SIGHUP);
  REQUIRE(wait_for("RELOADING=1"));
  CHECK(w.Stop() == 0);
  REQUIRE(wait_for("STOPPING=1"));
}

TEST_CASE("watch: past the inotify watch limit it names fs.inotify.max_user_watches and rescans instead", "[watch]") {
  // A user namespace of its own has its own limit (/proc/sys/user/max_inotify_watches): 3 watches
  // for a root of 6 folders, without touching the machine's.
  SyncFixture f;
  f.WriteConfig(WatchConfig("10s"));
  for (int i = 0; i < 5; ++i) fs::create_directories(f.photos / ("folder" + std::to_string(i)));
  std::string cmd = "echo 3 > /proc/sys/user/max_inotify_watches && exec \"$0\" \"$@\"";
  std::vector<std::string> argv = {"/usr/bin/unshare", "-Ur", "/bin/sh", "-c", cmd, SHOTSYNC_CLI_PATH, "--config",
                                   f.config.string(), "--log-file", (f.tmp.path() / "watch.log").string(), "watch"};
  shotsync::testing::ChildProcess proc(argv, f.Env(), (f.tmp.path() / "limited").string());
  auto log = [&] { return ReadText(f.tmp.path() / "watch.log"); };
  REQUIRE(WaitFor([&] { return log().find("watch: watching") != std::string::npos; }));
  CHECK(log().find("fs.inotify.max_user_watches") != std::string::npos);
  // Once the start's rescan has ended, a file in a folder without a watch
  // still goes up, with the next periodic rescan.
  std::string last_status;
  const bool rescanned = WaitFor([&] {
    auto st = f.Cli({"--json", "status"});
    last_status = "code " + std::to_string(st.code) + ": " + st.out + st.err;
    if (st.code != 0) return false;
    const auto status = nlohmann::json::parse(st.out);  // alive through the loop
    for (const auto& r : status.at("runs")) {
      if (r.at("command") == "watch" && !r.at("exit_code").is_null()) return true;
    }
    return false;
  });
  INFO(last_status);
  REQUIRE(rescanned);
  // One photo per folder: the watches went to the root and two folders
  // (readdir's order), so at least three of them have none.
  for (int i = 0; i < 5; ++i) WritePhoto(f.photos / ("folder" + std::to_string(i)) / "photo.jpg", Jpeg(81 + i));
  REQUIRE(WaitFor([&] { return StoredOnce(f, 5); }, std::chrono::seconds(120)));
  CHECK(log().find("watch: rescan (periodic)") != std::string::npos);
  proc.Kill(SIGTERM);
  CHECK(proc.Wait() == 0);
  // Said once, not once per folder or per rescan.
  const std::string text = log();
  std::size_t n = 0;
  for (auto at = text.find("watch limit is reached"); at != std::string::npos; at = text.find("watch limit is reached", at + 1)) ++n;
  INFO(text);
  CHECK(n == 1);
}
