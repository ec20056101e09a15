#include "store/manifest_buckets.hpp"
#include "shotsync/pull.hpp"

#include "util/json_util.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "shotsync/hasher.hpp"
#include "shotsync/headshotpro.hpp"
#include "shotsync/throttle.hpp"
#include "shotsync/transfer.hpp"

namespace shotsync {

// ------------------------------------------------------------ name safety

namespace {

bool IsReservedDeviceName(std::string_view s) {
  // Windows device names, with or without an extension (a NAS share may refuse them).
  std::string stem(s.substr(0, s.find('.')));
  for (char& c : stem) c = char(std::toupper(static_cast<unsigned char>(c)));
  while (!stem.empty() && stem.back() == ' ') stem.pop_back();
  static const char* kNames[] = {"CON", "PRN", "AUX", "NUL"};
  for (const char* n : kNames) {
    if (stem == n) return true;
  }
  if (stem.size() == 4 && (stem.compare(0, 3, "COM") == 0 || stem.compare(0, 3, "LPT") == 0) &&
      stem[3] >= '1' && stem[3] <= '9') {
    return true;
  }
  return false;
}

// Length of the valid UTF-8 sequence at s[i], 0 when invalid.
std::size_t Utf8Len(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  }
  if (n == 2 && c < 0xc2) return 0;  // overlong
  return n;
}

std::string Clean(std::string_view raw, std::size_t max_bytes) {
  std::string out;
  for (std::size_t i = 0; i < raw.size();) {
    const auto c = static_cast<unsigned char>(raw[i]);
    const std::size_t n = Utf8Len(raw, i);
    if (n == 0) {  // invalid byte
      out += '_';
      ++i;
      continue;
    }
    if (n == 1) {
      if (c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == ':' || c == '*' || c == '?' ||
          c == '"' || c == '<' || c == '>' || c == '|') {
        out += '_';
      } else {
        out += char(c);
      }
    } else if (n == 2 && c == 0xc2 && static_cast<unsigned char>(raw[i + 1]) < 0xa0) {
      out += '_';  // C1 control characters
    } else {
      if (out.size() + n > max_bytes) break;
      out.append(raw.substr(i, n));
    }
    i += n;
    if (out.size() >= max_bytes) break;
  }
  if (out.size() > max_bytes) out.resize(max_bytes);
  // No leading dots/spaces (never "." or "..", never hidden), no trailing dots/spaces.
  std::size_t b = 0;
  while (b < out.size() && (out[b] == '.' || out[b] == ' ')) ++b;
  std::size_t e = out.size();
  while (e > b && (out[e - 1] == '.' || out[e - 1] == ' ')) --e;
  out = out.substr(b, e - b);
  if (!out.empty() && IsReservedDeviceName(out)) out = "_" + out;
  return out;
}

}  // namespace

std::string SanitizeComponent(std::string_view raw, std::string_view fallback, std::size_t max_bytes) {
  max_bytes = std::clamp<std::size_t>(max_bytes, 8, 200);
  std::string out = Clean(raw, max_bytes);
  if (out.empty()) out = Clean(fallback, max_bytes);
  if (out.empty()) out = "_";
  return out;
}

std::string UrlExtension(std::string_view url) {
  auto q = url.find_first_of("?#");
  std::string_view path = url.substr(0, q);
  const auto slash = path.rfind('/');
  if (slash != std::string_view::npos) path = path.substr(slash + 1);
  const auto dot = path.rfind('.');
  if (dot == std::string_view::npos || dot + 1 >= path.size()) return "jpg";
  std::string ext(path.substr(dot + 1));
  if (ext.size() > 5) return "jpg";
  for (char& c : ext) {
    c = char(std::tolower(static_cast<unsigned char>(c)));
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return "jpg";
  }
  return ext;
}

namespace {
const std::set<std::string>& LayoutVariables() {
  static const std::set<std::string> kVars = {"member", "member_id", "email", "team",  "model",
                                               "model_title", "photo", "ext",  "variant"};
  return kVars;
}
}  // namespace

Status ValidateLayout(std::string_view layout) {
  // The layout may hold any bytes (the fuzzer found control characters): quote it printable.
  const std::string where = "headshotpro.layout \"" + json::Printable(layout, 120) + "\": ";
  if (layout.empty() || layout.front() == '/') return Status::Invalid(where + "must be a relative path");
  if (layout.find("{photo}") == std::string_view::npos) return Status::Invalid(where + "must contain {photo}");
  std::size_t start = 0;
  while (start <= layout.size()) {
    auto end = layout.find('/', start);
    if (end == std::string_view::npos) end = layout.size();
    std::string_view seg = layout.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") {
      return Status::Invalid(where + "has an empty, \".\" or \"..\" segment");
    }
    for (std::size_t i = 0; i < seg.size(); ++i) {
      if (seg[i] == '\\' || static_cast<unsigned char>(seg[i]) < 0x20) {
        return Status::Invalid(where + "has a backslash or control character");
      }
      if (seg[i] != '{') continue;
      const auto close = seg.find('}', i);
      if (close == std::string_view::npos) return Status::Invalid(where + "has an unclosed {");
      const std::string var(seg.substr(i + 1, close - i - 1));
      if (!LayoutVariables().count(var)) {
        return Status::Invalid(where + "unknown variable {" + json::Printable(var, 40) +
                               "} (known: member, member_id, email, team, model, model_title, photo, ext, variant)");
      }
      i = close;
    }
    start = end + 1;
  }
  return Status::Ok();
}

std::map<std::string, std::string> LayoutValues(const LayoutSubject& s, bool variant_in_layout) {
  const std::string suffix = s.variant != "main" && !variant_in_layout ? "_" + std::string(s.variant) : "";
  return {{"member", SanitizeComponent(s.member_name, SanitizeComponent(s.email, s.member_id))},
          {"member_id", SanitizeComponent(s.member_id)},
          {"email", SanitizeComponent(s.email, s.member_id)},
          {"team", SanitizeComponent(s.team, "no-team")},
          {"model", SanitizeComponent(s.model_id)},
          {"model_title", SanitizeComponent(s.model_title, s.model_id)},
          {"photo", SanitizeComponent(s.photo_id) + suffix},
          {"ext", UrlExtension(s.url)},
          {"variant", SanitizeComponent(s.variant)}};
}

Result<std::string> ExpandLayout(std::string_view layout, const std::map<std::string, std::string>& vars) {
  SHOTSYNC_RETURN_IF_ERROR(ValidateLayout(layout));
  std::string out;
  std::size_t start = 0;
  while (start <= layout.size()) {
    auto end = layout.find('/', start);
    if (end == std::string_view::npos) end = layout.size();
    std::string_view seg = layout.substr(start, end - start);
    std::string expanded;
    for (std::size_t i = 0; i < seg.size(); ++i) {
      if (seg[i] != '{') {
        expanded += seg[i];
        continue;
      }
      const auto close = seg.find('}', i);
      const std::string var(seg.substr(i + 1, close - i - 1));
      auto it = vars.find(var);
      expanded += SanitizeComponent(it == vars.end() ? std::string_view() : std::string_view(it->second));
      i = close;
    }
    // The literal parts come from the config, the values are clean; check the result anyway.
    if (expanded.empty() || expanded == "." || expanded == ".." || expanded.size() > 255 ||
        expanded.find('\0') != std::string::npos) {
      return Status::Invalid("layout gives an unusable path segment \"" + SanitizeComponent(expanded) + "\"");
    }
    if (!out.empty()) out += '/';
    out += expanded;
    start = end + 1;
  }
  if (out.size() > 3000) return Status::Invalid("layout gives a path longer than 3000 bytes");
  return out;
}

bool PathInside(std::string_view path, std::string_view root) {
  if (root == "/") return !path.empty() && path.front() == '/';
  if (path.size() < root.size() || path.compare(0, root.size(), root) != 0) return false;
  return path.size() == root.size() || path[root.size()] == '/';
}

// ------------------------------------------- lengths in server answers

std::optional<std::uint64_t> RangeTotal(const std::string& v) {
  const auto slash = v.rfind('/');
  if (slash == std::string::npos || slash + 1 >= v.size() || v[slash + 1] == '*') return std::nullopt;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v.c_str() + slash + 1, &end, 10);
  if (end == v.c_str() + slash + 1) return std::nullopt;
  return std::uint64_t(n);
}

std::optional<std::uint64_t> ContentLength(const HttpResponse& r) {
  const std::string v = r.Header("content-length");
  if (v.empty()) return std::nullopt;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (end == v.c_str()) return std::nullopt;
  return std::uint64_t(n);
}

int PullExitCode(const PullReport& r) {
  switch (r.status.code()) {
    case Code::kOk: return r.failed > 0 ? 1 : 0;
    case Code::kCancelled: return 5;
    case Code::kUnauthenticated:
    case Code::kForbidden: return 3;
    case Code::kInvalidArgument:
    case Code::kCorrupt:
    case Code::kUnsupported: return 2;
    default: return 1;
  }
}

// ----------------------------------------------------------------- the run

namespace {

using Clock = std::chrono::steady_clock;

std::string Lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}


std::optional<std::uint64_t> FileSize(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return std::uint64_t(st.st_size);
}

// One model whose photos are pulled.
struct ModelState {
  std::string id, member_id, member_name, email, team, title;
  int gen = 0;                // listings made of it
  double listed_at = 0;       // wall seconds of the last listing
  const void* refresh_cause = nullptr;  // the task whose refusal caused the last listing
};

struct Task {
  std::size_t model = 0;  // index in models_
  std::string photo_id, variant, remote_id;
  std::string url;
  double expires_s = 0;
  double lifetime = 0;  // expires - listed_at, as seen when listed
  int started_gen = 0;  // the model's listing generation the running URL came from
  std::string final_path, part_path, dir;
  int attempts = 0, refreshes = 0;
  std::uint64_t expected = 0;  // length to verify (from the answer)
  bool resumed = false;
  enum State { kQueued, kFlight, kFinishing, kDone, kDropped } state = kQueued;
};

// What the lister thread and the engine / finisher threads send to the main thread.
struct Event {
  enum Kind { kModel, kListError, kListDone, kTransfer, kFinished } kind = kModel;
  ModelState model;
  std::vector<HpPhoto> photos;
  Status status;
  Task* task = nullptr;
  HttpResponse resp;
};

class EventQueue {
 public:
  void Push(Event e) {
    {
      std::lock_guard lock(mu_);
      q_.push_back(std::move(e));
    }
    cv_.notify_one();
  }
  // Waits until an event arrives or `until`; returns every event waiting.
  std::deque<Event> Take(Clock::time_point until) {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, until, [&] { return !q_.empty(); });
    std::deque<Event> out;
    out.swap(q_);
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> q_;
};

// Makes finished downloads durable and renames them into place, off the main
// thread, as a group commit: every .part that completed while the previous
// batch was being flushed goes into the next batch, and a batch is made
// durable with ONE syncfs() of the destination's file system instead of one
// fsync() per file (500 fsyncs cost seconds; one syncfs of the same data, a
// tenth of that). The invariant is the same as with per-file fsync: a file
// gets its final name only after its bytes are on disk. Lone files, or a
// file system where syncfs is slow because of other writers (a batch over
// 2 s), use per-file fsync instead.
class Finisher {
 public:
  Finisher(std::string dest, EventQueue& out) : dest_(std::move(dest)), out_(out), thread_([this] { Loop(); }) {}
  ~Finisher() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Add(Task* t) {
    {
      std::lock_guard lock(mu_);
      q_.push_back(t);
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    for (;;) {
      std::deque<Task*> batch;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return done_ || !q_.empty(); });
        if (q_.empty()) return;
        batch.swap(q_);
      }
      std::vector<Status> st(batch.size());
      std::vector<int> fds(batch.size(), -1);
      for (std::size_t i = 0; i < batch.size(); ++i) st[i] = Open(*batch[i], fds[i]);
      bool synced = false;
      if (batch.size() > 1 && use_syncfs_) {
        const auto t0 = Clock::now();
        const int dfd = ::open(dest_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        synced = dfd >= 0 && ::syncfs(dfd) == 0;
        if (dfd >= 0) ::close(dfd);
        if (Clock::now() - t0 > std::chrono::seconds(2)) use_syncfs_ = false;
      }
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (st[i].ok() && !synced && ::fsync(fds[i]) != 0) st[i] = Status::Io("fsync " + batch[i]->part_path, errno);
        if (fds[i] >= 0) ::close(fds[i]);
        if (st[i].ok() && ::rename(batch[i]->part_path.c_str(), batch[i]->final_path.c_str()) != 0) {
          st[i] = Status::Io("renaming " + batch[i]->part_path + " into place", errno);
        }
        Event e;
        e.kind = Event::kFinished;
        e.task = batch[i];
        e.status = std::move(st[i]);
        out_.Push(std::move(e));
      }
    }
  }

  static Status Open(const Task& t, int& fd) {
    fd = ::open(t.part_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::Io(t.part_path, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Status::Io(t.part_path, errno);
    if (std::uint64_t(st.st_size) != t.expected) {
      return Status::Corrupt(t.part_path + ": has " + std::to_string(st.st_size) + " bytes, expected " +
                             std::to_string(t.expected));
    }
    return Status::Ok();
  }

  const std::string dest_;
  EventQueue& out_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task*> q_;
  bool done_ = false;
  bool use_syncfs_ = true;  // finisher thread only
  std::thread thread_;      // last: starts after the members it uses
};

class PullRun {
 public:
  PullRun(const Config& config, Manifest& manifest, std::unique_ptr<Manifest> bucket_db,
          const PullOptions& options, const PullEventFn& on_event)
      : config_(config), db_(manifest), bucket_db_(std::move(bucket_db)), options_(options),
        on_event_(on_event), jobs_(std::clamp(options.jobs > 0 ? options.jobs : config.jobs, 1, 64)),
        include_(options.include.empty() ? config.headshotpro.include : options.include),
        buckets_(*bucket_db_),
        engine_(TransferOptions{.max_concurrent = jobs_ + 1,  // + 1: a listing need not wait for a download
                                .max_per_host = jobs_ + 1,
                                .ca_file = config.ca_file,
                                .stall_timeout = std::chrono::seconds(config.stall_timeout),
                                .queue_capacity = std::size_t(4 * jobs_ + 16)}),
        throttle_(Throttle::Options{.key = BucketKey("headshotpro", config.headshotpro.key),
                                    .rpm = double(config.headshotpro.rpm),
                                    .shared = &buckets_}),
        client_(engine_, throttle_, config.headshotpro.base_url, config.headshotpro.key,
                config.headshotpro.key_source),
        rng_(std::random_device{}()) {}

  PullReport Run() {
    const auto t0 = Clock::now();
    auto run_id = db_.BeginRun(options_.command, int(::getpid()));
    report_.status = Prepare();
    if (report_.status.ok()) {
      {
        Finisher finisher(dest_real_, events_);
        finisher_ = &finisher;
        lister_ = std::thread([this] { ListAll(); });
        Loop();
        lister_stop_ = true;
        lister_.join();
        finisher_ = nullptr;
      }  // the finisher's threads are joined: no more events
      for (Event& e : events_.Take(Clock::now())) Handle(std::move(e));
      for (auto& t : tasks_) {
        if (t->state == Task::kQueued && !Stopping(false)) {
          // Should not happen; never leave a file unaccounted for.
          Fail(*t, "not attempted");
        }
      }
      Flush();
      engine_.Shutdown(true);
    }
    if (report_.status.ok() && Stopping(false)) {
      report_.status = Status(Code::kCancelled, "interrupted: run the same command to resume (.part files are kept)");
    }
    report_.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    report_.requests = throttle_.granted();
    report_.throttled_429 = throttle_.throttled_429();
    if (run_id.ok()) {
      RunCounts counts;
      counts.downloaded = report_.downloaded;
      counts.skipped = report_.skipped + report_.not_restored;
      counts.failed = report_.failed;
      counts.bytes = report_.bytes;
      (void)db_.EndRun(*run_id, counts, PullExitCode(report_));
    }
    (void)db_.Checkpoint();
    return std::move(report_);
  }

 private:
  // --- set-up --------------------------------------------------------------

  Status Prepare() {
    const auto& hp = config_.headshotpro;
    if (hp.key.empty()) {
      return Status(Code::kUnauthenticated,
                    "no HeadshotPro API key: set HEADSHOTPRO_API_KEY (or headshotpro.key_file in " +
                        (config_.source.empty() ? std::string("the config") : config_.source) + ")");
    }
    if (include_ != "main" && include_ != "all") return Status::Invalid("--include must be main or all");
    SHOTSYNC_RETURN_IF_ERROR(ValidateLayout(hp.layout));
    if (hp.dest.empty()) return Status::Invalid("headshotpro.dest is not set in " + config_.source);
    std::error_code ec;
    std::filesystem::create_directories(hp.dest, ec);
    if (ec) {
      return Status(Code::kIo, "destination " + hp.dest + " cannot be created: " + ec.message());
    }
    char buf[PATH_MAX];
    if (!::realpath(hp.dest.c_str(), buf)) return Status::Io("destination " + hp.dest, errno);
    dest_real_ = buf;
    if (!options_.dry_run && ::access(dest_real_.c_str(), W_OK | X_OK) != 0) {
      return Status(Code::kIo, "destination " + dest_real_ + " is not writable: " + std::strerror(errno));
    }
    return Status::Ok();
  }

  bool Stopping(bool abort_only) const {
    if (options_.abort && options_.abort->load()) return true;
    if (abort_only) return false;
    return fatal_ || (options_.stop && options_.stop->load());
  }

  void SetFatal(Status st) {
    if (report_.status.ok()) report_.status = std::move(st);
    fatal_ = true;
  }

  void Emit(const PullEvent& e) {
    if (on_event_) on_event_(e);
  }

  // --- listing (lister thread) ----------------------------------------------

  bool ListerStopping() const { return lister_stop_.load() || Stopping(false) || fatal_seen_.load(); }

  void PushError(Status st) {
    Event e;
    e.kind = Event::kListError;
    e.status = std::move(st);
    events_.Push(std::move(e));
  }

  void ListAll() {
    ListModels();
    Event done;
    done.kind = Event::kListDone;
    events_.Push(std::move(done));
  }

  void ListModels() {
    // Members and models are independent listings: ask for both at once (one round trip saved).
    const bool need_models = !(options_.favorites && options_.member.empty());
    auto models_future = std::async(std::launch::async, [this, need_models]() -> Result<std::vector<HpModel>> {
      if (!need_models) return std::vector<HpModel>();
      return client_.ListModels("active");
    });
    auto members = client_.ListMembers("finished");
    auto models = models_future.get();
    if (!members.ok()) return PushError(members.status());
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
    auto member_state = [](const HpMember& m, const std::string& model_id) {
      ModelState s;
      s.id = model_id;
      s.member_id = m.id;
      s.member_name = m.name;
      s.email = m.email;
      s.team = m.team_name;
      return s;
    };

    if (options_.favorites && options_.member.empty()) {
      // Org-wide favorites: one listing with member context.
      auto favs = client_.ListFavorites();
      if (!favs.ok()) return PushError(favs.status());
      std::map<std::string, Event> per_model;
      for (HpFavorite& f : *favs) {
        auto it = by_email.find(Lower(f.email));
        if (it == by_email.end()) continue;  // not a finished member
        Event& e = per_model[f.model_id];
        if (e.model.id.empty()) e.model = member_state(*it->second, f.model_id);
        e.photos.push_back(std::move(f.photo));
      }
      for (auto& [id, e] : per_model) {
        e.kind = Event::kModel;
        e.model.listed_at = WallSeconds();
        events_.Push(std::move(e));
      }
      return;
    }

    // Members -> models: the active models with the member's email, plus the member's modelId.
    if (!models.ok()) return PushError(models.status());
    std::vector<ModelState> todo;
    std::set<std::string> have;
    for (const HpModel& md : *models) {
      auto it = by_email.find(Lower(md.email));
      if (it == by_email.end() || md.id.empty() || !have.insert(md.id).second) continue;
      ModelState s = member_state(*it->second, md.id);
      s.title = md.title;
      if (s.team.empty()) s.team = md.team_name;
      todo.push_back(std::move(s));
    }
    for (const HpMember& m : chosen) {
      if (!m.model_id.empty() && have.insert(m.model_id).second) todo.push_back(member_state(m, m.model_id));
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

  // The photos (or the favorite) of one model, as the run lists them.
  Result<std::vector<HpPhoto>> ListModelPhotos(const std::string& model_id) {
    if (options_.favorites) {
      auto fav = client_.Favorite(model_id);
      if (!fav.ok()) return fav.status();
      std::vector<HpPhoto> v;
      if (*fav) v.push_back(std::move(**fav));
      return v;
    }
    return client_.ListPhotos(model_id, include_);
  }

  // --- tasks (main thread) -----------------------------------------------------

  void AddModel(ModelState m, std::vector<HpPhoto> photos) {
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

  void AddTask(std::size_t model_index, const HpPhoto& p, const std::string& variant, const std::string& url) {
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
    auto rel = ExpandLayout(
        layout, LayoutValues({m.member_id, m.member_name, m.email, m.team, m.id, m.title, p.id, variant, url},
                             variant_in_layout));
    Task& task = *t;
    tasks_.push_back(std::move(t));
    if (!rel.ok()) return Fail(task, rel.status().message());
    task.final_path = dest_real_ + "/" + *rel;
    task.dir = task.final_path.substr(0, task.final_path.rfind('/'));
    task.part_path = task.final_path + ".part";
    if (!paths_.insert(task.final_path).second) {
      return Fail(task, "its file name " + task.final_path + " is already taken by another photo of this run");
    }

    // Incremental: done before?
    auto rec = db_.GetDownload(task.remote_id);
    if (!rec.ok()) return SetFatal(rec.status());
    if (*rec && (*rec)->state == DownloadState::kDone) {
      struct stat st {};
      if (::stat((*rec)->dest_path.c_str(), &st) == 0) {
        ++report_.skipped;
        task.state = Task::kDropped;
        Emit({PullEvent::kSkipped, (*rec)->dest_path, 0, "already downloaded"});
        return;
      }
      if (!options_.restore) {
        ++report_.not_restored;
        task.state = Task::kDropped;
        Emit({PullEvent::kSkipped, (*rec)->dest_path, 0, "deleted locally; --restore fetches it again"});
        return;
      }
    }
    if (options_.dry_run) {
      ++report_.planned;
      task.state = Task::kDropped;
      Emit({PullEvent::kPlanned, task.final_path, 0, "would download"});
      return;
    }
    Status dir = MakeDir(task.dir);
    if (!dir.ok()) {
      if (dir.code() == Code::kIo) return SetFatal(dir);
      return Fail(task, dir.message());
    }
    by_model_[model_index].push_back(&task);
    ready_.push_back(&task);
    Emit({PullEvent::kQueued, task.final_path, 0, ""});
  }

  // Creates the directory and checks (realpath) that it lies inside dest.
  Status MakeDir(const std::string& dir) {
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

  void Fail(Task& t, const std::string& reason) {
    t.state = Task::kDropped;
    ++report_.failed;
    const std::string what = t.final_path.empty() ? "photo " + t.photo_id : t.final_path;
    report_.failures.push_back({what, reason});
    failed_rows_.push_back({t.remote_id, models_[t.model].member_id, models_[t.model].id, t.final_path, 0,
                            FileSize(t.part_path).value_or(0), DownloadState::kFailed, reason});
    Emit({PullEvent::kFailed, what, 0, reason});
  }

  void Gone(Task& t, const std::string& reason) {
    t.state = Task::kDropped;
    ++report_.gone;
    ::unlink(t.part_path.c_str());
    Emit({PullEvent::kSkipped, t.final_path, 0, reason});
  }

  // --- signed URLs -------------------------------------------------------------

  static double Margin(double lifetime) { return std::min(300.0, lifetime / 4); }

  bool NearExpiry(const Task& t) const {
    if (t.expires_s <= 0 || t.lifetime <= 0) return false;  // unknown, or a skewed clock: let the CDN judge
    return WallSeconds() >= t.expires_s - Margin(t.lifetime);
  }

  // Lists the model's photos again and gives its waiting tasks the fresh URLs.
  Status Refresh(std::size_t model_index, const void* cause) {
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
  bool RefreshFailed(Task& t, const Status& st) {
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

  // --- downloads ---------------------------------------------------------------

  void Dispatch() {
    const auto now = Clock::now();
    while (!delayed_.empty() && delayed_.begin()->first <= now) {
      ready_.push_front(delayed_.begin()->second);
      delayed_.erase(delayed_.begin());
    }
    // Up to `jobs` run at once (the engine's cap). With long-lived URLs a few
    // more wait in the engine's queue, so that a finished transfer is followed
    // by the next at once, without a round trip through this thread; short-lived
    // URLs are handed over only when a slot is free (they could expire queued).
    while (!ready_.empty() && !Stopping(false) &&
           (in_flight_ < jobs_ || (in_flight_ < 3 * jobs_ && ready_.front()->lifetime > 120))) {
      Task* t = ready_.front();
      ready_.pop_front();
      if (t->state != Task::kQueued) continue;
      if (NearExpiry(*t)) {
        Status st = Refresh(t->model, nullptr);
        if (!st.ok() && !RefreshFailed(*t, st)) continue;
        if (t->state != Task::kQueued) continue;
      }
      Start(*t);
    }
  }

  void Start(Task& t) {
    HttpRequest req;
    req.url = t.url;
    req.download_path = t.part_path;
    const auto have = FileSize(t.part_path);
    req.resume_from = have.value_or(0);
    if (req.resume_from > 0 && !t.resumed) {
      t.resumed = true;
      ++report_.resumed;
    }
    req.throttle = nullptr;  // the CDN is not counted against the API limit (headshotpro.md §2.6)
    req.timeout = std::chrono::seconds(600);
    t.state = Task::kFlight;
    t.started_gen = models_[t.model].gen;
    ++in_flight_;
    Task* tp = &t;
    engine_.Submit(std::move(req), [this, tp](HttpResponse&& r) {
      Event e;
      e.kind = Event::kTransfer;
      e.task = tp;
      e.resp = std::move(r);
      events_.Push(std::move(e));
    });
  }

  void Retry(Task& t, const std::string& reason) {
    t.state = Task::kQueued;
    if (++t.attempts >= options_.max_attempts) {
      return Fail(t, reason + " (gave up after " + std::to_string(t.attempts) + " attempts)");
    }
    ++report_.retries;
    const double cap = std::min(10.0, 0.25 * double(1 << std::min(t.attempts, 6)));
    const double wait = std::uniform_real_distribution<double>(cap / 2, cap)(rng_);
    delayed_.emplace(Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait)), &t);
  }

  void Truncate(const Task& t) {
    if (::truncate(t.part_path.c_str(), 0) != 0 && errno != ENOENT) {
      SetFatal(Status::Io(t.part_path, errno));
    }
  }

  void OnTransfer(Task& t, HttpResponse& r) {
    --in_flight_;
    t.state = Task::kQueued;
    report_.bytes += r.bytes_received;
    if (!r.transport.ok()) {
      switch (r.transport.code()) {
        case Code::kCancelled:
          return;  // stopping; the .part stays
        case Code::kIo:
          // Disk full, unwritable folder...: every other file would fail the same way.
          return SetFatal(Status(Code::kIo, r.transport.message() + " (partial files are kept for the next run)"));
        case Code::kInvalidArgument:  // untrusted certificate, or a range past the end
          return SetFatal(Status(Code::kInvalidArgument,
                                 r.transport.message() + " (partial files are kept for the next run)"));
        case Code::kCorrupt:  // e.g. a 206 for the wrong range: start the file over
          Truncate(t);
          return Retry(t, r.transport.message());
        default:
          return Retry(t, r.transport.message());
      }
    }
    const auto have = FileSize(t.part_path).value_or(0);
    const std::string tail = " (HTTP " + std::to_string(r.status) + ")";
    if (r.status == 200 || r.status == 206) {
      std::optional<std::uint64_t> total =
          r.status == 206 ? RangeTotal(r.Header("content-range")) : ContentLength(r);
      if (total && have < *total) return Retry(t, "download ended early at " + std::to_string(have) + " of " +
                                                      std::to_string(*total) + " bytes");
      if (total && have > *total) {
        Truncate(t);
        return Retry(t, "file is longer than the server's length; fetching it again");
      }
      t.expected = have;
      return Finish(t);
    }
    if (r.status == 416) {
      const auto total = RangeTotal(r.Header("content-range"));
      if (total && have == *total && have > 0) {  // the .part was complete already
        t.expected = have;
        return Finish(t);
      }
      Truncate(t);
      return Retry(t, "range not satisfiable; fetching the file again");
    }
    if (r.status == 401 || r.status == 403 || r.status == 410) {
      ModelState& m = models_[t.model];
      const std::string why = "signed URL refused" + tail + ": " + json::Printable(r.body, 120);
      if (t.started_gen < m.gen) return Start(t);  // a newer listing already gave it a fresh URL
      if (m.refresh_cause == &t || ++t.refreshes > 5) {
        return Fail(t, why + ", again right after a fresh listing");
      }
      Status st = Refresh(t.model, &t);
      if (!st.ok()) {
        RefreshFailed(t, st);
        return;
      }
      if (t.state == Task::kQueued) ready_.push_front(&t);
      return;
    }
    if (r.status == 404) return Gone(t, "no longer on the CDN" + tail);
    Retry(t, "CDN answered" + tail);
  }

  void Finish(Task& t) {
    t.state = Task::kFinishing;
    ++finishing_;
    finisher_->Add(&t);
  }

  void OnFinished(Task& t, const Status& st) {
    --finishing_;
    if (!st.ok()) {
      if (st.code() == Code::kIo) {
        t.state = Task::kQueued;
        return SetFatal(Status(Code::kIo, st.message() + " (partial files are kept for the next run)"));
      }
      Truncate(t);
      return Retry(t, st.message());
    }
    t.state = Task::kDone;
    ++report_.downloaded;
    done_rows_.push_back({t.remote_id, models_[t.model].member_id, models_[t.model].id, t.final_path,
                          t.expected, t.expected, DownloadState::kDone, ""});
    dirty_dirs_.insert(t.dir);
    Emit({PullEvent::kDownloaded, t.final_path, t.expected, ""});
  }

  // Makes the renames durable (directory fsync), then records the ids as done.
  void Flush() {
    last_flush_ = Clock::now();
    if (done_rows_.empty() && failed_rows_.empty()) return;
    for (const std::string& d : dirty_dirs_) {
      const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd >= 0) {
        (void)::fsync(fd);
        ::close(fd);
      }
    }
    dirty_dirs_.clear();
    Status st = db_.BeginBatch();
    for (const DownloadRecord& r : done_rows_) {
      if (st.ok()) st = db_.PutDownload(r);
    }
    for (const DownloadRecord& r : failed_rows_) {
      if (st.ok()) st = db_.PutDownload(r);
    }
    Status commit = db_.CommitBatch();
    if (st.ok()) st = commit;
    if (!st.ok()) SetFatal(st.WithContext("recording downloads in the manifest"));
    done_rows_.clear();
    failed_rows_.clear();
  }

  void Handle(Event e) {
    switch (e.kind) {
      case Event::kModel:
        if (!fatal_) AddModel(std::move(e.model), std::move(e.photos));
        break;
      case Event::kListError:
        if (e.status.code() == Code::kNotFound) {
          ++report_.failed;
          report_.failures.push_back({"listing", e.status.message()});
          Emit({PullEvent::kFailed, "listing", 0, e.status.message()});
        } else {
          fatal_seen_ = true;
          SetFatal(e.status);
        }
        break;
      case Event::kListDone:
        listing_done_ = true;
        Emit({PullEvent::kListed, "", 0, ""});
        break;
      case Event::kTransfer:
        OnTransfer(*e.task, e.resp);
        break;
      case Event::kFinished:
        OnFinished(*e.task, e.status);
        break;
    }
  }

  void Loop() {
    bool aborted = false;
    for (;;) {
      if (!aborted && Stopping(true)) {
        aborted = true;
        lister_stop_ = true;
        engine_.Shutdown(true);  // running downloads end with kCancelled; .part files stay
      }
      if (!Stopping(false)) Dispatch();
      const bool waiting_work = !Stopping(false) && (!ready_.empty() || !delayed_.empty());
      if (listing_done_ && in_flight_ == 0 && finishing_ == 0 && !waiting_work) break;
      auto until = Clock::now() + std::chrono::milliseconds(200);
      if (!delayed_.empty() && !Stopping(false)) until = std::min(until, delayed_.begin()->first);
      for (Event& e : events_.Take(until)) Handle(std::move(e));
      if (Clock::now() - last_flush_ > std::chrono::milliseconds(250)) Flush();
    }
  }

  const Config& config_;
  Manifest& db_;
  std::unique_ptr<Manifest> bucket_db_;
  const PullOptions& options_;
  const PullEventFn& on_event_;
  const int jobs_;
  const std::string include_;
  ManifestBuckets buckets_;
  TransferEngine engine_;
  Throttle throttle_;
  HeadshotProClient client_;
  std::mt19937 rng_;

  std::string dest_real_;
  PullReport report_;
  std::atomic<bool> fatal_{false};  // read by the lister thread
  std::atomic<bool> fatal_seen_{false}, lister_stop_{false};
  EventQueue events_;
  Finisher* finisher_ = nullptr;
  std::thread lister_;
  bool listing_done_ = false;

  std::deque<ModelState> models_;
  std::set<std::string> members_seen_;
  std::vector<std::unique_ptr<Task>> tasks_;
  std::set<std::string> task_keys_, paths_, dirs_ok_;
  std::unordered_map<std::size_t, std::vector<Task*>> by_model_;
  std::deque<Task*> ready_;
  std::multimap<Clock::time_point, Task*> delayed_;
  int in_flight_ = 0, finishing_ = 0;
  std::vector<DownloadRecord> done_rows_, failed_rows_;
  std::set<std::string> dirty_dirs_;
  Clock::time_point last_flush_ = Clock::now();
};

}  // namespace

PullReport RunPull(const Config& config, Manifest& manifest, const PullOptions& options,
                   const PullEventFn& on_event) {
  auto bucket_db = Manifest::Open(config.ManifestPath());
  if (!bucket_db.ok()) {
    PullReport r;
    r.status = bucket_db.status();
    return r;
  }
  PullRun run(config, manifest, std::move(*bucket_db), options, on_event);
  return run.Run();
}

}  // namespace shotsync
