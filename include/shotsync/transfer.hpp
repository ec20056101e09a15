// TransferEngine: every HTTP request shotsync makes goes through here.
//
// One thread runs the libcurl multi loop (curl_multi_poll /
// curl_multi_info_read) and owns every easy handle; other threads hand it
// requests through a bounded queue (Submit blocks when it is full) and get
// the answer through a callback that runs on the engine thread (keep it
// short: record, then hand off). Connections are reused (keep-alive, HTTP/2
// multiplexing when offered), capped per host; TLS verification is always
// on. Upload bodies are streamed from disk (multipart, read by curl) and download
// bodies are written straight to a file: no file is ever held in memory.
//
// A bandwidth limit (TransferOptions::bwlimit) paces upload and download
// bodies; a paused transfer is still making progress, never cut for it.
//
// Each request names a Throttle; the engine starts a request only when its
// throttle grants a token, and feeds every response back to it. A 429 is
// retried transparently after the pause (it never reaches the callback).
// Other retries (5xx, network errors) are the caller's decision, because
// only the caller knows whether a retry is safe (exactly-once, resume.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "shotsync/config.hpp"
#include "shotsync/status.hpp"
#include "shotsync/throttle.hpp"
#include "shotsync/version.hpp"

namespace shotsync {

struct MimePart {
  std::string name;
  std::string value;      // a plain field, when file_path is empty
  std::string file_path;  // a file part, streamed from disk
  std::string filename;   // the part's filename (default: base name of file_path)
  std::string content_type;
  // Hash the file part's bytes as they are sent (HttpResponse::sent_hash):
  // the one read of a photo the plan knew must be sent.
  bool hash_sent = false;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // small bodies (JSON); ignored when mime is set
  std::vector<MimePart> mime;        // multipart/form-data (net/multipart.hpp)
  // Download: the body is written to this path (created, or appended to from
  // resume_from with a Range request). Empty = body returned in memory.
  // Only a 2xx body goes to the file (an error page stays in `body`); a 200
  // to a range request rewrites the file from byte 0. Not fsynced: the caller
  // syncs and renames.
  std::string download_path;
  std::uint64_t resume_from = 0;
  std::uint64_t max_body = 16 << 20;  // in-memory bodies larger than this fail (hostile servers)
  Throttle* throttle = nullptr;       // nullptr = not rate limited (e.g. CDN downloads)
  // Asked on the transfer loop right before the request starts (its token
  // taken): false = not started, answered kCancelled with nothing sent. A
  // studio host whose lease is lost must not send what waited in the queue.
  // Must not block. Empty = always.
  std::function<bool()> may_start;
  // Whole-transfer limit; 0 = none, the default: a transfer still making
  // progress (a 10 MB photo on a 2 Mbit/s uplink, or under --bwlimit) is
  // never cut, and low_speed_time alone decides that one has stalled.
  std::chrono::seconds timeout{0};
  std::chrono::seconds low_speed_time{30};  // abort when < 1 KB/s for this long
};

struct HttpResponse {
  long status = 0;      // 0 when no HTTP answer arrived (transport error)
  std::multimap<std::string, std::string> headers;  // lower-cased names
  std::string body;     // when not downloading to a file
  // ok, or why no usable answer arrived; the message names method and URL
  // (without query string or user info) and never carries a header or token:
  //   kNetwork   curl's error (refused, reset, timeout, TLS handshake...)
  //   kInvalidArgument  the server's certificate is not trusted (see ca_file)
  //   kIo        local file error: download file (open, write: ENOSPC...) or
  //              an unreadable upload part, naming the file
  //   kCorrupt   answer body over max_body, or a 206 for another range
  //   kInvalidArgument  resume_from past the end of download_path
  //   kCancelled Shutdown; kInternal curl setup failure
  Status transport;
  bool request_sent = false;      // the whole request body went out (ambiguous failure if no answer)
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;  // body bytes (for downloads: written to the file)
  // HashFile's hash of the bytes of the file part marked hash_sent, when all
  // of them were read for this attempt (what the server was sent); else "".
  std::string sent_hash;
  std::string Header(std::string_view lower_name) const;  // first value or ""
};

struct TransferOptions {
  int max_concurrent = 8;      // transfers at once
  int max_per_host = 8;        // connections per host
  // Bandwidth limit per direction, constant or a timetable (re-read at its
  // boundaries); none by default. Uploads count the file parts of request
  // bodies, downloads the bodies written to download_path; API calls are not
  // limited. Exact over the run: a byte token bucket (net/bandwidth.hpp)
  // that curl's read / write callbacks draw on, pausing the transfer when it
  // is empty. Limited transfers of one direction run at most
  // rate / bw_min_share at once (at least one), so each gets a useful share.
  BwLimit bwlimit;
  // Shares the byte buckets (keys bw_key + ":up" / ":down") with the other
  // processes of the profile; nullptr = this engine's own. Must outlive it.
  BucketStore* bw_store = nullptr;
  std::string bw_key = "bwlimit";
  std::int64_t bw_min_share = 256 << 10;
  // Unix seconds for the bandwidth buckets and timetable; empty =
  // WallSeconds. Tests pass a fake one.
  std::function<double()> clock;
  std::string ca_file;         // extra CA bundle; verification stays on
  std::string user_agent = std::string("shotsync/").append(kVersion);
  std::chrono::seconds connect_timeout{15};
  // Caps every request's low_speed_time: a server that stops answering (or
  // a body stuck under 1 KB/s) is given up after this long.
  std::chrono::seconds stall_timeout{0};  // 0 = the request's own
  std::size_t queue_capacity = 64;
};

class TransferEngine {
 public:
  using Callback = std::function<void(HttpResponse&&)>;

  explicit TransferEngine(TransferOptions options);
  ~TransferEngine();  // Shutdown(false) and join
  TransferEngine(const TransferEngine&) = delete;
  TransferEngine& operator=(const TransferEngine&) = delete;

  // Thread-safe. Blocks while the queue is full. After Shutdown the callback
  // gets a kCancelled transport status at once.
  void Submit(HttpRequest request, Callback done);
  // Convenience for callers that want to wait (listing, setup calls).
  HttpResponse Perform(HttpRequest request);

  // Stop starting new transfers: queued ones get kCancelled (nothing was
  // sent). abort=false lets running ones finish; abort=true cancels them
  // (callbacks get kCancelled). Returns at once; may be called again with
  // abort=true. Shutdown also joins the loop.
  void Stop(bool abort);
  void Shutdown(bool abort);

  // Live figures for progress displays.
  struct Counters {
    std::int64_t started = 0, finished = 0, active = 0, queued = 0;
    std::uint64_t bytes_sent = 0, bytes_received = 0;
  };
  Counters counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shotsync
