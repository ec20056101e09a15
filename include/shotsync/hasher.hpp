// Hasher: XXH3-128 content hashes, streamed with large buffers, and a bounded
// parallel pipeline (oneTBB) to hash many files at once.
//
// A file that changes while it is being hashed (its stat after reading differs
// from its stat before) is reported as kChanged so the caller can hash it
// again later instead of recording a hash that matches no version of the file.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "shotsync/status.hpp"

namespace shotsync {

struct FileStat {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t inode = 0;
  bool operator==(const FileStat&) const = default;
};

struct HashOutcome {
  std::string hash;  // 32 lowercase hex digits
  FileStat stat;     // the stat the hash belongs to
  bool changed = false;  // the file changed while being read: hash is not valid
};

// Size of the read buffer HashFile streams through (one per thread, page
// aligned). 1 MiB and 256 KiB measured alike here (benchmarks/run hash).
inline constexpr std::size_t kHashBufferSize = std::size_t(1) << 20;

// How HashFile reads. The defaults are production's; the rest are seams for
// tests (after_read: called with the path after the last read and before the
// closing fstat, where a test modifies the file to provoke `changed`) and
// for benchmarks (buffer_size).
struct HashOptions {
  std::size_t buffer_size = kHashBufferSize;
  std::function<void(const std::string& path)> after_read;
};

// Hashes one file. Errors name the file (kIo with errno text; kInvalidArgument
// for something that is not a regular file, e.g. a FIFO).
Result<HashOutcome> HashFile(const std::string& path, const HashOptions& options = {});

// HashFile's hash if the file is still the version `expected` describes
// (and did not change while being read); "" otherwise or on any error. For
// binding a file the plan did not read to what the server holds.
std::string HashIfStill(const std::string& path, const FileStat& expected);

// Hash of a byte string, same format as HashFile (used by tests and the emulator).
std::string HashBytes(const void* data, std::size_t size);

// HashFile's hash over bytes read elsewhere: an upload body as curl reads it,
// so that a photo the plan knows must be sent is read once (docs/resume.md,
// "One read per changed photo"). Not copyable; Reset starts over.
class StreamHash {
 public:
  StreamHash();
  ~StreamHash();
  StreamHash(const StreamHash&) = delete;
  StreamHash& operator=(const StreamHash&) = delete;
  void Reset();
  void Update(const void* data, std::size_t size);
  std::string Hex() const;  // of the bytes so far; the state stays usable

 private:
  struct State;
  std::unique_ptr<State> state_;
};

struct HashTask {
  std::string path;          // absolute path to read
  std::uint64_t cookie = 0;  // caller's identifier, handed back
};

// Runs a bounded parallel pipeline: `next` is called until it returns nullopt;
// each task is hashed on up to `threads` worker threads; `done` is called (in
// input order) with the task and its outcome. `next` and `done` are never
// called concurrently (not even with each other), so they may share state
// without a lock; they may run on different threads. At most 2 * threads
// tasks are in flight, so memory stays flat however many files there are.
void HashMany(int threads, const std::function<std::optional<HashTask>()>& next,
              const std::function<void(HashTask&&, Result<HashOutcome>&&)>& done,
              const HashOptions& options = {});

}  // namespace shotsync
