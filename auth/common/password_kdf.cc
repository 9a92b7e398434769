#include "auth/common/password_kdf.h"

#include <sodium.h>

#include <atomic>
#include <string>
#include <vector>

namespace tcpcrypt::auth {
namespace {

std::atomic<uint64_t> g_kdf_calls{0};

void AppendLenPrefixed(std::vector<uint8_t>* out, std::string_view s) {
  // RFC 9383 §3.2: len() is an 8-byte little-endian length.
  uint64_t n = s.size();
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<uint8_t>(n >> (8 * i)));
  out->insert(out->end(), s.begin(), s.end());
}

}  // namespace

KdfParams KdfParams::Interactive() {
  return {crypto_pwhash_ALG_ARGON2ID13, crypto_pwhash_OPSLIMIT_INTERACTIVE,
          crypto_pwhash_MEMLIMIT_INTERACTIVE};
}

KdfParams KdfParams::ForTests() {
  return {crypto_pwhash_ALG_ARGON2ID13, crypto_pwhash_OPSLIMIT_MIN,
          crypto_pwhash_MEMLIMIT_MIN};
}

bool KdfParams::Sane() const {
  return algorithm == crypto_pwhash_ALG_ARGON2ID13 &&
         opslimit >= crypto_pwhash_OPSLIMIT_MIN && opslimit <= 16 &&
         memlimit >= crypto_pwhash_MEMLIMIT_MIN && memlimit <= (1ull << 30);
}

KdfLimits KdfLimits::ForTests() {
  KdfLimits l;
  l.floor = KdfParams::ForTests();
  return l;
}

bool KdfLimits::Check(const KdfParams& p, std::string* out_why) const {
  const auto describe = [&p] {
    return "Argon2id with " + std::to_string(p.memlimit) + " bytes and " +
           std::to_string(p.opslimit) + " passes";
  };
  std::string why;
  if (!p.Sane()) {
    why = "the server asked for unusable KDF parameters (algorithm " +
          std::to_string(p.algorithm) + ", " + std::to_string(p.memlimit) + " bytes, " +
          std::to_string(p.opslimit) + " passes)";
  } else if (p.memlimit < floor.memlimit || p.opslimit < floor.opslimit) {
    why = "the server asked for " + describe() + ", below this client's floor of " +
          std::to_string(floor.memlimit) + " bytes and " + std::to_string(floor.opslimit) +
          " passes (a proof that cheap is easy to attack offline)";
  } else if (p.memlimit > max_memlimit || p.opslimit > max_opslimit) {
    why = "the server asked for " + describe() + ", above this client's ceiling of " +
          std::to_string(max_memlimit) + " bytes and " + std::to_string(max_opslimit) +
          " passes";
  } else {
    return true;
  }
  if (out_why != nullptr) *out_why = std::move(why);
  return false;
}

bool DerivePasswordKey(std::string_view password, std::string_view user,
                       std::string_view realm, std::span<const uint8_t> salt,
                       const KdfParams& params, std::span<uint8_t> out) {
  if (!params.Sane() || salt.size() != crypto_pwhash_SALTBYTES ||
      out.size() < 16 || out.size() > 128 || sodium_init() < 0) {
    return false;
  }
  g_kdf_calls.fetch_add(1, std::memory_order_relaxed);
  std::vector<uint8_t> input;
  input.reserve(24 + password.size() + user.size() + realm.size());
  AppendLenPrefixed(&input, password);
  AppendLenPrefixed(&input, user);
  AppendLenPrefixed(&input, realm);
  const int rc = crypto_pwhash(
      out.data(), out.size(), reinterpret_cast<const char*>(input.data()),
      input.size(), salt.data(), params.opslimit,
      static_cast<size_t>(params.memlimit), static_cast<int>(params.algorithm));
  sodium_memzero(input.data(), input.size());
  return rc == 0;
}

uint64_t PasswordKdfCount() { return g_kdf_calls.load(); }

}  // namespace tcpcrypt::auth
