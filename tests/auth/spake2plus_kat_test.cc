// RFC 9383 Appendix C, P256-SHA256-HKDF-SHA256-HMAC-SHA256: every value of
// the vector, step by step (spake2plus_internal.h) and through the Prover
// and Verifier objects with x and y injected.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "auth/pake2plus/spake2plus.h"
#include "auth/pake2plus/spake2plus_internal.h"
#include "tests/engine/vector_file.h"

namespace tcpcrypt::auth::pake {
namespace {

using tcpcrypt::testing::ReadVectorFile;
using tcpcrypt::testing::ToHex;

// Every field of the vector and its size in bytes (0: any).
const std::map<std::string, size_t> kFields = {
    {"Context", 0},     {"idProver", 0},   {"idVerifier", 0}, {"w0", 32},
    {"w1", 32},         {"L", 65},         {"x", 32},         {"shareP", 65},
    {"y", 32},          {"shareV", 65},    {"Z", 65},         {"V", 65},
    {"TT", 0},          {"K_main", 32},    {"K_confirmP", 32}, {"K_confirmV", 32},
    {"HMAC(K_confirmP, shareV)", 32},      {"HMAC(K_confirmV, shareP)", 32},
    {"K_shared", 32},
};

class Spake2PlusKatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto records = ReadVectorFile("rfc9383_p256.txt");
    ASSERT_TRUE(records.has_value()) << "cannot read rfc9383_p256.txt";
    // The file holds exactly the one P-256/SHA-256/HMAC vector, complete:
    // a missing or extra field fails here, so no check can pass vacuously.
    ASSERT_EQ(records->size(), 1u);
    const tcpcrypt::testing::VectorRecord& r = records->front();
    ASSERT_EQ(r.name, "P256-SHA256-HKDF-SHA256-HMAC-SHA256");
    ASSERT_EQ(r.fields.size(), kFields.size());
    for (const auto& [key, size] : kFields) {
      const auto bytes = r.Bytes(key);
      ASSERT_TRUE(bytes.has_value()) << "missing or non-hex field " << key;
      ASSERT_FALSE(bytes->empty()) << key;
      if (size != 0) {
        ASSERT_EQ(bytes->size(), size) << key;
      }
      v_[key] = *bytes;
    }
    ASSERT_EQ(std::string(v_["Context"].begin(), v_["Context"].end()),
              "SPAKE2+-P256-SHA256-HKDF-SHA256-HMAC-SHA256 Test Vectors");
    ASSERT_EQ(std::string(v_["idProver"].begin(), v_["idProver"].end()), "client");
    ASSERT_EQ(std::string(v_["idVerifier"].begin(), v_["idVerifier"].end()), "server");
  }

  const std::vector<uint8_t>& V(const std::string& key) { return v_.at(key); }

  std::map<std::string, std::vector<uint8_t>> v_;
};

// Each value computed step by step (Appendix A.1 - A.4).
TEST_F(Spake2PlusKatTest, EveryIntermediateValue) {
  int checked = 0;

  // §3.2: L = w1*P; both scalars are in range.
  EXPECT_TRUE(IsValidScalar(V("w0")));
  EXPECT_TRUE(IsValidScalar(V("w1")));
  Point l;
  ASSERT_TRUE(ComputeL(V("w1"), l));
  EXPECT_EQ(ToHex(l), ToHex(V("L")));
  ++checked;

  // A.1: X = x*P + w0*M; A.2: Y = y*P + w0*N.
  Point share_p, share_v;
  ASSERT_EQ(internal::ProverShare(V("w0"), V("x"), &share_p), Result::kOk);
  EXPECT_EQ(ToHex(share_p), ToHex(V("shareP")));
  ++checked;
  ASSERT_EQ(internal::VerifierShare(V("w0"), V("y"), &share_v), Result::kOk);
  EXPECT_EQ(ToHex(share_v), ToHex(V("shareV")));
  ++checked;

  // A.1 and A.2: both sides reach the same Z and V.
  internal::SecretPoint pz, pv, vz, vv;
  ASSERT_EQ(internal::ProverSecrets(V("w0"), V("w1"), V("x"), V("shareV"), &pz, &pv),
            Result::kOk);
  ASSERT_EQ(internal::VerifierSecrets(V("w0"), V("L"), V("y"), V("shareP"), &vz, &vv),
            Result::kOk);
  EXPECT_EQ(ToHex(pz.span()), ToHex(V("Z")));
  EXPECT_EQ(ToHex(pv.span()), ToHex(V("V")));
  EXPECT_EQ(ToHex(vz.span()), ToHex(V("Z")));
  EXPECT_EQ(ToHex(vv.span()), ToHex(V("V")));
  checked += 4;

  // A.3: TT.
  SecretBuffer tt;
  internal::Transcript(V("Context"), V("idProver"), V("idVerifier"), V("shareP"),
                       V("shareV"), V("Z"), V("V"), V("w0"), &tt);
  EXPECT_EQ(ToHex(tt.span()), ToHex(V("TT")));
  ++checked;

  // A.4: K_main, K_confirmP || K_confirmV, K_shared.
  internal::KeySchedule ks;
  ASSERT_TRUE(internal::ComputeKeySchedule(V("TT"), &ks));
  EXPECT_EQ(ToHex(ks.k_main.span()), ToHex(V("K_main")));
  EXPECT_EQ(ToHex(ks.k_confirm_p.span()), ToHex(V("K_confirmP")));
  EXPECT_EQ(ToHex(ks.k_confirm_v.span()), ToHex(V("K_confirmV")));
  EXPECT_EQ(ToHex(ks.k_shared.span()), ToHex(V("K_shared")));
  checked += 4;

  // §3.4: confirmP = MAC(K_confirmP, shareV), confirmV = MAC(K_confirmV, shareP).
  Confirmation confirm_p, confirm_v;
  ASSERT_TRUE(internal::Confirm(V("K_confirmP"), V("shareV"), &confirm_p));
  ASSERT_TRUE(internal::Confirm(V("K_confirmV"), V("shareP"), &confirm_v));
  EXPECT_EQ(ToHex(confirm_p), ToHex(V("HMAC(K_confirmP, shareV)")));
  EXPECT_EQ(ToHex(confirm_v), ToHex(V("HMAC(K_confirmV, shareP)")));
  checked += 2;

  EXPECT_EQ(checked, 14);
}

// The same run through the Prover and Verifier objects (A.5), x and y
// injected through the test-only entry points.
TEST_F(Spake2PlusKatTest, ProverAndVerifierObjects) {
  auto prover = Prover::Create(V("Context"), V("idProver"), V("idVerifier"),
                               V("w0"), V("w1"));
  auto verifier = Verifier::Create(V("Context"), V("idProver"), V("idVerifier"),
                                   V("w0"), V("L"));
  ASSERT_NE(prover, nullptr);
  ASSERT_NE(verifier, nullptr);

  Point share_p, share_v;
  Confirmation confirm_v, confirm_p;
  ASSERT_EQ(prover->StartWithScalarForTesting(V("x"), &share_p), Result::kOk);
  EXPECT_EQ(ToHex(share_p), ToHex(V("shareP")));

  ASSERT_EQ(verifier->RespondWithScalarForTesting(share_p, V("y"), &share_v, &confirm_v),
            Result::kOk);
  EXPECT_EQ(ToHex(share_v), ToHex(V("shareV")));
  EXPECT_EQ(ToHex(confirm_v), ToHex(V("HMAC(K_confirmV, shareP)")));

  SecretArray<kHashLen> prover_key, verifier_key;
  ASSERT_EQ(prover->Finish(share_v, confirm_v, &confirm_p, &prover_key), Result::kOk);
  EXPECT_EQ(ToHex(confirm_p), ToHex(V("HMAC(K_confirmP, shareV)")));
  EXPECT_EQ(ToHex(prover_key.span()), ToHex(V("K_shared")));

  ASSERT_EQ(verifier->Finish(confirm_p, &verifier_key), Result::kOk);
  EXPECT_EQ(ToHex(verifier_key.span()), ToHex(V("K_shared")));
}

// The M and N constants, decoded from §4's compressed form, are the
// uncompressed points that the vector's TT carries.
TEST_F(Spake2PlusKatTest, MAndNAsInTranscript) {
  const std::vector<uint8_t>& tt = V("TT");
  const size_t ctx = V("Context").size();
  // len(Context) || Context || len("client") || "client" || len("server") ||
  // "server" || len(M) || M || len(N) || N
  const size_t m_at = 8 + ctx + 8 + 6 + 8 + 6 + 8;
  const size_t n_at = m_at + kPointLen + 8;
  ASSERT_GE(tt.size(), n_at + kPointLen);
  EXPECT_EQ(ToHex(internal::MPoint()),
            ToHex(std::span(tt).subspan(m_at, kPointLen)));
  EXPECT_EQ(ToHex(internal::NPoint()),
            ToHex(std::span(tt).subspan(n_at, kPointLen)));
}

}  // namespace
}  // namespace tcpcrypt::auth::pake
