// Signed URLs (main thread): a URL close to its expiry, or one the CDN
// refused, is replaced by listing the model's photos again; every waiting
// task of that model gets its fresh URL from the same listing.
#include <unordered_map>

#include "download/pull_run.hpp"

namespace shotsync::download {

bool PullRun::NearExpiry(const Task& t) const {
  if (t.expires_s <= 0 || t.lifetime <= 0) return false;  // unknown, or a skewed clock: let the CDN judge
  return WallSeconds() >= t.expires_s - Margin(t.lifetime);
}

// Lists the model's photos again and gives its waiting tasks the fresh URLs.
Status PullRun::Refresh(std::size_t model_index, const void* cause) {
  ModelState& m = models_[model_index];
  auto photos = ListModelPhotos(m.id);
  if (!photos.ok()) return photos.status();
  ++report_.refreshes;
  ++m.gen;
  m.listed_at = WallSeconds();
  m.refresh_cause = cause;
  std::unordered_map<std::string, const HpPhoto*> by_id;
  for (const HpPhoto& p : *photos) {
    if (p.status.empty() || p.status == "active") by_id[p.id] = &p;
  }
  for (Task* t : by_model_[model_index]) {
    if (t->state != Task::kQueued) continue;
    auto it = by_id.find(t->photo_id);
    std::string url;
    if (it != by_id.end()) {
      for (const auto& [variant, u] : it->second->urls) {
        if (variant == t->variant) url = u;
      }
    }
    if (url.empty()) {
      Gone(*t, "no longer listed by the server (deleted)");
      continue;
    }
    t->url = url;
    t->expires_s = it->second->expires_s;
    t->lifetime = t->expires_s > 0 ? t->expires_s - m.listed_at : 0;
  }
  return Status::Ok();
}

// Handles a failed refresh of a task's model; false when the task cannot go on.
bool PullRun::RefreshFailed(Task& t, const Status& st) {
  if (st.code() == Code::kUnauthenticated || st.code() == Code::kForbidden) {
    SetFatal(st);
    return false;
  }
  if (st.code() == Code::kNotFound) {
    Gone(t, "model " + models_[t.model].id + " is gone: " + st.message());
    return false;
  }
  Retry(t, "fresh signed URLs: " + st.message());
  return false;
}

}  // namespace shotsync::download
