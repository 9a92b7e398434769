// Two engines in one process: no sockets, deterministic randomness.
#include "core_transport/engine/engine.h"

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "core_transport/engine/init_messages.h"
#include "core_transport/engine/kex.h"

namespace tcpcrypt {
namespace {

std::vector<uint8_t> Bytes(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 131 + seed);
  return v;
}

// Moves every pending byte from |from| to |to|. Returns the feed error.
Error Transfer(Engine& from, Engine& to) {
  ByteSpan out = from.PendingOutput();
  std::vector<uint8_t> copy(out.begin(), out.end());
  from.ConsumeOutput(copy.size());
  if (copy.empty()) return to.failed() ? to.error() : Error::kNone;
  return to.Feed(copy);
}

// Pumps both ways until neither side has anything to send.
void Pump(Engine& a, Engine& b) {
  for (int i = 0; i < 64; ++i) {
    if (a.PendingOutput().empty() && b.PendingOutput().empty()) return;
    (void)Transfer(a, b);
    (void)Transfer(b, a);
  }
}

std::vector<uint8_t> ReadAll(Engine& e) {
  std::vector<uint8_t> got(e.plaintext_available());
  got.resize(e.Read(got));
  return got;
}

struct Pair {
  Pair(EngineConfig ca, EngineConfig cb, uint64_t seed = 1)
      : rng_a(seed), rng_b(seed + 1000),
        a(Engine::Role::kActive, std::move(ca), rng_a, clock),
        b(Engine::Role::kPassive, std::move(cb), rng_b, clock) {}

  void Handshake() {
    ASSERT_EQ(a.Start(), Error::kNone);
    ASSERT_EQ(b.Start(), Error::kNone);
    Pump(a, b);
  }

  ManualClock clock;
  DeterministicRng rng_a;
  DeterministicRng rng_b;
  Engine a;
  Engine b;
};

void ExpectEstablished(Pair& p) {
  ASSERT_TRUE(p.a.established()) << ErrorName(p.a.error());
  ASSERT_TRUE(p.b.established()) << ErrorName(p.b.error());
  EXPECT_TRUE(std::equal(p.a.session_id().begin(), p.a.session_id().end(),
                         p.b.session_id().begin()));
  EXPECT_EQ(p.a.tep(), p.b.tep());
  EXPECT_EQ(p.a.cipher(), p.b.cipher());
}

void ExpectDataFlows(Pair& p, size_t n) {
  const auto to_b = Pattern(n, 7);
  const auto to_a = Pattern(n / 2 + 1, 9);
  ASSERT_EQ(p.a.Write(to_b), Error::kNone);
  ASSERT_EQ(p.b.Write(to_a), Error::kNone);
  Pump(p.a, p.b);
  EXPECT_EQ(ReadAll(p.b), to_b);
  EXPECT_EQ(ReadAll(p.a), to_a);
}

// ---------------------------------------------------------------------------
// Every TEP x AEAD.

class EngineMatrixTest
    : public ::testing::TestWithParam<std::tuple<Tep, Cipher>> {};

TEST_P(EngineMatrixTest, HandshakeDataAndCleanEof) {
  const auto [tep, cipher] = GetParam();
  EngineConfig ca;
  ca.teps = {tep};
  ca.ciphers = {cipher};
  EngineConfig cb;
  cb.teps = {Tep::kCurve25519, Tep::kP256, Tep::kP521};
  Pair p(ca, cb);
  p.Handshake();
  ExpectEstablished(p);
  EXPECT_EQ(p.a.tep(), tep);
  EXPECT_EQ(p.a.cipher(), cipher);
  EXPECT_EQ(p.a.session_id()[0], static_cast<uint8_t>(tep));  // v = 0
  EXPECT_FALSE(p.a.resumed());
  EXPECT_EQ(p.a.public_key_operations(), 1u);
  EXPECT_EQ(p.b.public_key_operations(), 1u);
  ExpectDataFlows(p, 200000);  // spans several 64 KiB frames

  ASSERT_EQ(p.a.Shutdown(), Error::kNone);
  Pump(p.a, p.b);
  EXPECT_TRUE(p.b.peer_finished());
  EXPECT_EQ(p.b.OnCarrierEof(), Error::kNone);
  EXPECT_EQ(p.a.Write(Bytes("late")), Error::kClosed);
  // B may still send after A's FINp (half close).
  ASSERT_EQ(p.b.Write(Bytes("bye")), Error::kNone);
  ASSERT_EQ(p.b.Shutdown(), Error::kNone);
  Pump(p.a, p.b);
  EXPECT_EQ(ReadAll(p.a), Bytes("bye"));
  EXPECT_TRUE(p.a.peer_finished());
}

INSTANTIATE_TEST_SUITE_P(
    AllTepsAndCiphers, EngineMatrixTest,
    ::testing::Combine(::testing::Values(Tep::kCurve25519, Tep::kP256,
                                         Tep::kP521),
                       ::testing::Values(Cipher::kAes128Gcm, Cipher::kAes256Gcm,
                                         Cipher::kChaCha20Poly1305)),
    [](const auto& test_info) {
      return std::string(TepName(std::get<0>(test_info.param))) + "_" +
             std::string(CipherName(std::get<1>(test_info.param)));
    });

TEST(EngineTest, DeterministicRngGivesReproducibleSessionIds) {
  Pair p1({}, {}, 42), p2({}, {}, 42), p3({}, {}, 43);
  p1.Handshake();
  p2.Handshake();
  p3.Handshake();
  ExpectEstablished(p1);
  EXPECT_TRUE(std::equal(p1.a.session_id().begin(), p1.a.session_id().end(),
                         p2.a.session_id().begin()));
  EXPECT_FALSE(std::equal(p1.a.session_id().begin(), p1.a.session_id().end(),
                          p3.a.session_id().begin()));
}

TEST(EngineTest, SingleTepSendsInit1BehindOption) {
  Pair p({}, {});
  ASSERT_EQ(p.a.Start(), Error::kNone);
  ByteSpan out = p.a.PendingOutput();
  // 45 03 23 | Init1 (3 ciphers by default).
  ASSERT_EQ(out.size(), 3 + Init1Length(3, Tep::kCurve25519));
  EXPECT_EQ(out[0], 69);
  EXPECT_EQ(out[1], 3);
  EXPECT_EQ(out[2], 0x23);
  EXPECT_EQ(LoadBe32(out.data() + 3), kInit1Magic);
}

TEST(EngineTest, SeveralTepsWaitForB) {
  EngineConfig ca;
  ca.teps = {Tep::kP256, Tep::kCurve25519};
  EngineConfig cb;
  cb.teps = {Tep::kP521, Tep::kCurve25519, Tep::kP256};
  Pair p(ca, cb);
  ASSERT_EQ(p.a.Start(), Error::kNone);
  EXPECT_EQ(p.a.PendingOutput().size(), 4u);  // 45 04 21 23
  ASSERT_EQ(p.b.Start(), Error::kNone);
  Pump(p.a, p.b);
  ExpectEstablished(p);
  EXPECT_EQ(p.a.tep(), Tep::kCurve25519);  // B's first choice A offered
  ExpectDataFlows(p, 1000);
}

TEST(EngineTest, CipherChosenByBPreference) {
  EngineConfig ca;
  ca.ciphers = {Cipher::kAes128Gcm, Cipher::kChaCha20Poly1305};
  EngineConfig cb;
  cb.ciphers = {Cipher::kAes256Gcm, Cipher::kChaCha20Poly1305, Cipher::kAes128Gcm};
  Pair p(ca, cb);
  p.Handshake();
  ExpectEstablished(p);
  EXPECT_EQ(p.a.cipher(), Cipher::kChaCha20Poly1305);
}

TEST(EngineTest, TranscriptIsAOptionThenBOption) {
  Pair p({}, {});
  p.Handshake();
  ExpectEstablished(p);
  const std::vector<uint8_t> want = {69, 3, 0x23, 69, 4, 0x01, 0x23};
  EXPECT_EQ(std::vector<uint8_t>(p.a.transcript().begin(), p.a.transcript().end()), want);
  EXPECT_EQ(std::vector<uint8_t>(p.b.transcript().begin(), p.b.transcript().end()), want);
}

TEST(EngineTest, ApplicationAwareBits) {
  EngineConfig ca;
  ca.application_aware = true;
  EngineConfig cb;
  cb.application_aware = true;
  cb.require_peer_application_aware = true;
  Pair p(ca, cb);
  p.Handshake();
  ExpectEstablished(p);
  EXPECT_TRUE(p.a.peer_application_aware());
  EXPECT_TRUE(p.b.peer_application_aware());
}

TEST(EngineTest, MandatoryApplicationAwareFailsWithoutA) {
  EngineConfig cb;
  cb.require_peer_application_aware = true;
  Pair p({}, cb);
  p.Handshake();
  EXPECT_EQ(p.b.error(), Error::kEnoFailed);
  EXPECT_EQ(p.a.error(), Error::kEnoFailed);  // B's vacuous reply
}

// ---------------------------------------------------------------------------
// Resumption (RFC 8548 §3.5).

struct ResumeFixture {
  ResumptionCache client_cache;
  ResumptionCache server_cache;
  EngineConfig Client() {
    EngineConfig c;
    c.resumption_cache = &client_cache;
    c.peer_name = "server:1";
    c.export_keys = true;
    return c;
  }
  EngineConfig Server() {
    EngineConfig c;
    c.resumption_cache = &server_cache;
    c.export_keys = true;
    return c;
  }
};

TEST(EngineResumptionTest, SecondConnectionResumesWithoutEcdh) {
  ResumeFixture f;
  Pair first(f.Client(), f.Server(), 1);
  first.Handshake();
  ExpectEstablished(first);
  EXPECT_EQ(f.client_cache.size(), 1u);
  EXPECT_EQ(f.server_cache.size(), 1u);

  Pair second(f.Client(), f.Server(), 2);
  second.Handshake();
  ExpectEstablished(second);
  EXPECT_TRUE(second.a.resumed());
  EXPECT_TRUE(second.b.resumed());
  EXPECT_EQ(second.a.public_key_operations(), 0u);
  EXPECT_EQ(second.b.public_key_operations(), 0u);
  EXPECT_EQ(second.a.session_id()[0], 0x23 | 0x80);  // v bit set
  EXPECT_FALSE(std::equal(first.a.session_id().begin(), first.a.session_id().end(),
                          second.a.session_id().begin()));
  EXPECT_EQ(second.a.cipher(), first.a.cipher());
  ExpectDataFlows(second, 70000);

  // And again: ss[2], a third distinct session ID.
  Pair third(f.Client(), f.Server(), 3);
  third.Handshake();
  ExpectEstablished(third);
  EXPECT_TRUE(third.a.resumed());
  EXPECT_FALSE(std::equal(third.a.session_id().begin(), third.a.session_id().end(),
                          second.a.session_id().begin()));
  ExpectDataFlows(third, 10);
}

TEST(EngineResumptionTest, ResumedOptionShape) {
  ResumeFixture f;
  Pair first(f.Client(), f.Server(), 1);
  first.Handshake();
  Pair second(f.Client(), f.Server(), 2);
  ASSERT_EQ(second.a.Start(), Error::kNone);
  ByteSpan out = second.a.PendingOutput();
  // 45 len | 0xa3 | resume{0..8} | nonce_a (8): 2 + 1 + 17 bytes, no Init1.
  ASSERT_EQ(out.size(), 20u);
  EXPECT_EQ(out[1], 20);
  EXPECT_EQ(out[2], 0xa3);
}

TEST(EngineResumptionTest, ServerWithoutTicketFallsBackToFresh) {
  ResumeFixture f;
  Pair first(f.Client(), f.Server(), 1);
  first.Handshake();
  f.server_cache.FlushAll();
  Pair second(f.Client(), f.Server(), 2);
  second.Handshake();
  ExpectEstablished(second);
  EXPECT_FALSE(second.a.resumed());
  EXPECT_EQ(second.a.public_key_operations(), 1u);
  EXPECT_EQ(second.a.session_id()[0], 0x23);
  ExpectDataFlows(second, 100);
}

TEST(EngineResumptionTest, TicketIsSingleUse) {
  ResumeFixture f;
  Pair first(f.Client(), f.Server(), 1);
  first.Handshake();
  // Copy of the resumption offer replayed to the server after it was used.
  Pair second(f.Client(), f.Server(), 2);
  ASSERT_EQ(second.a.Start(), Error::kNone);
  std::vector<uint8_t> offer(second.a.PendingOutput().begin(),
                             second.a.PendingOutput().end());
  ASSERT_EQ(second.b.Start(), Error::kNone);
  Pump(second.a, second.b);
  ASSERT_TRUE(second.b.resumed());

  DeterministicRng rng(99);
  ManualClock clock;
  EngineConfig cb = f.Server();
  Engine replay_b(Engine::Role::kPassive, cb, rng, clock);
  ASSERT_EQ(replay_b.Start(), Error::kNone);
  ASSERT_EQ(replay_b.Feed(offer), Error::kNone);
  EXPECT_FALSE(replay_b.resumed());  // the secret is gone; fresh is offered
  EXPECT_EQ(replay_b.state(), Engine::State::kAwaitInit1);
}

TEST(EngineResumptionTest, ApplicationControls) {
  ResumeFixture f;
  Pair first(f.Client(), f.Server(), 1);
  first.Handshake();

  // 1) ignore resumption: fresh, though a ticket exists (and it is kept).
  EngineConfig ignore = f.Client();
  ignore.ignore_resumption = true;
  ignore.no_cache = true;
  Pair fresh(ignore, f.Server(), 2);
  fresh.Handshake();
  ExpectEstablished(fresh);
  EXPECT_FALSE(fresh.a.resumed());

  // 2) the ticket from |first| is still there and resumes.
  Pair second(f.Client(), f.Server(), 3);
  second.Handshake();
  EXPECT_TRUE(second.a.resumed());

  // 3) flush what |second| cached: the next connection is fresh.
  second.a.FlushResumptionState();
  second.b.FlushResumptionState();
  Pair third(f.Client(), f.Server(), 4);
  third.Handshake();
  ExpectEstablished(third);
  EXPECT_FALSE(third.a.resumed());

  // 4) no_cache: nothing cached, so the next one is fresh too.
  f.client_cache.FlushAll();
  EngineConfig nocache = f.Client();
  nocache.no_cache = true;
  Pair fourth(nocache, f.Server(), 5);
  fourth.Handshake();
  EXPECT_EQ(f.client_cache.size(), 0u);
  Pair fifth(f.Client(), f.Server(), 6);
  fifth.Handshake();
  EXPECT_FALSE(fifth.a.resumed());
}

TEST(EngineResumptionTest, MismatchedIdentifierIsRefused) {
  ResumeFixture f;
  Pair first(f.Client(), f.Server(), 1);
  first.Handshake();
  Pair second(f.Client(), f.Server(), 2);
  ASSERT_EQ(second.a.Start(), Error::kNone);
  ASSERT_EQ(second.b.Start(), Error::kNone);
  ASSERT_EQ(Transfer(second.a, second.b), Error::kNone);
  ASSERT_TRUE(second.b.resumed());
  std::vector<uint8_t> reply(second.b.PendingOutput().begin(),
                             second.b.PendingOutput().end());
  reply[5] ^= 0x01;  // 45 len 01 a3 | id[0] ...: flip an identifier byte
  EXPECT_EQ(second.a.Feed(reply), Error::kResumptionMismatch);
  EXPECT_FALSE(second.a.established());
}

TEST(EngineResumptionTest, KeyLogAgreesOnBothEnds) {
  ResumeFixture f;
  Pair first(f.Client(), f.Server(), 1);
  first.Handshake();
  Pair second(f.Client(), f.Server(), 2);
  second.Handshake();
  for (Pair* p : {&first, &second}) {
    ASSERT_NE(p->a.key_log(), nullptr);
    ASSERT_NE(p->b.key_log(), nullptr);
    EXPECT_TRUE(p->a.key_log()->mk0.Equal(p->b.key_log()->mk0));
    EXPECT_EQ(p->a.key_log()->label, p->b.key_log()->label);
    EXPECT_EQ(p->a.key_log()->a_to_b_uses_kab, p->b.key_log()->a_to_b_uses_kab);
  }
  EXPECT_EQ(first.a.key_log()->label.size(), kNonceLen);
  EXPECT_EQ(second.a.key_log()->label.size(), kResumeHalfLen + 8);
}

// ---------------------------------------------------------------------------
// Rekeying (RFC 8548 §3.8).

TEST(EngineRekeyTest, BothDirectionsMidStream) {
  Pair p({}, {});
  p.Handshake();
  ExpectDataFlows(p, 5000);
  ASSERT_EQ(p.a.RequestRekey(), Error::kNone);
  EXPECT_EQ(p.a.local_generation(), 1u);
  ExpectDataFlows(p, 5000);
  EXPECT_EQ(p.b.remote_generation(), 1u);
  EXPECT_EQ(p.b.local_generation(), 1u);  // B answered
  EXPECT_EQ(p.a.remote_generation(), 1u);

  ASSERT_EQ(p.b.RequestRekey(), Error::kNone);
  ExpectDataFlows(p, 5000);
  EXPECT_EQ(p.a.local_generation(), 2u);
  EXPECT_EQ(p.a.remote_generation(), 2u);
  EXPECT_EQ(p.b.local_generation(), 2u);
  EXPECT_EQ(p.b.remote_generation(), 2u);
}

TEST(EngineRekeyTest, AtMostOneOutstandingEmptyRekey) {
  Pair p({}, {});
  p.Handshake();
  ASSERT_EQ(p.a.RequestRekey(), Error::kNone);
  const size_t queued = p.a.PendingOutput().size();
  ASSERT_EQ(p.a.RequestRekey(), Error::kNone);
  EXPECT_EQ(p.a.PendingOutput().size(), queued);
  EXPECT_EQ(p.a.local_generation(), 1u);
  Pump(p.a, p.b);
  ExpectDataFlows(p, 10);
}

TEST(EngineRekeyTest, SimultaneousRekeysConverge) {
  Pair p({}, {});
  p.Handshake();
  ASSERT_EQ(p.a.RequestRekey(), Error::kNone);
  ASSERT_EQ(p.b.RequestRekey(), Error::kNone);
  ExpectDataFlows(p, 3000);
  EXPECT_EQ(p.a.local_generation(), 1u);
  EXPECT_EQ(p.b.local_generation(), 1u);
}

TEST(EngineRekeyTest, AutomaticAfterConfiguredBytes) {
  EngineConfig ca;
  ca.rekey_after_bytes = 100000;
  Pair p(ca, {});
  p.Handshake();
  ExpectDataFlows(p, 1000000);
  EXPECT_GE(p.a.local_generation(), 7u);
  EXPECT_EQ(p.b.remote_generation(), p.a.local_generation());
}

// ---------------------------------------------------------------------------
// Bad input: each gets its named error, and no unauthenticated plaintext.

// Captures A's and B's byte streams of a complete exchange.
struct Capture {
  std::vector<uint8_t> a_stream;  // what A sent
  std::vector<uint8_t> b_stream;
  size_t a_handshake_len = 0;     // A's option + Init1
  size_t b_handshake_len = 0;     // B's option + Init2
};

Capture Record(uint64_t seed, const std::vector<uint8_t>& a_data) {
  Capture c;
  Pair p({}, {}, seed);
  EXPECT_EQ(p.a.Start(), Error::kNone);
  EXPECT_EQ(p.b.Start(), Error::kNone);
  for (int i = 0; i < 8; ++i) {
    ByteSpan out = p.a.PendingOutput();
    c.a_stream.insert(c.a_stream.end(), out.begin(), out.end());
    (void)Transfer(p.a, p.b);
    out = p.b.PendingOutput();
    c.b_stream.insert(c.b_stream.end(), out.begin(), out.end());
    (void)Transfer(p.b, p.a);
  }
  c.a_handshake_len = c.a_stream.size();
  c.b_handshake_len = c.b_stream.size();
  EXPECT_EQ(p.a.Write(a_data), Error::kNone);
  EXPECT_EQ(p.a.Shutdown(), Error::kNone);
  ByteSpan out = p.a.PendingOutput();
  c.a_stream.insert(c.a_stream.end(), out.begin(), out.end());
  return c;
}

// Replays B's side: a fresh passive engine with B's seed sees |a_stream|.
struct Replay {
  explicit Replay(uint64_t seed) : rng(seed + 1000), b(Engine::Role::kPassive, {}, rng, clock) {
    EXPECT_EQ(b.Start(), Error::kNone);
  }
  ManualClock clock;
  DeterministicRng rng;
  Engine b;
};

TEST(EngineBadInputTest, EveryFlippedBitInAFrameIsRefused) {
  const auto data = Bytes("attack at dawn");
  const Capture c = Record(5, data);
  // Sanity: the unmodified stream replays to the plaintext and a clean EOF.
  {
    Replay r(5);
    ASSERT_EQ(r.b.Feed(c.a_stream), Error::kNone);
    EXPECT_EQ(ReadAll(r.b), data);
    EXPECT_TRUE(r.b.peer_finished());
  }
  const size_t first_frame_len = 3 + 1 + data.size() + 16;
  for (size_t i = c.a_handshake_len; i < c.a_handshake_len + first_frame_len; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto tampered = c.a_stream;
      tampered[i] ^= static_cast<uint8_t>(1 << bit);
      Replay r(5);
      Error e = r.b.Feed(tampered);
      if (e == Error::kNone) e = r.b.OnCarrierEof();
      const size_t off = i - c.a_handshake_len;
      if (off == 0 && bit == 0) {
        // The rekey bit: the frame is tried under the next generation.
        EXPECT_EQ(e, Error::kAeadFailure);
      } else if (off == 0) {
        EXPECT_EQ(e, Error::kAeadFailure) << "cres bits are authenticated";
      } else if (off == 1 || off == 2) {
        // A changed clen: too short, waiting for bytes that never come, or
        // authentication failure.
        EXPECT_TRUE(e == Error::kAeadFailure || e == Error::kTruncated ||
                    e == Error::kMalformedMessage)
            << ErrorName(e);
      } else {
        EXPECT_EQ(e, Error::kAeadFailure) << "byte " << off << " bit " << bit;
      }
      EXPECT_TRUE(r.b.failed());
      EXPECT_EQ(r.b.plaintext_available(), 0u);
      EXPECT_FALSE(r.b.peer_finished());
    }
  }
}

TEST(EngineBadInputTest, TruncatedStreamIsNotEof) {
  const auto data = Pattern(100000, 3);
  const Capture c = Record(6, data);
  for (size_t cut : {size_t{1}, size_t{2}, c.a_handshake_len - 1,
                     c.a_handshake_len, c.a_handshake_len + 5,
                     c.a_stream.size() - 30, c.a_stream.size() - 1}) {
    Replay r(6);
    ASSERT_EQ(r.b.Feed(ByteSpan(c.a_stream).first(cut)), Error::kNone);
    EXPECT_EQ(r.b.OnCarrierEof(), Error::kTruncated) << "cut at " << cut;
    EXPECT_FALSE(r.b.peer_finished());
    std::vector<uint8_t> buf(10);
    EXPECT_EQ(r.b.Read(buf), 0u);
  }
}

TEST(EngineBadInputTest, DataAfterFinIsAViolation) {
  const Capture c = Record(7, Bytes("x"));
  auto stream = c.a_stream;
  // Append a copy of the final FIN frame.
  const size_t fin_len = 3 + 1 + 16;
  stream.insert(stream.end(), c.a_stream.end() - fin_len, c.a_stream.end());
  Replay r(7);
  EXPECT_EQ(r.b.Feed(stream), Error::kProtocolViolation);
}

TEST(EngineBadInputTest, NotTcpcrypt) {
  Replay r(8);
  EXPECT_EQ(r.b.Feed(Bytes("GET / HTTP/1.1\r\n")), Error::kEnoAbsent);
  EXPECT_EQ(r.b.Write(Bytes("x")), Error::kEnoAbsent);  // sticky
}

TEST(EngineBadInputTest, MalformedOptionDisablesEncryption) {
  Replay r(9);
  // A length byte (0x81: two bytes of data) followed by a v = 0 byte.
  const std::vector<uint8_t> bad = {69, 5, 0x81, 0x23, 0x00};
  EXPECT_EQ(r.b.Feed(bad), Error::kEnoFailed);
}

TEST(EngineBadInputTest, OptionLengthBelowTwo) {
  Replay r(9);
  EXPECT_EQ(r.b.Feed(std::vector<uint8_t>{69, 1, 0x23}), Error::kEnoFailed);
}

TEST(EngineBadInputTest, NoCommonTep) {
  EngineConfig ca;
  ca.teps = {Tep::kP521};
  EngineConfig cb;
  cb.teps = {Tep::kCurve25519};
  Pair p(ca, cb);
  p.Handshake();
  EXPECT_EQ(p.b.error(), Error::kEnoFailed);
  EXPECT_EQ(p.a.error(), Error::kEnoFailed);
}

TEST(EngineBadInputTest, ServerWithoutBBitFailsEno) {
  Pair p({}, {});
  ASSERT_EQ(p.a.Start(), Error::kNone);
  EXPECT_EQ(p.a.Feed(std::vector<uint8_t>{69, 3, 0x23}), Error::kEnoFailed);
}

TEST(EngineBadInputTest, ServerPicksTepNotOffered) {
  Pair p({}, {});
  ASSERT_EQ(p.a.Start(), Error::kNone);
  EXPECT_EQ(p.a.Feed(std::vector<uint8_t>{69, 4, 0x01, 0x21}), Error::kEnoFailed);
}

TEST(EngineBadInputTest, WrongInit1Magic) {
  const Capture c = Record(10, Bytes("x"));
  auto s = c.a_stream;
  s[3] ^= 0xff;  // after 45 03 23
  Replay r(10);
  EXPECT_EQ(r.b.Feed(s), Error::kBadMagic);
}

TEST(EngineBadInputTest, OversizedInit1Length) {
  const Capture c = Record(11, Bytes("x"));
  auto s = c.a_stream;
  s[7] = 0x7f;  // message_len = 0x7f......
  Replay r(11);
  EXPECT_EQ(r.b.Feed(s), Error::kMalformedMessage);
}

TEST(EngineBadInputTest, Init1WithIgnoredTrailingBytesIsAccepted) {
  // Build A by hand: the option, then an Init1 with 5 extra bytes.
  DeterministicRng rng(12);
  auto key = KexKeyPair::Generate(Tep::kCurve25519, rng);
  std::vector<uint8_t> nonce(kNonceLen, 0x11);
  const Cipher ciphers[] = {Cipher::kAes128Gcm};
  std::vector<uint8_t> init1(Init1Length(1, Tep::kCurve25519));
  ASSERT_EQ(EncodeInit1(ciphers, nonce, key->public_wire(), Tep::kCurve25519, init1),
            init1.size());
  init1.insert(init1.end(), {1, 2, 3, 4, 5});
  StoreBe16(init1.data() + 6, static_cast<uint16_t>(init1.size()));
  std::vector<uint8_t> stream = {69, 3, 0x23};
  stream.insert(stream.end(), init1.begin(), init1.end());
  Replay r(12);
  EXPECT_EQ(r.b.Feed(stream), Error::kNone);
  EXPECT_TRUE(r.b.established());
}

TEST(EngineBadInputTest, ZeroCiphersInInit1) {
  const Capture c = Record(13, Bytes("x"));
  auto s = c.a_stream;
  s[3 + 8] = 0;  // nciphers
  Replay r(13);
  EXPECT_EQ(r.b.Feed(ByteSpan(s).first(c.a_handshake_len)), Error::kMalformedMessage);
}

TEST(EngineBadInputTest, NoCommonCipher) {
  EngineConfig ca;
  ca.ciphers = {Cipher::kAes256Gcm};
  EngineConfig cb;
  cb.ciphers = {Cipher::kAes128Gcm};
  Pair p(ca, cb);
  p.Handshake();
  EXPECT_EQ(p.b.error(), Error::kNoCommonCipher);
}

TEST(EngineBadInputTest, CipherNotOfferedInInit2) {
  EngineConfig ca;
  ca.ciphers = {Cipher::kAes128Gcm};
  Pair p(ca, {});
  ASSERT_EQ(p.a.Start(), Error::kNone);
  ASSERT_EQ(p.b.Start(), Error::kNone);
  ASSERT_EQ(Transfer(p.a, p.b), Error::kNone);
  std::vector<uint8_t> reply(p.b.PendingOutput().begin(), p.b.PendingOutput().end());
  // 45 04 01 23 | magic(4) len(4) | sym_cipher
  ASSERT_EQ(LoadBe16(reply.data() + 12), 0x0001);
  reply[13] = 0x02;  // AES-256-GCM, not offered
  EXPECT_EQ(p.a.Feed(reply), Error::kCipherNotOffered);
  reply[13] = 0x77;  // unknown id
  Pair q(ca, {});
  ASSERT_EQ(q.a.Start(), Error::kNone);
  EXPECT_EQ(q.a.Feed(reply), Error::kCipherNotOffered);
}

TEST(EngineBadInputTest, LowOrderX25519KeyIsInvalid) {
  const Capture c = Record(14, Bytes("x"));
  auto s = c.a_stream;
  // Pub_A is the last 32 bytes of Init1: make it all zero.
  std::fill(s.begin() + c.a_handshake_len - 32, s.begin() + c.a_handshake_len, 0);
  Replay r(14);
  EXPECT_EQ(r.b.Feed(s), Error::kInvalidPublicKey);
  EXPECT_TRUE(r.b.PendingOutput().size() <= 4u);  // no Init2 was queued
}

TEST(EngineBadInputTest, InvalidP256KeyIsRefused) {
  EngineConfig ca;
  ca.teps = {Tep::kP256};
  EngineConfig cb;
  cb.teps = {Tep::kP256};
  Pair p(ca, cb);
  ASSERT_EQ(p.a.Start(), Error::kNone);
  ASSERT_EQ(p.b.Start(), Error::kNone);
  std::vector<uint8_t> out(p.a.PendingOutput().begin(), p.a.PendingOutput().end());
  // Pub_A: 00 21 | 02/03 | x. An uncompressed-form prefix is refused.
  out[out.size() - 33] = 0x04;
  EXPECT_EQ(p.b.Feed(out), Error::kInvalidPublicKey);
}

TEST(EngineBadInputTest, ReplayedInit1CannotProduceData) {
  // An attacker replays A's recorded bytes (option, Init1, frames) to B.
  const Capture c = Record(15, Bytes("transfer $100"));
  DeterministicRng rng(777);  // B's randomness differs from the recording
  ManualClock clock;
  Engine b(Engine::Role::kPassive, {}, rng, clock);
  ASSERT_EQ(b.Start(), Error::kNone);
  EXPECT_EQ(b.Feed(c.a_stream), Error::kAeadFailure);
  EXPECT_EQ(b.plaintext_available(), 0u);
}

TEST(EngineBadInputTest, FailureIsSticky) {
  Replay r(16);
  ASSERT_EQ(r.b.Feed(Bytes("nope")), Error::kEnoAbsent);
  EXPECT_EQ(r.b.Feed(std::vector<uint8_t>{69, 3, 0x23}), Error::kEnoAbsent);
  EXPECT_EQ(r.b.Shutdown(), Error::kEnoAbsent);
  EXPECT_EQ(r.b.RequestRekey(), Error::kEnoAbsent);
  EXPECT_EQ(r.b.OnCarrierEof(), Error::kEnoAbsent);
}

TEST(EngineTest, WrongStateCallsAreRefusedWithoutFailing) {
  Pair p({}, {});
  EXPECT_EQ(p.a.Write(Bytes("x")), Error::kWrongState);
  ASSERT_EQ(p.a.Start(), Error::kNone);
  EXPECT_EQ(p.a.Start(), Error::kWrongState);
  EXPECT_EQ(p.a.Write(Bytes("x")), Error::kWrongState);
  EXPECT_FALSE(p.a.failed());
}

TEST(EngineTest, InvalidConfigIsRefused) {
  EngineConfig c;
  c.teps.clear();
  Pair p(c, {});
  EXPECT_EQ(p.a.Start(), Error::kInvalidArgument);
  EngineConfig d;
  d.max_frame_data = kMaxFrameData + 1;
  Pair q(d, {});
  EXPECT_EQ(q.a.Start(), Error::kInvalidArgument);
}

TEST(EngineTest, SmallFramesAndByteAtATimeDelivery) {
  EngineConfig ca;
  ca.max_frame_data = 7;
  Pair p(ca, {});
  ASSERT_EQ(p.a.Start(), Error::kNone);
  ASSERT_EQ(p.b.Start(), Error::kNone);
  // Feed every byte one at a time, both ways.
  for (int round = 0; round < 4; ++round) {
    for (Engine* from : {&p.a, &p.b}) {
      Engine* to = from == &p.a ? &p.b : &p.a;
      std::vector<uint8_t> bytes(from->PendingOutput().begin(), from->PendingOutput().end());
      from->ConsumeOutput(bytes.size());
      for (uint8_t byte : bytes) ASSERT_EQ(to->Feed(ByteSpan(&byte, 1)), Error::kNone);
    }
  }
  ExpectEstablished(p);
  const auto msg = Pattern(1000, 1);
  ASSERT_EQ(p.a.Write(msg), Error::kNone);
  std::vector<uint8_t> bytes(p.a.PendingOutput().begin(), p.a.PendingOutput().end());
  p.a.ConsumeOutput(bytes.size());
  EXPECT_EQ(bytes.size(), 1000 / 7 * (3 + 1 + 7 + 16) + (3 + 1 + 1000 % 7 + 16));
  std::vector<uint8_t> got;
  for (uint8_t byte : bytes) {
    ASSERT_EQ(p.b.Feed(ByteSpan(&byte, 1)), Error::kNone);
    auto part = ReadAll(p.b);
    got.insert(got.end(), part.begin(), part.end());
  }
  EXPECT_EQ(got, msg);
}

TEST(EngineTest, EphemeralKeyReuseIsBounded) {
  EphemeralKeyCache keys({/*max_uses=*/3, /*max_age_ms=*/0});
  for (int i = 0; i < 7; ++i) {
    EngineConfig cb;
    cb.ephemeral_keys = &keys;
    Pair p({}, cb, 100 + i);
    p.Handshake();
    ExpectEstablished(p);
  }
  EXPECT_EQ(keys.generated(), 3u);  // uses 1-3, 4-6, 7
}

}  // namespace
}  // namespace tcpcrypt
