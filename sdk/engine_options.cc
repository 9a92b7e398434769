#include "sdk/engine_options.h"

#include <algorithm>

namespace tcpcrypt::sdk {

Tep ToTep(KeyExchange k) {
  switch (k) {
    case KeyExchange::kCurve25519: return Tep::kCurve25519;
    case KeyExchange::kP256: return Tep::kP256;
    case KeyExchange::kP521: return Tep::kP521;
  }
  return Tep::kCurve25519;
}

Cipher ToCipher(Aead a) {
  switch (a) {
    case Aead::kAes128Gcm: return Cipher::kAes128Gcm;
    case Aead::kAes256Gcm: return Cipher::kAes256Gcm;
    case Aead::kChaCha20Poly1305: return Cipher::kChaCha20Poly1305;
  }
  return Cipher::kAes128Gcm;
}

Status CheckEngineOptions(const std::vector<KeyExchange>& kx, const std::vector<Aead>& aeads) {
  if (kx.empty()) return Status(StatusCode::kInvalidArgument, "no key exchange configured");
  if (aeads.empty()) return Status(StatusCode::kInvalidArgument, "no AEAD configured");
  return Status();
}

namespace {

template <typename T, typename F>
auto Dedup(const std::vector<T>& in, F convert) {
  std::vector<decltype(convert(in[0]))> out;
  for (const T& v : in) {
    auto c = convert(v);
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  return out;
}

}  // namespace

EngineConfig EngineConfigFor(const ClientOptions& o) {
  EngineConfig c;
  c.teps = Dedup(o.key_exchanges, ToTep);
  c.ciphers = Dedup(o.aeads, ToCipher);
  return c;
}

EngineConfig EngineConfigFor(const ServerOptions& o) {
  EngineConfig c;
  c.teps = Dedup(o.key_exchanges, ToTep);
  c.ciphers = Dedup(o.aeads, ToCipher);
  return c;
}

}  // namespace tcpcrypt::sdk
