// auth_setup.h: turns the public options into authenticator configurations
// (internal to the SDK). Built once per Client / Server and shared by every
// connection.
#ifndef TCPCRYPT_SDK_AUTH_SETUP_H_
#define TCPCRYPT_SDK_AUTH_SETUP_H_

#include <memory>
#include <string>
#include <vector>

#include "auth/common/auth_session.h"
#include "auth/common/decoy.h"
#include "auth/common/verifier_store.h"
#include "auth/x509_batch/batch_signer.h"
#include "auth/x509_batch/ossl_ptr.h"
#include "tcpcrypt/options.h"
#include "tcpcrypt/status.h"

namespace tcpcrypt::sdk {

auth::Mechanism ToAuth(AuthMechanism m);
AuthMechanism FromAuth(auth::Mechanism m);
PeerIdentity FromAuth(const auth::PeerIdentity& id);

class ClientAuth {
 public:
  static StatusOr<std::shared_ptr<ClientAuth>> Create(const ClientOptions& options);
  bool enabled() const { return !mechanisms_.empty(); }
  // Config for one connection to |host|:|port| as dialed (what an X.509
  // certificate must match unless server_name is set, the default realm,
  // and the server identity tickets are kept under).
  auth::ClientConfig Config(const std::string& host, uint16_t port) const;

 private:
  std::vector<AuthMechanism> mechanisms_;
  bool required_ = true;
  bool require_certificate_ = false;
  bool require_password_ = false;
  auth::KdfLimits kdf_limits_;
  std::string user_;
  std::string realm_;
  std::string server_name_;
  std::shared_ptr<const SecretBuffer> password_;
  auth::x509::SharedX509Store trust_;
  auth::x509::SharedEvpPkey client_key_;
  std::vector<std::vector<uint8_t>> client_chain_;
  std::shared_ptr<auth::TicketStore> tickets_;
  size_t max_message_ = 0;
};

class ServerAuth {
 public:
  static StatusOr<std::shared_ptr<ServerAuth>> Create(const ServerOptions& options);
  bool enabled() const { return !plans_.empty(); }
  bool required() const { return required_; }
  // Config is the authentication configuration every connection copies
  // (built once by Create; the factories in it share their state).
  const auth::ServerConfig& Config() const { return config_; }
  uint64_t root_signatures() const { return signer_ ? signer_->batches_signed() : 0; }
  auth::ThrottleStats throttle_stats() const {
    return throttle_ ? throttle_->stats() : auth::ThrottleStats{};
  }

 private:
  std::vector<std::vector<AuthMechanism>> plans_;
  bool required_ = true;
  std::string realm_;
  std::unique_ptr<auth::VerifierStore> store_;
  auth::DecoySecret decoy_;
  std::shared_ptr<auth::x509::BatchSigner> signer_;
  std::vector<std::vector<uint8_t>> chain_;
  auth::x509::SharedX509Store client_ca_;
  std::shared_ptr<auth::TicketIssuer> tickets_;
  std::shared_ptr<auth::Throttle> throttle_;
  auth::KdfParams target_;
  size_t max_message_ = 0;
  auth::ServerConfig config_;

  auth::ServerConfig BuildConfig() const;
};

auth::KdfParams ToKdfParams(PasswordHashing h);

}  // namespace tcpcrypt::sdk

#endif  // TCPCRYPT_SDK_AUTH_SETUP_H_
