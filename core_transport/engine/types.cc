#include "core_transport/engine/types.h"

namespace tcpcrypt {

std::optional<Tep> TepFromId(uint8_t id) {
  switch (id) {
    case 0x21: return Tep::kP256;
    case 0x22: return Tep::kP521;
    case 0x23: return Tep::kCurve25519;
    default: return std::nullopt;
  }
}

std::optional<Cipher> CipherFromId(uint16_t id) {
  switch (id) {
    case 0x0001: return Cipher::kAes128Gcm;
    case 0x0002: return Cipher::kAes256Gcm;
    case 0x0010: return Cipher::kChaCha20Poly1305;
    default: return std::nullopt;
  }
}

std::string_view TepName(Tep tep) {
  switch (tep) {
    case Tep::kP256: return "p256";
    case Tep::kP521: return "p521";
    case Tep::kCurve25519: return "curve25519";
  }
  return "unknown";
}

std::string_view CipherName(Cipher c) {
  switch (c) {
    case Cipher::kAes128Gcm: return "aes128gcm";
    case Cipher::kAes256Gcm: return "aes256gcm";
    case Cipher::kChaCha20Poly1305: return "chacha20poly1305";
  }
  return "unknown";
}

std::optional<Tep> TepFromName(std::string_view name) {
  for (Tep t : {Tep::kCurve25519, Tep::kP256, Tep::kP521}) {
    if (TepName(t) == name) return t;
  }
  if (name == "x25519") return Tep::kCurve25519;
  return std::nullopt;
}

std::optional<Cipher> CipherFromName(std::string_view name) {
  for (Cipher c : {Cipher::kAes128Gcm, Cipher::kAes256Gcm,
                   Cipher::kChaCha20Poly1305}) {
    if (CipherName(c) == name) return c;
  }
  return std::nullopt;
}

size_t AeadKeyLen(Cipher c) {
  switch (c) {
    case Cipher::kAes128Gcm: return 16;
    case Cipher::kAes256Gcm: return 32;
    case Cipher::kChaCha20Poly1305: return 32;
  }
  return 0;
}

std::string_view ErrorName(Error e) {
  switch (e) {
    case Error::kNone: return "OK";
    case Error::kEnoAbsent: return "ENO_ABSENT";
    case Error::kEnoFailed: return "ENO_FAILED";
    case Error::kResumptionMismatch: return "RESUMPTION_MISMATCH";
    case Error::kBadMagic: return "BAD_MAGIC";
    case Error::kMalformedMessage: return "MALFORMED_MESSAGE";
    case Error::kCipherNotOffered: return "CIPHER_NOT_OFFERED";
    case Error::kNoCommonCipher: return "NO_COMMON_CIPHER";
    case Error::kInvalidPublicKey: return "INVALID_PUBLIC_KEY";
    case Error::kAeadFailure: return "AEAD_FAILURE";
    case Error::kTruncated: return "TRUNCATED";
    case Error::kProtocolViolation: return "PROTOCOL_VIOLATION";
    case Error::kClosed: return "CLOSED";
    case Error::kWrongState: return "WRONG_STATE";
    case Error::kInvalidArgument: return "INVALID_ARGUMENT";
    case Error::kInternal: return "INTERNAL";
    case Error::kTooManyRekeys: return "TOO_MANY_REKEYS";
  }
  return "UNKNOWN";
}

}  // namespace tcpcrypt
