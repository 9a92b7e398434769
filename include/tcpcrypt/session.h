// session.h: one protected, possibly authenticated connection.
//
// Thread-safety: a Session is used by one thread at a time (in 0.1 a
// reader and a writer on two threads would race inside the transport).
// Different sessions are independent. Close() and the destructor must not
// race with other calls.
#ifndef TCPCRYPT_SESSION_H_
#define TCPCRYPT_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tcpcrypt/options.h"
#include "tcpcrypt/status.h"

namespace tcpcrypt {

// ToHex returns |bytes| as lowercase hex digits, two per byte ("" for none).
std::string ToHex(std::span<const uint8_t> bytes);

class Session {
 public:
  virtual ~Session() = default;

  // Read waits for data and copies up to out.size() bytes. Returns the count,
  // 0 at the peer's authenticated end of file. A stream that ends without
  // one (truncation) or fails integrity is DATA_LOSS, never a silent EOF.
  virtual StatusOr<size_t> Read(std::span<uint8_t> out) = 0;
  // Write sends all of |data|.
  virtual Status Write(std::span<const uint8_t> data) = 0;
  // Shutdown sends an authenticated end of file; reading goes on.
  virtual Status Shutdown() = 0;
  // Close releases the connection (also done by the destructor).
  virtual void Close() = 0;

  // What protects the session: tcpcrypt, TLS 1.3, or nothing (the prefer
  // policy against a plain peer).
  virtual Channel channel() const = 0;
  // The tcpcrypt session ID (33 bytes, RFC 8548 §3.4); FAILED_PRECONDITION
  // on TLS or plain sessions, which have none.
  virtual StatusOr<std::vector<uint8_t>> session_id() const = 0;
  // session_id_hex is session_id() as 66 lowercase hex digits (the form
  // the key log and `tcpcrypt` print), or "" on TLS or plain sessions.
  std::string session_id_hex() const;
  // The value authenticators endorsed: the session ID, or the RFC 9266
  // tls-exporter value (32 bytes) on TLS. Empty on plain sessions.
  virtual std::vector<uint8_t> channel_binding() const = 0;
  // The authenticated peer, if authentication ran; the last identity of a
  // combined plan.
  virtual std::optional<PeerIdentity> peer() const = 0;
  // Every identity established, in plan order.
  virtual std::vector<PeerIdentity> identities() const = 0;
  // The negotiated key exchange and AEAD names ("curve25519", "aes128gcm";
  // TLS: "TLS_AES_128_GCM_SHA256"); empty on plain sessions.
  virtual std::string key_exchange() const = 0;
  virtual std::string cipher() const = 0;
  // Whether the transport was resumed (no public-key operation).
  virtual bool resumed() const = 0;
  // Whether a ticket re-authenticated the session.
  virtual bool ticket_used() const = 0;
  // RFC 8547 §4.2: the peer's application-aware bit.
  virtual bool peer_application_aware() const = 0;
  virtual std::string peer_address() const = 0;
  virtual int fd() const = 0;
};

}  // namespace tcpcrypt

#endif  // TCPCRYPT_SESSION_H_
