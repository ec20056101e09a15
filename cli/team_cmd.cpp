// shotsync team status|invite|revoke: HeadshotPro team administration.
#include <cerrno>
#include <memory>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "json_out.hpp"
#include "shotsync/headshotpro.hpp"

namespace shotsync::cli {
namespace {

struct TeamCommandOptions {
  std::string action;  // status | invite | revoke
  std::string csv;
  std::string team;    // default team for CSV lines without one
  std::vector<std::string> emails;
  bool dry_run = false;
};

const char* InviteWord(InviteOutcome::Kind k) {
  switch (k) {
    case InviteOutcome::kSent: return "sent";
    case InviteOutcome::kWouldSend: return "would send";
    case InviteOutcome::kAlready: return "already";
    case InviteOutcome::kSurplus: return "not sent";
    case InviteOutcome::kFailed: return "failed";
  }
  return "?";
}

const char* RevokeWord(RevokeOutcome::Kind k) {
  switch (k) {
    case RevokeOutcome::kRevoked: return "revoked";
    case RevokeOutcome::kWouldRevoke: return "would revoke";
    case RevokeOutcome::kAlready: return "already";
    case RevokeOutcome::kNotFound: return "not found";
    case RevokeOutcome::kFailed: return "failed";
  }
  return "?";
}

int ShowStatus(const GlobalOptions& options, const Config& config) {
  auto st = GetTeamStatus(config);
  if (!st.ok()) return FailWith(options, "team", st.status(), ExitCodeFor(st.status()));
  if (options.json) {
    nlohmann::json members = nlohmann::json::object();
    for (const auto& [status, list] : st->members) {
      nlohmann::json a = nlohmann::json::array();
      for (const HpMember& m : list) {
        a.push_back({{"id", m.id}, {"email", m.email}, {"name", m.name}, {"team", m.team_name},
                     {"modelId", m.model_id}, {"modelStatus", m.model_status}});
      }
      members[status] = a;
    }
    nlohmann::json invites = nlohmann::json::object();
    for (const auto& [status, n] : st->invites) invites[status] = n;
    JsonReport json("team");
    json.Set({{"action", "status"}, {"credits", st->credits}, {"pending_invites", st->pending_invites},
              {"invite_cap", st->invite_cap}, {"members", members}, {"invites", invites}});
    json.Print(kExitOk);
    return kExitOk;
  }
  std::printf("credits: %lld\npending invites: %lld of %lld allowed (credits x 2)\n", (long long)st->credits,
              (long long)st->pending_invites, (long long)st->invite_cap);
  for (const char* s : {"finished", "pending", "accepted"}) {
    auto it = st->members.find(s);
    std::printf("members %-9s %zu\n", (std::string(s) + ":").c_str(), it == st->members.end() ? 0 : it->second.size());
  }
  for (const auto& [status, list] : st->members) {
    if (status != "finished" && status != "pending" && status != "accepted") {
      std::printf("members %s: %zu\n", status.c_str(), list.size());
    }
  }
  if (options.verbose) {
    for (const auto& [status, list] : st->members) {
      for (const HpMember& m : list) {
        std::printf("  %-9s %s  %s  %s\n", status.c_str(), m.email.c_str(), m.name.c_str(), m.team_name.c_str());
      }
    }
  }
  return kExitOk;
}

int Invite(const GlobalOptions& options, const Config& config, const TeamCommandOptions& team) {
  std::ifstream in(team.csv, std::ios::binary);
  if (!in) return FailWith(options, "team", Status::Io(team.csv, errno), kExitUsage);
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<std::string> problems;
  std::vector<InviteRequest> list = ParseInviteCsv(ss.str(), &problems);
  for (const auto& p : problems) options.log->Error(team.csv + ": " + p);
  for (auto& r : list) {
    if (r.team_id.empty()) r.team_id = team.team;
  }
  InviteReport r = InviteMembers(config, list, team.dry_run);
  if (!r.status.ok()) return FailWith(options, "team", r.status, ExitCodeFor(r.status));
  const int code = (r.failed > 0 || r.surplus > 0 || !problems.empty()) ? kExitPartial : kExitOk;
  if (options.json) {
    JsonReport json("team");
    nlohmann::json a = nlohmann::json::array();
    for (const auto& o : r.outcomes) {
      a.push_back({{"email", o.email}, {"result", InviteWord(o.kind)}, {"reason", o.reason}});
      if (o.kind == InviteOutcome::kFailed || o.kind == InviteOutcome::kSurplus) {
        json.AddError(o.reason.empty() ? InviteWord(o.kind) : o.reason, {}, o.email,
                      o.kind == InviteOutcome::kFailed ? "failed" : "surplus");
      }
    }
    for (const auto& p : problems) json.AddError(p, team.csv, {}, "invalid");
    json.Set({{"action", "invite"}, {"credits", r.credits}, {"cap", r.cap}, {"pending_before", r.pending_before},
              {"sent", r.sent}, {"already", r.already}, {"surplus", r.surplus}, {"failed", r.failed},
              {"invalid", problems.size()}, {"dry_run", team.dry_run}, {"outcomes", a}});
    json.Print(code);
  } else {
    for (const auto& o : r.outcomes) {
      if (o.kind == InviteOutcome::kSent && !options.verbose) continue;
      std::printf("%-10s %s%s%s\n", InviteWord(o.kind), o.email.c_str(), o.reason.empty() ? "" : "  ", o.reason.c_str());
    }
    if (!options.quiet) {
      std::printf("invite%s: %lld %s, %lld already invited, %lld over the cap (not sent), %lld failed, "
                  "%zu unusable lines; cap %lld (credits %lld x 2), %lld pending before\n",
                  team.dry_run ? " (dry run)" : "", (long long)r.sent, team.dry_run ? "would be sent" : "sent",
                  (long long)r.already, (long long)r.surplus, (long long)r.failed, problems.size(),
                  (long long)r.cap, (long long)r.credits, (long long)r.pending_before);
    }
  }
  return code;
}

int Revoke(const GlobalOptions& options, const Config& config, const TeamCommandOptions& team) {
  RevokeReport r = RevokeInvites(config, team.emails, team.dry_run);
  if (!r.status.ok()) return FailWith(options, "team", r.status, ExitCodeFor(r.status));
  const int code = (r.failed > 0 || r.not_found > 0) ? kExitPartial : kExitOk;
  if (options.json) {
    JsonReport json("team");
    nlohmann::json a = nlohmann::json::array();
    for (const auto& o : r.outcomes) {
      a.push_back({{"email", o.email}, {"result", RevokeWord(o.kind)}, {"reason", o.reason}});
      if (o.kind == RevokeOutcome::kFailed || o.kind == RevokeOutcome::kNotFound) {
        json.AddError(o.reason.empty() ? RevokeWord(o.kind) : o.reason, {}, o.email,
                      o.kind == RevokeOutcome::kFailed ? "failed" : "not_found");
      }
    }
    json.Set({{"action", "revoke"}, {"revoked", r.revoked}, {"already", r.already}, {"not_found", r.not_found},
              {"failed", r.failed}, {"dry_run", team.dry_run}, {"outcomes", a}});
    json.Print(code);
  } else {
    for (const auto& o : r.outcomes) {
      std::printf("%-12s %s%s%s\n", RevokeWord(o.kind), o.email.c_str(), o.reason.empty() ? "" : "  ", o.reason.c_str());
    }
  }
  return code;
}

int RunTeam(const GlobalOptions& options, const TeamCommandOptions& team) {
  auto config = LoadConfigFor(options);
  if (!config.ok()) return FailWith(options, "team", config.status(), kExitUsage);
  if (team.action == "status") return ShowStatus(options, *config);
  if (team.action == "invite") return Invite(options, *config, team);
  if (team.action == "revoke") return Revoke(options, *config, team);
  return kExitUsage;
}

}  // namespace

Command AddTeamCommand(CLI::App& app) {
  auto opts = std::make_shared<TeamCommandOptions>();
  TeamCommandOptions& o = *opts;
  auto* team = app.add_subcommand("team", "HeadshotPro team administration: status, invite, revoke");
  team->require_subcommand(1);
  team->fallthrough();
  auto* status = team->add_subcommand("status", "credits, pending invites and members by status");
  status->callback([&o] { o.action = "status"; });
  auto* invite = team->add_subcommand("invite", "invite the emails of a CSV (email[,teamId]) up to the pending cap");
  invite->add_option("--csv", o.csv, "CSV file: email[,teamId] per line")->required();
  invite->add_option("--team", o.team, "team id for lines without one");
  invite->add_flag("--dry-run", o.dry_run, "show what would be sent, send nothing");
  invite->callback([&o] { o.action = "invite"; });
  auto* revoke = team->add_subcommand("revoke", "revoke pending invites");
  revoke->add_option("emails", o.emails, "emails to revoke")->required();
  revoke->add_flag("--dry-run", o.dry_run, "show what would be revoked, revoke nothing");
  revoke->callback([&o] { o.action = "revoke"; });
  for (auto* sub : {status, invite, revoke}) sub->fallthrough();
  return {team, [opts](const GlobalOptions& g) { return RunTeam(g, *opts); }};
}

}  // namespace shotsync::cli
