#include "shotsync/scanner.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <set>
#include <utility>

#include "shotsync/fd.hpp"

namespace shotsync {
namespace {

constexpr int kMaxDepth = 256;

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string JoinRel(std::string_view dir_rel, std::string_view name) {
  if (dir_rel.empty()) return std::string(name);
  std::string out;
  out.reserve(dir_rel.size() + 1 + name.size());
  out.append(dir_rel).append("/").append(name);
  return out;
}

bool IsIgnored(std::string_view dir_rel, std::string_view name, const ScanOptions& options) {
  if (name.empty() || name[0] == '.') return true;
  if (EndsWith(name, ".part")) return true;
  if (options.ignore.empty()) return false;
  const std::string n(name);
  std::string rel;
  for (const std::string& glob : options.ignore) {
    if (glob.find('/') == std::string::npos) {
      if (::fnmatch(glob.c_str(), n.c_str(), 0) == 0) return true;
    } else {
      if (rel.empty()) rel = JoinRel(dir_rel, name);
      if (::fnmatch(glob.c_str(), rel.c_str(), FNM_PATHNAME) == 0) return true;
    }
  }
  return false;
}

Status Scanner::Walk(const std::string& root, const ScanOptions& options, const DirFn& on_dir,
                     const ErrorFn& on_error) {
  UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) {
    if (errno == ENOTDIR) return Status::Invalid(root + ": not a directory");
    return Status::Io(root, errno);
  }
  struct Frame {
    UniqueFd fd;
    std::string rel;
    std::vector<std::string> subdirs;  // still to visit, in reverse name order
    std::pair<dev_t, ino_t> id;
  };
  struct stat st {};
  if (::fstat(root_fd.get(), &st) != 0) return Status::Io(root, errno);
  std::vector<Frame> stack;
  std::set<std::pair<dev_t, ino_t>> on_path;  // directories on the current path: loop check
  std::vector<ScanEntry> files;

  // Reads one directory: hands its files to on_dir, returns its subdirectories.
  auto read_dir = [&](Frame& frame) {
    const int dup = ::dup(frame.fd.get());
    if (dup < 0) {
      on_error(root + "/" + frame.rel, Status::Io(root + "/" + frame.rel, errno));
      return;
    }
    UniqueDir dir(::fdopendir(dup));
    if (!dir) {
      ::close(dup);
      on_error(root + "/" + frame.rel, Status::Io(root + "/" + frame.rel, errno));
      return;
    }
    files.clear();
    errno = 0;
    while (dirent* e = ::readdir(dir.get())) {
      const std::string_view name(e->d_name);
      if (IsIgnored(frame.rel, name, options)) continue;
      const unsigned char type = e->d_type;
      if (type == DT_DIR) {
        frame.subdirs.emplace_back(name);
        continue;
      }
      if (type != DT_REG && type != DT_LNK && type != DT_UNKNOWN) continue;  // fifos, sockets...
      struct stat fst {};
      if (::fstatat(frame.fd.get(), e->d_name, &fst, 0) != 0) {
        // Vanished since readdir, or a dangling symlink.
        const std::string path = root + "/" + JoinRel(frame.rel, name);
        on_error(path, Status::Io(path, errno));
        continue;
      }
      if (S_ISDIR(fst.st_mode)) {
        frame.subdirs.emplace_back(name);
      } else if (S_ISREG(fst.st_mode)) {
        files.push_back({std::string(name), std::uint64_t(fst.st_size),
                         std::int64_t(fst.st_mtim.tv_sec) * 1000000000 + fst.st_mtim.tv_nsec,
                         std::uint64_t(fst.st_ino)});
      }
    }
    std::sort(files.begin(), files.end(),
              [](const ScanEntry& a, const ScanEntry& b) { return a.name < b.name; });
    on_dir(frame.rel, files);
    std::sort(frame.subdirs.begin(), frame.subdirs.end(), std::greater<>());
  };

  stack.push_back({std::move(root_fd), "", {}, {st.st_dev, st.st_ino}});
  on_path.insert(stack.back().id);
  read_dir(stack.back());
  while (!stack.empty()) {
    Frame& top = stack.back();
    if (top.subdirs.empty()) {
      on_path.erase(top.id);
      stack.pop_back();
      continue;
    }
    const std::string name = std::move(top.subdirs.back());
    top.subdirs.pop_back();
    const std::string rel = JoinRel(top.rel, name);
    const std::string path = root + "/" + rel;
    UniqueFd fd(::openat(top.fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
      on_error(path, Status::Io(path, errno));
      continue;
    }
    struct stat dst {};
    if (::fstat(fd.get(), &dst) != 0) {
      on_error(path, Status::Io(path, errno));
      continue;
    }
    const std::pair<dev_t, ino_t> id{dst.st_dev, dst.st_ino};
    if (on_path.contains(id)) {
      on_error(path, Status::Invalid(path + ": symlink loop (a folder that contains itself), skipped"));
      continue;
    }
    if (stack.size() >= std::size_t(kMaxDepth)) {
      on_error(path, Status::Invalid(path + ": nested deeper than 256 folders, skipped"));
      continue;
    }
    stack.push_back({std::move(fd), rel, {}, id});
    on_path.insert(id);
    read_dir(stack.back());
  }
  return Status::Ok();
}

}  // namespace shotsync
