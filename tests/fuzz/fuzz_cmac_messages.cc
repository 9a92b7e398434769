// fuzz_cmac_messages.cc: libFuzzer target for the CMAC password
// authenticator's payloads (auth/cmac_password/cmac.proto), fed to a fresh
// side in each state.
//
// Input: byte 0 picks the side and state, the rest is the payload; it is
// then fed a second time to the same side, which must refuse it.
//   0 server awaiting ClientProof (known user)
//   1 server awaiting ClientProof (unknown user)
//   2 server awaiting UpgradeReply (the record is below the target)
//   3 client awaiting Params
//   4 client awaiting ServerProof
//   5 client awaiting ServerProof, with a record below the target
//   6 server before Start
//   7 client before Start
// Properties: no crash; a failed step names an error and sends nothing; a
// side only finishes on the genuine proof (the MAC bytes of the honest
// peer on this binding; an unknown user never finishes); an upgrade stores
// exactly the verifier received with the target parameters; after a
// failure or Done every call fails.
//
// Everything is deterministic (fixed RNG seed and decoy key), so the seed
// corpus holds the genuine payloads and the fuzzer mutates around them.
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/cmac_password/cmac.pb.h"
#include "auth/cmac_password/cmac_password.h"

namespace tcpcrypt::auth::cmac {
namespace {

void Check(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "fuzz_cmac_messages: property violated: %s\n", what);
    std::abort();
  }
}

constexpr char kUser[] = "alice";
constexpr char kRealm[] = "example.com";
constexpr char kPassword[] = "correct horse battery staple";
constexpr std::array<uint8_t, 32> kDecoyKey = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                               7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                               7, 7, 7, 7, 7, 7, 7, 7, 7, 7};

ChannelBinding Binding() {
  std::array<uint8_t, 33> sid{};
  for (size_t i = 0; i < sid.size(); ++i) sid[i] = static_cast<uint8_t>(i * 3);
  return ChannelBinding::SessionId(sid);
}

KdfParams Target() {
  KdfParams p = KdfParams::ForTests();
  p.opslimit += 1;
  return p;
}

// World is built once: the user's record and the genuine MACs.
struct World {
  VerifierRecord record;
  DecoySecret decoy{std::span<const uint8_t, 32>(kDecoyKey)};
  std::shared_ptr<const SecretBuffer> password;
  std::string client_mac;  // CMAC(h, TAG_CLIENT || binding)
  std::string server_mac;  // CMAC(h, TAG_SERVER || binding)

  World() {
    DeterministicRng rng(1);
    Check(MakeRecord(kUser, kRealm, kPassword, KdfParams::ForTests(), rng, &record),
          "MakeRecord");
    const std::string_view pw(kPassword);
    password = std::make_shared<const SecretBuffer>(std::span<const uint8_t>(
        reinterpret_cast<const uint8_t*>(pw.data()), pw.size()));
    client_mac = Mac(kTagClient);
    server_mac = Mac(kTagServer);
  }

  std::string Mac(std::string_view tag) const {
    std::vector<uint8_t> input(tag.begin(), tag.end());
    const std::vector<uint8_t> enc = Binding().Encode();
    input.insert(input.end(), enc.begin(), enc.end());
    std::array<uint8_t, kMacLen> out{};
    Check(ComputeCmac(record.verifier.span(), input, out), "ComputeCmac");
    return std::string(out.begin(), out.end());
  }

  VerifierRecord CopyRecord() const {
    VerifierRecord r;
    r.user = record.user;
    r.realm = record.realm;
    r.mechanism = record.mechanism;
    r.salt = record.salt;
    r.params = record.params;
    r.verifier = SecretBuffer(record.verifier.span());
    r.updated_unix = record.updated_unix;
    return r;
  }
};

const World& GetWorld() {
  static const World* world = new World();
  return *world;
}

std::optional<Message> Decode(ByteSpan b) {
  Message m;
  if (!m.ParseFromArray(b.data(), static_cast<int>(b.size()))) return std::nullopt;
  return m;
}

void CheckStep(const Step& s) {
  if (s.status == Step::Status::kFailed) {
    Check(s.error != AuthError::kNone, "failure without an error");
    Check(!s.send.has_value(), "failure that sends");
  } else {
    Check(s.error == AuthError::kNone, "success with an error");
  }
}

// Params whose KDF would be slow are not fuzzed (Sane() allows up to 1 GiB
// and 16 passes, which the unit tests cover); everything else is.
bool CheapParams(ByteSpan payload) {
  std::optional<Message> m = Decode(payload);
  if (!m || !m->has_params()) return true;
  const Kdf& k = m->params().kdf();
  return k.memlimit() <= (1u << 20) && k.opslimit() <= 4;
}

}  // namespace
}  // namespace tcpcrypt::auth::cmac

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tcpcrypt;
  using namespace tcpcrypt::auth;
  using namespace tcpcrypt::auth::cmac;
  if (size < 1) return 0;
  const uint8_t scenario = data[0] % 8;
  const ByteSpan payload(data + 1, size - 1);
  const World& w = GetWorld();

  MemoryVerifierStore store;
  Check(store.Put(w.CopyRecord()), "Put");
  DeterministicRng rng(2);
  ServerConfig cfg;
  cfg.store = &store;
  cfg.decoy = &w.decoy;
  cfg.target = (scenario == 2 || scenario == 5) ? Target() : KdfParams::ForTests();
  cfg.rng = &rng;
  const bool unknown = scenario == 1;
  const Context ctx{Binding(), unknown ? "mallory" : kUser, kRealm, {}};

  const bool is_server = scenario <= 2 || scenario == 6;
  std::unique_ptr<MechanismSide> side =
      is_server ? ServerFactory(cfg)(ctx)
                : ClientFactory(w.password, KdfLimits::ForTests())(ctx);

  // Bring the side to its state with the honest peer's messages.
  switch (scenario) {
    case 0:
    case 1:
    case 2: {
      Step s = side->Start();
      Check(s.status == Step::Status::kContinue, "server Start");
      if (scenario == 2) {
        Message proof;
        proof.mutable_client_proof()->set_mac(w.client_mac);
        const std::string bytes = proof.SerializeAsString();
        Step p = side->OnPayload(ByteSpan(
            reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
        Check(p.status == Step::Status::kContinue, "server asks for upgrade");
      }
      break;
    }
    case 3:
      Check(side->Start().status == Step::Status::kContinue, "client Start");
      if (!CheapParams(payload)) return 0;
      break;
    case 4:
    case 5: {
      Check(side->Start().status == Step::Status::kContinue, "client Start");
      std::unique_ptr<MechanismSide> server = ServerFactory(cfg)(ctx);
      Step params = server->Start();
      Check(params.send.has_value(), "params");
      Step proof = side->OnPayload(*params.send);
      Check(proof.status == Step::Status::kContinue, "client proof");
      break;
    }
    case 6:
    case 7:
      break;
  }

  // Feed the fuzzed payload, then the same bytes again.
  const Step first = side->OnPayload(payload);
  CheckStep(first);
  const std::optional<Message> msg = Decode(payload);

  switch (scenario) {
    case 0:
    case 1:
      if (first.status != Step::Status::kFailed) {
        Check(!unknown, "an unknown user authenticated");
        Check(msg && msg->has_client_proof() && msg->client_proof().mac() == w.client_mac,
              "server accepted a proof that is not the genuine one");
        Check(side->peer().has_value() && side->peer()->name == kUser, "identity");
      }
      break;
    case 2:
      if (first.status != Step::Status::kFailed) {
        Check(first.status == Step::Status::kDone, "upgrade reply must finish");
        Check(msg && msg->has_upgrade_reply(), "done without an UpgradeReply");
        std::optional<VerifierRecord> now =
            store.Find(kUser, kRealm, Mechanism::kCmacPassword);
        const std::string& v = msg->upgrade_reply().verifier();
        Check(now && now->verifier.size() == v.size() &&
                  std::memcmp(v.data(), now->verifier.data(), v.size()) == 0,
              "stored verifier is not the one received");
        Check(now->params.opslimit == Target().opslimit, "stored params");
        Check(ServerUpgradeOutcome(*side) == UpgradeOutcome::kStored, "outcome");
      } else {
        std::optional<VerifierRecord> now =
            store.Find(kUser, kRealm, Mechanism::kCmacPassword);
        Check(now && now->verifier.Equal(w.record.verifier),
              "a failed upgrade changed the store");
      }
      break;
    case 3:
      if (first.status != Step::Status::kFailed) {
        Check(first.status == Step::Status::kContinue && first.send.has_value(),
              "client must answer Params with a proof");
        Check(msg && msg->has_params() && msg->params().salt().size() == 16,
              "client accepted bad Params");
      }
      break;
    case 4:
    case 5:
      if (first.status != Step::Status::kFailed) {
        Check(first.status == Step::Status::kDone, "client must finish");
        Check(msg && msg->has_server_proof() && msg->server_proof().mac() == w.server_mac,
              "client accepted a server proof that is not the genuine one");
        Check(first.send.has_value() == msg->server_proof().has_upgrade(),
              "UpgradeReply iff Upgrade");
        Check(side->peer().has_value(), "identity");
      }
      break;
    case 6:
    case 7:
      Check(first.status == Step::Status::kFailed &&
                first.error == AuthError::kUnexpectedMessage,
            "payload before Start accepted");
      break;
  }

  // Every side is single-use: the second feeding fails, whatever the first
  // did, and a finished side keeps its identity.
  const bool had_peer = side->peer().has_value();
  const Step second = side->OnPayload(payload);
  CheckStep(second);
  // (A client that answered Params now awaits a ServerProof, which the
  // same Params bytes are not; no other state accepts a payload twice.)
  Check(second.status == Step::Status::kFailed, "a side accepted a payload twice");
  Check(side->peer().has_value() == had_peer, "identity changed after the end");
  return 0;
}
