#include "core_transport/engine/ephemeral_keys.h"

namespace tcpcrypt {
namespace {

size_t SlotIndex(Tep tep) {
  switch (tep) {
    case Tep::kP256: return 0;
    case Tep::kP521: return 1;
    case Tep::kCurve25519: return 2;
  }
  return 2;
}

}  // namespace

std::shared_ptr<const KexKeyPair> EphemeralKeyCache::Get(Tep tep, Rng& rng,
                                                         const Clock& clock) {
  const uint64_t now = clock.NowMs();
  std::lock_guard<std::mutex> lock(mu_);
  Slot& slot = slots_[SlotIndex(tep)];
  const bool expired =
      slot.pair == nullptr || slot.uses >= policy_.max_uses ||
      (policy_.max_age_ms != 0 && now - slot.born_ms >= policy_.max_age_ms);
  if (expired) {
    std::shared_ptr<const KexKeyPair> fresh = KexKeyPair::Generate(tep, rng);
    if (fresh == nullptr) return nullptr;
    slot.pair = std::move(fresh);
    slot.uses = 0;
    slot.born_ms = now;
    ++generated_;
  }
  ++slot.uses;
  return slot.pair;
}

uint64_t EphemeralKeyCache::generated() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generated_;
}

}  // namespace tcpcrypt
