// eno_option_test.cc: the TCP-ENO option codec (RFC 8547 §4), adversarially.
#include "core_transport/engine/eno_option.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <random>
#include <vector>

namespace tcpcrypt {
namespace {

using Bytes = std::vector<uint8_t>;

// RFC 8547 §6 uses symbolic TEPs X, Y, Z; these stand in for them.
constexpr uint8_t kX = 0x21;  // tcpcrypt P-256
constexpr uint8_t kY = 0x23;  // tcpcrypt Curve25519
constexpr uint8_t kZ = 0x22;  // tcpcrypt P-521

// Parse parses |option|; ADD_FAILURE on rejection.
EnoSynOption MustParse(const Bytes& option) {
  EnoSynOption opt;
  if (!ParseEnoSynOption(option, &opt)) ADD_FAILURE() << "parse rejected";
  return opt;
}

bool Rejects(const Bytes& option) {
  EnoSynOption opt;
  return !ParseEnoSynOption(option, &opt);
}

// Encode encodes |opt| and returns the bytes (empty on failure).
Bytes Encode(const EnoSynOption& opt, size_t max_len = kMaxEnoOptionLenInSyn) {
  std::array<uint8_t, 512> buf{};
  const size_t n = EncodeEnoSynOption(opt, buf, max_len);
  return Bytes(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n));
}

Bytes ToBytes(ByteSpan s) { return Bytes(s.begin(), s.end()); }

// BorrowsFrom reports whether |s| lies inside |buf|.
bool BorrowsFrom(ByteSpan s, const Bytes& buf) {
  return s.data() >= buf.data() && s.data() + s.size() <= buf.data() + buf.size();
}

// ExpectSameOption compares the meaning of two options (not the bytes).
void ExpectSameOption(const EnoSynOption& a, const EnoSynOption& b) {
  EXPECT_EQ(a.global, b.global);
  EXPECT_EQ(a.explicit_global, b.explicit_global);
  ASSERT_EQ(a.count, b.count);
  for (size_t i = 0; i < a.count; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(a.suboptions[i].tep, b.suboptions[i].tep);
    EXPECT_EQ(a.suboptions[i].v, b.suboptions[i].v);
    EXPECT_EQ(ToBytes(a.suboptions[i].data), ToBytes(b.suboptions[i].data));
  }
}

// ---------------------------------------------------------------------------
// RFC 8547 §6 examples, with X, Y, Z made concrete.

// Figure 9 (1) and Figures 10, 11 (1): A -> B SYN ENO<X,Y>.
TEST(EnoOptionTest, Rfc8547Figure9SynFromA) {
  const Bytes wire = {69, 4, kX, kY};
  EnoSynOption opt = MustParse(wire);
  EXPECT_FALSE(opt.explicit_global);  // implicit global 0x00
  EXPECT_EQ(opt.global, 0x00);
  EXPECT_FALSE(opt.b());
  EXPECT_FALSE(opt.a());
  EXPECT_FALSE(opt.vacuous());
  ASSERT_EQ(opt.count, 2u);
  EXPECT_EQ(opt.suboptions[0].tep, kX);
  EXPECT_FALSE(opt.suboptions[0].v);
  EXPECT_TRUE(opt.suboptions[0].data.empty());
  EXPECT_EQ(opt.suboptions[1].tep, kY);
  EXPECT_FALSE(opt.suboptions[1].v);

  EnoSynOption built;
  ASSERT_TRUE(built.Add(kX, false));
  ASSERT_TRUE(built.Add(kY, false));
  EXPECT_EQ(Encode(built), wire);
}

// Figure 9 (2): B -> A SYN-ACK ENO<b=1,Y>.
TEST(EnoOptionTest, Rfc8547Figure9SynAckFromB) {
  const Bytes wire = {69, 4, kEnoGlobalB, kY};
  EnoSynOption opt = MustParse(wire);
  EXPECT_TRUE(opt.explicit_global);
  EXPECT_TRUE(opt.b());
  EXPECT_FALSE(opt.a());
  ASSERT_EQ(opt.count, 1u);
  EXPECT_EQ(opt.suboptions[0].tep, kY);

  EnoSynOption built;
  built.global = kEnoGlobalB;
  ASSERT_TRUE(built.Add(kY, false));
  EXPECT_EQ(Encode(built), wire);
}

// Figure 11 (2): B -> A SYN-ACK ENO<b=1,X> (then stripped by a middlebox).
TEST(EnoOptionTest, Rfc8547Figure11SynAckFromB) {
  const Bytes wire = {69, 4, kEnoGlobalB, kX};
  EnoSynOption opt = MustParse(wire);
  EXPECT_TRUE(opt.b());
  ASSERT_EQ(opt.count, 1u);
  EXPECT_EQ(opt.suboptions[0].tep, kX);
}

// Figure 12: simultaneous open, A sends ENO<Y,X>, B sends ENO<b=1,X,Y,Z>;
// the negotiated TEP is the last one of B's that A also offered (§4.5).
TEST(EnoOptionTest, Rfc8547Figure12SimultaneousOpen) {
  const Bytes wire_a = {69, 4, kY, kX};
  const Bytes wire_b = {69, 6, kEnoGlobalB, kX, kY, kZ};
  EnoSynOption a = MustParse(wire_a);
  EnoSynOption b = MustParse(wire_b);
  EXPECT_FALSE(a.b());
  EXPECT_TRUE(b.b());
  ASSERT_EQ(a.count, 2u);
  ASSERT_EQ(b.count, 3u);
  EXPECT_EQ(b.suboptions[0].tep, kX);
  EXPECT_EQ(b.suboptions[1].tep, kY);
  EXPECT_EQ(b.suboptions[2].tep, kZ);

  uint8_t negotiated = 0;
  for (const EnoSuboption& sb : b.tep_suboptions()) {
    for (const EnoSuboption& sa : a.tep_suboptions()) {
      if (sa.tep == sb.tep) negotiated = sb.tep;
    }
  }
  EXPECT_EQ(negotiated, kY);

  EnoSynOption built;
  built.global = kEnoGlobalB;
  ASSERT_TRUE(built.Add(kX, false));
  ASSERT_TRUE(built.Add(kY, false));
  ASSERT_TRUE(built.Add(kZ, false));
  EXPECT_EQ(Encode(built), wire_b);
}

// ---------------------------------------------------------------------------
// Global suboption (RFC 8547 §4.2) and vacuous options (§4.6).

TEST(EnoOptionTest, VacuousOptionImplicitGlobal) {
  EnoSynOption opt = MustParse({69, 2});
  EXPECT_TRUE(opt.vacuous());
  EXPECT_FALSE(opt.explicit_global);
  EXPECT_EQ(opt.global, 0);
  EXPECT_EQ(Encode(EnoSynOption{}), (Bytes{69, 2}));
}

TEST(EnoOptionTest, VacuousOptionWithPassiveBit) {
  EnoSynOption opt = MustParse({69, 3, 0x01});
  EXPECT_TRUE(opt.vacuous());
  EXPECT_TRUE(opt.b());
}

TEST(EnoOptionTest, ExplicitZeroGlobalIsKept) {
  EnoSynOption opt = MustParse({69, 4, 0x00, kX});
  EXPECT_TRUE(opt.explicit_global);
  EXPECT_EQ(opt.global, 0x00);
  EXPECT_FALSE(opt.b());
  // Encode writes the 0x00 back only because explicit_global is set.
  EXPECT_EQ(Encode(opt), (Bytes{69, 4, 0x00, kX}));
  opt.explicit_global = false;
  EXPECT_EQ(Encode(opt), (Bytes{69, 3, kX}));
}

TEST(EnoOptionTest, ExplicitGlobalWithAAndB) {
  EnoSynOption opt = MustParse({69, 4, kEnoGlobalA | kEnoGlobalB, kX});
  EXPECT_TRUE(opt.a());
  EXPECT_TRUE(opt.b());
  opt = MustParse({69, 4, kEnoGlobalA, kX});
  EXPECT_TRUE(opt.a());
  EXPECT_FALSE(opt.b());
}

TEST(EnoOptionTest, GlobalBitsWithoutExplicitFlagAreWritten) {
  EnoSynOption opt;
  opt.global = kEnoGlobalA;  // explicit_global left false
  ASSERT_TRUE(opt.Add(kX, false));
  EXPECT_EQ(Encode(opt), (Bytes{69, 4, kEnoGlobalA, kX}));
}

// RFC 8547 §4.2: z bits MUST be ignored on receipt.
TEST(EnoOptionTest, ZBitsIgnored) {
  for (uint8_t z : {0x04, 0x08, 0x10, 0x1c}) {
    SCOPED_TRACE(int{z});
    EnoSynOption opt = MustParse({69, 4, z, kX});
    EXPECT_FALSE(opt.a());
    EXPECT_FALSE(opt.b());
    EXPECT_EQ(opt.global, z);
    ASSERT_EQ(opt.count, 1u);
    opt = MustParse({69, 4, static_cast<uint8_t>(z | kEnoGlobalB), kX});
    EXPECT_FALSE(opt.a());
    EXPECT_TRUE(opt.b());
  }
}

// RFC 8547 §4.2: a receiver MUST ignore all but the first global suboption.
TEST(EnoOptionTest, SecondGlobalIgnored) {
  EnoSynOption opt = MustParse({69, 5, 0x01, kX, 0x02});
  EXPECT_EQ(opt.global, 0x01);
  EXPECT_TRUE(opt.b());
  EXPECT_FALSE(opt.a());
  ASSERT_EQ(opt.count, 1u);

  opt = MustParse({69, 6, 0x00, 0x03, 0x1f, kX});
  EXPECT_EQ(opt.global, 0x00);
  EXPECT_TRUE(opt.explicit_global);
  EXPECT_FALSE(opt.b());
  ASSERT_EQ(opt.count, 1u);
}

// The first global counts even when it follows TEP suboptions.
TEST(EnoOptionTest, GlobalAfterTepsCounts) {
  EnoSynOption opt = MustParse({69, 5, kX, kY, 0x03});
  EXPECT_TRUE(opt.explicit_global);
  EXPECT_TRUE(opt.a());
  EXPECT_TRUE(opt.b());
  ASSERT_EQ(opt.count, 2u);
}

// ---------------------------------------------------------------------------
// Suboption data (RFC 8547 §4.4).

TEST(EnoOptionTest, TepWithDataLast) {
  const Bytes wire = {69, 6, kX, kEnoV | kY, 0xde, 0xad};
  EnoSynOption opt = MustParse(wire);
  ASSERT_EQ(opt.count, 2u);
  EXPECT_FALSE(opt.suboptions[0].v);
  EXPECT_EQ(opt.suboptions[1].tep, kY);
  EXPECT_TRUE(opt.suboptions[1].v);
  EXPECT_EQ(ToBytes(opt.suboptions[1].data), (Bytes{0xde, 0xad}));
  EXPECT_TRUE(BorrowsFrom(opt.suboptions[1].data, wire));
  EXPECT_EQ(opt.suboptions[1].data.data(), wire.data() + 4);
  EXPECT_EQ(Encode(opt), wire);
}

TEST(EnoOptionTest, TepWithVAndNoDataLast) {
  const Bytes wire = {69, 3, kEnoV | kY};
  EnoSynOption opt = MustParse(wire);
  ASSERT_EQ(opt.count, 1u);
  EXPECT_EQ(opt.suboptions[0].tep, kY);
  EXPECT_TRUE(opt.suboptions[0].v);
  EXPECT_TRUE(opt.suboptions[0].data.empty());
  EXPECT_EQ(Encode(opt), wire);
}

// Without a length byte, a v=1 TEP swallows everything after it, including
// bytes that would otherwise be globals, length bytes or TEPs.
TEST(EnoOptionTest, DataWithoutLengthByteRunsToEnd) {
  const Bytes wire = {69, 8, kEnoV | kX, 0x01, 0x80, kY, 0x9f, 0xff};
  EnoSynOption opt = MustParse(wire);
  EXPECT_FALSE(opt.explicit_global);
  ASSERT_EQ(opt.count, 1u);
  EXPECT_EQ(ToBytes(opt.suboptions[0].data),
            (Bytes{0x01, 0x80, kY, 0x9f, 0xff}));
}

// Every byte 0xa0-0xff starts a last-form suboption.
TEST(EnoOptionTest, EveryDataTepByteRunsToEnd) {
  for (int b = 0xa0; b <= 0xff; ++b) {
    SCOPED_TRACE(b);
    EnoSynOption opt = MustParse({69, 5, static_cast<uint8_t>(b), 0x21, 0x00});
    ASSERT_EQ(opt.count, 1u);
    EXPECT_EQ(opt.suboptions[0].tep, b & 0x7f);
    EXPECT_TRUE(opt.suboptions[0].v);
    EXPECT_EQ(opt.suboptions[0].data.size(), 2u);
  }
}

TEST(EnoOptionTest, LengthByteThenAnotherTep) {
  // 0x82: nnnnn = 2, three bytes of data.
  const Bytes wire = {69, 8, 0x82, kEnoV | kX, 0xaa, 0xbb, 0xcc, kY};
  EnoSynOption opt = MustParse(wire);
  ASSERT_EQ(opt.count, 2u);
  EXPECT_EQ(opt.suboptions[0].tep, kX);
  EXPECT_TRUE(opt.suboptions[0].v);
  EXPECT_EQ(ToBytes(opt.suboptions[0].data), (Bytes{0xaa, 0xbb, 0xcc}));
  EXPECT_EQ(opt.suboptions[0].data.data(), wire.data() + 4);
  EXPECT_EQ(opt.suboptions[1].tep, kY);
  EXPECT_FALSE(opt.suboptions[1].v);
  EXPECT_EQ(Encode(opt), wire);
}

TEST(EnoOptionTest, TwoLengthBytesThenLastForm) {
  const Bytes wire = {69, 12, 0x80, kEnoV | kX, 0x11, 0x81, kEnoV | kY,
                      0x22, 0x33, kEnoV | kZ, 0x44, 0x55};
  EnoSynOption opt = MustParse(wire);
  ASSERT_EQ(opt.count, 3u);
  EXPECT_EQ(ToBytes(opt.suboptions[0].data), (Bytes{0x11}));
  EXPECT_EQ(ToBytes(opt.suboptions[1].data), (Bytes{0x22, 0x33}));
  EXPECT_EQ(ToBytes(opt.suboptions[2].data), (Bytes{0x44, 0x55}));
  EXPECT_EQ(Encode(opt), wire);
}

// A length byte on the last suboption is legal; Encode drops it again.
TEST(EnoOptionTest, LengthByteOnLastSuboptionExactlyFilling) {
  const Bytes wire = {69, 6, 0x81, kEnoV | kX, 0xaa, 0xbb};
  EnoSynOption opt = MustParse(wire);
  ASSERT_EQ(opt.count, 1u);
  EXPECT_EQ(ToBytes(opt.suboptions[0].data), (Bytes{0xaa, 0xbb}));
  EXPECT_EQ(Encode(opt), (Bytes{69, 5, kEnoV | kX, 0xaa, 0xbb}));
}

TEST(EnoOptionTest, MaximumLengthByteThirtyTwoBytes) {
  Bytes wire = {69, 0, 0x9f, kEnoV | kX};
  for (int i = 0; i < 32; ++i) wire.push_back(static_cast<uint8_t>(i));
  wire.push_back(kY);
  wire[1] = static_cast<uint8_t>(wire.size());
  EnoSynOption opt = MustParse(wire);
  ASSERT_EQ(opt.count, 2u);
  EXPECT_EQ(opt.suboptions[0].data.size(), 32u);
  EXPECT_EQ(opt.suboptions[1].tep, kY);
  EXPECT_EQ(Encode(opt), wire);
}

// RFC 8548 §3.5 Figure 2: TEP-byte (v=1) | resume[i]{0..8} | nonce_a (8):
// an 18-byte suboption carrying 17 bytes of data, placed last.
TEST(EnoOptionTest, TcpcryptResumptionSuboptionShape) {
  const Bytes id = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const Bytes nonce = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7};
  Bytes wire = {69, 21, kX, kEnoV | kY};  // 2 + 1 + (1 + 17) = 21
  wire.insert(wire.end(), id.begin(), id.end());
  wire.insert(wire.end(), nonce.begin(), nonce.end());
  ASSERT_EQ(wire.size(), 21u);

  EnoSynOption opt = MustParse(wire);
  ASSERT_EQ(opt.count, 2u);
  const EnoSuboption& resume = opt.suboptions[1];
  EXPECT_EQ(resume.tep, kY);
  EXPECT_TRUE(resume.v);
  ASSERT_EQ(resume.data.size(), 17u);
  EXPECT_EQ(ToBytes(resume.data.first(9)), id);
  EXPECT_EQ(ToBytes(resume.data.subspan(9)), nonce);
  EXPECT_TRUE(BorrowsFrom(resume.data, wire));

  Bytes data = id;
  data.insert(data.end(), nonce.begin(), nonce.end());
  EnoSynOption built;
  ASSERT_TRUE(built.Add(kX, false));
  ASSERT_TRUE(built.Add(kY, true, data));
  EXPECT_EQ(Encode(built), wire);
}

// The same resumption suboption, not last: needs a length byte (nnnnn = 16).
TEST(EnoOptionTest, TcpcryptResumptionSuboptionNotLast) {
  Bytes data(17);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  EnoSynOption built;
  built.global = kEnoGlobalB;
  built.explicit_global = true;
  ASSERT_TRUE(built.Add(kY, true, data));
  ASSERT_TRUE(built.Add(kX, false));
  Bytes wire = Encode(built);
  ASSERT_EQ(wire.size(), 2u + 1 + 1 + 1 + 17 + 1);
  EXPECT_EQ(wire[2], kEnoGlobalB);
  EXPECT_EQ(wire[3], 0x90);
  EXPECT_EQ(wire[4], kEnoV | kY);
  EXPECT_EQ(wire.back(), kX);
  ExpectSameOption(MustParse(wire), built);
}

// RFC 8548 §3.5: a zero-length nonce is allowed (9 bytes of data).
TEST(EnoOptionTest, TcpcryptResumptionWithEmptyNonce) {
  const Bytes wire = {69, 12, kEnoV | kX, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  EnoSynOption opt = MustParse(wire);
  ASSERT_EQ(opt.count, 1u);
  EXPECT_EQ(opt.suboptions[0].data.size(), 9u);
}

// ---------------------------------------------------------------------------
// Malformed options: each must be rejected (RFC 8547 §4.1, §4.4).

TEST(EnoOptionTest, RejectsWrongKind) {
  EXPECT_TRUE(Rejects({68, 4, kX, kY}));
  EXPECT_TRUE(Rejects({70, 4, kX, kY}));
  EXPECT_TRUE(Rejects({0, 4, kX, kY}));
  EXPECT_TRUE(Rejects({0xff, 4, kX, kY}));
  EXPECT_TRUE(Rejects({69 | 0x80, 4, kX, kY}));
}

TEST(EnoOptionTest, RejectsTruncatedHeader) {
  EXPECT_TRUE(Rejects({}));
  EXPECT_TRUE(Rejects({69}));
}

TEST(EnoOptionTest, RejectsLengthZeroOrOne) {
  EXPECT_TRUE(Rejects({69, 0}));
  EXPECT_TRUE(Rejects({69, 1}));
  EXPECT_TRUE(Rejects({69, 0, kX}));
  EXPECT_TRUE(Rejects({69, 1, kX}));
}

TEST(EnoOptionTest, RejectsLengthLargerThanSpan) {
  EXPECT_TRUE(Rejects({69, 3}));
  EXPECT_TRUE(Rejects({69, 5, kX, kY}));
  EXPECT_TRUE(Rejects({69, 255, kX, kY}));
}

TEST(EnoOptionTest, RejectsLengthSmallerThanSpan) {
  EXPECT_TRUE(Rejects({69, 2, kX}));
  EXPECT_TRUE(Rejects({69, 3, kX, kY}));
  // A 256-byte span can never match a one-byte length.
  Bytes big(256, kX);
  big[0] = 69;
  big[1] = 255;
  EXPECT_TRUE(Rejects(big));
  big[1] = 0;
  EXPECT_TRUE(Rejects(big));
  big.pop_back();
  big[1] = 255;
  EXPECT_FALSE(Rejects(big));  // exactly 255 bytes is fine
}

TEST(EnoOptionTest, RejectsLengthByteRunningPastEnd) {
  EXPECT_TRUE(Rejects({69, 5, 0x82, kEnoV | kX, 0xaa}));         // needs 3
  EXPECT_TRUE(Rejects({69, 6, 0x82, kEnoV | kX, 0xaa, 0xbb}));   // needs 3
  EXPECT_TRUE(Rejects({69, 4, 0x80, kEnoV | kX}));               // needs 1
  EXPECT_TRUE(Rejects({69, 5, kX, 0x9f, kEnoV | kY}));           // needs 32
  // One byte short of 32.
  Bytes wire = {69, 0, 0x9f, kEnoV | kX};
  wire.resize(wire.size() + 31, 0x00);
  wire[1] = static_cast<uint8_t>(wire.size());
  EXPECT_TRUE(Rejects(wire));
  wire.push_back(0x00);
  wire[1] = static_cast<uint8_t>(wire.size());
  EXPECT_FALSE(Rejects(wire));
}

// RFC 8547 §4.4 rule 2: a length byte followed by 0x00-0x9f is invalid.
TEST(EnoOptionTest, RejectsLengthByteFollowedByNonDataTep) {
  for (uint8_t next : {0x00, 0x01, 0x1f, 0x20, 0x21, 0x7f, 0x80, 0x9f}) {
    SCOPED_TRACE(int{next});
    EXPECT_TRUE(Rejects({69, 5, 0x80, next, 0xaa}));
    EXPECT_TRUE(Rejects({69, 6, kX, 0x80, next, 0xaa}));
  }
}

// Exhaustively: the byte after a length byte is valid iff it is >= 0xa0.
TEST(EnoOptionTest, LengthByteFollowerBoundaryExhaustive) {
  for (int next = 0; next <= 0xff; ++next) {
    SCOPED_TRACE(next);
    EXPECT_EQ(Rejects({69, 5, 0x80, static_cast<uint8_t>(next), 0xaa}),
              next < 0xa0);
  }
}

TEST(EnoOptionTest, RejectsLengthByteAsLastByte) {
  for (int lb = 0x80; lb <= 0x9f; ++lb) {
    SCOPED_TRACE(lb);
    EXPECT_TRUE(Rejects({69, 3, static_cast<uint8_t>(lb)}));
    EXPECT_TRUE(Rejects({69, 5, 0x01, kX, static_cast<uint8_t>(lb)}));
  }
}

// Compute into locals, commit last: a rejected option leaves |out| alone.
TEST(EnoOptionTest, FailedParseLeavesOutputUnchanged) {
  const Bytes good = {69, 4, 0x01, kY};
  EnoSynOption opt = MustParse(good);
  EXPECT_FALSE(ParseEnoSynOption(Bytes{69, 6, 0x03, kX, kZ, 0x80}, &opt));
  EXPECT_EQ(opt.global, 0x01);
  EXPECT_TRUE(opt.explicit_global);
  ASSERT_EQ(opt.count, 1u);
  EXPECT_EQ(opt.suboptions[0].tep, kY);
}

// Every 2- and 3-byte option: whatever is accepted round-trips.
TEST(EnoOptionTest, AllShortOptionsRoundTrip) {
  for (int b = 0; b <= 0xff; ++b) {
    const Bytes wire = {69, 3, static_cast<uint8_t>(b)};
    EnoSynOption opt;
    const bool ok = ParseEnoSynOption(wire, &opt);
    EXPECT_EQ(ok, b < 0x80 || b >= 0xa0) << b;
    if (!ok) continue;
    EnoSynOption again;
    ASSERT_TRUE(ParseEnoSynOption(Encode(opt), &again)) << b;
    ExpectSameOption(opt, again);
  }
}

// ---------------------------------------------------------------------------
// Encoding limits.

TEST(EnoOptionTest, EncodeRefusesMoreThanFortyBytesByDefault) {
  Bytes data(37, 0x5a);  // 2 + 1 + 37 = 40 bytes
  EnoSynOption opt;
  ASSERT_TRUE(opt.Add(kX, true, data));
  EXPECT_EQ(Encode(opt).size(), kMaxEnoOptionLenInSyn);

  data.push_back(0x5a);  // 41 bytes
  opt.suboptions[0].data = data;
  EXPECT_TRUE(Encode(opt).empty());
  const Bytes wire = Encode(opt, kMaxEnoOptionLen);
  ASSERT_EQ(wire.size(), 41u);
  EXPECT_EQ(wire[1], 41);
  ExpectSameOption(MustParse(wire), opt);
}

TEST(EnoOptionTest, EncodeRespectsSmallMaxLen) {
  EnoSynOption opt;
  ASSERT_TRUE(opt.Add(kX, false));
  ASSERT_TRUE(opt.Add(kY, false));
  EXPECT_TRUE(Encode(opt, 3).empty());
  EXPECT_EQ(Encode(opt, 4).size(), 4u);
  EXPECT_TRUE(Encode(EnoSynOption{}, 1).empty());
  EXPECT_TRUE(Encode(EnoSynOption{}, 0).empty());
}

TEST(EnoOptionTest, EncodeAllowsUpTo255WithLargeMaxLen) {
  Bytes data(252, 0x11);  // 2 + 1 + 252 = 255
  EnoSynOption opt;
  ASSERT_TRUE(opt.Add(kX, true, data));
  EXPECT_EQ(Encode(opt, kMaxEnoOptionLen).size(), 255u);
  data.push_back(0x11);  // 256: the length byte cannot say that
  opt.suboptions[0].data = data;
  EXPECT_TRUE(Encode(opt, kMaxEnoOptionLen).empty());
  EXPECT_TRUE(Encode(opt, 100000).empty());
}

TEST(EnoOptionTest, EncodeRefusesTepIdsOutsideRange) {
  for (int id : {0x00, 0x01, 0x1f, 0x80, 0x9f, 0xa0, 0xa1, 0xff}) {
    SCOPED_TRACE(id);
    for (bool v : {false, true}) {
      EnoSynOption opt;
      ASSERT_TRUE(opt.Add(static_cast<uint8_t>(id), v));
      EXPECT_TRUE(Encode(opt).empty());
      EnoSynOption two;
      ASSERT_TRUE(two.Add(kX, false));
      ASSERT_TRUE(two.Add(static_cast<uint8_t>(id), false));
      EXPECT_TRUE(Encode(two).empty());
    }
  }
  for (int id : {0x20, 0x7f}) {
    EnoSynOption opt;
    ASSERT_TRUE(opt.Add(static_cast<uint8_t>(id), false));
    EXPECT_EQ(Encode(opt), (Bytes{69, 3, static_cast<uint8_t>(id)}));
  }
}

TEST(EnoOptionTest, EncodeRefusesMoreThan32BytesOnNonLastSuboption) {
  const Bytes data32(32, 0x33);
  const Bytes data33(33, 0x33);
  EnoSynOption opt;
  ASSERT_TRUE(opt.Add(kX, true, data32));
  ASSERT_TRUE(opt.Add(kY, false));
  Bytes wire = Encode(opt);
  ASSERT_EQ(wire.size(), 2u + 1 + 1 + 32 + 1);
  EXPECT_EQ(wire[2], 0x9f);
  ExpectSameOption(MustParse(wire), opt);

  opt.suboptions[0].data = data33;
  EXPECT_TRUE(Encode(opt, kMaxEnoOptionLen).empty());

  // 33 bytes are fine on the last suboption.
  EnoSynOption last;
  ASSERT_TRUE(last.Add(kY, false));
  ASSERT_TRUE(last.Add(kX, true, data33));
  wire = Encode(last);
  ASSERT_EQ(wire.size(), 2u + 1 + 1 + 33);
  ExpectSameOption(MustParse(wire), last);
}

// A length byte cannot say zero, so a non-last v suboption needs data.
TEST(EnoOptionTest, EncodeRefusesEmptyDataOnNonLastVSuboption) {
  EnoSynOption opt;
  ASSERT_TRUE(opt.Add(kX, true));
  ASSERT_TRUE(opt.Add(kY, false));
  EXPECT_TRUE(Encode(opt).empty());

  EnoSynOption last;
  ASSERT_TRUE(last.Add(kY, false));
  ASSERT_TRUE(last.Add(kX, true));
  EXPECT_EQ(Encode(last), (Bytes{69, 4, kY, kEnoV | kX}));
}

TEST(EnoOptionTest, EncodeRefusesDataWithoutV) {
  const Bytes data = {1, 2};
  EnoSynOption opt;
  ASSERT_TRUE(opt.Add(kX, false, data));
  EXPECT_TRUE(Encode(opt).empty());
}

TEST(EnoOptionTest, EncodeRefusesGlobalOutsideRange) {
  for (int g : {0x20, 0x21, 0x7f, 0x80, 0xff}) {
    EnoSynOption opt;
    opt.global = static_cast<uint8_t>(g);
    EXPECT_TRUE(Encode(opt).empty()) << g;
  }
  EnoSynOption opt;
  opt.global = 0x1f;
  EXPECT_EQ(Encode(opt), (Bytes{69, 3, 0x1f}));
}

TEST(EnoOptionTest, EncodeRefusesSmallOutputBufferAndWritesNothing) {
  EnoSynOption opt;
  opt.global = kEnoGlobalB;
  ASSERT_TRUE(opt.Add(kX, false));
  std::array<uint8_t, 4> exact{};
  EXPECT_EQ(EncodeEnoSynOption(opt, exact), 4u);
  EXPECT_EQ(Bytes(exact.begin(), exact.end()), (Bytes{69, 4, 0x01, kX}));

  std::array<uint8_t, 3> small = {0xee, 0xee, 0xee};
  EXPECT_EQ(EncodeEnoSynOption(opt, small), 0u);
  EXPECT_EQ(Bytes(small.begin(), small.end()), (Bytes{0xee, 0xee, 0xee}));
  EXPECT_EQ(EncodeEnoSynOption(opt, MutableByteSpan{}), 0u);
}

TEST(EnoOptionTest, EncodeRefusesCorruptCount) {
  EnoSynOption opt;
  opt.count = EnoSynOption::kMaxSuboptions + 1;
  EXPECT_TRUE(Encode(opt, kMaxEnoOptionLen).empty());
}

TEST(EnoOptionTest, AddFailsWhenFull) {
  EnoSynOption opt;
  for (size_t i = 0; i < EnoSynOption::kMaxSuboptions; ++i) {
    ASSERT_TRUE(opt.Add(kX, false));
  }
  EXPECT_FALSE(opt.Add(kY, false));
  EXPECT_EQ(opt.count, EnoSynOption::kMaxSuboptions);
  // 2 + 255 bytes: too long for any ENO option.
  EXPECT_TRUE(Encode(opt, kMaxEnoOptionLen).empty());
}

TEST(EnoOptionTest, MostSuboptionsThatFit) {
  EnoSynOption opt;
  for (size_t i = 0; i < kMaxEnoOptionLen - 2; ++i) {
    ASSERT_TRUE(opt.Add(static_cast<uint8_t>(0x20 + i % 0x60), false));
  }
  const Bytes wire = Encode(opt, kMaxEnoOptionLen);
  ASSERT_EQ(wire.size(), kMaxEnoOptionLen);
  ExpectSameOption(MustParse(wire), opt);
}

// ---------------------------------------------------------------------------
// Property tests with a fixed seed.

// A random valid option: encodes iff its computed size fits, and parses back
// to the same meaning, with byte-identical re-encoding.
TEST(EnoOptionTest, RandomValidOptionsRoundTrip) {
  std::mt19937 rng(8547);
  auto uniform = [&rng](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  std::vector<Bytes> storage(16);
  size_t encoded = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    SCOPED_TRACE(iter);
    EnoSynOption opt;
    opt.explicit_global = uniform(0, 1) == 1;
    opt.global = uniform(0, 3) == 0 ? 0 : static_cast<uint8_t>(uniform(0, 0x1f));
    const int n = uniform(0, 12);
    size_t expected = 2 + ((opt.explicit_global || opt.global != 0) ? 1 : 0);
    for (int i = 0; i < n; ++i) {
      const bool last = i + 1 == n;
      const uint8_t tep = static_cast<uint8_t>(uniform(0x20, 0x7f));
      const bool v = uniform(0, 2) == 0;
      Bytes& data = storage[static_cast<size_t>(i)];
      data.clear();
      if (v) {
        const int len = last ? uniform(0, 60) : uniform(1, 32);
        for (int j = 0; j < len; ++j) {
          data.push_back(static_cast<uint8_t>(uniform(0, 255)));
        }
        expected += (last ? 1 : 2) + data.size();
      } else {
        expected += 1;
      }
      ASSERT_TRUE(opt.Add(tep, v, data));
    }

    const size_t max_len = uniform(0, 1) ? kMaxEnoOptionLen : kMaxEnoOptionLenInSyn;
    const Bytes wire = Encode(opt, max_len);
    if (expected > max_len) {
      EXPECT_TRUE(wire.empty());
      continue;
    }
    ASSERT_EQ(wire.size(), expected);
    ++encoded;
    EnoSynOption parsed;
    ASSERT_TRUE(ParseEnoSynOption(wire, &parsed));
    // An explicit 0x00 comes back explicit; a nonzero global always does.
    EnoSynOption want = opt;
    want.explicit_global = opt.explicit_global || opt.global != 0;
    ExpectSameOption(parsed, want);
    for (const EnoSuboption& s : parsed.tep_suboptions()) {
      if (!s.data.empty()) {
        EXPECT_TRUE(BorrowsFrom(s.data, wire));
      }
    }
    EXPECT_EQ(Encode(parsed, max_len), wire);
    if (HasFailure()) break;
  }
  EXPECT_GT(encoded, 5000u);  // the generator is not degenerate
}

// Random byte strings framed as ENO options: whatever is accepted survives
// parse -> encode(255) -> parse, and the encoding is no longer than the
// input.
TEST(EnoOptionTest, RandomBytesParseRoundTrip) {
  std::mt19937 rng(8548);
  std::uniform_int_distribution<int> byte(0, 255);
  // Bias toward interesting bytes: globals, length bytes, TEPs.
  const std::array<uint8_t, 10> interesting = {0x00, 0x01, 0x1f, 0x20, 0x7f,
                                               0x80, 0x82, 0x9f, 0xa0, 0xff};
  size_t accepted = 0;
  for (int iter = 0; iter < 50000; ++iter) {
    SCOPED_TRACE(iter);
    const size_t len = 2 + static_cast<size_t>(byte(rng)) % 40;
    Bytes wire = {69, static_cast<uint8_t>(len)};
    while (wire.size() < len) {
      const int r = byte(rng);
      wire.push_back(r < 128 ? interesting[static_cast<size_t>(r) % interesting.size()]
                             : static_cast<uint8_t>(byte(rng)));
    }
    EnoSynOption opt;
    if (!ParseEnoSynOption(wire, &opt)) continue;
    ++accepted;
    const Bytes again = Encode(opt, kMaxEnoOptionLen);
    ASSERT_FALSE(again.empty());
    EXPECT_LE(again.size(), wire.size());
    EnoSynOption reparsed;
    ASSERT_TRUE(ParseEnoSynOption(again, &reparsed));
    ExpectSameOption(opt, reparsed);
    if (HasFailure()) break;
  }
  EXPECT_GT(accepted, 1000u);
}

}  // namespace
}  // namespace tcpcrypt
