// x509_batch.h: batch-signed X.509 authentication (paper §4.1 and §5.3;
// ARCHITECTURE decision 5), the mechanism Mechanism::kX509Batch.
//
//   server                                         client
//   Start(): enqueue binding.Encode() with the
//            BatchSigner; Continue, no payload
//   ... signer thread signs the batch, calls Context::wake ...
//   Poll():  BatchProof ------------------------->  OnPayload(): verify
//            Done (or Continue when it wants a      chain, host, time, root
//            client certificate)                    signature, audit path;
//                                                   Done
//            <------------------ ClientCertificate  (only if requested)
//   OnPayload(): verify chain + signature; Done
//
// The server learns nothing about the client unless require_client_cert is
// set: its peer() is then the client certificate's identity, and otherwise
// nullopt. The client's peer() is the server: name = the host it expected
// (Context::realm), attributes "subject", "issuer", "batch_size".
//
// The sides are sans-I/O state machines; the only thread is the
// BatchSigner's. Each side is single-use: after kDone or kFailed every call
// fails (a failure is sticky and repeats its error).
#ifndef TCPCRYPT_AUTH_X509_BATCH_X509_BATCH_H_
#define TCPCRYPT_AUTH_X509_BATCH_X509_BATCH_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/common/mechanism.h"
#include "auth/x509_batch/batch_signer.h"
#include "auth/x509_batch/ossl_ptr.h"

namespace tcpcrypt::auth::x509 {

struct ServerConfig {
  // The signer for the server's key (one per key, shared by all
  // connections). Required.
  std::shared_ptr<BatchSigner> signer;
  // The server's certificate chain as DER, leaf first (1..10 certificates,
  // each at most 16 KiB). The leaf's public key must be the signer's.
  std::vector<std::vector<uint8_t>> chain_der;
  // Mutual X.509: ask every client for a ClientCertificate and verify it
  // against |client_ca| (required when this is set).
  bool require_client_cert = false;
  SharedX509Store client_ca;
  // The time client certificates are checked at, in Unix seconds; nullopt
  // means now. For tests.
  std::optional<int64_t> verification_time;
};

struct ClientConfig {
  // Trust anchors for server certificates. Required.
  SharedX509Store trust;
  // Optional client certificate for servers that ask for one: the private
  // key and its chain (DER, leaf first). Without them a client refuses a
  // server that requires a certificate.
  SharedEvpPkey client_key;
  std::vector<std::vector<uint8_t>> client_chain_der;
  // The time server certificates are checked at, in Unix seconds; nullopt
  // means now. For tests.
  std::optional<int64_t> verification_time;
};

// CheckServerConfig / CheckClientConfig report whether a configuration is
// usable, with the reason in |*error| if not ("server certificate does not
// match the signing key", ...). The factories run them once; sides made from
// a bad configuration fail Start() with kInternal and that reason.
[[nodiscard]] bool CheckServerConfig(const ServerConfig& config,
                                     std::string* error);
[[nodiscard]] bool CheckClientConfig(const ClientConfig& config,
                                     std::string* error);

// ServerFactory / ClientFactory make one side per connection. The Context's
// binding is what the proof endorses; for the client, Context::realm is the
// expected host name or IP literal (required), and Context::wake is unused.
// For the server, Context::wake is called (from the signer thread) once the
// batch signature is ready; it is never called after the side is destroyed,
// and it must not destroy the side itself.
MechanismFactory ServerFactory(ServerConfig config);
MechanismFactory ClientFactory(ClientConfig config);

}  // namespace tcpcrypt::auth::x509

#endif  // TCPCRYPT_AUTH_X509_BATCH_X509_BATCH_H_
