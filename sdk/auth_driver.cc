#include "sdk/auth_driver.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core_transport/engine/secret.h"

namespace tcpcrypt::sdk {
namespace {

using Clock = std::chrono::steady_clock;

int RemainingMs(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

AuthRunResult Finish(auth::AuthEndpoint& ep) {
  AuthRunResult r;
  r.error = ep.error();
  r.detail = ep.detail();
  if (ep.done()) r.leftover.assign(ep.Leftover().begin(), ep.Leftover().end());
  return r;
}

}  // namespace

Status AuthRunResult::ToStatus() const {
  switch (error) {
    case auth::AuthError::kNone:
      return Status();
    case auth::AuthError::kTimeout:
      return Status(StatusCode::kDeadlineExceeded, "authentication: " + detail);
    case auth::AuthError::kInternal:
      return Status(StatusCode::kUnavailable, "authentication: " + detail);
    case auth::AuthError::kMalformed:
    case auth::AuthError::kUnexpectedMessage:
    case auth::AuthError::kNoCommonMechanism:
    case auth::AuthError::kBadProof:
    case auth::AuthError::kCertificate:
    case auth::AuthError::kRefused:
    case auth::AuthError::kThrottled:
    case auth::AuthError::kPolicy:
      break;
  }
  return Status(StatusCode::kUnauthenticated, "authentication failed: " + detail);
}

Waker::Waker() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Waker::~Waker() {
  if (fd_ >= 0) close(fd_);
}

void Waker::Wake() const {
  const uint64_t one = 1;
  ssize_t n;
  do {
    n = write(fd_, &one, sizeof(one));
  } while (n < 0 && errno == EINTR);
}

bool Waker::Drain() const {
  uint64_t v = 0;
  ssize_t n;
  do {
    n = read(fd_, &v, sizeof(v));
  } while (n < 0 && errno == EINTR);
  return n == sizeof(v) && v > 0;
}

AuthRunResult RunAuthentication(Transport& t, auth::AuthEndpoint& ep,
                                const Waker* waker, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  // Decrypted authentication messages (ticket secrets, verifiers) pass
  // through here: wiped on every return.
  SecretBuffer buf(16384);
  for (;;) {
    // Flush whatever the endpoint wants to say (including its last words
    // after a failure: the peer then learns "authentication failed").
    if (!ep.PendingOutput().empty()) {
      const Status s = t.WriteAll(ep.PendingOutput());
      ep.ConsumeOutput(ep.PendingOutput().size());
      if (!s.ok() && !ep.failed()) {
        return {auth::AuthError::kInternal,
                "connection failed during authentication: " + s.message(), {}};
      }
    }
    if (ep.done() || ep.failed()) return Finish(ep);

    // Wait for the peer's bytes or a wake-up from a mechanism.
    if (!t.has_buffered()) {
      struct pollfd fds[2] = {{t.fd(), POLLIN, 0}, {waker ? waker->fd() : -1, POLLIN, 0}};
      const int left = RemainingMs(deadline);
      if (left == 0) return {auth::AuthError::kTimeout, "authentication timed out", {}};
      const int n = poll(fds, waker ? 2 : 1, left);
      if (n < 0 && errno != EINTR) {
        return {auth::AuthError::kInternal, std::string("poll: ") + std::strerror(errno), {}};
      }
      if (n <= 0) continue;
      if (waker && (fds[1].revents & POLLIN) && waker->Drain()) {
        (void)ep.Poll();
        continue;
      }
      if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    }
    StatusOr<size_t> got = t.Read(buf.span());
    if (!got.ok() || got.value() == 0) {
      // A refusing peer closes the connection (auth_session.h).
      (void)ep.OnPeerClosed();
      return Finish(ep);
    }
    (void)ep.Feed(std::span<const uint8_t>(buf.data(), got.value()));
  }
}

namespace {

// A Transport view of a connection owned elsewhere.
class BorrowedTcpcrypt final : public Transport {
 public:
  explicit BorrowedTcpcrypt(inband::Connection& c) : c_(c) {}
  StatusOr<size_t> Read(std::span<uint8_t> out) override {
    inband::Status st;
    const ssize_t n = c_.Read(out, &st);
    if (n < 0) return FromInband(st);
    return static_cast<size_t>(n);
  }
  Status WriteAll(std::span<const uint8_t> data) override { return FromInband(c_.WriteAll(data)); }
  Status Shutdown() override { return FromInband(c_.Shutdown()); }
  void Close() override { c_.Close(); }
  int fd() const override { return c_.fd(); }
  bool has_buffered() const override { return c_.engine().plaintext_available() > 0; }
  Channel channel() const override { return Channel::kTcpcrypt; }
  std::vector<uint8_t> binding() const override {
    return {c_.session_id().begin(), c_.session_id().end()};
  }
  std::string key_exchange() const override { return ""; }
  std::string cipher() const override { return ""; }
  bool resumed() const override { return c_.resumed(); }
  bool peer_application_aware() const override { return c_.engine().peer_application_aware(); }
  std::string peer() const override { return c_.peer(); }

 private:
  inband::Connection& c_;
};

}  // namespace

AuthRunResult RunAuthentication(inband::Connection& conn, auth::AuthEndpoint& ep,
                                const Waker* waker, int timeout_ms) {
  BorrowedTcpcrypt t(conn);
  return RunAuthentication(t, ep, waker, timeout_ms);
}

}  // namespace tcpcrypt::sdk
