// setup_bench: connection-setup rate and server CPU time per connection.
//
// Rows (issue "bench/", table 1):
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
// One operation = the client connects, completes the handshake, sends one
// byte, reads the server's one-byte echo, sends its end of stream (TCP FIN,
// TLS close_notify, tcpcrypt authenticated EOF), and closes with an RST
// (SO_LINGER 0, so the loopback does not run out of ports in TIME_WAIT); the
// server closes once it has read that end of stream. The client
// runs in this process, pinned to CPU 0; the server in a forked child,
// pinned to CPU 1 (when at least two CPUs are allowed). The server measures
// its own CPU time (getrusage(RUSAGE_SELF), user + system, all threads)
// between a "mark" connection and a "quit" connection and sends it back over
// a pipe.
//
// Usage:
//   setup_bench [run] [--quick | --full] [--seconds S] [--rows a,b,...]
//               [--json FILE] [--md FILE]
//       forks the server per row; prints a Markdown table, writes JSON
//       (default setup_bench.json) and optionally the Markdown to FILE.
//   setup_bench server --row R [--cpu N] [--pki-dir D]
//   setup_bench client --row R --port P [--cpu N] [--pki-dir D] [--seconds S]
//       the two halves as separate processes you start (see ServerMode).
//   setup_bench list            print the row names
// --quick (default) runs each row ~2 s after a 0.3 s warm-up; --full ~10 s
// after 1 s.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/x509_batch/test_pki.h"
#include "bench/harness.h"
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

enum class Kind { kPlain, kTcpcrypt, kTls };

struct RowSpec {
  std::string name;
  std::string description;
  Kind kind;
  tcpcrypt::KeyExchange kex = tcpcrypt::KeyExchange::kCurve25519;
  bool resume = false;
};

const std::vector<RowSpec>& AllRows() {
  static const std::vector<RowSpec> rows = {
      {"plain_tcp", "plain TCP", Kind::kPlain, tcpcrypt::KeyExchange::kCurve25519, false},
      {"tcpcrypt_fresh_x25519", "tcpcrypt fresh (X25519)", Kind::kTcpcrypt,
       tcpcrypt::KeyExchange::kCurve25519, false},
      {"tcpcrypt_fresh_p256", "tcpcrypt fresh (P-256)", Kind::kTcpcrypt,
       tcpcrypt::KeyExchange::kP256, false},
      {"tcpcrypt_resumed", "tcpcrypt resumed", Kind::kTcpcrypt,
       tcpcrypt::KeyExchange::kCurve25519, true},
      {"tls13_full", "TLS 1.3 full (P-256 cert, X25519)", Kind::kTls,
       tcpcrypt::KeyExchange::kCurve25519, false},
      {"tls13_resumed", "TLS 1.3 resumed (ticket)", Kind::kTls,
       tcpcrypt::KeyExchange::kCurve25519, true},
  };
  return rows;
}

// What the server child reports over the pipe.
struct ServerReport {
  double cpu_us = 0;      // user + system between mark and quit
  uint64_t ops = 0;       // connections served in that window (pings + quit)
  uint64_t failures = 0;  // accepts/handshakes/reads that failed (whole run)
  uint64_t resumed = 0;   // measured connections the server saw resumed
};

struct RowResult {
  RowSpec spec;
  uint64_t client_ops = 0;
  uint64_t client_failures = 0;
  uint64_t client_resumed = 0;
  double seconds = 0;
  double client_cpu_us = 0;
  std::string detail;  // negotiated parameters seen on the first connection
  ServerReport server;
  bool server_ok = false;
};

// --- Server side (child process) --------------------------------------------

// ServerLoop runs |serve_one| for each connection; serve_one returns the
// control byte it read (0 on failure) and sets |*resumed|.
class ServerClock {
 public:
  // Handle accounts for one served connection; returns false on quit.
  bool Handle(uint8_t byte, bool resumed, ServerReport* r) {
    switch (byte) {
      case kMark:
        marked_ = true;
        start_us_ = CpuMicros();
        return true;
      case kPing:
        if (marked_) {
          ++r->ops;
          if (resumed) ++r->resumed;
        }
        return true;
      case kQuit:
        ++r->ops;
        if (resumed) ++r->resumed;
        r->cpu_us = marked_ ? CpuMicros() - start_us_ : 0;
        return false;
      case kWarm:
        return true;
      default:
        ++r->failures;
        return true;
    }
  }

 private:
  bool marked_ = false;
  double start_us_ = 0;
};

// RunServer serves |row| on 127.0.0.1 (a free port, passed to |on_port|)
// until the client's quit connection; returns false if it could not start.
bool RunServer(const RowSpec& row, const Pki& pki, const std::function<bool(uint16_t)>& on_port,
               ServerReport* out_report) {
  ServerReport& report = *out_report;
  ServerClock clock;
  uint16_t port = 0;

  if (row.kind == Kind::kPlain || row.kind == Kind::kTls) {
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
      if (!clock.Handle(byte, resumed, &report)) break;
    }
    close(lfd);
  } else {
    tcpcrypt::ServerOptions o;
    o.key_exchanges = {row.kex};
    o.plans = {};
    o.require_authentication = false;
    o.issue_tickets = false;
    o.resumption = true;
    auto server = tcpcrypt::Server::Create(o);
    if (!server.ok()) {
      std::fprintf(stderr, "server: %s\n", server.status().ToString().c_str());
      return false;
    }
    auto st = server.value()->Listen("127.0.0.1", 0);
    if (!st.ok()) {
      std::fprintf(stderr, "server: listen: %s\n", st.ToString().c_str());
      return false;
    }
    port = server.value()->port();
    if (!on_port(port)) return false;
    for (;;) {
      auto session = server.value()->Accept();
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
      bool resumed = s->resumed();
      s->Close();
      if (!clock.Handle(byte, resumed, &report)) break;
    }
    report.failures += server.value()->stats().failed;
  }
  return true;
}

// --- Client side (this process) ---------------------------------------------

// A Connector performs one operation with the given control byte; returns
// whether it succeeded and sets |*resumed| and, on the first call, |*detail|.
using Connector = std::function<bool(uint8_t byte, bool* resumed, std::string* detail)>;

Connector MakeConnector(const RowSpec& row, const Pki& pki, uint16_t port,
                        std::string* error) {
  if (row.kind == Kind::kPlain) {
    return [port](uint8_t byte, bool* resumed, std::string* detail) {
      *resumed = false;
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
    return [ctx, port, resume](uint8_t byte, bool* resumed, std::string* detail) {
      if (!resume) ctx->ClearSessionCache();
      int fd = ConnectLoopback(port);
      if (fd < 0) return false;
      tcpcrypt::inband::Status s;
      auto stream = tcpcrypt::sdk::TlsStream::Connect(tcpcrypt::inband::UniqueFd(fd), *ctx,
                                                      "127.0.0.1", 10000, &s);
      if (!stream) return false;
      *resumed = stream->resumed();
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
  tcpcrypt::ClientOptions o;
  o.key_exchanges = {row.kex};
  o.require_server_authentication = false;
  o.resumption = row.resume;
  o.tickets = false;
  auto client = tcpcrypt::Client::Create(o);
  if (!client.ok()) {
    *error = client.status().ToString();
    return nullptr;
  }
  std::shared_ptr<tcpcrypt::Client> c(std::move(client.value()));
  return [c, port](uint8_t byte, bool* resumed, std::string* detail) {
    auto session = c->Connect("127.0.0.1", port);
    if (!session.ok()) {
      static int reported = 0;
      if (reported++ < 3) {
        std::fprintf(stderr, "client: %s\n", session.status().ToString().c_str());
      }
      return false;
    }
    auto& s = session.value();
    *resumed = s->resumed();
    if (detail->empty()) {
      *detail = std::string(tcpcrypt::ChannelName(s->channel())) + ", " + s->key_exchange() +
                ", " + s->cipher();
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
  double seconds = 2.0;
  double warmup_seconds = 0.3;
  bool pin = false;
};

void RunClientLoop(const Connector& op, const RunConfig& cfg, RowResult* out);

std::optional<RowResult> RunRow(const RowSpec& row, const Pki& pki, const RunConfig& cfg) {
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
        row, pki, [wfd](uint16_t p) { return WriteFull(wfd, &p, sizeof(p)); }, &report);
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
  Connector op = MakeConnector(row, pki, port, &error);
  if (!op) {
    std::fprintf(stderr, "%s: %s\n", row.name.c_str(), error.c_str());
    kill(pid, SIGKILL);
    close(fds[0]);
    waitpid(pid, nullptr, 0);
    return std::nullopt;
  }
  RunClientLoop(op, cfg, &res);
  res.server_ok = ReadFull(fds[0], &res.server, sizeof(res.server));
  close(fds[0]);
  if (!res.server_ok) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return res;
}

void RunClientLoop(const Connector& op, const RunConfig& cfg, RowResult* out) {
  RowResult& res = *out;
  bool resumed = false;
  std::string detail;
  // Warm-up (fills caches: TLS tickets, tcpcrypt resumption secrets).
  auto warm_end = Clock::now() + std::chrono::duration<double>(cfg.warmup_seconds);
  int warm = 0;
  while (Clock::now() < warm_end || warm < 2) {
    (void)op(kWarm, &resumed, &detail);
    ++warm;
  }
  (void)op(kMark, &resumed, &detail);
  double cpu0 = CpuMicros();
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::duration<double>(cfg.seconds);
  while (Clock::now() < end) {
    bool r = false;
    if (op(kPing, &r, &detail)) {
      ++res.client_ops;
      if (r) ++res.client_resumed;
    } else {
      ++res.client_failures;
    }
  }
  bool r = false;
  if (op(kQuit, &r, &detail)) {
    ++res.client_ops;
    if (r) ++res.client_resumed;
  } else {
    ++res.client_failures;
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  res.client_cpu_us = CpuMicros() - cpu0;
  res.detail = detail;
}

const RowSpec* FindRow(const std::string& name) {
  for (const auto& r : AllRows())
    if (r.name == name) return &r;
  return nullptr;
}

// --- Standalone modes: `server` and `client` in two processes you start ----
//
//   setup_bench server --row tls13_full [--cpu 1] [--pki-dir DIR]
//     prints "port N", serves until the client's quit connection, then
//     prints its report as one JSON line. TLS rows write DIR/ca.pem.
//   setup_bench client --row tls13_full --port N [--cpu 0] [--pki-dir DIR]
//                      [--seconds S]
//     prints the client's result as one JSON line.

int ServerMode(const RowSpec& row, const std::string& pki_dir) {
  std::string error;
  auto pki = MakePki(&error);
  if (!pki) {
    std::fprintf(stderr, "cannot make the test PKI: %s\n", error.c_str());
    return 1;
  }
  if (row.kind == Kind::kTls) {
    std::ofstream f(pki_dir + "/ca.pem");
    f << x509::CertificatePem(pki->ca.cert.get());
    if (!f) {
      std::fprintf(stderr, "cannot write %s/ca.pem\n", pki_dir.c_str());
      return 1;
    }
  }
  ServerReport report;
  bool ok = RunServer(
      row, *pki,
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
                      {"server_resumed", report.resumed},
                      {"server_failures", report.failures}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

int ClientMode(const RowSpec& row, uint16_t port, const std::string& pki_dir,
               const RunConfig& cfg) {
  Pki pki;
  if (row.kind == Kind::kTls) {
    std::string path = pki_dir + "/ca.pem";
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
  Connector op = MakeConnector(row, pki, port, &error);
  if (!op) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  RowResult res;
  res.spec = row;
  RunClientLoop(op, cfg, &res);
  double rate = res.seconds > 0 ? static_cast<double>(res.client_ops) / res.seconds : 0.0;
  nlohmann::json j = {{"row", row.name},
                      {"negotiated", res.detail},
                      {"ops", res.client_ops},
                      {"seconds", res.seconds},
                      {"rate_per_s", rate},
                      {"client_cpu_us_per_op",
                       res.client_ops ? res.client_cpu_us / static_cast<double>(res.client_ops)
                                      : 0.0},
                      {"client_resumed", res.client_resumed},
                      {"client_failures", res.client_failures}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  RunConfig cfg;
  std::string mode = "quick";
  std::string command = "run";
  std::string row_name;
  std::string pki_dir = ".";
  int port = -1;
  int cpu = -1;
  std::string json_path = "setup_bench.json";
  std::string md_path;
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") {
      mode = "quick";
    } else if (a == "--full") {
      mode = "full";
    } else if (a == "--seconds") {
      cfg.seconds = std::stod(next());
      mode = "custom";
    } else if (a == "--json") {
      json_path = next();
    } else if (a == "--md") {
      md_path = next();
    } else if (a == "--rows") {
      std::stringstream ss(next());
      std::string item;
      while (std::getline(ss, item, ',')) only.push_back(item);
    } else if (i == 1 && (a == "server" || a == "client" || a == "run")) {
      command = a;
    } else if (a == "--row") {
      row_name = next();
    } else if (a == "--port") {
      port = std::stoi(next());
    } else if (a == "--pki-dir") {
      pki_dir = next();
    } else if (a == "--cpu") {
      cpu = std::stoi(next());
    } else if (a == "list") {
      for (const auto& r : AllRows()) std::printf("%s\t%s\n", r.name.c_str(), r.description.c_str());
      return 0;
    } else {
      std::fprintf(stderr,
                   "usage: %s [run] [--quick|--full] [--seconds S] [--rows a,b] [--json F]"
                   " [--md F]\n"
                   "       %s server --row R [--cpu N] [--pki-dir D]\n"
                   "       %s client --row R --port P [--cpu N] [--pki-dir D] [--seconds S]\n"
                   "       %s list\n",
                   argv[0], argv[0], argv[0], argv[0]);
      return 2;
    }
  }
  if (mode == "quick") cfg.seconds = 2.0;
  if (mode == "full") {
    cfg.seconds = 10.0;
    cfg.warmup_seconds = 1.0;
  }
  signal(SIGPIPE, SIG_IGN);
  if (command == "server" || command == "client") {
    const RowSpec* row = FindRow(row_name);
    if (row == nullptr) {
      std::fprintf(stderr, "unknown --row \"%s\" (see `%s list`)\n", row_name.c_str(), argv[0]);
      return 2;
    }
    if (cpu >= 0 && !PinTo(cpu)) std::fprintf(stderr, "cannot pin to CPU %d\n", cpu);
    if (command == "server") return ServerMode(*row, pki_dir);
    if (port <= 0 || port > 65535) {
      std::fprintf(stderr, "client needs --port\n");
      return 2;
    }
    return ClientMode(*row, static_cast<uint16_t>(port), pki_dir, cfg);
  }
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
    if (!only.empty() && std::find(only.begin(), only.end(), row.name) == only.end()) continue;
    std::fprintf(stderr, "running %s ...\n", row.name.c_str());
    auto r = RunRow(row, *pki, cfg);
    if (r) results.push_back(std::move(*r));
  }

  // Ratios against TLS 1.3 full.
  const RowResult* tls_full = nullptr;
  for (const auto& r : results)
    if (r.spec.name == "tls13_full" && r.server_ok && r.server.ops > 0) tls_full = &r;
  auto rate = [](const RowResult& r) {
    return r.seconds > 0 ? static_cast<double>(r.client_ops) / r.seconds : 0.0;
  };
  auto server_us = [](const RowResult& r) {
    return r.server_ok && r.server.ops > 0 ? r.server.cpu_us / static_cast<double>(r.server.ops)
                                           : 0.0;
  };

  std::string note = MachineNote(cfg.pin, allowed_cpus);
  std::ostringstream md;
  md << "## Connection setup (" << mode << ", " << Fmt(cfg.seconds, 1) << " s per row)\n\n";
  md << "Machine: " << note << ". Shared machine: numbers are indicative.\n\n";
  md << "| Row | Negotiated | conn/s | server µs CPU/conn | client µs CPU/conn | rate vs TLS full"
        " | server CPU vs TLS full | resumed | failures |\n";
  md << "|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : results) {
    double rr = rate(r);
    double su = server_us(r);
    double cu = r.client_ops > 0 ? r.client_cpu_us / static_cast<double>(r.client_ops) : 0.0;
    std::string rate_ratio = "–", cpu_ratio = "–";
    nlohmann::json j = {
        {"name", r.spec.name},
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
    std::string resumed = Fmt(r.client_ops ? 100.0 * static_cast<double>(r.client_resumed) /
                                                 static_cast<double>(r.client_ops)
                                           : 0.0,
                              0) +
                          "%";
    md << "| " << r.spec.description << " | " << r.detail << " | " << Fmt(rr, 0) << " | "
       << (r.server_ok ? Fmt(su, 1) : std::string("n/a")) << " | " << Fmt(cu, 1) << " | "
       << rate_ratio << " | " << cpu_ratio << " | " << resumed << " | "
       << (r.client_failures + r.server.failures) << " |\n";
    rows.push_back(std::move(j));
  }
  md << "\nOne connection = TCP connect + handshake + 1-byte echo + client end-of-stream "
        "(FIN / close_notify / tcpcrypt EOF) + close (client RST). "
        "Server CPU = getrusage(RUSAGE_SELF) user+sys of the server process over the "
        "measured connections.\n";
  std::fputs(md.str().c_str(), stdout);

  nlohmann::json out = {
      {"benchmark", "connection_setup"},
      {"mode", mode},
      {"seconds_per_row", cfg.seconds},
      {"machine", note},
      {"pinned", cfg.pin},
      {"rows", rows},
  };
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    f << out.dump(2) << "\n";
    if (!f) std::fprintf(stderr, "cannot write %s\n", json_path.c_str());
  }
  if (!md_path.empty()) {
    std::ofstream f(md_path);
    f << md.str();
  }
  return 0;
}
