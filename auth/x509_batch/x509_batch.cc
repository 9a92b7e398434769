#include "auth/x509_batch/x509_batch.h"

#include <openssl/err.h>

#include <functional>
#include <mutex>
#include <utility>

#include "auth/x509_batch/batch_proof.h"
#include "auth/x509_batch/batch_signature.h"
#include "auth/x509_batch/chain_verify.h"
#include "auth/x509_batch/client_certificate.h"

namespace tcpcrypt::auth::x509 {
namespace {

// CheckChain checks a configured chain's bounds and that its leaf holds
// |key|'s public half.
bool CheckChain(const std::vector<std::vector<uint8_t>>& chain_der,
                const EVP_PKEY* key, const char* who, std::string* error) {
  if (chain_der.empty()) {
    *error = std::string(who) + " certificate chain is empty";
    return false;
  }
  if (chain_der.size() > kMaxChainCertificates) {
    *error = std::string(who) + " certificate chain has more than 10 certificates";
    return false;
  }
  UniqueX509 leaf;
  for (size_t i = 0; i < chain_der.size(); ++i) {
    UniqueX509 cert = ParseCertificateDer(chain_der[i]);
    if (!cert) {
      *error = std::string(who) + " certificate " + std::to_string(i + 1) +
               " does not parse or is larger than 16384 bytes";
      return false;
    }
    if (i == 0) leaf = std::move(cert);
  }
  const EVP_PKEY* leaf_key = X509_get0_pubkey(leaf.get());
  if (leaf_key == nullptr || EVP_PKEY_eq(leaf_key, key) != 1) {
    ERR_clear_error();
    *error = std::string(who) + " certificate does not match the signing key";
    return false;
  }
  return true;
}

// StickyFailure keeps a side's first error so every later call repeats it.
class StickyFailure {
 public:
  bool failed() const { return failed_; }
  Step Record(AuthError e, std::string why) {
    failed_ = true;
    error_ = e;
    detail_ = std::move(why);
    return Repeat();
  }
  Step Repeat() const { return Step::Fail(error_, detail_); }

 private:
  bool failed_ = false;
  AuthError error_ = AuthError::kNone;
  std::string detail_;
};

// ---------------------------------------------------------------------------
// Server side.

struct ServerShared {
  ServerConfig config;
  std::string config_error;  // non-empty: every side fails Start with it
};

class ServerSide final : public MechanismSide {
 public:
  ServerSide(std::shared_ptr<const ServerShared> shared, const Context& ctx)
      : shared_(std::move(shared)),
        binding_(ctx.binding),
        pending_(std::make_shared<Pending>()) {
    pending_->wake = ctx.wake;
  }

  ~ServerSide() override {
    // After this no completion calls wake (one in progress finishes first).
    std::lock_guard<std::mutex> lock(pending_->wake_mu);
    pending_->abandoned = true;
  }

  Mechanism mechanism() const override { return Mechanism::kX509Batch; }

  Step Start() override {
    switch (state_) {
      case State::kIdle:
        break;
      case State::kSigning:
      case State::kAwaitClientCert:
        return Fail(AuthError::kUnexpectedMessage,
                    "x509 server side: Start called twice");
      case State::kDone:
        return AlreadyDone();
      case State::kFailed:
        return failure_.Repeat();
    }
    if (!shared_->config_error.empty()) {
      return Fail(AuthError::kInternal, shared_->config_error);
    }
    state_ = State::kSigning;
    std::shared_ptr<Pending> pending = pending_;
    const bool queued = shared_->config.signer->Enqueue(
        binding_.Encode(), [pending](BatchSignResult result) {
          {
            std::lock_guard<std::mutex> lock(pending->mu);
            pending->result = std::move(result);
          }
          std::lock_guard<std::mutex> lock(pending->wake_mu);
          if (!pending->abandoned && pending->wake) pending->wake();
        });
    if (!queued) {
      return Fail(AuthError::kInternal, "batch signer is shut down");
    }
    return Step::Continue();
  }

  Step Poll() override {
    switch (state_) {
      case State::kIdle:
      case State::kAwaitClientCert:
        return Step::Continue();
      case State::kSigning:
        break;
      case State::kDone:
        return AlreadyDone();
      case State::kFailed:
        return failure_.Repeat();
    }
    std::optional<BatchSignResult> result;
    {
      std::lock_guard<std::mutex> lock(pending_->mu);
      if (!pending_->result) return Step::Continue();  // not signed yet
      result = std::move(pending_->result);
      pending_->result.reset();
    }
    if (!result->ok) {
      return Fail(AuthError::kInternal, "batch signing failed: " + result->error);
    }
    const ServerConfig& config = shared_->config;
    std::vector<uint8_t> payload;
    if (!EncodeBatchProof(config.chain_der, *result, config.require_client_cert,
                          &payload)) {
      return Fail(AuthError::kInternal, "cannot encode the BatchProof");
    }
    if (config.require_client_cert) {
      state_ = State::kAwaitClientCert;
      return Step::Continue(std::move(payload));
    }
    state_ = State::kDone;
    return Step::Done(std::move(payload));
  }

  Step OnPayload(ByteSpan payload) override {
    switch (state_) {
      case State::kIdle:
      case State::kSigning:
        return Fail(AuthError::kUnexpectedMessage,
                    "x509 server side: a payload arrived before the "
                    "BatchProof was sent");
      case State::kAwaitClientCert:
        break;
      case State::kDone:
        return AlreadyDone();
      case State::kFailed:
        return failure_.Repeat();
    }
    const ServerConfig& config = shared_->config;
    PeerIdentity client;
    const CheckResult checked =
        VerifyClientCertificate(payload, binding_, config.client_ca.get(),
                                config.verification_time, &client);
    if (!checked.ok()) return Fail(checked.error, checked.detail);
    peer_ = std::move(client);
    state_ = State::kDone;
    return Step::Done();
  }

  std::optional<PeerIdentity> peer() const override {
    return state_ == State::kDone ? peer_ : std::nullopt;
  }

 private:
  enum class State : uint8_t {
    kIdle,             // before Start
    kSigning,          // queued with the signer, waiting for wake
    kAwaitClientCert,  // BatchProof sent, ClientCertificate required
    kDone,
    kFailed,
  };

  // Pending is shared with the signer's completion callback, which may run
  // after this side is gone.
  struct Pending {
    std::mutex mu;
    std::optional<BatchSignResult> result;  // guarded by mu
    std::mutex wake_mu;
    bool abandoned = false;  // guarded by wake_mu
    std::function<void()> wake;
  };

  Step Fail(AuthError e, std::string why) {
    state_ = State::kFailed;
    return failure_.Record(e, std::move(why));
  }
  static Step AlreadyDone() {
    return Step::Fail(AuthError::kUnexpectedMessage,
                      "x509 server side is already done");
  }

  const std::shared_ptr<const ServerShared> shared_;
  const ChannelBinding binding_;
  const std::shared_ptr<Pending> pending_;
  State state_ = State::kIdle;
  StickyFailure failure_;
  std::optional<PeerIdentity> peer_;
};

// ---------------------------------------------------------------------------
// Client side.

struct ClientShared {
  ClientConfig config;
  std::string config_error;
};

class ClientSide final : public MechanismSide {
 public:
  ClientSide(std::shared_ptr<const ClientShared> shared, const Context& ctx)
      : shared_(std::move(shared)), binding_(ctx.binding), host_(ctx.realm) {}

  Mechanism mechanism() const override { return Mechanism::kX509Batch; }

  Step Start() override {
    switch (state_) {
      case State::kIdle:
        break;
      case State::kAwaitProof:
        return Fail(AuthError::kUnexpectedMessage,
                    "x509 client side: Start called twice");
      case State::kDone:
        return AlreadyDone();
      case State::kFailed:
        return failure_.Repeat();
    }
    if (!shared_->config_error.empty()) {
      return Fail(AuthError::kInternal, shared_->config_error);
    }
    state_ = State::kAwaitProof;
    return Step::Continue();
  }

  Step Poll() override {
    switch (state_) {
      case State::kIdle:
      case State::kAwaitProof:
        return Step::Continue();
      case State::kDone:
        return AlreadyDone();
      case State::kFailed:
        return failure_.Repeat();
    }
    return Step::Continue();
  }

  Step OnPayload(ByteSpan payload) override {
    switch (state_) {
      case State::kIdle:
        return Fail(AuthError::kUnexpectedMessage,
                    "x509 client side: a payload arrived before Start");
      case State::kAwaitProof:
        break;
      case State::kDone:
        return AlreadyDone();
      case State::kFailed:
        return failure_.Repeat();
    }
    const ClientConfig& config = shared_->config;
    ServerProof proof;
    const CheckResult checked =
        VerifyBatchProof(payload, binding_, config.trust.get(), host_,
                         config.verification_time, &proof);
    if (!checked.ok()) return Fail(checked.error, checked.detail);

    std::optional<std::vector<uint8_t>> reply;
    if (proof.client_certificate_requested) {
      if (!config.client_key) {
        return Fail(AuthError::kCertificate,
                    "the server requires a client certificate and none is "
                    "configured");
      }
      std::vector<uint8_t> message;
      std::string error;
      if (!EncodeClientCertificate(config.client_key.get(),
                                   config.client_chain_der, binding_, &message,
                                   &error)) {
        return Fail(AuthError::kInternal, error);
      }
      reply = std::move(message);
    }
    peer_ = std::move(proof.identity);
    state_ = State::kDone;
    return Step::Done(std::move(reply));
  }

  std::optional<PeerIdentity> peer() const override {
    return state_ == State::kDone ? peer_ : std::nullopt;
  }

 private:
  enum class State : uint8_t {
    kIdle,        // before Start
    kAwaitProof,  // waiting for the server's BatchProof
    kDone,
    kFailed,
  };

  Step Fail(AuthError e, std::string why) {
    state_ = State::kFailed;
    return failure_.Record(e, std::move(why));
  }
  static Step AlreadyDone() {
    return Step::Fail(AuthError::kUnexpectedMessage,
                      "x509 client side is already done");
  }

  const std::shared_ptr<const ClientShared> shared_;
  const ChannelBinding binding_;
  const std::string host_;
  State state_ = State::kIdle;
  StickyFailure failure_;
  std::optional<PeerIdentity> peer_;
};

}  // namespace

bool CheckServerConfig(const ServerConfig& config, std::string* error) {
  if (!config.signer) {
    *error = "x509 server: no batch signer configured";
    return false;
  }
  if (!CheckChain(config.chain_der, config.signer->key().get(), "x509 server:",
                  error)) {
    return false;
  }
  if (config.require_client_cert && !config.client_ca) {
    *error = "x509 server: client certificates are required but no client CA "
             "store is configured";
    return false;
  }
  return true;
}

bool CheckClientConfig(const ClientConfig& config, std::string* error) {
  if (!config.trust) {
    *error = "x509 client: no trust anchors configured";
    return false;
  }
  if (!config.client_key) {
    if (!config.client_chain_der.empty()) {
      *error = "x509 client: a client certificate chain without its key";
      return false;
    }
    return true;
  }
  if (!KeyAlgorithmOf(config.client_key.get())) {
    *error = "x509 client: unsupported client key (need ECDSA P-256, Ed25519 "
             "or RSA 2048-8192)";
    return false;
  }
  return CheckChain(config.client_chain_der, config.client_key.get(),
                    "x509 client:", error);
}

MechanismFactory ServerFactory(ServerConfig config) {
  auto shared = std::make_shared<ServerShared>();
  std::string error;
  if (!CheckServerConfig(config, &error)) {
    shared->config_error = error.empty() ? "x509 server: bad configuration" : error;
  }
  shared->config = std::move(config);
  std::shared_ptr<const ServerShared> frozen = std::move(shared);
  return [frozen](const Context& ctx) -> std::unique_ptr<MechanismSide> {
    return std::make_unique<ServerSide>(frozen, ctx);
  };
}

MechanismFactory ClientFactory(ClientConfig config) {
  auto shared = std::make_shared<ClientShared>();
  std::string error;
  if (!CheckClientConfig(config, &error)) {
    shared->config_error = error.empty() ? "x509 client: bad configuration" : error;
  }
  shared->config = std::move(config);
  std::shared_ptr<const ClientShared> frozen = std::move(shared);
  return [frozen](const Context& ctx) -> std::unique_ptr<MechanismSide> {
    return std::make_unique<ClientSide>(frozen, ctx);
  };
}

}  // namespace tcpcrypt::auth::x509
