// CheckSetup (`shotsync check`, and `init` once it has enough): tests the
// whole set-up once, read-only, one line per check, and says what to fix.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "shotsync/config.hpp"
#include "shotsync/status.hpp"

namespace shotsync {

struct CheckLine {
  enum Result { kOk, kWarn, kFail } result = kOk;
  std::string subject;  // "config", "shootbin", "root /photos", "state", ...
  std::string message;  // one line; never a token
  Code code = Code::kOk;  // a failure's: kUnauthenticated/kForbidden are the token's (exit 3)
};

// Runs every check in order, handing each line over as it is known:
// config and token sources (with their file modes), the state folder and
// the headshot destination (writable, nothing created), each base URL
// (reachable, TLS, "is this your Shootbin instance?" for a 404 or an HTML
// page, an https redirect), the token and its plan, and every root: its
// folder, and its project and album (the names that exist and the close
// matches when one does not resolve). Nothing is created or sent.
void CheckSetup(const Config& config, const std::function<void(const CheckLine&)>& on_line);

// "libcurl 7.88.1 (OpenSSL/3.0.15), SQLite 3.40.1, libpq 15.x": what this
// binary runs on (`shotsync --version -v`, and check's first line).
std::string LibraryVersions();

// The process exit code for a set of lines: 0 none failed; 3 the token's
// (kUnauthenticated, kForbidden); else 2.
int CheckExitCode(const std::vector<CheckLine>& lines);

}  // namespace shotsync
