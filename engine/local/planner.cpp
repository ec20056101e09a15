// The planner's entry points: BuildPlan (see plan_run.cpp for the run),
// LocateFile (a push's command-line names) and ActionName.
#include "shotsync/planner.hpp"

#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "local/plan_run.hpp"
#include "shotsync/scanner.hpp"

namespace shotsync {

std::string_view ActionName(Action a) noexcept {
  switch (a) {
    case Action::kUpload: return "upload";
    case Action::kRevision: return "revision";
    case Action::kSkip: return "skip";
    case Action::kRejected: return "rejected";
    case Action::kAdopt: return "adopt";
    case Action::kMove: return "move";
    case Action::kConflict: return "conflict";
  }
  return "?";
}

Result<PlanTarget> LocateFile(const Config& config, const std::string& path) {
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) return Status::Invalid(path + ": " + ec.message());
  // The file itself is not resolved (it may be a symlink the walk would
  // skip); its folder is, as are the roots.
  const std::filesystem::path dir = std::filesystem::canonical(abs.parent_path(), ec);
  if (ec) return Status::NotFound(path + ": " + ec.message());
  const std::string file = (dir / abs.filename()).string();
  if (::access(file.c_str(), F_OK) != 0) return Status::Io(path, errno);
  std::optional<PlanTarget> best;
  std::size_t best_len = 0;
  for (std::size_t i = 0; i < config.roots.size(); ++i) {
    std::error_code rec;
    const std::string root = std::filesystem::canonical(config.roots[i].path, rec).string();
    if (rec || root.size() < best_len) continue;
    if (file.size() > root.size() + 1 && file.compare(0, root.size(), root) == 0 &&
        (root.back() == '/' || file[root.size()] == '/')) {
      best = PlanTarget{i, file.substr(root.size() + (root.back() == '/' ? 0 : 1))};
      best_len = root.size();
    }
  }
  if (!best) return Status::Invalid(path + ": not under any configured root (see roots in the config)");
  // Each folder on the way and the name itself against the root's ignore rules.
  const ScanOptions scan{config.roots[best->root_index].ignore, config.roots[best->root_index].include};
  std::string_view rel = best->rel_path;
  for (std::size_t start = 0;;) {
    const std::size_t slash = rel.find('/', start);
    const std::string_view dir = start == 0 ? std::string_view() : rel.substr(0, start - 1);
    const std::string_view name = rel.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (IsIgnored(dir, name, scan)) {
      return Status::Invalid(path + ": ignored by the root's ignore rules (hidden, *.part or an ignore glob)");
    }
    if (slash == std::string_view::npos) {
      if (!IsIncluded(name, scan)) {
        return Status::Invalid(path + ": not an image type the root includes (roots.include: RAW files, sidecars and "
                               "documents are left out)");
      }
      break;
    }
    start = slash + 1;
  }
  return *best;
}

Result<PlanStats> BuildPlan(const Config& config, Manifest& manifest, const PlanOptions& options,
                            const PlanItemFn& on_item, const PlanErrorFn& on_error) {
  local::PlanRun run(config, manifest, options, on_item, on_error);
  return run.Run();
}

}  // namespace shotsync
