// RAII owners for libcurl handles, and the one-time global initialisation.
//
// Every handle type gets a unique_ptr with a deleter that calls the matching
// libcurl cleanup function, so that no error path can leak a handle. Order
// matters for the multi handle: easy handles must be removed from it (and
// may then be destroyed) before it is cleaned up; the engine guarantees that.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace shotsync::net {

struct MultiDeleter {
  void operator()(CURLM* m) const noexcept { curl_multi_cleanup(m); }
};
struct EasyDeleter {
  void operator()(CURL* e) const noexcept { curl_easy_cleanup(e); }
};
struct SlistDeleter {
  void operator()(curl_slist* s) const noexcept { curl_slist_free_all(s); }
};

using MultiPtr = std::unique_ptr<CURLM, MultiDeleter>;
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

// Appends to a list owned by `list`; false on allocation failure (the list
// is left as it was).
inline bool SlistAppend(SlistPtr& list, const char* line) {
  curl_slist* grown = curl_slist_append(list.get(), line);
  if (!grown) return false;
  (void)list.release();  // `grown` is the same list with one more node (or a new head)
  list.reset(grown);
  return true;
}

// curl_global_init is not thread-safe before 7.84 and must run before any
// other curl call: do it once per process, first thing in every constructor
// that creates handles. Never cleaned up (the process exit does it).
inline CURLcode GlobalInit() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  return result;
}

}  // namespace shotsync::net
