// credentials.h: certificates and keys of the public options, from a path
// or from memory (internal to the SDK).
//
// Each item of ClientOptions / ServerOptions has a path field (ca_file, ...)
// and a memory field (ca_pem, ...): at most one may be set. Memory holds PEM
// or, for a single certificate or key, DER (auth/x509_batch/pem.h IsPem).
#ifndef TCPCRYPT_SDK_CREDENTIALS_H_
#define TCPCRYPT_SDK_CREDENTIALS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "auth/x509_batch/ossl_ptr.h"
#include "tcpcrypt/options.h"
#include "tcpcrypt/status.h"

namespace tcpcrypt::sdk {

// Source names one item: its two fields and their values.
struct Source {
  std::string_view path_field;  // "ClientOptions::ca_file"
  const std::string& path;
  std::string_view memory_field;  // "ClientOptions::ca_pem"
  const std::string& memory;
  bool set() const { return !path.empty() || !memory.empty(); }
};

Source CaSource(const ClientOptions& o);
Source ClientCertSource(const ClientOptions& o);
Source ClientKeySource(const ClientOptions& o);
Source CertSource(const ServerOptions& o);
Source KeySource(const ServerOptions& o);
Source ClientCaSource(const ServerOptions& o);

// CheckSources refuses, with INVALID_ARGUMENT naming both fields, an item
// given both as a path and in memory.
Status CheckSources(const ClientOptions& o);
Status CheckSources(const ServerOptions& o);

// Load* read one item (INVALID_ARGUMENT naming the field on failure).
Status LoadChain(const Source& s, std::vector<std::vector<uint8_t>>* out_chain_der);
StatusOr<auth::x509::SharedEvpPkey> LoadKey(const Source& s);
StatusOr<auth::x509::SharedX509Store> LoadTrust(const Source& s);

// WipeKeys wipes and clears the private keys held in memory by our own copy
// of the options, once they have been parsed.
void WipeKeys(ClientOptions* o);
void WipeKeys(ServerOptions* o);

// WipeKeysOnExit calls WipeKeys on every exit path of a Create.
template <typename Options>
class WipeKeysOnExit {
 public:
  explicit WipeKeysOnExit(Options* o) : o_(o) {}
  ~WipeKeysOnExit() { WipeKeys(o_); }
  WipeKeysOnExit(const WipeKeysOnExit&) = delete;
  WipeKeysOnExit& operator=(const WipeKeysOnExit&) = delete;

 private:
  Options* o_;
};

}  // namespace tcpcrypt::sdk

#endif  // TCPCRYPT_SDK_CREDENTIALS_H_
