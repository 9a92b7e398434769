#include "core_transport/inband/connection.h"

#include "core_transport/inband/wait.h"
#include "core_transport/engine/bytes.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

#include "core_transport/engine/secret.h"
#include "core_transport/inband/keylog.h"

namespace tcpcrypt::inband {

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) {
    // POSIX leaves the descriptor's state unspecified after EINTR; on Linux
    // it is closed, so close() is never retried.
    (void)::close(fd_);
  }
  fd_ = fd;
}

namespace {

// recv asks the engine for at least this much room. The engine grows its
// input buffer on demand (up to two whole frames), so a connection that only
// handshakes and exchanges a few bytes keeps small buffers.
constexpr size_t kRecvMinRoom = size_t{4} << 10;
// Stop reading from the socket while this much plaintext waits unread.
constexpr size_t kMaxBufferedPlaintext = size_t{1} << 20;
// WriteAll / NonBlocking writes: encrypt at most this much per engine call,
// and queue at most about kWriteHighWater bytes of ciphertext.
constexpr size_t kWriteChunk = size_t{256} << 10;
constexpr size_t kWriteHighWater = size_t{1} << 20;
// The application's own writes through WriteAll (and the CLI's relay) never
// queue more than this, so they never pause reading (see
// kReadPauseOutputBytes, which must stay above it: two peers writing to
// each other must both keep reading).
static_assert(kWriteHighWater + kWriteChunk + kFrameHeaderLen +
                  kMaxCiphertextLen <= kReadPauseOutputBytes,
              "reading must not pause for the application's own writes");



// NumericPeer formats a socket address as "ip:port".
std::string NumericAddress(const sockaddr* sa, socklen_t len) {
  char host[NI_MAXHOST];
  char serv[NI_MAXSERV];
  if (::getnameinfo(sa, len, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "?";
  }
  uint16_t port = 0;
  const std::string_view sv(serv);
  std::from_chars(sv.data(), sv.data() + sv.size(), port);
  return FormatHostPort(host, port);
}

[[nodiscard]] bool SetNonBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return false;
  if ((flags & O_NONBLOCK) != 0) return true;
  return ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

// PeerGone: the errno of a socket whose peer closed or reset it.
bool PeerGone(int err) {
  return err == ENOTCONN || err == EPIPE || err == ECONNRESET;
}

[[nodiscard]] bool SetNoDelay(int fd) {
  const int one = 1;
  return ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0;
}

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { ::freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

Status Resolve(const std::string& host, uint16_t port, bool passive,
               AddrInfoPtr* out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  const std::string service = std::to_string(port);
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(),
                               service.c_str(), &hints, &res);
  if (rc != 0) {
    const std::string reason =
        rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
    return Status::ResolveError("resolve " + (host.empty() ? "*" : host) +
                                ": " + reason);
  }
  out->reset(res);
  return Status::Ok();
}

// ConnectTcp connects to the first address of |host| that accepts, by
// |deadline_ms| (0: none). On success |*out_fd| is a non-blocking socket with
// TCP_NODELAY and |*out_peer| its numeric address.
Status ConnectTcp(const std::string& host, uint16_t port, uint64_t deadline_ms,
                  int timeout_ms, UniqueFd* out_fd, std::string* out_peer) {
  AddrInfoPtr ai;
  if (Status s = Resolve(host, port, false, &ai); !s.ok()) return s;
  const std::string target = FormatHostPort(host, port);
  Status last = Status::ResolveError("resolve " + host + ": no addresses");
  for (const addrinfo* a = ai.get(); a != nullptr; a = a->ai_next) {
    const std::string numeric = NumericAddress(a->ai_addr, a->ai_addrlen);
    const std::string what = numeric == target
                                 ? "connect " + target
                                 : "connect " + target + " (" + numeric + ")";
    UniqueFd fd(::socket(a->ai_family,
                         a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                         a->ai_protocol));
    if (!fd) {
      const int saved_errno = errno;  // before any allocation
      last = Status::IoError(what + ": socket", saved_errno);
      continue;
    }
    int rc = ::connect(fd.get(), a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno != EINPROGRESS && errno != EINTR) {
      const int saved_errno = errno;  // before any allocation
      last = Status::IoError(what, saved_errno);
      continue;
    }
    if (rc != 0) {
      // Non-blocking connect: writable once it completed or failed; an
      // interrupted connect also completes asynchronously.
      short revents = 0;
      int err = 0;
      const WaitResult w =
          WaitFd(fd.get(), POLLOUT, deadline_ms, &revents, &err);
      if (w == WaitResult::kTimeout) {
        return Status::TimeoutError(what + ": timed out after " +
                                    std::to_string(timeout_ms) + " ms");
      }
      if (w == WaitResult::kError) {
        last = Status::IoError(what + ": poll", err);
        continue;
      }
      int so_error = 0;
      socklen_t len = sizeof so_error;
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) {
        const int saved_errno = errno;  // before any allocation
        last = Status::IoError(what + ": getsockopt", saved_errno);
        continue;
      }
      if (so_error != 0) {
        last = Status::IoError(what, so_error);
        continue;
      }
    }
    if (!SetNoDelay(fd.get())) {
      const int saved_errno = errno;  // before any allocation
      last = Status::IoError(what + ": TCP_NODELAY", saved_errno);
      continue;
    }
    *out_peer = numeric;
    *out_fd = std::move(fd);
    return Status::Ok();
  }
  return last;
}

}  // namespace

// --- Status -----------------------------------------------------------------

Status Status::IoError(std::string_view what, int err) {
  Status s;
  s.kind = Kind::kIo;
  s.sys_errno = err;
  s.message = std::string(what) + ": " + std::strerror(err);
  return s;
}

Status Status::TimeoutError(std::string message) {
  Status s;
  s.kind = Kind::kTimeout;
  s.sys_errno = ETIMEDOUT;
  s.message = std::move(message);
  return s;
}

Status Status::EngineError(Error e, bool during_handshake) {
  Status s;
  s.kind = Kind::kEngine;
  s.engine_error = e;
  const std::string name(ErrorName(e));
  const std::string why(DescribeError(e));
  if (during_handshake) {
    s.message = "handshake failed: " + name + " (" + why + ")";
  } else if (e == Error::kTruncated) {
    s.message = "stream truncated: " + why;
  } else if (e == Error::kAeadFailure) {
    s.message = "integrity failure: " + name + " (" + why + ")";
  } else {
    s.message = "tcpcrypt error: " + name + " (" + why + ")";
  }
  return s;
}

Status Status::ResolveError(std::string message) {
  Status s;
  s.kind = Kind::kResolve;
  s.message = std::move(message);
  return s;
}

Status Status::EofError(std::string message) {
  Status s;
  s.kind = Kind::kEof;
  s.engine_error = Error::kTruncated;
  s.message = std::move(message);
  return s;
}

std::string_view DescribeError(Error e) {
  switch (e) {
    case Error::kNone: return "no error";
    case Error::kEnoAbsent: return "the peer does not speak tcpcrypt";
    case Error::kEnoFailed:
      return "the peer speaks TCP-ENO but no encryption protocol was agreed: "
             "no common TEP, or the peer refused";
    case Error::kResumptionMismatch:
      return "the peer answered with a session-resumption identifier we did "
             "not offer";
    case Error::kBadMagic:
      return "a handshake message carried the wrong magic number";
    case Error::kMalformedMessage: return "the peer sent a malformed message";
    case Error::kCipherNotOffered:
      return "the peer chose a cipher we did not offer";
    case Error::kNoCommonCipher: return "no cipher in common with the peer";
    case Error::kInvalidPublicKey: return "the peer's public key is invalid";
    case Error::kAeadFailure:
      return "a frame failed authentication: the data was modified or "
             "corrupted in transit";
    case Error::kTruncated:
      return "the peer's stream ended without an authenticated end of file";
    case Error::kProtocolViolation:
      return "the peer broke the protocol (for example data after its end "
             "of file)";
    case Error::kClosed: return "the connection was already shut down";
    case Error::kWrongState: return "the call is not valid in this state";
    case Error::kInvalidArgument: return "invalid configuration or argument";
    case Error::kInternal: return "internal error in the crypto library";
    case Error::kTooManyRekeys:
      return "the peer started rekeys faster than it read our answers "
             "(more than 64 answers unsent)";
  }
  return "unknown error";
}

std::string FormatHostPort(std::string_view host, uint16_t port) {
  std::string s;
  if (host.find(':') != std::string_view::npos) {
    s.append("[").append(host).append("]");
  } else {
    s.append(host);
  }
  return s.append(":").append(std::to_string(port));
}

bool SplitHostPort(std::string_view s, std::string* out_host,
                   uint16_t* out_port) {
  std::string_view host;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() ||
        s[close + 1] != ':') {
      return false;
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = s.substr(0, colon);
    if (host.find(':') != std::string_view::npos) return false;  // bare v6
    port = s.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5) return false;
  unsigned value = 0;
  const auto [end, ec] =
      std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return false;
  }
  out_host->assign(host);
  *out_port = static_cast<uint16_t>(value);
  return true;
}

// --- Carrier
// ------------------------------------------------------------------

namespace internal {

// Carrier owns the socket and the engine and moves bytes between them
// without ever blocking; Connection and NonBlockingConnection add waiting.
class Carrier {
 public:
  enum class Io : uint8_t { kProgress, kWouldBlock, kEof, kFailed };

  Carrier(UniqueFd fd, Engine::Role role, Options options, std::string peer)
      : fd_(std::move(fd)),
        peer_(std::move(peer)),
        handshake_timeout_ms_(options.handshake_timeout_ms),
        io_timeout_ms_(options.io_timeout_ms),
        key_log_file_(std::move(options.key_log_file)),
        key_log_callback_(std::move(options.key_log_callback)),
        warn_(std::move(options.warn)),
        engine_(role,
                PrepareConfig(std::move(options.engine),
                              !key_log_file_.empty() || key_log_callback_ != nullptr),
                options.rng != nullptr ? *options.rng : SystemRng::Instance(),
                options.clock != nullptr ? *options.clock
                                         : SteadyClock::Instance()) {}

  Engine& engine() { return engine_; }
  const Engine& engine() const { return engine_; }
  int fd() const { return fd_.get(); }
  const std::string& peer() const { return peer_; }
  const Status& status() const { return status_; }
  bool failed() const { return !status_.ok(); }
  int io_timeout_ms() const { return io_timeout_ms_; }
  bool carrier_eof() const { return carrier_eof_; }
  // recv_filled: the last recv filled all the room it was given, so more
  // bytes are likely waiting in the socket (a bulk transfer).
  bool recv_filled() const { return recv_filled_; }
  bool received_any() const { return received_any_; }
  bool shutdown_complete() const { return shut_wr_; }
  bool peer_reset() const { return peer_reset_; }
  // output_allows_read: we owe the peer at most kReadPauseOutputBytes.
  bool output_allows_read() const {
    return engine_.PendingOutput().size() <= kReadPauseOutputBytes;
  }
  // may_read: a recv now would be allowed and could deliver something.
  bool may_read() const {
    return !carrier_eof_ && output_allows_read() &&
           engine_.plaintext_available() < kMaxBufferedPlaintext;
  }
  // NotePendingReset records a reset the kernel reports on the socket.
  void NotePendingReset() {
    int err = 0;
    socklen_t len = sizeof err;
    if (fd_ && ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
        (err == ECONNRESET || err == EPIPE)) {
      peer_reset_ = true;
    }
  }
  uint64_t handshake_deadline_ms() const { return handshake_deadline_ms_; }

  // SetHandshakeDeadline starts the handshake clock (once);
  // SetHandshakeDeadlineAt sets it to an absolute time (0: none), for
  // Connect, whose bound includes the TCP connect.
  void SetHandshakeDeadline() {
    if (!deadline_set_)
      SetHandshakeDeadlineAt(DeadlineAfter(handshake_timeout_ms_));
  }
  void SetHandshakeDeadlineAt(uint64_t deadline_ms) {
    handshake_deadline_ms_ = deadline_ms;
    deadline_set_ = true;
  }

  // Start queues the engine's opening bytes and tries to send them.
  Status Start() {
    if (failed()) return status_;
    if (started_) return Status::Ok();
    SetHandshakeDeadline();
    started_ = true;
    if (Error e = engine_.Start(); e != Error::kNone) {
      return Fail(Status::EngineError(e, true));
    }
    (void)SendSome();
    return status_;
  }
  bool started() const { return started_; }

  // SendSome sends the engine's pending output until it is empty or the
  // socket is full; then, if asked for, shuts down the write side.
  Io SendSome() {
    if (failed()) return Io::kFailed;
    for (;;) {
      const ByteSpan out = engine_.PendingOutput();
      if (out.empty()) break;
      const ssize_t n = ::send(fd_.get(), out.data(), out.size(),
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return Io::kWouldBlock;
        const int saved_errno = errno;  // before any allocation
        // The peer closed: before the socket goes, take in what it sent
        // (its reply, its FINp), so that stays readable.
        if (PeerGone(saved_errno)) AbsorbReadable();
        Fail(Status::IoError("send to " + peer_, saved_errno));
        return Io::kFailed;
      }
      engine_.ConsumeOutput(static_cast<size_t>(n));
    }
    if (want_shut_wr_ && !shut_wr_) {
      if (::shutdown(fd_.get(), SHUT_WR) != 0) {
        const int saved_errno = errno;  // before any allocation
        // Everything, our FINp included, is with the kernel already. The
        // peer closed (and reset) the connection: that ends our write side,
        // and must not destroy what we received (its reply and its
        // authenticated end of file stay readable). peer_reset() tells.
        if (!PeerGone(saved_errno)) {
          Fail(Status::IoError("shutdown to " + peer_, saved_errno));
          return Io::kFailed;
        }
        peer_reset_ = true;
      }
      shut_wr_ = true;
    }
    return Io::kProgress;
  }

  // RecvSome does one recv straight into the engine's input buffer and
  // hands the bytes to the engine, then flushes whatever the engine queued
  // (Init2, a rekey answer).
  Io RecvSome() {
    if (failed()) return Io::kFailed;
    if (carrier_eof_) return Io::kEof;
    // Bounded peers: while we owe the peer more than kReadPauseOutputBytes
    // (it does not read), read nothing more from it.
    if (!output_allows_read()) return Io::kWouldBlock;
    const MutableByteSpan buf = engine_.InputBuffer(kRecvMinRoom);
    if (buf.empty()) {
      Fail(Status::EngineError(Error::kInternal, !engine_.handshake_done()));
      return Io::kFailed;
    }
    ssize_t n = -1;
    do {
      n = ::recv(fd_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        recv_filled_ = false;
        return Io::kWouldBlock;
      }
      const int saved_errno = errno;  // before any allocation
      Fail(Status::IoError("recv from " + peer_, saved_errno));
      return Io::kFailed;
    }
    if (n == 0) {
      carrier_eof_ = true;
      // A reset after the peer's FIN still reads as end of stream; the
      // error it left says the peer discarded bytes we sent.
      NotePendingReset();
      if (!engine_.handshake_done()) {
        (void)engine_.OnCarrierEof();
        Fail(Status::EofError(
            "handshake failed: the peer closed the connection " +
            std::string(
                received_any_
                    ? "in the middle of the handshake"
                    : "without answering (it may not speak tcpcrypt)")));
        return Io::kFailed;
      }
      MaybeFinishEof();
      return failed() ? Io::kFailed : Io::kEof;
    }
    received_any_ = true;
    recv_filled_ = static_cast<size_t>(n) == buf.size();
    const bool was_established = engine_.handshake_done();
    if (Error e = engine_.CommitInput(static_cast<size_t>(n));
        e != Error::kNone) {
      Fail(Status::EngineError(e, !was_established));
      return Io::kFailed;
    }
    if (!was_established && engine_.handshake_done()) OnEstablished();
    if (SendSome() == Io::kFailed) return Io::kFailed;
    return Io::kProgress;
  }

  // AbsorbReadable hands the engine whatever the socket holds now, without
  // sending (bounded by the plaintext cap), for a connection about to fail
  // on the write side: bytes the peer sent before it closed stay readable.
  void AbsorbReadable() {
    for (int i = 0; i < 64 && !carrier_eof_ && !engine_.failed() &&
                    engine_.handshake_done() &&
                    engine_.plaintext_available() < kMaxBufferedPlaintext;
         ++i) {
      const MutableByteSpan buf = engine_.InputBuffer(kRecvMinRoom);
      if (buf.empty()) return;
      ssize_t n = -1;
      do {
        n = ::recv(fd_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
      } while (n < 0 && errno == EINTR);
      if (n < 0) return;  // nothing more now, or the reset itself
      if (n == 0) {
        carrier_eof_ = true;
        return;
      }
      received_any_ = true;
      if (engine_.CommitInput(static_cast<size_t>(n)) != Error::kNone) return;
    }
  }

  // MaybeFinishEof: once the carrier ended and the plaintext before it was
  // read, ask the engine whether that end was authenticated (RFC 8548 §3.7).
  void MaybeFinishEof() {
    if (!carrier_eof_ || eof_checked_ || failed() ||
        engine_.plaintext_available() != 0) {
      return;
    }
    eof_checked_ = true;
    if (Error e = engine_.OnCarrierEof(); e != Error::kNone) {
      Fail(Status::EngineError(e, false));
    }
  }

  // Write encrypts |data| into the engine's output queue.
  Status Write(ByteSpan data) {
    if (failed()) return status_;
    while (!data.empty()) {
      const ByteSpan chunk = data.first(std::min(data.size(), kWriteChunk));
      if (Error e = engine_.Write(chunk); e != Error::kNone) {
        return EngineCallFailed(e);
      }
      data = data.subspan(chunk.size());
    }
    return Status::Ok();
  }

  Status Shutdown() {
    if (failed()) return status_;
    if (Error e = engine_.Shutdown(); e != Error::kNone) {
      return EngineCallFailed(e);
    }
    want_shut_wr_ = true;
    (void)SendSome();
    return status_;
  }

  Status RequestRekey() {
    if (failed()) return status_;
    if (Error e = engine_.RequestRekey(); e != Error::kNone) {
      return EngineCallFailed(e);
    }
    (void)SendSome();
    return status_;
  }

  // EngineCallFailed turns an engine error from an application call into a
  // Status: sticky if the engine failed, a plain refusal otherwise
  // (WRONG_STATE, CLOSED, INVALID_ARGUMENT).
  Status EngineCallFailed(Error e) {
    if (engine_.failed()) return Fail(Status::EngineError(e, false));
    return Status::EngineError(e, false);
  }

  // Fail records the first failure, sends any queued bytes best-effort
  // (for example B's vacuous ENO reply), and closes the socket.
  Status Fail(Status s) {
    if (failed()) return status_;
    status_ = std::move(s);
    if (fd_) {
      const ByteSpan out = engine_.PendingOutput();
      if (!out.empty()) {
        (void)::send(fd_.get(), out.data(), out.size(),
                     MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      fd_.Reset();
    }
    return status_;
  }

  // HandshakeTimedOut fails the handshake for running past its deadline.
  Status HandshakeTimedOut() {
    return Fail(Status::TimeoutError(
        "handshake with " + peer_ + " timed out after " +
        std::to_string(handshake_timeout_ms_) + " ms" +
        (received_any_ ? ""
                       : " (the peer sent nothing; it may not speak "
                         "tcpcrypt)")));
  }

  // Close closes the socket. After our write side was shut down (Shutdown
  // completed) it first drains the peer's remaining bytes, bounded
  // (DrainBeforeClose), so that close() does not reset the connection and
  // destroy our last reply at the peer.
  void Close() {
    if (fd_ && shut_wr_ && !failed() && !carrier_eof_) {
      DrainBeforeClose(fd_.get(), engine_.peer_finished());
    }
    fd_.Reset();
    if (status_.ok()) {
      status_.kind = Status::Kind::kIo;
      status_.sys_errno = EBADF;
      status_.message = "the connection to " + peer_ + " is closed";
    }
  }

 private:
  static EngineConfig PrepareConfig(EngineConfig config, bool key_log) {
    if (key_log) config.export_keys = true;
    return config;
  }

  // OnEstablished logs the key-log line, if the application asked for it.
  void OnEstablished() {
    const KeyLogEntry* entry = engine_.key_log();
    if (entry == nullptr) return;
    if (key_log_callback_ != nullptr) {
      // The line holds mk[0]: it lives in a buffer that wipes itself.
      SecretArray<kMaxKeyLogLineLen> line;
      const size_t len = FormatKeyLogLine(
          *entry, std::span<char>(reinterpret_cast<char*>(line.data()), line.size()));
      if (len != 0) {
        key_log_callback_(
            std::string_view(reinterpret_cast<const char*>(line.data()), len));
      }
    }
    if (!key_log_file_.empty()) {
      std::string error;
      if (!AppendKeyLogLine(key_log_file_, *entry, &error)) {
        if (warn_ != nullptr) {
          warn_(error);
        } else {
          std::fprintf(stderr, "tcpcrypt: WARNING: %s\n", error.c_str());
        }
      }
    }
    engine_.ClearKeyLog();  // mk[0] lives no longer than it must
  }

  UniqueFd fd_;
  const std::string peer_;
  const int handshake_timeout_ms_;
  const int io_timeout_ms_;
  const std::string key_log_file_;
  const std::function<void(std::string_view line)> key_log_callback_;
  const std::function<void(std::string_view message)> warn_;
  Engine engine_;
  Status status_;
  uint64_t handshake_deadline_ms_ = 0;
  bool deadline_set_ = false;
  bool started_ = false;
  bool received_any_ = false;
  bool recv_filled_ = false;
  bool carrier_eof_ = false;
  bool eof_checked_ = false;
  bool want_shut_wr_ = false;
  bool shut_wr_ = false;
  bool peer_reset_ = false;
};

}  // namespace internal

using internal::Carrier;

namespace {

std::unique_ptr<Carrier> MakeCarrier(UniqueFd fd, Engine::Role role,
                                     Options options, std::string peer) {
  return std::make_unique<Carrier>(std::move(fd), role, std::move(options),
                                   std::move(peer));
}

// WaitIo waits for |events| on the carrier's socket for at most
// io_timeout_ms. Returns ok with the events, or a Status (not recorded in
// the carrier) for a time-out ("<what> <peer> timed out after N ms") or a
// poll failure. Builds no string unless it fails.
Status WaitIo(const Carrier& c, short events, const char* what,
              short* out_revents) {
  int err = 0;
  switch (WaitFd(c.fd(), events, DeadlineAfter(c.io_timeout_ms()), out_revents,
                 &err)) {
    case WaitResult::kReady: return Status::Ok();
    case WaitResult::kTimeout:
      return Status::TimeoutError(std::string(what) + " " + c.peer() +
                                  " timed out after " +
                                  std::to_string(c.io_timeout_ms()) + " ms");
    case WaitResult::kError: return Status::IoError("poll", err);
  }
  return Status::IoError("poll", EINVAL);
}

// Readable: revents that call for a recv (data, EOF, or an error to read).
bool Readable(short revents) {
  return (revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

// FlushAll sends all pending output, waiting up to io_timeout_ms per wait.
// While the socket is full it keeps reading (bounded) so two peers writing
// to each other cannot deadlock.
Status FlushAll(Carrier& c) {
  for (;;) {
    const Carrier::Io io = c.SendSome();
    if (io != Carrier::Io::kWouldBlock) return c.status();
    const bool read_too = c.may_read();
    short revents = 0;
    Status s = WaitIo(c, static_cast<short>(POLLOUT | (read_too ? POLLIN : 0)),
                      "write to", &revents);
    if (!s.ok()) return c.Fail(std::move(s));
    if (read_too && Readable(revents) && c.RecvSome() == Carrier::Io::kFailed) {
      return c.status();
    }
  }
}

}  // namespace

// --- Connection
// ---------------------------------------------------------------

Connection::Connection(PrivateTag, std::unique_ptr<Carrier> carrier)
    : c_(std::move(carrier)) {}

Connection::~Connection() { Close(); }

std::unique_ptr<Connection> Connection::Connect(const std::string& host,
                                                uint16_t port, Options options,
                                                Status* out_status) {
  const uint64_t deadline = DeadlineAfter(options.handshake_timeout_ms);
  UniqueFd fd;
  std::string peer;
  Status s = ConnectTcp(host, port, deadline, options.handshake_timeout_ms, &fd,
                        &peer);
  if (!s.ok()) {
    *out_status = std::move(s);
    return nullptr;
  }
  // Resumption tickets are kept under the name the application used.
  if (options.engine.peer_name.empty()) {
    options.engine.peer_name = FormatHostPort(host, port);
  }
  auto conn = std::make_unique<Connection>(
      PrivateTag(), MakeCarrier(std::move(fd), Engine::Role::kActive,
                                std::move(options), std::move(peer)));
  conn->c_->SetHandshakeDeadlineAt(deadline);  // connect time counts
  *out_status = conn->Handshake();
  if (!out_status->ok()) return nullptr;
  return conn;
}

std::unique_ptr<Connection> Connection::FromSocket(UniqueFd fd,
                                                   Engine::Role role,
                                                   Options options,
                                                   std::string peer,
                                                   Status* out_status) {
  if (!SetNonBlocking(fd.get())) {
    *out_status = Status::IoError("O_NONBLOCK", errno);
    return nullptr;
  }
  if (!SetNoDelay(fd.get())) {
    *out_status = Status::IoError("TCP_NODELAY", errno);
    return nullptr;
  }
  *out_status = Status::Ok();
  return std::make_unique<Connection>(
      PrivateTag(),
      MakeCarrier(std::move(fd), role, std::move(options), std::move(peer)));
}

Status Connection::Handshake() {
  Carrier& c = *c_;
  if (Status s = c.Start(); !s.ok()) return s;
  // A passive opener is handed a socket whose peer has usually spoken
  // already (the server peeks at the first byte to tell tcpcrypt from TLS),
  // so it reads once before its first poll.
  bool read_first =
      c.engine().role() == Engine::Role::kPassive && !c.received_any();
  for (;;) {
    if (c.failed()) return c.status();
    const Carrier::Io io = c.SendSome();
    if (io == Carrier::Io::kFailed) return c.status();
    if (read_first && !c.engine().handshake_done()) {
      read_first = false;
      const Carrier::Io got = c.RecvSome();
      if (got == Carrier::Io::kFailed) return c.status();
      if (got != Carrier::Io::kWouldBlock) continue;
    }
    const bool pending = !c.engine().PendingOutput().empty();
    if (c.engine().handshake_done() && !pending) return Status::Ok();
    short events = pending ? POLLOUT : 0;
    if (!c.engine().handshake_done()) events |= POLLIN;
    short revents = 0;
    int err = 0;
    switch (WaitFd(c.fd(), events, c.handshake_deadline_ms(), &revents, &err)) {
      case WaitResult::kReady: break;
      case WaitResult::kTimeout: return c.HandshakeTimedOut();
      case WaitResult::kError: return c.Fail(Status::IoError("poll", err));
    }
    if ((events & POLLIN) != 0 && Readable(revents)) {
      if (c.RecvSome() == Carrier::Io::kFailed) return c.status();
    }
  }
}

bool Connection::handshake_done() const {
  return c_->engine().handshake_done();
}

ssize_t Connection::Read(std::span<uint8_t> out, Status* out_status) {
  Status scratch;
  Status& st = out_status != nullptr ? *out_status : scratch;
  st = Status::Ok();
  Carrier& c = *c_;
  if (!c.engine().handshake_done()) {
    st = Handshake();
    if (!st.ok()) return -1;
  }
  if (out.empty()) return 0;
  for (;;) {
    const size_t n = c.engine().Read(out);
    if (n > 0) {
      c.MaybeFinishEof();
      return static_cast<ssize_t>(n);
    }
    // The peer's authenticated end of file reads as EOF even if our side
    // failed since (a write to a peer that closed): it is authentic.
    if (c.engine().peer_finished() && !c.engine().failed()) return 0;
    if (c.failed()) {
      st = c.status();
      return -1;
    }
    if (c.carrier_eof()) {
      c.MaybeFinishEof();
      st = c.status();
      return st.ok() ? 0 : -1;
    }
    const Carrier::Io sent = c.SendSome();
    if (sent == Carrier::Io::kFailed) {
      st = c.status();
      return -1;
    }
    // When the last recv filled its buffer (a bulk transfer), the next
    // frame has most likely arrived already: try the socket before waiting
    // on it, which saves a poll() per frame. Otherwise (an exchange of small
    // messages) poll first, so a wait costs no failed recv().
    if (c.recv_filled()) {
      const Carrier::Io got = c.RecvSome();
      if (got == Carrier::Io::kFailed) {
        st = c.status();
        return -1;
      }
      if (got != Carrier::Io::kWouldBlock) continue;  // data, or EOF (checked above)
    }
    const bool pending = !c.engine().PendingOutput().empty();
    // Bounded peers: while the peer does not read what we owe it, wait only
    // for room to send.
    const bool read_now = c.output_allows_read();
    short revents = 0;
    Status w = WaitIo(c,
                      static_cast<short>((read_now ? POLLIN : 0) |
                                         (pending ? POLLOUT : 0)),
                      "read from", &revents);
    if (!w.ok()) {
      if (w.kind != Status::Kind::kTimeout) c.Fail(w);
      st = std::move(w);  // a time-out is not sticky
      return -1;
    }
    if (read_now && Readable(revents) &&
        c.RecvSome() == Carrier::Io::kFailed) {
      st = c.status();
      return -1;
    }
  }
}

Status Connection::WriteAll(std::span<const uint8_t> data) {
  Carrier& c = *c_;
  if (!c.engine().handshake_done()) {
    if (Status s = Handshake(); !s.ok()) return s;
  }
  if (c.failed()) return c.status();
  // Encrypt ahead while the kernel drains what is queued, up to the high
  // water mark; then wait.
  while (!data.empty()) {
    if (c.engine().PendingOutput().size() < kWriteHighWater) {
      const ByteSpan chunk = data.first(std::min(data.size(), kWriteChunk));
      if (Status s = c.Write(chunk); !s.ok()) return s;
      data = data.subspan(chunk.size());
    }
    const Carrier::Io io = c.SendSome();
    if (io == Carrier::Io::kFailed) return c.status();
    if (io != Carrier::Io::kWouldBlock ||
        (c.engine().PendingOutput().size() < kWriteHighWater &&
         !data.empty())) {
      continue;
    }
    const bool read_too = c.may_read();
    short revents = 0;
    Status s = WaitIo(c, static_cast<short>(POLLOUT | (read_too ? POLLIN : 0)),
                      "write to", &revents);
    if (!s.ok()) return c.Fail(std::move(s));
    if (read_too && Readable(revents) && c.RecvSome() == Carrier::Io::kFailed) {
      return c.status();
    }
  }
  return FlushAll(c);
}

Status Connection::Shutdown() {
  Carrier& c = *c_;
  if (!c.engine().handshake_done()) {
    if (Status s = Handshake(); !s.ok()) return s;
  }
  if (Status s = c.Shutdown(); !s.ok()) return s;
  return FlushAll(c);
}

Status Connection::RequestRekey() {
  Carrier& c = *c_;
  if (!c.engine().handshake_done()) {
    if (Status s = Handshake(); !s.ok()) return s;
  }
  if (Status s = c.RequestRekey(); !s.ok()) return s;
  return FlushAll(c);
}

void Connection::Close() {
  if (c_ != nullptr) c_->Close();
}

bool Connection::peer_reset() const { return c_->peer_reset(); }

const Status& Connection::status() const { return c_->status(); }
int Connection::fd() const { return c_->fd(); }
const std::string& Connection::peer() const { return c_->peer(); }
std::span<const uint8_t, kSessionIdLen> Connection::session_id() const {
  return c_->engine().session_id();
}
std::string Connection::session_id_hex() const { return HexLower(session_id()); }
Tep Connection::tep() const { return c_->engine().tep(); }
Cipher Connection::cipher() const { return c_->engine().cipher(); }
bool Connection::resumed() const { return c_->engine().resumed(); }
const Engine& Connection::engine() const { return c_->engine(); }
void Connection::FlushResumptionState() { c_->engine().FlushResumptionState(); }

// --- NonBlockingConnection
// ----------------------------------------------------

NonBlockingConnection::NonBlockingConnection(PrivateTag,
                                             std::unique_ptr<Carrier> c)
    : c_(std::move(c)) {}

NonBlockingConnection::~NonBlockingConnection() { Close(); }

std::unique_ptr<NonBlockingConnection> NonBlockingConnection::Connect(
    const std::string& host, uint16_t port, Options options,
    Status* out_status) {
  const uint64_t deadline = DeadlineAfter(options.handshake_timeout_ms);
  UniqueFd fd;
  std::string peer;
  Status s = ConnectTcp(host, port, deadline, options.handshake_timeout_ms, &fd,
                        &peer);
  if (!s.ok()) {
    *out_status = std::move(s);
    return nullptr;
  }
  if (options.engine.peer_name.empty()) {
    options.engine.peer_name = FormatHostPort(host, port);
  }
  auto c = MakeCarrier(std::move(fd), Engine::Role::kActive, std::move(options),
                       std::move(peer));
  c->SetHandshakeDeadlineAt(deadline);  // connect time counts
  *out_status = c->Start();
  if (!out_status->ok()) return nullptr;
  return std::make_unique<NonBlockingConnection>(PrivateTag(), std::move(c));
}

std::unique_ptr<NonBlockingConnection> NonBlockingConnection::FromConnection(
    std::unique_ptr<Connection> connection) {
  std::unique_ptr<Carrier> c = std::move(connection->c_);
  (void)c->Start();  // a failure is kept in status()
  return std::make_unique<NonBlockingConnection>(PrivateTag(), std::move(c));
}

int NonBlockingConnection::fd() const { return c_->fd(); }

bool NonBlockingConnection::wants_read() const {
  return !c_->failed() && c_->fd() >= 0 && c_->may_read();
}

bool NonBlockingConnection::wants_write() const {
  return !c_->failed() && c_->fd() >= 0 &&
         !c_->engine().PendingOutput().empty();
}

int NonBlockingConnection::NextTimeoutMs() const {
  const uint64_t deadline = c_->handshake_deadline_ms();
  if (c_->failed() || c_->engine().handshake_done() || deadline == 0) return -1;
  const uint64_t now = NowMs();
  if (now >= deadline) return 0;
  return static_cast<int>(std::min<uint64_t>(deadline - now, 1 << 30));
}

void NonBlockingConnection::OnReadable() {
  // A few reads per event keep one busy connection from starving others.
  for (int i = 0; i < 4 && wants_read(); ++i) {
    if (c_->RecvSome() != Carrier::Io::kProgress) break;
  }
}

void NonBlockingConnection::OnWritable() { (void)c_->SendSome(); }

void NonBlockingConnection::OnTimer() {
  if (NextTimeoutMs() == 0) (void)c_->HandshakeTimedOut();
}

bool NonBlockingConnection::handshake_done() const {
  return c_->engine().handshake_done();
}
bool NonBlockingConnection::failed() const { return c_->failed(); }
const Status& NonBlockingConnection::status() const { return c_->status(); }

ssize_t NonBlockingConnection::Read(std::span<uint8_t> out) {
  const size_t n = c_->engine().Read(out);
  c_->MaybeFinishEof();
  if (n > 0) return static_cast<ssize_t>(n);
  if (at_eof()) return 0;  // authentic even if our side failed since
  if (c_->failed()) return kFailed;
  return kWouldBlock;
}

ByteSpan NonBlockingConnection::PeekPlaintext() const {
  return c_->engine().PeekPlaintext();
}

void NonBlockingConnection::ConsumePlaintext(size_t n) {
  c_->engine().ConsumePlaintext(n);
  c_->MaybeFinishEof();
}

bool NonBlockingConnection::at_eof() const {
  return !c_->engine().failed() && c_->engine().peer_finished() &&
         c_->engine().plaintext_available() == 0;
}

Status NonBlockingConnection::Write(std::span<const uint8_t> data) {
  if (Status s = c_->Write(data); !s.ok()) return s;
  (void)c_->SendSome();
  return c_->status();
}

size_t NonBlockingConnection::pending_output() const {
  return c_->engine().PendingOutput().size();
}

bool NonBlockingConnection::write_queue_full() const {
  return pending_output() >= kWriteHighWater;
}

Status NonBlockingConnection::Shutdown() { return c_->Shutdown(); }

bool NonBlockingConnection::shutdown_complete() const {
  return c_->shutdown_complete();
}

bool NonBlockingConnection::peer_reset() const { return c_->peer_reset(); }
bool NonBlockingConnection::carrier_eof() const { return c_->carrier_eof(); }

Status NonBlockingConnection::RequestRekey() { return c_->RequestRekey(); }

void NonBlockingConnection::Close() {
  if (c_ != nullptr) c_->Close();
}

const std::string& NonBlockingConnection::peer() const { return c_->peer(); }
std::span<const uint8_t, kSessionIdLen> NonBlockingConnection::session_id()
    const {
  return c_->engine().session_id();
}
std::string NonBlockingConnection::session_id_hex() const {
  return HexLower(session_id());
}
Tep NonBlockingConnection::tep() const { return c_->engine().tep(); }
Cipher NonBlockingConnection::cipher() const { return c_->engine().cipher(); }
bool NonBlockingConnection::resumed() const { return c_->engine().resumed(); }
const Engine& NonBlockingConnection::engine() const { return c_->engine(); }
void NonBlockingConnection::FlushResumptionState() { c_->engine().FlushResumptionState(); }

// --- Listener
// -----------------------------------------------------------------

Listener::Listener(PrivateTag, UniqueFd fd, std::string address, uint16_t port)
    : fd_(std::move(fd)), address_(std::move(address)), port_(port) {}

std::unique_ptr<Listener> Listener::Listen(const std::string& addr,
                                           uint16_t port, int backlog,
                                           Status* out_status) {
  // "" means every address: a dual-stack IPv6 socket when possible.
  AddrInfoPtr ai;
  if (Status s = Resolve(addr.empty() ? "::" : addr, port, true, &ai);
      !s.ok()) {
    if (!addr.empty() || !(s = Resolve("0.0.0.0", port, true, &ai)).ok()) {
      *out_status = std::move(s);
      return nullptr;
    }
  }
  const std::string target = FormatHostPort(addr.empty() ? "*" : addr, port);
  Status last = Status::ResolveError("resolve " + addr + ": no addresses");
  for (const addrinfo* a = ai.get(); a != nullptr; a = a->ai_next) {
    UniqueFd fd(::socket(a->ai_family,
                         a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                         a->ai_protocol));
    if (!fd) {
      const int saved_errno = errno;  // before any allocation
      last = Status::IoError("listen " + target + ": socket", saved_errno);
      continue;
    }
    const int one = 1;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) !=
        0) {
      const int saved_errno = errno;  // before any allocation
      last =
          Status::IoError("listen " + target + ": SO_REUSEADDR", saved_errno);
      continue;
    }
    if (a->ai_family == AF_INET6 && addr.empty()) {
      const int zero = 0;
      (void)::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero,
                         sizeof zero);  // best effort: dual stack
    }
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      const int saved_errno = errno;  // before any allocation
      last = Status::IoError("bind " + target, saved_errno);
      continue;
    }
    if (::listen(fd.get(), backlog) != 0) {
      const int saved_errno = errno;  // before any allocation
      last = Status::IoError("listen " + target, saved_errno);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) !=
        0) {
      const int saved_errno = errno;  // before any allocation
      last = Status::IoError("listen " + target + ": getsockname", saved_errno);
      continue;
    }
    const std::string address =
        NumericAddress(reinterpret_cast<const sockaddr*>(&bound), len);
    uint16_t bound_port = 0;
    if (bound.ss_family == AF_INET) {
      bound_port =
          ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
    } else {
      bound_port =
          ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
    }
    *out_status = Status::Ok();
    return std::make_unique<Listener>(PrivateTag(), std::move(fd), address,
                                      bound_port);
  }
  *out_status = std::move(last);
  return nullptr;
}

std::unique_ptr<Connection> Listener::Accept(const Options& options,
                                             Status* out_status,
                                             int timeout_ms) {
  const uint64_t deadline = DeadlineAfter(timeout_ms);
  for (;;) {
    if (!fd_) {
      *out_status = Status::IoError("accept on " + address_, EBADF);
      return nullptr;
    }
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    UniqueFd fd(::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &len,
                          SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      const int err = errno;
      // The peer gave up before we took it, or a signal: try again.
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
      if (err != EAGAIN && err != EWOULDBLOCK) {
        *out_status = Status::IoError("accept on " + address_, err);
        return nullptr;
      }
      short revents = 0;
      int poll_err = 0;
      switch (WaitFd(fd_.get(), POLLIN, deadline, &revents, &poll_err)) {
        case WaitResult::kReady: continue;
        case WaitResult::kTimeout:
          *out_status = Status::TimeoutError(
              "accept on " + address_ + " timed out after " +
              std::to_string(timeout_ms) + " ms");
          return nullptr;
        case WaitResult::kError:
          *out_status = Status::IoError("poll", poll_err);
          return nullptr;
      }
      continue;
    }
    if (!SetNoDelay(fd.get())) {
      *out_status =
          Status::IoError("accept on " + address_ + ": TCP_NODELAY", errno);
      return nullptr;
    }
    *out_status = Status::Ok();
    return std::make_unique<Connection>(
        Connection::PrivateTag(),
        MakeCarrier(
            std::move(fd), Engine::Role::kPassive, options,
            NumericAddress(reinterpret_cast<const sockaddr*>(&peer), len)));
  }
}

}  // namespace tcpcrypt::inband
