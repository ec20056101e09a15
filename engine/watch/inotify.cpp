#include "watch/inotify.hpp"

#include <dirent.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace shotsync::watch {
namespace {

constexpr std::uint32_t kDirMask = IN_OPEN | IN_MODIFY | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_MOVED_TO |
                                   IN_MOVED_FROM | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR |
                                   IN_DONT_FOLLOW | IN_EXCL_UNLINK;

constexpr std::string_view kLimitReached = ": the inotify watch limit is reached";

Status WatchError(const std::string& dir, int err) {
  if (err == ENOSPC) {
    std::string m = dir;
    m += kLimitReached;
    m += " (raise it: sysctl fs.inotify.max_user_watches=524288); folders without a watch are covered by a "
         "rescan every minute";
    return Status(Code::kIo, std::move(m));
  }
  return Status::Io(dir, err);
}

}  // namespace

bool IsWatchLimit(const Status& s) { return s.message().find(kLimitReached) != std::string::npos; }

Result<std::unique_ptr<InotifyTree>> InotifyTree::Start(Callbacks callbacks) {
  UniqueFd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd) {
    return Status(Code::kIo, std::string("inotify_init1: ") + std::strerror(errno) +
                                                " (fs.inotify.max_user_instances?)");
  }
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return Status::Io("eventfd", errno);
  return std::make_unique<InotifyTree>(std::move(fd), std::move(wake), std::move(callbacks));
}

InotifyTree::InotifyTree(UniqueFd inotify, UniqueFd wake, Callbacks callbacks)
    : fd_(std::move(inotify)), wake_(std::move(wake)), callbacks_(std::move(callbacks)),
      reader_([this](std::stop_token stop) { Read(stop); }) {}

InotifyTree::~InotifyTree() {
  reader_.request_stop();
  const std::uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
  if (reader_.joinable()) reader_.join();
}

Status InotifyTree::AddRoot(std::size_t root, const std::string& path) {
  Found found;
  Status s;
  {
    std::lock_guard lock(mu_);
    s = AddTree(root, path, true, false, found);
  }
  Report(root, found);
  return s;
}

void InotifyTree::Clear() {
  std::lock_guard lock(mu_);
  for (const auto& [wd, dir] : dirs_) ::inotify_rm_watch(fd_.get(), wd);
  dirs_.clear();
}

void InotifyTree::Report(std::size_t root, const Found& found) {
  if (callbacks_.on_watch_error) {
    for (const Status& s : found.errors) callbacks_.on_watch_error(root, s);
  }
  if (callbacks_.on_file) {
    for (const std::string& f : found.files) callbacks_.on_file(root, f, Activity::kArrived);
  }
}

bool InotifyTree::Watching(std::size_t root) const {
  std::lock_guard lock(mu_);
  for (const auto& [wd, d] : dirs_) {
    if (d.root == root && d.is_root) return true;
  }
  return false;
}

Status InotifyTree::AddTree(std::size_t root, const std::string& dir, bool is_root, bool report, Found& found) {
  const int wd = ::inotify_add_watch(fd_.get(), dir.c_str(), kDirMask);
  if (wd < 0) return WatchError(dir, errno);
  // The same folder twice (a root inside another root's tree) keeps its
  // first owner: inotify returns the same descriptor.
  if (!dirs_.emplace(wd, Dir{root, dir, is_root}).second && !is_root) return Status::Ok();
  dirs_[wd].is_root = dirs_[wd].is_root || is_root;
  // Listed after the watch exists: a file created in between is seen twice
  // at worst (settling makes that one send), never missed.
  const std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
  if (!d) return is_root ? Status::Io(dir, errno) : Status::Ok();
  std::vector<std::string> subdirs;
  while (const dirent* e = ::readdir(d.get())) {
    const std::string_view name = e->d_name;
    // Hidden names (".", "..", .git, .thumbnails) are never candidates:
    // their folders cost no watch.
    if (name.front() == '.') continue;
    unsigned char type = e->d_type;
    const std::string full = dir + "/" + std::string(name);
    if (type == DT_UNKNOWN) {
      struct stat st {};
      if (::lstat(full.c_str(), &st) != 0) continue;
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    }
    if (type == DT_DIR) subdirs.push_back(full);
    else if (report && type == DT_REG) found.files.push_back(full);
  }
  for (const std::string& sub : subdirs) {
    if (Status s = AddTree(root, sub, false, report, found); !s.ok()) found.errors.push_back(std::move(s));
  }
  return Status::Ok();
}

void InotifyTree::ForgetTree(const std::string& dir) {
  const std::string below = dir + "/";
  for (auto it = dirs_.begin(); it != dirs_.end();) {
    if (it->second.path == dir || it->second.path.starts_with(below)) {
      ::inotify_rm_watch(fd_.get(), it->first);
      it = dirs_.erase(it);
    } else {
      ++it;
    }
  }
}

void InotifyTree::Read(std::stop_token stop) {
  alignas(inotify_event) char buf[64 * 1024];
  pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
  while (!stop.stop_requested()) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    for (;;) {
      const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
      if (n <= 0) break;  // EAGAIN: drained
      for (ssize_t off = 0; off < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        Handle(ev->wd, ev->mask, ev->len ? std::string_view(ev->name) : std::string_view());
        off += ssize_t(sizeof(inotify_event) + ev->len);
      }
    }
  }
}

void InotifyTree::Handle(int wd, std::uint32_t mask, std::string_view name) {
  if (mask & IN_Q_OVERFLOW) {
    if (callbacks_.on_overflow) callbacks_.on_overflow();
    return;
  }
  std::unique_lock lock(mu_);
  const auto it = dirs_.find(wd);
  if (it == dirs_.end()) return;
  const Dir dir = it->second;
  if (mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
    if (!dir.is_root) {
      if (mask & IN_IGNORED) dirs_.erase(wd);
      return;
    }
    // The root itself: forget its whole tree and say so once (IN_IGNORED
    // follows the others).
    ForgetTree(dir.path);
    lock.unlock();
    if (callbacks_.on_root_lost) callbacks_.on_root_lost(dir.root);
    return;
  }
  if (name.empty()) return;
  std::string path = dir.path + "/";
  path += name;
  if (mask & IN_ISDIR) {
    if (mask & IN_MOVED_FROM) ForgetTree(path);
    if ((mask & (IN_CREATE | IN_MOVED_TO)) && name.front() != '.') {
      Found found;
      if (Status s = AddTree(dir.root, path, false, true, found); !s.ok()) found.errors.push_back(std::move(s));
      lock.unlock();
      Report(dir.root, found);
    }
    return;
  }
  lock.unlock();
  if (!callbacks_.on_file) return;
  if (mask & IN_OPEN) callbacks_.on_file(dir.root, path, Activity::kOpened);
  if (mask & IN_MODIFY) callbacks_.on_file(dir.root, path, Activity::kModified);
  if (mask & IN_CLOSE_WRITE) callbacks_.on_file(dir.root, path, Activity::kClosedWrite);
  if (mask & IN_CLOSE_NOWRITE) callbacks_.on_file(dir.root, path, Activity::kClosedRead);
  if (mask & IN_MOVED_TO) callbacks_.on_file(dir.root, path, Activity::kArrived);
}

}  // namespace shotsync::watch
