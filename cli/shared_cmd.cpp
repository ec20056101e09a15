// shotsync shared init | import | status: studio mode's PostgreSQL store
// (docs/studio.md).
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "json_out.hpp"

namespace shotsync::cli {
namespace {

// The config and the shared store it names (schema checked unless `init`).
struct Studio {
  Config config;
  std::unique_ptr<SharedStore> store;
};

std::optional<Studio> OpenStudio(const GlobalOptions& options, bool check_schema, int* exit_code) {
  auto config = LoadConfigFor(options);
  if (!config.ok()) {
    PrintError(options, config.status());
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  if (config->shared.url.empty()) {
    PrintError(options, Status::Invalid("no shared store: set [shared] url in " + config->source +
                                        " or SHOTSYNC_SHARED_URL (postgresql://user@host:port/dbname)"));
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  auto store = OpenSharedFor(*config, check_schema);
  if (!store.ok()) {
    PrintError(options, store.status());
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  return Studio{std::move(*config), std::move(*store)};
}

int RunInit(const GlobalOptions& options) {
  int failed = kExitOk;
  auto studio = OpenStudio(options, /*check_schema=*/false, &failed);
  if (!studio) return FailedEarly(options, "shared", failed);
  auto from = studio->store->Init();
  if (!from.ok()) {
    const int code = ExitCodeFor(from.status()) == kExitPartial ? kExitUsage : ExitCodeFor(from.status());
    return FailWith(options, "shared", from.status(), code);
  }
  if (options.json) {
    JsonReport json("shared");
    json.Set({{"action", "init"}, {"schema_version_before", *from}, {"store_schema_version", kSharedSchemaVersion}});
    json.Print(kExitOk);
  } else if (!options.quiet) {
    const std::string what = *from == kSharedSchemaVersion
                                 ? "is current"
                                 : (*from == 0 ? "created" : "migrated from version " + std::to_string(*from));
    std::printf("shared store %s: schema version %d %s\n", studio->store->display().c_str(), kSharedSchemaVersion,
                what.c_str());
  }
  return kExitOk;
}

// Moves what this host's manifest knows about the server into the shared
// store: every file bound to a photo (album, name, photo id, hash, size) and
// every finished download of the configured destination.
int RunImport(const GlobalOptions& options) {
  int failed = kExitOk;
  auto studio = OpenStudio(options, /*check_schema=*/true, &failed);
  if (!studio) return FailedEarly(options, "shared", failed);
  auto manifest = OpenManifestFor(studio->config);
  if (!manifest.ok()) {
    return FailWith(options, "shared", manifest.status(), ExitCodeFor(manifest.status()));
  }
  auto roots = (*manifest)->Roots();
  if (!roots.ok()) {
    return FailWith(options, "shared", roots.status(), ExitCodeFor(roots.status()));
  }
  std::int64_t photos = 0, downloads = 0, unpinned = 0;
  for (const RootRecord& root : *roots) {
    if (root.remote_album_id == 0) {
      ++unpinned;  // never sent from here: nothing to import
      continue;
    }
    std::vector<SharedPhoto> batch;
    Status st = (*manifest)->ForEachFile(root.id, [&](const FileRecord& f) {
      if (!f.remote_photo_id) return;
      batch.push_back({root.remote_album_id, f.rel_path, *f.remote_photo_id, f.remote_hash, f.size});
    });
    if (st.ok()) st = studio->store->Register(batch);
    if (!st.ok()) {
      return FailWith(options, "shared", st, kExitInterrupted);  // each batch is one transaction: run it again
    }
    photos += std::int64_t(batch.size());
  }
  auto done = (*manifest)->DoneDownloads();
  const std::string& dest = studio->config.headshotpro.dest;
  if (done.ok() && !done->empty() && !dest.empty()) {
    auto dest_id = DestinationId(dest);
    Status st = dest_id.status();
    const std::string prefix = dest + "/";
    for (const DownloadRecord& d : *done) {
      if (!st.ok()) break;
      if (!d.dest_path.starts_with(prefix)) continue;  // pulled into another folder
      const std::string rel = d.dest_path.substr(prefix.size());
      constexpr std::string_view kImport = "shared-import";
      auto claim = studio->store->ClaimDownload(*dest_id, d.remote_id, rel, kImport);
      st = claim.status();
      if (st.ok()) st = studio->store->FinishDownload(*dest_id, d.remote_id, d.size, kImport);
      if (st.ok()) ++downloads;
    }
    if (!st.ok()) return FailWith(options, "shared", st, kExitInterrupted);
  }
  if (options.json) {
    JsonReport json("shared");
    json.Set({{"action", "import"}, {"photos", photos}, {"downloads", downloads}, {"roots_never_sent", unpinned}});
    json.Print(kExitOk);
  } else if (!options.quiet) {
    std::printf("imported into %s: %lld photos, %lld downloads (%lld roots never sent from this host)\n",
                studio->store->display().c_str(), (long long)photos, (long long)downloads, (long long)unpinned);
  }
  return kExitOk;
}

}  // namespace

Command AddSharedCommand(CLI::App& app) {
  auto* shared = app.add_subcommand("shared", "studio mode: the PostgreSQL store several hosts share");
  shared->require_subcommand(1);
  auto* init = shared->add_subcommand("init", "create the shared schema, or migrate it to this version");
  auto* import = shared->add_subcommand("import", "copy what this host's manifest knows of the server into it");
  return {shared, [init, import](const GlobalOptions& g) {
            if (init->parsed()) return RunInit(g);
            if (import->parsed()) return RunImport(g);
            return int(kExitUsage);
          }};
}

}  // namespace shotsync::cli
