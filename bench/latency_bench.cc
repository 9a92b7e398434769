// latency_bench: time to the first authenticated application byte, in
// round trips (issue "bench/", table 2).
//
// Every connection goes through a userspace delay proxy (a forked process)
// that delivers each chunk it reads a fixed one-way delay D after reading
// it, in order, and passes half-closes on (shutdown(SHUT_WR) once the
// queued bytes before the end of stream are delivered). One round trip is
// therefore 2·D (loopback adds microseconds).
//
// TCP's own handshake. The client's connect() to the proxy completes at
// once, so the proxy charges the handshake explicitly: it models SYN
// (0.5 RTT) and SYN-ACK (back at 1 RTT) by holding every client-to-server
// chunk until at least 3·D (1.5 RTT) after it accepted the connection,
// which is when a real client's first byte, sent as its connect() returns
// at 1 RTT, would reach the server. The server never speaks first in any
// row, so its direction needs no such rule. The round-trip counts below
// therefore INCLUDE TCP's handshake (plain TCP = 2: 1 for the handshake,
// 1 for the echo); the column "after TCP" subtracts that one round trip,
// which is how docs/PROTOCOL.md §1 counts.
//
// One measurement: the client starts connect(), completes the handshake
// and authentication as its API allows, sends one byte as soon as it may,
// and stops the clock when the server's echo of that byte arrives. Each row
// runs one warm-up connection (which also fills the resumption / ticket /
// TLS session caches) and then N measured connections (5 quick, 20 full);
// the table shows the median.
//
// CPU. Client CPU is this process's user+sys time over the same interval;
// server CPU is the server process's user+sys time per connection
// (getrusage, all threads), reported over a pipe. The proxy is a separate
// process, so it is in neither. Password rows use the cheapest Argon2id
// parameters the library allows (auth::KdfParams::ForTests() records and
// PasswordHashing::kMinimumForTestsOnly) unless --kdf interactive is given;
// the KDF then adds its CPU time (tens to hundreds of ms) to the wall time.
//
// Usage:
//   latency_bench [--quick | --full] [--delay-ms D] [--samples N]
//                 [--rows a,b,...] [--kdf min|interactive]
//                 [--json FILE] [--md FILE]
//   latency_bench list     print the row names
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
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
using tcpcrypt::AuthMechanism;
namespace x509 = tcpcrypt::auth::x509;
using namespace tcpcrypt::bench;  // NOLINT: the harness is this program's toolkit

constexpr char kUser[] = "alice";
constexpr char kPassword[] = "correct horse battery staple";

enum class Kind { kPlain, kTcpcrypt, kTls };

// RowSpec is one line of the table. |expected_rtt| is what
// docs/PROTOCOL.md (§1 round trips, §16 table) and RFC 8446 predict,
// including TCP's handshake.
struct RowSpec {
  std::string name;
  std::string description;
  Kind kind = Kind::kPlain;
  std::vector<AuthMechanism> plan;  // tcpcrypt: the one server plan = client mechanisms
  bool resume = false;              // tcpcrypt resumption / TLS ticket
  bool ticket = false;              // tcpcrypt ticket re-authentication
  double expected_rtt = 0;
};

const std::vector<RowSpec>& AllRows() {
  using M = AuthMechanism;
  static const std::vector<RowSpec> rows = {
      {"plain_tcp", "plain TCP", Kind::kPlain, {}, false, false, 2},
      {"tcpcrypt_fresh", "tcpcrypt fresh (X25519, no auth)", Kind::kTcpcrypt, {}, false, false,
       3},
      {"tcpcrypt_resumed", "tcpcrypt resumed (no auth)", Kind::kTcpcrypt, {}, true, false, 3},
      {"tcpcrypt_cmac", "tcpcrypt + CMAC password", Kind::kTcpcrypt, {M::kCmacPassword}, false,
       false, 5},
      {"tcpcrypt_pake", "tcpcrypt + SPAKE2+", Kind::kTcpcrypt, {M::kPake}, false, false, 6},
      {"tcpcrypt_x509", "tcpcrypt + X.509 batch-signed (server cert)", Kind::kTcpcrypt,
       {M::kX509}, false, false, 4},
      {"tcpcrypt_x509_cmac", "tcpcrypt + X.509 + CMAC", Kind::kTcpcrypt,
       {M::kX509, M::kCmacPassword}, false, false, 5},
      {"tcpcrypt_ticket", "tcpcrypt resumed + ticket re-authentication", Kind::kTcpcrypt,
       {M::kCmacPassword}, true, true, 4},
      {"tls13_full", "TLS 1.3 full (ECDSA P-256 cert, X25519)", Kind::kTls, {}, false, false, 3},
      {"tls13_resumed", "TLS 1.3 resumed (ticket, no early data)", Kind::kTls, {}, true, false,
       3},
  };
  return rows;
}

const RowSpec* FindRow(const std::string& name) { return FindRowIn(AllRows(), name); }

// Env is what every row shares: the TLS PKI in memory, and in |dir| the
// X.509 files (ca.pem, server.pem, server.key) and the users store.
struct Env {
  Pki pki;
  std::string dir;
  std::string users_file;
  bool interactive_kdf = false;
};

bool MakeEnv(bool interactive_kdf, Env* out, std::string* error) {
  auto pki = MakePki(error);
  if (!pki) return false;
  out->pki = *pki;
  out->interactive_kdf = interactive_kdf;
  char tmpl[] = "/tmp/latency-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    *error = std::string("mkdtemp: ") + std::strerror(errno);
    return false;
  }
  out->dir = tmpl;
  if (!x509::WriteServerPki(out->dir, "127.0.0.1", x509::PkiKeyType::kEcdsaP256, 30, error)) {
    return false;
  }
  out->users_file = out->dir + "/users.db";
  auto store = tcpcrypt::auth::SqliteVerifierStore::Open(out->users_file, error);
  if (store == nullptr) return false;
  const tcpcrypt::auth::KdfParams kdf = interactive_kdf
                                            ? tcpcrypt::auth::KdfParams::Interactive()
                                            : tcpcrypt::auth::KdfParams::ForTests();
  tcpcrypt::auth::VerifierRecord r;
  if (!tcpcrypt::auth::pake::MakeRecord(kUser, "tcpcrypt", kPassword, kdf,
                                        tcpcrypt::SystemRng::Instance(), &r) ||
      !store->Put(r) ||
      !tcpcrypt::auth::cmac::MakeRecord(kUser, "tcpcrypt", kPassword, kdf,
                                        tcpcrypt::SystemRng::Instance(), &r) ||
      !store->Put(r)) {
    *error = "cannot write the users store";
    return false;
  }
  return true;
}

void RemoveEnv(const Env& env) {
  if (env.dir.empty()) return;
  for (const char* f : {"ca.pem", "ca.key", "server.pem", "server.key", "users.db",
                        "users.db-wal", "users.db-shm", "users.db-journal"}) {
    (void)unlink((env.dir + "/" + f).c_str());
  }
  (void)rmdir(env.dir.c_str());
}

bool SendAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// --- The delay proxy (a forked process) --------------------------------------

// Relay forwards one accepted connection |cfd| to the server on
// 127.0.0.1:|server_port|, both ways, each chunk |delay| after it was read;
// client-to-server chunks not before |accepted_at| + 3·delay (see the file
// comment). Order is kept: due times only grow within a direction.
void Relay(int cfd, uint16_t server_port, Clock::duration delay, Clock::time_point accepted_at) {
  SetNoDelay(cfd);
  int sfd = ConnectLoopback(server_port);
  if (sfd < 0) {
    close(cfd);
    return;
  }
  struct Chunk {
    Clock::time_point due;
    std::vector<uint8_t> data;  // empty: end of stream
  };
  const int src[2] = {cfd, sfd};
  const int dst[2] = {sfd, cfd};
  std::deque<Chunk> queue[2];  // 0: client to server, 1: server to client
  bool reading[2] = {true, true};
  bool delivered_eof[2] = {false, false};
  bool failed = false;
  const Clock::time_point gate = accepted_at + 3 * delay;
  std::vector<uint8_t> buf(64 * 1024);
  while (!failed && !(delivered_eof[0] && delivered_eof[1])) {
    Clock::time_point now = Clock::now();
    for (int d = 0; d < 2 && !failed; ++d) {
      while (!queue[d].empty() && queue[d].front().due <= now) {
        Chunk& c = queue[d].front();
        if (c.data.empty()) {
          (void)shutdown(dst[d], SHUT_WR);
          delivered_eof[d] = true;
        } else if (!SendAll(dst[d], c.data.data(), c.data.size())) {
          failed = true;
          break;
        }
        queue[d].pop_front();
      }
    }
    if (failed || (delivered_eof[0] && delivered_eof[1])) break;
    pollfd pfd[2];
    int nfds = 0;
    int which[2];
    for (int d = 0; d < 2; ++d) {
      if (!reading[d]) continue;
      pfd[nfds] = {src[d], POLLIN, 0};
      which[nfds++] = d;
    }
    std::optional<Clock::time_point> next;
    for (int d = 0; d < 2; ++d) {
      if (!queue[d].empty() && (!next || queue[d].front().due < *next)) next = queue[d].front().due;
    }
    if (nfds == 0 && !next) break;
    timespec ts{};
    timespec* tsp = nullptr;
    if (next) {
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*next - Clock::now()).count();
      if (ns < 0) ns = 0;
      ts.tv_sec = static_cast<time_t>(ns / 1000000000);
      ts.tv_nsec = static_cast<long>(ns % 1000000000);
      tsp = &ts;
    }
    int n = ppoll(pfd, static_cast<nfds_t>(nfds), tsp, nullptr);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    now = Clock::now();
    for (int i = 0; i < nfds; ++i) {
      if ((pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const int d = which[i];
      ssize_t r = read(src[d], buf.data(), buf.size());
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      Clock::time_point due = now + delay;
      if (d == 0) due = std::max(due, gate);
      if (r > 0) {
        queue[d].push_back({due, std::vector<uint8_t>(buf.begin(), buf.begin() + r)});
      } else {  // end of stream or reset: pass an end of stream on
        queue[d].push_back({due, {}});
        reading[d] = false;
      }
    }
  }
  if (failed) {
    SetLingerZero(cfd);
    SetLingerZero(sfd);
  }
  close(cfd);
  close(sfd);
}

[[noreturn]] void ProxyMain(int lfd, uint16_t server_port, Clock::duration delay) {
  for (;;) {
    int cfd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    Clock::time_point at = Clock::now();
    if (cfd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      _exit(3);
    }
    std::thread(Relay, cfd, server_port, delay, at).detach();
  }
}

// --- The server (a forked process) -------------------------------------------

// What the server reports per connection over the pipe.
struct ServerReport {
  double cpu_us = 0;
  uint8_t ok = 0;
  uint8_t resumed = 0;
  uint8_t ticket = 0;
};

tcpcrypt::ServerOptions TcpcryptServerOptions(const RowSpec& row, const Env& env) {
  tcpcrypt::ServerOptions o;
  o.key_exchanges = {tcpcrypt::KeyExchange::kCurve25519};
  o.resumption = true;
  o.issue_tickets = row.ticket;
  if (row.plan.empty()) {
    o.require_authentication = false;
    return o;
  }
  o.plans = {row.plan};
  o.require_authentication = true;
  o.users_file = env.users_file;
  o.password_hashing = env.interactive_kdf ? tcpcrypt::PasswordHashing::kInteractive
                                           : tcpcrypt::PasswordHashing::kMinimumForTestsOnly;
  o.cert_file = env.dir + "/server.pem";
  o.key_file = env.dir + "/server.key";
  return o;
}

// RunServer serves |row| until killed: accept, read one byte, echo it,
// read the client's end of stream, close; then one ServerReport to |wfd|.
// Sends its port over |wfd| first; returns only on a set-up failure.
void RunServer(const RowSpec& row, const Env& env, int wfd) {
  uint16_t port = 0;
  if (row.kind == Kind::kPlain || row.kind == Kind::kTls) {
    int lfd = ListenLoopback(&port);
    if (lfd < 0) return;
    std::shared_ptr<tcpcrypt::sdk::TlsServerContext> tls;
    if (row.kind == Kind::kTls) {
      tcpcrypt::inband::Status st;
      tls = tcpcrypt::sdk::TlsServerContext::FromMemory(env.pki.leaf.cert.get(), {},
                                                       env.pki.leaf.key.get(), &st);
      if (!tls) {
        std::fprintf(stderr, "server: TLS context: %s\n", st.message.c_str());
        return;
      }
    }
    if (!WriteFull(wfd, &port, sizeof(port))) return;
    for (;;) {
      ServerReport rep;
      const double c0 = CpuMicros();
      int cfd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (cfd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;
      }
      SetNoDelay(cfd);
      uint8_t b = 0;
      if (row.kind == Kind::kPlain) {
        rep.ok = recv(cfd, &b, 1, 0) == 1 && SendAll(cfd, &b, 1);
        if (rep.ok) (void)recv(cfd, &b, 1, 0);  // the client's FIN
        close(cfd);
      } else {
        tcpcrypt::inband::Status st;
        auto s = tcpcrypt::sdk::TlsStream::Accept(tcpcrypt::inband::UniqueFd(cfd), *tls, 10000,
                                                   &st);
        if (s) {
          rep.resumed = s->resumed();
          rep.ok = s->Read(std::span<uint8_t>(&b, 1), &st) == 1 &&
                   s->WriteAll(std::span<const uint8_t>(&b, 1)).ok();
          if (rep.ok) (void)s->Read(std::span<uint8_t>(&b, 1), &st);  // close_notify
          s->Close();
        }
      }
      rep.cpu_us = CpuMicros() - c0;
      if (!WriteFull(wfd, &rep, sizeof(rep))) return;
    }
  }
  auto server = tcpcrypt::Server::Create(TcpcryptServerOptions(row, env));
  if (!server.ok()) {
    std::fprintf(stderr, "server: %s\n", server.status().ToString().c_str());
    return;
  }
  auto st = server.value()->Listen("127.0.0.1", 0);
  if (!st.ok()) {
    std::fprintf(stderr, "server: listen: %s\n", st.ToString().c_str());
    return;
  }
  port = server.value()->port();
  if (!WriteFull(wfd, &port, sizeof(port))) return;
  for (;;) {
    ServerReport rep;
    const double c0 = CpuMicros();
    auto session = server.value()->Accept();
    if (session.ok()) {
      auto& s = session.value();
      uint8_t b = 0;
      rep.resumed = s->resumed();
      rep.ticket = s->ticket_used();
      auto r = s->Read(std::span<uint8_t>(&b, 1));
      rep.ok = r.ok() && r.value() == 1 && s->Write(std::span<const uint8_t>(&b, 1)).ok();
      if (rep.ok) (void)s->Read(std::span<uint8_t>(&b, 1));  // authenticated EOF
      s->Close();
    } else if (session.status().code() == tcpcrypt::StatusCode::kCancelled) {
      return;
    } else {
      std::fprintf(stderr, "server: %s\n", session.status().ToString().c_str());
    }
    rep.cpu_us = CpuMicros() - c0;
    if (!WriteFull(wfd, &rep, sizeof(rep))) return;
  }
}

// --- The client (this process) ------------------------------------------------

struct Sample {
  bool ok = false;
  double ms = 0;         // connect() start to echo
  double client_cpu_us = 0;
  bool resumed = false;  // as the client saw it
  bool ticket = false;
  std::string detail;
};

// A Connector runs one measured connection to 127.0.0.1:|port|.
using Connector = std::function<Sample()>;

Connector MakeConnector(const RowSpec& row, const Env& env, uint16_t port, std::string* error) {
  if (row.kind == Kind::kPlain) {
    return [port] {
      Sample s;
      const double c0 = CpuMicros();
      const auto t0 = Clock::now();
      int fd = ConnectLoopback(port);
      if (fd < 0) return s;
      uint8_t b = 'x', echo = 0;
      s.ok = SendAll(fd, &b, 1) && recv(fd, &echo, 1, MSG_WAITALL) == 1 && echo == b;
      s.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      s.client_cpu_us = CpuMicros() - c0;
      s.detail = "TCP_NODELAY";
      (void)shutdown(fd, SHUT_WR);
      close(fd);
      return s;
    };
  }
  if (row.kind == Kind::kTls) {
    X509_STORE* store = X509_STORE_new();
    if (store == nullptr || X509_STORE_add_cert(store, env.pki.ca.cert.get()) != 1) {
      if (store) X509_STORE_free(store);
      *error = "cannot build the X509 store";
      return nullptr;
    }
    tcpcrypt::inband::Status st;
    std::shared_ptr<tcpcrypt::sdk::TlsClientContext> ctx =
        tcpcrypt::sdk::TlsClientContext::FromStore(store, &st);
    X509_STORE_free(store);
    if (!ctx) {
      *error = "TLS client context: " + st.message;
      return nullptr;
    }
    const bool resume = row.resume;
    return [ctx, port, resume] {
      Sample s;
      if (!resume) ctx->ClearSessionCache();
      const double c0 = CpuMicros();
      const auto t0 = Clock::now();
      int fd = ConnectLoopback(port);
      if (fd < 0) return s;
      tcpcrypt::inband::Status ist;
      auto stream = tcpcrypt::sdk::TlsStream::Connect(tcpcrypt::inband::UniqueFd(fd), *ctx,
                                                      "127.0.0.1", 10000, &ist);
      if (!stream) {
        std::fprintf(stderr, "client: TLS: %s\n", ist.message.c_str());
        return s;
      }
      uint8_t b = 'x', echo = 0;
      s.ok = stream->WriteAll(std::span<const uint8_t>(&b, 1)).ok() &&
             stream->Read(std::span<uint8_t>(&echo, 1), &ist) == 1 && echo == b;
      s.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      s.client_cpu_us = CpuMicros() - c0;
      s.resumed = stream->resumed();
      s.detail = stream->cipher_name() + ", " + stream->group_name();
      // close_notify first: OpenSSL does not resume a session whose SSL was
      // freed without a shutdown.
      if (s.ok) s.ok = stream->Shutdown().ok();
      stream->Close();
      return s;
    };
  }
  tcpcrypt::ClientOptions o;
  o.key_exchanges = {tcpcrypt::KeyExchange::kCurve25519};
  o.resumption = row.resume;
  o.tickets = row.ticket;
  o.mechanisms = row.plan;
  o.require_server_authentication = !row.plan.empty();
  o.user = kUser;
  o.password = std::make_shared<tcpcrypt::Password>(kPassword);
  o.realm = "tcpcrypt";  // the records' realm (MakeUsers)
  // The floor matches the records' cost (the minimum unless --kdf interactive).
  o.min_password_hashing = env.interactive_kdf ? tcpcrypt::PasswordHashing::kInteractive
                                               : tcpcrypt::PasswordHashing::kMinimumForTestsOnly;
  o.ca_file = env.dir + "/ca.pem";
  auto client = tcpcrypt::Client::Create(o);
  if (!client.ok()) {
    *error = client.status().ToString();
    return nullptr;
  }
  std::shared_ptr<tcpcrypt::Client> c(std::move(client.value()));
  return [c, port] {
    Sample s;
    const double c0 = CpuMicros();
    const auto t0 = Clock::now();
    auto session = c->Connect("127.0.0.1", port);
    if (!session.ok()) {
      std::fprintf(stderr, "client: %s\n", session.status().ToString().c_str());
      return s;
    }
    auto& ses = session.value();
    uint8_t b = 'x', echo = 0;
    s.ok = ses->Write(std::span<const uint8_t>(&b, 1)).ok();
    if (s.ok) {
      auto r = ses->Read(std::span<uint8_t>(&echo, 1));
      s.ok = r.ok() && r.value() == 1 && echo == b;
    }
    s.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    s.client_cpu_us = CpuMicros() - c0;
    s.resumed = ses->resumed();
    s.ticket = ses->ticket_used();
    s.detail = ses->key_exchange() + ", " + ses->cipher();
    for (const auto& id : ses->identities()) {
      s.detail += ", " + std::string(tcpcrypt::AuthMechanismName(id.mechanism));
    }
    if (s.ok) s.ok = ses->Shutdown().ok();
    ses->Close();
    return s;
  };
}

struct RowResult {
  RowSpec spec;
  std::vector<double> samples_ms;
  std::vector<double> client_cpu_us;
  std::vector<double> server_cpu_us;
  int failures = 0;
  int client_resumed = 0;
  int server_resumed = 0;
  int tickets = 0;
  std::string detail;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void Reap(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

std::optional<RowResult> RunRow(const RowSpec& row, const Env& env, Clock::duration delay,
                                 int samples) {
  int sp[2];
  if (pipe2(sp, O_CLOEXEC) != 0) return std::nullopt;
  std::fflush(nullptr);
  pid_t server_pid = fork();
  if (server_pid < 0) return std::nullopt;
  if (server_pid == 0) {
    close(sp[0]);
    if (AllowedCpus() >= 2) (void)PinTo(1);
    RunServer(row, env, sp[1]);
    _exit(2);
  }
  close(sp[1]);
  const int report_fd = sp[0];
  uint16_t server_port = 0;
  if (!ReadFull(report_fd, &server_port, sizeof(server_port))) {
    std::fprintf(stderr, "%s: the server did not start\n", row.name.c_str());
    close(report_fd);
    Reap(server_pid);
    return std::nullopt;
  }
  uint16_t proxy_port = 0;
  int lfd = ListenLoopback(&proxy_port);
  if (lfd < 0) {
    close(report_fd);
    Reap(server_pid);
    return std::nullopt;
  }
  std::fflush(nullptr);
  pid_t proxy_pid = fork();
  if (proxy_pid == 0) {
    close(report_fd);
    ProxyMain(lfd, server_port, delay);
  }
  close(lfd);
  std::string error;
  Connector op = proxy_pid > 0 ? MakeConnector(row, env, proxy_port, &error) : nullptr;
  if (!op) {
    std::fprintf(stderr, "%s: %s\n", row.name.c_str(), error.c_str());
    close(report_fd);
    Reap(proxy_pid);
    Reap(server_pid);
    return std::nullopt;
  }
  RowResult res;
  res.spec = row;
  for (int i = 0; i <= samples; ++i) {  // i == 0: the warm-up
    Sample s = op();
    ServerReport rep;
    // The server reports once it has read the client's end of stream, or
    // a failure; a client that could not connect leaves no report.
    bool have_report = false;
    pollfd p{report_fd, POLLIN, 0};
    if (poll(&p, 1, 5000) == 1) have_report = ReadFull(report_fd, &rep, sizeof(rep));
    if (i == 0) {
      if (!s.ok) std::fprintf(stderr, "%s: the warm-up connection failed\n", row.name.c_str());
      continue;
    }
    if (!s.ok || !have_report || !rep.ok) {
      ++res.failures;
      continue;
    }
    res.samples_ms.push_back(s.ms);
    res.client_cpu_us.push_back(s.client_cpu_us);
    res.server_cpu_us.push_back(rep.cpu_us);
    res.client_resumed += s.resumed;
    res.server_resumed += rep.resumed;
    res.tickets += s.ticket && rep.ticket;
    if (res.detail.empty()) res.detail = s.detail;
  }
  close(report_fd);
  Reap(proxy_pid);
  Reap(server_pid);
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  CommonOptions opts;
  opts.json_path = "latency_bench.json";
  double delay_ms = -1;
  int samples = -1;
  std::string kdf = "min";

  CLI::App app{"latency_bench: time to the first authenticated application byte, in round "
               "trips, through a delay proxy (D ms one way; 1 RTT = 2 D). --quick (default): "
               "D = 10 ms, 5 samples; --full: D = 25 ms, 20 samples; the median is shown.",
               "latency_bench"};
  AddCommonOptions(app, &opts, [](const std::string& name) { return FindRow(name) != nullptr; });
  app.add_option("--delay-ms", delay_ms, "One-way delay D in ms (default 10, --full 25)")
      ->check(CLI::PositiveNumber);
  app.add_option("--samples", samples,
                 "Measured connections per row, after one warm-up (default 5, --full 20)")
      ->check(CLI::PositiveNumber);
  app.add_option("--kdf", kdf,
                 "Argon2id limits of the password records: the library's minimum (min) or "
                 "interactive (64 MiB, 2 passes)")
      ->check(CLI::IsMember({"min", "interactive"}))
      ->capture_default_str();
  AddListCommand(app, AllRows());
  if (auto rc = ParseCommandLine(app, argc, argv)) return *rc;

  const std::string& mode = opts.mode;
  const bool interactive_kdf = kdf == "interactive";
  if (delay_ms < 0) delay_ms = mode == "full" ? 25 : 10;
  if (samples < 0) samples = mode == "full" ? 20 : 5;
  signal(SIGPIPE, SIG_IGN);
  const int allowed_cpus = AllowedCpus();
  const bool pinned = allowed_cpus >= 2 && PinTo(0);
  const auto delay = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double, std::milli>(delay_ms));
  const double rtt_ms = 2 * delay_ms;

  Env env;
  std::string error;
  if (!MakeEnv(interactive_kdf, &env, &error)) {
    std::fprintf(stderr, "set-up: %s\n", error.c_str());
    RemoveEnv(env);
    return 1;
  }
  std::vector<RowResult> results;
  for (const auto& row : AllRows()) {
    if (!RowSelected(opts, row.name)) continue;
    std::fprintf(stderr, "running %s ...\n", row.name.c_str());
    auto r = RunRow(row, env, delay, samples);
    if (r) results.push_back(std::move(*r));
  }
  RemoveEnv(env);

  auto rtt_of = [&](const RowResult& r) { return Median(r.samples_ms) / rtt_ms; };
  auto find = [&](const std::string& name) -> const RowResult* {
    for (const auto& r : results)
      if (r.spec.name == name && !r.samples_ms.empty()) return &r;
    return nullptr;
  };

  const std::string note = MachineNote(pinned, allowed_cpus);
  const std::string kdf_note =
      interactive_kdf ? "password records with Argon2id interactive limits (64 MiB, 2 passes)"
                      : "password records with the library's minimum Argon2id limits "
                        "(KdfParams::ForTests, PasswordHashing::kMinimumForTestsOnly), so the "
                        "KDF adds little CPU";
  std::ostringstream md;
  md << "## Time to the first authenticated byte (" << mode << ", D = " << Fmt(delay_ms, 1)
     << " ms one way, 1 RTT = " << Fmt(rtt_ms, 1) << " ms, median of " << samples << ")\n\n";
  md << "Machine: " << note << ". Shared machine: numbers are indicative.\n\n";
  md << "| Row | Negotiated | median ms | RTT (incl. TCP) | RTT after TCP | expected | "
        "min ms (RTT) | client CPU ms | server CPU ms | resumed | ticket | failures |\n";
  md << "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : results) {
    const size_t n = r.samples_ms.size();
    const double med = Median(r.samples_ms);
    const double rtt = n ? rtt_of(r) : 0;
    const double min_ms = n ? *std::min_element(r.samples_ms.begin(), r.samples_ms.end()) : 0;
    const double ccpu = Median(r.client_cpu_us) / 1000, scpu = Median(r.server_cpu_us) / 1000;
    const std::string resumed = r.spec.kind == Kind::kPlain
                                    ? "–"
                                    : std::to_string(r.client_resumed) + "/" + std::to_string(n);
    const std::string ticket =
        r.spec.ticket ? std::to_string(r.tickets) + "/" + std::to_string(n) : "–";
    md << "| " << r.spec.description << " | " << r.detail << " | "
       << (n ? Fmt(med, 1) : "n/a") << " | " << (n ? Fmt(rtt, 1) : "n/a") << " | "
       << (n ? Fmt(rtt - 1, 1) : "n/a") << " | " << Fmt(r.spec.expected_rtt, 0) << " | "
       << (n ? Fmt(min_ms, 1) + " (" + Fmt(min_ms / rtt_ms, 1) + ")" : "n/a") << " | "
       << Fmt(ccpu, 2) << " | " << Fmt(scpu, 2) << " | " << resumed << " | " << ticket << " | "
       << r.failures << " |\n";
    rows.push_back({
        {"name", r.spec.name},
        {"description", r.spec.description},
        {"negotiated", r.detail},
        {"median_ms", med},
        {"rtt", std::round(rtt * 10) / 10},
        {"rtt_after_tcp_handshake", std::round((rtt - 1) * 10) / 10},
        {"expected_rtt", r.spec.expected_rtt},
        {"samples", r.samples_ms},
        {"min_ms", min_ms},
        {"rtt_min", std::round(min_ms / rtt_ms * 10) / 10},
        {"client_cpu_ms_median", ccpu},
        {"server_cpu_ms_median", scpu},
        {"client_cpu_us", r.client_cpu_us},
        {"server_cpu_us", r.server_cpu_us},
        {"client_resumed", r.client_resumed},
        {"server_resumed", r.server_resumed},
        {"tickets_used", r.tickets},
        {"failures", r.failures},
    });
  }

  // Targets: compared in round trips with a quarter-RTT allowance for the
  // CPU time inside each connection.
  nlohmann::json targets = nlohmann::json::array();
  md << "\n| Target | Measured (RTT incl. TCP) | Met? |\n|---|---|---|\n";
  auto target = [&](const std::string& what, const char* a, const char* b) {
    const RowResult* ra = find(a);
    const RowResult* rb = find(b);
    nlohmann::json t = {{"target", what}, {"row", a}, {"baseline", b}};
    if (ra == nullptr || rb == nullptr) {
      t["met"] = nullptr;
      md << "| " << what << " | not measured | – |\n";
    } else {
      const bool met = rtt_of(*ra) <= rtt_of(*rb) + 0.25;
      t["rtt"] = rtt_of(*ra);
      t["baseline_rtt"] = rtt_of(*rb);
      t["met"] = met;
      md << "| " << what << " | " << Fmt(rtt_of(*ra), 1) << " vs " << Fmt(rtt_of(*rb), 1) << " | "
         << (met ? "yes" : "**no**") << " |\n";
    }
    targets.push_back(std::move(t));
  };
  target("fresh tcpcrypt: first byte in no more round trips than TLS 1.3 full",
         "tcpcrypt_fresh", "tls13_full");
  target("resumed tcpcrypt: no more round trips than TLS 1.3 resumed", "tcpcrypt_resumed",
         "tls13_resumed");

  md << "\nOne sample: the client starts connect(), completes the handshake (and "
        "authentication), sends 1 byte, and stops the clock when the server's echo "
        "arrives. Every byte passes a userspace proxy that delivers each chunk D after "
        "reading it, in order, with half-closes passed on. TCP's handshake is charged "
        "as one round trip: the proxy holds the client's bytes until 1.5 RTT after it "
        "accepted the connection (a real client's first byte leaves when SYN-ACK arrives, "
        "at 1 RTT). So plain TCP = 2 RTT; \"RTT after TCP\" subtracts that one, as "
        "docs/PROTOCOL.md §1 counts. \"expected\" is the count docs/PROTOCOL.md (§1, §16) "
        "and RFC 8446 predict, including TCP's handshake. RTT = median time / (2·D); the min column is less sensitive to scheduling delays on a loaded machine; "
        "CPU time is not subtracted, and is shown separately (client: this process; "
        "server: its process, user+sys, per connection). Passwords: "
     << kdf_note
     << ". Targets allow 0.25 RTT for CPU time. Password rows run with resumption and "
        "tickets off at the client, so each runs the full exchange.\n";
  std::fputs(md.str().c_str(), stdout);

  nlohmann::json out = {
      {"program", "latency_bench"},
      {"mode", mode},
      {"machine", note},
      {"delay_ms", delay_ms},
      {"rtt_ms", rtt_ms},
      {"samples_per_row", samples},
      {"tcp_handshake", "charged as 1 RTT by the proxy; rtt includes it"},
      {"password_kdf", interactive_kdf ? "interactive" : "minimum (tests-only limits)"},
      {"rows", rows},
      {"targets", targets},
  };
  WriteReports(opts, out.dump(2), md.str());
  return 0;
}
