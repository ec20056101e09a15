// The task table (main thread only): one Task per listed photo variant, its
// destination path, and whether it needs downloading at all.
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "download/pull_run.hpp"
#include "shotsync/shootbin.hpp"  // SimpleCaseFold

namespace shotsync::download {

std::optional<std::uint64_t> FileSize(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return std::uint64_t(st.st_size);
}

void PullRun::AddModel(ModelState m, std::vector<HpPhoto> photos) {
  const std::size_t index = models_.size();
  models_.push_back(std::move(m));
  ++report_.models;
  if (!members_seen_.count(models_[index].member_id)) {
    members_seen_.insert(models_[index].member_id);
    ++report_.members;
  }
  for (HpPhoto& p : photos) {
    if (p.id.empty() || (!p.status.empty() && p.status != "active")) continue;
    for (auto& [variant, url] : p.urls) {
      if (include_ == "main" && variant != "main") continue;
      ++report_.listed;
      AddTask(index, p, variant, url);
    }
  }
}

void PullRun::AddTask(std::size_t model_index, const HpPhoto& p, const std::string& variant,
                      const std::string& url) {
  const ModelState& m = models_[model_index];
  auto t = std::make_unique<Task>();
  t->model = model_index;
  t->photo_id = p.id;
  t->variant = variant;
  t->remote_id = variant == "main" ? p.id : p.id + ":" + variant;
  t->url = url;
  t->expires_s = p.expires_s;
  t->lifetime = p.expires_s > 0 ? p.expires_s - m.listed_at : 0;
  t->started_gen = m.gen;
  if (!task_keys_.insert(t->remote_id).second) return;  // listed twice (favorites)

  const std::string& layout = config_.headshotpro.layout;
  const bool variant_in_layout = layout.find("{variant}") != std::string::npos;
  const std::string& member = m.member_folder.empty() ? m.member_name : m.member_folder;
  auto rel = ExpandLayout(
      layout, LayoutValues({m.member_id, member, m.email, m.team, m.id, m.title, p.id, variant, url},
                           variant_in_layout));
  Task& task = *t;
  tasks_.push_back(std::move(t));
  if (!rel.ok()) return Fail(task, rel.status().message());
  auto rec = db_.GetDownload(task.remote_id);
  if (!rec.ok()) return SetFatal(rec.status());
  const DownloadRecord* done = *rec && (*rec)->state == DownloadState::kDone ? &**rec : nullptr;
  // Downloaded into this destination before: the file stays where it is,
  // whatever the layout says today (the default changed, or a member's folder
  // name: a new member of the same name). Only new photos use the layout.
  task.final_path = done && PathInside(done->dest_path, dest_real_) ? done->dest_path : dest_real_ + "/" + *rel;
  task.dir = task.final_path.substr(0, task.final_path.rfind('/'));
  task.part_path = task.final_path + ".part";
  // Case-insensitively: on macOS, Windows or a NAS share, "A.jpg" would overwrite "a.jpg".
  if (!paths_.insert(SimpleCaseFold(task.final_path)).second) {
    return Fail(task, "its file name " + task.final_path + " is already taken by another photo of this run");
  }
  if (DropKnownOrPlanned(task, done)) return;
  Status dir = MakeDir(task.dir);
  if (!dir.ok()) {
    if (dir.code() == Code::kIo) return SetFatal(dir);
    return Fail(task, dir.message());
  }
  by_model_[model_index].push_back(&task);
  ready_.push_back(&task);
  Emit({PullEvent::kQueued, task.final_path, 0, ""});
}

bool PullRun::DropKnownOrPlanned(Task& task, const DownloadRecord* done_row) {
  // Incremental: "already here" only when the file is in THIS destination
  // with the size recorded for it. The one row per photo may have been
  // written by a pull into another folder (--dest): a row names the path it
  // was fetched to, and nothing else is taken on its word.
  const auto local_size = FileSize(task.final_path);
  if (done_row) {
    const DownloadRecord& done = *done_row;
    if (local_size && *local_size == done.size) {
      ++report_.skipped;
      task.state = Task::kDropped;
      // Fetched elsewhere, found here: the row follows this folder, so that
      // a later deletion here counts as "deleted locally".
      if (done.dest_path != task.final_path && !options_.dry_run) done_rows_.push_back(DoneRow(task, done.size));
      Emit({PullEvent::kSkipped, task.final_path, 0, "already here"});
      return true;
    }
    // Deleted from the folder it was fetched to: the user's choice, kept.
    // (Another size: damaged or replaced, fetched again like a missing file.)
    if (!local_size && done.dest_path == task.final_path && !options_.restore) {
      ++report_.not_restored;
      task.state = Task::kDropped;
      Emit({PullEvent::kSkipped, task.final_path, 0, "deleted locally; --restore fetches it again"});
      return true;
    }
  }
  if (!options_.dry_run && ClaimedElsewhere(task)) return true;
  if (options_.dry_run) {
    ++report_.planned;
    // A local file of that name (another size, or no row proves it) would be replaced.
    if (local_size) ++report_.planned_updates;
    task.state = Task::kDropped;
    Emit({PullEvent::kPlanned, task.final_path, 0, local_size ? "would update" : "would download"});
    return true;
  }
  return false;
}

// Creates the directory and checks (realpath) that it lies inside dest.
Status PullRun::MakeDir(const std::string& dir) {
  if (dirs_ok_.count(dir)) return Status::Ok();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Status(Code::kIo, "cannot create " + dir + ": " + ec.message() +
                                 " (partial files are kept for the next run)");
  }
  char buf[PATH_MAX];
  if (!::realpath(dir.c_str(), buf)) return Status::Io(dir, errno);
  if (!PathInside(buf, dest_real_)) {
    return Status(Code::kRejected, "refusing to write " + dir + ": it resolves outside the destination " + dest_real_);
  }
  dirs_ok_.insert(dir);
  return Status::Ok();
}

void PullRun::Fail(Task& t, const std::string& reason) {
  t.state = Task::kDropped;
  ReleaseShared(t);
  ++report_.failed;
  const std::string what = t.final_path.empty() ? "photo " + t.photo_id : t.final_path;
  report_.failures.push_back({what, reason});
  failed_rows_.push_back({t.remote_id, models_[t.model].member_id, models_[t.model].id, t.final_path, 0,
                          FileSize(t.part_path).value_or(0), DownloadState::kFailed, reason});
  Emit({PullEvent::kFailed, what, 0, reason});
}

void PullRun::Gone(Task& t, const std::string& reason) {
  t.state = Task::kDropped;
  ++report_.gone;
  ReleaseShared(t);
  ::unlink(t.part_path.c_str());
  Emit({PullEvent::kSkipped, t.final_path, 0, reason});
}

}  // namespace shotsync::download
