// Watch: one profile, always on (docs/watch.md, architecture §10).
//
//   inotify     every folder of every root is watched (folders that appear
//               are added and listed); a file is noticed when it is closed
//               after writing or moved in
//   settle      a noticed file is sent once nothing has written to it for
//               `settle` and nobody holds it open, so a file still being
//               written or a tmp-then-rename export goes once, complete
//   send        settled files go up as a push does: the same claims,
//               throttle and manifest, so a `sync` or `push` beside the
//               watcher stays exactly once
//   rescan      a full sync at start, every rescan_interval, after the
//               kernel's queue overflowed, and when a root comes back
//   pull        with HeadshotPro configured: an incremental pull at start
//               and every poll_interval, and one for the model a verified
//               webhook names (events for one model are coalesced)
//   listener    POST /webhooks/headshotpro, GET /metrics, GET /healthz
//
// Failures never end the watcher: a file that failed for a transient
// reason is tried again with backoff, a rescan or pull that could not reach
// the service too, each distinct error logged once. Stop (SIGTERM) lets the
// running transfers end and returns ok; the next run resumes.
#pragma once

#include <functional>
#include <memory>
#include <stop_token>
#include <string>

#include "shotsync/config.hpp"
#include "shotsync/log.hpp"
#include "shotsync/manifest.hpp"
#include "shotsync/status.hpp"

namespace shotsync {

class SharedStore;

// What the watcher did, one line each, for the terminal.
struct WatchEvent {
  enum Kind { kUploaded, kRevised, kFailed, kRejected, kDownloaded, kNote } kind = kNote;
  std::string path;
  std::string text;  // the reason, or the note
};
using WatchEventFn = std::function<void(const WatchEvent&)>;

struct WatchOptions {
  std::stop_token stop;   // finish running transfers, then return
  std::stop_token abort;  // cancel running transfers too
  SharedStore* shared = nullptr;  // studio mode: the uploads' store (pulls open their own)
  Logger* log = nullptr;
  // SIGHUP: the config read again. A new state_dir or shared url needs a
  // restart (said once, the old config kept); an error keeps the old one.
  std::function<Result<Config>()> reload;
  WatchEventFn on_event;
};

class Watcher {
 public:
  Watcher(Config config, Manifest& manifest, WatchOptions options);
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Runs until options.stop. Returns an error only for what a restart
  // cannot cure either: another watcher on this profile (kBusy), a listen
  // address that cannot be bound, a webhook_listen without a secret.
  Status Run();

  // From any thread (the signal thread): read the config again.
  void RequestReload();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// `shotsync status`: a watcher running on this state folder, from the file
// it keeps there (<state_dir>/watch.json) and its lock.
struct WatcherInfo {
  bool running = false;
  int pid = 0;
  double since = 0;            // Unix seconds
  std::string last_event;      // "uploaded a.jpg", "webhook model.photos_ready"
  double last_event_at = 0;
  std::string listen;          // "127.0.0.1:8787" when listening
};
Result<WatcherInfo> ReadWatcherInfo(const std::string& state_dir);  // running=false when none

}  // namespace shotsync
