#include "auth/pake2plus/spake2plus.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include <algorithm>
#include <memory>
#include <string_view>
#include <utility>

#include "auth/pake2plus/spake2plus_internal.h"
#include "core_transport/engine/hkdf.h"

namespace tcpcrypt::auth::pake {
namespace {

struct BnDeleter {
  void operator()(BIGNUM* bn) const { BN_clear_free(bn); }
};
struct BnCtxDeleter {
  void operator()(BN_CTX* ctx) const { BN_CTX_free(ctx); }
};
struct PointDeleter {
  void operator()(EC_POINT* p) const { EC_POINT_clear_free(p); }
};
struct GroupDeleter {
  void operator()(EC_GROUP* g) const { EC_GROUP_free(g); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;
using BnCtxPtr = std::unique_ptr<BN_CTX, BnCtxDeleter>;
using PointPtr = std::unique_ptr<EC_POINT, PointDeleter>;
using GroupPtr = std::unique_ptr<EC_GROUP, GroupDeleter>;
using internal::SecretPoint;

// RFC 9383 §4, P-256: M and N as SEC1 compressed points.
constexpr uint8_t kMCompressed[33] = {
    0x02, 0x88, 0x6e, 0x2f, 0x97, 0xac, 0xe4, 0x6e, 0x55, 0xba, 0x9d,
    0xd7, 0x24, 0x25, 0x79, 0xf2, 0x99, 0x3b, 0x64, 0xe1, 0x6e, 0xf3,
    0xdc, 0xab, 0x95, 0xaf, 0xd4, 0x97, 0x33, 0x3d, 0x8f, 0xa1, 0x2f};
constexpr uint8_t kNCompressed[33] = {
    0x03, 0xd8, 0xbb, 0xd6, 0xc6, 0x39, 0xc6, 0x29, 0x37, 0xb0, 0x4d,
    0x99, 0x7f, 0x38, 0xc3, 0x77, 0x07, 0x19, 0xc6, 0x29, 0xd7, 0x01,
    0x4d, 0x49, 0xa2, 0x4b, 0x4f, 0x98, 0xba, 0xa1, 0x29, 0x2b, 0x49};

// Suite is the P-256 group with M and N, built once per process from
// OpenSSL's named curve and never freed. Read-only afterwards, so it may be
// used from any thread.
struct Suite {
  GroupPtr group;
  PointPtr m, n;
  Point m_bytes{}, n_bytes{};
  const BIGNUM* order = nullptr;
};

const Suite* GetSuite() {
  static const Suite* const suite = []() -> const Suite* {
    auto s = std::make_unique<Suite>();
    s->group.reset(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
    if (s->group == nullptr) return nullptr;
    const EC_GROUP* g = s->group.get();
    s->order = EC_GROUP_get0_order(g);
    BnCtxPtr ctx(BN_CTX_new());
    s->m.reset(EC_POINT_new(g));
    s->n.reset(EC_POINT_new(g));
    if (ctx == nullptr || s->order == nullptr || s->m == nullptr ||
        s->n == nullptr ||
        EC_POINT_oct2point(g, s->m.get(), kMCompressed, sizeof(kMCompressed),
                           ctx.get()) != 1 ||
        EC_POINT_oct2point(g, s->n.get(), kNCompressed, sizeof(kNCompressed),
                           ctx.get()) != 1 ||
        EC_POINT_point2oct(g, s->m.get(), POINT_CONVERSION_UNCOMPRESSED,
                           s->m_bytes.data(), kPointLen,
                           ctx.get()) != kPointLen ||
        EC_POINT_point2oct(g, s->n.get(), POINT_CONVERSION_UNCOMPRESSED,
                           s->n_bytes.data(), kPointLen,
                           ctx.get()) != kPointLen) {
      return nullptr;
    }
    return s.release();
  }();
  return suite;
}

// ScalarFromBytes decodes a 32-byte big-endian scalar in [1, p-1] into a
// secure, constant-time-flagged BIGNUM, or returns nullptr.
BnPtr ScalarFromBytes(const Suite& s, ByteSpan bytes) {
  if (bytes.size() != kScalarLen) return nullptr;
  BnPtr k(BN_secure_new());
  if (k == nullptr) return nullptr;
  BN_set_flags(k.get(), BN_FLG_CONSTTIME);
  if (BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), k.get()) ==
          nullptr ||
      BN_is_zero(k.get()) || BN_cmp(k.get(), s.order) >= 0) {
    return nullptr;
  }
  return k;
}

// DecodePoint accepts only a 65-byte SEC1 uncompressed encoding of a point
// on the curve other than the identity (RFC 9383 §6). Compressed and hybrid
// (06/07) forms are refused.
PointPtr DecodePoint(const Suite& s, ByteSpan bytes, BN_CTX* ctx) {
  if (bytes.size() != kPointLen || bytes[0] != POINT_CONVERSION_UNCOMPRESSED) {
    return nullptr;
  }
  const EC_GROUP* g = s.group.get();
  PointPtr p(EC_POINT_new(g));
  if (p == nullptr ||
      EC_POINT_oct2point(g, p.get(), bytes.data(), bytes.size(), ctx) != 1 ||
      EC_POINT_is_on_curve(g, p.get(), ctx) != 1 ||
      EC_POINT_is_at_infinity(g, p.get())) {
    return nullptr;
  }
  return p;
}

// EncodePoint writes |p| SEC1 uncompressed; false for the identity.
bool EncodePoint(const Suite& s, const EC_POINT* p, BN_CTX* ctx,
                 std::span<uint8_t, kPointLen> out) {
  const EC_GROUP* g = s.group.get();
  return !EC_POINT_is_at_infinity(g, p) &&
         EC_POINT_point2oct(g, p, POINT_CONVERSION_UNCOMPRESSED, out.data(),
                            out.size(), ctx) == kPointLen;
}

// Mul returns k*Q, or k*P (the generator) when |q| is null. Each product
// is one single-scalar multiplication: OpenSSL runs those in constant time,
// whereas a combined k1*P + k2*Q call may take its variable-time wNAF path.
PointPtr Mul(const Suite& s, const BIGNUM* k, const EC_POINT* q, BN_CTX* ctx) {
  const EC_GROUP* g = s.group.get();
  PointPtr r(EC_POINT_new(g));
  if (r == nullptr) return nullptr;
  const int ok = q == nullptr ? EC_POINT_mul(g, r.get(), k, nullptr, nullptr, ctx)
                              : EC_POINT_mul(g, r.get(), nullptr, q, k, ctx);
  if (ok != 1) return nullptr;
  return r;
}

// Share computes s*P + w0*Q (X with Q = M, Y with Q = N).
Result Share(ByteSpan w0, ByteSpan scalar, const EC_POINT* q, Point* out) {
  const Suite* s = GetSuite();
  if (s == nullptr) return Result::kInternal;
  BnCtxPtr ctx(BN_CTX_secure_new());
  BnPtr w0_bn = ScalarFromBytes(*s, w0);
  BnPtr k = ScalarFromBytes(*s, scalar);
  if (ctx == nullptr || w0_bn == nullptr || k == nullptr) return Result::kInternal;
  PointPtr a = Mul(*s, k.get(), nullptr, ctx.get());
  PointPtr b = Mul(*s, w0_bn.get(), q, ctx.get());
  if (a == nullptr || b == nullptr ||
      EC_POINT_add(s->group.get(), a.get(), a.get(), b.get(), ctx.get()) != 1) {
    return Result::kInternal;
  }
  Point share;
  if (!EncodePoint(*s, a.get(), ctx.get(), share)) return Result::kInternal;
  *out = share;
  return Result::kOk;
}

// Unblind returns T = share - w0*Q, the peer's Diffie-Hellman half (Y - w0*N
// for the Prover, X - w0*M for the Verifier). nullptr with |*out_result|
// set when the share is invalid or T is the identity.
PointPtr Unblind(const Suite& s, ByteSpan share, const BIGNUM* w0,
                 const EC_POINT* q, BN_CTX* ctx, Result* out_result) {
  *out_result = Result::kBadShare;
  PointPtr t = DecodePoint(s, share, ctx);
  if (t == nullptr) return nullptr;
  *out_result = Result::kInternal;
  const EC_GROUP* g = s.group.get();
  PointPtr blind = Mul(s, w0, q, ctx);
  if (blind == nullptr || EC_POINT_invert(g, blind.get(), ctx) != 1 ||
      EC_POINT_add(g, t.get(), t.get(), blind.get(), ctx) != 1) {
    return nullptr;
  }
  // The share was w0*Q itself: Z would be the identity. An honest peer
  // does this with probability 2^-256; refuse it like an invalid share.
  if (EC_POINT_is_at_infinity(g, t.get())) {
    *out_result = Result::kBadShare;
    return nullptr;
  }
  *out_result = Result::kOk;
  return t;
}

// MulEncode sets |out| to the encoding of k*Q (never the identity: Q is not
// the identity and k is in [1, p-1] in a group of prime order).
bool MulEncode(const Suite& s, const BIGNUM* k, const EC_POINT* q, BN_CTX* ctx,
               SecretPoint* out) {
  PointPtr r = Mul(s, k, q, ctx);
  return r != nullptr && EncodePoint(s, r.get(), ctx, out->span());
}

// RandomScalar draws a scalar uniformly from [1, p-1] by rejection. For
// P-256 a 256-bit draw is in range with probability > 1 - 2^-32, so 64
// rejections in a row mean a broken Rng.
bool RandomScalar(Rng& rng, Scalar* out) {
  for (int attempt = 0; attempt < 64; ++attempt) {
    rng.Fill(out->span());
    if (IsValidScalar(out->span())) return true;
  }
  out->Wipe();
  return false;
}

std::vector<uint8_t> Copy(ByteSpan s) { return {s.begin(), s.end()}; }

void AppendLenPrefixed(SecretBuffer* tt, size_t* pos, ByteSpan field) {
  // RFC 9383 §3: len(S) is an eight-byte little-endian number.
  uint64_t n = field.size();
  for (int i = 0; i < 8; ++i) tt->data()[(*pos)++] = static_cast<uint8_t>(n >> (8 * i));
  for (uint8_t b : field) tt->data()[(*pos)++] = b;
}

}  // namespace

// --- Registration -----------------------------------------------------------

bool ReduceSeed(std::span<const uint8_t, kSeedLen> seed, Scalar* out_w0,
                Scalar* out_w1) {
  const Suite* s = GetSuite();
  if (s == nullptr) return false;
  BnCtxPtr ctx(BN_CTX_secure_new());
  if (ctx == nullptr) return false;
  Scalar w[2];
  for (int i = 0; i < 2; ++i) {
    BnPtr ws(BN_secure_new());
    BnPtr reduced(BN_secure_new());
    if (ws == nullptr || reduced == nullptr) return false;
    BN_set_flags(ws.get(), BN_FLG_CONSTTIME);
    BN_set_flags(reduced.get(), BN_FLG_CONSTTIME);
    // RFC 9383 §3.2: w0 = w0s mod p, w1 = w1s mod p.
    const ByteSpan half = ByteSpan(seed).subspan(i * kHalfSeedLen, kHalfSeedLen);
    if (BN_bin2bn(half.data(), static_cast<int>(half.size()), ws.get()) == nullptr ||
        BN_nnmod(reduced.get(), ws.get(), s->order, ctx.get()) != 1 ||
        BN_is_zero(reduced.get()) ||
        BN_bn2binpad(reduced.get(), w[i].data(), kScalarLen) != kScalarLen) {
      return false;
    }
  }
  *out_w0 = std::move(w[0]);
  *out_w1 = std::move(w[1]);
  return true;
}

bool ComputeL(ByteSpan w1, std::span<uint8_t, kPointLen> out_l) {
  const Suite* s = GetSuite();
  if (s == nullptr) return false;
  BnCtxPtr ctx(BN_CTX_secure_new());
  BnPtr k = ScalarFromBytes(*s, w1);
  if (ctx == nullptr || k == nullptr) return false;
  // RFC 9383 §3.2: L = w1*P.
  PointPtr l = Mul(*s, k.get(), nullptr, ctx.get());
  SecretArray<kPointLen> encoded;
  if (l == nullptr || !EncodePoint(*s, l.get(), ctx.get(), encoded.span())) return false;
  std::copy(encoded.span().begin(), encoded.span().end(), out_l.begin());
  return true;
}

bool IsValidScalar(ByteSpan scalar) {
  const Suite* s = GetSuite();
  return s != nullptr && ScalarFromBytes(*s, scalar) != nullptr;
}

bool IsValidPoint(ByteSpan encoded) {
  const Suite* s = GetSuite();
  if (s == nullptr) return false;
  BnCtxPtr ctx(BN_CTX_new());
  return ctx != nullptr && DecodePoint(*s, encoded, ctx.get()) != nullptr;
}

// --- Steps of Appendix A --------------------------------------------------------

namespace internal {

const Point& MPoint() {
  static const Point kEmpty{};
  const Suite* s = GetSuite();
  return s != nullptr ? s->m_bytes : kEmpty;
}

const Point& NPoint() {
  static const Point kEmpty{};
  const Suite* s = GetSuite();
  return s != nullptr ? s->n_bytes : kEmpty;
}

Result ProverShare(ByteSpan w0, ByteSpan x, Point* out_share_p) {
  const Suite* s = GetSuite();
  if (s == nullptr) return Result::kInternal;
  // A.1: X = x*P + w0*M.
  return Share(w0, x, s->m.get(), out_share_p);
}

Result VerifierShare(ByteSpan w0, ByteSpan y, Point* out_share_v) {
  const Suite* s = GetSuite();
  if (s == nullptr) return Result::kInternal;
  // A.2: Y = y*P + w0*N.
  return Share(w0, y, s->n.get(), out_share_v);
}

Result ProverSecrets(ByteSpan w0, ByteSpan w1, ByteSpan x, ByteSpan share_v,
                     SecretPoint* out_z, SecretPoint* out_v) {
  const Suite* s = GetSuite();
  if (s == nullptr) return Result::kInternal;
  BnCtxPtr ctx(BN_CTX_secure_new());
  BnPtr w0_bn = ScalarFromBytes(*s, w0);
  BnPtr w1_bn = ScalarFromBytes(*s, w1);
  BnPtr x_bn = ScalarFromBytes(*s, x);
  if (ctx == nullptr || w0_bn == nullptr || w1_bn == nullptr || x_bn == nullptr) {
    return Result::kInternal;
  }
  // A.1: not_in_subgroup(Y) aborts; T = Y - w0*N.
  Result r = Result::kInternal;
  PointPtr t = Unblind(*s, share_v, w0_bn.get(), s->n.get(), ctx.get(), &r);
  if (t == nullptr) return r;
  // A.1: Z = h*x*T, V = h*w1*T with h = 1.
  SecretPoint z, v;
  if (!MulEncode(*s, x_bn.get(), t.get(), ctx.get(), &z) ||
      !MulEncode(*s, w1_bn.get(), t.get(), ctx.get(), &v)) {
    return Result::kInternal;
  }
  *out_z = std::move(z);
  *out_v = std::move(v);
  return Result::kOk;
}

Result VerifierSecrets(ByteSpan w0, ByteSpan l, ByteSpan y, ByteSpan share_p,
                       SecretPoint* out_z, SecretPoint* out_v) {
  const Suite* s = GetSuite();
  if (s == nullptr) return Result::kInternal;
  BnCtxPtr ctx(BN_CTX_secure_new());
  BnPtr w0_bn = ScalarFromBytes(*s, w0);
  BnPtr y_bn = ScalarFromBytes(*s, y);
  if (ctx == nullptr || w0_bn == nullptr || y_bn == nullptr) return Result::kInternal;
  PointPtr l_pt = DecodePoint(*s, l, ctx.get());
  if (l_pt == nullptr) return Result::kInternal;
  // A.2: not_in_subgroup(X) aborts; T = X - w0*M.
  Result r = Result::kInternal;
  PointPtr t = Unblind(*s, share_p, w0_bn.get(), s->m.get(), ctx.get(), &r);
  if (t == nullptr) return r;
  // A.2: Z = h*y*T, V = h*y*L with h = 1.
  SecretPoint z, v;
  if (!MulEncode(*s, y_bn.get(), t.get(), ctx.get(), &z) ||
      !MulEncode(*s, y_bn.get(), l_pt.get(), ctx.get(), &v)) {
    return Result::kInternal;
  }
  *out_z = std::move(z);
  *out_v = std::move(v);
  return Result::kOk;
}

void Transcript(ByteSpan context, ByteSpan id_prover, ByteSpan id_verifier,
                ByteSpan share_p, ByteSpan share_v, ByteSpan z, ByteSpan v,
                ByteSpan w0, SecretBuffer* out_tt) {
  const ByteSpan fields[] = {context, id_prover, id_verifier, MPoint(),
                             NPoint(), share_p,  share_v,     z,
                             v,       w0};
  size_t total = 0;
  for (ByteSpan f : fields) total += 8 + f.size();
  SecretBuffer tt(total);
  size_t pos = 0;
  // §3.3: TT = len(Context) || Context || len(idProver) || idProver || ...
  for (ByteSpan f : fields) AppendLenPrefixed(&tt, &pos, f);
  *out_tt = std::move(tt);
}

bool ComputeKeySchedule(ByteSpan tt, KeySchedule* out) {
  static constexpr std::string_view kConfirmationKeys = "ConfirmationKeys";
  static constexpr std::string_view kSharedKey = "SharedKey";
  auto label = [](std::string_view l) {
    return ByteSpan(reinterpret_cast<const uint8_t*>(l.data()), l.size());
  };
  KeySchedule ks;
  unsigned int n = 0;
  // §3.4: K_main = Hash(TT).
  if (EVP_Digest(tt.data(), tt.size(), ks.k_main.data(), &n, EVP_sha256(),
                 nullptr) != 1 ||
      n != kHashLen) {
    return false;
  }
  // §3.4: KDF(nil, K_main, info) is HKDF-SHA256 with an empty salt.
  SecretArray<kSha256Len> prk;
  SecretArray<2 * kHashLen> confirmation_keys;
  if (!HkdfExtract({}, ks.k_main.span(), &prk) ||
      !HkdfExpand(prk.span(), label(kConfirmationKeys), confirmation_keys.span()) ||
      !HkdfExpand(prk.span(), label(kSharedKey), ks.k_shared.span())) {
    return false;
  }
  // §3.4: K_confirmP || K_confirmV = KDF(nil, K_main, "ConfirmationKeys").
  ks.k_confirm_p.CopyFrom(confirmation_keys.span().first(kHashLen));
  ks.k_confirm_v.CopyFrom(confirmation_keys.span().subspan(kHashLen));
  *out = std::move(ks);
  return true;
}

bool Confirm(ByteSpan key, ByteSpan share, Confirmation* out) {
  Confirmation mac;
  size_t n = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(),
                key.size(), share.data(), share.size(), mac.data(), mac.size(),
                &n) == nullptr ||
      n != kConfirmLen) {
    return false;
  }
  *out = mac;
  return true;
}

}  // namespace internal

// --- Prover -----------------------------------------------------------------

std::unique_ptr<Prover> Prover::Create(ByteSpan context, ByteSpan id_prover,
                                       ByteSpan id_verifier, ByteSpan w0,
                                       ByteSpan w1) {
  if (!IsValidScalar(w0) || !IsValidScalar(w1)) return nullptr;
  std::unique_ptr<Prover> p(new Prover());
  p->context_ = Copy(context);
  p->id_prover_ = Copy(id_prover);
  p->id_verifier_ = Copy(id_verifier);
  p->w0_.CopyFrom(w0);
  p->w1_.CopyFrom(w1);
  return p;
}

Prover::~Prover() = default;

Result Prover::Fail(Result r) {
  state_ = State::kFailed;
  error_ = r;
  w0_.Wipe();
  w1_.Wipe();
  x_.Wipe();
  return r;
}

Result Prover::Start(Rng& rng, Point* out_share_p) {
  Scalar x;
  if (state_ == State::kInit && !RandomScalar(rng, &x)) {
    return Fail(Result::kInternal);
  }
  return StartWithScalarForTesting(x.span(), out_share_p);
}

Result Prover::StartWithScalarForTesting(ByteSpan x, Point* out_share_p) {
  switch (state_) {
    case State::kInit:
      break;
    case State::kFailed:
      return error_;
    case State::kStarted:
    case State::kDone:
      return Fail(Result::kWrongState);
  }
  if (!IsValidScalar(x)) return Fail(Result::kInternal);
  // A.1 ProverInit: X = x*P + w0*M.
  Point share_p;
  const Result r = internal::ProverShare(w0_.span(), x, &share_p);
  if (r != Result::kOk) return Fail(r);
  x_.CopyFrom(x);
  share_p_ = share_p;
  *out_share_p = share_p;
  state_ = State::kStarted;
  return Result::kOk;
}

Result Prover::Finish(ByteSpan share_v, ByteSpan confirm_v,
                      Confirmation* out_confirm_p,
                      SecretArray<kHashLen>* out_k_shared) {
  switch (state_) {
    case State::kStarted:
      break;
    case State::kFailed:
      return error_;
    case State::kInit:
    case State::kDone:
      return Fail(Result::kWrongState);
  }
  // A.1 ProverFinish: check Y, then Z and V.
  internal::SecretPoint z, v;
  Result r = internal::ProverSecrets(w0_.span(), w1_.span(), x_.span(), share_v,
                                     &z, &v);
  if (r != Result::kOk) return Fail(r);
  // A.3, A.4: TT and the key schedule.
  SecretBuffer tt;
  internal::Transcript(context_, id_prover_, id_verifier_, share_p_, share_v,
                       z.span(), v.span(), w0_.span(), &tt);
  internal::KeySchedule ks;
  if (!internal::ComputeKeySchedule(tt.span(), &ks)) return Fail(Result::kInternal);
  // A.5: expected_confirmV = MAC(K_confirmV, X), compared in constant time.
  Confirmation expected_v, confirm_p;
  if (!internal::Confirm(ks.k_confirm_v.span(), share_p_, &expected_v)) {
    return Fail(Result::kInternal);
  }
  if (confirm_v.size() != kConfirmLen ||
      CRYPTO_memcmp(expected_v.data(), confirm_v.data(), kConfirmLen) != 0) {
    return Fail(Result::kBadConfirmation);
  }
  // A.5: confirmP = MAC(K_confirmP, Y).
  if (!internal::Confirm(ks.k_confirm_p.span(), share_v, &confirm_p)) {
    return Fail(Result::kInternal);
  }
  *out_confirm_p = confirm_p;
  out_k_shared->CopyFrom(ks.k_shared.span());
  w0_.Wipe();
  w1_.Wipe();
  x_.Wipe();
  state_ = State::kDone;
  return Result::kOk;
}

// --- Verifier ---------------------------------------------------------------

std::unique_ptr<Verifier> Verifier::Create(ByteSpan context, ByteSpan id_prover,
                                           ByteSpan id_verifier, ByteSpan w0,
                                           ByteSpan l) {
  if (!IsValidScalar(w0) || !IsValidPoint(l)) return nullptr;
  std::unique_ptr<Verifier> v(new Verifier());
  v->context_ = Copy(context);
  v->id_prover_ = Copy(id_prover);
  v->id_verifier_ = Copy(id_verifier);
  v->w0_.CopyFrom(w0);
  v->l_.CopyFrom(l);
  return v;
}

Verifier::~Verifier() = default;

Result Verifier::Fail(Result r) {
  state_ = State::kFailed;
  error_ = r;
  w0_.Wipe();
  l_.Wipe();
  k_confirm_p_.Wipe();
  k_shared_.Wipe();
  return r;
}

Result Verifier::Respond(ByteSpan share_p, Rng& rng, Point* out_share_v,
                         Confirmation* out_confirm_v) {
  Scalar y;
  if (state_ == State::kInit && !RandomScalar(rng, &y)) {
    return Fail(Result::kInternal);
  }
  return RespondWith(share_p, y, out_share_v, out_confirm_v);
}

Result Verifier::RespondWithScalarForTesting(ByteSpan share_p, ByteSpan y,
                                             Point* out_share_v,
                                             Confirmation* out_confirm_v) {
  Scalar y_secret;
  y_secret.CopyFrom(y);
  if (state_ == State::kInit && !IsValidScalar(y)) return Fail(Result::kInternal);
  return RespondWith(share_p, y_secret, out_share_v, out_confirm_v);
}

Result Verifier::RespondWith(ByteSpan share_p, const Scalar& y,
                             Point* out_share_v, Confirmation* out_confirm_v) {
  switch (state_) {
    case State::kInit:
      break;
    case State::kFailed:
      return error_;
    case State::kResponded:
    case State::kDone:
      return Fail(Result::kWrongState);
  }
  // A.2 VerifierFinish: check X first, then Z and V, then Y.
  internal::SecretPoint z, v;
  Result r = internal::VerifierSecrets(w0_.span(), l_.span(), y.span(), share_p, &z, &v);
  if (r != Result::kOk) return Fail(r);
  Point share_v;
  r = internal::VerifierShare(w0_.span(), y.span(), &share_v);
  if (r != Result::kOk) return Fail(r);
  // A.3, A.4: TT and the key schedule.
  SecretBuffer tt;
  internal::Transcript(context_, id_prover_, id_verifier_, share_p, share_v,
                       z.span(), v.span(), w0_.span(), &tt);
  internal::KeySchedule ks;
  if (!internal::ComputeKeySchedule(tt.span(), &ks)) return Fail(Result::kInternal);
  // A.5: confirmV = MAC(K_confirmV, X).
  Confirmation confirm_v;
  if (!internal::Confirm(ks.k_confirm_v.span(), share_p, &confirm_v)) {
    return Fail(Result::kInternal);
  }
  share_v_ = share_v;
  k_confirm_p_.CopyFrom(ks.k_confirm_p.span());
  k_shared_.CopyFrom(ks.k_shared.span());
  w0_.Wipe();
  l_.Wipe();
  *out_share_v = share_v;
  *out_confirm_v = confirm_v;
  state_ = State::kResponded;
  return Result::kOk;
}

Result Verifier::Finish(ByteSpan confirm_p, SecretArray<kHashLen>* out_k_shared) {
  switch (state_) {
    case State::kResponded:
      break;
    case State::kFailed:
      return error_;
    case State::kInit:
    case State::kDone:
      return Fail(Result::kWrongState);
  }
  // A.5: expected_confirmP = MAC(K_confirmP, Y), compared in constant time.
  Confirmation expected_p;
  if (!internal::Confirm(k_confirm_p_.span(), share_v_, &expected_p)) {
    return Fail(Result::kInternal);
  }
  if (confirm_p.size() != kConfirmLen ||
      CRYPTO_memcmp(expected_p.data(), confirm_p.data(), kConfirmLen) != 0) {
    return Fail(Result::kBadConfirmation);
  }
  out_k_shared->CopyFrom(k_shared_.span());
  k_confirm_p_.Wipe();
  k_shared_.Wipe();
  state_ = State::kDone;
  return Result::kOk;
}

}  // namespace tcpcrypt::auth::pake
