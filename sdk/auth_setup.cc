#include "sdk/auth_setup.h"

#include <algorithm>

#include "auth/cmac_password/cmac_password.h"
#include "auth/pake2plus/pake2plus.h"
#include "auth/x509_batch/pem.h"
#include "auth/x509_batch/x509_batch.h"
#include "core_transport/engine/rng.h"
#include "sdk/credentials.h"

namespace tcpcrypt::sdk {

auth::Mechanism ToAuth(AuthMechanism m) {
  switch (m) {
    case AuthMechanism::kCmacPassword: return auth::Mechanism::kCmacPassword;
    case AuthMechanism::kPake: return auth::Mechanism::kPake2Plus;
    case AuthMechanism::kX509: return auth::Mechanism::kX509Batch;
    case AuthMechanism::kTicket: return auth::Mechanism::kTicket;
  }
  return auth::Mechanism::kCmacPassword;
}

AuthMechanism FromAuth(auth::Mechanism m) {
  switch (m) {
    case auth::Mechanism::kCmacPassword: return AuthMechanism::kCmacPassword;
    case auth::Mechanism::kPake2Plus: return AuthMechanism::kPake;
    case auth::Mechanism::kX509Batch: return AuthMechanism::kX509;
    case auth::Mechanism::kTicket: return AuthMechanism::kTicket;
  }
  return AuthMechanism::kCmacPassword;
}

PeerIdentity FromAuth(const auth::PeerIdentity& id) {
  return PeerIdentity{FromAuth(id.mechanism), id.name, id.attributes};
}

auth::KdfParams ToKdfParams(PasswordHashing h) {
  switch (h) {
    case PasswordHashing::kInteractive:
      return auth::KdfParams::Interactive();
    case PasswordHashing::kModerate: {
      auth::KdfParams p = auth::KdfParams::Interactive();
      p.opslimit = 3;
      p.memlimit = 256ull << 20;
      return p;
    }
    case PasswordHashing::kMinimumForTestsOnly:
      return auth::KdfParams::ForTests();
  }
  return auth::KdfParams::Interactive();
}

namespace {

bool Needs(const std::vector<AuthMechanism>& ms, AuthMechanism m) {
  return std::find(ms.begin(), ms.end(), m) != ms.end();
}

}  // namespace

StatusOr<std::shared_ptr<ClientAuth>> ClientAuth::Create(const ClientOptions& o) {
  auto a = std::make_shared<ClientAuth>();
  for (AuthMechanism m : o.mechanisms) {
    if (m == AuthMechanism::kTicket) continue;  // offered automatically
    a->mechanisms_.push_back(m);
  }
  a->required_ = o.require_server_authentication;
  a->require_certificate_ = o.require_server_certificate;
  a->require_password_ = o.require_password;
  if (o.require_server_certificate && !Needs(a->mechanisms_, AuthMechanism::kX509)) {
    return Status(StatusCode::kInvalidArgument,
                  "require_server_certificate needs the x509 mechanism");
  }
  if (o.require_password && !Needs(a->mechanisms_, AuthMechanism::kCmacPassword) &&
      !Needs(a->mechanisms_, AuthMechanism::kPake)) {
    return Status(StatusCode::kInvalidArgument,
                  "require_password needs the cmac or pake mechanism");
  }
  a->kdf_limits_.floor = ToKdfParams(o.min_password_hashing);
  a->kdf_limits_.max_memlimit = o.max_password_memory_bytes;
  a->kdf_limits_.max_opslimit = o.max_password_passes;
  if (a->kdf_limits_.max_memlimit < a->kdf_limits_.floor.memlimit ||
      a->kdf_limits_.max_opslimit < a->kdf_limits_.floor.opslimit) {
    return Status(StatusCode::kInvalidArgument,
                  "max_password_memory_bytes / max_password_passes are below "
                  "min_password_hashing");
  }
  a->user_ = o.user;
  a->realm_ = o.realm;
  a->server_name_ = o.server_name;
  a->max_message_ = o.max_auth_message;
  if (Needs(a->mechanisms_, AuthMechanism::kCmacPassword) ||
      Needs(a->mechanisms_, AuthMechanism::kPake)) {
    if (o.user.empty() || o.password == nullptr || o.password->view().empty()) {
      return Status(StatusCode::kInvalidArgument,
                    "password mechanisms need ClientOptions::user and ::password");
    }
    const std::string_view pw = o.password->view();
    a->password_ = std::make_shared<SecretBuffer>(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pw.data()), pw.size()));
  }
  if (Needs(a->mechanisms_, AuthMechanism::kX509)) {
    if (!CaSource(o).set()) {
      return Status(StatusCode::kInvalidArgument,
                    "the x509 mechanism needs ClientOptions::ca_file or ::ca_pem (trust "
                    "anchors)");
    }
    StatusOr<auth::x509::SharedX509Store> trust = LoadTrust(CaSource(o));
    if (!trust.ok()) return trust.status();
    a->trust_ = std::move(trust.value());
    if (ClientCertSource(o).set()) {
      if (Status s = LoadChain(ClientCertSource(o), &a->client_chain_); !s.ok()) return s;
      StatusOr<auth::x509::SharedEvpPkey> key = LoadKey(ClientKeySource(o));
      if (!key.ok()) return key.status();
      a->client_key_ = std::move(key.value());
    }
  }
  if (o.tickets && !a->mechanisms_.empty()) a->tickets_ = std::make_shared<auth::TicketStore>();
  return a;
}

auth::ClientConfig ClientAuth::Config(const std::string& host, uint16_t port) const {
  auth::ClientConfig c;
  const std::string expected = server_name_.empty() ? host : server_name_;
  c.user = user_;
  // The realm defaults to the server's name as dialed (options.h).
  c.realm = realm_.empty() ? expected : realm_;
  c.host = host;
  c.port = port;
  c.server_name = expected;
  // With nothing to run the client cannot insist (TLS fallback negotiates
  // even then).
  c.required = required_ && !mechanisms_.empty();
  c.require_certificate = require_certificate_;
  c.require_password = require_password_;
  c.tickets = tickets_;
  c.max_message = max_message_;
  for (AuthMechanism m : mechanisms_) {
    switch (m) {
      case AuthMechanism::kCmacPassword:
        c.mechanisms.emplace_back(auth::Mechanism::kCmacPassword,
                                  auth::cmac::ClientFactory(password_, kdf_limits_));
        break;
      case AuthMechanism::kPake:
        c.mechanisms.emplace_back(auth::Mechanism::kPake2Plus,
                                  auth::pake::ClientFactory(password_, nullptr, kdf_limits_));
        break;
      case AuthMechanism::kX509: {
        auth::x509::ClientConfig xc;
        xc.trust = trust_;
        xc.client_key = client_key_;
        xc.client_chain_der = client_chain_;
        // The certificate must match the host, not the password realm.
        auth::MechanismFactory inner = auth::x509::ClientFactory(xc);
        c.mechanisms.emplace_back(auth::Mechanism::kX509Batch,
                                  [inner, expected](const auth::Context& ctx) {
                                    auth::Context with_host = ctx;
                                    with_host.realm = expected;
                                    return inner(with_host);
                                  });
        break;
      }
      case AuthMechanism::kTicket:
        break;
    }
  }
  return c;
}

StatusOr<std::shared_ptr<ServerAuth>> ServerAuth::Create(const ServerOptions& o) {
  auto a = std::make_shared<ServerAuth>();
  a->plans_ = o.plans;
  a->required_ = o.require_authentication;
  a->realm_ = o.realm;
  a->max_message_ = o.max_auth_message;
  a->target_ = ToKdfParams(o.password_hashing);
  bool password = false, x509 = false;
  for (const auto& plan : o.plans) {
    if (plan.empty()) return Status(StatusCode::kInvalidArgument, "an authentication plan is empty");
    for (AuthMechanism m : plan) {
      if (m == AuthMechanism::kTicket) {
        return Status(StatusCode::kInvalidArgument,
                      "kTicket is not a plan; set ServerOptions::issue_tickets");
      }
      password |= m == AuthMechanism::kCmacPassword || m == AuthMechanism::kPake;
      x509 |= m == AuthMechanism::kX509;
    }
  }
  std::string error;
  if (password) {
    if (o.users_file.empty()) {
      return Status(StatusCode::kInvalidArgument,
                    "password mechanisms need ServerOptions::users_file");
    }
    a->store_ = auth::SqliteVerifierStore::Open(
        o.users_file, &error, auth::SqliteVerifierStore::OpenMode::kMustExist);
    if (a->store_ == nullptr) return Status(StatusCode::kInvalidArgument, error);
    const auth::ThrottleLimits limits{
        .max_failures_per_user = o.throttle.max_failures_per_user,
        .max_failures_per_source = o.throttle.max_failures_per_source,
        .window_ms = o.throttle.window_ms,
        .max_tracked_users = o.throttle.max_tracked_users,
        .max_tracked_sources = o.throttle.max_tracked_sources};
    if (!auth::CheckThrottleLimits(limits, &error)) {
      return Status(StatusCode::kInvalidArgument, error);
    }
    a->throttle_ = std::make_shared<auth::AttemptThrottle>(limits);
  }
  if (x509) {
    if (!CertSource(o).set() || !KeySource(o).set()) {
      return Status(StatusCode::kInvalidArgument,
                    "the x509 mechanism needs ServerOptions::cert_file (or ::cert_pem) and "
                    "::key_file (or ::key_pem)");
    }
    if (Status s = LoadChain(CertSource(o), &a->chain_); !s.ok()) return s;
    StatusOr<auth::x509::SharedEvpPkey> key = LoadKey(KeySource(o));
    if (!key.ok()) return key.status();
    a->signer_ = auth::x509::BatchSigner::Create(std::move(key.value()), &error);
    if (a->signer_ == nullptr) return Status(StatusCode::kInvalidArgument, error);
    if (ClientCaSource(o).set()) {
      StatusOr<auth::x509::SharedX509Store> ca = LoadTrust(ClientCaSource(o));
      if (!ca.ok()) return ca.status();
      a->client_ca_ = std::move(ca.value());
    }
    auth::x509::ServerConfig check;
    check.signer = a->signer_;
    check.chain_der = a->chain_;
    if (!auth::x509::CheckServerConfig(check, &error)) {
      return Status(StatusCode::kInvalidArgument, error);
    }
  }
  if (o.issue_tickets && !o.plans.empty()) {
    a->tickets_ = std::make_shared<auth::TicketIssuer>(auth::TicketPolicy{},
                                                       SystemRng::Instance());
  }
  // Built once: the mechanism factories check and parse the certificate
  // chain, which costs more than a whole tcpcrypt handshake if repeated
  // per connection.
  a->config_ = a->BuildConfig();
  return a;
}

auth::ServerConfig ServerAuth::BuildConfig() const {
  auth::ServerConfig c;
  c.realm = realm_;
  // With no plan there is nothing to insist on (a TLS client still
  // negotiates, and is let through unauthenticated).
  c.required = required_ && !plans_.empty();
  c.throttle = throttle_;
  c.tickets = tickets_;
  c.max_message = max_message_;
  bool cmac = false, pake = false, x509 = false;
  for (const auto& plan : plans_) {
    std::vector<auth::Mechanism> p;
    for (AuthMechanism m : plan) {
      p.push_back(ToAuth(m));
      cmac |= m == AuthMechanism::kCmacPassword;
      pake |= m == AuthMechanism::kPake;
      x509 |= m == AuthMechanism::kX509;
    }
    c.plans.push_back(std::move(p));
  }
  if (cmac) {
    c.mechanisms.emplace_back(
        auth::Mechanism::kCmacPassword,
        auth::cmac::ServerFactory({.store = store_.get(), .decoy = &decoy_,
                                   .target = target_, .rng = nullptr}));
  }
  if (pake) {
    c.mechanisms.emplace_back(
        auth::Mechanism::kPake2Plus,
        auth::pake::ServerFactory({.store = store_.get(), .decoy = &decoy_,
                                   .target = target_, .rng = nullptr}));
  }
  if (x509) {
    auth::x509::ServerConfig xc;
    xc.signer = signer_;
    xc.chain_der = chain_;
    xc.require_client_cert = client_ca_ != nullptr;
    xc.client_ca = client_ca_;
    c.mechanisms.emplace_back(auth::Mechanism::kX509Batch, auth::x509::ServerFactory(xc));
  }
  return c;
}

}  // namespace tcpcrypt::sdk
