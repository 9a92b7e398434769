// Small pieces of the public API: status names, option names, Password.
#include <openssl/crypto.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core_transport/engine/bytes.h"
#include "tcpcrypt/options.h"
#include "tcpcrypt/session.h"
#include "tcpcrypt/status.h"

namespace tcpcrypt {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kCancelled: return "CANCELLED";
    case StatusCode::kUnknown: return "UNKNOWN";
    case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case StatusCode::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case StatusCode::kNotFound: return "NOT_FOUND";
    case StatusCode::kAlreadyExists: return "ALREADY_EXISTS";
    case StatusCode::kPermissionDenied: return "PERMISSION_DENIED";
    case StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case StatusCode::kFailedPrecondition: return "FAILED_PRECONDITION";
    case StatusCode::kAborted: return "ABORTED";
    case StatusCode::kOutOfRange: return "OUT_OF_RANGE";
    case StatusCode::kUnimplemented: return "UNIMPLEMENTED";
    case StatusCode::kInternal: return "INTERNAL";
    case StatusCode::kUnavailable: return "UNAVAILABLE";
    case StatusCode::kDataLoss: return "DATA_LOSS";
    case StatusCode::kUnauthenticated: return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

namespace internal {

void StatusOrValueOfError(const Status& status) {
  const std::string text = status.ToString();
  std::fprintf(stderr, "tcpcrypt: StatusOr::value() on an error: %s\n", text.c_str());
  std::abort();
}

}  // namespace internal

std::string ToHex(std::span<const uint8_t> bytes) { return HexLower(bytes); }

std::string Session::session_id_hex() const {
  StatusOr<std::vector<uint8_t>> id = session_id();
  if (!id.ok()) return std::string();
  return ToHex(*id);
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "unknown";
}

std::string_view AuthMechanismName(AuthMechanism m) {
  switch (m) {
    case AuthMechanism::kCmacPassword: return "cmac";
    case AuthMechanism::kPake: return "pake";
    case AuthMechanism::kX509: return "x509";
    case AuthMechanism::kTicket: return "ticket";
  }
  return "unknown";
}

std::string_view ChannelName(Channel c) {
  switch (c) {
    case Channel::kTcpcrypt: return "tcpcrypt";
    case Channel::kTls13: return "tls1.3";
    case Channel::kPlain: return "plain";
  }
  return "unknown";
}

Password::Password(std::string_view text)
    : bytes_(std::make_unique<char[]>(text.size() + 1)), size_(text.size()) {
  std::memcpy(bytes_.get(), text.data(), text.size());
}

Password::~Password() { OPENSSL_cleanse(bytes_.get(), size_); }

std::string_view Password::view() const { return {bytes_.get(), size_}; }

}  // namespace tcpcrypt
