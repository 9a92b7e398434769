// main.cc: the `tcpcrypt` command-line tool, a netcat for tcpcrypt.
//
//   tcpcrypt serve --listen ADDR:PORT [--stdio]   echo server, or one relay
//   tcpcrypt connect HOST:PORT                    stdin -> peer -> stdout
//
// Both use the in-band carrier (no privileges). Exit codes: 0 ok, 1 usage,
// 2 network or I/O failure, 3 tcpcrypt negotiation or integrity failure.
#include <poll.h>
#include <unistd.h>

// GCC 12 reports a false "potential null pointer dereference" inside
// std::string code that CLI11's header instantiates.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <CLI/CLI.hpp>
#pragma GCC diagnostic pop

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "core_transport/engine/engine.h"
#include "core_transport/inband/connection.h"
#include "core_transport/inband/keylog.h"
#include "sdk/cli/auth_flags.h"
#include "sdk/cli/cert_command.h"
#include "sdk/cli/user_command.h"

namespace {

using tcpcrypt::ByteSpan;
using tcpcrypt::Cipher;
using tcpcrypt::Tep;
using tcpcrypt::inband::Connection;
using tcpcrypt::inband::Listener;
using tcpcrypt::inband::NonBlockingConnection;
using tcpcrypt::inband::Options;
using tcpcrypt::inband::Status;

constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;
constexpr int kExitNetwork = 2;
constexpr int kExitTcpcrypt = 3;
constexpr int kExitAuth = 5;

constexpr size_t kIoBufferSize = size_t{256} << 10;
constexpr int kListenBacklog = 128;

constexpr char kFooter[] = R"(Examples:
  tcpcrypt serve --listen 0.0.0.0:7000              # encrypted echo server
  tcpcrypt serve --listen 127.0.0.1:7000 --stdio > received.bin
  echo hello | tcpcrypt connect 127.0.0.1:7000      # prints "hello"
  tcpcrypt connect --tep p256 --cipher aes256gcm example.org:7000 < file
  tcpcrypt connect --json example.org:7000 < /dev/null

Each connection reports its session ID on stderr ("session-id: <66 hex>").
The session ID is equal at both ends if and only if no one is in the middle:
compare it out of band, or endorse it with an authenticator.

Environment:
  TCPCRYPT_KEYLOGFILE  append each connection's keys to this file (for
                       decrypting captures); never set it in production
  TCPCRYPT_PASSWORD    the --auth pake/cmac password when there is no
                       --password-file (less safe than a 0600 file; without
                       either, the password is asked on /dev/tty)

Exit status:
  0  success (the peer's stream ended with an authenticated end of file)
  1  usage error
  2  network or I/O failure (refused, unreachable, timed out, reset)
  3  tcpcrypt failure: the peer does not speak tcpcrypt, negotiation
     failed, or the stream failed authentication or was truncated
  4  user store error (tcpcrypt user ...)
  5  authentication failed (--auth)

Authentication (--auth) endorses the session ID:
  tcpcrypt user add alice --users users.db
  tcpcrypt serve --listen 127.0.0.1:7000 --auth pake --users users.db
  tcpcrypt connect 127.0.0.1:7000 --auth pake --user alice
  tcpcrypt cert --out pki --host localhost
  tcpcrypt serve --listen 127.0.0.1:7001 --auth x509 --cert pki/server.pem --key pki/server.key
  tcpcrypt connect localhost:7001 --auth x509 --ca pki/ca.pem
)";

// --- output ---------------------------------------------------------------

std::mutex g_stderr_mu;

// Say writes one complete message to stderr, whole even when threads race.
void Say(const std::string& text) {
  std::lock_guard<std::mutex> lock(g_stderr_mu);
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
}

void SayError(const std::string& text) { Say("tcpcrypt: " + text + "\n"); }

int ExitCodeFor(const Status& s) {
  switch (s.kind) {
    case Status::Kind::kOk: return kExitOk;
    case Status::Kind::kIo:
    case Status::Kind::kTimeout:
    case Status::Kind::kResolve: return kExitNetwork;
    case Status::Kind::kEngine:
    case Status::Kind::kEof: return kExitTcpcrypt;
  }
  return kExitNetwork;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(ch);
    }
  }
  return out + "\"";
}

// ReportSession prints what the peer must compare: the session ID, plus
// the negotiated TEP and cipher.
template <typename Conn>
void ReportSession(const Conn& c, bool json) {
  const std::string tep(tcpcrypt::TepName(c.tep()));
  const std::string cipher(tcpcrypt::CipherName(c.cipher()));
  if (json) {
    Say("{\"session_id\":" + JsonString(c.session_id_hex()) +
        ",\"tep\":" + JsonString(tep) + ",\"cipher\":" + JsonString(cipher) +
        ",\"resumed\":" + (c.resumed() ? "true" : "false") +
        ",\"peer\":" + JsonString(c.peer()) + "}\n");
    return;
  }
  Say("peer: " + c.peer() + "\nsession-id: " + c.session_id_hex() +
      "\ntep: " + tep + "\ncipher: " + cipher +
      "\nresumed: " + (c.resumed() ? "yes" : "no") + "\n");
}

// WriteFdAll writes all of |data| to |fd| (which may be non-blocking).
bool WriteFdAll(int fd, ByteSpan data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, -1) < 0 && errno != EINTR) return false;
        continue;
      }
      return false;
    }
    data = data.subspan(static_cast<size_t>(n));
  }
  return true;
}

// --- configuration ----------------------------------------------------------

struct CommonFlags {
  std::vector<std::string> teps;
  std::vector<std::string> ciphers;
  bool json = false;
  int handshake_timeout_ms = 10000;
};

void AddCommonFlags(CLI::App* cmd, CommonFlags* flags) {
  cmd->add_option("--tep", flags->teps,
                  "Key exchange (TEP), most preferred first: curve25519, "
                  "p256, p521; repeat or separate with commas. Default: "
                  "serve accepts all three, connect offers curve25519 (one "
                  "round trip less)")
      ->delimiter(',')
      ->type_name("TEP");
  cmd->add_option("--cipher", flags->ciphers,
                  "AEAD, most preferred first: aes128gcm, aes256gcm, "
                  "chacha20poly1305; repeat or separate with commas. "
                  "Default: aes128gcm,chacha20poly1305,aes256gcm")
      ->delimiter(',')
      ->type_name("CIPHER");
  cmd->add_flag("--json", flags->json,
                "Report each connection as one JSON object on stderr: "
                "{\"session_id\",\"tep\",\"cipher\",\"resumed\",\"peer\"}");
  cmd->add_option("--handshake-timeout", flags->handshake_timeout_ms,
                  "Milliseconds allowed for TCP connect plus the tcpcrypt "
                  "handshake (0: no limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
}

// KeyLogFileFromEnv returns TCPCRYPT_KEYLOGFILE ("" when unset) and, the
// first time it is set, warns loudly on stderr.
std::string KeyLogFileFromEnv() {
  static std::atomic<bool> warned{false};
  const char* path = std::getenv(tcpcrypt::inband::kKeyLogEnvVar);
  if (path == nullptr || path[0] == '\0') return std::string();
  if (!warned.exchange(true)) {
    SayError(std::string("WARNING: ") + tcpcrypt::inband::kKeyLogEnvVar +
             " is set; session keys are being written to " + path +
             ": whoever reads that file can decrypt everything inside the logged sessions "
             "(data, authentication messages, ticket secrets)");
  }
  return std::string(path);
}

// BuildOptions turns the flags into carrier options; false (after printing
// why) on an unknown name.
bool BuildOptions(const CommonFlags& flags, bool server, Options* out) {
  Options o;
  o.handshake_timeout_ms = flags.handshake_timeout_ms;
  if (flags.teps.empty()) {
    o.engine.teps =
        server ? std::vector<Tep>{Tep::kCurve25519, Tep::kP256, Tep::kP521}
               : std::vector<Tep>{Tep::kCurve25519};
  } else {
    o.engine.teps.clear();
    for (const std::string& name : flags.teps) {
      const std::optional<Tep> tep = tcpcrypt::TepFromName(name);
      if (!tep) {
        SayError("unknown TEP '" + name +
                 "' (choose from curve25519, p256, p521)");
        return false;
      }
      if (std::find(o.engine.teps.begin(), o.engine.teps.end(), *tep) ==
          o.engine.teps.end()) {
        o.engine.teps.push_back(*tep);
      }
    }
  }
  if (!flags.ciphers.empty()) {
    o.engine.ciphers.clear();
    for (const std::string& name : flags.ciphers) {
      const std::optional<Cipher> cipher = tcpcrypt::CipherFromName(name);
      if (!cipher) {
        SayError("unknown cipher '" + name +
                 "' (choose from aes128gcm, aes256gcm, chacha20poly1305)");
        return false;
      }
      if (std::find(o.engine.ciphers.begin(), o.engine.ciphers.end(),
                    *cipher) == o.engine.ciphers.end()) {
        o.engine.ciphers.push_back(*cipher);
      }
    }
  }
  // The key log is the application's explicit choice; this tool makes it
  // through the environment (the library itself never reads it).
  if (const std::string key_log = KeyLogFileFromEnv(); !key_log.empty()) {
    o.key_log_file = key_log;
    o.warn = [](std::string_view message) {
      SayError("WARNING: " + std::string(message));
    };
  }
  *out = std::move(o);
  return true;
}

// --- relaying a connection to stdin / stdout ---------------------------------

// Relay copies stdin to the connection and the connection to stdout in one
// thread, full duplex, with poll(). Drives the handshake too.
//
// The two directions are independent: the end of stdin half-closes ours
// (FINp, then shutdown(SHUT_WR)) and the peer's authenticated end of file
// ends its; neither ends the other, so `serve --stdio </dev/null` still
// receives everything `connect <file` sends. Relay returns kExitOk only
// when both directions ended cleanly and the peer's TCP stream ended
// without a reset; otherwise (stdout write failed, the peer's stream was
// truncated or failed authentication, a send failed, or the peer reset the
// connection, so bytes we sent may not have been read) non-zero.
int Relay(NonBlockingConnection& conn, bool json, bool reported = false) {
  std::vector<uint8_t> buf(kIoBufferSize);
  bool stdin_done = false;  // stdin ended and our FINp is queued
  bool peer_eof = false;
  for (;;) {
    if (conn.failed()) {
      SayError(conn.peer() + ": " + conn.status().message);
      return ExitCodeFor(conn.status());
    }
    if (!reported && conn.handshake_done()) {
      ReportSession(conn, json);
      reported = true;
    }
    // The peer's plaintext to stdout, straight from the engine's buffer.
    for (ByteSpan p = conn.PeekPlaintext(); !p.empty();
         p = conn.PeekPlaintext()) {
      if (!WriteFdAll(STDOUT_FILENO, p)) {
        const int saved_errno = errno;
        SayError(std::string("writing to stdout: ") +
                 std::strerror(saved_errno));
        return kExitNetwork;
      }
      conn.ConsumePlaintext(p.size());
    }
    if (conn.failed()) continue;  // e.g. truncation noticed once drained
    if (conn.at_eof()) peer_eof = true;
    // Done once both directions ended and the peer's TCP stream ended too
    // (a reset then shows, in conn.failed() or conn.peer_reset()).
    if (peer_eof && stdin_done && conn.shutdown_complete() &&
        conn.carrier_eof()) {
      if (conn.peer_reset()) {
        SayError(conn.peer() +
                 ": the peer reset the connection: bytes we sent may not "
                 "have been read");
        return kExitNetwork;
      }
      return kExitOk;
    }

    const bool read_stdin =
        conn.handshake_done() && !stdin_done && !conn.write_queue_full();
    short conn_events = 0;
    if (conn.wants_read()) conn_events |= POLLIN;
    if (conn.wants_write()) conn_events |= POLLOUT;
    pollfd fds[2] = {
        {conn_events != 0 ? conn.fd() : -1, conn_events, 0},
        {read_stdin ? STDIN_FILENO : -1, POLLIN, 0},
    };
    const int timeout = conn.NextTimeoutMs();
    if (fds[0].fd < 0 && fds[1].fd < 0 && timeout < 0) {
      SayError(conn.peer() +
               ": internal error: the relay has nothing to "
               "wait for");
      return kExitNetwork;
    }
    if (::poll(fds, 2, timeout) < 0) {
      if (errno == EINTR) continue;
      const int saved_errno = errno;
      SayError(std::string("poll: ") + std::strerror(saved_errno));
      return kExitNetwork;
    }
    conn.OnTimer();
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      conn.OnReadable();
    }
    if ((fds[0].revents & (POLLOUT | POLLERR)) != 0) conn.OnWritable();
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
        !conn.failed()) {
      const ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        const int saved_errno = errno;
        SayError(std::string("reading stdin: ") + std::strerror(saved_errno));
        return kExitNetwork;
      }
      Status s = n > 0
                     ? conn.Write(ByteSpan(buf.data(), static_cast<size_t>(n)))
                     : conn.Shutdown();  // stdin ended: send FINp
      if (n == 0) stdin_done = true;
      if (!s.ok()) {
        SayError(conn.peer() + ": " + s.message);
        return ExitCodeFor(s);
      }
    }
  }
}

// --- commands ---------------------------------------------------------------

int RunConnect(const std::string& target, const CommonFlags& flags,
               const tcpcrypt::cli::AuthFlags& auth_flags) {
  std::string host;
  uint16_t port = 0;
  if (!tcpcrypt::inband::SplitHostPort(target, &host, &port) || host.empty() ||
      port == 0) {
    SayError("expected HOST:PORT, got '" + target + "'");
    return kExitUsage;
  }
  Options options;
  if (!BuildOptions(flags, /*server=*/false, &options)) return kExitUsage;
  std::shared_ptr<tcpcrypt::sdk::ClientAuth> auth;
  std::string error;
  if (!tcpcrypt::cli::MakeClientAuth(auth_flags, &auth, &error)) {
    SayError(error);
    return kExitUsage;
  }
  Status status;
  if (auth != nullptr) {
    // RFC 8547 §4.2: the a bit says this client runs authentication.
    options.engine.application_aware = true;
    std::unique_ptr<Connection> blocking =
        Connection::Connect(host, port, std::move(options), &status);
    if (blocking == nullptr) {
      SayError(status.message);
      return ExitCodeFor(status);
    }
    ReportSession(*blocking, flags.json);
    std::vector<uint8_t> leftover;
    if (!tcpcrypt::cli::AuthenticateClient(*blocking, *auth, host, port, flags.json, &leftover,
                                           &error)) {
      SayError(error);
      return kExitAuth;
    }
    if (!leftover.empty() && !WriteFdAll(STDOUT_FILENO, leftover)) return kExitNetwork;
    std::unique_ptr<NonBlockingConnection> nb =
        NonBlockingConnection::FromConnection(std::move(blocking));
    return Relay(*nb, flags.json, /*reported=*/true);
  }
  std::unique_ptr<NonBlockingConnection> conn =
      NonBlockingConnection::Connect(host, port, std::move(options), &status);
  if (conn == nullptr) {
    SayError(status.message);
    return ExitCodeFor(status);
  }
  return Relay(*conn, flags.json);
}

// Shared by every connection of one server: bounded reuse of ephemeral keys
// and the session-resumption cache.
struct ServerShared {
  tcpcrypt::EphemeralKeyCache ephemeral_keys{
      tcpcrypt::EphemeralKeyPolicy{.max_uses = 1024, .max_age_ms = 60000}};
  tcpcrypt::ResumptionCache resumption;
  std::shared_ptr<tcpcrypt::sdk::ServerAuth> auth;
  std::atomic<int> active{0};
};

// EchoOne serves one connection on its own thread: handshake, echo until
// the peer's FINp, then our FINp.
void EchoOne(Connection& conn, bool json, const tcpcrypt::sdk::ServerAuth* auth) {
  Status s = conn.Handshake();
  if (!s.ok()) {
    SayError(conn.peer() + ": " + s.message);
    return;
  }
  ReportSession(conn, json);
  if (auth != nullptr) {
    std::vector<uint8_t> leftover;
    std::string error;
    if (!tcpcrypt::cli::AuthenticateServer(conn, *auth, json, &leftover, &error)) {
      SayError(conn.peer() + ": " + error);
      return;
    }
    if (!leftover.empty() && !conn.WriteAll(leftover).ok()) return;
  }
  std::vector<uint8_t> buf(kIoBufferSize);
  for (;;) {
    const ssize_t n = conn.Read(buf, &s);
    if (n < 0) {
      SayError(conn.peer() + ": " + s.message);
      return;
    }
    if (n == 0) break;
    s = conn.WriteAll(
        std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
    if (!s.ok()) {
      SayError(conn.peer() + ": " + s.message);
      return;
    }
  }
  s = conn.Shutdown();
  if (!s.ok()) SayError(conn.peer() + ": " + s.message);
}

int RunServe(const std::string& listen, bool stdio, int max_connections,
             const CommonFlags& flags, const tcpcrypt::cli::AuthFlags& auth_flags) {
  std::string host;
  uint16_t port = 0;
  if (!tcpcrypt::inband::SplitHostPort(listen, &host, &port)) {
    SayError(
        "--listen expects ADDR:PORT (for example 0.0.0.0:7000 or "
        "[::]:7000), got '" +
        listen + "'");
    return kExitUsage;
  }
  Options options;
  if (!BuildOptions(flags, /*server=*/true, &options)) return kExitUsage;
  auto shared = std::make_shared<ServerShared>();
  options.engine.ephemeral_keys = &shared->ephemeral_keys;
  options.engine.resumption_cache = &shared->resumption;
  std::string error;
  if (!tcpcrypt::cli::MakeServerAuth(auth_flags, &shared->auth, &error)) {
    SayError(error);
    return kExitUsage;
  }
  if (shared->auth != nullptr) {
    // Mandatory application-aware mode: clients must run authentication.
    options.engine.application_aware = true;
    options.engine.require_peer_application_aware = true;
  }

  Status status;
  std::unique_ptr<Listener> listener =
      Listener::Listen(host, port, stdio ? 1 : kListenBacklog, &status);
  if (listener == nullptr) {
    SayError(status.message);
    return ExitCodeFor(status);
  }
  Say("listening on " + listener->address() + "\n");

  if (stdio) {
    std::unique_ptr<Connection> conn = listener->Accept(options, &status);
    if (conn == nullptr) {
      SayError(status.message);
      return ExitCodeFor(status);
    }
    listener->Close();
    bool reported = false;
    if (shared->auth != nullptr) {
      if (Status h = conn->Handshake(); !h.ok()) {
        SayError(conn->peer() + ": " + h.message);
        return ExitCodeFor(h);
      }
      ReportSession(*conn, flags.json);
      reported = true;
      std::vector<uint8_t> leftover;
      if (!tcpcrypt::cli::AuthenticateServer(*conn, *shared->auth, flags.json, &leftover,
                                             &error)) {
        SayError(conn->peer() + ": " + error);
        return kExitAuth;
      }
      if (!leftover.empty() && !WriteFdAll(STDOUT_FILENO, leftover)) return kExitNetwork;
    }
    std::unique_ptr<NonBlockingConnection> nb =
        NonBlockingConnection::FromConnection(std::move(conn));
    return Relay(*nb, flags.json, reported);
  }

  for (;;) {
    std::unique_ptr<Connection> conn = listener->Accept(options, &status);
    if (conn == nullptr) {
      // Out of descriptors and the like: report, back off, keep serving.
      SayError(status.message);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (shared->active.load() >= max_connections) {
      SayError(conn->peer() + ": refused: " + std::to_string(max_connections) +
               " connections already open (--max-connections)");
      continue;  // closes it
    }
    ++shared->active;
    try {
      std::thread([shared, c = std::move(conn), json = flags.json]() {
        EchoOne(*c, json, shared->auth.get());
        --shared->active;
      }).detach();
    } catch (const std::system_error& e) {
      --shared->active;
      SayError(std::string("cannot start a connection thread: ") + e.what());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Writes to a closed socket or pipe must fail with EPIPE, not kill us.
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app(
      "tcpcrypt: opportunistic encryption for TCP (RFC 8547 TCP-ENO + RFC "
      "8548 tcpcrypt), carried in-band over an ordinary TCP connection.",
      "tcpcrypt");
  app.footer(kFooter);
  app.require_subcommand(1);

  CommonFlags serve_flags;
  std::string listen;
  bool stdio = false;
  int max_connections = 256;
  CLI::App* serve = app.add_subcommand(
      "serve",
      "Accept tcpcrypt connections: echo each one back (many at "
      "once), or with --stdio relay one to stdin/stdout");
  serve
      ->add_option("--listen", listen,
                   "Address and port to listen on, e.g. 0.0.0.0:7000, "
                   "[::]:7000, 127.0.0.1:0 (0 picks a free port; the real "
                   "one is printed as \"listening on ADDR:PORT\")")
      ->required()
      ->type_name("ADDR:PORT");
  serve->add_flag("--stdio", stdio,
                  "Relay exactly one connection to stdin/stdout instead of "
                  "echoing; exit once both directions have ended");
  serve
      ->add_option("--max-connections", max_connections,
                   "Echo mode: most connections served at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  AddCommonFlags(serve, &serve_flags);
  tcpcrypt::cli::AuthFlags serve_auth;
  tcpcrypt::cli::AddServerAuthFlags(serve, &serve_auth);
  serve->footer(kFooter);

  CommonFlags connect_flags;
  std::string target;
  CLI::App* connect = app.add_subcommand(
      "connect",
      "Connect to a tcpcrypt server: stdin to the peer, the peer "
      "to stdout; at the end of stdin send an authenticated end "
      "of file; exit when the peer's stream ends");
  connect->add_option("target", target, "HOST:PORT (or [IPv6]:PORT)")
      ->required()
      ->type_name("HOST:PORT");
  AddCommonFlags(connect, &connect_flags);
  tcpcrypt::cli::AuthFlags connect_auth;
  tcpcrypt::cli::AddClientAuthFlags(connect, &connect_auth);
  connect->footer(kFooter);

  tcpcrypt::cli::UserCommand user_cmd;
  tcpcrypt::cli::AddUserCommand(app, &user_cmd);
  tcpcrypt::cli::CertCommand cert_cmd;
  tcpcrypt::cli::AddCertCommand(app, &cert_cmd);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    SayError(std::string(e.what()) + "\nRun 'tcpcrypt --help' for usage.");
    return kExitUsage;
  }

  if (user_cmd.app->parsed()) return tcpcrypt::cli::RunUserCommand(user_cmd);
  if (serve->parsed()) {
    return RunServe(listen, stdio, max_connections, serve_flags, serve_auth);
  }
  if (cert_cmd.app->parsed()) return tcpcrypt::cli::RunCertCommand(cert_cmd);
  return RunConnect(target, connect_flags, connect_auth);
}
