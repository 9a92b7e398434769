// client_certificate.h: the ClientCertificate message (x509.proto),
// client -> server, for mutual X.509.
//
// The client signs "tcpcrypt x509 client signature v1" || binding.Encode()
// once with its own key (no batching: a client has one connection to sign);
// the server checks the chain against its client CA store and the signature
// against the leaf's key.
#ifndef TCPCRYPT_AUTH_X509_BATCH_CLIENT_CERTIFICATE_H_
#define TCPCRYPT_AUTH_X509_BATCH_CLIENT_CERTIFICATE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "auth/common/binding.h"
#include "auth/common/mechanism.h"
#include "auth/x509_batch/chain_verify.h"
#include "auth/x509_batch/ossl_ptr.h"

namespace tcpcrypt::auth::x509 {

inline constexpr size_t kMaxClientCertificateSize =
    kMaxChainCertificates * (kMaxCertificateSize + 8) + 4096;

// EncodeClientCertificate signs |binding| with |key| and serializes the
// message with |chain_der| (leaf first; the leaf must hold |key|'s public
// half). False with |*error| set if the key is unsupported or signing fails.
[[nodiscard]] bool EncodeClientCertificate(
    EVP_PKEY* key, const std::vector<std::vector<uint8_t>>& chain_der,
    const ChannelBinding& binding, std::vector<uint8_t>* out,
    std::string* error);

// VerifyClientCertificate checks |payload| for the connection |binding|
// against |client_ca| at |at_unix| (nullopt: now):
//   kMalformed: oversized, does not parse, unknown or batch scheme, empty or
//               oversized signature, chain bounds.
//   kCertificate: the chain (ChainPurpose::kClient: clientAuth EKU if any).
//   kBadProof: "signature scheme does not match the certificate key",
//              "client signature does not verify".
// On success |*out| is {kX509Batch, the leaf's CN (its subject if it has no
// CN), {"subject", "issuer"}}; on failure it is unchanged.
CheckResult VerifyClientCertificate(ByteSpan payload,
                                    const ChannelBinding& binding,
                                    X509_STORE* client_ca,
                                    std::optional<int64_t> at_unix,
                                    PeerIdentity* out);

}  // namespace tcpcrypt::auth::x509

#endif  // TCPCRYPT_AUTH_X509_BATCH_CLIENT_CERTIFICATE_H_
