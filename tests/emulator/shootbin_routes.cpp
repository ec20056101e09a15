// Shootbin routes (../shared/api/shootbin.md) under /api/...
//
// Uploads are streamed: each file part is hashed (SHA-256), counted and
// judged by the emulator's own image check (image_check.hpp) as it arrives,
// plus, with --store DIR, copied to disk; the file is never held in memory.
//
// Every route is a named handler taking a Ctx (the emulator and the shared
// Shootbin state). Uploads and revisions go through HandleUpload: admission
// (404/403/409), the streamed body, validation (422), then the faults that
// make an outcome ambiguous (gateway 5xx, late store, reset after store, a 2xx
// cut mid-body) around Store(), which is the one place a photo is stored.
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

#include "emulator.hpp"
#include "filename.hpp"
#include "image_check.hpp"
#include "jpeg_synth.hpp"

namespace emu {
namespace {

constexpr std::uint64_t kMaxUpload = 10ull * 1024 * 1024;
constexpr const char* kDefaultLockedMessage = "This project is locked for review.";
constexpr const char* kPhotoLimitMessage = "Your plan's photo limit for this project has been reached.";

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
  bool size_known = true;            // false: seeded without "size" (file_size left out)
  std::vector<Revision> revisions;
  std::vector<Annotation> annotations;
  Clock::time_point processed_at{};  // last revision stored; busy for revision_processing_ms after
  bool processing = false;
  bool seeded = false;               // preloaded by /_emulator/seed ("uploaded through the web UI")
};
struct Album {
  std::int64_t id = 0, project_id = 0;
  std::string name, created_at;
  std::optional<std::string> description;
  std::int64_t photo_limit = 0;  // >0: uploads refused (403) once the album holds this many photos
};
struct Project {
  std::int64_t id = 0;
  std::string name, owner = "owner", created_at;
  bool locked = false;
  bool personal_team = false;
  std::string locked_message = kDefaultLockedMessage;
  std::int64_t photo_limit = 0;      // >0: the same, counted over the project's albums
  std::int64_t selection_limit = 0;  // >0: approving more photos in the project -> 422
};
struct User {
  std::int64_t id;
  std::string name, email, created_at;
};

// Runs tasks at their due time on one thread of its own (started with the
// first task). Each task is called once: with true when it is due, or with
// false when it is dropped (Cancel, Shutdown, or scheduled after Shutdown).
class Timer {
 public:
  using Task = std::function<void(bool run)>;
  Timer() = default;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer() { Shutdown(); }

  void Schedule(Clock::time_point at, Task task) {
    {
      std::lock_guard lock(mu_);
      if (!stopped_) {
        tasks_.emplace(at, std::move(task));
        if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
        cv_.notify_all();
        return;
      }
    }
    task(false);
  }
  // Drops every task not yet started.
  void Cancel() {
    std::multimap<Clock::time_point, Task> dropped;
    {
      std::lock_guard lock(mu_);
      dropped.swap(tasks_);
    }
    for (auto& [at, task] : dropped) task(false);
  }
  // Ends the thread (a running task finishes first) and drops the rest.
  void Shutdown() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    Cancel();
  }
  // Tasks waiting or running.
  std::size_t Pending() const {
    std::lock_guard lock(mu_);
    return tasks_.size() + running_;
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (!stopped_) {
      if (tasks_.empty()) {
        cv_.wait(lock);
        continue;
      }
      auto first = tasks_.begin();
      if (Clock::now() < first->first) {
        const auto when = first->first;  // a copy: Cancel/Drain may free the node meanwhile
        cv_.wait_until(lock, when);
        continue;
      }
      Task task = std::move(first->second);
      tasks_.erase(first);
      ++running_;
      lock.unlock();
      task(true);
      lock.lock();
      --running_;
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<Clock::time_point, Task> tasks_;
  std::size_t running_ = 0;
  bool stopped_ = false;
  std::thread thread_;
};

struct State {
  std::mutex mu;
  std::map<std::int64_t, Project> projects;
  std::map<std::int64_t, Album> albums;
  std::map<std::int64_t, Photo> photos;
  std::map<std::int64_t, User> users;
  // (album, original_filename) -> how many photos of the album carry that
  // name now: a store under a name already there is a duplicate.
  std::map<std::pair<std::int64_t, std::string>, int> names;
  // Upload / revision requests per album id of the URL (any outcome).
  std::map<std::int64_t, std::uint64_t> upload_attempts, revision_attempts;
  std::int64_t next_project = 1, next_album = 1, next_photo = 1, next_annotation = 1, next_user = 2;
  std::uint64_t next_tmp = 1;    // temporary upload files under --store (never reset)
  std::uint64_t generation = 0;  // bumped by Reset: late stores of an older state are dropped
  Timer late;                    // late stores (fault rate_late_store); not reset, cancelled

  void Reset() {
    projects.clear();
    albums.clear();
    photos.clear();
    users.clear();
    names.clear();
    upload_attempts.clear();
    revision_attempts.clear();
    ++generation;
    next_project = next_album = next_photo = next_annotation = 1;
    next_user = 2;
    const std::string now = IsoNow();
    Project demo;
    demo.id = 1, demo.name = "Demo", demo.created_at = now;
    projects[1] = demo;
    albums[1] = Album{1, 1, "Main", now, std::nullopt, 0};
    users[1] = User{1, "Owner", "owner@example.com", now};
    next_project = next_album = 2;
  }
  // Registers a live name; true when the album already had a photo with it.
  bool AddName(std::int64_t album, const std::string& name) { return names[{album, name}]++ > 0; }
  void RemoveName(std::int64_t album, const std::string& name) {
    auto it = names.find({album, name});
    if (it != names.end() && --it->second <= 0) names.erase(it);
  }
  std::int64_t PhotosInAlbum(std::int64_t album) const {
    std::int64_t n = 0;
    for (const auto& [id, p] : photos) n += p.album_id == album;
    return n;
  }
  std::int64_t PhotosInProject(std::int64_t project) const {
    std::int64_t n = 0;
    for (const auto& [id, p] : photos) {
      auto a = albums.find(p.album_id);
      n += a != albums.end() && a->second.project_id == project;
    }
    return n;
  }
  // The photo limit (album's, then project's) that refuses one more photo
  // in `album`, if any.
  bool AtPhotoLimit(std::int64_t album) const {
    auto a = albums.find(album);
    if (a == albums.end()) return false;
    if (a->second.photo_limit > 0 && PhotosInAlbum(album) >= a->second.photo_limit) return true;
    auto p = projects.find(a->second.project_id);
    return p != projects.end() && p->second.photo_limit > 0 && PhotosInProject(p->first) >= p->second.photo_limit;
  }
};

// What every handler gets.
struct Ctx {
  Emulator* emu;
  std::shared_ptr<State> st;
};

Json ProjectJson(const Project& p) {
  return {{"id", p.id}, {"name", p.name}, {"personal_team", p.personal_team},
          {"created_at", p.created_at}, {"updated_at", p.created_at}};
}
Json AlbumJson(const State& s, const Album& a) {
  return {{"id", a.id}, {"team_id", a.project_id}, {"name", a.name},
          {"description", a.description ? Json(*a.description) : Json(nullptr)},
          {"photos_count", s.PhotosInAlbum(a.id)}, {"created_at", a.created_at}, {"updated_at", a.created_at}};
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
            {"rating", nullptr}};
  if (p.size_known) j["file_size"] = p.size;
  // Optional in the contract; unknown for a photo seeded without bytes or a
  // sha256 (a made-up value would contradict the bytes it stands for).
  if (!p.sha256.empty()) j["checksum_sha256"] = p.sha256;
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

bool HasScope(const TokenInfo& t, const char* scope) { return t.scopes.count(scope) > 0; }

std::optional<TokenInfo> Admit(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  return c.emu->Admit(Service::kShootbin, req, res);
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

// A name's title default: the base name without its extension.
std::string Stem(const std::string& name) {
  const std::size_t slash = name.rfind('/');
  std::string stem = name.substr(slash == std::string::npos ? 0 : slash + 1);
  if (auto dot = stem.rfind('.'); dot != std::string::npos && dot > 0) stem = stem.substr(0, dot);
  return stem;
}

// ------------------------------------------------------------ streamed bodies

// One multipart upload as it streams in: fields into memory (small), the
// file part hashed, counted and judged by ImageCheck; nothing else kept.
struct Upload {
  std::map<std::string, std::string> fields;
  std::string file_field, filename;
  std::uint64_t size = 0;
  ImageCheck image;
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
// Returns false when the connection was reset on purpose (fault) or the
// client went away.
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
      if (up.size <= kMaxUpload) up.image.Feed(data, n);  // past the limit the verdict is 422 anyway
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

// Reads and drops the body of a refused request (the connection stays usable).
void DrainBody(Emulator& emu, const httplib::Request& req, const httplib::ContentReader& reader) {
  Upload ignored;
  ReadUpload(emu, req, reader, {}, ignored, false, "");
}

// ------------------------------------------------------------ storing

// A validated upload or revision, ready to be stored (now or late). Owns the
// --store temporary file until Store() renames it.
struct Received {
  bool revision = false;
  std::int64_t pid = 0, aid = 0, photo_id = 0;
  std::string original;  // as stored: after filename_mode
  std::string title;     // "" = the default (stem of `original`)
  std::optional<std::string> description;
  std::string sha;
  std::uint64_t size = 0;
  std::string tmp_path, store_dir;

  Received() = default;
  Received(const Received&) = delete;
  Received& operator=(const Received&) = delete;
  ~Received() {
    if (!tmp_path.empty()) std::remove(tmp_path.c_str());
  }
};

struct Stored {
  int status = 0;  // 201, or 403/404 (limit reached / target gone meanwhile); 0 = dropped
  Json body;
};

// Clears a photo's "revision being processed" flag; `stored` starts the
// revision_processing_ms window.
void EndProcessing(State& st, std::int64_t photo_id, bool stored) {
  std::lock_guard lock(st.mu);
  auto ph = st.photos.find(photo_id);  // gone if /_emulator/reset ran meanwhile
  if (ph == st.photos.end()) return;
  ph->second.processing = false;
  if (stored) ph->second.processed_at = Clock::now();
}

// The one place a photo or revision is stored (stats included). With
// `generation`, a late store: dropped when the state was reset since.
Stored Store(Emulator& emu, State& st, Received& r, std::optional<std::uint64_t> generation = std::nullopt) {
  Stored out;
  bool dup = false;
  {
    std::lock_guard lock(st.mu);
    if (generation && *generation != st.generation) return out;
    auto album = st.albums.find(r.aid);
    if (album == st.albums.end() || album->second.project_id != r.pid || !st.projects.count(r.pid)) {
      out.status = 404;
      out.body = Json{{"message", "Not Found."}};
      return out;
    }
    auto keep_file = [&](const Photo& ph) {
      if (r.tmp_path.empty()) return;
      std::string final_path = r.store_dir + "/photo-" + std::to_string(ph.id);
      if (!ph.revisions.empty()) final_path += "-v" + std::to_string(ph.revisions.size() + 1);
      if (std::rename(r.tmp_path.c_str(), final_path.c_str()) == 0) r.tmp_path.clear();
    };
    const std::string now = IsoNow();
    if (r.revision) {
      auto found = st.photos.find(r.photo_id);
      if (found == st.photos.end() || found->second.album_id != r.aid) {
        out.status = 404;
        out.body = Json{{"message", "Not Found."}};
        return out;
      }
      Photo& ph = found->second;
      ph.revisions.push_back({int(ph.revisions.size()) + 1, ph.original_filename,
                              ph.revision_uploaded_at.value_or(ph.created_at), int(ph.annotations.size())});
      st.RemoveName(ph.album_id, ph.original_filename);
      dup = st.AddName(ph.album_id, r.original);
      ph.original_filename = r.original;
      ph.sha256 = r.sha;
      ph.size = r.size;
      ph.size_known = true;
      ph.approved_at.reset();  // a revision resets approval (shootbin.md §3.5)
      ph.annotations.clear();
      ph.revision_uploaded_at = now;
      ph.updated_at = now;
      ph.processing = false;
      ph.processed_at = Clock::now();
      keep_file(ph);
      out.status = 201;
      out.body = {{"success", true}, {"message", "Revision uploaded successfully."},
                  {"photo", PhotoJson(emu.BaseUrl(), ph, true)}};
    } else {
      if (st.AtPhotoLimit(r.aid)) {  // reached by a concurrent or late upload meanwhile
        out.status = 403;
        out.body = Json{{"message", kPhotoLimitMessage}};
        return out;
      }
      Photo ph;
      ph.id = st.next_photo++;
      ph.album_id = r.aid;
      ph.original_filename = r.original;
      ph.title = r.title.empty() ? Stem(r.original) : r.title;
      ph.description = r.description;
      ph.sha256 = r.sha;
      ph.size = r.size;
      ph.created_at = ph.updated_at = now;
      dup = st.AddName(r.aid, r.original);
      keep_file(ph);
      st.photos[ph.id] = ph;
      out.status = 201;
      out.body = {{"success", true}, {"message", "Photo uploaded."}, {"photo", PhotoJson(emu.BaseUrl(), ph, true)}};
    }
  }
  // The emulator's own lock is never taken under State::mu.
  const bool revision = r.revision;
  emu.WithStats([&](Stats& s) {
    revision ? ++s.revisions : ++s.uploads;
    s.duplicates += dup;
  });
  return out;
}

// ------------------------------------------------------------ ambiguous answers

// What a reverse proxy in front of the app answers on its own: an HTML page,
// no app headers (shootbin.md §1 "Server errors", §5.1).
void SendGatewayPage(httplib::Response& res, int status) {
  for (const char* h : {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"}) {
    res.headers.erase(h);
  }
  res.status = status;
  std::string html;
  if (status == 524) {
    res.set_header("Server", "cloudflare");
    res.set_header("CF-RAY", "8c2f1a9b3e4d5f60-FRA");
    html =
        "<!DOCTYPE html>\n<!--[if lt IE 7]> <html class=\"no-js ie6 oldie\" lang=\"en-US\"> <![endif]-->\n"
        "<html class=\"no-js\" lang=\"en-US\">\n<head>\n<title>shootbin.example | 524: A timeout occurred</title>\n"
        "<meta charset=\"UTF-8\" />\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n"
        "<link rel=\"stylesheet\" id=\"cf_styles-css\" href=\"/cdn-cgi/styles/cf.errors.css\" />\n</head>\n"
        "<body>\n<div id=\"cf-wrapper\">\n<div id=\"cf-error-details\" class=\"p-0\">\n"
        "<header class=\"mx-auto pt-10 lg:pt-6 lg:px-8 w-240 lg:w-full mb-8\">\n"
        "<h1 class=\"inline-block sm:block sm:mb-2 font-light text-60 lg:text-4xl text-black-dark leading-tight mr-2\">\n"
        "<span class=\"inline-block\">A timeout occurred</span>\n"
        "<span class=\"code-label\">Error code 524</span>\n</h1>\n</header>\n"
        "<div class=\"w-240 lg:w-full mx-auto mb-8 lg:px-8\">\n<div class=\"clearfix\">\n"
        "<h2>What happened?</h2>\n<p>The origin web server timed out responding to this request.</p>\n"
        "<h2>What can I do?</h2>\n<p>If you're a visitor of this website: please try again in a few minutes.</p>\n"
        "</div>\n</div>\n<div class=\"cf-error-footer cf-wrapper w-240 lg:w-full py-10 sm:py-4 sm:px-8 mx-auto text-center sm:text-left border-solid border-0 border-t border-gray-300\">\n"
        "<p class=\"text-13\"><span class=\"cf-footer-item sm:block sm:mb-1\">Cloudflare Ray ID: <strong class=\"font-semibold\">8c2f1a9b3e4d5f60</strong></span>"
        " <span class=\"cf-footer-separator sm:hidden\">&bull;</span>"
        " <span class=\"cf-footer-item sm:block sm:mb-1\">Performance &amp; security by Cloudflare</span></p>\n"
        "</div>\n</div>\n</div>\n</body>\n</html>\n";
  } else {
    const std::string line = status == 504 ? "504 Gateway Time-out" : "502 Bad Gateway";
    res.set_header("Server", "nginx/1.24.0");
    html = "<html>\r\n<head><title>" + line + "</title></head>\r\n<body>\r\n<center><h1>" + line +
           "</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n";
  }
  res.set_content(html, "text/html; charset=UTF-8");
}

// A 2xx whose headers announce the whole body (Content-Length) but whose
// connection is closed after half of it: the provider writes the first half,
// then fails, and httplib closes the connection.
void SendCut(httplib::Response& res, int status, const Json& body) {
  auto bytes = std::make_shared<const std::string>(body.dump());
  const std::size_t half = bytes->size() / 2;
  res.status = status;
  res.set_content_provider(bytes->size(), "application/json",
                           [bytes, half](std::size_t offset, std::size_t, httplib::DataSink& sink) {
                             if (offset >= half) return false;  // cut here
                             return sink.write(bytes->data() + offset, half - offset);
                           });
}

// ------------------------------------------------------------ upload / revision

// 404/403/409 before the body is read; "" = admitted. Marks a revision's
// photo as being processed when admitted.
std::pair<int, std::string> AdmitUpload(State& st, const TokenInfo& tok, std::int64_t pid, std::int64_t aid,
                                        std::int64_t photo_id, bool revision, int revision_processing_ms) {
  std::lock_guard lock(st.mu);
  auto p = st.projects.find(pid);
  auto a = st.albums.find(aid);
  auto ph = st.photos.find(photo_id);
  if (p == st.projects.end() || a == st.albums.end() || a->second.project_id != pid ||
      (revision && (ph == st.photos.end() || ph->second.album_id != aid))) {
    return {404, "Not Found."};
  }
  if (!HasScope(tok, revision ? "update" : "create")) {
    return {403, revision ? "This API token does not have permission to upload revisions."
                          : "This API token does not have permission to upload photos."};
  }
  if (revision && tok.user != p->second.owner) return {403, "Only the project owner can upload revisions."};
  if (p->second.locked) return {403, p->second.locked_message};
  if (!revision && st.AtPhotoLimit(aid)) return {403, kPhotoLimitMessage};
  if (revision) {
    const auto busy_for = std::chrono::milliseconds(revision_processing_ms);
    if (ph->second.processing || (busy_for.count() > 0 && Clock::now() < ph->second.processed_at + busy_for)) {
      return {409, "A revision is already being processed for this photo."};
    }
    ph->second.processing = true;
  }
  return {0, ""};
}

// POST .../photos (revision=false) and POST .../photos/{photo}/revisions.
void HandleUpload(const Ctx& c, const httplib::Request& req, httplib::Response& res,
                  const httplib::ContentReader& reader, bool revision) {
  Emulator& emu = *c.emu;
  State& st = *c.st;
  const auto pid = Id(req, 1), aid = Id(req, 2), photo_id = revision ? Id(req, 3) : 0;
  {
    std::lock_guard lock(st.mu);
    ++(revision ? st.revision_attempts : st.upload_attempts)[aid];
  }
  auto tok = Admit(c, req, res);
  if (!tok) return DrainBody(emu, req, reader);
  if (auto [status, message] = AdmitUpload(st, *tok, pid, aid, photo_id, revision, emu.RevisionProcessingMs());
      status != 0) {
    DrainBody(emu, req, reader);
    return Msg(res, status, message);
  }
  // From here on a revision's photo is marked "processing": every way out
  // clears it (EndProcessing) or hands it to Store().
  const Faults f = emu.faults();
  const bool reset = emu.Draw(f.rate_reset);
  // --store DIR: the body goes to a temporary file, renamed to
  // photo-<id> (upload) or photo-<id>-v<n> (revision n-1) once stored;
  // removed when the upload is refused or cut (Received's destructor).
  auto r = std::make_shared<Received>();
  r->revision = revision, r->pid = pid, r->aid = aid, r->photo_id = photo_id;
  r->store_dir = emu.options().store_dir;
  if (!r->store_dir.empty()) {
    std::lock_guard lock(st.mu);
    r->tmp_path = r->store_dir + "/.upload-" + std::to_string(st.next_tmp++) + ".part";
  }
  Upload up;
  const std::vector<std::string> names =
      revision ? std::vector<std::string>{"revision"} : std::vector<std::string>{"photo", "file", "image"};
  const bool complete = ReadUpload(emu, req, reader, names, up, reset, r->tmp_path);
  up.store.reset();  // flush and close the stored copy
  if (!complete) {
    if (revision) EndProcessing(st, photo_id, false);
    return;  // connection reset (fault) or client gone
  }

  // Validation, as the app would answer it.
  const std::string field = revision ? "revision" : "photo";
  std::string invalid;
  if (!up.has_file) invalid = "The " + field + " field is required.";
  else if (up.size > kMaxUpload) invalid = "The " + field + " may not be greater than 10240 kilobytes.";
  else if (up.size == 0 || up.image.Finish() == ImageFormat::kNone) invalid = "The " + field + " must be an image.";

  const std::string given = up.fields.count("client_original_filename") && !up.fields["client_original_filename"].empty()
                                ? up.fields["client_original_filename"]
                                : up.filename;
  r->original = NormaliseFilename(given, f.filename_mode);
  if (up.fields.count("title")) r->title = up.fields["title"];
  if (up.fields.count("description")) r->description = up.fields["description"];
  r->size = up.size;
  r->sha = up.Sha256();

  // A gateway in front of the app answers instead of it; the app may still
  // have stored the photo (gateway_stores).
  if (emu.Draw(f.rate_gateway)) {
    bool stored = false;
    if (invalid.empty() && f.gateway_stores) stored = Store(emu, st, *r).status == 201;
    if (revision && !stored) EndProcessing(st, photo_id, false);
    return SendGatewayPage(res, f.gateway_status);
  }
  if (!invalid.empty()) {
    if (revision) EndProcessing(st, photo_id, false);
    return Invalid(res, field, invalid);
  }
  // Late store: the connection is reset now, the photo appears later.
  if (emu.Draw(f.rate_late_store)) {
    std::uint64_t generation = 0;
    {
      std::lock_guard lock(st.mu);
      generation = st.generation;
    }
    // Raw pointers: the timer is joined (Emulator::Stop) before either goes away.
    // Scheduled before the reset, so the stats show it pending once the client sees the reset.
    Emulator* e = c.emu;
    State* state = c.st.get();
    st.late.Schedule(Clock::now() + std::chrono::milliseconds(f.late_store_ms),
                     [e, state, r, generation](bool run) {
                       if (run) Store(*e, *state, *r, generation);
                       // dropped: the Received's destructor removes its temporary file
                     });
    emu.ResetConnection(req);
    return;
  }
  Stored stored = Store(emu, st, *r);
  if (stored.status != 201) {
    if (revision) EndProcessing(st, photo_id, false);
    return Send(res, stored.status, stored.body);
  }
  if (emu.Draw(f.rate_reset_after_store)) {
    emu.ResetConnection(req);  // stored, but the client never hears of it
    return;
  }
  if (emu.Draw(f.rate_cut_2xx)) return SendCut(res, 201, stored.body);
  Send(res, 201, stored.body);
}

// ------------------------------------------------------------ projects, albums, photos

void ListProjects(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  if (!Admit(c, req, res)) return;
  std::lock_guard lock(c.st->mu);
  Json out = Json::array();
  for (auto& [id, p] : c.st->projects) out.push_back(ProjectJson(p));
  Send(res, 200, out);
}

void CreateProject(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  auto tok = Admit(c, req, res);
  if (!tok) return;
  if (!HasScope(*tok, "create")) return Msg(res, 403, "This API token does not have permission to create projects.");
  std::string name;
  Json b = Json::parse(req.body, nullptr, false);
  if (!b.is_discarded() && b.is_object() && b.contains("name") && b["name"].is_string()) name = b["name"];
  else if (req.has_param("name")) name = req.get_param_value("name");
  else if (req.has_file("name")) name = req.get_file_value("name").content;
  if (name.empty()) return Invalid(res, "name", "The name field is required.");
  if (name.size() > 255) return Invalid(res, "name", "The name may not be greater than 255 characters.");
  std::lock_guard lock(c.st->mu);
  Project p;
  p.id = c.st->next_project++, p.name = name, p.owner = tok->user, p.created_at = IsoNow();
  c.st->projects[p.id] = p;
  Send(res, 201, ProjectJson(p));
}

void ListAlbums(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  if (!Admit(c, req, res)) return;
  std::lock_guard lock(c.st->mu);
  const auto pid = Id(req, 1);
  if (!c.st->projects.count(pid)) return Msg(res, 404, "Not Found.");
  Json out = Json::array();
  for (auto it = c.st->albums.rbegin(); it != c.st->albums.rend(); ++it) {  // newest first
    if (it->second.project_id == pid) out.push_back(AlbumJson(*c.st, it->second));
  }
  Send(res, 200, out);
}

// A form field of a multipart, url-encoded or JSON body.
std::string FormValue(const httplib::Request& req, const char* key) {
  if (req.has_file(key)) return req.get_file_value(key).content;
  if (req.has_param(key)) return req.get_param_value(key);
  Json b = Json::parse(req.body, nullptr, false);
  if (!b.is_discarded() && b.is_object() && b.contains(key) && b[key].is_string()) return b[key];
  return "";
}

void CreateAlbum(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  auto tok = Admit(c, req, res);
  if (!tok) return;
  std::lock_guard lock(c.st->mu);
  const auto pid = Id(req, 1);
  auto p = c.st->projects.find(pid);
  if (p == c.st->projects.end()) return Msg(res, 404, "Not Found.");
  if (!HasScope(*tok, "create")) return Msg(res, 403, "This API token does not have permission to create albums.");
  if (p->second.locked) return Msg(res, 403, p->second.locked_message);
  const std::string name = FormValue(req, "name"), desc = FormValue(req, "description");
  if (name.empty()) return Invalid(res, "name", "The name field is required.");
  if (name.size() > 255) return Invalid(res, "name", "The name may not be greater than 255 characters.");
  Album a{c.st->next_album++, pid, name, IsoNow(), desc.empty() ? std::nullopt : std::optional(desc), 0};
  c.st->albums[a.id] = a;
  Send(res, 201, AlbumJson(*c.st, a));
}

void ListPhotos(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  if (!Admit(c, req, res)) return;
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
    Json cur = decoded ? Json::parse(*decoded, nullptr, false) : Json();
    if (!decoded || cur.is_discarded() || !cur.is_object() || !cur.contains("id") || !cur["id"].is_number_integer()) {
      return Msg(res, 422, "Invalid cursor.");
    }
    below = cur["id"].get<std::int64_t>();
  }
  State& st = *c.st;
  std::lock_guard lock(st.mu);
  const auto pid = Id(req, 1), aid = Id(req, 2);
  auto a = st.albums.find(aid);
  if (!st.projects.count(pid) || a == st.albums.end() || a->second.project_id != pid) {
    return Msg(res, 404, "Not Found.");
  }
  Json data = Json::array();
  std::int64_t last = 0;
  bool more = false;
  // Ids below the cursor, newest (highest id) first.
  for (auto it = std::make_reverse_iterator(st.photos.lower_bound(below)); it != st.photos.rend(); ++it) {
    if (it->second.album_id != aid) continue;
    if (int(data.size()) == per_page) {
      more = true;
      break;
    }
    data.push_back(PhotoJson(c.emu->BaseUrl(), it->second, false));
    last = it->first;
  }
  Json out = {{"data", data}, {"photos", data},
              {"next_cursor", more ? Json(Base64(Json{{"id", last}}.dump())) : Json(nullptr)},
              {"has_more", more}, {"per_page", per_page}};
  Send(res, 200, out);
}

// The photo of a /projects/P/albums/A/photos/X path, or nullptr after a 404.
// Call with State::mu held.
Photo* FindPhoto(State& st, const httplib::Request& req, httplib::Response& res) {
  const auto pid = Id(req, 1), aid = Id(req, 2), xid = Id(req, 3);
  auto a = st.albums.find(aid);
  auto p = st.photos.find(xid);
  if (!st.projects.count(pid) || a == st.albums.end() || a->second.project_id != pid ||
      p == st.photos.end() || p->second.album_id != aid) {
    Msg(res, 404, "Not Found.");
    return nullptr;
  }
  return &p->second;
}

void GetPhoto(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  if (!Admit(c, req, res)) return;
  std::lock_guard lock(c.st->mu);
  if (Photo* ph = FindPhoto(*c.st, req, res)) Send(res, 200, PhotoJson(c.emu->BaseUrl(), *ph, true));
}

// `approved` of a JSON body ({"approved": true}) or a form field ("1", "true", ...).
std::optional<bool> ApprovedValue(const httplib::Request& req) {
  Json b = Json::parse(req.body, nullptr, false);
  if (!b.is_discarded() && b.is_object() && b.contains("approved")) {
    if (b["approved"].is_boolean()) return b["approved"].get<bool>();
    if (b["approved"].is_number_integer() && (b["approved"] == 0 || b["approved"] == 1)) return b["approved"] == 1;
    return std::nullopt;
  }
  const std::string v = FormValue(req, "approved");
  if (v == "1" || v == "true") return true;
  if (v == "0" || v == "false") return false;
  return std::nullopt;
}

// PATCH .../photos/{photo}/approval {"approved": true|false} (shootbin.md §3.3).
void SetApproval(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  auto tok = Admit(c, req, res);
  if (!tok) return;
  State& st = *c.st;
  std::lock_guard lock(st.mu);
  Photo* ph = FindPhoto(st, req, res);
  if (!ph) return;
  if (!HasScope(*tok, "update")) return Msg(res, 403, "This API token does not have permission to approve photos.");
  const auto approved = ApprovedValue(req);
  if (!approved) return Invalid(res, "approved", "The approved field must be true or false.");
  if (*approved && !ph->approved_at) {
    const auto pid = Id(req, 1);
    const Project& project = st.projects.at(pid);
    if (project.selection_limit > 0) {
      std::int64_t selected = 0;
      for (const auto& [id, other] : st.photos) {
        auto a = st.albums.find(other.album_id);
        selected += other.approved_at && a != st.albums.end() && a->second.project_id == pid;
      }
      if (selected >= project.selection_limit) return Msg(res, 422, "Selection limit exceeded.");
    }
  }
  if (*approved) ph->approved_at = IsoNow();
  else ph->approved_at.reset();
  ph->updated_at = IsoNow();
  Send(res, 200, PhotoJson(c.emu->BaseUrl(), *ph, true));
}

void CreateAnnotation(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  auto tok = Admit(c, req, res);
  if (!tok) return;
  std::lock_guard lock(c.st->mu);
  Photo* ph = FindPhoto(*c.st, req, res);
  if (!ph) return;
  if (!HasScope(*tok, "update")) return Msg(res, 403, "This API token does not have permission to annotate photos.");
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
  Annotation a{c.st->next_annotation++, b["comment"], b["x_position"], b["y_position"], IsoNow()};
  ph->annotations.push_back(a);
  Send(res, 201, AnnotationJson(a));
}

void DeleteAnnotation(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  auto tok = Admit(c, req, res);
  if (!tok) return;
  std::lock_guard lock(c.st->mu);
  Photo* ph = FindPhoto(*c.st, req, res);
  if (!ph) return;
  if (!HasScope(*tok, "update")) return Msg(res, 403, "This API token does not have permission to delete annotations.");
  const auto aid = Id(req, 4);
  auto it = std::find_if(ph->annotations.begin(), ph->annotations.end(), [&](auto& a) { return a.id == aid; });
  if (it == ph->annotations.end()) return Msg(res, 404, "Not Found.");
  ph->annotations.erase(it);
  res.status = 204;
}

// ------------------------------------------------------------ users (team logins; shotsync does not use them)

Json UserJson(const User& u) {
  return Json{{"id", u.id}, {"name", u.name}, {"email", u.email}, {"proofing_watermark_text", nullptr},
              {"created_at", u.created_at}, {"updated_at", u.created_at}};
}

void ListUsers(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  if (!Admit(c, req, res)) return;
  std::lock_guard lock(c.st->mu);
  Json out = Json::array();
  for (auto& [id, u] : c.st->users) out.push_back(UserJson(u));
  Send(res, 200, out);
}

void CreateUser(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  if (!Admit(c, req, res)) return;
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
  std::lock_guard lock(c.st->mu);
  if (c.st->users.size() >= 6) return Msg(res, 403, "You have reached the maximum number of additional logins.");
  for (auto& [id, u] : c.st->users) {
    if (u.email == b["email"].get<std::string>()) return Invalid(res, "email", "The email has already been taken.");
  }
  User u{c.st->next_user++, b["name"], b["email"], IsoNow()};
  c.st->users[u.id] = u;
  Send(res, 201, UserJson(u));
}

void GetUser(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  if (!Admit(c, req, res)) return;
  std::lock_guard lock(c.st->mu);
  auto it = c.st->users.find(Id(req, 1));
  if (it == c.st->users.end()) return Msg(res, 404, "Not Found.");
  Send(res, 200, UserJson(it->second));
}

void UpdateUser(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  if (!Admit(c, req, res)) return;
  std::lock_guard lock(c.st->mu);
  auto it = c.st->users.find(Id(req, 1));
  if (it == c.st->users.end()) return Msg(res, 404, "Not Found.");
  Json b = Json::parse(req.body, nullptr, false);
  if (!b.is_discarded() && b.is_object()) {
    if (b.contains("name") && b["name"].is_string()) it->second.name = b["name"];
    if (b.contains("email") && b["email"].is_string()) it->second.email = b["email"];
  }
  Send(res, 200, UserJson(it->second));
}

void DeleteUser(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  if (!Admit(c, req, res)) return;
  std::lock_guard lock(c.st->mu);
  if (!c.st->users.erase(Id(req, 1))) return Msg(res, 404, "Not Found.");
  res.status = 204;
}

// ------------------------------------------------------------ admin

// GET /_emulator/photos?project=P&album=A: what was stored, for byte-exact checks.
void AdminPhotos(const Ctx& c, const httplib::Request& req, httplib::Response& res) {
  const std::int64_t pid = req.has_param("project") ? std::atoll(req.get_param_value("project").c_str()) : 0;
  const std::int64_t aid = req.has_param("album") ? std::atoll(req.get_param_value("album").c_str()) : 0;
  std::lock_guard lock(c.st->mu);
  Json out = Json::array();
  for (auto& [id, p] : c.st->photos) {
    auto a = c.st->albums.find(p.album_id);
    if (aid && p.album_id != aid) continue;
    if (pid && (a == c.st->albums.end() || a->second.project_id != pid)) continue;
    out.push_back({{"id", p.id}, {"album_id", p.album_id},
                   {"project_id", a == c.st->albums.end() ? Json(nullptr) : Json(a->second.project_id)},
                   {"original_filename", p.original_filename}, {"title", p.title},
                   {"size", p.size_known ? Json(p.size) : Json(nullptr)},
                   {"sha256", p.sha256.empty() ? Json(nullptr) : Json(p.sha256)}, {"revisions", p.revisions.size()},
                   {"revision_count", p.revisions.size()}, {"approved_at", Opt(p.approved_at)},
                   {"seeded", p.seeded}});
  }
  Send(res, 200, out);
}

std::int64_t NonNegative(const Json& j, const char* key, std::int64_t def) {
  if (!j.is_object() || !j.contains(key)) return def;
  if (!j[key].is_number_integer() || j[key].get<std::int64_t>() < 0) {
    throw std::invalid_argument(std::string(key) + " must be a non-negative integer");
  }
  return j[key].get<std::int64_t>();
}

// Project settings of a seed entry (new project or project_updates item).
void ApplyProjectSettings(Project& p, const Json& j) {
  if (j.contains("locked")) p.locked = j.at("locked").get<bool>();
  if (j.contains("locked_message")) p.locked_message = j.at("locked_message").get<std::string>();
  p.photo_limit = NonNegative(j, "photo_limit", p.photo_limit);
  p.selection_limit = NonNegative(j, "selection_limit", p.selection_limit);
}

// Preloads photos into an album: N synthetic JPEGs, or a list of
// {"original_filename", "size", "approved", "approved_at", "sha256", "title"}
// ("uploaded through the web UI": no bytes are kept). Returns their ids.
Json SeedPhotos(State& st, std::int64_t album, const Json& photos) {
  Json ids = Json::array();
  if (photos.is_number_integer()) {
    const std::int64_t count = photos.get<std::int64_t>();
    for (std::int64_t i = 0; i < count; ++i) {
      const auto bytes = shotsync::testing::SynthJpeg({.width = 32, .height = 24, .seed = std::uint64_t(st.next_photo)});
      Photo ph;
      ph.id = st.next_photo++;
      ph.album_id = album;
      ph.original_filename = "seed_" + std::to_string(ph.id) + ".jpg";
      ph.title = "seed_" + std::to_string(ph.id);
      ph.sha256 = Sha256Of(bytes.data(), bytes.size());
      ph.size = bytes.size();
      ph.created_at = ph.updated_at = IsoNow();
      ph.seeded = true;
      st.AddName(album, ph.original_filename);
      st.photos[ph.id] = ph;
      ids.push_back(ph.id);
    }
    return ids;
  }
  if (!photos.is_array()) throw std::invalid_argument("\"photos\" must be a count or a list of photo objects");
  for (const Json& pj : photos) {
    if (!pj.is_object() || !pj.contains("original_filename") || !pj["original_filename"].is_string()) {
      throw std::invalid_argument("a seeded photo needs \"original_filename\"");
    }
    Photo ph;
    ph.id = st.next_photo++;
    ph.album_id = album;
    ph.original_filename = pj["original_filename"].get<std::string>();
    ph.title = pj.contains("title") ? pj.at("title").get<std::string>() : Stem(ph.original_filename);
    ph.size_known = pj.contains("size");  // else unknown: not reported
    ph.size = std::uint64_t(NonNegative(pj, "size", 0));
    if (pj.contains("sha256")) ph.sha256 = pj.at("sha256").get<std::string>();  // else unknown: not reported
    ph.created_at = ph.updated_at = IsoNow();
    if (pj.contains("approved_at") && pj["approved_at"].is_string()) ph.approved_at = pj["approved_at"].get<std::string>();
    else if (pj.value("approved", false)) ph.approved_at = ph.created_at;
    ph.seeded = true;
    st.AddName(album, ph.original_filename);
    st.photos[ph.id] = ph;
    ids.push_back(ph.id);
  }
  return ids;
}

// POST /_emulator/seed (Shootbin part): see docs/emulator.md.
Json Seed(State& st, const Json& body) {
  const bool any = body.contains("projects") || body.contains("project_updates") || body.contains("album_updates");
  if (!any) return Json::object();
  std::lock_guard lock(st.mu);
  Json out = Json::object();
  if (body.contains("projects")) {
    if (!body["projects"].is_array()) throw std::invalid_argument("\"projects\" must be a list");
    Json created = Json::array();
    for (const auto& pj : body["projects"]) {
      Project p;
      p.id = st.next_project++;
      p.name = pj.value("name", std::string("Project"));
      p.owner = pj.value("owner", std::string("owner"));
      p.created_at = IsoNow();
      ApplyProjectSettings(p, pj);
      st.projects[p.id] = p;
      Json albums = Json::array();
      // Albums: "Name" or {"name", "description", "photos": N | [...], "photo_limit"}.
      for (const auto& an : pj.value("albums", Json::array())) {
        const std::string name = an.is_string() ? an.get<std::string>() : an.value("name", std::string("Album"));
        Album a{st.next_album++, p.id, name, IsoNow(), std::nullopt, 0};
        if (an.is_object() && an.contains("description") && an["description"].is_string()) {
          a.description = an["description"].get<std::string>();
        }
        if (an.is_object()) a.photo_limit = NonNegative(an, "photo_limit", 0);
        st.albums[a.id] = a;
        const Json photos = an.is_object() && an.contains("photos") ? an["photos"] : Json(0);
        albums.push_back({{"id", a.id}, {"name", a.name}, {"photos", SeedPhotos(st, a.id, photos)}});
      }
      created.push_back({{"id", p.id}, {"name", p.name}, {"locked", p.locked}, {"albums", albums}});
    }
    out["projects"] = created;
  }
  // Changes to existing projects and albums (the default project 1 / album 1 too).
  if (body.contains("project_updates")) {
    Json done = Json::array();
    for (const auto& u : body["project_updates"]) {
      const std::int64_t id = u.value("id", std::int64_t(-1));
      auto p = st.projects.find(id);
      if (p == st.projects.end()) throw std::invalid_argument("project_updates: no project " + std::to_string(id));
      ApplyProjectSettings(p->second, u);
      done.push_back({{"id", id}, {"locked", p->second.locked}, {"locked_message", p->second.locked_message},
                      {"photo_limit", p->second.photo_limit}, {"selection_limit", p->second.selection_limit}});
    }
    out["project_updates"] = done;
  }
  if (body.contains("album_updates")) {
    Json done = Json::array();
    for (const auto& u : body["album_updates"]) {
      const std::int64_t id = u.value("id", std::int64_t(-1));
      auto a = st.albums.find(id);
      if (a == st.albums.end()) throw std::invalid_argument("album_updates: no album " + std::to_string(id));
      a->second.photo_limit = NonNegative(u, "photo_limit", a->second.photo_limit);
      Json ids = u.contains("photos") ? SeedPhotos(st, id, u["photos"]) : Json::array();
      done.push_back({{"id", id}, {"photo_limit", a->second.photo_limit}, {"photos", ids}});
    }
    out["album_updates"] = done;
  }
  return out;
}

Json CountsById(const std::map<std::int64_t, std::uint64_t>& m) {
  Json out = Json::object();
  for (const auto& [id, n] : m) out[std::to_string(id)] = n;
  return out;
}

}  // namespace

void RegisterShootbin(Emulator& emu) {
  auto st = std::make_shared<State>();
  st->Reset();
  auto& svr = emu.server();
  const Ctx c{&emu, st};
  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  using Reader = const httplib::ContentReader&;

  svr.Get("/api/projects", [c](Req req, Res res) { ListProjects(c, req, res); });
  svr.Post("/api/projects", [c](Req req, Res res) { CreateProject(c, req, res); });
  svr.Get(R"(/api/projects/(\d+)/albums)", [c](Req req, Res res) { ListAlbums(c, req, res); });
  svr.Post(R"(/api/projects/(\d+)/albums)", [c](Req req, Res res) { CreateAlbum(c, req, res); });
  svr.Get(R"(/api/projects/(\d+)/albums/(\d+)/photos)", [c](Req req, Res res) { ListPhotos(c, req, res); });
  svr.Post(R"(/api/projects/(\d+)/albums/(\d+)/photos)",
           [c](Req req, Res res, Reader reader) { HandleUpload(c, req, res, reader, false); });
  svr.Post(R"(/api/projects/(\d+)/albums/(\d+)/photos/(\d+)/revisions)",
           [c](Req req, Res res, Reader reader) { HandleUpload(c, req, res, reader, true); });
  svr.Get(R"(/api/projects/(\d+)/albums/(\d+)/photos/(\d+))", [c](Req req, Res res) { GetPhoto(c, req, res); });
  svr.Patch(R"(/api/projects/(\d+)/albums/(\d+)/photos/(\d+)/approval)", [c](Req req, Res res) { SetApproval(c, req, res); });
  svr.Post(R"(/api/projects/(\d+)/albums/(\d+)/photos/(\d+)/annotations)",
           [c](Req req, Res res) { CreateAnnotation(c, req, res); });
  svr.Delete(R"(/api/projects/(\d+)/albums/(\d+)/photos/(\d+)/annotations/(\d+))",
             [c](Req req, Res res) { DeleteAnnotation(c, req, res); });
  svr.Get("/api/user", [c](Req req, Res res) { ListUsers(c, req, res); });
  svr.Post("/api/user", [c](Req req, Res res) { CreateUser(c, req, res); });
  svr.Get(R"(/api/user/(\d+))", [c](Req req, Res res) { GetUser(c, req, res); });
  svr.Put(R"(/api/user/(\d+))", [c](Req req, Res res) { UpdateUser(c, req, res); });
  svr.Delete(R"(/api/user/(\d+))", [c](Req req, Res res) { DeleteUser(c, req, res); });
  svr.Get("/_emulator/photos", [c](Req req, Res res) { AdminPhotos(c, req, res); });

  Emulator::ServiceHooks hooks;
  hooks.reset = [st] {
    st->late.Cancel();  // pending late stores belong to the old state
    std::lock_guard lock(st->mu);
    st->Reset();
  };
  hooks.seed = [st](const Json& body) { return Seed(*st, body); };
  hooks.stats = [st](Json& out) {
    const std::size_t late = st->late.Pending();
    std::lock_guard lock(st->mu);
    std::map<std::int64_t, std::uint64_t> by_album;
    for (const auto& [id, p] : st->photos) ++by_album[p.album_id];
    out["shootbin"] = {{"projects", st->projects.size()}, {"albums", st->albums.size()}, {"photos", st->photos.size()}};
    out["uploads_attempted_by_album"] = CountsById(st->upload_attempts);
    out["revisions_attempted_by_album"] = CountsById(st->revision_attempts);
    out["photos_by_album"] = CountsById(by_album);
    out["late_stores_pending"] = late;
  };
  State* raw = st.get();
  hooks.shutdown = [raw] { raw->late.Shutdown(); };
  emu.AddServiceHooks(std::move(hooks));
}

}  // namespace emu
