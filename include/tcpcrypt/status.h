// status.h: results of the public API.
//
// Every fallible call returns a Status or a StatusOr<T>. Codes map one to
// one onto gRPC status codes (same names, same numbers), so a gRPC service
// can return them unchanged. No exceptions cross the API.
#ifndef TCPCRYPT_STATUS_H_
#define TCPCRYPT_STATUS_H_

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tcpcrypt {

// StatusCode numbers are gRPC's (grpc::StatusCode).
enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,     // bad options or arguments
  kDeadlineExceeded = 4,    // a time-out (connect, handshake, auth, I/O)
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,    // authenticated, but not allowed
  kResourceExhausted = 8,   // a limit: pending handshakes, message size
  kFailedPrecondition = 9,  // call not valid now (e.g. session_id() on plain TCP)
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,           // a library failure
  kUnavailable = 14,        // the peer is unreachable or does not speak the protocol
  kDataLoss = 15,           // integrity failure or truncation of a protected stream
  kUnauthenticated = 16,    // authentication failed or was refused
};

std::string_view StatusCodeName(StatusCode code);  // "UNAVAILABLE", ...

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  int grpc_code() const { return static_cast<int>(code_); }
  const std::string& message() const { return message_; }
  // ToString is "CODE: message" (or "OK").
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

namespace internal {
// StatusOrValueOfError prints "tcpcrypt: StatusOr::value() on an error:
// CODE: message" to stderr and aborts (a programming error, like absl's
// StatusOr in builds without exceptions).
[[noreturn]] void StatusOrValueOfError(const Status& status);
}  // namespace internal

// StatusOr holds a value or a non-OK Status.
//
//   StatusOr<std::unique_ptr<Session>> s = client->Connect("host", 7000);
//   if (!s.ok()) return s.status();
//   (*s)->Write(...);              // or s.value(), s->, std::move(s).value()
//
// value(), operator* and operator-> on an error are a programming error:
// they print the status to stderr and call std::abort() (no exception is
// thrown, and never a reference to nothing). Check ok() first, or use
// value_or().
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  // A StatusOr made from an OK Status holds INTERNAL "StatusOr made from
  // OK" instead (there is no value to hold).
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) status_ = Status(StatusCode::kInternal, "StatusOr made from OK");
  }

  // ok() is true when a value is held.
  bool ok() const { return value_.has_value(); }
  // status() is OK when a value is held, else the error.
  const Status& status() const { return status_; }

  // value() returns the value; aborts with the status when !ok().
  T& value() & {
    if (!ok()) internal::StatusOrValueOfError(status_);
    return *value_;
  }
  const T& value() const& {
    if (!ok()) internal::StatusOrValueOfError(status_);
    return *value_;
  }
  T&& value() && {
    if (!ok()) internal::StatusOrValueOfError(status_);
    return std::move(*value_);
  }
  const T&& value() const&& {
    if (!ok()) internal::StatusOrValueOfError(status_);
    return std::move(*value_);
  }

  // operator* and operator-> are value(): they abort when !ok().
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T&& operator*() const&& { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // value_or returns the value, or |fallback| when !ok() (never aborts).
  template <typename U>
  T value_or(U&& fallback) const& {
    return ok() ? *value_ : static_cast<T>(std::forward<U>(fallback));
  }
  template <typename U>
  T value_or(U&& fallback) && {
    return ok() ? std::move(*value_) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace tcpcrypt

#endif  // TCPCRYPT_STATUS_H_
