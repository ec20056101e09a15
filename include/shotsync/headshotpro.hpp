// HeadshotProClient: the HeadshotPro Organization API (V2) calls shotsync
// needs (../shared/api/headshotpro.md), on top of the TransferEngine.
//
// - Every request sends Authorization: Bearer <key> (the key never appears
//   in any message) and goes through the one Throttle of the service (token
//   bucket, X-RateLimit-* feedback, 429 pause; the engine resends 429s).
// - The envelope is checked on every answer: `success` must be true; the
//   resource keys are read from a `data` object when there is one, else from
//   the top level (the docs show both styles).
// - Errors `{success:false, error, code}` become a Status whose message is
//   "<what>: <error> [<CODE>] (HTTP n)", the server's words verbatim (made
//   printable); the Code follows the shared HTTP status table (retry.hpp
//   HttpStatusCode: 401 kUnauthenticated, 403 kForbidden, 404 kNotFound,
//   407/408 kNetwork, 409 kConflict, 429 kRateLimited, 5xx kServer), every
//   other 4xx (400, 402...) kRejected, a 3xx kServer (unexpected) — except a 429 whose `code` is not a rate limit
//   (INVITE_LIMIT_EXCEEDED: the pending-invite cap), which is kRejected:
//   that item's refusal, never a pause and a resend (Is429RateLimit).
// - GETs are retried on 5xx and network errors (retry_policy::kHeadshotPro:
//   exponential backoff, equal jitter, 5 attempts); POSTs are not (an invite must not be sent twice).
//   POSTs are paced by this client (Throttle::Acquire, then
//   OnResponse(status, headers, body)) instead of the engine, because the
//   engine resends every 429: a rate-limit 429 (refused unprocessed) is
//   resent after the pause, an INVITE_LIMIT_EXCEEDED one is not.
// - Lists page with limit=200 / offset += returned while pagination.hasMore,
//   de-duplicating on id (tolerates items shifting between pages).
//
// Thread-safe (stateless apart from the engine and throttle it uses).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "shotsync/config.hpp"
#include "shotsync/retry.hpp"
#include "shotsync/status.hpp"
#include "shotsync/transfer.hpp"

namespace shotsync {

struct HpMember {
  std::string id, email, name, status, team_id, team_name, model_id, model_status;
};

struct HpModel {
  std::string id, email, title, status, team_id, team_name;
};

struct HpPhoto {
  std::string id;
  std::string model_id;  // set by favorites answers; the lister fills it in otherwise
  std::string status;    // "active" | "deleted"
  std::string liked;
  std::vector<std::pair<std::string, std::string>> urls;  // variant ("main"...) -> signed URL
  std::string expires_at;  // as sent
  double expires_s = 0;    // expires_at in Unix seconds, 0 = unknown
};

struct HpFavorite {
  std::string model_id, email, name, team_id;
  HpPhoto photo;
};

struct HpInvite {
  std::string id, email, status, team_id, team_name, model_id, created_at;
};

// One API answer, for callers that branch on the machine-readable code.
struct HpAnswer {
  Status status;      // ok, or the error described above
  long http = 0;      // 0 = no HTTP answer
  std::string code;   // the error `code` ("" when ok or absent)
};

// --- Parsers of server answers (pure; fuzzed in tests/fuzz) -----------------
// A hostile or broken server gets an error value from these, never a crash.

// The checked envelope of an answer (the rules above); key_source names
// where the key came from, for the 401 message.
HpAnswer CheckHpAnswer(const HttpResponse& response, const std::string& what,
                       std::string_view key_source);

// One page of a paged list: the new items of the page (de-duplicated on id
// through `seen`, which carries over from page to page), how many entries
// the page's array held, and whether pagination.hasMore asks for another.
template <class T>
struct HpPage {
  std::vector<T> items;
  std::size_t returned = 0;
  bool has_more = false;
};
Result<HpPage<HpMember>> ParseMembersPage(std::string_view body, const std::string& what,
                                          std::set<std::string>& seen);
Result<HpPage<HpModel>> ParseModelsPage(std::string_view body, const std::string& what,
                                        std::set<std::string>& seen);
// Photos without a modelId get `model_id`.
Result<HpPage<HpPhoto>> ParsePhotosPage(std::string_view body, const std::string& model_id,
                                        const std::string& what, std::set<std::string>& seen);
// Favorites without a photo id are left out.
Result<HpPage<HpFavorite>> ParseFavoritesPage(std::string_view body, const std::string& what,
                                              std::set<std::string>& seen);
// GET .../photos/favorite: nullopt when none is chosen.
Result<std::optional<HpPhoto>> ParseFavoriteAnswer(std::string_view body, const std::string& model_id,
                                                   const std::string& what);
Result<std::int64_t> ParseCreditsAnswer(std::string_view body, const std::string& what);
Result<std::vector<HpInvite>> ParseInvitesAnswer(std::string_view body, const std::string& what);

class HeadshotProClient {
 public:
  // key_source names where the key came from (for the 401 message).
  HeadshotProClient(TransferEngine& engine, Throttle& throttle, std::string base_url,
                    std::string key, std::string key_source);

  // GET /organization/team?status=... ("" = every member), all pages.
  Result<std::vector<HpMember>> ListMembers(std::string_view status);
  // GET /organization/models?status=... ("" = all), all pages.
  Result<std::vector<HpModel>> ListModels(std::string_view status);
  // GET /organization/models/:id/photos?include=main|all, all pages.
  Result<std::vector<HpPhoto>> ListPhotos(const std::string& model_id, std::string_view include);
  // GET /organization/models/:id/photos/favorite; nullopt when none chosen.
  Result<std::optional<HpPhoto>> Favorite(const std::string& model_id);
  // GET /organization/photos/favorites, all pages.
  Result<std::vector<HpFavorite>> ListFavorites();

  Result<std::int64_t> Credits();
  Result<std::vector<HpInvite>> ListInvites();
  // POST /organization/invites {email, teamId?}.
  HpAnswer Invite(const std::string& email, const std::string& team_id);
  // POST /organization/invites/revoke {email}.
  HpAnswer Revoke(const std::string& email);

  // Unix seconds of an ISO-8601 UTC timestamp ("2024-01-15T10:30:00.000Z"); nullopt for garbage.
  static std::optional<double> ParseIso(std::string_view s);

  Throttle& throttle() { return throttle_; }
  const std::string& api() const { return api_; }

 private:
  // Checked answer body of a GET (retried on 5xx / network errors).
  Result<std::string> Get(const std::string& path, const std::string& what);
  // Every item of a paged list, de-duplicated on id (see HpPage).
  template <class T, class Parse>
  Result<std::vector<T>> Pages(const std::string& path, const std::string& what, Parse parse);
  HpAnswer Post(const std::string& path, const std::string& body, const std::string& what,
                std::string* answer);
  HpAnswer Check(const HttpResponse& r, const std::string& what) const;
  HttpRequest Base(std::string method, const std::string& path) const;

  TransferEngine& engine_;
  Throttle& throttle_;
  std::string api_;
  std::string key_;
  std::string key_source_;
  Backoff backoff_{retry_policy::kHeadshotPro};
  RetrySleep retry_sleep_ = SleepUnlessStopped();
};

// --- Team administration (engine/team.cpp) -------------------------------------
// `shotsync team status|invite|revoke`. Each call sets up its own engine and
// throttle (sharing the manifest's bucket with a pull running at the same
// time when the state dir is usable).

// Invites count as pending until the session completes: every status but
// completed, revoked and deleted (headshotpro.md §1 "Invite spam protection").
bool InviteIsPending(std::string_view status);

struct TeamStatus {
  std::int64_t credits = 0;
  std::int64_t pending_invites = 0;
  std::int64_t invite_cap = 0;  // credits x 2
  std::map<std::string, std::vector<HpMember>> members;  // by status
  std::map<std::string, std::int64_t> invites;           // count by status
};
Result<TeamStatus> GetTeamStatus(const Config& config);

struct InviteRequest {
  std::string email;
  std::string team_id;  // "" = none
  int line = 0;         // in the CSV
};
// "email[,teamId]" lines; blank lines, '#' comments and an "email,..." header
// are skipped; fields may be quoted; emails are de-duplicated (case-insensitive).
// Lines without a plausible email go to `problems` ("line N: ...").
std::vector<InviteRequest> ParseInviteCsv(std::string_view text, std::vector<std::string>* problems);

struct InviteOutcome {
  enum Kind { kSent, kWouldSend, kAlready, kSurplus, kFailed } kind = kSent;
  std::string email;
  std::string reason;
};
struct InviteReport {
  std::int64_t credits = 0, pending_before = 0, cap = 0;
  std::int64_t sent = 0, already = 0, surplus = 0, failed = 0;
  std::vector<InviteOutcome> outcomes;
  Status status;  // ok, or what stopped the run (401...)
};
// Sends invites without ever going past the pending cap (credits x 2): the
// surplus is reported, not sent. Emails already invited (and not revoked)
// are skipped. dry_run: the same decisions, nothing sent.
InviteReport InviteMembers(const Config& config, const std::vector<InviteRequest>& invites, bool dry_run);

struct RevokeOutcome {
  enum Kind { kRevoked, kWouldRevoke, kAlready, kNotFound, kFailed } kind = kRevoked;
  std::string email;
  std::string reason;
};
struct RevokeReport {
  std::int64_t revoked = 0, already = 0, not_found = 0, failed = 0;
  std::vector<RevokeOutcome> outcomes;
  Status status;
};
RevokeReport RevokeInvites(const Config& config, const std::vector<std::string>& emails, bool dry_run);

}  // namespace shotsync
