// shotsync-emulator: prints its base URL as the first stdout line, then
// serves both APIs until SIGTERM/SIGINT.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <fstream>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "emulator.hpp"
#include "filename.hpp"

namespace {

// The --config keys: their spellings, the flag they stand for, and how each
// is applied to the options.
struct ConfigKey {
  std::vector<std::string> names;
  std::string flag;
  std::function<void(const emu::Json&)> apply;
};

std::vector<ConfigKey> ConfigKeys(emu::Options& o) {
  return {
      {{"port"}, "--port", [&](const emu::Json& v) { o.port = v.get<int>(); }},
      {{"host"}, "--host", [&](const emu::Json& v) { o.host = v.get<std::string>(); }},
      {{"shootbin_rpm"}, "--shootbin-rpm", [&](const emu::Json& v) { o.shootbin_rpm = v.get<int>(); }},
      {{"headshotpro_rpm"}, "--headshotpro-rpm", [&](const emu::Json& v) { o.headshotpro_rpm = v.get<int>(); }},
      {{"url_ttl", "url_ttl_seconds"}, "--url-ttl", [&](const emu::Json& v) { o.url_ttl_seconds = v.get<int>(); }},
      {{"latency_ms"}, "--latency-ms", [&](const emu::Json& v) { o.faults.latency_ms = v.get<int>(); }},
      {{"fault_5xx", "rate_5xx"}, "--fault-5xx", [&](const emu::Json& v) { o.faults.rate_5xx = v.get<double>(); }},
      {{"fault_reset", "rate_reset"}, "--fault-reset", [&](const emu::Json& v) { o.faults.rate_reset = v.get<double>(); }},
      {{"fault_reset_after_store", "rate_reset_after_store"}, "--fault-reset-after-store",
       [&](const emu::Json& v) { o.faults.rate_reset_after_store = v.get<double>(); }},
      {{"fault_429_burst", "burst_429"}, "--fault-429-burst", [&](const emu::Json& v) { o.faults.burst_429 = v.get<int>(); }},
      {{"fault_hang", "rate_hang"}, "--fault-hang", [&](const emu::Json& v) { o.faults.rate_hang = v.get<double>(); }},
      {{"fault_close", "rate_close_keepalive"}, "--fault-close",
       [&](const emu::Json& v) { o.faults.rate_close_keepalive = v.get<double>(); }},
      {{"slow_body_bps"}, "--slow-body-bps", [&](const emu::Json& v) { o.faults.slow_body_bps = v.get<int>(); }},
      {{"fault_gateway", "rate_gateway"}, "--fault-gateway", [&](const emu::Json& v) { o.faults.rate_gateway = v.get<double>(); }},
      {{"gateway_status"}, "--gateway-status", [&](const emu::Json& v) { o.faults.gateway_status = v.get<int>(); }},
      {{"gateway_stores"}, "--gateway-stores", [&](const emu::Json& v) { o.faults.gateway_stores = v.get<bool>(); }},
      {{"fault_cut_2xx", "rate_cut_2xx"}, "--fault-cut-2xx", [&](const emu::Json& v) { o.faults.rate_cut_2xx = v.get<double>(); }},
      {{"fault_late_store", "rate_late_store"}, "--fault-late-store",
       [&](const emu::Json& v) { o.faults.rate_late_store = v.get<double>(); }},
      {{"late_store_ms"}, "--late-store-ms", [&](const emu::Json& v) { o.faults.late_store_ms = v.get<int>(); }},
      {{"filename_mode"}, "--filename-mode", [&](const emu::Json& v) { o.faults.filename_mode = v.get<std::string>(); }},
      {{"retry_after", "retry_after_s"}, "--retry-after", [&](const emu::Json& v) { o.faults.retry_after_s = v.get<int>(); }},
      {{"clock_skew", "clock_skew_s"}, "--clock-skew", [&](const emu::Json& v) { o.faults.clock_skew_s = v.get<std::int64_t>(); }},
      {{"advertised_limit"}, "--advertised-limit", [&](const emu::Json& v) { o.faults.advertised_limit = v.get<int>(); }},
      {{"revision_processing_ms"}, "--revision-processing-ms",
       [&](const emu::Json& v) { o.revision_processing_ms = v.get<int>(); }},
      {{"seed"}, "--seed", [&](const emu::Json& v) { o.seed = v.get<std::uint64_t>(); }},
      {{"store", "store_dir"}, "--store", [&](const emu::Json& v) { o.store_dir = v.get<std::string>(); }},
      {{"threads"}, "--threads", [&](const emu::Json& v) { o.threads = v.get<int>(); }},
      {{"webhook_url"}, "--webhook-url", [&](const emu::Json& v) { o.webhook_url = v.get<std::string>(); }},
      {{"webhook_secret"}, "--webhook-secret", [&](const emu::Json& v) { o.webhook_secret = v.get<std::string>(); }},
      {{"webhook_retry_scale"}, "--webhook-retry-scale",
       [&](const emu::Json& v) { o.webhook_retry_scale = v.get<double>(); }},
  };
}

// --config FILE: a JSON object with any flag, spelled as the flag
// ("shootbin-rpm", "fault-5xx") or as the option/fault field
// ("shootbin_rpm", "rate_5xx", "url_ttl_seconds"), optionally with the
// fault fields inside "faults": {...}, plus "tokens": [{...}] in the shape
// of POST /_emulator/tokens. Flags given on the command line win.
// Returns 0, or the exit code after printing why.
int ApplyConfigFile(const std::string& config_file, const CLI::App& app, emu::Options& o,
                    std::vector<std::pair<std::string, emu::TokenInfo>>& extra_tokens) {
  std::ifstream in(config_file);
  std::stringstream ss;
  ss << in.rdbuf();
  emu::Json c = emu::Json::parse(ss.str(), nullptr, false);
  if (!in || c.is_discarded() || !c.is_object()) {
    std::fprintf(stderr, "shotsync-emulator: %s: not a JSON object\n", config_file.c_str());
    return 2;
  }
  if (c.contains("faults") && c["faults"].is_object()) {
    for (const auto& [k, v] : c["faults"].items()) c[k] = v;
  }
  const std::vector<ConfigKey> keys = ConfigKeys(o);
  try {
    for (const auto& [raw, value] : c.items()) {
      std::string k = raw;
      std::replace(k.begin(), k.end(), '-', '_');
      if (k == "tokens" || k == "faults") continue;
      auto key = std::find_if(keys.begin(), keys.end(), [&](const ConfigKey& e) {
        return std::find(e.names.begin(), e.names.end(), k) != e.names.end();
      });
      if (key == keys.end()) {
        std::fprintf(stderr, "shotsync-emulator: %s: unknown key \"%s\" ignored\n", config_file.c_str(), raw.c_str());
        continue;
      }
      if (app.count(key->flag) == 0) key->apply(value);
    }
    for (const auto& t : c.value("tokens", emu::Json::array())) {
      emu::TokenInfo info;
      info.service = t.value("service", std::string("shootbin")) == "headshotpro" ? emu::Service::kHeadshotPro
                                                                                 : emu::Service::kShootbin;
      info.plan = t.value("plan", std::string(info.service == emu::Service::kShootbin ? "agency" : "professional"));
      for (const auto& sc : t.value("scopes", emu::Json::array())) {
        std::string scope = sc.get<std::string>();
        if (scope.rfind("post:", 0) == 0) scope = scope.substr(5);
        info.scopes.insert(scope);
      }
      info.rpm = t.value("rpm", 0);
      info.revoked = t.value("revoked", false);
      info.user = t.value("user", std::string("owner"));
      const std::string token = t.value("token", std::string());
      if (token.empty()) throw std::runtime_error("a token needs \"token\"");
      extra_tokens.emplace_back(token, info);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shotsync-emulator: %s: %s\n", config_file.c_str(), e.what());
    return 2;
  }
  return 0;
}

}  // namespace

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
  app.add_option("--fault-gateway", o.faults.rate_gateway, "share of uploads answered by a gateway HTML 5xx")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--gateway-status", o.faults.gateway_status, "status of the gateway page: 502, 504 or 524")
      ->check(CLI::IsMember({502, 504, 524}));
  app.add_option("--gateway-stores", o.faults.gateway_stores, "the app behind the gateway stored the photo (true|false)");
  app.add_option("--fault-cut-2xx", o.faults.rate_cut_2xx, "share of uploads stored, 201 cut mid-body")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fault-late-store", o.faults.rate_late_store, "share of uploads reset, stored --late-store-ms later")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--late-store-ms", o.faults.late_store_ms, "delay of a late store")->check(CLI::NonNegativeNumber);
  app.add_option("--filename-mode", o.faults.filename_mode,
                 "stored names: exact, basename, nfc, basename_nfc, truncate:N (joined by '+')");
  app.add_option("--retry-after", o.faults.retry_after_s, "Retry-After seconds of --fault-429-burst answers")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--clock-skew", o.faults.clock_skew_s, "the emulator's clock runs this many seconds off");
  app.add_option("--advertised-limit", o.faults.advertised_limit,
                 "X-RateLimit-Limit and the enforced limit per minute (0 = the rpm)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--revision-processing-ms", o.revision_processing_ms, "409 window after a revision");
  app.add_option("--seed", o.seed, "fault PRNG seed");
  app.add_option("--store", o.store_dir, "keep uploaded bytes in this folder");
  app.add_option("--tls-cert", o.tls_cert, "serve HTTPS with this PEM certificate")->check(CLI::ExistingFile);
  app.add_option("--tls-key", o.tls_key, "PEM private key for --tls-cert")->check(CLI::ExistingFile);
  app.add_option("--threads", o.threads, "server threads (one per keep-alive connection)");
  app.add_option("--webhook-url", o.webhook_url, "deliver HeadshotPro webhooks to this http://127.0.0.1 URL");
  app.add_option("--webhook-secret", o.webhook_secret, "their 64-hex secret (default: generated, printed on stderr)");
  app.add_option("--webhook-retry-scale", o.webhook_retry_scale, "factor on the 5 min/15 min/1 h retry delays");
  app.add_option("--config", config_file, "JSON file with any of the above (snake_case) and tokens");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::pair<std::string, emu::TokenInfo>> extra_tokens;
  if (!config_file.empty()) {
    if (int code = ApplyConfigFile(config_file, app, o, extra_tokens); code != 0) return code;
  }

  // Signals are taken by one sigwait thread; block them before any other thread starts.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  {
    std::string why;
    auto mode = emu::ParseFilenameMode(o.faults.filename_mode, &why);
    if (!mode) {
      std::fprintf(stderr, "shotsync-emulator: %s\n", why.c_str());
      return 2;
    }
    o.faults.filename_mode = *mode;
  }
  if (const std::string why = emu::WebhookOptionsError(o); !why.empty()) {
    std::fprintf(stderr, "shotsync-emulator: %s\n", why.c_str());
    return 2;
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    std::fprintf(stderr, "shotsync-emulator: --tls-cert and --tls-key go together\n");
    return 2;
  }
  emu::Emulator server(o);
  if (!server.valid()) {
    std::fprintf(stderr, "shotsync-emulator: cannot load %s / %s\n", o.tls_cert.c_str(), o.tls_key.c_str());
    return 1;
  }
  for (auto& [token, info] : extra_tokens) server.AddToken(token, info);
  emu::RegisterShootbin(server);
  emu::RegisterHeadshotPro(server);
  if (server.Bind() < 0) {
    std::fprintf(stderr, "shotsync-emulator: cannot bind %s:%d\n", o.host.c_str(), o.port);
    return 1;
  }
  std::printf("%s\n", server.BaseUrl().c_str());
  std::fflush(stdout);
  std::atomic<bool> served{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    if (served) return;
    server.Stop();
    // A signal that came before Serve() started listening: httplib's stop()
    // is a no-op until then, so repeat it until Serve() returns.
    while (!served) {
      server.server().stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  server.Serve();
  served = true;
  // Serve returned without a signal (bind lost): wake the waiter.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return 0;
}
