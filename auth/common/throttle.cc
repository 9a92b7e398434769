#include "auth/common/throttle.h"

#include <arpa/inet.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <list>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core_transport/engine/rng.h"

namespace tcpcrypt::auth {

// --- ThrottleAttempt -------------------------------------------------------

bool ThrottleAttempt::Begin(std::shared_ptr<Throttle> throttle, std::string_view user,
                            std::string_view source) {
  if (throttle == nullptr || throttle_ != nullptr) return false;
  ThrottleCharge charge;
  if (!throttle->Begin(user, source, &charge)) return false;
  throttle_ = std::move(throttle);
  charge_ = std::move(charge);
  return true;
}

void ThrottleAttempt::Succeeded() {
  if (throttle_ == nullptr) return;
  throttle_->Succeeded(charge_);
  throttle_.reset();
}

// --- limits and source keys -------------------------------------------------

bool CheckThrottleLimits(const ThrottleLimits& l, std::string* out_error) {
  auto fail = [out_error](const char* why) {
    if (out_error != nullptr) *out_error = why;
    return false;
  };
  if (l.max_failures_per_user < 1 || l.max_failures_per_user > kMaxThrottleFailures ||
      l.max_failures_per_source < 1 || l.max_failures_per_source > kMaxThrottleFailures) {
    return fail("throttle: failure limits must be between 1 and 1024");
  }
  if (l.window_ms < 1) return fail("throttle: window_ms must be at least 1");
  if (l.max_tracked_users < 1 || l.max_tracked_users > kMaxThrottleTracked ||
      l.max_tracked_sources < 1 || l.max_tracked_sources > kMaxThrottleTracked) {
    return fail("throttle: max_tracked_* must be between 1 and 4194304");
  }
  return true;
}

std::string AddressOfPeer(std::string_view host_port) {
  if (!host_port.empty() && host_port.front() == '[') {
    const size_t close = host_port.find(']');
    if (close != std::string_view::npos) return std::string(host_port.substr(1, close - 1));
    return std::string(host_port);
  }
  const size_t colon = host_port.find(':');
  if (colon != std::string_view::npos && host_port.find(':', colon + 1) == std::string_view::npos) {
    return std::string(host_port.substr(0, colon));
  }
  return std::string(host_port);  // a bare IPv6 address, or no port
}

std::string SourceKey(std::string_view address) {
  const std::string a(address);
  char text[INET6_ADDRSTRLEN + 4] = {};
  in_addr v4{};
  if (inet_pton(AF_INET, a.c_str(), &v4) == 1) {
    if (inet_ntop(AF_INET, &v4, text, sizeof(text)) != nullptr) return text;
    return a;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, a.c_str(), &v6) != 1) return a;
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(v6.s6_addr, kMapped, sizeof(kMapped)) == 0) {
    std::memcpy(&v4, v6.s6_addr + 12, 4);
    if (inet_ntop(AF_INET, &v4, text, sizeof(text)) != nullptr) return text;
    return a;
  }
  std::memset(v6.s6_addr + 8, 0, 8);  // the /64
  if (inet_ntop(AF_INET6, &v6, text, sizeof(text)) == nullptr) return a;
  return std::string(text) + "/64";
}

// --- the tables ---------------------------------------------------------------

// Table tracks the live charges of up to |capacity| keys. Each key is in
// exactly one "level" list, level = its number of charges when it was last
// charged or settled, most recent first (the eviction order of
// throttle.h). Not thread-safe: AttemptThrottle holds its mutex.
class AttemptThrottle::Table {
 public:
  Table(uint32_t max_charges, uint64_t window_ms, size_t capacity)
      : max_(max_charges), window_ms_(window_ms), capacity_(capacity), levels_(max_charges + 1) {
    entries_.reserve(std::min<size_t>(capacity, 4096));
  }

  size_t size() const { return entries_.size(); }

  // Allows reports whether |key| may be charged once more at |now|.
  bool Allows(const Key& key, uint64_t now) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return true;
    Prune(it->second, now);
    if (it->second.charges.empty()) {
      Erase(it);
      return true;
    }
    return it->second.charges.size() < max_;
  }

  // Charge records a charge at |now| (call after Allows returned true).
  void Charge(const Key& key, uint64_t now) {
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      if (entries_.size() >= capacity_) EvictOne(now);
      Entry e;
      e.level = 0;
      it = entries_.emplace(key, std::move(e)).first;
    }
    Entry& e = it->second;
    Prune(e, now);
    if (e.charges.size() >= max_) return;  // not reached: Allows said no
    e.charges.push_back(now);
    Relevel(it);
  }

  // Refund takes back one charge made at |at_ms|, if it is still live.
  void Refund(const Key& key, uint64_t at_ms, uint64_t now) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return;  // expired and forgotten, or evicted
    Entry& e = it->second;
    auto c = std::find(e.charges.begin(), e.charges.end(), at_ms);
    if (c != e.charges.end()) e.charges.erase(c);
    Prune(e, now);
    if (e.charges.empty()) {
      Erase(it);
      return;
    }
    Relevel(it);
  }

 private:
  struct KeyHash {
    size_t operator()(const Key& k) const {
      size_t h = 0;
      std::memcpy(&h, k.data(), sizeof(h));  // already a keyed hash
      return h;
    }
  };
  struct Entry {
    std::vector<uint64_t> charges;  // times, oldest first, all live after Prune
    uint32_t level = 0;             // 0: in no list yet
    std::list<Key>::iterator pos;
  };
  using Map = std::unordered_map<Key, Entry, KeyHash>;

  bool Live(uint64_t at, uint64_t now) const { return now - at < window_ms_; }

  void Prune(Entry& e, uint64_t now) {
    auto first_live = std::find_if(e.charges.begin(), e.charges.end(),
                                   [&](uint64_t at) { return Live(at, now); });
    e.charges.erase(e.charges.begin(), first_live);
  }

  // Relevel moves the entry to the front of the list of its charge count.
  void Relevel(Map::iterator it) {
    Entry& e = it->second;
    const uint32_t level =
        static_cast<uint32_t>(std::min<size_t>(e.charges.size(), max_));
    if (e.level == 0) {
      levels_[level].push_front(it->first);
      e.pos = levels_[level].begin();
    } else {
      levels_[level].splice(levels_[level].begin(), levels_[e.level], e.pos);
    }
    e.level = level;
  }

  void Erase(Map::iterator it) {
    if (it->second.level != 0) levels_[it->second.level].erase(it->second.pos);
    entries_.erase(it);
  }

  // EvictOne forgets one key (throttle.h: expired first, else the least
  // recently charged of those with the fewest charges).
  void EvictOne(uint64_t now) {
    for (uint32_t level = 1; level <= max_; ++level) {
      if (levels_[level].empty()) continue;
      auto it = entries_.find(levels_[level].back());
      if (it->second.charges.empty() || !Live(it->second.charges.back(), now)) {
        Erase(it);
        return;
      }
    }
    for (uint32_t level = 1; level <= max_; ++level) {
      if (levels_[level].empty()) continue;
      Erase(entries_.find(levels_[level].back()));
      return;
    }
  }

  const uint32_t max_;
  const uint64_t window_ms_;
  const size_t capacity_;
  Map entries_;
  std::vector<std::list<Key>> levels_;  // index: charge count, 1..max_
};

// --- AttemptThrottle ------------------------------------------------------------

namespace {

ThrottleLimits Clamped(ThrottleLimits l) {
  l.max_failures_per_user = std::clamp<uint32_t>(l.max_failures_per_user, 1, kMaxThrottleFailures);
  l.max_failures_per_source =
      std::clamp<uint32_t>(l.max_failures_per_source, 1, kMaxThrottleFailures);
  l.window_ms = std::max<uint64_t>(l.window_ms, 1);
  l.max_tracked_users = std::clamp<size_t>(l.max_tracked_users, 1, kMaxThrottleTracked);
  l.max_tracked_sources = std::clamp<size_t>(l.max_tracked_sources, 1, kMaxThrottleTracked);
  return l;
}

}  // namespace

AttemptThrottle::AttemptThrottle(ThrottleLimits limits, const Clock& clock)
    : limits_(Clamped(limits)),
      clock_(clock),
      users_(std::make_unique<Table>(limits_.max_failures_per_user, limits_.window_ms,
                                     limits_.max_tracked_users)),
      sources_(std::make_unique<Table>(limits_.max_failures_per_source, limits_.window_ms,
                                       limits_.max_tracked_sources)) {
  SystemRng::Instance().Fill(hash_key_.span());
}

AttemptThrottle::~AttemptThrottle() = default;

AttemptThrottle::Key AttemptThrottle::HashOf(std::string_view name) const {
  Key k{};
  crypto_generichash(k.data(), k.size(), reinterpret_cast<const unsigned char*>(name.data()),
                     name.size(), hash_key_.data(), hash_key_.kSize);
  return k;
}

bool AttemptThrottle::Begin(std::string_view user, std::string_view source,
                            ThrottleCharge* out_charge) {
  std::string source_key = SourceKey(source);
  const Key u = HashOf(user);
  const Key s = HashOf(source_key);
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t now = clock_.NowMs();
  // Both budgets are checked before either is charged.
  const bool user_ok = users_->Allows(u, now);
  const bool source_ok = sources_->Allows(s, now);
  if (!user_ok || !source_ok) {
    ++refused_;
    return false;
  }
  users_->Charge(u, now);
  sources_->Charge(s, now);
  ++admitted_;
  if (out_charge != nullptr) {
    out_charge->user = std::string(user);
    out_charge->source = std::move(source_key);
    out_charge->at_ms = now;
  }
  return true;
}

void AttemptThrottle::Succeeded(const ThrottleCharge& charge) {
  const Key u = HashOf(charge.user);
  const Key s = HashOf(charge.source);  // already a source key
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t now = clock_.NowMs();
  users_->Refund(u, charge.at_ms, now);
  sources_->Refund(s, charge.at_ms, now);
  ++succeeded_;
}

ThrottleStats AttemptThrottle::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  ThrottleStats st;
  st.admitted = admitted_;
  st.refused = refused_;
  st.succeeded = succeeded_;
  st.tracked_users = users_->size();
  st.tracked_sources = sources_->size();
  return st;
}

}  // namespace tcpcrypt::auth
