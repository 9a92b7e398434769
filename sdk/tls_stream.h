// tls_stream.h: the TLS 1.3 fallback transport, and the first-byte sniffer
// that lets one port serve both tcpcrypt and TLS 1.3.
//
// The paper's OpenSSL integration (§5.3) runs tcpcrypt when both hosts speak
// it and falls back to an ordinary TLS handshake otherwise. Here the fallback
// is TLS 1.3 only (RFC 8446), over an already-connected TCP socket, with the
// same blocking, poll-bounded shape as inband::Connection so the SDK drives
// both alike. Authenticators endorse the RFC 9266 tls-exporter value over TLS
// where they endorse the session ID over tcpcrypt (ARCHITECTURE decision 5,
// auth::ChannelBinding::TlsExporter).
//
// Contents:
//   TlsServerContext  certificate chain + key, ticket keys (one per server)
//   TlsClientContext  trust anchors + per-"host:port" session cache
//   TlsStream         one blocking TLS 1.3 connection
//   SniffFirstByte    peek at a new connection's first byte: tcpcrypt or TLS
//
// Results are inband::Status (the carrier's type, so the SDK maps both
// transports' failures the same way); TLS failures carry OpenSSL's reason in
// the message.
//
// Configuration (both contexts): TLS 1.3 only, key-exchange groups X25519
// then P-256, cipher suites TLS_AES_128_GCM_SHA256, TLS_CHACHA20_POLY1305_-
// SHA256, TLS_AES_256_GCM_SHA384 (the AEADs tcpcrypt offers, same order), no
// 0-RTT data, no client certificates (authentication runs on top, bound to
// the exporter).
//
// I/O: sockets are switched to O_NONBLOCK; blocking calls wait with poll().
// Every send uses MSG_NOSIGNAL, so no call raises SIGPIPE. No call throws.
//
// Thread-safety: a TlsStream is used by one thread at a time; different
// streams may be used concurrently from different threads. Contexts are
// shared: any number of streams on any threads may use one context at once,
// and a context may be destroyed while streams made from it are still open
// (each stream keeps what it needs alive).
#ifndef TCPCRYPT_SDK_TLS_STREAM_H_
#define TCPCRYPT_SDK_TLS_STREAM_H_

#include <openssl/types.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "auth/common/binding.h"
#include "core_transport/inband/connection.h"

namespace tcpcrypt::sdk {

// RFC 9266 §2: the tls-exporter channel binding is the TLS exporter output
// for this label, a zero-length context, and 32 bytes.
inline constexpr std::string_view kTlsExporterLabel =
    "EXPORTER-Channel-Binding";
inline constexpr size_t kTlsExporterLen = 32;

// New-session tickets the server sends after each full or resumed
// handshake, and how many the client keeps per "host:port" (RFC 8446 §C.4:
// a ticket is used once, so a client needs one per future connection).
inline constexpr size_t kTlsTicketsPerHandshake = 2;
inline constexpr size_t kTlsMaxTicketsPerPeer = 4;
// The client's session cache forgets the least recently stored peer beyond
// this many "host:port" entries.
inline constexpr size_t kTlsMaxCachedPeers = 1024;

namespace internal {
class TlsSessionCache;  // tls_stream.cc: the client's ticket store
struct TlsSessionSlot;  // tls_stream.cc: one stream's handle on it
struct TlsSocketBio;    // tls_stream.cc: the fd and errno the BIO records
// SslFree frees OpenSSL objects with their library free functions.
struct SslFree {
  void operator()(SSL_CTX* p) const;
  void operator()(SSL* p) const;
};
}  // namespace internal

// TlsServerContext is a server's TLS 1.3 configuration: its certificate
// chain and private key, and the keys its session tickets are sealed with
// (random per context, so tickets resume only against the context that
// issued them). One per server; thread-safe.
//
// Failures name the file and OpenSSL's reason, for example
//   "cannot load certificate server.pem: no start line"
//   "cannot load private key server.key: No such file or directory"
//   "private key server.key does not match certificate server.pem"
// with Status kind kEngine and engine_error kInvalidArgument.
class TlsServerContext {
 private:
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  // FromFiles loads |chain_pem_path| (PEM certificates, the leaf first, then
  // any intermediates) and |key_pem_path| (a PEM private key: PKCS#8 or the
  // traditional form, unencrypted) and checks that they match. Returns
  // nullptr and sets |*out_status| on failure.
  static std::shared_ptr<TlsServerContext> FromFiles(
      const std::string& chain_pem_path, const std::string& key_pem_path,
      inband::Status* out_status);

  // FromMemory uses |leaf|, the intermediates |chain| (leaf's issuer first)
  // and |key|. It takes its own references; the caller keeps its own.
  static std::shared_ptr<TlsServerContext> FromMemory(
      X509* leaf, std::span<X509* const> chain, EVP_PKEY* key,
      inband::Status* out_status);

  TlsServerContext(PrivateTag, SSL_CTX* ctx);  // takes ownership of |ctx|
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  // ssl_ctx is the underlying context, for advanced settings made before
  // the first Accept. Owned by this object.
  SSL_CTX* ssl_ctx() const { return ctx_.get(); }

 private:
  std::unique_ptr<SSL_CTX, internal::SslFree> ctx_;
};

// TlsClientContext is a client's TLS 1.3 configuration: the trust anchors
// that server certificates must chain to, and a session cache keyed by
// "host:port" (the name given to Connect and the socket's peer port) so a
// second connection to the same server resumes (RFC 8446 §2.2). Thread-safe.
//
// TLS 1.3 tickets arrive after the handshake: the client caches them when a
// Read (or a WriteAll that reads while it waits) processes them, so a
// connection that never reads leaves nothing to resume. Each cached ticket
// is used once (RFC 8446 §C.4).
class TlsClientContext {
 private:
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  // FromCaFile trusts the PEM certificates in |ca_pem_path|. Returns nullptr
  // and sets |*out_status| on failure ("cannot load CA certificates
  // ca.pem: ...", kind kEngine, engine_error kInvalidArgument).
  static std::shared_ptr<TlsClientContext> FromCaFile(
      const std::string& ca_pem_path, inband::Status* out_status);

  // FromStore trusts |store| (it takes a reference; the caller keeps its
  // own; the store must not be modified afterwards).
  static std::shared_ptr<TlsClientContext> FromStore(
      X509_STORE* store, inband::Status* out_status);

  // WithSystemRoots trusts the system's default CA locations (OpenSSL's
  // default paths, SSL_CERT_FILE / SSL_CERT_DIR).
  static std::shared_ptr<TlsClientContext> WithSystemRoots(
      inband::Status* out_status);

  TlsClientContext(PrivateTag, SSL_CTX* ctx);  // takes ownership of |ctx|
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  // cached_tickets is the number of tickets held for |host_port|
  // ("host:port" as FormatHostPort writes it); ClearSessionCache forgets
  // them all.
  size_t cached_tickets(std::string_view host_port) const;
  void ClearSessionCache();

  SSL_CTX* ssl_ctx() const { return ctx_.get(); }

 private:
  friend class TlsStream;
  std::unique_ptr<SSL_CTX, internal::SslFree> ctx_;
  std::shared_ptr<internal::TlsSessionCache> cache_;
};

// TlsStream is a blocking TLS 1.3 connection over a connected stream socket.
//
// Error model (as inband::Connection): a handshake, WriteAll or Shutdown
// failure is sticky: the socket is closed and every later call returns the
// same Status. A Read time-out is not sticky (the call may be retried);
// every other Read failure is. Status kinds:
//   kIo       a system call failed ("recv from 127.0.0.1:4433: Connection
//             reset by peer")
//   kTimeout  the handshake or an I/O wait took too long
//   kEof      the peer closed TCP during the handshake
//   kEngine   TLS itself failed; engine_error says how:
//     kTruncated          TCP ended without close_notify ("stream truncated:
//                         ..."), the TLS form of tcpcrypt's TRUNCATED
//     kAeadFailure        a record failed authentication
//     kProtocolViolation  the handshake failed, including certificate
//                         verification ("TLS handshake failed: certificate
//                         verify failed (certificate does not match host
//                         example.com)") and alerts from the peer
//     kInvalidArgument    bad argument (an empty host name)
//     kClosed             a write after Shutdown, any call after Close
//     kInternal           OpenSSL failed locally (out of memory, ...)
class TlsStream {
 private:
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  // Accept runs the server side of the handshake on |fd| within
  // |timeout_ms| (<= 0: no bound). Returns nullptr and sets |*out_status|
  // on failure (the socket is then closed); on success |*out_status| is ok.
  static std::unique_ptr<TlsStream> Accept(inband::UniqueFd fd,
                                           const TlsServerContext& context,
                                           int timeout_ms,
                                           inband::Status* out_status);

  // Connect runs the client side of the handshake on |fd| within
  // |timeout_ms| (<= 0: no bound), verifying that the server's certificate
  // chains to |context|'s trust anchors and names |host|: a DNS name
  // (checked against DNS SANs, also sent as SNI) or an IPv4/IPv6 literal
  // (checked against IP SANs; RFC 6066 §3 forbids literals in SNI). |host|
  // must not be empty. A cached ticket for "host:port" is offered for
  // resumption. Returns nullptr and sets |*out_status| on failure (the
  // socket is then closed).
  static std::unique_ptr<TlsStream> Connect(inband::UniqueFd fd,
                                            const TlsClientContext& context,
                                            const std::string& host,
                                            int timeout_ms,
                                            inband::Status* out_status);

  TlsStream(PrivateTag, inband::UniqueFd fd, std::string peer);
  ~TlsStream();  // Close()
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // set_io_timeout_ms bounds each blocking wait in Read, WriteAll and
  // Shutdown, in milliseconds; <= 0 (the default) means none.
  void set_io_timeout_ms(int ms) { io_timeout_ms_ = ms; }

  // Read waits for application data and copies up to out.size() bytes.
  // Returns > 0: bytes copied; 0: clean end of file (the peer's
  // close_notify; also when out is empty); -1: failure, described in
  // |*out_status| (if non-null), for example kTruncated when the TCP stream
  // ended without close_notify (RFC 8446 §6.1).
  ssize_t Read(std::span<uint8_t> out, inband::Status* out_status);

  // WriteAll encrypts |data| and waits until all of it is handed to the
  // kernel. While waiting for the socket to drain it keeps reading what the
  // peer sends (buffering up to kMaxBufferedPlaintext bytes for Read) so two
  // peers writing to each other do not deadlock.
  inband::Status WriteAll(std::span<const uint8_t> data);

  // Shutdown sends close_notify (RFC 8446 §6.1), flushes it, then shuts
  // down the socket's write side. Reading remains possible until the
  // peer's close_notify. Idempotent.
  inband::Status Shutdown();

  // Close closes the socket without close_notify (the peer then sees a
  // truncation unless Shutdown() ran first). Idempotent; the destructor
  // calls it. The accessors below keep working.
  void Close();

  // status is the sticky failure, or ok.
  const inband::Status& status() const { return status_; }
  // fd is the socket, or -1 once closed: poll it, never read or write it
  // directly (OpenSSL buffers records; see has_buffered).
  int fd() const { return fd_.get(); }
  // peer is the peer's numeric address "ip:port".
  const std::string& peer() const { return peer_; }
  // has_buffered: Read can return data (or EOF) without waiting for the
  // socket, so an event loop must not wait for POLLIN first.
  bool has_buffered() const;

  // resumed: the handshake resumed a session from a ticket (both ends
  // agree).
  bool resumed() const;
  // cipher_name is the TLS 1.3 cipher suite, e.g. "TLS_AES_128_GCM_SHA256".
  std::string cipher_name() const;
  // group_name is the key-exchange group, e.g. "x25519" or "secp256r1".
  std::string group_name() const;
  // peer_certificate_subject is the peer certificate's subject in RFC 2253
  // form (e.g. "CN=localhost"), or "" when the peer sent none (a server
  // sees "" as client certificates are not requested).
  std::string peer_certificate_subject() const;

  // Exporter sets |*out_exporter| to the RFC 9266 tls-exporter value:
  // kTlsExporterLen (32) bytes, equal at both ends and unique to this
  // connection. It is not secret (RFC 9266 §4) but must only be used as a
  // channel binding, and for one authentication instance per connection
  // (RFC 9266 §4.1). Valid in every state after the handshake.
  inband::Status Exporter(std::vector<uint8_t>* out_exporter) const;
  // Binding wraps Exporter as auth::ChannelBinding::TlsExporter.
  inband::Status Binding(auth::ChannelBinding* out_binding) const;

  // kMaxBufferedPlaintext bounds what WriteAll reads ahead for Read.
  static constexpr size_t kMaxBufferedPlaintext = size_t{1} << 20;

 private:
  enum class State : uint8_t {
    kOpen,       // handshake done, both directions open
    kWriteShut,  // Shutdown() done: close_notify sent, reading allowed
    kFailed,     // sticky failure in status_; socket closed
    kClosed,     // Close() called; socket closed
  };
  enum class Phase : uint8_t { kHandshake, kRead, kWrite, kShutdown };

  inband::Status Init(SSL_CTX* ctx, bool is_server);
  inband::Status RunHandshake(int timeout_ms);
  inband::Status StateError() const;
  // WaitFor polls the socket for what OpenSSL wants (SSL_ERROR_WANT_READ /
  // _WRITE) until |deadline_ms| (0: none). |also_read| adds POLLIN while
  // waiting to write; |*out_readable| reports it.
  inband::Status WaitFor(int ssl_error, uint64_t deadline_ms, Phase phase,
                         bool also_read, bool* out_readable);
  // ReadAhead moves readable application data into pending_ (WriteAll).
  inband::Status ReadAhead();
  // ErrorFromSsl turns a failed SSL_* call into a Status and clears
  // OpenSSL's error queue.
  inband::Status ErrorFromSsl(int ssl_error, Phase phase) const;
  inband::Status Fail(inband::Status s);
  void CloseSocket();

  inband::UniqueFd fd_;
  std::string peer_;
  std::string host_;  // the name the client verified ("" on a server)
  std::unique_ptr<internal::TlsSocketBio> bio_;
  std::unique_ptr<internal::TlsSessionSlot> session_slot_;
  // Declared after what its BIO and app data point to, so freed first.
  std::unique_ptr<SSL, internal::SslFree> ssl_;
  State state_ = State::kOpen;
  inband::Status status_;
  int io_timeout_ms_ = 0;
  // Application data read ahead by WriteAll, served first by Read.
  std::vector<uint8_t> pending_;
  size_t pending_offset_ = 0;
  bool read_eof_ = false;  // the peer's close_notify arrived
};

// --- One port for tcpcrypt and TLS 1.3 -------------------------------------
//
// Both a tcpcrypt client and a TLS client speak first, and their first bytes
// differ:
//   0x45  tcpcrypt: the in-band carrier's first byte is the SYN-form ENO
//         option's kind, 69 (RFC 8547 §4.1; ARCHITECTURE decision 3)
//   0x16  TLS: a ClientHello travels in a handshake record, ContentType 22
//         (RFC 8446 §5.1)
// So a server that listens for both peeks at the first byte (recv with
// MSG_PEEK, nothing consumed) and hands the socket, untouched, to
// inband::Connection::FromSocket (passive role) or TlsStream::Accept. The
// server must not send anything before sniffing.
enum class Protocol : uint8_t {
  kTcpcrypt,  // first byte 0x45
  kTls,       // first byte 0x16
  kOther,     // any other first byte (plain HTTP, SSLv2-style hello, ...)
  kClosed,    // the peer closed (or reset) before sending a byte
  kTimeout,   // nothing arrived within the time-out
};

inline constexpr uint8_t kSniffTcpcryptByte = 0x45;
inline constexpr uint8_t kSniffTlsByte = 0x16;

// ProtocolName: "tcpcrypt", "tls", "other", "closed", "timeout".
std::string_view ProtocolName(Protocol p);

// SniffFirstByte waits up to |timeout_ms| (< 0: forever; 0: do not wait)
// for the first byte on the connected socket |fd| and classifies it without
// consuming it. Sets |*out_byte| (if non-null) to that byte when one was
// read. Works on blocking and non-blocking sockets; does not change the
// socket's flags. kClosed also covers a socket error (ECONNRESET, EBADF).
Protocol SniffFirstByte(int fd, int timeout_ms, uint8_t* out_byte);

}  // namespace tcpcrypt::sdk

#endif  // TCPCRYPT_SDK_TLS_STREAM_H_
