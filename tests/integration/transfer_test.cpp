// TransferEngine mechanics against in-process servers: a cpp-httplib server
// for ordinary HTTP, and a raw TCP server for answers httplib cannot give
// (dropped connections, a wrong Content-Range).
#include "shotsync/transfer.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "buckets.hpp"
#include "wait.hpp"
#include "shotsync/throttle.hpp"
#include "temp_dir.hpp"

using shotsync::Code;
using shotsync::HttpRequest;
using shotsync::HttpResponse;
using shotsync::MimePart;
using shotsync::Throttle;
using shotsync::TransferEngine;
using shotsync::TransferOptions;
using shotsync::testing::TempDir;
using shotsync::testing::ReadFileText;
using SteadyClock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

double Since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

// An httplib server on 127.0.0.1:<any port>, running until destroyed.
// httplib listens with a backlog of 5: eight clients connecting at once
// overflow the accept queue on a busy machine and the kernel's SYN-ACK
// retransmission adds a full second. Calling listen() again on the bound
// socket (found by its port) raises the backlog.
void WidenBacklog(int port) {
  for (int fd = 0; fd < 1024; ++fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    int listening = 0;
    socklen_t optlen = sizeof listening;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 || a.sin_family != AF_INET ||
        ntohs(a.sin_port) != port) {
      continue;
    }
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) == 0 && listening) {
      ::listen(fd, 512);
      return;
    }
  }
}

class HttpServer {
 public:
  HttpServer() {
    svr.new_task_queue = [] { return new httplib::ThreadPool(24); };
    svr.set_keep_alive_max_count(1000000);
    svr.set_tcp_nodelay(
        true);  // else Nagle + delayed ACKs cap loopback at ~25 requests/s per connection
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response&) {
      std::lock_guard lock(mu_);
      ports_.insert(req.remote_port);
      ++requests_;
      return httplib::Server::HandlerResponse::Unhandled;
    });
  }
  ~HttpServer() {
    stopping = true;
    svr.stop();
    if (thread_.joinable()) thread_.join();
  }
  void Start() {
    port_ = svr.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    WidenBacklog(port_);
    thread_ = std::thread([this] { svr.listen_after_bind(); });
    // stop() before the listener runs would be lost and the join would hang.
    while (!svr.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::size_t connections() {
    std::lock_guard lock(mu_);
    return ports_.size();
  }
  int requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  void ResetStats() {
    std::lock_guard lock(mu_);
    ports_.clear();
    requests_ = 0;
  }
  // Sleeps up to `d`, less when the server stops.
  void Nap(std::chrono::milliseconds d) {
    const auto end = SteadyClock::now() + d;
    while (!stopping && SteadyClock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  httplib::Server svr;
  std::atomic<bool> stopping{false};

 private:
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::set<int> ports_;
  int requests_ = 0;
};

// A raw TCP server: each accepted connection is handed to `handler` (on the
// server thread, one at a time) and closed afterwards.
class RawServer {
 public:
  explicit RawServer(std::function<void(int fd)> handler) : handler_(std::move(handler)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~RawServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  // Reads one request: returns the head; `body_read` gets the bytes of body
  // read, up to `max_body` (the rest is left unread).
  static std::string ReadRequest(int fd, std::size_t max_body, std::size_t* body_read) {
    std::string data;
    char buf[65536];
    std::size_t head_end = std::string::npos;
    while (head_end == std::string::npos) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return data;
      data.append(buf, std::size_t(n));
      head_end = data.find("\r\n\r\n");
    }
    std::string head = data.substr(0, head_end + 4);
    std::size_t length = 0;
    std::string lower = head;
    for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (auto p = lower.find("content-length:"); p != std::string::npos)
      length = std::stoul(lower.substr(p + 15));
    std::size_t have = data.size() - head.size();
    const std::size_t want = std::min(length, max_body);
    while (have < want) {
      const ssize_t n = ::recv(fd, buf, std::min(sizeof buf, want - have), 0);
      if (n <= 0) break;
      have += std::size_t(n);
    }
    if (body_read) *body_read = have;
    return head;
  }
  static void SendAll(int fd, const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
      const ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += std::size_t(n);
    }
  }
  // Close with a RST rather than a FIN.
  static void Reset(int fd) {
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      handler_(c);
      ::close(c);
    }
  }
  std::function<void(int)> handler_;
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Counts callbacks and waits for a number of them.
class Waiter {
 public:
  void Add(HttpResponse&& r) {
    std::lock_guard lock(mu_);
    responses.push_back(std::move(r));
    cv_.notify_all();
  }
  bool WaitFor(std::size_t n, std::chrono::seconds limit = std::chrono::seconds(60)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return responses.size() >= n; });
  }
  std::size_t size() {
    std::lock_guard lock(mu_);
    return responses.size();
  }
  std::vector<HttpResponse> responses;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

std::string Pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = char(x & 0xff);
  }
  return s;
}

void WriteFile(const fs::path& p, std::string_view data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(data.data(), std::streamsize(data.size()));
}

long RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

std::uint64_t Fnv(std::uint64_t h, const char* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 1099511628211ull;
  return h;
}

HttpRequest Get(std::string url) {
  HttpRequest r;
  r.url = std::move(url);
  return r;
}

}  // namespace

TEST_CASE("Transfer: methods, bodies and headers", "[transfer]") {
  HttpServer server;
  std::mutex mu;
  std::string seen_auth, seen_agent;
  bool seen_expect = false;
  server.svr.Get("/hello", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    seen_auth = req.get_header_value("Authorization");
    seen_agent = req.get_header_value("User-Agent");
    seen_expect = seen_expect || req.has_header("Expect");
    res.set_header("X-Custom-Thing", "Value 1");
    res.set_header("X-RateLimit-Remaining", "59");
    res.set_content("hello", "text/plain");
  });
  auto echo = [&](const httplib::Request& req, httplib::Response& res) {
    res.set_header("X-Method", req.method);
    res.set_content(req.body, "application/json");
  };
  server.svr.Post("/echo", echo);
  server.svr.Put("/echo", echo);
  server.svr.Patch("/echo", echo);
  server.svr.Delete("/echo", echo);
  server.svr.Get("/empty",
                 [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  server.Start();

  TransferEngine engine(TransferOptions{});
  HttpRequest r = Get(server.url("/hello"));
  r.headers = {"Authorization: Bearer t0k3n", "Accept: application/json"};
  HttpResponse a = engine.Perform(r);
  REQUIRE(a.transport.ok());
  CHECK(a.status == 200);
  CHECK(a.body == "hello");
  CHECK(a.Header("x-custom-thing") == "Value 1");
  CHECK(a.Header("x-ratelimit-remaining") == "59");
  CHECK(a.Header("content-type").rfind("text/plain", 0) == 0);
  CHECK(a.Header("no-such-header").empty());
  CHECK(a.request_sent);
  CHECK(a.bytes_received == 5);
  {
    std::lock_guard lock(mu);
    CHECK(seen_auth == "Bearer t0k3n");
    CHECK(seen_agent.rfind("shotsync/", 0) == 0);
  }

  for (const char* method : {"POST", "PUT", "PATCH", "DELETE"}) {
    HttpRequest p;
    p.method = method;
    p.url = server.url("/echo");
    p.headers = {"Content-Type: application/json"};
    p.body = std::string(R"({"name":"x","pad":")") + std::string(3000, 'p') + "\"}";
    HttpResponse e = engine.Perform(p);
    INFO(method);
    REQUIRE(e.transport.ok());
    CHECK(e.status == 200);
    CHECK(e.Header("x-method") == method);
    CHECK(e.body == p.body);
    CHECK(e.request_sent);
    CHECK(e.bytes_sent == p.body.size());
  }
  HttpRequest empty_post;
  empty_post.method = "POST";
  empty_post.url = server.url("/echo");
  HttpResponse ep = engine.Perform(empty_post);
  CHECK(ep.status == 200);
  CHECK(ep.body.empty());

  HttpResponse e204 = engine.Perform(Get(server.url("/empty")));
  CHECK(e204.status == 204);
  CHECK(e204.body.empty());
  std::lock_guard lock(mu);
  CHECK_FALSE(seen_expect);
}

TEST_CASE("Transfer: keep-alive reuses one connection", "[transfer]") {
  HttpServer server;
  server.svr.Get("/hello", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("hi", "text/plain");
  });
  server.Start();
  TransferEngine engine(TransferOptions{.max_concurrent = 4, .max_per_host = 4});
  for (int i = 0; i < 30; ++i) {
    HttpResponse r = engine.Perform(Get(server.url("/hello")));
    REQUIRE(r.status == 200);
  }
  CHECK(server.requests() == 30);
  CHECK(server.connections() == 1);
}

TEST_CASE("Transfer: 2000 concurrent small GETs, connections capped per host", "[transfer]") {
  HttpServer server;
  server.svr.Get("/small", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("ok " + req.get_param_value("i"), "text/plain");
  });
  server.Start();
  TransferEngine engine(TransferOptions{.max_concurrent = 8, .max_per_host = 8});
  Waiter w;
  const auto t0 = SteadyClock::now();
  constexpr int kN = 2000;
  for (int i = 0; i < kN; ++i) {
    engine.Submit(Get(server.url("/small?i=" + std::to_string(i))),
                  [&w](HttpResponse&& r) { w.Add(std::move(r)); });
  }
  REQUIRE(w.WaitFor(kN));
  const double secs = Since(t0);
  int ok = 0;
  for (const auto& r : w.responses) ok += r.status == 200 && r.body.rfind("ok ", 0) == 0;
  CHECK(ok == kN);
  const auto c = engine.counters();
  CHECK(c.started == kN);
  CHECK(c.finished == kN);
  CHECK(c.active == 0);
  CHECK(c.queued == 0);
  CHECK(c.bytes_received >= std::uint64_t(kN) * 4);
  CHECK(server.connections() <= 8);
  std::cout << "transfer: " << kN << " GETs, max_concurrent 8: " << int(kN / secs)
            << " requests/s\n";
}

TEST_CASE("Transfer: 50 MB multipart upload streams from disk with flat RSS", "[transfer]") {
  TempDir dir;
  const fs::path file = dir.path() / "IMG 1.jpg";
  constexpr std::size_t kSize = 50u << 20;
  std::uint64_t expect_hash = 1469598103934665603ull;
  {
    std::ofstream out(file, std::ios::binary);
    for (unsigned i = 0; i < 50; ++i) {
      const std::string chunk = Pattern(1 << 20, i + 1);
      expect_hash = Fnv(expect_hash, chunk.data(), chunk.size());
      out.write(chunk.data(), std::streamsize(chunk.size()));
    }
  }
  HttpServer server;
  std::mutex mu;
  std::map<std::string, std::string> fields, filenames, types;
  std::size_t photo_bytes = 0;
  std::uint64_t photo_hash = 1469598103934665603ull;
  bool saw_expect = false;
  server.svr.Post("/upload", [&](const httplib::Request& req, httplib::Response& res,
                                 const httplib::ContentReader& reader) {
    std::string current;
    std::lock_guard lock(mu);
    saw_expect = req.has_header("Expect");
    reader(
        [&](const httplib::MultipartFormData& part) {
          current = part.name;
          filenames[part.name] = part.filename;
          types[part.name] = part.content_type;
          return true;
        },
        [&](const char* data, std::size_t n) {
          if (current == "photo") {
            photo_bytes += n;
            photo_hash = Fnv(photo_hash, data, n);
          } else {
            fields[current].append(data, n);
          }
          return true;
        });
    res.status = 201;
    res.set_content(R"({"id":1})", "application/json");
  });
  server.Start();

  TransferEngine engine(TransferOptions{});
  HttpRequest r;
  r.method = "POST";
  r.url = server.url("/upload");
  r.mime = {MimePart{.name = "title", .value = "IMG 1.jpg"},
            MimePart{.name = "client_original_filename", .value = "2024/IMG 1.jpg"},
            MimePart{.name = "photo",
                     .file_path = file.string(),
                     .filename = "custom.jpg",
                     .content_type = "image/jpeg"}};

  // Sample RSS while the upload runs.
  const long base_kb = RssKb();
  std::atomic<bool> done{false};
  std::atomic<long> peak_kb{base_kb};
  std::thread sampler([&] {
    while (!done) {
      peak_kb = std::max(peak_kb.load(), RssKb());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  HttpResponse a = engine.Perform(r);
  done = true;
  sampler.join();

  REQUIRE(a.transport.ok());
  CHECK(a.status == 201);
  CHECK(a.body == R"({"id":1})");
  CHECK(a.request_sent);
  CHECK(a.bytes_sent > kSize);
  CHECK(engine.counters().bytes_sent >= kSize);
  std::unique_lock lock(mu);
  CHECK(photo_bytes == kSize);
  CHECK(photo_hash == expect_hash);
  CHECK(fields["title"] == "IMG 1.jpg");
  CHECK(fields["client_original_filename"] == "2024/IMG 1.jpg");
  CHECK(filenames["photo"] == "custom.jpg");
  CHECK(types["photo"] == "image/jpeg");
  CHECK_FALSE(saw_expect);
  const long grown_kb = peak_kb - base_kb;
  INFO("RSS grew by " << grown_kb << " KB during a 50 MB upload");
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  CHECK(grown_kb < 48 * 1024);  // shadow memory grows with every byte touched
#else
  CHECK(grown_kb < 16 * 1024);
#endif

  lock.unlock();

  // Default filename: the file's base name.
  r.mime[2].filename.clear();
  HttpResponse b = engine.Perform(r);
  INFO(b.transport.ToString());
  CHECK(b.status == 201);
  lock.lock();
  CHECK(filenames["photo"] == "IMG 1.jpg");
}

TEST_CASE("Transfer: an unreadable upload file fails before sending", "[transfer]") {
  HttpServer server;
  server.svr.Post("/upload",
                  [](const httplib::Request&, httplib::Response& res) { res.status = 201; });
  server.Start();
  TransferEngine engine(TransferOptions{});
  HttpRequest r;
  r.method = "POST";
  r.url = server.url("/upload");
  r.mime = {MimePart{.name = "photo", .file_path = "/nonexistent/dir/photo.jpg"}};
  HttpResponse a = engine.Perform(r);
  CHECK(a.transport.code() == Code::kIo);
  CHECK(a.transport.message().find("/nonexistent/dir/photo.jpg") != std::string::npos);
  CHECK(a.status == 0);
  CHECK_FALSE(a.request_sent);
  CHECK(server.requests() == 0);
}

TEST_CASE("Transfer: downloads to a file, resume with Range, full answer rewrites", "[transfer]") {
  TempDir dir;
  const std::string content = Pattern(5u << 20, 99);
  constexpr std::uint64_t kResume = 2u << 20;
  HttpServer server;
  std::mutex mu;
  std::string last_range;
  server.svr.Get("/file", [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard lock(mu);
      last_range = req.get_header_value("Range");
    }
    res.set_content(content, "application/octet-stream");  // httplib answers ranges itself (206)
  });
  server.Start();
  // httplib applies ranges to every answer: these two come from a raw server.
  RawServer raw([&](int fd) {
    const std::string head = RawServer::ReadRequest(fd, 0, nullptr);
    if (head.find("GET /norange") == 0) {
      RawServer::SendAll(fd,
                         "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(content.size()) +
                             "\r\nConnection: close\r\n\r\n" + content);
    } else {
      RawServer::SendAll(fd,
                         "HTTP/1.1 403 Forbidden\r\nContent-Length: 19\r\nConnection: close\r\n\r\n"
                         "Request has expired");
    }
  });
  TransferEngine engine(TransferOptions{});
  const fs::path path = dir.path() / "photo.jpg.part";

  SECTION("fresh download truncates an existing file") {
    WriteFile(path, std::string(8u << 20, 'x'));
    HttpRequest r = Get(server.url("/file"));
    r.download_path = path.string();
    HttpResponse a = engine.Perform(r);
    REQUIRE(a.transport.ok());
    CHECK(a.status == 200);
    CHECK(a.body.empty());
    CHECK(a.bytes_received == content.size());
    CHECK((ReadFileText(path) == content));
    std::lock_guard lock(mu);
    CHECK(last_range.empty());
  }
  SECTION("resume asks for the rest and appends it") {
    WriteFile(path, content.substr(0, kResume) + "garbage past the resume point");
    HttpRequest r = Get(server.url("/file"));
    r.download_path = path.string();
    r.resume_from = kResume;
    HttpResponse a = engine.Perform(r);
    REQUIRE(a.transport.ok());
    CHECK(a.status == 206);
    CHECK(a.bytes_received == content.size() - kResume);
    CHECK((ReadFileText(path) == content));
    std::lock_guard lock(mu);
    CHECK(last_range == "bytes=" + std::to_string(kResume) + "-");
  }
  SECTION("a 200 answer to a range request rewrites the file from byte 0") {
    WriteFile(path, std::string(kResume, 'z'));
    HttpRequest r = Get(raw.url("/norange"));
    r.download_path = path.string();
    r.resume_from = kResume;
    HttpResponse a = engine.Perform(r);
    REQUIRE(a.transport.ok());
    CHECK(a.status == 200);
    CHECK(a.bytes_received == content.size());
    CHECK((ReadFileText(path) == content));
  }
  SECTION("an error answer stays in memory, not in the file") {
    WriteFile(path, content.substr(0, kResume));
    HttpRequest r = Get(raw.url("/gone"));
    r.download_path = path.string();
    r.resume_from = kResume;
    HttpResponse a = engine.Perform(r);
    REQUIRE(a.transport.ok());
    CHECK(a.status == 403);
    CHECK(a.body == "Request has expired");
    CHECK((ReadFileText(path) == content.substr(0, kResume)));
  }
  SECTION("resuming past the end of the file is refused before sending") {
    WriteFile(path, "short");
    server.ResetStats();
    HttpRequest r = Get(server.url("/file"));
    r.download_path = path.string();
    r.resume_from = kResume;
    HttpResponse a = engine.Perform(r);
    CHECK(a.transport.code() == Code::kInvalidArgument);
    CHECK(a.transport.message().find(path.string()) != std::string::npos);
    CHECK(server.requests() == 0);
  }
  SECTION("a write error (disk full) names the file") {
    HttpRequest r = Get(server.url("/file"));
    r.download_path = "/dev/full";
    HttpResponse a = engine.Perform(r);
    CHECK(a.transport.code() == Code::kIo);
    CHECK(a.transport.message().find("/dev/full") != std::string::npos);
    CHECK(a.transport.message().find("No space left") != std::string::npos);
  }
  SECTION("a directory that does not exist names the file") {
    HttpRequest r = Get(server.url("/file"));
    r.download_path = (dir.path() / "no" / "such" / "x.part").string();
    HttpResponse a = engine.Perform(r);
    CHECK(a.transport.code() == Code::kIo);
    CHECK(a.transport.message().find("x.part") != std::string::npos);
  }
}

TEST_CASE("Transfer: a 206 for the wrong range is refused", "[transfer]") {
  TempDir dir;
  RawServer raw([](int fd) {
    RawServer::ReadRequest(fd, 0, nullptr);
    RawServer::SendAll(fd,
                       "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/20\r\n"
                       "Content-Length: 10\r\nConnection: close\r\n\r\n0123456789");
  });
  const fs::path path = dir.path() / "x.part";
  WriteFile(path, "abcdefghij");
  TransferEngine engine(TransferOptions{});
  HttpRequest r = Get(raw.url("/x"));
  r.download_path = path.string();
  r.resume_from = 10;
  HttpResponse a = engine.Perform(r);
  CHECK(a.transport.code() == Code::kCorrupt);
  CHECK(a.transport.message().find("wrong range") != std::string::npos);
  CHECK(ReadFileText(path) == "abcdefghij");
}

TEST_CASE("Transfer: timeouts and refused connections", "[transfer]") {
  HttpServer server;
  server.svr.Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    server.Nap(std::chrono::milliseconds(3000));
    res.set_content("late", "text/plain");
  });
  server.svr.Get("/trickle", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/plain", [&](std::size_t, httplib::DataSink& sink) {
      server.Nap(std::chrono::milliseconds(200));
      if (server.stopping) return false;
      return sink.write("x", 1);
    });
  });
  server.svr.Get("/steady", [&](const httplib::Request&, httplib::Response& res) {
    auto sent = std::make_shared<int>(0);
    res.set_chunked_content_provider("text/plain", [&, sent](std::size_t, httplib::DataSink& sink) {
      if (*sent == 15) {  // 15 x 400 bytes at 2 KB/s: slow, but never stalled
        sink.done();
        return true;
      }
      server.Nap(std::chrono::milliseconds(200));
      if (server.stopping) return false;
      ++*sent;
      return sink.write(std::string(400, 'x').data(), 400);
    });
  });
  server.Start();
  TransferEngine engine(TransferOptions{});

  SECTION("a transfer still making progress is never cut by a whole-transfer limit (there is none by default)") {
    CHECK(HttpRequest{}.timeout == std::chrono::seconds(0));
    HttpRequest r = Get(server.url("/steady"));
    r.low_speed_time = std::chrono::seconds(2);  // shorter than the transfer: progress is what counts
    HttpResponse a = engine.Perform(r);
    INFO(a.transport.message());
    CHECK(a.transport.ok());
    CHECK(a.body.size() == 6000);
  }
  SECTION("whole-transfer timeout") {
    HttpRequest r = Get(server.url("/slow"));
    r.timeout = std::chrono::seconds(1);
    const auto t0 = SteadyClock::now();
    HttpResponse a = engine.Perform(r);
    CHECK(Since(t0) >= 0.9);  // the server answers after 3 s: "timed out" is the proof
    CHECK(a.transport.code() == Code::kNetwork);
    CHECK(a.transport.message().find("timed out") != std::string::npos);
    CHECK(a.status == 0);
    CHECK(a.request_sent);  // the GET went out: the answer is what is missing
  }
  SECTION("low-speed abort") {
    HttpRequest r = Get(server.url("/trickle"));
    r.low_speed_time = std::chrono::seconds(1);
    const auto t0 = SteadyClock::now();
    HttpResponse a = engine.Perform(r);
    CHECK(Since(t0) >= 0.9);
    CHECK(a.transport.code() == Code::kNetwork);
    CHECK(a.transport.message().find("too slow") != std::string::npos);
  }
  SECTION("refused connection: no answer, nothing sent, no secret in the message") {
    int port = 0;
    {
      RawServer closed([](int) {});
      port = std::stoi(closed.url("").substr(17));
    }
    HttpRequest r = Get("http://user:pw@127.0.0.1:" + std::to_string(port) +
                        "/photos?signature=SECRETSIG#frag");
    r.headers = {"Authorization: Bearer SECRETTOKEN"};
    HttpResponse a = engine.Perform(r);
    CHECK(a.transport.code() == Code::kNetwork);
    CHECK(a.status == 0);
    CHECK_FALSE(a.request_sent);
    const std::string& m = a.transport.message();
    CHECK(m.find("GET http://127.0.0.1:" + std::to_string(port) + "/photos") != std::string::npos);
    CHECK(m.find("SECRET") == std::string::npos);
    CHECK(m.find("pw") == std::string::npos);
  }
  SECTION("only http and https") {
    for (const char* url : {"file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/"}) {
      HttpResponse a = engine.Perform(Get(url));
      INFO(url << ": " << a.transport.message());
      CHECK(a.transport.code() == Code::kNetwork);
      CHECK(a.body.empty());
    }
  }
}

TEST_CASE("Transfer: redirects are never followed", "[transfer]") {
  HttpServer server;
  std::atomic<int> target_hits{0};
  server.svr.Get("/redirect", [&](const httplib::Request&, httplib::Response& res) {
    res.set_redirect(server.url("/target"));
  });
  server.svr.Get("/target", [&](const httplib::Request&, httplib::Response& res) {
    ++target_hits;
    res.set_content("followed", "text/plain");
  });
  server.Start();
  TransferEngine engine(TransferOptions{});
  HttpRequest r = Get(server.url("/redirect"));
  r.headers = {"Authorization: Bearer t"};
  HttpResponse a = engine.Perform(r);
  REQUIRE(a.transport.ok());
  CHECK(a.status == 302);
  CHECK(a.Header("location") == server.url("/target"));
  CHECK(target_hits == 0);
}

TEST_CASE("Transfer: request_sent tells ambiguous failures from clean ones", "[transfer]") {
  TransferEngine engine(TransferOptions{});
  SECTION("whole body read, then the connection closes without an answer") {
    RawServer raw([](int fd) { RawServer::ReadRequest(fd, SIZE_MAX, nullptr); });
    HttpRequest r;
    r.method = "POST";
    r.url = raw.url("/upload");
    r.body = Pattern(100000, 3);
    HttpResponse a = engine.Perform(r);
    CHECK(a.transport.code() == Code::kNetwork);
    CHECK(a.status == 0);
    CHECK(a.request_sent);
    CHECK(a.bytes_sent == r.body.size());
  }
  SECTION("multipart body read, then no answer") {
    TempDir dir;
    WriteFile(dir.path() / "p.jpg", Pattern(300000, 4));
    RawServer raw([](int fd) { RawServer::ReadRequest(fd, SIZE_MAX, nullptr); });
    HttpRequest r;
    r.method = "POST";
    r.url = raw.url("/upload");
    r.mime = {MimePart{.name = "title", .value = "p"},
              MimePart{.name = "photo", .file_path = (dir.path() / "p.jpg").string()}};
    HttpResponse a = engine.Perform(r);
    CHECK(a.transport.code() == Code::kNetwork);
    CHECK(a.request_sent);
  }
  SECTION("connection reset after the headers: the body did not go out") {
    RawServer raw([](int fd) {
      RawServer::ReadRequest(fd, 1000, nullptr);
      RawServer::Reset(fd);
    });
    HttpRequest r;
    r.method = "POST";
    r.url = raw.url("/upload");
    r.body = Pattern(32u << 20, 5);
    HttpResponse a = engine.Perform(r);
    CHECK(a.transport.code() == Code::kNetwork);
    CHECK(a.status == 0);
    CHECK_FALSE(a.request_sent);
    CHECK(a.bytes_sent < r.body.size());
  }
  SECTION("an early answer before the body was read") {
    RawServer raw([](int fd) {
      RawServer::ReadRequest(fd, 0, nullptr);
      RawServer::SendAll(
          fd, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      ::shutdown(fd, SHUT_WR);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      RawServer::Reset(fd);
    });
    HttpRequest r;
    r.method = "POST";
    r.url = raw.url("/upload");
    r.body = Pattern(32u << 20, 6);
    HttpResponse a = engine.Perform(r);
    // curl reports the answer (413) or the reset, depending on timing; either
    // way the whole body was not sent.
    CHECK_FALSE(a.request_sent);
    if (a.transport.ok()) CHECK(a.status == 413);
  }
}

TEST_CASE("Transfer: max_body caps in-memory answers", "[transfer]") {
  HttpServer server;
  const std::string big = Pattern(2u << 20, 7);
  server.svr.Get("/big", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(big, "application/json");
  });
  server.Start();
  TransferEngine engine(TransferOptions{});
  HttpRequest r = Get(server.url("/big"));
  r.max_body = 1u << 20;
  HttpResponse a = engine.Perform(r);
  CHECK(a.transport.code() == Code::kCorrupt);
  CHECK(a.transport.message().find("larger than the limit of 1048576 bytes") != std::string::npos);
  CHECK(a.body.size() <= r.max_body);
  r.max_body = 4u << 20;
  HttpResponse b = engine.Perform(r);
  REQUIRE(b.transport.ok());
  CHECK((b.body == big));
}

TEST_CASE("Transfer: 429 is retried after Retry-After / X-RateLimit-Reset", "[transfer]") {
  HttpServer server;
  std::atomic<int> hits{0};
  server.svr.Get("/limited", [&](const httplib::Request&, httplib::Response& res) {
    const int n = ++hits;
    if (n == 1) {
      res.status = 429;
      res.set_header("Retry-After", "1");
      res.set_content(R"({"message":"Too Many Attempts."})", "application/json");
    } else if (n == 2) {
      res.status = 429;  // Shootbin style without Retry-After: epoch reset
      res.set_header("X-RateLimit-Reset", std::to_string(long(shotsync::WallSeconds()) + 2));
    } else {
      res.set_content("ok", "text/plain");
    }
  });
  server.Start();
  TransferEngine engine(TransferOptions{});
  Throttle throttle({.key = "t", .rpm = 6000});
  HttpRequest r = Get(server.url("/limited"));
  r.throttle = &throttle;
  const auto t0 = SteadyClock::now();
  HttpResponse a = engine.Perform(r);
  const double secs = Since(t0);
  REQUIRE(a.transport.ok());
  CHECK(a.status == 200);
  CHECK(a.body == "ok");
  CHECK(hits == 3);
  CHECK(throttle.throttled_429() == 2);
  CHECK(throttle.granted() == 3);
  CHECK(secs >= 1.05 + 1.05);  // 1 s, then at least 1 s to the reset, each plus jitter
}

TEST_CASE("Transfer: 429s under load, and the caller sees one only after 10 in a row",
          "[transfer]") {
  HttpServer server;
  std::atomic<int> hits{0}, always{0};
  server.svr.Get("/sometimes", [&](const httplib::Request&, httplib::Response& res) {
    const int n = ++hits;
    if (n % 7 == 3) {
      res.status = 429;
      res.set_header("Retry-After", "0.02");  // fractions are accepted: keeps the test short
      return;
    }
    res.set_content("ok", "text/plain");
  });
  server.svr.Get("/always", [&](const httplib::Request&, httplib::Response& res) {
    ++always;
    res.status = 429;
    res.set_header("Retry-After", "0.01");
  });
  server.Start();
  TransferEngine engine(TransferOptions{.max_concurrent = 8, .max_per_host = 8});
  // Each pause is 10-20 ms plus 50-250 ms of jitter.
  Throttle throttle({.key = "t", .rpm = 60000});

  SECTION("every request ends 200") {
    Waiter w;
    for (int i = 0; i < 60; ++i) {
      HttpRequest r = Get(server.url("/sometimes"));
      r.throttle = &throttle;
      engine.Submit(std::move(r), [&w](HttpResponse&& x) { w.Add(std::move(x)); });
    }
    REQUIRE(w.WaitFor(60));
    int ok = 0;
    for (auto& x : w.responses) ok += x.status == 200;
    CHECK(ok == 60);
    CHECK(throttle.throttled_429() > 0);
    CHECK(hits == 60 + throttle.throttled_429());
  }
  SECTION("ten consecutive 429s reach the caller") {
    HttpRequest r = Get(server.url("/always"));
    r.throttle = &throttle;
    HttpResponse a = engine.Perform(r);
    REQUIRE(a.transport.ok());
    CHECK(a.status == 429);
    CHECK(always == 10);
  }
  SECTION("without a throttle a 429 goes straight to the caller") {
    HttpResponse a = engine.Perform(Get(server.url("/always")));
    CHECK(a.status == 429);
    CHECK(always == 1);
  }
}

namespace {

// A shared bucket store (the manifest, to the throttle) that can be stuck,
// as behind another process's write lock (shut: every call waits in it).
using StuckStore = shotsync::testing::GatedBuckets;

}  // namespace

TEST_CASE("Transfer: a stuck bucket store holds up only the requests of its throttle", "[transfer]") {
  HttpServer server;
  server.svr.Get("/hello", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("hi", "text/plain");
  });
  server.Start();
  StuckStore store;
  Throttle shared({.key = "shootbin:x", .rpm = 60, .shared = &store});
  Throttle own({.key = "own", .rpm = 60});
  TransferEngine engine(TransferOptions{});
  store.shut();
  std::promise<HttpResponse> promise;
  auto waiting = promise.get_future();
  HttpRequest r = Get(server.url("/hello"));
  r.throttle = &shared;
  engine.Submit(r, [&promise](HttpResponse&& got) { promise.set_value(std::move(got)); });
  store.wait_stuck();  // the throttle's keeper is in the store, not the engine's loop
  // The loop goes on: a request without a throttle, and one with its own.
  CHECK(engine.Perform(Get(server.url("/hello"))).status == 200);
  HttpRequest o = Get(server.url("/hello"));
  o.throttle = &own;
  CHECK(engine.Perform(o).status == 200);
  CHECK(waiting.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  CHECK(shared.granted() == 0);
  // The keeper's token wakes the loop, which starts the parked request.
  store.open();
  HttpResponse got = waiting.get();
  CHECK(got.status == 200);
  CHECK(shared.granted() == 1);
}

TEST_CASE("Transfer: a 429 pauses at once though the store is stuck, and is stored when it frees",
          "[transfer]") {
  HttpServer server;
  StuckStore store;
  std::atomic<int> hits{0};
  server.svr.Get("/limited", [&](const httplib::Request&, httplib::Response& res) {
    if (++hits == 1) {
      store.shut();  // before the 429 reaches the throttle
      res.status = 429;
      res.set_header("Retry-After", "1");
      return;
    }
    res.set_content("ok", "text/plain");
  });
  server.svr.Get("/hello", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("hi", "text/plain");
  });
  server.Start();
  Throttle shared({.key = "shootbin:x", .rpm = 60, .shared = &store});
  TransferEngine engine(TransferOptions{});
  std::promise<HttpResponse> promise;
  auto waiting = promise.get_future();
  HttpRequest r = Get(server.url("/limited"));
  r.throttle = &shared;
  engine.Submit(r, [&promise](HttpResponse&& got) { promise.set_value(std::move(got)); });
  store.wait_stuck();  // the keeper writing the pause, which already holds here
  CHECK(shared.throttled_429() == 1);
  CHECK(engine.Perform(Get(server.url("/hello"))).status == 200);
  CHECK(store.pauses == 0);
  store.open();
  HttpResponse got = waiting.get();
  CHECK(got.status == 200);
  CHECK(hits == 2);
  CHECK(shared.throttled_429() == 1);
  shared.WaitForKeeper();
  CHECK(store.pauses == 1);
}

TEST_CASE("Transfer: Shutdown(true) cancels running and waiting requests", "[transfer]") {
  HttpServer server;
  server.svr.Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    server.Nap(std::chrono::milliseconds(5000));
    res.set_content("late", "text/plain");
  });
  server.Start();
  TransferEngine engine(TransferOptions{.max_concurrent = 4, .max_per_host = 4});
  Waiter w;
  for (int i = 0; i < 8; ++i) {
    engine.Submit(Get(server.url("/slow")), [&w](HttpResponse&& r) { w.Add(std::move(r)); });
  }
  REQUIRE(shotsync::testing::WaitFor([&] { return engine.counters().active == 4; }));
  engine.Shutdown(true);  // the server would answer after 5 s: every answer must be a cancel
  REQUIRE(w.size() == 8);
  for (auto& r : w.responses) {
    CHECK(r.transport.code() == Code::kCancelled);
    CHECK(r.status == 0);
  }
  // After the shutdown: cancelled at once.
  Waiter late;
  engine.Submit(Get(server.url("/slow")), [&late](HttpResponse&& r) { late.Add(std::move(r)); });
  REQUIRE(late.size() == 1);
  CHECK(late.responses[0].transport.code() == Code::kCancelled);
  CHECK(engine.Perform(Get(server.url("/slow"))).transport.code() == Code::kCancelled);
  engine.Shutdown(false);  // idempotent
}

TEST_CASE("Transfer: Shutdown(false) lets running requests finish", "[transfer]") {
  HttpServer server;
  server.svr.Get("/delay", [&](const httplib::Request&, httplib::Response& res) {
    server.Nap(std::chrono::milliseconds(500));
    res.set_content("done", "text/plain");
  });
  server.Start();
  Waiter w;
  {
    TransferEngine engine(TransferOptions{.max_concurrent = 1, .max_per_host = 1});
    for (int i = 0; i < 4; ++i) {
      engine.Submit(Get(server.url("/delay")), [&w](HttpResponse&& r) { w.Add(std::move(r)); });
    }
    REQUIRE(shotsync::testing::WaitFor([&] { return engine.counters().active == 1; }));
    engine.Shutdown(false);
  }
  REQUIRE(w.size() == 4);
  int done = 0, cancelled = 0;
  for (auto& r : w.responses) {
    done += r.status == 200 && r.body == "done";
    cancelled += r.transport.code() == Code::kCancelled;
  }
  CHECK(done == 1);
  CHECK(cancelled == 3);
}

TEST_CASE("Transfer: Submit blocks when the queue is full", "[transfer]") {
  HttpServer server;
  std::atomic<bool> open{false};
  server.svr.Get("/gate", [&](const httplib::Request&, httplib::Response& res) {
    while (!open && !server.stopping) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    res.set_content("through", "text/plain");
  });
  server.Start();
  TransferEngine engine(
      TransferOptions{.max_concurrent = 1, .max_per_host = 1, .queue_capacity = 2});
  Waiter w;
  std::atomic<int> submitted{0};
  std::thread producer([&] {
    for (int i = 0; i < 10; ++i) {
      engine.Submit(Get(server.url("/gate")), [&w](HttpResponse&& r) { w.Add(std::move(r)); });
      ++submitted;
    }
  });
  // One running, two in the queue, the fourth Submit waiting.
  REQUIRE(shotsync::testing::WaitFor([&] {
    const auto c = engine.counters();
    return c.active == 1 && c.queued == 2;
  }));
  CHECK(submitted == 3);
  const auto c = engine.counters();
  CHECK(c.active == 1);
  CHECK(c.queued == 2);
  open = true;
  producer.join();
  REQUIRE(w.WaitFor(10));
  for (auto& r : w.responses) CHECK(r.body == "through");
}

TEST_CASE("Transfer: callbacks run on the engine thread and may submit more", "[transfer]") {
  HttpServer server;
  server.svr.Get("/hello", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("hi", "text/plain");
  });
  server.Start();
  TransferEngine engine(
      TransferOptions{.max_concurrent = 1, .max_per_host = 1, .queue_capacity = 1});
  Waiter w;
  std::atomic<int> depth{0};
  HttpResponse from_callback;
  std::function<void(HttpResponse &&)> chain = [&](HttpResponse&& r) {
    if (depth == 0)
      from_callback = engine.Perform(Get(server.url("/hello")));  // refused, no deadlock
    if (++depth < 5) engine.Submit(Get(server.url("/hello")), chain);
    w.Add(std::move(r));
  };
  engine.Submit(Get(server.url("/hello")), chain);
  REQUIRE(w.WaitFor(5));
  CHECK(from_callback.transport.code() == Code::kInternal);
  for (auto& r : w.responses) CHECK(r.status == 200);
  // A throwing callback does not stop the engine.
  engine.Submit(Get(server.url("/hello")),
                [](HttpResponse&&) { throw std::runtime_error("boom"); });
  CHECK(engine.Perform(Get(server.url("/hello"))).status == 200);
}

namespace {

// Bandwidth tests: the byte bucket lets through at most its burst (two
// 64 KiB chunks), plus what a transfer takes past its last byte (a download
// takes curl's whole chunk, up to 16 KiB), plus rate * time. So a transfer
// of `bytes` cannot end before (bytes - slack) / rate, however loaded the
// machine: the assertions below are that bound, never an upper one on time.
constexpr double kBwSlack = 2 * 65536 + 8 * 16384;

double BwMinSeconds(double bytes, double rate) {
  return (bytes - kBwSlack) / rate;
}

// A server of /file?n=BYTES bodies (a fixed pattern).
void BwServeFiles(HttpServer& server, const std::string& pattern) {
  server.svr.Get("/file", [&pattern](const httplib::Request& req, httplib::Response& res) {
    const std::size_t n = std::min<std::size_t>(std::stoul(req.get_param_value("n")), pattern.size());
    res.set_content(pattern.substr(0, n), "application/octet-stream");
  });
}

HttpRequest BwDownload(const HttpServer& server, std::size_t bytes, const fs::path& to) {
  HttpRequest r = Get(server.url("/file?n=" + std::to_string(bytes)));
  r.download_path = to.string();
  return r;
}

}  // namespace

TEST_CASE("Transfer: bwlimit paces downloads and a 10 MB upload to the limit over the run", "[transfer]") {
  TempDir dir;
  HttpServer server;
  const std::string pattern = Pattern(10u << 20, 8);
  BwServeFiles(server, pattern);
  std::mutex mu;
  std::size_t photo_bytes = 0;
  int uploads = 0;
  server.svr.Post("/upload", [&](const httplib::Request&, httplib::Response& res,
                                 const httplib::ContentReader& reader) {
    std::lock_guard lock(mu);
    ++uploads;
    std::string current;
    reader([&](const httplib::MultipartFormData& part) { current = part.name; return true; },
           [&](const char*, std::size_t n) {
             if (current == "photo") photo_bytes += n;
             return true;
           });
    res.set_content("{}", "application/json");
  });
  server.Start();

  SECTION("four downloads at 1 MiB/s together") {
    constexpr double kRate = 1 << 20;
    TransferEngine engine(TransferOptions{.max_concurrent = 4, .bwlimit = {1 << 20, 1 << 20, {}}});
    Waiter w;
    const auto t0 = SteadyClock::now();
    for (int i = 0; i < 4; ++i) {
      engine.Submit(BwDownload(server, 1u << 20, dir.path() / ("d" + std::to_string(i))),
                    [&w](HttpResponse&& r) { w.Add(std::move(r)); });
    }
    REQUIRE(w.WaitFor(4));
    const double secs = Since(t0);
    for (auto& r : w.responses) {
      REQUIRE(r.transport.ok());
      CHECK(r.bytes_received == 1u << 20);
    }
    CHECK((ReadFileText(dir.path() / "d3") == pattern.substr(0, 1u << 20)));
    INFO("4 MiB at 1 MiB/s took " << secs << " s");
    CHECK(secs >= BwMinSeconds(4 << 20, kRate));
    CHECK(4 * kRate / secs <= 1.25 * kRate);
  }

  SECTION("a 10 MB photo at 2 MiB/s takes several stall timeouts and is sent once, never cut") {
    constexpr double kRate = 2 << 20;
    const fs::path photo = dir.path() / "big.jpg";
    WriteFile(photo, pattern);
    // stall_timeout 1 s: the upload takes about 5; it is paced, not stalled.
    TransferEngine engine(TransferOptions{.bwlimit = {2 << 20, 0, {}}, .stall_timeout = std::chrono::seconds(1)});
    HttpRequest up;
    up.method = "POST";
    up.url = server.url("/upload");
    up.mime = {MimePart{.name = "photo", .file_path = photo.string()}};
    up.low_speed_time = std::chrono::seconds(1);
    const auto t0 = SteadyClock::now();
    HttpResponse r = engine.Perform(std::move(up));
    const double secs = Since(t0);
    INFO(r.transport.message() << "; 10 MB at 2 MiB/s took " << secs << " s");
    REQUIRE(r.transport.ok());
    CHECK(r.status == 200);
    CHECK(r.request_sent);
    std::lock_guard lock(mu);
    CHECK(uploads == 1);
    CHECK(photo_bytes == pattern.size());
    CHECK(secs >= BwMinSeconds(double(pattern.size()), kRate));
    CHECK(secs >= 3.0);  // several times the stall timeout (the bound above is ~4.8 s)
  }
}

TEST_CASE("Transfer: the bwlimit timetable's boundary changes the rate during a transfer", "[transfer]") {
  TempDir dir;
  HttpServer server;
  const std::string pattern = Pattern(10u << 20, 3);
  BwServeFiles(server, pattern);
  server.Start();
  // The engine's clock is the wall clock moved to today's 07:00 local time;
  // the test moves it to 08:00 mid-transfer (no real 08:00 is waited for).
  auto local = [](int hour) {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::localtime_r(&now, &tm);
    tm.tm_hour = hour;
    tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return double(std::mktime(&tm));
  };
  std::atomic<double> offset{local(7) - shotsync::WallSeconds()};
  auto limit = shotsync::ParseBwLimit("07:00,128k 08:00,8M");
  REQUIRE(limit.ok());
  TransferEngine engine(TransferOptions{.bwlimit = *limit,
                                        .clock = [&offset] { return shotsync::WallSeconds() + offset.load(); }});
  Waiter w;
  const auto t0 = SteadyClock::now();
  engine.Submit(BwDownload(server, pattern.size(), dir.path() / "big"), [&w](HttpResponse&& r) { w.Add(std::move(r)); });
  // At 128 KiB/s: half a MiB arrives, then the rest would take 76 s.
  REQUIRE(shotsync::testing::WaitFor([&] { return engine.counters().bytes_received >= 512u << 10; }));
  const double slow_secs = Since(t0);
  const auto slow_bytes = engine.counters().bytes_received;
  INFO(slow_bytes << " bytes in " << slow_secs << " s before 08:00");
  CHECK(slow_secs >= BwMinSeconds(512 << 10, 128 << 10));
  CHECK(slow_bytes < pattern.size() / 2);
  offset = local(8) - shotsync::WallSeconds();
  // At 8 MiB/s the rest takes about a second; at the old rate it could not
  // end within the wait (80 s).
  REQUIRE(w.WaitFor(1, std::chrono::seconds(40)));
  REQUIRE(w.responses[0].transport.ok());
  CHECK(w.responses[0].bytes_received == pattern.size());
}

TEST_CASE("Transfer: two engines sharing one bucket store stay within the limit together", "[transfer]") {
  TempDir dir;
  HttpServer server;
  const std::string pattern = Pattern(2u << 20, 5);
  BwServeFiles(server, pattern);
  server.Start();
  // The store of two processes of one profile (the manifest's throttle table).
  shotsync::testing::MemoryBuckets store;
  constexpr double kRate = 1 << 20;
  auto options = [&] {
    return TransferOptions{.max_concurrent = 2, .bwlimit = {0, 1 << 20, {}}, .bw_store = &store};
  };
  TransferEngine a(options()), b(options());
  Waiter w;
  const auto t0 = SteadyClock::now();
  for (TransferEngine* e : {&a, &b}) {
    for (int i = 0; i < 2; ++i) {
      const std::string name = std::string(e == &a ? "a" : "b") + std::to_string(i);
      e->Submit(BwDownload(server, 1u << 20, dir.path() / name), [&w](HttpResponse&& r) { w.Add(std::move(r)); });
    }
  }
  REQUIRE(w.WaitFor(4));
  const double secs = Since(t0);
  for (auto& r : w.responses) {
    REQUIRE(r.transport.ok());
    CHECK(r.bytes_received == 1u << 20);
  }
  INFO("4 MiB through two engines sharing 1 MiB/s took " << secs << " s");
  CHECK(store.takes + store.reserves > 0);
  CHECK(4 * kRate / secs <= 1.5 * kRate);
  CHECK(secs >= BwMinSeconds(4 << 20, kRate) - 2 * 65536 / kRate);  // each engine's own first chunk
}

TEST_CASE("Transfer: under a bandwidth limit a direction runs only as many transfers as get a useful share",
          "[transfer]") {
  TempDir dir;
  HttpServer server;
  const std::string pattern = Pattern(256u << 10, 6);
  BwServeFiles(server, pattern);
  server.Start();
  // 512 KiB/s with at least 256 KiB/s each: two at a time, of eight allowed.
  TransferEngine engine(TransferOptions{.max_concurrent = 8, .bwlimit = {0, 512 << 10, {}}});
  std::atomic<int> running{0}, most{0};
  Waiter w;
  for (int i = 0; i < 6; ++i) {
    HttpRequest r = BwDownload(server, pattern.size(), dir.path() / ("f" + std::to_string(i)));
    // Asked right before the transfer starts (on the loop thread).
    r.may_start = [&] {
      most = std::max(most.load(), ++running);
      return true;
    };
    engine.Submit(std::move(r), [&](HttpResponse&& resp) {
      --running;
      w.Add(std::move(resp));
    });
  }
  // An API call (no body to pace) takes no slot.
  HttpResponse api = engine.Perform(Get(server.url("/file?n=10")));
  CHECK(api.status == 200);
  REQUIRE(w.WaitFor(6));
  for (auto& r : w.responses) REQUIRE(r.transport.ok());
  CHECK(most == 2);
}

// Not in CI: engine vs `curl --parallel --parallel-max 8` on the same 2,000 URLs.
TEST_CASE("Transfer benchmark: 2000 GETs vs curl --parallel", "[.][transfer_bench]") {
  HttpServer server;
  server.svr.Get("/small", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("ok " + req.get_param_value("i"), "text/plain");
  });
  server.Start();
  constexpr int kN = 2000;
  TempDir dir;
  const fs::path cfg = dir.path() / "urls.cfg";
  {
    std::ofstream out(cfg);
    for (int i = 0; i < kN; ++i) {
      out << "url = \"" << server.url("/small?i=" + std::to_string(i))
          << "\"\noutput = \"/dev/null\"\n";
    }
  }
  for (int round = 0; round < 3; ++round) {
    double engine_rps = 0, curl_rps = 0;
    {
      TransferEngine engine(TransferOptions{.max_concurrent = 8, .max_per_host = 8});
      Waiter w;
      const auto t0 = SteadyClock::now();
      for (int i = 0; i < kN; ++i) {
        engine.Submit(Get(server.url("/small?i=" + std::to_string(i))),
                      [&w](HttpResponse&& r) { w.Add(std::move(r)); });
      }
      REQUIRE(w.WaitFor(kN));
      engine_rps = kN / Since(t0);
      for (auto& r : w.responses) REQUIRE(r.status == 200);
    }
    {
      const std::string cmd =
          "curl -s --parallel --parallel-max 8 -K '" + cfg.string() + "' 2>/dev/null";
      const auto t0 = SteadyClock::now();
      REQUIRE(std::system(cmd.c_str()) == 0);
      curl_rps = kN / Since(t0);
    }
    std::cout << "bench round " << round << ": engine " << int(engine_rps)
              << " req/s, curl --parallel-max 8 " << int(curl_rps) << " req/s, ratio "
              << engine_rps / curl_rps << "\n";
  }
}
