#include "sdk/transport.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core_transport/engine/types.h"

namespace tcpcrypt::sdk {

Status FromInband(const inband::Status& s) {
  using Kind = inband::Status::Kind;
  switch (s.kind) {
    case Kind::kOk:
      return Status();
    case Kind::kTimeout:
      return Status(StatusCode::kDeadlineExceeded, s.message);
    case Kind::kIo:
    case Kind::kResolve:
    case Kind::kEof:
      return Status(StatusCode::kUnavailable, s.message);
    case Kind::kEngine:
      switch (s.engine_error) {
        case Error::kEnoAbsent:
        case Error::kEnoFailed:
        case Error::kResumptionMismatch:
        case Error::kNoCommonCipher:
        case Error::kCipherNotOffered:
          return Status(StatusCode::kUnavailable, s.message);
        case Error::kInvalidArgument:
          return Status(StatusCode::kInvalidArgument, s.message);
        case Error::kInternal:
          return Status(StatusCode::kInternal, s.message);
        case Error::kTooManyRekeys:
          return Status(StatusCode::kResourceExhausted, s.message);
        case Error::kWrongState:
        case Error::kClosed:
          return Status(StatusCode::kFailedPrecondition, s.message);
        case Error::kNone:
        case Error::kBadMagic:
        case Error::kMalformedMessage:
        case Error::kInvalidPublicKey:
        case Error::kAeadFailure:
        case Error::kTruncated:
        case Error::kProtocolViolation:
          return Status(StatusCode::kDataLoss, s.message);
      }
  }
  return Status(StatusCode::kUnknown, s.message);
}

// --- tcpcrypt ---------------------------------------------------------------

StatusOr<size_t> TcpcryptTransport::Read(std::span<uint8_t> out) {
  inband::Status st;
  const ssize_t n = conn_->Read(out, &st);
  if (n < 0) return FromInband(st);
  return static_cast<size_t>(n);
}

Status TcpcryptTransport::WriteAll(std::span<const uint8_t> data) {
  return FromInband(conn_->WriteAll(data));
}

Status TcpcryptTransport::Shutdown() { return FromInband(conn_->Shutdown()); }

bool TcpcryptTransport::has_buffered() const {
  return conn_->engine().plaintext_available() > 0;
}

std::vector<uint8_t> TcpcryptTransport::binding() const {
  const auto sid = conn_->session_id();
  return {sid.begin(), sid.end()};
}

std::string TcpcryptTransport::key_exchange() const {
  return std::string(TepName(conn_->tep()));
}

std::string TcpcryptTransport::cipher() const {
  return std::string(CipherName(conn_->cipher()));
}

bool TcpcryptTransport::peer_application_aware() const {
  return conn_->engine().peer_application_aware();
}

// --- plain TCP --------------------------------------------------------------

namespace {

Status WaitFd(int fd, short events, int timeout_ms, const char* what) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int n = poll(&p, 1, timeout_ms <= 0 ? -1 : timeout_ms);
    if (n > 0) return Status();
    if (n == 0) return Status(StatusCode::kDeadlineExceeded, std::string(what) + " timed out");
    if (errno != EINTR) return Status(StatusCode::kUnavailable, std::string("poll: ") + std::strerror(errno));
  }
}

}  // namespace

StatusOr<size_t> PlainTransport::Read(std::span<uint8_t> out) {
  for (;;) {
    const ssize_t n = recv(fd_.get(), out.data(), out.size(), 0);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (Status s = WaitFd(fd_.get(), POLLIN, io_timeout_ms_, "read"); !s.ok()) return s;
      continue;
    }
    return Status(StatusCode::kUnavailable, std::string("read: ") + std::strerror(errno));
  }
}

Status PlainTransport::WriteAll(std::span<const uint8_t> data) {
  while (!data.empty()) {
    const ssize_t n = send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data = data.subspan(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (Status s = WaitFd(fd_.get(), POLLOUT, io_timeout_ms_, "write"); !s.ok()) return s;
      continue;
    }
    return Status(StatusCode::kUnavailable, std::string("write: ") + std::strerror(errno));
  }
  return Status();
}

Status PlainTransport::Shutdown() {
  if (shutdown(fd_.get(), SHUT_WR) != 0) {
    return Status(StatusCode::kUnavailable, std::string("shutdown: ") + std::strerror(errno));
  }
  return Status();
}

StatusOr<inband::UniqueFd> ConnectTcp(const std::string& host, uint16_t port,
                                      int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return Status(StatusCode::kUnavailable,
                  "cannot resolve " + host + ": " + gai_strerror(rc));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    inband::UniqueFd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                               ai->ai_protocol));
    if (!fd) continue;
    int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last_error = std::strerror(errno);
      continue;
    }
    if (Status s = WaitFd(fd.get(), POLLOUT, timeout_ms, "connect"); !s.ok()) {
      last_error = s.message();
      continue;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      last_error = std::strerror(err);
      continue;
    }
    freeaddrinfo(res);
    return fd;
  }
  freeaddrinfo(res);
  return Status(StatusCode::kUnavailable,
                "connect " + inband::FormatHostPort(host, port) + ": " + last_error);
}

}  // namespace tcpcrypt::sdk
