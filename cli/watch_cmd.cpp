// shotsync watch: one profile, always on (docs/watch.md). Thin: the
// engine's Watcher does the work; this file reads flags, prints one line
// per upload, and turns SIGHUP into a reload and SIGTERM into a stop.
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "json_out.hpp"
#include "shotsync/fit.hpp"
#include "shotsync/watch.hpp"
#include "signals.hpp"

namespace shotsync::cli {
namespace {

struct WatchCommandOptions {
  std::string settle, rescan_interval, poll_interval;  // as typed; "" = config
  std::string webhook_listen, metrics_listen;
  bool fit = false;
};

// The flags win over the config, at start and after each reload.
void ApplyFlags(const WatchCommandOptions& o, Config& c) {
  auto seconds = [](const std::string& text) { return double(ParseDuration(text)->count()) / 1000.0; };
  if (!o.settle.empty()) c.watch.settle_s = seconds(o.settle);
  if (!o.rescan_interval.empty()) c.watch.rescan_interval_s = o.rescan_interval == "off" ? 0 : seconds(o.rescan_interval);
  if (!o.poll_interval.empty()) c.watch.poll_interval_s = o.poll_interval == "off" ? 0 : seconds(o.poll_interval);
  if (!o.webhook_listen.empty()) c.headshotpro.webhook_listen = o.webhook_listen;
  if (!o.metrics_listen.empty()) c.watch.metrics_listen = o.metrics_listen;
  if (o.fit) FitAllRoots(c);
}

const char* KindWord(WatchEvent::Kind k) {
  switch (k) {
    case WatchEvent::kUploaded: return "uploaded";
    case WatchEvent::kRevised: return "revised";
    case WatchEvent::kFailed: return "failed";
    case WatchEvent::kRejected: return "rejected";
    case WatchEvent::kDownloaded: return "downloaded";
    case WatchEvent::kNote: return "watch";
  }
  return "";
}

int RunWatch(const GlobalOptions& options, const WatchCommandOptions& w) {
  StopSignals signals(/*hangup=*/true);  // first: every later thread inherits the blocked mask
  if (options.json) {
    return FailWith(options, "watch",
                    Status::Invalid("watch has no --json output: it runs until stopped (its counts are on "
                                    "/metrics, its lines in --log-file)"),
                    kExitUsage);
  }
  for (const std::string& at : {w.webhook_listen, w.metrics_listen}) {
    if (!at.empty() && !ParseListenAddress(at)) {
      return FailWith(options, "watch", Status::Invalid("not a listen address (HOST:PORT): " + at), kExitUsage);
    }
  }
  int failed = kExitOk;
  auto profile = OpenProfile(options, &failed);
  if (!profile) return FailedEarly(options, "watch", failed);
  ApplyFlags(w, profile->config);
  if (profile->config.roots.empty() && profile->config.headshotpro.key.empty()) {
    return FailWith(options, "watch", Status::Invalid(profile->config.source + ": no [[roots]] to watch and no HeadshotPro key to pull with"),
                    kExitUsage);
  }
  WatchOptions wo;
  wo.stop = signals.stop();
  wo.abort = signals.abort();
  wo.shared = profile->shared.get();
  wo.log = options.log;
  wo.reload = [&options, &w]() -> Result<Config> {
    auto c = LoadConfigFor(options);
    if (c.ok()) ApplyFlags(w, *c);
    return c;
  };
  wo.on_event = [&options](const WatchEvent& e) {
    if (e.kind != WatchEvent::kNote) {
      std::string line = std::string("watch: ") + KindWord(e.kind) + " " + e.path;
      if (!e.text.empty()) line += " (" + e.text + ")";
      if (e.kind == WatchEvent::kFailed || e.kind == WatchEvent::kRejected) options.log->Warn(line);
      else options.log->Info(line);
    }
    if (options.quiet) return;
    if (e.kind == WatchEvent::kNote) {
      std::printf("watch: %s\n", e.text.c_str());
    } else {
      std::printf("%-10s %s%s%s\n", KindWord(e.kind), Escaped(e.path).c_str(), e.text.empty() ? "" : "  (",
                  e.text.empty() ? "" : (Escaped(e.text) + ")").c_str());
    }
    std::fflush(stdout);
  };
  Watcher watcher(profile->config, *profile->manifest, wo);
  signals.OnHangup([&watcher] { watcher.RequestReload(); });
  const Status s = watcher.Run();
  signals.OnHangup(nullptr);
  if (!s.ok()) {
    PrintError(options, s);
    return ExitCodeFor(s);
  }
  return kExitOk;  // stopped by a signal: running transfers finished, the next start resumes
}

}  // namespace

Command AddWatchCommand(CLI::App& app) {
  auto opts = std::make_shared<WatchCommandOptions>();
  WatchCommandOptions& o = *opts;
  auto* watch = app.add_subcommand(
      "watch", "stay running: upload what lands in the roots within seconds, receive HeadshotPro webhooks");
  watch->add_option("--settle", o.settle, "quiet time after the last write before a file is sent (config: 1s)")
      ->check(DurationValidator());
  watch->add_option("--rescan-interval", o.rescan_interval, "full rescan this often, or off (config: 1h)")
      ->check(DurationValidator() | CLI::IsMember({"off"}));
  watch->add_option("--poll-interval", o.poll_interval, "incremental pull this often, or off (config: 1h)")
      ->check(DurationValidator() | CLI::IsMember({"off"}));
  watch->add_option("--webhook-listen", o.webhook_listen, "receive HeadshotPro webhooks on HOST:PORT");
  watch->add_option("--metrics-listen", o.metrics_listen, "serve /metrics and /healthz on HOST:PORT");
  watch->add_flag("--fit", o.fit, "send JPEGs over the 10 MiB limit re-encoded to fit (the originals stay as they are)");
  return {watch, [opts](const GlobalOptions& g) { return RunWatch(g, *opts); }};
}

}  // namespace shotsync::cli
