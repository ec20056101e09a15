#include "shotsync/fs.hpp"

#include <sys/stat.h>

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

}  // namespace shotsync
