#include "core_transport/engine/aead.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

#include <climits>
#include <cstring>
#include <utility>

namespace tcpcrypt {
namespace {

static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == 32);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == kAeadNonceLen);
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == kAeadTagLen);

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

// GcmCipher returns OpenSSL's AES-GCM for |cipher|, fetched once per process
// and never freed, or nullptr for a non-GCM cipher or a failed fetch.
const EVP_CIPHER* GcmCipher(Cipher cipher) {
  // C++11 guarantees thread-safe initialisation of function statics.
  static EVP_CIPHER* const aes128 =
      EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  static EVP_CIPHER* const aes256 =
      EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  switch (cipher) {
    case Cipher::kAes128Gcm: return aes128;
    case Cipher::kAes256Gcm: return aes256;
    case Cipher::kChaCha20Poly1305: return nullptr;
  }
  return nullptr;
}

bool SodiumReady() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

// OpenSSL's update functions take int lengths.
bool FitsInt(size_t n) { return n <= static_cast<size_t>(INT_MAX); }

// NewGcmCtx returns an AES-GCM context keyed with |key| for one direction,
// with a 12-byte IV (RFC 8548 §6 Table 3: ae_nonce_len = 12).
CipherCtxPtr NewGcmCtx(const EVP_CIPHER* cipher, std::span<const uint8_t> key,
                       bool encrypt) {
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return nullptr;
  size_t iv_len = kAeadNonceLen;
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &iv_len),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_CipherInit_ex2(ctx.get(), cipher, key.data(), nullptr,
                         encrypt ? 1 : 0, params) != 1 ||
      EVP_CIPHER_CTX_get_iv_length(ctx.get()) !=
          static_cast<int>(kAeadNonceLen)) {
    return nullptr;
  }
  return ctx;
}

// UpdateGcm feeds |in| through |ctx| into |out| (or into the AAD when |out|
// is null). An empty |in| is skipped: OpenSSL reads a null input pointer as
// "finish".
bool UpdateGcm(EVP_CIPHER_CTX* ctx, uint8_t* out, std::span<const uint8_t> in) {
  if (in.empty()) return true;
  if (!FitsInt(in.size())) return false;
  int n = 0;
  if (EVP_CipherUpdate(ctx, out, &n, in.data(), static_cast<int>(in.size())) !=
      1) {
    return false;
  }
  // GCM is a stream mode: every byte in is a byte out (or absorbed as AAD).
  return out == nullptr || static_cast<size_t>(n) == in.size();
}

bool SealGcm(EVP_CIPHER_CTX* ctx, std::span<const uint8_t> nonce,
             std::span<const uint8_t> ad, std::span<const uint8_t> head,
             std::span<const uint8_t> body, uint8_t* out) {
  uint8_t* const out_body = out + head.size();
  uint8_t* const out_tag = out_body + body.size();
  uint8_t scratch[16];  // GCM's final step writes nothing here
  int n = 0;
  // RFC 5116 §5.1: N_MIN = N_MAX = 12, so the nonce is GCM's IV as is. Only
  // the IV is set per frame; the AES and GHASH keys stay from Init.
  return EVP_CipherInit_ex2(ctx, nullptr, nullptr, nonce.data(), 1,
                            nullptr) == 1 &&
         UpdateGcm(ctx, nullptr, ad) && UpdateGcm(ctx, out, head) &&
         UpdateGcm(ctx, out_body, body) &&
         EVP_EncryptFinal_ex(ctx, scratch, &n) == 1 && n == 0 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG,
                             static_cast<int>(kAeadTagLen), out_tag) == 1;
}

bool OpenGcm(EVP_CIPHER_CTX* ctx, std::span<const uint8_t> nonce,
             std::span<const uint8_t> ad, std::span<const uint8_t> sealed,
             std::span<const uint8_t> tag, uint8_t* out) {
  // The control call takes a mutable pointer; hand it a copy of the tag.
  uint8_t expected_tag[kAeadTagLen];
  std::memcpy(expected_tag, tag.data(), kAeadTagLen);
  uint8_t scratch[16];  // GCM's final step writes nothing here
  int n = 0;
  // EVP_DecryptFinal_ex compares the tags in constant time.
  return EVP_CipherInit_ex2(ctx, nullptr, nullptr, nonce.data(), 0,
                            nullptr) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG,
                             static_cast<int>(kAeadTagLen),
                             expected_tag) == 1 &&
         UpdateGcm(ctx, nullptr, ad) && UpdateGcm(ctx, out, sealed) &&
         EVP_DecryptFinal_ex(ctx, scratch, &n) == 1 && n == 0;
}

}  // namespace

struct AeadContext::Impl {
  Cipher cipher = Cipher::kAes128Gcm;
  // AES-GCM: one keyed context per direction (OpenSSL wipes them on free).
  CipherCtxPtr enc;
  CipherCtxPtr dec;
  // ChaCha20-Poly1305: libsodium takes the key on every call.
  SecretArray<32> chacha_key;
};

AeadContext::AeadContext() = default;
AeadContext::~AeadContext() = default;
AeadContext::AeadContext(AeadContext&&) noexcept = default;
AeadContext& AeadContext::operator=(AeadContext&&) noexcept = default;

bool AeadContext::Init(Cipher cipher, std::span<const uint8_t> key) {
  // A failed re-key leaves the context unkeyed, never on the old key.
  impl_.reset();
  if (key.size() != AeadKeyLen(cipher)) return false;

  auto impl = std::make_unique<Impl>();
  impl->cipher = cipher;
  switch (cipher) {
    case Cipher::kAes128Gcm:
    case Cipher::kAes256Gcm: {
      const EVP_CIPHER* evp = GcmCipher(cipher);
      if (evp == nullptr) return false;
      impl->enc = NewGcmCtx(evp, key, /*encrypt=*/true);
      impl->dec = NewGcmCtx(evp, key, /*encrypt=*/false);
      if (impl->enc == nullptr || impl->dec == nullptr) return false;
      break;
    }
    case Cipher::kChaCha20Poly1305:
      if (!SodiumReady()) return false;
      impl->chacha_key.CopyFrom(key);
      break;
  }
  impl_ = std::move(impl);
  return true;
}

bool AeadContext::initialized() const { return impl_ != nullptr; }

bool AeadContext::Seal(std::span<const uint8_t> nonce,
                       std::span<const uint8_t> ad,
                       std::span<const uint8_t> head,
                       std::span<const uint8_t> body, uint8_t* out) {
  if (impl_ == nullptr || out == nullptr || nonce.size() != kAeadNonceLen) {
    return false;
  }
  const size_t len = head.size() + body.size();
  if (len < head.size()) return false;

  bool ok = false;
  switch (impl_->cipher) {
    case Cipher::kAes128Gcm:
    case Cipher::kAes256Gcm:
      ok = SealGcm(impl_->enc.get(), nonce, ad, head, body, out);
      break;
    case Cipher::kChaCha20Poly1305: {
      if (len > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX) break;
      // RFC 8439 §2.8 (96-bit nonce). Gather head || body into |out|, then
      // encrypt it in place: libsodium allows an exact alias.
      if (!head.empty()) std::memcpy(out, head.data(), head.size());
      if (!body.empty()) {
        std::memcpy(out + head.size(), body.data(), body.size());
      }
      unsigned long long tag_len = 0;
      ok = crypto_aead_chacha20poly1305_ietf_encrypt_detached(
               out, out + len, &tag_len, out, len, ad.data(), ad.size(),
               nullptr, nonce.data(), impl_->chacha_key.data()) == 0 &&
           tag_len == kAeadTagLen;
      break;
    }
  }
  // Never leave plaintext copied into |out| behind a failure.
  if (!ok) OPENSSL_cleanse(out, len + kAeadTagLen);
  return ok;
}

bool AeadContext::Open(std::span<const uint8_t> nonce,
                       std::span<const uint8_t> ad,
                       std::span<const uint8_t> ciphertext, uint8_t* out) {
  if (impl_ == nullptr || nonce.size() != kAeadNonceLen ||
      ciphertext.size() < kAeadTagLen) {
    return false;
  }
  const size_t len = ciphertext.size() - kAeadTagLen;
  if (out == nullptr && len != 0) return false;
  const std::span<const uint8_t> sealed = ciphertext.first(len);
  const std::span<const uint8_t> tag = ciphertext.subspan(len);

  bool ok = false;
  switch (impl_->cipher) {
    case Cipher::kAes128Gcm:
    case Cipher::kAes256Gcm:
      ok = OpenGcm(impl_->dec.get(), nonce, ad, sealed, tag, out);
      break;
    case Cipher::kChaCha20Poly1305:
      // libsodium verifies the tag (constant time) before it decrypts, and
      // allows |out| to alias the ciphertext exactly.
      ok = crypto_aead_chacha20poly1305_ietf_decrypt_detached(
               out, nullptr, sealed.data(), sealed.size(), tag.data(),
               ad.data(), ad.size(), nonce.data(),
               impl_->chacha_key.data()) == 0;
      break;
  }
  // GCM decrypts before the tag is checked: wipe unauthenticated plaintext.
  if (!ok && len != 0) OPENSSL_cleanse(out, len);
  return ok;
}

}  // namespace tcpcrypt
