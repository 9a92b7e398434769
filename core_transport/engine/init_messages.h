// init_messages.h: Init1 and Init2 (RFC 8548 §4.1), one codec each.
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_INIT_MESSAGES_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_INIT_MESSAGES_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "core_transport/engine/bytes.h"
#include "core_transport/engine/types.h"

namespace tcpcrypt {

// RFC 8548 §4.3 Table 1.
inline constexpr uint32_t kInit1Magic = 0x15101a0e;
inline constexpr uint32_t kInit2Magic = 0x097105e0;
// magic (4) | message_len (4)
inline constexpr size_t kInitPrefixLen = 8;

// Init1 = { INIT1_MAGIC, message_len, nciphers, sym_cipher[K], N_A, Pub_A }.
// Parsed fields borrow from the input.
struct Init1 {
  std::span<const uint8_t> cipher_ids;  // 2*K bytes, big-endian ids
  std::span<const uint8_t> nonce;       // N_A, kNonceLen bytes
  std::span<const uint8_t> pub;         // Pub_A, PublicWireLen(tep) bytes
  size_t cipher_count() const { return cipher_ids.size() / 2; }
  uint16_t cipher_id(size_t i) const {
    return static_cast<uint16_t>((cipher_ids[2 * i] << 8) | cipher_ids[2 * i + 1]);
  }
};

// Init2 = { INIT2_MAGIC, message_len, sym_cipher, N_B, Pub_B }.
struct Init2 {
  uint16_t cipher_id = 0;
  std::span<const uint8_t> nonce;  // N_B
  std::span<const uint8_t> pub;    // Pub_B
};

// InitMessageLength inspects the 8-byte prefix of an Init message. Returns
// kNone and sets |*out_len| to message_len when |prefix| starts with
// |magic|; kBadMagic for another magic; kMalformedMessage when message_len
// is smaller than |min_len| or larger than |max_len|.
Error InitMessageLength(ByteSpan prefix, uint32_t magic, size_t min_len,
                        size_t max_len, size_t* out_len);

// Init1Length is the exact encoded length for |n_ciphers| and |tep|
// (no ignored bytes).
size_t Init1Length(size_t n_ciphers, Tep tep);
size_t Init2Length(Tep tep);

// ParseInit1 parses a whole Init1 (|msg| is exactly message_len bytes) for
// the negotiated |tep|. Bytes after Pub_A are permitted and ignored
// (RFC 8548 §4.1). Errors: kBadMagic, kMalformedMessage (message_len does
// not equal msg.size(), nciphers is 0, or the fields do not fit).
Error ParseInit1(ByteSpan msg, Tep tep, Init1* out);
Error ParseInit2(ByteSpan msg, Tep tep, Init2* out);

// EncodeInit1/EncodeInit2 write the message with no ignored bytes; return
// the length written, 0 if |out| is too small or an input has the wrong size.
size_t EncodeInit1(std::span<const Cipher> ciphers, ByteSpan nonce,
                   ByteSpan pub, Tep tep, MutableByteSpan out);
size_t EncodeInit2(Cipher cipher, ByteSpan nonce, ByteSpan pub, Tep tep,
                   MutableByteSpan out);

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_INIT_MESSAGES_H_
