#include "auth/pake2plus/pake2plus.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "auth/pake2plus/pake.pb.h"

namespace tcpcrypt::auth::pake {
namespace {

constexpr std::string_view kDecoyLabel = "pake2plus-verifier";

std::string_view AsStringView(const SecretBuffer& b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

ByteSpan AsBytes(const std::string& s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::string AsString(ByteSpan b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

void WipeString(std::string* s) {
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}

std::vector<uint8_t> Serialize(const PakeMessage& m) {
  std::vector<uint8_t> out(m.ByteSizeLong());
  if (!out.empty()) m.SerializeToArray(out.data(), static_cast<int>(out.size()));
  return out;
}

// Parse accepts one PakeMessage of at most kMaxPayloadLen bytes.
std::optional<PakeMessage> Parse(ByteSpan payload) {
  if (payload.size() > kMaxPayloadLen) return std::nullopt;
  PakeMessage m;
  if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return std::nullopt;
  }
  return m;
}

KdfParams FromProto(const Argon2Params& p) {
  KdfParams k;
  k.algorithm = p.algorithm();
  k.opslimit = p.opslimit();
  k.memlimit = p.memlimit();
  return k;
}

void ToProto(const KdfParams& k, Argon2Params* p) {
  p->set_algorithm(k.algorithm);
  p->set_opslimit(k.opslimit);
  p->set_memlimit(k.memlimit);
}

Rng& RngOrSystem(Rng* rng) { return rng != nullptr ? *rng : SystemRng::Instance(); }

// --- Server side (Verifier) ---------------------------------------------------

class ServerSide final : public MechanismSide {
 public:
  ServerSide(const ServerConfig& config, const Context& ctx)
      : config_(config), ctx_(ctx), rng_(RngOrSystem(config.rng)) {}

  Mechanism mechanism() const override { return Mechanism::kPake2Plus; }

  Step Start() override {
    switch (state_) {
      case State::kStart:
        break;
      case State::kFailed:
        return failure_;
      case State::kAwaitShareP:
      case State::kAwaitConfirmP:
      case State::kAwaitUpgradeReply:
        return Fail(AuthError::kUnexpectedMessage, "pake2plus: Start called twice");
      case State::kDone:
        return AfterDone();
    }
    if (config_.store == nullptr || config_.decoy == nullptr) {
      return Fail(AuthError::kInternal, "pake2plus server: no verifier store or decoy secret");
    }
    // The decoy record is computed for every user, known or not, so that
    // an unknown user costs the same work as a known one.
    std::vector<uint8_t> salt =
        config_.decoy->Salt(Mechanism::kPake2Plus, ctx_.user, ctx_.realm);
    KdfParams params = config_.target;
    Scalar w0, w1;
    SecretArray<kPointLen> l;
    {
      SecretArray<kSeedLen> seed;
      config_.decoy->Bytes(kDecoyLabel, ctx_.user, ctx_.realm, seed.span());
      if (!ReduceSeed(seed.span(), &w0, &w1) || !ComputeL(w1.span(), l.span())) {
        return Fail(AuthError::kInternal, "pake2plus server: decoy derivation failed");
      }
      w1.Wipe();
    }
    bool upgrade = false;
    if (std::optional<VerifierRecord> record =
            config_.store->Find(ctx_.user, ctx_.realm, Mechanism::kPake2Plus)) {
      const ByteSpan v = record->verifier.span();
      if (record->salt.size() != kPasswordSaltLen || !record->params.Sane() ||
          v.size() != kVerifierLen || !IsValidScalar(v.first(kScalarLen)) ||
          !IsValidPoint(v.subspan(kScalarLen))) {
        return Fail(AuthError::kInternal,
                    "pake2plus server: the stored record for this user is corrupt");
      }
      salt = record->salt;
      params = record->params;
      w0.CopyFrom(v.first(kScalarLen));
      l.CopyFrom(v.subspan(kScalarLen));
      upgrade = params.WeakerThan(config_.target);
    }
    // Context = "tcpcrypt-pake2plus-v1" || binding.Encode(), idProver =
    // user, idVerifier = realm.
    std::unique_ptr<Verifier> verifier =
        Verifier::Create(PakeContext(ctx_.binding), AsBytes(ctx_.user),
                         AsBytes(ctx_.realm), w0.span(), l.span());
    if (verifier == nullptr) {
      return Fail(AuthError::kInternal, "pake2plus server: verifier setup failed");
    }
    PakeMessage m;
    m.mutable_params()->set_salt(AsString(salt));
    ToProto(params, m.mutable_params()->mutable_kdf());
    verifier_ = std::move(verifier);
    upgrade_ = upgrade;
    state_ = State::kAwaitShareP;
    return Step::Continue(Serialize(m));
  }

  Step OnPayload(ByteSpan payload) override {
    switch (state_) {
      case State::kAwaitShareP:
      case State::kAwaitConfirmP:
      case State::kAwaitUpgradeReply:
        break;
      case State::kFailed:
        return failure_;
      case State::kStart:
        return Fail(AuthError::kUnexpectedMessage, "pake2plus: payload before Start");
      case State::kDone:
        return AfterDone();
    }
    std::optional<PakeMessage> m = Parse(payload);
    if (!m) return Fail(AuthError::kMalformed, "pake2plus: payload does not parse");
    switch (state_) {
      case State::kAwaitShareP:
        return OnShareP(*m);
      case State::kAwaitConfirmP:
        return OnConfirmP(*m);
      case State::kAwaitUpgradeReply: {
        Step step = OnUpgradeReply(*m);
        // w0' is password-derived: the parsed copy does not outlive its use.
        if (m->has_upgrade_reply()) WipeString(m->mutable_upgrade_reply()->mutable_w0());
        return step;
      }
      case State::kStart:
      case State::kDone:
      case State::kFailed:
        break;
    }
    return Fail(AuthError::kInternal, "pake2plus: unreachable state");
  }

  Step Poll() override {
    switch (state_) {
      case State::kFailed:
        return failure_;
      case State::kDone:
        return AfterDone();
      case State::kStart:
      case State::kAwaitShareP:
      case State::kAwaitConfirmP:
      case State::kAwaitUpgradeReply:
        return Step::Continue();
    }
    return Step::Continue();
  }

  std::optional<PeerIdentity> peer() const override {
    if (state_ != State::kDone) return std::nullopt;
    return PeerIdentity{Mechanism::kPake2Plus, ctx_.user, {{"realm", ctx_.realm}}};
  }

 private:
  enum class State : uint8_t {
    kStart,
    kAwaitShareP,
    kAwaitConfirmP,
    kAwaitUpgradeReply,
    kDone,
    kFailed,
  };

  Step OnShareP(const PakeMessage& m) {
    if (!m.has_share_p()) {
      return Fail(AuthError::kUnexpectedMessage, "pake2plus: expected ShareP");
    }
    const ByteSpan x = AsBytes(m.share_p().x());
    if (x.size() != kPointLen) {
      return Fail(AuthError::kMalformed, "pake2plus: shareP has the wrong length");
    }
    // RFC 9383 §3.3: check X, answer Y and confirmV in one message.
    Point y;
    Confirmation confirm_v;
    switch (verifier_->Respond(x, rng_, &y, &confirm_v)) {
      case Result::kOk:
        break;
      case Result::kBadShare:
        return Fail(AuthError::kMalformed, "pake2plus: shareP is not a valid P-256 point");
      case Result::kBadConfirmation:
      case Result::kWrongState:
      case Result::kInternal:
        return Fail(AuthError::kInternal, "pake2plus server: SPAKE2+ computation failed");
    }
    PakeMessage out;
    ShareV* share_v = out.mutable_share_v();
    share_v->set_y(AsString(y));
    share_v->set_confirm_v(AsString(confirm_v));
    share_v->set_upgrade_follows(upgrade_);
    state_ = State::kAwaitConfirmP;
    return Step::Continue(Serialize(out));
  }

  Step OnConfirmP(const PakeMessage& m) {
    if (!m.has_confirm_p()) {
      return Fail(AuthError::kUnexpectedMessage, "pake2plus: expected ConfirmP");
    }
    const ByteSpan confirm_p = AsBytes(m.confirm_p().confirm_p());
    if (confirm_p.size() != kConfirmLen) {
      return Fail(AuthError::kMalformed, "pake2plus: confirmP has the wrong length");
    }
    // RFC 9383 §3.3: the Verifier must not proceed before confirmP verified.
    SecretArray<kHashLen> k_shared;
    switch (verifier_->Finish(confirm_p, &k_shared)) {
      case Result::kOk:
        break;
      case Result::kBadConfirmation:
        return Fail(AuthError::kBadProof, "wrong password or unknown user");
      case Result::kBadShare:
      case Result::kWrongState:
      case Result::kInternal:
        return Fail(AuthError::kInternal, "pake2plus server: SPAKE2+ computation failed");
    }
    verifier_.reset();
    if (!upgrade_) {
      state_ = State::kDone;
      return Step::Done();
    }
    // Re-hash on login: the client is authenticated now, ask it for a
    // record under the target parameters and a fresh salt.
    std::vector<uint8_t> salt(kPasswordSaltLen);
    rng_.Fill(salt);
    PakeMessage out;
    out.mutable_upgrade()->set_salt(AsString(salt));
    ToProto(config_.target, out.mutable_upgrade()->mutable_kdf());
    upgrade_salt_ = std::move(salt);
    state_ = State::kAwaitUpgradeReply;
    return Step::Continue(Serialize(out));
  }

  Step OnUpgradeReply(const PakeMessage& m) {
    if (!m.has_upgrade_reply()) {
      return Fail(AuthError::kUnexpectedMessage, "pake2plus: expected UpgradeReply");
    }
    const ByteSpan w0 = AsBytes(m.upgrade_reply().w0());
    const ByteSpan l = AsBytes(m.upgrade_reply().l());
    if (!IsValidScalar(w0) || !IsValidPoint(l)) {
      return Fail(AuthError::kMalformed, "pake2plus: upgraded verifier is invalid");
    }
    VerifierRecord record;
    record.user = ctx_.user;
    record.realm = ctx_.realm;
    record.mechanism = Mechanism::kPake2Plus;
    record.salt = upgrade_salt_;
    record.params = config_.target;
    record.verifier = SecretBuffer(kVerifierLen);
    std::copy(w0.begin(), w0.end(), record.verifier.data());
    std::copy(l.begin(), l.end(), record.verifier.data() + kScalarLen);
    // The client is authenticated either way; a store that cannot take the
    // new record keeps the old one, which still works.
    (void)config_.store->Put(record);
    state_ = State::kDone;
    return Step::Done();
  }

  Step Fail(AuthError e, std::string detail) {
    state_ = State::kFailed;
    verifier_.reset();
    failure_ = Step::Fail(e, std::move(detail));
    return failure_;
  }

  static Step AfterDone() {
    return Step::Fail(AuthError::kUnexpectedMessage, "pake2plus: the exchange is complete");
  }

  const ServerConfig config_;
  const Context ctx_;
  Rng& rng_;
  State state_ = State::kStart;
  Step failure_;
  std::unique_ptr<Verifier> verifier_;
  bool upgrade_ = false;
  std::vector<uint8_t> upgrade_salt_;
};

// --- Client side (Prover) -----------------------------------------------------

class ClientSide final : public MechanismSide {
 public:
  ClientSide(std::shared_ptr<const SecretBuffer> password, Rng& rng, const KdfLimits& limits,
             const Context& ctx)
      : password_(std::move(password)), rng_(rng), limits_(limits), ctx_(ctx) {}

  Mechanism mechanism() const override { return Mechanism::kPake2Plus; }

  Step Start() override {
    switch (state_) {
      case State::kStart:
        break;
      case State::kFailed:
        return failure_;
      case State::kAwaitParams:
      case State::kAwaitShareV:
      case State::kAwaitUpgrade:
        return Fail(AuthError::kUnexpectedMessage, "pake2plus: Start called twice");
      case State::kDone:
        return AfterDone();
    }
    if (password_ == nullptr) {
      return Fail(AuthError::kInternal, "pake2plus client: no password");
    }
    // The server speaks first (Params).
    state_ = State::kAwaitParams;
    return Step::Continue();
  }

  Step OnPayload(ByteSpan payload) override {
    switch (state_) {
      case State::kAwaitParams:
      case State::kAwaitShareV:
      case State::kAwaitUpgrade:
        break;
      case State::kFailed:
        return failure_;
      case State::kStart:
        return Fail(AuthError::kUnexpectedMessage, "pake2plus: payload before Start");
      case State::kDone:
        return AfterDone();
    }
    std::optional<PakeMessage> m = Parse(payload);
    if (!m) return Fail(AuthError::kMalformed, "pake2plus: payload does not parse");
    switch (state_) {
      case State::kAwaitParams:
        return OnParams(*m);
      case State::kAwaitShareV:
        return OnShareV(*m);
      case State::kAwaitUpgrade:
        return OnUpgrade(*m);
      case State::kStart:
      case State::kDone:
      case State::kFailed:
        break;
    }
    return Fail(AuthError::kInternal, "pake2plus: unreachable state");
  }

  Step Poll() override {
    switch (state_) {
      case State::kFailed:
        return failure_;
      case State::kDone:
        return AfterDone();
      case State::kStart:
      case State::kAwaitParams:
      case State::kAwaitShareV:
      case State::kAwaitUpgrade:
        return Step::Continue();
    }
    return Step::Continue();
  }

  std::optional<PeerIdentity> peer() const override {
    if (state_ != State::kDone) return std::nullopt;
    return PeerIdentity{Mechanism::kPake2Plus, ctx_.realm, {}};
  }

 private:
  enum class State : uint8_t {
    kStart,
    kAwaitParams,
    kAwaitShareV,
    kAwaitUpgrade,
    kDone,
    kFailed,
  };

  // ReadParams checks what a server asks the client to compute, before any
  // derivation and before ShareP: a salt of the right size (else kMalformed)
  // and parameters within the client's KdfLimits (else kPolicy, naming the
  // numbers). Returns a failed Step, or nullopt with |out| set.
  std::optional<Step> ReadParams(const std::string& salt, const Argon2Params& kdf,
                                 KdfParams* out) {
    if (salt.size() != kPasswordSaltLen) {
      return Fail(AuthError::kMalformed, "pake2plus: server sent a salt of the wrong size");
    }
    const KdfParams p = FromProto(kdf);
    std::string why;
    if (!limits_.Check(p, &why)) return Fail(AuthError::kPolicy, "pake2plus client: " + why);
    *out = p;
    return std::nullopt;
  }

  Step OnParams(const PakeMessage& m) {
    if (!m.has_params()) {
      return Fail(AuthError::kUnexpectedMessage, "pake2plus: expected Params");
    }
    KdfParams params;
    if (std::optional<Step> bad = ReadParams(m.params().salt(), m.params().kdf(), &params)) {
      return *bad;
    }
    // RFC 9383 §3.2: w0s || w1s = PBKDF(len(pw) || pw || len(idProver) ||
    // idProver || len(idVerifier) || idVerifier).
    Scalar w0, w1;
    if (!DerivePasswordScalars(AsStringView(*password_), ctx_.user, ctx_.realm,
                               AsBytes(m.params().salt()), params, &w0, &w1)) {
      return Fail(AuthError::kInternal, "pake2plus client: password KDF failed");
    }
    std::unique_ptr<Prover> prover =
        Prover::Create(PakeContext(ctx_.binding), AsBytes(ctx_.user),
                       AsBytes(ctx_.realm), w0.span(), w1.span());
    Point x;
    if (prover == nullptr || prover->Start(rng_, &x) != Result::kOk) {
      return Fail(AuthError::kInternal, "pake2plus client: SPAKE2+ computation failed");
    }
    PakeMessage out;
    out.mutable_share_p()->set_x(AsString(x));
    prover_ = std::move(prover);
    state_ = State::kAwaitShareV;
    return Step::Continue(Serialize(out));
  }

  Step OnShareV(const PakeMessage& m) {
    if (!m.has_share_v()) {
      return Fail(AuthError::kUnexpectedMessage, "pake2plus: expected ShareV");
    }
    const ByteSpan y = AsBytes(m.share_v().y());
    const ByteSpan confirm_v = AsBytes(m.share_v().confirm_v());
    if (y.size() != kPointLen || confirm_v.size() != kConfirmLen) {
      return Fail(AuthError::kMalformed, "pake2plus: shareV or confirmV has the wrong length");
    }
    // RFC 9383 A.5: check Y, derive the keys, verify confirmV, then confirm.
    Confirmation confirm_p;
    SecretArray<kHashLen> k_shared;
    switch (prover_->Finish(y, confirm_v, &confirm_p, &k_shared)) {
      case Result::kOk:
        break;
      case Result::kBadShare:
        return Fail(AuthError::kMalformed, "pake2plus: shareV is not a valid P-256 point");
      case Result::kBadConfirmation:
        return Fail(AuthError::kBadProof,
                    "server confirmation did not verify: wrong password, or the "
                    "server does not hold this user's verifier");
      case Result::kWrongState:
      case Result::kInternal:
        return Fail(AuthError::kInternal, "pake2plus client: SPAKE2+ computation failed");
    }
    prover_.reset();
    PakeMessage out;
    out.mutable_confirm_p()->set_confirm_p(AsString(confirm_p));
    if (m.share_v().upgrade_follows()) {
      state_ = State::kAwaitUpgrade;
      return Step::Continue(Serialize(out));
    }
    state_ = State::kDone;
    return Step::Done(Serialize(out));
  }

  Step OnUpgrade(const PakeMessage& m) {
    if (!m.has_upgrade()) {
      return Fail(AuthError::kUnexpectedMessage, "pake2plus: expected Upgrade");
    }
    KdfParams params;
    // The re-hash obeys the same limits; there is at most one per run
    // (kAwaitUpgrade is left for kDone).
    if (std::optional<Step> bad = ReadParams(m.upgrade().salt(), m.upgrade().kdf(), &params)) {
      return *bad;
    }
    // Only reached after confirmV verified: the server is authenticated,
    // and the channel is protected.
    Scalar w0, w1;
    SecretArray<kPointLen> l;
    if (!DerivePasswordScalars(AsStringView(*password_), ctx_.user, ctx_.realm,
                               AsBytes(m.upgrade().salt()), params, &w0, &w1) ||
        !ComputeL(w1.span(), l.span())) {
      return Fail(AuthError::kInternal, "pake2plus client: password KDF failed");
    }
    PakeMessage out;
    out.mutable_upgrade_reply()->set_w0(AsString(w0.span()));
    out.mutable_upgrade_reply()->set_l(AsString(l.span()));
    std::vector<uint8_t> payload = Serialize(out);
    WipeString(out.mutable_upgrade_reply()->mutable_w0());
    WipeString(out.mutable_upgrade_reply()->mutable_l());
    state_ = State::kDone;
    return Step::Done(std::move(payload));
  }

  Step Fail(AuthError e, std::string detail) {
    state_ = State::kFailed;
    prover_.reset();
    failure_ = Step::Fail(e, std::move(detail));
    return failure_;
  }

  static Step AfterDone() {
    return Step::Fail(AuthError::kUnexpectedMessage, "pake2plus: the exchange is complete");
  }

  const std::shared_ptr<const SecretBuffer> password_;
  Rng& rng_;
  const KdfLimits limits_;
  const Context ctx_;
  State state_ = State::kStart;
  Step failure_;
  std::unique_ptr<Prover> prover_;
};

}  // namespace

std::vector<uint8_t> PakeContext(const ChannelBinding& binding) {
  std::vector<uint8_t> context(kContextLabel.begin(), kContextLabel.end());
  const std::vector<uint8_t> encoded = binding.Encode();
  context.insert(context.end(), encoded.begin(), encoded.end());
  return context;
}

bool DerivePasswordScalars(std::string_view password, std::string_view user,
                           std::string_view realm, std::span<const uint8_t> salt,
                           const KdfParams& params, Scalar* out_w0,
                           Scalar* out_w1) {
  if (salt.size() != kPasswordSaltLen || !params.Sane()) return false;
  // RFC 9383 §3.2: 80 bytes for P-256, split and reduced mod p.
  SecretArray<kSeedLen> seed;
  return DerivePasswordKey(password, user, realm, salt, params, seed.span()) &&
         ReduceSeed(seed.span(), out_w0, out_w1);
}

bool MakeRecord(std::string_view user, std::string_view realm,
                std::string_view password, const KdfParams& params, Rng& rng,
                VerifierRecord* out) {
  if (!params.Sane()) return false;
  std::vector<uint8_t> salt(kPasswordSaltLen);
  rng.Fill(salt);
  Scalar w0, w1;
  SecretArray<kPointLen> l;
  if (!DerivePasswordScalars(password, user, realm, salt, params, &w0, &w1) ||
      !ComputeL(w1.span(), l.span())) {
    return false;
  }
  VerifierRecord record;
  record.user = std::string(user);
  record.realm = std::string(realm);
  record.mechanism = Mechanism::kPake2Plus;
  record.salt = std::move(salt);
  record.params = params;
  record.verifier = SecretBuffer(kVerifierLen);
  std::copy(w0.span().begin(), w0.span().end(), record.verifier.data());
  std::copy(l.span().begin(), l.span().end(), record.verifier.data() + kScalarLen);
  *out = std::move(record);
  return true;
}

MechanismFactory ServerFactory(ServerConfig config) {
  return [config](const Context& ctx) -> std::unique_ptr<MechanismSide> {
    return std::make_unique<ServerSide>(config, ctx);
  };
}

MechanismFactory ClientFactory(std::shared_ptr<const SecretBuffer> password, Rng* rng,
                               KdfLimits limits) {
  return [password = std::move(password), rng, limits](const Context& ctx)
             -> std::unique_ptr<MechanismSide> {
    return std::make_unique<ClientSide>(password, RngOrSystem(rng), limits, ctx);
  };
}

}  // namespace tcpcrypt::auth::pake
