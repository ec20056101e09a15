#include "shotsync/status.hpp"

#include <cstring>

namespace shotsync {

std::string_view CodeName(Code code) noexcept {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kNotFound: return "not_found";
    case Code::kIo: return "io";
    case Code::kCorrupt: return "corrupt";
    case Code::kUnauthenticated: return "unauthenticated";
    case Code::kForbidden: return "forbidden";
    case Code::kRateLimited: return "rate_limited";
    case Code::kNetwork: return "network";
    case Code::kServer: return "server";
    case Code::kConflict: return "conflict";
    case Code::kRejected: return "rejected";
    case Code::kBusy: return "busy";
    case Code::kAlreadyDone: return "already_done";
    case Code::kCancelled: return "cancelled";
    case Code::kUnsupported: return "unsupported";
    case Code::kSkipped: return "skipped";
    case Code::kInternal: return "internal";
  }
  return "unknown";
}

Status Status::Io(std::string_view what, int err) {
  std::string m(what);
  m += ": ";
  m += std::strerror(err);
  return {Code::kIo, std::move(m)};
}

}  // namespace shotsync
