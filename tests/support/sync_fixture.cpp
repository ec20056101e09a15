#include "sync_fixture.hpp"

#include <openssl/evp.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "http.hpp"
#include "jpeg_synth.hpp"
#include "wait.hpp"

namespace fs = std::filesystem;

namespace shotsync::testing {

std::string Sha256File(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    EVP_DigestUpdate(ctx.get(), buf.data(), std::size_t(in.gcount()));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

SyncFixture::SyncFixture(std::vector<std::string> emulator_args)
    : emu(std::make_unique<EmulatorProcess>(std::move(emulator_args))) {
  photos = tmp.path() / "photos";
  state = tmp.path() / "state";
  config = tmp.path() / "config.toml";
  fs::create_directories(photos);
  WriteConfig();
}

void SyncFixture::MakePhotos(int count, int first_seed, int per_dir, int width) {
  for (int i = 0; i < count; ++i) {
    const int n = first_seed + i;
    char dir[16], name[32];
    std::snprintf(dir, sizeof dir, "d%02d", (n - 1) / per_dir + 1);
    std::snprintf(name, sizeof name, "IMG_%04d.jpg", n);
    fs::create_directories(photos / dir);
    auto bytes = SynthJpeg({.width = width, .height = width * 3 / 4, .seed = std::uint64_t(n) * 7919});
    std::ofstream(photos / dir / name, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
}

void SyncFixture::WriteConfig(const std::string& extra_top, int rpm) {
  std::ofstream out(config, std::ios::trunc);
  out << "state_dir = \"" << state.string() << "\"\n"
      << extra_top << "\n"
      // The emulator's injected latency is at most 500 ms: a cut-off request
      // is stored well within 2 s (the default of 10 s would slow tests down).
      << (extra_top.find("reconcile_delay") == std::string::npos ? "reconcile_delay = 2\n" : "")
      << "[shootbin]\nbase_url = \"" << emu->base_url() << "\"\nrpm = " << rpm << "\n"
      << "[headshotpro]\nbase_url = \"" << emu->base_url() << "/api/v2\"\ndest = \""
      << (tmp.path() / "headshots").string() << "\"\n"
      << "[[roots]]\npath = \"" << photos.string() << "\"\nproject = \"Demo\"\nalbum = \"Main\"\n";
}

std::map<std::string, std::string> SyncFixture::Env() const {
  return {{"SHOOTBIN_API_TOKEN", "sb-test-token"}, {"HEADSHOTPRO_API_KEY", "hp-test-key"}};
}

RunResult SyncFixture::Cli(std::vector<std::string> args, std::map<std::string, std::string> env) {
  std::vector<std::string> argv = {SHOTSYNC_CLI_PATH, "--config", config.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto e = Env();
  for (auto& [k, v] : env) e[k] = v;
  return RunProgram(argv, e, (tmp.path() / ("run" + std::to_string(++runs_))).string());
}

std::unique_ptr<ChildProcess> SyncFixture::StartCli(std::vector<std::string> args) {
  std::vector<std::string> argv = {SHOTSYNC_CLI_PATH, "--config", config.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<ChildProcess>(argv, Env(),
                                        (tmp.path() / ("run" + std::to_string(++runs_))).string());
}

bool SyncFixture::WaitForLock(const ChildProcess& run) const {
  const std::string holder = std::to_string(run.pid()) + "\n";
  return WaitFor([&] { return ReadFileText(state / "lock") == holder; });
}

std::map<std::string, nlohmann::json> SyncFixture::RemotePhotos() const {
  auto list = emu->Admin("GET", "photos?project=1&album=1");
  const nlohmann::json& arr = list.is_array() ? list : list.at("photos");
  std::map<std::string, nlohmann::json> out;
  for (const auto& p : arr) {
    const std::string name = p.at("original_filename").get<std::string>();
    if (out.count(name)) throw std::runtime_error("duplicate on server: " + name);
    out[name] = p;
  }
  return out;
}

std::string SyncFixture::CompareWithServer() const {
  std::map<std::string, nlohmann::json> remote;
  try {
    remote = RemotePhotos();
  } catch (const std::exception& e) {
    return e.what();
  }
  std::size_t local = 0;
  for (auto it = fs::recursive_directory_iterator(photos); it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_regular_file()) continue;
    ++local;
    const std::string rel = fs::relative(it->path(), photos).string();
    auto r = remote.find(rel);
    if (r == remote.end()) return "missing on server: " + rel;
    if (r->second.at("sha256").get<std::string>() != Sha256File(it->path())) {
      return "content differs: " + rel;
    }
  }
  if (remote.size() != local) {
    return "server has " + std::to_string(remote.size()) + " photos, disk " + std::to_string(local);
  }
  return "";
}

}  // namespace shotsync::testing
