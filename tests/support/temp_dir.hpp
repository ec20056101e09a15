// TempDir: a fresh directory under $TMPDIR, removed with everything in it
// when the object goes out of scope. ReadFileText: a file's whole content.
#pragma once

#include <filesystem>
#include <string>

namespace shotsync::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The whole file as bytes ("" when it cannot be read).
std::string ReadFileText(const std::filesystem::path& path);

}  // namespace shotsync::testing
