// server.h: accepting protected, authenticated sessions.
//
//   tcpcrypt::ServerOptions o;
//   o.plans = {{tcpcrypt::AuthMechanism::kPake}};
//   o.users_file = "users.db";
//   auto server = tcpcrypt::Server::Create(o);
//   auto st = server.value()->Listen("0.0.0.0", 7000);
//   for (;;) {
//     auto session = server.value()->Accept();   // handshake + auth done
//     if (session.ok()) Handle(std::move(session.value()));
//   }
//
// Thread-safety: a Server is thread-safe; several threads may call Accept.
#ifndef TCPCRYPT_SERVER_H_
#define TCPCRYPT_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "tcpcrypt/options.h"
#include "tcpcrypt/session.h"
#include "tcpcrypt/status.h"

namespace tcpcrypt {

struct ServerStats {
  uint64_t accepted = 0;          // TCP connections accepted
  uint64_t authenticated = 0;     // sessions handed to the application
  uint64_t failed = 0;            // handshakes or authentications that failed
  uint64_t pending = 0;           // handshakes in progress now
  uint64_t root_signatures = 0;   // X.509 batch signatures made
  // Password attempts the throttle let through to the mechanisms (each
  // may reach one proof check), and those it refused (ThrottleOptions).
  uint64_t password_attempts = 0;
  uint64_t throttled = 0;

  // Failures by kind, counted where each is decided, by Accept and Serve
  // alike. Every connection counted in |failed| is counted in exactly one
  // of these, so they add up to |failed|.
  //  - not_tcpcrypt: the client's first byte was neither tcpcrypt's nor
  //    (with accept_tls) TLS's, or it closed before sending one, or it is a
  //    plain client (Encryption::kPrefer) where authentication is required.
  //  - handshake_timeout: no first byte, or no complete tcpcrypt handshake,
  //    within timeouts.handshake_ms.
  //  - handshake_failed: the tcpcrypt handshake failed (no common key
  //    exchange or cipher, a malformed message, a client that does not run
  //    the required authentication, a broken connection).
  //  - tls_failed: the TLS 1.3 handshake failed or timed out.
  //  - auth_timeout: authentication not done within timeouts.auth_ms.
  //  - auth_failed: authentication failed: a wrong password or proof, a
  //    refused certificate, a client that gave up or closed, a throttled
  //    attempt (also counted in |throttled|).
  //  - overloaded: closed at once, max_pending_handshakes being reached.
  //  - other_failed: a library failure (descriptors, epoll), and
  //    connections still being set up when Serve stopped.
  uint64_t not_tcpcrypt = 0;
  uint64_t handshake_timeout = 0;
  uint64_t handshake_failed = 0;
  uint64_t tls_failed = 0;
  uint64_t auth_timeout = 0;
  uint64_t auth_failed = 0;
  uint64_t overloaded = 0;
  uint64_t other_failed = 0;
};

class Server {
 public:
  static StatusOr<std::unique_ptr<Server>> Create(ServerOptions options);
  virtual ~Server() = default;

  // Listen binds and listens (port 0 picks a free port; see port()).
  virtual Status Listen(std::string_view address, uint16_t port) = 0;
  virtual uint16_t port() const = 0;

  // Accept waits for the next connection and returns it once its handshake
  // and authentication succeeded. A failed connection is closed and counted
  // (stats()); Accept then waits for the next, so one bad client cannot
  // stop the server. Returns CANCELLED after Stop().
  virtual StatusOr<std::unique_ptr<Session>> Accept() = 0;

  // Serve runs until Stop(): an event loop handshakes and authenticates
  // many connections at once (bounded by max_pending_handshakes and the
  // time-outs), and |handler| runs each ready session on a pool of
  // |worker_threads| threads.
  virtual Status Serve(std::function<void(std::unique_ptr<Session>)> handler,
                       int worker_threads = 8) = 0;

  // Stop makes Accept and Serve return; safe from any thread.
  virtual void Stop() = 0;
  virtual ServerStats stats() const = 0;
};

}  // namespace tcpcrypt

#endif  // TCPCRYPT_SERVER_H_
