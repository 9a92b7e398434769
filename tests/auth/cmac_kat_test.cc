// cmac_kat_test.cc: our AES-CMAC against RFC 4493 §4's examples
// (tests/vectors/rfc4493_cmac.txt).
#include "auth/cmac_password/cmac_password.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tests/engine/vector_file.h"

namespace tcpcrypt::auth::cmac {
namespace {

using ::tcpcrypt::testing::ReadVectorFile;
using ::tcpcrypt::testing::ToHex;

struct Case {
  std::string name;
  std::vector<uint8_t> key, msg, tag;
};

std::vector<Case> LoadCases() {
  std::vector<Case> cases;
  auto records = ReadVectorFile("rfc4493_cmac.txt");
  if (!records.has_value()) return cases;
  for (const auto& r : *records) {
    auto k = r.Bytes("K");
    auto m = r.Bytes("M");
    auto t = r.Bytes("T");
    if (!k || !m || !t) continue;
    cases.push_back({r.name, *k, *m, *t});
  }
  return cases;
}

TEST(CmacKat, Rfc4493Examples) {
  const std::vector<Case> cases = LoadCases();
  ASSERT_GE(cases.size(), 4u) << "rfc4493_cmac.txt missing or malformed";
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::array<uint8_t, kMacLen> mac{};
    ASSERT_TRUE(ComputeCmac(c.key, c.msg, mac));
    EXPECT_EQ(ToHex(mac), ToHex(c.tag));
  }
}

// The keyed context is reused: a second Compute restarts from the key, and
// the message may arrive in parts split anywhere (here inside a block).
TEST(CmacKat, ReusedContextAndPartsMatchVectors) {
  const std::vector<Case> cases = LoadCases();
  ASSERT_GE(cases.size(), 4u);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::optional<CmacAes128> mac = CmacAes128::Create(c.key);
    ASSERT_TRUE(mac.has_value());
    for (size_t split = 0; split <= c.msg.size(); split += 7) {
      const ByteSpan parts[] = {ByteSpan(c.msg).first(split),
                                ByteSpan(c.msg).subspan(split)};
      std::array<uint8_t, kMacLen> out{};
      ASSERT_TRUE(mac->Compute(parts, out));
      EXPECT_EQ(ToHex(out), ToHex(c.tag)) << "split at " << split;
    }
  }
}

TEST(CmacKat, RejectsWrongKeySizes) {
  const std::vector<uint8_t> short_key(15, 0), long_key(32, 0), msg(3, 1);
  std::array<uint8_t, kMacLen> out{};
  EXPECT_FALSE(ComputeCmac(short_key, msg, out));
  EXPECT_FALSE(ComputeCmac(long_key, msg, out));
  EXPECT_FALSE(CmacAes128::Create({}).has_value());
}

// A flipped key or message bit changes the tag (a sanity check that the
// key is really used, not only the template's).
TEST(CmacKat, KeyAndMessageMatter) {
  const std::vector<Case> cases = LoadCases();
  ASSERT_GE(cases.size(), 4u);
  const Case& c = cases[1];
  std::vector<uint8_t> key = c.key;
  key[0] ^= 1;
  std::array<uint8_t, kMacLen> out{};
  ASSERT_TRUE(ComputeCmac(key, c.msg, out));
  EXPECT_NE(ToHex(out), ToHex(c.tag));
  std::vector<uint8_t> msg = c.msg;
  msg.back() ^= 0x80;
  ASSERT_TRUE(ComputeCmac(c.key, msg, out));
  EXPECT_NE(ToHex(out), ToHex(c.tag));
}

}  // namespace
}  // namespace tcpcrypt::auth::cmac
