// secret.h: types for key material that wipe themselves.
//
// SecretArray<N> is a fixed-size secret on the stack or inside an object;
// SecretBuffer is a heap secret of run-time size. Both are zeroed with
// OPENSSL_cleanse on destruction and on Wipe(), are move-only, and never
// convert implicitly to anything printable. Compare them with Equal(), which
// is constant-time.
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_SECRET_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_SECRET_H_

#include <openssl/crypto.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>

namespace tcpcrypt {

template <size_t N>
class SecretArray {
 public:
  static constexpr size_t kSize = N;

  SecretArray() { bytes_.fill(0); }
  ~SecretArray() { Wipe(); }
  SecretArray(const SecretArray&) = delete;
  SecretArray& operator=(const SecretArray&) = delete;
  SecretArray(SecretArray&& other) noexcept {
    bytes_ = other.bytes_;
    other.Wipe();
  }
  SecretArray& operator=(SecretArray&& other) noexcept {
    if (this != &other) {
      bytes_ = other.bytes_;
      other.Wipe();
    }
    return *this;
  }

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  static constexpr size_t size() { return N; }
  std::span<uint8_t, N> span() { return std::span<uint8_t, N>(bytes_); }
  std::span<const uint8_t, N> span() const {
    return std::span<const uint8_t, N>(bytes_);
  }

  void Wipe() { OPENSSL_cleanse(bytes_.data(), N); }

  // CopyFrom copies exactly N bytes; |src| must have size N.
  void CopyFrom(std::span<const uint8_t> src) {
    for (size_t i = 0; i < N && i < src.size(); ++i) bytes_[i] = src[i];
  }

  // Equal compares in constant time.
  bool Equal(const SecretArray& other) const {
    return CRYPTO_memcmp(bytes_.data(), other.bytes_.data(), N) == 0;
  }

 private:
  std::array<uint8_t, N> bytes_;
};

// SecretBuffer holds |size| secret bytes on the heap (size fixed at creation).
class SecretBuffer {
 public:
  SecretBuffer() = default;
  explicit SecretBuffer(size_t size)
      : bytes_(size ? std::make_unique<uint8_t[]>(size) : nullptr),
        size_(size) {}
  SecretBuffer(std::span<const uint8_t> src) : SecretBuffer(src.size()) {
    for (size_t i = 0; i < size_; ++i) bytes_[i] = src[i];
  }
  ~SecretBuffer() { Wipe(); }
  SecretBuffer(const SecretBuffer&) = delete;
  SecretBuffer& operator=(const SecretBuffer&) = delete;
  SecretBuffer(SecretBuffer&& other) noexcept
      : bytes_(std::move(other.bytes_)), size_(std::exchange(other.size_, 0)) {}
  SecretBuffer& operator=(SecretBuffer&& other) noexcept {
    if (this != &other) {
      Wipe();
      bytes_ = std::move(other.bytes_);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }

  uint8_t* data() { return bytes_.get(); }
  const uint8_t* data() const { return bytes_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<uint8_t> span() { return {bytes_.get(), size_}; }
  std::span<const uint8_t> span() const { return {bytes_.get(), size_}; }

  void Wipe() {
    if (bytes_) OPENSSL_cleanse(bytes_.get(), size_);
  }

  bool Equal(const SecretBuffer& other) const {
    return size_ == other.size_ &&
           CRYPTO_memcmp(bytes_.get(), other.bytes_.get(), size_) == 0;
  }

 private:
  std::unique_ptr<uint8_t[]> bytes_;
  size_t size_ = 0;
};

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_SECRET_H_
