#include "shotsync/exit_code.hpp"

namespace shotsync {

int ExitCodeFor(const Status& status) noexcept {
  switch (status.code()) {
    case Code::kOk: return exit_code::kOk;
    case Code::kInvalidArgument:
    case Code::kCorrupt:
    case Code::kUnsupported: return exit_code::kUsage;
    case Code::kUnauthenticated:
    case Code::kForbidden: return exit_code::kAuth;
    case Code::kBusy: return exit_code::kLocked;
    case Code::kCancelled: return exit_code::kInterrupted;
    default: return exit_code::kPartial;
  }
}

int RunExitCode(const Status& run_status, bool anything_failed,
                std::span<const ExitCodeRow> rows) noexcept {
  if (run_status.ok()) return anything_failed ? exit_code::kPartial : exit_code::kOk;
  for (const ExitCodeRow& row : rows) {
    if (row.code == run_status.code()) return row.exit;
  }
  return ExitCodeFor(run_status);
}

}  // namespace shotsync
