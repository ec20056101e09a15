// The one --json schema's common parts (docs/json.md, docs/shotsync.schema.json):
// every command prints one object with schema_version, command, exit_code,
// status, errors[] and warnings[], built here so no command spells them.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "shotsync/status.hpp"

namespace shotsync::cli {

inline constexpr int kJsonSchemaVersion = 1;

// One command's --json object. Fill the command's own fields with
// operator[], name what went wrong with AddError/AddWarning, then Print.
class JsonReport {
 public:
  explicit JsonReport(std::string_view command);

  nlohmann::json& operator[](const char* key) { return out_[key]; }
  // Several fields at once: {{"uploaded", 3}, {"skipped", 1}}.
  void Set(const nlohmann::json& fields) { out_.update(fields); }

  // errors[]: {path?, target?, reason, code?}; empty strings are left out.
  // `code` is machine-readable: a status name ("unauthenticated") or an
  // outcome ("rejected", "failed", "conflict").
  nlohmann::json& AddError(std::string_view reason, std::string_view path = {}, std::string_view target = {},
                           std::string_view code = {});
  // warnings[]: {path?, reason}: named, but they do not fail the run.
  void AddWarning(std::string_view reason, std::string_view path = {});

  // Sets exit_code and status (unless set: "error"), adds a status that is not ok to errors[]
  // (the fatal message), and makes sure a non-zero exit is explained, then
  // prints the object on stdout.
  void Print(int exit_code, const Status& status = Status::Ok());

 private:
  nlohmann::json out_;
};

// For a command that stops before it has anything to report (no config,
// lock held, bad usage): prints the error as always and, under --json, the
// object that explains the exit. Returns exit_code.
int FailWith(const GlobalOptions& options, std::string_view command, const Status& status, int exit_code);

// The same when the error line was already printed (OpenProfile): the
// object names the exit code's meaning and points at stderr.
int FailedEarly(const GlobalOptions& options, std::string_view command, int exit_code);

// nlohmann's dump as every command prints it: indented, invalid UTF-8
// (a file name from an old disk) replaced instead of thrown on.
std::string DumpJson(const nlohmann::json& j);

}  // namespace shotsync::cli
