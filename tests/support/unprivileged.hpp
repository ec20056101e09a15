// Unprivileged: while it lives, this process acts as nobody (65534) when it
// runs as root, so permission tests mean the same whoever runs them. Root
// ignores file modes; without this, those tests could only skip as root.
//
//   Unprivileged as_nobody;   // then create the files and check the denials
//
// Only the effective ids change (real and saved stay root), so the scope's
// end gets root back. On Linux the change applies to every thread of the
// process; create the objects the test checks inside the scope, so that
// they belong to nobody and can be cleaned up as nobody. Not root: no-op.
#pragma once

#include <grp.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace shotsync::testing {

inline constexpr uid_t kNobody = 65534;

class Unprivileged {
 public:
  Unprivileged() {
    if (::geteuid() != 0) return;
    const int n = ::getgroups(0, nullptr);
    groups_.resize(n > 0 ? std::size_t(n) : 0);
    if (n > 0 && ::getgroups(n, groups_.data()) < 0) Fail("getgroups");
    // Supplementary groups first (root's group 0 would still open group-readable files).
    if (::setgroups(0, nullptr) != 0) Fail("setgroups");
    if (::setegid(kNobody) != 0) Fail("setegid");
    if (::seteuid(kNobody) != 0) Fail("seteuid");
    dropped_ = true;
  }
  ~Unprivileged() {
    if (!dropped_) return;
    // Restoring cannot fail for a process whose saved ids are root; if it
    // did, the rest of the run would test the wrong thing: stop loudly.
    if (::seteuid(0) != 0 || ::setegid(0) != 0 || ::setgroups(groups_.size(), groups_.data()) != 0) {
      std::terminate();
    }
  }
  Unprivileged(const Unprivileged&) = delete;
  Unprivileged& operator=(const Unprivileged&) = delete;

  // True when the ids were actually dropped (the process runs as root).
  bool dropped() const { return dropped_; }

 private:
  [[noreturn]] static void Fail(const char* what) {
    throw std::runtime_error(std::string("Unprivileged: ") + what + ": " + std::strerror(errno));
  }
  std::vector<gid_t> groups_;
  bool dropped_ = false;
};

}  // namespace shotsync::testing
