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

struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};

// HmacCtx returns this thread's HMAC-SHA256 context (digest preset), or
// nullptr if OpenSSL cannot make one.
EVP_MAC_CTX* HmacCtx() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
  thread_local std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx;
  if (ctx != nullptr) return ctx.get();
  if (mac == nullptr) return nullptr;
  std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> fresh(EVP_MAC_CTX_new(mac));
  if (fresh == nullptr) return nullptr;
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_CTX_set_params(fresh.get(), params) != 1) return nullptr;
  ctx = std::move(fresh);
  return ctx.get();
}

// NewExpandCtx makes an HKDF context in expand-only mode for SHA-256.
KdfCtxPtr NewExpandCtx() {
  EVP_KDF* kdf = Kdf();
  if (kdf == nullptr) return nullptr;
  KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf));
  if (ctx == nullptr) return nullptr;
  char digest[] = "SHA256";
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_KDF_CTX_set_params(ctx.get(), params) != 1) return nullptr;
  return ctx;
}

// ThreadExpandCtx is this thread's expand context. Setting the digest makes
// OpenSSL look it up by name, and a new context costs allocations: together
// about a third of a short expand, and a handshake makes six. OpenSSL 3.0's
// HKDF contexts cannot be duplicated, hence one per thread.
KdfCtxPtr& ThreadExpandCtx() {
  thread_local KdfCtxPtr ctx;
  return ctx;
}

// Expand runs HKDF-Expand(prk, info) into |out|.
//
// The common case (non-empty info) reuses this thread's context. The
// context copies the PRK; afterwards Expand replaces that copy with zeros
// (OpenSSL frees the old key with OPENSSL_clear_free), so no secret stays in
// it between calls. An empty info gets a context of its own: OpenSSL 3.0
// keeps the previous info length when given an empty info, so a reused
// context would read stale state.
bool Expand(std::span<const uint8_t> prk, std::span<const uint8_t> info,
            std::span<uint8_t> out) {
  KdfCtxPtr one_off;
  EVP_KDF_CTX* ctx = nullptr;
  if (info.empty()) {
    one_off = NewExpandCtx();
    ctx = one_off.get();
  } else {
    KdfCtxPtr& cached = ThreadExpandCtx();
    if (cached == nullptr) cached = NewExpandCtx();
    ctx = cached.get();
  }
  if (ctx == nullptr) return false;
  const OSSL_PARAM params[] = {
      OctetParam(OSSL_KDF_PARAM_KEY, prk),
      OctetParam(OSSL_KDF_PARAM_INFO, info),
      OSSL_PARAM_construct_end(),
  };
  const bool ok = EVP_KDF_derive(ctx, out.data(), out.size(), params) == 1;
  if (one_off == nullptr) {
    static const uint8_t kZeroKey[kSha256Len] = {};
    const OSSL_PARAM wipe[] = {
        OctetParam(OSSL_KDF_PARAM_KEY, kZeroKey),
        OSSL_PARAM_construct_end(),
    };
    // If the key cannot be overwritten, drop the context (freed wiped).
    if (EVP_KDF_CTX_set_params(ctx, wipe) != 1) ThreadExpandCtx().reset();
  }
  if (!ok) OPENSSL_cleanse(out.data(), out.size());
  return ok;
}

}  // namespace

bool HkdfExtract(std::span<const uint8_t> salt, std::span<const uint8_t> ikm,
                 SecretArray<kSha256Len>* out_prk) {
  // RFC 5869 §2.2: PRK = HMAC-Hash(salt, IKM); an empty salt means HashLen
  // zero bytes, which HMAC's key padding makes identical to a 0-byte key.
  //
  // This is OpenSSL's HMAC called directly: OpenSSL 3.0's HKDF in extract
  // mode computes the same HMAC through EVP_Q_mac, which looks up the MAC
  // and the digest by name on every call and so costs about twice as much.
  // The context (per thread, digest preset) is keyed with the salt, which
  // is public; the IKM only passes through it.
  EVP_MAC_CTX* ctx = HmacCtx();
  if (ctx == nullptr) return false;
  static const uint8_t kZeroSalt[kSha256Len] = {};
  if (salt.empty()) salt = kZeroSalt;
  SecretArray<kSha256Len> prk;
  size_t len = 0;
  if (EVP_MAC_init(ctx, salt.data(), salt.size(), nullptr) != 1 ||
      (!ikm.empty() && EVP_MAC_update(ctx, ikm.data(), ikm.size()) != 1) ||
      EVP_MAC_final(ctx, prk.data(), &len, prk.size()) != 1 || len != kSha256Len) {
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
  return Expand(prk, info, out);
}

}  // namespace tcpcrypt
