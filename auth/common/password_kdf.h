// password_kdf.h: the memory-hard password KDF shared by the password
// authenticators (Argon2id through libsodium's crypto_pwhash).
//
// The input binds the password to the user and the realm (the server's
// name), length-prefixed as RFC 9383 §3.2 recommends:
//   len(pw) | pw | len(user) | user | len(realm) | realm
// with each len an 8-byte little-endian integer, so the same password for
// another user or another server gives an unrelated key.
#ifndef TCPCRYPT_AUTH_COMMON_PASSWORD_KDF_H_
#define TCPCRYPT_AUTH_COMMON_PASSWORD_KDF_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core_transport/engine/secret.h"

namespace tcpcrypt::auth {

inline constexpr size_t kPasswordSaltLen = 16;  // crypto_pwhash_SALTBYTES

struct KdfParams {
  uint32_t algorithm = 2;   // crypto_pwhash_ALG_ARGON2ID13
  uint64_t opslimit = 2;    // crypto_pwhash_OPSLIMIT_INTERACTIVE
  uint64_t memlimit = 64ull << 20;  // crypto_pwhash_MEMLIMIT_INTERACTIVE

  // Interactive: the library's interactive limits (the default).
  static KdfParams Interactive();
  // ForTests: the library's minimum limits; never for real passwords.
  static KdfParams ForTests();
  // Weaker reports whether these parameters are below |target| in either
  // limit (so a record made with them should be re-hashed).
  bool WeakerThan(const KdfParams& target) const {
    return opslimit < target.opslimit || memlimit < target.memlimit;
  }
  // Sane reports whether a peer-supplied set is within what we will
  // compute: at least the minimum, at most 1 GiB and 16 passes.
  bool Sane() const;
};

// KdfLimits is what a client will compute for a server: at least |floor| in
// both limits (a server naming cheaper parameters would receive a proof that
// is cheap to attack offline) and at most |max_memlimit| bytes and
// |max_opslimit| passes (a server naming more would make the client burn
// memory and time). The defaults are the SDK's: floor Interactive (64 MiB,
// 2 passes), ceiling 256 MiB and 4 passes (which admits Moderate).
struct KdfLimits {
  KdfParams floor = KdfParams::Interactive();
  uint64_t max_memlimit = 256ull << 20;
  uint64_t max_opslimit = 4;

  // ForTests admits the library minimum (records made with
  // KdfParams::ForTests()); never for real passwords.
  static KdfLimits ForTests();
  // Check reports whether a peer-supplied |p| is Sane() and within
  // [floor, ceiling]; if not, |out_why| (when non-null) names the numbers.
  bool Check(const KdfParams& p, std::string* out_why) const;
};

// DerivePasswordKey fills |out| (16 to 128 bytes) from the password, user
// and realm with |salt| (kPasswordSaltLen bytes) and |params|. Returns false
// if the parameters are not Sane(), the salt has the wrong size, or the KDF
// fails (out of memory).
[[nodiscard]] bool DerivePasswordKey(std::string_view password,
                                     std::string_view user,
                                     std::string_view realm,
                                     std::span<const uint8_t> salt,
                                     const KdfParams& params,
                                     std::span<uint8_t> out);

// PasswordKdfCount is the number of DerivePasswordKey calls made in this
// process (tests check that ticket re-authentication makes none).
uint64_t PasswordKdfCount();

}  // namespace tcpcrypt::auth

#endif  // TCPCRYPT_AUTH_COMMON_PASSWORD_KDF_H_
