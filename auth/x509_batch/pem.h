// pem.h: loading the X.509 mechanism's configuration from PEM (files or
// memory) with errors a person can act on.
//
// Every function returns false / nullptr on failure and sets |*error| to a
// sentence naming the file (or "PEM input") and what was wrong: "cannot open
// server.pem: No such file or directory", "server.key: the private key is
// encrypted or does not parse", "ca.pem: no certificate found".
#ifndef TCPCRYPT_AUTH_X509_BATCH_PEM_H_
#define TCPCRYPT_AUTH_X509_BATCH_PEM_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "auth/x509_batch/ossl_ptr.h"

namespace tcpcrypt::auth::x509 {

// LoadCertificateChainPem reads every CERTIFICATE block of |path| in order
// (leaf first, then intermediates) as DER. At least one certificate is
// required.
[[nodiscard]] bool LoadCertificateChainPem(
    const std::string& path, std::vector<std::vector<uint8_t>>* out_chain_der,
    std::string* error);
[[nodiscard]] bool ParseCertificateChainPem(
    std::string_view pem, std::vector<std::vector<uint8_t>>* out_chain_der,
    std::string* error);

// LoadPrivateKeyPem reads one unencrypted private key (PKCS#8, or the
// traditional EC / RSA forms) that the mechanism can sign with: ECDSA P-256,
// Ed25519 or RSA 2048..8192. Encrypted keys are refused (no prompt).
SharedEvpPkey LoadPrivateKeyPem(const std::string& path, std::string* error);
SharedEvpPkey ParsePrivateKeyPem(std::string_view pem, std::string* error);

// LoadCaBundlePem builds a trust store from every certificate in |path|
// (at least one).
SharedX509Store LoadCaBundlePem(const std::string& path, std::string* error);
SharedX509Store ParseCaBundlePem(std::string_view pem, std::string* error);

// IsPem is whether |in| is PEM: its first non-blank bytes are "-----BEGIN".
bool IsPem(std::string_view in);

// The *PemOrDer functions take PEM (IsPem) or else DER: then exactly one
// certificate, or one unencrypted PKCS#8 / traditional private key, with
// no trailing bytes. |where| names the input in errors ("ClientOptions::
// ca_pem: no certificate found"). They hold no copy of |in| beyond
// OpenSSL's own decoding (which wipes the key's).
[[nodiscard]] bool ParseCertificatesPemOrDer(
    std::string_view in, const std::string& where,
    std::vector<std::vector<uint8_t>>* out_chain_der, std::string* error);
SharedEvpPkey ParsePrivateKeyPemOrDer(std::string_view in, const std::string& where,
                                      std::string* error);
SharedX509Store ParseCaBundlePemOrDer(std::string_view in, const std::string& where,
                                      std::string* error);

// StoreFromDer builds a trust store from DER certificates (at least one).
SharedX509Store StoreFromDer(std::span<const std::vector<uint8_t>> der,
                             std::string* error);

}  // namespace tcpcrypt::auth::x509

#endif  // TCPCRYPT_AUTH_X509_BATCH_PEM_H_
