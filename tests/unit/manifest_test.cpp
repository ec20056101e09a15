#include "shotsync/manifest.hpp"
#include "shotsync/planner.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "local/batch_writer.hpp"
#include "raw_sql.hpp"
#include "store/manifest_impl.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

using shotsync::Code;
using shotsync::FileRecord;
using shotsync::FileState;
using shotsync::JobKind;
using shotsync::JobState;
using shotsync::Manifest;
using shotsync::testing::RawExec;
using shotsync::testing::RawInt;
using shotsync::testing::TempDir;
using shotsync::testing::ReadFileText;

namespace {

// One process owning its jobs; every other owner counts as running.
shotsync::JobOwner TestOwner() { return shotsync::JobOwner{"test-owner", nullptr}; }

std::string DbPath(const TempDir& dir) {
  return (dir.path() / "manifest.db").string();
}

std::unique_ptr<Manifest> MustOpen(const std::string& path) {
  auto m = Manifest::Open(path);
  INFO(m.status().ToString());
  REQUIRE(m.ok());
  return std::move(m).value();
}

FileRecord MakeFile(std::int64_t root_id, std::string rel, std::uint64_t size = 100) {
  FileRecord f;
  f.root_id = root_id;
  f.rel_path = std::move(rel);
  f.size = size;
  f.mtime_ns = 1'700'000'000'123'456'789;
  f.inode = 42;
  return f;
}

std::int64_t AddRoot(Manifest& m, std::string path = "/photos") {
  auto id = m.UpsertRoot({0, std::move(path), "Client Smith", "Selects"});
  REQUIRE(id.ok());
  return *id;
}

std::vector<std::string> ListDir(const TempDir& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    names.push_back(e.path().filename().string());
  }
  return names;
}

double MonotonicSeconds() {
  // CLOCK_MONOTONIC is system-wide, so processes and threads share it.
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int WaitChild(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

TEST_CASE("a new manifest is created in WAL mode and keeps its data when reopened", "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  std::int64_t root = 0, file_id = 0, run_id = 0;
  {
    auto m = MustOpen(path);
    CHECK(m->SchemaVersion() == shotsync::kManifestSchemaVersion);
    root = AddRoot(*m);
    FileRecord f = MakeFile(root, "day1/IMG_0001.jpg", 12345);
    f.hash = "0123456789abcdef0123456789abcdef";
    f.inode = 0xFFFF'FFFF'FFFF'FFF0ull;  // above INT64_MAX: must keep its bits
    REQUIRE(m->PutFile(f).ok());
    file_id = f.id;
    CHECK(file_id > 0);
    auto run = m->BeginRun("sync", 4242);
    REQUIRE(run.ok());
    run_id = *run;
    shotsync::DownloadRecord d{
        "ph_1", "mem_1", "mod_1", "/heads/a.jpg", 999, 100, shotsync::DownloadState::kPartial, ""};
    REQUIRE(m->PutDownload(d).ok());
  }
  CHECK(RawInt(path, "PRAGMA application_id") == shotsync::kManifestApplicationId);
  CHECK(RawInt(path, "PRAGMA user_version") == shotsync::kManifestSchemaVersion);

  auto m = MustOpen(path);
  auto roots = m->Roots();
  REQUIRE(roots.ok());
  REQUIRE(roots->size() == 1);
  CHECK((*roots)[0].id == root);
  CHECK((*roots)[0].path == "/photos");
  CHECK((*roots)[0].project == "Client Smith");
  CHECK((*roots)[0].album == "Selects");
  // Upserting the same path updates it in place.
  auto again = m->UpsertRoot({0, "/photos", "Client Jones", "Finals"});
  REQUIRE(again.ok());
  CHECK(*again == root);
  CHECK(m->Roots()->at(0).album == "Finals");

  auto f = m->GetFile(root, "day1/IMG_0001.jpg");
  REQUIRE(f.ok());
  REQUIRE(f->has_value());
  CHECK((*f)->id == file_id);
  CHECK((*f)->size == 12345);
  CHECK((*f)->mtime_ns == 1'700'000'000'123'456'789);
  CHECK((*f)->inode == 0xFFFF'FFFF'FFFF'FFF0ull);
  CHECK((*f)->hash == "0123456789abcdef0123456789abcdef");
  CHECK((*f)->state == FileState::kNew);
  CHECK_FALSE((*f)->remote_photo_id.has_value());
  auto by_id = m->GetFileById(file_id);
  REQUIRE(by_id.ok());
  REQUIRE(by_id->has_value());
  CHECK((*by_id)->rel_path == "day1/IMG_0001.jpg");
  CHECK_FALSE(m->GetFile(root, "day1/nope.jpg")->has_value());

  auto runs = m->RecentRuns(10);
  REQUIRE(runs.ok());
  REQUIRE(runs->size() == 1);
  CHECK((*runs)[0].id == run_id);
  CHECK((*runs)[0].pid == 4242);
  CHECK((*runs)[0].finished_at == 0);  // never ended: running or killed

  auto d = m->GetDownload("ph_1");
  REQUIRE(d.ok());
  REQUIRE(d->has_value());
  CHECK((*d)->bytes_done == 100);
  CHECK((*d)->state == shotsync::DownloadState::kPartial);
  CHECK((*d)->dest_path == "/heads/a.jpg");
  CHECK_FALSE(m->GetDownload("ph_2")->has_value());
  CHECK(m->IntegrityCheck().ok());
}

// A new manifest is built beside its path and linked into place (two syncs
// instead of six): what is left is the manifest and its WAL, never the
// scratch files, and processes that create it at once share one manifest.
TEST_CASE("manifests created at once on a new path are one manifest, with no scratch files left",
          "[manifest][concurrency]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  std::vector<std::optional<shotsync::Result<std::unique_ptr<Manifest>>>> results(4);
  {
    std::vector<std::jthread> openers;  // no Catch2 assertions in them: it is not thread-safe
    for (auto& r : results) openers.emplace_back([&r, &path] { r.emplace(Manifest::Open(path)); });
  }
  std::vector<std::unique_ptr<Manifest>> opened;
  for (auto& r : results) {
    REQUIRE(r->ok());
    opened.push_back(std::move(**r));
  }
  for (std::size_t i = 0; i < opened.size(); ++i) {
    FileRecord f = MakeFile(AddRoot(*opened[i], "/photos" + std::to_string(i)), "a.jpg");
    REQUIRE(opened[i]->PutFile(f).ok());
  }
  CHECK(RawInt(path, "SELECT count(*) FROM files") == 4);
  CHECK(RawInt(path, "PRAGMA user_version") == shotsync::kManifestSchemaVersion);
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) names.insert(e.path().filename().string());
  const std::string base = std::filesystem::path(path).filename().string();
  CHECK(names == std::set<std::string>{base, base + "-shm", base + "-wal"});
  CHECK(ReadFileText(path).substr(18, 2) == std::string("\x02\x02", 2));  // WAL mode in the header
}

TEST_CASE("a file row round-trips a non-UTF-8 name byte for byte", "[manifest]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  const std::string root_path = std::string("/ph\xff\xfeotos");
  std::int64_t root = AddRoot(*m, root_path);
  const std::string dir_bytes = std::string("caf\xe9 latin1");         // Latin-1, not UTF-8
  const std::string name = std::string("IMG\x01\x80\xc3(\0.jpg", 12);  // with a NUL byte
  FileRecord f = MakeFile(root, dir_bytes + "/" + name);
  REQUIRE(m->PutFile(f).ok());

  auto got = m->GetFile(root, dir_bytes + "/" + name);
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->rel_path == dir_bytes + "/" + name);
  CHECK((*got)->rel_path.size() == dir_bytes.size() + 1 + name.size());
  // A name differing only in one byte is another file.
  std::string other = name;
  other[4] = '\x81';
  CHECK_FALSE(m->GetFile(root, dir_bytes + "/" + other)->has_value());

  auto dirs = m->Dirs(root);
  REQUIRE(dirs.ok());
  REQUIRE(dirs->size() == 1);
  CHECK((*dirs)[0] == dir_bytes);
  std::vector<std::string> seen;
  REQUIRE(m->ForEachFileInDir(root, dir_bytes, [&](const FileRecord& r) {
             seen.push_back(r.rel_path);
           }).ok());
  CHECK(seen == std::vector<std::string>{dir_bytes + "/" + name});
  CHECK(m->Roots()->at(0).path == root_path);
}

TEST_CASE("a batch of 10,000 PutFile stores every row", "[manifest]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  std::int64_t root = AddRoot(*m);
  auto start = std::chrono::steady_clock::now();
  REQUIRE(m->BeginBatch().ok());
  for (int i = 0; i < 10000; ++i) {
    FileRecord f = MakeFile(root, "d" + std::to_string(i % 50) + "/f" + std::to_string(i) + ".jpg",
                            static_cast<std::uint64_t>(i));
    REQUIRE(m->PutFile(f).ok());
    REQUIRE(f.id > 0);
  }
  REQUIRE(m->CommitBatch().ok());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO("10k PutFile in a batch took " << secs << " s");  // speed: benchmarks/, not here

  std::set<std::string> paths;
  std::uint64_t size_sum = 0;
  REQUIRE(m->ForEachFile(root, [&](const FileRecord& r) {
             paths.insert(r.rel_path);
             size_sum += r.size;
           }).ok());
  CHECK(paths.size() == 10000);
  CHECK(size_sum == 9999ull * 10000 / 2);
  CHECK(m->Dirs(root)->size() == 50);
}

TEST_CASE("PutFile with id 0 on a stored path updates that row instead of failing", "[manifest]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  std::int64_t root = AddRoot(*m);
  FileRecord a = MakeFile(root, "x.jpg", 1);
  REQUIRE(m->PutFile(a).ok());
  FileRecord b = MakeFile(root, "x.jpg", 2);
  REQUIRE(m->PutFile(b).ok());
  CHECK(b.id == a.id);
  CHECK((*m->GetFileById(a.id))->size == 2);
  // Update by id, and an unknown id is reported.
  b.size = 3;
  REQUIRE(m->PutFile(b).ok());
  CHECK((*m->GetFileById(a.id))->size == 3);
  FileRecord ghost = MakeFile(root, "ghost.jpg");
  ghost.id = 999;
  CHECK(m->PutFile(ghost).code() == Code::kNotFound);
  // Bad relative paths are refused.
  FileRecord bad = MakeFile(root, "/abs.jpg");
  CHECK(m->PutFile(bad).code() == Code::kInvalidArgument);
  // A file of an unknown root violates the foreign key.
  FileRecord orphan = MakeFile(root + 100, "o.jpg");
  CHECK_FALSE(m->PutFile(orphan).ok());
}

TEST_CASE("ForEachFileInDir lists only the direct children of a directory", "[manifest]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  std::int64_t root = AddRoot(*m);
  std::int64_t other_root = AddRoot(*m, "/other");
  for (const char* p :
       {"top.jpg", "a/1.jpg", "a/2.jpg", "a/b/3.jpg", "a/b/c/4.jpg", "ab/5.jpg", "a-b/6.jpg"}) {
    FileRecord f = MakeFile(root, p);
    REQUIRE(m->PutFile(f).ok());
  }
  FileRecord elsewhere = MakeFile(other_root, "a/9.jpg");
  REQUIRE(m->PutFile(elsewhere).ok());

  auto list = [&](std::string_view d) {
    std::vector<std::string> out;
    REQUIRE(
        m->ForEachFileInDir(root, d, [&](const FileRecord& r) { out.push_back(r.rel_path); }).ok());
    return out;
  };
  CHECK(list("") == std::vector<std::string>{"top.jpg"});
  CHECK(list("a") == std::vector<std::string>{"a/1.jpg", "a/2.jpg"});
  CHECK(list("a/b") == std::vector<std::string>{"a/b/3.jpg"});
  CHECK(list("nope").empty());

  // The callback may write to the manifest (the differ marks files missing).
  REQUIRE(m->ForEachFileInDir(root, "a", [&](const FileRecord& r) {
             REQUIRE(m->MarkMissing(root, r.rel_path).ok());
           }).ok());
  CHECK((*m->GetFile(root, "a/1.jpg"))->state == FileState::kMissing);
}

TEST_CASE("Dirs lists every directory that holds a file still on disk", "[manifest]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  std::int64_t root = AddRoot(*m);
  for (const char* p : {"top.jpg", "a/1.jpg", "a/b/3.jpg", "gone/x.jpg"}) {
    FileRecord f = MakeFile(root, p);
    REQUIRE(m->PutFile(f).ok());
  }
  REQUIRE(m->MarkMissing(root, "gone/x.jpg").ok());
  auto dirs = m->Dirs(root);
  REQUIRE(dirs.ok());
  CHECK(*dirs == std::vector<std::string>{"", "a", "a/b"});
}

TEST_CASE("MarkMissing keeps the row and its remote id", "[manifest]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  std::int64_t root = AddRoot(*m);
  FileRecord f = MakeFile(root, "day1/a.jpg");
  f.state = FileState::kSynced;
  f.remote_photo_id = 77;
  f.hash = f.remote_hash = "00000000000000000000000000000001";
  REQUIRE(m->PutFile(f).ok());
  REQUIRE(m->MarkMissing(root, "day1/a.jpg").ok());
  auto got = m->GetFile(root, "day1/a.jpg");
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->state == FileState::kMissing);
  CHECK((*got)->remote_photo_id == 77);
  CHECK((*got)->remote_hash == f.remote_hash);
  CHECK(m->MarkMissing(root, "day1/never.jpg").code() == Code::kNotFound);
}

TEST_CASE("ForEachFile visits files in rel_path byte order, root by root", "[manifest]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  std::int64_t r1 = AddRoot(*m, "/one");
  std::int64_t r2 = AddRoot(*m, "/two");
  for (const char* p : {"z.jpg", "a/x.jpg", "a-b/x.jpg", "a.jpg", "a/b/y.jpg"}) {
    FileRecord f = MakeFile(r1, p);
    REQUIRE(m->PutFile(f).ok());
  }
  FileRecord g = MakeFile(r2, "0.jpg");
  REQUIRE(m->PutFile(g).ok());
  std::vector<std::string> seen;
  REQUIRE(m->ForEachFile(r1, [&](const FileRecord& r) { seen.push_back(r.rel_path); }).ok());
  CHECK(seen == std::vector<std::string>{"a-b/x.jpg", "a.jpg", "a/b/y.jpg", "a/x.jpg", "z.jpg"});
  seen.clear();
  // Every root; the callback may write (another connection streams the rows).
  REQUIRE(m->BeginBatch().ok());
  FileRecord h = MakeFile(r2, "1.jpg");
  REQUIRE(m->PutFile(h).ok());  // in the open batch: still listed
  REQUIRE(m->ForEachFile(0, [&](const FileRecord& r) {
             seen.push_back(r.rel_path);
             FileRecord copy = r;
             copy.reason = "visited";
             REQUIRE(m->PutFile(copy).ok());
           }).ok());
  REQUIRE(m->CommitBatch().ok());
  CHECK(seen.size() == 7);
  CHECK(seen.back() == "1.jpg");
  CHECK((*m->GetFile(r1, "z.jpg"))->reason == "visited");
}

TEST_CASE("FindSyncedByHash finds only a synced file with that content", "[manifest]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  std::int64_t root = AddRoot(*m);
  const std::string h = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  FileRecord pending = MakeFile(root, "p.jpg");
  pending.hash = h;
  REQUIRE(m->PutFile(pending).ok());
  CHECK_FALSE(m->FindSyncedByHash(h)->has_value());
  FileRecord synced = MakeFile(root, "s.jpg");
  synced.hash = synced.remote_hash = h;
  synced.state = FileState::kSynced;
  synced.remote_photo_id = 5;
  REQUIRE(m->PutFile(synced).ok());
  auto found = m->FindSyncedByHash(h);
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->id == synced.id);
  CHECK_FALSE(m->FindSyncedByHash("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")->has_value());
  CHECK_FALSE(m->FindSyncedByHash("")->has_value());
}

TEST_CASE("a job goes in_flight then done, updating the file row in the same transaction",
          "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  auto m = MustOpen(path);
  std::int64_t root = AddRoot(*m);
  FileRecord f = MakeFile(root, "day1/a.jpg", 5000);
  f.hash = "11111111111111111111111111111111";
  REQUIRE(m->PutFile(f).ok());

  auto job = m->BeginJob(f.id, f.hash, f.size, TestOwner());
  REQUIRE(job.ok());
  // Durable at once: another connection sees it.
  CHECK(RawInt(path, "SELECT count(*) FROM jobs WHERE state = 'in_flight'") == 1);
  auto unfinished = m->UnfinishedJobs();
  REQUIRE(unfinished.ok());
  REQUIRE(unfinished->size() == 1);
  CHECK((*unfinished)[0].id == job->job_id);
  CHECK((*unfinished)[0].state == JobState::kInFlight);
  CHECK((*unfinished)[0].hash == f.hash);
  CHECK((*unfinished)[0].size == 5000);
  CHECK((*unfinished)[0].kind == JobKind::kUpload);

  SECTION("done: remote id, remote hash and state change with the job") {
    REQUIRE(m->FinishJob(job->job_id, 9001).ok());
    auto got = m->GetFileById(f.id);
    REQUIRE(got.ok());
    CHECK((*got)->state == FileState::kSynced);
    CHECK((*got)->remote_photo_id == 9001);
    CHECK((*got)->remote_hash == f.hash);
    CHECK((*got)->reason.empty());
    CHECK(m->UnfinishedJobs()->empty());
    CHECK(m->FinishJob(12345, 1).code() == Code::kNotFound);
  }
  SECTION("when the file row cannot change, the job stays in_flight (one transaction)") {
    RawExec(path,
            "CREATE TRIGGER boom BEFORE UPDATE OF state ON files WHEN NEW.state = 'synced' "
            "BEGIN SELECT RAISE(ABORT, 'boom'); END");
    auto reopened = MustOpen(path);  // sees the new schema
    CHECK_FALSE(reopened->FinishJob(job->job_id, 9001).ok());
    auto jobs = reopened->UnfinishedJobs();
    REQUIRE(jobs.ok());
    REQUIRE(jobs->size() == 1);
    CHECK((*jobs)[0].state == JobState::kInFlight);
    CHECK_FALSE((*reopened->GetFileById(f.id))->remote_photo_id.has_value());
  }
  SECTION("a retry after a crash takes over the same job row") {
    auto again = m->BeginJob(f.id, f.hash, f.size, TestOwner());
    REQUIRE(again.ok());
    CHECK(again->job_id == job->job_id);
    CHECK(m->UnfinishedJobs()->size() == 1);
  }
}

TEST_CASE("FailJob records the reason, a permanent failure rejects the file", "[manifest]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  std::int64_t root = AddRoot(*m);
  FileRecord f = MakeFile(root, "a.jpg");
  REQUIRE(m->PutFile(f).ok());
  auto job = m->BeginJob(f.id, "h", 1, TestOwner());
  REQUIRE(job.ok());
  REQUIRE(m->FailJob(job->job_id, "HTTP 503\nService Unavailable", false).ok());
  auto fails = m->RecentFailures(10);
  REQUIRE(fails.ok());
  REQUIRE(fails->size() == 1);
  CHECK((*fails)[0].state == JobState::kFailed);
  CHECK((*fails)[0].attempts == 1);
  CHECK((*fails)[0].last_error == "HTTP 503 Service Unavailable");
  auto got = m->GetFileById(f.id);
  CHECK((*got)->state == FileState::kNew);
  CHECK((*got)->reason == "HTTP 503 Service Unavailable");
  CHECK(m->UnfinishedJobs()->empty());

  // Retried on a later run: same row, attempts keep counting.
  auto retry = m->BeginJob(f.id, "h", 1, TestOwner());
  REQUIRE(retry.ok());
  CHECK(retry->job_id == job->job_id);
  REQUIRE(m->FailJob(retry->job_id, "422: not an image", true).ok());
  fails = m->RecentFailures(10);
  REQUIRE(fails->size() == 1);
  CHECK((*fails)[0].state == JobState::kRejected);
  CHECK((*fails)[0].attempts == 2);
  got = m->GetFileById(f.id);
  CHECK((*got)->state == FileState::kRejected);
  CHECK((*got)->reason == "422: not an image");
}

TEST_CASE("a job left in_flight by a killed process is returned by UnfinishedJobs", "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  std::int64_t file_id = 0;
  {
    auto m = MustOpen(path);
    std::int64_t root = AddRoot(*m);
    FileRecord f = MakeFile(root, "day1/a.jpg");
    REQUIRE(m->PutFile(f).ok());
    file_id = f.id;
  }
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child: a sync that dies by SIGKILL in the middle of an upload, with
    // a batch of other writes open.
    auto m = Manifest::Open(path);
    if (!m.ok()) ::_exit(10);
    if (!(*m)->BeginBatch().ok()) ::_exit(11);
    FileRecord g = MakeFile(1, "day1/b.jpg");
    if (!(*m)->PutFile(g).ok()) ::_exit(12);
    if (!(*m)->BeginJob(file_id, "abc", 7, TestOwner()).ok()) ::_exit(13);
    ::kill(::getpid(), SIGKILL);
    ::_exit(14);
  }
  CHECK(WaitChild(pid) == 128 + SIGKILL);

  auto m = MustOpen(path);
  auto jobs = m->UnfinishedJobs();
  REQUIRE(jobs.ok());
  REQUIRE(jobs->size() == 1);
  CHECK((*jobs)[0].file_id == file_id);
  CHECK((*jobs)[0].state == JobState::kInFlight);
  CHECK((*jobs)[0].hash == "abc");
  // BeginJob committed the batch that was open, so its row survived too.
  CHECK(m->GetFile(1, "day1/b.jpg")->has_value());
  CHECK(m->IntegrityCheck().ok());
}

TEST_CASE("a file of random bytes is refused as corrupt and left byte-identical", "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  std::string garbage(64 * 1024, '\0');
  std::mt19937 rng(7);
  for (char& c : garbage) c = static_cast<char>(rng());
  {
    std::ofstream out(path, std::ios::binary);
    out.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  auto m = Manifest::Open(path);
  REQUIRE_FALSE(m.ok());
  CHECK(m.status().code() == Code::kCorrupt);
  CHECK_THAT(m.status().message(), Catch::Contains(path));
  CHECK_THAT(m.status().message(), Catch::Contains("not a SQLite database"));
  CHECK(ReadFileText(path) == garbage);
  CHECK(ListDir(dir) == std::vector<std::string>{"manifest.db"});  // no -wal, no -journal
  auto ro = Manifest::Open(path, {.busy_timeout_ms = 100, .read_only = true});
  CHECK(ro.status().code() == Code::kCorrupt);
}

TEST_CASE("a SQLite database of another program is refused and left unchanged", "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  RawExec(path,
          "CREATE TABLE photos(id INTEGER PRIMARY KEY, name TEXT);"
          "INSERT INTO photos(name) VALUES('x');");
  const std::string before = ReadFileText(path);
  auto m = Manifest::Open(path);
  REQUIRE_FALSE(m.ok());
  CHECK(m.status().code() == Code::kCorrupt);
  CHECK_THAT(m.status().message(), Catch::Contains(path));
  CHECK_THAT(m.status().message(), Catch::Contains("not a shotsync manifest"));
  CHECK(ReadFileText(path) == before);
  CHECK(RawInt(path, "SELECT count(*) FROM photos") == 1);

  SECTION("also with another program's application_id and no tables") {
    TempDir dir2;
    const std::string p2 = DbPath(dir2);
    RawExec(p2, "PRAGMA application_id = 1234");
    auto m2 = Manifest::Open(p2);
    CHECK(m2.status().code() == Code::kCorrupt);
  }
}

TEST_CASE("a manifest with a newer schema (user_version 99) is refused as unsupported",
          "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  { MustOpen(path); }
  RawExec(path, "PRAGMA user_version = 99");
  const std::string before = ReadFileText(path);
  auto m = Manifest::Open(path);
  REQUIRE_FALSE(m.ok());
  CHECK(m.status().code() == Code::kUnsupported);
  CHECK_THAT(m.status().message(),
             Catch::Contains(path + ": schema version 99 is newer than this shotsync (" +
                             std::to_string(shotsync::kManifestSchemaVersion) + "); upgrade shotsync"));
  CHECK(RawInt(path, "PRAGMA user_version") == 99);
  CHECK(ReadFileText(path) == before);
}

TEST_CASE("a manifest of our application_id that lost a table is reported as damaged",
          "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  { MustOpen(path); }
  RawExec(path, "DROP TABLE runs");
  auto m = Manifest::Open(path);
  CHECK(m.status().code() == Code::kCorrupt);
  CHECK_THAT(m.status().message(), Catch::Contains("runs"));
}

TEST_CASE("a read-only manifest reads but refuses writes", "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  {
    auto m = MustOpen(path);
    std::int64_t root = AddRoot(*m);
    FileRecord f = MakeFile(root, "a.jpg");
    REQUIRE(m->PutFile(f).ok());
  }
  auto ro = Manifest::Open(path, {.busy_timeout_ms = 1000, .read_only = true});
  REQUIRE(ro.ok());
  CHECK((*ro)->GetFile(1, "a.jpg")->has_value());
  FileRecord g = MakeFile(1, "b.jpg");
  CHECK_FALSE((*ro)->PutFile(g).ok());
  TempDir empty;
  CHECK_FALSE(Manifest::Open(DbPath(empty), {.busy_timeout_ms = 100, .read_only = true}).ok());
  CHECK(ListDir(empty).empty());
}

TEST_CASE("two Manifests on one file (two writers) both write and nothing is lost", "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  // No manifest yet: both race to create it.
  std::atomic<int> failures{0};
  std::mutex mu;
  std::string first_error;
  auto fail = [&](const shotsync::Status& st) {
    ++failures;
    std::lock_guard<std::mutex> lock(mu);
    if (first_error.empty()) first_error = st.ToString();
  };
  auto writer = [&](int who) {
    auto m = Manifest::Open(path);
    if (!m.ok()) return fail(m.status());
    auto root = (*m)->UpsertRoot({0, "/shared", "p", "a"});  // both: the same row
    if (!root.ok()) return fail(root.status());
    for (int i = 0; i < 500; ++i) {
      FileRecord f = MakeFile(*root, "w" + std::to_string(who) + "/" + std::to_string(i));
      if (!(*m)->PutFile(f).ok()) ++failures;
      if (i % 50 == 0) {
        auto job = (*m)->BeginJob(f.id, "h", 1, TestOwner());
        if (!job.ok() || !(*m)->FinishJob(job->job_id, 1000 * who + i).ok()) ++failures;
      }
    }
  };
  std::thread a(writer, 1), b(writer, 2);
  a.join();
  b.join();
  INFO(first_error);
  CHECK(failures == 0);
  auto m = MustOpen(path);
  CHECK(m->Roots()->size() == 1);
  int count = 0;
  REQUIRE(m->ForEachFile(0, [&](const FileRecord&) { ++count; }).ok());
  CHECK(count == 1000);
  CHECK(RawInt(path, "SELECT count(*) FROM jobs WHERE state = 'done'") == 20);
  CHECK(m->IntegrityCheck().ok());
}

TEST_CASE("a forked child process writes while the parent writes", "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  std::int64_t root = 0;
  {
    auto m = MustOpen(path);
    root = AddRoot(*m);
  }
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto m = Manifest::Open(path);
    if (!m.ok()) ::_exit(10);
    for (int i = 0; i < 300; ++i) {
      FileRecord f = MakeFile(root, "child/" + std::to_string(i));
      if (!(*m)->PutFile(f).ok()) ::_exit(11);
      if (i % 30 == 0) {
        auto job = (*m)->BeginJob(f.id, "c", 1, TestOwner());
        if (!job.ok() || !(*m)->FinishJob(job->job_id, i).ok()) ::_exit(12);
      }
    }
    // A hook's push ends without closing cleanly.
    ::_exit(0);
  }
  auto m = MustOpen(path);
  int parent_failures = 0;
  for (int i = 0; i < 300; ++i) {
    FileRecord f = MakeFile(root, "parent/" + std::to_string(i));
    if (!m->PutFile(f).ok()) ++parent_failures;
  }
  CHECK(WaitChild(pid) == 0);
  CHECK(parent_failures == 0);
  int child = 0, parent = 0;
  REQUIRE(m->ForEachFile(root, [&](const FileRecord& r) {
             (r.rel_path.rfind("child/", 0) == 0 ? child : parent)++;
           }).ok());
  CHECK(child == 300);
  CHECK(parent == 300);
  CHECK(RawInt(path, "SELECT count(*) FROM files WHERE state = 'synced'") == 10);
  CHECK(m->Checkpoint().ok());
  CHECK(m->IntegrityCheck().ok());
}

TEST_CASE("the token bucket allows a burst, then the rate", "[manifest]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  const double rate = 2.0, burst = 3.0;
  double t = 1000.0;
  for (int i = 0; i < 3; ++i) CHECK(*m->TakeToken("shootbin:abc", rate, burst, t) == 0.0);
  CHECK(*m->TakeToken("shootbin:abc", rate, burst, t) == Approx(0.5));
  CHECK(*m->TakeToken("shootbin:abc", rate, burst, t + 0.25) == Approx(0.25));  // nothing taken
  CHECK(*m->TakeToken("shootbin:abc", rate, burst, t + 0.5) == 0.0);
  CHECK(*m->TakeToken("shootbin:abc", rate, burst, t + 0.5) == Approx(0.5));
  // Another key is another bucket.
  CHECK(*m->TakeToken("headshotpro:xyz", rate, burst, t + 0.5) == 0.0);
  // A long idle time refills up to the burst, no more.
  t += 1000;
  for (int i = 0; i < 3; ++i) CHECK(*m->TakeToken("shootbin:abc", rate, burst, t) == 0.0);
  CHECK(*m->TakeToken("shootbin:abc", rate, burst, t) > 0.0);
  // Over 10 s at most rate * 10 + burst tokens.
  int taken = 0;
  for (int i = 0; i <= 1000; ++i) {
    if (*m->TakeToken("counted", rate, burst, t + i * 0.01) == 0.0) ++taken;
  }
  CHECK(taken <= 3 + 20);
  CHECK(taken >= 3 + 19);  // the last refill may land a rounding error short
  CHECK_FALSE(m->TakeToken("k", 0.0, 1.0, t).ok());
}

TEST_CASE("PauseBucket blocks the bucket until the given time", "[manifest]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  const double rate = 1.0, burst = 5.0;
  CHECK(*m->TakeToken("svc", rate, burst, 100.0) == 0.0);  // 4 tokens left
  REQUIRE(m->PauseBucket("svc", 130.0).ok());
  CHECK(*m->TakeToken("svc", rate, burst, 101.0) == Approx(29.0));
  REQUIRE(m->PauseBucket("svc", 120.0).ok());  // an earlier reset does not shorten it
  CHECK(*m->TakeToken("svc", rate, burst, 129.5) == Approx(0.5));
  CHECK(*m->TakeToken("svc", rate, burst, 130.0) == 0.0);
  // A pause on a bucket never used before.
  REQUIRE(m->PauseBucket("fresh", 50.0).ok());
  CHECK(*m->TakeToken("fresh", rate, burst, 40.0) == Approx(10.0));
  CHECK(*m->TakeToken("fresh", rate, burst, 50.0) == 0.0);
  CHECK(*m->TakeToken("fresh", rate, burst, 50.0) == Approx(1.0));
}

TEST_CASE("two Manifests sharing one bucket never exceed rate * elapsed + burst", "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  { MustOpen(path); }
  const double rate = 40.0, burst = 4.0, duration = 1.0;
  std::atomic<int> taken{0}, errors{0};
  const double start = MonotonicSeconds();
  auto worker = [&] {
    auto m = Manifest::Open(path);
    if (!m.ok()) {
      ++errors;
      return;
    }
    for (;;) {
      double now = MonotonicSeconds();
      if (now - start >= duration) return;
      auto wait = (*m)->TakeToken("shootbin:shared", rate, burst, now);
      if (!wait.ok()) {
        ++errors;
        return;
      }
      if (*wait == 0.0) {
        ++taken;
      } else {
        std::this_thread::sleep_for(std::chrono::duration<double>(*wait));
      }
    }
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  const double elapsed = MonotonicSeconds() - start;
  CHECK(errors == 0);
  INFO("taken " << taken << " in " << elapsed << " s");
  CHECK(taken <= rate * elapsed + burst);
  CHECK(taken >= 0.8 * rate * duration);
}

TEST_CASE("runs are recorded and listed newest first", "[manifest]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  auto r1 = m->BeginRun("plan", 11);
  auto r2 = m->BeginRun("sync", 12);
  REQUIRE(r1.ok());
  REQUIRE(r2.ok());
  shotsync::RunCounts c;
  c.uploaded = 10;
  c.revised = 2;
  c.skipped = 100;
  c.failed = 1;
  c.bytes = 5'000'000'000ull;
  REQUIRE(m->EndRun(*r2, c, 1).ok());
  CHECK(m->EndRun(999, c, 0).code() == Code::kNotFound);
  auto runs = m->RecentRuns(10);
  REQUIRE(runs.ok());
  REQUIRE(runs->size() == 2);
  CHECK((*runs)[0].id == *r2);
  CHECK((*runs)[0].command == "sync");
  CHECK((*runs)[0].counts.uploaded == 10);
  CHECK((*runs)[0].counts.bytes == 5'000'000'000ull);
  CHECK((*runs)[0].exit_code == 1);
  CHECK((*runs)[0].finished_at >= (*runs)[0].started_at);
  CHECK((*runs)[1].id == *r1);
  CHECK((*runs)[1].exit_code == -1);
  CHECK(m->RecentRuns(1)->size() == 1);
}

TEST_CASE("Checkpoint empties the WAL and IntegrityCheck passes", "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  auto m = MustOpen(path);
  std::int64_t root = AddRoot(*m);
  REQUIRE(m->BeginBatch().ok());
  for (int i = 0; i < 500; ++i) {
    FileRecord f = MakeFile(root, "f" + std::to_string(i));
    REQUIRE(m->PutFile(f).ok());
  }
  REQUIRE(m->CommitBatch().ok());
  CHECK(std::filesystem::file_size(path + "-wal") > 0);
  REQUIRE(m->Checkpoint().ok());
  CHECK(std::filesystem::file_size(path + "-wal") == 0);
  CHECK(m->IntegrityCheck().ok());
  CHECK(m->CommitBatch().code() == Code::kInternal);  // no batch open
}

// --- Several processes on one manifest (sync + push) -------------------------

TEST_CASE("BeginJob decides from the rows as they are now, not as the caller planned", "[manifest][claim]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  std::int64_t root = AddRoot(*m);
  FileRecord f = MakeFile(root, "a.jpg");
  f.hash = "11111111111111111111111111111111";
  REQUIRE(m->PutFile(f).ok());
  const shotsync::JobOwner push{"push-owner", nullptr};
  const shotsync::JobOwner sync{"sync-owner", nullptr};

  auto first = m->BeginJob(f.id, f.hash, f.size, push);
  REQUIRE(first.ok());
  CHECK(first->kind == JobKind::kUpload);
  SECTION("while another running process has it in flight: busy") {
    CHECK(m->BeginJob(f.id, f.hash, f.size, sync).status().code() == Code::kBusy);
  }
  SECTION("when its owner died: reconcile first, then adopt it once") {
    const shotsync::JobOwner sees_dead{"sync-owner", [](std::string_view) { return false; }};
    CHECK(m->BeginJob(f.id, f.hash, f.size, sees_dead).status().code() == Code::kConflict);
    CHECK(*m->AdoptJob(first->job_id, "push-owner", "sync-owner"));
    CHECK_FALSE(*m->AdoptJob(first->job_id, "push-owner", "third-owner"));
    CHECK((*m->UnfinishedJobs())[0].owner == "sync-owner");
  }
  SECTION("once the other finished it: already done, or a revision for newer content") {
    REQUIRE(m->FinishJob(first->job_id, 501).ok());
    CHECK(m->BeginJob(f.id, f.hash, f.size, sync).status().code() == Code::kAlreadyDone);
    auto newer = m->BeginJob(f.id, "22222222222222222222222222222222", f.size, sync);
    REQUIRE(newer.ok());
    CHECK(newer->kind == JobKind::kRevision);
    CHECK(newer->photo_id == 501);
  }
}

TEST_CASE("a planner's stale row never undoes another process's finished upload", "[manifest][claim]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  std::int64_t root = AddRoot(*m);
  FileRecord f = MakeFile(root, "a.jpg");
  f.hash = "11111111111111111111111111111111";
  REQUIRE(m->PutFile(f).ok());
  FileRecord stale = **m->GetFileById(f.id);  // a sync's plan read the row...
  auto job = m->BeginJob(f.id, f.hash, f.size, TestOwner());  // ...a push sends it...
  REQUIRE(m->FinishJob(job->job_id, 77).ok());
  stale.mtime_ns += 1;  // ...then the plan writes its (stale) row back
  REQUIRE(m->PutFile(stale).ok());
  auto got = **m->GetFileById(f.id);
  CHECK(got.remote_photo_id == 77);
  CHECK(got.remote_hash == f.hash);
  CHECK(got.state == FileState::kSynced);
  CHECK(got.mtime_ns == stale.mtime_ns);
}

TEST_CASE("a root remembers its resolved ids until its project or album changes", "[manifest]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  std::int64_t root = AddRoot(*m);
  REQUIRE(m->SetRootTarget(root, 3, 9).ok());
  CHECK((*m->Roots())[0].remote_album_id == 9);
  AddRoot(*m);  // same project and album: kept
  CHECK((*m->Roots())[0].remote_project_id == 3);
  REQUIRE(m->UpsertRoot({0, "/photos", "Client Smith", "Other album"}).ok());
  CHECK((*m->Roots())[0].remote_album_id == 0);
}

TEST_CASE("a schema 1 manifest is migrated in place, keeping its rows", "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  std::int64_t file_id = 0;
  {
    auto m = MustOpen(path);
    std::int64_t root = AddRoot(*m);
    FileRecord f = MakeFile(root, "a.jpg");
    f.hash = "11111111111111111111111111111111";
    REQUIRE(m->PutFile(f).ok());
    file_id = f.id;
    REQUIRE(m->BeginJob(f.id, f.hash, f.size, TestOwner()).ok());
  }
  // Back to what schema 1 looked like.
  RawExec(path,
          "DROP INDEX files_bound_by_hash; CREATE INDEX files_by_hash ON files(hash) WHERE hash <> ''; "
          "DROP INDEX files_bound_by_size; ALTER TABLE jobs DROP COLUMN mtime_ns; ALTER TABLE jobs DROP COLUMN inode; "
          "DROP TABLE webhook_events; ALTER TABLE jobs DROP COLUMN fit_quality; DROP TABLE acknowledged; DROP TABLE album_photos; DROP TABLE album_index; DROP INDEX files_by_photo; "
          "ALTER TABLE jobs DROP COLUMN watermark; ALTER TABLE files DROP COLUMN rejected_by; "
          "ALTER TABLE jobs DROP COLUMN owner; ALTER TABLE roots DROP COLUMN remote_project_id; "
          "ALTER TABLE roots DROP COLUMN remote_album_id; PRAGMA user_version = 1;");
  auto m = MustOpen(path);
  CHECK(m->SchemaVersion() == shotsync::kManifestSchemaVersion);
  auto jobs = m->UnfinishedJobs();
  REQUIRE(jobs.ok());
  REQUIRE(jobs->size() == 1);
  CHECK((*jobs)[0].file_id == file_id);
  CHECK((*jobs)[0].owner.empty());  // from before owners: never alive, so reconciled
  CHECK((*m->Roots())[0].remote_album_id == 0);
}

TEST_CASE("processes killed during writes and checkpoints leave a manifest that opens whole", "[manifest][crash]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  std::int64_t root = 0;
  {
    auto m = MustOpen(path);
    root = AddRoot(*m);
  }
  std::mt19937 rng(99);
  std::int64_t committed = 0;  // rows the last child reported as committed
  for (int trial = 0; trial < 15; ++trial) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      auto m = Manifest::Open(path);
      if (!m.ok()) ::_exit(10);
      for (int round = 0;; ++round) {
        if (!(*m)->BeginBatch().ok()) ::_exit(11);
        for (int i = 0; i < 200; ++i) {
          FileRecord f = MakeFile(root, "t" + std::to_string(trial) + "/r" + std::to_string(round) + "_" +
                                            std::to_string(i) + ".jpg");
          if (!(*m)->PutFile(f).ok()) ::_exit(12);
        }
        if (!(*m)->CommitBatch().ok()) ::_exit(13);
        if (!(*m)->Checkpoint().ok()) ::_exit(14);
        const char tick = 1;
        if (::write(fds[1], &tick, 1) != 1) ::_exit(15);
      }
    }
    ::close(fds[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(2, 40)(rng)));
    ::kill(pid, SIGKILL);
    CHECK(WaitChild(pid) == 128 + SIGKILL);
    char buf[256];
    std::int64_t rounds = 0;
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) rounds += n;
    ::close(fds[0]);
    committed += rounds * 200;

    auto m = MustOpen(path);
    CHECK(m->IntegrityCheck().ok());
    std::int64_t rows = 0;
    REQUIRE(m->ForEachFile(root, [&](const FileRecord&) { ++rows; }).ok());
    CHECK(rows >= committed);  // every reported commit survived
  }
}

TEST_CASE("FinishJobs records many answers in one transaction, or none of them", "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  auto m = MustOpen(path);
  std::int64_t root = AddRoot(*m);
  std::vector<FinishedJob> done;
  std::vector<std::int64_t> files;
  for (int i = 0; i < 5; ++i) {
    FileRecord f = MakeFile(root, "day1/" + std::to_string(i) + ".jpg", 5000);
    f.hash = std::string(32, char('a' + i));
    REQUIRE(m->PutFile(f).ok());
    auto job = m->BeginJob(f.id, f.hash, f.size, TestOwner());
    REQUIRE(job.ok());
    done.push_back({job->job_id, 100 + i});
    files.push_back(f.id);
  }
  SECTION("all recorded") {
    REQUIRE(m->FinishJobs(done).ok());
    for (int i = 0; i < 5; ++i) {
      auto got = m->GetFileById(files[i]);
      REQUIRE(got.ok());
      CHECK((*got)->state == FileState::kSynced);
      CHECK((*got)->remote_photo_id == 100 + i);
    }
    CHECK(m->UnfinishedJobs()->empty());
  }
  SECTION("one unknown job: nothing recorded, every job still in flight") {
    done.push_back({987654, 1});
    CHECK(m->FinishJobs(done).code() == Code::kNotFound);
    CHECK(m->UnfinishedJobs()->size() == 5);
    CHECK_FALSE((*m->GetFileById(files[0]))->remote_photo_id.has_value());
  }
}

TEST_CASE("ReserveTokens hands out future slots and makes later takers wait for them", "[manifest]") {
  TempDir dir;
  auto m = MustOpen(DbPath(dir));
  const double rate = 100.0, burst = 1.0, t = 1000.0;
  auto r = m->ReserveTokens("shootbin:abc", rate, burst, 10, t);
  REQUIRE(r.ok());
  CHECK(r->first == 10);
  CHECK(r->second == 0.0);  // a fresh bucket holds one token: the first slot is now
  // The 10 slots run to t + 0.09; a plain taker waits for the debt.
  CHECK(*m->TakeToken("shootbin:abc", rate, burst, t) == Approx(0.10));
  auto next = m->ReserveTokens("shootbin:abc", rate, burst, 5, t + 0.05);
  REQUIRE(next.ok());
  CHECK(next->first == 5);
  CHECK(next->second == Approx(0.05));  // after the first reservation's last slot
  // Paused: nothing is reserved.
  REQUIRE(m->PauseBucket("shootbin:abc", t + 30).ok());
  auto paused = m->ReserveTokens("shootbin:abc", rate, burst, 5, t + 1);
  REQUIRE(paused.ok());
  CHECK(paused->first == 0);
  CHECK(paused->second == Approx(29.0));
  CHECK_FALSE(m->ReserveTokens("k", rate, burst, 0, t).ok());
}

TEST_CASE("BeginJobs claims a group in one transaction, each file with its own answer", "[manifest][claim]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  auto m = MustOpen(path);
  std::int64_t root = AddRoot(*m);
  std::vector<FileRecord> files;
  for (int i = 0; i < 4; ++i) {
    FileRecord f = MakeFile(root, "g/" + std::to_string(i) + ".jpg", 1000 + i);
    f.hash = std::string(32, char('a' + i));
    REQUIRE(m->PutFile(f).ok());
    files.push_back(f);
  }
  const shotsync::JobOwner other{"other-owner", nullptr};
  const shotsync::JobOwner me{"me", nullptr};
  // File 1 is on the server with this content, file 2 is being sent by a live process.
  auto done = m->BeginJob(files[1].id, files[1].hash, files[1].size, other);
  REQUIRE(done.ok());
  REQUIRE(m->FinishJob(done->job_id, 77).ok());
  REQUIRE(m->BeginJob(files[2].id, files[2].hash, files[2].size, other).ok());
  // File 3 was sent before and changed since.
  auto old = m->BeginJob(files[3].id, "ffffffffffffffffffffffffffffffff", files[3].size, other);
  REQUIRE(old.ok());
  REQUIRE(m->FinishJob(old->job_id, 88).ok());

  std::vector<shotsync::ClaimRequest> group;
  for (const FileRecord& f : files) group.push_back({f.id, f.hash, f.size});
  group.push_back({424242, "x", 1});  // no such file
  auto claims = m->BeginJobs(group, me);
  REQUIRE(claims.ok());
  REQUIRE(claims->size() == 5);
  REQUIRE((*claims)[0].ok());
  CHECK((*claims)[0]->kind == JobKind::kUpload);
  CHECK((*claims)[1].status().code() == Code::kAlreadyDone);
  CHECK((*claims)[2].status().code() == Code::kBusy);
  REQUIRE((*claims)[3].ok());
  CHECK((*claims)[3]->kind == JobKind::kRevision);
  CHECK((*claims)[3]->photo_id == 88);
  CHECK((*claims)[4].status().code() == Code::kNotFound);
  // Both claims are durable rows of this owner; the refusals wrote nothing.
  CHECK(RawInt(path, "SELECT count(*) FROM jobs WHERE state = 'in_flight' AND owner = 'me'") == 2);
  CHECK(RawInt(path, "SELECT count(*) FROM jobs WHERE state = 'in_flight'") == 3);
}

TEST_CASE("an unread claim takes the planned version's row, and its finish records the sent hash", "[manifest][claim]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  auto m = MustOpen(path);
  std::int64_t root = AddRoot(*m);
  FileRecord f = MakeFile(root, "new/IMG_1.jpg", 5000);  // planned unread: no hash
  REQUIRE(m->PutFile(f).ok());
  const shotsync::JobOwner me{"me", nullptr};
  const shotsync::ClaimRequest planned{f.id, "", f.size, 0, f.mtime_ns, f.inode};
  auto claims = m->BeginJobs({&planned, 1}, me);
  REQUIRE(claims.ok());
  REQUIRE((*claims)[0].ok());
  const shotsync::JobClaim claim = *(*claims)[0];
  CHECK_FALSE(claim.needs_hash);
  CHECK(claim.kind == JobKind::kUpload);
  CHECK(claim.hash.empty());  // the send hashes it
  const std::string sent(32, 'c');
  REQUIRE(m->FinishJob(claim.job_id, 501, 0, sent).ok());
  auto row = m->GetFile(root, f.rel_path);
  REQUIRE(row.ok());
  CHECK((*row)->hash == sent);
  CHECK((*row)->remote_hash == sent);
  CHECK(RawInt(path, "SELECT count(*) FROM jobs WHERE hash = '" + sent + "' AND mtime_ns = " +
                         std::to_string(f.mtime_ns)) == 1);

  // Another plan saw a newer version (size 5100) after this one was planned
  // unread at 5000: the claim asks for a hash instead of sending blind.
  FileRecord g = MakeFile(root, "new/IMG_2.jpg", 5000);
  REQUIRE(m->PutFile(g).ok());
  const shotsync::ClaimRequest stale{g.id, "", 5000, 0, g.mtime_ns, g.inode};
  g.size = 5100;
  REQUIRE(m->PutFile(g).ok());
  auto refused = m->BeginJobs({&stale, 1}, me);
  REQUIRE(refused.ok());
  REQUIRE((*refused)[0].ok());
  CHECK((*refused)[0]->needs_hash);
  CHECK(RawInt(path, "SELECT count(*) FROM jobs WHERE file_id = " + std::to_string(g.id)) == 0);

  // A newer version planned while the unread job was out: the sent hash is
  // the server's, not the row's (which the next plan revises).
  FileRecord h = MakeFile(root, "new/IMG_3.jpg", 7000);
  REQUIRE(m->PutFile(h).ok());
  const shotsync::ClaimRequest out{h.id, "", h.size, 0, h.mtime_ns, h.inode};
  auto sending = m->BeginJobs({&out, 1}, me);
  REQUIRE(sending.ok());
  REQUIRE((*sending)[0].ok());
  h.size = 7100;
  h.mtime_ns += 1000;
  REQUIRE(m->PutFile(h).ok());
  REQUIRE(m->FinishJob((*sending)[0]->job_id, 502, 0, std::string(32, 'd')).ok());
  auto newer = m->GetFile(root, h.rel_path);
  REQUIRE(newer.ok());
  CHECK((*newer)->hash.empty());
  CHECK((*newer)->remote_hash == std::string(32, 'd'));
  CHECK((*newer)->remote_photo_id == 502);
  std::string reason;
  CHECK(shotsync::Decide(**newer, nullptr, reason) == shotsync::Action::kRevision);
}

TEST_CASE("peer connections take turns at writing: one waits for the other's batch, then writes", "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  auto planner = MustOpen(path);
  auto peer = planner->OpenPeer();
  REQUIRE(peer.ok());
  std::int64_t root = AddRoot(*planner);
  FileRecord a = MakeFile(root, "a.jpg");
  FileRecord b = MakeFile(root, "b.jpg");
  REQUIRE(planner->BeginBatch().ok());
  REQUIRE(planner->PutFile(a).ok());  // the batch's transaction holds the write lock
  Status peer_write;
  std::thread claimer([&] { peer_write = (*peer)->PutFile(b); });
  REQUIRE(planner->CommitBatch().ok());  // its turn passes to the waiting peer
  claimer.join();
  CHECK(peer_write.ok());
  CHECK(RawInt(path, "SELECT count(*) FROM files") == 2);
}

// The planner's batch holds the write turn for up to 256 rows or 100 ms:
// a claim (or a throttle token) of the other connection would wait for all
// of it, and the first uploads of a new library did.
TEST_CASE("a plan batch commits at its next row once a peer waits to write", "[manifest][concurrency]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  auto planner = MustOpen(path);
  auto peer = planner->OpenPeer();
  REQUIRE(peer.ok());
  std::int64_t root = AddRoot(*planner);
  FileRecord a = MakeFile(root, "a.jpg");
  FileRecord b = MakeFile(root, "b.jpg");
  FileRecord c = MakeFile(root, "c.jpg");
  shotsync::local::BatchWriter batch(*planner);
  REQUIRE(batch.Put(a).ok());  // the batch's transaction holds the turn
  CHECK_FALSE(planner->WriteWanted());
  std::atomic<bool> claimed{false};
  Status claim;
  std::jthread claimer([&] {
    claim = (*peer)->PutFile(b);
    claimed = true;
  });
  REQUIRE(shotsync::testing::WaitFor([&] { return planner->WriteWanted(); }));
  REQUIRE(batch.Put(c).ok());  // sees the waiter: commits, and the turn passes
  CHECK(shotsync::testing::WaitFor([&] { return claimed.load(); }));
  REQUIRE(batch.Flush().ok());
  claimer.join();
  CHECK(claim.ok());
  CHECK(RawInt(path, "SELECT count(*) FROM files") == 3);
}

TEST_CASE("a peer whose turn does not come within busy_timeout fails with kBusy naming why", "[manifest]") {
  TempDir dir;
  const std::string path = DbPath(dir);
  auto opened = Manifest::Open(path, {.busy_timeout_ms = 100});
  REQUIRE(opened.ok());
  auto& planner = *opened;
  auto peer = planner->OpenPeer();
  REQUIRE(peer.ok());
  std::int64_t root = AddRoot(*planner);
  FileRecord a = MakeFile(root, "a.jpg");
  FileRecord b = MakeFile(root, "b.jpg");
  REQUIRE(planner->BeginBatch().ok());
  REQUIRE(planner->PutFile(a).ok());
  Status st = (*peer)->PutFile(b);
  CHECK(st.code() == Code::kBusy);
  CHECK_THAT(st.message(), Catch::Contains("another connection of this process kept the write lock"));
  REQUIRE(planner->CommitBatch().ok());
  CHECK((*peer)->PutFile(b).ok());  // its turn now
}

// A sync's planner commits and at once writes again: the claimer that asked
// for the turn meanwhile must get it first, or it waits for the whole plan.
TEST_CASE("manifest write turns go to the longest waiter first", "[manifest][concurrency]") {
  using namespace std::chrono_literals;
  shotsync::WriteTurn turn;
  REQUIRE(turn.Take(0ms));  // the planner's
  std::atomic<bool> claimer_wrote{false};
  std::jthread claimer([&] {
    if (turn.Take(60s)) {
      claimer_wrote = true;
      turn.Give();
    }
  });
  REQUIRE(turn.AwaitWaiting(1, 60s));
  turn.Give();
  REQUIRE(turn.Take(60s));  // the planner's next batch, asked for right after its commit
  CHECK(claimer_wrote);
  turn.Give();
}

TEST_CASE("a write turn not given within the timeout is not taken, and does not block later takers",
          "[manifest][concurrency]") {
  using namespace std::chrono_literals;
  shotsync::WriteTurn turn;
  REQUIRE(turn.Take(0ms));
  CHECK_FALSE(turn.Take(1ms));  // gave up: out of the queue
  turn.Give();
  CHECK(turn.Take(0ms));  // free again, nobody left waiting before it
  turn.Give();
}
