// ephemeral_keys.h: a server's bounded reuse of its ephemeral key pair.
//
// RFC 8548 §3.3: Pub_B and its private key "MUST be refreshed frequently";
// §8: implementations that reuse them "MUST limit the lifetime of the private
// parameters as far as is practical". A key pair here is handed out at most
// |max_uses| times and for at most |max_age_ms| milliseconds, whichever comes
// first; then a new one is generated and the old one is dropped (and wiped
// once the last connection using it has derived its secret).
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_EPHEMERAL_KEYS_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_EPHEMERAL_KEYS_H_

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>

#include "core_transport/engine/clock.h"
#include "core_transport/engine/kex.h"
#include "core_transport/engine/rng.h"

namespace tcpcrypt {

struct EphemeralKeyPolicy {
  // 1 means a fresh key pair per connection (no reuse).
  uint32_t max_uses = 1;
  uint64_t max_age_ms = 0;
};

// EphemeralKeyCache is thread-safe; share one per server.
class EphemeralKeyCache {
 public:
  explicit EphemeralKeyCache(EphemeralKeyPolicy policy) : policy_(policy) {}

  // Get returns a key pair for |tep|, generating one with |rng| when the
  // current one is used up or too old. Returns nullptr on library failure.
  std::shared_ptr<const KexKeyPair> Get(Tep tep, Rng& rng, const Clock& clock);

  // generated counts key pairs generated so far (for tests and benchmarks).
  uint64_t generated() const;

 private:
  struct Slot {
    std::shared_ptr<const KexKeyPair> pair;
    uint32_t uses = 0;
    uint64_t born_ms = 0;
  };
  EphemeralKeyPolicy policy_;
  mutable std::mutex mu_;
  std::array<Slot, 3> slots_;  // one per supported TEP
  uint64_t generated_ = 0;
};

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_EPHEMERAL_KEYS_H_
