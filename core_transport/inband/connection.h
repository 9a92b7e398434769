// connection.h: the in-band carrier, the tcpcrypt engine over a TCP socket.
//
// ARCHITECTURE decision 3: an unprivileged process cannot put ENO into its
// SYN, so the engine's first bytes on the connected stream are the SYN-form
// ENO option, then Init1/Init2, then frames. This file only moves those
// bytes between a socket and an Engine; every protocol decision is the
// engine's. Nothing here needs privileges.
//
// Three classes:
//   Listener               bind/listen/accept; hands out Connections that
//                          have not run the handshake yet, so a server can
//                          run Handshake() on a worker thread.
//   Connection             blocking API with poll-based time-outs: Connect,
//                          Handshake, Read, WriteAll, Shutdown, Close.
//   NonBlockingConnection  the same connection driven by an event loop
//                          (OnReadable / OnWritable / wants_write ...), for
//                          full duplex in one thread.
//
// Sockets are always O_NONBLOCK internally; blocking calls wait with poll().
// Every send uses MSG_NOSIGNAL, so no call raises SIGPIPE. No call throws.
//
// Thread-safety: a Connection (or NonBlockingConnection) is used by one
// thread at a time; different connections may be used concurrently from
// different threads, and may share one ResumptionCache and one
// EphemeralKeyCache (both are thread-safe). A Listener may be used from one
// thread at a time.
//
// Key log: when Options::key_log_file or key_log_callback is set (see
// keylog.h), each connection end logs its key-log line once the handshake
// completes.
#ifndef TCPCRYPT_CORE_TRANSPORT_INBAND_CONNECTION_H_
#define TCPCRYPT_CORE_TRANSPORT_INBAND_CONNECTION_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core_transport/engine/engine.h"
#include "core_transport/inband/wait.h"

namespace tcpcrypt::inband {

// UniqueFd owns a file descriptor and closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int Release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Reset closes the current descriptor (if any) and takes |fd|.
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Status is the result of a carrier call: ok, or what went wrong with a
// message a person can act on, for example
//   "connect 127.0.0.1:5000: Connection refused"
//   "handshake failed: ENO_ABSENT (the peer does not speak tcpcrypt)"
//   "stream truncated: the peer's stream ended without an authenticated end
//    of file"
struct Status {
  enum class Kind : uint8_t {
    kOk,
    kIo,       // a system call failed (sys_errno says which error)
    kTimeout,  // the handshake or an I/O wait took too long
    kEngine,   // the tcpcrypt engine failed (engine_error says why)
    kResolve,  // the host name could not be resolved
    kEof,      // the peer closed the TCP connection during the handshake
  };

  Kind kind = Kind::kOk;
  Error engine_error = Error::kNone;
  int sys_errno = 0;
  std::string message;

  bool ok() const { return kind == Kind::kOk; }

  static Status Ok() { return Status(); }
  // IoError: "<what>: <strerror(err)>".
  static Status IoError(std::string_view what, int err);
  static Status TimeoutError(std::string message);
  // EngineError: a message naming |e| and explaining it; |during_handshake|
  // selects "handshake failed: ..." wording.
  static Status EngineError(Error e, bool during_handshake);
  static Status ResolveError(std::string message);
  static Status EofError(std::string message);
};

// DescribeError explains an engine error in a few words, for messages.
std::string_view DescribeError(Error e);

// FormatHostPort returns "host:port", or "[host]:port" when |host| contains
// a colon (an IPv6 literal).
std::string FormatHostPort(std::string_view host, uint16_t port);

// SplitHostPort parses "host:port", "[v6]:port" or ":port" (empty host).
// Returns false on a malformed string or a port outside 0..65535.
[[nodiscard]] bool SplitHostPort(std::string_view s, std::string* out_host,
                                 uint16_t* out_port);

// Bounded peers. A peer that sends and never reads what we owe it must not
// grow our memory: while the engine's queued output (PendingOutput) exceeds
// kReadPauseOutputBytes, a connection reads nothing more from the socket
// (blocking Read waits only for room to send; NonBlockingConnection's
// wants_read() turns false). One receive can add at most the engine's
// bound on unsent rekey answers (kMaxUnsentRekeyAnswers x kRekeyAnswerLen
// = 1,280 bytes) before the engine fails with TOO_MANY_REKEYS, so what a
// peer makes us queue stays below kReadPauseOutputBytes + 1,280 bytes
// (1,377,538 bytes). The bound is 1 MiB + 256 KiB + one whole frame
// (65,538 bytes) = 1,376,258 bytes: above what the application's own writes
// queue through WriteAll (at most 1 MiB + one 256 KiB chunk), so two peers
// writing to each other never both stop reading.
inline constexpr size_t kReadPauseOutputBytes =
    (size_t{1} << 20) + (size_t{256} << 10) + kFrameHeaderLen +
    kMaxCiphertextLen;

// Options configure one connection.
struct Options {
  // The engine's configuration. For Connect, an empty peer_name is set to
  // "host:port" (as passed to Connect) so session resumption finds its
  // ticket; export_keys is set when a key log is on (below).
  EngineConfig engine;
  // Bound on TCP connect plus the whole handshake, in milliseconds; <= 0
  // means no bound. A server's bound starts when Handshake() (or the
  // NonBlockingConnection) starts the engine.
  int handshake_timeout_ms = 10000;
  // Bound on each blocking wait in Read, WriteAll, Shutdown and
  // RequestRekey, in milliseconds; <= 0 means none.
  int io_timeout_ms = 0;
  // Injected randomness and time for the engine; null means SystemRng and
  // SteadyClock. They must outlive the connection and be thread-safe if
  // shared between connections used on different threads. (Time-outs above
  // always use the real monotonic clock.)
  Rng* rng = nullptr;
  const Clock* clock = nullptr;
  // Key log (keylog.h), off unless the application sets one of these (the
  // library never reads the environment; the CLI maps TCPCRYPT_KEYLOGFILE
  // onto key_log_file). Once a connection is established:
  //  - key_log_file: its line is appended to this file (AppendKeyLogLine's
  //    safety rules apply; a refusal is reported through |warn|);
  //  - key_log_callback: called with the line (newline included) on the
  //    thread running the handshake. The view is wiped when the call
  //    returns: copy it to keep it.
  std::string key_log_file;
  std::function<void(std::string_view line)> key_log_callback;
  // warn receives the carrier's warnings (a key-log file refused); null:
  // they are written to stderr as "tcpcrypt: WARNING: ...". Never secrets.
  std::function<void(std::string_view message)> warn;
};

namespace internal {
class Carrier;  // connection.cc: the socket/engine plumbing both APIs share
}  // namespace internal

class NonBlockingConnection;

// Connection is a blocking tcpcrypt connection.
//
// Error model: Handshake, WriteAll, Shutdown and RequestRekey failures are
// sticky: the connection sends any bytes the engine still has queued (for
// example a vacuous ENO reply) best-effort, closes the socket, and every
// later call returns the same Status. A Read time-out is not sticky (the
// call may be retried); every other Read failure is.
class Connection {
 private:
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  // Connect resolves |host|, connects to the first address that accepts
  // (TCP_NODELAY on), and runs the handshake to completion, all within
  // options.handshake_timeout_ms. Returns nullptr and sets |*out_status| on
  // failure; on success |*out_status| is ok.
  static std::unique_ptr<Connection> Connect(const std::string& host,
                                             uint16_t port, Options options,
                                             Status* out_status);

  // FromSocket adopts a connected stream socket (for example one accepted
  // elsewhere after sniffing its first byte with MSG_PEEK). The handshake
  // has not run; |peer| is used in messages. Sets O_NONBLOCK and
  // TCP_NODELAY; returns nullptr if that fails.
  static std::unique_ptr<Connection> FromSocket(UniqueFd fd, Engine::Role role,
                                                Options options,
                                                std::string peer,
                                                Status* out_status);

  Connection(PrivateTag, std::unique_ptr<internal::Carrier> carrier);
  ~Connection();  // Close()
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Handshake runs the handshake to completion (ENO, Init1/Init2, Init2
  // flushed). Idempotent: returns ok at once when already done. Read,
  // WriteAll, Shutdown and RequestRekey call it first if needed.
  Status Handshake();
  bool handshake_done() const;

  // Read waits for authenticated plaintext and copies up to out.size()
  // bytes. Returns > 0: bytes copied; 0: authenticated end of file (the
  // peer's FINp; also when out is empty); -1: failure, described in
  // |*out_status| (if non-null), for example the TRUNCATED error when the
  // TCP stream ended without FINp. Any engine output made while reading
  // (a mandatory rekey answer) is flushed.
  ssize_t Read(std::span<uint8_t> out, Status* out_status);

  // WriteAll encrypts |data| and waits until all of it is handed to the
  // kernel. While waiting for the socket to drain it keeps reading what the
  // peer sends (buffering up to ~1 MiB of plaintext) so two peers writing
  // to each other do not deadlock. |data| must not point into this
  // connection's own buffers.
  Status WriteAll(std::span<const uint8_t> data);

  // Shutdown sends the final frame with FINp, flushes everything, then
  // shuts down the socket's write side (RFC 8548 §3.7). Reading remains
  // possible. Idempotent. If the peer already closed (shutdown(2) fails
  // with ENOTCONN, EPIPE or ECONNRESET once everything was handed to the
  // kernel) the write side is simply over: Shutdown returns ok, what was
  // received stays readable (an authenticated end of file still reads as
  // 0), and peer_reset() turns true.
  Status Shutdown();

  // RequestRekey moves our sending direction to the next key generation
  // (RFC 8548 §3.8) and flushes the frame that announces it.
  Status RequestRekey();

  // Close closes the socket without FINp (the peer then sees TRUNCATED
  // unless Shutdown() ran first). Idempotent; the destructor calls it.
  // After a completed Shutdown() it closes gracefully: it first reads and
  // discards what the peer still sends until the peer's end of stream, at
  // most kCloseDrainBytes (256 KiB) and kCloseDrainMs (250 ms; no wait when
  // the peer's authenticated end of file already arrived), so close() does
  // not reset the connection and destroy our last reply at the peer.
  void Close();

  // peer_reset: the peer reset the connection after we handed bytes to the
  // kernel (our shutdown(2) found it gone, or a reset was pending when its
  // stream ended). Bytes we sent may have been discarded unread; the bytes
  // we received are unaffected.
  bool peer_reset() const;

  // status is the sticky failure, or ok.
  const Status& status() const;
  // fd is the socket, or -1 once closed.
  int fd() const;
  // peer is the peer's numeric address "ip:port".
  const std::string& peer() const;

  // Available once handshake_done(); see Engine.
  std::span<const uint8_t, kSessionIdLen> session_id() const;
  std::string session_id_hex() const;  // 66 lowercase hex digits
  Tep tep() const;
  Cipher cipher() const;
  bool resumed() const;
  // engine exposes the engine's status for tests and diagnostics.
  const Engine& engine() const;
  // FlushResumptionState forgets the resumption secret this connection
  // cached (Engine::FlushResumptionState), e.g. when authentication failed.
  void FlushResumptionState();

 private:
  friend class NonBlockingConnection;
  friend class Listener;
  std::unique_ptr<internal::Carrier> c_;
};

// NonBlockingConnection is a connection an event loop drives. The loop
// polls fd() for POLLIN when wants_read() and POLLOUT when wants_write(),
// calls OnReadable / OnWritable on the events, and calls OnTimer() when
// NextTimeoutMs() expires. Read and Write never block. The handshake runs
// inside those calls; Write is refused until handshake_done().
//
// Failures are sticky: failed() turns true, status() says why, and the
// socket is closed (fd() returns -1; stop polling it).
class NonBlockingConnection {
 private:
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  // Read's results besides a byte count (> 0) and 0 (authenticated EOF).
  static constexpr ssize_t kWouldBlock = -1;
  static constexpr ssize_t kFailed = -2;

  // Connect resolves and connects the TCP socket synchronously (bounded by
  // options.handshake_timeout_ms), then starts the handshake, which the
  // event loop completes. Returns nullptr and sets |*out_status| on failure.
  static std::unique_ptr<NonBlockingConnection> Connect(const std::string& host,
                                                        uint16_t port,
                                                        Options options,
                                                        Status* out_status);

  // FromConnection takes over a Connection in any state (for example one
  // just returned by Listener::Accept). Starts the handshake if needed.
  static std::unique_ptr<NonBlockingConnection> FromConnection(
      std::unique_ptr<Connection> connection);

  NonBlockingConnection(PrivateTag, std::unique_ptr<internal::Carrier> c);
  ~NonBlockingConnection();  // Close()
  NonBlockingConnection(const NonBlockingConnection&) = delete;
  NonBlockingConnection& operator=(const NonBlockingConnection&) = delete;

  // --- event loop side --------------------------------------------------
  int fd() const;
  // wants_read: the socket may deliver more, the plaintext buffer is not
  // full (read the plaintext to resume reading), and we owe the peer at
  // most kReadPauseOutputBytes (send to resume reading).
  bool wants_read() const;
  // wants_write: bytes are queued for the socket.
  bool wants_write() const;
  // NextTimeoutMs: milliseconds until the handshake deadline, 0 if it has
  // passed, -1 if there is none (handshake done, failed or unbounded).
  int NextTimeoutMs() const;
  void OnReadable();
  void OnWritable();
  // OnTimer fails the connection with a time-out once the handshake
  // deadline has passed; otherwise it does nothing.
  void OnTimer();

  // --- application side -------------------------------------------------
  bool handshake_done() const;
  bool failed() const;
  const Status& status() const;

  // Read copies up to out.size() bytes of plaintext. Returns > 0, 0 at
  // the authenticated end of file, kWouldBlock, or kFailed (see status()).
  ssize_t Read(std::span<uint8_t> out);
  // PeekPlaintext / ConsumePlaintext read without a copy. The span is valid
  // until the next call on this object.
  ByteSpan PeekPlaintext() const;
  void ConsumePlaintext(size_t n);
  // at_eof: the peer's authenticated FINp arrived and all plaintext before
  // it was read. Stays true if our side fails afterwards.
  bool at_eof() const;
  // carrier_eof: the peer's TCP stream ended (its FIN arrived).
  bool carrier_eof() const;
  // peer_reset: see Connection::peer_reset.
  bool peer_reset() const;

  // Write encrypts |data| into the send queue and sends what the socket
  // takes now. Only after handshake_done(). The caller should stop writing
  // while write_queue_full().
  Status Write(std::span<const uint8_t> data);
  size_t pending_output() const;
  bool write_queue_full() const;
  // Shutdown queues the FINp frame; once the queue drains, the socket's
  // write side is shut down and shutdown_complete() turns true.
  Status Shutdown();
  bool shutdown_complete() const;
  Status RequestRekey();
  // Close: as Connection::Close (graceful after a completed Shutdown, so it
  // may wait up to kCloseDrainMs).
  void Close();

  const std::string& peer() const;
  std::span<const uint8_t, kSessionIdLen> session_id() const;
  std::string session_id_hex() const;
  Tep tep() const;
  Cipher cipher() const;
  bool resumed() const;
  const Engine& engine() const;
  void FlushResumptionState();  // as Connection::FlushResumptionState

 private:
  std::unique_ptr<internal::Carrier> c_;
};

// Listener is a listening TCP socket handing out tcpcrypt connections in the
// passive role.
class Listener {
 private:
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  // Listen binds |addr| (a numeric address or a host name; "" means all
  // IPv4 and IPv6 addresses) and |port| (0 picks a free port) with
  // SO_REUSEADDR and listens with |backlog|.
  static std::unique_ptr<Listener> Listen(const std::string& addr,
                                          uint16_t port, int backlog,
                                          Status* out_status);

  Listener(PrivateTag, UniqueFd fd, std::string address, uint16_t port);

  // port is the bound port (the real one when 0 was asked for); address is
  // "ip:port" with it.
  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }
  int fd() const { return fd_.get(); }

  // Accept waits up to |timeout_ms| (< 0: forever) for a connection and
  // returns it with the handshake not yet run. On failure returns nullptr
  // and sets |*out_status|: kTimeout, or kIo (for example EMFILE; the
  // listener stays usable).
  std::unique_ptr<Connection> Accept(const Options& options, Status* out_status,
                                     int timeout_ms = -1);

  void Close() { fd_.Reset(); }

 private:
  UniqueFd fd_;
  std::string address_;
  uint16_t port_ = 0;
};

}  // namespace tcpcrypt::inband

#endif  // TCPCRYPT_CORE_TRANSPORT_INBAND_CONNECTION_H_
