// Fuzzes every parser of HeadshotPro answers (include/shotsync/headshotpro.hpp):
// the envelope check, the members/models/photos/favorites pages, the
// favorite, credits and invites answers, ParseIso (photo expiry), the invite
// CSV (engine/team.cpp), the Content-Range / Content-Length of downloads, and
// the naming of downloaded files (engine/pull.cpp): whatever names the server
// sends, the file lands inside the destination.
//
// Input: byte 0 picks the HTTP status, byte 1 the layout; then one line used
// as a model id, one line used as a layout (when byte 1 says so) and as a
// header value, and the rest is the body every parser sees.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.hpp"
#include "shotsync/headshotpro.hpp"
#include "shotsync/pull.hpp"
#include "shotsync/transfer.hpp"

using namespace shotsync;
using fuzz::Violated;

namespace {

constexpr const char* kKeySource = "HEADSHOTPRO_API_KEY";

long StatusOf(std::uint8_t b) {
  static constexpr long kCommon[] = {200, 201, 200, 204, 301, 400, 401, 402,
                                     403, 404, 409, 422, 429, 500, 503, 200};
  if (b < 128) return kCommon[b % 16];
  return 100 + long(b - 128) * 4;  // 100..608
}

void CheckMessage(const Status& st) {
  if (st.ok()) return;
  if (st.message().empty()) Violated("empty error message");
  if (!fuzz::Printable(st.message())) Violated("error message is not one printable line", st.message());
}

void CheckComponent(std::string_view c) {
  if (c.empty() || c == "." || c == ".." || c.front() == '.' || c.find('/') != std::string_view::npos ||
      c.find('\\') != std::string_view::npos || !fuzz::Printable(c)) {
    Violated("SanitizeComponent gave an unsafe name", c);
  }
}

// The file a download goes to is dest + "/" + this: it must stay inside dest.
void CheckRelative(std::string_view rel) {
  if (rel.empty() || rel.front() == '/') Violated("layout gives an absolute or empty path", rel);
  if (rel.find('\0') != std::string_view::npos) Violated("layout gives a path with NUL", rel);
  std::size_t start = 0;
  while (start <= rel.size()) {
    auto end = rel.find('/', start);
    if (end == std::string_view::npos) end = rel.size();
    const std::string_view seg = rel.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") Violated("layout gives an empty, . or .. segment", rel);
    if (seg.size() > 255) Violated("layout gives a segment over 255 bytes", rel);
    start = end + 1;
  }
}

// What pull.cpp's AddTask does with the names of a member, model and photo (the same LayoutValues).
void Place(std::string_view layout, const HpMember& m, const HpModel& model, const HpPhoto& p) {
  const bool variant_in_layout = layout.find("{variant}") != std::string_view::npos;
  for (const auto& [variant, url] : p.urls) {
    const std::map<std::string, std::string> vars = shotsync::LayoutValues(
        {m.id, m.name, m.email, m.team_name, model.id, model.title, p.id, variant, url}, variant_in_layout);
    for (const auto& [name, value] : vars) {
      if (name != "photo") CheckComponent(value);
    }
    auto rel = ExpandLayout(layout, vars);
    if (rel.ok()) {
      CheckRelative(*rel);
    } else {
      CheckMessage(rel.status());
    }
  }
}

void CheckPhoto(const HpPhoto& p) {
  if (!std::isfinite(p.expires_s)) Violated("expiry is not finite", p.expires_at);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  HttpResponse r;
  r.status = StatusOf(in.Byte());
  const std::uint8_t layout_choice = in.Byte();
  const std::string model_id(in.Line());
  const std::string_view line2 = in.Line();
  r.body = std::string(in.Rest());
  const std::string_view body = r.body;

  static const char* kLayouts[] = {"{member}/{model}/{photo}.{ext}", "{team}/{email}/{model_title}/{photo}_{variant}.{ext}",
                                   "{member_id}-{photo}.{ext}", nullptr};
  const std::string layout = kLayouts[layout_choice % 4] ? kLayouts[layout_choice % 4] : std::string(line2);

  // The envelope.
  const HpAnswer a = CheckHpAnswer(r, "fuzzing", kKeySource);
  if (a.status.ok() && !(r.status >= 200 && r.status < 300)) Violated("CheckHpAnswer ok for a non-2xx");
  CheckMessage(a.status);
  if (!fuzz::Printable(a.code)) Violated("answer code is not printable", a.code);

  // Pages (a fresh `seen` each, then the same one again: all duplicates).
  std::set<std::string> seen;
  auto members = ParseMembersPage(body, "members", seen);
  CheckMessage(members.status());
  auto models = ParseModelsPage(body, "models", seen);
  CheckMessage(models.status());
  std::set<std::string> seen_photos;
  auto photos = ParsePhotosPage(body, model_id, "photos", seen_photos);
  CheckMessage(photos.status());
  if (photos.ok()) {
    if (photos->items.size() > photos->returned) Violated("more photos than the page held");
    auto again = ParsePhotosPage(body, model_id, "photos", seen_photos);
    if (again.ok() && !again->items.empty()) Violated("de-duplication let an id through twice");
  }
  std::set<std::string> seen_favorites;
  auto favorites = ParseFavoritesPage(body, "favorites", seen_favorites);
  CheckMessage(favorites.status());
  auto favorite = ParseFavoriteAnswer(body, model_id, "favorite");
  CheckMessage(favorite.status());
  CheckMessage(ParseCreditsAnswer(body, "credits").status());
  auto invites = ParseInvitesAnswer(body, "invites");
  CheckMessage(invites.status());

  // Expiry, and where each photo would be written.
  const HpMember member = members.ok() && !members->items.empty() ? members->items.front() : HpMember{};
  const HpModel model = models.ok() && !models->items.empty() ? models->items.front() : HpModel{.id = model_id};
  if (photos.ok()) {
    for (const HpPhoto& p : photos->items) {
      CheckPhoto(p);
      Place(layout, member, model, p);
    }
  }
  if (favorites.ok()) {
    for (const HpFavorite& f : favorites->items) {
      CheckPhoto(f.photo);
      Place(layout, HpMember{.id = f.model_id, .email = f.email, .name = f.name}, model, f.photo);
    }
  }
  if (favorite.ok() && *favorite) {
    CheckPhoto(**favorite);
    Place(layout, member, model, **favorite);
  }
  for (std::string_view s : {body.substr(0, 64), line2}) {
    if (auto t = HeadshotProClient::ParseIso(s); t && !std::isfinite(*t)) Violated("ParseIso not finite", s);
  }

  // Names straight from the input, with every fallback and length.
  for (std::size_t max : {std::size_t(0), std::size_t(8), std::size_t(100), std::size_t(1000)}) {
    CheckComponent(SanitizeComponent(line2, model_id, max));
  }
  (void)UrlExtension(line2);

  // Download lengths.
  (void)RangeTotal(std::string(line2));
  r.headers.emplace("content-length", std::string(line2));
  (void)ContentLength(r);

  // The invite CSV.
  std::vector<std::string> problems;
  std::set<std::string> emails;
  for (const InviteRequest& i : ParseInviteCsv(body, &problems)) {
    if (i.line < 1 || i.email.empty() || i.email.find('@') == std::string::npos || !fuzz::Printable(i.email)) {
      Violated("invite with an implausible email", i.email);
    }
    std::string lower = i.email;
    for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (!emails.insert(lower).second) Violated("invite listed twice", i.email);
  }
  for (const std::string& p : problems) {
    if (p.rfind("line ", 0) != 0 || !fuzz::Printable(p)) Violated("unprintable CSV problem", p);
  }
  return 0;
}
