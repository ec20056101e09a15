// shotsync-emulator: prints its base URL as the first stdout line, then
// serves both APIs until SIGTERM/SIGINT.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "emulator.hpp"

int main(int argc, char** argv) {
  emu::Options o;
  std::string config_file;
  CLI::App app{"shotsync-emulator: loopback Shootbin + HeadshotPro for tests"};
  app.add_option("--port", o.port, "port on 127.0.0.1 (0 = any free port)");
  app.add_option("--host", o.host, "address to bind (loopback)");
  app.add_option("--shootbin-rpm", o.shootbin_rpm, "Shootbin requests per minute per token");
  app.add_option("--headshotpro-rpm", o.headshotpro_rpm, "HeadshotPro requests per minute per key");
  app.add_option("--url-ttl", o.url_ttl_seconds, "signed download URL lifetime, seconds");
  app.add_option("--latency-ms", o.faults.latency_ms, "added latency per API request");
  app.add_option("--fault-5xx", o.faults.rate_5xx, "share of API requests answered 5xx");
  app.add_option("--fault-reset", o.faults.rate_reset, "share of uploads reset mid-body");
  app.add_option("--fault-reset-after-store", o.faults.rate_reset_after_store,
                 "share of uploads stored, then reset before the answer");
  app.add_option("--fault-429-burst", o.faults.burst_429, "the next N API requests get 429");
  app.add_option("--fault-hang", o.faults.rate_hang, "share of API requests never answered");
  app.add_option("--fault-close", o.faults.rate_close_keepalive, "share of answers with Connection: close");
  app.add_option("--slow-body-bps", o.faults.slow_body_bps, "download bodies trickle at this rate");
  app.add_option("--revision-processing-ms", o.revision_processing_ms, "409 window after a revision");
  app.add_option("--seed", o.seed, "fault PRNG seed");
  app.add_option("--store", o.store_dir, "keep uploaded bytes in this folder");
  app.add_option("--threads", o.threads, "server threads (one per keep-alive connection)");
  app.add_option("--config", config_file, "JSON file with any of the above (snake_case) and tokens");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::pair<std::string, emu::TokenInfo>> extra_tokens;
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    std::stringstream ss;
    ss << in.rdbuf();
    emu::Json c = emu::Json::parse(ss.str(), nullptr, false);
    if (!in || c.is_discarded() || !c.is_object()) {
      std::fprintf(stderr, "shotsync-emulator: %s: not a JSON object\n", config_file.c_str());
      return 2;
    }
    o.shootbin_rpm = c.value("shootbin_rpm", o.shootbin_rpm);
    o.headshotpro_rpm = c.value("headshotpro_rpm", o.headshotpro_rpm);
    o.url_ttl_seconds = c.value("url_ttl_seconds", o.url_ttl_seconds);
    o.faults.latency_ms = c.value("latency_ms", o.faults.latency_ms);
    o.faults.rate_5xx = c.value("rate_5xx", o.faults.rate_5xx);
    o.faults.rate_reset = c.value("rate_reset", o.faults.rate_reset);
    o.faults.rate_reset_after_store = c.value("rate_reset_after_store", o.faults.rate_reset_after_store);
    o.faults.burst_429 = c.value("burst_429", o.faults.burst_429);
    o.revision_processing_ms = c.value("revision_processing_ms", o.revision_processing_ms);
    for (const auto& t : c.value("tokens", emu::Json::array())) {
      emu::TokenInfo info;
      info.service = t.value("service", std::string("shootbin")) == "headshotpro" ? emu::Service::kHeadshotPro
                                                                                 : emu::Service::kShootbin;
      info.plan = t.value("plan", std::string(info.service == emu::Service::kShootbin ? "agency" : "professional"));
      for (const auto& s : t.value("scopes", emu::Json::array())) {
        std::string scope = s.get<std::string>();
        if (scope.rfind("post:", 0) == 0) scope = scope.substr(5);
        info.scopes.insert(scope);
      }
      info.rpm = t.value("rpm", 0);
      info.revoked = t.value("revoked", false);
      info.user = t.value("user", std::string("owner"));
      extra_tokens.emplace_back(t.value("token", std::string()), info);
    }
  }

  // Signals are taken by one sigwait thread; block them before any other thread starts.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  emu::Emulator server(o);
  for (auto& [token, info] : extra_tokens) server.AddToken(token, info);
  emu::RegisterShootbin(server);
  emu::RegisterHeadshotPro(server);
  if (server.Bind() < 0) {
    std::fprintf(stderr, "shotsync-emulator: cannot bind %s:%d\n", o.host.c_str(), o.port);
    return 1;
  }
  std::printf("%s\n", server.BaseUrl().c_str());
  std::fflush(stdout);
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    server.Stop();
  });
  server.Serve();
  // Serve returned without a signal (bind lost): wake the waiter.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return 0;
}
