// Send: a claimed job goes through its gate to the transfer engine; its
// answer (on the curl transfer loop) is classified: recorded, retried,
// reconciled later, or failed.
#include "upload/sync_run.hpp"

#include "shotsync/fit.hpp"

#include "shotsync/live.hpp"

namespace shotsync::upload {

void SyncRun::Send(Job j) {
  if (Stopping(false) || !LeaseHeld() || !WithinBudget(j)) {
    // Never sent this time: leave it to the next run, no reconciling needed.
    (void)CloseJob(j, "interrupted before sending", false);
    return Done();
  }
  const std::int64_t album = targets_[j.root_index].album;
  {
    std::unique_lock lock(mu_);
    Gate& g = gates_[album];
    if (!g.blocked.ok()) {
      const Status why = g.blocked;
      lock.unlock();
      return Unsent(j, why);
    }
    if (!g.open && !j.probe) {
      if (g.probing) {
        g.parked.push_back(std::move(j));
        return;
      }
      g.probing = true;
      j.probe = true;
    }
  }
  if (j.kind == JobKind::kRevision && !j.approval_checked && !config_.allow_unapprove &&
      !options_.allow_unapprove) {
    // A revision resets the client's approval and clears its annotations:
    // look first (off the transfer loop), hold it if the photo is approved.
    j.approval_checked = true;
    return scheduler_.At(SteadyClock::now(), [this, j = std::move(j)]() mutable { CheckApproval(std::move(j)); });
  }
  Transmit(std::move(j));
}

void SyncRun::CheckApproval(Job j) {
  const Target& t = targets_[j.root_index];
  auto photo = client_.GetPhoto(t.project, t.album, j.photo_id);
  if (photo.ok() && !photo->approved_at.empty()) {
    const std::string why = "approved by the client (" + photo->approved_at +
                            "): revision held, as it would reset the approval and clear the "
                            "annotations; sync --allow-unapprove sends it";
    (void)CloseJob(j, why, false);
    {
      std::lock_guard lock(mu_);
      ++report_.held;
      report_.failures.push_back({j.abs_path, why, false});
    }
    Emit({SyncEvent::kFailed, nullptr, j.abs_path, 0, why});
    PassProbe(j);
    return Done();
  }
  // Not found, or not readable now: the revision's own answer will tell.
  Transmit(std::move(j));
}

void SyncRun::Transmit(Job j) {
  const Target& t = targets_[j.root_index];
  // An over-size JPEG of a root that fits it goes as a copy (docs/fit.md),
  // written for this send and removed once it is answered.
  auto body = SendBody(config_.roots[j.root_index], j.abs_path, j.rel_path, config_.state_dir, j.file_id);
  if (!body.ok()) {
    PassProbe(j);
    const std::string why = body.status().message();
    return Record(Failed{.job = j, .reason = why, .permanent = body.status().code() != Code::kIo, .report = why});
  }
  const bool fitted = body->quality != 0;
  j.fit_quality = body->quality;  // recorded with the done row
  HttpRequest req = j.kind == JobKind::kUpload
                        ? client_.UploadRequest(t.project, t.album, body->path, j.rel_path)
                        : client_.RevisionRequest(t.project, t.album, j.photo_id, body->path, j.rel_path);
  // Claimed unread: the one read of the file is this send's (a fitted copy
  // was hashed by the plan).
  for (MimePart& part : req.mime) part.hash_sent = !part.file_path.empty() && j.hash_on_send && !fitted;
  // Studio mode: it may wait for its token while the lease runs out; then it
  // is not sent (another host may have taken the claim over).
  if (shared_lease_) req.may_start = [this] { return LeaseHeld(); };
  Emit({SyncEvent::kStarted, nullptr, j.abs_path, j.size, ""});
  auto shared = std::make_shared<Job>(std::move(j));
  engine_.Submit(std::move(req), [this, shared, fitted](HttpResponse&& r) {
    if (fitted) RemoveFitCopy(config_.state_dir, shared->file_id);  // a resend fits it again
    OnAnswer(*shared, r);
  });
}

// Runs on the transfer loop: no blocking and no manifest write here. What
// ends a job goes to the recorder (Record), sends again to the scheduler.
void SyncRun::OnAnswer(Job& j, const HttpResponse& r) {
  if (j.hash_on_send) j.hash = r.sent_hash;  // "" unless the whole file went out
  Status st = client_.CheckAnswer(r, j.abs_path);
  if (st.ok()) {
    auto photo = ShootbinClient::ParsePhotoAnswer(r);
    if (photo.ok()) {
      if (j.probe) OpenGate(j);
      return Record(Answered{j, *photo});  // Done() once recorded
    }
    // A 2xx we cannot read: the server has most likely stored it.
    st = Status(Code::kServer, j.abs_path + ": unreadable answer to a " + std::to_string(r.status) + ": " +
                                   photo.status().message());
  }
  ++j.attempts;
  const Code c = st.code();
  // A transport error after the headers (a body cut off) is no answer either.
  const bool answered = r.status != 0 && r.transport.ok();
  if (c == Code::kCancelled) {
    PassProbe(j);
    // Cancelled before it started: nothing to reconcile.
    if (!r.request_sent && r.bytes_sent == 0) return Record(Failed{.job = j, .reason = "interrupted before sending"});
    // Aborted mid-transfer: the server may have it. The job stays in_flight
    // so that the next run reconciles it before sending anything.
    return Done();
  }
  // bytes_sent >= size: the whole file may have reached the server even
  // when curl cannot tell the size of the multipart body.
  const bool sent_unanswered = !answered && (r.request_sent || r.bytes_sent >= j.size);
  // The one classifier (shotsync/retry.hpp) decides; what follows is what
  // each verdict means for an upload (gates, 409 rechecks, the recorder).
  switch (VerdictFor(c, /*idempotent=*/false, sent_unanswered)) {
    case Verdict::kFatal:
      return Record(Failed{.job = j, .reason = st.message(), .report = st.message(), .fatal = st});
    case Verdict::kReject:
      if (c == Code::kForbidden) return Refused(j, st);  // the album's or project's, not this file's
      PassProbe(j);
      j.probe = false;
      // 404: the album (or photo) is gone; the recorder unpins the root first.
      return Record(Failed{.job = j, .reason = st.message(), .permanent = c == Code::kRejected,
                           .report = st.message(), .unpin = c == Code::kNotFound});
    case Verdict::kReconcile:
      // The server may have stored it (a 5xx or a gateway's page, no answer
      // after the whole body, an unreadable 2xx): look before resending.
      PassProbe(j);
      j.probe = false;
      return Ambiguous(j, r, answered);
    default:  // kRetry, kPause (the engine resent 429s until 10 in a row)
      break;
  }
  if (c == Code::kConflict && j.kind == JobKind::kRevision && j.attempts < options_.max_attempts) {
    // 409: a revision of this photo is still processing (perhaps ours):
    // read the photo before sending it again.
    PassProbe(j);
    j.probe = false;
    j.conflict_at = WallSeconds();
    auto delay = conflict_backoff_.Delay(j.attempts);
    return scheduler_.At(SteadyClock::now() + delay, [this, j]() mutable { RecheckRevision(std::move(j)); });
  }
  PassProbe(j);
  j.probe = false;
  if (j.attempts >= options_.max_attempts) {
    return Record(Failed{.job = j, .reason = st.message(),
                         .report = st.message() + " (gave up after " + std::to_string(j.attempts) + " attempts)"});
  }
  Retry(j, (c == Code::kConflict ? conflict_backoff_ : upload_backoff_).Delay(j.attempts),
        r.status != 0 ? std::to_string(r.status) : "a network error");
}

// Reconciled in a batch at the end (FinishOutstanding enforces the attempt
// bound). Without an answer, or with a gateway's 502/504/52x, the server
// behind may still be storing it.
void SyncRun::Ambiguous(Job& j, const HttpResponse& r, bool answered) {
  const bool gateway_page = r.status >= 500 && r.Header("content-type").find("text/html") != std::string::npos;
  if (!answered || gateway_page || r.status == 502 || r.status == 504 || r.status >= 520) {
    j.settle_at = SteadyClock::now() + std::chrono::seconds(config_.reconcile_delay);
  }
  if (options_.live) options_.live->AddConfirming(1);
  std::lock_guard lock(mu_);
  ambiguous_.push_back(j);
  --outstanding_;
  cv_.notify_all();
}

// A 403 on an upload or revision: the token was good for the listings, so
// it is this album or project (locked for review, a plan limit, a scope).
// The second refusal in a run blocks the album; whether it is the token
// after all (a plan without API access) is checked once, off this thread.
void SyncRun::Refused(Job& j, const Status& st) {
  const std::int64_t album = targets_[j.root_index].album;
  int refusals = 0;
  {
    std::lock_guard lock(mu_);
    Gate& g = gates_[album];
    refusals = ++g.refusals;
    g.open = false;  // one at a time again
    if (!g.probing) g.probing = j.probe = true;
  }
  if (refusals < 2 && j.probe && j.attempts < options_.max_attempts) return Retry(j, forbidden_backoff_.Delay(j.attempts), "403");
  Block(album, j.root_index, st);
  Unsent(j, st);
}

void SyncRun::Retry(Job j, std::chrono::milliseconds delay, std::string cause) {
  {
    std::lock_guard lock(mu_);
    ++report_.retries;
  }
  if (options_.live) options_.live->RetryScheduled(std::move(cause));
  scheduler_.At(SteadyClock::now() + delay, [this, j = std::move(j)]() mutable {
    if (options_.live) options_.live->RetryStarted();
    Send(std::move(j));
  });
}

// --max-transfer: an upload starts only while the bytes of those started
// stay within the budget (rclone's "cautious" cutoff: a transfer is never
// cut half way). The first that would not fit ends the plan; the uploads
// already admitted (queued for the throttle, or retrying) still go.
bool SyncRun::WithinBudget(Job& j) {
  if (options_.max_transfer == 0 || j.budgeted) return true;
  std::lock_guard lock(mu_);
  if (!budget_reached_ && budget_used_ + j.size <= options_.max_transfer) {
    budget_used_ += j.size;
    j.budgeted = true;
    return true;
  }
  if (!budget_reached_.exchange(true)) {
    plan_stop_.request_stop();
    cv_.notify_all();
  }
  return false;
}

}  // namespace shotsync::upload
