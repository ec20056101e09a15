// HTTP/2: where the server offers it (ALPN h2 over TLS), a sync's requests
// share one connection as multiplexed streams. The emulator speaks HTTP/1.1
// only, so Debian's nginx terminates TLS and HTTP/2 in front of it: a real
// HTTP/2 server, none of our code on that side.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "ports.hpp"
#include "sync_fixture.hpp"
#include "wait.hpp"

namespace fs = std::filesystem;
using shotsync::testing::ChildProcess;
using shotsync::testing::FreeLoopbackPort;
using shotsync::testing::RunProgram;
using shotsync::testing::StatU;
using shotsync::testing::SyncFixture;
using shotsync::testing::TempDir;
using shotsync::testing::WaitFor;

namespace {

bool Connects(int port) {
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(std::uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(s);
  return ok;
}

// nginx in the foreground, TLS + HTTP/2 on a loopback port, proxying to the
// emulator; its access log gives each request's protocol and connection.
class Http2Proxy {
 public:
  Http2Proxy(int upstream_port) {
    const std::string d = dir_.path().string();
    cert_ = d + "/cert.pem";
    const std::string key = d + "/key.pem";
    auto made = RunProgram({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
                            cert_, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
                           {}, d + "/openssl");
    INFO(made.err);
    REQUIRE(made.code == 0);
    port_ = FreeLoopbackPort();
    std::ofstream(d + "/nginx.conf")
        << "daemon off;\nmaster_process off;\nworker_processes 1;\n"
        << "error_log " << d << "/error.log info;\npid " << d << "/nginx.pid;\n"
        << "events { worker_connections 256; }\n"
        << "http {\n"
        << "  log_format proto '$server_protocol $connection $request_method $uri $status';\n"
        << "  access_log " << d << "/access.log proto;\n"
        << "  client_body_temp_path " << d << "/body;\n  proxy_temp_path " << d << "/proxy;\n"
        << "  fastcgi_temp_path " << d << "/fcgi;\n  uwsgi_temp_path " << d << "/uwsgi;\n"
        << "  scgi_temp_path " << d << "/scgi;\n"
        << "  client_max_body_size 64m;\n"
        << "  server {\n"
        << "    listen 127.0.0.1:" << port_ << " ssl http2;\n"
        << "    ssl_certificate " << cert_ << ";\n    ssl_certificate_key " << key << ";\n"
        << "    location / {\n"
        << "      proxy_pass http://127.0.0.1:" << upstream_port << ";\n"
        << "      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n"
        << "      proxy_set_header Host $http_host;\n"
        << "    }\n  }\n}\n";
    nginx_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/sbin/nginx", "-p", d, "-c", d + "/nginx.conf", "-e", d + "/error.log"},
        std::map<std::string, std::string>{}, d + "/nginx");
    INFO(ErrorLog());
    REQUIRE(WaitFor([&] { return Connects(port_); }));
  }
  ~Http2Proxy() {
    if (nginx_) {
      nginx_->Kill(SIGQUIT);  // graceful: the access log is complete
      (void)nginx_->Wait(std::chrono::seconds(30));
    }
  }

  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  const std::string& cert() const { return cert_; }
  std::vector<std::string> AccessLog() const {
    std::ifstream in(dir_.path() / "access.log");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
  std::string ErrorLog() const {
    std::ifstream in(dir_.path() / "error.log");
    return {std::istreambuf_iterator<char>(in), {}};
  }

 private:
  TempDir dir_;
  std::string cert_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> nginx_;
};

}  // namespace

TEST_CASE("over HTTP/2 a sync's uploads are multiplexed on one connection", "[sync][http2]") {
  SyncFixture f;
  Http2Proxy proxy(f.emu->port());
  f.MakePhotos(24, 1, 8);
  f.WriteConfig("ca_file = \"" + proxy.cert() + "\"");
  {
    std::ifstream in(f.config);
    std::string cfg{std::istreambuf_iterator<char>(in), {}};
    // [shootbin] comes first: its base_url goes through the proxy.
    const std::string plain = "base_url = \"" + f.emu->base_url() + "\"";
    const auto at = cfg.find(plain);
    REQUIRE(at != std::string::npos);
    cfg.replace(at, plain.size(), "base_url = \"" + proxy.url() + "\"");
    std::ofstream(f.config, std::ios::trunc) << cfg;
  }
  auto r = f.Cli({"sync"});
  INFO(r.out << r.err << proxy.ErrorLog());
  REQUIRE(r.code == 0);
  CHECK(StatU(f.emu->Stats(), "uploads") == 24);
  CHECK(f.CompareWithServer() == "");

  // Access log lines are written when each request ends; nginx quits gracefully
  // only in the destructor, so wait until every upload's line is there.
  std::vector<std::string> lines;
  REQUIRE(WaitFor([&] {
    lines = proxy.AccessLog();
    int posts = 0;
    for (const std::string& l : lines) posts += l.find(" POST ") != std::string::npos;
    return posts >= 24;
  }));
  std::set<std::string> connections;
  int uploads = 0;
  for (const std::string& l : lines) {
    INFO(l);
    std::istringstream words(l);
    std::string protocol, connection, method, uri, status;
    words >> protocol >> connection >> method >> uri >> status;
    CHECK(protocol == "HTTP/2.0");
    connections.insert(connection);
    if (method == "POST" && uri.find("/photos") != std::string::npos && status.rfind("2", 0) == 0) ++uploads;
  }
  CHECK(uploads == 24);
  CHECK(connections.size() == 1);
}
