// TransferEngine over the libcurl multi interface (see include/shotsync/transfer.hpp).
//
// Threads. One loop thread owns the multi handle, every easy handle and every
// job from the moment it leaves the intake queue: it is the only thread that
// calls curl (apart from curl_multi_wakeup, which is thread-safe). Submit()
// appends to the intake queue under a mutex and wakes the loop.
//
// Job life: intake -> ready -> (parked until its throttle grants a token) ->
// active (an easy handle in the multi) -> callback. A 429 that the throttle
// accepts sends the job back to ready with fresh state (it will be parked
// for the pause); after kMax429 consecutive 429s the caller gets the 429.
//
// Back-pressure. The loop takes jobs from the intake only while it has a free
// transfer slot and holds fewer than max_concurrent + queue_capacity jobs in
// all, so Submit blocks once the intake is full and memory stays bounded.
//
// Waiting. curl_multi_poll sleeps until socket activity, curl's own timers,
// a wakeup (Submit, Shutdown, a throttle's keeper) or the next parked job is
// due (at most 1 s): the loop never spins.
//
// SQLite. The loop thread never touches the manifest: Throttle::TryAcquire
// and OnResponse only read the throttle's memory. A throttle shared through
// the manifest (BucketStore) has its own keeper thread for the store; when
// it has new tokens it calls the Waker registered here (any thread), which
// records the throttle and calls curl_multi_wakeup; the loop then re-asks the
// jobs parked on that throttle (UnparkWoken). The Waker outlives neither
// side's need: the throttle holds it by shared_ptr, and the engine closes it
// before the multi handle goes, so a late wake-up is a no-op.
//
// Bandwidth limit: one byte bucket per direction (net/bandwidth.hpp), drawn
// on by curl's callbacks: an upload's file part reads only the bytes its
// transfer holds, a download's write callback takes a body chunk only while
// its transfer holds bytes; with none left the callback asks the bucket for a
// chunk (kChunk bytes) and, when it has none, pauses the transfer (a
// download returns CURL_WRITEFUNC_PAUSE; an upload calls curl_easy_pause and
// reads one 16 KiB step on credit, see Allow) and queues it as hungry. The
// loop hands chunks to the hungry in the order they asked (each gets its
// turn: no transfer starves into the stall timeout) and unpauses them
// (curl_easy_pause), asking the bucket again when it said (a timer in the
// poll wait) or when its keeper wakes the loop: nothing polls, and the loop
// never waits for the store. Bytes a transfer held when it ended go to the
// next one. The limits are re-read from the timetable when the one in force
// ends (the loop wakes at least every second). Adaptive parallelism: a
// direction's limited transfers hold one of `cap` slots (rate /
// bw_min_share, at least 1) from the moment they pass the rate-limit queue;
// the others wait, not started.
#include "shotsync/transfer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "net/bandwidth.hpp"
#include "net/curl_handles.hpp"
#include "net/multipart.hpp"
#include "shotsync/fd.hpp"

namespace shotsync {
namespace {

using Clock = std::chrono::steady_clock;
using namespace net;

constexpr int kMax429 = 10;            // consecutive 429s before the caller sees one
constexpr long kLowSpeedBytes = 1024;  // "< 1 KB/s for low_speed_time" aborts
constexpr long kBufferBytes = 256 * 1024;
constexpr auto kMaxPollWait = std::chrono::milliseconds(1000);
constexpr std::size_t kCreditStep = 16 << 10;  // an upload read past its bandwidth bytes (see Allow)

// scheme://host[:port]/path, without user info, query or fragment: signed
// URLs carry credentials in the query, and messages must never show them.
std::string RedactUrl(const std::string& url) {
  std::string out = url.substr(0, url.find_first_of("?#"));
  const auto scheme = out.find("://");
  const std::size_t host_start = scheme == std::string::npos ? 0 : scheme + 3;
  const auto path_start = out.find('/', host_start);
  const auto at = out.find('@', host_start);
  if (at != std::string::npos && (path_start == std::string::npos || at < path_start)) {
    out.erase(host_start, at + 1 - host_start);
  }
  return out;
}

char Lower(char c) {
  return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
}

std::string_view TrimWs(std::string_view s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

// First byte position of "bytes 100-199/200"; nullopt for anything else.
std::optional<std::uint64_t> ContentRangeStart(std::string_view v) {
  v = TrimWs(v);
  if (v.substr(0, 6) != "bytes ") return std::nullopt;
  v.remove_prefix(6);
  std::uint64_t n = 0;
  std::size_t i = 0;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9' && i < 19; ++i)
    n = n * 10 + std::uint64_t(v[i] - '0');
  if (i == 0 || i >= v.size() || v[i] != '-') return std::nullopt;
  return n;
}

}  // namespace

std::string HttpResponse::Header(std::string_view lower_name) const {
  auto it = headers.find(std::string(lower_name));
  return it == headers.end() ? std::string() : it->second;
}

namespace {

// Wake-ups from throttle keepers (any thread) to the loop.
class Waker {
 public:
  explicit Waker(CURLM* multi) : multi_(multi) {}
  void Wake(const Throttle* t) {
    std::lock_guard lock(mu_);
    if (!multi_) return;
    woken_.push_back(t);
    curl_multi_wakeup(multi_);
  }
  std::vector<const Throttle*> Take() {
    std::lock_guard lock(mu_);
    return std::exchange(woken_, {});
  }
  void Close() {
    std::lock_guard lock(mu_);
    multi_ = nullptr;
  }

 private:
  std::mutex mu_;
  CURLM* multi_;
  std::vector<const Throttle*> woken_;  // compared with jobs' throttles, never dereferenced
};

}  // namespace

struct TransferEngine::Impl {
  enum { kUp = 0, kDown = 1 };
  struct Job final : BodyPacer {
    HttpRequest req;
    Callback done;
    HttpResponse resp;
    Impl* impl = nullptr;
    std::string what;  // "GET https://host/path" for messages
    // Per attempt (reset by Reset()).
    EasyPtr easy;
    std::unique_ptr<MultipartBody> multipart;  // a multipart body, read by curl
    SlistPtr headers;
    int fd = -1;
    bool in_body = false;  // the current response's first body byte was seen
    bool to_file = false;  // the current response's body goes to the file
    std::uint64_t file_pos = 0;
    Status local_error;     // set by a callback that stopped the transfer
    curl_off_t ul_now = 0;  // upload progress (xferinfo), for counters
    int consecutive_429 = 0;
    char errbuf[CURL_ERROR_SIZE] = {};
    // Bandwidth: the direction whose limit paces the body (-1 = none), the
    // bytes it may still send / take, and whether it holds a slot of the
    // direction's cap.
    int dir = -1;
    std::int64_t allowance = 0;
    bool bw_slot = false;
    bool hungry = false;  // paused, in its direction's queue

    ~Job() { CloseFile(); }
    std::size_t Allow(std::size_t want) override { return impl->Allow(*this, want); }
    void Spend(std::size_t n) override {
      if (impl->Limited(*this)) allowance -= std::int64_t(n);
    }
    void CloseFile() {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
    // Back to the state before the attempt (the easy handle is returned separately).
    void Reset() {
      CloseFile();
      multipart.reset();
      headers.reset();
      in_body = to_file = false;
      file_pos = 0;
      local_error = Status::Ok();
      ul_now = 0;
      allowance = 0;
      errbuf[0] = '\0';
      resp = HttpResponse();
    }
  };
  using JobPtr = std::unique_ptr<Job>;

  explicit Impl(TransferOptions o) : opt(std::move(o)) {
    opt.max_concurrent = std::max(1, opt.max_concurrent);
    opt.max_per_host = std::max(1, opt.max_per_host);
    opt.queue_capacity = std::max<std::size_t>(1, opt.queue_capacity);
    if (!opt.clock) opt.clock = WallSeconds;
    for (int i : {kUp, kDown}) {
      bw[i] = std::make_unique<Direction>(opt.bw_key + (i == kUp ? ":up" : ":down"), opt.bw_store, opt.clock,
                                          opt.max_concurrent);
    }
    // Without any limit the timetable is never read.
    if (!opt.bwlimit.limited()) bw_until = std::numeric_limits<double>::infinity();
  }
  ~Impl() {
    if (waker) waker->Close();  // while the multi handle still exists
  }

  TransferOptions opt;
  MultiPtr multi;
  std::thread thread;
  std::thread::id loop_id;

  // Intake (any thread).
  std::mutex mu;
  std::condition_variable not_full;
  std::deque<JobPtr> intake;
  bool stopping = false;               // under mu
  std::atomic<bool> stop_flag{false};  // mirrors stopping, read by the loop without the lock
  std::atomic<bool> abort_flag{false};
  std::mutex join_mu;

  // Loop thread only.
  std::deque<JobPtr> ready;
  std::multimap<Clock::time_point, JobPtr> parked;
  std::unordered_map<CURL*, JobPtr> active;
  std::vector<EasyPtr> pool;
  std::unordered_map<Throttle*, Clock::time_point> blocked;
  std::unordered_set<Throttle*> registered;  // throttles that have our waker
  std::shared_ptr<Waker> waker;              // set before the loop starts

  // Bandwidth, one per direction (loop thread; the buckets' keepers call the waker).
  struct Direction {
    Direction(std::string key, BucketStore* store, std::function<double()> clock, int max)
        : bucket(std::move(key), store, std::move(clock)), cap(max) {}
    net::ByteBucket bucket;
    std::deque<Job*> hungry;     // paused for bytes, served in this order
    std::deque<JobPtr> waiting;  // not started: `cap` transfers hold the slots
    std::int64_t spare = 0;      // bytes held by transfers that ended
    int slots = 0, cap;
    Clock::time_point ask_at = Clock::time_point::max();  // ask the bucket again (for the hungry)
  };
  std::unique_ptr<Direction> bw[2];
  double bw_until = 0;  // Unix seconds: the limits in force are re-read then

  // Counters (any thread).
  std::atomic<std::int64_t> n_started{0}, n_finished{0}, n_active{0}, n_queued{0};
  std::atomic<std::uint64_t> n_sent{0}, n_received{0};

  // --- curl callbacks (loop thread) -----------------------------------------

  static size_t OnHeader(char* buf, size_t size, size_t n, void* ud) {
    auto* job = static_cast<Job*>(ud);
    const size_t len = size * n;
    std::string_view line(buf, len);
    if (line.substr(0, 5) == "HTTP/") {
      // A new response (after a 1xx, or the first): start over.
      job->resp.headers.clear();
      job->in_body = false;
      return len;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return len;
    std::string name(line.substr(0, colon));
    for (char& c : name) c = Lower(c);
    job->resp.headers.emplace(std::move(name), std::string(TrimWs(line.substr(colon + 1))));
    return len;
  }

  // Decides where the body of the current response goes; false = abort.
  static bool StartBody(Job* job) {
    job->in_body = true;
    job->resp.body.clear();
    job->to_file = false;
    if (job->fd < 0) return true;
    long code = 0;
    curl_easy_getinfo(job->easy.get(), CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code > 299) return true;  // an error page: keep it in memory
    const std::uint64_t resume = job->req.resume_from;
    if (code == 206) {
      const auto start = ContentRangeStart(job->resp.Header("content-range"));
      if (!start || *start != resume) {
        job->local_error = Status::Corrupt(job->what + ": 206 answer for the wrong range (\"" +
                                           job->resp.Header("content-range").substr(0, 80) +
                                           "\", asked from byte " + std::to_string(resume) + ")");
        return false;
      }
      job->file_pos = resume;
    } else {
      // A full answer: the server ignored the range (or none was asked).
      if (resume > 0 && ::ftruncate(job->fd, 0) != 0) {
        job->local_error =
            Status::Io(job->req.download_path + ": truncating for a full download", errno);
        return false;
      }
      job->file_pos = 0;
    }
    job->to_file = true;
    return true;
  }

  static size_t OnWrite(char* buf, size_t size, size_t n, void* ud) {
    auto* job = static_cast<Job*>(ud);
    const size_t len = size * n;
    // curl keeps a paused chunk and hands it over again when resumed.
    if (job->impl->Limited(*job) && !job->impl->Refill(*job)) return CURL_WRITEFUNC_PAUSE;
    job->Spend(len);
    if (!job->in_body && !StartBody(job)) return 0;
    if (job->to_file) {
      size_t done = 0;
      while (done < len) {
        const ssize_t w = ::pwrite(job->fd, buf + done, len - done, off_t(job->file_pos + done));
        if (w < 0) {
          if (errno == EINTR) continue;
          job->local_error = Status::Io(job->req.download_path + ": write failed", errno);
          return 0;
        }
        done += size_t(w);
      }
      job->file_pos += len;
    } else {
      if (job->resp.body.size() + len > job->req.max_body) {
        job->local_error = Status::Corrupt(job->what + ": response body larger than the limit of " +
                                           std::to_string(job->req.max_body) + " bytes");
        return 0;
      }
      job->resp.body.append(buf, len);
    }
    job->resp.bytes_received += len;
    job->impl->n_received.fetch_add(len, std::memory_order_relaxed);
    return len;
  }

  static int OnProgress(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t ulnow) {
    auto* job = static_cast<Job*>(ud);
    if (ulnow > job->ul_now) {
      job->impl->n_sent.fetch_add(std::uint64_t(ulnow - job->ul_now), std::memory_order_relaxed);
      job->ul_now = ulnow;
    }
    return 0;
  }

  // --- Starting a transfer (loop thread) --------------------------------------

  Status OpenDownload(Job& job) {
    const auto& r = job.req;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
    if (r.resume_from == 0) flags |= O_TRUNC;
    job.fd = ::open(r.download_path.c_str(), flags, 0644);
    if (job.fd < 0) return Status::Io("opening " + r.download_path + " for download", errno);
    if (r.resume_from > 0) {
      struct stat st {};
      if (::fstat(job.fd, &st) != 0) return Status::Io(r.download_path, errno);
      if (std::uint64_t(st.st_size) < r.resume_from) {
        return Status::Invalid(r.download_path + ": has " + std::to_string(st.st_size) +
                               " bytes, cannot resume at byte " + std::to_string(r.resume_from));
      }
      // Whatever lies past the resume point is not trusted: the answer rewrites it.
      if (std::uint64_t(st.st_size) > r.resume_from &&
          ::ftruncate(job.fd, off_t(r.resume_from)) != 0) {
        return Status::Io(r.download_path + ": truncating to the resume point", errno);
      }
    }
    return Status::Ok();
  }

  Status Setup(Job& job, CURL* e) {
    const HttpRequest& r = job.req;
    CURLcode rc = CURLE_OK;
    auto set = [&](CURLoption o, auto v) {
      if (rc == CURLE_OK) rc = curl_easy_setopt(e, o, v);
    };
    set(CURLOPT_URL, r.url.c_str());
    set(CURLOPT_PROTOCOLS_STR, "http,https");
    set(CURLOPT_FOLLOWLOCATION, 0L);  // an Authorization header must never reach another host
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_CONNECTTIMEOUT_MS, long(std::chrono::milliseconds(opt.connect_timeout).count()));
    if (r.timeout.count() > 0) set(CURLOPT_TIMEOUT_MS, long(std::chrono::milliseconds(r.timeout).count()));
    set(CURLOPT_LOW_SPEED_LIMIT, kLowSpeedBytes);
    const auto stall = opt.stall_timeout.count() > 0 ? std::min(r.low_speed_time, opt.stall_timeout) : r.low_speed_time;
    set(CURLOPT_LOW_SPEED_TIME, long(stall.count()));
    set(CURLOPT_SSL_VERIFYPEER, 1L);
    set(CURLOPT_SSL_VERIFYHOST, 2L);
    if (!opt.ca_file.empty()) set(CURLOPT_CAINFO, opt.ca_file.c_str());
    set(CURLOPT_USERAGENT, opt.user_agent.c_str());
    set(CURLOPT_ERRORBUFFER, job.errbuf);
    set(CURLOPT_HEADERFUNCTION, &Impl::OnHeader);
    set(CURLOPT_HEADERDATA, static_cast<void*>(&job));
    set(CURLOPT_WRITEFUNCTION, &Impl::OnWrite);
    set(CURLOPT_WRITEDATA, static_cast<void*>(&job));
    set(CURLOPT_XFERINFOFUNCTION, &Impl::OnProgress);
    set(CURLOPT_XFERINFODATA, static_cast<void*>(&job));
    set(CURLOPT_NOPROGRESS, 0L);
    set(CURLOPT_PRIVATE, static_cast<void*>(&job));
    set(CURLOPT_PIPEWAIT, 1L);  // prefer a stream on an HTTP/2 connection to a new connection
    set(CURLOPT_TCP_KEEPALIVE, 1L);
    // 256 KiB per read and write callback, not libcurl's 16 / 64 KiB: a
    // quarter as many write(2)s into .part files and sends of a photo
    // (the curl tool also raises its receive buffer). 8 transfers: 4 MiB.
    // A tuning only: libcurl refuses a new size for a reused handle whose
    // buffer it already allocated (which then keeps its size), so the
    // answer is not checked.
    (void)curl_easy_setopt(e, CURLOPT_BUFFERSIZE, kBufferBytes);
    (void)curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, kBufferBytes);
    if (rc != CURLE_OK) {
      return Status::Internal(job.what + ": setting up the transfer: " + curl_easy_strerror(rc));
    }

    for (const auto& h : r.headers) {
      if (!SlistAppend(job.headers, h.c_str()))
        return Status::Internal(job.what + ": out of memory");
    }
    bool ok = SlistAppend(job.headers, "Expect:");  // no 100-continue round trip
    if (!r.download_path.empty() && r.resume_from > 0) {
      ok = ok && SlistAppend(job.headers,
                             ("Range: bytes=" + std::to_string(r.resume_from) + "-").c_str());
    }
    if (!r.mime.empty()) {
      SHOTSYNC_ASSIGN_OR_RETURN(job.multipart, MultipartBody::Build(r.mime, &job));
      ok = ok && SlistAppend(job.headers, job.multipart->ContentTypeHeader().c_str());
    }
    if (!ok) return Status::Internal(job.what + ": out of memory");
    set(CURLOPT_HTTPHEADER, job.headers.get());

    if (job.multipart) {
      set(CURLOPT_POST, 1L);
      set(CURLOPT_POSTFIELDSIZE_LARGE, job.multipart->Size());
      set(CURLOPT_READFUNCTION, &MultipartBody::Read);
      set(CURLOPT_READDATA, job.multipart.get());
      set(CURLOPT_SEEKFUNCTION, &MultipartBody::Seek);
      set(CURLOPT_SEEKDATA, job.multipart.get());
      if (r.method != "POST") set(CURLOPT_CUSTOMREQUEST, r.method.c_str());
    } else if (r.method == "GET") {
      set(CURLOPT_HTTPGET, 1L);
    } else if (r.method == "HEAD") {
      set(CURLOPT_NOBODY, 1L);
    } else {
      if (r.method != "POST") set(CURLOPT_CUSTOMREQUEST, r.method.c_str());
      if (r.method == "POST" || r.method == "PUT" || r.method == "PATCH" || !r.body.empty()) {
        set(CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(r.body.size()));
        set(CURLOPT_POSTFIELDS, r.body.data());  // not copied: the job outlives the transfer
      }
    }
    if (rc != CURLE_OK) {
      return Status::Internal(job.what + ": setting up the transfer: " + curl_easy_strerror(rc));
    }
    if (!r.download_path.empty()) SHOTSYNC_RETURN_IF_ERROR(OpenDownload(job));
    return Status::Ok();
  }

  void Start(JobPtr job) {
    EasyPtr easy;
    if (!pool.empty()) {
      easy = std::move(pool.back());
      pool.pop_back();
      curl_easy_reset(easy.get());
    } else {
      easy.reset(curl_easy_init());
    }
    n_queued.fetch_sub(1, std::memory_order_relaxed);
    n_started.fetch_add(1, std::memory_order_relaxed);
    if (!easy) {
      job->resp.transport = Status::Internal(job->what + ": curl_easy_init failed");
      return Deliver(std::move(job));
    }
    Status st = Setup(*job, easy.get());
    if (st.ok()) {
      const CURLMcode mc = curl_multi_add_handle(multi.get(), easy.get());
      if (mc != CURLM_OK) st = Status::Internal(job->what + ": " + curl_multi_strerror(mc));
    }
    if (!st.ok()) {
      Recycle(std::move(easy));
      job->Reset();
      job->resp.transport = st;
      return Deliver(std::move(job));
    }
    job->easy = std::move(easy);
    CURL* key = job->easy.get();
    active.emplace(key, std::move(job));
    n_active.fetch_add(1, std::memory_order_relaxed);
  }

  void Recycle(EasyPtr easy) {
    if (easy && pool.size() < std::size_t(opt.max_concurrent)) pool.push_back(std::move(easy));
  }

  // --- Finishing (loop thread) -------------------------------------------------

  // Takes an active job out of the multi and fills in what curl knows.
  JobPtr Detach(CURL* e) {
    auto it = active.find(e);
    JobPtr job = std::move(it->second);
    active.erase(it);
    n_active.fetch_sub(1, std::memory_order_relaxed);
    curl_multi_remove_handle(multi.get(), e);
    ReleaseBandwidth(*job);
    HttpResponse& resp = job->resp;
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    resp.status = code;
    curl_off_t up = 0, expected = -1;
    long request_size = 0;
    curl_easy_getinfo(e, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_UPLOAD_T, &expected);
    curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &request_size);
    if (expected < 0) expected = job->req.mime.empty() ? curl_off_t(job->req.body.size()) : up + 1;
    resp.bytes_sent = std::uint64_t(std::max<curl_off_t>(up, 0));
    resp.request_sent = request_size > 0 && up >= expected;
    resp.sent_hash.clear();
    if (job->multipart) {
      for (const auto& part : job->multipart->Files()) {
        if (part->hash && part->Complete()) resp.sent_hash = part->hash->Hex();
      }
    }
    return job;
  }

  void Complete(CURL* e, CURLcode result) {
    JobPtr job = Detach(e);
    HttpResponse& resp = job->resp;
    if (!job->local_error.ok()) {
      resp.transport = job->local_error;
    } else if (result != CURLE_OK) {
      // libcurl wanted to resend after the connection died following the body
      // (see MultipartBody::Seek): the server may have the request, so it counts as sent.
      if (result == CURLE_SEND_FAIL_REWIND) resp.request_sent = true;
      const char* detail = job->errbuf[0] ? job->errbuf : curl_easy_strerror(result);
      const bool untrusted = result == CURLE_PEER_FAILED_VERIFICATION || result == CURLE_SSL_CACERT_BADFILE ||
                             result == CURLE_SSL_ISSUER_ERROR;
      // An untrusted certificate is a setup problem, not a network one:
      // retrying cannot help, and verification is never switched off.
      resp.transport = Status(untrusted ? Code::kInvalidArgument : Code::kNetwork,
                              job->what + ": " + std::string(TrimWs(detail)) + " (curl " +
                                  std::to_string(int(result)) + ")" +
                                  (untrusted ? "; if the server uses your own CA, pass --ca-file (or set "
                                               "ca_file in the config)"
                                             : ""));
    } else if (job->fd >= 0 && !job->in_body && resp.status == 200 && job->req.resume_from > 0) {
      // A full answer with an empty body to a range request: the file is empty now.
      if (::ftruncate(job->fd, 0) != 0) {
        resp.transport = Status::Io(job->req.download_path + ": truncating", errno);
      }
    }
    Recycle(std::move(job->easy));
    job->CloseFile();
    job->multipart.reset();
    job->headers.reset();

    Throttle* throttle = job->req.throttle;
    if (throttle && resp.status != 0 && throttle->OnResponse(resp.status, resp.headers)) {
      if (++job->consecutive_429 < kMax429) {
        // Not a failure: ask the throttle again (it is paused now) and resend.
        // (When shutting down, the next turn of the loop cancels it.)
        const int tries = job->consecutive_429;
        job->Reset();
        job->consecutive_429 = tries;
        n_queued.fetch_add(1, std::memory_order_relaxed);
        ready.push_front(std::move(job));
        return;
      }
    } else if (resp.status != 0) {
      job->consecutive_429 = 0;
    }
    Deliver(std::move(job));
  }

  void Deliver(JobPtr job) {
    ReleaseBandwidth(*job);
    n_finished.fetch_add(1, std::memory_order_relaxed);
    Callback done = std::move(job->done);
    HttpResponse resp = std::move(job->resp);
    job.reset();  // close the file before the caller looks at it
    if (!done) return;
    try {
      done(std::move(resp));
    } catch (...) {
      // A throwing callback must not take the loop (and every other transfer) down.
    }
  }

  void CancelWaiting(JobPtr job, const char* why) {
    n_queued.fetch_sub(1, std::memory_order_relaxed);
    job->resp = HttpResponse();
    job->resp.transport = Status(Code::kCancelled, job->what + ": " + why);
    Deliver(std::move(job));
  }

  void CancelActive() {
    while (!active.empty()) {
      JobPtr job = Detach(active.begin()->first);
      Recycle(std::move(job->easy));
      job->resp.transport = Status(Code::kCancelled, job->what + ": cancelled during the transfer");
      Deliver(std::move(job));
    }
  }

  void CancelAllWaiting() {
    std::deque<JobPtr> late;
    {
      std::lock_guard lock(mu);
      late.swap(intake);
    }
    not_full.notify_all();
    for (auto& j : late) CancelWaiting(std::move(j), "cancelled before it started (shutting down)");
    while (!ready.empty()) {
      JobPtr j = std::move(ready.front());
      ready.pop_front();
      CancelWaiting(std::move(j), "cancelled before it started (shutting down)");
    }
    while (!parked.empty()) {
      JobPtr j = std::move(parked.begin()->second);
      parked.erase(parked.begin());
      CancelWaiting(std::move(j), "cancelled while waiting for the rate limit (shutting down)");
    }
    for (auto& d : bw) {
      while (!d->waiting.empty()) {
        JobPtr j = std::move(d->waiting.front());
        d->waiting.pop_front();
        CancelWaiting(std::move(j), "cancelled while waiting for the bandwidth limit (shutting down)");
      }
    }
  }

  // --- Bandwidth (loop thread) -----------------------------------------------------

  bool Limited(const Job& job) const { return job.dir >= 0 && bw[job.dir]->bucket.limited(); }

  // A limited job's bytes: true when it holds some (now, or taken from the
  // spare or the bucket); else it is queued as hungry and must pause.
  bool Refill(Job& job) {
    if (job.allowance > 0) return true;
    if (job.hungry) return false;  // already queued
    Direction& d = *bw[job.dir];
    if (d.spare > 0) {
      job.allowance += std::exchange(d.spare, 0);
      return true;
    }
    if (d.hungry.empty()) {  // else its turn comes after theirs
      auto wait = d.bucket.TakeChunk();
      if (!wait) {
        job.allowance += net::ByteBucket::kChunk;
        return true;
      }
      d.ask_at = Clock::now() + *wait;
    }
    d.hungry.push_back(&job);
    job.hungry = true;
    return false;
  }

  std::size_t Allow(Job& job, std::size_t want) {
    if (!Limited(job)) return want;
    if (Refill(job)) return std::min(want, std::size_t(job.allowance));
    // The callback pauses the transfer itself and hands over one small step
    // on credit (spent from the next chunk): bodies were curl mime parts,
    // which libcurl 7.88 never resumed after CURL_READFUNC_PAUSE.
    curl_easy_pause(job.easy.get(), CURLPAUSE_SEND);
    return std::min<std::size_t>(want, kCreditStep);
  }

  // The job ended (or is sent again): its slot, its place among the hungry
  // and its unused bytes go to the others.
  void ReleaseBandwidth(Job& job) {
    if (job.dir < 0) return;
    Direction& d = *bw[job.dir];
    if (job.hungry) std::erase(d.hungry, &job);
    job.hungry = false;
    if (d.bucket.limited()) d.spare += std::max<std::int64_t>(0, job.allowance);
    job.allowance = 0;
    if (job.bw_slot) --d.slots;
    job.bw_slot = false;
  }

  void ApplyRates(double now_s) {
    const BwLimit::InForce in = opt.bwlimit.At(now_s);
    bw_until = in.until;
    auto on_create = [this](Throttle& t) { t.SetWakeup(waker.get(), [w = waker, p = &t] { w->Wake(p); }); };
    for (int i : {kUp, kDown}) {
      Direction& d = *bw[i];
      const std::int64_t rate = i == kUp ? in.up : in.down;
      d.bucket.SetRate(rate, on_create);
      d.cap = rate > 0 ? int(std::clamp<std::int64_t>(rate / std::max<std::int64_t>(1, opt.bw_min_share), 1,
                                                      opt.max_concurrent))
                       : opt.max_concurrent;
      if (rate == 0) d.spare = 0;
      d.ask_at = Clock::time_point::min();  // the hungry: served at the new rate, or all resumed
    }
  }

  // Re-reads the timetable when due; hands chunks to the hungry, in order.
  void ServeBandwidth(Clock::time_point now) {
    if (opt.clock() >= bw_until) ApplyRates(opt.clock());
    for (auto& dp : bw) {
      Direction& d = *dp;
      while (!d.hungry.empty() && d.ask_at <= now) {
        Job* job = d.hungry.front();
        if (d.bucket.limited()) {
          if (auto wait = d.bucket.TakeChunk()) {
            d.ask_at = now + *wait;
            break;
          }
          job->allowance += net::ByteBucket::kChunk;
        }
        d.hungry.pop_front();
        job->hungry = false;
        // A download's kept chunk may be handed over (and the job queued again) in here.
        curl_easy_pause(job->easy.get(), CURLPAUSE_CONT);
      }
    }
  }

  // --- The loop ----------------------------------------------------------------

  void Pull() {
    const std::size_t held_max = std::size_t(opt.max_concurrent) + opt.queue_capacity;
    const std::size_t waiting = bw[kUp]->waiting.size() + bw[kDown]->waiting.size();
    bool took = false;
    {
      std::lock_guard lock(mu);
      while (!intake.empty() && active.size() + ready.size() < std::size_t(opt.max_concurrent) &&
             active.size() + ready.size() + parked.size() + waiting < held_max) {
        ready.push_back(std::move(intake.front()));
        intake.pop_front();
        took = true;
      }
    }
    if (took) not_full.notify_all();
  }

  void Unpark(Clock::time_point now) {
    std::vector<JobPtr> due;
    while (!parked.empty() && parked.begin()->first <= now) {
      due.push_back(std::move(parked.begin()->second));
      parked.erase(parked.begin());
    }
    for (auto it = due.rbegin(); it != due.rend(); ++it) ready.push_front(std::move(*it));
  }

  // Jobs parked on a throttle whose keeper has an answer: ask again now.
  void UnparkWoken() {
    for (const Throttle* t : waker->Take()) {
      for (auto& d : bw) {
        if (d->bucket.throttle() == t) d->ask_at = Clock::time_point::min();
      }
      blocked.erase(const_cast<Throttle*>(t));
      std::vector<JobPtr> due;
      for (auto it = parked.begin(); it != parked.end();) {
        if (it->second->req.throttle == t) {
          due.push_back(std::move(it->second));
          it = parked.erase(it);
        } else {
          ++it;
        }
      }
      for (auto it = due.rbegin(); it != due.rend(); ++it) ready.push_front(std::move(*it));
    }
  }

  void StartReady(Clock::time_point now) {
    for (auto& d : bw) {
      // A slot is free: those waiting for one queue again, in their order.
      while (d->slots < d->cap && !d->waiting.empty()) {
        ready.push_front(std::move(d->waiting.back()));
        d->waiting.pop_back();
      }
    }
    while (!ready.empty() && active.size() < std::size_t(opt.max_concurrent)) {
      JobPtr job = std::move(ready.front());
      ready.pop_front();
      if (job->dir >= 0 && !job->bw_slot) {
        Direction& d = *bw[job->dir];
        if (d.slots >= d.cap) {
          d.waiting.push_back(std::move(job));
          continue;
        }
        ++d.slots;
        job->bw_slot = true;
      }
      if (Throttle* t = job->req.throttle) {
        if (registered.insert(t).second) {
          t->SetWakeup(waker.get(), [w = waker, t] { w->Wake(t); });
        }
        auto b = blocked.find(t);
        if (b != blocked.end() && b->second > now) {
          parked.emplace(b->second, std::move(job));
          continue;
        }
        if (auto wait = t->TryAcquire()) {
          const auto when = now + *wait;
          blocked[t] = when;
          parked.emplace(when, std::move(job));
          continue;
        }
      }
      if (job->req.may_start && !job->req.may_start()) {
        CancelWaiting(std::move(job), "not started: its sender may no longer send it");
        continue;
      }
      Start(std::move(job));
    }
  }

  // Reads finished transfers; true when any finished.
  bool ReadDone() {
    bool any = false;
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi.get(), &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      Complete(m->easy_handle, m->data.result);
      any = true;
    }
    return any;
  }

  void Run() {
    for (;;) {
      if (abort_flag.load()) {
        CancelActive();
        CancelAllWaiting();
        break;
      }
      ServeBandwidth(Clock::now());
      const bool stop = stop_flag.load();
      if (stop) {
        CancelAllWaiting();
        if (active.empty()) break;
      } else {
        const auto now = Clock::now();
        Pull();
        UnparkWoken();
        Unpark(now);
        StartReady(now);
      }
      int running = 0;
      curl_multi_perform(multi.get(), &running);
      if (ReadDone()) continue;  // slots freed: start the next ones before sleeping

      auto wait = kMaxPollWait;
      auto due = parked.empty() ? Clock::time_point::max() : parked.begin()->first;
      for (auto& d : bw) {
        if (!d->hungry.empty()) due = std::min(due, d->ask_at);
      }
      if (due != Clock::time_point::max()) {
        const auto now = Clock::now();
        wait = due <= now ? std::chrono::milliseconds(0)
                          : std::min(std::chrono::ceil<std::chrono::milliseconds>(due - now), kMaxPollWait);
      }
      curl_multi_poll(multi.get(), nullptr, 0, int(wait.count()), nullptr);
    }
    pool.clear();
  }
};

TransferEngine::TransferEngine(TransferOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  if (net::GlobalInit() != CURLE_OK) throw std::runtime_error("curl_global_init failed");
  impl_->multi.reset(curl_multi_init());
  if (!impl_->multi) throw std::runtime_error("curl_multi_init failed");
  CURLM* m = impl_->multi.get();
  curl_multi_setopt(m, CURLMOPT_PIPELINING, long(CURLPIPE_MULTIPLEX));
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, long(impl_->opt.max_per_host));
  const long connections = std::max(impl_->opt.max_concurrent, impl_->opt.max_per_host);
  curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, connections);
  // The idle-connection cache: curl's default (4 x the handles added at the
  // moment) shrinks when few transfers run and then closes live connections.
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, connections);
  impl_->waker = std::make_shared<Waker>(m);
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
  impl_->loop_id = impl_->thread.get_id();
}

TransferEngine::~TransferEngine() {
  Shutdown(false);
}

void TransferEngine::Submit(HttpRequest request, Callback done) {
  auto job = std::make_unique<Impl::Job>();
  job->impl = impl_.get();
  job->what = request.method + " " + RedactUrl(request.url);
  job->req = std::move(request);
  for (const MimePart& p : job->req.mime) {
    if (!p.file_path.empty()) job->dir = Impl::kUp;
  }
  if (!job->req.download_path.empty()) job->dir = Impl::kDown;
  job->done = std::move(done);
  const bool on_loop = std::this_thread::get_id() == impl_->loop_id;
  {
    std::unique_lock lock(impl_->mu);
    // The loop thread must not wait for itself: its own submissions skip the cap.
    if (!on_loop) {
      impl_->not_full.wait(lock, [&] {
        return impl_->stopping || impl_->intake.size() < impl_->opt.queue_capacity;
      });
    }
    if (!impl_->stopping) {
      impl_->intake.push_back(std::move(job));
      impl_->n_queued.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (!job) {
    curl_multi_wakeup(impl_->multi.get());
    return;
  }
  impl_->n_finished.fetch_add(1, std::memory_order_relaxed);
  HttpResponse resp;
  resp.transport =
      Status(Code::kCancelled, job->what + ": not started, the transfer engine is shut down");
  if (job->done) job->done(std::move(resp));
}

HttpResponse TransferEngine::Perform(HttpRequest request) {
  if (std::this_thread::get_id() == impl_->loop_id) {
    HttpResponse r;
    r.transport = Status::Internal(
        "TransferEngine::Perform called from a transfer callback (would deadlock)");
    return r;
  }
  auto promise = std::make_shared<std::promise<HttpResponse>>();
  auto future = promise->get_future();
  Submit(std::move(request), [promise](HttpResponse&& r) { promise->set_value(std::move(r)); });
  return future.get();
}

void TransferEngine::Stop(bool abort) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    impl_->stop_flag.store(true);
    if (abort) impl_->abort_flag.store(true);
  }
  impl_->not_full.notify_all();
  curl_multi_wakeup(impl_->multi.get());
}

void TransferEngine::Shutdown(bool abort) {
  Stop(abort);
  if (std::this_thread::get_id() == impl_->loop_id)
    return;  // from a callback: the loop ends by itself
  std::lock_guard join(impl_->join_mu);
  if (impl_->thread.joinable()) impl_->thread.join();
}

TransferEngine::Counters TransferEngine::counters() const {
  Counters c;
  c.started = impl_->n_started.load(std::memory_order_relaxed);
  c.finished = impl_->n_finished.load(std::memory_order_relaxed);
  c.active = impl_->n_active.load(std::memory_order_relaxed);
  c.queued = impl_->n_queued.load(std::memory_order_relaxed);
  c.bytes_sent = impl_->n_sent.load(std::memory_order_relaxed);
  c.bytes_received = impl_->n_received.load(std::memory_order_relaxed);
  return c;
}

}  // namespace shotsync
