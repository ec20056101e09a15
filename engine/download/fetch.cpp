// Downloads (main thread): handing tasks to the TransferEngine, and what the
// CDN's answer means for the task: done (to the finisher), retried later,
// fresh URLs needed, gone, or a fatal local error.
#include <unistd.h>

#include <cerrno>

#include "download/pull_run.hpp"
#include "util/json_util.hpp"

namespace shotsync::download {

void PullRun::Dispatch() {
  const auto now = Clock::now();
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    ready_.push_front(delayed_.begin()->second);
    delayed_.erase(delayed_.begin());
  }
  // Up to `jobs` run at once (the engine's cap). With long-lived URLs a few
  // more wait in the engine's queue, so that a finished transfer is followed
  // by the next at once, without a round trip through this thread; short-lived
  // URLs are handed over only when a slot is free (they could expire queued).
  while (!ready_.empty() && !Stopping(false) &&
         (in_flight_ < jobs_ || (in_flight_ < 3 * jobs_ && ready_.front()->lifetime > 120))) {
    Task* t = ready_.front();
    ready_.pop_front();
    if (t->state != Task::kQueued) continue;
    if (NearExpiry(*t)) {
      Status st = Refresh(t->model, nullptr);
      if (!st.ok() && !RefreshFailed(*t, st)) continue;
      if (t->state != Task::kQueued) continue;
    }
    Start(*t);
  }
}

void PullRun::Start(Task& t) {
  HttpRequest req;
  req.url = t.url;
  req.download_path = t.part_path;
  const auto have = FileSize(t.part_path);
  req.resume_from = have.value_or(0);
  if (req.resume_from > 0 && !t.resumed) {
    t.resumed = true;
    ++report_.resumed;
  }
  req.throttle = nullptr;  // the CDN is not counted against the API limit (headshotpro.md §2.6)
  t.state = Task::kFlight;
  t.started_gen = models_[t.model].gen;
  ++in_flight_;
  Task* tp = &t;
  engine_.Submit(std::move(req), [this, tp](HttpResponse&& r) {
    Event e;
    e.kind = Event::kTransfer;
    e.task = tp;
    e.resp = std::move(r);
    events_.Push(std::move(e));
  });
}

void PullRun::Retry(Task& t, const std::string& reason) {
  t.state = Task::kQueued;
  if (++t.attempts >= options_.max_attempts) {
    return Fail(t, reason + " (gave up after " + std::to_string(t.attempts) + " attempts)");
  }
  ++report_.retries;
  delayed_.emplace(Clock::now() + download_backoff_.Delay(t.attempts), &t);
}

void PullRun::Truncate(const Task& t) {
  if (::truncate(t.part_path.c_str(), 0) != 0 && errno != ENOENT) {
    SetFatal(Status::Io(t.part_path, errno));
  }
}

void PullRun::OnTransfer(Task& t, HttpResponse& r) {
  --in_flight_;
  t.state = Task::kQueued;
  report_.bytes += r.bytes_received;
  if (!r.transport.ok()) {
    switch (r.transport.code()) {
      case Code::kCancelled:
        return;  // stopping; the .part stays
      case Code::kIo:
        // Disk full, unwritable folder...: every other file would fail the same way.
        return SetFatal(Status(Code::kIo, r.transport.message() + " (partial files are kept for the next run)"));
      case Code::kInvalidArgument:  // untrusted certificate, or a range past the end
        return SetFatal(Status(Code::kInvalidArgument,
                               r.transport.message() + " (partial files are kept for the next run)"));
      case Code::kCorrupt:  // e.g. a 206 for the wrong range: start the file over
        Truncate(t);
        return Retry(t, r.transport.message());
      default:
        return Retry(t, r.transport.message());
    }
  }
  const auto have = FileSize(t.part_path).value_or(0);
  const std::string tail = " (HTTP " + std::to_string(r.status) + ")";
  if (r.status == 200 || r.status == 206) {
    std::optional<std::uint64_t> total =
        r.status == 206 ? RangeTotal(r.Header("content-range")) : ContentLength(r);
    if (total && have < *total) return Retry(t, "download ended early at " + std::to_string(have) + " of " +
                                                    std::to_string(*total) + " bytes");
    if (total && have > *total) {
      Truncate(t);
      return Retry(t, "file is longer than the server's length; fetching it again");
    }
    t.expected = have;
    return Finish(t);
  }
  if (r.status == 416) {
    const auto total = RangeTotal(r.Header("content-range"));
    if (total && have == *total && have > 0) {  // the .part was complete already
      t.expected = have;
      return Finish(t);
    }
    Truncate(t);
    return Retry(t, "range not satisfiable; fetching the file again");
  }
  if (r.status == 401 || r.status == 403 || r.status == 410) return OnRefused(t, r, tail);
  if (r.status == 404) return Gone(t, "no longer on the CDN" + tail);
  Retry(t, "CDN answered" + tail);
}

// The CDN refused the signed URL: list the model again, unless that already
// happened (a newer listing) or was just tried for this very task.
void PullRun::OnRefused(Task& t, const HttpResponse& r, const std::string& tail) {
  ModelState& m = models_[t.model];
  const std::string why = "signed URL refused" + tail + ": " + json::Printable(r.body, 120);
  if (t.started_gen < m.gen) return Start(t);  // a newer listing already gave it a fresh URL
  if (m.refresh_cause == &t || ++t.refreshes > 5) {
    return Fail(t, why + ", again right after a fresh listing");
  }
  Status st = Refresh(t.model, &t);
  if (!st.ok()) {
    RefreshFailed(t, st);
    return;
  }
  if (t.state == Task::kQueued) ready_.push_front(&t);
}

void PullRun::Finish(Task& t) {
  t.state = Task::kFinishing;
  ++finishing_;
  finisher_->Add(&t);
}

}  // namespace shotsync::download
