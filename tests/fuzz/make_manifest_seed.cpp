// Writes seed manifests for manifest_fuzz: DIR/empty.db (a fresh manifest)
// and DIR/rows.db (roots, files in every state, jobs, a download, runs and a
// throttle bucket), each checkpointed into one self-contained file.
// Usage: make_manifest_seed DIR
#include <cstdio>
#include <string>

#include "shotsync/manifest.hpp"

using namespace shotsync;

namespace {

int Fail(const Status& st) {
  std::fprintf(stderr, "make_manifest_seed: %s\n", st.message().c_str());
  return 1;
}

#define CHECK_OK(expr)                     \
  do {                                     \
    ::shotsync::Status _s = (expr);        \
    if (!_s.ok()) return Fail(_s);         \
  } while (0)

int Write(const std::string& path, bool rows) {
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  auto m = Manifest::Open(path);
  if (!m.ok()) return Fail(m.status());
  Manifest& db = **m;
  if (rows) {
    auto root = db.UpsertRoot(RootRecord{.path = "/home/fuzz/Photos", .project = "Demo", .album = "Main"});
    if (!root.ok()) return Fail(root.status());
    CHECK_OK(db.SetRootTarget(*root, 1, 1));
    auto other = db.UpsertRoot(RootRecord{.path = "/srv/exports", .project = "7", .album = "Selects"});
    if (!other.ok()) return Fail(other.status());
    const JobOwner owner{.token = "seed-owner"};
    const char* names[] = {"a.jpg", "day1/b.jpg", "day1/c.jpg", "day2/d.png", "e.heic"};
    int i = 0;
    for (const char* name : names) {
      FileRecord f{.root_id = *root, .rel_path = name, .size = std::uint64_t(1000 + i), .mtime_ns = 1700000000000000000 + i,
                   .inode = std::uint64_t(100 + i), .hash = std::string(31, 'a') + char('0' + i)};
      CHECK_OK(db.PutFile(f));
      if (i < 3) {
        auto claim = db.BeginJob(f.id, f.hash, f.size, owner);
        if (!claim.ok()) return Fail(claim.status());
        if (i == 0) CHECK_OK(db.FinishJob(claim->job_id, 42));
        if (i == 1) CHECK_OK(db.FailJob(claim->job_id, "HTTP 422: not an image", true));
        // i == 2 stays in flight
      }
      ++i;
    }
    CHECK_OK(db.MarkMissing(*root, "e.heic"));
    CHECK_OK(db.PutDownload(DownloadRecord{.remote_id = "p1", .member_id = "m1", .model_id = "mo1",
                                           .dest_path = "/home/fuzz/headshots/a/b/p1.jpg", .size = 2048,
                                           .bytes_done = 1024, .state = DownloadState::kPartial}));
    auto run = db.BeginRun("sync", 1234);
    if (!run.ok()) return Fail(run.status());
    CHECK_OK(db.EndRun(*run, RunCounts{.uploaded = 1, .rejected = 1, .bytes = 1000}, 1));
    auto running = db.BeginRun("push", 1235);
    if (!running.ok()) return Fail(running.status());
    auto token = db.TakeToken("shootbin:0123456789ab", 1.0, 1.0, 1732800000.0);
    if (!token.ok()) return Fail(token.status());
    CHECK_OK(db.PauseBucket("shootbin:0123456789ab", 1732800030.0));
  }
  CHECK_OK(db.Checkpoint());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_manifest_seed DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  if (int rc = Write(dir + "/empty.db", false)) return rc;
  return Write(dir + "/rows.db", true);
}
