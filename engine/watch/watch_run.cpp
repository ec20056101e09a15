// The watcher's loop (shotsync/watch.hpp). Threads, each owned and joined:
//
//   thread            does                                   waits on
//   Run's caller      rescans, sends settled files (RunSync)  cv (events, deadlines, stop)
//   inotify reader    turns events into Settler activity      poll(inotify fd, eventfd)
//   puller            incremental pulls (RunPull)             pull_cv (requests, poll deadline, stop)
//   listener(s)       webhooks, /metrics, /healthz            poll(sockets, eventfd)
//   notifier          systemd's watchdog                      its own stop token
#include "shotsync/watch.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "shotsync/fd.hpp"
#include "shotsync/metrics.hpp"
#include "shotsync/pull.hpp"
#include "shotsync/retry.hpp"
#include "shotsync/scanner.hpp"
#include "shotsync/shared_store.hpp"
#include "shotsync/sync.hpp"
#include "shotsync/throttle.hpp"
#include "watch/inotify.hpp"
#include "watch/listener.hpp"
#include "watch/notify.hpp"
#include "watch/settle.hpp"

namespace shotsync {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;

Clock::duration Seconds(double s) { return duration_cast<Clock::duration>(std::chrono::duration<double>(s)); }

// A file held open this long without a write is sent anyway.
constexpr auto kMaxHold = std::chrono::minutes(10);
// Files per RunSync: a mass drop goes up in several runs, each one claimed
// and recorded before the next starts.
constexpr std::size_t kBatch = 256;
// How long a file another process is sending is waited for before it goes
// back to the queue (the watcher must not sit on one file for ten minutes).
constexpr double kBusyWait = 30;
// With the inotify watch limit reached, folders without a watch are
// rescanned this often.
constexpr auto kLimitRescan = std::chrono::minutes(1);
// A model's pull (after a webhook) is tried this often before it is left
// to the poll: the team listing may not show the model yet.
constexpr int kModelPullAttempts = 5;
// Webhook events for one model within this window make one pull.
constexpr auto kPullCoalesce = std::chrono::seconds(2);
// A lost root is looked for again this often.
constexpr auto kRootRetry = std::chrono::seconds(5);
// Rescans, pulls and files that could not reach the service back off up to this.
constexpr BackoffPolicy kServiceDown{.base_s = 2, .cap_s = 300, .max_attempts = 1 << 30, .floor = 0.5};

}  // namespace

// Named, not anonymous: Impl holds them (and a unity build includes this
// file with others).
namespace watch {

// The file `status` reads, replaced atomically (informational: no fsync).
class StatusFile {
 public:
  explicit StatusFile(std::string path) : path_(std::move(path)) {}
  void Start(std::string listen) {
    std::lock_guard lock(mu_);
    info_ = {{"pid", int(::getpid())}, {"since", WallSeconds()}, {"listen", std::move(listen)},
             {"last_event", ""}, {"last_event_at", 0.0}};
    WriteLocked();
  }
  void Note(const std::string& event) {
    std::lock_guard lock(mu_);
    info_["last_event"] = event;
    info_["last_event_at"] = WallSeconds();
    WriteLocked();
  }

 private:
  void WriteLocked() {
    const std::string tmp = path_ + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << info_.dump() << "\n";
      if (!out) return;
    }
    (void)std::rename(tmp.c_str(), path_.c_str());
  }
  std::string path_;
  std::mutex mu_;
  nlohmann::json info_;
};

// Says each distinct problem of one source once, and when it is over.
class OnceLog {
 public:
  explicit OnceLog(Logger* log) : log_(log) {}
  void Problem(const std::string& source, const std::string& message) {
    std::lock_guard lock(mu_);
    auto& last = last_[source];
    if (last == message) return;
    last = message;
    if (log_) log_->Log(LogLevel::kError, message, true);
  }
  void Fine(const std::string& source, const std::string& message) {
    std::lock_guard lock(mu_);
    const auto it = last_.find(source);
    if (it == last_.end()) return;
    last_.erase(it);
    if (log_ && !message.empty()) log_->Log(LogLevel::kInfo, message, true);
  }
  std::string AnyProblem() const {
    std::lock_guard lock(mu_);
    return last_.empty() ? std::string() : last_.begin()->second;
  }

 private:
  Logger* log_;
  mutable std::mutex mu_;
  std::map<std::string, std::string> last_;
};

}  // namespace watch

namespace {

// Anything but ok or a stop. Every failure is tried again later, a refused
// token too (backing off to minutes): a fixed token file or a reload then
// resumes the watcher without a restart.
bool Failed(const Status& s) { return !s.ok() && s.code() != Code::kCancelled; }

std::vector<ScanOptions> ScanOptionsOf(const Config& c) {
  std::vector<ScanOptions> out;
  for (const RootConfig& r : c.roots) out.push_back(ScanOptions{.ignore = r.ignore, .include = r.include});
  return out;
}

// No wait longer than an hour: a deadline of time_point::max() must not
// overflow inside the condition variable, and an hourly turn costs nothing.
Clock::time_point Capped(Clock::time_point t, Clock::time_point now) {
  return std::min(t, now + std::chrono::hours(1));
}

std::string Secs(std::chrono::milliseconds d) { return std::to_string((d.count() + 999) / 1000) + " s"; }

}  // namespace

struct Watcher::Impl {
  Impl(Config c, Manifest& m, WatchOptions o)
      : config(std::move(c)), manifest(m), options(std::move(o)), once(options.log),
        settler(Seconds(config.watch.settle_s), kMaxHold), backoff(kServiceDown),
        status_file(config.state_dir + "/watch.json") {}

  Status Run();
  void Loop();
  // The loop's work, outside the lock.
  void Rescan(const std::string& why);
  void SendBatch(std::vector<std::string> files);
  void Reload();
  void WatchRoots();
  void PullLoop(std::stop_token stop);
  void AskPull(const std::string& model);  // "" = every model (the poll)
  Status StartListeners();
  // When the periodic rescan is due from now (max: rescan_interval off). mu held.
  Clock::time_point NextPeriodicRescan() const {
    return config.watch.rescan_interval_s > 0 ? Clock::now() + Seconds(config.watch.rescan_interval_s)
                                              : Clock::time_point::max();
  }
  void Count(const SyncReport& r);

  void Event(WatchEvent::Kind kind, const std::string& path, const std::string& text) {
    if (options.on_event) options.on_event(WatchEvent{kind, path, text});
  }
  void Info(const std::string& line) {
    if (options.log) options.log->Info(line);
  }
  // The root a noticed path belongs to and whether it is a candidate there
  // (the scanner's own include/ignore rules, hidden names and .part files).
  bool Candidate(std::size_t root, const std::string& path) const;
  void OnFile(std::size_t root, std::string path, watch::Activity what);
  void Notify() {  // mu held
    ++generation;
    cv.notify_all();
  }

  Config config;  // guarded by mu (read by the puller under mu)
  Manifest& manifest;
  WatchOptions options;
  watch::OnceLog once;
  WatchMetrics metrics;

  std::mutex mu;
  std::condition_variable_any cv;
  std::uint64_t generation = 0;                  // mu: bumped by every Notify
  std::atomic<bool> limit_reached{false};        // inotify's watch limit: rescan often
  watch::Settler settler;                        // mu
  std::map<std::string, int> attempts;           // mu: failed sends per file
  bool reload_requested = false;                 // mu
  std::optional<std::string> rescan_reason = "start";  // mu
  Clock::time_point next_rescan = Clock::time_point::max();  // mu: periodic, or after a failure
  int rescan_failures = 0;                       // mu
  std::vector<bool> root_lost;                   // mu
  Clock::time_point next_root_retry{};           // mu
  std::vector<ScanOptions> scan;                 // per root, for Candidate (mu)

  // The puller's queue.
  std::mutex pull_mu;
  std::condition_variable_any pull_cv;
  std::map<std::string, Clock::time_point> pull_models;  // model id -> when to pull it
  Clock::time_point next_poll{};
  std::uint64_t pull_generation = 0;
  bool pulls_enabled = false;

  Backoff backoff;
  watch::StatusFile status_file;
  std::unique_ptr<watch::InotifyTree> tree;
  SystemdNotifier notifier;
  std::unique_ptr<Manifest> webhook_db;  // the listener's own connection
  std::mutex webhook_db_mu;
  std::vector<std::unique_ptr<WatchListener>> listeners;
  std::string listen_text;               // "127.0.0.1:8787" (the bound port)
  std::jthread puller;                   // last: uses everything above
};

bool Watcher::Impl::Candidate(std::size_t root, const std::string& path) const {
  if (root >= config.roots.size()) return false;
  const std::string& base = config.roots[root].path;
  if (path.size() <= base.size() + 1 || path.compare(0, base.size(), base) != 0 || path[base.size()] != '/') {
    return false;
  }
  const std::string_view rel = std::string_view(path).substr(base.size() + 1);
  // Every folder on the way must be one the walk would enter.
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = rel.find('/', start);
    const std::string_view dir = rel.substr(0, start ? start - 1 : 0);
    const std::string_view name = rel.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (name.empty() || name.front() == '.') return false;
    if (IsIgnored(dir, name, scan[root])) return false;
    if (slash == std::string_view::npos) return !name.ends_with(".part") && IsIncluded(name, scan[root]);
    start = slash + 1;
  }
}

void Watcher::Impl::OnFile(std::size_t root, std::string path, watch::Activity what) {
  std::lock_guard lock(mu);
  if (!Candidate(root, path)) return;
  const bool was_idle = settler.pending() == 0;
  settler.Saw(path, what, Clock::now());
  metrics.queue_depth.store(settler.pending(), std::memory_order_relaxed);
  // The loop sleeps until the earliest due time; only two things make one
  // earlier: the first pending file, and a close (an open file waits up to
  // max_hold, a closed one only `settle`). Writes never do.
  const bool closed = what == watch::Activity::kClosedWrite || what == watch::Activity::kClosedRead;
  if ((was_idle || closed) && settler.pending() > 0) Notify();
}

void Watcher::Impl::WatchRoots() {
  // mu held by the caller for root_lost; the tree's own lock is separate.
  for (std::size_t i = 0; i < config.roots.size(); ++i) {
    if (tree->Watching(i)) continue;
    const std::string source = "root " + config.roots[i].path;
    if (Status s = tree->AddRoot(i, config.roots[i].path); !s.ok()) {
      if (watch::IsWatchLimit(s)) {
        // Not lost: there, but past the limit; the rescans cover it.
        if (!limit_reached.exchange(true)) once.Problem("inotify limit", "watch: " + s.message());
        continue;
      }
      once.Problem(source, config.roots[i].where + ": " + s.message() + " (watched again when it is back)");
      root_lost[i] = true;
      continue;
    }
    if (root_lost[i]) {
      root_lost[i] = false;
      once.Fine(source, "root " + config.roots[i].path + " is back: rescanning");
      rescan_reason = "a root came back";
    }
  }
}


void Watcher::Impl::Count(const SyncReport& r) {
  metrics.uploads.fetch_add(r.uploaded, std::memory_order_relaxed);
  metrics.revisions.fetch_add(r.revised, std::memory_order_relaxed);
  metrics.failed.fetch_add(r.failed, std::memory_order_relaxed);
  metrics.rejected.fetch_add(r.rejected + r.plan.rejected, std::memory_order_relaxed);
  metrics.bytes_sent.fetch_add(std::int64_t(r.bytes_sent), std::memory_order_relaxed);
  metrics.retries.fetch_add(r.retries, std::memory_order_relaxed);
  metrics.throttled_429.fetch_add(r.throttled_429, std::memory_order_relaxed);
  metrics.throttle_wait_us.fetch_add(std::int64_t(r.throttle_wait_s * 1e6), std::memory_order_relaxed);
}

void Watcher::Impl::Rescan(const std::string& why) {
  Config snapshot;
  {
    std::lock_guard lock(mu);
    snapshot = config;
    // A lost root was said once; its rescan comes when it is back. (A sync
    // of some roots marks nothing missing in the others.)
    for (std::size_t i = root_lost.size(); i-- > 0;) {
      if (root_lost[i]) snapshot.roots.erase(snapshot.roots.begin() + std::ptrdiff_t(i));
    }
    if (snapshot.roots.empty()) {  // a pull-only profile, or every root gone
      next_rescan = NextPeriodicRescan();
      return;
    }
  }
  Info("watch: rescan (" + why + ")");
  SyncOptions so;
  so.command = "watch";
  so.stop = options.stop;
  so.abort = options.abort;
  so.shared = options.shared;
  SystemdNotifier::Busy busy(notifier);
  SyncReport r = RunSync(snapshot, manifest, so, [&](const SyncEvent& e) {
    if (e.kind == SyncEvent::kDone && e.bytes > 0) {
      Event(e.revision ? WatchEvent::kRevised : WatchEvent::kUploaded, e.path, "");
      status_file.Note((e.revision ? "revised " : "uploaded ") + e.path);
    } else if (e.kind == SyncEvent::kFailed) {
      Event(WatchEvent::kFailed, e.path, e.reason);
    } else if (e.kind == SyncEvent::kWarning && options.log) {
      options.log->Warn(e.reason);
    }
  });
  metrics.rescans.fetch_add(1, std::memory_order_relaxed);
  Count(r);
  std::lock_guard lock(mu);
  if (r.status.code() == Code::kCancelled) return;
  if (Failed(r.status)) {
    // Down, refusing the token, out of reach: try again later, never exit.
    const auto wait = backoff.Delay(++rescan_failures);
    once.Problem("service", "watch: " + r.status.message() + " (rescanning again in " + Secs(wait) + ")");
    next_rescan = Clock::now() + wait;
    return;
  }
  rescan_failures = 0;
  once.Fine("service", "watch: the service answers again");
  metrics.last_sync_success_s.store(std::int64_t(WallSeconds()), std::memory_order_relaxed);
  next_rescan = NextPeriodicRescan();
  if (limit_reached.load()) next_rescan = std::min(next_rescan, Clock::now() + kLimitRescan);
}

void Watcher::Impl::SendBatch(std::vector<std::string> files) {
  // Gone since it was noticed (a temporary file renamed away, a deletion):
  // nothing to send. A file renamed into place arrives as its own event.
  std::erase_if(files, [](const std::string& f) {
    struct stat st {};
    return ::stat(f.c_str(), &st) != 0 || !S_ISREG(st.st_mode);
  });
  if (files.empty()) return;
  Config snapshot;
  {
    std::lock_guard lock(mu);
    snapshot = config;
  }
  SyncOptions so;
  so.command = "watch";
  so.files = files;
  so.busy_wait_s = kBusyWait;
  so.stop = options.stop;
  so.abort = options.abort;
  so.shared = options.shared;
  std::set<std::string> settled;  // an outcome that needs no second try
  SystemdNotifier::Busy busy(notifier);
  SyncReport r = RunSync(snapshot, manifest, so, [&](const SyncEvent& e) {
    switch (e.kind) {
      case SyncEvent::kPlanned:
        if (e.item && e.item->action == Action::kSkip) settled.insert(e.path);
        if (e.item && e.item->action == Action::kRejected) {
          settled.insert(e.path);
          Event(WatchEvent::kRejected, e.path, e.reason);
        }
        break;
      case SyncEvent::kDone:
        settled.insert(e.path);
        if (e.bytes > 0) {
          Event(e.revision ? WatchEvent::kRevised : WatchEvent::kUploaded, e.path, "");
          status_file.Note((e.revision ? "revised " : "uploaded ") + e.path);
        }
        break;
      case SyncEvent::kFailed: Event(WatchEvent::kFailed, e.path, e.reason); break;
      case SyncEvent::kWarning:
        if (options.log) options.log->Warn(e.reason);
        break;
      default: break;
    }
  });
  Count(r);
  for (const SyncFailure& f : r.failures) {
    if (f.permanent) settled.insert(f.path);  // rejected: sent again only once it changes
  }
  std::lock_guard lock(mu);
  const auto now = Clock::now();
  std::size_t again = 0;
  for (const std::string& f : files) {
    if (settled.contains(f)) {
      attempts.erase(f);
      continue;
    }
    if (r.status.code() == Code::kCancelled) continue;  // the next start's rescan finds it
    settler.Schedule(f, now + backoff.Delay(++attempts[f]));
    ++again;
  }
  metrics.queue_depth.store(settler.pending(), std::memory_order_relaxed);
  if (Failed(r.status)) {
    once.Problem("service", "watch: " + r.status.message() + " (the files are tried again)");
  } else if (again > 0) {
    // Each file's own line was said (kFailed); this says what happens next, once.
    once.Problem("service", "watch: uploads are failing; the files are tried again, with backoff");
  } else if (r.status.ok()) {
    once.Fine("service", "watch: the service answers again");
    if (r.failed == 0) metrics.last_sync_success_s.store(std::int64_t(WallSeconds()), std::memory_order_relaxed);
  }
}

void Watcher::Impl::Reload() {
  if (!options.reload) return;
  notifier.Reloading();
  Result<Config> fresh = options.reload();
  std::unique_lock lock(mu);
  if (!fresh.ok()) {
    if (options.log) options.log->Log(LogLevel::kError, "reload: " + fresh.status().message() + "; the running config stays", true);
  } else if (fresh->state_dir != config.state_dir || fresh->shared.url != config.shared.url) {
    if (options.log) options.log->Log(LogLevel::kError, "reload: a new state_dir or [shared] url needs a restart; the running config stays", true);
  } else {
    if (fresh->headshotpro.webhook_listen != config.headshotpro.webhook_listen ||
        fresh->watch.metrics_listen != config.watch.metrics_listen) {
      if (options.log) options.log->Warn("reload: new listen addresses take effect at the next start");
      fresh->headshotpro.webhook_listen = config.headshotpro.webhook_listen;
      fresh->watch.metrics_listen = config.watch.metrics_listen;
    }
    config = std::move(*fresh);
    scan = ScanOptionsOf(config);
    settler.set_settle(Seconds(config.watch.settle_s));
    root_lost.assign(config.roots.size(), false);
    // Root indices may have moved: watch them again from scratch.
    tree->Clear();
    WatchRoots();
    rescan_reason = "config reloaded";
    Info("reload: config read again from " + config.source);
  }
  lock.unlock();
  notifier.Ready("watching");
}

void Watcher::Impl::AskPull(const std::string& model) {
  std::lock_guard lock(pull_mu);
  if (!pulls_enabled) return;
  // Events for one model arriving together (a flood, a status change and
  // photos_ready in a row) make one pull: the first sets its time, the
  // rest find it set. Headshots a few seconds later cost nobody anything.
  double settle = 1;
  {
    std::lock_guard l(mu);
    settle = config.watch.settle_s;
  }
  pull_models.try_emplace(model, Clock::now() + std::max<Clock::duration>(Seconds(settle), kPullCoalesce));
  ++pull_generation;
  pull_cv.notify_all();
}

void Watcher::Impl::PullLoop(std::stop_token stop) {
  Config snapshot;
  {
    std::lock_guard lock(mu);
    snapshot = config;
  }
  auto db = Manifest::Open(snapshot.ManifestPath());
  if (!db.ok()) {
    once.Problem("pull", "watch: pulls are off: " + db.status().message());
    return;
  }
  std::unique_ptr<SharedStore> shared;
  if (!snapshot.shared.url.empty()) {
    auto s = SharedStore::Open(SharedOptions{.url = snapshot.shared.url, .host = snapshot.shared.host,
                                             .lease_s = double(snapshot.shared.lease)});
    if (!s.ok()) {
      once.Problem("pull", "watch: pulls are off: " + s.status().message());
      return;
    }
    shared = std::move(*s);
  }
  int failures = 0;                           // the poll's, in a row
  std::map<std::string, int> model_failures;  // each model's pull's, in a row
  for (;;) {
    std::string model;  // "" = all
    {
      std::unique_lock lock(pull_mu);
      for (;;) {
        if (stop.stop_requested()) return;
        const auto now = Clock::now();
        if (now >= next_poll) {
          pull_models.clear();  // a pull of everything covers them
          next_poll = Clock::time_point::max();
          break;
        }
        auto due = std::min_element(pull_models.begin(), pull_models.end(),
                                    [](const auto& a, const auto& b) { return a.second < b.second; });
        if (due != pull_models.end() && due->second <= now) {
          model = due->first;
          pull_models.erase(due);
          break;
        }
        auto wake = Capped(next_poll, now);
        if (due != pull_models.end()) wake = std::min(wake, due->second);
        const std::uint64_t seen = pull_generation;
        pull_cv.wait_until(lock, stop, wake, [&] { return pull_generation != seen; });
      }
    }
    {
      std::lock_guard lock(mu);
      snapshot = config;
    }
    PullOptions po;
    po.command = "watch";
    po.model = model;
    po.stop = options.stop;
    po.abort = options.abort;
    po.shared = shared.get();
    Info(model.empty() ? "watch: pull (poll)" : "watch: pull for model " + model);
    SystemdNotifier::Busy busy(notifier);
    PullReport r = RunPull(snapshot, **db, po, [&](const PullEvent& e) {
      if (e.kind == PullEvent::kDownloaded) {
        Event(WatchEvent::kDownloaded, e.path, "");
        status_file.Note("downloaded " + e.path);
      } else if (e.kind == PullEvent::kFailed) {
        Event(WatchEvent::kFailed, e.path, e.reason);
      }
    });
    metrics.pulls.fetch_add(1, std::memory_order_relaxed);
    metrics.downloads.fetch_add(r.downloaded, std::memory_order_relaxed);
    metrics.bytes_received.fetch_add(std::int64_t(r.bytes), std::memory_order_relaxed);
    metrics.retries.fetch_add(r.retries, std::memory_order_relaxed);
    metrics.throttled_429.fetch_add(r.throttled_429, std::memory_order_relaxed);
    metrics.throttle_wait_us.fetch_add(std::int64_t(r.throttle_wait_s * 1e6), std::memory_order_relaxed);
    if (r.status.code() == Code::kCancelled) return;
    std::lock_guard lock(pull_mu);
    if (Failed(r.status) || r.failed > 0) {
      std::string why = r.status.message();
      if (r.status.ok()) {
        why = r.failures.empty() ? std::to_string(r.failed) + " downloads failed"
                                 : r.failures.front().what + ": " + r.failures.front().reason;
      }
      int& tries = model.empty() ? failures : model_failures[model];
      ++tries;
      if (!model.empty() && tries >= kModelPullAttempts) {
        // A model the team listing does not show (yet): not for ever.
        once.Problem("pull " + model, "watch: pull for model " + model + ": " + why +
                                          " (given up; the next poll or pull fetches what it has)");
        model_failures.erase(model);
        continue;
      }
      const auto wait = backoff.Delay(tries);
      once.Problem("pull", "watch: pull: " + why + " (trying again in " + Secs(wait) + ")");
      if (model.empty()) next_poll = Clock::now() + wait;
      else pull_models.try_emplace(model, Clock::now() + wait);
      continue;
    }
    if (model.empty()) failures = 0;
    else model_failures.erase(model);
    once.Fine("pull", "watch: pulls work again");
    metrics.last_pull_success_s.store(std::int64_t(WallSeconds()), std::memory_order_relaxed);
    if (model.empty() && snapshot.watch.poll_interval_s > 0) {
      next_poll = Clock::now() + Seconds(snapshot.watch.poll_interval_s);
    }
  }
}

Status Watcher::Impl::StartListeners() {
  const std::string& hook_at = config.headshotpro.webhook_listen;
  const std::string& metrics_at = config.watch.metrics_listen;
  if (!hook_at.empty()) {
    if (config.headshotpro.webhook_secret.empty()) {
      return Status::Invalid("headshotpro.webhook_listen is set but there is no webhook secret: set "
                             "HEADSHOTPRO_WEBHOOK_SECRET or headshotpro.webhook_secret_file (mode 600)");
    }
    if (config.headshotpro.key.empty()) {
      return Status::Invalid("headshotpro.webhook_listen is set but there is no HeadshotPro key to pull with: "
                             "set HEADSHOTPRO_API_KEY or headshotpro.key_file");
    }
    auto db = Manifest::Open(config.ManifestPath());
    if (!db.ok()) return db.status();
    webhook_db = std::move(*db);
  }
  auto health = [this]() -> Status {
    const std::string problem = once.AnyProblem();
    return problem.empty() ? Status::Ok() : Status(Code::kNetwork, problem);
  };
  auto start = [&](const std::string& at, WatchListener::Routes routes) -> Status {
    const auto address = ParseListenAddress(at);
    if (!address) return Status::Invalid("not a listen address: " + at);
    WatchListener::Hooks hooks;
    hooks.secret = config.headshotpro.webhook_secret;
    hooks.remember = [this](const std::string& key) -> Result<bool> {
      std::lock_guard lock(webhook_db_mu);
      return webhook_db->RememberWebhookEvent(key, WallSeconds());
    };
    hooks.on_event = [this](const WebhookEvent& e) {
      status_file.Note("webhook " + e.event + (e.model_id.empty() ? "" : " " + e.model_id));
      if (e.wants_pull && !e.model_id.empty()) AskPull(e.model_id);
    };
    hooks.metrics = &metrics;
    hooks.health = health;
    hooks.log = options.log;
    auto l = WatchListener::Start(*address, routes, std::move(hooks));
    if (!l.ok()) return l.status();
    std::string bound = address->host.find(':') != std::string::npos ? "[" + address->host + "]" : address->host;
    bound += ":" + std::to_string((*l)->port());
    Info("watch: listening on " + bound + (routes.webhooks ? " (webhooks" : " (") +
         (routes.webhooks && routes.metrics ? ", " : "") + (routes.metrics ? "metrics)" : ")"));
    if (listen_text.empty()) listen_text = bound;
    else listen_text += " " + bound;
    listeners.push_back(std::move(*l));
    return Status::Ok();
  };
  if (!hook_at.empty()) {
    SHOTSYNC_RETURN_IF_ERROR(start(hook_at, {.webhooks = true, .metrics = metrics_at.empty()}));
  }
  if (!metrics_at.empty()) SHOTSYNC_RETURN_IF_ERROR(start(metrics_at, {.webhooks = false, .metrics = true}));
  return Status::Ok();
}

Status Watcher::Impl::Run() {
  // One watcher per profile: a second would only double every request.
  const std::string lock_path = config.state_dir + "/watch.lock";
  UniqueFd lock_fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock_fd) return Status::Io(lock_path, errno);
  if (::flock(lock_fd.get(), LOCK_EX | LOCK_NB) != 0) {
    auto info = ReadWatcherInfo(config.state_dir);
    const std::string pid = info.ok() && info->pid > 0 ? " (pid " + std::to_string(info->pid) + ")" : "";
    return Status(Code::kBusy, "another shotsync watch" + pid + " runs on this profile (" + config.state_dir + ")");
  }
  metrics.started_s.store(std::int64_t(WallSeconds()), std::memory_order_relaxed);
  {
    std::lock_guard lock(pull_mu);
    pulls_enabled = !config.headshotpro.key.empty();
    // The first poll at start catches what webhooks missed while it was down.
    next_poll = config.watch.poll_interval_s > 0 ? Clock::now() : Clock::time_point::max();
  }
  SHOTSYNC_RETURN_IF_ERROR(StartListeners());
  scan = ScanOptionsOf(config);
  root_lost.assign(config.roots.size(), false);
  auto tree_or = watch::InotifyTree::Start({
      .on_file = [this](std::size_t root, std::string path, watch::Activity what) { OnFile(root, std::move(path), what); },
      .on_overflow =
          [this] {
            metrics.overflows.fetch_add(1, std::memory_order_relaxed);
            std::lock_guard lock(mu);
            if (!rescan_reason) rescan_reason = "the kernel's event queue overflowed";
            Notify();
          },
      .on_root_lost =
          [this](std::size_t root) {
            std::lock_guard lock(mu);
            if (root >= root_lost.size()) return;
            root_lost[root] = true;
            once.Problem("root " + config.roots[root].path,
                         config.roots[root].where + ": " + config.roots[root].path +
                             " went away (deleted, moved or unmounted); watched again when it is back");
            Notify();
          },
      // May run while mu is held (a root being added): touches no state under mu.
      .on_watch_error =
          [this](std::size_t, const Status& why) {
            if (!watch::IsWatchLimit(why)) {
              once.Problem("watch " + why.message(), "watch: " + why.message());
              return;
            }
            // The first folder past the limit is named, the rest are not:
            // one line, and the fix is the same. Folders without a watch
            // are covered by rescans, every minute from now on.
            if (!limit_reached.exchange(true)) once.Problem("inotify limit", "watch: " + why.message());
          },
  });
  if (!tree_or.ok()) return tree_or.status();
  tree = std::move(*tree_or);
  {
    std::lock_guard lock(mu);
    WatchRoots();
  }
  status_file.Start(listen_text);
  if (pulls_enabled) puller = std::jthread([this](std::stop_token stop) { PullLoop(stop); });
  std::string ready = "watching " + std::to_string(config.roots.size()) + " root(s)";
  if (!listen_text.empty()) ready += ", listening on " + listen_text;
  Info("watch: " + ready);
  Event(WatchEvent::kNote, "", ready);
  notifier.Ready(ready);
  Loop();
  notifier.Stopping();
  if (puller.joinable()) {
    puller.request_stop();
    pull_cv.notify_all();
    puller.join();
  }
  listeners.clear();
  tree.reset();
  Info("watch: stopped");
  return Status::Ok();
}

void Watcher::Impl::Loop() {
  const auto beat = notifier.watchdog_interval();
  std::unique_lock lock(mu);
  for (;;) {
    notifier.Heartbeat();
    if (options.stop.stop_requested()) return;
    const auto now = Clock::now();
    if (reload_requested) {
      reload_requested = false;
      lock.unlock();
      Reload();
      lock.lock();
      continue;
    }
    if (std::find(root_lost.begin(), root_lost.end(), true) != root_lost.end() && now >= next_root_retry) {
      next_root_retry = now + kRootRetry;
      WatchRoots();
    }
    if (rescan_reason || now >= next_rescan) {
      const std::string why = rescan_reason.value_or(rescan_failures ? "retry" : "periodic");
      rescan_reason.reset();
      next_rescan = Clock::time_point::max();
      lock.unlock();
      Rescan(why);
      lock.lock();
      continue;
    }
    std::vector<std::string> due = settler.TakeDue(now);
    metrics.queue_depth.store(settler.pending() + std::int64_t(due.size()), std::memory_order_relaxed);
    if (!due.empty()) {
      lock.unlock();
      for (std::size_t i = 0; i < due.size() && !options.stop.stop_requested(); i += kBatch) {
        const auto end = due.begin() + std::ptrdiff_t(std::min(due.size(), i + kBatch));
        SendBatch(std::vector<std::string>(due.begin() + std::ptrdiff_t(i), end));
      }
      lock.lock();
      continue;
    }
    auto wake = std::min(next_rescan, settler.NextDue().value_or(Clock::time_point::max()));
    if (std::find(root_lost.begin(), root_lost.end(), true) != root_lost.end()) wake = std::min(wake, next_root_retry);
    if (beat.count() > 0) wake = std::min(wake, now + duration_cast<Clock::duration>(beat / 2));
    const std::uint64_t seen = generation;
    cv.wait_until(lock, options.stop, Capped(wake, now), [&] { return generation != seen; });
  }
}

Watcher::Watcher(Config config, Manifest& manifest, WatchOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), manifest, std::move(options))) {}

Watcher::~Watcher() = default;

Status Watcher::Run() { return impl_->Run(); }

void Watcher::RequestReload() {
  std::lock_guard lock(impl_->mu);
  impl_->reload_requested = true;
  impl_->Notify();
}

Result<WatcherInfo> ReadWatcherInfo(const std::string& state_dir) {
  WatcherInfo info;
  std::ifstream in(state_dir + "/watch.json");
  if (!in) return info;
  std::stringstream ss;
  ss << in.rdbuf();
  const auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (!j.is_object()) return info;
  info.pid = j.value("pid", 0);
  info.since = j.value("since", 0.0);
  info.last_event = j.value("last_event", "");
  info.last_event_at = j.value("last_event_at", 0.0);
  info.listen = j.value("listen", "");
  // Running while someone holds the lock (the file outlives a kill -9).
  UniqueFd fd(::open((state_dir + "/watch.lock").c_str(), O_RDONLY | O_CLOEXEC));
  if (fd && ::flock(fd.get(), LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) info.running = true;
  return info;
}

}  // namespace shotsync
