// bench-hash: hashes the files named on the command line with the engine's
// Hasher (HashMany) and prints "<files> <bytes> <seconds>".
//   bench-hash [--threads N] [--buffer BYTES] [--print] FILE...
// --print writes "<hash>  <file>" lines like xxhsum -H2 (to compare them).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shotsync/hasher.hpp"

int main(int argc, char** argv) {
  int threads = 1;
  bool print = false;
  shotsync::HashOptions options;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--buffer") == 0 && i + 1 < argc) {
      options.buffer_size = std::size_t(std::atoll(argv[++i]));
    } else if (std::strcmp(argv[i], "--print") == 0) {
      print = true;
    } else {
      files.emplace_back(argv[i]);
    }
  }
  std::size_t next = 0;
  std::uint64_t bytes = 0;
  int errors = 0;
  const auto t0 = std::chrono::steady_clock::now();
  shotsync::HashMany(
      threads,
      [&]() -> std::optional<shotsync::HashTask> {
        if (next == files.size()) return std::nullopt;
        return shotsync::HashTask{files[next], next++};
      },
      [&](shotsync::HashTask&& t, shotsync::Result<shotsync::HashOutcome>&& r) {
        if (!r.ok()) {
          std::fprintf(stderr, "error: %s\n", r.status().message().c_str());
          ++errors;
          return;
        }
        bytes += r->stat.size;
        if (print) std::printf("%s  %s\n", r->hash.c_str(), t.path.c_str());
      },
      options);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(print ? stderr : stdout, "%zu %llu %.4f\n", files.size(), static_cast<unsigned long long>(bytes), s);
  return errors ? 1 : 0;
}
