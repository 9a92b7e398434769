// The SPAKE2+ core (auth/pake2plus/spake2plus.h) beyond the known answer:
// registration arithmetic, point validation, wrong keys, degenerate shares,
// wrong-state calls and a broken Rng.
#include "auth/pake2plus/spake2plus.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string_view>
#include <vector>

#include "auth/pake2plus/spake2plus_internal.h"
#include "core_transport/engine/rng.h"
#include "tests/engine/vector_file.h"

namespace tcpcrypt::auth::pake {
namespace {

using tcpcrypt::testing::HexOrDie;
using tcpcrypt::testing::ToHex;

// P-256 group order n and field prime, big-endian.
const std::vector<uint8_t> kOrder =
    HexOrDie("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
const std::vector<uint8_t> kFieldPrime =
    HexOrDie("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");

std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

std::vector<uint8_t> ScalarOf(uint8_t v) {
  std::vector<uint8_t> s(kScalarLen, 0);
  s.back() = v;
  return s;
}

class ConstantRng final : public Rng {
 public:
  explicit ConstantRng(uint8_t b) : b_(b) {}
  void Fill(std::span<uint8_t> out) override { std::fill(out.begin(), out.end(), b_); }

 private:
  uint8_t b_;
};

// Scalars that make a valid registration, derived from a fixed seed.
struct Registration {
  Scalar w0, w1;
  Point l{};
};

Registration Register(uint8_t seed_byte) {
  Registration r;
  SecretArray<kSeedLen> seed;
  std::fill(seed.data(), seed.data() + kSeedLen, seed_byte);
  seed.data()[0] ^= 0x5a;
  EXPECT_TRUE(ReduceSeed(seed.span(), &r.w0, &r.w1));
  EXPECT_TRUE(ComputeL(r.w1.span(), r.l));
  return r;
}

// Points that must never be accepted as a share, each with its reason.
std::vector<std::pair<std::string, std::vector<uint8_t>>> BadPoints() {
  const Point& m = internal::MPoint();
  std::vector<std::pair<std::string, std::vector<uint8_t>>> bad;
  bad.push_back({"empty", {}});
  bad.push_back({"identity (SEC1 0x00)", {0x00}});
  bad.push_back({"all zero, 65 bytes", std::vector<uint8_t>(kPointLen, 0)});
  std::vector<uint8_t> zero_xy(kPointLen, 0);
  zero_xy[0] = 0x04;
  bad.push_back({"04 || 0 || 0", zero_xy});
  bad.push_back({"truncated (64 bytes)", {m.begin(), m.end() - 1}});
  std::vector<uint8_t> longer(m.begin(), m.end());
  longer.push_back(0);
  bad.push_back({"extended (66 bytes)", longer});
  std::vector<uint8_t> compressed = HexOrDie(
      "02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f");
  bad.push_back({"compressed M", compressed});
  std::vector<uint8_t> hybrid(m.begin(), m.end());
  hybrid[0] = static_cast<uint8_t>(0x06 | (m.back() & 1));  // valid hybrid form
  bad.push_back({"hybrid M", hybrid});
  std::vector<uint8_t> off_curve(m.begin(), m.end());
  off_curve.back() ^= 0x01;
  bad.push_back({"not on the curve", off_curve});
  std::vector<uint8_t> big_x(kPointLen, 0);
  big_x[0] = 0x04;
  std::copy(kFieldPrime.begin(), kFieldPrime.end(), big_x.begin() + 1);
  bad.push_back({"x = field prime", big_x});
  DeterministicRng rng(99);
  for (int i = 0; i < 8; ++i) {
    std::vector<uint8_t> garbage(kPointLen);
    rng.Fill(garbage);
    garbage[0] = 0x04;
    bad.push_back({"random 04 || garbage", garbage});
  }
  return bad;
}

TEST(Spake2PlusTest, ReduceSeedReducesEachHalfModOrder) {
  // §3.2: w0 = w0s mod p, w1 = w1s mod p, with 40-byte halves.
  std::vector<uint8_t> seed = HexOrDie(
      "0000000000000000ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632556");
  seed.insert(seed.end(), 40, 0xff);  // w1s = 2^320 - 1
  ASSERT_EQ(seed.size(), kSeedLen);
  Scalar w0, w1;
  ASSERT_TRUE(ReduceSeed(std::span<const uint8_t, kSeedLen>(seed), &w0, &w1));
  EXPECT_EQ(ToHex(w0.span()), ToHex(ScalarOf(5)));  // (n + 5) mod n
  EXPECT_EQ(ToHex(w1.span()),
            "fffffffe00000001431905529c0166cd22159165b6faae70f756a571fc632550");
}

TEST(Spake2PlusTest, ReduceSeedRefusesZero) {
  std::vector<uint8_t> seed = HexOrDie(
      "0000000000000001fffffffe00000001ffffffffffffffff79cdf55b4e2f3d09e7739585f8c64aa2");
  seed.insert(seed.end(), 40, 0x11);  // w0s = 2n: w0 would be 0
  Scalar w0, w1;
  EXPECT_FALSE(ReduceSeed(std::span<const uint8_t, kSeedLen>(seed), &w0, &w1));
}

TEST(Spake2PlusTest, ScalarRange) {
  std::vector<uint8_t> n_minus_1 = kOrder;
  n_minus_1.back() -= 1;
  EXPECT_TRUE(IsValidScalar(ScalarOf(1)));
  EXPECT_TRUE(IsValidScalar(n_minus_1));
  EXPECT_FALSE(IsValidScalar(ScalarOf(0)));
  EXPECT_FALSE(IsValidScalar(kOrder));
  EXPECT_FALSE(IsValidScalar(std::vector<uint8_t>(kScalarLen, 0xff)));
  EXPECT_FALSE(IsValidScalar(std::vector<uint8_t>(kScalarLen - 1, 0x01)));
  EXPECT_FALSE(IsValidScalar(std::vector<uint8_t>(kScalarLen + 1, 0x01)));
  Point l;
  EXPECT_FALSE(ComputeL(ScalarOf(0), l));
  EXPECT_FALSE(ComputeL(kOrder, l));
}

TEST(Spake2PlusTest, PointValidation) {
  EXPECT_TRUE(IsValidPoint(internal::MPoint()));
  EXPECT_TRUE(IsValidPoint(internal::NPoint()));
  for (const auto& [why, bytes] : BadPoints()) {
    EXPECT_FALSE(IsValidPoint(bytes)) << why;
  }
}

TEST(Spake2PlusTest, RoundTripAgrees) {
  const Registration reg = Register(1);
  const auto ctx = Bytes("ctx");
  auto prover = Prover::Create(ctx, Bytes("alice"), Bytes("srv"), reg.w0.span(),
                               reg.w1.span());
  auto verifier = Verifier::Create(ctx, Bytes("alice"), Bytes("srv"), reg.w0.span(), reg.l);
  ASSERT_TRUE(prover && verifier);
  DeterministicRng rng(7);
  Point x, y;
  Confirmation cv, cp;
  SecretArray<kHashLen> kp, kv;
  ASSERT_EQ(prover->Start(rng, &x), Result::kOk);
  ASSERT_EQ(verifier->Respond(x, rng, &y, &cv), Result::kOk);
  ASSERT_EQ(prover->Finish(y, cv, &cp, &kp), Result::kOk);
  ASSERT_EQ(verifier->Finish(cp, &kv), Result::kOk);
  EXPECT_TRUE(kp.Equal(kv));
  EXPECT_NE(ToHex(kp.span()), ToHex(std::vector<uint8_t>(kHashLen, 0)));
  // Single use: nothing more is accepted, and the refusal is sticky.
  EXPECT_EQ(prover->Finish(y, cv, &cp, &kp), Result::kWrongState);
  EXPECT_EQ(prover->Start(rng, &x), Result::kWrongState);
  EXPECT_EQ(verifier->Finish(cp, &kv), Result::kWrongState);
  EXPECT_EQ(verifier->Respond(x, rng, &y, &cv), Result::kWrongState);
}

// Anything that differs between the two sides breaks the confirmations:
// the context (the channel binding), either identity, or the password.
TEST(Spake2PlusTest, MismatchFailsConfirmation) {
  const Registration reg = Register(1);
  const Registration other = Register(2);
  struct Case {
    const char* what;
    std::vector<uint8_t> ctx, idp, idv;
    const Registration* prover_reg;
  };
  const Case cases[] = {
      {"context", Bytes("ctx-B"), Bytes("alice"), Bytes("srv"), &reg},
      {"idProver", Bytes("ctx-A"), Bytes("mallory"), Bytes("srv"), &reg},
      {"idVerifier", Bytes("ctx-A"), Bytes("alice"), Bytes("evil"), &reg},
      {"password", Bytes("ctx-A"), Bytes("alice"), Bytes("srv"), &other},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto prover = Prover::Create(c.ctx, c.idp, c.idv, c.prover_reg->w0.span(),
                                 c.prover_reg->w1.span());
    auto verifier = Verifier::Create(Bytes("ctx-A"), Bytes("alice"), Bytes("srv"),
                                     reg.w0.span(), reg.l);
    ASSERT_TRUE(prover && verifier);
    DeterministicRng rng(3);
    Point x, y;
    Confirmation cv, cp;
    SecretArray<kHashLen> k;
    ASSERT_EQ(prover->Start(rng, &x), Result::kOk);
    ASSERT_EQ(verifier->Respond(x, rng, &y, &cv), Result::kOk);
    EXPECT_EQ(prover->Finish(y, cv, &cp, &k), Result::kBadConfirmation);
    // Sticky.
    EXPECT_EQ(prover->Finish(y, cv, &cp, &k), Result::kBadConfirmation);
    // The Verifier refuses any confirmP: a garbage one, and (for a wrong
    // password or identity) one computed honestly by the other side's keys.
    Confirmation garbage{};
    EXPECT_EQ(verifier->Finish(garbage, &k), Result::kBadConfirmation);
    EXPECT_EQ(verifier->Finish(garbage, &k), Result::kBadConfirmation);
  }
}

TEST(Spake2PlusTest, WrongLengthConfirmationsRefused) {
  const Registration reg = Register(1);
  for (size_t len : {size_t{0}, size_t{31}, size_t{33}}) {
    auto prover = Prover::Create(Bytes("c"), Bytes("a"), Bytes("s"), reg.w0.span(),
                                 reg.w1.span());
    auto verifier = Verifier::Create(Bytes("c"), Bytes("a"), Bytes("s"), reg.w0.span(), reg.l);
    DeterministicRng rng(len);
    Point x, y;
    Confirmation cv, cp;
    SecretArray<kHashLen> k;
    ASSERT_EQ(prover->Start(rng, &x), Result::kOk);
    ASSERT_EQ(verifier->Respond(x, rng, &y, &cv), Result::kOk);
    std::vector<uint8_t> bad_cv(cv.begin(), cv.end());
    bad_cv.resize(len, 0);
    EXPECT_EQ(prover->Finish(y, bad_cv, &cp, &k), Result::kBadConfirmation) << len;
    std::vector<uint8_t> bad_cp(len, 0);
    EXPECT_EQ(verifier->Finish(bad_cp, &k), Result::kBadConfirmation) << len;
  }
}

TEST(Spake2PlusTest, InvalidSharesRefused) {
  const Registration reg = Register(1);
  for (const auto& [why, bytes] : BadPoints()) {
    SCOPED_TRACE(why);
    auto verifier = Verifier::Create(Bytes("c"), Bytes("a"), Bytes("s"), reg.w0.span(), reg.l);
    DeterministicRng rng(1);
    Point y;
    Confirmation cv;
    EXPECT_EQ(verifier->Respond(bytes, rng, &y, &cv), Result::kBadShare);
    EXPECT_EQ(verifier->Respond(bytes, rng, &y, &cv), Result::kBadShare);  // sticky

    auto prover = Prover::Create(Bytes("c"), Bytes("a"), Bytes("s"), reg.w0.span(),
                                 reg.w1.span());
    Point x;
    Confirmation cp{};
    SecretArray<kHashLen> k;
    ASSERT_EQ(prover->Start(rng, &x), Result::kOk);
    EXPECT_EQ(prover->Finish(bytes, cp, &cp, &k), Result::kBadShare);
  }
}

// With w0 = 1 the shares X = M and Y = N unblind to the identity: Z would
// be the identity, which both sides refuse.
TEST(Spake2PlusTest, DegenerateSharesRefused) {
  const Registration reg = Register(1);
  const std::vector<uint8_t> one = ScalarOf(1);
  DeterministicRng rng(5);
  auto verifier = Verifier::Create(Bytes("c"), Bytes("a"), Bytes("s"), one, reg.l);
  ASSERT_NE(verifier, nullptr);
  Point y;
  Confirmation cv;
  EXPECT_EQ(verifier->Respond(internal::MPoint(), rng, &y, &cv), Result::kBadShare);

  auto prover = Prover::Create(Bytes("c"), Bytes("a"), Bytes("s"), one, reg.w1.span());
  ASSERT_NE(prover, nullptr);
  Point x;
  Confirmation cp{};
  SecretArray<kHashLen> k;
  ASSERT_EQ(prover->Start(rng, &x), Result::kOk);
  EXPECT_EQ(prover->Finish(internal::NPoint(), cp, &cp, &k), Result::kBadShare);
}

TEST(Spake2PlusTest, WrongStateCalls) {
  const Registration reg = Register(1);
  DeterministicRng rng(9);
  Point p;
  Confirmation c{};
  SecretArray<kHashLen> k;

  auto prover = Prover::Create(Bytes("c"), Bytes("a"), Bytes("s"), reg.w0.span(),
                               reg.w1.span());
  EXPECT_EQ(prover->Finish(internal::NPoint(), c, &c, &k), Result::kWrongState);
  EXPECT_EQ(prover->Start(rng, &p), Result::kWrongState);  // failed: sticky

  prover = Prover::Create(Bytes("c"), Bytes("a"), Bytes("s"), reg.w0.span(), reg.w1.span());
  ASSERT_EQ(prover->Start(rng, &p), Result::kOk);
  EXPECT_EQ(prover->Start(rng, &p), Result::kWrongState);
  EXPECT_EQ(prover->Finish(internal::NPoint(), c, &c, &k), Result::kWrongState);

  auto verifier = Verifier::Create(Bytes("c"), Bytes("a"), Bytes("s"), reg.w0.span(), reg.l);
  EXPECT_EQ(verifier->Finish(c, &k), Result::kWrongState);
  EXPECT_EQ(verifier->Respond(internal::MPoint(), rng, &p, &c), Result::kWrongState);

  verifier = Verifier::Create(Bytes("c"), Bytes("a"), Bytes("s"), reg.w0.span(), reg.l);
  ASSERT_EQ(verifier->Respond(internal::MPoint(), rng, &p, &c), Result::kOk);
  EXPECT_EQ(verifier->Respond(internal::MPoint(), rng, &p, &c), Result::kWrongState);
  EXPECT_EQ(verifier->Finish(c, &k), Result::kWrongState);
}

TEST(Spake2PlusTest, CreateRefusesInvalidRecords) {
  const Registration reg = Register(1);
  EXPECT_EQ(Prover::Create({}, {}, {}, ScalarOf(0), reg.w1.span()), nullptr);
  EXPECT_EQ(Prover::Create({}, {}, {}, reg.w0.span(), kOrder), nullptr);
  EXPECT_EQ(Verifier::Create({}, {}, {}, kOrder, reg.l), nullptr);
  for (const auto& [why, bytes] : BadPoints()) {
    EXPECT_EQ(Verifier::Create({}, {}, {}, reg.w0.span(), bytes), nullptr) << why;
  }
}

// An Rng that never yields a scalar below the order is a failure, not a
// loop and not a zero scalar.
TEST(Spake2PlusTest, BrokenRngFails) {
  const Registration reg = Register(1);
  ConstantRng ff(0xff);
  ConstantRng zero(0x00);
  for (Rng* rng : {static_cast<Rng*>(&ff), static_cast<Rng*>(&zero)}) {
    auto prover = Prover::Create(Bytes("c"), Bytes("a"), Bytes("s"), reg.w0.span(),
                                 reg.w1.span());
    Point p;
    Confirmation c;
    EXPECT_EQ(prover->Start(*rng, &p), Result::kInternal);
    auto verifier = Verifier::Create(Bytes("c"), Bytes("a"), Bytes("s"), reg.w0.span(), reg.l);
    EXPECT_EQ(verifier->Respond(internal::MPoint(), *rng, &p, &c), Result::kInternal);
  }
}

// Test-only entry points refuse out-of-range scalars too.
TEST(Spake2PlusTest, InjectedScalarsChecked) {
  const Registration reg = Register(1);
  Point p;
  Confirmation c;
  auto prover = Prover::Create(Bytes("c"), Bytes("a"), Bytes("s"), reg.w0.span(),
                               reg.w1.span());
  EXPECT_EQ(prover->StartWithScalarForTesting(kOrder, &p), Result::kInternal);
  auto verifier = Verifier::Create(Bytes("c"), Bytes("a"), Bytes("s"), reg.w0.span(), reg.l);
  EXPECT_EQ(verifier->RespondWithScalarForTesting(internal::MPoint(), ScalarOf(0), &p, &c),
            Result::kInternal);
}

}  // namespace
}  // namespace tcpcrypt::auth::pake
