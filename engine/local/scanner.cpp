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

Status Scanner::Walk(const std::string& root_in, const ScanOptions& options, const DirFn& on_dir,
                     const ErrorFn& on_error) {
  std::string root = root_in;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  const std::string prefix = root == "/" ? root : root + "/";
  auto abs = [&](std::string_view rel) {
    if (rel.empty()) return root;
    std::string p;
    p.reserve(prefix.size() + rel.size());
    p.append(prefix).append(rel);
    return p;
  };

  if (root.empty()) return Status::Invalid("empty root folder path");
  UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) {
    if (errno == ENOTDIR) return Status::Invalid(root + ": not a directory");
    return Status::Io(root, errno);
  }
  struct stat st {};
  if (::fstat(root_fd.get(), &st) != 0) return Status::Io(root, errno);

  std::vector<Frame> stack;
  stack.reserve(16);
  std::vector<ScanEntry> files;
  std::string scratch;

  // Reads one directory: hands its files to on_dir and fills frame.subdirs.
  // Returns an error when the directory as a whole cannot be read; then
  // nothing of it is handed over (a partial listing would look like deletions).
  auto read_dir = [&](Frame& frame) -> Status {
    files.clear();
    frame.subdirs.clear();
    const int dup = ::fcntl(frame.fd.get(), F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return Status::Io(abs(frame.rel), errno);
    UniqueDir dir(::fdopendir(dup));
    if (!dir) {
      const int err = errno;
      ::close(dup);
      return Status::Io(abs(frame.rel), err);
    }
    for (;;) {
      errno = 0;
      const dirent* e = ::readdir(dir.get());
      if (e == nullptr) {
        if (errno != 0) return Status::Io(abs(frame.rel), errno);
        break;
      }
      const std::size_t len = std::strlen(e->d_name);
      scratch.clear();
      if (IgnoredName(frame.rel, e->d_name, len, options, scratch)) continue;
      const unsigned char type = e->d_type;
      if (type == DT_DIR) {
        frame.subdirs.emplace_back(e->d_name, len);
        continue;
      }
      if (type != DT_REG && type != DT_LNK && type != DT_UNKNOWN) continue;  // fifos, sockets...
      struct stat fst {};
      if (::fstatat(frame.fd.get(), e->d_name, &fst, 0) != 0) {
        const int err = errno;
        // No search permission on the folder: every entry would fail alike.
        if (err == EACCES && type != DT_LNK) return Status::Io(abs(frame.rel), err);
        const std::string path = abs(JoinRel(frame.rel, std::string_view(e->d_name, len)));
        if (err == ENOENT && type == DT_LNK) {
          on_error(path, Status::NotFound(path + ": dangling symlink, skipped"));
        } else if (err == ENOENT) {
          on_error(path, Status::NotFound(path + ": vanished while scanning, skipped"));
        } else if (err == ELOOP) {
          on_error(path, Status::Invalid(path + ": symlink loop, skipped"));
        } else {
          on_error(path, Status::Io(path, err));
        }
        continue;
      }
      if (S_ISREG(fst.st_mode)) {
        files.push_back({std::string(e->d_name, len), std::uint64_t(fst.st_size), MtimeNs(fst),
                         std::uint64_t(fst.st_ino)});
      } else if (S_ISDIR(fst.st_mode)) {
        frame.subdirs.emplace_back(e->d_name, len);
      }
    }
    dir.reset();
    std::sort(files.begin(), files.end(),
              [](const ScanEntry& a, const ScanEntry& b) { return a.name < b.name; });
    on_dir(frame.rel, std::span<const ScanEntry>(files));
    files.clear();
    std::sort(frame.subdirs.begin(), frame.subdirs.end(), std::greater<>());
    return Status::Ok();
  };

  stack.push_back({std::move(root_fd), std::string(), {}, {st.st_dev, st.st_ino}});
  if (Status s = read_dir(stack.back()); !s.ok()) return s;  // the root itself is unreadable
  while (!stack.empty()) {
    Frame& top = stack.back();
    if (top.subdirs.empty()) {
      stack.pop_back();
      continue;
    }
    const std::string name = std::move(top.subdirs.back());
    top.subdirs.pop_back();
    std::string rel = JoinRel(top.rel, name);
    UniqueFd fd(::openat(top.fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
      const int err = errno;
      const std::string path = abs(rel);
      if (err == ENOENT) {
        on_error(path, Status::NotFound(path + ": vanished while scanning, skipped"));
      } else if (err == ENOTDIR) {
        // Replaced by a file between readdir and openat: next run sees it.
        on_error(path, Status::Invalid(path + ": changed from a folder to a file while scanning, skipped"));
      } else {
        on_error(path, Status::Io(path, err));
      }
      continue;
    }
    struct stat dst {};
    if (::fstat(fd.get(), &dst) != 0) {
      const std::string path = abs(rel);
      on_error(path, Status::Io(path, errno));
      continue;
    }
    const DirId id{dst.st_dev, dst.st_ino};
    // The directories on the current path are exactly the stack frames.
    if (std::any_of(stack.begin(), stack.end(), [&](const Frame& f) { return f.id == id; })) {
      const std::string path = abs(rel);
      on_error(path, Status::Invalid(path + ": symlink loop (a folder that contains itself), skipped"));
      continue;
    }
    if (stack.size() >= kMaxScanDepth) {
      const std::string path = abs(rel);
      on_error(path, Status::Invalid(path + ": nested deeper than " + std::to_string(kMaxScanDepth) +
                                         " folders, skipped"));
      continue;
    }
    stack.push_back({std::move(fd), std::move(rel), {}, id});
    if (Status s = read_dir(stack.back()); !s.ok()) {
      on_error(abs(stack.back().rel), s);
      stack.pop_back();
    }
  }
  return Status::Ok();
}

}  // namespace shotsync
