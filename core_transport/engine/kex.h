// kex.h: ephemeral key agreement for the tcpcrypt TEPs (RFC 8548 §5).
//
// Curve25519 (0x23): X25519 via libsodium; public key sent as 32 raw bytes;
// an all-zero shared secret aborts (RFC 7748 §6).
// P-256 (0x21) and P-521 (0x22): ECSVDP-DH on OpenSSL's named curves; public
// keys are sent as a 2-byte big-endian length followed by the compressed
// point, and received keys are fully validated (IEEE 1363 A.16.10: decodes to
// a point on the curve, not the point at infinity; both curves have cofactor
// 1, so that implies the right order). The shared secret ES is the
// x-coordinate, fixed length (32 or 66 bytes).
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_KEX_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_KEX_H_

#include <cstdint>
#include <memory>
#include <span>

#include "core_transport/engine/rng.h"
#include "core_transport/engine/secret.h"
#include "core_transport/engine/types.h"

namespace tcpcrypt {

// PublicWireLen is the exact number of bytes Pub_A / Pub_B occupy in
// Init1 / Init2 for |tep|: 32 for Curve25519, 2+33 for P-256, 2+67 for P-521.
size_t PublicWireLen(Tep tep);

// KexKeyPair is an ephemeral private key and its encoded public key. Derive is
// const and thread-safe, so a server may share one key pair across
// connections for a bounded time (RFC 8548 §3.3 "refreshed frequently").
class KexKeyPair {
 public:
  virtual ~KexKeyPair() = default;

  // Generate makes a fresh key pair for |tep| drawing its private key from
  // |rng|. Returns nullptr on library failure.
  static std::unique_ptr<KexKeyPair> Generate(Tep tep, Rng& rng);

  virtual Tep tep() const = 0;

  // public_wire is the public key exactly as it appears in Init1/Init2
  // (PublicWireLen(tep()) bytes, including any length prefix).
  virtual std::span<const uint8_t> public_wire() const = 0;

  // Derive validates |peer_wire| (exactly PublicWireLen(tep()) bytes, as
  // sent on the wire) and computes ES into |out_es|. Returns
  // Error::kInvalidPublicKey if the length prefix, the encoding or the point
  // is invalid, or (X25519) the shared secret is all zero; Error::kInternal
  // on library failure; Error::kNone on success.
  [[nodiscard]] virtual Error Derive(std::span<const uint8_t> peer_wire,
                                     SecretBuffer* out_es) const = 0;
};

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_KEX_H_
