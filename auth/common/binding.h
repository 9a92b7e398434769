// binding.h: the value every authenticator endorses.
//
// Over tcpcrypt it is the 33-byte session ID (RFC 8548 §3.4); over the TLS
// 1.3 fallback it is the RFC 9266 tls-exporter value. Proofs never cover the
// raw value alone: they cover Encode(), which names the kind, so a proof for
// one kind of channel can never be replayed on the other.
#ifndef TCPCRYPT_AUTH_COMMON_BINDING_H_
#define TCPCRYPT_AUTH_COMMON_BINDING_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace tcpcrypt::auth {

struct ChannelBinding {
  enum class Kind : uint8_t {
    kTcpcryptSessionId = 1,  // RFC 8548 session ID, 33 bytes
    kTlsExporter = 2,        // RFC 9266 tls-exporter, 32 bytes
  };

  Kind kind = Kind::kTcpcryptSessionId;
  std::vector<uint8_t> value;

  static ChannelBinding SessionId(std::span<const uint8_t> sid) {
    return {Kind::kTcpcryptSessionId, {sid.begin(), sid.end()}};
  }
  static ChannelBinding TlsExporter(std::span<const uint8_t> exporter) {
    return {Kind::kTlsExporter, {exporter.begin(), exporter.end()}};
  }

  // Encode is what proofs cover:
  //   "tcpcrypt-auth-binding-v1" | kind (1) | len (1) | value
  std::vector<uint8_t> Encode() const {
    static constexpr std::string_view kLabel = "tcpcrypt-auth-binding-v1";
    std::vector<uint8_t> out(kLabel.begin(), kLabel.end());
    out.push_back(static_cast<uint8_t>(kind));
    out.push_back(static_cast<uint8_t>(value.size()));
    out.insert(out.end(), value.begin(), value.end());
    return out;
  }

  std::string_view kind_name() const {
    return kind == Kind::kTcpcryptSessionId ? "tcpcrypt-session-id"
                                            : "tls-exporter";
  }
};

}  // namespace tcpcrypt::auth

#endif  // TCPCRYPT_AUTH_COMMON_BINDING_H_
