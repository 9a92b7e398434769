#include "auth/x509_batch/pem.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "auth/x509_batch/batch_signature.h"

namespace tcpcrypt::auth::x509 {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using UniqueBio = std::unique_ptr<BIO, BioFree>;

UniqueBio OpenFile(const std::string& path, std::string* error) {
  errno = 0;
  UniqueBio bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    const int err = errno;
    ERR_clear_error();
    *error = "cannot open " + path + ": " +
             (err != 0 ? std::strerror(err) : "unknown error");
  }
  return bio;
}

UniqueBio OpenMemory(std::string_view pem) {
  return UniqueBio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// No passphrase prompt: an encrypted key simply fails to load.
int NoPassword(char*, int, int, void*) { return -1; }

bool ReadChain(BIO* bio, const std::string& where,
               std::vector<std::vector<uint8_t>>* out, std::string* error) {
  std::vector<std::vector<uint8_t>> chain;
  for (;;) {
    UniqueX509 cert(PEM_read_bio_X509(bio, nullptr, NoPassword, nullptr));
    if (!cert) {
      const unsigned long err = ERR_peek_last_error();
      ERR_clear_error();
      // The normal end: no further BEGIN line.
      if (ERR_GET_LIB(err) == ERR_LIB_PEM &&
          ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
        break;
      }
      *error = where + ": certificate " + std::to_string(chain.size() + 1) +
               " does not parse";
      return false;
    }
    unsigned char* der = nullptr;
    const int len = i2d_X509(cert.get(), &der);
    if (len <= 0) {
      *error = where + ": cannot encode a certificate";
      return false;
    }
    chain.emplace_back(der, der + len);
    OPENSSL_free(der);
  }
  if (chain.empty()) {
    *error = where + ": no certificate found";
    return false;
  }
  *out = std::move(chain);
  return true;
}

SharedEvpPkey ReadKey(BIO* bio, const std::string& where, std::string* error) {
  UniqueEvpPkey key(PEM_read_bio_PrivateKey(bio, nullptr, NoPassword, nullptr));
  ERR_clear_error();
  if (!key) {
    *error = where + ": the private key is encrypted or does not parse";
    return nullptr;
  }
  if (!KeyAlgorithmOf(key.get())) {
    *error = where +
             ": unsupported key type (need ECDSA P-256, Ed25519 or RSA "
             "2048-8192)";
    return nullptr;
  }
  return ShareKey(key.release());
}

SharedX509Store StoreFromChain(const std::vector<std::vector<uint8_t>>& der,
                               const std::string& where, std::string* error) {
  UniqueX509Store store(X509_STORE_new());
  if (!store) {
    *error = where + ": out of memory";
    return nullptr;
  }
  for (size_t i = 0; i < der.size(); ++i) {
    const unsigned char* p = der[i].data();
    UniqueX509 cert(d2i_X509(nullptr, &p, static_cast<long>(der[i].size())));
    if (!cert || p != der[i].data() + der[i].size()) {
      ERR_clear_error();
      *error = where + ": certificate " + std::to_string(i + 1) +
               " does not parse";
      return nullptr;
    }
    // Adding a duplicate is not an error in OpenSSL 3.
    if (X509_STORE_add_cert(store.get(), cert.get()) != 1) {
      ERR_clear_error();
      *error = where + ": cannot add certificate " + std::to_string(i + 1);
      return nullptr;
    }
  }
  return ShareStore(store.release());
}

}  // namespace

bool LoadCertificateChainPem(const std::string& path,
                             std::vector<std::vector<uint8_t>>* out_chain_der,
                             std::string* error) {
  UniqueBio bio = OpenFile(path, error);
  return bio && ReadChain(bio.get(), path, out_chain_der, error);
}

bool ParseCertificateChainPem(std::string_view pem,
                              std::vector<std::vector<uint8_t>>* out_chain_der,
                              std::string* error) {
  UniqueBio bio = OpenMemory(pem);
  if (!bio) {
    *error = "PEM input: out of memory";
    return false;
  }
  return ReadChain(bio.get(), "PEM input", out_chain_der, error);
}

SharedEvpPkey LoadPrivateKeyPem(const std::string& path, std::string* error) {
  UniqueBio bio = OpenFile(path, error);
  return bio ? ReadKey(bio.get(), path, error) : nullptr;
}

SharedEvpPkey ParsePrivateKeyPem(std::string_view pem, std::string* error) {
  UniqueBio bio = OpenMemory(pem);
  if (!bio) {
    *error = "PEM input: out of memory";
    return nullptr;
  }
  return ReadKey(bio.get(), "PEM input", error);
}

SharedX509Store LoadCaBundlePem(const std::string& path, std::string* error) {
  std::vector<std::vector<uint8_t>> der;
  if (!LoadCertificateChainPem(path, &der, error)) return nullptr;
  return StoreFromChain(der, path, error);
}

SharedX509Store ParseCaBundlePem(std::string_view pem, std::string* error) {
  std::vector<std::vector<uint8_t>> der;
  if (!ParseCertificateChainPem(pem, &der, error)) return nullptr;
  return StoreFromChain(der, "PEM input", error);
}

SharedX509Store StoreFromDer(std::span<const std::vector<uint8_t>> der,
                             std::string* error) {
  if (der.empty()) {
    *error = "no trust anchor given";
    return nullptr;
  }
  return StoreFromChain({der.begin(), der.end()}, "trust anchors", error);
}

bool IsPem(std::string_view in) {
  const size_t start = in.find_first_not_of(" \t\r\n");
  return start != std::string_view::npos && in.substr(start).starts_with("-----BEGIN");
}

bool ParseCertificatesPemOrDer(std::string_view in, const std::string& where,
                               std::vector<std::vector<uint8_t>>* out_chain_der,
                               std::string* error) {
  if (in.empty()) {
    *error = where + ": empty";
    return false;
  }
  if (IsPem(in)) {
    UniqueBio bio = OpenMemory(in);
    if (!bio) {
      *error = where + ": out of memory";
      return false;
    }
    return ReadChain(bio.get(), where, out_chain_der, error);
  }
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  UniqueX509 cert(d2i_X509(nullptr, &p, static_cast<long>(in.size())));
  ERR_clear_error();
  if (!cert || p != reinterpret_cast<const unsigned char*>(in.data()) + in.size()) {
    *error = where +
             ": neither PEM (no \"-----BEGIN\" line) nor one DER certificate";
    return false;
  }
  const auto* begin = reinterpret_cast<const uint8_t*>(in.data());
  out_chain_der->assign(1, std::vector<uint8_t>(begin, begin + in.size()));
  return true;
}

SharedEvpPkey ParsePrivateKeyPemOrDer(std::string_view in, const std::string& where,
                                      std::string* error) {
  if (in.empty()) {
    *error = where + ": empty";
    return nullptr;
  }
  if (IsPem(in)) {
    UniqueBio bio = OpenMemory(in);
    if (!bio) {
      *error = where + ": out of memory";
      return nullptr;
    }
    return ReadKey(bio.get(), where, error);
  }
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  UniqueEvpPkey key(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(in.size())));
  ERR_clear_error();
  if (!key || p != reinterpret_cast<const unsigned char*>(in.data()) + in.size()) {
    *error = where + ": neither PEM (no \"-----BEGIN\" line) nor one DER private key";
    return nullptr;
  }
  if (!KeyAlgorithmOf(key.get())) {
    *error = where + ": unsupported key type (need ECDSA P-256, Ed25519 or RSA 2048-8192)";
    return nullptr;
  }
  return ShareKey(key.release());
}

SharedX509Store ParseCaBundlePemOrDer(std::string_view in, const std::string& where,
                                      std::string* error) {
  std::vector<std::vector<uint8_t>> der;
  if (!ParseCertificatesPemOrDer(in, where, &der, error)) return nullptr;
  return StoreFromChain(der, where, error);
}

}  // namespace tcpcrypt::auth::x509
