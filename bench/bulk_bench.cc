// bulk_bench: bulk transfer throughput and CPU per GiB (issue "bench/",
// item 3; paper Table 3).
//
// Rows (one connection each; N bytes client -> server):
//   plain_tcp                  send()/recv(), no protection
//   tcpcrypt_aes128gcm         tcpcrypt via the SDK (Client / Server::Accept),
//   tcpcrypt_aes256gcm         no authentication, X25519, the client offering
//   tcpcrypt_chacha20poly1305  only the named AEAD
//   tls13_aes128gcm            OpenSSL TLS 1.3 straight on the socket (SSL*,
//   tls13_aes256gcm            SSL_read / SSL_write), ECDSA P-256 certificate,
//   tls13_chacha20poly1305     X25519, only the named cipher suite, default
//                              record size, no tickets
//
// One run of a row: the client connects and completes the handshake, sends a
// warm-up of W bytes and waits for the server's one-byte ack (both ends now
// sit at the same point, with buffers touched), starts its wall and CPU
// clocks, writes N bytes in --write-size pieces (default 64 KiB, the same for
// every row), and stops the clocks when the server's second one-byte ack
// arrives. The server reads with a buffer of the same size, counts the bytes,
// checks them against the pattern the client sends (sampled: one byte per
// 256 and the last byte of every read; --verify-all compares every byte), and
// measures its own CPU time (getrusage(RUSAGE_SELF), user + system, all
// threads) from the first ack to the second; it reports that over a pipe.
// The client runs in this process pinned to CPU 0, the server in a forked
// child pinned to CPU 1 (when at least two CPUs are allowed).
//
// Usage:
//   bulk_bench [--quick | --full] [--bytes N] [--repeat K] [--rows a,b,...]
//              [--write-size B] [--verify-all] [--tls-read-ahead 0|1]
//              [--json FILE] [--md FILE]
//   bulk_bench list
// --quick (default): N = 128 MiB, K = 3. --full: N = 1 GiB, K = 3. The K
// runs go in rounds (every row once per round); each row's figures are the
// medians over its runs, each metric separately.
// Rates are MiB/s (2^20 bytes per second).
//
// TLS is configured as a well-tuned server would run it, never weaker:
// read-ahead is on by default (OpenSSL then fills its record buffer with one
// recv instead of two per record; --tls-read-ahead 0 for OpenSSL's default).
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bench/harness.h"
#include "tcpcrypt/client.h"
#include "tcpcrypt/server.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace tcpcrypt::bench;  // NOLINT: the harness is this program's toolkit

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr double kGiBd = static_cast<double>(kGiB);
constexpr double kMiBd = static_cast<double>(kMiB);

// The byte stream is kPattern repeated; its length is prime, so no write or
// read size lines up with it and a misplaced chunk shows.
constexpr size_t kPatternLen = 65521;
// Sampled verification: one byte per kVerifyStride of the stream.
constexpr uint64_t kVerifyStride = 256;

constexpr uint8_t kAckWarm = 'w';
constexpr uint8_t kAckOk = 'k';
constexpr uint8_t kAckBad = 'x';

enum class Kind { kPlain, kTcpcrypt, kTls };

struct RowSpec {
  std::string name;
  std::string description;
  Kind kind;
  std::string aead;  // "none", "aes128gcm", "aes256gcm", "chacha20poly1305"
  tcpcrypt::Aead sdk_aead = tcpcrypt::Aead::kAes128Gcm;
  std::string tls_suite;  // TLS 1.3 cipher suite name
};

const std::vector<RowSpec>& AllRows() {
  using tcpcrypt::Aead;
  static const std::vector<RowSpec> rows = {
      {"plain_tcp", "plain TCP", Kind::kPlain, "none", Aead::kAes128Gcm, ""},
      {"tcpcrypt_aes128gcm", "tcpcrypt AES-128-GCM", Kind::kTcpcrypt, "aes128gcm", Aead::kAes128Gcm,
       ""},
      {"tcpcrypt_aes256gcm", "tcpcrypt AES-256-GCM", Kind::kTcpcrypt, "aes256gcm", Aead::kAes256Gcm,
       ""},
      {"tcpcrypt_chacha20poly1305", "tcpcrypt ChaCha20-Poly1305", Kind::kTcpcrypt,
       "chacha20poly1305", Aead::kChaCha20Poly1305, ""},
      {"tls13_aes128gcm", "TLS 1.3 AES-128-GCM", Kind::kTls, "aes128gcm", Aead::kAes128Gcm,
       "TLS_AES_128_GCM_SHA256"},
      {"tls13_aes256gcm", "TLS 1.3 AES-256-GCM", Kind::kTls, "aes256gcm", Aead::kAes256Gcm,
       "TLS_AES_256_GCM_SHA384"},
      {"tls13_chacha20poly1305", "TLS 1.3 ChaCha20-Poly1305", Kind::kTls, "chacha20poly1305",
       Aead::kChaCha20Poly1305, "TLS_CHACHA20_POLY1305_SHA256"},
  };
  return rows;
}

const RowSpec* FindRow(const std::string& name) { return FindRowIn(AllRows(), name); }

struct Config {
  uint64_t bytes = 256 * kMiB;
  uint64_t warmup_bytes = 16 * kMiB;
  size_t io_size = 64 * 1024;  // application write and read size, every row
  bool verify_all = false;
  bool tls_read_ahead = true;
  bool pin = false;
};

// --- The byte pattern --------------------------------------------------------

// Pattern is kPatternLen pseudo-random bytes, repeated so that any window of
// up to |window| bytes starting inside the first period is contiguous.
class Pattern {
 public:
  explicit Pattern(size_t window) : bytes_(kPatternLen + window) {
    uint64_t x = 0x9e3779b97f4a7c15ULL;  // xorshift64*, fixed seed
    for (size_t i = 0; i < kPatternLen; ++i) {
      x ^= x >> 12;
      x ^= x << 25;
      x ^= x >> 27;
      bytes_[i] = static_cast<uint8_t>((x * 0x2545F4914F6CDD1DULL) >> 56);
    }
    for (size_t i = kPatternLen; i < bytes_.size(); ++i) bytes_[i] = bytes_[i - kPatternLen];
  }
  // At returns the stream bytes starting at stream offset |offset| (valid
  // for |window| bytes).
  const uint8_t* At(uint64_t offset) const { return bytes_.data() + offset % kPatternLen; }
  uint8_t ByteAt(uint64_t offset) const { return bytes_[offset % kPatternLen]; }

 private:
  std::vector<uint8_t> bytes_;
};

// Verifier checks received chunks against the pattern.
class Verifier {
 public:
  Verifier(const Pattern& p, bool all) : p_(p), all_(all) {}
  // Check verifies |n| bytes received at stream offset |offset|.
  bool Check(uint64_t offset, const uint8_t* data, size_t n) const {
    if (n == 0) return true;
    if (all_) return std::memcmp(data, p_.At(offset), n) == 0;
    uint64_t first = (offset + kVerifyStride - 1) / kVerifyStride * kVerifyStride;
    for (uint64_t o = first; o < offset + n; o += kVerifyStride) {
      if (data[o - offset] != p_.ByteAt(o)) return false;
    }
    return data[n - 1] == p_.ByteAt(offset + n - 1);
  }

 private:
  const Pattern& p_;
  bool all_;
};

// --- Streams: one interface over the three channels -------------------------

class Stream {
 public:
  virtual ~Stream() = default;
  // WriteAll sends all of |n| bytes; false on failure.
  virtual bool WriteAll(const uint8_t* data, size_t n) = 0;
  // Read returns > 0 bytes, 0 at end of stream, < 0 on failure.
  virtual ssize_t Read(uint8_t* out, size_t n) = 0;
  // Finish sends the end of stream (FIN, close_notify, tcpcrypt FINp).
  virtual void Finish() = 0;
  // Negotiated parameters, for the report.
  virtual std::string Detail() const = 0;
};

class PlainStream final : public Stream {
 public:
  explicit PlainStream(int fd) : fd_(fd) {}
  ~PlainStream() override { close(fd_); }
  bool WriteAll(const uint8_t* data, size_t n) override { return WriteFull(fd_, data, n); }
  ssize_t Read(uint8_t* out, size_t n) override {
    for (;;) {
      const ssize_t r = recv(fd_, out, n, 0);
      if (r < 0 && errno == EINTR) continue;
      return r;
    }
  }
  void Finish() override { (void)shutdown(fd_, SHUT_WR); }
  std::string Detail() const override { return "TCP_NODELAY"; }

 private:
  int fd_;
};

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
using UniqueSslCtx = std::unique_ptr<SSL_CTX, SslCtxFree>;
using UniqueSsl = std::unique_ptr<SSL, SslFree>;

std::string SslError(const char* what) {
  std::string s = what;
  unsigned long e = ERR_get_error();
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    s += ": ";
    s += buf;
  }
  ERR_clear_error();
  return s;
}

// NewTlsCtx: TLS 1.3 only, the one cipher suite, X25519, no tickets.
UniqueSslCtx NewTlsCtx(bool server, const RowSpec& row, const Pki& pki, const Config& cfg,
                       std::string* error) {
  UniqueSslCtx ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) {
    *error = SslError("SSL_CTX_new");
    return nullptr;
  }
  SSL_CTX* c = ctx.get();
  if (SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_ciphersuites(c, row.tls_suite.c_str()) != 1 ||
      SSL_CTX_set1_groups_list(c, "X25519") != 1) {
    *error = SslError("TLS configuration");
    return nullptr;
  }
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(c, cfg.tls_read_ahead ? 1 : 0);
  if (server) {
    if (SSL_CTX_use_certificate(c, pki.leaf.cert.get()) != 1 ||
        SSL_CTX_use_PrivateKey(c, pki.leaf.key.get()) != 1 || SSL_CTX_check_private_key(c) != 1 ||
        SSL_CTX_set_num_tickets(c, 0) != 1) {
      *error = SslError("server certificate");
      return nullptr;
    }
  } else {
    X509_STORE* store = SSL_CTX_get_cert_store(c);
    if (store == nullptr || X509_STORE_add_cert(store, pki.ca.cert.get()) != 1) {
      *error = SslError("trust store");
      return nullptr;
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  }
  return ctx;
}

class TlsStream final : public Stream {
 public:
  TlsStream(int fd, UniqueSsl ssl) : fd_(fd), ssl_(std::move(ssl)) {}
  ~TlsStream() override {
    ssl_.reset();
    close(fd_);
  }
  bool WriteAll(const uint8_t* data, size_t n) override {
    while (n > 0) {
      size_t written = 0;
      if (SSL_write_ex(ssl_.get(), data, n, &written) != 1) return false;
      data += written;
      n -= written;
    }
    return true;
  }
  ssize_t Read(uint8_t* out, size_t n) override {
    size_t got = 0;
    if (SSL_read_ex(ssl_.get(), out, n, &got) == 1) return static_cast<ssize_t>(got);
    return SSL_get_error(ssl_.get(), 0) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
  }
  void Finish() override { (void)SSL_shutdown(ssl_.get()); }
  std::string Detail() const override {
    std::string d = SSL_get_cipher_name(ssl_.get());
    const char* g = SSL_group_to_name(ssl_.get(), SSL_get_negotiated_group(ssl_.get()));
    if (g != nullptr) d += std::string(", ") + g;
    return d;
  }

 private:
  int fd_;
  UniqueSsl ssl_;
};

// TlsHandshake runs the TLS handshake on a blocking socket; closes |fd| on
// failure.
std::unique_ptr<Stream> TlsHandshake(SSL_CTX* ctx, int fd, bool server, std::string* error) {
  UniqueSsl ssl(SSL_new(ctx));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
    *error = SslError("SSL_new");
    close(fd);
    return nullptr;
  }
  if (!server && SSL_set1_host(ssl.get(), "localhost") != 1) {
    *error = SslError("SSL_set1_host");
    close(fd);
    return nullptr;
  }
  if ((server ? SSL_accept(ssl.get()) : SSL_connect(ssl.get())) != 1) {
    *error = SslError(server ? "SSL_accept" : "SSL_connect");
    close(fd);
    return nullptr;
  }
  return std::make_unique<TlsStream>(fd, std::move(ssl));
}

class SdkStream final : public Stream {
 public:
  explicit SdkStream(std::unique_ptr<tcpcrypt::Session> s) : s_(std::move(s)) {}
  ~SdkStream() override { s_->Close(); }
  bool WriteAll(const uint8_t* data, size_t n) override {
    return s_->Write(std::span<const uint8_t>(data, n)).ok();
  }
  ssize_t Read(uint8_t* out, size_t n) override {
    auto r = s_->Read(std::span<uint8_t>(out, n));
    if (!r.ok()) return -1;
    return static_cast<ssize_t>(r.value());
  }
  void Finish() override { (void)s_->Shutdown(); }
  std::string Detail() const override {
    return std::string(tcpcrypt::ChannelName(s_->channel())) + ", " + s_->key_exchange() + ", " +
           s_->cipher();
  }

 private:
  std::unique_ptr<tcpcrypt::Session> s_;
};

// --- Server side (child process) ---------------------------------------------

// What the server child reports over the pipe.
struct ServerReport {
  double cpu_us = 0;      // user + system between the two acks
  uint64_t bytes = 0;     // measured bytes received
  uint64_t reads = 0;     // Read calls that returned data (measured part)
  bool verified = false;  // count and pattern both right
  char detail[96] = {};   // negotiated parameters as the server saw them
};

// ReceiveExactly reads |n| bytes at stream offset |*offset|, verifying them.
// Returns false on a failure or an early end; |*bad| is set on a mismatch.
bool ReceiveExactly(Stream& s, const Verifier& v, std::vector<uint8_t>& buf, uint64_t n,
                    uint64_t* offset, uint64_t* reads, bool* bad) {
  uint64_t left = n;
  while (left > 0) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
    const ssize_t r = s.Read(buf.data(), want);
    if (r <= 0) return false;
    const size_t got = static_cast<size_t>(r);
    if (!v.Check(*offset, buf.data(), got)) *bad = true;
    *offset += got;
    left -= got;
    ++*reads;
  }
  return true;
}

// Serve accepts one connection for |row|, runs the transfer, and fills
// |*out|. The listening port is written to |port_fd|.
bool Serve(const RowSpec& row, const Pki& pki, const Config& cfg, int port_fd, ServerReport* out) {
  std::unique_ptr<tcpcrypt::Server> server;  // tcpcrypt rows: outlives the session
  std::unique_ptr<Stream> stream;
  std::string error;
  if (row.kind == Kind::kTcpcrypt) {
    tcpcrypt::ServerOptions o;
    o.key_exchanges = {tcpcrypt::KeyExchange::kCurve25519};
    o.aeads = {row.sdk_aead};
    o.plans = {};
    o.require_authentication = false;
    o.issue_tickets = false;
    o.resumption = false;
    auto created = tcpcrypt::Server::Create(o);
    if (!created.ok()) {
      std::fprintf(stderr, "server: %s\n", created.status().ToString().c_str());
      return false;
    }
    server = std::move(created.value());
    if (auto st = server->Listen("127.0.0.1", 0); !st.ok()) {
      std::fprintf(stderr, "server: listen: %s\n", st.ToString().c_str());
      return false;
    }
    const uint16_t port = server->port();
    if (!WriteFull(port_fd, &port, sizeof(port))) return false;
    auto session = server->Accept();
    if (!session.ok()) {
      std::fprintf(stderr, "server: accept: %s\n", session.status().ToString().c_str());
      return false;
    }
    stream = std::make_unique<SdkStream>(std::move(session.value()));
  } else {
    UniqueSslCtx ctx;
    if (row.kind == Kind::kTls) {
      ctx = NewTlsCtx(/*server=*/true, row, pki, cfg, &error);
      if (!ctx) {
        std::fprintf(stderr, "server: %s\n", error.c_str());
        return false;
      }
    }
    uint16_t port = 0;
    const int lfd = ListenLoopback(&port);
    if (lfd < 0) return false;
    if (!WriteFull(port_fd, &port, sizeof(port))) return false;
    int cfd = -1;
    do {
      cfd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    } while (cfd < 0 && (errno == EINTR || errno == ECONNABORTED));
    close(lfd);
    if (cfd < 0) return false;
    SetNoDelay(cfd);
    if (row.kind == Kind::kTls) {
      stream = TlsHandshake(ctx.get(), cfd, /*server=*/true, &error);
      if (!stream) {
        std::fprintf(stderr, "server: %s\n", error.c_str());
        return false;
      }
    } else {
      stream = std::make_unique<PlainStream>(cfd);
    }
  }
  std::snprintf(out->detail, sizeof(out->detail), "%s", stream->Detail().c_str());

  const Pattern pattern(cfg.io_size);
  const Verifier verifier(pattern, cfg.verify_all);
  std::vector<uint8_t> buf(cfg.io_size);
  uint64_t offset = 0;
  uint64_t warm_reads = 0;
  bool bad = false;
  if (!ReceiveExactly(*stream, verifier, buf, cfg.warmup_bytes, &offset, &warm_reads, &bad) ||
      !stream->WriteAll(&kAckWarm, 1)) {
    return false;
  }
  const double cpu0 = CpuMicros();
  const bool complete =
      ReceiveExactly(*stream, verifier, buf, cfg.bytes, &offset, &out->reads, &bad);
  const uint8_t ack = complete && !bad ? kAckOk : kAckBad;
  const bool acked = stream->WriteAll(&ack, 1);
  out->cpu_us = CpuMicros() - cpu0;
  out->bytes = offset - cfg.warmup_bytes;
  out->verified = complete && !bad && out->bytes == cfg.bytes;
  // Wait for the client's end of stream so its close is not an error here.
  uint8_t sink = 0;
  if (acked) (void)stream->Read(&sink, 1);
  return true;
}

// --- Client side (this process) ----------------------------------------------

struct RunResult {
  double seconds = 0;
  double client_cpu_us = 0;
  ServerReport server;
  bool ok = false;
  std::string detail;
};

std::unique_ptr<Stream> ClientConnect(const RowSpec& row, const Pki& pki, const Config& cfg,
                                      uint16_t port, std::string* error) {
  if (row.kind == Kind::kTcpcrypt) {
    tcpcrypt::ClientOptions o;
    o.key_exchanges = {tcpcrypt::KeyExchange::kCurve25519};
    o.aeads = {row.sdk_aead};
    o.require_server_authentication = false;
    o.resumption = false;
    o.tickets = false;
    auto client = tcpcrypt::Client::Create(o);
    if (!client.ok()) {
      *error = client.status().ToString();
      return nullptr;
    }
    auto session = client.value()->Connect("127.0.0.1", port);
    if (!session.ok()) {
      *error = session.status().ToString();
      return nullptr;
    }
    return std::make_unique<SdkStream>(std::move(session.value()));
  }
  const int fd = ConnectLoopback(port);
  if (fd < 0) {
    *error = std::string("connect: ") + std::strerror(errno);
    return nullptr;
  }
  if (row.kind == Kind::kPlain) return std::make_unique<PlainStream>(fd);
  UniqueSslCtx ctx = NewTlsCtx(/*server=*/false, row, pki, cfg, error);
  if (!ctx) {
    close(fd);
    return nullptr;
  }
  return TlsHandshake(ctx.get(), fd, /*server=*/false, error);  // the SSL holds a ctx reference
}

// Transfer runs the warm-up and the measured transfer on |s|.
bool Transfer(Stream& s, const Config& cfg, RunResult* out) {
  const Pattern pattern(cfg.io_size);
  uint64_t offset = 0;
  auto send = [&](uint64_t n) {
    while (n > 0) {
      const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, cfg.io_size));
      if (!s.WriteAll(pattern.At(offset), chunk)) return false;
      offset += chunk;
      n -= chunk;
    }
    return true;
  };
  uint8_t ack = 0;
  if (!send(cfg.warmup_bytes) || s.Read(&ack, 1) != 1 || ack != kAckWarm) {
    std::fprintf(stderr, "client: warm-up failed\n");
    return false;
  }
  const double cpu0 = CpuMicros();
  const auto t0 = Clock::now();
  const bool sent = send(cfg.bytes);
  const bool acked = sent && s.Read(&ack, 1) == 1;
  out->seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  out->client_cpu_us = CpuMicros() - cpu0;
  if (!acked) {
    std::fprintf(stderr, "client: transfer failed\n");
    return false;
  }
  if (ack != kAckOk) std::fprintf(stderr, "client: the server reports a corrupted stream\n");
  return ack == kAckOk;
}

std::optional<RunResult> RunOnce(const RowSpec& row, const Pki& pki, const Config& cfg) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return std::nullopt;
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    close(fds[0]);
    if (cfg.pin) (void)PinTo(1);
    ServerReport report;
    bool ok = Serve(row, pki, cfg, fds[1], &report);
    ok = ok && WriteFull(fds[1], &report, sizeof(report));
    _exit(ok ? 0 : 2);
  }
  close(fds[1]);
  auto reap = [&](bool kill_it) {
    if (kill_it) kill(pid, SIGKILL);
    close(fds[0]);
    waitpid(pid, nullptr, 0);
  };
  uint16_t port = 0;
  if (!ReadFull(fds[0], &port, sizeof(port))) {
    std::fprintf(stderr, "%s: the server did not start\n", row.name.c_str());
    reap(false);
    return std::nullopt;
  }
  std::string error;
  RunResult res;
  {
    std::unique_ptr<Stream> s = ClientConnect(row, pki, cfg, port, &error);
    if (!s) {
      std::fprintf(stderr, "%s: %s\n", row.name.c_str(), error.c_str());
      reap(true);
      return std::nullopt;
    }
    res.detail = s->Detail();
    res.ok = Transfer(*s, cfg, &res);
    s->Finish();
  }
  const bool got_report = ReadFull(fds[0], &res.server, sizeof(res.server));
  reap(!got_report);
  res.ok = res.ok && got_report && res.server.verified;
  if (!res.ok) return std::nullopt;
  return res;
}

// --- Reporting -----------------------------------------------------------------

struct Sample {
  double seconds = 0;
  double mib_per_s = 0;
  double server_cpu_s_per_gib = 0;
  double client_cpu_s_per_gib = 0;
};

struct RowResult {
  RowSpec spec;
  std::string detail;
  std::vector<Sample> samples;
  Sample median;
  int failures = 0;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

Sample MedianOf(const std::vector<Sample>& s) {
  auto pick = [&](double Sample::*f) {
    std::vector<double> v;
    for (const auto& x : s) v.push_back(x.*f);
    return Median(std::move(v));
  };
  return {pick(&Sample::seconds), pick(&Sample::mib_per_s), pick(&Sample::server_cpu_s_per_gib),
          pick(&Sample::client_cpu_s_per_gib)};
}

std::string SizeName(uint64_t n) {
  if (n % kGiB == 0) return std::to_string(n / kGiB) + " GiB";
  if (n % kMiB == 0) return std::to_string(n / kMiB) + " MiB";
  return std::to_string(n) + " B";
}

uint64_t ParseSize(const std::string& s) {
  size_t pos = 0;
  const double v = std::stod(s, &pos);
  std::string unit = s.substr(pos);
  double mult = 1;
  if (unit == "K" || unit == "KiB" || unit == "k") mult = 1024.0;
  if (unit == "M" || unit == "MiB") mult = kMiBd;
  if (unit == "G" || unit == "GiB") mult = kGiBd;
  return static_cast<uint64_t>(v * mult);
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CommonOptions opts;
  opts.json_path = "bulk_bench.json";
  int repeat = -1;
  uint64_t bytes = 0;
  // N[K|M|G] (also KiB, MiB, GiB) -> a byte count.
  const CLI::Validator size(
      [](std::string& s) -> std::string {
        try {
          s = std::to_string(ParseSize(s));
          return {};
        } catch (const std::exception&) {
          return "not a size: \"" + s + "\"";
        }
      },
      "");

  CLI::App app{"bulk_bench: bulk transfer throughput and CPU per GiB, client -> server, "
               "for plain TCP, tcpcrypt and TLS 1.3. --quick (default): 128 MiB, median of 3 runs; "
               "--full: 1 GiB, 3 runs; medians over the runs.",
               "bulk_bench"};
  AddCommonOptions(app, &opts, [](const std::string& name) { return FindRow(name) != nullptr; });
  CLI::Option* bytes_opt =
      app.add_option("--bytes", bytes, "Bytes per run (default 256M, --full 1G)")
          ->type_name("N[K|M|G]")
          ->transform(size);
  app.add_option("--repeat", repeat, "Runs per row (default 1, --full 3)")->type_name("K");
  app.add_option("--write-size", cfg.io_size, "Application write and read size, every row")
      ->type_name("N[K|M|G]")
      ->transform(size)
      ->capture_default_str();
  app.add_flag("--verify-all", cfg.verify_all,
               "The server compares every byte (default: a sample)");
  app.add_option("--tls-read-ahead", cfg.tls_read_ahead,
                 "TLS read-ahead on (1, default) or OpenSSL's default off (0)")
      ->type_name("0|1")
      ->check(CLI::IsMember({"0", "1"}));
  AddListCommand(app, AllRows());
  if (auto rc = ParseCommandLine(app, argc, argv)) return *rc;

  std::string mode = opts.mode;
  cfg.bytes = mode == "full" ? kGiB : 128 * kMiB;
  if (repeat < 1) repeat = 3;
  if (bytes_opt->count() > 0) {
    cfg.bytes = bytes;
    mode += "-custom";
  }
  if (cfg.io_size == 0 || cfg.io_size > (size_t{16} << 20) || cfg.bytes == 0) {
    std::fprintf(stderr, "bad --write-size or --bytes\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  const int allowed_cpus = AllowedCpus();
  cfg.pin = allowed_cpus >= 2;
  if (cfg.pin && !PinTo(0)) cfg.pin = false;

  std::string error;
  auto pki = MakePki(&error);
  if (!pki) {
    std::fprintf(stderr, "cannot make the test PKI: %s\n", error.c_str());
    return 1;
  }

  std::vector<RowResult> results;
  for (const auto& row : AllRows()) {
    if (!RowSelected(opts, row.name)) continue;
    RowResult rr;
    rr.spec = row;
    results.push_back(std::move(rr));
  }
  // Rounds: every row once per round, so a burst of load from elsewhere on a
  // shared machine spreads over the rows instead of spoiling one row's runs.
  for (int k = 0; k < repeat; ++k) {
    for (auto& rr : results) {
      const RowSpec& row = rr.spec;
      std::fprintf(stderr, "running %s (%d/%d) ...\n", row.name.c_str(), k + 1, repeat);
      auto r = RunOnce(row, *pki, cfg);
      if (!r) {
        ++rr.failures;
        continue;
      }
      if (rr.detail.empty()) rr.detail = r->detail;
      const double gib = static_cast<double>(cfg.bytes) / kGiBd;
      Sample s;
      s.seconds = r->seconds;
      s.mib_per_s = r->seconds > 0 ? static_cast<double>(cfg.bytes) / kMiBd / r->seconds : 0;
      s.server_cpu_s_per_gib = r->server.cpu_us / 1e6 / gib;
      s.client_cpu_s_per_gib = r->client_cpu_us / 1e6 / gib;
      rr.samples.push_back(s);
    }
  }
  for (auto& rr : results) rr.median = MedianOf(rr.samples);

  auto find = [&](const std::string& name) -> const RowResult* {
    for (const auto& r : results)
      if (r.spec.name == name && !r.samples.empty()) return &r;
    return nullptr;
  };
  const RowResult* plain = find("plain_tcp");

  const std::string note = MachineNote(cfg.pin, allowed_cpus);
  std::ostringstream md;
  md << "## Bulk throughput (" << mode << ": " << SizeName(cfg.bytes) << " client → server, "
     << (cfg.io_size % 1024 == 0 ? std::to_string(cfg.io_size / 1024) + " KiB"
                                 : std::to_string(cfg.io_size) + " B")
     << " application writes and reads, median of " << repeat << ")\n\n";
  md << "Machine: " << note << ". Shared machine: numbers are indicative.\n\n";
  md << "| Row | Negotiated | MiB/s | server CPU s/GiB | client CPU s/GiB | MiB/s vs TLS "
        "(same AEAD) | server CPU vs TLS | client CPU vs TLS | MiB/s vs plain TCP | MiB/s "
        "min–max | runs |\n";
  md << "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : results) {
    const Sample& m = r.median;
    nlohmann::json j = {
        {"name", r.spec.name},
        {"description", r.spec.description},
        {"aead", r.spec.aead},
        {"negotiated", r.detail},
        {"bytes", cfg.bytes},
        {"runs", r.samples.size()},
        {"failures", r.failures},
        {"seconds", m.seconds},
        {"mib_per_s", m.mib_per_s},
        {"server_cpu_s_per_gib", m.server_cpu_s_per_gib},
        {"client_cpu_s_per_gib", m.client_cpu_s_per_gib},
    };
    nlohmann::json samples = nlohmann::json::array();
    double lo = 0, hi = 0;
    for (size_t i = 0; i < r.samples.size(); ++i) {
      const Sample& s = r.samples[i];
      samples.push_back({{"seconds", s.seconds},
                         {"mib_per_s", s.mib_per_s},
                         {"server_cpu_s_per_gib", s.server_cpu_s_per_gib},
                         {"client_cpu_s_per_gib", s.client_cpu_s_per_gib}});
      lo = i == 0 ? s.mib_per_s : std::min(lo, s.mib_per_s);
      hi = i == 0 ? s.mib_per_s : std::max(hi, s.mib_per_s);
    }
    j["samples"] = samples;
    std::string vs_tls = "–", cpu_vs_tls = "–", ccpu_vs_tls = "–", vs_plain = "–";
    if (r.spec.kind == Kind::kTcpcrypt) {
      if (const RowResult* t = find("tls13_" + r.spec.aead); t != nullptr && !r.samples.empty()) {
        const Sample& tm = t->median;
        if (tm.mib_per_s > 0) {
          vs_tls = Fmt(m.mib_per_s / tm.mib_per_s, 2) + "×";
          j["mib_per_s_vs_tls13"] = m.mib_per_s / tm.mib_per_s;
        }
        if (tm.server_cpu_s_per_gib > 0) {
          cpu_vs_tls = Fmt(m.server_cpu_s_per_gib / tm.server_cpu_s_per_gib, 2) + "×";
          j["server_cpu_vs_tls13"] = m.server_cpu_s_per_gib / tm.server_cpu_s_per_gib;
        }
        if (tm.client_cpu_s_per_gib > 0) {
          ccpu_vs_tls = Fmt(m.client_cpu_s_per_gib / tm.client_cpu_s_per_gib, 2) + "×";
          j["client_cpu_vs_tls13"] = m.client_cpu_s_per_gib / tm.client_cpu_s_per_gib;
        }
      }
    }
    if (plain != nullptr && plain->median.mib_per_s > 0 && !r.samples.empty()) {
      vs_plain = Fmt(m.mib_per_s / plain->median.mib_per_s, 2) + "×";
      j["mib_per_s_vs_plain_tcp"] = m.mib_per_s / plain->median.mib_per_s;
    }
    rows.push_back(std::move(j));
    if (r.samples.empty()) {
      md << "| " << r.spec.description << " | failed | – | – | – | – | – | – | – | – | 0 ("
         << r.failures << " failed) |\n";
      continue;
    }
    md << "| " << r.spec.description << " | " << r.detail << " | " << Fmt(m.mib_per_s, 0) << " | "
       << Fmt(m.server_cpu_s_per_gib, 3) << " | " << Fmt(m.client_cpu_s_per_gib, 3) << " | "
       << vs_tls << " | " << cpu_vs_tls << " | " << ccpu_vs_tls << " | " << vs_plain << " | "
       << Fmt(lo, 0) << "–" << Fmt(hi, 0) << " | " << r.samples.size()
       << (r.failures > 0 ? " (" + std::to_string(r.failures) + " failed)" : std::string())
       << " |\n";
  }
  md << "\nMiB/s = N / (client wall time from the first measured write to the server's ack), "
        "2^20 bytes per second. CPU = getrusage(RUSAGE_SELF) user+sys per GiB transferred "
        "(server: from its warm-up ack to its final ack; client: the same window as the wall "
        "clock). A "
     << SizeName(cfg.warmup_bytes)
     << " warm-up precedes each measured transfer on the same connection. TLS: OpenSSL, "
        "default 16 KiB records, read-ahead "
     << (cfg.tls_read_ahead ? "on" : "off") << ". Server checks "
     << (cfg.verify_all ? "every byte" : "the byte count and one byte per 256")
     << " against the pattern sent.\n";
  std::fputs(md.str().c_str(), stdout);

  nlohmann::json out = {
      {"program", "bulk_bench"},
      {"mode", mode},
      {"machine", note},
      {"pinned", cfg.pin},
      {"bytes", cfg.bytes},
      {"warmup_bytes", cfg.warmup_bytes},
      {"io_size", cfg.io_size},
      {"repeat", repeat},
      {"tls_read_ahead", cfg.tls_read_ahead},
      {"verify_all", cfg.verify_all},
      {"rows", rows},
  };
  WriteReports(opts, out.dump(2), md.str());
  bool any_failed = false;
  for (const auto& r : results) any_failed = any_failed || r.failures > 0;
  return any_failed ? 1 : 0;
}
