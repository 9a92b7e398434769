// fuzz_frames.cc: libFuzzer target for the frame stream (RFC 8548 §4.2).
//
// Two engines complete a deterministic handshake. Then the input is a
// script: A writes chunks, rekeys and shuts down as the input says, and one
// byte of A's output may be flipped (position and mask from the input)
// before B receives it, cut into pieces of input-chosen sizes. Properties:
// B never delivers anything but a prefix of what A wrote; with no flip B
// delivers all of it (and the EOF if A sent FINp); with a flip inside the
// frames B fails with a named error; a carrier EOF before FINp is never a
// clean end of file.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core_transport/engine/engine.h"

namespace tcpcrypt {
namespace {

void Check(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "fuzz_frames: property violated: %s\n", what);
    std::abort();
  }
}

struct Script {
  const uint8_t* p;
  size_t n;
  uint8_t Next() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  uint16_t Next16() { return static_cast<uint16_t>((Next() << 8) | Next()); }
};

void Move(Engine& from, Engine& to) {
  ByteSpan out = from.PendingOutput();
  std::vector<uint8_t> copy(out.begin(), out.end());
  from.ConsumeOutput(copy.size());
  if (!copy.empty()) Check(to.Feed(copy) == Error::kNone, "handshake feed");
}

}  // namespace
}  // namespace tcpcrypt

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tcpcrypt;
  Script s{data, size};
  static ManualClock clock;
  DeterministicRng rng_a(3), rng_b(4);
  EngineConfig ca;
  const uint8_t cipher_pick = s.Next() % 3;
  ca.ciphers = {cipher_pick == 0   ? Cipher::kAes128Gcm
                : cipher_pick == 1 ? Cipher::kAes256Gcm
                                   : Cipher::kChaCha20Poly1305};
  ca.max_frame_data = 1 + s.Next() % 64;
  Engine a(Engine::Role::kActive, ca, rng_a, clock);
  Engine b(Engine::Role::kPassive, {}, rng_b, clock);
  Check(a.Start() == Error::kNone && b.Start() == Error::kNone, "start");
  Move(a, b);
  Move(b, a);
  Check(a.established() && b.established(), "handshake");

  // A's actions.
  std::vector<uint8_t> written;
  bool fin = false;
  const int actions = s.Next() % 8;
  for (int i = 0; i < actions && !fin; ++i) {
    const uint8_t op = s.Next() % 4;
    if (op == 0 || op == 1) {
      std::vector<uint8_t> chunk(s.Next() % 200);
      for (auto& c : chunk) c = s.Next();
      Check(a.Write(chunk) == Error::kNone, "write");
      written.insert(written.end(), chunk.begin(), chunk.end());
    } else if (op == 2) {
      Check(a.RequestRekey() == Error::kNone, "rekey");
    } else {
      Check(a.Shutdown() == Error::kNone, "shutdown");
      fin = true;
    }
  }
  std::vector<uint8_t> wire(a.PendingOutput().begin(), a.PendingOutput().end());
  a.ConsumeOutput(wire.size());

  // Optional corruption.
  const uint16_t flip_at = s.Next16();
  const uint8_t mask = s.Next();
  const bool flipped = mask != 0 && flip_at < wire.size();
  if (flipped) wire[flip_at] ^= mask;

  // Deliver in pieces; then maybe the carrier ends.
  std::vector<uint8_t> got;
  size_t pos = 0;
  Error e = Error::kNone;
  while (pos < wire.size() && e == Error::kNone) {
    size_t piece = 1 + s.Next() % 97;
    if (s.n == 0) piece = wire.size() - pos;
    piece = std::min(piece, wire.size() - pos);
    e = b.Feed(ByteSpan(wire).subspan(pos, piece));
    pos += piece;
    std::vector<uint8_t> buf(b.plaintext_available());
    buf.resize(b.Read(buf));
    got.insert(got.end(), buf.begin(), buf.end());
  }
  Check(got.size() <= written.size() &&
            (got.empty() || std::memcmp(got.data(), written.data(), got.size()) == 0),
        "delivered bytes that A did not write");
  if (!flipped) {
    Check(e == Error::kNone, "clean stream failed");
    Check(got == written, "clean stream lost data");
    Check(b.peer_finished() == fin, "FINp not reported exactly");
  }
  const Error eof = b.OnCarrierEof();
  if (!b.peer_finished()) Check(eof != Error::kNone, "truncation reported as EOF");
  // Every byte on the wire is authenticated: a flip always ends in failure.
  if (flipped) Check(b.failed(), "a flipped bit went unnoticed");
  return 0;
}
