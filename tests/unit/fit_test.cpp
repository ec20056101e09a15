// Fit (shotsync/fit.hpp): the quality search, the metadata splice, the
// temporary copies. Small images against small limits: the 14 MB case is
// the integration test's.
#include <sys/stat.h>
#include <turbojpeg.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "fit_samples.hpp"
#include "shotsync/fit.hpp"
#include "temp_dir.hpp"

using namespace shotsync;
using namespace shotsync::testing;

namespace {

std::string Photo444() { return NoiseJpeg(512, 384, 100, TJSAMP_444, 7); }

std::size_t Count(std::string_view hay, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t at = hay.find(needle); at != std::string_view::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("fit: an over-size JPEG is re-encoded under the limit, decodes, keeps its metadata in order",
          "[fit]") {
  const auto metadata = SampleMetadata();
  const std::string original = WithSegments(Photo444(), metadata, /*drop_app0=*/true);
  REQUIRE(original.size() > 100000);
  const std::uint64_t limit = original.size() * 6 / 10;
  auto fitted = FitJpeg(original, limit);
  REQUIRE(fitted.ok());
  CHECK(fitted->bytes.size() <= limit);
  CHECK(fitted->quality >= kFitMinQuality);
  CHECK(fitted->quality <= kFitMaxQuality);
  int w = 0, h = 0;
  CHECK(Decodes(fitted->bytes, &w, &h));
  CHECK(w == 512);
  CHECK(h == 384);
  CHECK(HasSegmentsInOrder(fitted->bytes, metadata));
  CHECK(SubsamplingOf(fitted->bytes) == TJSAMP_444);
  // The original had no APP0: the encoder's JFIF one stays, first.
  CHECK(fitted->bytes.substr(2, 2) == "\xFF\xE0");
  // Deterministic: the album's photo is recognised by fitting again.
  auto again = FitJpeg(original, limit);
  REQUIRE(again.ok());
  CHECK(again->bytes == fitted->bytes);
  CHECK(again->quality == fitted->quality);
}

TEST_CASE("fit: the highest quality that fits is kept, never one over the limit", "[fit]") {
  const std::string original = Photo444();
  auto roomy = FitJpeg(original, original.size() * 2);
  REQUIRE(roomy.ok());
  CHECK(roomy->quality == kFitMaxQuality);
  // A limit just under the q=k output: k does not fit, so a lower one is chosen.
  auto tight = FitJpeg(original, roomy->bytes.size() - 1);
  REQUIRE(tight.ok());
  CHECK(tight->quality < kFitMaxQuality);
  CHECK(tight->bytes.size() < roomy->bytes.size());
  // ...and with the limit at exactly that output, it is the one kept.
  auto exact = FitJpeg(original, tight->bytes.size());
  REQUIRE(exact.ok());
  CHECK(exact->quality >= tight->quality);
  CHECK(exact->bytes.size() <= tight->bytes.size());
}

TEST_CASE("fit: the original's own APP0 replaces the encoder's, 4:2:2 and grey stay as they are", "[fit]") {
  const std::string app0 = Segment(0xE0, std::string("JFIF\0\x01\x02\x01\x00\x48\x00\x48\0\0", 14));
  const std::vector<std::string> segs = {app0, Segment(0xFE, "own comment")};
  const std::string original = WithSegments(NoiseJpeg(256, 256, 100, TJSAMP_422, 3), segs, /*drop_app0=*/true);
  auto fitted = FitJpeg(original, original.size() * 7 / 10);
  REQUIRE(fitted.ok());
  CHECK(Count(fitted->bytes.substr(0, 200), "\xFF\xE0") == 1);
  CHECK(fitted->bytes.substr(2, app0.size()) == app0);
  CHECK(HasSegmentsInOrder(fitted->bytes, segs));
  CHECK(SubsamplingOf(fitted->bytes) == TJSAMP_422);

  const std::string grey = NoiseJpeg(256, 256, 100, TJSAMP_GRAY, 4);
  auto g = FitJpeg(grey, grey.size() * 7 / 10);
  REQUIRE(g.ok());
  CHECK(SubsamplingOf(g->bytes) == TJSAMP_GRAY);
  CHECK(Decodes(g->bytes));
}

TEST_CASE("fit: a JPEG that does not fit even at the lowest quality is refused with the size reached", "[fit]") {
  const std::string original = Photo444();
  auto r = FitJpeg(original, 20000);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kRejected);
  const std::string& why = r.status().message();
  CHECK(why.find("quality " + std::to_string(kFitMinQuality)) != std::string::npos);
  CHECK(why.find("upload limit of 0.0 MB") != std::string::npos);
  CHECK(why.find('\n') == std::string::npos);
  // Metadata alone over the limit: refused the same way.
  auto meta = FitJpeg(WithSegments(original, SampleMetadata(60000), true), 50000);
  REQUIRE_FALSE(meta.ok());
  CHECK(meta.status().code() == Code::kRejected);
}

TEST_CASE("fit: bytes that are not a JPEG are an invalid argument, not a crash", "[fit]") {
  CHECK(FitJpeg("not a jpeg at all").status().code() == Code::kInvalidArgument);
  std::string cut = Photo444();
  cut.resize(3);
  CHECK(FitJpeg(cut).status().code() == Code::kInvalidArgument);
  // A segment length running past the end.
  std::string bad = "\xFF\xD8\xFF\xE1\x7F\xFF";
  bad += std::string(100, 'x');
  CHECK(FitJpeg(bad).status().code() == Code::kInvalidArgument);
  CHECK(JpegMetadata(bad).status().code() == Code::kInvalidArgument);
}

TEST_CASE("fit: JpegMetadata lists APPn and COM segments in file order", "[fit]") {
  const auto metadata = SampleMetadata();
  const std::string jpeg = WithSegments(Photo444(), metadata, /*drop_app0=*/true);
  auto segs = JpegMetadata(jpeg);  // views into jpeg
  REQUIRE(segs.ok());
  REQUIRE(segs->size() == metadata.size());
  for (std::size_t i = 0; i < metadata.size(); ++i) CHECK(std::string((*segs)[i].bytes) == metadata[i]);
  CHECK((*segs)[2].marker == 0xE2);
  CHECK((*segs)[5].marker == 0xFE);
}

TEST_CASE("fit: applies to JPEG names over the limit of a root with fit on", "[fit]") {
  RootConfig root;
  CHECK_FALSE(FitApplies(root, "a/big.jpg", kShootbinMaxUpload + 1));
  root.fit = true;
  CHECK(FitApplies(root, "a/big.jpg", kShootbinMaxUpload + 1));
  CHECK(FitApplies(root, "BIG.JPEG", kShootbinMaxUpload + 1));
  CHECK_FALSE(FitApplies(root, "big.jpg", kShootbinMaxUpload));
  CHECK_FALSE(FitApplies(root, "big.png", kShootbinMaxUpload + 1));
  CHECK_FALSE(FitApplies(root, "big.jpg.xmp", kShootbinMaxUpload + 1));
  Config c;
  c.roots.resize(2);
  FitAllRoots(c);
  CHECK((c.roots[0].fit && c.roots[1].fit));

  // The config key, per root; off by default; a boolean.
  const EnvFn env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "HOME") return "/h";
    return std::nullopt;
  };
  const std::string roots =
      "[[roots]]\npath = \"/p/a\"\nproject = \"P\"\nalbum = \"A\"\nfit = true\n"
      "[[roots]]\npath = \"/p/b\"\nproject = \"P\"\nalbum = \"B\"\n";
  auto parsed = ParseConfig(roots, "fit.toml", env);
  REQUIRE(parsed.ok());
  CHECK(parsed->roots.at(0).fit);
  CHECK_FALSE(parsed->roots.at(1).fit);
  auto wrong = ParseConfig("[[roots]]\npath = \"/p\"\nproject = \"P\"\nalbum = \"A\"\nfit = \"yes\"\n", "fit.toml", env);
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.status().message().find("fit.toml:") != std::string::npos);
}

TEST_CASE("fit: the copy is private, under the state folder, the original untouched, stale copies go", "[fit]") {
  TempDir tmp;
  const std::string state = (tmp.path() / "state").string();
  const std::string src = (tmp.path() / "big.jpg").string();
  const std::string original = WithSegments(Photo444(), SampleMetadata(), true);
  std::ofstream(src, std::ios::binary) << original;
  std::filesystem::create_directories(state + "/fit");  // as an earlier run left it
  std::filesystem::permissions(state + "/fit", std::filesystem::perms::owner_all);
  // A copy left by a process that is gone (no pid is that large).
  const std::string stale = state + "/fit/999999999.5.jpg";
  std::ofstream(stale) << "old";

  auto copy = FitFileCopy(src, state, 42, original.size() / 2);
  REQUIRE(copy.ok());
  CHECK(copy->path == FitCopyPath(state, 42));
  CHECK(copy->path.rfind(state + "/fit/", 0) == 0);
  CHECK(copy->size <= original.size() / 2);
  CHECK(copy->size == std::filesystem::file_size(copy->path));
  CHECK(copy->quality >= kFitMinQuality);
  CHECK_FALSE(std::filesystem::exists(stale));
  struct stat sb;
  REQUIRE(::stat(copy->path.c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0600);
  REQUIRE(::stat((state + "/fit").c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0700);
  CHECK(ReadFileText(src) == original);
  CHECK(Decodes(ReadFileText(copy->path)));

  RootConfig root;
  root.fit = true;
  // Under the limit: the file itself is the body.
  auto body = SendBody(root, src, "big.jpg", state, 42);
  REQUIRE(body.ok());
  CHECK(body->path == src);
  CHECK(body->quality == 0);

  RemoveFitCopy(state, 42);
  CHECK_FALSE(std::filesystem::exists(copy->path));
  CHECK(FitFileCopy((tmp.path() / "gone.jpg").string(), state, 1).status().code() == Code::kIo);
}
