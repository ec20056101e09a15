// CheckSetup: every check reads, none creates or sends. The order is the
// order of the fixes: config and secrets, local folders, then the services.
#include "shotsync/doctor.hpp"

#include <curl/curl.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "shotsync/exit_code.hpp"
#include "shotsync/session.hpp"
#include "shotsync/shared_store.hpp"
#include "shotsync/version.hpp"

namespace shotsync {
namespace {

class Checker {
 public:
  Checker(const Config& config, const std::function<void(const CheckLine&)>& emit) : config_(config), emit_(emit) {}

  void Run() {
    Local();
    if (config_.shootbin.token.empty()) {
      Fail("shootbin", "no token: set SHOOTBIN_API_TOKEN, or [shootbin] token_file (mode 600) in " + Source(),
           Code::kUnauthenticated);
    } else {
      Shootbin();
    }
    if (config_.headshotpro.key.empty()) {
      Warn("headshotpro", "no API key (only `pull` and `team` need one): set HEADSHOTPRO_API_KEY, or "
                          "[headshotpro] key_file (mode 600)");
    } else {
      HeadshotPro();
    }
    if (!config_.shared.url.empty()) Shared();
  }

 private:
  std::string Source() const { return config_.source.empty() ? "the config" : config_.source; }
  void Line(CheckLine::Result r, std::string subject, std::string message, Code code = Code::kOk) {
    emit_(CheckLine{r, std::move(subject), std::move(message), code});
  }
  void Ok(std::string subject, std::string message) { Line(CheckLine::kOk, std::move(subject), std::move(message)); }
  void Warn(std::string subject, std::string message) { Line(CheckLine::kWarn, std::move(subject), std::move(message)); }
  void Fail(std::string subject, std::string message, Code code = Code::kInvalidArgument) {
    Line(CheckLine::kFail, std::move(subject), std::move(message), code);
  }

  void Local() {
    Ok("shotsync", std::string(kVersion) + " on " + LibraryVersions());
    Ok("config", Source() + ": " + std::to_string(config_.roots.size()) + " root(s)");
    for (const std::string* url : {&config_.shootbin.base_url, &config_.headshotpro.base_url}) {
      if (url->starts_with("http://") && !IsLoopbackUrl(*url)) {
        Warn("config", *url + " is http:// (allow_insecure_http = true): the token crosses the network in clear text");
      }
    }
    if (config_.roots.empty()) Warn("config", "no [[roots]]: `sync` has nothing to send");
    if (!config_.shootbin.token.empty()) Ok("shootbin token", "from " + config_.shootbin.token_source);
    if (!config_.headshotpro.key.empty()) Ok("headshotpro key", "from " + config_.headshotpro.key_source);
    Folder("state", config_.state_dir);
    if (!config_.headshotpro.key.empty()) Folder("destination", config_.headshotpro.dest);
    for (const RootConfig& rc : config_.roots) {
      if (::access(rc.path.c_str(), R_OK | X_OK) != 0) {
        Fail("root " + rc.path, rc.where + ": " + Status::Io(rc.path, errno).message());
      }
    }
  }

  // Writable, or creatable by the first run (its nearest existing parent is writable).
  void Folder(const std::string& what, const std::string& dir) {
    std::filesystem::path p(dir);
    while (!p.empty() && ::access(p.c_str(), F_OK) != 0 && p != p.parent_path()) p = p.parent_path();
    const bool exists = p == std::filesystem::path(dir);
    if (::access(p.c_str(), W_OK | X_OK) != 0) {
      return Fail(what, dir + ": not writable (" + Status::Io(p.string(), errno).message() + ")");
    }
    Ok(what, dir + (exists ? ": writable" : ": will be created (mode 700)"));
  }

  void Shootbin() {
    ShootbinSession session(config_, nullptr);
    ShootbinClient& client = session.client();
    const std::string& base = config_.shootbin.base_url;
    HttpResponse r = client.ProbeProjects();
    if (!r.transport.ok()) return Fail("shootbin", "cannot reach " + base + ": " + r.transport.message(), r.transport.code());
    const bool html = r.Header("content-type").find("text/html") != std::string::npos;
    if ((html && !(r.status >= 300 && r.status < 400)) || r.status == 404) {
      return Fail("shootbin", base + " answers (HTTP " + std::to_string(r.status) + (html ? ", an HTML page" : "") +
                                  "), but not as the Shootbin API (/api/projects): is this your Shootbin "
                                  "instance? base_url is the address you sign in at");
    }
    if (Status st = client.CheckAnswer(r, "listing projects at " + base); !st.ok()) {
      return Fail("shootbin", st.message(), st.code());
    }
    auto projects = ParseNamedIds(r.body, "listing projects at " + base);
    if (!projects.ok()) {
      return Fail("shootbin", projects.status().message() + ": is this your Shootbin instance?");
    }
    Ok("shootbin", base + ": the API answers, the token is accepted and may list projects (" +
                       std::to_string(projects->size()) + ")");
    for (const RootConfig& rc : config_.roots) Root(client, *projects, rc);
  }

  void Root(ShootbinClient& client, const std::vector<NamedId>& projects, const RootConfig& rc) {
    const std::string subject = "root " + rc.path;
    auto project = FindNamedId(projects, rc.project, IdLookup{"project", ""});
    if (!project.ok()) {
      if (project.status().code() == Code::kNotFound && rc.create && !AllDigitsName(rc.project)) {
        return Ok(subject, "project \"" + rc.project + "\" will be created by the first sync (create = true)");
      }
      return Fail(subject, rc.where + ": " + project.status().message() + "; its projects: " +
                               ListNamedIds(projects, 8));
    }
    auto albums = client.ListAlbums(*project);
    if (!albums.ok()) return Fail(subject, rc.where + ": " + albums.status().message(), albums.status().code());
    auto album = FindNamedId(*albums, rc.album, IdLookup{"album", " in project " + std::to_string(*project)});
    if (!album.ok()) {
      if (album.status().code() == Code::kNotFound && rc.create && !AllDigitsName(rc.album)) {
        return Ok(subject, "project " + std::to_string(*project) + ", album \"" + rc.album +
                               "\" will be created by the first sync (create = true)");
      }
      return Fail(subject, rc.where + ": " + album.status().message() + "; its albums: " + ListNamedIds(*albums, 8));
    }
    Ok(subject, "project " + std::to_string(*project) + ", album " + std::to_string(*album));
  }

  static bool AllDigitsName(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= '0' && c <= '9'; });
  }

  void HeadshotPro() {
    HeadshotProSession session(config_, nullptr);
    auto credits = session.client().Credits();
    if (!credits.ok()) return Fail("headshotpro", credits.status().message(), credits.status().code());
    Ok("headshotpro", config_.headshotpro.base_url + ": the key is accepted (" + std::to_string(*credits) +
                          " credits left)");
  }

  void Shared() {
    auto store = SharedStore::Open(
        SharedOptions{.url = config_.shared.url, .host = config_.shared.host, .lease_s = double(config_.shared.lease)},
        true);
    if (!store.ok()) return Fail("shared store", store.status().message(), Code::kInvalidArgument);
    Ok("shared store", "reachable, schema current");
  }

  const Config& config_;
  const std::function<void(const CheckLine&)>& emit_;
};

}  // namespace

std::string LibraryVersions() {
  const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
  const int pq = PQlibVersion();  // e.g. 150010 for 15.10
  return "libcurl " + std::string(curl->version) + " (" + (curl->ssl_version ? curl->ssl_version : "no TLS") +
         "), SQLite " + sqlite3_libversion() + ", libpq " + std::to_string(pq / 10000) + "." +
         std::to_string(pq % 100);
}

void CheckSetup(const Config& config, const std::function<void(const CheckLine&)>& on_line) {
  Checker(config, on_line).Run();
}

int CheckExitCode(const std::vector<CheckLine>& lines) {
  int code = exit_code::kOk;
  for (const CheckLine& l : lines) {
    if (l.result != CheckLine::kFail) continue;
    if (l.code == Code::kUnauthenticated || l.code == Code::kForbidden) return exit_code::kAuth;
    code = exit_code::kUsage;  // the set-up is wrong, whatever the reason (an unreachable server too)
  }
  return code;
}

}  // namespace shotsync
