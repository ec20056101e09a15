// Scanner: walk order, stat fields, ignore rules, symlinks, errors.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "shotsync/scanner.hpp"
#include "temp_dir.hpp"
#include "unprivileged.hpp"

namespace fs = std::filesystem;
using namespace shotsync;

namespace {

void Touch(const fs::path& p, std::size_t bytes = 3) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << std::string(bytes, 'x');
}

struct Walked {
  Status status;
  std::vector<std::string> dirs;                 // on_dir order
  std::map<std::string, ScanEntry> files;        // rel path -> entry
  std::vector<std::vector<std::string>> names;   // per on_dir call, names in given order
  std::vector<std::pair<std::string, Status>> errors;

  bool HasErrorAbout(const std::string& path_part) const {
    for (const auto& [p, s] : errors) {
      if (p.find(path_part) != std::string::npos &&
          s.message().find(path_part) != std::string::npos) {
        return true;
      }
    }
    return false;
  }
};

Walked Walk(const fs::path& root, ScanOptions options = {},
            const std::function<void(std::string_view)>& also = nullptr) {
  Walked w;
  Scanner scanner;
  w.status = scanner.Walk(
      root.string(), options,
      [&](std::string_view dir, std::span<const ScanEntry> files) {
        w.dirs.emplace_back(dir);
        std::vector<std::string> names;
        for (const ScanEntry& e : files) {
          names.push_back(e.name);
          w.files.emplace(JoinRel(dir, e.name), e);
        }
        w.names.push_back(std::move(names));
        if (also) also(dir);
      },
      [&](const std::string& path, const Status& st) { w.errors.emplace_back(path, st); });
  return w;
}

std::vector<std::string> Keys(const Walked& w) {
  std::vector<std::string> out;
  for (const auto& [k, v] : w.files) out.push_back(k);
  return out;
}

}  // namespace

TEST_CASE("scanner walks a nested tree depth first with sorted files and their stat", "[scanner]") {
  testing::TempDir tmp;
  const fs::path root = tmp.path() / "photos";
  Touch(root / "b.jpg", 10);
  Touch(root / "a.jpg", 20);
  Touch(root / "day1" / "z.jpg", 1);
  Touch(root / "day1" / "m.jpg", 2);
  Touch(root / "day1" / "sub" / "deep.jpg", 5);
  Touch(root / "day2" / "x.jpg", 7);
  fs::create_directories(root / "empty");

  const Walked w = Walk(root);
  REQUIRE(w.status.ok());
  CHECK(w.errors.empty());
  CHECK(w.dirs == std::vector<std::string>{"", "day1", "day1/sub", "day2", "empty"});
  CHECK(w.names[0] == std::vector<std::string>{"a.jpg", "b.jpg"});
  CHECK(w.names[1] == std::vector<std::string>{"m.jpg", "z.jpg"});
  CHECK(w.names[4].empty());
  CHECK(Keys(w) == std::vector<std::string>{"a.jpg", "b.jpg", "day1/m.jpg", "day1/sub/deep.jpg",
                                            "day1/z.jpg", "day2/x.jpg"});

  struct stat st {};
  REQUIRE(::stat((root / "day1/sub/deep.jpg").c_str(), &st) == 0);
  const ScanEntry& e = w.files.at("day1/sub/deep.jpg");
  CHECK(e.size == 5);
  CHECK(e.inode == std::uint64_t(st.st_ino));
  CHECK(e.mtime_ns == std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);

  // A trailing slash on the root changes nothing.
  const Walked w2 = Walk(root.string() + "/");
  CHECK(Keys(w2) == Keys(w));
}

TEST_CASE("scanner skips hidden names, .part files and user globs", "[scanner]") {
  testing::TempDir tmp;
  const fs::path root = tmp.path();
  Touch(root / "keep.jpg");
  Touch(root / ".DS_Store");
  Touch(root / ".hidden.jpg");
  Touch(root / ".git" / "objects" / "x.jpg");
  Touch(root / "download.jpg.part");
  Touch(root / "side.xmp");
  Touch(root / "raw" / "a.cr2");         // whole folder ignored by name
  Touch(root / "day1" / "tmp1.jpg");     // ignored by a path glob
  Touch(root / "day1" / "keep2.jpg");
  Touch(root / "day2" / "tmp1.jpg");     // the path glob is for day1 only
  Touch(root / "top.jpg");               // anchored glob
  Touch(root / "day2" / "top.jpg");      // not matched by the anchored glob

  ScanOptions options;
  options.ignore = {"*.xmp", "raw", "day1/tmp*", "/top.jpg"};
  const Walked w = Walk(root, options);
  REQUIRE(w.status.ok());
  CHECK(w.errors.empty());
  CHECK(Keys(w) ==
        std::vector<std::string>{"day1/keep2.jpg", "day2/tmp1.jpg", "day2/top.jpg", "keep.jpg"});
  CHECK(w.dirs == std::vector<std::string>{"", "day1", "day2"});

  CHECK(IsIgnored("", ".DS_Store", {}));
  CHECK(IsIgnored("a/b", "x.jpg.part", {}));
  CHECK_FALSE(IsIgnored("a/b", "x.part.jpg", {}));
  CHECK(IsIgnored("day1", "tmp9.jpg", options));
  CHECK_FALSE(IsIgnored("day1/sub", "tmp9.jpg", options));  // '*' does not cross '/'
  CHECK(IsIgnored("x", "a.xmp", options));
  CHECK_FALSE(IsIgnored("x", "a.jpg", options));
}

TEST_CASE("scanner handles non-UTF-8, 255-byte and spaced names", "[scanner]") {
  testing::TempDir tmp;
  const fs::path root = tmp.path();
  const std::string latin1 = "caf\xe9 \xff\xfe.jpg";  // not valid UTF-8
  const std::string long_name = std::string(251, 'n') + ".jpg";
  REQUIRE(long_name.size() == 255);
  Touch(root / latin1, 4);
  Touch(root / "with space" / "a b  c.jpg", 6);
  Touch(root / long_name, 8);

  const Walked w = Walk(root);
  REQUIRE(w.status.ok());
  CHECK(w.errors.empty());
  REQUIRE(w.files.size() == 3);
  CHECK(w.files.at(latin1).size == 4);
  CHECK(w.files.at("with space/a b  c.jpg").size == 6);
  CHECK(w.files.at(long_name).size == 8);
}

TEST_CASE("scanner follows symlinks and reports a loop instead of looping", "[scanner]") {
  testing::TempDir tmp;
  const fs::path root = tmp.path() / "root";
  const fs::path outside = tmp.path() / "outside";
  Touch(root / "a" / "one.jpg");
  Touch(outside / "two.jpg");
  Touch(outside / "sub" / "three.jpg");
  fs::create_directory_symlink("..", root / "a" / "up");          // loop back to root
  fs::create_directory_symlink(root / "a", root / "a" / "self");   // loop to itself
  fs::create_directory_symlink(outside, root / "ext");             // followed
  fs::create_symlink(outside / "two.jpg", root / "link.jpg");      // file link followed
  fs::create_symlink(tmp.path() / "nowhere.jpg", root / "dangling.jpg");
  fs::create_symlink("ring2", root / "ring1");                     // ELOOP chain
  fs::create_symlink("ring1", root / "ring2");

  const Walked w = Walk(root);
  REQUIRE(w.status.ok());
  CHECK(Keys(w) == std::vector<std::string>{"a/one.jpg", "ext/sub/three.jpg", "ext/two.jpg",
                                            "link.jpg"});
  CHECK(w.HasErrorAbout("a/up"));
  CHECK(w.HasErrorAbout("a/self"));
  CHECK(w.HasErrorAbout("dangling.jpg"));
  CHECK(w.HasErrorAbout("ring1"));
  CHECK(w.HasErrorAbout("ring2"));
  CHECK(w.errors.size() == 5);
  // A loop is reported by its absolute path.
  for (const auto& [path, st] : w.errors) CHECK(fs::path(path).is_absolute());
}

TEST_CASE("scanner reports an unreadable folder and goes on", "[scanner]") {
  testing::Unprivileged as_nobody;  // root would read the folder anyway
  testing::TempDir tmp;
  const fs::path root = tmp.path();
  Touch(root / "a" / "1.jpg");
  Touch(root / "locked" / "secret.jpg");
  Touch(root / "z" / "2.jpg");
  fs::permissions(root / "locked", fs::perms::none);

  const Walked w = Walk(root);
  REQUIRE(w.status.ok());
  CHECK(w.files.count("a/1.jpg") == 1);
  CHECK(w.files.count("z/2.jpg") == 1);
  CHECK(w.files.count("locked/secret.jpg") == 0);
  CHECK(std::find(w.dirs.begin(), w.dirs.end(), "locked") == w.dirs.end());
  REQUIRE(w.errors.size() == 1);
  CHECK(w.errors[0].first == (root / "locked").string());
  CHECK(w.errors[0].second.message().find((root / "locked").string()) != std::string::npos);
  CHECK(w.errors[0].second.code() == Code::kIo);

  // Readable but not searchable (r--): entries listed, none stat-able.
  fs::permissions(root / "locked", fs::perms::owner_read);
  const Walked w2 = Walk(root);
  REQUIRE(w2.status.ok());
  CHECK(w2.files.count("z/2.jpg") == 1);
  CHECK(w2.files.count("locked/secret.jpg") == 0);
  CHECK(std::find(w2.dirs.begin(), w2.dirs.end(), "locked") == w2.dirs.end());
  CHECK(w2.errors.size() == 1);  // one report for the folder, not one per file
}

TEST_CASE("scanner reports entries that vanish during the walk", "[scanner]") {
  testing::TempDir tmp;
  const fs::path root = tmp.path();
  Touch(root / "a" / "1.jpg");
  Touch(root / "b" / "2.jpg");
  Touch(root / "c" / "3.jpg");
  // Folder b is removed after the root was listed, before the walk enters it.
  const Walked w = Walk(root, {}, [&](std::string_view dir) {
    if (dir == "a") fs::remove_all(root / "b");
  });
  REQUIRE(w.status.ok());
  CHECK(Keys(w) == std::vector<std::string>{"a/1.jpg", "c/3.jpg"});
  REQUIRE(w.errors.size() == 1);
  CHECK(w.errors[0].first == (root / "b").string());
  CHECK(w.errors[0].second.message().find("vanished") != std::string::npos);
}

TEST_CASE("scanner caps the depth and reports what is deeper", "[scanner]") {
  testing::TempDir tmp;
  const fs::path root = tmp.path();
  fs::path p = root;
  for (std::size_t i = 0; i < kMaxScanDepth + 4; ++i) p /= "d";
  Touch(p / "deep.jpg");
  Touch(root / "d" / "shallow.jpg");
  const Walked w = Walk(root);
  REQUIRE(w.status.ok());
  CHECK(w.files.count("d/shallow.jpg") == 1);
  CHECK(w.files.size() == 1);
  REQUIRE(w.errors.size() == 1);
  CHECK(w.errors[0].second.message().find("deeper than") != std::string::npos);
  CHECK(w.dirs.size() == kMaxScanDepth);  // root + 255 levels below it
}

TEST_CASE("scanner fails on a missing or non-folder root and names it", "[scanner]") {
  testing::Unprivileged as_nobody;  // root would open the closed folder anyway
  testing::TempDir tmp;
  const std::string missing = (tmp.path() / "no such folder").string();
  Walked w = Walk(missing);
  CHECK_FALSE(w.status.ok());
  CHECK(w.status.message().find(missing) != std::string::npos);
  CHECK(w.dirs.empty());

  Touch(tmp.path() / "file.jpg");
  const std::string file = (tmp.path() / "file.jpg").string();
  w = Walk(file);
  CHECK_FALSE(w.status.ok());
  CHECK(w.status.message().find(file) != std::string::npos);

  fs::create_directories(tmp.path() / "closed");
  fs::permissions(tmp.path() / "closed", fs::perms::none);
  w = Walk(tmp.path() / "closed");
  CHECK_FALSE(w.status.ok());
  CHECK(w.status.message().find("closed") != std::string::npos);
}

TEST_CASE("JoinRel joins with one slash", "[scanner]") {
  CHECK(JoinRel("", "a.jpg") == "a.jpg");
  CHECK(JoinRel("x/y", "a.jpg") == "x/y/a.jpg");
}
