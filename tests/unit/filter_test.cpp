// FileFilter: rclone's glob rules, rule order, rules files, ages and sizes,
// and the walk leaving out what the filter excludes.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "shotsync/filter.hpp"
#include "shotsync/scanner.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace shotsync;
using shotsync::testing::TempDir;

namespace {

constexpr double kNow = 1'800'000'000;  // a fixed "now" (2027-01-15)
constexpr std::int64_t kNs = 1'000'000'000;

FileFilter FilterOf(const FilterSpec& spec) {
  auto f = FileFilter::Make(spec, kNow);
  REQUIRE(f.ok());
  return std::move(*f);
}

bool Admits(const FileFilter& f, const std::string& path) { return f.Admits(path, 1000, std::int64_t(kNow) * kNs); }

void WriteFileOf(const fs::path& p, std::size_t bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << std::string(bytes, 'x');
}

}  // namespace

TEST_CASE("Filter: a glob without a leading slash matches the end of the path at a folder boundary", "[filter]") {
  const FileFilter f = FilterOf({.exclude = {"*.png"}});
  CHECK_FALSE(Admits(f, "a.png"));
  CHECK_FALSE(Admits(f, "day01/deep/a.png"));
  CHECK(Admits(f, "a.png.jpg"));
  const FileFilter g = FilterOf({.exclude = {"day01/*.jpg"}});
  CHECK_FALSE(Admits(g, "day01/a.jpg"));
  CHECK_FALSE(Admits(g, "2026/day01/a.jpg"));  // rclone: the end of the path
  CHECK(Admits(g, "xday01/a.jpg"));            // only at a '/' boundary
  CHECK(Admits(g, "day01/sub/a.jpg"));         // '*' does not cross '/'
}

TEST_CASE("Filter: a leading slash anchors at the root, ** crosses folders", "[filter]") {
  const FileFilter f = FilterOf({.exclude = {"/raw/**"}});
  CHECK_FALSE(Admits(f, "raw/a.jpg"));
  CHECK_FALSE(Admits(f, "raw/x/y/a.jpg"));
  CHECK(Admits(f, "day/raw/a.jpg"));
}

TEST_CASE("Filter: ? [] {} and escapes", "[filter]") {
  const FileFilter f = FilterOf({.include = {"IMG_00?[0-4].{jpg,jpeg}", "\\*star.jpg"}});
  CHECK(Admits(f, "IMG_0013.jpg"));
  CHECK(Admits(f, "d/IMG_0010.jpeg"));
  CHECK_FALSE(Admits(f, "IMG_0015.jpg"));
  CHECK_FALSE(Admits(f, "IMG_001/3.jpg"));
  CHECK(Admits(f, "*star.jpg"));
  CHECK_FALSE(Admits(f, "xstar.jpg"));
  const FileFilter neg = FilterOf({.exclude = {"[!a-c]*.jpg"}});
  CHECK(Admits(neg, "apple.jpg"));
  CHECK_FALSE(Admits(neg, "zebra.jpg"));
}

TEST_CASE("Filter: --include leaves everything else out, and includes come before excludes", "[filter]") {
  const FileFilter f = FilterOf({.include = {"*.jpg"}});
  CHECK(Admits(f, "x/a.jpg"));
  CHECK_FALSE(Admits(f, "x/a.png"));
  // rclone's order: includes, then excludes: the include decides first.
  const FileFilter both = FilterOf({.include = {"keep/**"}, .exclude = {"*.jpg"}});
  CHECK(Admits(both, "keep/a.jpg"));
  CHECK_FALSE(Admits(both, "other/a.png"));  // the implicit "- **"
}

TEST_CASE("Filter: matching is case-sensitive unless --ignore-case", "[filter]") {
  CHECK(Admits(FilterOf({.exclude = {"*.jpg"}}), "A.JPG"));
  CHECK_FALSE(Admits(FilterOf({.exclude = {"*.jpg"}, .ignore_case = true}), "A.JPG"));
}

TEST_CASE("Filter: --filter-from reads rules in order, with comments and !", "[filter]") {
  TempDir tmp;
  const fs::path rules = tmp.path() / "rules.txt";
  std::ofstream(rules) << "# proofs only\n"
                          "  ; another comment\n"
                          "\n"
                          "- /day01/**\n"
                          "!\n"
                          "+ *.jpg\n"
                          "- **\n";
  const FileFilter f = FilterOf({.filter_from = {rules.string()}});
  CHECK(Admits(f, "day01/a.jpg"));  // "!" cleared the day01 rule
  CHECK(Admits(f, "day02/a.jpg"));
  CHECK_FALSE(Admits(f, "day02/a.png"));
  const FileFilter g = FilterOf({.filter = {"- secret/**", "+ **"}});
  CHECK_FALSE(Admits(g, "x/secret/a.jpg"));
  CHECK(Admits(g, "x/a.jpg"));
}

TEST_CASE("Filter: a wrong value names the flag or the rules file and line", "[filter]") {
  TempDir tmp;
  const fs::path rules = tmp.path() / "rules.txt";
  std::ofstream(rules) << "+ *.jpg\nkeep *.png\n";
  auto bad_line = FileFilter::Make({.filter_from = {rules.string()}}, kNow);
  REQUIRE_FALSE(bad_line.ok());
  CHECK_THAT(bad_line.status().message(), Catch::Contains(rules.string() + ":2:"));
  auto missing = FileFilter::Make({.filter_from = {(tmp.path() / "nope").string()}}, kNow);
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.status().message(), Catch::Contains("--filter-from"));
  auto age = FileFilter::Make({.max_age = "yesterday"}, kNow);
  REQUIRE_FALSE(age.ok());
  CHECK_THAT(age.status().message(), Catch::StartsWith("--max-age \"yesterday\""));
  auto size = FileFilter::Make({.max_size = "big"}, kNow);
  REQUIRE_FALSE(size.ok());
  CHECK_THAT(size.status().message(), Catch::StartsWith("--max-size \"big\""));
  auto brace = FileFilter::Make({.include = {"{a,b"}}, kNow);
  REQUIRE_FALSE(brace.ok());
  CHECK_THAT(brace.status().message(), Catch::Contains("unclosed {"));
}

TEST_CASE("Filter: --max-age, --min-age, --max-size and --min-size", "[filter]") {
  const std::int64_t now_ns = std::int64_t(kNow) * kNs;
  const FileFilter young = FilterOf({.max_age = "2d"});
  CHECK(young.Admits("a.jpg", 1, now_ns - 86400 * kNs));
  CHECK_FALSE(young.Admits("a.jpg", 1, now_ns - 3 * 86400 * kNs));
  const FileFilter old = FilterOf({.min_age = "1h30m"});
  CHECK(old.Admits("a.jpg", 1, now_ns - 2 * 3600 * kNs));
  CHECK_FALSE(old.Admits("a.jpg", 1, now_ns - 3600 * kNs));
  const FileFilter sized = FilterOf({.max_size = "10M", .min_size = "1k"});
  CHECK(sized.Admits("a.jpg", 10 * 1024 * 1024, now_ns));
  CHECK_FALSE(sized.Admits("a.jpg", 10 * 1024 * 1024 + 1, now_ns));
  CHECK_FALSE(sized.Admits("a.jpg", 1023, now_ns));
  const FileFilter dated = FilterOf({.max_age = "2020-01-01"});
  CHECK(dated.Admits("a.jpg", 1, now_ns));
  CHECK_FALSE(dated.Admits("a.jpg", 1, 1'500'000'000 * kNs));  // 2017
}

TEST_CASE("Filter: rclone's size and age spellings", "[filter]") {
  CHECK(ParseSizeSuffix("10M") == 10 * 1024 * 1024);
  CHECK(ParseSizeSuffix("10MB") == 10'000'000);
  CHECK(ParseSizeSuffix("1.5G") == std::int64_t(1.5 * 1024 * 1024 * 1024));
  CHECK(ParseSizeSuffix("100") == 100 * 1024);  // a bare number is KiB, as in rclone
  CHECK(ParseSizeSuffix("12B") == 12);
  CHECK_FALSE(ParseSizeSuffix("M"));
  CHECK_FALSE(ParseSizeSuffix("10X"));
  CHECK(ParseAgeSeconds("90") == 90);
  CHECK(ParseAgeSeconds("1h30m") == 5400);
  CHECK(ParseAgeSeconds("2w") == 14 * 86400);
  CHECK(ParseAgeSeconds("1M") == 30 * 86400);
  CHECK(ParseAgeSeconds("1y") == 365 * 86400);
  CHECK_FALSE(ParseAgeSeconds("1h30"));
  CHECK_FALSE(ParseAgeSeconds("soon"));
}

TEST_CASE("Filter: the walk leaves out excluded files and does not enter excluded folders", "[filter]") {
  TempDir tmp;
  const fs::path root = tmp.path() / "photos";
  WriteFileOf(root / "day01/a.jpg", 10);
  WriteFileOf(root / "day01/big.jpg", 5000);
  WriteFileOf(root / "rejects/b.jpg", 10);
  WriteFileOf(root / "day02/c.jpg", 10);
  const FileFilter f = FilterOf({.filter = {"- rejects/", "- /day02/**"}, .max_size = "1k"});
  ScanOptions options;
  options.filter = &f;
  std::set<std::string> dirs, files;
  Scanner scanner;
  Status st = scanner.Walk(
      root.string(), options,
      [&](std::string_view dir, std::span<const ScanEntry> entries) {
        dirs.insert(std::string(dir));
        for (const ScanEntry& e : entries) files.insert(JoinRel(dir, e.name));
      },
      [&](const std::string& path, const Status& s) { FAIL(path + ": " + s.message()); });
  REQUIRE(st.ok());
  CHECK(files == std::set<std::string>{"day01/a.jpg"});
  CHECK_FALSE(dirs.contains("rejects"));  // a directory rule: not entered
  CHECK(dirs.contains("day02"));          // a file rule: entered, its files left out
}
