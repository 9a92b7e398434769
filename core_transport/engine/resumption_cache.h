// resumption_cache.h: cached session secrets ss[i] for resumption.
//
// RFC 8548 §3.5. After a connection derives mk[0] from ss[i], it stores
// ss[i+1] here (unless told not to) and forgets ss[i]. An entry is taken out
// of the cache the moment it is offered or accepted, so a secret is never
// used for two connections, and the next offer uses the lowest unused i.
// Entries made by active opens are only offered again by active opens (looked
// up by the peer's name); entries made by passive opens are only accepted by
// passive opens (looked up by the identifier half the peer will send). That
// is the RFC's permitted "either passive or active opens, not both" rule.
//
// Thread-safe. Entries are wiped when taken, evicted, expired or flushed.
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_RESUMPTION_CACHE_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_RESUMPTION_CACHE_H_

#include <array>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "core_transport/engine/secret.h"
#include "core_transport/engine/types.h"

namespace tcpcrypt {

// RFC 8548 §3.5: resume[i] = CPRF(ss[i], CONST_RESUME, 18); each host sends
// one 9-byte half.
inline constexpr size_t kResumeIdLen = 18;
inline constexpr size_t kResumeHalfLen = 9;
inline constexpr size_t kMaxResumeNonceLen = 8;

// EnoRole is a host's TCP-ENO role (RFC 8547 §4.3).
enum class EnoRole : uint8_t { kA, kB };

// ResumptionTicket is one cached secret and what is needed to use it.
struct ResumptionTicket {
  SecretArray<kKLen> ss;      // ss[i]
  Tep tep = Tep::kCurve25519;
  // The AEAD of the original session; a resumed session has no Init
  // messages to negotiate one, so it keeps it (docs/PROTOCOL.md).
  Cipher cipher = Cipher::kAes128Gcm;
  EnoRole original_role = EnoRole::kA;  // this host's role when ss[0] was made
  uint64_t index = 0;             // i
  uint64_t expires_ms = 0;
  // resume[i]; a host sends the half of its original role (A: bytes 0..8,
  // B: bytes 9..17).
  std::array<uint8_t, kResumeIdLen> resume_id{};

  ResumptionTicket() = default;
  ResumptionTicket(ResumptionTicket&&) = default;
  ResumptionTicket& operator=(ResumptionTicket&&) = default;
};

struct ResumptionCachePolicy {
  size_t max_entries = 10000;
  uint64_t lifetime_ms = 24ull * 3600 * 1000;
};

class ResumptionCache {
 public:
  explicit ResumptionCache(ResumptionCachePolicy policy = {});

  // PutForPeer stores a ticket that this host will offer on its next active
  // open to |peer| (one per peer; a newer ticket replaces an older one).
  void PutForPeer(const std::string& peer, ResumptionTicket ticket);
  // TakeForPeer removes and returns the ticket for |peer|, if any and not
  // expired at |now_ms|.
  std::optional<ResumptionTicket> TakeForPeer(const std::string& peer,
                                              uint64_t now_ms);

  // PutForAccept stores a ticket that a passive open may accept when the
  // peer sends the other half of its identifier.
  void PutForAccept(ResumptionTicket ticket);
  // TakeForAccept removes and returns the ticket whose identifier half sent
  // by the peer (the half of the peer's original role) equals |peer_half|,
  // compared in constant time, if any and not expired.
  std::optional<ResumptionTicket> TakeForAccept(
      std::span<const uint8_t> peer_half, Tep tep, uint64_t now_ms);

  // Forget removes any entry (either kind) whose resume id is |resume_id|;
  // the RFC's "flush cache state that resulted from this connection".
  void Forget(const std::array<uint8_t, kResumeIdLen>& resume_id);
  // FlushPeer removes the ticket for |peer|; FlushAll empties the cache.
  void FlushPeer(const std::string& peer);
  void FlushAll();

  size_t size() const;
  // lifetime_ms is how long a new ticket stays usable.
  uint64_t lifetime_ms() const { return policy_.lifetime_ms; }

 private:
  // Accept-side entries are indexed by a keyed hash (SipHash, random key)
  // of the identifier half, so lookups leak nothing through timing about
  // the identifiers held; a hit is then confirmed in constant time.
  using Key = uint64_t;
  struct AcceptEntry {
    ResumptionTicket ticket;
    std::list<Key>::iterator order;
  };
  Key HashHalf(std::span<const uint8_t> half) const;
  void EraseAcceptLocked(std::map<Key, AcceptEntry>::iterator it);
  void EvictIfFullLocked();

  ResumptionCachePolicy policy_;
  std::array<uint8_t, 16> hash_key_{};
  mutable std::mutex mu_;
  std::map<std::string, ResumptionTicket> by_peer_;
  std::map<Key, AcceptEntry> by_half_;
  std::list<Key> accept_order_;  // oldest first, for eviction
};

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_RESUMPTION_CACHE_H_
