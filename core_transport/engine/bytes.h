// bytes.h: the one bounds-checked reader and writer for every wire format.
//
// In the spirit of BoringSSL's CBS/CBB: a Reader never reads past its span and
// reports failure instead; a Writer never writes past its span. Neither
// allocates. All integers on the tcpcrypt wire are big-endian.
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_BYTES_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace tcpcrypt {

using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

// Reader consumes a borrowed span from the front. Every Read* returns false,
// and leaves the reader unchanged, when too few bytes remain.
class Reader {
 public:
  explicit Reader(ByteSpan data) : data_(data) {}

  size_t remaining() const { return data_.size(); }
  bool empty() const { return data_.empty(); }
  ByteSpan rest() const { return data_; }

  [[nodiscard]] bool ReadU8(uint8_t* out) {
    if (data_.empty()) return false;
    *out = data_[0];
    data_ = data_.subspan(1);
    return true;
  }
  [[nodiscard]] bool ReadU16(uint16_t* out) {
    if (data_.size() < 2) return false;
    *out = static_cast<uint16_t>((data_[0] << 8) | data_[1]);
    data_ = data_.subspan(2);
    return true;
  }
  [[nodiscard]] bool ReadU32(uint32_t* out) {
    if (data_.size() < 4) return false;
    *out = (uint32_t{data_[0]} << 24) | (uint32_t{data_[1]} << 16) |
           (uint32_t{data_[2]} << 8) | uint32_t{data_[3]};
    data_ = data_.subspan(4);
    return true;
  }
  // ReadBytes sets |*out| to the next |n| bytes (borrowed, not copied).
  [[nodiscard]] bool ReadBytes(size_t n, ByteSpan* out) {
    if (data_.size() < n) return false;
    *out = data_.first(n);
    data_ = data_.subspan(n);
    return true;
  }
  [[nodiscard]] bool Skip(size_t n) {
    if (data_.size() < n) return false;
    data_ = data_.subspan(n);
    return true;
  }

 private:
  ByteSpan data_;
};

// Writer fills a borrowed span from the front. A failed Write* sets a sticky
// error flag and writes nothing; check ok() once at the end.
class Writer {
 public:
  explicit Writer(MutableByteSpan buf) : buf_(buf) {}

  bool ok() const { return ok_; }
  size_t written() const { return pos_; }
  ByteSpan data() const { return ByteSpan(buf_.data(), pos_); }

  void U8(uint8_t v) {
    if (!Reserve(1)) return;
    buf_[pos_++] = v;
  }
  void U16(uint16_t v) {
    if (!Reserve(2)) return;
    buf_[pos_++] = static_cast<uint8_t>(v >> 8);
    buf_[pos_++] = static_cast<uint8_t>(v);
  }
  void U32(uint32_t v) {
    if (!Reserve(4)) return;
    for (int shift = 24; shift >= 0; shift -= 8) {
      buf_[pos_++] = static_cast<uint8_t>(v >> shift);
    }
  }
  void U64(uint64_t v) {
    if (!Reserve(8)) return;
    for (int shift = 56; shift >= 0; shift -= 8) {
      buf_[pos_++] = static_cast<uint8_t>(v >> shift);
    }
  }
  void Bytes(ByteSpan b) {
    if (!Reserve(b.size())) return;
    if (!b.empty()) std::memcpy(buf_.data() + pos_, b.data(), b.size());
    pos_ += b.size();
  }

 private:
  bool Reserve(size_t n) {
    if (!ok_ || buf_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }

  MutableByteSpan buf_;
  size_t pos_ = 0;
  bool ok_ = true;
};

inline void StoreBe16(uint8_t* out, uint16_t v) {
  out[0] = static_cast<uint8_t>(v >> 8);
  out[1] = static_cast<uint8_t>(v);
}

inline uint16_t LoadBe16(const uint8_t* in) {
  return static_cast<uint16_t>((in[0] << 8) | in[1]);
}

inline uint32_t LoadBe32(const uint8_t* in) {
  return (uint32_t{in[0]} << 24) | (uint32_t{in[1]} << 16) |
         (uint32_t{in[2]} << 8) | uint32_t{in[3]};
}

// HexLower returns |bytes| as lowercase hex, two digits a byte (session
// IDs in messages and the API). Not for secrets: the string is not wiped.
inline std::string HexLower(ByteSpan bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0x0f]);
  }
  return out;
}

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_BYTES_H_
