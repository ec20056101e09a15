// A hostile or broken server: redirects to other hosts, huge bodies, invalid
// JSON, wrong content types, answers without ids, absurd sizes. shotsync
// answers each with a clear error and an exit code, never a crash, never a
// token sent elsewhere, and never a photo recorded as uploaded when it is not.
#include <catch2/catch.hpp>

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <functional>
#include <thread>

#include "sync_fixture.hpp"

using shotsync::testing::SyncFixture;

namespace {

// A loopback HTTP server in this process, serving whatever the test sets up.
class Server {
 public:
  explicit Server(const std::function<void(httplib::Server&)>& routes) {
    routes(srv_);
    port_ = srv_.bind_to_any_port("127.0.0.1");
    // Bound already: connections wait in the backlog until the loop accepts them.
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
  }
  ~Server() {
    srv_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server srv_;
  int port_ = 0;
  std::thread thread_;
};

const char* kProjects = R"([{"id":1,"name":"Demo"}])";
const char* kAlbums = R"([{"id":1,"name":"Main"}])";

// A Shootbin that knows project 1 / album 1 and answers uploads with `upload`.
std::function<void(httplib::Server&)> Shootbin(std::function<void(httplib::Response&)> upload,
                                               std::string listing = R"({"data":[],"has_more":false})") {
  return [=](httplib::Server& s) {
    s.Get("/api/projects", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(kProjects, "application/json");
    });
    s.Get("/api/projects/1/albums", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(kAlbums, "application/json");
    });
    s.Get("/api/projects/1/albums/1/photos", [=](const httplib::Request&, httplib::Response& res) {
      res.set_content(listing, "application/json");
    });
    s.Post("/api/projects/1/albums/1/photos",
           [=](const httplib::Request&, httplib::Response& res) { upload(res); });
  };
}

// A profile (photos, config) pointing at `base_url` instead of the emulator.
void PointAt(SyncFixture& f, const std::string& base_url) {
  f.WriteConfig("stall_timeout = 2");
  std::string text;
  {
    std::ifstream in(f.config);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string emu = f.emu->base_url();
  for (std::size_t at = text.find(emu); at != std::string::npos; at = text.find(emu, at + base_url.size())) {
    text.replace(at, emu.size(), base_url);
  }
  std::ofstream(f.config, std::ios::trunc) << text;
}

}  // namespace

TEST_CASE("hostile server: a redirect to another host is not followed, and the token goes nowhere", "[hostile]") {
  std::atomic<int> stolen{0};
  Server thief([&](httplib::Server& s) {
    s.Get(".*", [&](const httplib::Request& req, httplib::Response& res) {
      if (req.has_header("Authorization")) ++stolen;
      res.set_content(kProjects, "application/json");
    });
  });
  Server redirector([&](httplib::Server& s) {
    s.Get("/api/projects", [&](const httplib::Request&, httplib::Response& res) {
      res.set_redirect(thief.url() + "/api/projects", 307);
    });
  });
  SyncFixture f;
  f.MakePhotos(2);
  PointAt(f, redirector.url());
  auto r = f.Cli({"sync"});
  INFO(r.out << r.err);
  CHECK(r.code == 3);  // a redirect is how a Laravel app answers a bad token
  CHECK(r.err.find("HTTP 307") != std::string::npos);
  CHECK(r.err.find("sb-test-token") == std::string::npos);
  CHECK(stolen == 0);
}

TEST_CASE("hostile server: a 64 MB answer is cut off at the body limit with a clear error", "[hostile]") {
  Server big([](httplib::Server& s) {
    s.Get("/api/projects", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(64u << 20, '['), "application/json");
    });
  });
  SyncFixture f;
  f.MakePhotos(1);
  PointAt(f, big.url());
  auto r = f.Cli({"sync"});
  INFO(r.err);
  CHECK(r.code == 1);
  CHECK(r.err.find("listing Shootbin projects") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') <= 2);
}

TEST_CASE("hostile server: invalid JSON and an HTML page get one clear line each", "[hostile]") {
  SECTION("invalid JSON") {
    Server bad([](httplib::Server& s) {
      s.Get("/api/projects", [](const httplib::Request&, httplib::Response& res) {
        res.set_content("{\"data\": [1, 2,", "application/json");
      });
    });
    SyncFixture f;
    f.MakePhotos(1);
    PointAt(f, bad.url());
    auto r = f.Cli({"sync"});
    INFO(r.err);
    CHECK(r.code == 1);
    CHECK(r.err.find("not a JSON array") != std::string::npos);
  }
  SECTION("an HTML login page with status 200") {
    Server html([](httplib::Server& s) {
      s.Get("/api/projects", [](const httplib::Request&, httplib::Response& res) {
        res.set_content("<html><body>Login</body></html>", "text/html");
      });
    });
    SyncFixture f;
    f.MakePhotos(1);
    PointAt(f, html.url());
    auto r = f.Cli({"sync"});
    INFO(r.err);
    CHECK(r.code == 3);
    CHECK(r.err.find("refused the API token") != std::string::npos);
  }
}

TEST_CASE("hostile server: an upload answer without a usable id is never recorded as uploaded", "[hostile]") {
  std::atomic<int> uploads{0};
  Server odd(Shootbin([&](httplib::Response& res) {
    ++uploads;
    res.status = 201;
    res.set_content(R"({"id": -5, "file_size": -1, "original_filename": "../../etc/passwd\u0000x"})",
                    "application/json");
  }));
  SyncFixture f;
  f.MakePhotos(2);
  PointAt(f, odd.url());
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j.at("uploaded") == 0);
  CHECK(j.at("failed") == 2);
  CHECK(j.at("errors").size() == 2);
  for (const auto& failure : j.at("errors")) CHECK(failure.at("path").get<std::string>().find("IMG_") != std::string::npos);
  // Retries are bounded: at most 5 attempts per file in a run.
  CHECK(uploads <= 10);
  // The next run still sees them as not uploaded.
  auto plan = f.Cli({"plan", "--json"});
  CHECK(nlohmann::json::parse(plan.out).at("uploaded") == 2);
}

TEST_CASE("hostile server: absurd sizes and names in a listing do not confuse reconciliation", "[hostile]") {
  // Every upload "fails" after the body went out (500), so each one is
  // reconciled against a listing full of junk that must not match.
  Server junk(Shootbin(
      [](httplib::Response& res) {
        res.status = 500;
        res.set_content("oops", "text/plain");
      },
      R"({"data":[{"id":-1,"original_filename":"d01/IMG_0001.jpg"},)"
      R"({"id":9223372036854775807,"original_filename":"d01/IMG_0001.jpg\u0000","file_size":-7},)"
      R"({"id":"12","original_filename":null},{"id":3,"original_filename":"/abs/IMG_0002.jpg","file_size":1e300},)"
      R"({"id":50,"original_filename":"d01/IMG_0002.jpg","file_size":1},)"
      R"({"id":4,"original_filename":"d01/../d01/IMG_0002.jpg"}],"has_more":false})"));
  SyncFixture f;
  f.MakePhotos(2);
  PointAt(f, junk.url());
  auto r = f.Cli({"sync", "--json"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(nlohmann::json::parse(r.out).at("uploaded") == 0);
}
