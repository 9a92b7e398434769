#include "core_transport/engine/resumption_cache.h"

#include <openssl/crypto.h>
#include <sodium.h>

#include <algorithm>

namespace tcpcrypt {
namespace {

// The half of resume[i] a host sends is chosen by its original role
// (RFC 8548 §3.5 Figures 2 and 3): A sends bytes 0..8, B bytes 9..17.
std::span<const uint8_t> HalfFor(const std::array<uint8_t, kResumeIdLen>& id,
                                 EnoRole role) {
  return std::span<const uint8_t>(id).subspan(
      role == EnoRole::kA ? 0 : kResumeHalfLen, kResumeHalfLen);
}

EnoRole Other(EnoRole r) { return r == EnoRole::kA ? EnoRole::kB : EnoRole::kA; }

}  // namespace

ResumptionCache::ResumptionCache(ResumptionCachePolicy policy)
    : policy_(policy) {
  if (sodium_init() < 0) __builtin_trap();
  randombytes_buf(hash_key_.data(), hash_key_.size());
}

ResumptionCache::Key ResumptionCache::HashHalf(
    std::span<const uint8_t> half) const {
  static_assert(crypto_shorthash_BYTES == sizeof(Key));
  uint8_t out[crypto_shorthash_BYTES];
  crypto_shorthash(out, half.data(), half.size(), hash_key_.data());
  Key k = 0;
  for (uint8_t b : out) k = (k << 8) | b;
  return k;
}

void ResumptionCache::PutForPeer(const std::string& peer,
                                 ResumptionTicket ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  if (by_peer_.size() >= policy_.max_entries && !by_peer_.contains(peer)) {
    by_peer_.erase(by_peer_.begin());
  }
  by_peer_.insert_or_assign(peer, std::move(ticket));
}

std::optional<ResumptionTicket> ResumptionCache::TakeForPeer(
    const std::string& peer, uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_peer_.find(peer);
  if (it == by_peer_.end()) return std::nullopt;
  ResumptionTicket t = std::move(it->second);
  by_peer_.erase(it);
  if (now_ms >= t.expires_ms) return std::nullopt;  // |t| wipes itself
  return t;
}

void ResumptionCache::PutForAccept(ResumptionTicket ticket) {
  // The peer will send the half of *its* original role.
  const Key key = HashHalf(HalfFor(ticket.resume_id, Other(ticket.original_role)));
  std::lock_guard<std::mutex> lock(mu_);
  if (by_half_.contains(key)) return;  // collision: keep the first
  EvictIfFullLocked();
  accept_order_.push_back(key);
  by_half_.emplace(key, AcceptEntry{std::move(ticket), std::prev(accept_order_.end())});
}

std::optional<ResumptionTicket> ResumptionCache::TakeForAccept(
    std::span<const uint8_t> peer_half, Tep tep, uint64_t now_ms) {
  if (peer_half.size() != kResumeHalfLen) return std::nullopt;
  const Key key = HashHalf(peer_half);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_half_.find(key);
  if (it == by_half_.end()) return std::nullopt;
  const ResumptionTicket& found = it->second.ticket;
  if (CRYPTO_memcmp(HalfFor(found.resume_id, Other(found.original_role)).data(),
                    peer_half.data(), kResumeHalfLen) != 0) {
    return std::nullopt;
  }
  // RFC 8548 §3.5: only if "the suboption's TEP matches the TEP used in the
  // previous session".
  if (found.tep != tep) return std::nullopt;
  ResumptionTicket t = std::move(it->second.ticket);
  EraseAcceptLocked(it);
  if (now_ms >= t.expires_ms) return std::nullopt;
  return t;
}

void ResumptionCache::Forget(const std::array<uint8_t, kResumeIdLen>& id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = by_peer_.begin(); it != by_peer_.end();) {
    if (CRYPTO_memcmp(it->second.resume_id.data(), id.data(), kResumeIdLen) == 0) {
      it = by_peer_.erase(it);
    } else {
      ++it;
    }
  }
  for (EnoRole r : {EnoRole::kA, EnoRole::kB}) {
    auto it = by_half_.find(HashHalf(HalfFor(id, r)));
    if (it != by_half_.end() &&
        CRYPTO_memcmp(it->second.ticket.resume_id.data(), id.data(),
                      kResumeIdLen) == 0) {
      EraseAcceptLocked(it);
    }
  }
}

void ResumptionCache::FlushPeer(const std::string& peer) {
  std::lock_guard<std::mutex> lock(mu_);
  by_peer_.erase(peer);
}

void ResumptionCache::FlushAll() {
  std::lock_guard<std::mutex> lock(mu_);
  by_peer_.clear();
  by_half_.clear();
  accept_order_.clear();
}

size_t ResumptionCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_peer_.size() + by_half_.size();
}

void ResumptionCache::EraseAcceptLocked(std::map<Key, AcceptEntry>::iterator it) {
  accept_order_.erase(it->second.order);
  by_half_.erase(it);
}

void ResumptionCache::EvictIfFullLocked() {
  while (by_half_.size() >= policy_.max_entries && !accept_order_.empty()) {
    auto it = by_half_.find(accept_order_.front());
    if (it == by_half_.end()) {
      accept_order_.pop_front();
      continue;
    }
    EraseAcceptLocked(it);
  }
}

}  // namespace tcpcrypt
