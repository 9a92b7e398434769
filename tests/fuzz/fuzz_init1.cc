// fuzz_init1.cc: libFuzzer target for Init1 (RFC 8548 §4.1), both the codec
// and a passive engine that receives it.
//
// Input: byte 0 picks the TEP, the rest is the Init1 message. Properties:
// whatever ParseInit1 accepts lies inside the input and has the lengths the
// TEP demands; the engine fed `45 03 <tep> | input` never crashes, never
// delivers plaintext, and is either waiting, established or failed with a
// named error.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core_transport/engine/engine.h"
#include "core_transport/engine/init_messages.h"
#include "core_transport/engine/kex.h"

namespace tcpcrypt {
namespace {

void Check(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "fuzz_init1: property violated: %s\n", what);
    std::abort();
  }
}

bool Inside(ByteSpan s, ByteSpan buf) {
  return s.data() >= buf.data() && s.data() + s.size() <= buf.data() + buf.size();
}

constexpr Tep kTeps[] = {Tep::kCurve25519, Tep::kP256, Tep::kP521};

}  // namespace
}  // namespace tcpcrypt

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tcpcrypt;
  if (size < 1) return 0;
  const Tep tep = kTeps[data[0] % 3];
  ByteSpan msg(data + 1, size - 1);

  Init1 parsed;
  if (ParseInit1(msg, tep, &parsed) == Error::kNone) {
    Check(parsed.cipher_count() >= 1, "zero ciphers accepted");
    Check(parsed.nonce.size() == kNonceLen, "nonce length");
    Check(parsed.pub.size() == PublicWireLen(tep), "pub length");
    Check(Inside(parsed.cipher_ids, msg) && Inside(parsed.nonce, msg) &&
              Inside(parsed.pub, msg),
          "field outside the message");
    Check(msg.size() >= Init1Length(parsed.cipher_count(), tep),
          "message shorter than its fields");
  }

  static ManualClock clock;
  DeterministicRng rng(1);
  EngineConfig config;
  config.teps = {tep};
  config.ciphers = {Cipher::kAes128Gcm, Cipher::kAes256Gcm,
                    Cipher::kChaCha20Poly1305};
  Engine b(Engine::Role::kPassive, config, rng, clock);
  Check(b.Start() == Error::kNone, "start");
  std::vector<uint8_t> stream = {kEnoKind, 3, static_cast<uint8_t>(tep)};
  stream.insert(stream.end(), msg.begin(), msg.end());
  const Error e = b.Feed(stream);
  Check(b.plaintext_available() == 0, "plaintext from a handshake message");
  Check((e == Error::kNone) != b.failed(), "error and state disagree");
  return 0;
}
