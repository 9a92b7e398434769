// rng.h: injected randomness. The engine never calls a global RNG itself.
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_RNG_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_RNG_H_

#include <cstdint>
#include <span>

namespace tcpcrypt {

// Rng fills buffers with random bytes. Implementations must be safe to call
// from the thread that owns the engine using them.
class Rng {
 public:
  virtual ~Rng() = default;
  virtual void Fill(std::span<uint8_t> out) = 0;
};

// SystemRng draws from libsodium's randombytes_buf (the OS CSPRNG). Thread-safe.
class SystemRng final : public Rng {
 public:
  void Fill(std::span<uint8_t> out) override;
  static SystemRng& Instance();
};

// DeterministicRng is for tests only: a ChaCha20 stream keyed by a seed, so
// two engines in one process replay the same handshake every run.
class DeterministicRng final : public Rng {
 public:
  explicit DeterministicRng(uint64_t seed);
  void Fill(std::span<uint8_t> out) override;

 private:
  uint8_t key_[32];
  uint64_t counter_ = 0;
};

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_RNG_H_
