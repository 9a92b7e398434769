// fuzz_init2.cc: libFuzzer target for Init2 (RFC 8548 §4.1), both the codec
// and an active engine that receives it after a valid ENO answer.
//
// Input: byte 0 picks the TEP, the rest is the Init2 message. Properties as
// in fuzz_init1.cc, plus: an engine that reaches kEstablished saw a cipher
// it offered.
#include <algorithm>
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
    std::fprintf(stderr, "fuzz_init2: property violated: %s\n", what);
    std::abort();
  }
}

constexpr Tep kTeps[] = {Tep::kCurve25519, Tep::kP256, Tep::kP521};

}  // namespace
}  // namespace tcpcrypt

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tcpcrypt;
  if (size < 1) return 0;
  const Tep tep = kTeps[data[0] % 3];
  ByteSpan msg(data + 1, size - 1);

  Init2 parsed;
  if (ParseInit2(msg, tep, &parsed) == Error::kNone) {
    Check(parsed.nonce.size() == kNonceLen, "nonce length");
    Check(parsed.pub.size() == PublicWireLen(tep), "pub length");
    Check(msg.size() >= Init2Length(tep), "message shorter than its fields");
  }

  static ManualClock clock;
  DeterministicRng rng(2);
  EngineConfig config;
  config.teps = {tep};
  config.ciphers = {Cipher::kAes128Gcm, Cipher::kChaCha20Poly1305};
  Engine a(Engine::Role::kActive, config, rng, clock);
  Check(a.Start() == Error::kNone, "start");
  std::vector<uint8_t> stream = {kEnoKind, 4, kEnoGlobalB,
                                 static_cast<uint8_t>(tep)};
  stream.insert(stream.end(), msg.begin(), msg.end());
  const Error e = a.Feed(stream);
  Check((e == Error::kNone) != a.failed(), "error and state disagree");
  Check(a.plaintext_available() == 0, "plaintext from a handshake message");
  if (a.established()) {
    Check(std::find(config.ciphers.begin(), config.ciphers.end(), a.cipher()) !=
              config.ciphers.end(),
          "established with a cipher that was not offered");
  }
  return 0;
}
