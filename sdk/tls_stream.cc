#include "sdk/tls_stream.h"

#include "core_transport/inband/wait.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <utility>

#include "core_transport/engine/eno_option.h"

namespace tcpcrypt::sdk {

using inband::Status;
using inband::UniqueFd;

// RFC 8547 §4.1 (kind 69) and RFC 8446 §5.1 (ContentType handshake = 22).
static_assert(kSniffTcpcryptByte == kEnoKind);
static_assert(kSniffTlsByte == 22);

namespace {

struct SslSessionFree {
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using UniqueSslSession = std::unique_ptr<SSL_SESSION, SslSessionFree>;

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using UniqueSslCtx = std::unique_ptr<SSL_CTX, SslCtxFree>;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using UniqueBio = std::unique_ptr<BIO, BioFree>;

// The AEADs tcpcrypt offers (ARCHITECTURE decision 2), in the engine's
// default preference order, and its key exchanges minus P-521.
constexpr char kCipherSuites[] =
    "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:"
    "TLS_AES_256_GCM_SHA384";
constexpr char kGroups[] = "X25519:P-256";
constexpr unsigned char kSessionIdContext[] = "tcpcrypt-tls";

using inband::DeadlineAfter;
using inband::NowMs;
using inband::WaitFd;
using inband::WaitResult;

std::string NumericPeer(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return "?";
  }
  char host[NI_MAXHOST];
  char serv[NI_MAXSERV];
  if (::getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof host,
                    serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "?";
  }
  uint16_t port = 0;
  const std::string_view sv(serv);
  std::from_chars(sv.data(), sv.data() + sv.size(), port);
  return inband::FormatHostPort(host, port);
}

uint16_t PeerPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  }
  if (ss.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
  }
  return 0;
}

bool IsIpLiteral(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return ::inet_pton(AF_INET, host.c_str(), &a4) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

[[nodiscard]] bool SetNonBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return false;
  if ((flags & O_NONBLOCK) != 0) return true;
  return ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

// --- Status helpers ---------------------------------------------------------

Status EngineStatus(Error e, std::string message) {
  Status s;
  s.kind = Status::Kind::kEngine;
  s.engine_error = e;
  s.message = std::move(message);
  return s;
}

// ReasonText is OpenSSL's reason for |e|, e.g. "no start line", or the
// whole error string when there is no reason text.
std::string ReasonText(unsigned long e) {
  // A failed fopen() and the like: errno is the reason.
  if (ERR_SYSTEM_ERROR(e)) return std::strerror(ERR_GET_REASON(e));
  // OpenSSL 3's decoders say only "unsupported" when a file holds no key.
  if (ERR_GET_LIB(e) == ERR_LIB_OSSL_DECODER &&
      ERR_GET_REASON(e) == ERR_R_UNSUPPORTED) {
    return "no unencrypted PEM private key found";
  }
  if (const char* r = ERR_reason_error_string(e); r != nullptr) return r;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// DrainErrors returns the earliest error in this thread's OpenSSL queue
// (the root cause; later entries are its consequences) and clears it.
unsigned long DrainErrors() {
  const unsigned long first = ERR_get_error();
  ERR_clear_error();
  return first;
}

// OpenSslReason describes the queued error and clears the queue; |fallback|
// when the queue is empty.
std::string OpenSslReason(std::string_view fallback) {
  const unsigned long e = DrainErrors();
  return e != 0 ? ReasonText(e) : std::string(fallback);
}

// PeerAlert is the alert description when |e| reports a fatal alert the
// peer sent (OpenSSL codes those as SSL_AD_REASON_OFFSET + description).
const char* PeerAlert(unsigned long e) {
  if (ERR_GET_LIB(e) != ERR_LIB_SSL) return nullptr;
  const int reason = ERR_GET_REASON(e);
  if (reason <= SSL_AD_REASON_OFFSET || reason > SSL_AD_REASON_OFFSET + 255) {
    return nullptr;
  }
  return SSL_alert_desc_string_long(reason - SSL_AD_REASON_OFFSET);
}

Status ConfigError(std::string what) {
  return EngineStatus(Error::kInvalidArgument,
                      std::move(what) + ": " + OpenSslReason("unknown error"));
}

// IsKeyMismatch: |e| says a private key does not belong to the certificate.
bool IsKeyMismatch(unsigned long e) {
  return ERR_GET_LIB(e) == ERR_LIB_X509 &&
         (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
          ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);
}

// KeyMismatch: "private key <key> does not match certificate <cert>"; empty
// paths (in-memory credentials) leave the names out.
Status KeyMismatch(const std::string& key_path, const std::string& cert_path) {
  ERR_clear_error();
  if (key_path.empty()) {
    return EngineStatus(Error::kInvalidArgument,
                        "private key does not match certificate");
  }
  return EngineStatus(
      Error::kInvalidArgument,
      "private key " + key_path + " does not match certificate " + cert_path);
}

// ConfigureCommon applies what both sides share. RFC 8446: TLS 1.3 only.
Status ConfigureCommon(SSL_CTX* ctx) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
    return ConfigError("cannot require TLS 1.3");
  }
  if (SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
    return ConfigError(std::string("cannot set TLS groups ") + kGroups);
  }
  if (SSL_CTX_set_ciphersuites(ctx, kCipherSuites) != 1) {
    return ConfigError("cannot set TLS 1.3 cipher suites");
  }
  // No 0-RTT: early data is replayable (RFC 8446 §8). 0 is OpenSSL's
  // default; stating it keeps a later default change from turning it on.
  if (SSL_CTX_set_max_early_data(ctx, 0) != 1) {
    return ConfigError("cannot disable early data");
  }
  return Status::Ok();
}

// NoPassword refuses encrypted PEM keys instead of letting OpenSSL prompt
// on the terminal (its default callback), which would hang a server.
int NoPassword(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
  return -1;
}

Status NewCtx(const SSL_METHOD* method, UniqueSslCtx* out_ctx) {
  ERR_clear_error();
  UniqueSslCtx ctx(SSL_CTX_new(method));
  if (!ctx) {
    return EngineStatus(Error::kInternal, "cannot create TLS context: " +
                                              OpenSslReason("out of memory"));
  }
  SSL_CTX_set_default_passwd_cb(ctx.get(), NoPassword);
  Status st = ConfigureCommon(ctx.get());
  if (!st.ok()) return st;
  *out_ctx = std::move(ctx);
  return Status::Ok();
}

Status ConfigureServer(SSL_CTX* ctx) {
  // Resumption (RFC 8446 §2.2, §4.6.1): stateless tickets sealed with this
  // context's random ticket keys (SSL_OP_NO_TICKET stays off).
  if (SSL_CTX_set_num_tickets(ctx, kTlsTicketsPerHandshake) != 1) {
    return ConfigError("cannot enable session tickets");
  }
  if (SSL_CTX_set_session_id_context(ctx, kSessionIdContext,
                                     sizeof kSessionIdContext - 1) != 1) {
    return ConfigError("cannot set the session ID context");
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // no client certs
  return Status::Ok();
}

}  // namespace

// --- internal types ---------------------------------------------------------

namespace internal {

void SslFree::operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
void SslFree::operator()(SSL* p) const { SSL_free(p); }

// TlsSocketBio is what the socket BIO needs: the fd, the errno of the last
// failed send/recv, and whether recv saw the end of the TCP stream.
struct TlsSocketBio {
  int fd = -1;
  int last_errno = 0;
  bool errno_from_send = false;  // last_errno came from send, not recv
  bool eof = false;
};

// TlsSessionCache holds client tickets per "host:port", newest last.
class TlsSessionCache {
 public:
  // Store takes ownership of |session|.
  void Store(const std::string& key, SSL_SESSION* session) {
    UniqueSslSession owned(session);
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = entries_[key];
    e.stored = ++clock_;
    e.tickets.push_back(std::move(owned));
    while (e.tickets.size() > kTlsMaxTicketsPerPeer) e.tickets.pop_front();
    if (entries_.size() > kTlsMaxCachedPeers) EvictOldest();
  }

  // Take removes and returns the newest resumable ticket for |key|
  // (RFC 8446 §C.4: clients SHOULD NOT reuse a ticket).
  UniqueSslSession Take(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return nullptr;
    UniqueSslSession found;
    auto& tickets = it->second.tickets;
    while (!tickets.empty() && !found) {
      UniqueSslSession s = std::move(tickets.back());
      tickets.pop_back();
      if (SSL_SESSION_is_resumable(s.get()) == 1) found = std::move(s);
    }
    if (tickets.empty()) entries_.erase(it);
    return found;
  }

  size_t Count(std::string_view key) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    return it == entries_.end() ? 0 : it->second.tickets.size();
  }

  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.clear();
  }

 private:
  struct Entry {
    std::deque<UniqueSslSession> tickets;
    uint64_t stored = 0;
  };

  void EvictOldest() {
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.stored < oldest->second.stored) oldest = it;
    }
    entries_.erase(oldest);
  }

  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;
  uint64_t clock_ = 0;
};

// TlsSessionSlot is a client stream's handle on its context's cache: the
// SSL's app data while the stream lives, read by the new-session callback.
struct TlsSessionSlot {
  std::shared_ptr<TlsSessionCache> cache;
  std::string key;  // "host:port"
};

}  // namespace internal

namespace {

// OnNewSession is the client's new-session callback: a NewSessionTicket was
// processed (RFC 8446 §4.6.1). Returning 1 keeps the reference we were given.
int OnNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* slot = static_cast<internal::TlsSessionSlot*>(SSL_get_app_data(ssl));
  if (slot == nullptr || !slot->cache) return 0;
  slot->cache->Store(slot->key, session);
  return 1;
}

// --- The socket BIO ---------------------------------------------------------
//
// OpenSSL's own socket BIO writes with write(2), which raises SIGPIPE on a
// closed connection; this one sends with MSG_NOSIGNAL and records errno and
// EOF so failures can be reported precisely.

// PeerGone: the errno of a socket whose peer closed or reset it.
bool PeerGone(int err) {
  return err == ENOTCONN || err == EPIPE || err == ECONNRESET;
}

internal::TlsSocketBio* BioState(BIO* b) {
  return static_cast<internal::TlsSocketBio*>(BIO_get_data(b));
}

int BioWrite(BIO* b, const char* data, size_t len, size_t* out_written) {
  internal::TlsSocketBio* s = BioState(b);
  BIO_clear_retry_flags(b);
  for (;;) {
    const ssize_t n = ::send(s->fd, data, len, MSG_NOSIGNAL);
    if (n >= 0) {
      *out_written = static_cast<size_t>(n);
      return 1;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      BIO_set_retry_write(b);
    } else {
      s->last_errno = errno;
      s->errno_from_send = true;
    }
    return 0;
  }
}

int BioRead(BIO* b, char* out, size_t len, size_t* out_read) {
  internal::TlsSocketBio* s = BioState(b);
  BIO_clear_retry_flags(b);
  for (;;) {
    const ssize_t n = ::recv(s->fd, out, len, 0);
    if (n > 0) {
      *out_read = static_cast<size_t>(n);
      return 1;
    }
    if (n == 0) {
      if (len > 0) s->eof = true;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      BIO_set_retry_read(b);
    } else {
      s->last_errno = errno;
      s->errno_from_send = false;
    }
    return 0;
  }
}

long BioCtrl(BIO* b, int cmd, long /*num*/, void* /*ptr*/) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:  // send() has no user-space buffer
      return 1;
    case BIO_CTRL_EOF:  // tells OpenSSL a 0 from read is the end of stream
      return BioState(b)->eof ? 1 : 0;
    default:
      return 0;
  }
}

int BioCreate(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

const BIO_METHOD* SocketBioMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "tcpcrypt socket");
    if (m == nullptr) return m;
    if (BIO_meth_set_write_ex(m, BioWrite) != 1 ||
        BIO_meth_set_read_ex(m, BioRead) != 1 ||
        BIO_meth_set_ctrl(m, BioCtrl) != 1 ||
        BIO_meth_set_create(m, BioCreate) != 1) {
      BIO_meth_free(m);
      return static_cast<BIO_METHOD*>(nullptr);
    }
    return m;
  }();
  return method;
}

}  // namespace

// --- TlsServerContext -------------------------------------------------------

TlsServerContext::TlsServerContext(PrivateTag, SSL_CTX* ctx) : ctx_(ctx) {}
TlsServerContext::~TlsServerContext() = default;

std::shared_ptr<TlsServerContext> TlsServerContext::FromFiles(
    const std::string& chain_pem_path, const std::string& key_pem_path,
    Status* out_status) {
  UniqueSslCtx ctx;
  *out_status = NewCtx(TLS_server_method(), &ctx);
  if (!out_status->ok()) return nullptr;
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), chain_pem_path.c_str()) !=
      1) {
    *out_status = ConfigError("cannot load certificate " + chain_pem_path);
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_pem_path.c_str(),
                                  SSL_FILETYPE_PEM) != 1) {
    *out_status = IsKeyMismatch(ERR_peek_error())
                      ? KeyMismatch(key_pem_path, chain_pem_path)
                      : ConfigError("cannot load private key " + key_pem_path);
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    *out_status = KeyMismatch(key_pem_path, chain_pem_path);
    return nullptr;
  }
  *out_status = ConfigureServer(ctx.get());
  if (!out_status->ok()) return nullptr;
  return std::make_shared<TlsServerContext>(PrivateTag(), ctx.release());
}

std::shared_ptr<TlsServerContext> TlsServerContext::FromMemory(
    X509* leaf, std::span<X509* const> chain, EVP_PKEY* key,
    Status* out_status) {
  if (leaf == nullptr || key == nullptr) {
    *out_status = EngineStatus(Error::kInvalidArgument,
                               "TLS server context: no certificate or key");
    return nullptr;
  }
  UniqueSslCtx ctx;
  *out_status = NewCtx(TLS_server_method(), &ctx);
  if (!out_status->ok()) return nullptr;
  if (SSL_CTX_use_certificate(ctx.get(), leaf) != 1) {
    *out_status = ConfigError("cannot use certificate");
    return nullptr;
  }
  for (X509* cert : chain) {
    if (cert == nullptr || SSL_CTX_add1_chain_cert(ctx.get(), cert) != 1) {
      *out_status = ConfigError("cannot add chain certificate");
      return nullptr;
    }
  }
  if (SSL_CTX_use_PrivateKey(ctx.get(), key) != 1) {
    *out_status = IsKeyMismatch(ERR_peek_error())
                      ? KeyMismatch("", "")
                      : ConfigError("cannot use private key");
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    *out_status = KeyMismatch("", "");
    return nullptr;
  }
  *out_status = ConfigureServer(ctx.get());
  if (!out_status->ok()) return nullptr;
  return std::make_shared<TlsServerContext>(PrivateTag(), ctx.release());
}

// --- TlsClientContext -------------------------------------------------------

namespace {

// NewClientCtx makes a client context; |trust| installs the trust anchors.
template <typename TrustFn>
Status NewClientCtx(TrustFn trust, UniqueSslCtx* out_ctx) {
  UniqueSslCtx ctx;
  Status st = NewCtx(TLS_client_method(), &ctx);
  if (!st.ok()) return st;
  st = trust(ctx.get());
  if (!st.ok()) return st;
  // RFC 8446 §4.4.2.4: abort the handshake when the chain does not verify.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  // Tickets go to our own cache (per "host:port"), not OpenSSL's, which
  // keys by session ID and would not find them per server.
  SSL_CTX_set_session_cache_mode(
      ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx.get(), OnNewSession);
  *out_ctx = std::move(ctx);
  return Status::Ok();
}

}  // namespace

TlsClientContext::TlsClientContext(PrivateTag, SSL_CTX* ctx)
    : ctx_(ctx), cache_(std::make_shared<internal::TlsSessionCache>()) {}
TlsClientContext::~TlsClientContext() = default;

std::shared_ptr<TlsClientContext> TlsClientContext::FromCaFile(
    const std::string& ca_pem_path, Status* out_status) {
  UniqueSslCtx ctx;
  *out_status = NewClientCtx(
      [&](SSL_CTX* c) {
        if (SSL_CTX_load_verify_file(c, ca_pem_path.c_str()) != 1) {
          return ConfigError("cannot load CA certificates " + ca_pem_path);
        }
        return Status::Ok();
      },
      &ctx);
  if (!out_status->ok()) return nullptr;
  return std::make_shared<TlsClientContext>(PrivateTag(), ctx.release());
}

std::shared_ptr<TlsClientContext> TlsClientContext::FromStore(
    X509_STORE* store, Status* out_status) {
  UniqueSslCtx ctx;
  *out_status = NewClientCtx(
      [&](SSL_CTX* c) {
        if (store == nullptr) {
          return EngineStatus(Error::kInvalidArgument,
                              "TLS client context: no trust store");
        }
        SSL_CTX_set1_cert_store(c, store);
        return Status::Ok();
      },
      &ctx);
  if (!out_status->ok()) return nullptr;
  return std::make_shared<TlsClientContext>(PrivateTag(), ctx.release());
}

std::shared_ptr<TlsClientContext> TlsClientContext::WithSystemRoots(
    Status* out_status) {
  UniqueSslCtx ctx;
  *out_status = NewClientCtx(
      [](SSL_CTX* c) {
        if (SSL_CTX_set_default_verify_paths(c) != 1) {
          return ConfigError("cannot load the system's CA certificates");
        }
        return Status::Ok();
      },
      &ctx);
  if (!out_status->ok()) return nullptr;
  return std::make_shared<TlsClientContext>(PrivateTag(), ctx.release());
}

size_t TlsClientContext::cached_tickets(std::string_view host_port) const {
  return cache_->Count(host_port);
}

void TlsClientContext::ClearSessionCache() { cache_->Clear(); }

// --- TlsStream --------------------------------------------------------------

TlsStream::TlsStream(PrivateTag, UniqueFd fd, std::string peer)
    : fd_(std::move(fd)),
      peer_(std::move(peer)),
      bio_(std::make_unique<internal::TlsSocketBio>()) {
  bio_->fd = fd_.get();
}

TlsStream::~TlsStream() { Close(); }  // then ssl_ is freed: no I/O

Status TlsStream::Init(SSL_CTX* ctx, bool is_server) {
  ERR_clear_error();
  if (!SetNonBlocking(fd_.get())) {
    return Status::IoError("TLS with " + peer_ + ": O_NONBLOCK", errno);
  }
  // Lower handshake latency; not an error on sockets without TCP.
  const int one = 1;
  (void)::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  const BIO_METHOD* method = SocketBioMethod();
  ssl_.reset(SSL_new(ctx));
  BIO* bio = method != nullptr ? BIO_new(method) : nullptr;
  if (!ssl_ || bio == nullptr) {
    BIO_free(bio);
    return EngineStatus(Error::kInternal, "cannot create TLS connection: " +
                                              OpenSslReason("out of memory"));
  }
  BIO_set_data(bio, bio_.get());
  SSL_set_bio(ssl_.get(), bio, bio);  // one reference, used for both directions
  if (is_server) {
    SSL_set_accept_state(ssl_.get());
  } else {
    SSL_set_connect_state(ssl_.get());
  }
  return Status::Ok();
}

std::unique_ptr<TlsStream> TlsStream::Accept(UniqueFd fd,
                                             const TlsServerContext& context,
                                             int timeout_ms,
                                             Status* out_status) {
  std::string peer = NumericPeer(fd.get());
  auto stream =
      std::make_unique<TlsStream>(PrivateTag(), std::move(fd), std::move(peer));
  *out_status = stream->Init(context.ssl_ctx(), /*is_server=*/true);
  if (out_status->ok()) *out_status = stream->RunHandshake(timeout_ms);
  if (!out_status->ok()) return nullptr;
  return stream;
}

std::unique_ptr<TlsStream> TlsStream::Connect(UniqueFd fd,
                                              const TlsClientContext& context,
                                              const std::string& host,
                                              int timeout_ms,
                                              Status* out_status) {
  if (host.empty()) {
    *out_status = EngineStatus(
        Error::kInvalidArgument,
        "TLS connect: a host name is required to verify the server");
    return nullptr;
  }
  std::string peer = NumericPeer(fd.get());
  const uint16_t port = PeerPort(fd.get());
  auto stream =
      std::make_unique<TlsStream>(PrivateTag(), std::move(fd), std::move(peer));
  stream->host_ = host;
  *out_status = stream->Init(context.ssl_ctx(), /*is_server=*/false);
  if (!out_status->ok()) return nullptr;
  SSL* ssl = stream->ssl_.get();

  // Server identity (RFC 6125 via OpenSSL's X509_check_host/_ip): a name
  // is matched against DNS SANs, a literal against IP SANs.
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const bool literal = IsIpLiteral(host);
  const bool named =
      literal ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1
              : SSL_set1_host(ssl, host.c_str()) == 1;
  // RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in
  // HostName", so SNI carries names only.
  const bool sni = literal || SSL_set_tlsext_host_name(ssl, host.c_str()) == 1;
  if (!named || !sni) {
    *out_status = EngineStatus(Error::kInvalidArgument,
                               "TLS connect: bad host name \"" + host + "\": " +
                                   OpenSslReason("rejected by OpenSSL"));
    return nullptr;
  }

  // Session cache: the slot lets OnNewSession file new tickets under
  // "host:port"; a cached ticket is offered once.
  stream->session_slot_ = std::make_unique<internal::TlsSessionSlot>();
  stream->session_slot_->cache = context.cache_;
  stream->session_slot_->key = inband::FormatHostPort(host, port);
  SSL_set_app_data(ssl, stream->session_slot_.get());
  if (UniqueSslSession cached =
          context.cache_->Take(stream->session_slot_->key);
      cached != nullptr) {
    if (SSL_set_session(ssl, cached.get()) != 1) ERR_clear_error();
  }

  *out_status = stream->RunHandshake(timeout_ms);
  if (!out_status->ok()) return nullptr;
  return stream;
}

Status TlsStream::RunHandshake(int timeout_ms) {
  const uint64_t deadline = DeadlineAfter(timeout_ms);
  for (;;) {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_.get());
    if (r == 1) return Status::Ok();
    const int err = SSL_get_error(ssl_.get(), r);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      return Fail(ErrorFromSsl(err, Phase::kHandshake));
    }
    bool readable = false;
    Status st = WaitFor(err, deadline, Phase::kHandshake, false, &readable);
    if (st.kind == Status::Kind::kTimeout) {
      st.message = "TLS handshake with " + peer_ + " timed out after " +
                   std::to_string(timeout_ms) + " ms";
    }
    if (!st.ok()) return Fail(std::move(st));
  }
}

Status TlsStream::WaitFor(int ssl_error, uint64_t deadline_ms, Phase phase,
                          bool also_read, bool* out_readable) {
  short events = ssl_error == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
  if (also_read) events |= POLLIN;
  short revents = 0;
  int err = 0;
  switch (WaitFd(fd_.get(), events, deadline_ms, &revents, &err)) {
    case WaitResult::kReady:
      *out_readable = (revents & (POLLIN | POLLHUP | POLLERR)) != 0;
      return Status::Ok();
    case WaitResult::kTimeout: {
      const char* what = "TLS I/O";
      switch (phase) {
        case Phase::kHandshake:
          what = "TLS handshake";
          break;
        case Phase::kRead:
          what = "read";
          break;
        case Phase::kWrite:
          what = "write";
          break;
        case Phase::kShutdown:
          what = "TLS shutdown";
          break;
      }
      return Status::TimeoutError(std::string(what) + " with " + peer_ +
                                  " timed out after " +
                                  std::to_string(io_timeout_ms_) + " ms");
    }
    case WaitResult::kError:
      return Status::IoError("poll " + peer_, err);
  }
  return Status::IoError("poll " + peer_, EINVAL);
}

Status TlsStream::ErrorFromSsl(int ssl_error, Phase phase) const {
  const unsigned long e = DrainErrors();
  const bool handshake = phase == Phase::kHandshake;

  // A system call failed: report errno, as the in-band carrier does.
  if (bio_->last_errno != 0) {
    const char* what = bio_->errno_from_send ? "send to " : "recv from ";
    return Status::IoError(
        (handshake ? "TLS handshake: " : "") + std::string(what) + peer_,
        bio_->last_errno);
  }

  // The TCP stream ended without close_notify (OpenSSL 3 reports
  // SSL_R_UNEXPECTED_EOF_WHILE_READING; older ones SSL_ERROR_SYSCALL).
  const bool unexpected_eof =
      bio_->eof && (ssl_error == SSL_ERROR_SYSCALL ||
                    (ERR_GET_LIB(e) == ERR_LIB_SSL &&
                     ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING));
  if (unexpected_eof && handshake) {
    return Status::EofError("TLS handshake failed: " + peer_ +
                            " closed the connection during the handshake");
  }
  if (unexpected_eof) {
    // RFC 8446 §6.1: without close_notify the data may have been cut short.
    return EngineStatus(
        Error::kTruncated,
        "stream truncated: the peer's TLS stream ended without close_notify");
  }

  // The peer refused with a fatal alert.
  if (const char* alert = PeerAlert(e); alert != nullptr) {
    return EngineStatus(
        Error::kProtocolViolation,
        std::string(handshake ? "TLS handshake failed" : "TLS error") +
            ": the peer sent alert \"" + alert + "\" (" + ReasonText(e) + ")");
  }

  // Our own certificate check failed (client): say which check.
  if (handshake && !host_.empty()) {
    const long vr = SSL_get_verify_result(ssl_.get());
    if (vr != X509_V_OK) {
      std::string detail;
      switch (vr) {
        case X509_V_ERR_HOSTNAME_MISMATCH:
          detail = "certificate does not match host " + host_;
          break;
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
          detail = "certificate does not match IP address " + host_;
          break;
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
          detail = std::string(X509_verify_cert_error_string(vr)) +
                   ": the server's CA is not a trust anchor";
          break;
        default:
          detail = X509_verify_cert_error_string(vr);
          break;
      }
      return EngineStatus(
          Error::kProtocolViolation,
          "TLS handshake failed: certificate verify failed (" + detail + ")");
    }
  }

  if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
      ERR_GET_REASON(e) == SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC) {
    return EngineStatus(Error::kAeadFailure,
                        "integrity failure: a TLS record failed "
                        "authentication (" +
                            ReasonText(e) + ")");
  }
  if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
      ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE) {
    return EngineStatus(Error::kInternal, "TLS error: " + ReasonText(e));
  }
  std::string reason;
  if (e != 0) {
    reason = ReasonText(e);
  } else if (bio_->eof) {
    reason = "the peer closed the connection";
  } else {
    reason = "SSL error " + std::to_string(ssl_error);
  }
  return EngineStatus(
      Error::kProtocolViolation,
      (handshake ? "TLS handshake failed: " : "TLS error: ") + reason);
}

Status TlsStream::Fail(Status s) {
  status_ = s;
  state_ = State::kFailed;
  CloseSocket();
  return s;
}

void TlsStream::CloseSocket() {
  bio_->fd = -1;  // any stray BIO call fails with EBADF, never a reused fd
  fd_.Reset();
}

void TlsStream::Close() {
  // Graceful close after Shutdown (as inband::Connection::Close): drain the
  // peer's remaining bytes, bounded, so close() sends no reset that could
  // destroy our close_notify and last reply at the peer.
  if (state_ == State::kWriteShut && fd_) {
    inband::DrainBeforeClose(fd_.get(), read_eof_);
  }
  if (state_ == State::kOpen || state_ == State::kWriteShut) {
    state_ = State::kClosed;
  }
  CloseSocket();
}

Status TlsStream::StateError() const {
  switch (state_) {
    case State::kOpen:
    case State::kWriteShut:
      return Status::Ok();
    case State::kFailed:
      return status_;
    case State::kClosed:
      return EngineStatus(Error::kClosed, "the TLS stream is closed");
  }
  return EngineStatus(Error::kInternal, "bad TLS stream state");
}

ssize_t TlsStream::Read(std::span<uint8_t> out, Status* out_status) {
  Status scratch;
  Status& st = out_status != nullptr ? *out_status : scratch;
  st = StateError();
  if (!st.ok()) return -1;
  if (pending_offset_ < pending_.size()) {
    const size_t n = std::min(out.size(), pending_.size() - pending_offset_);
    std::copy_n(pending_.begin() + static_cast<ptrdiff_t>(pending_offset_), n,
                out.begin());
    pending_offset_ += n;
    if (pending_offset_ == pending_.size()) {
      pending_.clear();
      pending_offset_ = 0;
    }
    return static_cast<ssize_t>(n);
  }
  if (out.empty() || read_eof_) return 0;

  const uint64_t deadline = DeadlineAfter(io_timeout_ms_);
  const int len = static_cast<int>(std::min<size_t>(out.size(), INT_MAX));
  for (;;) {
    ERR_clear_error();
    const int r = SSL_read(ssl_.get(), out.data(), len);
    if (r > 0) return r;
    const int err = SSL_get_error(ssl_.get(), r);
    if (err == SSL_ERROR_ZERO_RETURN) {  // RFC 8446 §6.1 close_notify
      read_eof_ = true;
      return 0;
    }
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      st = Fail(ErrorFromSsl(err, Phase::kRead));
      return -1;
    }
    bool readable = false;
    st = WaitFor(err, deadline, Phase::kRead, false, &readable);
    if (st.kind == Status::Kind::kTimeout) return -1;  // not sticky
    if (!st.ok()) {
      st = Fail(std::move(st));
      return -1;
    }
  }
}

Status TlsStream::ReadAhead() {
  uint8_t buf[16 << 10];
  while (!read_eof_ && pending_.size() < kMaxBufferedPlaintext) {
    ERR_clear_error();
    const int r = SSL_read(ssl_.get(), buf, sizeof buf);
    if (r > 0) {
      pending_.insert(pending_.end(), buf, buf + r);
      continue;
    }
    const int err = SSL_get_error(ssl_.get(), r);
    if (err == SSL_ERROR_ZERO_RETURN) {
      read_eof_ = true;
      break;
    }
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
    return ErrorFromSsl(err, Phase::kRead);
  }
  OPENSSL_cleanse(buf, sizeof buf);
  return Status::Ok();
}

Status TlsStream::WriteAll(std::span<const uint8_t> data) {
  Status st = StateError();
  if (!st.ok()) return st;
  if (state_ == State::kWriteShut) {
    return EngineStatus(Error::kClosed,
                        "write after Shutdown: the TLS stream's write side "
                        "is closed");
  }
  size_t off = 0;
  uint64_t deadline = DeadlineAfter(io_timeout_ms_);
  while (off < data.size()) {
    ERR_clear_error();
    size_t written = 0;
    // Retries after WANT_WRITE pass the same bytes again, as OpenSSL needs.
    const int r = SSL_write_ex(ssl_.get(), data.data() + off, data.size() - off,
                               &written);
    if (r == 1) {
      off += written;
      deadline = DeadlineAfter(io_timeout_ms_);
      continue;
    }
    const int err = SSL_get_error(ssl_.get(), r);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      return Fail(ErrorFromSsl(err, Phase::kWrite));
    }
    // While the socket is full, read what the peer sends (it may be
    // blocked writing to us) as long as there is room to keep it.
    const bool also_read = err == SSL_ERROR_WANT_WRITE && !read_eof_ &&
                           pending_.size() < kMaxBufferedPlaintext;
    bool readable = false;
    st = WaitFor(err, deadline, Phase::kWrite, also_read, &readable);
    if (!st.ok()) return Fail(std::move(st));
    if (also_read && readable) {
      st = ReadAhead();
      if (!st.ok()) return Fail(std::move(st));
      deadline = DeadlineAfter(io_timeout_ms_);
    }
  }
  return Status::Ok();
}

Status TlsStream::Shutdown() {
  Status st = StateError();
  if (!st.ok()) return st;
  if (state_ == State::kWriteShut) return Status::Ok();
  const uint64_t deadline = DeadlineAfter(io_timeout_ms_);
  for (;;) {
    ERR_clear_error();
    // RFC 8446 §6.1: close_notify closes our write direction only; 0 means
    // sent (the peer's has not arrived), 1 means both were exchanged.
    const int r = SSL_shutdown(ssl_.get());
    if (r >= 0) break;
    const int err = SSL_get_error(ssl_.get(), r);
    // The peer sent its close_notify and then closed: our close_notify
    // cannot be delivered, but the read side is complete and authentic,
    // so this ends the write side without failing the stream.
    if (err == SSL_ERROR_SYSCALL && read_eof_ && bio_->errno_from_send &&
        PeerGone(bio_->last_errno)) {
      state_ = State::kWriteShut;
      return Status::Ok();
    }
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      return Fail(ErrorFromSsl(err, Phase::kShutdown));
    }
    bool readable = false;
    st = WaitFor(err, deadline, Phase::kShutdown, false, &readable);
    if (!st.ok()) return Fail(std::move(st));
  }
  // close_notify is with the kernel; a peer that already closed ends our
  // write side, nothing more (as inband::Connection::Shutdown).
  if (::shutdown(fd_.get(), SHUT_WR) != 0 && !PeerGone(errno)) {
    return Fail(Status::IoError("shutdown to " + peer_, errno));
  }
  state_ = State::kWriteShut;
  return Status::Ok();
}

bool TlsStream::has_buffered() const {
  return pending_offset_ < pending_.size() ||
         SSL_has_pending(ssl_.get()) == 1 || read_eof_;
}

bool TlsStream::resumed() const { return SSL_session_reused(ssl_.get()) == 1; }

std::string TlsStream::cipher_name() const {
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl_.get());
  return c != nullptr ? SSL_CIPHER_get_name(c) : "";
}

std::string TlsStream::group_name() const {
  const int nid = static_cast<int>(SSL_get_negotiated_group(ssl_.get()));
  if (nid == 0) return "";
  const char* name = SSL_group_to_name(ssl_.get(), nid);
  return name != nullptr ? name : "";
}

std::string TlsStream::peer_certificate_subject() const {
  const X509* cert = SSL_get0_peer_certificate(ssl_.get());
  if (cert == nullptr) return "";
  UniqueBio mem(BIO_new(BIO_s_mem()));
  if (!mem || X509_NAME_print_ex(mem.get(), X509_get_subject_name(cert), 0,
                                 XN_FLAG_RFC2253) < 0) {
    ERR_clear_error();
    return "";
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(mem.get(), &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : "";
}

Status TlsStream::Exporter(std::vector<uint8_t>* out_exporter) const {
  // RFC 9266 §2: label "EXPORTER-Channel-Binding" (no NUL), context value
  // a zero-length string, 32 bytes. A zero-length context is a context, so
  // use_context = 1 (for TLS <= 1.2, RFC 5705 §4 distinguishes it from no
  // context; in TLS 1.3, RFC 8446 §7.5, both give the same value).
  static constexpr unsigned char kEmptyContext[1] = {0};
  std::vector<uint8_t> out(kTlsExporterLen);
  ERR_clear_error();
  if (SSL_export_keying_material(
          ssl_.get(), out.data(), out.size(), kTlsExporterLabel.data(),
          kTlsExporterLabel.size(), kEmptyContext, 0, /*use_context=*/1) != 1) {
    return EngineStatus(Error::kWrongState,
                        "TLS exporter unavailable: " +
                            OpenSslReason("the handshake is not complete"));
  }
  *out_exporter = std::move(out);
  return Status::Ok();
}

Status TlsStream::Binding(auth::ChannelBinding* out_binding) const {
  std::vector<uint8_t> exporter;
  Status st = Exporter(&exporter);
  if (!st.ok()) return st;
  *out_binding = auth::ChannelBinding::TlsExporter(exporter);
  return Status::Ok();
}

// --- Sniffing ---------------------------------------------------------------

std::string_view ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kTcpcrypt:
      return "tcpcrypt";
    case Protocol::kTls:
      return "tls";
    case Protocol::kOther:
      return "other";
    case Protocol::kClosed:
      return "closed";
    case Protocol::kTimeout:
      return "timeout";
  }
  return "unknown";
}

Protocol SniffFirstByte(int fd, int timeout_ms, uint8_t* out_byte) {
  if (fd < 0) return Protocol::kClosed;  // poll() would ignore it
  const uint64_t deadline =
      timeout_ms > 0 ? NowMs() + static_cast<uint64_t>(timeout_ms) : 0;
  for (;;) {
    int wait = -1;
    if (timeout_ms == 0) {
      wait = 0;
    } else if (deadline != 0) {
      const uint64_t now = NowMs();
      wait =
          now >= deadline
              ? 0
              : static_cast<int>(std::min<uint64_t>(deadline - now, 1 << 30));
    }
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, wait);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Protocol::kClosed;
    }
    if (r == 0) {
      if (wait == -1) continue;
      return Protocol::kTimeout;
    }
    if ((p.revents & POLLNVAL) != 0) return Protocol::kClosed;
    uint8_t b = 0;
    const ssize_t n = ::recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 1) {
      if (out_byte != nullptr) *out_byte = b;
      switch (b) {
        case kSniffTcpcryptByte:
          return Protocol::kTcpcrypt;
        case kSniffTlsByte:
          return Protocol::kTls;
        default:
          return Protocol::kOther;
      }
    }
    if (n == 0) return Protocol::kClosed;
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
      if (wait == 0) return Protocol::kTimeout;
      continue;
    }
    return Protocol::kClosed;
  }
}

}  // namespace tcpcrypt::sdk
