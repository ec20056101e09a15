// The pull run: set-up, the main thread's event loop, and the entry points.
//
// Threads of a run, what each owns, and who writes the manifest:
//   thread          runs                          owns / touches
//   main (caller)   Run, Loop, Handle and every   models_, tasks_ and the task table, ready_,
//                   stage fed by events           delayed_, report_, the done/failed rows;
//                   (tasks, refresh, fetch,       the ONLY writer of the run's manifest rows
//                   recorder)                     (BeginRun/EndRun, Flush's PutDownload);
//                                                 calls on_event_ (no lock held)
//   lister          ListAll (lister.cpp)          nothing of the run: calls the client, reads
//                                                 options_ and the stop flags, pushes kModel /
//                                                 kListError / kListDone
//   + one async     ListModels("active"), while   its own result only
//                   the lister lists the members
//   engine          TransferEngine's curl-multi   the transfers; a finished one is pushed as a
//                   thread                        kTransfer event (the task is kFlight: only
//                                                 the engine's callback names it)
//   finisher        Finisher::Loop                its queue; the files of kFinishing tasks
//                   (finisher.cpp)                (fsync, rename); pushes kFinished
// The throttle's shared buckets live in bucket_db_, a second connection to
// the same manifest, used by whichever thread makes an API call (lister, or
// main for a refresh). Threads meet only in EventQueue and the Finisher's
// queue, and through the atomics fatal_, fatal_seen_ and lister_stop_.
#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "download/pull_run.hpp"
#include "shotsync/exit_code.hpp"

namespace shotsync {
namespace download {

PullRun::PullRun(const Config& config, Manifest& manifest, std::unique_ptr<Manifest> bucket_db,
                 const PullOptions& options, const PullEventFn& on_event)
    : config_(config), db_(manifest), bucket_db_(std::move(bucket_db)), options_(options),
      on_event_(on_event), jobs_(std::clamp(options.jobs > 0 ? options.jobs : config.jobs, 1, 64)),
      include_(options.include.empty() ? config.headshotpro.include : options.include),
      // + 1: a listing need not wait for a download.
      session_(config, bucket_db_.get(),
               SessionOptions{.jobs = jobs_ + 1, .bwlimit = config.bwlimit,
                              .queue_capacity = std::size_t(4 * jobs_ + 16), .shared = options.shared}) {}

PullReport PullRun::Run() {
  // A stop request wakes the loop (an event), so nothing polls the tokens.
  std::stop_callback on_stop(options_.stop, [this] { events_.Push(Event{.kind = Event::kStop}); });
  std::stop_callback on_abort(options_.abort, [this] { events_.Push(Event{.kind = Event::kStop}); });
  const auto t0 = Clock::now();
  auto run_id = db_.BeginRun(options_.command, int(::getpid()));
  report_.status = Prepare();
  if (report_.status.ok() && !options_.dry_run) report_.status = StartShared();
  if (report_.status.ok()) {
    {
      Finisher finisher(dest_real_, events_);
      finisher_ = &finisher;
      lister_ = std::thread([this] { ListAll(); });
      Loop();
      lister_stop_ = true;
      lister_.join();
      finisher_ = nullptr;
    }  // the finisher's threads are joined: no more events
    for (Event& e : events_.Take(Clock::now())) Handle(std::move(e));
    for (auto& t : tasks_) {
      if (t->state == Task::kQueued && !Stopping(false)) {
        // Should not happen; never leave a file unaccounted for.
        Fail(*t, "not attempted");
      }
    }
    Flush();
    engine_.Shutdown(true);
  }
  if (report_.status.ok() && Stopping(false)) {
    report_.status = Status(Code::kCancelled, "interrupted: run the same command to resume (.part files are kept)");
  }
  report_.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  report_.requests = throttle_.granted();
  report_.throttle_wait_s = throttle_.waited_s();
  report_.throttled_429 = throttle_.throttled_429();
  if (run_id.ok()) {
    RunCounts counts;
    counts.downloaded = report_.downloaded;
    counts.skipped = report_.skipped + report_.not_restored;
    counts.failed = report_.failed;
    counts.bytes = report_.bytes;
    (void)db_.EndRun(*run_id, counts, PullExitCode(report_));
    EndShared(counts, PullExitCode(report_));
  }
  shared_lease_.reset();  // before events_ goes: its watchdog may push to it
  (void)db_.Checkpoint();
  return std::move(report_);
}

Status PullRun::Prepare() {
  const auto& hp = config_.headshotpro;
  if (hp.key.empty()) {
    return Status(Code::kUnauthenticated,
                  "no HeadshotPro API key: set HEADSHOTPRO_API_KEY (or headshotpro.key_file in " +
                      (config_.source.empty() ? std::string("the config") : config_.source) + ")");
  }
  if (include_ != "main" && include_ != "all") return Status::Invalid("--include must be main or all");
  SHOTSYNC_RETURN_IF_ERROR(ValidateLayout(hp.layout));
  if (hp.dest.empty()) return Status::Invalid("headshotpro.dest is not set in " + config_.source);
  std::error_code ec;
  if (options_.dry_run && !std::filesystem::exists(hp.dest, ec)) {
    // A dry run writes nothing, not even the folder: every file is "would download".
    dest_real_ = std::filesystem::weakly_canonical(std::filesystem::absolute(hp.dest), ec).string();
    if (ec) return Status(Code::kIo, "destination " + hp.dest + ": " + ec.message());
    while (dest_real_.size() > 1 && dest_real_.back() == '/') dest_real_.pop_back();
    return Status::Ok();
  }
  std::filesystem::create_directories(hp.dest, ec);
  if (ec) {
    return Status(Code::kIo, "destination " + hp.dest + " cannot be created: " + ec.message());
  }
  char buf[PATH_MAX];
  if (!::realpath(hp.dest.c_str(), buf)) return Status::Io("destination " + hp.dest, errno);
  dest_real_ = buf;
  if (!options_.dry_run && ::access(dest_real_.c_str(), W_OK | X_OK) != 0) {
    return Status(Code::kIo, "destination " + dest_real_ + " is not writable: " + std::strerror(errno));
  }
  return Status::Ok();
}

bool PullRun::Stopping(bool abort_only) const {
  if (options_.abort.stop_requested()) return true;
  if (abort_only) return false;
  return fatal_ || options_.stop.stop_requested();
}

void PullRun::SetFatal(Status st) {
  if (report_.status.ok()) report_.status = std::move(st);
  fatal_ = true;
}

void PullRun::Emit(const PullEvent& e) {
  if (on_event_) on_event_(e);
}

void PullRun::Handle(Event e) {
  switch (e.kind) {
    case Event::kModel:
      if (!fatal_) AddModel(std::move(e.model), std::move(e.photos));
      break;
    case Event::kListError:
      if (e.status.code() == Code::kNotFound) {
        ++report_.failed;
        report_.failures.push_back({"listing", e.status.message()});
        Emit({PullEvent::kFailed, "listing", 0, e.status.message()});
      } else {
        fatal_seen_ = true;
        SetFatal(e.status);
      }
      break;
    case Event::kListDone:
      listing_done_ = true;
      Emit({PullEvent::kListed, "", 0, ""});
      break;
    case Event::kTransfer:
      OnTransfer(*e.task, e.resp);
      break;
    case Event::kFinished:
      OnFinished(*e.task, e.status);
      break;
    case Event::kStop:
      (void)LeaseLost();  // a lost studio lease stops the run too
      break;  // the loop looks at Stopping() again
  }
}

void PullRun::Loop() {
  bool aborted = false;
  for (;;) {
    if (!aborted && Stopping(true)) {
      aborted = true;
      lister_stop_ = true;
      engine_.Shutdown(true);  // running downloads end with kCancelled; .part files stay
    }
    if (!Stopping(false)) Dispatch();
    const bool waiting_work = !Stopping(false) && (!ready_.empty() || !delayed_.empty());
    if (listing_done_ && in_flight_ == 0 && finishing_ == 0 && !waiting_work) break;
    // Sleeps until an event (a transfer's end, a listing, a stop request),
    // the next retry, or the next group commit of recorded downloads.
    auto until = Clock::time_point::max();
    if (!delayed_.empty() && !Stopping(false)) until = delayed_.begin()->first;
    if (!done_rows_.empty() || !failed_rows_.empty()) until = std::min(until, last_flush_ + kFlushEvery);
    for (Event& e : events_.Take(until)) Handle(std::move(e));
    if (Clock::now() - last_flush_ > kFlushEvery) Flush();
  }
}

}  // namespace download

int PullExitCode(const PullReport& r) { return RunExitCode(r.status, r.failed > 0); }

PullReport RunPull(const Config& config, Manifest& manifest, const PullOptions& options,
                   const PullEventFn& on_event) {
  auto bucket_db = Manifest::Open(config.ManifestPath());
  if (!bucket_db.ok()) {
    PullReport r;
    r.status = bucket_db.status();
    return r;
  }
  download::PullRun run(config, manifest, std::move(*bucket_db), options, on_event);
  return run.Run();
}

}  // namespace shotsync
