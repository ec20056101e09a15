// The exit-code table (shotsync/exit_code.hpp): one row per Code, and a
// run's exit code (ok with or without failures).
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "shotsync/exit_code.hpp"

using shotsync::Code;
using shotsync::CodeName;
using shotsync::ExitCodeFor;
using shotsync::RunExitCode;
using shotsync::Status;
namespace exit_code = shotsync::exit_code;

TEST_CASE("ExitCodeFor: one row per Code", "[exit_code]") {
  const std::vector<std::pair<Code, int>> rows = {
      {Code::kOk, 0},          {Code::kInvalidArgument, 2}, {Code::kNotFound, 2},
      {Code::kIo, 1},          {Code::kCorrupt, 2},         {Code::kUnauthenticated, 3},
      {Code::kForbidden, 3},   {Code::kRateLimited, 1},     {Code::kNetwork, 1},
      {Code::kServer, 1},      {Code::kConflict, 1},        {Code::kRejected, 1},
      {Code::kBusy, 4},        {Code::kAlreadyDone, 1},     {Code::kCancelled, 5},
      {Code::kUnsupported, 2}, {Code::kInternal, 1},
  };
  for (const auto& [code, exit] : rows) {
    INFO(CodeName(code));
    CHECK(ExitCodeFor(code == Code::kOk ? Status::Ok() : Status(code, "x")) == exit);
  }
  CHECK(exit_code::kOk == 0);
  CHECK(exit_code::kPartial == 1);
  CHECK(exit_code::kUsage == 2);
  CHECK(exit_code::kAuth == 3);
  CHECK(exit_code::kLocked == 4);
  CHECK(exit_code::kInterrupted == 5);
}

TEST_CASE("RunExitCode: ok with or without failures, errors by the table", "[exit_code]") {
  CHECK(RunExitCode(Status::Ok(), false) == 0);
  CHECK(RunExitCode(Status::Ok(), true) == 1);
  CHECK(RunExitCode(Status(Code::kUnauthenticated, "x"), false) == 3);
  CHECK(RunExitCode(Status(Code::kCancelled, "x"), true) == 5);
  CHECK(RunExitCode(Status(Code::kNetwork, "x"), false) == 1);
}
