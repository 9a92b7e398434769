// chain_verify.h: certificate chain checks with OpenSSL's X509_STORE_CTX,
// shared by both directions of the x509_batch mechanism.
//
// One call parses a DER chain under the wire bounds, builds a path to a trust
// anchor of |store|, and checks validity times (at an injectable time),
// purpose (serverAuth / clientAuth extended key usage when present), the
// expected host name or IP address (server certificates), and that the
// leaf's key usage allows digital signatures.
#ifndef TCPCRYPT_AUTH_X509_BATCH_CHAIN_VERIFY_H_
#define TCPCRYPT_AUTH_X509_BATCH_CHAIN_VERIFY_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "auth/common/mechanism.h"
#include "auth/x509_batch/ossl_ptr.h"

namespace tcpcrypt::auth::x509 {

// Wire bounds for a certificate chain (both messages).
inline constexpr size_t kMaxChainCertificates = 10;
inline constexpr size_t kMaxCertificateSize = 16 * 1024;

// CheckResult is the outcome of one verification step: kNone and an empty
// detail on success, else the AuthError and the local detail to report.
struct CheckResult {
  AuthError error = AuthError::kNone;
  std::string detail;

  bool ok() const { return error == AuthError::kNone; }
  static CheckResult Ok() { return {}; }
  static CheckResult Fail(AuthError e, std::string why) {
    return {e, std::move(why)};
  }
};

enum class ChainPurpose : uint8_t {
  kServer,  // X509_PURPOSE_SSL_SERVER, with a host name / IP check
  kClient,  // X509_PURPOSE_SSL_CLIENT, no name check
};

// VerifiedChain is what a verified chain tells the caller.
struct VerifiedChain {
  UniqueX509 leaf;
  std::string subject;      // RFC 2253 form, e.g. "CN=example.com,O=Example"
  std::string issuer;       // RFC 2253 form
  std::string common_name;  // the leaf's last CN, "" if none
};

// VerifyChain checks |chain_der| (leaf first) against |store|.
//   - |host|: for kServer, the expected DNS name or IP literal (required;
//     an empty host fails); ignored for kClient.
//   - |at_unix|: the verification time; nullopt means now.
// Failures:
//   kMalformed:   empty chain, more than kMaxChainCertificates, a certificate
//                 empty or above kMaxCertificateSize, or not exactly one DER
//                 certificate.
//   kCertificate: "certificate has expired", "certificate is not yet valid",
//                 "certificate is not trusted", "certificate does not match
//                 host <host>", "certificate signature does not verify",
//                 "certificate is not valid for server authentication",
//                 "certificate key usage does not allow signing", ...
//   kInternal:    no store, or OpenSSL out of memory.
// On success fills |*out| and returns Ok().
CheckResult VerifyChain(X509_STORE* store,
                        std::span<const std::span<const uint8_t>> chain_der,
                        ChainPurpose purpose, std::string_view host,
                        std::optional<int64_t> at_unix, VerifiedChain* out);

// ParseCertificateDer parses exactly one DER certificate (no trailing bytes).
UniqueX509 ParseCertificateDer(std::span<const uint8_t> der);

}  // namespace tcpcrypt::auth::x509

#endif  // TCPCRYPT_AUTH_X509_BATCH_CHAIN_VERIFY_H_
