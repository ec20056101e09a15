// shotsync team status|invite|revoke: HeadshotPro team administration.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <set>

#include "shotsync/fs.hpp"
#include "shotsync/hasher.hpp"
#include "shotsync/headshotpro.hpp"
#include "shotsync/manifest.hpp"
#include "shotsync/session.hpp"

namespace shotsync {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  std::string out(s.substr(b, e - b));
  if (out.size() >= 2 && out.front() == '"' && out.back() == '"') out = out.substr(1, out.size() - 2);
  return out;
}

std::string Shown(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 120)) out += (c < 0x20 || c == 0x7f) ? '?' : char(c);
  return out;
}

bool PlausibleEmail(const std::string& e) {
  const auto at = e.find('@');
  if (at == std::string::npos || at == 0 || at + 1 >= e.size() || e.find('@', at + 1) != std::string::npos) {
    return false;
  }
  if (e.find('.', at) == std::string::npos || e.size() > 254) return false;
  return std::none_of(e.begin(), e.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
}

// A session for a few administration calls (two at a time), sharing the
// manifest's bucket when the state dir is usable.
class Session {
 public:
  explicit Session(const Config& config) : db_(OpenDb(config)), session_(config, db_.get()) {}

  HeadshotProClient& client() { return session_.client(); }

  static Status CheckKey(const Config& config) {
    if (!config.headshotpro.key.empty()) return Status::Ok();
    return Status(Code::kUnauthenticated,
                  "no HeadshotPro API key: set HEADSHOTPRO_API_KEY (or headshotpro.key_file in " +
                      (config.source.empty() ? std::string("the config") : config.source) + ")");
  }

 private:
  // Best effort: the shared bucket keeps a concurrent pull and this command within one limit.
  static std::unique_ptr<Manifest> OpenDb(const Config& config) {
    if (config.state_dir.empty() || !MakePrivateDirs(config.state_dir).ok()) return nullptr;
    auto m = Manifest::Open(config.ManifestPath());
    return m.ok() ? std::move(*m) : nullptr;
  }

  std::unique_ptr<Manifest> db_;  // before session_: its bucket store uses it
  HeadshotProSession session_;
};

}  // namespace

bool InviteIsPending(std::string_view status) {
  return status != "completed" && status != "revoked" && status != "deleted";
}

Result<TeamStatus> GetTeamStatus(const Config& config) {
  SHOTSYNC_RETURN_IF_ERROR(Session::CheckKey(config));
  Session s(config);
  TeamStatus out;
  SHOTSYNC_ASSIGN_OR_RETURN(out.credits, s.client().Credits());
  SHOTSYNC_ASSIGN_OR_RETURN(std::vector<HpInvite> invites, s.client().ListInvites());
  for (const HpInvite& i : invites) {
    ++out.invites[i.status.empty() ? "unknown" : i.status];
    if (InviteIsPending(i.status)) ++out.pending_invites;
  }
  out.invite_cap = std::max<std::int64_t>(0, out.credits) * 2;
  SHOTSYNC_ASSIGN_OR_RETURN(std::vector<HpMember> members, s.client().ListMembers(""));
  for (HpMember& m : members) out.members[m.status.empty() ? "unknown" : m.status].push_back(std::move(m));
  return out;
}

std::vector<InviteRequest> ParseInviteCsv(std::string_view text, std::vector<std::string>* problems) {
  std::vector<InviteRequest> out;
  std::set<std::string> seen;
  int line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line_no == 1 && line.size() >= 3 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);  // BOM
    const std::string trimmed = Trim(line);
    if (trimmed.empty() || trimmed[0] == '#') continue;
    const auto comma = line.find(',');
    const std::string email = Trim(line.substr(0, comma));
    std::string team = comma == std::string_view::npos ? "" : Trim(line.substr(comma + 1));
    if (const auto c2 = team.find(','); c2 != std::string::npos) team = Trim(team.substr(0, c2));
    if (out.empty() && seen.empty() && (Lower(email) == "email" || Lower(email) == "e-mail")) continue;  // header
    if (!PlausibleEmail(email)) {
      if (problems) problems->push_back("line " + std::to_string(line_no) + ": \"" + Shown(email) + "\" is not an email address");
      seen.insert("");  // a header is only allowed first
      continue;
    }
    if (!seen.insert(Lower(email)).second) {
      if (problems) problems->push_back("line " + std::to_string(line_no) + ": " + Shown(email) + " is listed twice (invited once)");
      continue;
    }
    out.push_back({email, team, line_no});
  }
  return out;
}

InviteReport InviteMembers(const Config& config, const std::vector<InviteRequest>& invites, bool dry_run) {
  InviteReport r;
  r.status = Session::CheckKey(config);
  if (!r.status.ok()) return r;
  Session s(config);
  auto credits = s.client().Credits();
  if (!credits.ok()) {
    r.status = credits.status();
    return r;
  }
  auto existing = s.client().ListInvites();
  if (!existing.ok()) {
    r.status = existing.status();
    return r;
  }
  r.credits = *credits;
  r.cap = std::max<std::int64_t>(0, r.credits) * 2;
  std::map<std::string, std::string> status_of;  // lower email -> status
  for (const HpInvite& i : *existing) {
    status_of[Lower(i.email)] = i.status;
    if (InviteIsPending(i.status)) ++r.pending_before;
  }
  std::int64_t room = std::max<std::int64_t>(0, r.cap - r.pending_before);
  const std::string cap_note = "pending-invite cap reached (credits " + std::to_string(r.credits) + " x 2 = " +
                               std::to_string(r.cap) + ", " + std::to_string(r.pending_before) + " pending before)";
  bool stopped = false;  // the server refused for the cap or credits: the rest is surplus
  std::string stop_reason;
  for (const InviteRequest& in : invites) {
    const std::string shown = Shown(in.email);
    auto st = status_of.find(Lower(in.email));
    if (st != status_of.end() && st->second != "revoked" && st->second != "deleted") {
      ++r.already;
      r.outcomes.push_back({InviteOutcome::kAlready, in.email, "already invited (" + Shown(st->second) + ")"});
      continue;
    }
    if (room <= 0 || stopped) {
      ++r.surplus;
      r.outcomes.push_back({InviteOutcome::kSurplus, in.email, stopped ? stop_reason : cap_note});
      continue;
    }
    if (dry_run) {
      --room;
      ++r.sent;
      r.outcomes.push_back({InviteOutcome::kWouldSend, in.email, ""});
      continue;
    }
    HpAnswer a = s.client().Invite(in.email, in.team_id);
    if (a.status.ok()) {
      --room;
      ++r.sent;
      r.outcomes.push_back({InviteOutcome::kSent, in.email, ""});
      continue;
    }
    if (a.code == "INVITE_LIMIT_EXCEEDED" || a.code == "INSUFFICIENT_CREDITS") {
      stopped = true;
      stop_reason = a.status.message();
      ++r.surplus;
      r.outcomes.push_back({InviteOutcome::kSurplus, in.email, stop_reason});
      continue;
    }
    if (a.code == "ALREADY_EXISTS") {
      ++r.already;
      r.outcomes.push_back({InviteOutcome::kAlready, in.email, a.status.message()});
      continue;
    }
    if (a.status.code() == Code::kUnauthenticated || a.status.code() == Code::kForbidden ||
        a.status.code() == Code::kCancelled) {
      r.status = a.status;
      return r;
    }
    ++r.failed;
    r.outcomes.push_back({InviteOutcome::kFailed, in.email, a.status.message()});
  }
  return r;
}

RevokeReport RevokeInvites(const Config& config, const std::vector<std::string>& emails, bool dry_run) {
  RevokeReport r;
  r.status = Session::CheckKey(config);
  if (!r.status.ok()) return r;
  Session s(config);
  std::map<std::string, std::string> status_of;
  if (dry_run) {
    auto existing = s.client().ListInvites();
    if (!existing.ok()) {
      r.status = existing.status();
      return r;
    }
    for (const HpInvite& i : *existing) status_of[Lower(i.email)] = i.status;
  }
  for (const std::string& email : emails) {
    if (dry_run) {
      auto it = status_of.find(Lower(email));
      if (it == status_of.end()) {
        ++r.not_found;
        r.outcomes.push_back({RevokeOutcome::kNotFound, email, "no invite for this email"});
      } else if (it->second == "revoked" || it->second == "deleted") {
        ++r.already;
        r.outcomes.push_back({RevokeOutcome::kAlready, email, "already " + Shown(it->second)});
      } else {
        ++r.revoked;
        r.outcomes.push_back({RevokeOutcome::kWouldRevoke, email, "now " + Shown(it->second)});
      }
      continue;
    }
    HpAnswer a = s.client().Revoke(email);
    if (a.status.ok()) {
      ++r.revoked;
      r.outcomes.push_back({RevokeOutcome::kRevoked, email, ""});
    } else if (a.code == "ALREADY_DELETED") {
      ++r.already;
      r.outcomes.push_back({RevokeOutcome::kAlready, email, a.status.message()});
    } else if (a.status.code() == Code::kNotFound) {
      ++r.not_found;
      r.outcomes.push_back({RevokeOutcome::kNotFound, email, a.status.message()});
    } else if (a.status.code() == Code::kUnauthenticated || a.status.code() == Code::kForbidden ||
               a.status.code() == Code::kCancelled) {
      r.status = a.status;
      return r;
    } else {
      ++r.failed;
      r.outcomes.push_back({RevokeOutcome::kFailed, email, a.status.message()});
    }
  }
  return r;
}

}  // namespace shotsync
