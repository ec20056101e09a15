#include "shotsync/hasher.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include "shotsync/fd.hpp"

namespace shotsync {
namespace {

constexpr std::size_t kBufferSize = 1 << 20;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

FileStat StatOf(const struct stat& st) {
  return {std::uint64_t(st.st_size), std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
          std::uint64_t(st.st_ino)};
}

std::string Hex(const XXH128_hash_t& h) {
  // Canonical (big-endian) form, as xxhsum -H2 prints it.
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  static const char* digits = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[std::size_t(2 * i)] = digits[c.digest[i] >> 4];
    out[std::size_t(2 * i + 1)] = digits[c.digest[i] & 15];
  }
  return out;
}

}  // namespace

std::string HashBytes(const void* data, std::size_t size) { return Hex(XXH3_128bits(data, size)); }

Result<HashOutcome> HashFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::Io(path, errno);
  struct stat before {};
  if (::fstat(fd.get(), &before) != 0) return Status::Io(path, errno);
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  std::unique_ptr<void, FreeDeleter> buf(std::aligned_alloc(4096, kBufferSize));
  if (!buf) return Status::Io(path, ENOMEM);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), XXH3_freeState);
  XXH3_128bits_reset(state.get());
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf.get(), kBufferSize);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Io(path, errno);
    }
    if (n == 0) break;
    XXH3_128bits_update(state.get(), buf.get(), std::size_t(n));
  }
  struct stat after {};
  if (::fstat(fd.get(), &after) != 0) return Status::Io(path, errno);
  HashOutcome out;
  out.hash = Hex(XXH3_128bits_digest(state.get()));
  out.stat = StatOf(after);
  out.changed = !(StatOf(before) == out.stat);
  if (!out.changed) {
    // A rename or replacement of the path while we read the old inode.
    struct stat now {};
    if (::stat(path.c_str(), &now) != 0 || !(StatOf(now) == out.stat)) out.changed = true;
  }
  return out;
}

void HashMany(int threads, const std::function<std::optional<HashTask>()>& next,
              const std::function<void(HashTask&&, Result<HashOutcome>&&)>& done) {
  threads = threads > 0 ? threads : 1;
  struct Item {
    HashTask task;
    std::optional<Result<HashOutcome>> outcome;
  };
  tbb::task_arena arena(threads);
  arena.execute([&] {
    tbb::parallel_pipeline(
        std::size_t(threads) * 2,
        tbb::make_filter<void, std::shared_ptr<Item>>(
            tbb::filter_mode::serial_in_order,
            [&](tbb::flow_control& fc) -> std::shared_ptr<Item> {
              std::optional<HashTask> t = next();
              if (!t) {
                fc.stop();
                return nullptr;
              }
              auto item = std::make_shared<Item>();
              item->task = std::move(*t);
              return item;
            }) &
            tbb::make_filter<std::shared_ptr<Item>, std::shared_ptr<Item>>(
                tbb::filter_mode::parallel,
                [](std::shared_ptr<Item> item) {
                  item->outcome.emplace(HashFile(item->task.path));
                  return item;
                }) &
            tbb::make_filter<std::shared_ptr<Item>, void>(
                tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Item> item) {
                  done(std::move(item->task), std::move(*item->outcome));
                }));
  });
}

}  // namespace shotsync
