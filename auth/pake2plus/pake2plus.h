// pake2plus.h: the SPAKE2+ authenticator (paper §4.3 "PAKE2+", built as RFC
// 9383 P256-SHA256-HKDF-SHA256-HMAC-SHA256) endorsing the channel binding.
//
// The server keeps only the registration record w0 | L (never w1, never the
// password), made with MakeRecord. The client is the Prover, the server the
// Verifier; the exchange (pake.proto) is
//
//   server Start()  -> Params{salt, kdf}
//   client          -> ShareP{X}                 (after Argon2id, §3.2)
//   server          -> ShareV{Y, confirmV}
//   client          -> ConfirmP{confirmP}, done  (after checking confirmV)
//   server          done                         (after checking confirmP)
//
// and, when the record's KDF parameters are below the server's target, the
// server then sends Upgrade{salt', kdf'} and the client answers
// UpgradeReply{w0', L'} (announced by ShareV.upgrade_follows so that the
// client knows to wait for it).
//
// Binding: RFC 9383's Context is "tcpcrypt-pake2plus-v1" || binding.Encode(),
// idProver is the user and idVerifier the realm, so both confirmations
// endorse the session ID: a relay between two connections, or a replay on
// another connection, fails confirmation.
//
// An unknown user is answered exactly like a known one with a wrong
// password: a stable decoy salt, the target parameters and a decoy record
// derived from the DecoySecret, so the sizes and the work match.
#ifndef TCPCRYPT_AUTH_PAKE2PLUS_PAKE2PLUS_H_
#define TCPCRYPT_AUTH_PAKE2PLUS_PAKE2PLUS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "auth/common/binding.h"
#include "auth/common/decoy.h"
#include "auth/common/mechanism.h"
#include "auth/common/password_kdf.h"
#include "auth/common/verifier_store.h"
#include "auth/pake2plus/spake2plus.h"
#include "core_transport/engine/rng.h"
#include "core_transport/engine/secret.h"

namespace tcpcrypt::auth::pake {

inline constexpr std::string_view kContextLabel = "tcpcrypt-pake2plus-v1";
// The stored verifier: w0 (32 bytes, big-endian) || L (65 bytes, SEC1
// uncompressed).
inline constexpr size_t kVerifierLen = kScalarLen + kPointLen;
// Every pake2plus payload is far smaller; anything larger is refused
// before parsing.
inline constexpr size_t kMaxPayloadLen = 512;

// ServerConfig: |store| and |decoy| must outlive every side the factory
// makes. |target| is what new and re-hashed records use (and what unknown
// users are shown). |rng| draws y and upgrade salts; nullptr means the
// system CSPRNG. A non-null |rng| must be safe to call from every thread
// that runs a server side.
struct ServerConfig {
  VerifierStore* store = nullptr;
  const DecoySecret* decoy = nullptr;
  KdfParams target = KdfParams::Interactive();
  Rng* rng = nullptr;
};

// MakeRecord registers |password| for |user| at |realm| (RFC 9383 §3.2): a
// fresh salt from |rng|, w0s || w1s = DerivePasswordKey(password, user,
// realm, salt, params) (80 bytes), w0 = w0s mod p, w1 = w1s mod p, and
// |out| = {user, realm, kPake2Plus, salt, params, w0 || L = w1*P}. w1 is
// wiped, never stored. Returns false if |params| is not Sane() or the KDF
// or the group arithmetic fails.
[[nodiscard]] bool MakeRecord(std::string_view user, std::string_view realm,
                              std::string_view password,
                              const KdfParams& params, Rng& rng,
                              VerifierRecord* out);

// DerivePasswordScalars computes w0 and w1 for |password| as MakeRecord
// does (both sides of a run derive the same values). Returns false as
// MakeRecord does, or if |salt| is not kPasswordSaltLen bytes.
[[nodiscard]] bool DerivePasswordScalars(std::string_view password,
                                         std::string_view user,
                                         std::string_view realm,
                                         std::span<const uint8_t> salt,
                                         const KdfParams& params,
                                         Scalar* out_w0, Scalar* out_w1);

// PakeContext is RFC 9383's Context for a run over |binding|:
// "tcpcrypt-pake2plus-v1" || binding.Encode().
std::vector<uint8_t> PakeContext(const ChannelBinding& binding);

// ServerFactory makes server sides (Verifier). The client identity of a
// successful run is {kPake2Plus, user, {{"realm", realm}}}. Failures:
// kMalformed (a payload that does not parse, has wrong sizes or an invalid
// point), kUnexpectedMessage (wrong message or call for the state),
// kBadProof "wrong password or unknown user", kInternal (missing
// configuration, corrupt stored record, library failure).
MechanismFactory ServerFactory(ServerConfig config);

// ClientFactory makes client sides (Prover) for |password|, which the
// factory shares with every side it makes. The server identity of a
// successful run is {kPake2Plus, realm}. The client refuses KDF parameters
// (in Params and in the one Upgrade a run accepts) that fail
// |limits|.Check() with kPolicy, before deriving and before ShareP, so a
// server can neither lower the cost of a guess below the floor nor make the
// client burn more than the ceiling. |rng| draws x; nullptr means the
// system CSPRNG.
MechanismFactory ClientFactory(std::shared_ptr<const SecretBuffer> password,
                               Rng* rng = nullptr, KdfLimits limits = {});

}  // namespace tcpcrypt::auth::pake

#endif  // TCPCRYPT_AUTH_PAKE2PLUS_PAKE2PLUS_H_
