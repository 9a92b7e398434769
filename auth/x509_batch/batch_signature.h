// batch_signature.h: signature schemes, the exact bytes that are signed, and
// one-shot sign/verify through EVP_DigestSign / EVP_DigestVerify.
//
// Root signature (draft-ietf-tls-batch-signing-00 §3.1, last list), with the
// context string that the draft sets to "TLS batch signature" replaced by
// tcpcrypt's own, and one field added (marked *):
//
//   0x20 x 64                                 the draft's padding prefix
//   "tcpcrypt x509 batch signature v1"        context string
//   0x00                                      separator
//   uint16 scheme                             the BATCH code point, big-endian
// * uint32 batch_size                         n, big-endian
//   root                                      Hash.length bytes
//
// * The draft does not sign n: its verifier needs no n. tcpcrypt reports the
//   batch size to the application (PeerIdentity attribute "batch_size") and
//   checks the audit path length against it, so n is signed too; otherwise a
//   relay could rewrite it undetected within the same power of two.
//
// Client signature (mutual X.509; no batching, one per connection):
//
//   "tcpcrypt x509 client signature v1" || binding.Encode()
//
// Both start differently from each other and from every TLS 1.3 signed
// content (RFC 8446 §4.4.3 starts with 64 spaces and "TLS 1.3, "), and from
// the draft's TLS batch content, so a key used for both never signs a message
// meaningful in the other protocol.
//
// Algorithms (all with EVP_DigestSign, so OpenSSL does the hashing):
//   ECDSA P-256 with SHA-256, DER-encoded signature (TLS ecdsa_secp256r1_sha256)
//   Ed25519 (pure, RFC 8032)
//   RSA (rsaEncryption keys, 2048..8192 bits): RSASSA-PSS with SHA-256,
//     MGF1-SHA-256 and a 32-byte salt (TLS rsa_pss_rsae_sha256; the draft's
//     rsa_pss_rsae_sha256_batch). PKCS#1 v1.5 is not used.
#ifndef TCPCRYPT_AUTH_X509_BATCH_BATCH_SIGNATURE_H_
#define TCPCRYPT_AUTH_X509_BATCH_BATCH_SIGNATURE_H_

#include <openssl/evp.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "auth/x509_batch/merkle_tree.h"

namespace tcpcrypt::auth::x509 {

enum class KeyAlgorithm : uint8_t {
  kEcdsaP256,
  kEd25519,
  kRsa,
};

// KeyAlgorithmOf classifies a (public or private) key: EC on P-256, Ed25519,
// or rsaEncryption RSA with 2048 to 8192 bits. Anything else (other curves,
// RSA-PSS-restricted keys, short RSA, DSA, ...) is nullopt.
std::optional<KeyAlgorithm> KeyAlgorithmOf(const EVP_PKEY* key);
std::string_view KeyAlgorithmName(KeyAlgorithm alg);  // "ecdsa-p256", ...

// SignatureScheme values are TLS SignatureScheme code points.
enum class SignatureScheme : uint16_t {
  // RFC 8446 §4.2.3 base schemes: unbatched client signatures.
  kEcdsaSecp256r1Sha256 = 0x0403,
  kEd25519 = 0x0807,
  kRsaPssRsaeSha256 = 0x0804,
  // draft §3 batch schemes. The draft leaves them TBD1, TBD4 and TBD7;
  // tcpcrypt uses 0xFE00 + n from the private-use range (RFC 8446 §4.2.3:
  // 0xFE00..0xFFFF).
  kEcdsaSecp256r1Sha256Batch = 0xFE01,
  kEd25519Batch = 0xFE04,
  kRsaPssRsaeSha256Batch = 0xFE07,
};

// SignatureSchemeFromWire maps a wire value onto a known scheme.
std::optional<SignatureScheme> SignatureSchemeFromWire(uint32_t value);
std::string_view SignatureSchemeName(SignatureScheme scheme);
bool IsBatchScheme(SignatureScheme scheme);
SignatureScheme BatchSchemeFor(KeyAlgorithm alg);
SignatureScheme BaseSchemeFor(KeyAlgorithm alg);
KeyAlgorithm KeyAlgorithmForScheme(SignatureScheme scheme);
// MerkleHashForScheme: draft §3, the batch scheme's hash function
// (SHA-256 for ECDSA P-256 and RSA-PSS, SHA-512 for Ed25519).
MerkleHash MerkleHashForScheme(SignatureScheme scheme);

inline constexpr std::string_view kBatchContextString =
    "tcpcrypt x509 batch signature v1";
inline constexpr std::string_view kClientSignatureLabel =
    "tcpcrypt x509 client signature v1";

// BatchSignedContent returns the root signature's input (layout above).
std::vector<uint8_t> BatchSignedContent(SignatureScheme batch_scheme,
                                        uint32_t batch_size, ByteSpan root);
// ClientSignedContent returns kClientSignatureLabel || encoded_binding.
std::vector<uint8_t> ClientSignedContent(ByteSpan encoded_binding);

// SignWithKey signs |msg| with |key| under |alg|'s algorithm (header
// comment). False, leaving |*out_sig| unchanged, if the key does not fit the
// algorithm or OpenSSL fails. Safe to call from any thread for distinct
// EVP_PKEY objects and, for the same key, concurrently (OpenSSL 3 keys are
// read-only once built).
[[nodiscard]] bool SignWithKey(EVP_PKEY* key, KeyAlgorithm alg, ByteSpan msg,
                               std::vector<uint8_t>* out_sig);
// VerifyWithKey reports whether |sig| is a valid signature of |msg| by
// |key| under |alg|. Never throws; clears the OpenSSL error queue it fills.
[[nodiscard]] bool VerifyWithKey(EVP_PKEY* key, KeyAlgorithm alg, ByteSpan msg,
                                 ByteSpan sig);

}  // namespace tcpcrypt::auth::x509

#endif  // TCPCRYPT_AUTH_X509_BATCH_BATCH_SIGNATURE_H_
