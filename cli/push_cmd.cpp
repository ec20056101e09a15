// shotsync push FILE...: the editing-pipeline hook. Uploads or revises just
// the named files, without walking the roots, next to a running `sync` if
// there is one (no run lock: the manifest's job claims keep them apart).
#include <malloc.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <unordered_set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "json_out.hpp"
#include "shotsync/fit.hpp"
#include "shotsync/sync.hpp"
#include "signals.hpp"

namespace shotsync::cli {
namespace {

struct PushCommandOptions {
  std::vector<std::string> files;
  bool null_separated = false;
  int jobs = 0;
  double wait_s = 600;
  bool fit = false;  // --fit
};

// "-" among the files: read more paths from stdin, one per line (or
// NUL-separated with -0, for `find -print0`).
std::vector<std::string> ExpandStdin(const PushCommandOptions& o) {
  std::vector<std::string> out;
  for (const std::string& f : o.files) {
    if (f != "-") {
      out.push_back(f);
      continue;
    }
    std::string line;
    while (std::getline(std::cin, line, o.null_separated ? '\0' : '\n')) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) out.push_back(line);
    }
  }
  return out;
}

struct FileOutcome {
  std::string outcome;  // uploaded | revised | unchanged | elsewhere | rejected | failed
  std::string reason;
};

int RunPush(const GlobalOptions& options, const PushCommandOptions& push) {
  // A push lives for one photo: each of its threads' own malloc arena would
  // be pages faulted in for a few allocations (docs/hooks.md#cost).
  ::mallopt(M_ARENA_MAX, 1);
  StopSignals signals;  // first: every later thread inherits the blocked mask
  SyncOptions so;
  so.command = "push";
  so.files = ExpandStdin(push);
  so.jobs = push.jobs;
  so.busy_wait_s = push.wait_s;
  so.stop = signals.stop();
  so.abort = signals.abort();
  if (so.files.empty()) {
    return FailWith(options, "push",
                    Status(Code::kInvalidArgument, "push: no files given (name them, or '-' to read paths from stdin)"),
                    kExitUsage);
  }
  int failed = kExitOk;
  auto profile = OpenProfile(options, &failed);
  if (!profile) return FailedEarly(options, "push", failed);
  Config& config = profile->config;
  auto& manifest = profile->manifest;
  // ~6 pushes of ~20 pages each between checkpoints: the WAL the next push
  // recovers stays under half a megabyte (docs/hooks.md#cost).
  (void)manifest->SetAutoCheckpoint(128);
  if (push.fit) FitAllRoots(config);
  so.shared = profile->shared.get();
  std::vector<std::pair<std::string, FileOutcome>> results;  // in the order they end
  auto record = [&](const std::string& path, std::string outcome, std::string reason) {
    if (!options.quiet && !options.json) {
      std::printf("%-9s %s%s%s\n", outcome.c_str(), Escaped(path).c_str(), reason.empty() ? "" : "  (",
                  reason.empty() ? "" : (Escaped(reason) + ")").c_str());
      std::fflush(stdout);
    }
    options.log->Info("push: " + outcome + " " + path + (reason.empty() ? "" : " (" + reason + ")"));
    results.push_back({path, {std::move(outcome), std::move(reason)}});
  };
  auto on_event = [&](const SyncEvent& e) {
    switch (e.kind) {
      case SyncEvent::kPlanned:
        if (e.item && e.item->action == Action::kSkip) record(e.path, "unchanged", e.reason);
        if (e.item && e.item->action == Action::kRejected) record(e.path, "rejected", e.reason);
        break;
      case SyncEvent::kDone:
        if (e.bytes == 0 && !e.reason.empty()) record(e.path, "elsewhere", e.reason);
        else record(e.path, e.revision ? "revised" : "uploaded", e.reason);
        break;
      case SyncEvent::kFailed:
        options.log->Error(e.reason);
        results.push_back({e.path, {"failed", e.reason}});
        break;
      case SyncEvent::kWarning: options.log->Warn(e.reason); break;
      default: break;
    }
  };
  SyncReport r = RunSync(config, *manifest, so, on_event);
  // Files of a root whose target did not resolve: that one line was said;
  // each file still gets its outcome.
  std::unordered_set<std::string> reported;  // a push may name thousands of files
  for (const auto& res : results) reported.insert(res.first);
  for (const SyncFailure& f : r.failures) {
    if (reported.insert(f.path).second) results.push_back({f.path, {"failed", f.reason}});
  }
  const int code = SyncExitCode(r);
  if (options.end_counts) *options.end_counts = EndCounts(r);
  const bool by_user = InterruptedByUser(r.status, so.stop);
  if (!r.status.ok() && !by_user) PrintError(options, r.status);
  if (options.json) {
    JsonReport json("push");
    // The engine counts a permanent failure (a file it cannot send until it changes) as rejected.
    std::unordered_set<std::string> permanent;
    for (const SyncFailure& f : r.failures) {
      if (f.permanent) permanent.insert(f.path);
    }
    nlohmann::json files = nlohmann::json::array();
    for (const auto& [path, o] : results) {
      files.push_back({{"path", path}, {"outcome", o.outcome}, {"reason", o.reason}});
      const bool rejected = o.outcome == "rejected" || (o.outcome == "failed" && permanent.contains(path));
      if (o.outcome == "failed" || (rejected && config.rejected_fails)) {
        json.AddError(o.reason, path, {}, rejected ? "rejected" : "failed");
      } else if (rejected) {
        json.AddWarning(o.reason, path);
      }
    }
    json.Set({{"files", files}, {"uploaded", r.uploaded}, {"revised", r.revised}, {"adopted", r.plan.adopt},
              {"skipped", r.plan.skip}, {"elsewhere", r.elsewhere}, {"rejected", r.rejected + r.plan.rejected},
              {"failed", r.failed}, {"unconfirmed", r.unconfirmed}, {"bytes", r.bytes_sent},
              {"seconds", r.seconds}, {"requests", r.requests}, {"throttled_429", r.throttled_429},
              {"retries", r.retries}});
    json.Print(code, r.status);
  } else if (by_user && !options.quiet) {
    std::printf("%s\n", r.status.message().c_str());
  }
  return code;
}

}  // namespace

Command AddPushCommand(CLI::App& app) {
  auto opts = std::make_shared<PushCommandOptions>();
  PushCommandOptions& o = *opts;
  auto* push = app.add_subcommand(
      "push", "upload or revise just these files (for export hooks); '-' reads paths from stdin");
  push->add_option("files", o.files, "photo files under a configured root, or '-'")->required();
  push->add_flag("--fit", o.fit, "send JPEGs over the 10 MiB limit re-encoded to fit (the originals stay as they are)");
  push->add_flag("-0,--null", o.null_separated, "paths on stdin are NUL-separated (find -print0)");
  push->add_option("-j,--jobs,--transfers", o.jobs, "concurrent uploads (default: config jobs, 8)")->check(CLI::Range(1, 64));
  push->add_option("--wait", o.wait_s, "seconds to wait for a file another shotsync is sending (600)")
      ->check(CLI::Range(0.0, 86400.0));
  return {push, [opts](const GlobalOptions& g) { return RunPush(g, *opts); }};
}

}  // namespace shotsync::cli
