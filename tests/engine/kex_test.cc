#include "core_transport/engine/kex.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core_transport/engine/kex_internal.h"
#include "core_transport/engine/rng.h"
#include "core_transport/engine/types.h"
#include "tests/engine/vector_file.h"

namespace tcpcrypt {

// Let GoogleTest print names ("INVALID_PUBLIC_KEY", "p256") instead of bytes.
static void PrintTo(Error e, std::ostream* os) { *os << ErrorName(e); }
static void PrintTo(Tep tep, std::ostream* os) { *os << TepName(tep); }

namespace {

using Bytes = std::vector<uint8_t>;
using internal::KexKeyPairFromPrivateKey;
using testing::HexOrDie;
using testing::ReadVectorFile;
using testing::ToHex;

Bytes ToBytes(std::span<const uint8_t> s) { return Bytes(s.begin(), s.end()); }

std::string TepParamName(const ::testing::TestParamInfo<Tep>& info) {
  return std::string(TepName(info.param));
}

size_t EsLen(Tep tep) {
  switch (tep) {
    case Tep::kP256: return 32;
    case Tep::kP521: return 66;
    case Tep::kCurve25519: return 32;
  }
  return 0;
}

// ScriptedRng hands out the queued blocks in order (each must match the
// requested size), then |fill| bytes forever.
class ScriptedRng final : public Rng {
 public:
  explicit ScriptedRng(uint8_t fill) : fill_(fill) {}
  void Push(Bytes block) { blocks_.push_back(std::move(block)); }
  void Fill(std::span<uint8_t> out) override {
    ++calls_;
    if (!blocks_.empty() && blocks_.front().size() == out.size()) {
      std::copy(blocks_.front().begin(), blocks_.front().end(), out.begin());
      blocks_.pop_front();
      return;
    }
    std::fill(out.begin(), out.end(), fill_);
  }
  int calls() const { return calls_; }

 private:
  std::deque<Bytes> blocks_;
  uint8_t fill_;
  int calls_ = 0;
};

// ---------------------------------------------------------------------------
// Every TEP.

class KexTest : public ::testing::TestWithParam<Tep> {};

INSTANTIATE_TEST_SUITE_P(AllTeps, KexTest,
                         ::testing::Values(Tep::kCurve25519, Tep::kP256,
                                           Tep::kP521),
                         TepParamName);

TEST_P(KexTest, TwoKeyPairsAgree) {
  Bytes previous;
  for (int i = 0; i < 5; ++i) {
    auto a = KexKeyPair::Generate(GetParam(), SystemRng::Instance());
    auto b = KexKeyPair::Generate(GetParam(), SystemRng::Instance());
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    SecretBuffer es_a, es_b;
    ASSERT_EQ(a->Derive(b->public_wire(), &es_a), Error::kNone);
    ASSERT_EQ(b->Derive(a->public_wire(), &es_b), Error::kNone);
    EXPECT_EQ(es_a.size(), EsLen(GetParam()));
    EXPECT_TRUE(es_a.Equal(es_b));
    // Fresh pairs give fresh secrets.
    EXPECT_NE(ToBytes(es_a.span()), previous);
    previous = ToBytes(es_a.span());
  }
}

TEST_P(KexTest, PublicWireLenMatches) {
  auto pair = KexKeyPair::Generate(GetParam(), SystemRng::Instance());
  ASSERT_NE(pair, nullptr);
  EXPECT_EQ(pair->tep(), GetParam());
  EXPECT_EQ(pair->public_wire().size(), PublicWireLen(GetParam()));
}

TEST(KexLengthsTest, PublicWireLenValues) {
  // RFC 8548 §5: 32 raw bytes for Curve25519; 2 + compressed point for EC.
  EXPECT_EQ(PublicWireLen(Tep::kCurve25519), 32u);
  EXPECT_EQ(PublicWireLen(Tep::kP256), 2u + 33u);
  EXPECT_EQ(PublicWireLen(Tep::kP521), 2u + 67u);
}

TEST_P(KexTest, DeterministicRngIsReproducible) {
  DeterministicRng r1(42), r2(42), r3(43);
  auto a = KexKeyPair::Generate(GetParam(), r1);
  auto b = KexKeyPair::Generate(GetParam(), r2);
  auto c = KexKeyPair::Generate(GetParam(), r3);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(ToHex(a->public_wire()), ToHex(b->public_wire()));
  EXPECT_NE(ToHex(a->public_wire()), ToHex(c->public_wire()));
  // And a second draw from the same stream is a different key.
  auto a2 = KexKeyPair::Generate(GetParam(), r1);
  ASSERT_NE(a2, nullptr);
  EXPECT_NE(ToHex(a->public_wire()), ToHex(a2->public_wire()));
}

TEST_P(KexTest, RejectsWrongSize) {
  DeterministicRng rng(7);
  auto a = KexKeyPair::Generate(GetParam(), rng);
  auto b = KexKeyPair::Generate(GetParam(), rng);
  ASSERT_TRUE(a && b);
  const Bytes good = ToBytes(b->public_wire());
  SecretBuffer es;
  for (size_t len = 0; len < good.size(); ++len) {
    EXPECT_EQ(a->Derive(std::span(good).first(len), &es),
              Error::kInvalidPublicKey)
        << "truncated to " << len;
  }
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_EQ(a->Derive(longer, &es), Error::kInvalidPublicKey);
  EXPECT_TRUE(es.empty());  // nothing was written on failure
  EXPECT_EQ(a->Derive(good, &es), Error::kNone);
}

TEST_P(KexTest, NullOutputIsInternalError) {
  DeterministicRng rng(8);
  auto a = KexKeyPair::Generate(GetParam(), rng);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->Derive(a->public_wire(), nullptr), Error::kInternal);
}

// A server may share one key pair across connections (RFC 8548 §3.3), so
// Derive runs on many threads at once.
TEST_P(KexTest, ConcurrentDeriveAgrees) {
  auto server = KexKeyPair::Generate(GetParam(), SystemRng::Instance());
  ASSERT_NE(server, nullptr);
  constexpr int kThreads = 4;
  std::vector<std::unique_ptr<KexKeyPair>> clients;
  std::vector<Bytes> expected;
  for (int i = 0; i < kThreads; ++i) {
    clients.push_back(KexKeyPair::Generate(GetParam(), SystemRng::Instance()));
    ASSERT_NE(clients.back(), nullptr);
    SecretBuffer es;
    ASSERT_EQ(clients.back()->Derive(server->public_wire(), &es), Error::kNone);
    expected.push_back(ToBytes(es.span()));
  }
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        SecretBuffer es;
        if (server->Derive(clients[t]->public_wire(), &es) != Error::kNone ||
            ToBytes(es.span()) != expected[t]) {
          ++failures[t];
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

TEST(KexGenerateTest, UnknownTepFails) {
  DeterministicRng rng(9);
  EXPECT_EQ(KexKeyPair::Generate(static_cast<Tep>(0x24), rng), nullptr);
  EXPECT_EQ(PublicWireLen(static_cast<Tep>(0x24)), 0u);
}

// ---------------------------------------------------------------------------
// X25519.

TEST(X25519Test, Rfc7748KnownAnswer) {
  const auto records = ReadVectorFile("rfc7748_x25519.txt");
  ASSERT_TRUE(records.has_value()) << "cannot read rfc7748_x25519.txt";
  ASSERT_EQ(records->size(), 1u);
  const testing::VectorRecord& r = records->front();
  const auto alice_private = r.Bytes("alice_private");
  const auto alice_public = r.Bytes("alice_public");
  const auto bob_private = r.Bytes("bob_private");
  const auto bob_public = r.Bytes("bob_public");
  const auto shared = r.Bytes("shared");
  ASSERT_TRUE(alice_private && alice_public && bob_private && bob_public &&
              shared);

  auto alice = KexKeyPairFromPrivateKey(Tep::kCurve25519, *alice_private);
  auto bob = KexKeyPairFromPrivateKey(Tep::kCurve25519, *bob_private);
  ASSERT_TRUE(alice && bob);
  EXPECT_EQ(ToHex(alice->public_wire()), ToHex(*alice_public));
  EXPECT_EQ(ToHex(bob->public_wire()), ToHex(*bob_public));
  SecretBuffer k1, k2;
  ASSERT_EQ(alice->Derive(*bob_public, &k1), Error::kNone);
  ASSERT_EQ(bob->Derive(*alice_public, &k2), Error::kNone);
  EXPECT_EQ(ToHex(k1.span()), ToHex(*shared));
  EXPECT_EQ(ToHex(k2.span()), ToHex(*shared));
}

// RFC 8548 §5 / RFC 7748 §6.1: a peer key that forces an all-zero secret is
// refused. These are points of order 1, 2, 4 and 8, some in non-canonical
// form (u >= p).
TEST(X25519Test, RejectsLowOrderPoints) {
  auto pair = KexKeyPair::Generate(Tep::kCurve25519, SystemRng::Instance());
  ASSERT_NE(pair, nullptr);
  const char* kLowOrder[] = {
      // u = 0 (order 2 point (0, 0), and the neutral element's image).
      "0000000000000000000000000000000000000000000000000000000000000000",
      // u = 1 (order 4).
      "0100000000000000000000000000000000000000000000000000000000000000",
      // A point of order 8.
      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
      // u = p - 1, u = p (= 0), u = p + 1 (= 1).
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  };
  for (const char* hex : kLowOrder) {
    const Bytes peer = HexOrDie(hex);
    ASSERT_EQ(peer.size(), 32u);
    SecretBuffer es;
    EXPECT_EQ(pair->Derive(peer, &es), Error::kInvalidPublicKey) << hex;
    EXPECT_TRUE(es.empty());
  }
}

// RFC 7748 §5: the top bit of the u-coordinate is ignored.
TEST(X25519Test, IgnoresTopBitOfPeerKey) {
  DeterministicRng rng(10);
  auto a = KexKeyPair::Generate(Tep::kCurve25519, rng);
  auto b = KexKeyPair::Generate(Tep::kCurve25519, rng);
  ASSERT_TRUE(a && b);
  Bytes peer = ToBytes(b->public_wire());
  SecretBuffer plain, masked;
  ASSERT_EQ(a->Derive(peer, &plain), Error::kNone);
  peer[31] |= 0x80;
  ASSERT_EQ(a->Derive(peer, &masked), Error::kNone);
  EXPECT_TRUE(plain.Equal(masked));
}

TEST(X25519Test, FromPrivateKeyRejectsWrongLength) {
  EXPECT_EQ(KexKeyPairFromPrivateKey(Tep::kCurve25519, Bytes(31, 1)), nullptr);
  EXPECT_EQ(KexKeyPairFromPrivateKey(Tep::kCurve25519, Bytes(33, 1)), nullptr);
}

// ---------------------------------------------------------------------------
// P-256 and P-521.

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct BnCtxFree {
  void operator()(BN_CTX* c) const { BN_CTX_free(c); }
};
struct GroupFree {
  void operator()(EC_GROUP* g) const { EC_GROUP_free(g); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
using Bn = std::unique_ptr<BIGNUM, BnFree>;

class EcKexTest : public ::testing::TestWithParam<Tep> {
 protected:
  void SetUp() override {
    const bool p256 = GetParam() == Tep::kP256;
    nid_ = p256 ? NID_X9_62_prime256v1 : NID_secp521r1;
    group_name_ = p256 ? "prime256v1" : "secp521r1";
    field_len_ = p256 ? 32 : 66;
    point_len_ = 1 + field_len_;
    group_.reset(EC_GROUP_new_by_curve_name(nid_));
    ASSERT_NE(group_, nullptr);
    ASSERT_EQ(EC_GROUP_get_curve(group_.get(), p_.get(), a_.get(), b_.get(),
                                 ctx_.get()),
              1);
    ASSERT_TRUE(BN_copy(n_.get(), EC_GROUP_get0_order(group_.get())));
    pair_ = KexKeyPair::Generate(GetParam(), SystemRng::Instance());
    ASSERT_NE(pair_, nullptr);
  }

  // Wire encodes a point given its prefix octet and x as a big-endian field
  // element, behind the correct length prefix.
  Bytes Wire(uint8_t prefix, const BIGNUM* x) const {
    Bytes w(2 + point_len_);
    w[0] = static_cast<uint8_t>((2 + point_len_) >> 8);
    w[1] = static_cast<uint8_t>(2 + point_len_);
    w[2] = prefix;
    if (BN_bn2binpad(x, w.data() + 3, static_cast<int>(field_len_)) !=
        static_cast<int>(field_len_)) {
      ADD_FAILURE() << "x does not fit the field";
    }
    return w;
  }

  // IsOnCurveX tells whether x^3 + ax + b is a square mod p (Euler's
  // criterion), computed here without the EC point code under test.
  bool IsOnCurveX(const BIGNUM* x) {
    Bn rhs(BN_new()), t(BN_new()), e(BN_new());
    EXPECT_TRUE(BN_mod_sqr(t.get(), x, p_.get(), ctx_.get()));
    EXPECT_TRUE(BN_mod_mul(rhs.get(), t.get(), x, p_.get(), ctx_.get()));
    EXPECT_TRUE(BN_mod_mul(t.get(), a_.get(), x, p_.get(), ctx_.get()));
    EXPECT_TRUE(
        BN_mod_add(rhs.get(), rhs.get(), t.get(), p_.get(), ctx_.get()));
    EXPECT_TRUE(
        BN_mod_add(rhs.get(), rhs.get(), b_.get(), p_.get(), ctx_.get()));
    if (BN_is_zero(rhs.get())) return true;
    EXPECT_TRUE(BN_sub(e.get(), p_.get(), BN_value_one()));
    EXPECT_TRUE(BN_rshift1(e.get(), e.get()));
    EXPECT_TRUE(BN_mod_exp(t.get(), rhs.get(), e.get(), p_.get(), ctx_.get()));
    return BN_is_one(t.get());
  }

  // FindX returns the smallest x >= 1 that is (or is not) on the curve.
  Bn FindX(bool on_curve) {
    Bn x(BN_new());
    for (BN_ULONG v = 1; v < 1000; ++v) {
      EXPECT_TRUE(BN_set_word(x.get(), v));
      if (IsOnCurveX(x.get()) == on_curve) return x;
    }
    ADD_FAILURE() << "no x found";
    return x;
  }

  Error DeriveFrom(const Bytes& wire) {
    SecretBuffer es;
    const Error err = pair_->Derive(wire, &es);
    EXPECT_EQ(es.empty(), err != Error::kNone);
    return err;
  }

  // EvpDerive computes ECDH with OpenSSL's high-level API: the private key
  // |scalar| against the public key |peer_wire| (without its length prefix).
  std::optional<Bytes> EvpDerive(std::span<const uint8_t> scalar,
                                 std::span<const uint8_t> peer_wire) {
    Bn priv(BN_bin2bn(scalar.data(), static_cast<int>(scalar.size()), nullptr));
    const std::span<const uint8_t> peer_point = peer_wire.subspan(2);
    std::unique_ptr<EVP_PKEY, PkeyFree> own = FromData(priv.get(), {});
    std::unique_ptr<EVP_PKEY, PkeyFree> peer = FromData(nullptr, peer_point);
    if (own == nullptr || peer == nullptr) return std::nullopt;
    std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> dctx(
        EVP_PKEY_CTX_new_from_pkey(nullptr, own.get(), nullptr));
    size_t len = 0;
    if (dctx == nullptr || EVP_PKEY_derive_init(dctx.get()) != 1 ||
        EVP_PKEY_derive_set_peer(dctx.get(), peer.get()) != 1 ||
        EVP_PKEY_derive(dctx.get(), nullptr, &len) != 1) {
      return std::nullopt;
    }
    Bytes out(len);
    if (EVP_PKEY_derive(dctx.get(), out.data(), &len) != 1) return std::nullopt;
    out.resize(len);
    return out;
  }

  std::unique_ptr<EVP_PKEY, PkeyFree> FromData(
      const BIGNUM* priv, std::span<const uint8_t> pub) {
    std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> bld(
        OSSL_PARAM_BLD_new(), &OSSL_PARAM_BLD_free);
    if (bld == nullptr ||
        OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                        group_name_, 0) != 1) {
      return nullptr;
    }
    if (priv != nullptr &&
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, priv) !=
            1) {
      return nullptr;
    }
    if (!pub.empty() &&
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY,
                                         pub.data(), pub.size()) != 1) {
      return nullptr;
    }
    std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(
        OSSL_PARAM_BLD_to_param(bld.get()), &OSSL_PARAM_free);
    std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
        EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* pkey = nullptr;
    if (params == nullptr || ctx == nullptr ||
        EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &pkey,
                          priv != nullptr ? EVP_PKEY_KEYPAIR
                                          : EVP_PKEY_PUBLIC_KEY,
                          params.get()) != 1) {
      return nullptr;
    }
    return std::unique_ptr<EVP_PKEY, PkeyFree>(pkey);
  }

  // ScalarBytes encodes |k| as a private key for KexKeyPairFromPrivateKey.
  Bytes ScalarBytes(const BIGNUM* k) const {
    Bytes out(static_cast<size_t>(BN_num_bytes(n_.get())));
    EXPECT_EQ(BN_bn2binpad(k, out.data(), static_cast<int>(out.size())),
              static_cast<int>(out.size()));
    return out;
  }

  // GeneratorWire is the wire form of +G or -G, computed from the group.
  Bytes GeneratorWire(bool negate) {
    std::unique_ptr<EC_POINT, decltype(&EC_POINT_free)> g(
        EC_POINT_dup(EC_GROUP_get0_generator(group_.get()), group_.get()),
        &EC_POINT_free);
    EXPECT_NE(g, nullptr);
    if (negate) {
      EXPECT_EQ(EC_POINT_invert(group_.get(), g.get(), ctx_.get()), 1);
    }
    Bytes w(2 + point_len_);
    w[0] = static_cast<uint8_t>((2 + point_len_) >> 8);
    w[1] = static_cast<uint8_t>(2 + point_len_);
    EXPECT_EQ(EC_POINT_point2oct(group_.get(), g.get(),
                                 POINT_CONVERSION_COMPRESSED, w.data() + 2,
                                 point_len_, ctx_.get()),
              point_len_);
    return w;
  }

  int nid_ = 0;
  const char* group_name_ = nullptr;
  size_t field_len_ = 0;
  size_t point_len_ = 0;
  std::unique_ptr<EC_GROUP, GroupFree> group_;
  std::unique_ptr<BN_CTX, BnCtxFree> ctx_{BN_CTX_new()};
  Bn p_{BN_new()}, a_{BN_new()}, b_{BN_new()}, n_{BN_new()};
  std::unique_ptr<KexKeyPair> pair_;
};

INSTANTIATE_TEST_SUITE_P(NistCurves, EcKexTest,
                         ::testing::Values(Tep::kP256, Tep::kP521),
                         TepParamName);

// RFC 8548 §5: 2-byte big-endian length, then a compressed point.
TEST_P(EcKexTest, PublicKeyIsLengthThenCompressedPoint) {
  bool seen02 = false, seen03 = false;
  DeterministicRng rng(11);
  for (int i = 0; i < 32; ++i) {
    auto pair = KexKeyPair::Generate(GetParam(), rng);
    ASSERT_NE(pair, nullptr);
    const std::span<const uint8_t> w = pair->public_wire();
    ASSERT_EQ(w.size(), 2 + point_len_);
    // pubkey_len counts the whole structure, its own 2 bytes included.
    EXPECT_EQ((size_t{w[0]} << 8) | w[1], 2 + point_len_);
    ASSERT_TRUE(w[2] == 0x02 || w[2] == 0x03) << int{w[2]};
    seen02 |= w[2] == 0x02;
    seen03 |= w[2] == 0x03;
  }
  EXPECT_TRUE(seen02 && seen03);
}

TEST_P(EcKexTest, RejectsWrongLengthPrefix) {
  auto peer = KexKeyPair::Generate(GetParam(), SystemRng::Instance());
  ASSERT_NE(peer, nullptr);
  const Bytes good = ToBytes(peer->public_wire());
  ASSERT_EQ(DeriveFrom(good), Error::kNone);
  for (size_t len : {size_t{0}, point_len_ - 1, point_len_, point_len_ + 1,
                     point_len_ + 3, point_len_ + 256, size_t{0xffff}}) {
    Bytes bad = good;
    bad[0] = static_cast<uint8_t>(len >> 8);
    bad[1] = static_cast<uint8_t>(len);
    EXPECT_EQ(DeriveFrom(bad), Error::kInvalidPublicKey) << len;
  }
}

// RFC 8548 §5: only the compressed format (SEC 1 / IEEE 1363 prefix 02, 03).
TEST_P(EcKexTest, RejectsOtherPointFormats) {
  auto peer = KexKeyPair::Generate(GetParam(), SystemRng::Instance());
  ASSERT_NE(peer, nullptr);
  const Bytes good = ToBytes(peer->public_wire());
  for (int prefix : {0x00, 0x01, 0x04, 0x05, 0x06, 0x07, 0x08, 0x12, 0xff}) {
    Bytes bad = good;
    bad[2] = static_cast<uint8_t>(prefix);
    EXPECT_EQ(DeriveFrom(bad), Error::kInvalidPublicKey) << prefix;
  }
  // The point at infinity: 00 then zeros.
  Bytes infinity(good.size(), 0);
  infinity[0] = good[0];
  infinity[1] = good[1];
  EXPECT_EQ(DeriveFrom(infinity), Error::kInvalidPublicKey);
}

// IEEE 1363 A.16.10: x must give a point on the curve.
TEST_P(EcKexTest, RejectsXNotOnCurve) {
  const Bn off = FindX(false);
  const Bn on = FindX(true);
  EXPECT_EQ(DeriveFrom(Wire(0x02, off.get())), Error::kInvalidPublicKey);
  EXPECT_EQ(DeriveFrom(Wire(0x03, off.get())), Error::kInvalidPublicKey);
  // The same search finds x values that are accepted, so the rejection is
  // about the curve equation and nothing else.
  EXPECT_EQ(DeriveFrom(Wire(0x02, on.get())), Error::kNone);
  EXPECT_EQ(DeriveFrom(Wire(0x03, on.get())), Error::kNone);
}

// IEEE 1363 A.16.10: x must be in [0, p-1]; x + p is not another name for x.
TEST_P(EcKexTest, RejectsXOutOfRange) {
  const Bn on = FindX(true);
  Bn x_plus_p(BN_new());
  ASSERT_TRUE(BN_add(x_plus_p.get(), on.get(), p_.get()));
  ASSERT_LE(BN_num_bytes(x_plus_p.get()), static_cast<int>(field_len_));
  EXPECT_EQ(DeriveFrom(Wire(0x02, x_plus_p.get())), Error::kInvalidPublicKey);
  EXPECT_EQ(DeriveFrom(Wire(0x03, x_plus_p.get())), Error::kInvalidPublicKey);
  // x = p.
  EXPECT_EQ(DeriveFrom(Wire(0x02, p_.get())), Error::kInvalidPublicKey);
  // x = all ones.
  Bytes ones(2 + point_len_, 0xff);
  ones[0] = static_cast<uint8_t>((2 + point_len_) >> 8);
  ones[1] = static_cast<uint8_t>(2 + point_len_);
  ones[2] = 0x02;
  EXPECT_EQ(DeriveFrom(ones), Error::kInvalidPublicKey);
}

// ES must equal what OpenSSL's own ECDH (EVP_PKEY_derive) computes, in both
// directions, including the left padding of x to the field size.
TEST_P(EcKexTest, MatchesEvpEcdh) {
  DeterministicRng rng(12);
  const int top_bits = BN_num_bits(n_.get()) % 8;
  int leading_zero = 0;
  for (int i = 0; i < 32; ++i) {
    SCOPED_TRACE(i);
    Bytes sa(static_cast<size_t>(BN_num_bytes(n_.get())));
    Bytes sb(sa.size());
    rng.Fill(sa);
    rng.Fill(sb);
    if (top_bits != 0) {
      sa[0] &= static_cast<uint8_t>((1u << top_bits) - 1);
      sb[0] &= static_cast<uint8_t>((1u << top_bits) - 1);
    }
    auto a = KexKeyPairFromPrivateKey(GetParam(), sa);
    auto b = KexKeyPairFromPrivateKey(GetParam(), sb);
    ASSERT_TRUE(a && b);  // out of range with probability < 2^-32
    SecretBuffer es;
    ASSERT_EQ(a->Derive(b->public_wire(), &es), Error::kNone);
    ASSERT_EQ(es.size(), field_len_);
    const auto evp_ab = EvpDerive(sa, b->public_wire());
    const auto evp_ba = EvpDerive(sb, a->public_wire());
    ASSERT_TRUE(evp_ab.has_value() && evp_ba.has_value());
    EXPECT_EQ(ToHex(es.span()), ToHex(*evp_ab));
    EXPECT_EQ(ToHex(es.span()), ToHex(*evp_ba));
    leading_zero += es.data()[0] == 0;
  }
  // P-521's x has 521 bits in 66 bytes, so about half the secrets start with
  // a zero byte; make sure the padding was exercised.
  if (GetParam() == Tep::kP521) {
    EXPECT_GT(leading_zero, 0);
  }
}

TEST_P(EcKexTest, PrivateKeyOneGivesTheGenerator) {
  Bn k(BN_new());
  ASSERT_TRUE(BN_one(k.get()));
  auto one = KexKeyPairFromPrivateKey(GetParam(), ScalarBytes(k.get()));
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(ToHex(one->public_wire()), ToHex(GeneratorWire(false)));
  ASSERT_TRUE(BN_sub(k.get(), n_.get(), BN_value_one()));
  auto minus_one = KexKeyPairFromPrivateKey(GetParam(), ScalarBytes(k.get()));
  ASSERT_NE(minus_one, nullptr);
  EXPECT_EQ(ToHex(minus_one->public_wire()), ToHex(GeneratorWire(true)));
}

TEST_P(EcKexTest, FromPrivateKeyRejectsOutOfRange) {
  Bn k(BN_new());
  BN_zero(k.get());
  EXPECT_EQ(KexKeyPairFromPrivateKey(GetParam(), ScalarBytes(k.get())),
            nullptr);
  EXPECT_EQ(KexKeyPairFromPrivateKey(GetParam(), ScalarBytes(n_.get())),
            nullptr);
  ASSERT_TRUE(BN_add(k.get(), n_.get(), BN_value_one()));
  EXPECT_EQ(KexKeyPairFromPrivateKey(GetParam(), ScalarBytes(k.get())),
            nullptr);
  const size_t len = static_cast<size_t>(BN_num_bytes(n_.get()));
  EXPECT_EQ(KexKeyPairFromPrivateKey(GetParam(), Bytes(len, 0xff)), nullptr);
  EXPECT_EQ(KexKeyPairFromPrivateKey(GetParam(), Bytes(len - 1, 1)), nullptr);
  EXPECT_EQ(KexKeyPairFromPrivateKey(GetParam(), Bytes(len + 1, 1)), nullptr);
}

// The private scalar is rejection-sampled into [1, n-1].
TEST_P(EcKexTest, GenerateRejectsOutOfRangeDraws) {
  const size_t len = static_cast<size_t>(BN_num_bytes(n_.get()));
  Bytes one(len, 0);
  one.back() = 1;
  ScriptedRng rng(0x00);
  rng.Push(Bytes(len, 0xff));  // >= n even after masking to n's bit length
  rng.Push(Bytes(len, 0x00));  // zero
  rng.Push(one);               // the first valid draw
  auto pair = KexKeyPair::Generate(GetParam(), rng);
  ASSERT_NE(pair, nullptr);
  EXPECT_EQ(rng.calls(), 3);
  EXPECT_EQ(ToHex(pair->public_wire()), ToHex(GeneratorWire(false)));
}

TEST_P(EcKexTest, GenerateFailsOnBrokenRng) {
  ScriptedRng zeros(0x00), ones(0xff);
  EXPECT_EQ(KexKeyPair::Generate(GetParam(), zeros), nullptr);
  EXPECT_EQ(KexKeyPair::Generate(GetParam(), ones), nullptr);
}

}  // namespace
}  // namespace tcpcrypt
