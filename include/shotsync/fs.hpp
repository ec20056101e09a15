// File-system helpers shared by the engine and the command line.
#pragma once

#include <string>

#include "shotsync/status.hpp"

namespace shotsync {

// Creates the missing folders of `dir`, each mode 0700 (state, logs and
// token files name the user's photos or hold secrets). Folders that exist
// are left as they are.
Status MakePrivateDirs(const std::string& dir);

// fsync(2) of a folder: the names created, linked or renamed in it survive a
// power cut.
Status SyncFolder(const std::string& dir);

}  // namespace shotsync
