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
