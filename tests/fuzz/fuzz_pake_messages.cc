// fuzz_pake_messages.cc: libFuzzer target for the pake2plus authenticator's
// payloads (auth/pake2plus/pake.proto) in every state of both sides.
//
// Input: byte 0 picks a scenario (which side, driven by a genuine peer to
// which state); the rest is a sequence of payloads, each a 2-byte
// big-endian length and that many bytes (a trailing remainder is the last
// payload). Properties:
//   - every Step is consistent: a failure carries an error and sends
//     nothing, progress carries no error, payloads stay under the limit;
//   - after a failure or completion, every later payload is refused;
//   - peer() is set exactly when the side is done;
//   - nobody forges a confirmation: the server completes only on the
//     genuine confirmP (or, in the upgrade state, on a valid new record,
//     which it then stores), the client only on the genuine ShareV, and a
//     recorded exchange replayed as input fails (x and y are keyed by the
//     input, as real ones are fresh per connection);
//   - IsValidPoint accepts only 65-byte uncompressed encodings.
// Inputs that would make the client run Argon2 above test cost (legitimate
// but slow: the client accepts anything KdfParams::Sane()) are skipped.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/common/decoy.h"
#include "auth/common/password_kdf.h"
#include "auth/common/verifier_store.h"
#include "auth/pake2plus/pake.pb.h"
#include "auth/pake2plus/pake2plus.h"
#include "core_transport/engine/rng.h"

namespace tcpcrypt::auth::pake {
namespace {

void Check(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "fuzz_pake_messages: property violated: %s\n", what);
    std::abort();
  }
}

constexpr char kUser[] = "alice";
constexpr char kRealm[] = "bank.example";
constexpr char kPassword[] = "correct horse battery staple";

enum class Scenario : uint8_t {
  kServerAwaitShareP,        // known user
  kServerAwaitSharePUnknown, // unknown user (decoy)
  kServerAwaitConfirmP,
  kClientAwaitParams,
  kClientAwaitShareV,
  kServerAwaitUpgradeReply,
  kClientAwaitUpgrade,
  kCount,
};

KdfParams Weak() { return KdfParams::ForTests(); }
KdfParams Target() {
  KdfParams t = KdfParams::ForTests();
  t.opslimit += 1;
  return t;
}

VerifierRecord Clone(const VerifierRecord& r) {
  VerifierRecord c;
  c.user = r.user;
  c.realm = r.realm;
  c.mechanism = r.mechanism;
  c.salt = r.salt;
  c.params = r.params;
  c.verifier = SecretBuffer(r.verifier.span());
  return c;
}

// The stored records, made once: one under the target parameters, one
// weaker (so the server asks for an upgrade).
const VerifierRecord& Record(bool weak) {
  static const VerifierRecord* const records = [] {
    DeterministicRng rng(1);
    auto* r = new VerifierRecord[2];
    Check(MakeRecord(kUser, kRealm, kPassword, Target(), rng, &r[0]), "MakeRecord");
    Check(MakeRecord(kUser, kRealm, kPassword, Weak(), rng, &r[1]), "MakeRecord weak");
    return r;
  }();
  return records[weak ? 1 : 0];
}

const DecoySecret& Decoy() {
  static const DecoySecret* const decoy = [] {
    const uint8_t key[32] = {9};
    return new DecoySecret(std::span<const uint8_t, 32>(key));
  }();
  return *decoy;
}

std::shared_ptr<const SecretBuffer> Password() {
  const std::string pw = kPassword;
  return std::make_shared<const SecretBuffer>(
      ByteSpan(reinterpret_cast<const uint8_t*>(pw.data()), pw.size()));
}

std::optional<PakeMessage> Parse(ByteSpan b) {
  PakeMessage m;
  if (!m.ParseFromArray(b.data(), static_cast<int>(b.size()))) return std::nullopt;
  return m;
}

// TooCostly reports whether |payload|, given to a client, would make it run
// Argon2 with more than test parameters (allowed, but too slow to fuzz).
bool TooCostly(ByteSpan payload) {
  std::optional<PakeMessage> m = Parse(payload);
  if (!m) return false;
  const Argon2Params* kdf = nullptr;
  if (m->has_params()) kdf = &m->params().kdf();
  if (m->has_upgrade()) kdf = &m->upgrade().kdf();
  if (kdf == nullptr) return false;
  return kdf->opslimit() > 3 || kdf->memlimit() > (64u << 10);
}

void CheckStep(const Step& s) {
  switch (s.status) {
    case Step::Status::kFailed:
      Check(s.error != AuthError::kNone, "a failure names its error");
      Check(!s.send.has_value(), "a failure sends nothing");
      Check(!s.detail.empty(), "a failure explains itself");
      break;
    case Step::Status::kContinue:
    case Step::Status::kDone:
      Check(s.error == AuthError::kNone, "progress carries no error");
      if (s.send) Check(s.send->size() <= kMaxPayloadLen, "payload within the limit");
      break;
  }
}

// x and y are fresh on every connection; here they are keyed by the input,
// so a recorded genuine exchange replayed as an input meets another x or y
// and must fail, as it would against a real peer.
uint64_t InputSeed(ByteSpan in) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (uint8_t b : in) h = (h ^ b) * 0x100000001b3ull;
  return h;
}

struct Fixture {
  explicit Fixture(uint64_t seed) : server_rng(seed), client_rng(~seed) {}
  MemoryVerifierStore store;
  DeterministicRng server_rng;
  DeterministicRng client_rng;
  std::unique_ptr<MechanismSide> server, client;
  std::vector<uint8_t> genuine;  // the genuine payload for the fuzzed state
};

Context Ctx(std::string user) {
  return Context{ChannelBinding::SessionId(std::vector<uint8_t>(33, 0x5a)), std::move(user),
                 kRealm, {}};
}

// Setup drives a genuine pair to |scenario|'s state. Returns the side to
// fuzz, or nullptr if the setup itself failed.
MechanismSide* Setup(Scenario scenario, Fixture* f) {
  const bool weak = scenario == Scenario::kServerAwaitUpgradeReply ||
                    scenario == Scenario::kClientAwaitUpgrade;
  Check(f->store.Put(Clone(Record(weak))), "store Put");
  ServerConfig cfg{&f->store, &Decoy(), Target(), &f->server_rng};
  const std::string user =
      scenario == Scenario::kServerAwaitSharePUnknown ? "mallory" : kUser;
  f->server = ServerFactory(cfg)(Ctx(user));
  f->client = ClientFactory(Password(), &f->client_rng, KdfLimits::ForTests())(Ctx(user));
  MechanismSide& s = *f->server;
  MechanismSide& c = *f->client;

  Step ss = s.Start();
  Step cs = c.Start();
  Check(ss.send.has_value() && cs.status == Step::Status::kContinue, "setup: start");
  if (scenario == Scenario::kServerAwaitShareP ||
      scenario == Scenario::kServerAwaitSharePUnknown) {
    return &s;
  }
  if (scenario == Scenario::kClientAwaitParams) return &c;
  cs = c.OnPayload(*ss.send);  // Params -> ShareP
  Check(cs.send.has_value(), "setup: ShareP");
  ss = s.OnPayload(*cs.send);  // ShareP -> ShareV
  Check(ss.send.has_value(), "setup: ShareV");
  if (scenario == Scenario::kClientAwaitShareV) {
    f->genuine = *ss.send;
    return &c;
  }
  cs = c.OnPayload(*ss.send);  // ShareV -> ConfirmP
  Check(cs.send.has_value(), "setup: ConfirmP");
  if (scenario == Scenario::kServerAwaitConfirmP) {
    f->genuine = *cs.send;
    return &s;
  }
  if (scenario == Scenario::kClientAwaitUpgrade) return &c;
  ss = s.OnPayload(*cs.send);  // ConfirmP -> Upgrade
  Check(ss.status == Step::Status::kContinue && ss.send.has_value(), "setup: Upgrade");
  return &s;  // kServerAwaitUpgradeReply
}

// Splits the input into payloads: u16 length | bytes, repeated.
std::vector<ByteSpan> Split(ByteSpan in) {
  std::vector<ByteSpan> out;
  while (!in.empty() && out.size() < 4) {
    if (in.size() < 2) {
      out.push_back(in);
      break;
    }
    const size_t n = (size_t{in[0]} << 8) | in[1];
    in = in.subspan(2);
    if (n >= in.size()) {
      out.push_back(in);
      break;
    }
    out.push_back(in.first(n));
    in = in.subspan(n);
  }
  return out;
}

}  // namespace
}  // namespace tcpcrypt::auth::pake

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tcpcrypt::auth;
  using namespace tcpcrypt::auth::pake;
  if (size < 1) return 0;
  const ByteSpan rest(data + 1, size - 1);

  // The point decoder on its own.
  if (IsValidPoint(rest)) {
    Check(rest.size() == kPointLen && rest[0] == 0x04, "only uncompressed points");
  }

  const auto scenario =
      static_cast<Scenario>(data[0] % static_cast<uint8_t>(Scenario::kCount));
  const bool fuzz_client = scenario == Scenario::kClientAwaitParams ||
                           scenario == Scenario::kClientAwaitShareV ||
                           scenario == Scenario::kClientAwaitUpgrade;
  const std::vector<ByteSpan> payloads = Split(rest);
  if (fuzz_client) {
    for (ByteSpan p : payloads) {
      if (TooCostly(p)) return 0;
    }
  }

  Fixture f(InputSeed(ByteSpan(data, size)));
  MechanismSide* side = Setup(scenario, &f);
  bool finished = false;
  for (ByteSpan p : payloads) {
    const Step s = side->OnPayload(p);
    CheckStep(s);
    if (finished) {
      Check(s.status == Step::Status::kFailed, "nothing accepted after the end");
      continue;
    }
    Check(side->peer().has_value() == (s.status == Step::Status::kDone),
          "peer() exactly when done");
    if (s.status == Step::Status::kFailed) {
      finished = true;
      Check(!side->peer().has_value(), "no identity after a failure");
      continue;
    }
    if (s.status != Step::Status::kDone) continue;
    finished = true;
    const std::optional<PakeMessage> m = Parse(p);
    Check(m.has_value(), "done on a parsed message");
    switch (scenario) {
      case Scenario::kServerAwaitShareP:
      case Scenario::kServerAwaitSharePUnknown:
        // Completing needs a confirmP for keys only the password gives.
        Check(false, "server completed without the password");
        break;
      case Scenario::kServerAwaitConfirmP: {
        const std::optional<PakeMessage> g = Parse(f.genuine);
        Check(m->confirm_p().confirm_p() == g->confirm_p().confirm_p(),
              "server completed on a forged confirmP");
        break;
      }
      case Scenario::kClientAwaitShareV: {
        const std::optional<PakeMessage> g = Parse(f.genuine);
        Check(m->share_v().y() == g->share_v().y() &&
                  m->share_v().confirm_v() == g->share_v().confirm_v(),
              "client completed on a forged ShareV");
        break;
      }
      case Scenario::kServerAwaitUpgradeReply: {
        const std::optional<VerifierRecord> r =
            f.store.Find(kUser, kRealm, Mechanism::kPake2Plus);
        Check(r.has_value() && r->verifier.size() == kVerifierLen &&
                  !r->params.WeakerThan(Target()),
              "upgraded record stored");
        const std::string& w0 = m->upgrade_reply().w0();
        Check(w0.size() == kScalarLen &&
                  std::memcmp(w0.data(), r->verifier.data(), kScalarLen) == 0,
              "stored the client's w0");
        break;
      }
      case Scenario::kClientAwaitParams:
        // Needs a ShareV and confirmV from a party holding w0 and L.
        Check(false, "client completed without a verifier-holding server");
        break;
      case Scenario::kClientAwaitUpgrade:
        Check(m->has_upgrade(), "client completed on an Upgrade");
        break;
      case Scenario::kCount:
        break;
    }
  }
  // Poll never makes progress on its own.
  const Step poll = side->Poll();
  CheckStep(poll);
  Check(!poll.send.has_value(), "Poll sends nothing");
  return 0;
}
