#include "auth/x509_batch/chain_verify.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <memory>

namespace tcpcrypt::auth::x509 {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

std::string NameString(const X509_NAME* name) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || name == nullptr ||
      X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    ERR_clear_error();
    return {};
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}

std::string CommonName(const X509_NAME* name) {
  // The most specific (last) CN, as RFC 6125 §2.3.1 readers usually take it.
  int last = -1;
  for (int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) {
    last = i;
  }
  if (last < 0) return {};
  const ASN1_STRING* data =
      X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) {
    ERR_clear_error();
    return {};
  }
  std::string cn(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return cn;
}

bool IsIpLiteral(const std::string& host) {
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(host.c_str());
  if (ip == nullptr) {
    ERR_clear_error();
    return false;
  }
  ASN1_OCTET_STRING_free(ip);
  return true;
}

// Detail maps an X509_V_ERR_* code onto the local detail string.
std::string Detail(int err, ChainPurpose purpose, std::string_view host) {
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "certificate has expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "certificate is not yet valid";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return "certificate does not match host " + std::string(host);
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
      return "certificate is not trusted";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
      return "certificate signature does not verify";
    case X509_V_ERR_INVALID_PURPOSE:
      return purpose == ChainPurpose::kServer
                 ? "certificate is not valid for server authentication"
                 : "certificate is not valid for client authentication";
    default:
      return std::string("certificate verification failed: ") +
             X509_verify_cert_error_string(err);
  }
}

}  // namespace

UniqueX509 ParseCertificateDer(std::span<const uint8_t> der) {
  if (der.empty() || der.size() > kMaxCertificateSize) return nullptr;
  const unsigned char* p = der.data();
  UniqueX509 cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert || p != der.data() + der.size()) {
    ERR_clear_error();
    return nullptr;
  }
  return cert;
}

CheckResult VerifyChain(X509_STORE* store,
                        std::span<const std::span<const uint8_t>> chain_der,
                        ChainPurpose purpose, std::string_view host,
                        std::optional<int64_t> at_unix, VerifiedChain* out) {
  if (chain_der.empty()) {
    return CheckResult::Fail(AuthError::kMalformed, "certificate chain is empty");
  }
  if (chain_der.size() > kMaxChainCertificates) {
    return CheckResult::Fail(AuthError::kMalformed,
                             "certificate chain has more than 10 certificates");
  }
  UniqueX509 leaf;
  UniqueX509Stack untrusted(sk_X509_new_null());
  if (!untrusted) return CheckResult::Fail(AuthError::kInternal, "out of memory");
  for (size_t i = 0; i < chain_der.size(); ++i) {
    const std::span<const uint8_t> der = chain_der[i];
    if (der.empty() || der.size() > kMaxCertificateSize) {
      return CheckResult::Fail(AuthError::kMalformed,
                               "certificate " + std::to_string(i + 1) +
                                   " is empty or larger than 16384 bytes");
    }
    UniqueX509 cert = ParseCertificateDer(der);
    if (!cert) {
      return CheckResult::Fail(AuthError::kMalformed,
                               "certificate " + std::to_string(i + 1) +
                                   " is not valid DER");
    }
    if (i == 0) {
      leaf = std::move(cert);
    } else {
      if (sk_X509_push(untrusted.get(), cert.get()) <= 0) {
        return CheckResult::Fail(AuthError::kInternal, "out of memory");
      }
      cert.release();  // now owned by |untrusted|
    }
  }
  if (store == nullptr) {
    return CheckResult::Fail(AuthError::kInternal,
                             "no trust anchors configured");
  }
  const std::string expected(host);
  if (purpose == ChainPurpose::kServer && expected.empty()) {
    return CheckResult::Fail(
        AuthError::kCertificate,
        "no host name to check the certificate against (empty realm)");
  }

  UniqueX509StoreCtx ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store, leaf.get(),
                                  untrusted.get()) != 1) {
    ERR_clear_error();
    return CheckResult::Fail(AuthError::kInternal, "out of memory");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  // Depth counts the certificates above the leaf.
  X509_VERIFY_PARAM_set_depth(param, static_cast<int>(kMaxChainCertificates));
  if (at_unix) X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(*at_unix));
  bool params_ok =
      X509_STORE_CTX_set_purpose(ctx.get(), purpose == ChainPurpose::kServer
                                                ? X509_PURPOSE_SSL_SERVER
                                                : X509_PURPOSE_SSL_CLIENT) == 1;
  if (purpose == ChainPurpose::kServer) {
    if (IsIpLiteral(expected)) {
      params_ok = params_ok &&
                  X509_VERIFY_PARAM_set1_ip_asc(param, expected.c_str()) == 1;
    } else {
      X509_VERIFY_PARAM_set_hostflags(param,
                                      X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      params_ok = params_ok && X509_VERIFY_PARAM_set1_host(
                                   param, expected.data(), expected.size()) == 1;
    }
  }
  if (!params_ok) {
    ERR_clear_error();
    // set1_host refuses names with embedded NULs, for example.
    return CheckResult::Fail(AuthError::kCertificate,
                             "certificate does not match host " + expected);
  }

  const int verified = X509_verify_cert(ctx.get());
  if (verified != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    if (err == X509_V_OK) {  // verify failed without a certificate error
      return CheckResult::Fail(AuthError::kInternal,
                               "certificate verification could not run");
    }
    return CheckResult::Fail(AuthError::kCertificate,
                             Detail(err, purpose, expected));
  }

  // The mechanism signs with the leaf's key: if the certificate limits its
  // key usage, digitalSignature must be among them (RFC 5280 §4.2.1.3).
  if ((X509_get_extension_flags(leaf.get()) & EXFLAG_KUSAGE) != 0 &&
      (X509_get_key_usage(leaf.get()) & KU_DIGITAL_SIGNATURE) == 0) {
    return CheckResult::Fail(AuthError::kCertificate,
                             "certificate key usage does not allow signing");
  }

  VerifiedChain result;
  result.subject = NameString(X509_get_subject_name(leaf.get()));
  result.issuer = NameString(X509_get_issuer_name(leaf.get()));
  result.common_name = CommonName(X509_get_subject_name(leaf.get()));
  result.leaf = std::move(leaf);
  *out = std::move(result);
  return CheckResult::Ok();
}

}  // namespace tcpcrypt::auth::x509
