#include "sdk/cli/auth_flags.h"

#include <nlohmann/json.hpp>

#include <cstdio>

#include "sdk/auth_driver.h"
#include "sdk/cli/password_input.h"

namespace tcpcrypt::cli {
namespace {

bool ParsePlan(const std::string& s, std::vector<AuthMechanism>* out) {
  if (s == "pake") {
    *out = {AuthMechanism::kPake};
  } else if (s == "cmac") {
    *out = {AuthMechanism::kCmacPassword};
  } else if (s == "x509") {
    *out = {AuthMechanism::kX509};
  } else if (s == "x509+cmac") {
    *out = {AuthMechanism::kX509, AuthMechanism::kCmacPassword};
  } else {
    return false;
  }
  return true;
}

const char* kAuthHelp =
    "Authenticate by endorsing the session ID: pake (SPAKE2+ password), cmac "
    "(CMAC password), x509 (batch-signed certificate), x509+cmac (both)";

void Report(const std::vector<auth::PeerIdentity>& ids, const std::string& role, bool json) {
  if (json) {
    nlohmann::json j = {{"authenticated", true}, {"role", role}, {"identities", nlohmann::json::array()}};
    for (const auto& id : ids) {
      j["identities"].push_back({{"mechanism", auth::MechanismName(id.mechanism)},
                                 {"name", id.name},
                                 {"attributes", id.attributes}});
    }
    std::fprintf(stderr, "%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  for (const auto& id : ids) {
    std::fprintf(stderr, "authenticated: %s=%s mechanism=%s\n", role.c_str(), id.name.c_str(),
                 std::string(auth::MechanismName(id.mechanism)).c_str());
  }
  if (ids.empty()) std::fprintf(stderr, "authenticated: no identity established\n");
}

}  // namespace

void AddServerAuthFlags(CLI::App* cmd, AuthFlags* f) {
  cmd->add_option("--auth", f->auth, kAuthHelp)->type_name("MECH");
  cmd->add_option("--users", f->users, "Verifier store for pake/cmac (tcpcrypt user add)")
      ->type_name("FILE");
  cmd->add_option("--realm", f->realm,
                  "Serve only this realm (the name clients dial); default: the realm each "
                  "client names, looked up among the names users were added under");
  cmd->add_option("--cert", f->cert, "Certificate chain (PEM) for x509")->type_name("FILE");
  cmd->add_option("--key", f->key, "Private key (PEM) for x509")->type_name("FILE");
  cmd->add_option("--client-ca", f->client_ca, "Require client certificates from this CA")
      ->type_name("FILE");
}

void AddClientAuthFlags(CLI::App* cmd, AuthFlags* f) {
  cmd->add_option("--auth", f->auth, kAuthHelp)->type_name("MECH");
  cmd->add_option("--user", f->user, "User name for pake/cmac");
  cmd->add_option("--password-file", f->password_file,
                  "Read the password from this file's first line; it must not be readable "
                  "by group or others (else $TCPCRYPT_PASSWORD, less safe, else a no-echo "
                  "prompt on /dev/tty; standard input is data, never the password)")
      ->type_name("FILE");
  cmd->add_option("--realm", f->realm,
                  "Realm the password is bound to (default: --server-name, else HOST as "
                  "dialed); set it only for a fleet sharing one user store");
  cmd->add_option("--kdf-floor", f->kdf_floor,
                  "Cheapest password hashing accepted from the server: interactive (64 MiB), "
                  "moderate (256 MiB), or test (library minimum; only for test users)")
      ->capture_default_str();
  cmd->add_option("--ca", f->ca, "Trust anchors (PEM) for x509")->type_name("FILE");
  cmd->add_option("--server-name", f->server_name,
                  "Name the server's certificate must match (default: HOST)");
}

bool MakeServerAuth(const AuthFlags& f, std::shared_ptr<sdk::ServerAuth>* out,
                    std::string* error) {
  out->reset();
  if (f.auth.empty()) return true;
  ServerOptions o;
  std::vector<AuthMechanism> plan;
  if (!ParsePlan(f.auth, &plan)) {
    *error = "--auth must be pake, cmac, x509 or x509+cmac, got '" + f.auth + "'";
    return false;
  }
  o.plans = {plan};
  o.users_file = f.users;
  o.realm = f.realm;
  o.cert_file = f.cert;
  o.key_file = f.key;
  o.client_ca_file = f.client_ca;
  StatusOr<std::shared_ptr<sdk::ServerAuth>> a = sdk::ServerAuth::Create(o);
  if (!a.ok()) {
    *error = a.status().message();
    return false;
  }
  *out = std::move(a.value());
  return true;
}

bool MakeClientAuth(const AuthFlags& f, std::shared_ptr<sdk::ClientAuth>* out,
                    std::string* error) {
  out->reset();
  if (f.auth.empty()) return true;
  ClientOptions o;
  if (!ParsePlan(f.auth, &o.mechanisms)) {
    *error = "--auth must be pake, cmac, x509 or x509+cmac, got '" + f.auth + "'";
    return false;
  }
  o.user = f.user;
  o.realm = f.realm;
  o.ca_file = f.ca;
  o.server_name = f.server_name;
  const bool password = f.auth != "x509";
  // --auth names what the server must prove, not only what may run: a
  // server that proposes less (x509+cmac answered with cmac alone) is
  // refused before any proof is sent.
  o.require_server_certificate = f.auth == "x509" || f.auth == "x509+cmac";
  o.require_password = password;
  if (f.kdf_floor == "interactive") {
    o.min_password_hashing = PasswordHashing::kInteractive;
  } else if (f.kdf_floor == "moderate") {
    o.min_password_hashing = PasswordHashing::kModerate;
  } else if (f.kdf_floor == "test") {
    o.min_password_hashing = PasswordHashing::kMinimumForTestsOnly;
  } else {
    *error = "--kdf-floor must be interactive, moderate or test, got '" + f.kdf_floor + "'";
    return false;
  }
  if (password) {
    if (f.user.empty()) {
      *error = "--auth " + f.auth + " needs --user";
      return false;
    }
    auto secret = ReadPassword(f.password_file, f.password_env, "Password for " + f.user + ": ",
                               /*confirm=*/false, error);
    if (secret == nullptr) return false;
    o.password = std::make_shared<Password>(
        std::string_view(reinterpret_cast<const char*>(secret->data()), secret->size()));
  }
  StatusOr<std::shared_ptr<sdk::ClientAuth>> a = sdk::ClientAuth::Create(o);
  if (!a.ok()) {
    *error = a.status().message();
    return false;
  }
  *out = std::move(a.value());
  return true;
}

bool AuthenticateServer(inband::Connection& conn, const sdk::ServerAuth& a, bool json,
                        std::vector<uint8_t>* leftover, std::string* error) {
  sdk::Waker waker;
  auth::AuthServer server(a.Config(), auth::ChannelBinding::SessionId(conn.session_id()),
                          waker.Callback());
  (void)server.Start();
  sdk::AuthRunResult r = sdk::RunAuthentication(conn, server, &waker, 30000);
  if (!r.ok()) {
    *error = "authentication failed: " + r.detail;
    return false;
  }
  Report(server.identities(), "user", json);
  *leftover = std::move(r.leftover);
  return true;
}

bool AuthenticateClient(inband::Connection& conn, const sdk::ClientAuth& a,
                        const std::string& host, uint16_t port, bool json,
                        std::vector<uint8_t>* leftover, std::string* error) {
  auth::AuthClient client(a.Config(host, port),
                          auth::ChannelBinding::SessionId(conn.session_id()));
  (void)client.Start();
  sdk::AuthRunResult r = sdk::RunAuthentication(conn, client, nullptr, 30000);
  if (!r.ok()) {
    *error = "authentication failed: " + r.detail;
    return false;
  }
  Report(client.identities(), "server", json);
  *leftover = std::move(r.leftover);
  return true;
}

}  // namespace tcpcrypt::cli
