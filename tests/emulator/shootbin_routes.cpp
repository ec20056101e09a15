// Shootbin routes (../shared/api/shootbin.md) under /api/...
// Uploads are streamed: each file part is hashed (SHA-256) and counted as it
// arrives; only its first and last 64 bytes are kept (for image sniffing),
// plus, with --store DIR, a copy on disk.
#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <cctype>
#include <chrono>
#include <ctime>
#include <fstream>
#include <memory>
#include <optional>

#include "emulator.hpp"
#include "jpeg_synth.hpp"
#include "shotsync/imagetype.hpp"

namespace emu {
namespace {

constexpr std::uint64_t kMaxUpload = 10ull * 1024 * 1024;

std::string IsoNow() {
  const auto now = std::chrono::system_clock::now();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  std::time_t t = std::time_t(us / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%06lldZ", buf, static_cast<long long>(us % 1000000));
  return out;
}

std::string Base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -6;
  for (unsigned char c : in) {
    val = (val << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(t[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(t[((val << 8) >> (bits + 8)) & 0x3F]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

std::optional<std::string> Unbase64(const std::string& in) {
  std::string out;
  int val = 0, bits = -8;
  for (unsigned char c : in) {
    if (c == '=') break;
    const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char* p = std::strchr(t, c);
    if (!p || c == 0) return std::nullopt;
    val = (val << 6) + int(p - t);
    bits += 6;
    if (bits >= 0) {
      out.push_back(char((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

struct Revision {
  int number;
  std::string original_filename, uploaded_at;
  int archived_annotations;
};
struct Annotation {
  std::int64_t id;
  std::string comment;
  double x, y;
  std::string created_at;
};
struct Photo {
  std::int64_t id = 0, album_id = 0;
  std::string title, original_filename, sha256, created_at, updated_at;
  std::optional<std::string> description, approved_at, revision_uploaded_at;
  std::uint64_t size = 0;
  std::vector<Revision> revisions;
  std::vector<Annotation> annotations;
  Clock::time_point processed_at{};  // last revision stored; busy for revision_processing_ms after
  bool processing = false;
};
struct Album {
  std::int64_t id = 0, project_id = 0;
  std::string name, created_at;
  std::optional<std::string> description;
};
struct Project {
  std::int64_t id = 0;
  std::string name, owner = "owner", created_at;
  bool locked = false;
  bool personal_team = false;
};
struct User {
  std::int64_t id;
  std::string name, email, created_at;
};

struct State {
  std::mutex mu;
  std::map<std::int64_t, Project> projects;
  std::map<std::int64_t, Album> albums;
  std::map<std::int64_t, Photo> photos;
  std::map<std::int64_t, User> users;
  std::set<std::string> stored;  // project|original_filename|sha256 for duplicate detection
  std::int64_t next_project = 1, next_album = 1, next_photo = 1, next_annotation = 1, next_user = 2;
  std::uint64_t next_tmp = 1;  // temporary upload files under --store (never reset)

  void Reset() {
    projects.clear();
    albums.clear();
    photos.clear();
    users.clear();
    stored.clear();
    next_project = next_album = next_photo = next_annotation = 1;
    next_user = 2;
    const std::string now = IsoNow();
    projects[1] = Project{1, "Demo", "owner", now, false, false};
    albums[1] = Album{1, 1, "Main", now, std::nullopt};
    users[1] = User{1, "Owner", "owner@example.com", now};
    next_project = next_album = 2;
  }
};

Json ProjectJson(const Project& p) {
  return {{"id", p.id}, {"name", p.name}, {"personal_team", p.personal_team},
          {"created_at", p.created_at}, {"updated_at", p.created_at}};
}
Json AlbumJson(const State& s, const Album& a) {
  std::int64_t count = 0;
  for (const auto& [id, p] : s.photos) count += p.album_id == a.id;
  return {{"id", a.id}, {"team_id", a.project_id}, {"name", a.name},
          {"description", a.description ? Json(*a.description) : Json(nullptr)},
          {"photos_count", count}, {"created_at", a.created_at}, {"updated_at", a.created_at}};
}
Json Opt(const std::optional<std::string>& v) { return v ? Json(*v) : Json(nullptr); }
Json AnnotationJson(const Annotation& a) {
  return {{"id", a.id}, {"comment", a.comment}, {"x_position", a.x}, {"y_position", a.y},
          {"created_at", a.created_at}};
}
Json PhotoJson(const std::string& base, const Photo& p, bool full) {
  Json j = {{"id", p.id}, {"album_id", p.album_id}, {"title", p.title},
            {"description", Opt(p.description)}, {"tags", Json::array()},
            {"original_filename", p.original_filename}, {"approved_at", Opt(p.approved_at)},
            {"revision_uploaded_at", Opt(p.revision_uploaded_at)},
            {"has_annotations", !p.annotations.empty()},
            {"image_url", base + "/photos/" + std::to_string(p.id) + ".jpg"},
            {"created_at", p.created_at}, {"updated_at", p.updated_at}, {"rejected_at", nullptr},
            {"rating", nullptr}, {"file_size", p.size}, {"checksum_sha256", p.sha256}};
  if (full) {
    Json anns = Json::array(), revs = Json::array();
    for (const auto& a : p.annotations) anns.push_back(AnnotationJson(a));
    for (const auto& r : p.revisions) {
      revs.push_back({{"revision_number", r.number}, {"original_filename", r.original_filename},
                      {"uploaded_at", r.uploaded_at}, {"archived_annotations_count", r.archived_annotations},
                      {"image_url", base + "/photos/" + std::to_string(p.id) + "/r" + std::to_string(r.number) + ".jpg"}});
    }
    j["annotations"] = anns;
    j["revisions"] = revs;
  }
  return j;
}

void Send(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}
void Msg(httplib::Response& res, int status, const std::string& message) {
  Send(res, status, Json{{"message", message}});
}
void Invalid(httplib::Response& res, const std::string& field, const std::string& message) {
  Send(res, 422, Json{{"message", message}, {"errors", {{field, {message}}}}});
}

std::int64_t Id(const httplib::Request& req, std::size_t i) {
  try {
    return std::stoll(req.matches[i].str());
  } catch (const std::exception&) {
    return -1;
  }
}

std::string Hex(const unsigned char* md, unsigned int len) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string Sha256Of(const void* data, std::size_t n) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data, n, md, &len, EVP_sha256(), nullptr);
  return Hex(md, len);
}

// Streams one multipart upload: fields into memory (small), the file part
// hashed and counted, its two ends kept for sniffing.
struct Upload {
  std::map<std::string, std::string> fields;
  std::string file_field, filename;
  std::uint64_t size = 0;
  std::string head, tail;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha{EVP_MD_CTX_new(), EVP_MD_CTX_free};
  std::unique_ptr<std::ofstream> store;
  bool has_file = false;

  std::string Sha256() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(sha.get(), md, &len);
    return Hex(md, len);
  }
};

// Reads the request body. `file_names` are the accepted file field names.
// Returns false when the connection was reset on purpose (fault).
bool ReadUpload(Emulator& emu, const httplib::Request& req, const httplib::ContentReader& reader,
                const std::vector<std::string>& file_names, Upload& up, bool reset_mid_body,
                const std::string& store_path) {
  EVP_DigestInit_ex(up.sha.get(), EVP_sha256(), nullptr);
  std::string current;
  bool current_is_file = false;
  std::uint64_t total = 0;
  const std::uint64_t reset_at = 1 + std::uint64_t(std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10) / 2);
  bool was_reset = false;
  auto on_bytes = [&](const char* data, std::size_t n) -> bool {
    total += n;
    if (reset_mid_body && total >= reset_at) {
      emu.ResetConnection(req);
      was_reset = true;
      return false;
    }
    if (current_is_file) {
      up.size += n;
      EVP_DigestUpdate(up.sha.get(), data, n);
      if (up.head.size() < shotsync::kSniffHeadBytes) {
        up.head.append(data, std::min(n, shotsync::kSniffHeadBytes - up.head.size()));
      }
      up.tail.append(data, n);
      if (up.tail.size() > shotsync::kSniffTailBytes) up.tail.erase(0, up.tail.size() - shotsync::kSniffTailBytes);
      if (up.store) up.store->write(data, std::streamsize(n));
    } else {
      std::string& v = up.fields[current];
      if (v.size() < 65536) v.append(data, std::min<std::size_t>(n, 65536 - v.size()));
    }
    return true;
  };
  bool ok;
  if (req.is_multipart_form_data()) {
    ok = reader(
        [&](const httplib::MultipartFormData& part) {
          current = part.name;
          current_is_file = !up.has_file &&
                            std::find(file_names.begin(), file_names.end(), part.name) != file_names.end();
          if (current_is_file) {
            up.has_file = true;
            up.file_field = part.name;
            up.filename = part.filename;
            if (!store_path.empty()) up.store = std::make_unique<std::ofstream>(store_path, std::ios::binary);
          }
          return true;
        },
        on_bytes);
  } else {
    current = "";
    ok = reader(on_bytes);
  }
  {
    const std::uint64_t received = total;
    emu.WithStats([&](Stats& s) { s.bytes_received += received; });
  }
  return ok && !was_reset;
}

}  // namespace

void RegisterShootbin(Emulator& emu) {
  auto st = std::make_shared<State>();
  st->Reset();
  auto& svr = emu.server();
  const std::string base = "";

  auto admit = [&emu](const httplib::Request& req, httplib::Response& res) {
    return emu.Admit(Service::kShootbin, req, res);
  };
  auto has_scope = [](const TokenInfo& t, const char* scope) { return t.scopes.count(scope) > 0; };

  svr.Get("/api/projects", [=](const httplib::Request& req, httplib::Response& res) {
    if (!admit(req, res)) return;
    std::lock_guard lock(st->mu);
    Json out = Json::array();
    for (auto& [id, p] : st->projects) out.push_back(ProjectJson(p));
    Send(res, 200, out);
  });

  svr.Post("/api/projects", [=](const httplib::Request& req, httplib::Response& res) {
    auto tok = admit(req, res);
    if (!tok) return;
    if (!has_scope(*tok, "create")) return Msg(res, 403, "This API token does not have permission to create projects.");
    std::string name;
    Json b = Json::parse(req.body, nullptr, false);
    if (!b.is_discarded() && b.is_object() && b.contains("name") && b["name"].is_string()) name = b["name"];
    else if (req.has_param("name")) name = req.get_param_value("name");
    else if (req.has_file("name")) name = req.get_file_value("name").content;
    if (name.empty()) return Invalid(res, "name", "The name field is required.");
    if (name.size() > 255) return Invalid(res, "name", "The name may not be greater than 255 characters.");
    std::lock_guard lock(st->mu);
    Project p{st->next_project++, name, tok->user, IsoNow(), false, false};
    st->projects[p.id] = p;
    Send(res, 201, ProjectJson(p));
  });

  svr.Get(R"(/api/projects/(\d+)/albums)", [=](const httplib::Request& req, httplib::Response& res) {
    if (!admit(req, res)) return;
    std::lock_guard lock(st->mu);
    const auto pid = Id(req, 1);
    if (!st->projects.count(pid)) return Msg(res, 404, "Not Found.");
    Json out = Json::array();
    for (auto it = st->albums.rbegin(); it != st->albums.rend(); ++it) {  // newest first
      if (it->second.project_id == pid) out.push_back(AlbumJson(*st, it->second));
    }
    Send(res, 200, out);
  });

  svr.Post(R"(/api/projects/(\d+)/albums)", [=](const httplib::Request& req, httplib::Response& res) {
    auto tok = admit(req, res);
    if (!tok) return;
    std::lock_guard lock(st->mu);
    const auto pid = Id(req, 1);
    auto p = st->projects.find(pid);
    if (p == st->projects.end()) return Msg(res, 404, "Not Found.");
    if (!has_scope(*tok, "create")) return Msg(res, 403, "This API token does not have permission to create albums.");
    if (p->second.locked) return Msg(res, 403, "This project is locked for review.");
    std::string name, desc;
    if (req.has_file("name")) name = req.get_file_value("name").content;
    else if (req.has_param("name")) name = req.get_param_value("name");
    else {
      Json b = Json::parse(req.body, nullptr, false);
      if (!b.is_discarded() && b.is_object() && b.contains("name") && b["name"].is_string()) name = b["name"];
    }
    if (req.has_file("description")) desc = req.get_file_value("description").content;
    else if (req.has_param("description")) desc = req.get_param_value("description");
    else {
      Json b = Json::parse(req.body, nullptr, false);
      if (!b.is_discarded() && b.is_object() && b.contains("description") && b["description"].is_string()) {
        desc = b["description"];
      }
    }
    if (name.empty()) return Invalid(res, "name", "The name field is required.");
    if (name.size() > 255) return Invalid(res, "name", "The name may not be greater than 255 characters.");
    Album a{st->next_album++, pid, name, IsoNow(), desc.empty() ? std::nullopt : std::optional(desc)};
    st->albums[a.id] = a;
    Send(res, 201, AlbumJson(*st, a));
  });

  svr.Get(R"(/api/projects/(\d+)/albums/(\d+)/photos)", [=, &emu](const httplib::Request& req, httplib::Response& res) {
    if (!admit(req, res)) return;
    int per_page = 50;
    if (req.has_param("per_page")) {
      try {
        per_page = std::stoi(req.get_param_value("per_page"));
      } catch (const std::exception&) {
        return Invalid(res, "per_page", "The per page must be an integer.");
      }
      if (per_page < 1) return Invalid(res, "per_page", "The per page must be at least 1.");
      per_page = std::min(per_page, 100);
    }
    std::int64_t below = INT64_MAX;
    if (req.has_param("cursor")) {
      auto decoded = Unbase64(req.get_param_value("cursor"));
      Json c = decoded ? Json::parse(*decoded, nullptr, false) : Json();
      if (!decoded || c.is_discarded() || !c.is_object() || !c.contains("id") || !c["id"].is_number_integer()) {
        return Msg(res, 422, "Invalid cursor.");
      }
      below = c["id"].get<std::int64_t>();
    }
    std::lock_guard lock(st->mu);
    const auto pid = Id(req, 1), aid = Id(req, 2);
    auto a = st->albums.find(aid);
    if (!st->projects.count(pid) || a == st->albums.end() || a->second.project_id != pid) {
      return Msg(res, 404, "Not Found.");
    }
    Json data = Json::array();
    std::int64_t last = 0;
    bool more = false;
    // Ids below the cursor, newest (highest id) first.
    for (auto it = std::make_reverse_iterator(st->photos.lower_bound(below)); it != st->photos.rend(); ++it) {
      if (it->second.album_id != aid) continue;
      if (int(data.size()) == per_page) {
        more = true;
        break;
      }
      data.push_back(PhotoJson(emu.BaseUrl(), it->second, false));
      last = it->first;
    }
    Json out = {{"data", data}, {"photos", data},
                {"next_cursor", more ? Json(Base64(Json{{"id", last}}.dump())) : Json(nullptr)},
                {"has_more", more}, {"per_page", per_page}};
    Send(res, 200, out);
  });

  // Upload a photo / a revision: streamed bodies.
  auto upload = [=, &emu](const httplib::Request& req, httplib::Response& res,
                          const httplib::ContentReader& reader, bool revision) {
    auto tok = admit(req, res);
    Upload up;
    if (!tok) {
      ReadUpload(emu, req, reader, {}, up, false, "");
      return;
    }
    const auto pid = Id(req, 1), aid = Id(req, 2), photo_id = revision ? Id(req, 3) : 0;
    std::string refusal;
    int refusal_status = 0;
    {
      std::lock_guard lock(st->mu);
      auto p = st->projects.find(pid);
      auto a = st->albums.find(aid);
      if (p == st->projects.end() || a == st->albums.end() || a->second.project_id != pid ||
          (revision && (!st->photos.count(photo_id) || st->photos[photo_id].album_id != aid))) {
        refusal_status = 404, refusal = "Not Found.";
      } else if (!has_scope(*tok, revision ? "update" : "create")) {
        refusal_status = 403;
        refusal = revision ? "This API token does not have permission to upload revisions."
                           : "This API token does not have permission to upload photos.";
      } else if (revision && tok->user != p->second.owner) {
        refusal_status = 403, refusal = "Only the project owner can upload revisions.";
      } else if (p->second.locked) {
        refusal_status = 403, refusal = "This project is locked for review.";
      } else if (revision) {
        Photo& ph = st->photos[photo_id];
        const auto busy_for = std::chrono::milliseconds(emu.RevisionProcessingMs());
        if (ph.processing || (busy_for.count() > 0 && Clock::now() < ph.processed_at + busy_for)) {
          refusal_status = 409, refusal = "A revision is already being processed for this photo.";
        } else {
          ph.processing = true;
        }
      }
    }
    if (refusal_status) {
      ReadUpload(emu, req, reader, {}, up, false, "");
      return Msg(res, refusal_status, refusal);
    }
    const Faults f = emu.faults();
    const bool reset = emu.Draw(f.rate_reset);
    // --store DIR: the body goes to a temporary file, renamed to
    // photo-<id> (upload) or photo-<id>-v<n> (revision n-1) once stored;
    // removed when the upload is refused or cut.
    struct TempFile {
      std::string path;
      bool keep = false;
      ~TempFile() {
        if (!path.empty() && !keep) std::remove(path.c_str());
      }
    } tmp;
    const std::string store_dir = emu.options().store_dir;
    if (!store_dir.empty()) {
      std::lock_guard lock(st->mu);
      tmp.path = store_dir + "/.upload-" + std::to_string(st->next_tmp++) + ".part";
    }
    const std::string& store_path = tmp.path;
    const std::vector<std::string> names =
        revision ? std::vector<std::string>{"revision"} : std::vector<std::string>{"photo", "file", "image"};
    const bool complete = ReadUpload(emu, req, reader, names, up, reset, store_path);
    up.store.reset();  // flush and close the stored copy
    auto done_processing = [&] {
      if (!revision) return;
      std::lock_guard lock(st->mu);
      auto ph = st->photos.find(photo_id);  // gone if /_emulator/reset ran meanwhile
      if (ph == st->photos.end()) return;
      ph->second.processing = false;
      ph->second.processed_at = Clock::now();
    };
    if (!complete) {
      if (revision) {
        std::lock_guard lock(st->mu);
        if (auto ph = st->photos.find(photo_id); ph != st->photos.end()) ph->second.processing = false;
      }
      return;  // connection reset (fault) or client gone
    }
    const std::string field = revision ? "revision" : "photo";
    if (!up.has_file) {
      done_processing();
      return Invalid(res, field, "The " + field + " field is required.");
    }
    if (up.size > kMaxUpload) {
      done_processing();
      return Invalid(res, field, "The " + field + " may not be greater than 10240 kilobytes.");
    }
    const auto type = shotsync::SniffImage(
        {reinterpret_cast<const std::uint8_t*>(up.head.data()), up.head.size()},
        {reinterpret_cast<const std::uint8_t*>(up.tail.data()), up.tail.size()}, up.size);
    if (type == shotsync::ImageType::kUnknown) {
      done_processing();
      return Invalid(res, field, "The " + field + " must be an image.");
    }
    const std::string sha = up.Sha256();
    std::string original = up.fields.count("client_original_filename") && !up.fields["client_original_filename"].empty()
                               ? up.fields["client_original_filename"]
                               : up.filename;
    Json answer;
    bool dup = false;
    auto keep_file = [&](const Photo& ph) {
      if (tmp.path.empty()) return;
      std::string final_path = store_dir + "/photo-" + std::to_string(ph.id);
      if (!ph.revisions.empty()) final_path += "-v" + std::to_string(ph.revisions.size() + 1);
      if (std::rename(tmp.path.c_str(), final_path.c_str()) == 0) tmp.keep = true;
    };
    {
      std::lock_guard lock(st->mu);
      const std::string now = IsoNow();
      if (revision) {
        auto found = st->photos.find(photo_id);
        if (found == st->photos.end()) return Msg(res, 404, "Not Found.");  // reset meanwhile
        Photo& ph = found->second;
        ph.revisions.push_back({int(ph.revisions.size()) + 1, ph.original_filename,
                                ph.revision_uploaded_at.value_or(ph.created_at), int(ph.annotations.size())});
        ph.original_filename = original;
        ph.sha256 = sha;
        ph.size = up.size;
        ph.approved_at.reset();
        ph.annotations.clear();
        ph.revision_uploaded_at = now;
        ph.updated_at = now;
        keep_file(ph);
        answer = {{"success", true}, {"message", "Revision uploaded successfully."},
                  {"photo", PhotoJson(emu.BaseUrl(), ph, true)}};
      } else {
        Photo ph;
        ph.id = st->next_photo++;
        ph.album_id = aid;
        ph.original_filename = original;
        std::string stem = original.substr(original.rfind('/') == std::string::npos ? 0 : original.rfind('/') + 1);
        if (auto dot = stem.rfind('.'); dot != std::string::npos && dot > 0) stem = stem.substr(0, dot);
        ph.title = up.fields.count("title") && !up.fields["title"].empty() ? up.fields["title"] : stem;
        if (up.fields.count("description")) ph.description = up.fields["description"];
        ph.sha256 = sha;
        ph.size = up.size;
        ph.created_at = ph.updated_at = now;
        const std::string key = std::to_string(pid) + "|" + original + "|" + sha;
        dup = !st->stored.insert(key).second;
        keep_file(ph);
        st->photos[ph.id] = ph;
        answer = {{"success", true}, {"message", "Photo uploaded."}, {"photo", PhotoJson(emu.BaseUrl(), ph, true)}};
      }
    }
    // The emulator's own lock is never taken under State::mu.
    emu.WithStats([&](Stats& s) {
      revision ? ++s.revisions : ++s.uploads;
      s.duplicates += dup;
    });
    done_processing();
    if (emu.Draw(f.rate_reset_after_store)) {
      emu.ResetConnection(req);  // stored, but the client never hears of it
      return;
    }
    Send(res, 201, answer);
  };
  svr.Post(R"(/api/projects/(\d+)/albums/(\d+)/photos)",
           [=](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
             upload(req, res, reader, false);
           });
  svr.Post(R"(/api/projects/(\d+)/albums/(\d+)/photos/(\d+)/revisions)",
           [=](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
             upload(req, res, reader, true);
           });

  // Finds the photo of a /projects/P/albums/A/photos/X path, or answers 404.
  auto find_photo = [st](const httplib::Request& req, httplib::Response& res) -> Photo* {
    const auto pid = Id(req, 1), aid = Id(req, 2), xid = Id(req, 3);
    auto a = st->albums.find(aid);
    auto p = st->photos.find(xid);
    if (!st->projects.count(pid) || a == st->albums.end() || a->second.project_id != pid ||
        p == st->photos.end() || p->second.album_id != aid) {
      Msg(res, 404, "Not Found.");
      return nullptr;
    }
    return &p->second;
  };

  svr.Get(R"(/api/projects/(\d+)/albums/(\d+)/photos/(\d+))", [=, &emu](const httplib::Request& req, httplib::Response& res) {
    if (!admit(req, res)) return;
    std::lock_guard lock(st->mu);
    if (Photo* ph = find_photo(req, res)) Send(res, 200, PhotoJson(emu.BaseUrl(), *ph, true));
  });

  svr.Patch(R"(/api/projects/(\d+)/albums/(\d+)/photos/(\d+)/approval)", [=, &emu](const httplib::Request& req, httplib::Response& res) {
    auto tok = admit(req, res);
    if (!tok) return;
    std::lock_guard lock(st->mu);
    Photo* ph = find_photo(req, res);
    if (!ph) return;
    if (!has_scope(*tok, "update")) return Msg(res, 403, "This API token does not have permission to approve photos.");
    Json b = Json::parse(req.body, nullptr, false);
    if (b.is_discarded() || !b.is_object() || !b.contains("approved") || !b["approved"].is_boolean()) {
      return Invalid(res, "approved", "The approved field must be true or false.");
    }
    if (b["approved"].get<bool>()) ph->approved_at = IsoNow(); else ph->approved_at.reset();
    Send(res, 200, PhotoJson(emu.BaseUrl(), *ph, true));
  });

  svr.Post(R"(/api/projects/(\d+)/albums/(\d+)/photos/(\d+)/annotations)", [=](const httplib::Request& req, httplib::Response& res) {
    auto tok = admit(req, res);
    if (!tok) return;
    std::lock_guard lock(st->mu);
    Photo* ph = find_photo(req, res);
    if (!ph) return;
    if (!has_scope(*tok, "update")) return Msg(res, 403, "This API token does not have permission to annotate photos.");
    Json b = Json::parse(req.body, nullptr, false);
    if (b.is_discarded() || !b.is_object()) return Invalid(res, "comment", "The comment field is required.");
    if (!b.contains("comment") || !b["comment"].is_string() || b["comment"].get<std::string>().empty()) {
      return Invalid(res, "comment", "The comment field is required.");
    }
    if (b["comment"].get<std::string>().size() > 255) return Invalid(res, "comment", "The comment may not be greater than 255 characters.");
    for (const char* k : {"x_position", "y_position"}) {
      if (!b.contains(k) || !b[k].is_number() || b[k].get<double>() < 0 || b[k].get<double>() > 100) {
        return Invalid(res, k, std::string("The ") + k + " must be between 0 and 100.");
      }
    }
    Annotation a{st->next_annotation++, b["comment"], b["x_position"], b["y_position"], IsoNow()};
    ph->annotations.push_back(a);
    Send(res, 201, AnnotationJson(a));
  });

  svr.Delete(R"(/api/projects/(\d+)/albums/(\d+)/photos/(\d+)/annotations/(\d+))", [=](const httplib::Request& req, httplib::Response& res) {
    auto tok = admit(req, res);
    if (!tok) return;
    std::lock_guard lock(st->mu);
    Photo* ph = find_photo(req, res);
    if (!ph) return;
    if (!has_scope(*tok, "update")) return Msg(res, 403, "This API token does not have permission to delete annotations.");
    const auto aid = Id(req, 4);
    auto it = std::find_if(ph->annotations.begin(), ph->annotations.end(), [&](auto& a) { return a.id == aid; });
    if (it == ph->annotations.end()) return Msg(res, 404, "Not Found.");
    ph->annotations.erase(it);
    res.status = 204;
  });

  // Users (team logins): enough for completeness; shotsync does not use them.
  auto user_json = [](const User& u) {
    return Json{{"id", u.id}, {"name", u.name}, {"email", u.email}, {"proofing_watermark_text", nullptr},
                {"created_at", u.created_at}, {"updated_at", u.created_at}};
  };
  svr.Get("/api/user", [=](const httplib::Request& req, httplib::Response& res) {
    if (!admit(req, res)) return;
    std::lock_guard lock(st->mu);
    Json out = Json::array();
    for (auto& [id, u] : st->users) out.push_back(user_json(u));
    Send(res, 200, out);
  });
  svr.Post("/api/user", [=](const httplib::Request& req, httplib::Response& res) {
    if (!admit(req, res)) return;
    Json b = Json::parse(req.body, nullptr, false);
    if (b.is_discarded() || !b.is_object()) return Invalid(res, "name", "The name field is required.");
    for (const char* k : {"name", "email", "password"}) {
      if (!b.contains(k) || !b[k].is_string() || b[k].get<std::string>().empty()) {
        return Invalid(res, k, std::string("The ") + k + " field is required.");
      }
    }
    if (b.value("password_confirmation", std::string()) != b["password"].get<std::string>()) {
      return Invalid(res, "password", "The password confirmation does not match.");
    }
    std::lock_guard lock(st->mu);
    if (st->users.size() >= 6) return Msg(res, 403, "You have reached the maximum number of additional logins.");
    for (auto& [id, u] : st->users) {
      if (u.email == b["email"].get<std::string>()) return Invalid(res, "email", "The email has already been taken.");
    }
    User u{st->next_user++, b["name"], b["email"], IsoNow()};
    st->users[u.id] = u;
    Send(res, 201, user_json(u));
  });
  svr.Get(R"(/api/user/(\d+))", [=](const httplib::Request& req, httplib::Response& res) {
    if (!admit(req, res)) return;
    std::lock_guard lock(st->mu);
    auto it = st->users.find(Id(req, 1));
    if (it == st->users.end()) return Msg(res, 404, "Not Found.");
    Send(res, 200, user_json(it->second));
  });
  svr.Put(R"(/api/user/(\d+))", [=](const httplib::Request& req, httplib::Response& res) {
    if (!admit(req, res)) return;
    std::lock_guard lock(st->mu);
    auto it = st->users.find(Id(req, 1));
    if (it == st->users.end()) return Msg(res, 404, "Not Found.");
    Json b = Json::parse(req.body, nullptr, false);
    if (!b.is_discarded() && b.is_object()) {
      if (b.contains("name") && b["name"].is_string()) it->second.name = b["name"];
      if (b.contains("email") && b["email"].is_string()) it->second.email = b["email"];
    }
    Send(res, 200, user_json(it->second));
  });
  svr.Delete(R"(/api/user/(\d+))", [=](const httplib::Request& req, httplib::Response& res) {
    if (!admit(req, res)) return;
    std::lock_guard lock(st->mu);
    if (!st->users.erase(Id(req, 1))) return Msg(res, 404, "Not Found.");
    res.status = 204;
  });

  // Admin: what was stored, for byte-exact checks.
  svr.Get("/_emulator/photos", [=](const httplib::Request& req, httplib::Response& res) {
    const std::int64_t pid = req.has_param("project") ? std::atoll(req.get_param_value("project").c_str()) : 0;
    const std::int64_t aid = req.has_param("album") ? std::atoll(req.get_param_value("album").c_str()) : 0;
    std::lock_guard lock(st->mu);
    Json out = Json::array();
    for (auto& [id, p] : st->photos) {
      auto a = st->albums.find(p.album_id);
      if (aid && p.album_id != aid) continue;
      if (pid && (a == st->albums.end() || a->second.project_id != pid)) continue;
      out.push_back({{"id", p.id}, {"album_id", p.album_id},
                     {"project_id", a == st->albums.end() ? Json(nullptr) : Json(a->second.project_id)},
                     {"original_filename", p.original_filename}, {"title", p.title}, {"size", p.size},
                     {"sha256", p.sha256}, {"revisions", p.revisions.size()},
                     {"revision_count", p.revisions.size()}});
    }
    Send(res, 200, out);
  });

  Emulator::ServiceHooks hooks;
  hooks.reset = [st] {
    std::lock_guard lock(st->mu);
    st->Reset();
  };
  hooks.seed = [st](const Json& body) -> Json {
    Json created = Json::array();
    if (!body.contains("projects") || !body["projects"].is_array()) return Json::object();
    std::lock_guard lock(st->mu);
    for (const auto& pj : body["projects"]) {
      Project p{st->next_project++, pj.value("name", std::string("Project")), pj.value("owner", std::string("owner")),
                IsoNow(), pj.value("locked", false), false};
      st->projects[p.id] = p;
      Json albums = Json::array();
      // Albums: "Name" or {"name": "Name", "photos": N} (N seeded JPEGs).
      for (const auto& an : pj.value("albums", Json::array())) {
        const std::string name = an.is_string() ? an.get<std::string>() : an.value("name", std::string("Album"));
        const int count = an.is_object() ? an.value("photos", 0) : 0;
        Album a{st->next_album++, p.id, name, IsoNow(), std::nullopt};
        st->albums[a.id] = a;
        Json photo_ids = Json::array();
        for (int i = 0; i < count; ++i) {
          const auto bytes = shotsync::testing::SynthJpeg({.width = 32, .height = 24, .seed = std::uint64_t(st->next_photo)});
          Photo ph;
          ph.id = st->next_photo++;
          ph.album_id = a.id;
          ph.original_filename = "seed_" + std::to_string(ph.id) + ".jpg";
          ph.title = "seed_" + std::to_string(ph.id);
          ph.sha256 = Sha256Of(bytes.data(), bytes.size());
          ph.size = bytes.size();
          ph.created_at = ph.updated_at = IsoNow();
          st->photos[ph.id] = ph;
          photo_ids.push_back(ph.id);
        }
        albums.push_back({{"id", a.id}, {"name", a.name}, {"photos", photo_ids}});
      }
      created.push_back({{"id", p.id}, {"name", p.name}, {"locked", p.locked}, {"albums", albums}});
    }
    return Json{{"projects", created}};
  };
  hooks.stats = [st](Json& out) {
    std::lock_guard lock(st->mu);
    out["shootbin"] = {{"projects", st->projects.size()}, {"albums", st->albums.size()}, {"photos", st->photos.size()}};
  };
  emu.AddServiceHooks(std::move(hooks));
}

}  // namespace emu
