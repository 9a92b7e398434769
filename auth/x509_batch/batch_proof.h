// batch_proof.h: the BatchProof message (x509.proto), server -> client.
//
// EncodeBatchProof turns one BatchSigner result into the payload;
// VerifyBatchProof is the client side's whole check of it (the client
// mechanism side is a thin state machine around it, and the fuzzer drives it
// directly).
#ifndef TCPCRYPT_AUTH_X509_BATCH_BATCH_PROOF_H_
#define TCPCRYPT_AUTH_X509_BATCH_BATCH_PROOF_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "auth/common/binding.h"
#include "auth/common/mechanism.h"
#include "auth/x509_batch/batch_signer.h"
#include "auth/x509_batch/chain_verify.h"

namespace tcpcrypt::auth::x509 {

// Bounds on what a client accepts (the server never produces more).
inline constexpr size_t kMaxProofAuditPath = 32;
inline constexpr size_t kMaxSignatureSize = 1024;  // RSA-8192
// Chain + signature + path + blinder + root + framing, rounded up.
inline constexpr size_t kMaxBatchProofSize =
    kMaxChainCertificates * (kMaxCertificateSize + 8) + 8192;

// EncodeBatchProof serializes |result| (ok == true) with the server's
// |chain_der|. Returns false if |result| is not a success.
[[nodiscard]] bool EncodeBatchProof(
    const std::vector<std::vector<uint8_t>>& chain_der,
    const BatchSignResult& result, bool client_certificate_requested,
    std::vector<uint8_t>* out);

// ServerProof is what a verified BatchProof established.
struct ServerProof {
  PeerIdentity identity;  // kX509Batch, name = host, attributes subject,
                          // issuer, batch_size
  bool client_certificate_requested = false;
};

// VerifyBatchProof checks |payload| for the connection whose binding is
// |binding|, expecting a certificate for |host| that chains to |trust|, at
// |at_unix| (nullopt: now). In order:
//   1. kMalformed: larger than kMaxBatchProofSize, does not parse, unknown
//      or non-batch scheme, batch_size outside 1..2^20, leaf_index >=
//      batch_size, more than 32 path nodes, a path length other than
//      ceil(log2 batch_size), a node / blinder / root of the wrong size, an
//      empty or oversized root signature, chain bounds (chain_verify.h).
//   2. kCertificate: the chain (VerifyChain with ChainPurpose::kServer).
//   3. kBadProof "signature scheme does not match the certificate key".
//   4. kBadProof "batch signature does not verify": root_signature is not
//      the leaf key's signature of BatchSignedContent(scheme, n, root).
//   5. kBadProof "audit path does not lead to the signed root": the root
//      recomputed from binding.Encode(), blinder, index and path differs (a
//      proof made for another connection lands here).
// On success fills |*out| and returns Ok(); on failure |*out| is unchanged.
CheckResult VerifyBatchProof(ByteSpan payload, const ChannelBinding& binding,
                             X509_STORE* trust, std::string_view host,
                             std::optional<int64_t> at_unix, ServerProof* out);

}  // namespace tcpcrypt::auth::x509

#endif  // TCPCRYPT_AUTH_X509_BATCH_BATCH_PROOF_H_
