#include <cstdio>

#include <CLI/CLI.hpp>  // before cli.hpp, whose validators need CLI11's errors

#include "json_out.hpp"

namespace shotsync::cli {

namespace {

// README's "Exit codes", for an exit no other entry explains.
const char* ExitMeaning(int code) {
  switch (code) {
    case kExitPartial: return "finished, but some files failed or were rejected";
    case kExitUsage: return "usage or config error";
    case kExitAuth: return "authentication or authorization failed";
    case kExitLocked: return "another run holds the profile's lock";
    case kExitInterrupted: return "interrupted: run the same command to resume";
    default: return "failed";
  }
}

}  // namespace

JsonReport::JsonReport(std::string_view command)
    : out_({{"schema_version", kJsonSchemaVersion},
            {"command", std::string(command)},
            {"errors", nlohmann::json::array()},
            {"warnings", nlohmann::json::array()}}) {}

nlohmann::json& JsonReport::AddError(std::string_view reason, std::string_view path, std::string_view target,
                                     std::string_view code) {
  nlohmann::json e = nlohmann::json::object();
  if (!path.empty()) e["path"] = std::string(path);
  if (!target.empty()) e["target"] = std::string(target);
  e["reason"] = std::string(reason);
  if (!code.empty()) e["code"] = std::string(code);
  out_["errors"].push_back(std::move(e));
  return out_["errors"].back();
}

void JsonReport::AddWarning(std::string_view reason, std::string_view path) {
  nlohmann::json w = nlohmann::json::object();
  if (!path.empty()) w["path"] = std::string(path);
  w["reason"] = std::string(reason);
  out_["warnings"].push_back(std::move(w));
}

void JsonReport::Print(int exit_code, const Status& status) {
  out_["exit_code"] = exit_code;
  if (!out_.contains("status")) out_["status"] = status.ok() ? std::string("ok") : std::string(CodeName(status.code()));
  if (!status.ok()) AddError(status.message(), {}, {}, CodeName(status.code()));
  // The schema's rule: a non-zero exit is never left unexplained.
  if (exit_code != kExitOk && out_["errors"].empty() && out_["warnings"].empty()) {
    std::string code = "exit_";
    code += std::to_string(exit_code);
    AddError(ExitMeaning(exit_code), {}, {}, code);
  }
  std::printf("%s\n", DumpJson(out_).c_str());
  std::fflush(stdout);
}

int FailWith(const GlobalOptions& options, std::string_view command, const Status& status, int exit_code) {
  PrintError(options, status);
  if (options.json) JsonReport(command).Print(exit_code, status);
  return exit_code;
}

int FailedEarly(const GlobalOptions& options, std::string_view command, int exit_code) {
  if (options.json) {
    JsonReport report(command);
    std::string reason = ExitMeaning(exit_code);
    reason += " (the message is on stderr)";
    std::string code = "exit_";
    code += std::to_string(exit_code);
    report.AddError(reason, {}, {}, code);
    report["status"] = "error";  // which status it was, only stderr says
    report.Print(exit_code);
  }
  return exit_code;
}

std::string DumpJson(const nlohmann::json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace shotsync::cli
