// Status and Result<T>: errors as values at every module boundary.
//
// A Status is a cheap value: a code plus a one-line, human-readable message
// that already names the file or request it is about. Result<T> holds either a
// T or a non-ok Status (std::expected is C++23; this is the C++20 subset we
// need). Both are [[nodiscard]] so that an error cannot be dropped silently.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace shotsync {

enum class Code {
  kOk = 0,
  kInvalidArgument,  // bad input, usage or config error
  kNotFound,         // file, row or remote resource absent
  kIo,               // local I/O failure (errno in the message)
  kCorrupt,          // data that cannot be trusted (manifest, response body)
  kUnauthenticated,  // 401 / bad token
  kForbidden,        // 403 / scope, plan, locked project
  kRateLimited,      // 429
  kNetwork,          // connection, timeout, reset
  kServer,           // 5xx
  kConflict,         // 409
  kRejected,         // permanent refusal of one item (422, 413, size, not an image)
  kBusy,             // lock held by another process
  kAlreadyDone,      // the work was done by someone else (another process)
  kCancelled,        // interrupted by a signal
  kUnsupported,      // e.g. a manifest schema newer than this binary
  kSkipped,          // a permanent local condition: the entry is left out, a warning (dangling symlink)
  kInternal,
};

std::string_view CodeName(Code code) noexcept;

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status Invalid(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  // `what` names the file or operation; `err` is the errno value.
  static Status Io(std::string_view what, int err);
  static Status Corrupt(std::string m) { return {Code::kCorrupt, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const noexcept { return code_ == Code::kOk; }
  explicit operator bool() const noexcept { return ok(); }
  Code code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  // "message" (or "ok"); what a user sees on one line.
  std::string ToString() const { return ok() ? std::string("ok") : message_; }

  // Prefixes context ("manifest.db: " + message) keeping the code.
  Status WithContext(std::string_view context) const {
    if (ok()) return *this;
    // Built piecewise: GCC 12 warns falsely (-Warray-bounds) on an operator+
    // chain once this is inlined into a larger unit.
    std::string text;
    text.reserve(context.size() + 2 + message_.size());
    text.append(context).append(": ").append(message_);
    return {code_, std::move(text)};
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(implicit)
  Result(Status status) : v_(std::in_place_index<1>, std::move(status)) {  // NOLINT(implicit)
    assert(!std::get<1>(v_).ok() && "Result built from an ok Status");
  }

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Status& status() const& {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }
  Status status() && { return ok() ? Status() : std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace shotsync

// Early return helpers, in the style of absl's RETURN_IF_ERROR.
#define SHOTSYNC_CONCAT_INNER(a, b) a##b
#define SHOTSYNC_CONCAT(a, b) SHOTSYNC_CONCAT_INNER(a, b)
#define SHOTSYNC_RETURN_IF_ERROR(expr)          \
  do {                                          \
    ::shotsync::Status _st = (expr);            \
    if (!_st.ok()) return _st;                  \
  } while (0)
#define SHOTSYNC_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = std::move(tmp).value()
#define SHOTSYNC_ASSIGN_OR_RETURN(lhs, expr) \
  SHOTSYNC_ASSIGN_OR_RETURN_IMPL(SHOTSYNC_CONCAT(_res_, __LINE__), lhs, expr)
