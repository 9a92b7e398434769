// decoy.h: stand-in parameters for users that do not exist.
//
// A server must answer "unknown user" exactly as it answers "wrong
// password" (same messages, same sizes, similar timing). For an unknown user
// the password authenticators send a decoy salt that is a keyed hash of the
// user name (stable across attempts, so probing twice reveals nothing) and
// the server's current KDF parameters, then fail the proof as they would
// for a wrong password.
#ifndef TCPCRYPT_AUTH_COMMON_DECOY_H_
#define TCPCRYPT_AUTH_COMMON_DECOY_H_

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "auth/common/mechanism.h"
#include "core_transport/engine/secret.h"

namespace tcpcrypt::auth {

class DecoySecret {
 public:
  // A fresh random key (decoys then change when the server restarts).
  DecoySecret();
  // A key from configuration, so decoys survive restarts (32 bytes).
  explicit DecoySecret(std::span<const uint8_t, 32> key);

  // Salt returns kPasswordSaltLen bytes: Bytes() under the label
  // "salt" | mechanism.
  std::vector<uint8_t> Salt(Mechanism mechanism, std::string_view user,
                            std::string_view realm) const;
  // Bytes fills |out| with T(1) | T(2) | ... where T(i) = HMAC-SHA256(key,
  // label | 0x00 | user | 0x00 | realm | i): decoy material (a fake
  // verifier) for |label|.
  void Bytes(std::string_view label, std::string_view user,
             std::string_view realm, std::span<uint8_t> out) const;

 private:
  SecretArray<32> key_;
};

}  // namespace tcpcrypt::auth

#endif  // TCPCRYPT_AUTH_COMMON_DECOY_H_
