#include "auth/common/decoy.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "auth/common/password_kdf.h"

namespace tcpcrypt::auth {

DecoySecret::DecoySecret() {
  if (sodium_init() < 0) __builtin_trap();
  randombytes_buf(key_.data(), key_.size());
}

DecoySecret::DecoySecret(std::span<const uint8_t, 32> key) {
  key_.CopyFrom(key);
}

void DecoySecret::Bytes(std::string_view label, std::string_view user,
                        std::string_view realm, std::span<uint8_t> out) const {
  std::vector<uint8_t> msg(label.begin(), label.end());
  msg.push_back(0);
  msg.insert(msg.end(), user.begin(), user.end());
  msg.push_back(0);
  msg.insert(msg.end(), realm.begin(), realm.end());
  // Expand as many HMAC blocks as |out| needs.
  uint8_t block[EVP_MAX_MD_SIZE];
  size_t done = 0;
  for (uint8_t counter = 1; done < out.size(); ++counter) {
    msg.push_back(counter);
    unsigned int len = 0;
    HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), msg.data(),
         msg.size(), block, &len);
    msg.pop_back();
    for (unsigned int i = 0; i < len && done < out.size(); ++i) out[done++] = block[i];
  }
  OPENSSL_cleanse(block, sizeof(block));
}

std::vector<uint8_t> DecoySecret::Salt(Mechanism mechanism,
                                       std::string_view user,
                                       std::string_view realm) const {
  std::vector<uint8_t> salt(kPasswordSaltLen);
  const char label[] = {'s', 'a', 'l', 't', static_cast<char>(mechanism)};
  Bytes(std::string_view(label, sizeof(label)), user, realm, salt);
  return salt;
}

}  // namespace tcpcrypt::auth
