// spake2plus_internal.h: the steps of RFC 9383 Appendix A one by one, so
// the Appendix C known-answer test can check every intermediate value.
//
// Not part of the authenticator's API: production code uses Prover and
// Verifier (spake2plus.h), which are built from these functions.
#ifndef TCPCRYPT_AUTH_PAKE2PLUS_SPAKE2PLUS_INTERNAL_H_
#define TCPCRYPT_AUTH_PAKE2PLUS_SPAKE2PLUS_INTERNAL_H_

#include <cstdint>

#include "auth/pake2plus/spake2plus.h"
#include "core_transport/engine/secret.h"

namespace tcpcrypt::auth::pake::internal {

using SecretPoint = SecretArray<kPointLen>;

// M and N of RFC 9383 §4 for P-256, SEC1 uncompressed (the transcript
// encodes them this way).
const Point& MPoint();
const Point& NPoint();

// ProverShare sets |out_share_p| to X = x*P + w0*M (A.1 ProverInit).
[[nodiscard]] Result ProverShare(ByteSpan w0, ByteSpan x, Point* out_share_p);

// VerifierShare sets |out_share_v| to Y = y*P + w0*N (A.2 VerifierFinish).
[[nodiscard]] Result VerifierShare(ByteSpan w0, ByteSpan y, Point* out_share_v);

// ProverSecrets checks Y and sets Z = h*x*(Y - w0*N), V = h*w1*(Y - w0*N)
// (A.1 ProverFinish; h = 1). kBadShare if Y is invalid or Z or V would be
// the identity.
[[nodiscard]] Result ProverSecrets(ByteSpan w0, ByteSpan w1, ByteSpan x,
                                   ByteSpan share_v, SecretPoint* out_z,
                                   SecretPoint* out_v);

// VerifierSecrets checks X and sets Z = h*y*(X - w0*M), V = h*y*L (A.2
// VerifierFinish; h = 1). kBadShare if X is invalid or Z or V would be the
// identity.
[[nodiscard]] Result VerifierSecrets(ByteSpan w0, ByteSpan l, ByteSpan y,
                                     ByteSpan share_p, SecretPoint* out_z,
                                     SecretPoint* out_v);

// Transcript sets |out_tt| to TT (§3.3, A.3): every field preceded by its
// length as an 8-byte little-endian integer, in the order Context,
// idProver, idVerifier, M, N, shareP, shareV, Z, V, w0.
void Transcript(ByteSpan context, ByteSpan id_prover, ByteSpan id_verifier,
                ByteSpan share_p, ByteSpan share_v, ByteSpan z, ByteSpan v,
                ByteSpan w0, SecretBuffer* out_tt);

// KeySchedule is §3.4 / A.4 for the SHA-256 suite.
struct KeySchedule {
  SecretArray<kHashLen> k_main;      // Hash(TT)
  SecretArray<kHashLen> k_confirm_p; // first half of KDF(nil, K_main,
  SecretArray<kHashLen> k_confirm_v; //   "ConfirmationKeys"), then second
  SecretArray<kHashLen> k_shared;    // KDF(nil, K_main, "SharedKey")
};
[[nodiscard]] bool ComputeKeySchedule(ByteSpan tt, KeySchedule* out);

// Confirm sets |out| to HMAC-SHA256(key, share) (§3.4).
[[nodiscard]] bool Confirm(ByteSpan key, ByteSpan share, Confirmation* out);

}  // namespace tcpcrypt::auth::pake::internal

#endif  // TCPCRYPT_AUTH_PAKE2PLUS_SPAKE2PLUS_INTERNAL_H_
