// hkdf.h: HKDF-SHA256 (RFC 5869) through OpenSSL (HMAC for Extract,
// EVP_KDF for Expand).
//
// RFC 8548 §3.1: Extract and CPRF are HKDF-Extract and HKDF-Expand with
// SHA-256 for every TEP this engine supports.
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_HKDF_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_HKDF_H_

#include <cstdint>
#include <span>

#include "core_transport/engine/secret.h"

namespace tcpcrypt {

inline constexpr size_t kSha256Len = 32;

// HkdfExtract computes PRK = HMAC-SHA256(salt, ikm) into |out_prk|.
// Returns false only if the crypto library fails.
[[nodiscard]] bool HkdfExtract(std::span<const uint8_t> salt,
                               std::span<const uint8_t> ikm,
                               SecretArray<kSha256Len>* out_prk);

// HkdfExpand fills |out| (1 to 255*32 bytes) with HKDF-Expand(prk, info).
// |prk| must be at least 32 bytes. Returns false on library failure or a bad
// length.
[[nodiscard]] bool HkdfExpand(std::span<const uint8_t> prk,
                              std::span<const uint8_t> info,
                              std::span<uint8_t> out);

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_HKDF_H_
