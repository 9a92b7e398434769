// throttle.h: the limit on online password guessing.
//
// Every password attempt is charged as a failure when it begins, and only
// a completed, verified login takes its charge back:
//
//   hello -> plan with CMAC or SPAKE2+ -> Throttle::Begin(user, source)
//              refused: Outcome{ok = false} (a wrong password to the peer),
//                       local error kThrottled
//              admitted: one failure charged to the user AND the source
//   ... the mechanisms run ...
//   Outcome{ok = true} -> Throttle::Succeeded(charge): the charge is taken back
//   anything else (a wrong proof, a time-out, a peer that closes or stalls,
//   a server torn down mid-way) -> nothing: the charge stays
//
// So no failure path has to remember to count itself, and parallel
// attempts are charged before any of them has an outcome. ThrottleAttempt
// holds the charge for an AuthServer and is the only way to settle it.
#ifndef TCPCRYPT_AUTH_COMMON_THROTTLE_H_
#define TCPCRYPT_AUTH_COMMON_THROTTLE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core_transport/engine/clock.h"
#include "core_transport/engine/secret.h"

namespace tcpcrypt::auth {

// ThrottleCharge names one admitted attempt: what Begin charged, so that
// Succeeded takes back exactly that charge.
struct ThrottleCharge {
  std::string user;
  std::string source;
  uint64_t at_ms = 0;
};

// ThrottleStats are counters since the throttle was made, and its size now.
struct ThrottleStats {
  uint64_t admitted = 0;   // Begin calls that charged an attempt
  uint64_t refused = 0;    // Begin calls refused (kThrottled)
  uint64_t succeeded = 0;  // charges taken back by a verified login
  size_t tracked_users = 0;
  size_t tracked_sources = 0;
};

// Throttle is the hook AuthServer consults for plans that contain a
// password mechanism. Implementations are thread-safe.
class Throttle {
 public:
  virtual ~Throttle() = default;
  // Begin admits an attempt by |user| from |source| (a client address,
  // without the port) and charges it as one failure to both, or refuses it
  // (nothing charged) when either budget is spent. On true, |out_charge|
  // identifies the charge.
  [[nodiscard]] virtual bool Begin(std::string_view user, std::string_view source,
                                   ThrottleCharge* out_charge) = 0;
  // Succeeded takes back the charge of an attempt that completed and
  // verified. Call at most once per charge.
  virtual void Succeeded(const ThrottleCharge& charge) = 0;
  virtual ThrottleStats stats() const = 0;
};

// ThrottleAttempt holds one attempt's charge for its whole life. There is
// nothing to undo when it is destroyed: the charge was made in Begin and
// stays a failure unless Succeeded() was called. Move-only.
class ThrottleAttempt {
 public:
  ThrottleAttempt() = default;
  ThrottleAttempt(const ThrottleAttempt&) = delete;
  ThrottleAttempt& operator=(const ThrottleAttempt&) = delete;
  ThrottleAttempt(ThrottleAttempt&&) noexcept = default;
  ThrottleAttempt& operator=(ThrottleAttempt&&) noexcept = default;
  ~ThrottleAttempt() = default;

  // Begin asks |throttle| to admit the attempt (Throttle::Begin). Returns
  // false when it is refused; then this object stays empty. Call once.
  [[nodiscard]] bool Begin(std::shared_ptr<Throttle> throttle, std::string_view user,
                           std::string_view source);
  // Succeeded settles the attempt as a verified login. Call only when the
  // whole password plan completed; a no-op on an empty or settled object.
  void Succeeded();
  // Whether this object holds an unsettled charge.
  bool active() const { return throttle_ != nullptr; }

 private:
  std::shared_ptr<Throttle> throttle_;
  ThrottleCharge charge_;
};

// ThrottleLimits configures AttemptThrottle.
struct ThrottleLimits {
  // Unsettled attempts allowed in any window_ms (sliding), per user name
  // (known or not) and per source key (SourceKey below).
  uint32_t max_failures_per_user = 10;
  uint32_t max_failures_per_source = 30;
  uint64_t window_ms = 60000;
  // How many user names and source keys are tracked at most (each table
  // evicts as described at AttemptThrottle).
  size_t max_tracked_users = 65536;
  size_t max_tracked_sources = 65536;
};

// Upper bounds CheckThrottleLimits accepts.
inline constexpr uint32_t kMaxThrottleFailures = 1024;
inline constexpr size_t kMaxThrottleTracked = size_t{1} << 22;

// CheckThrottleLimits returns false (and says why) unless every limit is
// at least 1, the failure limits are at most kMaxThrottleFailures and the
// table sizes at most kMaxThrottleTracked.
bool CheckThrottleLimits(const ThrottleLimits& limits, std::string* out_error);

// AddressOfPeer returns the address part of "host:port" or "[v6]:port"
// (what the SDK's peer names look like); anything else unchanged.
std::string AddressOfPeer(std::string_view host_port);

// SourceKey is what a source is counted under: an IPv4 address as is, an
// IPv4-mapped IPv6 address as its IPv4 address, any other IPv6 address as
// its /64 ("2001:db8:1:2::/64": one host or LAN usually holds a whole
// /64), and anything that is not an address as the string itself (so all
// connections with an unknown source, "", share one budget).
std::string SourceKey(std::string_view address);

// AttemptThrottle admits at most max_failures_per_user unsettled attempts
// per user, and max_failures_per_source per source, in any window of
// window_ms (a sliding window: the time of each charge is kept, so the
// limit holds over every interval, not per calendar slot). A verified
// login takes back only its own charge (there is no reset: an attacker's
// attempts that run alongside a real login stay counted).
//
// Memory: each table holds at most max_tracked_* keys. A key is a 16-byte
// keyed BLAKE2b hash of the name (a random key per throttle, so no one can
// aim collisions at the hash table or at a victim), plus the times of its
// live charges: about 160 bytes per key plus 8 per charge slot (the slots
// grow by doubling, up to the limit). Measured with both tables full at
// the defaults (65,536 users at 10 charges, 65,536 sources at 30): 44 MB
// of heap; 21 MB when every key has a single charge.
//
// Eviction, when a new key must be tracked in a full table:
//   1. a key whose charges have all expired, if the oldest key of some
//      charge count is one (forgetting it changes nothing);
//   2. otherwise, among the keys with the fewest charges, the one least
//      recently charged.
// A key's charge count for eviction is the number it had when it was last
// charged or settled (it does not decay until then). So a user at its
// limit is pushed out only once every other tracked key has reached as
// many charges, the last of them after the user's own last charge: with
// the defaults at least 65,535 x 10 = 655,350 admitted attempts on other
// names, which the per-source limit spreads over thousands of addresses.
// Names sprayed once each push out keys with one charge first. Sources go
// the same way. The trade-off: when full, the throttle fails open for the
// newcomer, never closed (a new name is always tracked), so a flood of
// names cannot lock everyone out; the price is that (large) eviction cost.
//
// Thread-safe (one mutex); Begin and Succeeded take O(limit) time.
class AttemptThrottle final : public Throttle {
 public:
  // |limits| should pass CheckThrottleLimits; out-of-range values are
  // clamped. |clock| must outlive the throttle.
  explicit AttemptThrottle(ThrottleLimits limits,
                           const Clock& clock = SteadyClock::Instance());
  ~AttemptThrottle() override;

  bool Begin(std::string_view user, std::string_view source,
             ThrottleCharge* out_charge) override;
  void Succeeded(const ThrottleCharge& charge) override;
  ThrottleStats stats() const override;
  const ThrottleLimits& limits() const { return limits_; }

 private:
  class Table;
  using Key = std::array<uint8_t, 16>;
  Key HashOf(std::string_view name) const;

  const ThrottleLimits limits_;
  const Clock& clock_;
  SecretArray<32> hash_key_;
  mutable std::mutex mu_;
  std::unique_ptr<Table> users_;
  std::unique_ptr<Table> sources_;
  uint64_t admitted_ = 0;
  uint64_t refused_ = 0;
  uint64_t succeeded_ = 0;
};

}  // namespace tcpcrypt::auth

#endif  // TCPCRYPT_AUTH_COMMON_THROTTLE_H_
