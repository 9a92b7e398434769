#include "core_transport/engine/init_messages.h"

#include "core_transport/engine/kex.h"

namespace tcpcrypt {

Error InitMessageLength(ByteSpan prefix, uint32_t magic, size_t min_len,
                        size_t max_len, size_t* out_len) {
  Reader r(prefix);
  uint32_t got_magic = 0;
  uint32_t len = 0;
  if (!r.ReadU32(&got_magic) || !r.ReadU32(&len)) return Error::kMalformedMessage;
  if (got_magic != magic) return Error::kBadMagic;
  if (len < min_len || len > max_len) return Error::kMalformedMessage;
  *out_len = len;
  return Error::kNone;
}

size_t Init1Length(size_t n_ciphers, Tep tep) {
  return kInitPrefixLen + 1 + 2 * n_ciphers + kNonceLen + PublicWireLen(tep);
}

size_t Init2Length(Tep tep) {
  return kInitPrefixLen + 2 + kNonceLen + PublicWireLen(tep);
}

// RFC 8548 §4.1: magic | message_len | nciphers | sym_cipher[K] | N_A | Pub_A
// | ignored.
Error ParseInit1(ByteSpan msg, Tep tep, Init1* out) {
  Reader r(msg);
  uint32_t magic = 0;
  uint32_t len = 0;
  uint8_t nciphers = 0;
  Init1 parsed;
  if (!r.ReadU32(&magic)) return Error::kMalformedMessage;
  if (magic != kInit1Magic) return Error::kBadMagic;
  if (!r.ReadU32(&len) || len != msg.size()) return Error::kMalformedMessage;
  if (!r.ReadU8(&nciphers) || nciphers == 0 ||
      !r.ReadBytes(2 * size_t{nciphers}, &parsed.cipher_ids) ||
      !r.ReadBytes(kNonceLen, &parsed.nonce) ||
      !r.ReadBytes(PublicWireLen(tep), &parsed.pub)) {
    return Error::kMalformedMessage;
  }
  // RFC 8548 §4.1: "implementations MUST permit and ignore any bytes
  // following Pub_A".
  *out = parsed;
  return Error::kNone;
}

// RFC 8548 §4.1: magic | message_len | sym_cipher | N_B | Pub_B | ignored.
Error ParseInit2(ByteSpan msg, Tep tep, Init2* out) {
  Reader r(msg);
  uint32_t magic = 0;
  uint32_t len = 0;
  Init2 parsed;
  if (!r.ReadU32(&magic)) return Error::kMalformedMessage;
  if (magic != kInit2Magic) return Error::kBadMagic;
  if (!r.ReadU32(&len) || len != msg.size()) return Error::kMalformedMessage;
  if (!r.ReadU16(&parsed.cipher_id) || !r.ReadBytes(kNonceLen, &parsed.nonce) ||
      !r.ReadBytes(PublicWireLen(tep), &parsed.pub)) {
    return Error::kMalformedMessage;
  }
  *out = parsed;
  return Error::kNone;
}

size_t EncodeInit1(std::span<const Cipher> ciphers, ByteSpan nonce,
                   ByteSpan pub, Tep tep, MutableByteSpan out) {
  if (ciphers.empty() || ciphers.size() > 255 || nonce.size() != kNonceLen ||
      pub.size() != PublicWireLen(tep)) {
    return 0;
  }
  const size_t len = Init1Length(ciphers.size(), tep);
  Writer w(out);
  w.U32(kInit1Magic);
  w.U32(static_cast<uint32_t>(len));
  w.U8(static_cast<uint8_t>(ciphers.size()));
  for (Cipher c : ciphers) w.U16(static_cast<uint16_t>(c));
  w.Bytes(nonce);
  w.Bytes(pub);
  // RFC 8548 §4.1: the ignored field MUST have zero length when sending.
  return w.ok() && w.written() == len ? len : 0;
}

size_t EncodeInit2(Cipher cipher, ByteSpan nonce, ByteSpan pub, Tep tep,
                   MutableByteSpan out) {
  if (nonce.size() != kNonceLen || pub.size() != PublicWireLen(tep)) return 0;
  const size_t len = Init2Length(tep);
  Writer w(out);
  w.U32(kInit2Magic);
  w.U32(static_cast<uint32_t>(len));
  w.U16(static_cast<uint16_t>(cipher));
  w.Bytes(nonce);
  w.Bytes(pub);
  return w.ok() && w.written() == len ? len : 0;
}

}  // namespace tcpcrypt
