// OwnerLease: telling a running process's jobs from a dead one's.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "shotsync/owner.hpp"
#include "temp_dir.hpp"

using shotsync::OwnerLease;
using shotsync::testing::TempDir;

TEST_CASE("an owner is alive while its lease is held, in this process or another", "[owner]") {
  TempDir dir;
  const std::string state = dir.path().string();
  std::string token;
  {
    auto lease = OwnerLease::Acquire(state);
    REQUIRE(lease.ok());
    token = lease->token();
    CHECK(OwnerLease::IsAlive(state, token));
    CHECK(lease->AsJobOwner().alive(token));
  }
  CHECK_FALSE(OwnerLease::IsAlive(state, token));  // released and removed
  CHECK_FALSE(OwnerLease::IsAlive(state, ""));     // jobs from before owners existed
  CHECK_FALSE(OwnerLease::IsAlive(state, "../../etc/passwd"));
}

TEST_CASE("a process killed with SIGKILL is seen as dead at once", "[owner]") {
  TempDir dir;
  const std::string state = dir.path().string();
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto lease = OwnerLease::Acquire(state);
    if (!lease.ok()) ::_exit(1);
    const std::string& t = lease->token();
    if (::write(fds[1], t.data(), t.size()) != ssize_t(t.size())) ::_exit(2);
    ::close(fds[1]);
    ::pause();
    ::_exit(0);
  }
  ::close(fds[1]);
  char buf[64] = {};
  const ssize_t n = ::read(fds[0], buf, sizeof buf - 1);
  ::close(fds[0]);
  REQUIRE(n > 0);
  const std::string token(buf, std::size_t(n));
  CHECK(OwnerLease::IsAlive(state, token));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  CHECK_FALSE(OwnerLease::IsAlive(state, token));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "owners" / (token + ".lock")));  // swept
}
