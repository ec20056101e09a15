// Hasher: XXH3-128 over open + posix_fadvise(SEQUENTIAL) + read into one
// page-aligned buffer per thread, fstat before and after; HashMany is a
// three-stage oneTBB pipeline (serial input, parallel hash, serial output)
// bounded by 2 * threads live tokens, run in an arena of `threads` slots.
#include "shotsync/hasher.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#if defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
// libxxhash exports runtime-dispatched (SSE2/AVX2/AVX-512) entry points; the
// header maps XXH3_128bits* onto them, as xxhsum itself does.
#include <xxh_x86dispatch.h>
#endif

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <new>
#include <mutex>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include "shotsync/fd.hpp"

namespace shotsync {
namespace {


struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// One read buffer per thread, reused for every file that thread hashes.
void* ThreadBuffer(std::size_t size) {
  thread_local std::unique_ptr<void, FreeDeleter> buf;
  thread_local std::size_t buf_size = 0;
  if (buf_size != size) {
    buf.reset(std::aligned_alloc(4096, (size + 4095) / 4096 * 4096));
    buf_size = buf ? size : 0;
  }
  return buf.get();
}

struct StateDeleter {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};

XXH3_state_t* ThreadState() {
  thread_local std::unique_ptr<XXH3_state_t, StateDeleter> state(XXH3_createState());
  return state.get();
}

FileStat StatOf(const struct stat& st) {
  return {std::uint64_t(st.st_size), std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
          std::uint64_t(st.st_ino)};
}

std::string Hex(const XXH128_hash_t& h) {
  // Canonical (big-endian) form, as xxhsum -H2 prints it.
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (std::size_t i = 0; i < 16; ++i) {
    out[2 * i] = kDigits[c.digest[i] >> 4];
    out[2 * i + 1] = kDigits[c.digest[i] & 15];
  }
  return out;
}

}  // namespace

std::string HashBytes(const void* data, std::size_t size) { return Hex(XXH3_128bits(data, size)); }

std::string HashIfStill(const std::string& path, const FileStat& expected) {
  auto hashed = HashFile(path);
  if (!hashed.ok() || hashed->changed || !(hashed->stat == expected)) return "";
  return hashed->hash;
}

struct StreamHash::State {
  XXH3_state_t* xxh = XXH3_createState();
  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() { XXH3_freeState(xxh); }
};

StreamHash::StreamHash() : state_(std::make_unique<State>()) {
  if (!state_->xxh) throw std::bad_alloc();
  XXH3_128bits_reset(state_->xxh);
}
StreamHash::~StreamHash() = default;
void StreamHash::Reset() { XXH3_128bits_reset(state_->xxh); }
void StreamHash::Update(const void* data, std::size_t size) { XXH3_128bits_update(state_->xxh, data, size); }
std::string StreamHash::Hex() const { return shotsync::Hex(XXH3_128bits_digest(state_->xxh)); }

Result<HashOutcome> HashFile(const std::string& path, const HashOptions& options) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::Io(path, errno);
  struct stat before {};
  if (::fstat(fd.get(), &before) != 0) return Status::Io(path, errno);
  if (!S_ISREG(before.st_mode)) return Status::Invalid(path + ": not a regular file");
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  const std::size_t size = options.buffer_size ? options.buffer_size : kHashBufferSize;
  void* buf = ThreadBuffer(size);
  XXH3_state_t* state = ThreadState();
  if (buf == nullptr || state == nullptr) return Status::Io(path, ENOMEM);
  XXH3_128bits_reset(state);
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Io(path, errno);
    }
    if (n == 0) break;
    XXH3_128bits_update(state, buf, std::size_t(n));
  }
  if (options.after_read) options.after_read(path);
  struct stat after {};
  if (::fstat(fd.get(), &after) != 0) return Status::Io(path, errno);
  HashOutcome out;
  out.hash = Hex(XXH3_128bits_digest(state));
  out.stat = StatOf(after);
  out.changed = !(StatOf(before) == out.stat);
  if (!out.changed) {
    // The path renamed over or replaced while we read the old inode.
    struct stat now {};
    if (::stat(path.c_str(), &now) != 0 || !(StatOf(now) == out.stat)) out.changed = true;
  }
  return out;
}

void HashMany(int threads, const std::function<std::optional<HashTask>()>& next,
              const std::function<void(HashTask&&, Result<HashOutcome>&&)>& done,
              const HashOptions& options) {
  threads = threads > 0 ? threads : 1;
  if (threads == 1) {
    // No pool to start: a hook's push hashes one file and must return fast.
    while (std::optional<HashTask> t = next()) {
      Result<HashOutcome> outcome = HashFile(t->path, options);
      done(std::move(*t), std::move(outcome));
    }
    return;
  }
  // shared_ptr, not a raw pointer: items still in the pipeline are freed
  // when a callback throws and TBB cancels the pipeline.
  struct Item {
    HashTask task;
    std::optional<Result<HashOutcome>> outcome;
  };
  // The serial input and output filters are each serial, but TBB may run one
  // while the other runs on another thread; callers keep state shared between
  // next and done (the planner's pending map), so they are made exclusive.
  std::mutex callbacks;
  tbb::task_arena arena(threads);
  arena.execute([&] {
    tbb::parallel_pipeline(
        std::size_t(threads) * 2,
        tbb::make_filter<void, std::shared_ptr<Item>>(
            tbb::filter_mode::serial_in_order,
            [&](tbb::flow_control& fc) -> std::shared_ptr<Item> {
              std::optional<HashTask> t;
              {
                std::lock_guard lock(callbacks);
                t = next();
              }
              if (!t) {
                fc.stop();
                return nullptr;
              }
              return std::make_shared<Item>(Item{std::move(*t), std::nullopt});
            }) &
            tbb::make_filter<std::shared_ptr<Item>, std::shared_ptr<Item>>(
                tbb::filter_mode::parallel,
                [&options](std::shared_ptr<Item> item) {
                  item->outcome.emplace(HashFile(item->task.path, options));
                  return item;
                }) &
            tbb::make_filter<std::shared_ptr<Item>, void>(
                tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Item> item) {
                  std::lock_guard lock(callbacks);
                  done(std::move(item->task), std::move(*item->outcome));
                }));
  });
  // The pipeline has ended and no callback runs any more (TBB's own
  // synchronisation). Taking the callbacks' mutex once more also shows that
  // to ThreadSanitizer, which does not see inside an uninstrumented libtbb,
  // before the caller destroys `next` and `done`.
  std::lock_guard lock(callbacks);
}

}  // namespace shotsync
