// docs/examples/status.cc
//
// Errors: every fallible call returns a Status or a StatusOr<T>, never an
// exception. Codes are gRPC's, name for name and number for number.
//
//   ./example_status
#include <tcpcrypt/client.h>
#include <tcpcrypt/server.h>
#include <tcpcrypt/status.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

namespace {

// Retryable says whether an attempt that failed with |status| may succeed
// if made again later. Authentication and integrity failures never do.
bool Retryable(const tcpcrypt::Status& status) {
  using enum tcpcrypt::StatusCode;
  switch (status.code()) {
    case kUnavailable:        // refused, unreachable, or not speaking the protocol
    case kDeadlineExceeded:   // a time-out
    case kResourceExhausted:  // the server is at a limit
      return true;
    case kOk:
    case kCancelled:
    case kUnknown:
    case kInvalidArgument:
    case kNotFound:
    case kAlreadyExists:
    case kPermissionDenied:
    case kFailedPrecondition:
    case kAborted:
    case kOutOfRange:
    case kUnimplemented:
    case kInternal:
    case kDataLoss:
    case kUnauthenticated:
      return false;
  }
  return false;
}

// ConnectWithRetry makes up to |attempts| attempts, backing off between them.
tcpcrypt::StatusOr<std::unique_ptr<tcpcrypt::Session>> ConnectWithRetry(
    tcpcrypt::Client& client, const std::string& host, uint16_t port, int attempts) {
  std::chrono::milliseconds backoff(50);
  for (int i = 1;; ++i) {
    auto session = client.Connect(host, port);
    if (session.ok() || i == attempts || !Retryable(session.status())) return session;
    std::this_thread::sleep_for(backoff);
    backoff *= 2;
  }
}

void Print(const char* what, const tcpcrypt::Status& status) {
  // code() is the enum, grpc_code() its gRPC number, ToString() "CODE: message".
  std::printf("%s: %s (gRPC %d), retryable: %s\n  %s\n", what,
              std::string(tcpcrypt::StatusCodeName(status.code())).c_str(), status.grpc_code(),
              Retryable(status) ? "yes" : "no", status.ToString().c_str());
}

// ClosedPort returns a loopback port on which nothing listens any more.
uint16_t ClosedPort() {
  auto server = tcpcrypt::Server::Create(tcpcrypt::ServerOptions{});
  if (!server.ok() || !server.value()->Listen("127.0.0.1", 0).ok()) return 0;
  return server.value()->port();  // closed when |server| goes
}

}  // namespace

int main() {
  // Options are checked when the Client is made: INVALID_ARGUMENT, with
  // the reason in message().
  tcpcrypt::ClientOptions incomplete;
  incomplete.mechanisms = {tcpcrypt::AuthMechanism::kPake};  // but no user or password
  auto refused = tcpcrypt::Client::Create(incomplete);
  if (refused.ok()) return 1;
  Print("Client::Create", refused.status());

  // Nobody listening: UNAVAILABLE, worth a retry.
  tcpcrypt::ClientOptions options;
  options.timeouts.connect_ms = 2000;
  auto client = tcpcrypt::Client::Create(options);
  if (!client.ok()) return 1;  // value() would abort: always check ok() first
  auto session = ConnectWithRetry(*client.value(), "127.0.0.1", ClosedPort(), /*attempts=*/3);
  if (session.ok()) return 1;
  Print("Connect", session.status());

  return refused.status().code() == tcpcrypt::StatusCode::kInvalidArgument &&
                 session.status().code() == tcpcrypt::StatusCode::kUnavailable
             ? 0
             : 1;
}
