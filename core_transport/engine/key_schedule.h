// key_schedule.h: tcpcrypt's key schedule (RFC 8548 §3.3-3.5), each step
// a named function so it can be read beside the RFC.
//
//   PRK        = Extract(N_A, eno_transcript | Init1 | Init2 | ES)
//   ss[0]      = PRK
//   ss[i]      = CPRF(ss[i-1], CONST_NEXTK, K_LEN)
//   mk[0]      = CPRF(ss[i], CONST_REKEY | sn[i], K_LEN)
//   mk[j]      = CPRF(mk[j-1], CONST_REKEY, K_LEN)
//   k_ab[j]    = CPRF(mk[j], CONST_KEY_A, ae_key_len + ae_nonce_len)
//   k_ba[j]    = CPRF(mk[j], CONST_KEY_B, ae_key_len + ae_nonce_len)
//   session_id = TEP-byte | CPRF(ss[i], CONST_SESSID | sn[i], K_LEN)
//   resume[i]  = CPRF(ss[i], CONST_RESUME, 18)
//
// CPRF is HKDF-Expand-SHA256. All functions return false only when the
// crypto library fails.
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_KEY_SCHEDULE_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_KEY_SCHEDULE_H_

#include <array>
#include <cstdint>

#include "core_transport/engine/bytes.h"
#include "core_transport/engine/resumption_cache.h"
#include "core_transport/engine/secret.h"
#include "core_transport/engine/types.h"

namespace tcpcrypt {

// RFC 8548 §4.3 Table 1.
inline constexpr uint8_t kConstNextK = 0x01;
inline constexpr uint8_t kConstSessId = 0x02;
inline constexpr uint8_t kConstRekey = 0x03;
inline constexpr uint8_t kConstKeyA = 0x04;
inline constexpr uint8_t kConstKeyB = 0x05;
inline constexpr uint8_t kConstResume = 0x06;

// Largest traffic key: ae_key_len (32) + ae_nonce_len (12).
inline constexpr size_t kMaxTrafficKeyLen = 32 + kAeadNonceLen;
// sn[i] = nonce_a | nonce_b, each at most 8 bytes.
inline constexpr size_t kMaxSessionNonceLen = 2 * kMaxResumeNonceLen;

using SessionSecret = SecretArray<kKLen>;
using MasterKey = SecretArray<kKLen>;

// TrafficKey is K (ae_key_len bytes) followed by NR (12 bytes).
struct TrafficKey {
  SecretArray<kMaxTrafficKeyLen> bytes;
  size_t key_len = 0;
  ByteSpan key() const { return {bytes.data(), key_len}; }
  ByteSpan nonce_randomizer() const {
    return {bytes.data() + key_len, kAeadNonceLen};
  }
};

[[nodiscard]] bool ComputeSs0(ByteSpan n_a, ByteSpan transcript, ByteSpan init1,
                              ByteSpan init2, ByteSpan es,
                              SessionSecret* out_ss0);
[[nodiscard]] bool NextSessionSecret(const SessionSecret& ss,
                                     SessionSecret* out_next);
[[nodiscard]] bool FirstMasterKey(const SessionSecret& ss, ByteSpan sn,
                                  MasterKey* out_mk0);
[[nodiscard]] bool NextMasterKey(const MasterKey& mk, MasterKey* out_next);
// kab selects k_ab[j] (true) or k_ba[j] (false).
[[nodiscard]] bool DeriveTrafficKey(const MasterKey& mk, bool kab,
                                    Cipher cipher, TrafficKey* out);
[[nodiscard]] bool DeriveSessionId(const SessionSecret& ss, ByteSpan sn,
                                   uint8_t tep_byte,
                                   std::array<uint8_t, kSessionIdLen>* out);
[[nodiscard]] bool DeriveResumeId(const SessionSecret& ss,
                                  std::array<uint8_t, kResumeIdLen>* out);

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_KEY_SCHEDULE_H_
