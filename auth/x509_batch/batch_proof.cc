#include "auth/x509_batch/batch_proof.h"

#include <openssl/crypto.h>

#include <string>

#include "auth/x509_batch/batch_signature.h"
#include "auth/x509_batch/merkle_tree.h"
#include "auth/x509_batch/x509.pb.h"

namespace tcpcrypt::auth::x509 {
namespace {

ByteSpan AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

CheckResult Malformed(std::string why) {
  return CheckResult::Fail(AuthError::kMalformed, std::move(why));
}

}  // namespace

bool EncodeBatchProof(const std::vector<std::vector<uint8_t>>& chain_der,
                      const BatchSignResult& result,
                      bool client_certificate_requested,
                      std::vector<uint8_t>* out) {
  if (!result.ok) return false;
  BatchProof proof;
  for (const auto& der : chain_der) {
    proof.add_certificate_chain(der.data(), der.size());
  }
  proof.set_signature_scheme(static_cast<uint32_t>(result.scheme));
  proof.set_root_signature(result.root_signature.data(),
                           result.root_signature.size());
  proof.set_leaf_index(result.index);
  for (const auto& node : result.path) {
    proof.add_audit_path(node.data(), node.size());
  }
  proof.set_blinder(result.blinder.data(), result.blinder.size());
  proof.set_batch_size(result.batch_size);
  proof.set_root(result.root.data(), result.root.size());
  proof.set_client_certificate_requested(client_certificate_requested);
  std::vector<uint8_t> bytes(proof.ByteSizeLong());
  if (!proof.SerializeToArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return false;
  }
  *out = std::move(bytes);
  return true;
}

CheckResult VerifyBatchProof(ByteSpan payload, const ChannelBinding& binding,
                             X509_STORE* trust, std::string_view host,
                             std::optional<int64_t> at_unix, ServerProof* out) {
  // 1. Structure, cheapest first.
  if (payload.size() > kMaxBatchProofSize) {
    return Malformed("BatchProof is larger than " +
                     std::to_string(kMaxBatchProofSize) + " bytes");
  }
  BatchProof proof;
  if (!proof.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return Malformed("BatchProof does not parse");
  }
  const std::optional<SignatureScheme> scheme =
      SignatureSchemeFromWire(proof.signature_scheme());
  if (!scheme || !IsBatchScheme(*scheme)) {
    return Malformed("BatchProof names an unknown batch signature scheme " +
                     std::to_string(proof.signature_scheme()));
  }
  const MerkleHash hash = MerkleHashForScheme(*scheme);
  const size_t hl = MerkleHashLen(hash);
  const uint32_t n = proof.batch_size();
  if (n < 1 || n > kMaxBatchSize) {
    return Malformed("batch size " + std::to_string(n) +
                     " is outside 1..2^20");
  }
  // draft §3.2 step 2 bounds the index; here it must also lie in the batch.
  if (proof.leaf_index() >= n) {
    return Malformed("leaf index " + std::to_string(proof.leaf_index()) +
                     " is outside the batch of " + std::to_string(n));
  }
  if (static_cast<size_t>(proof.audit_path_size()) > kMaxProofAuditPath) {
    return Malformed("audit path has more than 32 nodes");
  }
  if (static_cast<size_t>(proof.audit_path_size()) !=
      MerkleAuditPathLength(n)) {
    return Malformed("audit path length " +
                     std::to_string(proof.audit_path_size()) +
                     " does not match the batch size " + std::to_string(n));
  }
  for (const std::string& node : proof.audit_path()) {
    if (node.size() != hl) return Malformed("audit path node has the wrong size");
  }
  if (proof.blinder().size() != hl) return Malformed("blinder has the wrong size");
  if (proof.root().size() != hl) return Malformed("root has the wrong size");
  if (proof.root_signature().empty() ||
      proof.root_signature().size() > kMaxSignatureSize) {
    return Malformed("root signature is empty or too large");
  }
  if (proof.certificate_chain().empty()) {
    return Malformed("certificate chain is empty");
  }

  // 2. The certificate chain, the validity time and the host.
  VerifiedChain chain;
  std::vector<ByteSpan> chain_der;
  chain_der.reserve(static_cast<size_t>(proof.certificate_chain_size()));
  for (const std::string& der : proof.certificate_chain()) {
    chain_der.push_back(AsBytes(der));
  }
  CheckResult checked =
      VerifyChain(trust, chain_der, ChainPurpose::kServer, host, at_unix, &chain);
  if (!checked.ok()) return checked;

  // 3. The scheme must be the one the certificate's key makes.
  EVP_PKEY* leaf_key = X509_get0_pubkey(chain.leaf.get());
  const std::optional<KeyAlgorithm> key_alg = KeyAlgorithmOf(leaf_key);
  if (!key_alg || *key_alg != KeyAlgorithmForScheme(*scheme)) {
    return CheckResult::Fail(AuthError::kBadProof,
                             "signature scheme does not match the certificate key");
  }

  // 4. The root signature (draft §3.2 steps 6-7, over the signed root).
  const std::vector<uint8_t> content =
      BatchSignedContent(*scheme, n, AsBytes(proof.root()));
  if (!VerifyWithKey(leaf_key, *key_alg, content,
                     AsBytes(proof.root_signature()))) {
    return CheckResult::Fail(AuthError::kBadProof,
                             "batch signature does not verify");
  }

  // 5. Our own leaf must lead to that root (draft §3.2 steps 2-5).
  const std::vector<uint8_t> leaf = binding.Encode();
  std::vector<ByteSpan> path;
  path.reserve(static_cast<size_t>(proof.audit_path_size()));
  for (const std::string& node : proof.audit_path()) path.push_back(AsBytes(node));
  if (!VerifyMerklePath(hash, leaf, AsBytes(proof.blinder()),
                        proof.leaf_index(), path, n, AsBytes(proof.root()))) {
    return CheckResult::Fail(AuthError::kBadProof,
                             "audit path does not lead to the signed root");
  }

  ServerProof result;
  result.identity.mechanism = Mechanism::kX509Batch;
  result.identity.name = std::string(host);
  result.identity.attributes["subject"] = chain.subject;
  result.identity.attributes["issuer"] = chain.issuer;
  result.identity.attributes["batch_size"] = std::to_string(n);
  result.client_certificate_requested = proof.client_certificate_requested();
  *out = std::move(result);
  return CheckResult::Ok();
}

}  // namespace tcpcrypt::auth::x509
