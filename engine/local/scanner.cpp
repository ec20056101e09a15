// Scanner: iterative depth-first walk on directory fds.
//
// Per directory: one openat (O_DIRECTORY), one fstat (loop check), readdir
// through a dup of the fd, and one fstatat per candidate file (size, mtime and
// inode are not in the dirent). Entries whose d_type says "directory" are not
// stat'ed at all; symlinks and DT_UNKNOWN entries are (fstatat follows them).
// The stack holds one fd per level plus the names of the subdirectories still
// to visit, so memory is bounded by depth x width, never by the tree size.
#include "shotsync/scanner.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "shotsync/fd.hpp"
#include "shotsync/filter.hpp"

namespace shotsync {
namespace {

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// IsIgnored for a NUL-terminated name (the walk's hot path: no allocation
// unless a glob needs the relative path).
bool IgnoredName(std::string_view dir_rel, const char* name, std::size_t len,
                 const ScanOptions& options, std::string& scratch) {
  if (len == 0 || name[0] == '.') return true;
  if (EndsWith(std::string_view(name, len), ".part")) return true;
  for (const std::string& glob : options.ignore) {
    if (glob.empty()) continue;
    if (glob.find('/') == std::string::npos) {
      if (::fnmatch(glob.c_str(), name, 0) == 0) return true;
    } else {
      if (scratch.empty()) scratch = JoinRel(dir_rel, std::string_view(name, len));
      // A leading '/' anchors at the root, which rel paths always are.
      const char* pattern = glob[0] == '/' ? glob.c_str() + 1 : glob.c_str();
      if (::fnmatch(pattern, scratch.c_str(), FNM_PATHNAME) == 0) return true;
    }
  }
  return false;
}

bool IncludedName(const char* name, const ScanOptions& options) {
  if (options.include.empty()) return true;
  return std::any_of(options.include.begin(), options.include.end(),
                     [&](const std::string& glob) { return ::fnmatch(glob.c_str(), name, FNM_CASEFOLD) == 0; });
}

std::int64_t MtimeNs(const struct stat& st) {
  return std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

struct DirId {
  dev_t dev;
  ino_t ino;
  bool operator==(const DirId&) const = default;
};

struct Frame {
  UniqueFd fd;
  std::string rel;
  std::vector<std::string> subdirs;  // still to visit, in reverse name order (pop_back = next)
  DirId id;
};

}  // namespace

std::string JoinRel(std::string_view dir_rel, std::string_view name) {
  if (dir_rel.empty()) return std::string(name);
  std::string out;
  out.reserve(dir_rel.size() + 1 + name.size());
  out.append(dir_rel).append("/").append(name);
  return out;
}

bool IsIgnored(std::string_view dir_rel, std::string_view name, const ScanOptions& options) {
  if (name.empty() || name[0] == '.' || EndsWith(name, ".part")) return true;
  if (options.ignore.empty()) return false;
  const std::string n(name);
  std::string scratch;
  return IgnoredName(dir_rel, n.c_str(), n.size(), options, scratch);
}

bool IsIncluded(std::string_view name, const ScanOptions& options) {
  return IncludedName(std::string(name).c_str(), options);
}

namespace {

// One walk: the stack of open directories and the caller's callbacks.
class Walker {
 public:
  Walker(std::string root, const ScanOptions& options, const Scanner::DirFn& on_dir,
         const Scanner::ErrorFn& on_error)
      : root_(std::move(root)), prefix_(root_ == "/" ? root_ : root_ + "/"), options_(options),
        on_dir_(on_dir), on_error_(on_error) {}

  Status Run() {
    if (root_.empty()) return Status::Invalid("empty root folder path");
    UniqueFd root_fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root_fd) {
      if (errno == ENOTDIR) return Status::Invalid(root_ + ": not a directory");
      return Status::Io(root_, errno);
    }
    struct stat st {};
    if (::fstat(root_fd.get(), &st) != 0) return Status::Io(root_, errno);
    stack_.reserve(16);
    stack_.push_back({std::move(root_fd), std::string(), {}, {st.st_dev, st.st_ino}});
    if (Status s = ReadDir(stack_.back()); !s.ok()) return s;  // the root itself is unreadable
    while (!stack_.empty()) {
      Frame& top = stack_.back();
      if (top.subdirs.empty()) {
        stack_.pop_back();
        continue;
      }
      const std::string name = std::move(top.subdirs.back());
      top.subdirs.pop_back();
      Enter(top, name);
    }
    return Status::Ok();
  }

 private:
  std::string Abs(std::string_view rel) const {
    if (rel.empty()) return root_;
    std::string p;
    p.reserve(prefix_.size() + rel.size());
    p.append(prefix_).append(rel);
    return p;
  }

  // Opens the subfolder `name` of `parent` and reads it, or names why not.
  void Enter(const Frame& parent, const std::string& name) {
    std::string rel = JoinRel(parent.rel, name);
    UniqueFd fd(::openat(parent.fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
      const int err = errno;
      const std::string path = Abs(rel);
      if (err == ENOENT) {
        on_error_(path, Status::NotFound(path + ": vanished while scanning, skipped"));
      } else if (err == ENOTDIR) {
        // Replaced by a file between readdir and openat: next run sees it.
        on_error_(path, Status::Invalid(path + ": changed from a folder to a file while scanning, skipped"));
      } else {
        on_error_(path, Status::Io(path, err));
      }
      return;
    }
    struct stat dst {};
    if (::fstat(fd.get(), &dst) != 0) {
      const std::string path = Abs(rel);
      on_error_(path, Status::Io(path, errno));
      return;
    }
    const DirId id{dst.st_dev, dst.st_ino};
    // The directories on the current path are exactly the stack frames.
    if (std::any_of(stack_.begin(), stack_.end(), [&](const Frame& f) { return f.id == id; })) {
      const std::string path = Abs(rel);
      on_error_(path, Status(Code::kSkipped, path + ": symlink loop (a folder that contains itself), skipped"));
      return;
    }
    if (stack_.size() >= kMaxScanDepth) {
      const std::string path = Abs(rel);
      on_error_(path, Status::Invalid(path + ": nested deeper than " + std::to_string(kMaxScanDepth) +
                                          " folders, skipped"));
      return;
    }
    stack_.push_back({std::move(fd), std::move(rel), {}, id});  // `parent` may move: not used after
    if (Status s = ReadDir(stack_.back()); !s.ok()) {
      on_error_(Abs(stack_.back().rel), s);
      stack_.pop_back();
    }
  }

  // Reads one directory: hands its files to on_dir and fills frame.subdirs.
  // Returns an error when the directory as a whole cannot be read; then
  // nothing of it is handed over (a partial listing would look like deletions).
  Status ReadDir(Frame& frame) {
    files_.clear();
    frame.subdirs.clear();
    const int dup = ::fcntl(frame.fd.get(), F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return Status::Io(Abs(frame.rel), errno);
    UniqueDir dir(::fdopendir(dup));
    if (!dir) {
      const int err = errno;
      ::close(dup);
      return Status::Io(Abs(frame.rel), err);
    }
    for (;;) {
      errno = 0;
      const dirent* e = ::readdir(dir.get());
      if (e == nullptr) {
        if (errno != 0) return Status::Io(Abs(frame.rel), errno);
        break;
      }
      if (Status s = Entry(frame, *e); !s.ok()) return s;
    }
    dir.reset();
    std::sort(files_.begin(), files_.end(),
              [](const ScanEntry& a, const ScanEntry& b) { return a.name < b.name; });
    on_dir_(frame.rel, std::span<const ScanEntry>(files_));
    files_.clear();
    std::sort(frame.subdirs.begin(), frame.subdirs.end(), std::greater<>());
    return Status::Ok();
  }

  // One directory entry: a file to hand over, a subfolder to visit, or
  // skipped (named through on_error when it is a problem). An error only
  // when the whole folder is unreadable.
  Status Entry(Frame& frame, const dirent& e) {
    const std::size_t len = std::strlen(e.d_name);
    scratch_.clear();
    if (IgnoredName(frame.rel, e.d_name, len, options_, scratch_)) return Status::Ok();
    const unsigned char type = e.d_type;
    if (type == DT_DIR) {
      if (DirAdmitted(frame, e.d_name, len)) frame.subdirs.emplace_back(e.d_name, len);
      return Status::Ok();
    }
    if (type != DT_REG && type != DT_LNK && type != DT_UNKNOWN) return Status::Ok();  // fifos, sockets...
    // Not a candidate (a RAW file, a sidecar): not even stat'ed.
    if (type == DT_REG && !IncludedName(e.d_name, options_)) return Status::Ok();
    struct stat fst {};
    if (::fstatat(frame.fd.get(), e.d_name, &fst, 0) != 0) {
      const int err = errno;
      // No search permission on the folder: every entry would fail alike.
      if (err == EACCES && type != DT_LNK) return Status::Io(Abs(frame.rel), err);
      const std::string path = Abs(JoinRel(frame.rel, std::string_view(e.d_name, len)));
      if (err == ENOENT && type == DT_LNK) {
        on_error_(path, Status(Code::kSkipped, path + ": dangling symlink, skipped"));
      } else if (err == ENOENT) {
        on_error_(path, Status::NotFound(path + ": vanished while scanning, skipped"));
      } else if (err == ELOOP) {
        on_error_(path, Status(Code::kSkipped, path + ": symlink loop, skipped"));
      } else {
        on_error_(path, Status::Io(path, err));
      }
      return Status::Ok();
    }
    if (S_ISREG(fst.st_mode)) {
      if (type != DT_REG && !IncludedName(e.d_name, options_)) return Status::Ok();
      if (options_.filter &&
          !options_.filter->Admits(JoinRel(frame.rel, std::string_view(e.d_name, len)), std::uint64_t(fst.st_size),
                                   MtimeNs(fst))) {
        return Status::Ok();
      }
      files_.push_back({std::string(e.d_name, len), std::uint64_t(fst.st_size), MtimeNs(fst),
                        std::uint64_t(fst.st_ino)});
    } else if (S_ISDIR(fst.st_mode) && DirAdmitted(frame, e.d_name, len)) {
      frame.subdirs.emplace_back(e.d_name, len);
    }
    return Status::Ok();
  }

  bool DirAdmitted(const Frame& frame, const char* name, std::size_t len) const {
    return !options_.filter || options_.filter->AdmitsDir(JoinRel(frame.rel, std::string_view(name, len)));
  }

  const std::string root_;
  const std::string prefix_;
  const ScanOptions& options_;
  const Scanner::DirFn& on_dir_;
  const Scanner::ErrorFn& on_error_;
  std::vector<Frame> stack_;
  std::vector<ScanEntry> files_;  // the current directory's, reused
  std::string scratch_;
};

}  // namespace

Status Scanner::Walk(const std::string& root_in, const ScanOptions& options, const DirFn& on_dir,
                     const ErrorFn& on_error) {
  std::string root = root_in;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return Walker(std::move(root), options, on_dir, on_error).Run();
}

}  // namespace shotsync
