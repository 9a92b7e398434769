// spake2plus.h: SPAKE2+ (RFC 9383) with the ciphersuite
// P256-SHA256-HKDF-SHA256-HMAC-SHA256, as a sans-I/O core.
//
// Prover (the client, who knows the password) and Verifier (the server,
// who holds only the registration record w0 | L) each run once:
//
//   Prover                                  Verifier
//   Start(rng)         -> shareP X   ->     Respond(X, rng)
//                      <- shareV Y, confirmV
//   Finish(Y, confirmV) -> confirmP  ->     Finish(confirmP)
//
// Group operations use OpenSSL's named P-256 group (never explicit
// parameters); the hash is SHA-256, the KDF HKDF-SHA256 and the MAC
// HMAC-SHA256 (RFC 9383 §4). Received points must be SEC1 uncompressed, on
// the curve and not the identity (§6; P-256 has cofactor h = 1, so a point
// on the curve is in the prime-order group). Confirmations are compared in
// constant time. Scalars, Z, V, the transcript and all keys are wiped.
//
// Objects are single-use and not thread-safe. Any failure is sticky: the
// object then refuses every later call with the same Result.
#ifndef TCPCRYPT_AUTH_PAKE2PLUS_SPAKE2PLUS_H_
#define TCPCRYPT_AUTH_PAKE2PLUS_SPAKE2PLUS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core_transport/engine/rng.h"
#include "core_transport/engine/secret.h"

namespace tcpcrypt::auth::pake {

using ByteSpan = std::span<const uint8_t>;

inline constexpr size_t kScalarLen = 32;   // P-256 scalars, big-endian
inline constexpr size_t kPointLen = 65;    // SEC1 uncompressed: 04 | x | y
inline constexpr size_t kHashLen = 32;     // SHA-256
inline constexpr size_t kConfirmLen = 32;  // HMAC-SHA256
// RFC 9383 §3.2: each half of the PBKDF output has ceil(log2(p)) + 64 bits,
// so the PBKDF output for P-256 is 80 bytes.
inline constexpr size_t kHalfSeedLen = 40;
inline constexpr size_t kSeedLen = 2 * kHalfSeedLen;

using Point = std::array<uint8_t, kPointLen>;
using Confirmation = std::array<uint8_t, kConfirmLen>;
using Scalar = SecretArray<kScalarLen>;

enum class Result : uint8_t {
  kOk,
  kBadShare,         // the peer's share is not a valid point, or degenerate
  kBadConfirmation,  // the peer's confirmation did not verify
  kWrongState,       // called out of order, twice, or after a failure
  kInternal,         // a crypto library failure or a broken Rng
};

// --- Registration (RFC 9383 §3.2) -----------------------------------------

// ReduceSeed splits the PBKDF output |seed| = w0s || w1s (40 bytes each)
// and sets w0 = w0s mod p, w1 = w1s mod p (32 bytes, big-endian). Returns
// false on a library failure or if either value is 0 (probability 2^-256).
[[nodiscard]] bool ReduceSeed(std::span<const uint8_t, kSeedLen> seed,
                              Scalar* out_w0, Scalar* out_w1);

// ComputeL sets |out_l| to L = w1*P, SEC1 uncompressed. |w1| must be in
// [1, p-1]. Returns false otherwise or on a library failure.
[[nodiscard]] bool ComputeL(ByteSpan w1, std::span<uint8_t, kPointLen> out_l);

// IsValidScalar reports whether |s| is 32 bytes encoding a value in
// [1, p-1] (a usable w0 or w1).
bool IsValidScalar(ByteSpan s);

// IsValidPoint reports whether |encoded| is a 65-byte SEC1 uncompressed
// P-256 point that is on the curve and not the identity (RFC 9383 §6).
bool IsValidPoint(ByteSpan encoded);

// --- Online protocol (RFC 9383 §3.3, §3.4, Appendix A) ----------------------

// Prover is the client side. |context|, |id_prover| and |id_verifier| are
// copied; |w0| and |w1| come from ReduceSeed.
class Prover {
 public:
  // Create returns nullptr if |w0| or |w1| is not a valid scalar.
  static std::unique_ptr<Prover> Create(ByteSpan context, ByteSpan id_prover,
                                        ByteSpan id_verifier, ByteSpan w0,
                                        ByteSpan w1);
  ~Prover();
  Prover(const Prover&) = delete;
  Prover& operator=(const Prover&) = delete;

  // Start draws x from |rng| in [1, p-1] and sets |out_share_p| to
  // X = x*P + w0*M (ProverInit). Call once, first.
  [[nodiscard]] Result Start(Rng& rng, Point* out_share_p);

  // StartWithScalarForTesting is Start with a given x (32 bytes, in
  // [1, p-1]), for the RFC 9383 Appendix C vector only.
  [[nodiscard]] Result StartWithScalarForTesting(ByteSpan x,
                                                 Point* out_share_p);

  // Finish takes the Verifier's share Y and confirmation: checks Y, computes
  // Z and V (ProverFinish), TT and the key schedule, and verifies confirmV =
  // HMAC(K_confirmV, X) in constant time. Only then sets |out_confirm_p| to
  // HMAC(K_confirmP, Y) and |out_k_shared| to K_shared. Call once, after
  // Start. kBadShare: Y invalid; kBadConfirmation: confirmV wrong (including
  // a wrong length).
  [[nodiscard]] Result Finish(ByteSpan share_v, ByteSpan confirm_v,
                              Confirmation* out_confirm_p,
                              SecretArray<kHashLen>* out_k_shared);

 private:
  enum class State : uint8_t { kInit, kStarted, kDone, kFailed };
  Prover() = default;
  Result Fail(Result r);

  State state_ = State::kInit;
  Result error_ = Result::kOk;
  std::vector<uint8_t> context_, id_prover_, id_verifier_;
  Scalar w0_, w1_, x_;
  Point share_p_{};
};

// Verifier is the server side, holding the record (w0, L).
class Verifier {
 public:
  // Create returns nullptr if |w0| is not a valid scalar or |l| not a valid
  // point. w0 and L are copied and wiped once Respond has used them.
  static std::unique_ptr<Verifier> Create(ByteSpan context, ByteSpan id_prover,
                                          ByteSpan id_verifier, ByteSpan w0,
                                          ByteSpan l);
  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // Respond checks the Prover's share X, draws y from |rng| in [1, p-1],
  // sets |out_share_v| to Y = y*P + w0*N, computes Z and V
  // (VerifierFinish), TT and the key schedule, and sets |out_confirm_v| to
  // HMAC(K_confirmV, X). Call once, first. kBadShare: X invalid.
  [[nodiscard]] Result Respond(ByteSpan share_p, Rng& rng, Point* out_share_v,
                               Confirmation* out_confirm_v);

  // RespondWithScalarForTesting is Respond with a given y (32 bytes, in
  // [1, p-1]), for the RFC 9383 Appendix C vector only.
  [[nodiscard]] Result RespondWithScalarForTesting(
      ByteSpan share_p, ByteSpan y, Point* out_share_v,
      Confirmation* out_confirm_v);

  // Finish verifies confirmP = HMAC(K_confirmP, Y) in constant time and
  // only then sets |out_k_shared| to K_shared. Call once, after Respond.
  // kBadConfirmation: confirmP wrong (including a wrong length).
  [[nodiscard]] Result Finish(ByteSpan confirm_p,
                              SecretArray<kHashLen>* out_k_shared);

 private:
  enum class State : uint8_t { kInit, kResponded, kDone, kFailed };
  Verifier() = default;
  Result Fail(Result r);
  Result RespondWith(ByteSpan share_p, const Scalar& y, Point* out_share_v,
                     Confirmation* out_confirm_v);

  State state_ = State::kInit;
  Result error_ = Result::kOk;
  std::vector<uint8_t> context_, id_prover_, id_verifier_;
  Scalar w0_;
  SecretArray<kPointLen> l_;
  Point share_v_{};
  SecretArray<kHashLen> k_confirm_p_;
  SecretArray<kHashLen> k_shared_;
};

}  // namespace tcpcrypt::auth::pake

#endif  // TCPCRYPT_AUTH_PAKE2PLUS_SPAKE2PLUS_H_
