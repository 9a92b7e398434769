#include "core_transport/engine/key_schedule.h"

#include <cstring>

#include "core_transport/engine/hkdf.h"

namespace tcpcrypt {
namespace {

// CPRF(K, CONST | extra, L) with a one-byte constant.
bool Cprf(ByteSpan key, uint8_t constant, ByteSpan extra,
          std::span<uint8_t> out) {
  std::array<uint8_t, 1 + kMaxSessionNonceLen> info{};
  if (extra.size() > kMaxSessionNonceLen) return false;
  info[0] = constant;
  if (!extra.empty()) std::memcpy(info.data() + 1, extra.data(), extra.size());
  return HkdfExpand(key, ByteSpan(info.data(), 1 + extra.size()), out);
}

}  // namespace

// RFC 8548 §3.3: PRK = Extract(N_A, eno_transcript | Init1 | Init2 | ES).
bool ComputeSs0(ByteSpan n_a, ByteSpan transcript, ByteSpan init1,
                ByteSpan init2, ByteSpan es, SessionSecret* out_ss0) {
  SecretBuffer ikm(transcript.size() + init1.size() + init2.size() + es.size());
  Writer w(ikm.span());
  w.Bytes(transcript);
  w.Bytes(init1);
  w.Bytes(init2);
  w.Bytes(es);
  if (!w.ok()) return false;
  SecretArray<kSha256Len> prk;
  if (!HkdfExtract(n_a, ikm.span(), &prk)) return false;
  // ss[0] = PRK (K_LEN = 32 = HashLen).
  out_ss0->CopyFrom(prk.span());
  return true;
}

// RFC 8548 §3.3: ss[i] = CPRF(ss[i-1], CONST_NEXTK, K_LEN).
bool NextSessionSecret(const SessionSecret& ss, SessionSecret* out_next) {
  SessionSecret next;
  if (!Cprf(ss.span(), kConstNextK, {}, next.span())) return false;
  *out_next = std::move(next);
  return true;
}

// RFC 8548 §3.3: mk[0] = CPRF(ss[i], CONST_REKEY | sn[i], K_LEN).
bool FirstMasterKey(const SessionSecret& ss, ByteSpan sn, MasterKey* out_mk0) {
  MasterKey mk;
  if (!Cprf(ss.span(), kConstRekey, sn, mk.span())) return false;
  *out_mk0 = std::move(mk);
  return true;
}

// RFC 8548 §3.3: mk[j] = CPRF(mk[j-1], CONST_REKEY, K_LEN).
bool NextMasterKey(const MasterKey& mk, MasterKey* out_next) {
  MasterKey next;
  if (!Cprf(mk.span(), kConstRekey, {}, next.span())) return false;
  *out_next = std::move(next);
  return true;
}

// RFC 8548 §3.3: k_ab[j] = CPRF(mk[j], CONST_KEY_A, ae_key_len +
// ae_nonce_len); k_ba[j] likewise with CONST_KEY_B.
bool DeriveTrafficKey(const MasterKey& mk, bool kab, Cipher cipher,
                      TrafficKey* out) {
  const size_t key_len = AeadKeyLen(cipher);
  if (key_len == 0 || key_len + kAeadNonceLen > kMaxTrafficKeyLen) return false;
  out->key_len = key_len;
  return Cprf(mk.span(), kab ? kConstKeyA : kConstKeyB, {},
              std::span<uint8_t>(out->bytes.data(), key_len + kAeadNonceLen));
}

// RFC 8548 §3.4: session_id[i] = TEP-byte | CPRF(ss[i], CONST_SESSID |
// sn[i], K_LEN).
bool DeriveSessionId(const SessionSecret& ss, ByteSpan sn, uint8_t tep_byte,
                     std::array<uint8_t, kSessionIdLen>* out) {
  (*out)[0] = tep_byte;
  return Cprf(ss.span(), kConstSessId, sn,
              std::span<uint8_t>(out->data() + 1, kKLen));
}

// RFC 8548 §3.5: resume[i] = CPRF(ss[i], CONST_RESUME, 18).
bool DeriveResumeId(const SessionSecret& ss,
                    std::array<uint8_t, kResumeIdLen>* out) {
  return Cprf(ss.span(), kConstResume, {}, *out);
}

}  // namespace tcpcrypt
