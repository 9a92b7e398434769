#include "core_transport/engine/aead.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core_transport/engine/rng.h"
#include "core_transport/engine/types.h"
#include "tests/engine/vector_file.h"

namespace tcpcrypt {

// Lets GoogleTest print "aes128gcm" instead of bytes.
static void PrintTo(Cipher c, std::ostream* os) { *os << CipherName(c); }

namespace {

using Bytes = std::vector<uint8_t>;
using testing::ReadVectorFile;
using testing::ToHex;

Bytes RandomBytes(DeterministicRng& rng, size_t n) {
  Bytes v(n);
  rng.Fill(v);
  return v;
}

Bytes Concat(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  Bytes out(a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// SealAll seals |pt| as one piece and returns ciphertext || tag.
std::optional<Bytes> SealAll(AeadContext& ctx, std::span<const uint8_t> nonce,
                             std::span<const uint8_t> ad,
                             std::span<const uint8_t> pt) {
  Bytes out(pt.size() + kAeadTagLen);
  if (!ctx.Seal(nonce, ad, pt, {}, out.data())) return std::nullopt;
  return out;
}

std::optional<Bytes> OpenAll(AeadContext& ctx, std::span<const uint8_t> nonce,
                             std::span<const uint8_t> ad,
                             std::span<const uint8_t> sealed) {
  // One spare byte so a too-short input still has a valid |out| pointer.
  Bytes out(sealed.size() >= kAeadTagLen ? sealed.size() - kAeadTagLen : 0);
  out.reserve(out.size() + 1);
  if (!ctx.Open(nonce, ad, sealed, out.data())) return std::nullopt;
  return out;
}

// OneShotSeal computes the same AEAD with a fresh library context (or
// libsodium's combined API), independently of AeadContext's keyed-once path.
std::optional<Bytes> OneShotSeal(Cipher cipher, std::span<const uint8_t> key,
                                 std::span<const uint8_t> nonce,
                                 std::span<const uint8_t> ad,
                                 std::span<const uint8_t> pt) {
  Bytes out(pt.size() + kAeadTagLen);
  if (cipher == Cipher::kChaCha20Poly1305) {
    unsigned long long len = 0;
    if (crypto_aead_chacha20poly1305_ietf_encrypt(
            out.data(), &len, pt.data(), pt.size(), ad.data(), ad.size(),
            nullptr, nonce.data(), key.data()) != 0 ||
        len != out.size()) {
      return std::nullopt;
    }
    return out;
  }
  const EVP_CIPHER* evp = cipher == Cipher::kAes128Gcm ? EVP_aes_128_gcm()
                                                       : EVP_aes_256_gcm();
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(
      EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int n = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx.get(), evp, nullptr, key.data(), nonce.data()) !=
          1) {
    return std::nullopt;
  }
  if (!ad.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &n, ad.data(),
                        static_cast<int>(ad.size())) != 1) {
    return std::nullopt;
  }
  if (!pt.empty() &&
      EVP_EncryptUpdate(ctx.get(), out.data(), &n, pt.data(),
                        static_cast<int>(pt.size())) != 1) {
    return std::nullopt;
  }
  uint8_t scratch[16];
  if (EVP_EncryptFinal_ex(ctx.get(), scratch, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, 16,
                          out.data() + pt.size()) != 1) {
    return std::nullopt;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Known answers, read from tests/vectors/aead_kat.txt.

TEST(AeadKnownAnswerTest, PublishedVectors) {
  const auto records = ReadVectorFile("aead_kat.txt");
  ASSERT_TRUE(records.has_value()) << "cannot read aead_kat.txt";
  std::map<Cipher, int> per_cipher;
  for (const testing::VectorRecord& r : *records) {
    SCOPED_TRACE("Case " + r.name);
    ASSERT_TRUE(r.Has("cipher"));
    const std::optional<Cipher> cipher = CipherFromName(r.fields.at("cipher"));
    ASSERT_TRUE(cipher.has_value());
    const auto key = r.Bytes("key");
    const auto nonce = r.Bytes("nonce");
    const auto ad = r.Bytes("ad");
    const auto pt = r.Bytes("plaintext");
    const auto ct = r.Bytes("ciphertext");
    const auto tag = r.Bytes("tag");
    ASSERT_TRUE(key && nonce && ad && pt && ct && tag);
    ASSERT_EQ(ct->size(), pt->size());
    const Bytes expected = Concat(*ct, *tag);

    AeadContext ctx;
    ASSERT_TRUE(ctx.Init(*cipher, *key));
    // Every split of the plaintext into head and body seals the same.
    for (size_t split = 0; split <= pt->size(); ++split) {
      const std::span<const uint8_t> p(*pt);
      Bytes out(expected.size());
      ASSERT_TRUE(ctx.Seal(*nonce, *ad, p.first(split), p.subspan(split),
                           out.data()));
      ASSERT_EQ(ToHex(out), ToHex(expected)) << "split " << split;
    }
    const auto opened = OpenAll(ctx, *nonce, *ad, expected);
    ASSERT_TRUE(opened.has_value());
    EXPECT_EQ(ToHex(*opened), ToHex(*pt));
    ++per_cipher[*cipher];
  }
  // The file must cover every cipher, so the test cannot pass vacuously.
  EXPECT_GE(per_cipher[Cipher::kAes128Gcm], 1);
  EXPECT_GE(per_cipher[Cipher::kAes256Gcm], 1);
  EXPECT_GE(per_cipher[Cipher::kChaCha20Poly1305], 1);
}

// ---------------------------------------------------------------------------
// Properties, for each cipher.

class AeadTest : public ::testing::TestWithParam<Cipher> {
 protected:
  void SetUp() override {
    key_ = RandomBytes(rng_, AeadKeyLen(GetParam()));
    nonce_ = RandomBytes(rng_, kAeadNonceLen);
    ad_ = RandomBytes(rng_, 13);
    ASSERT_TRUE(ctx_.Init(GetParam(), key_));
  }

  DeterministicRng rng_{static_cast<uint64_t>(GetParam())};
  Bytes key_, nonce_, ad_;
  AeadContext ctx_;
};

std::string CipherParamName(const ::testing::TestParamInfo<Cipher>& info) {
  return std::string(CipherName(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllCiphers, AeadTest,
                         ::testing::Values(Cipher::kAes128Gcm,
                                           Cipher::kAes256Gcm,
                                           Cipher::kChaCha20Poly1305),
                         CipherParamName);

TEST_P(AeadTest, RoundTrip) {
  EXPECT_TRUE(ctx_.initialized());
  for (size_t len : {0u, 1u, 15u, 16u, 17u, 64u, 1000u, 65536u}) {
    SCOPED_TRACE(len);
    const Bytes pt = RandomBytes(rng_, len);
    const auto sealed = SealAll(ctx_, nonce_, ad_, pt);
    ASSERT_TRUE(sealed.has_value());
    ASSERT_EQ(sealed->size(), len + kAeadTagLen);
    const auto opened = OpenAll(ctx_, nonce_, ad_, *sealed);
    ASSERT_TRUE(opened.has_value());
    EXPECT_EQ(*opened, pt);
  }
}

TEST_P(AeadTest, EmptyAdRoundTrip) {
  const Bytes pt = RandomBytes(rng_, 40);
  const auto sealed = SealAll(ctx_, nonce_, {}, pt);
  ASSERT_TRUE(sealed.has_value());
  const auto opened = OpenAll(ctx_, nonce_, {}, *sealed);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(*opened, pt);
  // An empty AD is not the same as a one-byte AD.
  EXPECT_FALSE(OpenAll(ctx_, nonce_, Bytes{0}, *sealed).has_value());
}

// The keyed-once context gives what a fresh one-shot computation gives, for
// many messages in a row on the same context (only the nonce is reset).
TEST_P(AeadTest, MatchesOneShotLibraryCall) {
  for (size_t i = 0; i < 50; ++i) {
    SCOPED_TRACE(i);
    const Bytes nonce = RandomBytes(rng_, kAeadNonceLen);
    const Bytes ad = RandomBytes(rng_, i % 3 == 0 ? 0 : i);
    const Bytes pt = RandomBytes(rng_, i * 7);
    const auto sealed = SealAll(ctx_, nonce, ad, pt);
    const auto expected = OneShotSeal(GetParam(), key_, nonce, ad, pt);
    ASSERT_TRUE(sealed.has_value() && expected.has_value());
    EXPECT_EQ(ToHex(*sealed), ToHex(*expected));
  }
}

TEST_P(AeadTest, SplitHeadBodyEqualsContiguous) {
  for (size_t len : {0u, 1u, 2u, 17u, 100u}) {
    const Bytes pt = RandomBytes(rng_, len);
    const auto whole = SealAll(ctx_, nonce_, ad_, pt);
    ASSERT_TRUE(whole.has_value());
    for (size_t split = 0; split <= len; ++split) {
      const std::span<const uint8_t> p(pt);
      Bytes out(len + kAeadTagLen);
      ASSERT_TRUE(
          ctx_.Seal(nonce_, ad_, p.first(split), p.subspan(split), out.data()));
      EXPECT_EQ(out, *whole) << "len " << len << " split " << split;
    }
  }
}

TEST_P(AeadTest, AnyFlippedBitFailsOpen) {
  const Bytes pt = RandomBytes(rng_, 40);
  const auto sealed = SealAll(ctx_, nonce_, ad_, pt);
  ASSERT_TRUE(sealed.has_value());

  // Ciphertext and tag.
  for (size_t bit = 0; bit < sealed->size() * 8; ++bit) {
    Bytes bad = *sealed;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_FALSE(OpenAll(ctx_, nonce_, ad_, bad).has_value()) << "bit " << bit;
  }
  // Associated data.
  for (size_t bit = 0; bit < ad_.size() * 8; ++bit) {
    Bytes bad = ad_;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_FALSE(OpenAll(ctx_, nonce_, bad, *sealed).has_value())
        << "bit " << bit;
  }
  // Nonce.
  for (size_t bit = 0; bit < nonce_.size() * 8; ++bit) {
    Bytes bad = nonce_;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_FALSE(OpenAll(ctx_, bad, ad_, *sealed).has_value())
        << "bit " << bit;
  }
  // Truncated or extended AD.
  EXPECT_FALSE(OpenAll(ctx_, nonce_, std::span<const uint8_t>(ad_).first(12),
                       *sealed)
                   .has_value());
  EXPECT_FALSE(
      OpenAll(ctx_, nonce_, Concat(ad_, Bytes{0}), *sealed).has_value());
  // The untouched message still opens after all those failures.
  const auto opened = OpenAll(ctx_, nonce_, ad_, *sealed);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(*opened, pt);
}

TEST_P(AeadTest, TruncatedOrExtendedCiphertextFailsOpen) {
  const Bytes pt = RandomBytes(rng_, 32);
  const auto sealed = SealAll(ctx_, nonce_, ad_, pt);
  ASSERT_TRUE(sealed.has_value());
  for (size_t len = 0; len < sealed->size(); ++len) {
    const std::span<const uint8_t> cut = std::span(*sealed).first(len);
    EXPECT_FALSE(OpenAll(ctx_, nonce_, ad_, cut).has_value()) << len;
  }
  EXPECT_FALSE(
      OpenAll(ctx_, nonce_, ad_, Concat(*sealed, Bytes{0})).has_value());
}

TEST_P(AeadTest, ShorterThanTagFailsOpen) {
  uint8_t out[kAeadTagLen];
  const Bytes junk = RandomBytes(rng_, kAeadTagLen);
  for (size_t len = 0; len < kAeadTagLen; ++len) {
    EXPECT_FALSE(
        ctx_.Open(nonce_, ad_, std::span(junk).first(len), out))
        << len;
  }
  EXPECT_FALSE(ctx_.Open(nonce_, ad_, {}, nullptr));
}

TEST_P(AeadTest, TagOnlyMessage) {
  const auto sealed = SealAll(ctx_, nonce_, ad_, {});
  ASSERT_TRUE(sealed.has_value());
  ASSERT_EQ(sealed->size(), kAeadTagLen);
  uint8_t unused = 0;
  EXPECT_TRUE(ctx_.Open(nonce_, ad_, *sealed, &unused));
  Bytes bad = *sealed;
  bad[0] ^= 1;
  EXPECT_FALSE(ctx_.Open(nonce_, ad_, bad, &unused));
}

TEST_P(AeadTest, WrongKeyFailsOpen) {
  const Bytes pt = RandomBytes(rng_, 50);
  const auto sealed = SealAll(ctx_, nonce_, ad_, pt);
  ASSERT_TRUE(sealed.has_value());
  Bytes other_key = key_;
  other_key.back() ^= 0x80;
  AeadContext other;
  ASSERT_TRUE(other.Init(GetParam(), other_key));
  EXPECT_FALSE(OpenAll(other, nonce_, ad_, *sealed).has_value());
}

TEST_P(AeadTest, FailedOpenReleasesNoPlaintext) {
  const Bytes pt = RandomBytes(rng_, 64);
  auto sealed = SealAll(ctx_, nonce_, ad_, pt);
  ASSERT_TRUE(sealed.has_value());
  sealed->back() ^= 1;  // break the tag only
  Bytes out(pt.size(), 0);
  EXPECT_FALSE(ctx_.Open(nonce_, ad_, *sealed, out.data()));
  EXPECT_NE(out, pt);
}

TEST_P(AeadTest, InPlaceOpen) {
  const Bytes pt = RandomBytes(rng_, 300);
  auto sealed = SealAll(ctx_, nonce_, ad_, pt);
  ASSERT_TRUE(sealed.has_value());
  Bytes buf = *sealed;
  ASSERT_TRUE(ctx_.Open(nonce_, ad_, buf, buf.data()));
  EXPECT_TRUE(std::equal(pt.begin(), pt.end(), buf.begin()));

  // A tampered in-place message fails too.
  buf = *sealed;
  buf[5] ^= 0x10;
  EXPECT_FALSE(ctx_.Open(nonce_, ad_, buf, buf.data()));
}

TEST_P(AeadTest, BadNonceLengthFails) {
  const Bytes pt = RandomBytes(rng_, 10);
  const auto sealed = SealAll(ctx_, nonce_, ad_, pt);
  ASSERT_TRUE(sealed.has_value());
  Bytes out(pt.size() + kAeadTagLen);
  for (size_t len : {0u, 8u, 11u, 13u, 16u, 24u}) {
    const Bytes nonce = RandomBytes(rng_, len);
    EXPECT_FALSE(ctx_.Seal(nonce, ad_, pt, {}, out.data())) << len;
    EXPECT_FALSE(ctx_.Open(nonce, ad_, *sealed, out.data())) << len;
  }
}

TEST_P(AeadTest, ReInitWithNewKey) {
  const Bytes pt = RandomBytes(rng_, 33);
  const auto old_sealed = SealAll(ctx_, nonce_, ad_, pt);
  ASSERT_TRUE(old_sealed.has_value());

  const Bytes new_key = RandomBytes(rng_, AeadKeyLen(GetParam()));
  ASSERT_TRUE(ctx_.Init(GetParam(), new_key));
  EXPECT_FALSE(OpenAll(ctx_, nonce_, ad_, *old_sealed).has_value());

  AeadContext fresh;
  ASSERT_TRUE(fresh.Init(GetParam(), new_key));
  const auto a = SealAll(ctx_, nonce_, ad_, pt);
  const auto b = SealAll(fresh, nonce_, ad_, pt);
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *old_sealed);
}

TEST_P(AeadTest, ReInitWithAnotherCipher) {
  for (Cipher next : {Cipher::kAes128Gcm, Cipher::kAes256Gcm,
                      Cipher::kChaCha20Poly1305}) {
    const Bytes key = RandomBytes(rng_, AeadKeyLen(next));
    ASSERT_TRUE(ctx_.Init(next, key));
    const Bytes pt = RandomBytes(rng_, 20);
    const auto sealed = SealAll(ctx_, nonce_, ad_, pt);
    const auto expected = OneShotSeal(next, key, nonce_, ad_, pt);
    ASSERT_TRUE(sealed.has_value() && expected.has_value());
    EXPECT_EQ(*sealed, *expected) << CipherName(next);
  }
}

TEST_P(AeadTest, InitRejectsWrongKeyLengthAndUnkeys) {
  const size_t len = AeadKeyLen(GetParam());
  for (size_t bad : {size_t{0}, len - 1, len + 1, size_t{64}}) {
    AeadContext ctx;
    ASSERT_TRUE(ctx.Init(GetParam(), key_));
    EXPECT_FALSE(ctx.Init(GetParam(), RandomBytes(rng_, bad))) << bad;
    // A failed re-key must not leave the old key in use.
    EXPECT_FALSE(ctx.initialized());
    EXPECT_FALSE(SealAll(ctx, nonce_, ad_, Bytes{1, 2, 3}).has_value());
  }
}

TEST_P(AeadTest, MoveTransfersTheKey) {
  const Bytes pt = RandomBytes(rng_, 21);
  const auto sealed = SealAll(ctx_, nonce_, ad_, pt);
  ASSERT_TRUE(sealed.has_value());

  AeadContext moved(std::move(ctx_));
  EXPECT_TRUE(moved.initialized());
  EXPECT_FALSE(ctx_.initialized());  // NOLINT(bugprone-use-after-move)
  EXPECT_FALSE(SealAll(ctx_, nonce_, ad_, pt).has_value());
  const auto opened = OpenAll(moved, nonce_, ad_, *sealed);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(*opened, pt);

  AeadContext assigned;
  assigned = std::move(moved);
  EXPECT_TRUE(assigned.initialized());
  EXPECT_TRUE(OpenAll(assigned, nonce_, ad_, *sealed).has_value());
}

TEST(AeadContextTest, UninitializedFails) {
  AeadContext ctx;
  EXPECT_FALSE(ctx.initialized());
  const Bytes nonce(kAeadNonceLen, 0);
  Bytes out(64);
  EXPECT_FALSE(ctx.Seal(nonce, {}, Bytes{1}, {}, out.data()));
  EXPECT_FALSE(ctx.Open(nonce, {}, Bytes(32, 0), out.data()));
}

}  // namespace
}  // namespace tcpcrypt
