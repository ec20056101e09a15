// FreeLoopbackPort: the kernel's pick of a TCP port nobody listens on now,
// on 127.0.0.1, for a test server that cannot report its own (postgres,
// nginx). There is a race until the server binds it: callers that can,
// retry with a new one. Throws std::runtime_error when no socket is had.
#pragma once

namespace shotsync::testing {

int FreeLoopbackPort();

}  // namespace shotsync::testing
