#include "auth/cmac_password/cmac_password.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include <array>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "auth/cmac_password/cmac.pb.h"

// The payload messages (Message, Params, ClientProof, ServerProof, Upgrade,
// UpgradeReply, Kdf) are generated from cmac.proto into this namespace.
namespace tcpcrypt::auth::cmac {
namespace {

using MacArray = std::array<uint8_t, kMacLen>;

struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter>;

// CmacAlgorithm is OpenSSL's CMAC, fetched once per process and never freed
// (nullptr if the provider lacks it).
EVP_MAC* CmacAlgorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_CMAC, nullptr);
  return mac;
}

// CipherTemplate is a per-thread CMAC context with AES-128-CBC already bound,
// so keying a new context is a dup plus a key schedule, with no algorithm or
// cipher fetch. OpenSSL refuses to duplicate a CMAC context that was never
// keyed, so the template carries an all-zero key; every dup is re-keyed
// before use.
EVP_MAC_CTX* CipherTemplate() {
  thread_local const MacCtxPtr tmpl = []() -> MacCtxPtr {
    EVP_MAC* mac = CmacAlgorithm();
    if (mac == nullptr) return nullptr;
    MacCtxPtr ctx(EVP_MAC_CTX_new(mac));
    if (ctx == nullptr) return nullptr;
    char cipher[] = "AES-128-CBC";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
        OSSL_PARAM_construct_end(),
    };
    static const uint8_t kZeroKey[kVerifierLen] = {0};
    if (EVP_MAC_init(ctx.get(), kZeroKey, sizeof(kZeroKey), params) != 1) {
      return nullptr;
    }
    return ctx;
  }();
  return tmpl.get();
}

// ---------------------------------------------------------------------------
// Payload parsing and writing.

// Parse decodes one payload. It accepts only the canonical encoding: at most
// kMaxPayloadLen bytes, one body, no unknown fields, and bytes that
// re-serialize to exactly the input (which rules out repeated, reordered or
// over-long fields), so each message has exactly one accepted encoding.
std::optional<Message> Parse(ByteSpan payload, std::string* out_why) {
  if (payload.size() > kMaxPayloadLen) {
    *out_why = "payload of " + std::to_string(payload.size()) +
               " bytes exceeds the limit of " + std::to_string(kMaxPayloadLen);
    return std::nullopt;
  }
  Message msg;
  if (!msg.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    *out_why = "payload does not parse";
    return std::nullopt;
  }
  if (msg.body_case() == Message::BODY_NOT_SET) {
    *out_why = "payload carries no message";
    return std::nullopt;
  }
  // Unknown fields (at any depth) are dropped here, so the comparison below
  // fails if there were any.
  msg.DiscardUnknownFields();
  std::string again;
  const bool canonical =
      msg.SerializeToString(&again) && again.size() == payload.size() &&
      CRYPTO_memcmp(again.data(), payload.data(), payload.size()) == 0;
  OPENSSL_cleanse(again.data(), again.size());  // may hold a verifier
  if (!canonical) {
    *out_why = "payload is not canonically encoded or has unknown fields";
    return std::nullopt;
  }
  return msg;
}

// Serialize writes |msg| as a payload.
std::optional<std::vector<uint8_t>> Serialize(const Message& msg) {
  std::vector<uint8_t> out(msg.ByteSizeLong());
  if (!msg.SerializeToArray(out.data(), static_cast<int>(out.size()))) {
    return std::nullopt;
  }
  return out;
}

void ToProto(const KdfParams& p, Kdf* out) {
  out->set_algorithm(p.algorithm);
  out->set_opslimit(p.opslimit);
  out->set_memlimit(p.memlimit);
}

KdfParams FromProto(const Kdf& k) {
  KdfParams p;
  p.algorithm = k.algorithm();
  p.opslimit = k.opslimit();
  p.memlimit = k.memlimit();
  return p;
}

ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

ByteSpan AsBytes(const std::string& s) { return AsBytes(std::string_view(s)); }

// WipeString zeroes a protobuf string field that held a secret.
void WipeString(std::string* s) { OPENSSL_cleanse(s->data(), s->size()); }

// Proof computes CMAC(h, tag || encoded binding) with |mac|'s key.
bool Proof(CmacAes128* mac, std::string_view tag,
           const std::vector<uint8_t>& encoded_binding, MacArray* out) {
  const ByteSpan parts[] = {AsBytes(tag), encoded_binding};
  return mac->Compute(parts, *out);
}

int64_t NowUnix() { return static_cast<int64_t>(std::time(nullptr)); }

// Sticky holds a side's first failure; every later call repeats it.
struct Sticky {
  AuthError error = AuthError::kNone;
  std::string detail;

  Step Set(AuthError e, std::string why) {
    error = e;
    detail = std::move(why);
    return Step::Fail(error, detail);
  }
  Step Repeat() const { return Step::Fail(error, detail); }
};

constexpr char kAfterDone[] = "cmac-password: called after the mechanism finished";

// ---------------------------------------------------------------------------
// Server side.

class ServerSide final : public MechanismSide {
 public:
  ServerSide(std::shared_ptr<const ServerConfig> config, const Context& ctx)
      : config_(std::move(config)),
        user_(ctx.user),
        realm_(ctx.realm),
        binding_(ctx.binding.Encode()) {}

  Mechanism mechanism() const override { return Mechanism::kCmacPassword; }

  Step Start() override {
    switch (state_) {
      case State::kStart:
        return DoStart();
      case State::kAwaitClientProof:
      case State::kAwaitUpgradeReply:
        return Fail(AuthError::kUnexpectedMessage,
                    "cmac-password server: Start called twice");
      case State::kDone:
        return Fail(AuthError::kUnexpectedMessage, kAfterDone);
      case State::kFailed:
        return failure_.Repeat();
    }
    return Fail(AuthError::kInternal, "cmac-password server: bad state");
  }

  Step OnPayload(ByteSpan payload) override {
    switch (state_) {
      case State::kStart:
        return Fail(AuthError::kUnexpectedMessage,
                    "cmac-password server: payload before Start");
      case State::kAwaitClientProof:
        return OnClientProof(payload);
      case State::kAwaitUpgradeReply:
        return OnUpgradeReply(payload);
      case State::kDone:
        return Fail(AuthError::kUnexpectedMessage, kAfterDone);
      case State::kFailed:
        return failure_.Repeat();
    }
    return Fail(AuthError::kInternal, "cmac-password server: bad state");
  }

  std::optional<PeerIdentity> peer() const override {
    if (state_ != State::kDone) return std::nullopt;
    return PeerIdentity{Mechanism::kCmacPassword, user_, {{"realm", realm_}}};
  }

  UpgradeOutcome upgrade_outcome() const { return upgrade_outcome_; }

 private:
  enum class State : uint8_t {
    kStart,
    kAwaitClientProof,
    kAwaitUpgradeReply,
    kDone,
    kFailed,
  };

  // Fail enters kFailed and remembers why. (A call after kDone fails but
  // leaves the finished authentication as it was.)
  Step Fail(AuthError e, std::string why) {
    if (state_ == State::kDone) return Step::Fail(e, std::move(why));
    state_ = State::kFailed;
    return failure_.Set(e, std::move(why));
  }

  Step DoStart() {
    if (config_->store == nullptr || config_->decoy == nullptr) {
      return Fail(AuthError::kInternal,
                  "cmac-password server: no verifier store or decoy secret");
    }
    std::optional<VerifierRecord> record =
        config_->store->Find(user_, realm_, Mechanism::kCmacPassword);
    // A record this mechanism cannot use is treated as no record.
    const bool known = record.has_value() &&
                       record->salt.size() == kPasswordSaltLen &&
                       record->verifier.size() == kVerifierLen &&
                       record->params.Sane();

    Message msg;
    Params* params = msg.mutable_params();
    std::optional<CmacAes128> mac;
    if (known) {
      params->set_salt(record->salt.data(), record->salt.size());
      ToProto(record->params, params->mutable_kdf());
      mac = CmacAes128::Create(record->verifier.span());
    } else {
      // An unknown user: a stable decoy salt, the target parameters, and a
      // decoy key, so the exchange and its timing look like a wrong password.
      const std::vector<uint8_t> salt =
          config_->decoy->Salt(Mechanism::kCmacPassword, user_, realm_);
      params->set_salt(salt.data(), salt.size());
      ToProto(config_->target, params->mutable_kdf());
      SecretArray<kVerifierLen> decoy_key;
      config_->decoy->Bytes(kDecoyVerifierLabel, user_, realm_,
                           decoy_key.span());
      mac = CmacAes128::Create(decoy_key.span());
    }
    if (!mac.has_value()) {
      return Fail(AuthError::kInternal, "cmac-password server: CMAC setup failed");
    }
    std::optional<std::vector<uint8_t>> payload = Serialize(msg);
    if (!payload.has_value()) {
      return Fail(AuthError::kInternal, "cmac-password server: serialize failed");
    }

    known_ = known;
    if (known) record_ = std::move(record);
    mac_ = std::move(mac);
    state_ = State::kAwaitClientProof;
    return Step::Continue(std::move(payload));
  }

  Step OnClientProof(ByteSpan payload) {
    std::string why;
    std::optional<Message> msg = Parse(payload, &why);
    if (!msg.has_value()) {
      return Fail(AuthError::kMalformed, "cmac-password server: " + why);
    }
    if (msg->body_case() != Message::kClientProof) {
      return Fail(AuthError::kUnexpectedMessage,
                  "cmac-password server: expected ClientProof");
    }
    const std::string& got = msg->client_proof().mac();
    if (got.size() != kMacLen) {
      return Fail(AuthError::kMalformed,
                  "cmac-password server: ClientProof MAC is not 16 bytes");
    }

    // Paper §4.2: C -> S: MAC(h, TAG_CLIENT || Session ID).
    MacArray expected{};
    if (!Proof(&*mac_, kTagClient, binding_, &expected)) {
      return Fail(AuthError::kInternal, "cmac-password server: CMAC failed");
    }
    // Compare first, in constant time, for unknown users too; only then
    // fold in whether the key was a decoy.
    const bool mac_ok =
        CRYPTO_memcmp(expected.data(), got.data(), kMacLen) == 0;
    OPENSSL_cleanse(expected.data(), expected.size());
    if (!(mac_ok && known_)) {
      return Fail(AuthError::kBadProof, "wrong password or unknown user");
    }

    // Paper §4.2: S -> C: MAC(h, TAG_SERVER || Session ID).
    Message reply;
    ServerProof* proof = reply.mutable_server_proof();
    MacArray server_mac{};
    if (!Proof(&*mac_, kTagServer, binding_, &server_mac)) {
      return Fail(AuthError::kInternal, "cmac-password server: CMAC failed");
    }
    proof->set_mac(server_mac.data(), server_mac.size());

    // Re-hash on login when the record is below the target parameters.
    const bool upgrade =
        record_->params.WeakerThan(config_->target) && config_->target.Sane();
    std::vector<uint8_t> new_salt;
    if (upgrade) {
      new_salt.resize(kPasswordSaltLen);
      Rng& rng = config_->rng != nullptr ? *config_->rng : SystemRng::Instance();
      rng.Fill(new_salt);
      Upgrade* up = proof->mutable_upgrade();
      up->set_salt(new_salt.data(), new_salt.size());
      ToProto(config_->target, up->mutable_kdf());
    }
    std::optional<std::vector<uint8_t>> out = Serialize(reply);
    if (!out.has_value()) {
      return Fail(AuthError::kInternal, "cmac-password server: serialize failed");
    }

    if (upgrade) {
      upgrade_salt_ = std::move(new_salt);
      upgrade_params_ = config_->target;
      state_ = State::kAwaitUpgradeReply;
      return Step::Continue(std::move(out));
    }
    mac_.reset();
    state_ = State::kDone;
    return Step::Done(std::move(out));
  }

  Step OnUpgradeReply(ByteSpan payload) {
    std::string why;
    std::optional<Message> msg = Parse(payload, &why);
    if (!msg.has_value()) {
      return Fail(AuthError::kMalformed, "cmac-password server: " + why);
    }
    if (msg->body_case() != Message::kUpgradeReply) {
      return Fail(AuthError::kUnexpectedMessage,
                  "cmac-password server: expected UpgradeReply");
    }
    std::string* got = msg->mutable_upgrade_reply()->mutable_verifier();
    if (got->size() != kVerifierLen) {
      WipeString(got);
      return Fail(AuthError::kMalformed,
                  "cmac-password server: UpgradeReply verifier is not 16 bytes");
    }
    VerifierRecord next;
    next.user = user_;
    next.realm = realm_;
    next.mechanism = Mechanism::kCmacPassword;
    next.salt = upgrade_salt_;
    next.params = upgrade_params_;
    next.verifier = SecretBuffer(AsBytes(*got));
    next.updated_unix = NowUnix();
    WipeString(got);

    // Replace only the record this login was checked against: if an
    // administrator changed the password meanwhile, keep their record.
    std::optional<VerifierRecord> current =
        config_->store->Find(user_, realm_, Mechanism::kCmacPassword);
    UpgradeOutcome outcome = UpgradeOutcome::kSkipped;
    if (current.has_value() && current->salt == record_->salt &&
        current->verifier.Equal(record_->verifier)) {
      outcome = config_->store->Put(next) ? UpgradeOutcome::kStored
                                         : UpgradeOutcome::kStoreFailed;
    }

    upgrade_outcome_ = outcome;
    mac_.reset();
    state_ = State::kDone;
    return Step::Done();
  }

  const std::shared_ptr<const ServerConfig> config_;
  const std::string user_;
  const std::string realm_;
  const std::vector<uint8_t> binding_;  // ChannelBinding::Encode()

  State state_ = State::kStart;
  Sticky failure_;
  bool known_ = false;
  std::optional<VerifierRecord> record_;  // set iff known_
  std::optional<CmacAes128> mac_;         // keyed with h (or a decoy)
  std::vector<uint8_t> upgrade_salt_;
  KdfParams upgrade_params_;
  UpgradeOutcome upgrade_outcome_ = UpgradeOutcome::kNotNeeded;
};

// ---------------------------------------------------------------------------
// Client side.

class ClientSide final : public MechanismSide {
 public:
  ClientSide(std::shared_ptr<const SecretBuffer> password, const KdfLimits& limits,
             const Context& ctx)
      : password_(std::move(password)),
        limits_(limits),
        user_(ctx.user),
        realm_(ctx.realm),
        binding_(ctx.binding.Encode()) {}

  Mechanism mechanism() const override { return Mechanism::kCmacPassword; }

  Step Start() override {
    switch (state_) {
      case State::kStart:
        // The server speaks first (Params); nothing to send yet.
        state_ = State::kAwaitParams;
        return Step::Continue();
      case State::kAwaitParams:
      case State::kAwaitServerProof:
        return Fail(AuthError::kUnexpectedMessage,
                    "cmac-password client: Start called twice");
      case State::kDone:
        return Fail(AuthError::kUnexpectedMessage, kAfterDone);
      case State::kFailed:
        return failure_.Repeat();
    }
    return Fail(AuthError::kInternal, "cmac-password client: bad state");
  }

  Step OnPayload(ByteSpan payload) override {
    switch (state_) {
      case State::kStart:
        return Fail(AuthError::kUnexpectedMessage,
                    "cmac-password client: payload before Start");
      case State::kAwaitParams:
        return OnParams(payload);
      case State::kAwaitServerProof:
        return OnServerProof(payload);
      case State::kDone:
        return Fail(AuthError::kUnexpectedMessage, kAfterDone);
      case State::kFailed:
        return failure_.Repeat();
    }
    return Fail(AuthError::kInternal, "cmac-password client: bad state");
  }

  std::optional<PeerIdentity> peer() const override {
    if (state_ != State::kDone) return std::nullopt;
    return PeerIdentity{Mechanism::kCmacPassword, realm_,
                        {{"proof", "holds-verifier"}}};
  }

 private:
  enum class State : uint8_t {
    kStart,
    kAwaitParams,
    kAwaitServerProof,
    kDone,
    kFailed,
  };

  Step Fail(AuthError e, std::string why) {
    if (state_ == State::kDone) return Step::Fail(e, std::move(why));
    state_ = State::kFailed;
    expected_server_.Wipe();
    return failure_.Set(e, std::move(why));
  }

  std::string_view password() const {
    if (password_ == nullptr || password_->empty()) return {};
    return {reinterpret_cast<const char*>(password_->data()), password_->size()};
  }

  // Derive runs the password KDF into |out|; false if it fails.
  bool Derive(std::span<const uint8_t> salt, const KdfParams& params,
              SecretArray<kVerifierLen>* out) const {
    return DerivePasswordKey(password(), user_, realm_, salt, params,
                             out->span());
  }

  Step OnParams(ByteSpan payload) {
    std::string why;
    std::optional<Message> msg = Parse(payload, &why);
    if (!msg.has_value()) {
      return Fail(AuthError::kMalformed, "cmac-password client: " + why);
    }
    if (msg->body_case() != Message::kParams) {
      return Fail(AuthError::kUnexpectedMessage,
                  "cmac-password client: expected Params");
    }
    const Params& p = msg->params();
    if (p.salt().size() != kPasswordSaltLen || !p.has_kdf()) {
      return Fail(AuthError::kMalformed,
                  "cmac-password client: Params needs a 16-byte salt and KDF "
                  "parameters");
    }
    const KdfParams params = FromProto(p.kdf());
    // Before any derivation and before any proof: a server naming cheap
    // parameters would get a proof that is cheap to attack offline, one
    // naming dear ones would make us burn memory and time.
    if (!limits_.Check(params, &why)) {
      return Fail(AuthError::kPolicy, "cmac-password client: " + why);
    }

    SecretArray<kVerifierLen> h;
    if (!Derive(AsBytes(p.salt()), params, &h)) {
      return Fail(AuthError::kInternal,
                  "cmac-password client: password KDF failed (out of memory?)");
    }
    std::optional<CmacAes128> mac = CmacAes128::Create(h.span());
    h.Wipe();
    MacArray client_mac{};
    MacArray server_mac{};
    if (!mac.has_value() ||
        !Proof(&*mac, kTagClient, binding_, &client_mac) ||
        !Proof(&*mac, kTagServer, binding_, &server_mac)) {
      return Fail(AuthError::kInternal, "cmac-password client: CMAC failed");
    }
    Message reply;
    reply.mutable_client_proof()->set_mac(client_mac.data(), client_mac.size());
    std::optional<std::vector<uint8_t>> out = Serialize(reply);
    if (!out.has_value()) {
      OPENSSL_cleanse(server_mac.data(), server_mac.size());
      return Fail(AuthError::kInternal, "cmac-password client: serialize failed");
    }

    expected_server_.CopyFrom(server_mac);
    OPENSSL_cleanse(server_mac.data(), server_mac.size());
    params_ = params;
    state_ = State::kAwaitServerProof;
    return Step::Continue(std::move(out));
  }

  Step OnServerProof(ByteSpan payload) {
    std::string why;
    std::optional<Message> msg = Parse(payload, &why);
    if (!msg.has_value()) {
      return Fail(AuthError::kMalformed, "cmac-password client: " + why);
    }
    if (msg->body_case() != Message::kServerProof) {
      return Fail(AuthError::kUnexpectedMessage,
                  "cmac-password client: expected ServerProof");
    }
    const ServerProof& proof = msg->server_proof();
    if (proof.mac().size() != kMacLen) {
      return Fail(AuthError::kMalformed,
                  "cmac-password client: ServerProof MAC is not 16 bytes");
    }
    if (proof.has_upgrade() && (proof.upgrade().salt().size() !=
                                    kPasswordSaltLen ||
                                !proof.upgrade().has_kdf())) {
      return Fail(AuthError::kMalformed,
                  "cmac-password client: Upgrade needs a 16-byte salt and KDF "
                  "parameters");
    }
    // Paper §4.2: the server proves it holds h for this very session.
    if (CRYPTO_memcmp(expected_server_.data(), proof.mac().data(), kMacLen) !=
        0) {
      return Fail(AuthError::kBadProof,
                  "server proof did not verify: the server does not hold this "
                  "user's password verifier (impostor?)");
    }

    std::optional<std::vector<uint8_t>> out;
    if (proof.has_upgrade()) {
      const KdfParams next = FromProto(proof.upgrade().kdf());
      // The re-hash obeys the same ceiling (and there is at most one per
      // run: this state is left for kDone).
      if (!limits_.Check(next, &why)) {
        return Fail(AuthError::kPolicy, "cmac-password client: re-hash refused: " + why);
      }
      if (next.WeakerThan(params_)) {
        return Fail(AuthError::kMalformed,
                    "cmac-password client: server asked to re-hash with "
                    "weaker KDF parameters");
      }
      SecretArray<kVerifierLen> h2;
      if (!Derive(AsBytes(proof.upgrade().salt()), next, &h2)) {
        return Fail(AuthError::kInternal,
                    "cmac-password client: password KDF failed (out of memory?)");
      }
      Message reply;
      std::string* v = reply.mutable_upgrade_reply()->mutable_verifier();
      v->assign(reinterpret_cast<const char*>(h2.data()), h2.size());
      out = Serialize(reply);
      WipeString(v);
      if (!out.has_value()) {
        return Fail(AuthError::kInternal,
                    "cmac-password client: serialize failed");
      }
    }

    expected_server_.Wipe();
    state_ = State::kDone;
    return Step::Done(std::move(out));
  }

  const std::shared_ptr<const SecretBuffer> password_;
  const KdfLimits limits_;
  const std::string user_;
  const std::string realm_;
  const std::vector<uint8_t> binding_;  // ChannelBinding::Encode()

  State state_ = State::kStart;
  Sticky failure_;
  KdfParams params_;                           // the ones h was derived with
  SecretArray<kMacLen> expected_server_;       // CMAC(h, TAG_SERVER || sid)
};

}  // namespace

// ---------------------------------------------------------------------------
// CmacAes128

std::optional<CmacAes128> CmacAes128::Create(std::span<const uint8_t> key) {
  if (key.size() != kVerifierLen) return std::nullopt;
  EVP_MAC_CTX* tmpl = CipherTemplate();
  if (tmpl == nullptr) return std::nullopt;
  MacCtxPtr ctx(EVP_MAC_CTX_dup(tmpl));
  if (ctx == nullptr ||
      EVP_MAC_init(ctx.get(), key.data(), key.size(), nullptr) != 1) {
    return std::nullopt;
  }
  return CmacAes128(ctx.release());
}

bool CmacAes128::Compute(std::span<const ByteSpan> parts,
                         std::span<uint8_t, kMacLen> out_mac) {
  // A null key restarts the MAC under the key already set (RFC 4493 §2.4
  // from the top), so one keyed context serves every proof of a side.
  bool ok = EVP_MAC_init(ctx_.get(), nullptr, 0, nullptr) == 1;
  for (ByteSpan part : parts) {
    if (!ok) break;
    if (!part.empty()) {
      ok = EVP_MAC_update(ctx_.get(), part.data(), part.size()) == 1;
    }
  }
  size_t len = 0;
  ok = ok && EVP_MAC_final(ctx_.get(), out_mac.data(), &len, out_mac.size()) == 1 &&
       len == kMacLen;
  if (!ok) OPENSSL_cleanse(out_mac.data(), out_mac.size());
  return ok;
}

bool ComputeCmac(std::span<const uint8_t> key, std::span<const uint8_t> message,
                 std::span<uint8_t, kMacLen> out_mac) {
  std::optional<CmacAes128> mac = CmacAes128::Create(key);
  if (!mac.has_value()) return false;
  const ByteSpan parts[] = {message};
  return mac->Compute(parts, out_mac);
}

// ---------------------------------------------------------------------------
// Registration and factories.

bool MakeRecord(std::string_view user, std::string_view realm,
                std::string_view password, const KdfParams& params, Rng& rng,
                VerifierRecord* out) {
  if (!params.Sane()) return false;
  std::vector<uint8_t> salt(kPasswordSaltLen);
  rng.Fill(salt);
  SecretBuffer h(kVerifierLen);
  if (!DerivePasswordKey(password, user, realm, salt, params, h.span())) {
    return false;
  }
  out->user = std::string(user);
  out->realm = std::string(realm);
  out->mechanism = Mechanism::kCmacPassword;
  out->salt = std::move(salt);
  out->params = params;
  out->verifier = std::move(h);
  out->updated_unix = NowUnix();
  return true;
}

MechanismFactory ServerFactory(ServerConfig config) {
  auto shared = std::make_shared<const ServerConfig>(config);
  return [shared](const Context& ctx) -> std::unique_ptr<MechanismSide> {
    return std::make_unique<ServerSide>(shared, ctx);
  };
}

MechanismFactory ClientFactory(std::shared_ptr<const SecretBuffer> password,
                               KdfLimits limits) {
  return [password, limits](const Context& ctx) -> std::unique_ptr<MechanismSide> {
    return std::make_unique<ClientSide>(password, limits, ctx);
  };
}

std::optional<UpgradeOutcome> ServerUpgradeOutcome(const MechanismSide& side) {
  const auto* server = dynamic_cast<const ServerSide*>(&side);
  if (server == nullptr) return std::nullopt;
  return server->upgrade_outcome();
}

}  // namespace tcpcrypt::auth::cmac
