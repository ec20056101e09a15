#include "shotsync/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace shotsync {

Status MakePrivateDirs(const std::string& dir) {
  std::filesystem::path sofar;
  for (const auto& part : std::filesystem::path(dir)) {
    sofar /= part;
    if (part.empty()) continue;  // a trailing slash
    if (::mkdir(sofar.c_str(), 0700) != 0 && errno != EEXIST) return Status::Io(sofar.string(), errno);
  }
  return Status::Ok();
}

Status SyncFolder(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::Io(dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  return rc == 0 ? Status::Ok() : Status::Io("fsync " + dir, err);
}

}  // namespace shotsync
