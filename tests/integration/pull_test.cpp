// shotsync pull / team against the emulator over loopback: paging, bytes,
// resume after kill -9, signed-URL expiry, 429/5xx/resets, hostile names,
// the invite cap.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "shotsync/pull.hpp"
#include "shotsync/shootbin.hpp"
#include "sync_fixture.hpp"
#include "wait.hpp"

namespace fs = std::filesystem;
using shotsync::testing::ReadFileText;
using shotsync::testing::Sha256File;
using shotsync::testing::StatU;
using shotsync::testing::SyncFixture;
using shotsync::testing::WaitFor;

namespace {

std::uint64_t Route(const nlohmann::json& stats, const std::string& route) {
  const auto& r = stats.at("requests");
  return r.contains(route) ? r.at(route).get<std::uint64_t>() : 0;
}

// Finished files under dir (no .part), by photo id (the file stem).
std::map<std::string, fs::path> Files(const fs::path& dir) {
  std::map<std::string, fs::path> out;
  if (!fs::exists(dir)) return out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_regular_file() || it->path().extension() == ".part") continue;
    out[it->path().stem().string()] = it->path();
  }
  return out;
}

std::vector<fs::path> Parts(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_regular_file() && it->path().extension() == ".part") out.push_back(it->path());
  }
  return out;
}

nlohmann::json PhotoInfo(SyncFixture& f, const std::string& id) {
  return f.emu->Admin("GET", "headshotpro/photos/" + id);
}

// Every file has the emulator's bytes; returns "" or the first difference.
std::string CompareBytes(SyncFixture& f, const std::map<std::string, fs::path>& files) {
  for (const auto& [id, path] : files) {
    auto info = PhotoInfo(f, id);
    if (info.at("sha256").get<std::string>() != Sha256File(path)) return "content differs: " + path.string();
  }
  return "";
}

nlohmann::json PullJson(SyncFixture& f, std::vector<std::string> args, int* code, std::string* log = nullptr) {
  args.insert(args.begin(), "pull");
  args.push_back("--json");
  auto r = f.Cli(args);
  *code = r.code;
  if (log) *log = r.out + r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

const std::string kPhotosRoute = "GET /api/v2/organization/models/{id}/photos";
const std::string kCdnRoute = "GET /cdn/photos/{file}";

}  // namespace

TEST_CASE("pull: 3 members x 2 models x 170 photos are all fetched once, byte-exact, a rerun fetches nothing",
          "[pull]") {
  SyncFixture f;
  f.emu->Seed({{"members", 3}, {"models_per_member", 2}, {"photos_per_model", 170}});
  int code = -1;
  std::string log;
  auto j = PullJson(f, {}, &code, &log);
  INFO(log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 1020);
  CHECK(j.at("members") == 3);
  CHECK(j.at("models") == 6);
  const fs::path dest = f.tmp.path() / "headshots";
  auto files = Files(dest);
  CHECK(files.size() == 1020);
  CHECK(Parts(dest).empty());
  auto stats = f.emu->Stats();
  CHECK(StatU(stats, "downloads") == 1020);  // each photo fetched once
  CHECK(Route(stats, kPhotosRoute) == 6);    // one page (limit 200) per model
  CHECK(CompareBytes(f, files) == "");
  // Default layout: <dest>/<member name>/<photo>.jpg
  const auto& any = files.begin()->second;
  CHECK(any.extension() == ".jpg");
  const fs::path any_rel = fs::relative(any, dest);
  CHECK(any_rel.begin()->string().rfind("Member ", 0) == 0);
  CHECK(std::distance(any_rel.begin(), any_rel.end()) == 2);

  auto again = PullJson(f, {}, &code, &log);
  CHECK(code == 0);
  CHECK(again.at("downloaded") == 0);
  CHECK(again.at("skipped") == 1020);
  CHECK(StatU(f.emu->Stats(), "downloads") == 1020);

  // A file deleted locally comes back only with --restore.
  fs::remove(files.begin()->second);
  again = PullJson(f, {}, &code, &log);
  CHECK(again.at("downloaded") == 0);
  CHECK(again.at("not_restored") == 1);
  again = PullJson(f, {"--restore"}, &code, &log);
  CHECK(code == 0);
  CHECK(again.at("downloaded") == 1);
  CHECK(fs::exists(files.begin()->second));
  CHECK(StatU(f.emu->Stats(), "downloads") == 1021);
}

// Sha-256 of every finished file under dir, by photo id: "untouched" means equal maps.
std::map<std::string, std::string> Hashes(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& [id, path] : Files(dir)) out[id] = Sha256File(path);
  return out;
}

TEST_CASE("pull: --dest into a new folder fetches every file there, the first folder stays already here",
          "[pull]") {
  SyncFixture f;
  f.emu->Seed({{"members", 1}, {"photos_per_model", 6}});
  const fs::path a = f.tmp.path() / "headshots", b = f.tmp.path() / "second";
  int code = -1;
  std::string log;
  auto j = PullJson(f, {}, &code, &log);
  INFO(log);
  REQUIRE(code == 0);
  REQUIRE(j.at("downloaded") == 6);
  const auto a_before = Hashes(a);
  REQUIRE(a_before.size() == 6);

  // The manifest's rows name folder A: they prove nothing about B.
  j = PullJson(f, {"--dest", b.string()}, &code, &log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 6);
  CHECK(j.at("skipped") == 0);
  CHECK(j.at("not_restored") == 0);
  CHECK(Files(b).size() == 6);
  CHECK(CompareBytes(f, Files(b)) == "");
  CHECK(Hashes(a) == a_before);
  CHECK(StatU(f.emu->Stats(), "downloads") == 12);

  // Back to A: every file is there with its size, nothing is fetched.
  j = PullJson(f, {}, &code, &log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 0);
  CHECK(j.at("skipped") == 6);
  auto text = f.Cli({"pull"});
  CHECK(text.code == 0);
  CHECK(text.out.find("0 downloaded, 6 already here") != std::string::npos);
  j = PullJson(f, {"--dest", b.string()}, &code, &log);
  CHECK(j.at("downloaded") == 0);
  CHECK(j.at("skipped") == 6);
  CHECK(StatU(f.emu->Stats(), "downloads") == 12);
  CHECK(Hashes(a) == a_before);
}

TEST_CASE("pull: a file deleted or damaged in the folder is never counted as already here", "[pull]") {
  SyncFixture f;
  f.emu->Seed({{"members", 1}, {"photos_per_model", 5}});
  const fs::path dest = f.tmp.path() / "headshots";
  int code = -1;
  std::string log;
  REQUIRE(PullJson(f, {}, &code, &log).at("downloaded") == 5);
  INFO(log);
  auto files = Files(dest);
  const fs::path deleted = files.begin()->second, damaged = std::next(files.begin())->second;

  // Deleted: reported as such (the user may have meant it), back with --restore, exactly that one.
  fs::remove(deleted);
  auto j = PullJson(f, {}, &code, &log);
  CHECK(j.at("downloaded") == 0);
  CHECK(j.at("skipped") == 4);
  CHECK(j.at("not_restored") == 1);
  j = PullJson(f, {"--restore"}, &code, &log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 1);
  CHECK(j.at("skipped") == 4);
  CHECK(fs::exists(deleted));
  CHECK(StatU(f.emu->Stats(), "downloads") == 6);

  // Another size than recorded (a truncated copy): fetched again, exactly that one.
  fs::resize_file(damaged, fs::file_size(damaged) / 2);
  j = PullJson(f, {}, &code, &log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 1);
  CHECK(j.at("skipped") == 4);
  CHECK(StatU(f.emu->Stats(), "downloads") == 7);
  CHECK(CompareBytes(f, Files(dest)) == "");
}

TEST_CASE("pull: --dry-run speaks in the conditional and writes no file", "[pull]") {
  SyncFixture f;
  f.emu->Seed({{"members", 1}, {"photos_per_model", 4}});
  const fs::path dest = f.tmp.path() / "headshots";
  auto r = f.Cli({"pull", "--dry-run"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("would download 4") != std::string::npos);
  CHECK(r.out.find("downloaded") == std::string::npos);
  CHECK(r.out.find("would download ") != r.out.rfind("would download 4"));  // per-file lines too
  CHECK(!fs::exists(dest));  // not even the folder
  CHECK(StatU(f.emu->Stats(), "downloads") == 0);

  int code = -1;
  auto j = PullJson(f, {"--dry-run"}, &code);
  CHECK(code == 0);
  CHECK(j.at("dry_run") == true);
  CHECK(j.at("would_download") == 4);
  CHECK(j.at("downloaded") == 0);
  CHECK(!fs::exists(dest));

  // After a real pull, one file changed locally: the dry run says it would update it.
  REQUIRE(PullJson(f, {}, &code).at("downloaded") == 4);
  CHECK(PullJson(f, {}, &code).at("dry_run") == false);
  const fs::path changed = Files(dest).begin()->second;
  fs::resize_file(changed, 10);
  r = f.Cli({"pull", "--dry-run"});
  CHECK(r.out.find("would update") != std::string::npos);
  CHECK(r.out.find("3 already here") != std::string::npos);
  CHECK(fs::file_size(changed) == 10);
}

TEST_CASE("pull: paging past 200 photos in one model, include=all fetches every variant", "[pull]") {
  SyncFixture f;
  f.emu->Seed({{"members", 1}, {"photos_per_model", 450}});
  int code = -1;
  std::string log;
  auto j = PullJson(f, {"--include", "main"}, &code, &log);
  INFO(log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 450);
  CHECK(Route(f.emu->Stats(), kPhotosRoute) == 3);  // 200 + 200 + 50

  SyncFixture g;
  g.emu->Seed({{"members", 1}, {"photos_per_model", 5}});
  j = PullJson(g, {"--include", "all"}, &code, &log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 15);
  std::set<std::string> stems;
  for (const auto& [stem, p] : Files(g.tmp.path() / "headshots")) stems.insert(stem);
  CHECK(stems.size() == 15);
}

TEST_CASE("pull: kill -9 mid-file, the next run fetches only the missing bytes", "[pull]") {
  SyncFixture f;
  auto seeded = f.emu->Seed({{"members", 1}, {"photos_per_model", 4}, {"pregenerate", true}});
  f.emu->SetFaults({{"slow_body_bps", 60000}});
  const fs::path dest = f.tmp.path() / "headshots";
  auto child = f.StartCli({"pull", "-j", "4"});
  // Wait until every download is well under way, none finished.
  REQUIRE(WaitFor([&] {
    std::size_t started = 0;
    std::error_code ec;  // a part may be renamed under us
    for (const auto& p : Parts(dest)) {
      const auto size = fs::file_size(p, ec);
      started += !ec && size > 20000 ? 1 : 0;
    }
    return started == 4;
  }));
  child->Kill(SIGKILL);
  child->Wait();
  f.emu->WaitIdle();  // the server has noticed the closed sockets
  REQUIRE(Files(dest).empty());
  std::uint64_t missing = 0, partial = 0;
  std::map<std::string, std::uint64_t> sizes;
  for (const auto& p : Parts(dest)) {
    const std::string id = p.stem().stem().string();  // <id>.jpg.part
    const auto size = PhotoInfo(f, id).at("size").get<std::uint64_t>();
    const auto have = fs::file_size(p);
    REQUIRE(have < size);
    missing += size - have;
    partial += have;
  }
  REQUIRE(partial > 0);
  f.emu->SetFaults({{"slow_body_bps", 0}});
  const auto before = StatU(f.emu->Stats(), "bytes_sent");
  int code = -1;
  std::string log;
  auto j = PullJson(f, {}, &code, &log);
  INFO(log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 4);
  CHECK(j.at("resumed") == 4);
  CHECK(StatU(f.emu->Stats(), "bytes_sent") - before == missing);
  auto files = Files(dest);
  CHECK(files.size() == 4);
  CHECK(Parts(dest).empty());
  CHECK(CompareBytes(f, files) == "");
}

TEST_CASE("pull: signed URLs expiring in the middle of a run are refreshed, nothing fails", "[pull]") {
  SyncFixture f;
  f.emu->Seed({{"members", 1}, {"models_per_member", 2}, {"photos_per_model", 10}, {"pregenerate", true}});
  f.emu->Config({{"url_ttl_seconds", 1}});
  f.emu->SetFaults({{"slow_body_bps", 250000}});  // ~0.4 s a file
  int code = -1;
  std::string log;
  auto j = PullJson(f, {"-j", "2"}, &code, &log);
  INFO(log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 20);
  CHECK(j.at("failed") == 0);
  CHECK(j.at("refreshes").get<int>() > 0);
  CHECK(Route(f.emu->Stats(), kPhotosRoute) > 2);  // listed again
  auto files = Files(f.tmp.path() / "headshots");
  CHECK(files.size() == 20);
  CHECK(CompareBytes(f, files) == "");
}

TEST_CASE("pull: 429 bursts, 5xx and connection resets end with every file once and intact", "[pull]") {
  SyncFixture f;
  f.emu->Seed({{"members", 2}, {"photos_per_model", 40}, {"pregenerate", true}});
  f.emu->SetFaults({{"burst_429", 4}, {"rate_5xx", 0.15}, {"rate_reset", 0.15}});
  int code = -1;
  std::string log;
  auto j = PullJson(f, {}, &code, &log);
  INFO(log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 80);
  CHECK(j.at("throttled_429").get<int>() >= 1);
  CHECK(j.at("retries").get<int>() > 0);
  auto files = Files(f.tmp.path() / "headshots");
  CHECK(files.size() == 80);
  CHECK(Parts(f.tmp.path() / "headshots").empty());
  CHECK(CompareBytes(f, files) == "");
}

TEST_CASE("pull: hostile member names from the server never escape the destination", "[pull]") {
  SyncFixture f;
  f.emu->Seed({{"members", 8}, {"photos_per_model", 2}, {"hostile_names", true}});
  const fs::path dest = f.tmp.path() / "headshots";
  const auto before = std::set<fs::path>(fs::directory_iterator(f.tmp.path()), fs::directory_iterator());
  int code = -1;
  std::string log;
  auto j = PullJson(f, {}, &code, &log);
  INFO(log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 16);
  auto files = Files(dest);
  CHECK(files.size() == 16);
  const std::string root = fs::canonical(dest).string() + "/";
  for (auto it = fs::recursive_directory_iterator(dest); it != fs::recursive_directory_iterator(); ++it) {
    INFO(it->path());
    CHECK(fs::canonical(it->path()).string().rfind(root, 0) == 0);
    const std::string name = it->path().filename().string();
    CHECK(name != ".");
    CHECK(name != "..");
    CHECK(name.size() <= 255);
    CHECK(name.front() != '.');
    CHECK(name.front() != ' ');
    for (unsigned char c : name) {
      CHECK(c >= 0x20);
      CHECK(c != 0x7f);
      CHECK(c != '\\');
    }
  }
  // Nothing new next to dest (e.g. "etc/passwd" two levels up).
  const auto after = std::set<fs::path>(fs::directory_iterator(f.tmp.path()), fs::directory_iterator());
  for (const auto& p : after) {
    if (!before.count(p)) CHECK((p == dest || p.filename().string().rfind("run", 0) == 0 || p.filename() == "state"));
  }
  CHECK(!fs::exists(f.tmp.path() / "etc"));
  CHECK(!fs::exists("/abs/path"));

  CHECK(shotsync::SanitizeComponent("..") != "..");
  CHECK(shotsync::SanitizeComponent("../../etc/passwd").find('/') == std::string::npos);
  CHECK(shotsync::SanitizeComponent(std::string("a\0b", 3)).find('\0') == std::string::npos);
  CHECK(shotsync::SanitizeComponent(std::string(400, 'x')).size() <= 100);
  CHECK(shotsync::SanitizeComponent("CON") != "CON");
  CHECK(shotsync::SanitizeComponent("", "fallback") == "fallback");
  CHECK(shotsync::PathInside("/a/b/c", "/a/b"));
  CHECK(!shotsync::PathInside("/a/bc", "/a/b"));
  CHECK(!shotsync::ExpandLayout("../{photo}", {{"photo", "x"}}).ok());
  CHECK(*shotsync::ExpandLayout("{member}/{photo}.{ext}", {{"member", "/.."}, {"photo", "id"}, {"ext", "jpg"}}) ==
        "_/id.jpg");
}

TEST_CASE("pull: --favorites (org-wide and per member) and --member", "[pull]") {
  SyncFixture f;
  auto seeded = f.emu->Seed({{"members", 3}, {"photos_per_model", 6}});
  int code = -1;
  std::string log;
  auto j = PullJson(f, {"--favorites"}, &code, &log);
  INFO(log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 3);
  std::set<std::string> favorites;
  for (const auto& m : seeded.at("headshotpro").at("models")) favorites.insert(m.at("favorite").get<std::string>());
  for (const auto& [id, p] : Files(f.tmp.path() / "headshots")) CHECK(favorites.count(id) == 1);

  const std::string member = seeded.at("headshotpro").at("members").at(1).at("id");
  j = PullJson(f, {"--member", member}, &code, &log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 5);  // its favorite is already here
  CHECK(j.at("skipped") == 1);
  j = PullJson(f, {"--member", "nobody@nowhere.test"}, &code, &log);
  CHECK(code == 2);
}

namespace {

void SetMember(SyncFixture& f, const std::string& id, const nlohmann::json& body) {
  const auto r = f.emu->Admin("POST", "headshotpro/members/" + id, &body);
  REQUIRE(r.at("id") == id);
}

// Every finished file under dest as "<folder>/<file>" relative to dest, by photo id.
std::map<std::string, std::string> RelFiles(const fs::path& dest) {
  std::map<std::string, std::string> out;
  for (const auto& [id, path] : Files(dest)) out[id] = fs::relative(path, dest).string();
  return out;
}

// The config with `layout = ...` in its [headshotpro] table.
void SetLayout(SyncFixture& f, const std::string& layout) {
  f.WriteConfig();
  std::string text = ReadFileText(f.config);
  const std::string table = "[headshotpro]\n";
  text.insert(text.find(table) + table.size(), "layout = \"" + layout + "\"\n");
  std::ofstream(f.config, std::ios::trunc) << text;
}

}  // namespace

TEST_CASE("pull: --model fetches only that model's photos at a whole run's paths, a later pull the rest, "
          "nothing twice",
          "[pull]") {
  SyncFixture f;
  auto seeded = f.emu->Seed({{"members", 2}, {"photos_per_model", 4}});
  const auto& models = seeded.at("headshotpro").at("models");
  const std::string first = models.at(0).at("id"), second = models.at(1).at("id");
  const fs::path dest = f.tmp.path() / "headshots";
  int code = -1;
  std::string log;
  auto j = PullJson(f, {"--model", first}, &code, &log);
  INFO(log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 4);
  CHECK(j.at("models") == 1);
  auto files = Files(dest);
  REQUIRE(files.size() == 4);
  for (const auto& [id, path] : files) CHECK(PhotoInfo(f, id).at("modelId") == first);
  CHECK(CompareBytes(f, files) == "");
  auto stats = f.emu->Stats();
  CHECK(Route(stats, kPhotosRoute) == 1);  // only that model's photos were listed
  CHECK(StatU(stats, "downloads") == 4);
  const auto by_model = RelFiles(dest);

  j = PullJson(f, {}, &code, &log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 4);
  CHECK(j.at("skipped") == 4);
  files = Files(dest);
  CHECK(files.size() == 8);
  std::size_t of_second = 0;
  for (const auto& [id, path] : files) of_second += PhotoInfo(f, id).at("modelId") == second ? 1 : 0;
  CHECK(of_second == 4);
  CHECK(StatU(f.emu->Stats(), "downloads") == 8);  // nothing fetched twice
  // The model pulled alone sits where the whole run puts it (same member folder).
  for (const auto& [id, rel] : by_model) CHECK(RelFiles(dest).at(id) == rel);

  j = PullJson(f, {"--model", second}, &code, &log);
  CHECK(code == 0);
  CHECK(j.at("downloaded") == 0);
  CHECK(j.at("skipped") == 4);

  // A model of no finished member: reported, nothing fetched, the run goes on.
  j = PullJson(f, {"--model", "000000000000000000000000"}, &code, &log);
  CHECK(code != 0);
  CHECK(j.at("failed") == 1);
  CHECK(j.at("downloaded") == 0);
  CHECK(log.find("000000000000000000000000") != std::string::npos);
  // --member and --model of another member: the same.
  const std::string member0 = seeded.at("headshotpro").at("members").at(0).at("id");
  j = PullJson(f, {"--member", member0, "--model", second}, &code, &log);
  CHECK(code != 0);
  CHECK(j.at("failed") == 1);
  CHECK(StatU(f.emu->Stats(), "downloads") == 8);
}

TEST_CASE("pull: the default layout is <member name>/<photo>.<ext>, equal names get a folder each, in any order",
          "[pull]") {
  SyncFixture f;
  auto seeded = f.emu->Seed({{"members", 4}, {"photos_per_model", 3}});
  const auto& members = seeded.at("headshotpro").at("members");
  std::map<std::string, std::string> email_of_model;  // model id -> member email
  for (const auto& m : members) {
    email_of_model[m.at("models").at(0).get<std::string>()] = m.at("email").get<std::string>();
  }
  const auto id = [&](int i) { return members.at(i).at("id").get<std::string>(); };
  const auto email = [&](int i) { return members.at(i).at("email").get<std::string>(); };
  // Equal as given, equal ignoring case, equal after sanitising (the trailing dot goes).
  SetMember(f, id(0), {{"name", "Jane Doe"}});
  SetMember(f, id(1), {{"name", "jane doe"}});
  SetMember(f, id(2), {{"name", "Jane Doe."}});
  const fs::path dest = f.tmp.path() / "headshots";
  int code = -1;
  std::string log;
  auto j = PullJson(f, {}, &code, &log);
  INFO(log);
  REQUIRE(code == 0);
  REQUIRE(j.at("downloaded") == 12);
  const std::map<std::string, std::string> want = {{email(0), "Jane Doe (" + email(0) + ")"},
                                                   {email(1), "jane doe (" + email(1) + ")"},
                                                   {email(2), "Jane Doe (" + email(2) + ")"},
                                                   {email(3), "Member 4"}};
  const auto first = RelFiles(dest);
  REQUIRE(first.size() == 12);
  for (const auto& [photo, rel] : first) {
    INFO(rel);
    const std::string model = PhotoInfo(f, photo).at("modelId");
    CHECK(rel == (fs::path(want.at(email_of_model.at(model))) / (photo + ".jpg")).string());
  }

  // A second run fetches nothing. A member renamed to an existing name later:
  // the files already here stay where they are.
  j = PullJson(f, {}, &code, &log);
  CHECK(j.at("downloaded") == 0);
  CHECK(j.at("skipped") == 12);
  SetMember(f, id(3), {{"name", "JANE DOE"}});
  j = PullJson(f, {}, &code, &log);
  CHECK(code == 0);
  CHECK(j.at("downloaded") == 0);
  CHECK(j.at("skipped") == 12);
  CHECK(RelFiles(dest) == first);
  SetMember(f, id(3), {{"name", "Member 4"}});

  // Listed in another order, a new folder gets the same names.
  SetMember(f, id(0), {{"list_first", true}});
  SetMember(f, id(3), {{"list_first", true}});
  const fs::path other = f.tmp.path() / "other";
  j = PullJson(f, {"--dest", other.string()}, &code, &log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 12);
  CHECK(RelFiles(other) == first);
  // One member alone (--member) is named as in a whole run.
  const fs::path one = f.tmp.path() / "one";
  j = PullJson(f, {"--member", email(1), "--dest", one.string()}, &code, &log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 3);
  for (const auto& [photo, rel] : RelFiles(one)) CHECK(rel == first.at(photo));

  // The naming rules themselves: order-free, unique ignoring case, a clash with a tagged name.
  using shotsync::LayoutMember;
  const std::vector<LayoutMember> a = {{"id1", "Ann", "ann@x.test"},
                                       {"id2", "ANN", "ann2@x.test"},
                                       {"id3", "Ann (ann@x.test)", "third@x.test"},
                                       {"id4", "", "ann@x.test"},
                                       {"id5", "Bo", "same@x.test"},
                                       {"id6", "bo", "SAME@x.test"}};
  const auto names = shotsync::MemberFolders(a);
  CHECK(shotsync::MemberFolders(std::vector<LayoutMember>(a.rbegin(), a.rend())) == names);
  CHECK(names.at("id2") == "ANN (ann2@x.test)");
  CHECK(names.at("id1") == "Ann (id1)");  // its email-tagged name is id3's own name
  CHECK(names.at("id3") == "Ann (ann@x.test)");
  CHECK(names.at("id4") == "ann@x.test");
  CHECK(names.at("id5") == "Bo (id5)");  // the same email (ignoring case) tells nothing
  CHECK(names.at("id6") == "bo (id6)");
  const auto photo = [](std::string_view photo_id) {
    return shotsync::LayoutValues({"m", "n", "e", "t", "md", "mt", photo_id, "main", "u.jpg"}, false).at("photo");
  };
  CHECK(photo("507f1f77bcf86cd799439022") == "507f1f77bcf86cd799439022");
  CHECK(shotsync::SimpleCaseFold(photo("AbC")) != shotsync::SimpleCaseFold(photo("abc")));
  CHECK(photo("a/b") != photo("a_b"));
}

TEST_CASE("pull: a folder filled under the old default layout is not fetched again, an explicit layout is kept",
          "[pull]") {
  SyncFixture f;
  auto seeded = f.emu->Seed({{"members", 1}, {"photos_per_model", 3}});
  const std::string model = seeded.at("headshotpro").at("models").at(0).at("id");
  const fs::path dest = f.tmp.path() / "headshots";
  const std::string old_default = "{member}/{model}/{photo}.{ext}";
  // A config that names the layout keeps it (the old default written out).
  SetLayout(f, old_default);
  int code = -1;
  std::string log;
  auto j = PullJson(f, {}, &code, &log);
  INFO(log);
  REQUIRE(code == 0);
  REQUIRE(j.at("downloaded") == 3);
  const auto old_files = RelFiles(dest);
  for (const auto& [photo, rel] : old_files) CHECK(rel == (fs::path("Member 1") / model / (photo + ".jpg")).string());

  // The default layout now: nothing fetched again, nothing moved; new photos use it.
  f.WriteConfig();
  j = PullJson(f, {}, &code, &log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 0);
  CHECK(j.at("skipped") == 3);
  CHECK(RelFiles(dest) == old_files);
  const nlohmann::json add = {{"add_photos", 2}};
  const auto added = f.emu->Admin("POST", "headshotpro/models/" + model, &add).at("added");
  REQUIRE(added.size() == 2);
  j = PullJson(f, {}, &code, &log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 2);
  CHECK(j.at("skipped") == 3);
  auto now = RelFiles(dest);
  for (const auto& p : added) {
    const std::string photo = p.get<std::string>();
    CHECK(now.at(photo) == (fs::path("Member 1") / (photo + ".jpg")).string());
  }
  for (const auto& [photo, rel] : old_files) CHECK(now.at(photo) == rel);
  CHECK(CompareBytes(f, Files(dest)) == "");
  // An old file deleted is "deleted locally", as at its layout path.
  fs::remove(dest / old_files.begin()->second);
  j = PullJson(f, {}, &code, &log);
  CHECK(j.at("downloaded") == 0);
  CHECK(j.at("not_restored") == 1);

  // Back to the explicit old layout: a new photo goes there.
  SetLayout(f, old_default);
  const auto more = f.emu->Admin("POST", "headshotpro/models/" + model, &add).at("added");
  j = PullJson(f, {}, &code, &log);
  REQUIRE(code == 0);
  CHECK(j.at("downloaded") == 2);
  now = RelFiles(dest);
  for (const auto& p : more) {
    const std::string photo = p.get<std::string>();
    CHECK(now.at(photo) == (fs::path("Member 1") / model / (photo + ".jpg")).string());
  }
}

TEST_CASE("pull: bad key and unusable destination give one clear line", "[pull]") {
  SyncFixture f;
  f.emu->Seed({{"members", 1}, {"photos_per_model", 2}});
  auto r = f.Cli({"pull"}, {{"HEADSHOTPRO_API_KEY", "wrong-key"}});
  CHECK(r.code == 3);
  CHECK(r.err.find("Invalid API key [UNAUTHORIZED] (HTTP 401)") != std::string::npos);
  CHECK(r.err.find("wrong-key") == std::string::npos);

  std::ofstream(f.tmp.path() / "afile") << "x";
  r = f.Cli({"pull", "--dest", (f.tmp.path() / "afile" / "sub").string()});
  CHECK(r.code != 0);
  CHECK(r.err.find("destination") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

TEST_CASE("team invite never exceeds the pending cap of credits x 2, revoke frees room", "[pull]") {
  SyncFixture f;
  f.emu->Seed({{"credits", 3}});
  const fs::path csv = f.tmp.path() / "invites.csv";
  {
    std::ofstream out(csv);
    out << "email,teamId\n";
    for (int i = 1; i <= 10; ++i) out << "person" << i << "@example.com\n";
    out << "person1@example.com\n";  // duplicate
    out << "not-an-email\n";
  }
  auto dry = f.Cli({"team", "invite", "--csv", csv.string(), "--dry-run", "--json"});
  INFO(dry.out << dry.err);
  auto j = nlohmann::json::parse(dry.out);
  CHECK(j.at("sent") == 6);
  CHECK(j.at("surplus") == 4);
  CHECK(f.emu->Stats().at("headshotpro").at("pending_invites") == 0);

  auto real = f.Cli({"team", "invite", "--csv", csv.string(), "--json"});
  INFO(real.out << real.err);
  CHECK(real.code == 1);  // surplus reported
  j = nlohmann::json::parse(real.out);
  CHECK(j.at("sent") == 6);
  CHECK(j.at("surplus") == 4);
  CHECK(f.emu->Stats().at("headshotpro").at("pending_invites") == 6);
  CHECK(Route(f.emu->Stats(), "POST /api/v2/organization/invites") == 6);  // never over the cap

  auto rv = f.Cli({"team", "revoke", "person2@example.com"});
  CHECK(rv.code == 0);
  CHECK(f.emu->Stats().at("headshotpro").at("pending_invites") == 5);
  real = f.Cli({"team", "invite", "--csv", csv.string(), "--json"});
  j = nlohmann::json::parse(real.out);
  CHECK(j.at("sent") == 1);
  CHECK(f.emu->Stats().at("headshotpro").at("pending_invites") == 6);

  auto status = f.Cli({"team", "status", "--json"});
  INFO(status.out << status.err);
  REQUIRE(status.code == 0);
  j = nlohmann::json::parse(status.out);
  CHECK(j.at("credits") == 3);
  CHECK(j.at("invite_cap") == 6);
  CHECK(j.at("pending_invites") == 6);
}
