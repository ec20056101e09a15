// The lister thread: finished members -> their active models (or only the
// one of --model) -> photos (or favorites), each model sent to the main
// thread as one kModel event. It touches no task, no report and no manifest: it only calls the HeadshotPro
// client and pushes events (kModel, kListError, then kListDone).
#include <algorithm>
#include <future>
#include <set>
#include <unordered_map>

#include "download/pull_run.hpp"
#include "util/json_util.hpp"

namespace shotsync::download {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// folders: MemberFolders of every finished member, or empty when the layout does not need it.
ModelState MemberState(const HpMember& m, const std::string& model_id,
                       const std::map<std::string, std::string>& folders) {
  ModelState s;
  s.id = model_id;
  s.member_id = m.id;
  s.member_name = m.name;
  if (auto it = folders.find(m.id); it != folders.end()) s.member_folder = it->second;
  s.email = m.email;
  s.team = m.team_name;
  return s;
}

}  // namespace

bool PullRun::ListerStopping() const { return lister_stop_.load() || Stopping(false) || fatal_seen_.load(); }

void PullRun::PushError(Status st) {
  Event e;
  e.kind = Event::kListError;
  e.status = std::move(st);
  events_.Push(std::move(e));
}

void PullRun::ListAll() {
  ListModels();
  Event done;
  done.kind = Event::kListDone;
  events_.Push(std::move(done));
}

void PullRun::ListModels() {
  // Org-wide favorites serve a whole run; one model asks for its own favorite.
  const bool org_favorites = options_.favorites && options_.member.empty() && options_.model.empty();
  // Members and models are independent listings: ask for both at once (one round trip saved).
  const bool need_models = !org_favorites;
  auto models_future = std::async(std::launch::async, [this, need_models]() -> Result<std::vector<HpModel>> {
    if (!need_models) return std::vector<HpModel>();
    return client_.ListModels("active");
  });
  auto members = client_.ListMembers("finished");
  auto models = models_future.get();
  if (!members.ok()) return PushError(members.status());
  // Over every finished member, not only the chosen ones: `--member` names a
  // member's folder as a whole run does.
  std::map<std::string, std::string> folders;
  if (LayoutNeedsMemberFolders(config_.headshotpro.layout)) {
    std::vector<LayoutMember> all;
    for (const HpMember& m : *members) {
      if (!m.id.empty()) all.push_back({m.id, m.name, m.email});
    }
    folders = MemberFolders(all);
  }
  std::vector<HpMember> chosen;
  for (HpMember& m : *members) {
    if (m.id.empty()) continue;
    if (!options_.member.empty() && m.id != options_.member && Lower(m.email) != Lower(options_.member)) continue;
    chosen.push_back(std::move(m));
  }
  if (!options_.member.empty() && chosen.empty()) {
    return PushError(Status::Invalid("--member " + json::Printable(options_.member, 80) +
                                      " is not among the team members with finished headshots"));
  }
  std::unordered_map<std::string, const HpMember*> by_email;
  for (const HpMember& m : chosen) by_email[Lower(m.email)] = &m;
  if (org_favorites) return ListFavoritesOrgWide(by_email, folders);

  // Members -> models: the active models with the member's email, plus the member's modelId.
  if (!models.ok()) return PushError(models.status());
  std::vector<ModelState> todo;
  std::set<std::string> have;
  for (const HpModel& md : *models) {
    auto it = by_email.find(Lower(md.email));
    if (it == by_email.end() || md.id.empty() || !have.insert(md.id).second) continue;
    ModelState s = MemberState(*it->second, md.id, folders);
    s.title = md.title;
    if (s.team.empty()) s.team = md.team_name;
    todo.push_back(std::move(s));
  }
  for (const HpMember& m : chosen) {
    if (!m.model_id.empty() && have.insert(m.model_id).second) todo.push_back(MemberState(m, m.model_id, folders));
  }
  if (!options_.model.empty()) {
    // One model (`watch` after a webhook): resolved exactly as a whole run
    // resolves it, so it lands at the same path, and only its photos are
    // listed. A model that is not an active model of a finished member (of
    // --member) is left alone, as a whole run leaves it: the layout needs
    // its member, and the team listing can lag the webhook (a later run or
    // poll fetches it). Reported as not found: a failure, not a fatal error.
    std::erase_if(todo, [&](const ModelState& s) { return s.id != options_.model; });
    if (todo.empty()) {
      return PushError(Status::NotFound("model " + json::Printable(options_.model, 80) +
                                        " is not an active model of a team member with finished headshots"));
    }
  }
  for (ModelState& s : todo) {
    if (ListerStopping()) return;
    Event e;
    e.kind = Event::kModel;
    auto listed = ListModelPhotos(s.id);
    if (!listed.ok()) {
      if (listed.status().code() == Code::kNotFound) {
        PushError(listed.status());  // that model is gone: report, go on
        continue;
      }
      return PushError(listed.status());
    }
    e.photos = std::move(*listed);
    s.listed_at = WallSeconds();
    e.model = std::move(s);
    events_.Push(std::move(e));
  }
}

// Org-wide favorites: one listing with member context.
void PullRun::ListFavoritesOrgWide(const std::unordered_map<std::string, const HpMember*>& by_email,
                                   const std::map<std::string, std::string>& folders) {
  auto favs = client_.ListFavorites();
  if (!favs.ok()) return PushError(favs.status());
  std::map<std::string, Event> per_model;
  for (HpFavorite& f : *favs) {
    auto it = by_email.find(Lower(f.email));
    if (it == by_email.end()) continue;  // not a finished member
    Event& e = per_model[f.model_id];
    if (e.model.id.empty()) e.model = MemberState(*it->second, f.model_id, folders);
    e.photos.push_back(std::move(f.photo));
  }
  for (auto& [id, e] : per_model) {
    e.kind = Event::kModel;
    e.model.listed_at = WallSeconds();
    events_.Push(std::move(e));
  }
}

// Also called on the main thread, by Refresh: it uses only the client and options_.
Result<std::vector<HpPhoto>> PullRun::ListModelPhotos(const std::string& model_id) {
  if (options_.favorites) {
    auto fav = client_.Favorite(model_id);
    if (!fav.ok()) return fav.status();
    std::vector<HpPhoto> v;
    if (*fav) v.push_back(std::move(**fav));
    return v;
  }
  return client_.ListPhotos(model_id, include_);
}

}  // namespace shotsync::download
