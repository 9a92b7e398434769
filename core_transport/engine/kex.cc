#include "core_transport/engine/kex.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <sodium.h>

#include <array>
#include <utility>

#include "core_transport/engine/bytes.h"
#include "core_transport/engine/kex_internal.h"

namespace tcpcrypt {
namespace {

// RFC 8548 §5: X25519 keys travel as 32 raw bytes; EC keys as a 2-byte
// length and a compressed point (1 + field bytes).
constexpr size_t kX25519Len = 32;
constexpr size_t kP256PointLen = 1 + 32;
constexpr size_t kP521PointLen = 1 + 66;
constexpr size_t kMaxPointLen = kP521PointLen;
constexpr size_t kMaxScalarLen = 66;  // bytes of the P-521 group order

static_assert(crypto_scalarmult_BYTES == kX25519Len);
static_assert(crypto_scalarmult_SCALARBYTES == kX25519Len);

struct BnDeleter {
  void operator()(BIGNUM* bn) const { BN_clear_free(bn); }
};
struct BnCtxDeleter {
  void operator()(BN_CTX* ctx) const { BN_CTX_free(ctx); }
};
struct PointDeleter {
  void operator()(EC_POINT* p) const { EC_POINT_clear_free(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;
using BnCtxPtr = std::unique_ptr<BN_CTX, BnCtxDeleter>;
using PointPtr = std::unique_ptr<EC_POINT, PointDeleter>;

bool SodiumReady() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

// ---------------------------------------------------------------------------
// TCPCRYPT_ECDHE_Curve25519

class X25519KeyPair final : public KexKeyPair {
 public:
  static std::unique_ptr<KexKeyPair> FromPrivate(
      std::span<const uint8_t> private_key) {
    if (private_key.size() != kX25519Len || !SodiumReady()) return nullptr;
    auto pair = std::make_unique<X25519KeyPair>();
    pair->private_.CopyFrom(private_key);
    // RFC 7748 §6.1: the public key is X25519(a, 9).
    if (crypto_scalarmult_base(pair->public_.data(), pair->private_.data()) !=
        0) {
      return nullptr;
    }
    return pair;
  }

  Tep tep() const override { return Tep::kCurve25519; }
  std::span<const uint8_t> public_wire() const override { return public_; }

  Error Derive(std::span<const uint8_t> peer_wire,
               SecretBuffer* out_es) const override {
    if (out_es == nullptr) return Error::kInternal;
    // RFC 8548 §5: Curve25519 keys are sent "directly with no length prefix".
    if (peer_wire.size() != kX25519Len) return Error::kInvalidPublicKey;
    SecretArray<kX25519Len> es;
    // RFC 8548 §5 / RFC 7748 §6.1: abort on an all-zero shared secret.
    // libsodium returns -1 for it, which covers every small-order peer key.
    if (crypto_scalarmult(es.data(), private_.data(), peer_wire.data()) != 0) {
      return Error::kInvalidPublicKey;
    }
    *out_es = SecretBuffer(es.span());
    return Error::kNone;
  }

 private:
  SecretArray<kX25519Len> private_;
  std::array<uint8_t, kX25519Len> public_{};
};

// ---------------------------------------------------------------------------
// TCPCRYPT_ECDHE_P256 and TCPCRYPT_ECDHE_P521

// Curve is one NIST curve's group (made once, never freed, only read after)
// and its encoding sizes.
struct Curve {
  Tep tep = Tep::kP256;
  const EC_GROUP* group = nullptr;
  size_t field_len = 0;   // bytes of p: the length of ES
  size_t point_len = 0;   // 1 + field_len: a compressed point
  size_t scalar_len = 0;  // bytes of the order n
  uint8_t scalar_top_mask = 0xff;  // keeps a drawn scalar within n's bits
};

Curve MakeCurve(Tep tep, int nid, size_t expected_point_len) {
  Curve c;
  c.tep = tep;
  EC_GROUP* group = EC_GROUP_new_by_curve_name(nid);
  if (group == nullptr) return c;
  const BIGNUM* order = EC_GROUP_get0_order(group);
  c.field_len = (static_cast<size_t>(EC_GROUP_get_degree(group)) + 7) / 8;
  c.point_len = 1 + c.field_len;
  c.scalar_len = static_cast<size_t>(BN_num_bytes(order));
  const int top_bits = BN_num_bits(order) % 8;
  c.scalar_top_mask =
      top_bits == 0 ? 0xff : static_cast<uint8_t>((1u << top_bits) - 1);
  if (c.point_len != expected_point_len || c.scalar_len > kMaxScalarLen) {
    EC_GROUP_free(group);
    return c;
  }
  c.group = group;
  return c;
}

// CurveFor returns the curve for an EC TEP, or nullptr for another TEP or if
// OpenSSL lacks the curve.
const Curve* CurveFor(Tep tep) {
  // C++11 guarantees thread-safe initialisation of function statics.
  static const Curve p256 =
      MakeCurve(Tep::kP256, NID_X9_62_prime256v1, kP256PointLen);
  static const Curve p521 = MakeCurve(Tep::kP521, NID_secp521r1, kP521PointLen);
  const Curve* c = nullptr;
  switch (tep) {
    case Tep::kP256: c = &p256; break;
    case Tep::kP521: c = &p521; break;
    case Tep::kCurve25519: break;
  }
  return c != nullptr && c->group != nullptr ? c : nullptr;
}

enum class ScalarResult { kOk, kOutOfRange, kLibraryError };

// ScalarFromBytes loads the big-endian |bytes| into |out| and checks that it
// is a valid private key: 1 <= k <= n-1.
ScalarResult ScalarFromBytes(const Curve& curve, std::span<const uint8_t> bytes,
                             BIGNUM* out) {
  if (bytes.size() != curve.scalar_len) return ScalarResult::kOutOfRange;
  if (BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), out) == nullptr) {
    return ScalarResult::kLibraryError;
  }
  if (BN_is_zero(out) || BN_cmp(out, EC_GROUP_get0_order(curve.group)) >= 0) {
    return ScalarResult::kOutOfRange;
  }
  return ScalarResult::kOk;
}

class EcKeyPair final : public KexKeyPair {
 public:
  // Create takes ownership of the private scalar |k| (in [1, n-1], in a
  // secure BIGNUM) and computes the encoded public key.
  static std::unique_ptr<KexKeyPair> Create(const Curve& curve, BnPtr k) {
    auto pair = std::make_unique<EcKeyPair>();
    pair->curve_ = &curve;
    pair->private_ = std::move(k);
    BN_set_flags(pair->private_.get(), BN_FLG_CONSTTIME);

    BnCtxPtr ctx(BN_CTX_secure_new());
    PointPtr pub(EC_POINT_new(curve.group));
    if (ctx == nullptr || pub == nullptr) return nullptr;
    // IEEE 1363 ECSVDP-DH key pair: W = s * G.
    if (EC_POINT_mul(curve.group, pub.get(), pair->private_.get(), nullptr,
                     nullptr, ctx.get()) != 1) {
      return nullptr;
    }
    // RFC 8548 §5: pubkey_len (big-endian) then the point in "compressed
    // format" (IEEE 1363 §E.2.3).
    uint8_t* point = pair->wire_.data() + 2;
    if (EC_POINT_point2oct(curve.group, pub.get(), POINT_CONVERSION_COMPRESSED,
                           point, curve.point_len,
                           ctx.get()) != curve.point_len) {
      return nullptr;
    }
    // The figure in RFC 8548 §5 numbers the whole structure, prefix
    // included, as bytes 0 .. L-1 with pubkey_len = L: the length counts
    // its own two bytes (as the original tcpcrypt implementation sends).
    StoreBe16(pair->wire_.data(), static_cast<uint16_t>(2 + curve.point_len));
    pair->wire_len_ = 2 + curve.point_len;
    return pair;
  }

  Tep tep() const override { return curve_->tep; }
  std::span<const uint8_t> public_wire() const override {
    return std::span<const uint8_t>(wire_.data(), wire_len_);
  }

  Error Derive(std::span<const uint8_t> peer_wire,
               SecretBuffer* out_es) const override {
    if (out_es == nullptr) return Error::kInternal;
    const Error err = DeriveInto(peer_wire, out_es);
    // A rejected key leaves entries on this thread's OpenSSL error queue;
    // nothing reads them, so do not let a peer make them pile up.
    if (err != Error::kNone) ERR_clear_error();
    return err;
  }

 private:
  Error DeriveInto(std::span<const uint8_t> peer_wire,
                   SecretBuffer* out_es) const {
    const Curve& c = *curve_;
    // RFC 8548 §5: pubkey_len = L (2 bytes, big-endian) is the length of
    // the whole structure, itself included; the compressed point fills the
    // remaining L - 2 bytes and nothing else may follow.
    Reader reader(peer_wire);
    uint16_t len = 0;
    ByteSpan point;
    if (peer_wire.size() != 2 + c.point_len || !reader.ReadU16(&len) ||
        len != 2 + c.point_len || !reader.ReadBytes(c.point_len, &point) ||
        !reader.empty()) {
      return Error::kInvalidPublicKey;
    }
    // RFC 8548 §5: compressed format only, so the first octet is 02 or 03;
    // 00 (infinity), 04 (uncompressed) and 06/07 (hybrid) are refused.
    if (point[0] != 0x02 && point[0] != 0x03) return Error::kInvalidPublicKey;

    BnCtxPtr ctx(BN_CTX_secure_new());
    PointPtr peer(EC_POINT_new(c.group));
    PointPtr shared(EC_POINT_new(c.group));
    BnPtr x(BN_secure_new());
    BnPtr y(BN_secure_new());
    if (ctx == nullptr || peer == nullptr || shared == nullptr ||
        x == nullptr || y == nullptr) {
      return Error::kInternal;
    }
    // RFC 8548 §5 / IEEE 1363 A.16.10: x is in [0, p-1] and x^3 + ax + b has
    // a square root (oct2point checks both while decompressing), the point
    // is on the curve and is not the point at infinity. The cofactor is 1,
    // so such a point has order n and needs no further check.
    if (EC_POINT_oct2point(c.group, peer.get(), point.data(), point.size(),
                           ctx.get()) != 1 ||
        EC_POINT_is_at_infinity(c.group, peer.get()) ||
        EC_POINT_is_on_curve(c.group, peer.get(), ctx.get()) != 1) {
      return Error::kInvalidPublicKey;
    }
    // IEEE 1363 §7.2.1 ECSVDP-DH: P = s * W; "error" if P is the point at
    // infinity; z = x_P.
    if (EC_POINT_mul(c.group, shared.get(), nullptr, peer.get(),
                     private_.get(), ctx.get()) != 1) {
      return Error::kInternal;
    }
    if (EC_POINT_is_at_infinity(c.group, shared.get())) {
      return Error::kInvalidPublicKey;
    }
    if (EC_POINT_get_affine_coordinates(c.group, shared.get(), x.get(),
                                        y.get(), ctx.get()) != 1) {
      return Error::kInternal;
    }
    // RFC 8548 §5: ES is the field element x_P, left-padded to the field size.
    SecretBuffer es(c.field_len);
    if (BN_bn2binpad(x.get(), es.data(), static_cast<int>(es.size())) !=
        static_cast<int>(es.size())) {
      return Error::kInternal;
    }
    *out_es = std::move(es);
    return Error::kNone;
  }

  const Curve* curve_ = nullptr;
  BnPtr private_;
  std::array<uint8_t, 2 + kMaxPointLen> wire_{};
  size_t wire_len_ = 0;
};

std::unique_ptr<KexKeyPair> GenerateEc(const Curve& curve, Rng& rng) {
  BnPtr k(BN_secure_new());
  if (k == nullptr) return nullptr;
  SecretArray<kMaxScalarLen> buf;
  const std::span<uint8_t> bytes = buf.span().first(curve.scalar_len);
  // Rejection sampling into [1, n-1]: masking to n's bit length makes a draw
  // land in range with probability > 1/2 (P-256: 1 - 2^-32), so 64 rejections
  // in a row mean a broken Rng.
  for (int attempt = 0; attempt < 64; ++attempt) {
    rng.Fill(bytes);
    bytes[0] &= curve.scalar_top_mask;
    switch (ScalarFromBytes(curve, bytes, k.get())) {
      case ScalarResult::kOk: return EcKeyPair::Create(curve, std::move(k));
      case ScalarResult::kOutOfRange: continue;
      case ScalarResult::kLibraryError: return nullptr;
    }
  }
  return nullptr;
}

}  // namespace

size_t PublicWireLen(Tep tep) {
  switch (tep) {
    case Tep::kP256: return 2 + kP256PointLen;
    case Tep::kP521: return 2 + kP521PointLen;
    case Tep::kCurve25519: return kX25519Len;
  }
  return 0;
}

std::unique_ptr<KexKeyPair> KexKeyPair::Generate(Tep tep, Rng& rng) {
  switch (tep) {
    case Tep::kP256:
    case Tep::kP521: {
      const Curve* curve = CurveFor(tep);
      if (curve == nullptr) return nullptr;
      return GenerateEc(*curve, rng);
    }
    case Tep::kCurve25519: {
      SecretArray<kX25519Len> private_key;
      rng.Fill(private_key.span());
      return X25519KeyPair::FromPrivate(private_key.span());
    }
  }
  return nullptr;
}

namespace internal {

std::unique_ptr<KexKeyPair> KexKeyPairFromPrivateKey(
    Tep tep, std::span<const uint8_t> private_key) {
  switch (tep) {
    case Tep::kP256:
    case Tep::kP521: {
      const Curve* curve = CurveFor(tep);
      BnPtr k(BN_secure_new());
      if (curve == nullptr || k == nullptr ||
          ScalarFromBytes(*curve, private_key, k.get()) != ScalarResult::kOk) {
        return nullptr;
      }
      return EcKeyPair::Create(*curve, std::move(k));
    }
    case Tep::kCurve25519:
      return X25519KeyPair::FromPrivate(private_key);
  }
  return nullptr;
}

}  // namespace internal
}  // namespace tcpcrypt
