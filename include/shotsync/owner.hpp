// OwnerLease: proves that a process is still running, to other processes
// sharing a manifest.
//
// Each process that sends holds an exclusive flock on
// <state_dir>/owners/<token>.lock for its whole life. The kernel drops the
// lock when the process ends, however it ends (kill -9 and power loss
// included), so "is the owner of this in-flight job alive?" is answered by
// trying that lock: if we can take it, nobody holds it. No pid reuse races,
// no heartbeats. The manifest's jobs carry the token (JobOwner).
#pragma once

#include <string>
#include <string_view>

#include "shotsync/fd.hpp"
#include "shotsync/manifest.hpp"
#include "shotsync/status.hpp"

namespace shotsync {

// A fresh owner token, "<pid>-<16 random hex digits>": unique on a host and,
// by its random part, across the hosts of a studio.
std::string NewOwnerToken();

class OwnerLease {
 public:
  // Creates <state_dir>/owners (0700) and a fresh token "<pid>-<random>".
  static Result<OwnerLease> Acquire(const std::string& state_dir);
  OwnerLease(OwnerLease&&) noexcept = default;
  OwnerLease& operator=(OwnerLease&&) noexcept = default;
  ~OwnerLease();  // removes the lock file (a crash leaves it: harmless, swept later)

  const std::string& token() const { return token_; }
  // True while the process holding `token` runs (our own token included).
  // "" (jobs from before owners were recorded) is never alive. Dead owners'
  // files are removed on the way.
  static bool IsAlive(const std::string& state_dir, std::string_view token);
  // This process as a JobOwner for Manifest::BeginJob.
  JobOwner AsJobOwner() const;

 private:
  OwnerLease(std::string dir, std::string token, UniqueFd fd)
      : dir_(std::move(dir)), token_(std::move(token)), fd_(std::move(fd)) {}
  std::string dir_, token_;
  UniqueFd fd_;
};

}  // namespace shotsync
