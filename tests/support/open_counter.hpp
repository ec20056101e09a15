// Counts opens of files as the kernel sees them (inotify IN_OPEN), for
// tests that say how often shotsync reads a photo or opens its manifest.
#pragma once

#include <catch2/catch.hpp>

#include <sys/inotify.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>

namespace shotsync::testing {

namespace fs = std::filesystem;

// Opens of each file under a folder (by path relative to it) while it
// lives; Take() returns those since the last Take. inotify queues the events in
// the kernel, so reading them after the run misses none.
class OpenCounter {
 public:
  explicit OpenCounter(const fs::path& root) : root_(root), fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    REQUIRE(fd_ >= 0);
    Watch(root);
    for (const auto& e : fs::recursive_directory_iterator(root)) {
      if (e.is_directory()) Watch(e.path());
    }
  }
  ~OpenCounter() { ::close(fd_); }
  OpenCounter(const OpenCounter&) = delete;
  OpenCounter& operator=(const OpenCounter&) = delete;

  std::map<std::string, int> Take() {
    std::map<std::string, int> opens;
    alignas(inotify_event) char buf[64 << 10];
    for (;;) {
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;  // EAGAIN: every queued event read
      for (ssize_t i = 0; i < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + i);
        if (ev->len > 0 && !(ev->mask & IN_ISDIR)) ++opens[dirs_[ev->wd] + ev->name];
        i += ssize_t(sizeof(inotify_event) + ev->len);
      }
    }
    return opens;
  }

 private:
  void Watch(const fs::path& dir) {
    const int wd = ::inotify_add_watch(fd_, dir.c_str(), IN_OPEN);
    REQUIRE(wd >= 0);
    const std::string rel = fs::relative(dir, root_).string();
    dirs_[wd] = rel == "." ? "" : rel + "/";
  }

  fs::path root_;
  int fd_;
  std::map<int, std::string> dirs_;
};

}  // namespace shotsync::testing
