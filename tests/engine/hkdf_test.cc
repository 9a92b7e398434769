#include "core_transport/engine/hkdf.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <thread>
#include <array>
#include <vector>

#include "core_transport/engine/rng.h"
#include "tests/engine/vector_file.h"

namespace tcpcrypt {
namespace {

using testing::ReadVectorFile;
using testing::ToHex;

std::vector<uint8_t> RandomBytes(DeterministicRng& rng, size_t n) {
  std::vector<uint8_t> v(n);
  rng.Fill(v);
  return v;
}

// RFC 5869 Appendix A.1-A.3 (the SHA-256 cases), read from tests/vectors.
TEST(HkdfTest, Rfc5869Vectors) {
  const auto records = ReadVectorFile("rfc5869.txt");
  ASSERT_TRUE(records.has_value()) << "cannot read rfc5869.txt";
  ASSERT_GE(records->size(), 3u);
  int checked = 0;
  for (const testing::VectorRecord& r : *records) {
    SCOPED_TRACE("Case " + r.name);
    const auto ikm = r.Bytes("IKM");
    const auto salt = r.Bytes("salt");
    const auto info = r.Bytes("info");
    const auto prk = r.Bytes("PRK");
    const auto okm = r.Bytes("OKM");
    ASSERT_TRUE(ikm && salt && info && prk && okm && r.Has("L"));
    const size_t l = std::stoul(r.fields.at("L"));
    ASSERT_EQ(okm->size(), l);
    ASSERT_EQ(prk->size(), kSha256Len);

    SecretArray<kSha256Len> got_prk;
    ASSERT_TRUE(HkdfExtract(*salt, *ikm, &got_prk));
    EXPECT_EQ(ToHex(got_prk.span()), ToHex(*prk));

    std::vector<uint8_t> got_okm(l);
    ASSERT_TRUE(HkdfExpand(*prk, *info, got_okm));
    EXPECT_EQ(ToHex(got_okm), ToHex(*okm));
    ++checked;
  }
  EXPECT_GE(checked, 3);
}

// RFC 5869 §2.2: a missing salt is HashLen zero bytes.
TEST(HkdfTest, EmptySaltIsHashLenZeros) {
  DeterministicRng rng(1);
  const std::vector<uint8_t> ikm = RandomBytes(rng, 40);
  const std::vector<uint8_t> zeros(kSha256Len, 0);
  SecretArray<kSha256Len> a, b;
  ASSERT_TRUE(HkdfExtract({}, ikm, &a));
  ASSERT_TRUE(HkdfExtract(zeros, ikm, &b));
  EXPECT_TRUE(a.Equal(b));
}

// The contexts are cached per thread: a call must not inherit anything from
// the one before it (OpenSSL ignores an empty salt or info parameter).
TEST(HkdfTest, NothingCarriesOverBetweenCalls) {
  DeterministicRng rng(7);
  const std::vector<uint8_t> ikm = RandomBytes(rng, 32);
  const std::vector<uint8_t> salt = RandomBytes(rng, 16);
  const std::vector<uint8_t> info = RandomBytes(rng, 9);
  SecretArray<kSha256Len> empty_first, with_salt, empty_again;
  ASSERT_TRUE(HkdfExtract({}, ikm, &empty_first));
  ASSERT_TRUE(HkdfExtract(salt, ikm, &with_salt));
  ASSERT_TRUE(HkdfExtract({}, ikm, &empty_again));
  EXPECT_FALSE(empty_first.Equal(with_salt));
  EXPECT_TRUE(empty_first.Equal(empty_again));

  std::array<uint8_t, 32> no_info{}, some_info{}, no_info_again{};
  ASSERT_TRUE(HkdfExpand(with_salt.span(), {}, no_info));
  ASSERT_TRUE(HkdfExpand(with_salt.span(), info, some_info));
  ASSERT_TRUE(HkdfExpand(with_salt.span(), {}, no_info_again));
  EXPECT_NE(no_info, some_info);
  EXPECT_EQ(no_info, no_info_again);
}

// Extract is HMAC-SHA256(salt, ikm): cross-check against OpenSSL's one-shot
// MAC for assorted lengths, including empty ones.
TEST(HkdfTest, ExtractMatchesHmac) {
  DeterministicRng rng(2);
  for (size_t salt_len : {0u, 1u, 32u, 64u, 65u, 200u}) {
    for (size_t ikm_len : {0u, 1u, 32u, 100u, 2000u}) {
      SCOPED_TRACE(std::to_string(salt_len) + "/" + std::to_string(ikm_len));
      const std::vector<uint8_t> salt = RandomBytes(rng, salt_len);
      const std::vector<uint8_t> ikm = RandomBytes(rng, ikm_len);
      SecretArray<kSha256Len> prk;
      ASSERT_TRUE(HkdfExtract(salt, ikm, &prk));

      // HMAC with an empty key is HMAC with HashLen zeros (key padding).
      const std::vector<uint8_t> key =
          salt.empty() ? std::vector<uint8_t>(kSha256Len, 0) : salt;
      uint8_t mac[EVP_MAX_MD_SIZE];
      size_t mac_len = 0;
      static const uint8_t kNothing = 0;
      ASSERT_NE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr,
                          key.data(), key.size(),
                          ikm.empty() ? &kNothing : ikm.data(), ikm.size(),
                          mac, sizeof(mac), &mac_len),
                nullptr);
      ASSERT_EQ(mac_len, kSha256Len);
      EXPECT_EQ(ToHex(prk.span()),
                ToHex(std::span<const uint8_t>(mac, mac_len)));
    }
  }
}

// RFC 5869 §2.3: OKM is the first L octets of T(1) | T(2) | ..., so a
// shorter output is a prefix of a longer one.
TEST(HkdfTest, ExpandOutputsArePrefixes) {
  DeterministicRng rng(3);
  const std::vector<uint8_t> prk = RandomBytes(rng, kSha256Len);
  const std::vector<uint8_t> info = RandomBytes(rng, 17);
  std::vector<uint8_t> longest(255 * kSha256Len);
  ASSERT_TRUE(HkdfExpand(prk, info, longest));
  for (size_t len : {1u, 31u, 32u, 33u, 64u, 1000u, 255u * 32u - 1u}) {
    std::vector<uint8_t> out(len);
    ASSERT_TRUE(HkdfExpand(prk, info, out)) << len;
    EXPECT_TRUE(std::equal(out.begin(), out.end(), longest.begin())) << len;
  }
}

TEST(HkdfTest, ExpandDependsOnInfoAndPrk) {
  DeterministicRng rng(4);
  std::vector<uint8_t> prk = RandomBytes(rng, kSha256Len);
  const std::vector<uint8_t> info = {1, 2, 3};
  std::vector<uint8_t> base(32), other(32);
  ASSERT_TRUE(HkdfExpand(prk, info, base));
  ASSERT_TRUE(HkdfExpand(prk, std::vector<uint8_t>{1, 2, 4}, other));
  EXPECT_NE(base, other);
  ASSERT_TRUE(HkdfExpand(prk, {}, other));
  EXPECT_NE(base, other);
  prk[31] ^= 1;
  ASSERT_TRUE(HkdfExpand(prk, info, other));
  EXPECT_NE(base, other);
}

TEST(HkdfTest, ExpandAcceptsLongerPrk) {
  DeterministicRng rng(5);
  const std::vector<uint8_t> prk = RandomBytes(rng, 64);
  std::vector<uint8_t> out(32);
  EXPECT_TRUE(HkdfExpand(prk, {}, out));
}

TEST(HkdfTest, ExpandRejectsBadLengths) {
  DeterministicRng rng(6);
  const std::vector<uint8_t> prk = RandomBytes(rng, kSha256Len);
  std::vector<uint8_t> out(32);
  // |prk| shorter than HashLen (RFC 5869 §2.3).
  EXPECT_FALSE(HkdfExpand(std::span<const uint8_t>(prk).first(31), {}, out));
  EXPECT_FALSE(HkdfExpand({}, {}, out));
  // L = 0 and L > 255 * HashLen.
  EXPECT_FALSE(HkdfExpand(prk, {}, std::span<uint8_t>()));
  std::vector<uint8_t> too_long(255 * kSha256Len + 1);
  EXPECT_FALSE(HkdfExpand(prk, {}, too_long));
}

// The key schedule runs on many threads at once; the lazily fetched
// algorithms must be safe to share.
TEST(HkdfTest, ConcurrentUseAgrees) {
  DeterministicRng rng(7);
  const std::vector<uint8_t> prk = RandomBytes(rng, kSha256Len);
  const std::vector<uint8_t> info = RandomBytes(rng, 9);
  std::vector<uint8_t> expected(64);
  ASSERT_TRUE(HkdfExpand(prk, info, expected));

  std::vector<int> mismatches(8, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < mismatches.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        std::vector<uint8_t> out(64);
        SecretArray<kSha256Len> prk2;
        if (!HkdfExpand(prk, info, out) || out != expected ||
            !HkdfExtract(info, prk, &prk2)) {
          ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace tcpcrypt
