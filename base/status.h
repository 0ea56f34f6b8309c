// Status and StatusOr<T>: the one way speedmon's libraries report failure.
//
// A function that can fail returns Status (nothing else to return) or StatusOr<T> (a value
// or why not). The code says what kind of failure it is in the caller's terms, the message
// says what happened in words a user can act on, and for invalid input `field` names the
// input field at fault. Libraries never speak HTTP: admin/ alone maps codes to statuses
// (see HttpStatusFor in admin/api.h).
//
// Why our own rather than absl::Status: Abseil is two classes here against a large
// dependency, and validation errors need a field name, which absl carries only as an
// untyped payload. The shape and names follow absl so a reader knows them already.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace speedmon::base {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong; retrying it will not help
  kNotFound,            // the named thing does not exist (or no longer)
  kAlreadyExists,       // a create met an existing thing with that name
  kTooLarge,            // the input exceeds a configured limit
  kUnsupportedFormat,   // the input's declared format is not one we read
  kUnauthenticated,     // missing or wrong credentials
  kUnavailable,         // not now (closed, queue full, store error); retry later
  kFailedPrecondition,  // the system is not in a state where this can run
  kInternal,            // a bug or an environment failure (I/O, a library refused)
};

// "OK", "INVALID_ARGUMENT", ... for logs and tests.
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message, std::string field = "")
      : code_(code), message_(std::move(message)), field_(std::move(field)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The input field at fault ("" when none or not applicable).
  const std::string& field() const { return field_; }
  // "INVALID_ARGUMENT: message" (with " (field: x)" when set); "OK" when ok.
  std::string ToString() const;
  // The same status with `context + ": "` put before the message.
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_ && a.field_ == b.field_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string field_;
};

inline Status OkStatus() { return Status(); }
inline Status InvalidArgumentError(std::string message, std::string field = "") {
  return Status(StatusCode::kInvalidArgument, std::move(message), std::move(field));
}
inline Status NotFoundError(std::string message, std::string field = "") {
  return Status(StatusCode::kNotFound, std::move(message), std::move(field));
}
inline Status AlreadyExistsError(std::string message, std::string field = "") {
  return Status(StatusCode::kAlreadyExists, std::move(message), std::move(field));
}
inline Status TooLargeError(std::string message, std::string field = "") {
  return Status(StatusCode::kTooLarge, std::move(message), std::move(field));
}
inline Status UnsupportedFormatError(std::string message) {
  return Status(StatusCode::kUnsupportedFormat, std::move(message));
}
inline Status UnauthenticatedError(std::string message) {
  return Status(StatusCode::kUnauthenticated, std::move(message));
}
inline Status UnavailableError(std::string message) {
  return Status(StatusCode::kUnavailable, std::move(message));
}
inline Status FailedPreconditionError(std::string message) {
  return Status(StatusCode::kFailedPrecondition, std::move(message));
}
inline Status InternalError(std::string message) {
  return Status(StatusCode::kInternal, std::move(message));
}

// A T or a non-OK Status. Reading value() of an error is a bug (asserted in debug builds).
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  // REQUIRES: !status.ok() (an OK status carries no value; it becomes kInternal).
  StatusOr(Status status) : v_(std::move(status)) {  // NOLINT: implicit like absl
    if (std::get<Status>(v_).ok()) v_ = InternalError("StatusOr made from an OK status");
  }
  StatusOr(T value) : v_(std::move(value)) {}  // NOLINT: implicit like absl

  bool ok() const { return std::holds_alternative<T>(v_); }
  // OK when holding a value.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  const T& value() const& {
    assert(ok());
    return std::get<T>(v_);
  }
  T& value() & {
    assert(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(v_));
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace speedmon::base
