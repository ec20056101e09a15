// shotsync init: writes a commented config (mode 600) and says where. Never
// overwrites one without --force; never writes a token.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "shotsync/fd.hpp"
#include "shotsync/fs.hpp"

namespace shotsync::cli {
namespace {

struct InitOptions {
  std::vector<std::string> roots;
  std::string project = "My Project";
  std::string album = "Selects";
  std::string base_url = "https://studio.example.com";
  bool force = false;
  bool base_url_given = false;
};

// Where FindConfigFile will look first (engine/util/config.cpp); empty without HOME.
std::string DefaultPath() {
  const EnvFn env = ProcessEnv();
  if (auto x = env("SHOTSYNC_CONFIG"); x && !x->empty()) return *x;
  const std::string folder = ConfigFolder(env);
  return folder.empty() ? "" : folder + "/config.toml";
}

// TOML basic string: quotes and backslashes escaped, control characters dropped.
std::string Quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out + "\"";
}

std::string Render(const InitOptions& o) {
  std::string t =
      "# shotsync profile (written by `shotsync init`). Every key is optional\n"
      "# unless marked; the values shown are the defaults. Check it with\n"
      "# `shotsync --config THIS check`.\n"
      "#\n"
      "# Tokens are NOT written here: export SHOOTBIN_API_TOKEN and\n"
      "# HEADSHOTPRO_API_KEY, or name a token_file / key_file (mode 600).\n"
      "\n"
      "# Manifest (what was sent), lock and owner files; by default one folder\n"
      "# per config file, ~/.local/state/shotsync/<config name>.\n"
      "# state_dir = \"~/.local/state/shotsync/config\"\n"
      "# Concurrent transfers (1-64).\n"
      "jobs = 8\n"
      "# Upload identical content found under two paths only once.\n"
      "dedupe = false\n"
      "# Seconds a transfer may make no progress before it is given up.\n"
      "stall_timeout = 30\n"
      "# Seconds to let the server finish a request cut off by a crash or a\n"
      "# reset before deciding the photo did not arrive and sending it again\n"
      "# (gateways time out after 60-100 s).\n"
      "reconcile_delay = 120\n"
      "# true: also send revisions of photos the client has approved (a revision\n"
      "# resets the approval and clears the client's annotations).\n"
      "allow_unapprove = false\n"
      "# \"warn\": files the server refuses (not an image, over 10 MB) are named\n"
      "# but do not make the exit code 1 (or acknowledge one: shotsync ignore PATH).\n"
      "on_rejected = \"fail\"\n"
      "# http:// is refused for anything but this machine (the token would\n"
      "# travel in clear text) unless this is true.\n"
      "allow_insecure_http = false\n"
      "# Extra CA bundle (PEM) for a server with its own CA; verification stays on.\n"
      "# ca_file = \"/etc/ssl/studio-ca.pem\"\n"
      "\n"
      "[shootbin]\n"
      "# Your Shootbin instance.\n"
      "base_url = " + Quoted(o.base_url) + "\n"
      "# Requests per minute the token may make (shootbin.md: 60 unless your plan says more).\n"
      "rpm = 60\n"
      "# token_file = \"~/.config/shotsync/shootbin.token\"\n"
      "\n"
      "[headshotpro]\n"
      "base_url = \"https://server.headshotpro.com/api/v2\"\n"
      "# 300 requests per minute; 1000 on Enterprise.\n"
      "rpm = 300\n"
      "# Where `shotsync pull` puts the team's headshots.\n"
      "dest = \"~/Pictures/headshots\"\n"
      "# main: the main variant of each photo; all: every variant.\n"
      "include = \"main\"\n"
      "# Path of each file under dest; must contain {photo}. Members who share a\n"
      "# name get their own folder (\"Jane Doe (jane@example.com)\").\n"
      "layout = \"{member}/{photo}.{ext}\"\n"
      "# key_file = \"~/.config/shotsync/headshotpro.key\"\n";
  std::vector<std::string> roots = o.roots.empty() ? std::vector<std::string>{"~/Photos/Exports"} : o.roots;
  for (std::string& root : roots) {
    // The config wants absolute paths (or ~/): a relative --root means here.
    if (root.rfind("~/", 0) != 0 && !std::filesystem::path(root).is_absolute()) {
      std::error_code ec;
      const auto abs = std::filesystem::absolute(root, ec);
      if (!ec) root = abs.lexically_normal().string();
      if (root.size() > 1 && root.back() == '/') root.pop_back();
    }
    t += "\n"
         "# A folder to keep in step with one Shootbin album (repeat [[roots]] for more).\n"
         "[[roots]]\n"
         "path = " + Quoted(root) + "\n"
         "# Project and album, by id or by name (required).\n"
         "project = " + Quoted(o.project) + "\n"
         "album = " + Quoted(o.album) + "\n"
         "# Create the project/album when missing.\n"
         "create = false\n"
         "# fnmatch globs to skip; hidden files and *.part are always skipped.\n"
         "ignore = [\"*.tmp\"]\n"
         "# The candidates, by file name (case-insensitive); the default is the\n"
         "# image formats Shootbin takes, so RAW files and sidecars are left out.\n"
         "# [\"*\"] sends every file.\n"
         "# include = [\"*.jpg\", \"*.jpeg\", \"*.png\", \"*.tif\", \"*.tiff\", \"*.webp\", \"*.heic\"]\n"
         "# JPEGs over Shootbin's 10 MiB limit are sent as a re-encoded copy that fits\n"
         "# (the file itself is never changed) instead of being rejected.\n"
         "# fit = true\n";
  }
  return t;
}

int RunInit(const GlobalOptions& options, const InitOptions& o) {
  const std::string path = options.config_path.value_or(DefaultPath());
  if (path.empty()) {
    options.log->Error("no HOME or XDG_CONFIG_HOME: say where with --config FILE");
    return kExitUsage;
  }
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    if (Status st = MakePrivateDirs(parent.string()); !st.ok()) {
      PrintError(options, st);
      return kExitUsage;
    }
  }
  // O_EXCL: never replace a config someone wrote (unless --force).
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (o.force ? O_TRUNC : O_EXCL);
  UniqueFd fd(::open(path.c_str(), flags, 0600));
  if (!fd) {
    if (errno == EEXIST) {
      options.log->Error(path + ": already exists; not overwritten (use --force to replace it)");
    } else {
      PrintError(options, Status::Io(path, errno));
    }
    return kExitUsage;
  }
  ::fchmod(fd.get(), 0600);
  const std::string text = Render(o);
  if (::write(fd.get(), text.data(), text.size()) != ssize_t(text.size()) || ::fsync(fd.get()) != 0) {
    PrintError(options, Status::Io(path, errno));
    return kExitUsage;
  }
  if (!options.quiet && !options.json) std::printf("wrote %s\n", path.c_str());
  // Given where and with what to reach the server, check it all now.
  auto config = LoadConfig(path, ProcessEnv());
  if (o.base_url_given && !o.roots.empty() && config.ok() && !config->shootbin.token.empty()) {
    options.log->AddSecret(config->shootbin.token);
    options.log->AddSecret(config->headshotpro.key);
    return PrintChecks(options, *config);
  }
  if (!options.quiet) {
    std::printf("next: set base_url and the roots (--base-url, --root), export SHOOTBIN_API_TOKEN, then run\n"
                "  shotsync --config %s check\n",
                path.c_str());
  }
  return kExitOk;
}

}  // namespace

Command AddInitCommand(CLI::App& app) {
  auto opts = std::make_shared<InitOptions>();
  auto* init = app.add_subcommand("init", "write a commented config file (mode 600) and say where");
  init->add_option("--root", opts->roots, "a folder to sync (repeatable; absolute or ~/...)");
  init->add_option("--project", opts->project, "Shootbin project for the roots (id or name)");
  init->add_option("--album", opts->album, "album in that project (id or name)");
  init->add_option("--base-url", opts->base_url, "your Shootbin instance")->each([opts](const std::string&) {
    opts->base_url_given = true;
  });
  init->add_flag("--force", opts->force, "replace an existing file");
  return {init, [opts](const GlobalOptions& g) { return RunInit(g, *opts); }};
}

}  // namespace shotsync::cli
