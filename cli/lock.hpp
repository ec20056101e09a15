// RunLock: one sync per profile at a time (flock on <state_dir>/lock).
// The holder's pid is written into the file so that a refused run can name it.
// The lock goes away with the process, whatever way it ends (kill -9 included).
#pragma once

#include <string>

#include "shotsync/fd.hpp"
#include "shotsync/status.hpp"

namespace shotsync::cli {

class RunLock {
 public:
  // kBusy "another shotsync (pid N) is running on this profile" when held.
  static Result<RunLock> Acquire(const std::string& state_dir);

 private:
  explicit RunLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace shotsync::cli
