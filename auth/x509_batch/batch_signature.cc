#include "auth/x509_batch/batch_signature.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include <cstring>

#include "auth/x509_batch/ossl_ptr.h"

namespace tcpcrypt::auth::x509 {
namespace {

// draft §3.1: "A string that consists of octet 32 (0x20) repeated 64 times".
constexpr size_t kPadPrefixLen = 64;
constexpr uint8_t kPadByte = 0x20;

constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 8192;

// SetUpContext applies the algorithm's parameters to a sign/verify context.
bool SetUpContext(EVP_PKEY_CTX* pctx, KeyAlgorithm alg) {
  switch (alg) {
    case KeyAlgorithm::kEcdsaP256:
    case KeyAlgorithm::kEd25519:
      return true;
    case KeyAlgorithm::kRsa:
      // RFC 8446 §4.2.3: RSASSA-PSS, MGF1 with the same hash, salt length
      // equal to the digest length.
      return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) ==
                 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", nullptr) == 1;
  }
  return false;
}

// Ed25519 signs the message itself (no pre-hash); the others use SHA-256.
const char* DigestName(KeyAlgorithm alg) {
  switch (alg) {
    case KeyAlgorithm::kEcdsaP256:
    case KeyAlgorithm::kRsa:
      return "SHA256";
    case KeyAlgorithm::kEd25519:
      return nullptr;
  }
  return nullptr;
}

}  // namespace

std::optional<KeyAlgorithm> KeyAlgorithmOf(const EVP_PKEY* key) {
  if (key == nullptr) return std::nullopt;
  if (EVP_PKEY_is_a(key, "ED25519")) return KeyAlgorithm::kEd25519;
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1) {
      ERR_clear_error();
      return std::nullopt;
    }
    if (std::strcmp(group, "prime256v1") == 0 ||
        std::strcmp(group, "P-256") == 0) {
      return KeyAlgorithm::kEcdsaP256;
    }
    return std::nullopt;
  }
  // "RSA" is rsaEncryption only; "RSA-PSS" keys are a different type.
  if (EVP_PKEY_is_a(key, "RSA") && !EVP_PKEY_is_a(key, "RSA-PSS")) {
    const int bits = EVP_PKEY_get_bits(key);
    if (bits >= kMinRsaBits && bits <= kMaxRsaBits) return KeyAlgorithm::kRsa;
  }
  return std::nullopt;
}

std::string_view KeyAlgorithmName(KeyAlgorithm alg) {
  switch (alg) {
    case KeyAlgorithm::kEcdsaP256: return "ecdsa-p256";
    case KeyAlgorithm::kEd25519: return "ed25519";
    case KeyAlgorithm::kRsa: return "rsa";
  }
  return "unknown";
}

std::optional<SignatureScheme> SignatureSchemeFromWire(uint32_t value) {
  for (SignatureScheme s :
       {SignatureScheme::kEcdsaSecp256r1Sha256, SignatureScheme::kEd25519,
        SignatureScheme::kRsaPssRsaeSha256,
        SignatureScheme::kEcdsaSecp256r1Sha256Batch,
        SignatureScheme::kEd25519Batch,
        SignatureScheme::kRsaPssRsaeSha256Batch}) {
    if (static_cast<uint32_t>(s) == value) return s;
  }
  return std::nullopt;
}

std::string_view SignatureSchemeName(SignatureScheme scheme) {
  switch (scheme) {
    case SignatureScheme::kEcdsaSecp256r1Sha256:
      return "ecdsa_secp256r1_sha256";
    case SignatureScheme::kEd25519: return "ed25519";
    case SignatureScheme::kRsaPssRsaeSha256: return "rsa_pss_rsae_sha256";
    case SignatureScheme::kEcdsaSecp256r1Sha256Batch:
      return "ecdsa_secp256r1_sha256_batch";
    case SignatureScheme::kEd25519Batch: return "ed25519_batch";
    case SignatureScheme::kRsaPssRsaeSha256Batch:
      return "rsa_pss_rsae_sha256_batch";
  }
  return "unknown";
}

bool IsBatchScheme(SignatureScheme scheme) {
  switch (scheme) {
    case SignatureScheme::kEcdsaSecp256r1Sha256:
    case SignatureScheme::kEd25519:
    case SignatureScheme::kRsaPssRsaeSha256:
      return false;
    case SignatureScheme::kEcdsaSecp256r1Sha256Batch:
    case SignatureScheme::kEd25519Batch:
    case SignatureScheme::kRsaPssRsaeSha256Batch:
      return true;
  }
  return false;
}

SignatureScheme BatchSchemeFor(KeyAlgorithm alg) {
  switch (alg) {
    case KeyAlgorithm::kEcdsaP256:
      return SignatureScheme::kEcdsaSecp256r1Sha256Batch;
    case KeyAlgorithm::kEd25519: return SignatureScheme::kEd25519Batch;
    case KeyAlgorithm::kRsa: return SignatureScheme::kRsaPssRsaeSha256Batch;
  }
  return SignatureScheme::kEcdsaSecp256r1Sha256Batch;
}

SignatureScheme BaseSchemeFor(KeyAlgorithm alg) {
  switch (alg) {
    case KeyAlgorithm::kEcdsaP256: return SignatureScheme::kEcdsaSecp256r1Sha256;
    case KeyAlgorithm::kEd25519: return SignatureScheme::kEd25519;
    case KeyAlgorithm::kRsa: return SignatureScheme::kRsaPssRsaeSha256;
  }
  return SignatureScheme::kEcdsaSecp256r1Sha256;
}

KeyAlgorithm KeyAlgorithmForScheme(SignatureScheme scheme) {
  switch (scheme) {
    case SignatureScheme::kEcdsaSecp256r1Sha256:
    case SignatureScheme::kEcdsaSecp256r1Sha256Batch:
      return KeyAlgorithm::kEcdsaP256;
    case SignatureScheme::kEd25519:
    case SignatureScheme::kEd25519Batch:
      return KeyAlgorithm::kEd25519;
    case SignatureScheme::kRsaPssRsaeSha256:
    case SignatureScheme::kRsaPssRsaeSha256Batch:
      return KeyAlgorithm::kRsa;
  }
  return KeyAlgorithm::kEcdsaP256;
}

MerkleHash MerkleHashForScheme(SignatureScheme scheme) {
  // draft §3: ed25519_batch "with SHA-512 as the hash function"; the ECDSA
  // P-256 and RSA-PSS-SHA-256 batch schemes use SHA-256.
  return KeyAlgorithmForScheme(scheme) == KeyAlgorithm::kEd25519
             ? MerkleHash::kSha512
             : MerkleHash::kSha256;
}

std::vector<uint8_t> BatchSignedContent(SignatureScheme batch_scheme,
                                        uint32_t batch_size, ByteSpan root) {
  const auto code = static_cast<uint16_t>(batch_scheme);
  std::vector<uint8_t> out;
  out.reserve(kPadPrefixLen + kBatchContextString.size() + 1 + 2 + 4 +
              root.size());
  // draft §3.1: "A string that consists of octet 32 (0x20) repeated 64
  // times", the context string, "A single 0 byte which serves as the
  // separator", the batch code point as a big-endian 16-bit integer.
  out.resize(kPadPrefixLen, kPadByte);
  for (char c : kBatchContextString) out.push_back(static_cast<uint8_t>(c));
  out.push_back(0x00);
  out.push_back(static_cast<uint8_t>(code >> 8));
  out.push_back(static_cast<uint8_t>(code));
  // tcpcrypt addition: the batch size, big-endian 32-bit.
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<uint8_t>(batch_size >> shift));
  }
  // "The value at the root of the tree".
  for (uint8_t b : root) out.push_back(b);
  return out;
}

std::vector<uint8_t> ClientSignedContent(ByteSpan encoded_binding) {
  std::vector<uint8_t> out(kClientSignatureLabel.size() +
                           encoded_binding.size());
  std::memcpy(out.data(), kClientSignatureLabel.data(),
              kClientSignatureLabel.size());
  if (!encoded_binding.empty()) {
    std::memcpy(out.data() + kClientSignatureLabel.size(),
                encoded_binding.data(), encoded_binding.size());
  }
  return out;
}

bool SignWithKey(EVP_PKEY* key, KeyAlgorithm alg, ByteSpan msg,
                 std::vector<uint8_t>* out_sig) {
  if (KeyAlgorithmOf(key) != alg) return false;
  UniqueEvpMdCtx ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by |ctx|
  size_t len = 0;
  if (ctx == nullptr ||
      EVP_DigestSignInit_ex(ctx.get(), &pctx, DigestName(alg), nullptr,
                            nullptr, key, nullptr) != 1 ||
      !SetUpContext(pctx, alg) ||
      EVP_DigestSign(ctx.get(), nullptr, &len, msg.data(), msg.size()) != 1) {
    ERR_clear_error();
    return false;
  }
  std::vector<uint8_t> sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, msg.data(), msg.size()) !=
      1) {
    ERR_clear_error();
    return false;
  }
  sig.resize(len);
  *out_sig = std::move(sig);
  return true;
}

bool VerifyWithKey(EVP_PKEY* key, KeyAlgorithm alg, ByteSpan msg,
                   ByteSpan sig) {
  if (KeyAlgorithmOf(key) != alg || sig.empty()) return false;
  UniqueEvpMdCtx ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by |ctx|
  const bool ok =
      ctx != nullptr &&
      EVP_DigestVerifyInit_ex(ctx.get(), &pctx, DigestName(alg), nullptr,
                              nullptr, key, nullptr) == 1 &&
      SetUpContext(pctx, alg) &&
      EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), msg.data(),
                       msg.size()) == 1;
  if (!ok) ERR_clear_error();
  return ok;
}

}  // namespace tcpcrypt::auth::x509
