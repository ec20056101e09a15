// bench-noop_walk: the no-op resync minus the manifest. Walks ROOT with the
// engine's Scanner and, for each folder, does what the differ does with the
// manifest's rows for that folder: builds the name -> stat map of "known"
// rows (here: from the entries themselves, so everything is unchanged),
// joins each rel path, looks it up and compares (size, mtime_ns, inode).
// Nothing is hashed. Prints "<dirs> <files> <unchanged> <errors> <seconds>".
//   bench-noop_walk [--print] [--ignore GLOB]... ROOT
// --print also writes "size mtime inode path" per file (like find -printf),
// to check that both see the same files.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "shotsync/hasher.hpp"
#include "shotsync/scanner.hpp"

int main(int argc, char** argv) {
  using namespace shotsync;
  ScanOptions options;
  bool print = false;
  std::string root;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--print") == 0) {
      print = true;
    } else if (std::strcmp(argv[i], "--ignore") == 0 && i + 1 < argc) {
      options.ignore.emplace_back(argv[++i]);
    } else {
      root = argv[i];
    }
  }
  if (root.empty()) {
    std::fprintf(stderr, "usage: bench-noop_walk [--print] [--ignore GLOB]... ROOT\n");
    return 2;
  }
  std::uint64_t dirs = 0, files = 0, unchanged = 0, errors = 0;
  const auto t0 = std::chrono::steady_clock::now();
  Scanner scanner;
  std::unordered_map<std::string, FileStat> known;
  Status st = scanner.Walk(
      root, options,
      [&](std::string_view dir, std::span<const ScanEntry> entries) {
        ++dirs;
        // Stand-in for manifest.ForEachFileInDir(root_id, dir): rows keyed by name.
        known.clear();
        for (const ScanEntry& e : entries) {
          known.emplace(JoinRel(dir, e.name).substr(dir.empty() ? 0 : dir.size() + 1),
                        FileStat{e.size, e.mtime_ns, e.inode});
        }
        for (const ScanEntry& e : entries) {
          ++files;
          auto it = known.find(e.name);
          if (it != known.end() && it->second == FileStat{e.size, e.mtime_ns, e.inode}) {
            ++unchanged;
            known.erase(it);
          }
          if (print) {
            std::printf("%llu %lld.%09lld %llu %s/%s\n", static_cast<unsigned long long>(e.size),
                        static_cast<long long>(e.mtime_ns / 1000000000),
                        static_cast<long long>(e.mtime_ns % 1000000000),
                        static_cast<unsigned long long>(e.inode), root.c_str(),
                        JoinRel(dir, e.name).c_str());
          }
        }
        // Rows left in `known` would be marked missing.
      },
      [&](const std::string& path, const Status& s) {
        ++errors;
        std::fprintf(stderr, "warning: %s\n", s.message().c_str());
        (void)path;
      });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!st.ok()) {
    std::fprintf(stderr, "error: %s\n", st.message().c_str());
    return 1;
  }
  std::fprintf(print ? stderr : stdout, "%llu %llu %llu %llu %.4f\n",
               static_cast<unsigned long long>(dirs), static_cast<unsigned long long>(files),
               static_cast<unsigned long long>(unchanged), static_cast<unsigned long long>(errors),
               s);
  return errors ? 1 : 0;
}
