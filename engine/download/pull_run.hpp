// The pull run's internals (engine-only): the task table, the events the
// lister / engine / finisher threads send to the main thread, the finisher,
// and PullRun, whose members are defined one stage per file:
//   lister.cpp    listing members, models, photos (lister thread)
//   tasks.cpp     the task table: AddModel, AddTask, Fail, Gone (main thread)
//   refresh.cpp   signed-URL expiry and refresh (main thread)
//   fetch.cpp     Dispatch, Start, the CDN's answer, Retry (main thread)
//   finisher.cpp  the Finisher thread: fsync / syncfs, rename
//   recorder.cpp  OnFinished, Flush: recording in the manifest (main thread)
//   pull_run.cpp  Run, Prepare, Loop, Handle, RunPull; the thread table
//   studio.cpp    studio mode: download claims in the shared store (main thread)
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "shotsync/headshotpro.hpp"
#include "shotsync/pull.hpp"
#include "shotsync/retry.hpp"
#include "shotsync/session.hpp"
#include "shotsync/throttle.hpp"
#include "shotsync/transfer.hpp"
#include "shotsync/shared_store.hpp"

namespace shotsync::download {

using Clock = std::chrono::steady_clock;

std::optional<std::uint64_t> FileSize(const std::string& path);

// One model whose photos are pulled.
struct ModelState {
  std::string id, member_id, member_name, email, team, title;
  std::string member_folder;  // {member} from MemberFolders; "" = the name as LayoutValues makes it
  int gen = 0;                // listings made of it
  double listed_at = 0;       // wall seconds of the last listing
  const void* refresh_cause = nullptr;  // the task whose refusal caused the last listing
};

struct Task {
  std::size_t model = 0;  // index in models_
  std::string photo_id, variant, remote_id;
  std::string url;
  double expires_s = 0;
  double lifetime = 0;  // expires - listed_at, as seen when listed
  int started_gen = 0;  // the model's listing generation the running URL came from
  std::string final_path, part_path, dir;
  int attempts = 0, refreshes = 0;
  std::uint64_t expected = 0;  // length to verify (from the answer)
  bool resumed = false;
  enum State { kQueued, kFlight, kFinishing, kDone, kDropped } state = kQueued;
};

// What the lister thread and the engine / finisher threads send to the main thread.
struct Event {
  // kStop: a stop was requested (wakes the loop; nothing polls the tokens).
  enum Kind { kModel, kListError, kListDone, kTransfer, kFinished, kStop } kind = kModel;
  ModelState model;
  std::vector<HpPhoto> photos;
  Status status;
  Task* task = nullptr;
  HttpResponse resp;
};

class EventQueue {
 public:
  void Push(Event e) {
    {
      std::lock_guard lock(mu_);
      q_.push_back(std::move(e));
    }
    cv_.notify_one();
  }
  // Waits until an event arrives or `until` (max: no deadline); returns
  // every event waiting.
  std::deque<Event> Take(Clock::time_point until) {
    std::unique_lock lock(mu_);
    const auto arrived = [&] { return !q_.empty(); };
    if (until == Clock::time_point::max()) {
      cv_.wait(lock, arrived);  // wait_until(max) would overflow
    } else {
      cv_.wait_until(lock, until, arrived);
    }
    std::deque<Event> out;
    out.swap(q_);
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> q_;
};

// Makes finished downloads durable and renames them into place on its own
// thread, as a group commit (see finisher.cpp). Reads the Task fields
// part_path, final_path and expected, which the main thread leaves alone
// while the task is kFinishing; answers with a kFinished event.
class Finisher {
 public:
  Finisher(std::string dest, EventQueue& out);
  ~Finisher();
  void Add(Task* t);

 private:
  void Loop();
  static Status Open(const Task& t, int& fd);

  const std::string dest_;
  EventQueue& out_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task*> q_;
  bool done_ = false;
  bool use_syncfs_ = true;  // finisher thread only
  std::thread thread_;      // last: starts after the members it uses
};

class PullRun {
 public:
  PullRun(const Config& config, Manifest& manifest, std::unique_ptr<Manifest> bucket_db,
          const PullOptions& options, const PullEventFn& on_event);

  PullReport Run();

 private:
  // --- set-up, loop (pull_run.cpp) ---------------------------------------------
  Status Prepare();
  bool Stopping(bool abort_only) const;
  void SetFatal(Status st);
  void Emit(const PullEvent& e);
  void Handle(Event e);
  void Loop();

  // --- listing, lister thread (lister.cpp) -------------------------------------
  bool ListerStopping() const;
  void PushError(Status st);
  void ListAll();
  void ListModels();
  void ListFavoritesOrgWide(const std::unordered_map<std::string, const HpMember*>& by_email,
                            const std::map<std::string, std::string>& folders);
  // The photos (or the favorite) of one model, as the run lists them.
  Result<std::vector<HpPhoto>> ListModelPhotos(const std::string& model_id);

  // --- the task table, main thread (tasks.cpp) ---------------------------------
  void AddModel(ModelState m, std::vector<HpPhoto> photos);
  void AddTask(std::size_t model_index, const HpPhoto& p, const std::string& variant, const std::string& url);
  // Skipped (done before, deleted locally) or only planned: true when dropped.
  // done: the photo's row when it says done, else null.
  bool DropKnownOrPlanned(Task& task, const DownloadRecord* done);
  Status MakeDir(const std::string& dir);
  void Fail(Task& t, const std::string& reason);
  void Gone(Task& t, const std::string& reason);

  // --- signed URLs, main thread (refresh.cpp) ----------------------------------
  static double Margin(double lifetime) { return std::min(300.0, lifetime / 4); }
  bool NearExpiry(const Task& t) const;
  Status Refresh(std::size_t model_index, const void* cause);
  bool RefreshFailed(Task& t, const Status& st);

  // --- downloads, main thread (fetch.cpp) --------------------------------------
  void Dispatch();
  void Start(Task& t);
  void Retry(Task& t, const std::string& reason);
  void Truncate(const Task& t);
  void OnTransfer(Task& t, HttpResponse& r);
  void OnRefused(Task& t, const HttpResponse& r, const std::string& tail);
  void Finish(Task& t);

  // --- studio mode, main thread (studio.cpp; no-ops without a shared store) ----
  Status StartShared();
  void EndShared(const RunCounts& counts, int exit_code);
  // Claims the task's photo for this destination; true when another host
  // has it or had it (the task is dropped and counted).
  bool ClaimedElsewhere(Task& task);
  void FinishShared(const std::vector<DownloadRecord>& done);
  void ReleaseShared(const Task& t);
  bool LeaseLost();  // sets the run's status (interrupted) once the lease is lost
  void LoseShared(const Status& why);

  // --- recording, main thread (recorder.cpp) -----------------------------------
  void OnFinished(Task& t, const Status& st);
  // The manifest row saying t's file is in place with `size` bytes.
  DownloadRecord DoneRow(const Task& t, std::uint64_t size) const;
  void Flush();

  const Config& config_;
  Manifest& db_;
  std::unique_ptr<Manifest> bucket_db_;
  const PullOptions& options_;
  const PullEventFn& on_event_;
  const int jobs_;
  const std::string include_;
  HeadshotProSession session_;  // engine + throttle (the bucket manifest's) + client
  TransferEngine& engine_ = session_.engine();
  Throttle& throttle_ = session_.throttle();
  HeadshotProClient& client_ = session_.client();
  const Backoff download_backoff_{retry_policy::kDownload};
  SharedStore* shared_ = options_.shared;      // studio mode, else null
  std::unique_ptr<SharedLease> shared_lease_;  // our owner row while the run downloads
  std::string shared_token_, dest_id_;
  std::int64_t shared_run_ = 0;
  bool shared_lost_ = false;  // the store failed: no more shared calls this run (main thread)

  std::string dest_real_;
  PullReport report_;
  std::atomic<bool> fatal_{false};  // read by the lister thread
  std::atomic<bool> fatal_seen_{false}, lister_stop_{false};
  EventQueue events_;
  Finisher* finisher_ = nullptr;
  std::thread lister_;
  bool listing_done_ = false;

  std::deque<ModelState> models_;
  std::set<std::string> members_seen_;
  std::vector<std::unique_ptr<Task>> tasks_;
  std::set<std::string> task_keys_, paths_, dirs_ok_;
  std::unordered_map<std::size_t, std::vector<Task*>> by_model_;
  std::deque<Task*> ready_;
  std::multimap<Clock::time_point, Task*> delayed_;
  int in_flight_ = 0, finishing_ = 0;
  std::vector<DownloadRecord> done_rows_, failed_rows_;
  std::set<std::string> dirty_dirs_;
  static constexpr auto kFlushEvery = std::chrono::milliseconds(250);  // group commit of download rows
  Clock::time_point last_flush_ = Clock::now();
};

}  // namespace shotsync::download
