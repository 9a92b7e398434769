// auth_flags.h: the CLI's authentication options (--auth and friends) and
// running the chosen authenticator over a connection.
#ifndef TCPCRYPT_SDK_CLI_AUTH_FLAGS_H_
#define TCPCRYPT_SDK_CLI_AUTH_FLAGS_H_

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <CLI/CLI.hpp>
#pragma GCC diagnostic pop

#include <memory>
#include <string>
#include <vector>

#include "core_transport/inband/connection.h"
#include "sdk/auth_setup.h"

namespace tcpcrypt::cli {

struct AuthFlags {
  std::string auth;  // "", pake, cmac, x509, x509+cmac
  std::string users;
  // Empty: serve the realm each client names (server); the host dialed, or
  // --server-name (client).
  std::string realm;
  std::string kdf_floor = "interactive";  // connect: interactive, moderate or test
  std::string cert, key, ca, client_ca;
  std::string user, password_file, password_env = "TCPCRYPT_PASSWORD";
  std::string server_name;
};

void AddServerAuthFlags(CLI::App* cmd, AuthFlags* f);
void AddClientAuthFlags(CLI::App* cmd, AuthFlags* f);

// Make*Auth build the authenticator state once (nullptr when --auth is not
// given). On error they return false with a message.
bool MakeServerAuth(const AuthFlags& f, std::shared_ptr<sdk::ServerAuth>* out,
                    std::string* error);
bool MakeClientAuth(const AuthFlags& f, std::shared_ptr<sdk::ClientAuth>* out,
                    std::string* error);

// Authenticate* run the exchange over |conn| (handshake done), print the
// outcome on stderr ("authenticated: ..." or JSON), and return the
// application bytes that followed the exchange in |leftover|. False (with
// the reason in |error|) when authentication failed.
bool AuthenticateServer(inband::Connection& conn, const sdk::ServerAuth& auth, bool json,
                        std::vector<uint8_t>* leftover, std::string* error);
bool AuthenticateClient(inband::Connection& conn, const sdk::ClientAuth& auth,
                        const std::string& host, uint16_t port, bool json,
                        std::vector<uint8_t>* leftover, std::string* error);

}  // namespace tcpcrypt::cli

#endif  // TCPCRYPT_SDK_CLI_AUTH_FLAGS_H_
