// The exit codes of every shotsync command (README.md "Exit codes") and the
// one mapping of a Status to them. Table-tested in tests/unit/exit_code_test.cpp.
#pragma once


#include "shotsync/status.hpp"

namespace shotsync {

namespace exit_code {
inline constexpr int kOk = 0;           // all done
inline constexpr int kPartial = 1;      // finished, but some files failed or were rejected
inline constexpr int kUsage = 2;        // usage or config error
inline constexpr int kAuth = 3;         // authentication / authorization
inline constexpr int kLocked = 4;       // another run holds the lock
inline constexpr int kInterrupted = 5;  // interrupted; run the same command to resume
}  // namespace exit_code

// The exit code for a status:
//   kOk 0; kInvalidArgument, kNotFound (a named project, album or member),
//   kCorrupt, kUnsupported 2; kUnauthenticated,
//   kForbidden 3; kBusy 4; kCancelled 5; everything else 1.
int ExitCodeFor(const Status& status) noexcept;

// The exit code of a run (sync, push, pull): ok -> 1 when anything failed,
// else 0; an error -> ExitCodeFor.
int RunExitCode(const Status& run_status, bool anything_failed) noexcept;

}  // namespace shotsync
