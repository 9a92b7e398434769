#include "core_transport/engine/rng.h"

#include <sodium.h>

#include <cstring>

namespace tcpcrypt {

void SystemRng::Fill(std::span<uint8_t> out) {
  // libsodium declares the buffer nonnull; an empty span may have none.
  if (out.empty()) return;
  randombytes_buf(out.data(), out.size());
}

SystemRng& SystemRng::Instance() {
  static SystemRng* rng = [] {
    if (sodium_init() < 0) __builtin_trap();
    return new SystemRng();
  }();
  return *rng;
}

DeterministicRng::DeterministicRng(uint64_t seed) {
  std::memset(key_, 0, sizeof(key_));
  for (int i = 0; i < 8; ++i) key_[i] = static_cast<uint8_t>(seed >> (8 * i));
}

void DeterministicRng::Fill(std::span<uint8_t> out) {
  uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};
  for (int i = 0; i < 8; ++i) nonce[i] = static_cast<uint8_t>(counter_ >> (8 * i));
  ++counter_;
  // libsodium declares the buffer nonnull; an empty span may have none.
  if (out.empty()) return;
  crypto_stream_chacha20_ietf(out.data(), out.size(), nonce, key_);
}

}  // namespace tcpcrypt
