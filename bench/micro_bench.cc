// micro_bench: Google Benchmark micro-benchmarks of the engine's building
// blocks and of every authenticator step, all in one process with no
// sockets (two engines, or two mechanism sides, wired together as the unit
// tests in tests/engine/ and tests/auth/ do).
//
//   micro_bench [--quick | --full] [--json FILE] [--benchmark_* ...]
//
//   --quick      short runs (min time 0.05 s, Argon2id at the SDK's
//                parameters only twice, fixed small iteration counts for the
//                per-step benchmarks); the whole run takes well under 40 s
//   --full       Google Benchmark's default min time (the default)
//   --json FILE  also write Google Benchmark's JSON output to FILE
//
// Every other --benchmark_* flag is passed through (for example
// --benchmark_filter=engine/handshake). Benchmark names are hierarchical:
// engine/hkdf_expand, engine/frame_seal_open/aes128gcm/16384,
// auth/pake/verifier_share_confirm, auth/x509/batch_sign/128, ...
//
// Benchmarks that time one step of a longer exchange (auth/cmac/*,
// auth/pake/*, auth/x509/batch_sign/*) use manual timing: the steps before
// the timed one run untimed, and only the step itself is measured (their
// "Time" column is the step; their "CPU" column includes the untimed setup
// and means nothing). They run a fixed number of iterations (200 with
// --quick, 2000 otherwise), which Google Benchmark shows in the name.
// engine/handshake/* report each side's CPU time as the counters
// active_cpu_us and passive_cpu_us.
#include <benchmark/benchmark.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/cmac_password/cmac_password.h"
#include "auth/common/binding.h"
#include "auth/common/decoy.h"
#include "auth/common/mechanism.h"
#include "auth/common/password_kdf.h"
#include "auth/common/ticket.h"
#include "auth/common/verifier_store.h"
#include "auth/pake2plus/pake2plus.h"
#include "auth/pake2plus/spake2plus.h"
#include "auth/x509_batch/batch_proof.h"
#include "auth/x509_batch/batch_signer.h"
#include "auth/x509_batch/merkle_tree.h"
#include "auth/x509_batch/pem.h"
#include "auth/x509_batch/test_pki.h"
#include "auth/x509_batch/x509_batch.h"
#include "core_transport/engine/aead.h"
#include "core_transport/engine/clock.h"
#include "core_transport/engine/engine.h"
#include "core_transport/engine/eno_option.h"
#include "core_transport/engine/frame.h"
#include "core_transport/engine/hkdf.h"
#include "core_transport/engine/init_messages.h"
#include "core_transport/engine/kex.h"
#include "core_transport/engine/key_schedule.h"
#include "core_transport/engine/resumption_cache.h"
#include "core_transport/engine/rng.h"
#include "core_transport/engine/secret.h"
#include "core_transport/engine/types.h"

namespace tcpcrypt::bench {
namespace {

using namespace tcpcrypt::auth;  // NOLINT: the mechanism interfaces

using WallClock = std::chrono::steady_clock;
using Bytes = std::vector<uint8_t>;

// Run-wide settings from the command line.
struct Settings {
  bool quick = false;
};
Settings g_settings;

// StepIterations is the fixed iteration count of manual-time step
// benchmarks whose untimed setup can cost far more than the timed step
// (letting Google Benchmark scale them to its min time would take minutes).
int64_t StepIterations() { return g_settings.quick ? 200 : 2000; }

double Seconds(WallClock::time_point from, WallClock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// ThreadCpuSeconds is this thread's CPU time. The per-side split of the
// handshakes uses it rather than wall time, so that other processes on a
// shared machine do not inflate it.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 131 + seed);
  return v;
}

ByteSpan Span(std::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// ===========================================================================
// Engine: HKDF.

void BM_HkdfExtract(benchmark::State& state) {
  const Bytes salt = Pattern(kNonceLen, 1);          // N_A
  const Bytes ikm = Pattern(7 + 3 + 145 + 41 + 32, 2);  // transcript|Init1|Init2|ES
  SecretArray<kSha256Len> prk;
  for (auto _ : state) {
    if (!HkdfExtract(salt, ikm, &prk)) {
      state.SkipWithError("HkdfExtract failed");
      break;
    }
    benchmark::DoNotOptimize(prk.data());
  }
}

void BM_HkdfExpand(benchmark::State& state) {
  const Bytes prk = Pattern(kSha256Len, 3);
  const uint8_t info[] = {kConstKeyA};
  std::array<uint8_t, kMaxTrafficKeyLen> out{};
  for (auto _ : state) {
    if (!HkdfExpand(prk, info, out)) {
      state.SkipWithError("HkdfExpand failed");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
}

// ===========================================================================
// Engine: key exchange.

void BM_KexKeygen(benchmark::State& state, Tep tep) {
  DeterministicRng rng(1);
  for (auto _ : state) {
    std::unique_ptr<KexKeyPair> kp = KexKeyPair::Generate(tep, rng);
    if (!kp) {
      state.SkipWithError("Generate failed");
      break;
    }
    benchmark::DoNotOptimize(kp.get());
  }
}

// Derive includes the full validation of the peer's public key (for P-256
// and P-521: decompressing the point).
void BM_KexDh(benchmark::State& state, Tep tep) {
  DeterministicRng rng(2);
  std::unique_ptr<KexKeyPair> a = KexKeyPair::Generate(tep, rng);
  std::unique_ptr<KexKeyPair> b = KexKeyPair::Generate(tep, rng);
  if (!a || !b) {
    state.SkipWithError("Generate failed");
    return;
  }
  SecretBuffer es;
  for (auto _ : state) {
    if (a->Derive(b->public_wire(), &es) != Error::kNone) {
      state.SkipWithError("Derive failed");
    }
    benchmark::DoNotOptimize(es.data());
  }
}

// ===========================================================================
// Engine: the key schedule of a fresh handshake, exactly the steps the
// engine runs (Engine::DeriveFresh + InstallSessionSecret): ss[0], mk[0],
// the session ID, k_ab and k_ba, and the next ticket (ss[1], resume[1]).
// 1 HKDF-Extract + 6 HKDF-Expand.

void BM_KeyScheduleFresh(benchmark::State& state, bool with_aead_init) {
  const Bytes n_a = Pattern(kNonceLen, 1);
  const Bytes transcript = {69, 3, 0x23, 69, 4, 0x01, 0x23};
  const Bytes init1 = Pattern(Init1Length(3, Tep::kCurve25519), 4);
  const Bytes init2 = Pattern(Init2Length(Tep::kCurve25519), 5);
  const Bytes es = Pattern(32, 6);
  const Cipher cipher = Cipher::kAes128Gcm;
  for (auto _ : state) {
    SessionSecret ss0;
    MasterKey mk0;
    std::array<uint8_t, kSessionIdLen> sid{};
    TrafficKey kab;
    TrafficKey kba;
    SessionSecret ss1;
    std::array<uint8_t, kResumeIdLen> resume{};
    bool ok = ComputeSs0(n_a, transcript, init1, init2, es, &ss0) &&
              FirstMasterKey(ss0, {}, &mk0) &&
              DeriveSessionId(ss0, {}, 0x23, &sid) &&
              DeriveTrafficKey(mk0, true, cipher, &kab) &&
              DeriveTrafficKey(mk0, false, cipher, &kba) &&
              NextSessionSecret(ss0, &ss1) && DeriveResumeId(ss1, &resume);
    if (ok && with_aead_init) {
      AeadContext send;
      AeadContext recv;
      ok = send.Init(cipher, kab.key()) && recv.Init(cipher, kba.key());
      benchmark::DoNotOptimize(&send);
      benchmark::DoNotOptimize(&recv);
    }
    if (!ok) {
      state.SkipWithError("key schedule failed");
      break;
    }
    benchmark::DoNotOptimize(sid.data());
    benchmark::DoNotOptimize(resume.data());
  }
}

void BM_AeadInit(benchmark::State& state, Cipher cipher) {
  const Bytes key = Pattern(AeadKeyLen(cipher), 9);
  for (auto _ : state) {
    AeadContext ctx;
    if (!ctx.Init(cipher, key)) {
      state.SkipWithError("Init failed");
      break;
    }
    benchmark::DoNotOptimize(&ctx);
  }
}

// ===========================================================================
// Engine: codecs.

// A's option offering three TEPs, and a resumption offer (v bit, 9-byte
// resume half + 8-byte nonce), the two shapes an active opener sends.
EnoSynOption ActiveOption(bool resume, const Bytes& resume_data) {
  EnoSynOption opt;
  if (resume) {
    opt.Add(0x23, true, resume_data);
  } else {
    opt.Add(0x23, false);
    opt.Add(0x21, false);
    opt.Add(0x22, false);
  }
  return opt;
}

void BM_EnoEncode(benchmark::State& state, bool resume) {
  const Bytes data = Pattern(kResumeHalfLen + kMaxResumeNonceLen, 1);
  std::array<uint8_t, kMaxEnoOptionLen> buf{};
  const EnoSynOption opt = ActiveOption(resume, data);
  for (auto _ : state) {
    const size_t n = EncodeEnoSynOption(opt, buf);
    if (n == 0) {
      state.SkipWithError("encode failed");
      break;
    }
    benchmark::DoNotOptimize(buf.data());
  }
}

void BM_EnoParse(benchmark::State& state, bool resume) {
  const Bytes data = Pattern(kResumeHalfLen + kMaxResumeNonceLen, 1);
  std::array<uint8_t, kMaxEnoOptionLen> buf{};
  const size_t n = EncodeEnoSynOption(ActiveOption(resume, data), buf);
  if (n == 0) {
    state.SkipWithError("encode failed");
    return;
  }
  const ByteSpan wire(buf.data(), n);
  EnoSynOption parsed;
  for (auto _ : state) {
    if (!ParseEnoSynOption(wire, &parsed)) {
      state.SkipWithError("parse failed");
      break;
    }
    benchmark::DoNotOptimize(&parsed);
  }
}

struct InitFixture {
  InitFixture() : rng(3) {
    key = KexKeyPair::Generate(Tep::kCurve25519, rng);
    init1.resize(Init1Length(ciphers.size(), Tep::kCurve25519));
    init2.resize(Init2Length(Tep::kCurve25519));
    ok = key && EncodeInit1(ciphers, nonce, key->public_wire(),
                            Tep::kCurve25519, init1) == init1.size() &&
         EncodeInit2(Cipher::kAes128Gcm, nonce, key->public_wire(),
                     Tep::kCurve25519, init2) == init2.size();
  }
  DeterministicRng rng;
  const std::array<Cipher, 3> ciphers = {
      Cipher::kAes128Gcm, Cipher::kChaCha20Poly1305, Cipher::kAes256Gcm};
  const Bytes nonce = Pattern(kNonceLen, 7);
  std::unique_ptr<KexKeyPair> key;
  Bytes init1;
  Bytes init2;
  bool ok = false;
};

void BM_Init1Encode(benchmark::State& state) {
  InitFixture f;
  if (!f.ok) {
    state.SkipWithError("fixture failed");
    return;
  }
  Bytes out(f.init1.size());
  for (auto _ : state) {
    const size_t n = EncodeInit1(f.ciphers, f.nonce, f.key->public_wire(),
                                 Tep::kCurve25519, out);
    if (n != out.size()) {
      state.SkipWithError("encode failed");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
}

void BM_Init1Parse(benchmark::State& state) {
  InitFixture f;
  if (!f.ok) {
    state.SkipWithError("fixture failed");
    return;
  }
  Init1 msg;
  for (auto _ : state) {
    if (ParseInit1(f.init1, Tep::kCurve25519, &msg) != Error::kNone) {
      state.SkipWithError("parse failed");
    }
    benchmark::DoNotOptimize(&msg);
  }
}

void BM_Init2Encode(benchmark::State& state) {
  InitFixture f;
  if (!f.ok) {
    state.SkipWithError("fixture failed");
    return;
  }
  Bytes out(f.init2.size());
  for (auto _ : state) {
    const size_t n = EncodeInit2(Cipher::kAes128Gcm, f.nonce,
                                 f.key->public_wire(), Tep::kCurve25519, out);
    if (n != out.size()) {
      state.SkipWithError("encode failed");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
}

void BM_Init2Parse(benchmark::State& state) {
  InitFixture f;
  if (!f.ok) {
    state.SkipWithError("fixture failed");
    return;
  }
  Init2 msg;
  for (auto _ : state) {
    if (ParseInit2(f.init2, Tep::kCurve25519, &msg) != Error::kNone) {
      state.SkipWithError("parse failed");
    }
    benchmark::DoNotOptimize(&msg);
  }
}

// ===========================================================================
// Engine: one frame sealed and opened with the frame's own AD and nonce
// (RFC 8548 §4.2): plaintext = flags (1) | data.

void BM_FrameSealOpen(benchmark::State& state, Cipher cipher) {
  const size_t data_len = static_cast<size_t>(state.range(0));
  const Bytes key = Pattern(AeadKeyLen(cipher), 11);
  const Bytes nr = Pattern(kAeadNonceLen, 12);
  AeadContext seal;
  AeadContext open;
  if (!seal.Init(cipher, key) || !open.Init(cipher, key)) {
    state.SkipWithError("Init failed");
    return;
  }
  const Bytes data = Pattern(data_len, 13);
  const uint8_t flags[] = {0};
  const size_t clen = 1 + data_len + kAeadTagLen;
  Bytes frame(clen);
  Bytes plain(clen);
  uint64_t offset = 0;
  for (auto _ : state) {
    const auto header = FrameHeader(0, static_cast<uint16_t>(clen));
    const auto nonce = FrameNonce(nr, offset);
    if (!seal.Seal(nonce, header, flags, data, frame.data()) ||
        !open.Open(nonce, header, frame, plain.data())) {
      state.SkipWithError("seal/open failed");
    }
    benchmark::DoNotOptimize(plain.data());
    offset += kFrameHeaderLen + clen;
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(data_len));
}

// ===========================================================================
// Engine: two engines in one process (as tests/engine/engine_test.cc wires
// them): deterministic randomness, a manual clock, bytes moved by copying
// PendingOutput into the peer's Feed.

// Side accumulates the time one engine spends in its own calls.
struct SideTime {
  double seconds = 0;
};

// Transfer moves every pending byte from |from| to |to|, charging the
// receiver's Feed to |to_time|.
Error Transfer(Engine& from, Engine& to, SideTime* to_time) {
  ByteSpan out = from.PendingOutput();
  Bytes copy(out.begin(), out.end());
  from.ConsumeOutput(copy.size());
  if (copy.empty()) return to.failed() ? to.error() : Error::kNone;
  const double t0 = ThreadCpuSeconds();
  const Error e = to.Feed(copy);
  to_time->seconds += ThreadCpuSeconds() - t0;
  return e;
}

void Pump(Engine& a, Engine& b, SideTime* ta, SideTime* tb) {
  for (int i = 0; i < 64; ++i) {
    if (a.PendingOutput().empty() && b.PendingOutput().empty()) return;
    (void)Transfer(a, b, tb);
    (void)Transfer(b, a, ta);
  }
}

struct HandshakeResult {
  bool ok = false;
  bool resumed = false;
};

// Handshake runs one connection's handshake: both engines are made,
// started and pumped until neither has anything to send, then destroyed.
// Construction, Start, every Feed and the destructor count toward the
// side's CPU time; moving the bytes between them counts toward neither.
HandshakeResult Handshake(const EngineConfig& ca, const EngineConfig& cb,
                          Rng& rng_a, Rng& rng_b, const ManualClock& clock,
                          SideTime* ta, SideTime* tb) {
  double t0 = ThreadCpuSeconds();
  auto a = std::make_unique<Engine>(Engine::Role::kActive, ca, rng_a, clock);
  const Error ea = a->Start();
  double t1 = ThreadCpuSeconds();
  ta->seconds += t1 - t0;
  auto b = std::make_unique<Engine>(Engine::Role::kPassive, cb, rng_b, clock);
  const Error eb = b->Start();
  tb->seconds += ThreadCpuSeconds() - t1;
  HandshakeResult r;
  if (ea == Error::kNone && eb == Error::kNone) {
    Pump(*a, *b, ta, tb);
    r.ok = a->established() && b->established() &&
           std::memcmp(a->session_id().data(), b->session_id().data(),
                       kSessionIdLen) == 0;
    r.resumed = a->resumed() && b->resumed();
  }
  t0 = ThreadCpuSeconds();
  a.reset();
  t1 = ThreadCpuSeconds();
  ta->seconds += t1 - t0;
  b.reset();
  tb->seconds += ThreadCpuSeconds() - t1;
  return r;
}

enum class HandshakeKind : uint8_t { kFreshX25519, kFreshP256, kResumed };

void BM_Handshake(benchmark::State& state, HandshakeKind kind) {
  ManualClock clock;
  DeterministicRng rng_a(1);
  DeterministicRng rng_b(1001);
  ResumptionCache client_cache;
  ResumptionCache server_cache;
  EngineConfig ca;
  EngineConfig cb;
  cb.teps = {Tep::kCurve25519, Tep::kP256, Tep::kP521};
  bool want_resumed = false;
  switch (kind) {
    case HandshakeKind::kFreshX25519:
      break;
    case HandshakeKind::kFreshP256:
      ca.teps = {Tep::kP256};
      break;
    case HandshakeKind::kResumed:
      // Each resumed connection uses up ss[i] and caches ss[i+1], so every
      // iteration resumes from the previous one.
      ca.resumption_cache = &client_cache;
      ca.peer_name = "server:1";
      cb.resumption_cache = &server_cache;
      want_resumed = true;
      break;
  }
  if (want_resumed) {
    SideTime unused_a, unused_b;
    if (!Handshake(ca, cb, rng_a, rng_b, clock, &unused_a, &unused_b).ok) {
      state.SkipWithError("first (fresh) handshake failed");
      return;
    }
  }
  SideTime ta, tb;
  for (auto _ : state) {
    const HandshakeResult r = Handshake(ca, cb, rng_a, rng_b, clock, &ta, &tb);
    if (!r.ok || r.resumed != want_resumed) {
      state.SkipWithError("handshake did not complete as expected");
      break;
    }
  }
  const double n = static_cast<double>(state.iterations());
  if (n > 0) {
    state.counters["active_cpu_us"] = ta.seconds * 1e6 / n;
    state.counters["passive_cpu_us"] = tb.seconds * 1e6 / n;
  }
}

// Established engines moving |n| bytes A -> B per iteration: Write (frames
// sealed into PendingOutput), Feed (opened), Read (copied out).
void BM_StreamWriteRead(benchmark::State& state, Cipher cipher) {
  const size_t n = static_cast<size_t>(state.range(0));
  ManualClock clock;
  DeterministicRng rng_a(5);
  DeterministicRng rng_b(6);
  EngineConfig ca;
  ca.ciphers = {cipher};
  ca.rekey_after_bytes = 0;
  EngineConfig cb = ca;
  Engine a(Engine::Role::kActive, ca, rng_a, clock);
  Engine b(Engine::Role::kPassive, cb, rng_b, clock);
  SideTime ta, tb;
  if (a.Start() != Error::kNone || b.Start() != Error::kNone) {
    state.SkipWithError("Start failed");
    return;
  }
  Pump(a, b, &ta, &tb);
  if (!a.established() || !b.established()) {
    state.SkipWithError("handshake failed");
    return;
  }
  const Bytes data = Pattern(n, 21);
  Bytes got(n);
  for (auto _ : state) {
    if (a.Write(data) != Error::kNone) {
      state.SkipWithError("Write failed");
      break;
    }
    ByteSpan out = a.PendingOutput();
    if (b.Feed(out) != Error::kNone) {
      state.SkipWithError("Feed failed");
      break;
    }
    a.ConsumeOutput(out.size());
    if (b.Read(got) != n) {
      state.SkipWithError("short Read");
      break;
    }
    benchmark::DoNotOptimize(got.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(n));
}

// ===========================================================================
// Auth: the password KDF (Argon2id through libsodium).

void BM_PasswordKdf(benchmark::State& state, KdfParams params) {
  const Bytes salt = Pattern(kPasswordSaltLen, 31);
  std::array<uint8_t, pake::kSeedLen> out{};  // pake2plus's 80-byte output
  for (auto _ : state) {
    if (!DerivePasswordKey("correct horse battery staple", "alice",
                           "example.com", salt, params, out)) {
      state.SkipWithError("DerivePasswordKey failed");
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["memlimit_MiB"] =
      static_cast<double>(params.memlimit) / (1 << 20);
  state.counters["opslimit"] = static_cast<double>(params.opslimit);
}

// ===========================================================================
// Auth: one mechanism exchange driven in-process, as tests/auth/
// cmac_password_test.cc and pake2plus_test.cc do, timing one call.
//
// Call numbering: 0 server.Start, 1 client.Start, then payloads are
// delivered (server -> client first, then client -> server) until none is
// left: 2 the client's answer to the server's first message, 3 the
// server's answer to that, and so on.

constexpr char kUser[] = "alice";
constexpr char kRealm[] = "example.com";
constexpr char kPassword[] = "correct horse battery staple";

ChannelBinding BindingFor(uint32_t i) {
  Bytes sid(kSessionIdLen);
  for (size_t k = 0; k < sid.size(); ++k) {
    sid[k] = static_cast<uint8_t>((i * 131 + k * 17 + 5) ^ (i >> 8));
  }
  sid[0] = 0x23;
  return ChannelBinding::SessionId(sid);
}

struct ExchangeResult {
  bool both_done = false;
  double timed_seconds = 0;
  int calls = 0;
};

ExchangeResult TimedExchange(MechanismSide& client, MechanismSide& server,
                             int timed_call) {
  ExchangeResult r;
  int call = 0;
  auto timed = [&](const std::function<Step()>& fn) {
    const bool t = call++ == timed_call;
    const auto t0 = WallClock::now();
    Step s = fn();
    if (t) r.timed_seconds = Seconds(t0, WallClock::now());
    return s;
  };
  Step s_step = timed([&] { return server.Start(); });
  Step c_step = timed([&] { return client.Start(); });
  std::optional<Bytes> to_client = s_step.send;
  std::optional<Bytes> to_server = c_step.send;
  auto failed = [&] {
    return s_step.status == Step::Status::kFailed ||
           c_step.status == Step::Status::kFailed;
  };
  for (int guard = 0; guard < 16 && (to_client || to_server) && !failed();
       ++guard) {
    if (to_client) {
      const Bytes m = std::move(*to_client);
      to_client.reset();
      c_step = timed([&] { return client.OnPayload(m); });
      if (c_step.send) to_server = c_step.send;
    }
    if (failed()) break;
    if (to_server) {
      const Bytes m = std::move(*to_server);
      to_server.reset();
      s_step = timed([&] { return server.OnPayload(m); });
      if (s_step.send) to_client = s_step.send;
    }
  }
  r.calls = call;
  r.both_done = c_step.status == Step::Status::kDone &&
                s_step.status == Step::Status::kDone;
  return r;
}

// PasswordFixture holds a verifier store with |user|'s record for one
// mechanism, made with KdfParams::ForTests() (the library minimum), so the
// per-step numbers are not hidden behind Argon2id. At the SDK's parameters
// (KdfParams::Interactive()) the client step that derives the key costs
// additionally one auth/password_kdf/argon2id_interactive.
struct PasswordFixture {
  explicit PasswordFixture(Mechanism m) : rng(77) {
    VerifierRecord rec;
    const KdfParams params = KdfParams::ForTests();
    ok = m == Mechanism::kCmacPassword
             ? cmac::MakeRecord(kUser, kRealm, kPassword, params, rng, &rec)
             : pake::MakeRecord(kUser, kRealm, kPassword, params, rng, &rec);
    ok = ok && store.Put(rec);
    password = std::make_shared<const SecretBuffer>(Span(kPassword));
  }
  DeterministicRng rng;
  MemoryVerifierStore store;
  DecoySecret decoy;
  std::shared_ptr<const SecretBuffer> password;
  bool ok = false;
};

void BM_MechanismStep(benchmark::State& state, Mechanism m, int timed_call) {
  PasswordFixture f(m);
  if (!f.ok) {
    state.SkipWithError("record failed");
    return;
  }
  MechanismFactory server_factory;
  MechanismFactory client_factory;
  if (m == Mechanism::kCmacPassword) {
    cmac::ServerConfig sc;
    sc.store = &f.store;
    sc.decoy = &f.decoy;
    sc.target = KdfParams::ForTests();
    sc.rng = &f.rng;
    server_factory = cmac::ServerFactory(sc);
    client_factory = cmac::ClientFactory(f.password, KdfLimits::ForTests());
  } else {
    pake::ServerConfig sc;
    sc.store = &f.store;
    sc.decoy = &f.decoy;
    sc.target = KdfParams::ForTests();
    sc.rng = &f.rng;
    server_factory = pake::ServerFactory(sc);
    client_factory = pake::ClientFactory(f.password, &f.rng, KdfLimits::ForTests());
  }
  uint32_t conn = 0;
  for (auto _ : state) {
    const ChannelBinding b = BindingFor(conn++);
    const Context ctx{b, kUser, kRealm, {}};
    std::unique_ptr<MechanismSide> client = client_factory(ctx);
    std::unique_ptr<MechanismSide> server = server_factory(ctx);
    const ExchangeResult r = TimedExchange(*client, *server, timed_call);
    if (!r.both_done || timed_call >= r.calls) {
      state.SkipWithError("exchange did not complete");
      break;
    }
    if (timed_call >= 0) state.SetIterationTime(r.timed_seconds);
  }
}

// The whole exchange, both sides, in one number.
void BM_MechanismExchange(benchmark::State& state, Mechanism m) {
  BM_MechanismStep(state, m, -1);
}

// ===========================================================================
// Auth: the SPAKE2+ core (RFC 9383), each protocol step on its own.

struct PakeRun {
  std::unique_ptr<pake::Prover> prover;
  std::unique_ptr<pake::Verifier> verifier;
  pake::Point share_p{};
  pake::Point share_v{};
  pake::Confirmation confirm_v{};
  pake::Confirmation confirm_p{};
  SecretArray<pake::kHashLen> k_prover;
  SecretArray<pake::kHashLen> k_verifier;
};

struct PakeRegistration {
  PakeRegistration() {
    SecretArray<pake::kSeedLen> seed;
    const Bytes s = Pattern(pake::kSeedLen, 41);
    seed.CopyFrom(s);
    ok = pake::ReduceSeed(seed.span(), &w0, &w1) &&
         pake::ComputeL(w1.span(), l);
    context = pake::PakeContext(BindingFor(1));
  }
  pake::Scalar w0;
  pake::Scalar w1;
  pake::Point l{};
  Bytes context;
  bool ok = false;
};

enum class PakeStep : uint8_t {
  kProverShare,            // Prover::Create + Start: X = x*P + w0*M
  kVerifierShareConfirm,   // Verifier::Create + Respond: Y, Z, V, keys, confirmV
  kProverFinish,           // Prover::Finish: Z, V, keys, check confirmV
  kVerifierFinish,         // Verifier::Finish: check confirmP
};

void BM_PakeStep(benchmark::State& state, PakeStep step) {
  const PakeRegistration reg;
  if (!reg.ok) {
    state.SkipWithError("registration failed");
    return;
  }
  DeterministicRng rng(43);
  const ByteSpan id_p = Span(kUser);
  const ByteSpan id_v = Span(kRealm);
  for (auto _ : state) {
    PakeRun run;
    double timed = 0;
    bool ok = true;
    auto t0 = WallClock::now();
    run.prover =
        pake::Prover::Create(reg.context, id_p, id_v, reg.w0.span(), reg.w1.span());
    ok = run.prover && run.prover->Start(rng, &run.share_p) == pake::Result::kOk;
    if (step == PakeStep::kProverShare) timed = Seconds(t0, WallClock::now());

    t0 = WallClock::now();
    run.verifier =
        pake::Verifier::Create(reg.context, id_p, id_v, reg.w0.span(), reg.l);
    ok = ok && run.verifier &&
         run.verifier->Respond(run.share_p, rng, &run.share_v,
                               &run.confirm_v) == pake::Result::kOk;
    if (step == PakeStep::kVerifierShareConfirm) timed = Seconds(t0, WallClock::now());

    t0 = WallClock::now();
    ok = ok && run.prover->Finish(run.share_v, run.confirm_v, &run.confirm_p,
                                  &run.k_prover) == pake::Result::kOk;
    if (step == PakeStep::kProverFinish) timed = Seconds(t0, WallClock::now());

    t0 = WallClock::now();
    ok = ok && run.verifier->Finish(run.confirm_p, &run.k_verifier) ==
                   pake::Result::kOk;
    if (step == PakeStep::kVerifierFinish) timed = Seconds(t0, WallClock::now());

    if (!ok || !run.k_prover.Equal(run.k_verifier)) {
      state.SkipWithError("SPAKE2+ run failed");
      break;
    }
    state.SetIterationTime(timed);
  }
}

// ===========================================================================
// Auth: x509 batch signing (ECDSA P-256 server key, a local test PKI).

constexpr int64_t kT0 = 1767225600;  // 2026-01-01T00:00:00Z, as the tests use
constexpr int64_t kDay = 24 * 3600;

struct X509Pki {
  X509Pki() {
    using namespace auth::x509;
    std::string error;
    CertOptions ca_opt;
    ca_opt.common_name = "tcpcrypt bench CA";
    ca_opt.not_before = kT0 - 365 * kDay;
    ca_opt.not_after = kT0 + 3650 * kDay;
    std::optional<KeyAndCert> ca_kc = CreateRootCa(ca_opt, &error);
    if (!ca_kc) return;
    CertOptions leaf_opt;
    leaf_opt.common_name = kRealm;
    leaf_opt.dns_names = {kRealm};
    leaf_opt.not_before = kT0 - kDay;
    leaf_opt.not_after = kT0 + 30 * kDay;
    std::optional<KeyAndCert> leaf_kc = IssueCertificate(*ca_kc, leaf_opt, &error);
    if (!leaf_kc) return;
    ca = *ca_kc;
    leaf = *leaf_kc;
    chain = {CertificateDer(leaf.cert.get())};
    const std::vector<Bytes> anchors = {CertificateDer(ca.cert.get())};
    trust = StoreFromDer(anchors, &error);
    ok = trust != nullptr;
  }
  auth::x509::KeyAndCert ca;
  auth::x509::KeyAndCert leaf;
  std::vector<Bytes> chain;
  auth::x509::SharedX509Store trust;
  bool ok = false;
};

const X509Pki& Pki() {
  static const X509Pki* const pki = new X509Pki();
  return *pki;
}

// BatchWaiter collects the results of one batch from the signer thread.
class BatchWaiter {
 public:
  explicit BatchWaiter(size_t n) : results_(n), remaining_(n) {}
  auth::x509::BatchSigner::Callback For(size_t i) {
    return [this, i](auth::x509::BatchSignResult r) {
      std::lock_guard<std::mutex> lock(mu_);
      results_[i] = std::move(r);
      if (--remaining_ == 0) cv_.notify_all();
    };
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return remaining_ == 0; });
  }
  std::vector<auth::x509::BatchSignResult>& results() { return results_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<auth::x509::BatchSignResult> results_;
  size_t remaining_;
};

std::shared_ptr<auth::x509::BatchSigner> MakeSigner(uint32_t max_batch) {
  auth::x509::BatchSigner::Options options;
  options.max_batch_size = max_batch;
  options.start_paused = true;
  std::string error;
  return auth::x509::BatchSigner::Create(Pki().leaf.key, options, &error);
}

// SignBatch enqueues |n| leaves (the encoded bindings of n connections)
// while the signer is paused, resumes it and waits until every callback
// ran: one tree, one root signature, n proofs. Returns false on failure.
bool SignBatch(auth::x509::BatchSigner& signer, const std::vector<Bytes>& leaves,
               std::vector<auth::x509::BatchSignResult>* out, double* seconds) {
  BatchWaiter waiter(leaves.size());
  signer.Pause();
  const auto t0 = WallClock::now();
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (!signer.Enqueue(leaves[i], waiter.For(i))) return false;
  }
  signer.Resume();
  waiter.Wait();
  *seconds = Seconds(t0, WallClock::now());
  for (const auto& r : waiter.results()) {
    if (!r.ok || r.batch_size != leaves.size()) return false;
  }
  if (out) *out = std::move(waiter.results());
  return true;
}

std::vector<Bytes> Leaves(size_t n) {
  std::vector<Bytes> leaves;
  leaves.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    leaves.push_back(BindingFor(static_cast<uint32_t>(i)).Encode());
  }
  return leaves;
}

// Time per iteration is one whole batch (enqueue of n leaves to the last
// callback, including the hand-off to and from the signer thread);
// us_per_leaf divides it by n.
void BM_X509BatchSign(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  if (!Pki().ok) {
    state.SkipWithError("PKI failed");
    return;
  }
  std::shared_ptr<auth::x509::BatchSigner> signer =
      MakeSigner(static_cast<uint32_t>(n));
  if (!signer) {
    state.SkipWithError("signer failed");
    return;
  }
  const std::vector<Bytes> leaves = Leaves(n);
  double total = 0;
  for (auto _ : state) {
    double s = 0;
    if (!SignBatch(*signer, leaves, nullptr, &s)) {
      state.SkipWithError("batch failed");
      break;
    }
    total += s;
    state.SetIterationTime(s);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
  if (state.iterations() > 0) {
    state.counters["us_per_leaf"] =
        total * 1e6 / static_cast<double>(state.iterations()) /
        static_cast<double>(n);
  }
}

void BM_MerkleBuild(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const std::vector<Bytes> leaves = Leaves(n);
  std::vector<ByteSpan> spans(leaves.begin(), leaves.end());
  DeterministicRng rng(51);
  for (auto _ : state) {
    auth::x509::MerkleTree tree;
    if (!auth::x509::MerkleTree::Build(auth::x509::MerkleHash::kSha256, spans,
                                       rng, &tree)) {
      state.SkipWithError("Build failed");
    }
    benchmark::DoNotOptimize(tree.root().data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
}

// The client side of x509_batch (ClientFactory -> Start -> OnPayload on the
// server's BatchProof): chain verification at a fixed time, the root
// signature and the audit path. Proofs come from a real batch of |n|.
void BM_X509ClientVerify(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  if (!Pki().ok) {
    state.SkipWithError("PKI failed");
    return;
  }
  std::shared_ptr<auth::x509::BatchSigner> signer =
      MakeSigner(static_cast<uint32_t>(n));
  std::vector<auth::x509::BatchSignResult> results;
  double unused = 0;
  const std::vector<Bytes> leaves = Leaves(n);
  if (!signer || !SignBatch(*signer, leaves, &results, &unused)) {
    state.SkipWithError("batch failed");
    return;
  }
  const size_t index = n - 1;  // the longest audit path
  Bytes payload;
  if (!auth::x509::EncodeBatchProof(Pki().chain, results[index], false,
                                    &payload)) {
    state.SkipWithError("EncodeBatchProof failed");
    return;
  }
  auth::x509::ClientConfig cc;
  cc.trust = Pki().trust;
  cc.verification_time = kT0;
  const MechanismFactory factory = auth::x509::ClientFactory(cc);
  Context ctx;
  ctx.binding = BindingFor(static_cast<uint32_t>(index));
  ctx.realm = kRealm;
  for (auto _ : state) {
    std::unique_ptr<MechanismSide> client = factory(ctx);
    const Step start = client->Start();
    const Step step = client->OnPayload(payload);
    if (start.status != Step::Status::kContinue ||
        step.status != Step::Status::kDone) {
      state.SkipWithError(("client failed: " + step.detail).c_str());
      break;
    }
  }
  state.counters["proof_bytes"] = static_cast<double>(payload.size());
}

// The server mechanism side for one connection on an idle signer (batch of
// one): Start enqueues, the signer thread signs and wakes the side, Poll
// returns the BatchProof. Wall time, thread hand-offs included.
void BM_X509ServerSide(benchmark::State& state) {
  if (!Pki().ok) {
    state.SkipWithError("PKI failed");
    return;
  }
  auth::x509::ServerConfig sc;
  sc.signer = MakeSigner(1024);
  if (!sc.signer) {
    state.SkipWithError("signer failed");
    return;
  }
  sc.signer->Resume();
  sc.chain_der = Pki().chain;
  sc.verification_time = kT0;
  const MechanismFactory factory = auth::x509::ServerFactory(sc);
  std::mutex mu;
  std::condition_variable cv;
  bool woken = false;
  Context ctx;
  ctx.wake = [&] {
    std::lock_guard<std::mutex> lock(mu);
    woken = true;
    cv.notify_all();
  };
  uint32_t conn = 0;
  for (auto _ : state) {
    ctx.binding = BindingFor(conn++);
    {
      std::lock_guard<std::mutex> lock(mu);
      woken = false;
    }
    std::unique_ptr<MechanismSide> server = factory(ctx);
    const Step start = server->Start();
    if (start.status != Step::Status::kContinue) {
      state.SkipWithError(("server Start failed: " + start.detail).c_str());
      break;
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return woken; });
    }
    const Step step = server->Poll();
    if (step.status != Step::Status::kDone || !step.send) {
      state.SkipWithError(("server Poll failed: " + step.detail).c_str());
      break;
    }
  }
}

// ===========================================================================
// Auth: tickets (symmetric re-authentication).

struct TicketFixture {
  TicketFixture() : rng(61), issuer(TicketPolicy{}, rng, clock) {
    who.mechanism = Mechanism::kPake2Plus;
    who.name = kUser;
    who.attributes = {{"realm", kRealm}};
    ok = issuer.Issue(who, kRealm, &ticket, &secret);
  }
  ManualClock clock;
  DeterministicRng rng;
  TicketIssuer issuer;
  PeerIdentity who;
  Bytes ticket;
  TicketSecret secret;
  bool ok = false;
};

void BM_TicketIssue(benchmark::State& state) {
  TicketFixture f;
  if (!f.ok) {
    state.SkipWithError("Issue failed");
    return;
  }
  for (auto _ : state) {
    Bytes ticket;
    TicketSecret secret;
    if (!f.issuer.Issue(f.who, kRealm, &ticket, &secret)) {
      state.SkipWithError("Issue failed");
    }
    benchmark::DoNotOptimize(ticket.data());
  }
  state.counters["ticket_bytes"] = static_cast<double>(f.ticket.size());
}

// Client side of a ticket login: its proof over the binding.
void BM_TicketClientProof(benchmark::State& state) {
  TicketFixture f;
  const ChannelBinding b = BindingFor(7);
  for (auto _ : state) {
    auto proof = TicketProof(f.secret, kTicketClientTag, b);
    benchmark::DoNotOptimize(proof.data());
  }
}

// Server side of a ticket login: open the ticket, check the client's proof
// in constant time, compute its own.
void BM_TicketServerVerify(benchmark::State& state) {
  TicketFixture f;
  if (!f.ok) {
    state.SkipWithError("Issue failed");
    return;
  }
  const ChannelBinding b = BindingFor(7);
  const auto client_proof = TicketProof(f.secret, kTicketClientTag, b);
  for (auto _ : state) {
    std::optional<TicketIssuer::Opened> opened = f.issuer.Open(f.ticket);
    if (!opened) {
      state.SkipWithError("Open failed");
      break;
    }
    const auto want = TicketProof(opened->secret, kTicketClientTag, b);
    if (CRYPTO_memcmp(want.data(), client_proof.data(), want.size()) != 0) {
      state.SkipWithError("proof mismatch");
      break;
    }
    auto server_proof = TicketProof(opened->secret, kTicketServerTag, b);
    benchmark::DoNotOptimize(server_proof.data());
  }
}

// ===========================================================================
// Registration.

std::string CipherPath(Cipher c) { return std::string(CipherName(c)); }

void RegisterAll() {
  using benchmark::RegisterBenchmark;

  // --- engine ---
  RegisterBenchmark("engine/hkdf_extract", BM_HkdfExtract);
  RegisterBenchmark("engine/hkdf_expand", BM_HkdfExpand);
  for (Tep tep : {Tep::kCurve25519, Tep::kP256, Tep::kP521}) {
    const std::string name = tep == Tep::kCurve25519 ? "x25519"
                                                     : std::string(TepName(tep));
    RegisterBenchmark(("engine/kex/" + name + "/keygen").c_str(),
                      [tep](benchmark::State& s) { BM_KexKeygen(s, tep); });
    RegisterBenchmark(("engine/kex/" + name + "/dh").c_str(),
                      [tep](benchmark::State& s) { BM_KexDh(s, tep); });
  }
  RegisterBenchmark("engine/key_schedule/fresh",
                    [](benchmark::State& s) { BM_KeyScheduleFresh(s, false); });
  RegisterBenchmark("engine/key_schedule/fresh_with_aead_init",
                    [](benchmark::State& s) { BM_KeyScheduleFresh(s, true); });
  const Cipher ciphers[] = {Cipher::kAes128Gcm, Cipher::kAes256Gcm,
                            Cipher::kChaCha20Poly1305};
  for (Cipher c : ciphers) {
    RegisterBenchmark(("engine/aead_init/" + CipherPath(c)).c_str(),
                      [c](benchmark::State& s) { BM_AeadInit(s, c); });
  }
  RegisterBenchmark("engine/eno/encode/fresh",
                    [](benchmark::State& s) { BM_EnoEncode(s, false); });
  RegisterBenchmark("engine/eno/encode/resume",
                    [](benchmark::State& s) { BM_EnoEncode(s, true); });
  RegisterBenchmark("engine/eno/parse/fresh",
                    [](benchmark::State& s) { BM_EnoParse(s, false); });
  RegisterBenchmark("engine/eno/parse/resume",
                    [](benchmark::State& s) { BM_EnoParse(s, true); });
  RegisterBenchmark("engine/init1/encode", BM_Init1Encode);
  RegisterBenchmark("engine/init1/parse", BM_Init1Parse);
  RegisterBenchmark("engine/init2/encode", BM_Init2Encode);
  RegisterBenchmark("engine/init2/parse", BM_Init2Parse);
  // The data size is the benchmark's argument: .../aes128gcm/16384.
  for (Cipher c : ciphers) {
    RegisterBenchmark(("engine/frame_seal_open/" + CipherPath(c)).c_str(),
                      [c](benchmark::State& s) { BM_FrameSealOpen(s, c); })
        ->Arg(64)
        ->Arg(1024)
        ->Arg(16384);
  }
  for (Cipher c : ciphers) {
    RegisterBenchmark(("engine/stream_write_read/" + CipherPath(c)).c_str(),
                      [c](benchmark::State& s) { BM_StreamWriteRead(s, c); })
        ->Arg(16384);
  }
  RegisterBenchmark("engine/handshake/fresh_x25519", [](benchmark::State& s) {
    BM_Handshake(s, HandshakeKind::kFreshX25519);
  });
  RegisterBenchmark("engine/handshake/fresh_p256", [](benchmark::State& s) {
    BM_Handshake(s, HandshakeKind::kFreshP256);
  });
  RegisterBenchmark("engine/handshake/resumed", [](benchmark::State& s) {
    BM_Handshake(s, HandshakeKind::kResumed);
  });

  // --- auth: password KDF ---
  RegisterBenchmark("auth/password_kdf/argon2id_min", [](benchmark::State& s) {
    BM_PasswordKdf(s, KdfParams::ForTests());
  });
  auto* interactive = RegisterBenchmark(
      "auth/password_kdf/argon2id_interactive",
      [](benchmark::State& s) { BM_PasswordKdf(s, KdfParams::Interactive()); });
  interactive->Unit(benchmark::kMillisecond);
  if (g_settings.quick) interactive->Iterations(2);

  // --- auth: cmac_password, one mechanism call at a time ---
  struct NamedCall {
    const char* name;
    int call;
  };
  const NamedCall cmac_calls[] = {
      {"auth/cmac/server_params", 0},     // server Start: store lookup, Params
      {"auth/cmac/client_proof", 2},      // client: KDF (min) + CMAC
      {"auth/cmac/server_proof", 3},      // server: check + own CMAC
      {"auth/cmac/client_finish", 4},     // client: check server proof
  };
  for (const NamedCall& nc : cmac_calls) {
    const int call = nc.call;
    RegisterBenchmark(nc.name, [call](benchmark::State& s) {
      BM_MechanismStep(s, Mechanism::kCmacPassword, call);
    })->UseManualTime()->Iterations(StepIterations())->Unit(benchmark::kMicrosecond);
  }
  RegisterBenchmark("auth/cmac/exchange_kdf_min", [](benchmark::State& s) {
    BM_MechanismExchange(s, Mechanism::kCmacPassword);
  })->Unit(benchmark::kMicrosecond);

  // --- auth: pake2plus, SPAKE2+ core steps, then the mechanism calls ---
  const std::pair<const char*, PakeStep> pake_steps[] = {
      {"auth/pake/prover_share", PakeStep::kProverShare},
      {"auth/pake/verifier_share_confirm", PakeStep::kVerifierShareConfirm},
      {"auth/pake/prover_finish", PakeStep::kProverFinish},
      {"auth/pake/verifier_finish", PakeStep::kVerifierFinish},
  };
  for (const auto& [name, step] : pake_steps) {
    const PakeStep st = step;
    RegisterBenchmark(name, [st](benchmark::State& s) { BM_PakeStep(s, st); })
        ->UseManualTime()
        ->Iterations(StepIterations())
        ->Unit(benchmark::kMicrosecond);
  }
  const NamedCall pake_calls[] = {
      {"auth/pake/mech/server_params", 0},
      {"auth/pake/mech/client_share", 2},          // KDF (min) + prover share
      {"auth/pake/mech/server_share_confirm", 3},  // store lookup + Respond
      {"auth/pake/mech/client_finish", 4},
      {"auth/pake/mech/server_finish", 5},
  };
  for (const NamedCall& nc : pake_calls) {
    const int call = nc.call;
    RegisterBenchmark(nc.name, [call](benchmark::State& s) {
      BM_MechanismStep(s, Mechanism::kPake2Plus, call);
    })->UseManualTime()->Iterations(StepIterations())->Unit(benchmark::kMicrosecond);
  }
  RegisterBenchmark("auth/pake/exchange_kdf_min", [](benchmark::State& s) {
    BM_MechanismExchange(s, Mechanism::kPake2Plus);
  })->Unit(benchmark::kMicrosecond);

  // --- auth: x509 batch ---
  // The batch size is the benchmark's argument: auth/x509/batch_sign/128.
  RegisterBenchmark("auth/x509/batch_sign", BM_X509BatchSign)
      ->Arg(1)
      ->Arg(16)
      ->Arg(128)
      ->Arg(256)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
  RegisterBenchmark("auth/x509/merkle_build", BM_MerkleBuild)
      ->Arg(1)
      ->Arg(16)
      ->Arg(128)
      ->Arg(256)
      ->Unit(benchmark::kMicrosecond);
  RegisterBenchmark("auth/x509/client_verify", BM_X509ClientVerify)
      ->Arg(1)
      ->Arg(256)
      ->Unit(benchmark::kMicrosecond);
  RegisterBenchmark("auth/x509/server_side_batch_of_one", BM_X509ServerSide)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);

  // --- auth: tickets ---
  RegisterBenchmark("auth/ticket/issue", BM_TicketIssue);
  RegisterBenchmark("auth/ticket/client_proof", BM_TicketClientProof);
  RegisterBenchmark("auth/ticket/server_verify", BM_TicketServerVerify);
}

}  // namespace
}  // namespace tcpcrypt::bench

int main(int argc, char** argv) {
  // Translate our flags into Google Benchmark's; pass everything else on.
  // Ours come first so an explicit --benchmark_min_time later wins.
  std::vector<std::string> args = {argc > 0 ? argv[0] : "micro_bench"};
  std::vector<std::string> passed;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--quick") {
      tcpcrypt::bench::g_settings.quick = true;
    } else if (arg == "--full") {
      tcpcrypt::bench::g_settings.quick = false;
    } else if (arg == "--json" || arg.starts_with("--json=")) {
      std::string file;
      if (arg == "--json") {
        if (i + 1 >= argc) {
          std::fprintf(stderr, "micro_bench: --json needs a FILE\n");
          return 2;
        }
        file = argv[++i];
      } else {
        file = std::string(arg.substr(7));
      }
      passed.push_back("--benchmark_out=" + file);
      passed.push_back("--benchmark_out_format=json");
    } else if (arg == "--help" || arg == "-h") {
      std::printf(
          "usage: micro_bench [--quick | --full] [--json FILE] "
          "[--benchmark_* ...]\n");
      benchmark::PrintDefaultHelp();
      return 0;
    } else {
      passed.emplace_back(arg);
    }
  }
  if (tcpcrypt::bench::g_settings.quick) {
    args.emplace_back("--benchmark_min_time=0.05");
  }
  args.insert(args.end(), passed.begin(), passed.end());

  std::vector<char*> cargv;
  for (std::string& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int cargc = static_cast<int>(args.size());

  if (sodium_init() < 0) return 1;
  tcpcrypt::bench::RegisterAll();
  benchmark::Initialize(&cargc, cargv.data());
  if (benchmark::ReportUnrecognizedArguments(cargc, cargv.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
