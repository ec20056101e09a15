// ShootbinClient: the Shootbin API calls shotsync needs (../shared/api/
// shootbin.md), on top of the TransferEngine.
//
// Choices where the reference is silent (see docs/api-choices.md):
// - base_url is the instance URL ("https://studio.example.com"); "/api" is
//   appended (a base_url that already ends in /api is accepted too).
// - Every request sends Authorization: Bearer and Accept: application/json.
// - Uploads send the file part as `photo`, plus client_original_filename =
//   the path relative to the root and title = the base name without
//   extension; revisions send `revision` and the same client_original_filename.
// - Responses are accepted wrapped ({"photo": {...}}) or bare.
//
// How an answer is read (shootbin.md §1 "Error envelope", "Server errors",
// §5.1-5.3; one pure function, ClassifyShootbinAnswer, table-tested in
// tests/unit/answer_test.cpp; the Codes are the shared table's, retry.hpp
// HttpStatusCode, the messages Shootbin's):
//   2xx JSON                 ok (the body may still be cut off: see ParsePhotoAnswer)
//   2xx/3xx HTML, any 3xx,
//   401 (JSON or HTML)       kUnauthenticated: the token was refused (a login
//                            page): stop the run, do not retry
//   400, 422                 kRejected: permanent refusal of that item
//   413 (JSON or HTML)       kRejected: "too large for the server or a proxy
//                            in front of it (HTTP 413)"
//   403                      kForbidden, the server's message verbatim (see
//                            "403: token or target" below)
//   404                      kNotFound (re-resolve the ids before failing)
//   407                      kNetwork: a proxy between here and the instance
//                            asks for credentials (never "the token")
//   408                      kNetwork: transient
//   409                      kConflict (a revision still processing)
//   429                      kRateLimited (the engine already waited and resent)
//   5xx, JSON or HTML        kServer: AMBIGUOUS for uploads: the app behind a
//                            gateway (nginx/Cloudflare 502/504/520-527) may
//                            still store the photo. HTML pages and the gateway
//                            statuses read "<what>: gateway error (HTTP n)".
//                            Never a token problem.
//   anything else            kServer "unexpected answer" (ambiguous, safe side)
//   no answer (transport)    the transport's code (kNetwork, kCancelled,
//                            kInvalidArgument for an untrusted certificate...)
// HTML means Content-Type text/html; an HTML body is never quoted.
//
// 403: token or target (§5.2; the wording of 403 messages is not documented,
// so no word such as "locked" is relied on):
// - A 403 on GET /projects — which every token with API access may read — is
//   the token's or the plan's problem: ResolveProject reports it as
//   kUnauthenticated (stop the run), with the server's message.
// - Every other 403 (listing or creating albums, uploads, revisions) blocks
//   that one project/album: kForbidden; BlocksTargetOnly() is true for it.
//   The caller skips that target for this run and goes on with the others.
//
// Reads are retried by RetryLoop (retry_policy::kShootbinRead): what
// Classify calls transient (network errors, 408, 5xx).
//
// Thread-safe (stateless apart from the engine and throttle it uses).
#pragma once

#include <atomic>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shotsync/retry.hpp"
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
  std::string approved_at;                 // ISO-8601, "" = not approved (null or absent)
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

// Simple case folding of UTF-8 text for comparing names: ASCII, Latin-1,
// Latin Extended-A/Additional, Greek, Cyrillic, Armenian and full-width
// Latin letters fold to lower case (one code point to one, as Unicode's
// simple folding: "ß" stays "ß"). Bytes that are not valid UTF-8 are kept.
std::string SimpleCaseFold(std::string_view utf8);

// What FindIdByNameOrId looks up, for its messages.
struct IdLookup {
  std::string kind = "entry";  // "project" / "album": also the config key to set
  std::string scope;           // where, e.g. " in project 3" ("" for projects)
};

// One entry of GET /projects or GET .../albums.
struct NamedId {
  std::int64_t id = 0;
  std::string name;
};
// The entries (with an id) of such a JSON array answer, in the server's
// order; kCorrupt "<what>: answer is not a JSON array".
Result<std::vector<NamedId>> ParseNamedIds(std::string_view body, const std::string& what);

// "12 ("Main"), 15 ("BTS"), and 3 more" (at most `at_most`), or "none".
std::string ListNamedIds(const std::vector<NamedId>& entries, std::size_t at_most);

// The id of the entry of a JSON array answer (GET /projects, GET .../albums)
// that `wanted` names:
// - all digits: the entry with that id (a name is never read as an id);
// - else the one entry whose name equals `wanted` exactly, or else the one
//   whose name equals it after case folding (SimpleCaseFold) — that one is used.
// Errors:
// - kInvalidArgument, ambiguous: two or more exact matches, or no exact match
//   and two or more case-insensitive ones. Names every candidate:
//   album "Main" is ambiguous in project 3: ids 12 ("Main"), 15 ("main"); set album = <id> in the
//   config
// - kInvalidArgument, near match: nothing matches, but a name equals `wanted`
//   once blanks are trimmed and runs of blanks squeezed (or, for an id, an
//   entry is named `wanted`): names those, so that nothing is created beside them.
// - kNotFound: nothing matches and nothing is near (creating it is safe).
// - kCorrupt: the body is not a JSON array. `what` names the listing.
Result<std::int64_t> FindIdByNameOrId(std::string_view body, const std::string& wanted,
                                      const std::string& what, const IdLookup& lookup);
// The same on parsed entries (FindIdByNameOrId parses, then calls this).
Result<std::int64_t> FindNamedId(const std::vector<NamedId>& entries, const std::string& wanted,
                                 const IdLookup& lookup);
// The same with lookup.kind "entry" (kept for source compatibility).
Result<std::int64_t> FindIdByNameOrId(std::string_view body, const std::string& wanted,
                                      const std::string& what);

// The "id" of a created project or album; kCorrupt "<what>: answer has no id".
Result<std::int64_t> ParseCreatedId(std::string_view body, const std::string& what);

// The server's words in an error answer: "message", then the first entry of
// "errors" when it says something else; "" when there is none. Not yet made
// printable (CheckAnswer does that).
std::string ErrorMessageOf(std::string_view body);

// What an error message needs to know about the client.
struct ShootbinAnswerContext {
  std::string api;           // base URL + "/api": names the instance (and its host for 407)
  std::string token_source;  // where the token came from (for the 401 message)
};

// THE mapping of an HTTP answer to a Status (the table at the top of this
// file); pure. Ok for a 2xx that is not HTML. Messages are one printable
// line, "<what>: <server message> (HTTP n)", never carry the token, and say
// "token" only for kUnauthenticated.
Status ClassifyShootbinAnswer(long status, std::string_view content_type, std::string_view body,
                              const std::string& what, const ShootbinAnswerContext& context);
// The same for a whole response: a transport error (no usable answer) keeps
// its code ("<what>: <transport message>"); else the function above.
Status ClassifyShootbinAnswer(const HttpResponse& response, const std::string& what,
                              const ShootbinAnswerContext& context);

class ShootbinClient {
 public:
  // token_source names where the token came from (for the 401 message; the
  // token itself never appears in any message).
  ShootbinClient(TransferEngine& engine, Throttle& throttle, std::string base_url,
                 std::string token, std::string token_source);

  // A project by numeric id or by name (FindIdByNameOrId: exact, then
  // case-insensitive; ambiguous or near names are kInvalidArgument and never
  // lead to a create); created (POST /projects) only when nothing matches and
  // `create` is set. A 403 on the listing is kUnauthenticated (token/plan).
  Result<std::int64_t> ResolveProject(const std::string& project, bool create);
  // The same for an album of `project` (a 403 here is kForbidden: that target).
  Result<std::int64_t> ResolveAlbum(std::int64_t project, const std::string& album, bool create);
  // The pieces of the two above, for callers that list once for many
  // lookups (the run's targets, `ls`, `check`): the listings (a 403 on the
  // projects is kUnauthenticated, as above) and the creates.
  Result<std::vector<NamedId>> ListProjects();
  // ResolveProject on a listing made once for many roots; a project it
  // creates is added to `projects`.
  Result<std::int64_t> ResolveProjectIn(std::vector<NamedId>& projects, const std::string& project, bool create);
  Result<std::vector<NamedId>> ListAlbums(std::int64_t project);
  // GET /projects as it came (retried like every read), for `check` to tell
  // "not a Shootbin instance" (HTML, 404) from a refused token.
  HttpResponse ProbeProjects();
  Result<std::int64_t> CreateProject(const std::string& name);
  Result<std::int64_t> CreateAlbum(std::int64_t project, const std::string& name);

  // Pages through the album (per_page=100, following next_cursor). Stops
  // early once a page's smallest id is below `stop_below_id` (the listing is
  // newest first), 0 = the whole album; with a stop, the first page is of
  // 10 and only photos at or above the stop are returned.
  Result<std::vector<RemotePhoto>> ListPhotos(std::int64_t project, std::int64_t album,
                                              std::int64_t stop_below_id = 0);
  Result<RemotePhoto> GetPhoto(std::int64_t project, std::int64_t album, std::int64_t photo);

  HttpRequest UploadRequest(std::int64_t project, std::int64_t album, const std::string& abs_path,
                            const std::string& rel_path) const;
  HttpRequest RevisionRequest(std::int64_t project, std::int64_t album, std::int64_t photo,
                              const std::string& abs_path, const std::string& rel_path) const;

  // The photo in a 2xx answer to an upload, a revision or GET photo.
  // kCorrupt when the body is cut off, not JSON, or holds no photo id: for an
  // upload or revision that is AMBIGUOUS (neither a success nor a refusal:
  // the photo may have been stored); reconcile before resending.
  static Result<RemotePhoto> ParsePhotoAnswer(const HttpResponse& response);
  // ClassifyShootbinAnswer(response, what, context()).
  Status CheckAnswer(const HttpResponse& response, const std::string& what) const;
  // True for a 403 that blocks one project/album only (kForbidden: see
  // "403: token or target" above); false for everything else, including the
  // token-wide 403 of the project listing (reported as kUnauthenticated).
  static bool BlocksTargetOnly(const Status& status);

  const ShootbinAnswerContext& context() const { return context_; }

  Throttle& throttle() { return throttle_; }
  // Reads sent again after a transient failure, so far (a run's summary).
  std::int64_t read_retries() const { return read_retries_.load(std::memory_order_relaxed); }

 private:
  HttpRequest Base(std::string method, std::string path) const;
  HttpResponse PerformRead(const HttpRequest& request);

  TransferEngine& engine_;
  Throttle& throttle_;
  std::string api_;  // base_url + "/api"
  std::string token_;
  std::string token_source_;
  ShootbinAnswerContext context_;
  Backoff read_backoff_{retry_policy::kShootbinRead};
  RetrySleep retry_sleep_ = SleepUnlessStopped();
  std::atomic<std::int64_t> read_retries_{0};
};

}  // namespace shotsync
