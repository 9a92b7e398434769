// kex_internal.h: key pairs from known private keys, for known-answer tests.
//
// Not part of the engine's API: production code draws private keys from an
// Rng through KexKeyPair::Generate and never handles them as bytes.
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_KEX_INTERNAL_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_KEX_INTERNAL_H_

#include <cstdint>
#include <memory>
#include <span>

#include "core_transport/engine/kex.h"
#include "core_transport/engine/types.h"

namespace tcpcrypt::internal {

// KexKeyPairFromPrivateKey builds the key pair for |tep| whose private key is
// |private_key|: for Curve25519 the 32-byte X25519 scalar (X25519 clamps it
// itself); for P-256 and P-521 the big-endian scalar, exactly 32 or 66 bytes,
// in [1, n-1]. Returns nullptr on a wrong length, an out-of-range scalar or a
// library failure. The caller should wipe |private_key| afterwards.
std::unique_ptr<KexKeyPair> KexKeyPairFromPrivateKey(
    Tep tep, std::span<const uint8_t> private_key);

}  // namespace tcpcrypt::internal

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_KEX_INTERNAL_H_
