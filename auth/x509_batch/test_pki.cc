#include "auth/x509_batch/test_pki.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>

namespace tcpcrypt::auth::x509 {
namespace {

constexpr int64_t kHour = 3600;
constexpr int64_t kDay = 24 * kHour;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};

// AddExtension adds one extension in OpenSSL's config syntax
// ("critical,CA:TRUE", "DNS:a.example,IP:192.0.2.1", ...).
bool AddExtension(X509* cert, X509V3_CTX* ctx, int nid,
                  const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// SafeForConfig refuses characters that would change the meaning of an
// OpenSSL config string (so a name cannot smuggle in another SAN entry).
bool SafeForConfig(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c == ',' || c == ':' || c == '\n' || c == '\r' || c == '\0') {
      return false;
    }
  }
  return true;
}

bool SafeIp(const std::string& s) {
  // IPv6 literals contain ':'; only ',' and line breaks are dangerous there.
  if (s.empty()) return false;
  for (char c : s) {
    if (c == ',' || c == '\n' || c == '\r' || c == '\0') return false;
  }
  return true;
}

std::optional<KeyAndCert> MakeCertificate(const KeyAndCert* issuer,
                                          const CertOptions& options,
                                          bool self_signed,
                                          std::string* error) {
  const auto fail = [error](const std::string& why) {
    ERR_clear_error();
    *error = why;
    return std::nullopt;
  };

  SharedEvpPkey key = GenerateKey(options.key_type);
  if (!key) return fail("cannot generate a " +
                        std::string(PkiKeyTypeName(options.key_type)) + " key");

  UniqueX509 cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return fail("out of memory");
  }

  // RFC 5280 §4.1.2.2: a positive serial of at most 20 octets; 127 random bits.
  std::unique_ptr<BIGNUM, BnFree> serial(BN_new());
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY,
                         BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) ==
          nullptr) {
    return fail("cannot make a serial number");
  }

  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const int64_t not_before = options.not_before ? options.not_before : now - kHour;
  const int64_t not_after = options.not_after
                                ? options.not_after
                                : not_before + options.valid_days * kDay;
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()),
                    static_cast<time_t>(not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()),
                    static_cast<time_t>(not_after)) == nullptr) {
    return fail("cannot set the validity window");
  }

  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(
          subject, "CN", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(options.common_name.c_str()),
          -1, -1, 0) != 1) {
    return fail("cannot set the subject name");
  }
  X509* issuer_cert = self_signed ? cert.get() : issuer->cert.get();
  EVP_PKEY* issuer_key = self_signed ? key.get() : issuer->key.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert)) !=
          1 ||
      X509_set_pubkey(cert.get(), key.get()) != 1) {
    return fail("cannot set the issuer or public key");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer_cert, cert.get(), nullptr, nullptr, 0);
  const bool is_ca = options.is_ca || self_signed;
  std::string key_usage;
  if (is_ca) {
    key_usage = "critical,keyCertSign,cRLSign";
  } else if (options.digital_signature) {
    key_usage = "critical,digitalSignature";
  } else {
    key_usage = options.key_type == PkiKeyType::kRsa2048
                    ? "critical,keyEncipherment"
                    : "critical,keyAgreement";
  }
  if (!AddExtension(cert.get(), &ctx, NID_basic_constraints,
                    is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
      !AddExtension(cert.get(), &ctx, NID_key_usage, key_usage) ||
      !AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash")) {
    return fail("cannot add the basic extensions");
  }
  if (!self_signed &&
      !AddExtension(cert.get(), &ctx, NID_authority_key_identifier,
                    "keyid:always")) {
    return fail("cannot add the authority key identifier");
  }

  std::string san;
  for (const std::string& dns : options.dns_names) {
    if (!SafeForConfig(dns)) return fail("bad DNS name: " + dns);
    san += (san.empty() ? "DNS:" : ",DNS:") + dns;
  }
  for (const std::string& ip : options.ip_addresses) {
    if (!SafeIp(ip)) return fail("bad IP address: " + ip);
    san += (san.empty() ? "IP:" : ",IP:") + ip;
  }
  if (!san.empty() &&
      !AddExtension(cert.get(), &ctx, NID_subject_alt_name, san)) {
    return fail("cannot add the subject alternative names (" + san + ")");
  }

  if (!is_ca && (options.server_auth || options.client_auth)) {
    std::string eku;
    if (options.server_auth) eku = "serverAuth";
    if (options.client_auth) eku += eku.empty() ? "clientAuth" : ",clientAuth";
    if (!AddExtension(cert.get(), &ctx, NID_ext_key_usage, eku)) {
      return fail("cannot add the extended key usage");
    }
  }

  // Ed25519 signs without a separate digest; the others with SHA-256.
  const EVP_MD* md = EVP_PKEY_is_a(issuer_key, "ED25519") ? nullptr : EVP_sha256();
  if (X509_sign(cert.get(), issuer_key, md) <= 0) {
    return fail("cannot sign the certificate");
  }
  return KeyAndCert{std::move(key), ShareCert(cert.release())};
}

}  // namespace

std::string_view PkiKeyTypeName(PkiKeyType type) {
  switch (type) {
    case PkiKeyType::kEcdsaP256: return "ecdsa-p256";
    case PkiKeyType::kEd25519: return "ed25519";
    case PkiKeyType::kRsa2048: return "rsa-2048";
  }
  return "unknown";
}

SharedEvpPkey GenerateKey(PkiKeyType type) {
  EVP_PKEY* key = nullptr;
  switch (type) {
    case PkiKeyType::kEcdsaP256:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case PkiKeyType::kEd25519:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
    case PkiKeyType::kRsa2048:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
      break;
  }
  if (key == nullptr) ERR_clear_error();
  return ShareKey(key);
}

std::optional<KeyAndCert> CreateRootCa(const CertOptions& options,
                                       std::string* error) {
  CertOptions ca = options;
  ca.is_ca = true;
  return MakeCertificate(nullptr, ca, /*self_signed=*/true, error);
}

std::optional<KeyAndCert> IssueCertificate(const KeyAndCert& issuer,
                                           const CertOptions& options,
                                           std::string* error) {
  if (!issuer.key || !issuer.cert) {
    *error = "the issuer has no key or certificate";
    return std::nullopt;
  }
  return MakeCertificate(&issuer, options, /*self_signed=*/false, error);
}

std::vector<uint8_t> CertificateDer(const X509* cert) {
  unsigned char* der = nullptr;
  const int len = cert ? i2d_X509(cert, &der) : -1;
  if (len <= 0) {
    ERR_clear_error();
    return {};
  }
  std::vector<uint8_t> out(der, der + len);
  OPENSSL_free(der);
  return out;
}

namespace {
std::string BioContents(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}
}  // namespace

std::string CertificatePem(const X509* cert) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || cert == nullptr || PEM_write_bio_X509(bio.get(), cert) != 1) {
    ERR_clear_error();
    return {};
  }
  return BioContents(bio.get());
}

SecretBuffer PrivateKeyPem(const EVP_PKEY* key) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || key == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                               nullptr) != 1) {
    ERR_clear_error();
    return {};
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  if (len <= 0) return {};
  SecretBuffer pem(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(len)));
  // The memory BIO's copy is freed with the BIO; wipe it first.
  OPENSSL_cleanse(data, static_cast<size_t>(len));
  return pem;
}

bool WriteFile(const std::string& path, std::string_view contents,
               unsigned mode, std::string* error) {
  return WriteFile(path,
                   std::span<const uint8_t>(
                       reinterpret_cast<const uint8_t*>(contents.data()),
                       contents.size()),
                   mode, error);
}

bool WriteFile(const std::string& path, std::span<const uint8_t> contents,
               unsigned mode, std::string* error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                        static_cast<mode_t>(mode));
  if (fd < 0) {
    *error = "cannot create " + path + ": " + std::strerror(errno);
    return false;
  }
  // O_CREAT's mode does not apply to an existing file.
  bool ok = ::fchmod(fd, static_cast<mode_t>(mode)) == 0;
  size_t done = 0;
  while (ok && done < contents.size()) {
    const ssize_t n =
        ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    done += static_cast<size_t>(n);
  }
  const int saved = errno;
  if (::close(fd) != 0) ok = false;
  if (!ok) {
    *error = "cannot write " + path + ": " + std::strerror(saved ? saved : errno);
  }
  return ok;
}

bool WriteServerPki(const std::string& dir, const std::string& host,
                    PkiKeyType server_key, int valid_days, std::string* error) {
  CertOptions ca_options;
  ca_options.common_name = "tcpcrypt local CA";
  ca_options.valid_days = valid_days;
  std::optional<KeyAndCert> ca = CreateRootCa(ca_options, error);
  if (!ca) return false;

  CertOptions server;
  server.common_name = host;
  server.key_type = server_key;
  server.valid_days = valid_days;
  // An IP literal becomes an IP SAN, anything else a DNS SAN.
  ASN1_OCTET_STRING* as_ip = a2i_IPADDRESS(host.c_str());
  if (as_ip != nullptr) {
    ASN1_OCTET_STRING_free(as_ip);
    server.ip_addresses.push_back(host);
  } else {
    ERR_clear_error();
    server.dns_names.push_back(host);
  }
  std::optional<KeyAndCert> leaf = IssueCertificate(*ca, server, error);
  if (!leaf) return false;

  const std::string base = dir.empty() ? std::string(".") : dir;
  return WriteFile(base + "/ca.pem", CertificatePem(ca->cert.get()), 0644,
                   error) &&
         WriteFile(base + "/ca.key", PrivateKeyPem(ca->key.get()).span(), 0600,
                   error) &&
         WriteFile(base + "/server.pem", CertificatePem(leaf->cert.get()), 0644,
                   error) &&
         WriteFile(base + "/server.key", PrivateKeyPem(leaf->key.get()).span(),
                   0600, error);
}

}  // namespace tcpcrypt::auth::x509
