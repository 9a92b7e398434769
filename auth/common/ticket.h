// ticket.h: symmetric re-authentication (paper §4.1, last paragraph).
//
// After one authenticated session the server may hand the client a ticket:
// the client's identity, a fresh 32-byte secret K and an expiry, sealed
// (AES-256-GCM) under a rotating server key, plus K itself (sent inside the
// already protected, already authenticated connection). On a later
// connection the client presents the ticket with
//   client_proof = HMAC-SHA256(K, kTicketClientTag | binding.Encode())
// and the server answers with
//   server_proof = HMAC-SHA256(K, kTicketServerTag | binding.Encode()).
// No public-key operation and no password KDF on either side; a ticket is
// useless on another session ID because both proofs cover the binding.
#ifndef TCPCRYPT_AUTH_COMMON_TICKET_H_
#define TCPCRYPT_AUTH_COMMON_TICKET_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/common/mechanism.h"
#include "core_transport/engine/clock.h"
#include "core_transport/engine/rng.h"
#include "core_transport/engine/secret.h"

namespace tcpcrypt::auth {

inline constexpr std::string_view kTicketClientTag = "tcpcrypt ticket client v1";
inline constexpr std::string_view kTicketServerTag = "tcpcrypt ticket server v1";
inline constexpr size_t kTicketSecretLen = 32;
inline constexpr size_t kTicketProofLen = 32;
inline constexpr size_t kMaxTicketLen = 4096;

using TicketSecret = SecretArray<kTicketSecretLen>;

// TicketProof computes HMAC-SHA256(secret, tag | binding.Encode()).
std::array<uint8_t, kTicketProofLen> TicketProof(const TicketSecret& secret,
                                                 std::string_view tag,
                                                 const ChannelBinding& binding);

struct TicketPolicy {
  uint64_t lifetime_ms = 12ull * 3600 * 1000;
  uint64_t rotate_every_ms = 3600ull * 1000;  // a key seals for this long
};

// TicketIssuer is the server side: it seals and opens tickets. Keys rotate
// every rotate_every_ms; a key is kept (to open tickets) until every ticket
// it sealed has expired, then wiped. Thread-safe.
class TicketIssuer {
 public:
  TicketIssuer(TicketPolicy policy, Rng& rng,
               const Clock& clock = SteadyClock::Instance());

  struct Opened {
    PeerIdentity identity;
    std::string realm;
    TicketSecret secret;
  };

  // Issue seals a ticket for |who| in |realm|. Returns false on library
  // failure.
  [[nodiscard]] bool Issue(const PeerIdentity& who, std::string_view realm,
                           std::vector<uint8_t>* out_ticket,
                           TicketSecret* out_secret);
  // Open returns the ticket's contents if it was sealed by a key we still
  // hold, authenticates, and has not expired.
  std::optional<Opened> Open(ByteSpan ticket);

  uint64_t lifetime_ms() const { return policy_.lifetime_ms; }
  uint64_t issued() const { return issued_.load(); }
  uint64_t opened() const { return opened_.load(); }

 private:
  struct Key {
    uint32_t id = 0;
    uint64_t created_ms = 0;
    SecretArray<32> bytes;
  };
  Key* CurrentKeyLocked(uint64_t now);

  TicketPolicy policy_;
  Rng& rng_;
  const Clock& clock_;
  std::mutex mu_;
  std::deque<Key> keys_;  // newest at the back
  uint32_t next_id_ = 1;
  std::atomic<uint64_t> issued_{0};
  std::atomic<uint64_t> opened_{0};
};

// TicketKey names the server a client-side ticket belongs to: the server as
// the client dialed and verified it, and the user. A ticket is offered only
// on a connection whose key is equal in every field, so a ticket one server
// issued is never shown to another host, port, certificate name or realm.
struct TicketKey {
  std::string host;         // the host passed to Connect
  uint16_t port = 0;        // the port dialed
  std::string server_name;  // the name the server's certificate must match
  std::string realm;        // the realm password proofs are bound to
  std::string user;
  std::string Encode() const;  // unambiguous (length-prefixed) map key
};

// TicketStore is the client side: tickets by TicketKey, each with the
// server identities that were proven on the session that issued it (never
// empty: AuthClient stores a ticket only after the server proved itself).
// Thread-safe.
class TicketStore {
 public:
  struct Entry {
    std::vector<uint8_t> ticket;
    TicketSecret secret;
    uint64_t expires_ms = 0;
    // The client-side identities (x509, cmac, pake) of the issuing session.
    std::vector<PeerIdentity> proven;
  };
  explicit TicketStore(const Clock& clock = SteadyClock::Instance())
      : clock_(clock) {}

  void Put(const TicketKey& key, std::vector<uint8_t> ticket, const TicketSecret& secret,
           uint64_t lifetime_ms, std::vector<PeerIdentity> proven);
  // Get copies the entry for |key| into |out| if present and unexpired.
  bool Get(const TicketKey& key, Entry* out);
  void Forget(const TicketKey& key);
  size_t size() const;

 private:
  const Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace tcpcrypt::auth

#endif  // TCPCRYPT_AUTH_COMMON_TICKET_H_
