// ossl_ptr.h: owning pointers for the OpenSSL objects this folder uses, so no
// path forgets a *_free (STYLE habit 6: ownership is std::unique_ptr with the
// library's free function).
#ifndef TCPCRYPT_AUTH_X509_BATCH_OSSL_PTR_H_
#define TCPCRYPT_AUTH_X509_BATCH_OSSL_PTR_H_

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <memory>

namespace tcpcrypt::auth::x509 {

struct OsslFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
  void operator()(STACK_OF(X509)* p) const { sk_X509_pop_free(p, X509_free); }
  void operator()(X509_VERIFY_PARAM* p) const { X509_VERIFY_PARAM_free(p); }
};

using UniqueEvpPkey = std::unique_ptr<EVP_PKEY, OsslFree>;
using UniqueEvpPkeyCtx = std::unique_ptr<EVP_PKEY_CTX, OsslFree>;
using UniqueEvpMdCtx = std::unique_ptr<EVP_MD_CTX, OsslFree>;
using UniqueX509 = std::unique_ptr<X509, OsslFree>;
using UniqueX509Store = std::unique_ptr<X509_STORE, OsslFree>;
using UniqueX509StoreCtx = std::unique_ptr<X509_STORE_CTX, OsslFree>;
using UniqueX509Stack = std::unique_ptr<STACK_OF(X509), OsslFree>;

// Shared handles (configs are copied into every factory and side).
using SharedEvpPkey = std::shared_ptr<EVP_PKEY>;
using SharedX509 = std::shared_ptr<X509>;
using SharedX509Store = std::shared_ptr<X509_STORE>;

// Share* take ownership of one reference (nullptr stays nullptr).
inline SharedEvpPkey ShareKey(EVP_PKEY* p) {
  return p ? SharedEvpPkey(p, OsslFree()) : nullptr;
}
inline SharedX509 ShareCert(X509* p) {
  return p ? SharedX509(p, OsslFree()) : nullptr;
}
inline SharedX509Store ShareStore(X509_STORE* p) {
  return p ? SharedX509Store(p, OsslFree()) : nullptr;
}

}  // namespace tcpcrypt::auth::x509

#endif  // TCPCRYPT_AUTH_X509_BATCH_OSSL_PTR_H_
