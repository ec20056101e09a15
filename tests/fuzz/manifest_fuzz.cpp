// Fuzzes Manifest::Open and the reads every command makes
// (include/shotsync/manifest.hpp) on an arbitrary file: a manifest damaged
// by a crash, a disk error or a hand edit must give an error value, never a
// crash. Seeds: real manifests written by make_manifest_seed (scripts/fuzz).
//
// The input is written to /tmp/shotsync-fuzz-<pid>.db (its -wal/-shm/
// -journal removed first) and opened there.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "fuzz_util.hpp"
#include "shotsync/manifest.hpp"

using namespace shotsync;
using fuzz::Violated;

namespace {

const std::string& DbPath() {
  static const std::string path = "/tmp/shotsync-fuzz-" + std::to_string(::getpid()) + ".db";
  return path;
}

void RemoveDb() {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::remove((DbPath() + suffix).c_str());
}

void CheckMessage(const Status& st) {
  if (!st.ok() && st.message().empty()) Violated("empty error message");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  RemoveDb();
  {
    std::FILE* f = std::fopen(DbPath().c_str(), "wb");
    if (!f) return 0;
    if (size > 0) std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  {
    auto m = Manifest::Open(DbPath(), Manifest::Options{.busy_timeout_ms = 100});
    if (!m.ok()) {
      CheckMessage(m.status());
      RemoveDb();
      return 0;
    }
    Manifest& db = **m;
    (void)db.SchemaVersion();
    CheckMessage(db.IntegrityCheck());
    auto roots = db.Roots();
    CheckMessage(roots.status());
    std::size_t files = 0;
    CheckMessage(db.ForEachFile(0, [&](const FileRecord&) { ++files; }));
    if (roots.ok()) {
      for (const RootRecord& r : *roots) {
        CheckMessage(db.ForEachFile(r.id, [&](const FileRecord&) {}));
        auto dirs = db.Dirs(r.id);
        CheckMessage(dirs.status());
        CheckMessage(db.FilesInDir(r.id, "").status());
      }
    }
    CheckMessage(db.UnfinishedJobs().status());
    CheckMessage(db.RecentRuns(10).status());
    CheckMessage(db.RecentFailures(10).status());
    CheckMessage(db.CountsByRoot().status());
    CheckMessage(db.FilesInState(FileState::kRejected, 10).status());
    CheckMessage(db.Buckets().status());
    CheckMessage(db.GetDownload("p1").status());
  }
  RemoveDb();
  return 0;
}
