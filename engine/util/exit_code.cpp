#include "shotsync/exit_code.hpp"

namespace shotsync {

int ExitCodeFor(const Status& status) noexcept {
  switch (status.code()) {
    case Code::kOk: return exit_code::kOk;
    case Code::kInvalidArgument:
    case Code::kNotFound:
    case Code::kCorrupt:
    case Code::kUnsupported: return exit_code::kUsage;
    case Code::kUnauthenticated:
    case Code::kForbidden: return exit_code::kAuth;
    case Code::kBusy: return exit_code::kLocked;
    case Code::kCancelled: return exit_code::kInterrupted;
    default: return exit_code::kPartial;
  }
}

int RunExitCode(const Status& run_status, bool anything_failed) noexcept {
  if (run_status.ok()) return anything_failed ? exit_code::kPartial : exit_code::kOk;
  return ExitCodeFor(run_status);
}

}  // namespace shotsync
