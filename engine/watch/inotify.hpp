// InotifyTree: every folder of the watched roots under inotify(7), read by
// one owned thread that blocks in poll(2) on the inotify fd and an eventfd
// (the stop): no polling. Folders that appear are watched and listed (a
// file written into a new folder before its watch existed is still seen);
// a folder moved away stops being watched, one moved in is listed.
// Symlinked folders are not followed (the periodic rescan covers them),
// nor hidden ones (the scanner never sends what is in them).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shotsync/fd.hpp"
#include "shotsync/status.hpp"

namespace shotsync::watch {

enum class Activity {
  kOpened,       // IN_OPEN: someone may be writing
  kModified,     // IN_MODIFY
  kClosedWrite,  // IN_CLOSE_WRITE
  kClosedRead,   // IN_CLOSE_NOWRITE
  kArrived,      // IN_MOVED_TO, or found in a folder that appeared
};

// The error of a folder that could not be watched because the per-user
// inotify watch limit is reached (the message names the sysctl).
bool IsWatchLimit(const Status& s);

class InotifyTree {
 public:
  struct Callbacks {
    // A file (absolute path) in root `root`; called on the reader thread.
    std::function<void(std::size_t root, std::string path, Activity what)> on_file;
    // IN_Q_OVERFLOW: events were lost; a rescan finds what they said.
    std::function<void()> on_overflow;
    // The root itself went away (deleted, moved, unmounted).
    std::function<void(std::size_t root)> on_root_lost;
    // A folder could not be watched (the reason names the folder;
    // ENOSPC names fs.inotify.max_user_watches).
    std::function<void(std::size_t root, const Status& why)> on_watch_error;
  };

  static Result<std::unique_ptr<InotifyTree>> Start(Callbacks callbacks);
  InotifyTree(UniqueFd inotify, UniqueFd wake, Callbacks callbacks);  // use Start
  ~InotifyTree();  // stops and joins the reader
  InotifyTree(const InotifyTree&) = delete;
  InotifyTree& operator=(const InotifyTree&) = delete;

  // Watches `path` and every folder below it. An error when the root
  // itself cannot be watched (missing, not a folder, no permission, the
  // watch limit); folders below that fail go to on_watch_error.
  Status AddRoot(std::size_t root, const std::string& path);
  // Forgets every watch (a reload: the roots are added again).
  void Clear();
  bool Watching(std::size_t root) const;

 private:
  struct Dir {
    std::size_t root = 0;
    std::string path;
    bool is_root = false;
  };
  void Read(std::stop_token stop);
  void Handle(int wd, std::uint32_t mask, std::string_view name);
  // What AddTree found, reported once mu_ is released (the callbacks take
  // the watcher's lock, and the watcher calls AddRoot under it).
  struct Found {
    std::vector<std::string> files;  // regular files in new folders
    std::vector<Status> errors;      // folders below that could not be watched
  };
  // Watches `dir` and below; with `report`, lists the regular files. mu_ held.
  Status AddTree(std::size_t root, const std::string& dir, bool is_root, bool report, Found& found);
  void Report(std::size_t root, const Found& found);  // mu_ not held
  void ForgetTree(const std::string& dir);  // mu_ held

  UniqueFd fd_, wake_;
  Callbacks callbacks_;
  mutable std::mutex mu_;
  std::map<int, Dir> dirs_;  // watch descriptor -> folder
  std::jthread reader_;      // last: uses everything above
};

}  // namespace shotsync::watch
