// cmac_password.h: the CMAC mutual password authenticator (paper §4.2,
// ARCHITECTURE decision 5).
//
// Both sides prove knowledge of the password verifier h by MACing the
// channel binding, so the password authenticates the server to the client as
// well as the client to the server:
//
//   h   = DerivePasswordKey(password, user, realm, salt, params), 16 bytes
//   C -> S: CMAC-AES-128(h, kTagClient || binding.Encode())
//   S -> C: CMAC-AES-128(h, kTagServer || binding.Encode())
//
// The verifier is memory-hard (Argon2id) and salted per user, so the client
// first needs the salt and the parameters: the server speaks first with
// Params, one round trip more than the paper's protocol.
//
//   S: Start()                -> Params{salt, kdf}
//   C: OnPayload(Params)      -> ClientProof{mac}
//   S: OnPayload(ClientProof) -> ServerProof{mac[, Upgrade]}   (Done unless
//                                                               Upgrade)
//   C: OnPayload(ServerProof) -> Done [UpgradeReply{h'}]
//   S: OnPayload(UpgradeReply) stores the re-hashed record    -> Done
//
// Security notes, read before choosing this mechanism:
//  - h is PASSWORD-EQUIVALENT: whoever holds h (a stolen verifier store, a
//    backup) can log in as the user and impersonate the server to the user,
//    with no dictionary attack. That is why pake2plus exists, whose store
//    holds nothing a client could log in with.
//  - A man in the middle cannot relay (the proofs cover this connection's
//    binding), but an attacker posing as the server receives a ClientProof
//    and can run an offline dictionary attack against it (paper §4.2); the
//    memory-hard KDF only makes each guess expensive.
//  - An unknown user gets a stable decoy salt and the server's target
//    parameters, and then fails exactly like a wrong password. A known user
//    whose record still has older, weaker parameters is distinguishable by
//    those parameters until the record is re-hashed on the next login.
//  - Deriving h runs the KDF (Interactive: about 64 MiB and 0.1 s) inside the
//    client's OnPayload; a client refuses parameters outside its KdfLimits
//    (floor and ceiling) before deriving, so a malicious server can neither
//    get a cheap proof nor make it burn more.
#ifndef TCPCRYPT_AUTH_CMAC_PASSWORD_CMAC_PASSWORD_H_
#define TCPCRYPT_AUTH_CMAC_PASSWORD_CMAC_PASSWORD_H_

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "auth/common/decoy.h"
#include "auth/common/mechanism.h"
#include "auth/common/password_kdf.h"
#include "auth/common/verifier_store.h"
#include "core_transport/engine/rng.h"
#include "core_transport/engine/secret.h"

namespace tcpcrypt::auth::cmac {

// Proof tags, prefixed to the encoded binding inside each MAC (paper §4.2
// TAG_CLIENT / TAG_SERVER). They are the ASCII bytes shown, with no length
// prefix and no terminator; both are 32 bytes (two AES blocks), and they
// differ, so a client proof can never pass as a server proof or the reverse.
inline constexpr std::string_view kTagClient = "tcpcrypt cmac-password client v1";
inline constexpr std::string_view kTagServer = "tcpcrypt cmac-password server v1";
static_assert(kTagClient.size() == 32 && kTagServer.size() == 32);

inline constexpr size_t kVerifierLen = 16;  // h: an AES-128 key
inline constexpr size_t kMacLen = 16;       // AES-CMAC output (RFC 4493 §2.4)
// kMaxPayloadLen bounds every payload either way; the largest legitimate
// one (ServerProof with Upgrade) is well under 100 bytes.
inline constexpr size_t kMaxPayloadLen = 256;

// Labels of DecoySecret::Bytes for unknown users' fake verifiers.
inline constexpr std::string_view kDecoyVerifierLabel =
    "tcpcrypt cmac-password decoy verifier";

// CmacAes128 is AES-CMAC (RFC 4493) keyed once, through OpenSSL's EVP_MAC
// "CMAC" with AES-128-CBC. The algorithm is fetched once per process and the
// cipher is bound once per thread; each Compute reuses the keyed context, so
// a side keys it once per connection and MACs both proofs with it. Not
// thread-safe: one object per side. The key is wiped when freed.
class CmacAes128 {
 public:
  // Create keys a context with |key| (exactly 16 bytes); nullopt if the key
  // has the wrong size or OpenSSL fails.
  static std::optional<CmacAes128> Create(std::span<const uint8_t> key);

  // Compute sets |out_mac| to CMAC(key, parts[0] || parts[1] || ...).
  // Returns false only on an OpenSSL failure (and then zeroes |out_mac|).
  [[nodiscard]] bool Compute(std::span<const ByteSpan> parts,
                             std::span<uint8_t, kMacLen> out_mac);

 private:
  struct CtxDeleter {
    void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
  };
  explicit CmacAes128(EVP_MAC_CTX* ctx) : ctx_(ctx) {}
  std::unique_ptr<EVP_MAC_CTX, CtxDeleter> ctx_;
};

// ComputeCmac is the one-shot form: |out_mac| = AES-CMAC(key, message) with a
// 16-byte key. Used by the RFC 4493 §4 known-answer test.
[[nodiscard]] bool ComputeCmac(std::span<const uint8_t> key,
                               std::span<const uint8_t> message,
                               std::span<uint8_t, kMacLen> out_mac);

// MakeRecord registers |password| for (user, realm): a fresh 16-byte salt
// from |rng|, h = DerivePasswordKey(..., params) as the verifier,
// mechanism kCmacPassword, updated now. Returns false (and leaves |out|
// alone) if the parameters are not Sane() or the KDF fails.
// The record's verifier is password-equivalent: store it like a password.
[[nodiscard]] bool MakeRecord(std::string_view user, std::string_view realm,
                              std::string_view password,
                              const KdfParams& params, Rng& rng,
                              VerifierRecord* out);

// ServerConfig is shared by every server side a factory makes; the pointers
// must outlive them, and |store| and |rng| are used from whatever thread
// runs a side (both must be thread-safe, as SqliteVerifierStore and
// SystemRng are).
struct ServerConfig {
  VerifierStore* store = nullptr;
  const DecoySecret* decoy = nullptr;
  // Records weaker than |target| are re-hashed on login; unknown users are
  // offered |target|.
  KdfParams target = KdfParams::Interactive();
  // Salts of re-hashed records; nullptr means SystemRng::Instance().
  Rng* rng = nullptr;
};

// ServerFactory makes server sides that authenticate Context::user in
// Context::realm. The identity of an authenticated client is
// PeerIdentity{kCmacPassword, user, {{"realm", realm}}}.
MechanismFactory ServerFactory(ServerConfig config);

// ClientFactory makes client sides that log in with |password| as
// Context::user to Context::realm. The identity of an authenticated server
// is PeerIdentity{kCmacPassword, realm, {{"proof", "holds-verifier"}}}: it
// proved it holds this user's verifier, nothing about its host name.
// Params (and an Upgrade) whose KDF parameters fail |limits|.Check() are
// refused with kPolicy before any derivation and before the ClientProof is
// sent; a run accepts at most one Upgrade.
MechanismFactory ClientFactory(std::shared_ptr<const SecretBuffer> password,
                               KdfLimits limits = {});

// UpgradeOutcome is what a finished server side did about re-hashing.
enum class UpgradeOutcome : uint8_t {
  kNotNeeded,     // the record already met the target (or no login)
  kStored,        // the re-hashed record replaced the old one
  kSkipped,       // the record changed during the login; left alone
  kStoreFailed,   // VerifierStore::Put failed; the old record still works
};

// ServerUpgradeOutcome reports |side|'s UpgradeOutcome if it is a server side
// made by ServerFactory, else nullopt. A failed store is not a failed login
// (the user did prove the password); operators watch this instead.
std::optional<UpgradeOutcome> ServerUpgradeOutcome(const MechanismSide& side);

}  // namespace tcpcrypt::auth::cmac

#endif  // TCPCRYPT_AUTH_CMAC_PASSWORD_CMAC_PASSWORD_H_
