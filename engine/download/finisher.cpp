// The finisher thread: makes finished downloads durable and renames them
// into place, off the main thread, as a group commit: every .part that
// completed while the previous batch was being flushed goes into the next
// batch, and a batch is made durable with ONE syncfs() of the destination's
// file system instead of one fsync() per file (500 fsyncs cost seconds; one
// syncfs of the same data, a tenth of that). The invariant is the same as
// with per-file fsync: a file gets its final name only after its bytes are on
// disk. Lone files, or a file system where syncfs is slow because of other
// writers (a batch over 2 s), use per-file fsync instead.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "download/pull_run.hpp"

namespace shotsync::download {

Finisher::Finisher(std::string dest, EventQueue& out)
    : dest_(std::move(dest)), out_(out), thread_([this] { Loop(); }) {}

Finisher::~Finisher() {
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Finisher::Add(Task* t) {
  {
    std::lock_guard lock(mu_);
    q_.push_back(t);
  }
  cv_.notify_one();
}

void Finisher::Loop() {
  for (;;) {
    std::deque<Task*> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return done_ || !q_.empty(); });
      if (q_.empty()) return;
      batch.swap(q_);
    }
    std::vector<Status> st(batch.size());
    std::vector<int> fds(batch.size(), -1);
    for (std::size_t i = 0; i < batch.size(); ++i) st[i] = Open(*batch[i], fds[i]);
    bool synced = false;
    if (batch.size() > 1 && use_syncfs_) {
      const auto t0 = Clock::now();
      const int dfd = ::open(dest_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      synced = dfd >= 0 && ::syncfs(dfd) == 0;
      if (dfd >= 0) ::close(dfd);
      if (Clock::now() - t0 > std::chrono::seconds(2)) use_syncfs_ = false;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (st[i].ok() && !synced && ::fsync(fds[i]) != 0) st[i] = Status::Io("fsync " + batch[i]->part_path, errno);
      if (fds[i] >= 0) ::close(fds[i]);
      if (st[i].ok() && ::rename(batch[i]->part_path.c_str(), batch[i]->final_path.c_str()) != 0) {
        st[i] = Status::Io("renaming " + batch[i]->part_path + " into place", errno);
      }
      Event e;
      e.kind = Event::kFinished;
      e.task = batch[i];
      e.status = std::move(st[i]);
      out_.Push(std::move(e));
    }
  }
}

Status Finisher::Open(const Task& t, int& fd) {
  fd = ::open(t.part_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Io(t.part_path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::Io(t.part_path, errno);
  if (std::uint64_t(st.st_size) != t.expected) {
    return Status::Corrupt(t.part_path + ": has " + std::to_string(st.st_size) + " bytes, expected " +
                           std::to_string(t.expected));
  }
  return Status::Ok();
}

}  // namespace shotsync::download
