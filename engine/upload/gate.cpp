// Gates: one send per album until the server said yes (struct Gate). The
// gates are guarded by mu_; their jobs go through the scheduler, never
// straight from the transfer loop.
#include "upload/sync_run.hpp"

namespace shotsync::upload {

Status SyncRun::GateStatus(std::int64_t album) {
  std::lock_guard lock(mu_);
  auto it = gates_.find(album);
  return it == gates_.end() ? Status::Ok() : it->second.blocked;
}

// Nothing more goes to this album in this run. The files parked at its
// gate are given back (failed, retried by a later run).
void SyncRun::Block(std::int64_t album, std::size_t root_index, const Status& why) {
  if (why.code() == Code::kUnauthenticated) SetFatal(why);  // the token, not the album
  if (why.code() == Code::kForbidden) {
    // Whether it is the token after all (a plan without API access): once, off this thread.
    scheduler_.At(SteadyClock::now(), [this, root_index] {
      auto project = client_.ResolveProject(config_.roots[root_index].project, false);
      const Code c = project.status().code();
      if (c == Code::kForbidden || c == Code::kUnauthenticated) SetFatal(project.status());
    });
  }
  std::deque<Job> parked;
  {
    std::lock_guard lock(mu_);
    Gate& g = gates_[album];
    if (g.blocked.ok()) {
      g.blocked = why;
      g.root_index = root_index;
    }
    g.open = false;
    g.probing = false;
    parked.swap(g.parked);
  }
  for (Job& j : parked) Unsent(j, why);
}

// A claimed job that is not sent in this run (its album is blocked). Any
// thread, the transfer loop's too (Refused): the row goes through the
// recorder. The gate counts it held now, for ReportBlocked's line.
void SyncRun::Unsent(const Job& j, const Status& why) {
  {
    std::lock_guard lock(mu_);
    ++gates_[targets_[j.root_index].album].held;
  }
  Record(Failed{.job = j, .reason = why.message() + "; will retry on a later run", .unsent = true});
}

// Once per blocked album: one line naming it and the server's reason.
void SyncRun::ReportBlocked() {
  std::vector<SyncFailure> lines;
  {
    std::lock_guard lock(mu_);
    for (const auto& [album, g] : gates_) {
      if (g.blocked.ok()) continue;
      const RootConfig& rc = config_.roots[g.root_index];
      std::string line = "album '" + rc.album + "' of project '" + rc.project + "' is not accepting uploads: " +
                         g.blocked.message();
      if (g.held > 0) line += " (" + std::to_string(g.held) + " files left for a later run)";
      report_.failures.push_back({rc.path, line, false});
      lines.push_back(report_.failures.back());
    }
  }
  for (const SyncFailure& f : lines) Emit({SyncEvent::kFailed, nullptr, f.path, 0, f.reason});
}

// Stopping: what waits at a gate is not sent in this run.
void SyncRun::DrainParked() {
  std::vector<Job> parked;
  {
    std::lock_guard lock(mu_);
    for (auto& [album, g] : gates_) {
      for (Job& j : g.parked) parked.push_back(std::move(j));
      g.parked.clear();
    }
  }
  for (const Job& j : parked) {
    (void)CloseJob(j, "interrupted before sending", false);
    Done();
  }
}

// The probe succeeded: everything parked at the gate goes.
void SyncRun::OpenGate(const Job& probe) {
  std::deque<Job> parked;
  {
    std::lock_guard lock(mu_);
    Gate& g = gates_[targets_[probe.root_index].album];
    g.open = true;
    g.probing = false;
    parked.swap(g.parked);
  }
  // Not from the transfer loop (Submit may block): the scheduler sends them.
  for (Job& j : parked) {
    scheduler_.At(SteadyClock::now(), [this, j = std::move(j)]() mutable { Send(std::move(j)); });
  }
}

// The probe ended without a yes (a transient failure): the next parked
// job becomes the probe.
void SyncRun::PassProbe(const Job& probe) {
  if (!probe.probe) return;
  std::optional<Job> next;
  {
    std::lock_guard lock(mu_);
    Gate& g = gates_[targets_[probe.root_index].album];
    g.probing = false;
    if (!g.parked.empty()) {
      next = std::move(g.parked.front());
      g.parked.pop_front();
      g.probing = true;
      next->probe = true;
    }
  }
  if (next) scheduler_.At(SteadyClock::now(), [this, j = std::move(*next)]() mutable { Send(std::move(j)); });
}

}  // namespace shotsync::upload
