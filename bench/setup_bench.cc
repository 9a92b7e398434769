// setup_bench: connection-setup rate and server CPU time per connection.
//
// Section "setup" (issue "bench/", table 1):
//   plain_tcp              TCP connect + 1-byte echo, no protection
//   tcpcrypt_fresh_x25519  tcpcrypt via the SDK (Client/Server), resumption
//                          off at the client; the SDK server reuses its
//                          ephemeral key (EphemeralKeyCache) as it does in
//                          production
//   tcpcrypt_fresh_p256    the same with the P-256 TEP
//   tcpcrypt_resumed       RFC 8548 §3.5 resumption (no public-key operation)
//   tls13_full             OpenSSL TLS 1.3 via sdk::TlsStream, ECDSA P-256
//                          certificate, X25519, no ticket offered
//   tls13_resumed          TLS 1.3 PSK resumption from a ticket
//
// Section "auth" (issue 5, item 2; paper Figure 3): fresh tcpcrypt (X25519)
// plus an authenticator, and the TLS 1.3 certificate baseline.
//   tcpcrypt_cmac          CMAC mutual password (plan [cmac])
//   tcpcrypt_pake          SPAKE2+ (plan [pake])
//   tcpcrypt_x509_cN       batch-signed X.509 server certificate with N
//                          clients in flight (N = 1, 16, 128, 256); the server
//                          runs Server::Serve (epoll loop, worker pool,
//                          batch signer thread) so handshakes overlap
//   tcpcrypt_x509_cmac     the plan [x509, cmac]: certificate, then password
//   tcpcrypt_ticket        tcpcrypt resumption + ticket re-authentication
//                          (the first, warm-up connection runs CMAC and
//                          gets the ticket)
//   tls13_cert_c1/_c128    TLS 1.3 full handshake, ECDSA P-256 certificate,
//                          1 / 128 clients in flight (c1 is the same server
//                          loop as tls13_full; c128 runs 128 server threads,
//                          one blocking connection each, on one SSL_CTX with
//                          default settings)
//   tcpcrypt_x509_rsa_c1/_c128, tls13_cert_rsa_c1/_c128
//                          supplementary: the same two comparisons with an
//                          RSA-2048 server certificate (leaf key RSA-2048,
//                          issued by the same ECDSA P-256 CA), where the one
//                          signature per handshake is expensive, as in the
//                          paper's batch-signing argument; tcpcrypt signs the
//                          batch root with RSA-PSS (rsa_pss_rsae_sha256_batch),
//                          TLS 1.3 with OpenSSL's default (rsa_pss_rsae_sha256)
// Password rows use a verifier store made with the SDK's default Argon2id
// cost (PasswordHashing::kInteractive: 64 MiB, 2 passes), which the client
// pays on every password login; the server only looks the verifier up (it
// reports how many Argon2id calls it made: server_kdf_calls, expected 0).
//
// One operation = the client connects, completes the handshake and the
// authentication, sends one byte, reads the server's one-byte echo, sends
// its end of stream (TCP FIN, TLS close_notify, tcpcrypt authenticated EOF),
// and closes with an RST (SO_LINGER 0, so the loopback does not run out of
// ports in TIME_WAIT); the server closes once it has read that end of
// stream. The client runs in this process, pinned to CPU 0 (rows with
// concurrency N run N client threads on that core); the server in a forked
// child, pinned to CPU 1 (when at least two CPUs are allowed). The server
// measures its own CPU time (getrusage(RUSAGE_SELF), user + system, all
// threads) between a "mark" connection and a "quit" connection and sends
// it back over a pipe.
//
// Usage:
//   setup_bench [run] [--quick | --full] [--seconds S] [--rows a,b,...]
//               [--json FILE] [--md FILE] [--pace-ms MS]
//       forks the server per row; prints Markdown tables, writes JSON
//       (default setup_bench.json) and optionally the Markdown to FILE.
//   setup_bench server --row R [--cpu N] [--pki-dir D]
//   setup_bench client --row R --port P [--cpu N] [--pki-dir D] [--seconds S]
//                      [--pace-ms MS]
//       the two halves as separate processes you start (see ServerMode);
//       every row works this way.
//   setup_bench list            print the row names
// --quick (default) runs each row ~1.5 s after a 0.3 s warm-up (the whole
// quick run of every row takes well under a minute); --full ~10 s after
// 1 s. Password rows (cmac, pake, x509_cmac) go on until they have at
// least 15 (--full: 60) measured connections: each login costs the client
// one Argon2id run. The supplementary RSA-2048 rows measure 0.7 s under
// --quick (RowSpec::quick_seconds) so the quick run stays about as long as
// before; --full and --seconds measure them like the others.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/cmac_password/cmac_password.h"
#include "auth/common/password_kdf.h"
#include "auth/common/verifier_store.h"
#include "auth/pake2plus/pake2plus.h"
#include "auth/x509_batch/test_pki.h"
#include "bench/harness.h"
#include "core_transport/engine/rng.h"
#include "sdk/tls_stream.h"
#include "tcpcrypt/client.h"
#include "tcpcrypt/server.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace x509 = tcpcrypt::auth::x509;
using namespace tcpcrypt::bench;  // NOLINT: the harness is this program's toolkit

// Control bytes the client sends after each handshake.
constexpr uint8_t kWarm = 'w';   // warm-up: not measured
constexpr uint8_t kMark = 'm';   // start the server's CPU clock after this one
constexpr uint8_t kPing = 'p';   // a measured operation
constexpr uint8_t kQuit = 'q';   // stop the clock, report, exit

// The one user of the password rows.
constexpr char kUser[] = "alice";
constexpr char kPassword[] = "correct horse battery staple";
constexpr char kRealm[] = "tcpcrypt";

enum class Kind { kPlain, kTcpcrypt, kTls };
// The authenticator a tcpcrypt row runs.
enum class Auth { kNone, kCmac, kPake, kX509, kX509Cmac, kTicket };

struct RowSpec {
  std::string name;
  std::string description;
  Kind kind;
  tcpcrypt::KeyExchange kex = tcpcrypt::KeyExchange::kCurve25519;
  bool resume = false;
  Auth auth = Auth::kNone;
  int concurrency = 1;  // client connections in flight
  bool serve = false;   // tcpcrypt server: Server::Serve instead of Accept
  std::string section = "setup";
  // The server certificate's key (TLS and X.509 rows); RSA-2048 rows use a
  // leaf issued by the same CA (see Pkis).
  x509::PkiKeyType leaf_key = x509::PkiKeyType::kEcdsaP256;
  // Under --quick, measure this long instead of RunConfig::seconds (0: the
  // default).
  double quick_seconds = 0;
};

// --quick measures the supplementary RSA-2048 rows this long (the quick run
// of every row stays around 40 s).
constexpr double kRsaQuickSeconds = 0.7;

bool IsRsa(const RowSpec& r) { return r.leaf_key == x509::PkiKeyType::kRsa2048; }

bool NeedsPasswords(const RowSpec& r) {
  return r.auth == Auth::kCmac || r.auth == Auth::kPake || r.auth == Auth::kX509Cmac ||
         r.auth == Auth::kTicket;
}
bool NeedsServerCert(const RowSpec& r) {
  return r.auth == Auth::kX509 || r.auth == Auth::kX509Cmac;
}
// Rows whose client needs the CA certificate (split mode: DIR/ca.pem).
bool NeedsCa(const RowSpec& r) { return r.kind == Kind::kTls || NeedsServerCert(r); }

const std::vector<RowSpec>& AllRows() {
  using tcpcrypt::KeyExchange;
  static const std::vector<RowSpec> rows = {
      {"plain_tcp", "plain TCP", Kind::kPlain},
      {"tcpcrypt_fresh_x25519", "tcpcrypt fresh (X25519)", Kind::kTcpcrypt},
      {"tcpcrypt_fresh_p256", "tcpcrypt fresh (P-256)", Kind::kTcpcrypt, KeyExchange::kP256},
      {"tcpcrypt_resumed", "tcpcrypt resumed", Kind::kTcpcrypt, KeyExchange::kCurve25519, true},
      {"tls13_full", "TLS 1.3 full (P-256 cert, X25519)", Kind::kTls},
      {"tls13_resumed", "TLS 1.3 resumed (ticket)", Kind::kTls, KeyExchange::kCurve25519, true},
      {"tcpcrypt_cmac", "tcpcrypt + CMAC password", Kind::kTcpcrypt, KeyExchange::kCurve25519,
       false, Auth::kCmac, 1, false, "auth"},
      {"tcpcrypt_pake", "tcpcrypt + SPAKE2+", Kind::kTcpcrypt, KeyExchange::kCurve25519, false,
       Auth::kPake, 1, false, "auth"},
      {"tcpcrypt_x509_c1", "tcpcrypt + batch-signed X.509, 1 client", Kind::kTcpcrypt,
       KeyExchange::kCurve25519, false, Auth::kX509, 1, true, "auth"},
      {"tcpcrypt_x509_c16", "tcpcrypt + batch-signed X.509, 16 clients", Kind::kTcpcrypt,
       KeyExchange::kCurve25519, false, Auth::kX509, 16, true, "auth"},
      {"tcpcrypt_x509_c128", "tcpcrypt + batch-signed X.509, 128 clients", Kind::kTcpcrypt,
       KeyExchange::kCurve25519, false, Auth::kX509, 128, true, "auth"},
      {"tcpcrypt_x509_c256", "tcpcrypt + batch-signed X.509, 256 clients", Kind::kTcpcrypt,
       KeyExchange::kCurve25519, false, Auth::kX509, 256, true, "auth"},
      {"tcpcrypt_x509_cmac", "tcpcrypt + X.509 + CMAC password", Kind::kTcpcrypt,
       KeyExchange::kCurve25519, false, Auth::kX509Cmac, 1, false, "auth"},
      {"tcpcrypt_ticket", "tcpcrypt resumed + ticket", Kind::kTcpcrypt,
       KeyExchange::kCurve25519, true, Auth::kTicket, 1, false, "auth"},
      {"tls13_cert_c1", "TLS 1.3 full (P-256 cert), 1 client", Kind::kTls,
       KeyExchange::kCurve25519, false, Auth::kNone, 1, false, "auth"},
      {"tls13_cert_c128", "TLS 1.3 full (P-256 cert), 128 clients", Kind::kTls,
       KeyExchange::kCurve25519, false, Auth::kNone, 128, false, "auth"},
      // Supplementary: the batch-signing comparison with an RSA-2048 leaf.
      {"tcpcrypt_x509_rsa_c1", "tcpcrypt + batch-signed X.509 (RSA-2048 cert), 1 client",
       Kind::kTcpcrypt, KeyExchange::kCurve25519, false, Auth::kX509, 1, true, "auth",
       x509::PkiKeyType::kRsa2048, kRsaQuickSeconds},
      {"tcpcrypt_x509_rsa_c128", "tcpcrypt + batch-signed X.509 (RSA-2048 cert), 128 clients",
       Kind::kTcpcrypt, KeyExchange::kCurve25519, false, Auth::kX509, 128, true, "auth",
       x509::PkiKeyType::kRsa2048, kRsaQuickSeconds},
      {"tls13_cert_rsa_c1", "TLS 1.3 full (RSA-2048 cert), 1 client", Kind::kTls,
       KeyExchange::kCurve25519, false, Auth::kNone, 1, false, "auth",
       x509::PkiKeyType::kRsa2048, kRsaQuickSeconds},
      {"tls13_cert_rsa_c128", "TLS 1.3 full (RSA-2048 cert), 128 clients", Kind::kTls,
       KeyExchange::kCurve25519, false, Auth::kNone, 128, false, "auth",
       x509::PkiKeyType::kRsa2048, kRsaQuickSeconds},
  };
  return rows;
}

// The PKIs of a run: the harness's (ECDSA P-256 CA and leaf) and, when an
// RSA-2048 row runs, an RSA-2048 leaf issued by the same CA.
struct Pkis {
  Pki p256;
  std::optional<Pki> rsa;  // {p256.ca, RSA-2048 leaf}
  const Pki& For(const RowSpec& r) const { return IsRsa(r) ? *rsa : p256; }
};

// MakePkis makes the harness's PKI and, if |rsa|, the RSA-2048 leaf (with
// the harness leaf's names: CN and IP SAN 127.0.0.1, DNS SAN localhost).
std::optional<Pkis> MakePkis(bool rsa, std::string* error) {
  auto pki = MakePki(error);
  if (!pki) return std::nullopt;
  Pkis out{*pki, std::nullopt};
  if (rsa) {
    x509::CertOptions opts;
    opts.common_name = "127.0.0.1";
    opts.ip_addresses = {"127.0.0.1"};
    opts.dns_names = {"localhost"};
    opts.key_type = x509::PkiKeyType::kRsa2048;
    auto leaf = x509::IssueCertificate(pki->ca, opts, error);
    if (!leaf) return std::nullopt;
    out.rsa = Pki{pki->ca, *leaf};
  }
  return out;
}

// Files the auth rows need: the CA (clients), the server's chain and key,
// and the verifier store. |leaf| names the chain and key files: "server"
// (P-256) or "server-rsa" (the RSA-2048 rows).
struct Files {
  std::string dir;
  std::string leaf = "server";
  std::string ca() const { return dir + "/ca.pem"; }
  std::string chain() const { return dir + "/" + leaf + ".pem"; }
  std::string key() const { return dir + "/" + leaf + ".key"; }
  std::string users() const { return dir + "/users.db"; }
};

// The files of |row|: |files| with the chain and key of its leaf key type.
Files RowFiles(const Files& files, const RowSpec& row) {
  Files f = files;
  f.leaf = IsRsa(row) ? "server-rsa" : "server";
  return f;
}

// WriteServerFiles writes what the server side of |rows| needs into
// |files.dir|: ca.pem, server.pem and server.key (|files.leaf| names the
// last two: server-rsa.* for the RSA-2048 leaf), and users.db with both
// password records for kUser made at the SDK's default cost
// (KdfParams::Interactive(), = PasswordHashing::kInteractive).
bool WriteServerFiles(const Files& files, const Pki& pki, bool certs, bool users,
                      std::string* error) {
  if (certs) {
    if (!x509::WriteFile(files.ca(), x509::CertificatePem(pki.ca.cert.get()), 0644, error) ||
        !x509::WriteFile(files.chain(), x509::CertificatePem(pki.leaf.cert.get()), 0644,
                         error)) {
      return false;
    }
    tcpcrypt::SecretBuffer key = x509::PrivateKeyPem(pki.leaf.key.get());
    if (!x509::WriteFile(files.key(), std::span<const uint8_t>(key.data(), key.size()), 0600,
                         error)) {
      return false;
    }
  }
  if (users) {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"})
      std::filesystem::remove(files.users() + suffix, ec);
    auto store = tcpcrypt::auth::SqliteVerifierStore::Open(files.users(), error);
    if (store == nullptr) return false;
    const tcpcrypt::auth::KdfParams params = tcpcrypt::auth::KdfParams::Interactive();
    tcpcrypt::auth::VerifierRecord cmac, pake;
    if (!tcpcrypt::auth::cmac::MakeRecord(kUser, kRealm, kPassword, params,
                                          tcpcrypt::SystemRng::Instance(), &cmac) ||
        !tcpcrypt::auth::pake::MakeRecord(kUser, kRealm, kPassword, params,
                                          tcpcrypt::SystemRng::Instance(), &pake) ||
        !store->Put(cmac) || !store->Put(pake)) {
      *error = "cannot write the password records to " + files.users();
      return false;
    }
  }
  return true;
}

// What the server child reports over the pipe (plain data).
struct ServerReport {
  double cpu_us = 0;        // user + system between mark and quit
  double wall_us = 0;       // wall time between mark and quit
  uint64_t ops = 0;         // connections served in that window (pings + quit)
  uint64_t failures = 0;    // accepts/handshakes/reads that failed (whole run)
  uint64_t resumed = 0;     // measured connections the server saw resumed
  uint64_t ticket = 0;      // measured connections re-authenticated by a ticket
  uint64_t signatures = 0;  // X.509 root signatures made between mark and quit
  uint64_t kdf_calls = 0;   // Argon2id runs in the server process (whole run)
};

struct RowResult {
  RowSpec spec;
  uint64_t client_ops = 0;
  uint64_t client_failures = 0;
  uint64_t client_resumed = 0;
  uint64_t client_ticket = 0;
  uint64_t batch_sum = 0;  // sum of the X.509 batch sizes the client saw
  uint64_t batch_n = 0;    // connections that reported one
  double seconds = 0;
  double client_cpu_us = 0;
  std::string detail;  // negotiated parameters seen on the first connection
  ServerReport server;
  bool server_ok = false;
};

// --- Server side (child process) --------------------------------------------

// ServerClock accounts for served connections; thread-safe (the Serve and
// threaded TLS servers call it from several threads).
class ServerClock {
 public:
  // |signatures| reads the X.509 root-signature counter (may be empty).
  explicit ServerClock(std::function<uint64_t()> signatures = nullptr)
      : signatures_(std::move(signatures)) {}

  // Handle accounts for one served connection; returns false on quit.
  bool Handle(uint8_t byte, bool resumed, bool ticket, ServerReport* r) {
    std::lock_guard<std::mutex> lock(mu_);
    switch (byte) {
      case kMark:
        marked_ = true;
        start_us_ = CpuMicros();
        start_wall_ = Clock::now();
        start_sigs_ = signatures_ ? signatures_() : 0;
        return true;
      case kPing:
        if (marked_) Count(resumed, ticket, r);
        return true;
      case kQuit:
        Count(resumed, ticket, r);
        r->cpu_us = marked_ ? CpuMicros() - start_us_ : 0;
        r->wall_us = marked_ ? std::chrono::duration<double, std::micro>(Clock::now() -
                                                                        start_wall_)
                                   .count()
                             : 0;
        r->signatures = marked_ && signatures_ ? signatures_() - start_sigs_ : 0;
        return false;
      case kWarm:
        return true;
      default:
        ++r->failures;
        return true;
    }
  }

  void Fail(ServerReport* r) {
    std::lock_guard<std::mutex> lock(mu_);
    ++r->failures;
  }

 private:
  static void Count(bool resumed, bool ticket, ServerReport* r) {
    ++r->ops;
    if (resumed) ++r->resumed;
    if (ticket) ++r->ticket;
  }

  std::mutex mu_;
  std::function<uint64_t()> signatures_;
  bool marked_ = false;
  double start_us_ = 0;
  Clock::time_point start_wall_{};
  uint64_t start_sigs_ = 0;
};

tcpcrypt::ServerOptions MakeServerOptions(const RowSpec& row, const Files& files) {
  using tcpcrypt::AuthMechanism;
  tcpcrypt::ServerOptions o;
  o.key_exchanges = {row.kex};
  o.plans = {};
  o.require_authentication = false;
  o.issue_tickets = false;
  o.resumption = true;
  switch (row.auth) {
    case Auth::kNone:
      break;
    case Auth::kCmac:
      o.plans = {{AuthMechanism::kCmacPassword}};
      break;
    case Auth::kPake:
      o.plans = {{AuthMechanism::kPake}};
      break;
    case Auth::kX509:
      o.plans = {{AuthMechanism::kX509}};
      break;
    case Auth::kX509Cmac:
      o.plans = {{AuthMechanism::kX509, AuthMechanism::kCmacPassword}};
      break;
    case Auth::kTicket:
      o.plans = {{AuthMechanism::kCmacPassword}};
      o.issue_tickets = true;
      break;
  }
  if (row.auth != Auth::kNone) o.require_authentication = true;
  if (NeedsPasswords(row)) {
    o.users_file = files.users();
    o.realm = kRealm;
    // password_hashing stays the default, kInteractive (the records' cost).
  }
  if (NeedsServerCert(row)) {
    o.cert_file = files.chain();
    o.key_file = files.key();
  }
  return o;
}

// ServeTlsConnection runs one TLS connection of the threaded server; the
// control byte is counted before the echo, so every ping the client saw
// echoed is counted before its quit arrives.
bool ServeTlsConnection(int cfd, const tcpcrypt::sdk::TlsServerContext& tls, ServerClock* clock,
                        ServerReport* report) {
  SetNoDelay(cfd);
  tcpcrypt::inband::Status st;
  auto s = tcpcrypt::sdk::TlsStream::Accept(tcpcrypt::inband::UniqueFd(cfd), tls, 10000, &st);
  if (!s) return clock->Handle(0, false, false, report);
  uint8_t buf = 0;
  uint8_t byte = 0;
  if (s->Read(std::span<uint8_t>(&buf, 1), &st) == 1) byte = buf;
  const bool more = clock->Handle(byte, s->resumed(), false, report);
  if (byte != 0 && s->WriteAll(std::span<const uint8_t>(&buf, 1)).ok()) {
    (void)s->Read(std::span<uint8_t>(&buf, 1), &st);  // the client's close_notify
  }
  s->Close();
  return more;
}

// RunServer serves |row| on 127.0.0.1 (a free port, passed to |on_port|)
// until the client's quit connection; returns false if it could not start.
bool RunServer(const RowSpec& row, const Pki& pki, const Files& files,
               const std::function<bool(uint16_t)>& on_port, ServerReport* out_report) {
  ServerReport& report = *out_report;
  const uint64_t kdf_start = tcpcrypt::auth::PasswordKdfCount();
  uint16_t port = 0;

  if (row.kind == Kind::kPlain || row.kind == Kind::kTls) {
    ServerClock clock;
    int lfd = ListenLoopback(&port);
    if (lfd < 0) return false;
    std::shared_ptr<tcpcrypt::sdk::TlsServerContext> tls;
    if (row.kind == Kind::kTls) {
      tcpcrypt::inband::Status st;
      tls = tcpcrypt::sdk::TlsServerContext::FromMemory(pki.leaf.cert.get(), {},
                                                       pki.leaf.key.get(), &st);
      if (!tls) {
        std::fprintf(stderr, "server: TLS context: %s\n", st.message.c_str());
        return false;
      }
    }
    if (!on_port(port)) return false;
    if (row.kind == Kind::kTls && row.concurrency > 1) {
      // One blocking connection per thread, as many threads as clients in
      // flight; the quit connection shuts the listener down, which wakes
      // the threads still in accept().
      std::atomic<bool> quit{false};
      std::vector<std::thread> threads;
      for (int i = 0; i < row.concurrency; ++i) {
        threads.emplace_back([&] {
          for (;;) {
            int cfd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
            if (cfd < 0) {
              if (quit.load()) return;
              if (errno == EINTR || errno == ECONNABORTED) continue;
              if (errno == EINVAL) return;  // shut down
              clock.Fail(&report);
              continue;
            }
            if (!ServeTlsConnection(cfd, *tls, &clock, &report)) {
              quit.store(true);
              shutdown(lfd, SHUT_RDWR);
              return;
            }
          }
        });
      }
      for (auto& t : threads) t.join();
      close(lfd);
      return true;
    }
    for (;;) {
      int cfd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (cfd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        ++report.failures;
        continue;
      }
      SetNoDelay(cfd);
      uint8_t byte = 0;
      bool resumed = false;
      if (row.kind == Kind::kPlain) {
        if (recv(cfd, &byte, 1, 0) == 1) {
          uint8_t echo = byte;
          if (send(cfd, &echo, 1, MSG_NOSIGNAL) != 1) byte = 0;
        } else {
          byte = 0;
        }
        uint8_t sink = 0;
        if (byte != 0) (void)recv(cfd, &sink, 1, 0);  // the client's FIN
        close(cfd);
      } else {
        tcpcrypt::inband::Status st;
        auto s = tcpcrypt::sdk::TlsStream::Accept(tcpcrypt::inband::UniqueFd(cfd), *tls,
                                                   10000, &st);
        if (s) {
          resumed = s->resumed();
          uint8_t buf = 0;
          if (s->Read(std::span<uint8_t>(&buf, 1), &st) == 1 &&
              s->WriteAll(std::span<const uint8_t>(&buf, 1)).ok()) {
            byte = buf;
            (void)s->Read(std::span<uint8_t>(&buf, 1), &st);  // the client's close_notify
          }
          s->Close();
        }
      }
      if (!clock.Handle(byte, resumed, false, &report)) break;
    }
    close(lfd);
    return true;
  }

  auto server = tcpcrypt::Server::Create(MakeServerOptions(row, files));
  if (!server.ok()) {
    std::fprintf(stderr, "server: %s\n", server.status().ToString().c_str());
    return false;
  }
  tcpcrypt::Server* srv = server.value().get();
  auto st = srv->Listen("127.0.0.1", 0);
  if (!st.ok()) {
    std::fprintf(stderr, "server: listen: %s\n", st.ToString().c_str());
    return false;
  }
  ServerClock clock([srv] { return srv->stats().root_signatures; });
  port = srv->port();
  if (!on_port(port)) return false;
  if (row.serve) {
    // The epoll loop handshakes and authenticates every connection at once
    // (so the batch signer sees them overlap); a worker echoes.
    const int workers = std::max(8, row.concurrency);
    st = srv->Serve(
        [&](std::unique_ptr<tcpcrypt::Session> s) {
          SetNoDelay(s->fd());
          uint8_t buf = 0;
          uint8_t byte = 0;
          auto r = s->Read(std::span<uint8_t>(&buf, 1));
          if (r.ok() && r.value() == 1) byte = buf;
          const bool more = clock.Handle(byte, s->resumed(), s->ticket_used(), &report);
          if (byte != 0 && s->Write(std::span<const uint8_t>(&buf, 1)).ok()) {
            (void)s->Read(std::span<uint8_t>(&buf, 1));  // the client's authenticated EOF
          }
          s->Close();
          if (!more) srv->Stop();
        },
        workers);
    if (!st.ok()) std::fprintf(stderr, "server: serve: %s\n", st.ToString().c_str());
  } else {
    for (;;) {
      auto session = srv->Accept();
      if (!session.ok()) {
        if (session.status().code() == tcpcrypt::StatusCode::kCancelled) break;
        ++report.failures;
        continue;
      }
      auto& s = session.value();
      SetNoDelay(s->fd());
      uint8_t buf = 0;
      uint8_t byte = 0;
      auto r = s->Read(std::span<uint8_t>(&buf, 1));
      if (r.ok() && r.value() == 1 && s->Write(std::span<const uint8_t>(&buf, 1)).ok()) {
        byte = buf;
        (void)s->Read(std::span<uint8_t>(&buf, 1));  // the client's authenticated EOF
      }
      const bool resumed = s->resumed();
      const bool ticket = s->ticket_used();
      s->Close();
      if (!clock.Handle(byte, resumed, ticket, &report)) break;
    }
  }
  report.failures += srv->stats().failed;
  report.kdf_calls = tcpcrypt::auth::PasswordKdfCount() - kdf_start;
  return true;
}

// --- Client side (this process) ---------------------------------------------

// What one operation saw.
struct OpInfo {
  bool resumed = false;
  bool ticket = false;   // ticket re-authentication
  uint32_t batch = 0;    // X.509 batch size of the server's proof (0: none)
};

// A Connector performs one operation with the given control byte; returns
// whether it succeeded and fills |*info| and, when empty, |*detail|. It may
// be called from several threads at once.
using Connector = std::function<bool(uint8_t byte, OpInfo* info, std::string* detail)>;

Connector MakeConnector(const RowSpec& row, const Pki& pki, const Files& files, uint16_t port,
                        std::string* error) {
  if (row.kind == Kind::kPlain) {
    return [port](uint8_t byte, OpInfo* info, std::string* detail) {
      info->resumed = false;
      if (detail->empty()) *detail = "TCP_NODELAY";
      int fd = ConnectLoopback(port);
      if (fd < 0) return false;
      uint8_t echo = 0;
      bool ok = send(fd, &byte, 1, MSG_NOSIGNAL) == 1 && recv(fd, &echo, 1, MSG_WAITALL) == 1 &&
                echo == byte;
      if (ok) ok = shutdown(fd, SHUT_WR) == 0;  // FIN, as the others send their EOF
      SetLingerZero(fd);
      close(fd);
      return ok;
    };
  }
  if (row.kind == Kind::kTls) {
    X509_STORE* store = X509_STORE_new();
    if (store == nullptr || X509_STORE_add_cert(store, pki.ca.cert.get()) != 1) {
      if (store) X509_STORE_free(store);
      *error = "cannot build the X509 store";
      return nullptr;
    }
    tcpcrypt::inband::Status st;
    std::shared_ptr<tcpcrypt::sdk::TlsClientContext> ctx =
        tcpcrypt::sdk::TlsClientContext::FromStore(store, &st);
    X509_STORE_free(store);  // the context holds its own reference
    if (!ctx) {
      *error = "TLS client context: " + st.message;
      return nullptr;
    }
    bool resume = row.resume;
    if (!resume && row.concurrency > 1) {
      // With several threads, a ticket filed by one connection could be
      // offered by another between ClearSessionCache and Connect: keep
      // none (client side only; the server keeps its defaults).
      SSL_CTX_sess_set_new_cb(ctx->ssl_ctx(), nullptr);
    }
    return [ctx, port, resume](uint8_t byte, OpInfo* info, std::string* detail) {
      if (!resume) ctx->ClearSessionCache();
      int fd = ConnectLoopback(port);
      if (fd < 0) return false;
      tcpcrypt::inband::Status s;
      auto stream = tcpcrypt::sdk::TlsStream::Connect(tcpcrypt::inband::UniqueFd(fd), *ctx,
                                                      "127.0.0.1", 10000, &s);
      if (!stream) return false;
      info->resumed = stream->resumed();
      if (detail->empty()) *detail = stream->cipher_name() + ", " + stream->group_name();
      uint8_t echo = 0;
      bool ok = stream->WriteAll(std::span<const uint8_t>(&byte, 1)).ok() &&
                stream->Read(std::span<uint8_t>(&echo, 1), &s) == 1 && echo == byte;
      // close_notify first: OpenSSL marks the session of an SSL freed
      // without shutdown not resumable, which spoils the newest ticket.
      if (ok) ok = stream->Shutdown().ok();
      SetLingerZero(stream->fd());
      stream->Close();
      return ok;
    };
  }
  using tcpcrypt::AuthMechanism;
  tcpcrypt::ClientOptions o;
  o.key_exchanges = {row.kex};
  o.require_server_authentication = row.auth != Auth::kNone;
  o.resumption = row.resume;
  o.tickets = row.auth == Auth::kTicket;
  switch (row.auth) {
    case Auth::kNone:
      break;
    case Auth::kCmac:
    case Auth::kTicket:
      o.mechanisms = {AuthMechanism::kCmacPassword};
      break;
    case Auth::kPake:
      o.mechanisms = {AuthMechanism::kPake};
      break;
    case Auth::kX509:
      o.mechanisms = {AuthMechanism::kX509};
      break;
    case Auth::kX509Cmac:
      o.mechanisms = {AuthMechanism::kX509, AuthMechanism::kCmacPassword};
      break;
  }
  if (NeedsPasswords(row)) {
    o.user = kUser;
    o.realm = kRealm;
    o.password = std::make_shared<tcpcrypt::Password>(kPassword);
  }
  if (NeedsServerCert(row)) o.ca_file = files.ca();
  auto client = tcpcrypt::Client::Create(o);
  if (!client.ok()) {
    *error = client.status().ToString();
    return nullptr;
  }
  std::shared_ptr<tcpcrypt::Client> c(std::move(client.value()));
  return [c, port](uint8_t byte, OpInfo* info, std::string* detail) {
    auto session = c->Connect("127.0.0.1", port);
    if (!session.ok()) {
      static std::atomic<int> reported{0};
      if (reported++ < 3) {
        std::fprintf(stderr, "client: %s\n", session.status().ToString().c_str());
      }
      return false;
    }
    auto& s = session.value();
    info->resumed = s->resumed();
    info->ticket = s->ticket_used();
    info->batch = 0;
    std::string auth;
    for (const auto& id : s->identities()) {
      if (!auth.empty()) auth += "+";
      auth += tcpcrypt::AuthMechanismName(id.mechanism);
      if (id.mechanism == tcpcrypt::AuthMechanism::kX509) {
        auto it = id.attributes.find("batch_size");
        if (it != id.attributes.end()) {
          info->batch = static_cast<uint32_t>(std::strtoul(it->second.c_str(), nullptr, 10));
        }
      }
    }
    if (detail->empty()) {
      *detail = std::string(tcpcrypt::ChannelName(s->channel())) + ", " + s->key_exchange() +
                ", " + s->cipher();
      if (!auth.empty()) *detail += ", auth " + auth;
    }
    uint8_t echo = 0;
    bool ok = s->Write(std::span<const uint8_t>(&byte, 1)).ok();
    if (ok) {
      auto r = s->Read(std::span<uint8_t>(&echo, 1));
      ok = r.ok() && r.value() == 1 && echo == byte;
    }
    if (ok) ok = s->Shutdown().ok();  // authenticated EOF, as TLS sends close_notify
    SetLingerZero(s->fd());
    s->Close();
    return ok;
  };
}

struct RunConfig {
  double seconds = 1.5;
  double warmup_seconds = 0.3;
  bool pin = false;
  // Password logins run Argon2id on the (one) client core, a few per
  // second: these rows go on past |seconds| until they have this many
  // measured connections.
  int min_password_ops = 15;
  // Diagnostic (--pace-ms): each client thread sleeps this long after each
  // connection, so the server idles between connections as it does in the
  // password rows (whose client spends ~0.1 s in Argon2id per login).
  int pace_ms = 0;
  // --quick: rows with a RowSpec::quick_seconds measure that long.
  bool quick = false;
};

void RunClientLoop(const Connector& op, const RunConfig& cfg, const RowSpec& row, RowResult* out);

std::optional<RowResult> RunRow(const RowSpec& row, const Pki& pki, const Files& files,
                                const RunConfig& cfg) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return std::nullopt;
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    close(fds[0]);
    if (cfg.pin) (void)PinTo(1);
    ServerReport report;
    const int wfd = fds[1];
    bool ok = RunServer(
        row, pki, files, [wfd](uint16_t p) { return WriteFull(wfd, &p, sizeof(p)); }, &report);
    ok = ok && WriteFull(wfd, &report, sizeof(report));
    _exit(ok ? 0 : 2);
  }
  close(fds[1]);
  RowResult res;
  res.spec = row;
  uint16_t port = 0;
  if (!ReadFull(fds[0], &port, sizeof(port))) {
    close(fds[0]);
    waitpid(pid, nullptr, 0);
    std::fprintf(stderr, "%s: the server did not start\n", row.name.c_str());
    return std::nullopt;
  }
  std::string error;
  Connector op = MakeConnector(row, pki, files, port, &error);
  if (!op) {
    std::fprintf(stderr, "%s: %s\n", row.name.c_str(), error.c_str());
    kill(pid, SIGKILL);
    close(fds[0]);
    waitpid(pid, nullptr, 0);
    return std::nullopt;
  }
  RunClientLoop(op, cfg, row, &res);
  res.server_ok = ReadFull(fds[0], &res.server, sizeof(res.server));
  close(fds[0]);
  if (!res.server_ok) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return res;
}

// Counters of one client thread.
struct ThreadCounts {
  uint64_t ops = 0, failures = 0, resumed = 0, ticket = 0, batch_sum = 0, batch_n = 0;
  std::string detail;
};

// RunOps runs |op| with |byte| until |end| (at least |min_ops| times),
// sleeping |pace_ms| after each.
void RunOps(const Connector& op, uint8_t byte, Clock::time_point end, int min_ops, int pace_ms,
            ThreadCounts* c) {
  int n = 0;
  while (Clock::now() < end || n < min_ops) {
    if (pace_ms > 0 && n > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pace_ms));
    OpInfo info;
    if (op(byte, &info, &c->detail)) {
      ++c->ops;
      if (info.resumed) ++c->resumed;
      if (info.ticket) ++c->ticket;
      if (info.batch > 0) {
        c->batch_sum += info.batch;
        ++c->batch_n;
      }
    } else {
      ++c->failures;
    }
    ++n;
  }
}

// RunParallel runs |fn(i, counts)| on |n| threads (inline when n == 1),
// started together once all exist; returns the summed counts.
ThreadCounts RunParallel(int n, const std::function<void(ThreadCounts*)>& fn,
                         const std::function<void()>& on_start = nullptr) {
  std::vector<ThreadCounts> counts(static_cast<size_t>(n));
  if (n == 1) {
    if (on_start) on_start();
    fn(&counts[0]);
  } else {
    std::mutex mu;
    std::condition_variable cv;
    bool go = false;
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return go; });
        }
        fn(&counts[static_cast<size_t>(i)]);
      });
    }
    if (on_start) on_start();
    {
      std::lock_guard<std::mutex> lock(mu);
      go = true;
    }
    cv.notify_all();
    for (auto& t : threads) t.join();
  }
  ThreadCounts sum;
  for (const auto& c : counts) {
    sum.ops += c.ops;
    sum.failures += c.failures;
    sum.resumed += c.resumed;
    sum.ticket += c.ticket;
    sum.batch_sum += c.batch_sum;
    sum.batch_n += c.batch_n;
    if (sum.detail.empty()) sum.detail = c.detail;
  }
  return sum;
}

void RunClientLoop(const Connector& op, const RunConfig& cfg, const RowSpec& row,
                   RowResult* out) {
  RowResult& res = *out;
  const int concurrency = row.concurrency;
  const int min_ops =
      NeedsPasswords(row) && row.auth != Auth::kTicket ? cfg.min_password_ops : 0;
  const double seconds =
      cfg.quick && row.quick_seconds > 0 ? row.quick_seconds : cfg.seconds;
  // Warm-up (fills caches: TLS tickets, tcpcrypt resumption secrets,
  // authentication tickets); every thread connects at least once (twice
  // when alone, so resumption has something to resume).
  const Clock::time_point warm_end =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(cfg.warmup_seconds));
  const int warm_min = concurrency == 1 ? 2 : 1;
  ThreadCounts warm = RunParallel(concurrency, [&](ThreadCounts* c) {
    RunOps(op, kWarm, warm_end, warm_min, 0, c);
  });
  // The negotiated parameters of the mark connection (steady state: the
  // ticket row's first warm-up connection runs the password mechanism).
  std::string detail;
  OpInfo info;
  (void)op(kMark, &info, &detail);
  if (detail.empty()) detail = warm.detail;
  double cpu0 = 0;
  Clock::time_point t0, end;
  ThreadCounts run = RunParallel(
      concurrency, [&](ThreadCounts* c) { RunOps(op, kPing, end, min_ops, cfg.pace_ms, c); },
      [&] {
        cpu0 = CpuMicros();
        t0 = Clock::now();
        end = t0 + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(seconds));
      });
  OpInfo qi;
  if (op(kQuit, &qi, &detail)) {
    ++run.ops;
    if (qi.resumed) ++run.resumed;
    if (qi.ticket) ++run.ticket;
  } else {
    ++run.failures;
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  res.client_cpu_us = CpuMicros() - cpu0;
  res.client_ops = run.ops;
  res.client_failures = run.failures;
  res.client_resumed = run.resumed;
  res.client_ticket = run.ticket;
  res.batch_sum = run.batch_sum;
  res.batch_n = run.batch_n;
  res.detail = detail;
}

const RowSpec* FindRow(const std::string& name) { return FindRowIn(AllRows(), name); }

double Ratio(uint64_t a, uint64_t b) {
  return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0;
}

// --- Standalone modes: `server` and `client` in two processes you start ----
//
//   setup_bench server --row tls13_full [--cpu 1] [--pki-dir DIR]
//     prints "port N", serves until the client's quit connection, then
//     prints its report as one JSON line. TLS and X.509 rows write
//     DIR/ca.pem (and the X.509 rows DIR/server.pem, DIR/server.key, or
//     for the RSA-2048 rows DIR/server-rsa.pem, DIR/server-rsa.key);
//     password rows write DIR/users.db.
//   setup_bench client --row tls13_full --port N [--cpu 0] [--pki-dir DIR]
//                      [--seconds S]
//     prints the client's result as one JSON line. Rows with concurrency N
//     run N client threads. TLS and X.509 rows read DIR/ca.pem.

int ServerMode(const RowSpec& row, const std::string& pki_dir) {
  std::string error;
  auto pkis = MakePkis(IsRsa(row), &error);
  if (!pkis) {
    std::fprintf(stderr, "cannot make the test PKI: %s\n", error.c_str());
    return 1;
  }
  const Pki* pki = &pkis->For(row);
  const Files files = RowFiles(Files{pki_dir}, row);
  if (!WriteServerFiles(files, *pki, NeedsCa(row), NeedsPasswords(row), &error)) {
    std::fprintf(stderr, "cannot write the server files in %s: %s\n", pki_dir.c_str(),
                 error.c_str());
    return 1;
  }
  ServerReport report;
  bool ok = RunServer(
      row, *pki, files,
      [](uint16_t port) {
        std::printf("port %u\n", static_cast<unsigned>(port));
        std::fflush(stdout);
        return true;
      },
      &report);
  if (!ok) return 1;
  nlohmann::json j = {{"row", row.name},
                      {"server_ops", report.ops},
                      {"server_cpu_us_total", report.cpu_us},
                      {"server_cpu_us_per_op",
                       report.ops ? report.cpu_us / static_cast<double>(report.ops) : 0.0},
                      {"server_busy", report.wall_us > 0 ? report.cpu_us / report.wall_us : 0.0},
                      {"server_resumed", report.resumed},
                      {"server_ticket", report.ticket},
                      {"server_signatures", report.signatures},
                      {"signatures_per_conn", Ratio(report.signatures, report.ops)},
                      {"server_kdf_calls", report.kdf_calls},
                      {"server_failures", report.failures}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

int ClientMode(const RowSpec& row, uint16_t port, const std::string& pki_dir,
               const RunConfig& cfg) {
  Pki pki;
  Files files{pki_dir};
  if (NeedsCa(row)) {
    std::string path = files.ca();
    FILE* f = std::fopen(path.c_str(), "r");
    X509* ca = f ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr;
    if (f) std::fclose(f);
    if (ca == nullptr) {
      std::fprintf(stderr, "cannot read %s\n", path.c_str());
      return 1;
    }
    pki.ca.cert = x509::ShareCert(ca);
  }
  std::string error;
  Connector op = MakeConnector(row, pki, files, port, &error);
  if (!op) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  RowResult res;
  res.spec = row;
  RunClientLoop(op, cfg, row, &res);
  double rate = res.seconds > 0 ? static_cast<double>(res.client_ops) / res.seconds : 0.0;
  nlohmann::json j = {
      {"row", row.name},
      {"concurrency", row.concurrency},
      {"negotiated", res.detail},
      {"ops", res.client_ops},
      {"seconds", res.seconds},
      {"rate_per_s", rate},
      {"client_cpu_us_per_op",
       res.client_ops ? res.client_cpu_us / static_cast<double>(res.client_ops) : 0.0},
      {"client_busy", res.seconds > 0 ? res.client_cpu_us / (res.seconds * 1e6) : 0.0},
      {"client_resumed", res.client_resumed},
      {"client_ticket", res.client_ticket},
      {"mean_batch_client", Ratio(res.batch_sum, res.batch_n)},
      {"client_failures", res.client_failures}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

std::string Pct(uint64_t part, uint64_t whole) {
  return Fmt(whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0, 0) +
         "%";
}

}  // namespace

int main(int argc, char** argv) {
  RunConfig cfg;
  CommonOptions opts;
  opts.json_path = "setup_bench.json";
  std::string row_name;
  std::string pki_dir = ".";
  int port = 0;
  int cpu = -1;
  auto row_exists = [](const std::string& name) { return FindRow(name) != nullptr; };

  CLI::App app{"setup_bench: connection-setup rate and server CPU time per connection "
               "(plain TCP, tcpcrypt, TLS 1.3, and the authenticated rows). Without a "
               "subcommand (or with `run`) it forks the server per row, prints Markdown "
               "tables and writes JSON. --quick (default): ~1.2 s per row after a 0.3 s "
               "warm-up; --full: ~10 s after 1 s.",
               "setup_bench"};
  app.footer(
      "Every row works in split mode (`server` and `client`, two processes you start);\n"
      "TLS and X.509 rows need the same --pki-dir on both sides (the server writes D/ca.pem).");
  // --seconds and --pace-ms, for a run and for `client`.
  std::vector<CLI::Option*> seconds_opts;
  auto add_timing = [&](CLI::App& a) {
    seconds_opts.push_back(
        a.add_option("--seconds", cfg.seconds,
                     "Measured seconds per row instead of the --quick / --full duration")
            ->check(CLI::PositiveNumber));
    a.add_option("--pace-ms", cfg.pace_ms,
                 "Diagnostic: each client thread sleeps MS after each connection")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
  };
  AddCommonOptions(app, &opts, row_exists);
  add_timing(app);
  app.add_subcommand("run", "Run the rows (the default); takes the options above")
      ->fallthrough();
  // --row, --cpu, --pki-dir: the two halves of split mode.
  auto add_split = [&](CLI::App* a) {
    a->add_option("--row", row_name, "The row (see `list`)")
        ->type_name("ROW")
        ->required()
        ->check(RowValidator(row_exists, app.get_name()));
    a->add_option("--cpu", cpu, "Pin this process to CPU N")->type_name("N");
    a->add_option("--pki-dir", pki_dir,
                  "Directory of the server's files: ca.pem (TLS and X.509 rows), "
                  "server[-rsa].pem/.key (X.509 rows), users.db (password rows)")
        ->type_name("DIR")
        ->capture_default_str();
  };
  CLI::App* server = app.add_subcommand(
      "server",
      "The server half of one row: prints \"port N\", serves until the client's quit "
      "connection, then prints its report as one JSON line");
  add_split(server);
  CLI::App* client = app.add_subcommand(
      "client",
      "The client half of one row, against `server`; prints its result as one JSON line "
      "(rows with concurrency N run N client threads)");
  add_split(client);
  client->add_option("--port", port, "The server's port")
      ->required()
      ->check(CLI::Range(1, 65535));
  AddModeFlags(*client, &opts.mode);
  add_timing(*client);
  AddListCommand(app, [] {
    for (const auto& r : AllRows()) {
      std::printf("%s\t%s\t%s\tconcurrency %d%s\n", r.name.c_str(), r.section.c_str(),
                  r.description.c_str(), r.concurrency,
                  NeedsCa(r) ? "\t(split mode: the client needs --pki-dir with the "
                               "server's ca.pem)"
                             : "");
    }
  });
  if (auto rc = ParseCommandLine(app, argc, argv)) return *rc;

  std::string mode = opts.mode;
  if (std::any_of(seconds_opts.begin(), seconds_opts.end(),
                  [](const CLI::Option* o) { return o->count() > 0; })) {
    mode = "custom";
  }
  if (mode == "quick") {
    cfg.seconds = 1.2;
    cfg.quick = true;
  }
  if (mode == "full") {
    cfg.seconds = 10.0;
    cfg.warmup_seconds = 1.0;
    cfg.min_password_ops = 60;
  }
  signal(SIGPIPE, SIG_IGN);
  if (server->parsed() || client->parsed()) {
    const RowSpec* row = FindRow(row_name);  // checked by --row's validator
    if (cpu >= 0 && !PinTo(cpu)) std::fprintf(stderr, "cannot pin to CPU %d\n", cpu);
    if (server->parsed()) return ServerMode(*row, pki_dir);
    return ClientMode(*row, static_cast<uint16_t>(port), pki_dir, cfg);
  }
  const int allowed_cpus = AllowedCpus();
  cfg.pin = allowed_cpus >= 2;
  if (cfg.pin && !PinTo(0)) cfg.pin = false;

  std::vector<const RowSpec*> selected;
  bool certs = false, rsa_certs = false, users = false, rsa = false;
  for (const auto& row : AllRows()) {
    if (!RowSelected(opts, row.name)) continue;
    selected.push_back(&row);
    (IsRsa(row) ? rsa_certs : certs) |= NeedsServerCert(row);
    users |= NeedsPasswords(row);
    rsa |= IsRsa(row);
  }
  std::string error;
  auto pkis = MakePkis(rsa, &error);
  if (!pkis) {
    std::fprintf(stderr, "cannot make the test PKI: %s\n", error.c_str());
    return 1;
  }
  Files files;
  if (certs || rsa_certs || users) {
    char tmpl[] = "/tmp/setup_bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      std::fprintf(stderr, "mkdtemp: %s\n", std::strerror(errno));
      return 1;
    }
    files.dir = tmpl;
    Files rsa_files = files;
    rsa_files.leaf = "server-rsa";
    if (!WriteServerFiles(files, pkis->p256, certs, users, &error) ||
        (rsa_certs && !WriteServerFiles(rsa_files, *pkis->rsa, true, false, &error))) {
      std::fprintf(stderr, "cannot write the server files: %s\n", error.c_str());
      return 1;
    }
  }

  std::vector<RowResult> results;
  for (const RowSpec* row : selected) {
    std::fprintf(stderr, "running %s ...\n", row->name.c_str());
    auto r = RunRow(*row, pkis->For(*row), RowFiles(files, *row), cfg);
    if (r) results.push_back(std::move(*r));
  }
  if (!files.dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(files.dir, ec);
  }

  auto find = [&](const std::string& name) -> const RowResult* {
    for (const auto& r : results)
      if (r.spec.name == name && r.server_ok && r.server.ops > 0) return &r;
    return nullptr;
  };
  // Ratios against TLS 1.3 full.
  const RowResult* tls_full = find("tls13_full");
  auto rate = [](const RowResult& r) {
    return r.seconds > 0 ? static_cast<double>(r.client_ops) / r.seconds : 0.0;
  };
  auto server_us = [](const RowResult& r) {
    return r.server_ok && r.server.ops > 0 ? r.server.cpu_us / static_cast<double>(r.server.ops)
                                           : 0.0;
  };
  auto client_us = [](const RowResult& r) {
    return r.client_ops > 0 ? r.client_cpu_us / static_cast<double>(r.client_ops) : 0.0;
  };

  std::string note = MachineNote(cfg.pin, allowed_cpus);
  std::ostringstream md;
  md << "## Connection setup (" << mode << ", " << Fmt(cfg.seconds, 1) << " s per row)\n\n";
  md << "Machine: " << note << ". Shared machine: numbers are indicative.\n\n";
  if (cfg.pace_ms > 0) {
    md << "**Diagnostic run: each client thread sleeps " << cfg.pace_ms
       << " ms after each connection (--pace-ms).**\n\n";
  }
  md << "| Row | Negotiated | conn/s | server µs CPU/conn | client µs CPU/conn | rate vs TLS full"
        " | server CPU vs TLS full | resumed | failures |\n";
  md << "|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
  std::ostringstream auth_md;
  auth_md << "\n## Authenticated connection setup (" << mode << ", " << Fmt(cfg.seconds, 1)
          << " s per row)\n\n";
  auth_md << "| Row | clients | Negotiated | conn/s | server µs CPU/conn | client µs CPU/conn"
             " | server core busy | client core busy | signatures/conn | mean batch"
             " | resumed | ticket | failures |\n";
  auth_md << "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  bool any_auth = false;
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : results) {
    double rr = rate(r);
    double su = server_us(r);
    double cu = client_us(r);
    double server_busy = r.server.wall_us > 0 ? r.server.cpu_us / r.server.wall_us : 0.0;
    double client_busy = r.seconds > 0 ? r.client_cpu_us / (r.seconds * 1e6) : 0.0;
    double sigs = Ratio(r.server.signatures, r.server.ops);
    double batch = Ratio(r.batch_sum, r.batch_n);
    std::string rate_ratio = "–", cpu_ratio = "–";
    nlohmann::json j = {
        {"name", r.spec.name},
        {"section", r.spec.section},
        {"concurrency", r.spec.concurrency},
        {"description", r.spec.description},
        {"negotiated", r.detail},
        {"ops", r.client_ops},
        {"seconds", r.seconds},
        {"rate_per_s", rr},
        {"server_cpu_us_per_op", su},
        {"server_ops", r.server.ops},
        {"server_cpu_us_total", r.server.cpu_us},
        {"server_report_ok", r.server_ok},
        {"client_cpu_us_per_op", cu},
        {"client_resumed", r.client_resumed},
        {"server_resumed", r.server.resumed},
        {"client_failures", r.client_failures},
        {"server_failures", r.server.failures},
        {"server_busy", server_busy},
        {"client_busy", client_busy},
        {"client_ticket", r.client_ticket},
        {"server_ticket", r.server.ticket},
        {"server_signatures", r.server.signatures},
        {"signatures_per_conn", sigs},
        {"mean_batch_client", batch},
        {"server_kdf_calls", r.server.kdf_calls},
    };
    if (tls_full != nullptr) {
      double tr = rate(*tls_full), tu = server_us(*tls_full);
      if (tr > 0) {
        rate_ratio = Fmt(rr / tr, 2) + "×";
        j["rate_vs_tls13_full"] = rr / tr;
      }
      if (tu > 0) {
        cpu_ratio = Fmt(su / tu, 2) + "×";
        j["server_cpu_vs_tls13_full"] = su / tu;
      }
    }
    if (r.spec.section == "setup") {
      md << "| " << r.spec.description << " | " << r.detail << " | " << Fmt(rr, 0) << " | "
         << (r.server_ok ? Fmt(su, 1) : std::string("n/a")) << " | " << Fmt(cu, 1) << " | "
         << rate_ratio << " | " << cpu_ratio << " | " << Pct(r.client_resumed, r.client_ops)
         << " | " << (r.client_failures + r.server.failures) << " |\n";
    } else {
      any_auth = true;
      const bool x509 = NeedsServerCert(r.spec);
      auth_md << "| " << r.spec.name << " | " << r.spec.concurrency << " | " << r.detail
              << " | " << Fmt(rr, 0) << " | "
              << (r.server_ok ? Fmt(su, 1) : std::string("n/a")) << " | " << Fmt(cu, 1)
              << " | " << Fmt(100.0 * server_busy, 0) << "% | " << Fmt(100.0 * client_busy, 0)
              << "% | " << (x509 ? Fmt(sigs, 3) : std::string("–")) << " | "
              << (x509 ? Fmt(batch, 1) : std::string("–")) << " | "
              << Pct(r.client_resumed, r.client_ops) << " | "
              << Pct(r.client_ticket, r.client_ops) << " | "
              << (r.client_failures + r.server.failures) << " |\n";
    }
    rows.push_back(std::move(j));
  }
  md << "\nOne connection = TCP connect + handshake + 1-byte echo + client end-of-stream "
        "(FIN / close_notify / tcpcrypt EOF) + close (client RST). "
        "Server CPU = getrusage(RUSAGE_SELF) user+sys of the server process over the "
        "measured connections.\n";

  // Issue 5 targets, as ratios of server CPU per connection.
  nlohmann::json targets = nlohmann::json::array();
  std::ostringstream tmd;
  // |bound| nullopt: an informational line (no target to meet).
  auto target = [&](const std::string& what, const std::string& formula, const RowResult* num,
                    const RowResult* den, bool minus_one, std::optional<double> bound,
                    bool at_most) {
    nlohmann::json t = {{"target", what}, {"formula", formula}};
    std::string measured = "not measured", met = bound ? "–" : "(informational)";
    if (!bound) t["informational"] = true;
    if (num != nullptr && den != nullptr && server_us(*den) > 0) {
      double v = server_us(*num) / server_us(*den) - (minus_one ? 1.0 : 0.0);
      measured = minus_one ? Fmt(100.0 * v, 1) + " %" : Fmt(v, 2) + "×";
      t["value"] = v;
      if (bound) {
        bool ok = at_most ? v <= *bound : v >= *bound;
        met = ok ? "yes" : "**no**";
        t["met"] = ok;
      }
    }
    tmd << "| " << what << " | " << formula << " | " << measured << " | " << met << " |\n";
    targets.push_back(std::move(t));
  };
  const RowResult* tls_cert_c1 = find("tls13_cert_c1");
  if (tls_cert_c1 == nullptr) tls_cert_c1 = tls_full;
  target("CMAC adds ≤ 5 % server CPU over unauthenticated tcpcrypt",
         "tcpcrypt_cmac ÷ tcpcrypt_fresh_x25519 − 1", find("tcpcrypt_cmac"),
         find("tcpcrypt_fresh_x25519"), true, 0.05, true);
  target("batch signing, 128 clients: ≥ 10× TLS 1.3 cert handshakes per server CPU second",
         "tls13_cert_c128 ÷ tcpcrypt_x509_c128", find("tls13_cert_c128"),
         find("tcpcrypt_x509_c128"), false, 10.0, false);
  target("batch signing at 128 clients, RSA-2048", "tls13_cert_rsa_c128 ÷ tcpcrypt_x509_rsa_c128",
         find("tls13_cert_rsa_c128"), find("tcpcrypt_x509_rsa_c128"), false, std::nullopt,
         false);
  target("SPAKE2+ ≥ 2× TLS 1.3 cert handshakes per server CPU second",
         "tls13_cert_c1 ÷ tcpcrypt_pake", tls_cert_c1, find("tcpcrypt_pake"), false, 2.0,
         false);
  if (any_auth) {
    auth_md << "\nServer core busy = server CPU ÷ wall time between mark and quit (100 % = "
               "the server's core is the bottleneck); client core busy likewise for the "
               "client threads on their one core. signatures/conn = X.509 root signatures "
               "÷ connections (server); mean batch = the batch_size the clients saw. "
               "When neither core is near 100 %, other load on the machine took them. "
               "tcpcrypt_x509_cN: Server::Serve (epoll loop, max(8, N) workers, batch "
               "signer thread); the other tcpcrypt rows: Server::Accept, one connection "
               "at a time, as in the setup section. tls13_cert_c128: 128 blocking server "
               "threads on one SSL_CTX with OpenSSL's default settings. "
               "*_rsa_* rows (supplementary): the same with an RSA-2048 server certificate "
               "(RSA-2048 leaf under the same ECDSA P-256 CA; tcpcrypt signs each batch root "
               "with RSA-PSS, TLS 1.3 each handshake with rsa_pss_rsae_sha256)"
            << (cfg.quick ? ", measured " + Fmt(kRsaQuickSeconds, 1) + " s each under --quick"
                          : std::string())
            << ". "
               "Password rows: Argon2id at the SDK default (PasswordHashing::kInteractive: "
               "64 MiB, 2 passes) on the client for every password login, at least "
            << cfg.min_password_ops
            << " measured logins per row; the server stores verifiers and made "
            << [&] {
                 uint64_t k = 0;
                 for (const auto& r : results) k += r.server.kdf_calls;
                 return k;
               }()
            << " Argon2id calls in all its processes.\n";
    auth_md << "\n### Targets (issue 5), server CPU per connection\n\n"
               "| Target | Ratio | Measured | Met? |\n|---|---|---:|---|\n"
            << tmd.str();
    md << auth_md.str();
  }
  std::fputs(md.str().c_str(), stdout);

  nlohmann::json out = {
      {"benchmark", "connection_setup"},
      {"mode", mode},
      {"seconds_per_row", cfg.seconds},
      {"machine", note},
      {"pinned", cfg.pin},
      {"pace_ms", cfg.pace_ms},
      {"rows", rows},
      {"targets", targets},
  };
  WriteReports(opts, out.dump(2), md.str());
  return 0;
}
