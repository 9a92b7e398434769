// tls_stream_test.cc: the TLS 1.3 fallback transport and the first-byte
// sniffer, over real loopback sockets, with certificates from the project's
// test PKI (auth/x509_batch/test_pki.h).
//
// Every blocking call is bounded (accept, handshake and I/O time-outs), so a
// broken stream fails a test instead of hanging the suite.
#include "sdk/tls_stream.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "auth/x509_batch/test_pki.h"
#include "core_transport/engine/engine.h"
#include "core_transport/inband/connection.h"

namespace tcpcrypt::sdk {
namespace {

namespace x509 = tcpcrypt::auth::x509;
using inband::Status;
using inband::UniqueFd;

constexpr int kTestTimeoutMs = 10000;
constexpr char kHost[] = "localhost";

std::vector<uint8_t> Bytes(std::string_view s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

std::vector<uint8_t> Pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x);
  }
  return v;
}

// --- Sockets ----------------------------------------------------------------

// TestListener is a raw TCP listener on 127.0.0.1 with a free port.
class TestListener {
 public:
  // |buffer| > 0 shrinks SO_SNDBUF/SO_RCVBUF (inherited by accepted sockets).
  explicit TestListener(int buffer = 0) {
    fd_.Reset(::socket(AF_INET, SOCK_STREAM, 0));
    const int one = 1;
    EXPECT_EQ(
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    if (buffer > 0) ShrinkBuffers(fd_.get(), buffer);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_.get(), 16), 0);
    socklen_t len = sizeof a;
    EXPECT_EQ(::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len),
              0);
    port_ = ntohs(a.sin_port);
  }

  static void ShrinkBuffers(int fd, int size) {
    EXPECT_EQ(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size), 0);
    EXPECT_EQ(::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size), 0);
  }

  uint16_t port() const { return port_; }
  std::string host_port(std::string_view host) const {
    return inband::FormatHostPort(host, port_);
  }

  // AcceptFd waits up to |timeout_ms| for a connection.
  UniqueFd AcceptFd(int timeout_ms = kTestTimeoutMs) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return UniqueFd();
    return UniqueFd(::accept(fd_.get(), nullptr, nullptr));
  }

 private:
  UniqueFd fd_;
  uint16_t port_ = 0;
};

// ConnectFd makes a blocking TCP connection to 127.0.0.1:|port|.
UniqueFd ConnectFd(uint16_t port, int buffer = 0) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  if (buffer > 0) TestListener::ShrinkBuffers(fd.get(), buffer);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0)
      << std::strerror(errno);
  return fd;
}

bool SendAllRaw(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// --- PKI --------------------------------------------------------------------

// TempDir is a fresh directory removed with its contents at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "tls_stream_test.XXXXXX")
            .string();
    path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(std::string_view name) const {
    return path_ + "/" + std::string(name);
  }

 private:
  std::string path_;
};

// Pki: a root CA, an intermediate, a server leaf for "localhost" and
// 127.0.0.1 issued by the intermediate, and an unrelated CA. Files:
//   ca.pem        the root (the client's trust anchor)
//   chain.pem     leaf then intermediate (the server's chain)
//   server.key    the leaf's key
//   other-ca.pem  a root that issued nothing here
struct Pki {
  TempDir dir;
  x509::KeyAndCert root;
  x509::KeyAndCert intermediate;
  x509::KeyAndCert leaf;
  x509::KeyAndCert other_root;

  std::string ca() const { return dir.File("ca.pem"); }
  std::string chain() const { return dir.File("chain.pem"); }
  std::string key() const { return dir.File("server.key"); }
  std::string other_ca() const { return dir.File("other-ca.pem"); }
};

std::unique_ptr<Pki> MakePki() {
  auto p = std::make_unique<Pki>();
  {
    std::string err;
    x509::CertOptions ca;
    ca.common_name = "tls_stream_test root";
    auto root = x509::CreateRootCa(ca, &err);
    EXPECT_TRUE(root) << err;
    x509::CertOptions inter;
    inter.common_name = "tls_stream_test intermediate";
    inter.is_ca = true;
    auto intermediate = x509::IssueCertificate(*root, inter, &err);
    EXPECT_TRUE(intermediate) << err;
    x509::CertOptions leaf;
    leaf.common_name = kHost;
    leaf.dns_names = {kHost};
    leaf.ip_addresses = {"127.0.0.1"};
    leaf.key_type = x509::PkiKeyType::kEcdsaP256;
    auto server = x509::IssueCertificate(*intermediate, leaf, &err);
    EXPECT_TRUE(server) << err;
    ca.common_name = "tls_stream_test other root";
    auto other = x509::CreateRootCa(ca, &err);
    EXPECT_TRUE(other) << err;
    p->root = *root;
    p->intermediate = *intermediate;
    p->leaf = *server;
    p->other_root = *other;

    EXPECT_TRUE(x509::WriteFile(p->ca(), x509::CertificatePem(root->cert.get()),
                                0644, &err))
        << err;
    EXPECT_TRUE(
        x509::WriteFile(p->chain(),
                        x509::CertificatePem(server->cert.get()) +
                            x509::CertificatePem(intermediate->cert.get()),
                        0644, &err))
        << err;
    EXPECT_TRUE(x509::WriteFile(
        p->key(), x509::PrivateKeyPem(server->key.get()).span(), 0600, &err))
        << err;
    EXPECT_TRUE(x509::WriteFile(
        p->other_ca(), x509::CertificatePem(other->cert.get()), 0644, &err))
        << err;
  }
  return p;
}

const Pki& TestPki() {
  static const std::unique_ptr<Pki> pki = MakePki();
  return *pki;
}

std::shared_ptr<TlsServerContext> ServerCtx() {
  Status st;
  auto ctx =
      TlsServerContext::FromFiles(TestPki().chain(), TestPki().key(), &st);
  EXPECT_TRUE(ctx) << st.message;
  return ctx;
}

std::shared_ptr<TlsClientContext> ClientCtx(const std::string& ca = "") {
  Status st;
  auto ctx =
      TlsClientContext::FromCaFile(ca.empty() ? TestPki().ca() : ca, &st);
  EXPECT_TRUE(ctx) << st.message;
  return ctx;
}

// --- Handshakes -------------------------------------------------------------

struct Pair {
  std::unique_ptr<TlsStream> client;
  std::unique_ptr<TlsStream> server;
  Status client_status;
  Status server_status;
};

// Handshake connects a client to |listener| and runs both ends at once.
Pair Handshake(TestListener& listener, const TlsServerContext& server_ctx,
               const TlsClientContext& client_ctx,
               const std::string& host = kHost, int buffer = 0) {
  Pair p;
  std::thread server([&] {
    UniqueFd fd = listener.AcceptFd();
    if (!fd) {
      p.server_status = Status::TimeoutError("test: accept timed out");
      return;
    }
    p.server = TlsStream::Accept(std::move(fd), server_ctx, kTestTimeoutMs,
                                 &p.server_status);
  });
  p.client = TlsStream::Connect(ConnectFd(listener.port(), buffer), client_ctx,
                                host, kTestTimeoutMs, &p.client_status);
  server.join();
  if (p.client) p.client->set_io_timeout_ms(kTestTimeoutMs);
  if (p.server) p.server->set_io_timeout_ms(kTestTimeoutMs);
  return p;
}

// ReadExact reads exactly |n| bytes unless EOF or an error comes first.
std::vector<uint8_t> ReadExact(TlsStream& s, size_t n, Status* st) {
  std::vector<uint8_t> out(n);
  size_t got = 0;
  *st = Status::Ok();
  while (got < n) {
    const ssize_t r = s.Read(std::span<uint8_t>(out).subspan(got), st);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

std::vector<uint8_t> Exporter(const TlsStream& s) {
  std::vector<uint8_t> out;
  const Status st = s.Exporter(&out);
  EXPECT_TRUE(st.ok()) << st.message;
  return out;
}

// --- Handshake and data -----------------------------------------------------

TEST(TlsStreamTest, LoopbackHandshakeDataBothWaysAndCleanEof) {
  TestListener listener;
  auto server_ctx = ServerCtx();
  auto client_ctx = ClientCtx();
  Pair p = Handshake(listener, *server_ctx, *client_ctx);
  ASSERT_TRUE(p.client) << p.client_status.message;
  ASSERT_TRUE(p.server) << p.server_status.message;
  EXPECT_TRUE(p.client_status.ok());

  EXPECT_FALSE(p.client->resumed());
  EXPECT_FALSE(p.server->resumed());
  EXPECT_EQ(p.client->cipher_name(), "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(p.server->cipher_name(), "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(p.client->group_name(), "x25519");
  EXPECT_EQ(p.client->peer_certificate_subject(), "CN=localhost");
  EXPECT_EQ(p.server->peer_certificate_subject(), "");  // no client certs
  EXPECT_GE(p.client->fd(), 0);
  EXPECT_EQ(p.client->peer(), listener.host_port("127.0.0.1"));

  Status st;
  ASSERT_TRUE(p.client->WriteAll(Bytes("hello")).ok());
  EXPECT_EQ(ReadExact(*p.server, 5, &st), Bytes("hello")) << st.message;
  ASSERT_TRUE(p.server->WriteAll(Bytes("world!")).ok());
  EXPECT_EQ(ReadExact(*p.client, 6, &st), Bytes("world!")) << st.message;

  // The client closes its direction; the server sees a clean EOF and may
  // still write (half-close, RFC 8446 §6.1).
  ASSERT_TRUE(p.client->Shutdown().ok());
  EXPECT_TRUE(p.client->Shutdown().ok());  // idempotent
  std::vector<uint8_t> buf(16);
  EXPECT_EQ(p.server->Read(buf, &st), 0) << st.message;
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(p.server->Read(buf, &st), 0);  // EOF stays EOF
  ASSERT_TRUE(p.server->WriteAll(Bytes("late")).ok());
  ASSERT_TRUE(p.server->Shutdown().ok());
  EXPECT_EQ(ReadExact(*p.client, 4, &st), Bytes("late"));
  EXPECT_EQ(p.client->Read(buf, &st), 0) << st.message;

  // After Shutdown writes are refused; after Close everything is.
  const Status w = p.client->WriteAll(Bytes("x"));
  EXPECT_EQ(w.kind, Status::Kind::kEngine);
  EXPECT_EQ(w.engine_error, Error::kClosed);
  p.client->Close();
  p.client->Close();  // idempotent
  EXPECT_EQ(p.client->fd(), -1);
  EXPECT_EQ(p.client->Read(buf, &st), -1);
  EXPECT_EQ(st.engine_error, Error::kClosed);
  EXPECT_EQ(Exporter(*p.client).size(), kTlsExporterLen);  // still available
}

TEST(TlsStreamTest, LargeTransfersBothWaysAtOnceDoNotDeadlock) {
  // Small socket buffers: without reading while it waits to write, each end
  // would block in WriteAll with the other's data unread.
  constexpr int kBuffer = 16 << 10;
  constexpr size_t kSize = 768 << 10;
  TestListener listener(kBuffer);
  auto server_ctx = ServerCtx();
  auto client_ctx = ClientCtx();
  Pair p = Handshake(listener, *server_ctx, *client_ctx, kHost, kBuffer);
  ASSERT_TRUE(p.client) << p.client_status.message;
  ASSERT_TRUE(p.server) << p.server_status.message;

  const auto up = Pattern(kSize, 1);
  const auto down = Pattern(kSize, 2);
  Status server_write, server_read;
  std::vector<uint8_t> server_got;
  std::thread server([&] {
    server_write = p.server->WriteAll(down);
    server_got = ReadExact(*p.server, kSize, &server_read);
  });
  const Status client_write = p.client->WriteAll(up);
  Status client_read;
  const auto client_got = ReadExact(*p.client, kSize, &client_read);
  server.join();
  EXPECT_TRUE(client_write.ok()) << client_write.message;
  EXPECT_TRUE(server_write.ok()) << server_write.message;
  EXPECT_TRUE(client_read.ok()) << client_read.message;
  EXPECT_TRUE(server_read.ok()) << server_read.message;
  EXPECT_TRUE(client_got == down);
  EXPECT_TRUE(server_got == up);
}

// --- Channel binding --------------------------------------------------------

TEST(TlsStreamTest, ExporterIsSharedAndUniquePerConnection) {
  TestListener listener;
  auto server_ctx = ServerCtx();
  auto client_ctx = ClientCtx();
  Pair a = Handshake(listener, *server_ctx, *client_ctx);
  Pair b = Handshake(listener, *server_ctx, *client_ctx);
  ASSERT_TRUE(a.client && a.server && b.client && b.server);

  const auto ca = Exporter(*a.client);
  EXPECT_EQ(ca.size(), kTlsExporterLen);
  EXPECT_EQ(ca, Exporter(*a.server));
  EXPECT_EQ(Exporter(*b.client), Exporter(*b.server));
  EXPECT_NE(ca, Exporter(*b.client));
  EXPECT_EQ(ca, Exporter(*a.client));  // stable

  auth::ChannelBinding binding;
  ASSERT_TRUE(a.server->Binding(&binding).ok());
  EXPECT_EQ(binding.kind, auth::ChannelBinding::Kind::kTlsExporter);
  EXPECT_EQ(binding.value, ca);
}

// The exporter recomputed from RFC 8446 §7.5 and RFC 9266 §2, from the
// EXPORTER_SECRET the key-log callback reveals: proves the label, the
// zero-length context and the length, independently of OpenSSL's exporter.

std::mutex g_keylog_mu;
std::string g_exporter_secret_hex;

void KeyLogCallback(const SSL* /*ssl*/, const char* line) {
  constexpr std::string_view kPrefix = "EXPORTER_SECRET ";
  const std::string_view l(line);
  if (l.substr(0, kPrefix.size()) != kPrefix) return;
  std::lock_guard<std::mutex> lock(g_keylog_mu);
  g_exporter_secret_hex = std::string(l.substr(l.rfind(' ') + 1));
}

std::vector<uint8_t> FromHex(std::string_view hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(
        std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// HkdfExpandLabel is RFC 8446 §7.1 HKDF-Expand-Label with SHA-256.
std::vector<uint8_t> HkdfExpandLabel(std::span<const uint8_t> secret,
                                     std::string_view label,
                                     std::span<const uint8_t> context,
                                     size_t length) {
  // struct { uint16 length; opaque label<7..255>; opaque context<0..255>; }
  const std::string full = "tls13 " + std::string(label);
  std::vector<uint8_t> info = {static_cast<uint8_t>(length >> 8),
                               static_cast<uint8_t>(length),
                               static_cast<uint8_t>(full.size())};
  info.insert(info.end(), full.begin(), full.end());
  info.push_back(static_cast<uint8_t>(context.size()));
  info.insert(info.end(), context.begin(), context.end());

  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                        const_cast<uint8_t*>(secret.data()),
                                        secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(),
                                        info.size()),
      OSSL_PARAM_construct_end()};
  std::vector<uint8_t> out(length);
  EXPECT_EQ(EVP_KDF_derive(kctx, out.data(), out.size(), params), 1);
  EVP_KDF_CTX_free(kctx);
  return out;
}

TEST(TlsStreamTest, ExporterMatchesRfc9266Definition) {
  auto server_ctx = ServerCtx();
  auto client_ctx = ClientCtx();
  SSL_CTX_set_keylog_callback(client_ctx->ssl_ctx(), KeyLogCallback);
  TestListener listener;
  Pair p = Handshake(listener, *server_ctx, *client_ctx);
  ASSERT_TRUE(p.client && p.server) << p.client_status.message;
  ASSERT_EQ(p.client->cipher_name(), "TLS_AES_128_GCM_SHA256");  // SHA-256
  std::vector<uint8_t> exporter_secret;
  {
    std::lock_guard<std::mutex> lock(g_keylog_mu);
    exporter_secret = FromHex(g_exporter_secret_hex);
  }
  ASSERT_EQ(exporter_secret.size(), 32u);

  // RFC 8446 §7.5:
  //   TLS-Exporter(label, context_value, key_length) =
  //     HKDF-Expand-Label(Derive-Secret(Secret, label, ""),
  //                       "exporter", Hash(context_value), key_length)
  // RFC 9266 §2: label "EXPORTER-Channel-Binding", context_value a
  // zero-length string, key_length 32.
  uint8_t empty_hash[32];
  ASSERT_EQ(EVP_Digest("", 0, empty_hash, nullptr, EVP_sha256(), nullptr), 1);
  const auto derived = HkdfExpandLabel(exporter_secret, kTlsExporterLabel,
                                       empty_hash, sizeof empty_hash);
  const auto expected =
      HkdfExpandLabel(derived, "exporter", empty_hash, kTlsExporterLen);
  EXPECT_EQ(Exporter(*p.client), expected);
  EXPECT_EQ(Exporter(*p.server), expected);
}

// --- Resumption -------------------------------------------------------------

// Exchange makes the client read (which caches the server's tickets), then
// closes both ends cleanly.
void ExchangeAndClose(Pair& p) {
  Status st;
  ASSERT_TRUE(p.server->WriteAll(Bytes("x")).ok());
  EXPECT_EQ(ReadExact(*p.client, 1, &st), Bytes("x")) << st.message;
  ASSERT_TRUE(p.client->Shutdown().ok());
  std::vector<uint8_t> buf(8);
  EXPECT_EQ(p.server->Read(buf, &st), 0) << st.message;
  ASSERT_TRUE(p.server->Shutdown().ok());
  EXPECT_EQ(p.client->Read(buf, &st), 0) << st.message;
}

TEST(TlsStreamTest, SecondConnectionResumes) {
  TestListener listener;
  auto server_ctx = ServerCtx();
  auto client_ctx = ClientCtx();
  const std::string key = listener.host_port(kHost);

  Pair first = Handshake(listener, *server_ctx, *client_ctx);
  ASSERT_TRUE(first.client && first.server) << first.client_status.message;
  EXPECT_FALSE(first.client->resumed());
  ExchangeAndClose(first);
  EXPECT_EQ(client_ctx->cached_tickets(key), kTlsTicketsPerHandshake);

  Pair second = Handshake(listener, *server_ctx, *client_ctx);
  ASSERT_TRUE(second.client && second.server) << second.client_status.message;
  EXPECT_TRUE(second.client->resumed());
  EXPECT_TRUE(second.server->resumed());
  // A ticket is used once (RFC 8446 §C.4).
  EXPECT_EQ(client_ctx->cached_tickets(key), kTlsTicketsPerHandshake - 1);
  EXPECT_EQ(second.client->peer_certificate_subject(), "CN=localhost");
  EXPECT_NE(Exporter(*first.client), Exporter(*second.client));
  EXPECT_EQ(Exporter(*second.client), Exporter(*second.server));
  ExchangeAndClose(second);

  // Tickets are filed per "host:port": another name for the same server
  // starts afresh.
  Pair other_name = Handshake(listener, *server_ctx, *client_ctx, "127.0.0.1");
  ASSERT_TRUE(other_name.client) << other_name.client_status.message;
  EXPECT_FALSE(other_name.client->resumed());

  // A server with other ticket keys refuses the ticket: full handshake.
  auto other_server = ServerCtx();
  Pair fresh = Handshake(listener, *other_server, *client_ctx);
  ASSERT_TRUE(fresh.client && fresh.server) << fresh.client_status.message;
  EXPECT_FALSE(fresh.client->resumed());
  EXPECT_FALSE(fresh.server->resumed());

  client_ctx->ClearSessionCache();
  EXPECT_EQ(client_ctx->cached_tickets(key), 0u);
}

TEST(TlsStreamTest, InMemoryContextsAndContextLifetime) {
  const Pki& pki = TestPki();
  Status st;
  X509* chain[] = {pki.intermediate.cert.get()};
  auto server_ctx = TlsServerContext::FromMemory(pki.leaf.cert.get(), chain,
                                                 pki.leaf.key.get(), &st);
  ASSERT_TRUE(server_ctx) << st.message;
  X509_STORE* store = X509_STORE_new();
  ASSERT_EQ(X509_STORE_add_cert(store, pki.root.cert.get()), 1);
  auto client_ctx = TlsClientContext::FromStore(store, &st);
  X509_STORE_free(store);  // the context holds its own reference
  ASSERT_TRUE(client_ctx) << st.message;

  TestListener listener;
  Pair p = Handshake(listener, *server_ctx, *client_ctx);
  ASSERT_TRUE(p.client) << p.client_status.message;
  ASSERT_TRUE(p.server) << p.server_status.message;
  // Streams outlive their contexts; the client still caches tickets.
  server_ctx.reset();
  client_ctx.reset();
  ExchangeAndClose(p);
}

// --- Refusals ---------------------------------------------------------------

TEST(TlsStreamTest, WrongHostNameRefused) {
  TestListener listener;
  auto server_ctx = ServerCtx();
  auto client_ctx = ClientCtx();
  Pair p = Handshake(listener, *server_ctx, *client_ctx, "example.com");
  EXPECT_FALSE(p.client);
  EXPECT_EQ(p.client_status.kind, Status::Kind::kEngine);
  EXPECT_EQ(p.client_status.message,
            "TLS handshake failed: certificate verify failed (certificate "
            "does not match host example.com)");
  EXPECT_FALSE(p.server);
  EXPECT_NE(p.server_status.message.find("the peer sent alert"),
            std::string::npos)
      << p.server_status.message;

  Pair ip = Handshake(listener, *server_ctx, *client_ctx, "127.0.0.2");
  EXPECT_FALSE(ip.client);
  EXPECT_NE(ip.client_status.message.find(
                "certificate does not match IP address 127.0.0.2"),
            std::string::npos)
      << ip.client_status.message;
}

TEST(TlsStreamTest, UntrustedCaRefused) {
  TestListener listener;
  auto server_ctx = ServerCtx();
  auto client_ctx = ClientCtx(TestPki().other_ca());
  Pair p = Handshake(listener, *server_ctx, *client_ctx);
  EXPECT_FALSE(p.client);
  EXPECT_EQ(p.client_status.kind, Status::Kind::kEngine);
  EXPECT_EQ(p.client_status.engine_error, Error::kProtocolViolation);
  EXPECT_NE(p.client_status.message.find(
                "TLS handshake failed: certificate verify failed (unable to "
                "get local issuer certificate: the server's CA is not a trust "
                "anchor)"),
            std::string::npos)
      << p.client_status.message;
  EXPECT_FALSE(p.server);
  EXPECT_NE(p.server_status.message.find("unknown CA"), std::string::npos)
      << p.server_status.message;
}

TEST(TlsStreamTest, ExpiredCertificateRefused) {
  const Pki& pki = TestPki();
  std::string err;
  x509::CertOptions o;
  o.common_name = kHost;
  o.dns_names = {kHost};
  const int64_t now = static_cast<int64_t>(::time(nullptr));
  o.not_before = now - 10 * 86400;
  o.not_after = now - 86400;
  auto leaf = x509::IssueCertificate(pki.intermediate, o, &err);
  ASSERT_TRUE(leaf) << err;
  Status st;
  X509* chain[] = {pki.intermediate.cert.get()};
  auto server_ctx = TlsServerContext::FromMemory(leaf->cert.get(), chain,
                                                 leaf->key.get(), &st);
  ASSERT_TRUE(server_ctx) << st.message;
  auto client_ctx = ClientCtx();
  TestListener listener;
  Pair p = Handshake(listener, *server_ctx, *client_ctx);
  EXPECT_FALSE(p.client);
  EXPECT_EQ(p.client_status.message,
            "TLS handshake failed: certificate verify failed (certificate has "
            "expired)");
}

TEST(TlsStreamTest, EmptyHostRefusedBeforeAnyIo) {
  TestListener listener;
  auto client_ctx = ClientCtx();
  Status st;
  auto s = TlsStream::Connect(ConnectFd(listener.port()), *client_ctx, "",
                              kTestTimeoutMs, &st);
  EXPECT_FALSE(s);
  EXPECT_EQ(st.engine_error, Error::kInvalidArgument);
  UniqueFd accepted = listener.AcceptFd();
  ASSERT_TRUE(accepted);
  uint8_t b = 0;
  // Nothing was sent and the socket was closed.
  EXPECT_EQ(SniffFirstByte(accepted.get(), kTestTimeoutMs, &b),
            Protocol::kClosed);
}

TEST(TlsStreamTest, ContextConfigurationErrorsNameTheFile) {
  const Pki& pki = TestPki();
  Status st;
  EXPECT_FALSE(
      TlsServerContext::FromFiles("/nonexistent/server.pem", pki.key(), &st));
  EXPECT_EQ(st.engine_error, Error::kInvalidArgument);
  EXPECT_EQ(
      st.message.rfind("cannot load certificate /nonexistent/server.pem: ", 0),
      0u)
      << st.message;
  EXPECT_NE(st.message.find(": No such file or directory"), std::string::npos)
      << st.message;

  EXPECT_FALSE(TlsServerContext::FromFiles(pki.chain(), pki.chain(), &st));
  EXPECT_EQ(st.message, "cannot load private key " + pki.chain() +
                            ": no unencrypted PEM private key found");

  // An encrypted key is refused at once (no passphrase prompt).
  const std::string encrypted_key = pki.dir.File("encrypted.key");
  {
    BIO* mem = BIO_new(BIO_s_mem());
    ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(mem, pki.leaf.key.get(),
                                            EVP_aes_256_cbc(), "secret", 6,
                                            nullptr, nullptr),
              1);
    char* data = nullptr;
    const long len = BIO_get_mem_data(mem, &data);
    std::string err;
    ASSERT_TRUE(x509::WriteFile(
        encrypted_key, std::string_view(data, static_cast<size_t>(len)), 0600,
        &err));
    BIO_free(mem);
  }
  EXPECT_FALSE(TlsServerContext::FromFiles(pki.chain(), encrypted_key, &st));
  EXPECT_EQ(st.message.rfind("cannot load private key " + encrypted_key, 0), 0u)
      << st.message;

  // A key that belongs to another certificate.
  const std::string wrong_key = pki.dir.File("wrong.key");
  std::string err;
  ASSERT_TRUE(x509::WriteFile(
      wrong_key, x509::PrivateKeyPem(pki.root.key.get()).span(), 0600, &err));
  EXPECT_FALSE(TlsServerContext::FromFiles(pki.chain(), wrong_key, &st));
  EXPECT_EQ(st.message, "private key " + wrong_key +
                            " does not match certificate " + pki.chain());

  EXPECT_FALSE(TlsClientContext::FromCaFile("/nonexistent/ca.pem", &st));
  EXPECT_EQ(
      st.message.rfind("cannot load CA certificates /nonexistent/ca.pem: ", 0),
      0u)
      << st.message;
}

TEST(TlsStreamTest, NonTlsClientFailsTheHandshake) {
  TestListener listener;
  auto server_ctx = ServerCtx();
  UniqueFd client = ConnectFd(listener.port());
  ASSERT_TRUE(SendAllRaw(client.get(), "GET / HTTP/1.0\r\n\r\n"));
  Status st;
  auto s =
      TlsStream::Accept(listener.AcceptFd(), *server_ctx, kTestTimeoutMs, &st);
  EXPECT_FALSE(s);
  EXPECT_EQ(st.kind, Status::Kind::kEngine);
  EXPECT_EQ(st.message.rfind("TLS handshake failed: ", 0), 0u) << st.message;
}

TEST(TlsStreamTest, PeerClosingDuringHandshakeIsEof) {
  TestListener listener;
  auto server_ctx = ServerCtx();
  ConnectFd(listener.port());  // connects and closes at once
  Status st;
  auto s =
      TlsStream::Accept(listener.AcceptFd(), *server_ctx, kTestTimeoutMs, &st);
  EXPECT_FALSE(s);
  EXPECT_EQ(st.kind, Status::Kind::kEof) << st.message;
}

TEST(TlsStreamTest, HandshakeTimesOut) {
  TestListener listener;
  auto server_ctx = ServerCtx();
  auto client_ctx = ClientCtx();

  // A silent client: the server gives up.
  UniqueFd silent = ConnectFd(listener.port());
  Status st;
  auto start = std::chrono::steady_clock::now();
  auto s = TlsStream::Accept(listener.AcceptFd(), *server_ctx, 200, &st);
  EXPECT_FALSE(s);
  EXPECT_EQ(st.kind, Status::Kind::kTimeout) << st.message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));

  // A silent server: the client gives up.
  auto c = TlsStream::Connect(ConnectFd(listener.port()), *client_ctx, kHost,
                              200, &st);
  EXPECT_FALSE(c);
  EXPECT_EQ(st.kind, Status::Kind::kTimeout) << st.message;
  EXPECT_NE(st.message.find("timed out after 200 ms"), std::string::npos);
}

TEST(TlsStreamTest, ReadTimeoutIsNotSticky) {
  TestListener listener;
  auto server_ctx = ServerCtx();
  auto client_ctx = ClientCtx();
  Pair p = Handshake(listener, *server_ctx, *client_ctx);
  ASSERT_TRUE(p.client && p.server);
  p.client->set_io_timeout_ms(100);
  std::vector<uint8_t> buf(8);
  Status st;
  EXPECT_EQ(p.client->Read(buf, &st), -1);
  EXPECT_EQ(st.kind, Status::Kind::kTimeout);
  ASSERT_TRUE(p.server->WriteAll(Bytes("ok")).ok());
  p.client->set_io_timeout_ms(kTestTimeoutMs);
  EXPECT_EQ(ReadExact(*p.client, 2, &st), Bytes("ok")) << st.message;
}

// --- Truncation and tampering -----------------------------------------------

TEST(TlsStreamTest, CloseWithoutCloseNotifyIsTruncationNotEof) {
  TestListener listener;
  auto server_ctx = ServerCtx();
  auto client_ctx = ClientCtx();
  Pair p = Handshake(listener, *server_ctx, *client_ctx);
  ASSERT_TRUE(p.client && p.server);

  ASSERT_TRUE(p.server->WriteAll(Bytes("partial")).ok());
  p.server->Close();  // TCP FIN, no close_notify
  Status st;
  EXPECT_EQ(ReadExact(*p.client, 7, &st), Bytes("partial"));
  std::vector<uint8_t> buf(16);
  EXPECT_EQ(p.client->Read(buf, &st), -1);
  EXPECT_EQ(st.kind, Status::Kind::kEngine);
  EXPECT_EQ(st.engine_error, Error::kTruncated);
  EXPECT_NE(st.message.find("truncated"), std::string::npos) << st.message;
  // Sticky, and the socket is closed.
  EXPECT_EQ(p.client->Read(buf, &st), -1);
  EXPECT_EQ(st.engine_error, Error::kTruncated);
  EXPECT_EQ(p.client->status().engine_error, Error::kTruncated);
  EXPECT_EQ(p.client->fd(), -1);
  EXPECT_EQ(p.client->WriteAll(Bytes("x")).engine_error, Error::kTruncated);
}

TEST(TlsStreamTest, RawShutdownWithoutCloseNotifyIsTruncation) {
  TestListener listener;
  auto server_ctx = ServerCtx();
  auto client_ctx = ClientCtx();
  Pair p = Handshake(listener, *server_ctx, *client_ctx);
  ASSERT_TRUE(p.client && p.server);
  ASSERT_EQ(::shutdown(p.client->fd(), SHUT_WR), 0);
  std::vector<uint8_t> buf(16);
  Status st;
  EXPECT_EQ(p.server->Read(buf, &st), -1);
  EXPECT_EQ(st.engine_error, Error::kTruncated) << st.message;
}

// Relay copies bytes between two socketpairs and, when asked, flips the
// last byte of the next client-to-server chunk (a record's tag).
class Relay {
 public:
  Relay() {
    int a[2], b[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    client_end_.Reset(a[0]);
    relay_client_.Reset(a[1]);
    relay_server_.Reset(b[0]);
    server_end_.Reset(b[1]);
    thread_ = std::thread([this] { Run(); });
  }
  ~Relay() {
    stop_ = true;
    thread_.join();
  }
  UniqueFd TakeClientEnd() { return std::move(client_end_); }
  UniqueFd TakeServerEnd() { return std::move(server_end_); }
  void CorruptNextClientChunk() { corrupt_ = true; }

 private:
  void Run() {
    std::vector<char> buf(64 << 10);
    while (!stop_) {
      pollfd p[2] = {{relay_client_.get(), POLLIN, 0},
                     {relay_server_.get(), POLLIN, 0}};
      if (::poll(p, 2, 20) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if ((p[i].revents & (POLLIN | POLLHUP)) == 0) continue;
        const int from = i == 0 ? relay_client_.get() : relay_server_.get();
        const int to = i == 0 ? relay_server_.get() : relay_client_.get();
        const ssize_t n = ::recv(from, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n <= 0) return;
        if (i == 0 && corrupt_.exchange(false)) buf[n - 1] ^= 0x01;
        if (!SendAllRaw(to, std::string_view(buf.data(), n))) return;
      }
    }
  }

  UniqueFd client_end_, relay_client_, relay_server_, server_end_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> corrupt_{false};
  std::thread thread_;
};

TEST(TlsStreamTest, TamperedRecordIsAnIntegrityFailure) {
  auto server_ctx = ServerCtx();
  auto client_ctx = ClientCtx();
  Relay relay;
  Status server_status;
  std::unique_ptr<TlsStream> server;
  std::thread t([&] {
    server = TlsStream::Accept(relay.TakeServerEnd(), *server_ctx,
                               kTestTimeoutMs, &server_status);
  });
  Status st;
  auto client = TlsStream::Connect(relay.TakeClientEnd(), *client_ctx, kHost,
                                   kTestTimeoutMs, &st);
  t.join();
  ASSERT_TRUE(client) << st.message;
  ASSERT_TRUE(server) << server_status.message;
  server->set_io_timeout_ms(kTestTimeoutMs);

  relay.CorruptNextClientChunk();
  ASSERT_TRUE(client->WriteAll(Bytes("attack at dawn")).ok());
  std::vector<uint8_t> buf(64);
  EXPECT_EQ(server->Read(buf, &st), -1);
  EXPECT_EQ(st.kind, Status::Kind::kEngine);
  EXPECT_EQ(st.engine_error, Error::kAeadFailure) << st.message;
  EXPECT_EQ(st.message.rfind("integrity failure: ", 0), 0u) << st.message;
}

// --- First-byte sniffing ----------------------------------------------------

inband::Options TcpcryptOptions() {
  inband::Options o;
  o.handshake_timeout_ms = kTestTimeoutMs;
  o.io_timeout_ms = kTestTimeoutMs;
  return o;
}

// ServeOne accepts one connection, sniffs it and answers "ping" with "pong"
// over whichever protocol the client speaks. Returns what it sniffed.
Protocol ServeOne(TestListener& listener, const TlsServerContext& tls_ctx,
                  std::string* out_error) {
  UniqueFd fd = listener.AcceptFd();
  if (!fd) {
    *out_error = "accept timed out";
    return Protocol::kTimeout;
  }
  uint8_t first = 0;
  const Protocol proto = SniffFirstByte(fd.get(), kTestTimeoutMs, &first);
  std::vector<uint8_t> buf(4);
  Status st;
  switch (proto) {
    case Protocol::kTcpcrypt: {
      if (first != kSniffTcpcryptByte) *out_error = "wrong first byte";
      auto conn =
          inband::Connection::FromSocket(std::move(fd), Engine::Role::kPassive,
                                         TcpcryptOptions(), "client", &st);
      if (!conn || !(st = conn->Handshake()).ok()) break;
      if (conn->Read(buf, &st) != 4 || buf != Bytes("ping")) break;
      if (!(st = conn->WriteAll(Bytes("pong"))).ok()) break;
      st = conn->Shutdown();
      break;
    }
    case Protocol::kTls: {
      if (first != kSniffTlsByte) *out_error = "wrong first byte";
      auto s = TlsStream::Accept(std::move(fd), tls_ctx, kTestTimeoutMs, &st);
      if (!s) break;
      s->set_io_timeout_ms(kTestTimeoutMs);
      if (ReadExact(*s, 4, &st) != Bytes("ping")) break;
      if (!(st = s->WriteAll(Bytes("pong"))).ok()) break;
      st = s->Shutdown();
      break;
    }
    case Protocol::kOther:
    case Protocol::kClosed:
    case Protocol::kTimeout:
      break;
  }
  if (!st.ok()) *out_error = st.message;
  return proto;
}

TEST(SniffTest, OnePortServesTcpcryptAndTls) {
  TestListener listener;
  auto server_ctx = ServerCtx();
  auto client_ctx = ClientCtx();
  std::vector<Protocol> seen;
  std::vector<std::string> errors(2);
  std::thread server([&] {
    for (int i = 0; i < 2; ++i) {
      seen.push_back(ServeOne(listener, *server_ctx, &errors[i]));
    }
  });

  // A tcpcrypt client: the in-band carrier's ENO option comes first.
  Status st;
  auto conn = inband::Connection::Connect("127.0.0.1", listener.port(),
                                          TcpcryptOptions(), &st);
  ASSERT_TRUE(conn) << st.message;
  ASSERT_TRUE(conn->WriteAll(Bytes("ping")).ok());
  std::vector<uint8_t> buf(4);
  EXPECT_EQ(conn->Read(buf, &st), 4) << st.message;
  EXPECT_EQ(buf, Bytes("pong"));

  // A TLS client on the same port.
  auto tls = TlsStream::Connect(ConnectFd(listener.port()), *client_ctx, kHost,
                                kTestTimeoutMs, &st);
  ASSERT_TRUE(tls) << st.message;
  ASSERT_TRUE(tls->WriteAll(Bytes("ping")).ok());
  EXPECT_EQ(ReadExact(*tls, 4, &st), Bytes("pong")) << st.message;
  std::vector<uint8_t> eof(1);
  EXPECT_EQ(tls->Read(eof, &st), 0) << st.message;

  server.join();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], Protocol::kTcpcrypt);
  EXPECT_EQ(seen[1], Protocol::kTls);
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
}

TEST(SniffTest, TcpcryptClient) {
  TestListener listener;
  std::thread client([&] {
    Status st;
    // The handshake cannot finish (nobody answers); only its first bytes
    // matter.
    inband::Options o = TcpcryptOptions();
    o.handshake_timeout_ms = 500;
    (void)inband::Connection::Connect("127.0.0.1", listener.port(), o, &st);
  });
  UniqueFd fd = listener.AcceptFd();
  ASSERT_TRUE(fd);
  uint8_t b = 0;
  EXPECT_EQ(SniffFirstByte(fd.get(), kTestTimeoutMs, &b), Protocol::kTcpcrypt);
  EXPECT_EQ(b, kSniffTcpcryptByte);
  client.join();
}

TEST(SniffTest, TlsClient) {
  TestListener listener;
  auto client_ctx = ClientCtx();
  std::thread client([&] {
    Status st;
    (void)TlsStream::Connect(ConnectFd(listener.port()), *client_ctx, kHost,
                             500, &st);
  });
  UniqueFd fd = listener.AcceptFd();
  ASSERT_TRUE(fd);
  uint8_t b = 0;
  EXPECT_EQ(SniffFirstByte(fd.get(), kTestTimeoutMs, &b), Protocol::kTls);
  EXPECT_EQ(b, kSniffTlsByte);
  client.join();
}

TEST(SniffTest, PlainClientAndNothingConsumed) {
  TestListener listener;
  UniqueFd client = ConnectFd(listener.port());
  ASSERT_TRUE(SendAllRaw(client.get(), "GET / HTTP/1.0\r\n\r\n"));
  UniqueFd fd = listener.AcceptFd();
  ASSERT_TRUE(fd);
  uint8_t b = 0;
  EXPECT_EQ(SniffFirstByte(fd.get(), kTestTimeoutMs, &b), Protocol::kOther);
  EXPECT_EQ(b, 'G');
  EXPECT_EQ(SniffFirstByte(fd.get(), kTestTimeoutMs, &b), Protocol::kOther);
  char got[5] = {};
  ASSERT_EQ(::recv(fd.get(), got, 5, 0), 5);
  EXPECT_EQ(std::string(got, 5), "GET /");
  EXPECT_EQ(ProtocolName(Protocol::kOther), "other");
}

TEST(SniffTest, SilentClientTimesOut) {
  TestListener listener;
  UniqueFd client = ConnectFd(listener.port());
  UniqueFd fd = listener.AcceptFd();
  ASSERT_TRUE(fd);
  uint8_t b = 0x77;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(SniffFirstByte(fd.get(), 150, &b), Protocol::kTimeout);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(140));
  EXPECT_LT(waited, std::chrono::seconds(5));
  EXPECT_EQ(b, 0x77);  // untouched
  EXPECT_EQ(SniffFirstByte(fd.get(), 0, nullptr), Protocol::kTimeout);
}

TEST(SniffTest, ClosedClient) {
  TestListener listener;
  ConnectFd(listener.port());  // connects and closes
  UniqueFd fd = listener.AcceptFd();
  ASSERT_TRUE(fd);
  EXPECT_EQ(SniffFirstByte(fd.get(), kTestTimeoutMs, nullptr),
            Protocol::kClosed);
  EXPECT_EQ(SniffFirstByte(-1, 0, nullptr), Protocol::kClosed);
}

}  // namespace
}  // namespace tcpcrypt::sdk
