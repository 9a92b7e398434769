// aead.h: the three tcpcrypt AEADs behind one keyed-once context.
//
// All three come from OpenSSL EVP: AES-128-GCM, AES-256-GCM and
// ChaCha20-Poly1305 (IETF, 96-bit nonce, RFC 8439). A context is keyed once
// in Init(); Seal and Open then only set the nonce, so a frame costs no key
// schedule, no heap allocation and no copy besides the cipher's own output.
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_AEAD_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_AEAD_H_

#include <cstdint>
#include <memory>
#include <span>

#include "core_transport/engine/secret.h"
#include "core_transport/engine/types.h"

namespace tcpcrypt {

class AeadContext {
 public:
  AeadContext();
  ~AeadContext();  // wipes the key
  AeadContext(const AeadContext&) = delete;
  AeadContext& operator=(const AeadContext&) = delete;
  AeadContext(AeadContext&&) noexcept;
  AeadContext& operator=(AeadContext&&) noexcept;

  // Init keys the context for |cipher| with |key| (AeadKeyLen(cipher) bytes).
  // May be called again to re-key. Returns false on a wrong key length or a
  // library failure.
  [[nodiscard]] bool Init(Cipher cipher, std::span<const uint8_t> key);
  bool initialized() const;

  // Seal encrypts the plaintext |head| || |body| with |nonce| (12 bytes) and
  // |ad|, writing head.size() + body.size() + 16 bytes (ciphertext then tag)
  // to |out|. Splitting the plaintext lets a frame's flags byte and the
  // application's buffer be sealed without first copying them together.
  // |out| must not overlap |head| or |body|.
  [[nodiscard]] bool Seal(std::span<const uint8_t> nonce,
                          std::span<const uint8_t> ad,
                          std::span<const uint8_t> head,
                          std::span<const uint8_t> body, uint8_t* out);

  // Open authenticates and decrypts |ciphertext| (ciphertext then 16-byte
  // tag) writing ciphertext.size() - 16 bytes to |out|. Returns false, and
  // the contents of |out| are unspecified and must not be used, if the tag
  // does not verify or |ciphertext| is shorter than the tag. |out| may alias
  // |ciphertext| exactly.
  [[nodiscard]] bool Open(std::span<const uint8_t> nonce,
                          std::span<const uint8_t> ad,
                          std::span<const uint8_t> ciphertext, uint8_t* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_AEAD_H_
