// test_pki.h: a small local PKI made with OpenSSL's EVP and X509 APIs, for
// tests, examples and a future `tcpcrypt cert` command.
//
// It makes a self-signed CA (ECDSA P-256 by default) and issues certificates
// under it (or under an intermediate it issued): a chosen key type (ECDSA
// P-256, Ed25519, RSA-2048), subject CN, DNS and IP subject alternative
// names, validity window, key usage and extended key usage. Nothing here is
// meant to be a production CA: no revocation, no policies, no name
// constraints.
#ifndef TCPCRYPT_AUTH_X509_BATCH_TEST_PKI_H_
#define TCPCRYPT_AUTH_X509_BATCH_TEST_PKI_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "auth/x509_batch/ossl_ptr.h"
#include "core_transport/engine/secret.h"

namespace tcpcrypt::auth::x509 {

enum class PkiKeyType : uint8_t {
  kEcdsaP256,
  kEd25519,
  kRsa2048,
};
std::string_view PkiKeyTypeName(PkiKeyType type);  // "ecdsa-p256", ...

// GenerateKey makes a fresh private key of |type|; nullptr on failure.
SharedEvpPkey GenerateKey(PkiKeyType type);

// KeyAndCert is a private key with its certificate.
struct KeyAndCert {
  SharedEvpPkey key;
  SharedX509 cert;
};

struct CertOptions {
  std::string common_name = "tcpcrypt test";
  std::vector<std::string> dns_names;     // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries
  PkiKeyType key_type = PkiKeyType::kEcdsaP256;
  // Validity window in Unix seconds. 0 for not_before means "now - 1 hour";
  // 0 for not_after means "not_before + valid_days".
  int64_t not_before = 0;
  int64_t not_after = 0;
  int valid_days = 365;
  bool is_ca = false;
  // Leaf key usage: digitalSignature (what the mechanism needs). Turning it
  // off issues keyEncipherment only (RSA) or keyAgreement (EC) instead, to
  // test refusals. CAs always get keyCertSign | cRLSign.
  bool digital_signature = true;
  // Extended key usage for leaves: serverAuth and/or clientAuth. Neither
  // means no EKU extension at all (any purpose).
  bool server_auth = true;
  bool client_auth = false;
};

// CreateRootCa makes a self-signed CA certificate (|options.is_ca| is
// implied). Returns nullopt and sets |*error| on failure.
std::optional<KeyAndCert> CreateRootCa(const CertOptions& options,
                                       std::string* error);

// IssueCertificate makes a new key of |options.key_type| and a certificate
// for it signed by |issuer| (a CA from CreateRootCa, or an intermediate issued
// with is_ca = true). Returns nullopt and sets |*error| on failure.
std::optional<KeyAndCert> IssueCertificate(const KeyAndCert& issuer,
                                           const CertOptions& options,
                                           std::string* error);

// CertificateDer / CertificatePem / PrivateKeyPem encode (empty on failure).
// PrivateKeyPem is unencrypted PKCS#8 in a buffer that wipes itself.
std::vector<uint8_t> CertificateDer(const X509* cert);
std::string CertificatePem(const X509* cert);
SecretBuffer PrivateKeyPem(const EVP_PKEY* key);

// WriteFile writes |contents| to |path| with permissions |mode| (0600 for
// keys, 0644 for certificates), replacing any existing file.
[[nodiscard]] bool WriteFile(const std::string& path, std::string_view contents,
                             unsigned mode, std::string* error);
[[nodiscard]] bool WriteFile(const std::string& path,
                             std::span<const uint8_t> contents, unsigned mode,
                             std::string* error);

// WriteServerPki makes a CA (ECDSA P-256) and a server certificate for
// |host| (a DNS name, or an IP address literal, which becomes an IP SAN) with
// a |server_key| key, both valid for |valid_days| from now, and writes into
// |dir|: ca.pem, ca.key, server.pem (the server's chain, leaf first) and
// server.key.
[[nodiscard]] bool WriteServerPki(const std::string& dir,
                                  const std::string& host,
                                  PkiKeyType server_key, int valid_days,
                                  std::string* error);

}  // namespace tcpcrypt::auth::x509

#endif  // TCPCRYPT_AUTH_X509_BATCH_TEST_PKI_H_
