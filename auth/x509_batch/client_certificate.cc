#include "auth/x509_batch/client_certificate.h"

#include <string>

#include "auth/x509_batch/batch_proof.h"
#include "auth/x509_batch/batch_signature.h"
#include "auth/x509_batch/x509.pb.h"

namespace tcpcrypt::auth::x509 {
namespace {

ByteSpan AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

bool EncodeClientCertificate(EVP_PKEY* key,
                             const std::vector<std::vector<uint8_t>>& chain_der,
                             const ChannelBinding& binding,
                             std::vector<uint8_t>* out, std::string* error) {
  const std::optional<KeyAlgorithm> alg = KeyAlgorithmOf(key);
  if (!alg) {
    *error = "unsupported client key";
    return false;
  }
  std::vector<uint8_t> signature;
  if (!SignWithKey(key, *alg, ClientSignedContent(binding.Encode()),
                   &signature)) {
    *error = "signing with the client key failed";
    return false;
  }
  ClientCertificate message;
  for (const auto& der : chain_der) {
    message.add_certificate_chain(der.data(), der.size());
  }
  message.set_signature_scheme(static_cast<uint32_t>(BaseSchemeFor(*alg)));
  message.set_signature(signature.data(), signature.size());
  std::vector<uint8_t> bytes(message.ByteSizeLong());
  if (!message.SerializeToArray(bytes.data(), static_cast<int>(bytes.size()))) {
    *error = "cannot serialize ClientCertificate";
    return false;
  }
  *out = std::move(bytes);
  return true;
}

CheckResult VerifyClientCertificate(ByteSpan payload,
                                    const ChannelBinding& binding,
                                    X509_STORE* client_ca,
                                    std::optional<int64_t> at_unix,
                                    PeerIdentity* out) {
  if (payload.size() > kMaxClientCertificateSize) {
    return CheckResult::Fail(AuthError::kMalformed,
                             "ClientCertificate is larger than " +
                                 std::to_string(kMaxClientCertificateSize) +
                                 " bytes");
  }
  ClientCertificate message;
  if (!message.ParseFromArray(payload.data(),
                              static_cast<int>(payload.size()))) {
    return CheckResult::Fail(AuthError::kMalformed,
                             "ClientCertificate does not parse");
  }
  const std::optional<SignatureScheme> scheme =
      SignatureSchemeFromWire(message.signature_scheme());
  if (!scheme || IsBatchScheme(*scheme)) {
    return CheckResult::Fail(
        AuthError::kMalformed,
        "ClientCertificate names an unknown signature scheme " +
            std::to_string(message.signature_scheme()));
  }
  if (message.signature().empty() ||
      message.signature().size() > kMaxSignatureSize) {
    return CheckResult::Fail(AuthError::kMalformed,
                             "client signature is empty or too large");
  }

  VerifiedChain chain;
  std::vector<ByteSpan> chain_der;
  chain_der.reserve(static_cast<size_t>(message.certificate_chain_size()));
  for (const std::string& der : message.certificate_chain()) {
    chain_der.push_back(AsBytes(der));
  }
  CheckResult checked = VerifyChain(client_ca, chain_der, ChainPurpose::kClient,
                                    {}, at_unix, &chain);
  if (!checked.ok()) return checked;

  EVP_PKEY* leaf_key = X509_get0_pubkey(chain.leaf.get());
  const std::optional<KeyAlgorithm> key_alg = KeyAlgorithmOf(leaf_key);
  if (!key_alg || *key_alg != KeyAlgorithmForScheme(*scheme)) {
    return CheckResult::Fail(AuthError::kBadProof,
                             "signature scheme does not match the certificate key");
  }
  if (!VerifyWithKey(leaf_key, *key_alg, ClientSignedContent(binding.Encode()),
                     AsBytes(message.signature()))) {
    return CheckResult::Fail(AuthError::kBadProof,
                             "client signature does not verify");
  }

  PeerIdentity identity;
  identity.mechanism = Mechanism::kX509Batch;
  identity.name = chain.common_name.empty() ? chain.subject : chain.common_name;
  identity.attributes["subject"] = chain.subject;
  identity.attributes["issuer"] = chain.issuer;
  *out = std::move(identity);
  return CheckResult::Ok();
}

}  // namespace tcpcrypt::auth::x509
