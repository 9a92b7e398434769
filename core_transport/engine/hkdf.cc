#include "core_transport/engine/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <memory>
#include <utility>

namespace tcpcrypt {
namespace {

struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* ctx) const { EVP_KDF_CTX_free(ctx); }
};
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter>;

// RFC 5869 §2.3: L <= 255*HashLen.
constexpr size_t kMaxExpandLen = 255 * kSha256Len;

// Kdf returns OpenSSL's HKDF, fetched once per process and never freed, or
// nullptr if the provider lacks it.
EVP_KDF* Kdf() {
  // C++11 guarantees thread-safe initialisation of function statics.
  static EVP_KDF* const kdf =
      EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr);
  return kdf;
}

// OctetParam wraps |s| as an OSSL_PARAM. OpenSSL rejects a null data pointer
// even for length 0, so an empty span points at a static byte instead.
OSSL_PARAM OctetParam(const char* key, std::span<const uint8_t> s) {
  static const uint8_t kEmpty = 0;
  const void* p = s.empty() ? &kEmpty : s.data();
  return OSSL_PARAM_construct_octet_string(key, const_cast<void*>(p), s.size());
}

// Derive runs HKDF-SHA256 in |mode| keyed with |key| (IKM or PRK), with
// |input| as the parameter |input_name| (the salt or the info), into |out|.
// OpenSSL 3.0's HKDF contexts cannot be duplicated, so each call makes one
// from the fetched KDF; it copies the key and wipes it when freed.
bool Derive(int mode, std::span<const uint8_t> key, const char* input_name,
            std::span<const uint8_t> input, std::span<uint8_t> out) {
  EVP_KDF* kdf = Kdf();
  if (kdf == nullptr) return false;
  KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf));
  if (ctx == nullptr) return false;
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OctetParam(OSSL_KDF_PARAM_KEY, key),
      OctetParam(input_name, input),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    return false;
  }
  return true;
}

}  // namespace

bool HkdfExtract(std::span<const uint8_t> salt, std::span<const uint8_t> ikm,
                 SecretArray<kSha256Len>* out_prk) {
  // RFC 5869 §2.2: PRK = HMAC-Hash(salt, IKM); an empty salt means HashLen
  // zero bytes, which HMAC's key padding makes identical to a 0-byte key.
  SecretArray<kSha256Len> prk;
  if (!Derive(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, ikm, OSSL_KDF_PARAM_SALT, salt,
              prk.span())) {
    return false;
  }
  *out_prk = std::move(prk);
  return true;
}

bool HkdfExpand(std::span<const uint8_t> prk, std::span<const uint8_t> info,
                std::span<uint8_t> out) {
  // RFC 5869 §2.3: PRK is at least HashLen bytes, 1 <= L <= 255*HashLen.
  if (prk.size() < kSha256Len || out.empty() || out.size() > kMaxExpandLen) {
    return false;
  }
  return Derive(EVP_KDF_HKDF_MODE_EXPAND_ONLY, prk, OSSL_KDF_PARAM_INFO, info,
                out);
}

}  // namespace tcpcrypt
