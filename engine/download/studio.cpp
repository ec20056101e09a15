// Studio mode (docs/studio.md): hosts that pull into one shared folder
// claim each photo for that folder (its id in <dest>/.shotsync-dest, the
// same on every host that mounts it) before fetching it, so that no photo
// is fetched twice. A claim whose owner died is taken over, and its .part
// file resumed. The store unreachable: nothing more starts, the run ends
// "interrupted, run again".
#include <sys/stat.h>
#include <unistd.h>

#include "download/pull_run.hpp"
#include "shotsync/owner.hpp"

namespace shotsync::download {

// After this, no shared call is made in this run (each would wait out the
// store's retries again); the claims left run out with our lease.
void PullRun::LoseShared(const Status& why) {
  shared_lost_ = true;
  SetFatal(Status(Code::kCancelled, why.message() + "; stopped downloading (nothing is lost): run again when " +
                                        shared_->display() + " is back"));
}

Status PullRun::StartShared() {
  if (!shared_) return Status::Ok();
  SHOTSYNC_ASSIGN_OR_RETURN(dest_id_, DestinationId(dest_real_));
  shared_token_ = NewOwnerToken();
  // A lost lease wakes the main loop, which then stops (LeaseLost).
  SHOTSYNC_ASSIGN_OR_RETURN(shared_lease_, SharedLease::Start(*shared_, shared_token_, options_.command, [this] {
                              events_.Push(Event{.kind = Event::kStop});
                            }));
  auto run = shared_->BeginRun(options_.command, int(::getpid()));
  if (run.ok()) shared_run_ = *run;
  return Status::Ok();
}

void PullRun::EndShared(const RunCounts& counts, int exit_code) {
  if (shared_ && !shared_lost_ && shared_run_ > 0 && shared_lease_->Held()) {
    (void)shared_->EndRun(shared_run_, counts, exit_code);
  }
}

bool PullRun::LeaseLost() {
  if (!shared_lease_ || shared_lost_) return shared_lost_;
  if (shared_lease_->Held()) return false;
  LoseShared(Status(Code::kNetwork, "shared store " + shared_->display() + ": this host's lease could not be renewed"));
  return true;
}

bool PullRun::ClaimedElsewhere(Task& task) {
  if (!shared_ || !shared_lease_ || shared_lost_) return false;
  if (LeaseLost()) {
    task.state = Task::kDropped;
    return true;
  }
  const std::string rel = task.final_path.substr(dest_real_.size() + 1);
  auto claim = shared_->ClaimDownload(dest_id_, task.remote_id, rel, shared_token_);
  if (!claim.ok()) {
    LoseShared(claim.status());
    task.state = Task::kDropped;
    return true;
  }
  if (claim->kind == SharedDownloadClaim::kGranted) return false;
  struct stat st {};
  if (claim->kind == SharedDownloadClaim::kDone && ::stat(task.final_path.c_str(), &st) != 0) {
    if (options_.restore) return false;  // deleted since: fetched again, as a local one would be
    ++report_.not_restored;
    task.state = Task::kDropped;
    Emit({PullEvent::kSkipped, task.final_path, 0, "deleted since " + claim->holder +
                                                       " downloaded it; --restore fetches it again"});
    return true;
  }
  ++report_.skipped;
  task.state = Task::kDropped;
  if (claim->kind == SharedDownloadClaim::kDone) {
    // Ours too from now on: the next run skips it without asking.
    done_rows_.push_back(DoneRow(task, std::uint64_t(st.st_size)));
    Emit({PullEvent::kSkipped, task.final_path, 0, "downloaded by " + claim->holder});
  } else {
    Emit({PullEvent::kSkipped, task.final_path, 0, "being downloaded by " + claim->holder});
  }
  return true;
}

void PullRun::FinishShared(const std::vector<DownloadRecord>& done) {
  if (!shared_ || !shared_lease_ || shared_lost_) return;
  for (const DownloadRecord& r : done) {
    if (Status st = shared_->FinishDownload(dest_id_, r.remote_id, r.size, shared_token_); !st.ok()) {
      return LoseShared(st);  // the claim runs out with our lease; the file is in place
    }
  }
}

void PullRun::ReleaseShared(const Task& t) {
  if (!shared_ || !shared_lease_ || shared_lost_ || t.remote_id.empty()) return;
  if (Status st = shared_->ReleaseDownload(dest_id_, t.remote_id, shared_token_); !st.ok()) {
    LoseShared(st);
  }
}

}  // namespace shotsync::download
