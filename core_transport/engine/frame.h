// frame.h: encryption frames (RFC 8548 §4.2).
//
//   frame     = control (1) | clen (2, big-endian) | ciphertext (clen)
//   control   = cres (7 bits, zero, ignored) | rekey (1 bit)
//   plaintext = flags (1) [| urgent (2) if URGp] | data
//   flags     = fres (6 bits, zero, ignored) | URGp | FINp
//   AD        = control | clen
//   nonce     = frame ID XOR NR, frame ID = zeros | offset (8 bytes BE)
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_FRAME_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_FRAME_H_

#include <array>
#include <cstdint>

#include "core_transport/engine/bytes.h"
#include "core_transport/engine/types.h"

namespace tcpcrypt {

inline constexpr uint8_t kControlRekey = 0x01;
inline constexpr uint8_t kFlagFin = 0x01;
inline constexpr uint8_t kFlagUrg = 0x02;

// FrameNonce computes N = frame_ID XOR NR (RFC 8548 §3.6, §4.2.3) for the
// frame starting at byte |offset| of the sender's stream.
inline std::array<uint8_t, kAeadNonceLen> FrameNonce(ByteSpan nr,
                                                     uint64_t offset) {
  std::array<uint8_t, kAeadNonceLen> n{};
  for (size_t i = 0; i < kAeadNonceLen; ++i) n[i] = nr[i];
  for (size_t i = 0; i < 8; ++i) {
    n[kAeadNonceLen - 1 - i] ^= static_cast<uint8_t>(offset >> (8 * i));
  }
  return n;
}

// FrameHeader is the 3 bytes that are both sent in the clear and used as the
// associated data (RFC 8548 §4.2.2).
inline std::array<uint8_t, 3> FrameHeader(uint8_t control, uint16_t clen) {
  return {control, static_cast<uint8_t>(clen >> 8), static_cast<uint8_t>(clen)};
}

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_FRAME_H_
