// shotsync status: what the manifest knows, without touching the network or
// taking the run lock (it works while a sync runs).
#include <signal.h>

#include <algorithm>
#include <ctime>
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "shotsync/watch.hpp"
#include "json_out.hpp"
#include "shotsync/owner.hpp"
#include "shotsync/throttle.hpp"

namespace shotsync::cli {
namespace {

struct StatusOptions {
  int runs = 10;
  int files = 20;
};

std::string LocalTime(std::int64_t unix_s) {
  if (unix_s <= 0) return "-";
  const std::time_t t = std::time_t(unix_s);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// Requests per second the bucket refills at, from the config (as Throttle does).
double RateFor(const Config& config, const std::string& key) {
  constexpr double kSafety = 0.985;
  if (key.rfind("shootbin:", 0) == 0) return config.shootbin.rpm * kSafety / 60.0;
  return config.headshotpro.rpm * kSafety / 60.0;
}

// "Shootbin (token from SHOOTBIN_API_TOKEN, 60 requests/min)": a bucket
// as the user knows it; another token's bucket (a token since replaced) is
// named as such, never by its fingerprint alone.
std::string BucketLabel(const Config& config, const std::string& key) {
  if (key.rfind("bwlimit:", 0) == 0) return key == "bwlimit:up" ? "Bandwidth, uploads (bwlimit)" : "Bandwidth, downloads (bwlimit)";
  const bool shootbin = key.rfind("shootbin:", 0) == 0;
  const std::string& secret = shootbin ? config.shootbin.token : config.headshotpro.key;
  const std::string& source = shootbin ? config.shootbin.token_source : config.headshotpro.key_source;
  const std::string service = shootbin ? "Shootbin" : "HeadshotPro";
  const int rpm = shootbin ? config.shootbin.rpm : config.headshotpro.rpm;
  if (!secret.empty() && key == BucketKey(shootbin ? "shootbin" : "headshotpro", secret)) {
    return service + " (" + (shootbin ? "token" : "key") + " from " + source + ", " + std::to_string(rpm) +
           " requests/min)";
  }
  return service + " (another " + (shootbin ? "token" : "key") + ", " + key.substr(key.find(':') + 1) + ")";
}

// Studio mode: every host's running processes and runs, from the shared store.
Status StudioStatus(SharedStore& store, int runs, nlohmann::json& out) {
  SHOTSYNC_ASSIGN_OR_RETURN(std::vector<SharedOwner> owners, store.Owners());
  SHOTSYNC_ASSIGN_OR_RETURN(std::vector<SharedRun> recent, store.RecentRuns(runs));
  out = {{"store", store.display()}, {"hosts", nlohmann::json::array()}, {"runs", nlohmann::json::array()}};
  for (const SharedOwner& o : owners) {
    out["hosts"].push_back({{"host", o.host}, {"command", o.command}, {"pid", o.pid},
                            {"since", std::int64_t(o.started_at)}, {"alive", o.lease_left_s > 0}});
  }
  for (const SharedRun& r : recent) {
    out["runs"].push_back({{"host", r.host}, {"command", r.run.command}, {"pid", r.run.pid},
                           {"started_at", r.run.started_at}, {"finished_at", r.run.finished_at},
                           {"exit_code", r.run.finished_at == 0 ? nlohmann::json(nullptr) : nlohmann::json(r.run.exit_code)},
                           {"uploaded", r.run.counts.uploaded}, {"revised", r.run.counts.revised},
                           {"skipped", r.run.counts.skipped}, {"failed", r.run.counts.failed},
                           {"downloaded", r.run.counts.downloaded}});
  }
  return Status::Ok();
}

void PrintStudio(const nlohmann::json& studio) {
  std::printf("\nStudio (%s):\n", studio["store"].get<std::string>().c_str());
  for (const auto& h : studio["hosts"]) {
    std::printf("  %-16s %-5s pid %-7d since %s%s\n", h["host"].get<std::string>().c_str(),
                h["command"].get<std::string>().c_str(), h["pid"].get<int>(),
                LocalTime(h["since"].get<std::int64_t>()).c_str(), h["alive"].get<bool>() ? "" : "  (lease expired)");
  }
  if (studio["hosts"].empty()) std::printf("  no host is running shotsync\n");
  std::printf("  Last runs of every host:\n");
  for (const auto& r : studio["runs"]) {
    const bool open = r["finished_at"].get<std::int64_t>() == 0;
    std::printf("    %s  %-16s %-5s %-8s %lld uploaded, %lld revised, %lld skipped, %lld failed, %lld downloaded\n",
                LocalTime(r["started_at"].get<std::int64_t>()).c_str(), r["host"].get<std::string>().c_str(),
                r["command"].get<std::string>().c_str(),
                open ? "open" : ("exit " + std::to_string(r["exit_code"].get<int>())).c_str(),
                (long long)r["uploaded"].get<std::int64_t>(), (long long)r["revised"].get<std::int64_t>(),
                (long long)r["skipped"].get<std::int64_t>(), (long long)r["failed"].get<std::int64_t>(),
                (long long)r["downloaded"].get<std::int64_t>());
  }
}

int RunStatus(const GlobalOptions& options, const StatusOptions& so) {
  int failed = kExitOk;
  auto profile = OpenProfile(options, &failed);
  if (!profile) return FailedEarly(options, "status", failed);
  Config& config = profile->config;
  Manifest& m = *profile->manifest;
  auto runs = m.RecentRuns(so.runs);
  auto jobs = m.UnfinishedJobs();
  auto failures = m.RecentFailures(so.files);
  auto rejected = m.FilesInState(FileState::kRejected, so.files);
  auto roots = m.CountsByRoot();
  auto buckets = m.Buckets();
  for (const Status* st : {&runs.status(), &jobs.status(), &failures.status(), &rejected.status(),
                           &roots.status(), &buckets.status()}) {
    if (!st->ok()) return FailWith(options, "status", *st, ExitCodeFor(*st));
  }
  auto path_of = [&](std::int64_t file_id) {
    auto f = m.GetFileById(file_id);
    if (!f.ok() || !*f) return "file " + std::to_string(file_id);
    for (const auto& r : *roots) {
      if (r.root_id == (*f)->root_id) return r.path + "/" + (*f)->rel_path;
    }
    return (*f)->rel_path;
  };
  const double now = WallSeconds();  // the clock Throttle stores buckets on
  nlohmann::json j_runs = nlohmann::json::array(), j_jobs = nlohmann::json::array(),
                 j_failures = nlohmann::json::array(), j_rejected = nlohmann::json::array(),
                 j_roots = nlohmann::json::array(), j_buckets = nlohmann::json::array();
  for (const RunRecord& r : *runs) {
    const bool open = r.finished_at == 0;
    j_runs.push_back({{"command", r.command}, {"started_at", r.started_at}, {"finished_at", r.finished_at},
                      {"seconds", open ? 0 : r.finished_at - r.started_at}, {"pid", r.pid},
                      {"exit_code", open ? nlohmann::json(nullptr) : nlohmann::json(r.exit_code)},
                      {"uploaded", r.counts.uploaded}, {"revised", r.counts.revised},
                      {"skipped", r.counts.skipped}, {"rejected", r.counts.rejected},
                      {"failed", r.counts.failed}, {"downloaded", r.counts.downloaded},
                      {"bytes", r.counts.bytes}});
  }
  for (const JobRecord& jr : *jobs) {
    const bool alive = OwnerLease::IsAlive(config.state_dir, jr.owner);
    j_jobs.push_back({{"path", path_of(jr.file_id)}, {"kind", JobKindName(jr.kind)},
                      {"state", alive ? "sending" : "interrupted"}, {"started_at", jr.started_at}});
  }
  for (const JobRecord& jr : *failures) {
    // A job the server refused is listed once, under its file's rejection.
    if (jr.state == JobState::kRejected) continue;
    j_failures.push_back({{"path", path_of(jr.file_id)}, {"kind", JobKindName(jr.kind)},
                          {"state", JobStateName(jr.state)}, {"attempts", jr.attempts},
                          {"reason", jr.last_error}, {"at", jr.finished_at}});
  }
  for (const FileRecord& f : *rejected) {
    j_rejected.push_back({{"path", path_of(f.id)}, {"reason", f.reason}});
  }
  for (const auto& r : *roots) {
    j_roots.push_back({{"path", r.path}, {"synced", r.synced}, {"pending", r.pending},
                       {"missing", r.missing}, {"rejected", r.rejected}});
  }
  for (const auto& b : *buckets) {
    const double rate = RateFor(config, b.key);
    const double tokens = std::min(1.0, b.tokens + std::max(0.0, now - b.refilled_at) * rate);
    double wait = tokens >= 1.0 ? 0.0 : (1.0 - tokens) / rate;
    if (b.paused_until > now) wait = std::max(wait, b.paused_until - now);
    j_buckets.push_back({{"bucket", b.key}, {"label", BucketLabel(config, b.key)}, {"tokens", tokens},
                         {"next_request_in_s", wait},
                         {"paused_until", b.paused_until > now ? b.paused_until : 0.0}});
  }
  nlohmann::json studio;
  if (profile->shared) {
    auto st = StudioStatus(*profile->shared, so.runs, studio);
    if (!st.ok()) return FailWith(options, "status", st, kExitUsage);
  }
  auto watcher = ReadWatcherInfo(config.state_dir);
  nlohmann::json j_watcher;
  if (watcher.ok() && watcher->pid > 0) {
    j_watcher = {{"running", watcher->running}, {"pid", watcher->pid}, {"since", watcher->since},
                 {"last_event", watcher->last_event}, {"last_event_at", watcher->last_event_at},
                 {"listen", watcher->listen}};
  }
  if (options.json) {
    // "failed" and "rejected" are counters everywhere else: the lists are *_files.
    JsonReport json("status");
    json.Set({{"runs", j_runs}, {"in_flight", j_jobs}, {"failed_files", j_failures},
              {"rejected_files", j_rejected}, {"roots", j_roots}, {"throttle", j_buckets}});
    if (!studio.is_null()) json["studio"] = studio;
    if (!j_watcher.is_null()) json["watcher"] = j_watcher;
    json.Print(kExitOk);
    return kExitOk;
  }
  if (options.quiet) return kExitOk;
  std::printf("Last runs (newest first):\n");
  if (runs->empty()) std::printf("  none yet\n");
  for (const RunRecord& r : *runs) {
    const bool open = r.finished_at == 0;
    const bool alive = open && r.pid > 0 && ::kill(r.pid, 0) == 0;
    // Sync's words for the outcomes (plan, sync, push and status say the same).
    std::printf("  %s  %-5s %-8s %5s  %lld uploaded, %lld revised, %lld skipped, %lld rejected, %lld failed, "
                "%lld downloaded  pid %d\n",
                LocalTime(r.started_at).c_str(), r.command.c_str(),
                open ? (alive ? "running" : "killed") : ("exit " + std::to_string(r.exit_code)).c_str(),
                open ? "" : (std::to_string(r.finished_at - r.started_at) + "s").c_str(),
                (long long)r.counts.uploaded, (long long)r.counts.revised, (long long)r.counts.skipped,
                (long long)r.counts.rejected, (long long)r.counts.failed, (long long)r.counts.downloaded, r.pid);
  }
  if (watcher.ok() && watcher->pid > 0) {
    if (watcher->running) {
      std::printf("\nWatcher: running, pid %d, since %s%s%s\n", watcher->pid, LocalTime(std::int64_t(watcher->since)).c_str(),
                  watcher->listen.empty() ? "" : ", listening on ", watcher->listen.c_str());
    } else {
      std::printf("\nWatcher: not running (pid %d started %s)\n", watcher->pid,
                  LocalTime(std::int64_t(watcher->since)).c_str());
    }
    if (!watcher->last_event.empty()) {
      std::printf("  last event %s: %s\n", LocalTime(std::int64_t(watcher->last_event_at)).c_str(),
                  watcher->last_event.c_str());
    }
  }
  std::printf("\nFiles by root:\n");
  for (const auto& r : *roots) {
    std::printf("  %s: %lld synced, %lld pending, %lld missing, %lld rejected\n", r.path.c_str(),
                (long long)r.synced, (long long)r.pending, (long long)r.missing, (long long)r.rejected);
  }
  std::printf("\nIn flight: %zu\n", jobs->size());
  constexpr std::size_t kJobsShown = 10;  // a count matters more than a long list
  for (std::size_t i = 0; i < j_jobs.size(); ++i) {
    if (i == kJobsShown) {
      std::printf("  ... and %zu more (--json lists all)\n", j_jobs.size() - kJobsShown);
      break;
    }
    const auto& jj = j_jobs[i];
    std::printf("  %-11s %-8s %s\n", jj["state"].get<std::string>().c_str(), jj["kind"].get<std::string>().c_str(),
                jj["path"].get<std::string>().c_str());
  }
  std::printf("\nFailed uploads (the next run retries them): %zu\n", j_failures.size());
  for (const auto& jf : j_failures) {
    std::printf("  %s  (%s)\n", Escaped(jf["path"].get<std::string>()).c_str(),
                Escaped(jf["reason"].get<std::string>()).c_str());
  }
  std::printf("\nRejected files (sent again once changed; `shotsync ignore PATH` acknowledges one): %zu%s\n",
              rejected->size(), int(rejected->size()) == so.files ? " (newest shown)" : "");
  for (const FileRecord& f : *rejected) {
    std::printf("  %s  (%s)\n", Escaped(path_of(f.id)).c_str(), Escaped(f.reason).c_str());
  }
  std::printf("\nThrottle:\n");
  if (buckets->empty()) std::printf("  no requests yet\n");
  for (const auto& jb : j_buckets) {
    const double wait = jb["next_request_in_s"].get<double>();
    const double paused = jb["paused_until"].get<double>();
    const bool bandwidth = jb["bucket"].get<std::string>().rfind("bwlimit:", 0) == 0;
    std::string line = wait <= 0 ? (bandwidth ? "bytes may go now" : "a request may go now")
                                 : (bandwidth ? "next bytes in " : "next request in ") +
                                       std::to_string(int(wait + 0.999)) + " s";
    if (paused > 0) line += " (server asked to pause until " + LocalTime(std::int64_t(paused + 0.999)) + ")";
    std::printf("  %s: %s\n", jb["label"].get<std::string>().c_str(), line.c_str());
  }
  if (!studio.is_null()) PrintStudio(studio);
  return kExitOk;
}

}  // namespace

Command AddStatusCommand(CLI::App& app) {
  auto opts = std::make_shared<StatusOptions>();
  auto* status = app.add_subcommand("status", "last runs, files in flight, failed and rejected files, throttle");
  status->add_option("--runs", opts->runs, "how many runs to show (10)")->check(CLI::Range(1, 1000));
  status->add_option("--files", opts->files, "how many failed/rejected files to show (20)")->check(CLI::Range(1, 100000));
  return {status, [opts](const GlobalOptions& g) { return RunStatus(g, *opts); }};
}

}  // namespace shotsync::cli
