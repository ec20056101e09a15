// ShootbinClient: the Shootbin API calls shotsync needs (../shared/api/
// shootbin.md), on top of the TransferEngine.
//
// Choices where the reference is silent (see docs/api-choices.md):
// - base_url is the instance URL ("https://studio.example.com"); "/api" is
//   appended (a base_url that already ends in /api is accepted too).
// - Every request sends Authorization: Bearer and Accept: application/json;
//   a 3xx or an HTML answer is treated as 401 (the login-page redirect).
// - Uploads send the file part as `photo`, plus client_original_filename =
//   the path relative to the root and title = the base name without
//   extension; revisions send `revision` and the same client_original_filename.
// - Responses are accepted wrapped ({"photo": {...}}) or bare.
// - 400/413/422 are permanent refusals of that file; 409 is a conflict
//   (a revision still processing); 403 carries the server's message, and a
//   message mentioning "locked" means the project is out for review.
//
// Thread-safe (stateless apart from the engine and throttle it uses).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "shotsync/status.hpp"
#include "shotsync/transfer.hpp"

namespace shotsync {

struct RemotePhoto {
  std::int64_t id = 0;
  std::string original_filename;
  std::string title;
  std::optional<std::uint64_t> file_size;  // not documented: used only when present
  std::string checksum_sha256;             // not documented: used only when present
  std::string revision_uploaded_at;        // ISO-8601 or ""
};

// --- Parsers of server answers (pure; fuzzed in tests/fuzz) -----------------
// A hostile or broken server gets an error value from these, never a crash.

// One page of GET .../photos: the photos with an id > 0, and whether to ask
// for the next page (has_more, or a next_cursor; never with an empty page or
// without a cursor).
struct PhotoPage {
  std::vector<RemotePhoto> photos;
  std::string next_cursor;
  bool has_more = false;
};
Result<PhotoPage> ParsePhotoPage(std::string_view body, const std::string& what);

// The id of the entry of a JSON array answer (GET /projects, GET .../albums)
// whose id (when `wanted` is all digits) or name equals `wanted`; kNotFound
// when none does, kCorrupt when the body is not a JSON array. `what` names
// the listing in messages.
Result<std::int64_t> FindIdByNameOrId(std::string_view body, const std::string& wanted,
                                      const std::string& what);

// The "id" of a created project or album; kCorrupt "<what>: answer has no id".
Result<std::int64_t> ParseCreatedId(std::string_view body, const std::string& what);

// The server's words in an error answer: "message", then the first entry of
// "errors" when it says something else; "" when there is none. Not yet made
// printable (CheckAnswer does that).
std::string ErrorMessageOf(std::string_view body);

class ShootbinClient {
 public:
  // token_source names where the token came from (for the 401 message; the
  // token itself never appears in any message).
  ShootbinClient(TransferEngine& engine, Throttle& throttle, std::string base_url,
                 std::string token, std::string token_source);

  // A project by numeric id or by name; created (POST /projects) when absent
  // and `create` is set.
  Result<std::int64_t> ResolveProject(const std::string& project, bool create);
  Result<std::int64_t> ResolveAlbum(std::int64_t project, const std::string& album, bool create);

  // Pages through the album (per_page=100, following next_cursor). Stops
  // early once a page's smallest id is below `stop_below_id` (the listing is
  // newest first), 0 = the whole album.
  Result<std::vector<RemotePhoto>> ListPhotos(std::int64_t project, std::int64_t album,
                                              std::int64_t stop_below_id = 0);
  Result<RemotePhoto> GetPhoto(std::int64_t project, std::int64_t album, std::int64_t photo);

  HttpRequest UploadRequest(std::int64_t project, std::int64_t album, const std::string& abs_path,
                            const std::string& rel_path) const;
  HttpRequest RevisionRequest(std::int64_t project, std::int64_t album, std::int64_t photo,
                              const std::string& abs_path, const std::string& rel_path) const;

  // The photo in a 201 answer to an upload or revision.
  static Result<RemotePhoto> ParsePhotoAnswer(const HttpResponse& response);
  // Ok for 2xx; otherwise a Status whose code tells the caller what to do and
  // whose message is one line: "<what>: <server message> (HTTP n)".
  Status CheckAnswer(const HttpResponse& response, const std::string& what) const;
  static bool IsLockedProject(const Status& status);

  Throttle& throttle() { return throttle_; }

 private:
  HttpRequest Base(std::string method, std::string path) const;
  HttpResponse PerformRead(HttpRequest request);

  TransferEngine& engine_;
  Throttle& throttle_;
  std::string api_;  // base_url + "/api"
  std::string token_;
  std::string token_source_;
  std::mutex rng_mu_;
  std::mt19937 rng_{std::random_device{}()};
};

}  // namespace shotsync
