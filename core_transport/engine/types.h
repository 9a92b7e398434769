// types.h: identifiers from the RFCs and the engine's named errors.
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_TYPES_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tcpcrypt {

// RFC 8548 §7 Table 4: TEP identifiers (7 bits; the v bit is separate).
enum class Tep : uint8_t {
  kP256 = 0x21,
  kP521 = 0x22,
  kCurve25519 = 0x23,
};

// RFC 8548 §7 Table 5: AEAD identifiers (sym_cipher).
enum class Cipher : uint16_t {
  kAes128Gcm = 0x0001,
  kAes256Gcm = 0x0002,
  kChaCha20Poly1305 = 0x0010,
};

// TepFromByte maps a 7-bit TEP identifier to a supported Tep, or nullopt.
std::optional<Tep> TepFromId(uint8_t id);
// CipherFromId maps a sym_cipher identifier to a supported Cipher, or nullopt.
std::optional<Cipher> CipherFromId(uint16_t id);

std::string_view TepName(Tep tep);        // "curve25519", "p256", "p521"
std::string_view CipherName(Cipher c);    // "aes128gcm", "aes256gcm", ...
std::optional<Tep> TepFromName(std::string_view name);
std::optional<Cipher> CipherFromName(std::string_view name);

// RFC 8548 §5: all TEPs here use HKDF-SHA256 and these lengths.
inline constexpr size_t kNonceLen = 32;  // N_A_LEN = N_B_LEN
inline constexpr size_t kKLen = 32;      // K_LEN
// RFC 8548 §6 Table 3.
inline constexpr size_t kAeadNonceLen = 12;
inline constexpr size_t kAeadTagLen = 16;
size_t AeadKeyLen(Cipher c);  // 16 or 32
// Session ID: TEP byte | CPRF(..., K_LEN) (RFC 8548 §3.4).
inline constexpr size_t kSessionIdLen = 1 + kKLen;

// Named, distinct failure conditions. Every one of them is distinct from a
// clean end of file (RFC 8548 §3.3, §3.6, §3.7).
enum class Error : uint8_t {
  kNone = 0,
  kEnoAbsent,           // the peer's first bytes are not an ENO option
  kEnoFailed,           // ENO ran but no TEP was negotiated (RFC 8547 §4.5)
  kResumptionMismatch,  // B answered with a resumption id we did not offer
  kBadMagic,            // Init1/Init2 magic number is wrong
  kMalformedMessage,    // a length field is impossible or out of bounds
  kCipherNotOffered,    // Init2 picked a sym_cipher absent from Init1
  kNoCommonCipher,      // B supports none of A's sym_cipher_list
  kInvalidPublicKey,    // key validation failed, or all-zero X25519 secret
  kAeadFailure,         // a frame failed authentication
  kTruncated,           // the carrier ended without an authenticated FINp
  kProtocolViolation,   // anything else the RFCs forbid (data after FINp, ...)
  kClosed,              // the application wrote after shutdown
  kWrongState,          // call not valid now (not sticky: nothing failed)
  kInvalidArgument,     // bad configuration or argument (not sticky)
  kInternal,            // the crypto library failed (out of memory, ...)
  kTooManyRekeys,       // the peer started more rekeys than we may answer
                        // (Engine::kMaxUnsentRekeyAnswers)
};

std::string_view ErrorName(Error e);  // "ENO_FAILED", "AEAD_FAILURE", ...

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_TYPES_H_
