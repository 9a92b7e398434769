// client.h: opening protected, authenticated sessions.
//
//   tcpcrypt::ClientOptions o;
//   o.mechanisms = {tcpcrypt::AuthMechanism::kPake};
//   o.user = "alice";
//   o.password = std::make_shared<tcpcrypt::Password>("correct horse");
//   auto client = tcpcrypt::Client::Create(o);
//   auto session = client.value()->Connect("bank.example", 7000);
//   if (!session.ok()) { ... session.status().message() ... }
//
// Thread-safety: a Client is thread-safe; many threads may Connect at once
// and share its resumption and ticket caches.
#ifndef TCPCRYPT_CLIENT_H_
#define TCPCRYPT_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "tcpcrypt/options.h"
#include "tcpcrypt/session.h"
#include "tcpcrypt/status.h"

namespace tcpcrypt {

class Client {
 public:
  // Create checks |options| (INVALID_ARGUMENT with the reason) and loads
  // certificates and keys it names.
  static StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);
  virtual ~Client() = default;

  // Connect opens a session to host:port: TCP, then tcpcrypt (or TLS / plain
  // as the policy allows), then authentication. Errors: UNAVAILABLE (refused,
  // unreachable, peer does not speak tcpcrypt under kRequire),
  // DEADLINE_EXCEEDED, UNAUTHENTICATED (authentication failed or the server
  // could not prove itself), DATA_LOSS (integrity), INVALID_ARGUMENT.
  virtual StatusOr<std::unique_ptr<Session>> Connect(std::string_view host,
                                                     uint16_t port) = 0;
};

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CLIENT_H_
