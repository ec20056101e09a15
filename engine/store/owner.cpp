#include "shotsync/owner.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <random>

namespace shotsync {
namespace {

std::string OwnersDir(const std::string& state_dir) { return state_dir + "/owners"; }

bool ValidToken(std::string_view token) {
  if (token.empty() || token.size() > 64) return false;
  for (char c : token) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-')) return false;
  }
  return true;
}

}  // namespace

std::string NewOwnerToken() {
  std::random_device rd;
  char token[48];
  std::snprintf(token, sizeof token, "%d-%08x%08x", int(::getpid()), rd(), rd());
  return token;
}

Result<OwnerLease> OwnerLease::Acquire(const std::string& state_dir) {
  const std::string dir = OwnersDir(state_dir);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Status::Io(dir, errno);
  const std::string token = NewOwnerToken();
  const std::string path = dir + "/" + token + ".lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return Status::Io(path, errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) return Status::Io(path, errno);
  return OwnerLease(dir, token, std::move(fd));
}

OwnerLease::~OwnerLease() {
  if (fd_) ::unlink((dir_ + "/" + token_ + ".lock").c_str());
}

bool OwnerLease::IsAlive(const std::string& state_dir, std::string_view token) {
  if (!ValidToken(token)) return false;
  const std::string path = OwnersDir(state_dir) + "/" + std::string(token) + ".lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return errno != ENOENT;  // gone: its owner ended; unreadable: assume alive (safe side)
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) {
    ::unlink(path.c_str());  // the owner died without cleaning up
    return false;
  }
  return true;
}

JobOwner OwnerLease::AsJobOwner() const {
  return JobOwner{token_, [state_dir = dir_.substr(0, dir_.size() - std::string_view("/owners").size())](
                              std::string_view token) { return IsAlive(state_dir, token); }};
}

}  // namespace shotsync
