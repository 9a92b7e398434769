// cmac_password_test.cc: the CMAC mutual password authenticator, both sides
// driven in-process (no sockets), with KdfParams::ForTests() so it is fast.
#include "auth/cmac_password/cmac_password.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "auth/cmac_password/cmac.pb.h"

namespace tcpcrypt::auth::cmac {
namespace {

constexpr char kUser[] = "alice";
constexpr char kRealm[] = "example.com";
constexpr char kPassword[] = "correct horse battery staple";

using Bytes = std::vector<uint8_t>;
using Status = Step::Status;

ChannelBinding Sid(uint8_t fill) {
  std::array<uint8_t, 33> sid{};
  sid.fill(fill);
  sid[0] = 0x01;
  return ChannelBinding::SessionId(sid);
}

Bytes Encode(const Message& m) {
  const std::string s = m.SerializeAsString();
  return Bytes(s.begin(), s.end());
}

std::optional<Message> Decode(const Bytes& b) {
  Message m;
  if (!m.ParseFromArray(b.data(), static_cast<int>(b.size()))) return std::nullopt;
  return m;
}

std::shared_ptr<const SecretBuffer> Password(std::string_view pw) {
  return std::make_shared<const SecretBuffer>(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pw.data()), pw.size()));
}

KdfParams Stronger(KdfParams p) {
  p.opslimit += 1;
  return p;
}

// Transcript is one run of the exchange, stopping at the first failure.
struct Transcript {
  Step server_start;
  Step client_start;
  std::optional<Step> client_proof;   // client's answer to Params
  std::optional<Step> server_proof;   // server's answer to ClientProof
  std::optional<Step> client_finish;  // client's answer to ServerProof
  std::optional<Step> server_finish;  // server's answer to UpgradeReply
};

Transcript Exchange(MechanismSide& client, MechanismSide& server) {
  Transcript t;
  t.server_start = server.Start();
  t.client_start = client.Start();
  if (t.server_start.status != Status::kContinue || !t.server_start.send) return t;
  t.client_proof = client.OnPayload(*t.server_start.send);
  if (t.client_proof->status != Status::kContinue || !t.client_proof->send) return t;
  t.server_proof = server.OnPayload(*t.client_proof->send);
  if (t.server_proof->status == Status::kFailed || !t.server_proof->send) return t;
  t.client_finish = client.OnPayload(*t.server_proof->send);
  if (t.client_finish->status != Status::kDone || !t.client_finish->send) return t;
  t.server_finish = server.OnPayload(*t.client_finish->send);
  return t;
}

// FailingPutStore refuses every write (a read-only database).
class FailingPutStore final : public VerifierStore {
 public:
  explicit FailingPutStore(VerifierStore* inner) : inner_(inner) {}
  std::optional<VerifierRecord> Find(const std::string& u, const std::string& r,
                                     Mechanism m) override {
    return inner_->Find(u, r, m);
  }
  bool Put(const VerifierRecord&) override { return false; }
  bool Delete(const std::string& u, const std::string& r) override {
    return inner_->Delete(u, r);
  }
  std::vector<UserSummary> List() override { return inner_->List(); }

 private:
  VerifierStore* inner_;
};

class CmacPasswordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VerifierRecord rec;
    ASSERT_TRUE(MakeRecord(kUser, kRealm, kPassword, KdfParams::ForTests(),
                           rng_, &rec));
    ASSERT_TRUE(store_.Put(rec));
  }

  ServerConfig Config() {
    ServerConfig c;
    c.store = &store_;
    c.decoy = &decoy_;
    c.target = KdfParams::ForTests();
    c.rng = &rng_;
    return c;
  }

  std::unique_ptr<MechanismSide> Server(const ChannelBinding& b,
                                        const std::string& user = kUser) {
    return Server(b, user, Config());
  }
  std::unique_ptr<MechanismSide> Server(const ChannelBinding& b,
                                        const std::string& user,
                                        const ServerConfig& cfg) {
    return ServerFactory(cfg)(Context{b, user, kRealm, {}});
  }
  std::unique_ptr<MechanismSide> Client(const ChannelBinding& b,
                                        std::string_view password = kPassword,
                                        const std::string& user = kUser,
                                        const std::string& realm = kRealm) {
    return ClientFactory(Password(password), KdfLimits::ForTests())(Context{b, user, realm, {}});
  }

  // ServerProofFor forges the ServerProof a server holding |verifier| would
  // send on |b| (for impostor and upgrade tests).
  Bytes ServerProofFor(const SecretBuffer& verifier, const ChannelBinding& b,
                       const Upgrade* upgrade = nullptr) {
    std::optional<CmacAes128> mac = CmacAes128::Create(verifier.span());
    EXPECT_TRUE(mac.has_value());
    const Bytes enc = b.Encode();
    const ByteSpan parts[] = {
        ByteSpan(reinterpret_cast<const uint8_t*>(kTagServer.data()),
                 kTagServer.size()),
        enc};
    std::array<uint8_t, kMacLen> out{};
    EXPECT_TRUE(mac->Compute(parts, out));
    Message m;
    m.mutable_server_proof()->set_mac(out.data(), out.size());
    if (upgrade != nullptr) *m.mutable_server_proof()->mutable_upgrade() = *upgrade;
    return Encode(m);
  }

  MemoryVerifierStore store_;
  DecoySecret decoy_{std::span<const uint8_t, 32>(kDecoyKey)};
  DeterministicRng rng_{42};
  static constexpr std::array<uint8_t, 32> kDecoyKey = {
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
      17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
};

// --- Happy path ------------------------------------------------------------

TEST_F(CmacPasswordTest, RightPasswordAuthenticatesBothWays) {
  auto server = Server(Sid(7));
  auto client = Client(Sid(7));
  EXPECT_EQ(server->mechanism(), Mechanism::kCmacPassword);
  EXPECT_EQ(client->mechanism(), Mechanism::kCmacPassword);
  const Transcript t = Exchange(*client, *server);

  // The server speaks first; the client has nothing to say at Start.
  EXPECT_EQ(t.server_start.status, Status::kContinue);
  EXPECT_TRUE(t.server_start.send.has_value());
  EXPECT_EQ(t.client_start.status, Status::kContinue);
  EXPECT_FALSE(t.client_start.send.has_value());
  ASSERT_TRUE(t.client_proof && t.server_proof && t.client_finish);
  EXPECT_EQ(t.client_proof->status, Status::kContinue);
  EXPECT_EQ(t.server_proof->status, Status::kDone) << t.server_proof->detail;
  EXPECT_EQ(t.client_finish->status, Status::kDone) << t.client_finish->detail;
  EXPECT_FALSE(t.client_finish->send.has_value());  // no upgrade asked for

  std::optional<PeerIdentity> client_id = server->peer();
  ASSERT_TRUE(client_id.has_value());
  EXPECT_EQ(client_id->mechanism, Mechanism::kCmacPassword);
  EXPECT_EQ(client_id->name, kUser);
  EXPECT_EQ(client_id->attributes,
            (std::map<std::string, std::string>{{"realm", kRealm}}));

  std::optional<PeerIdentity> server_id = client->peer();
  ASSERT_TRUE(server_id.has_value());
  EXPECT_EQ(server_id->mechanism, Mechanism::kCmacPassword);
  EXPECT_EQ(server_id->name, kRealm);
  EXPECT_EQ(server_id->attributes,
            (std::map<std::string, std::string>{{"proof", "holds-verifier"}}));
  EXPECT_EQ(ServerUpgradeOutcome(*server), UpgradeOutcome::kNotNeeded);
  EXPECT_EQ(ServerUpgradeOutcome(*client), std::nullopt);
}

TEST_F(CmacPasswordTest, WireMessagesHaveTheDocumentedShape) {
  auto server = Server(Sid(7));
  auto client = Client(Sid(7));
  const Transcript t = Exchange(*client, *server);
  ASSERT_TRUE(t.server_proof && t.server_proof->send);
  auto params = Decode(*t.server_start.send);
  ASSERT_TRUE(params && params->has_params());
  auto rec = store_.Find(kUser, kRealm, Mechanism::kCmacPassword);
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(params->params().salt(), std::string(rec->salt.begin(), rec->salt.end()));
  EXPECT_EQ(params->params().kdf().opslimit(), KdfParams::ForTests().opslimit);
  EXPECT_EQ(params->params().kdf().memlimit(), KdfParams::ForTests().memlimit);

  // The proofs are CMAC-AES-128(h, TAG || binding.Encode()) with h the
  // stored verifier (paper §4.2).
  const Bytes enc = Sid(7).Encode();
  auto proof_msg = Decode(*t.client_proof->send);
  ASSERT_TRUE(proof_msg && proof_msg->has_client_proof());
  Bytes client_input(kTagClient.begin(), kTagClient.end());
  client_input.insert(client_input.end(), enc.begin(), enc.end());
  std::array<uint8_t, kMacLen> want{};
  ASSERT_TRUE(ComputeCmac(rec->verifier.span(), client_input, want));
  EXPECT_EQ(proof_msg->client_proof().mac(), std::string(want.begin(), want.end()));
  EXPECT_EQ(*t.server_proof->send, ServerProofFor(rec->verifier, Sid(7)));
}

TEST_F(CmacPasswordTest, TagsAreTheDocumentedBytes) {
  EXPECT_EQ(kTagClient, "tcpcrypt cmac-password client v1");
  EXPECT_EQ(kTagServer, "tcpcrypt cmac-password server v1");
}

TEST_F(CmacPasswordTest, InteractiveParametersWork) {
  // The default (real) parameters, once: about 64 MiB and a fraction of a
  // second per derivation.
  VerifierRecord rec;
  ASSERT_TRUE(MakeRecord("carol", kRealm, "pw", KdfParams::Interactive(), rng_,
                         &rec));
  ASSERT_TRUE(store_.Put(rec));
  ServerConfig cfg = Config();
  cfg.target = KdfParams::Interactive();
  auto server = Server(Sid(3), "carol", cfg);
  auto client = Client(Sid(3), "pw", "carol");
  const Transcript t = Exchange(*client, *server);
  ASSERT_TRUE(t.client_finish.has_value());
  EXPECT_EQ(t.server_proof->status, Status::kDone);
  EXPECT_EQ(t.client_finish->status, Status::kDone);
}

TEST_F(CmacPasswordTest, SidesOutliveTheirFactories) {
  std::unique_ptr<MechanismSide> server, client;
  {
    MechanismFactory sf = ServerFactory(Config());
    MechanismFactory cf = ClientFactory(Password(kPassword), KdfLimits::ForTests());
    server = sf(Context{Sid(1), kUser, kRealm, {}});
    client = cf(Context{Sid(1), kUser, kRealm, {}});
  }
  const Transcript t = Exchange(*client, *server);
  ASSERT_TRUE(t.client_finish.has_value());
  EXPECT_EQ(t.client_finish->status, Status::kDone);
  EXPECT_TRUE(server->peer().has_value());
}

TEST_F(CmacPasswordTest, ConcurrentLoginsShareOneFactory) {
  // One factory pair serves connections on several threads (the CMAC
  // template is per thread; the store is thread-safe).
  ServerConfig cfg = Config();
  cfg.rng = nullptr;  // SystemRng
  const MechanismFactory sf = ServerFactory(cfg);
  const MechanismFactory cf = ClientFactory(Password(kPassword), KdfLimits::ForTests());
  const MechanismFactory bad = ClientFactory(Password("nope"), KdfLimits::ForTests());
  std::atomic<int> wrong_outcomes{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      for (int i = 0; i < 20; ++i) {
        const ChannelBinding b = Sid(static_cast<uint8_t>(th * 20 + i));
        const bool right = i % 3 != 0;
        auto server = sf(Context{b, kUser, kRealm, {}});
        auto client = (right ? cf : bad)(Context{b, kUser, kRealm, {}});
        const Transcript t = Exchange(*client, *server);
        const bool ok = t.client_finish.has_value() &&
                        t.client_finish->status == Status::kDone &&
                        server->peer().has_value();
        if (ok != right) ++wrong_outcomes;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong_outcomes.load(), 0);
}

// --- Wrong password, unknown user, impostor --------------------------------

TEST_F(CmacPasswordTest, WrongPasswordFailsAtTheServerAndSendsNoProof) {
  auto server = Server(Sid(7));
  auto client = Client(Sid(7), "correct horse battery stapler");
  const Transcript t = Exchange(*client, *server);
  ASSERT_TRUE(t.server_proof.has_value());
  EXPECT_EQ(t.server_proof->status, Status::kFailed);
  EXPECT_EQ(t.server_proof->error, AuthError::kBadProof);
  EXPECT_EQ(t.server_proof->detail, "wrong password or unknown user");
  EXPECT_FALSE(t.server_proof->send.has_value());  // nothing for the client
  EXPECT_FALSE(server->peer().has_value());
  EXPECT_FALSE(client->peer().has_value());  // still waiting, never proven
}

TEST_F(CmacPasswordTest, WrongUserOrRealmOnTheClientFails) {
  // Same password, but the KDF binds user and realm: another realm (a
  // look-alike server name) gives another h.
  auto server = Server(Sid(7));
  auto client = Client(Sid(7), kPassword, kUser, "examp1e.com");
  const Transcript t = Exchange(*client, *server);
  ASSERT_TRUE(t.server_proof.has_value());
  EXPECT_EQ(t.server_proof->error, AuthError::kBadProof);
}

TEST_F(CmacPasswordTest, UnknownUserLooksLikeAWrongPassword) {
  auto wrong_pw_server = Server(Sid(7));
  auto wrong_pw_client = Client(Sid(7), "guess");
  const Transcript wrong = Exchange(*wrong_pw_client, *wrong_pw_server);

  auto unknown_server = Server(Sid(7), "mallory");
  auto unknown_client = Client(Sid(7), "guess", "mallory");
  const Transcript unknown = Exchange(*unknown_client, *unknown_server);

  ASSERT_TRUE(wrong.server_proof && unknown.server_proof);
  EXPECT_EQ(unknown.server_proof->status, Status::kFailed);
  EXPECT_EQ(unknown.server_proof->error, wrong.server_proof->error);
  EXPECT_EQ(unknown.server_proof->detail, wrong.server_proof->detail);
  EXPECT_FALSE(unknown.server_proof->send.has_value());
  // Same message sizes either way.
  EXPECT_EQ(unknown.server_start.send->size(), wrong.server_start.send->size());
  EXPECT_EQ(unknown.client_proof->send->size(), wrong.client_proof->send->size());
  // The decoy offers the target parameters and a well-formed salt.
  auto params = Decode(*unknown.server_start.send);
  ASSERT_TRUE(params && params->has_params());
  EXPECT_EQ(params->params().salt().size(), kPasswordSaltLen);
  EXPECT_EQ(params->params().kdf().opslimit(), Config().target.opslimit);
}

TEST_F(CmacPasswordTest, UnknownUserSaltIsStablePerUserAndDiffersAcrossUsers) {
  auto salt_of = [&](const std::string& user, const ChannelBinding& b) {
    auto server = Server(b, user);
    Step s = server->Start();
    auto m = Decode(*s.send);
    return m ? m->params().salt() : std::string();
  };
  const std::string a1 = salt_of("mallory", Sid(1));
  const std::string a2 = salt_of("mallory", Sid(2));  // another connection
  const std::string b = salt_of("trudy", Sid(1));
  EXPECT_EQ(a1.size(), kPasswordSaltLen);
  EXPECT_EQ(a1, a2);
  EXPECT_NE(a1, b);
  // A known user gets the record's salt, not the decoy's.
  const std::vector<uint8_t> real =
      store_.Find(kUser, kRealm, Mechanism::kCmacPassword)->salt;
  const std::vector<uint8_t> decoy =
      decoy_.Salt(Mechanism::kCmacPassword, kUser, kRealm);
  EXPECT_EQ(salt_of(kUser, Sid(1)), std::string(real.begin(), real.end()));
  EXPECT_NE(salt_of(kUser, Sid(1)), std::string(decoy.begin(), decoy.end()));
}

TEST_F(CmacPasswordTest, UnknownUserFailsEvenWithAProofUnderTheDecoyKey) {
  // Someone who learned the decoy secret can MAC with the decoy key; the
  // server must still refuse, because the user does not exist.
  auto server = Server(Sid(7), "mallory");
  ASSERT_EQ(server->Start().status, Status::kContinue);
  SecretBuffer decoy_key(kVerifierLen);
  decoy_.Bytes(kDecoyVerifierLabel, "mallory", kRealm, decoy_key.span());
  std::optional<CmacAes128> mac = CmacAes128::Create(decoy_key.span());
  ASSERT_TRUE(mac.has_value());
  const Bytes enc = Sid(7).Encode();
  const ByteSpan parts[] = {
      ByteSpan(reinterpret_cast<const uint8_t*>(kTagClient.data()), kTagClient.size()),
      enc};
  std::array<uint8_t, kMacLen> out{};
  ASSERT_TRUE(mac->Compute(parts, out));
  Message m;
  m.mutable_client_proof()->set_mac(out.data(), out.size());
  Step s = server->OnPayload(Encode(m));
  EXPECT_EQ(s.status, Status::kFailed);
  EXPECT_EQ(s.error, AuthError::kBadProof);
  EXPECT_EQ(s.detail, "wrong password or unknown user");
}

TEST_F(CmacPasswordTest, ImpostorServerIsDetectedByTheClient) {
  // The impostor holds a record made from a different password (it knows
  // the salt, not h); it answers Params honestly and forges a ServerProof
  // with its own verifier.
  MemoryVerifierStore impostor_store;
  VerifierRecord fake;
  ASSERT_TRUE(MakeRecord(kUser, kRealm, "hunter2", KdfParams::ForTests(), rng_,
                         &fake));
  fake.salt = store_.Find(kUser, kRealm, Mechanism::kCmacPassword)->salt;
  ASSERT_TRUE(impostor_store.Put(fake));
  ServerConfig cfg = Config();
  cfg.store = &impostor_store;
  auto impostor = Server(Sid(7), kUser, cfg);
  auto client = Client(Sid(7));

  Step params = impostor->Start();
  ASSERT_TRUE(client->Start().status == Status::kContinue);
  Step proof = client->OnPayload(*params.send);
  ASSERT_EQ(proof.status, Status::kContinue);
  // The honest impostor server code refuses the real password ...
  Step refused = impostor->OnPayload(*proof.send);
  EXPECT_EQ(refused.error, AuthError::kBadProof);
  // ... and a forged ServerProof is refused by the client.
  Step s = client->OnPayload(ServerProofFor(fake.verifier, Sid(7)));
  EXPECT_EQ(s.status, Status::kFailed);
  EXPECT_EQ(s.error, AuthError::kBadProof);
  EXPECT_EQ(s.detail,
            "server proof did not verify: the server does not hold this user's "
            "password verifier (impostor?)");
  EXPECT_FALSE(client->peer().has_value());
}

TEST_F(CmacPasswordTest, ReflectedClientProofIsNotAServerProof) {
  auto server = Server(Sid(7));
  auto client = Client(Sid(7));
  Step params = server->Start();
  client->Start();
  Step proof = client->OnPayload(*params.send);
  auto m = Decode(*proof.send);
  ASSERT_TRUE(m.has_value());
  Message reflected;
  reflected.mutable_server_proof()->set_mac(m->client_proof().mac());
  Step s = client->OnPayload(Encode(reflected));
  EXPECT_EQ(s.error, AuthError::kBadProof);
}

// --- Binding: replay and relay ----------------------------------------------

TEST_F(CmacPasswordTest, ClientProofReplayedOnAnotherBindingIsRefused) {
  // Record a genuine exchange on binding X.
  auto server_x = Server(Sid(0x11));
  auto client_x = Client(Sid(0x11));
  const Transcript x = Exchange(*client_x, *server_x);
  ASSERT_TRUE(x.client_finish && x.client_finish->status == Status::kDone);

  // Replay its ClientProof to a server on binding Y.
  auto server_y = Server(Sid(0x22));
  ASSERT_EQ(server_y->Start().status, Status::kContinue);
  Step s = server_y->OnPayload(*x.client_proof->send);
  EXPECT_EQ(s.status, Status::kFailed);
  EXPECT_EQ(s.error, AuthError::kBadProof);

  // Replay its ServerProof to a client on binding Y.
  auto server_y2 = Server(Sid(0x22));
  auto client_y = Client(Sid(0x22));
  Step params = server_y2->Start();
  client_y->Start();
  ASSERT_EQ(client_y->OnPayload(*params.send).status, Status::kContinue);
  Step c = client_y->OnPayload(*x.server_proof->send);
  EXPECT_EQ(c.status, Status::kFailed);
  EXPECT_EQ(c.error, AuthError::kBadProof);
}

TEST_F(CmacPasswordTest, SameBytesOfAnotherBindingKindAreRefused) {
  // A TLS exporter with the session ID's bytes is another binding.
  const ChannelBinding sid = Sid(0x33);
  const ChannelBinding tls = ChannelBinding::TlsExporter(sid.value);
  auto server = Server(tls);
  auto client = Client(sid);
  const Transcript t = Exchange(*client, *server);
  ASSERT_TRUE(t.server_proof.has_value());
  EXPECT_EQ(t.server_proof->error, AuthError::kBadProof);
}

TEST_F(CmacPasswordTest, RelayBetweenTwoSessionsIsRefused) {
  // A man in the middle runs session X with the client and session Y with
  // the server and relays the payloads unchanged.
  auto server = Server(Sid(0x0a));
  auto client = Client(Sid(0x0b));
  const Transcript t = Exchange(*client, *server);
  ASSERT_TRUE(t.server_proof.has_value());
  EXPECT_EQ(t.server_proof->status, Status::kFailed);
  EXPECT_EQ(t.server_proof->error, AuthError::kBadProof);
  EXPECT_FALSE(server->peer().has_value());
  EXPECT_FALSE(client->peer().has_value());
}

// --- Tampering and malformed input ------------------------------------------

TEST_F(CmacPasswordTest, EveryBitFlipOfTheClientProofIsRefused) {
  auto server0 = Server(Sid(5));
  auto client0 = Client(Sid(5));
  Step params = server0->Start();
  client0->Start();
  const Bytes proof = *client0->OnPayload(*params.send).send;
  for (size_t i = 0; i < proof.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes tampered = proof;
      tampered[i] ^= static_cast<uint8_t>(1u << bit);
      auto server = Server(Sid(5));
      ASSERT_EQ(server->Start().status, Status::kContinue);
      Step s = server->OnPayload(tampered);
      EXPECT_EQ(s.status, Status::kFailed) << "byte " << i << " bit " << bit;
      EXPECT_TRUE(s.error == AuthError::kBadProof || s.error == AuthError::kMalformed ||
                  s.error == AuthError::kUnexpectedMessage)
          << AuthErrorName(s.error);
      EXPECT_FALSE(s.send.has_value());
    }
  }
  // The untampered proof still works on a fresh server (the test is fair).
  auto server = Server(Sid(5));
  server->Start();
  EXPECT_EQ(server->OnPayload(proof).status, Status::kDone);
}

TEST_F(CmacPasswordTest, EveryBitFlipOfTheServerProofIsRefused) {
  auto rec = store_.Find(kUser, kRealm, Mechanism::kCmacPassword);
  ASSERT_TRUE(rec.has_value());
  const Bytes proof = ServerProofFor(rec->verifier, Sid(5));
  auto params_server = Server(Sid(5));
  const Bytes params = *params_server->Start().send;
  for (size_t i = 0; i < proof.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes tampered = proof;
      tampered[i] ^= static_cast<uint8_t>(1u << bit);
      auto client = Client(Sid(5));
      client->Start();
      ASSERT_EQ(client->OnPayload(params).status, Status::kContinue);
      Step s = client->OnPayload(tampered);
      EXPECT_EQ(s.status, Status::kFailed) << "byte " << i << " bit " << bit;
      EXPECT_FALSE(client->peer().has_value());
    }
  }
}

TEST_F(CmacPasswordTest, TamperedSaltMakesTheProofFail) {
  auto server = Server(Sid(5));
  auto client = Client(Sid(5));
  Bytes params = *server->Start().send;
  auto m = Decode(params);
  ASSERT_TRUE(m.has_value());
  std::string salt = m->params().salt();
  salt[3] ^= 1;
  m->mutable_params()->set_salt(salt);
  client->Start();
  Step proof = client->OnPayload(Encode(*m));
  ASSERT_EQ(proof.status, Status::kContinue);
  EXPECT_EQ(server->OnPayload(*proof.send).error, AuthError::kBadProof);
}

struct BadPayload {
  const char* name;
  Bytes bytes;
};

std::vector<BadPayload> MalformedClientProofs() {
  std::vector<BadPayload> out;
  out.push_back({"empty", {}});
  out.push_back({"oversized", Bytes(kMaxPayloadLen + 1, 0x12)});
  out.push_back({"garbage", {0xff, 0xff, 0xff, 0xff, 0x0f}});
  out.push_back({"truncated", {0x12, 0x12, 0x0a, 0x10, 0x01, 0x02}});
  Message short_mac;
  short_mac.mutable_client_proof()->set_mac(std::string(15, 'x'));
  out.push_back({"15-byte mac", Encode(short_mac)});
  Message long_mac;
  long_mac.mutable_client_proof()->set_mac(std::string(17, 'x'));
  out.push_back({"17-byte mac", Encode(long_mac)});
  Message good;
  good.mutable_client_proof()->set_mac(std::string(16, 'x'));
  Bytes dup = Encode(good);
  const Bytes again = dup;
  dup.insert(dup.end(), again.begin(), again.end());  // the field twice
  out.push_back({"repeated field", dup});
  Bytes unknown = Encode(good);
  unknown.insert(unknown.end(), {0x28, 0x01});  // field 5 varint 1
  out.push_back({"unknown field", unknown});
  Bytes nested_unknown = {0x12, 0x14, 0x0a, 0x10};
  nested_unknown.insert(nested_unknown.end(), 16, 'x');
  nested_unknown.insert(nested_unknown.end(), {0x18, 0x01});  // field 3 in ClientProof
  out.push_back({"unknown nested field", nested_unknown});
  Bytes long_varint_len = {0x12, 0x92, 0x00, 0x0a, 0x10};  // length 0x12 padded
  long_varint_len.insert(long_varint_len.end(), 16, 'x');
  out.push_back({"non-minimal length", long_varint_len});
  return out;
}

TEST_F(CmacPasswordTest, MalformedClientProofsAreRefused) {
  for (const BadPayload& bad : MalformedClientProofs()) {
    auto server = Server(Sid(5));
    ASSERT_EQ(server->Start().status, Status::kContinue);
    Step s = server->OnPayload(bad.bytes);
    EXPECT_EQ(s.status, Status::kFailed) << bad.name;
    EXPECT_EQ(s.error, AuthError::kMalformed) << bad.name << ": " << s.detail;
    EXPECT_FALSE(server->peer().has_value());
  }
}

TEST_F(CmacPasswordTest, MalformedParamsAreRefusedByTheClient) {
  std::vector<BadPayload> cases;
  cases.push_back({"empty", {}});
  cases.push_back({"oversized", Bytes(300, 0)});
  Message short_salt;
  short_salt.mutable_params()->set_salt(std::string(15, 's'));
  {
    Kdf* k = short_salt.mutable_params()->mutable_kdf();
    k->set_algorithm(KdfParams::ForTests().algorithm);
    k->set_opslimit(KdfParams::ForTests().opslimit);
    k->set_memlimit(KdfParams::ForTests().memlimit);
  }
  cases.push_back({"15-byte salt", Encode(short_salt)});
  Message no_kdf;
  no_kdf.mutable_params()->set_salt(std::string(16, 's'));
  cases.push_back({"no kdf", Encode(no_kdf)});
  for (const BadPayload& bad : cases) {
    auto client = Client(Sid(5));
    client->Start();
    Step s = client->OnPayload(bad.bytes);
    EXPECT_EQ(s.status, Status::kFailed) << bad.name;
    EXPECT_EQ(s.error, AuthError::kMalformed) << bad.name << ": " << s.detail;
  }
}

// The default client floor is Interactive: a server offering the library
// minimum (a ForTests record, or an impostor that wants a cheap proof) is
// refused before the KDF runs and before any ClientProof exists.
TEST_F(CmacPasswordTest, ClientRefusesParamsBelowItsFloorBeforeDeriving) {
  auto server = Server(Sid(7));
  auto client = ClientFactory(Password(kPassword))(Context{Sid(7), kUser, kRealm, {}});
  client->Start();
  const uint64_t kdf_before = PasswordKdfCount();
  Step s = client->OnPayload(*server->Start().send);
  EXPECT_EQ(s.status, Status::kFailed);
  EXPECT_EQ(s.error, AuthError::kPolicy);
  EXPECT_FALSE(s.send.has_value());
  EXPECT_EQ(PasswordKdfCount(), kdf_before);
  EXPECT_NE(s.detail.find("below this client's floor of 67108864 bytes and 2 passes"),
            std::string::npos)
      << s.detail;
}

// A ceiling below what the server names is refused the same way.
TEST_F(CmacPasswordTest, ClientRefusesParamsAboveItsCeilingBeforeDeriving) {
  KdfLimits tight = KdfLimits::ForTests();
  tight.max_memlimit = KdfParams::ForTests().memlimit;
  tight.max_opslimit = KdfParams::ForTests().opslimit;
  auto client = ClientFactory(Password(kPassword), tight)(Context{Sid(8), kUser, kRealm, {}});
  client->Start();
  Message m;
  m.mutable_params()->set_salt(std::string(16, 's'));
  m.mutable_params()->mutable_kdf()->set_algorithm(KdfParams::ForTests().algorithm);
  m.mutable_params()->mutable_kdf()->set_opslimit(KdfParams::ForTests().opslimit);
  m.mutable_params()->mutable_kdf()->set_memlimit(KdfParams::ForTests().memlimit * 2);
  const uint64_t kdf_before = PasswordKdfCount();
  Step s = client->OnPayload(Encode(m));
  EXPECT_EQ(s.error, AuthError::kPolicy);
  EXPECT_FALSE(s.send.has_value());
  EXPECT_EQ(PasswordKdfCount(), kdf_before);
  EXPECT_NE(s.detail.find("above this client's ceiling"), std::string::npos) << s.detail;
}

TEST_F(CmacPasswordTest, InsaneParamsFromAMaliciousServerAreRefusedQuickly) {
  struct Insane {
    const char* name;
    uint32_t alg;
    uint64_t ops;
    uint64_t mem;
  };
  const KdfParams ok = KdfParams::ForTests();
  const Insane cases[] = {
      {"4 GiB memory", ok.algorithm, ok.opslimit, 4ull << 30},
      {"max memory", ok.algorithm, ok.opslimit, ~uint64_t{0}},
      {"a million passes", ok.algorithm, 1000000, ok.memlimit},
      {"zero passes", ok.algorithm, 0, ok.memlimit},
      {"tiny memory", ok.algorithm, ok.opslimit, 1},
      {"argon2i", 1, ok.opslimit, ok.memlimit},
      {"unknown algorithm", 99, ok.opslimit, ok.memlimit},
  };
  for (const Insane& c : cases) {
    Message m;
    m.mutable_params()->set_salt(std::string(16, 's'));
    Kdf* k = m.mutable_params()->mutable_kdf();
    k->set_algorithm(c.alg);
    k->set_opslimit(c.ops);
    k->set_memlimit(c.mem);
    auto client = Client(Sid(5));
    client->Start();
    const auto start = std::chrono::steady_clock::now();
    Step s = client->OnPayload(Encode(m));
    const auto spent = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(s.status, Status::kFailed) << c.name;
    // Outside the client's KDF limits: a policy refusal naming the numbers.
    EXPECT_EQ(s.error, AuthError::kPolicy) << c.name;
    EXPECT_NE(s.detail.find(std::to_string(c.mem)), std::string::npos) << s.detail;
    EXPECT_FALSE(s.send.has_value()) << c.name;
    EXPECT_LT(spent, std::chrono::milliseconds(200)) << c.name;
  }
}

// --- State machine -------------------------------------------------------------

TEST_F(CmacPasswordTest, WrongStateCallsFail) {
  Message proof;
  proof.mutable_client_proof()->set_mac(std::string(16, 'x'));
  // Server: a payload before Start.
  {
    auto server = Server(Sid(1));
    Step s = server->OnPayload(Encode(proof));
    EXPECT_EQ(s.error, AuthError::kUnexpectedMessage);
    EXPECT_EQ(server->Start().error, AuthError::kUnexpectedMessage);  // sticky
  }
  // Server: Start twice.
  {
    auto server = Server(Sid(1));
    ASSERT_EQ(server->Start().status, Status::kContinue);
    EXPECT_EQ(server->Start().error, AuthError::kUnexpectedMessage);
  }
  // Client: a payload before Start; Start twice.
  {
    auto client = Client(Sid(1));
    EXPECT_EQ(client->OnPayload(Encode(proof)).error, AuthError::kUnexpectedMessage);
    auto client2 = Client(Sid(1));
    client2->Start();
    EXPECT_EQ(client2->Start().error, AuthError::kUnexpectedMessage);
  }
  // Each side fed the other side's message type.
  {
    auto server = Server(Sid(1));
    Bytes params = *server->Start().send;
    EXPECT_EQ(server->OnPayload(params).error, AuthError::kUnexpectedMessage);
    auto client = Client(Sid(1));
    client->Start();
    EXPECT_EQ(client->OnPayload(Encode(proof)).error, AuthError::kUnexpectedMessage);
  }
  // The client expecting a ServerProof gets Params again.
  {
    auto server = Server(Sid(1));
    auto client = Client(Sid(1));
    Bytes params = *server->Start().send;
    client->Start();
    ASSERT_EQ(client->OnPayload(params).status, Status::kContinue);
    EXPECT_EQ(client->OnPayload(params).error, AuthError::kUnexpectedMessage);
  }
  // A server that needs no upgrade gets an UpgradeReply anyway.
  {
    auto server = Server(Sid(1));
    Message reply;
    reply.mutable_upgrade_reply()->set_verifier(std::string(16, 'v'));
    server->Start();
    EXPECT_EQ(server->OnPayload(Encode(reply)).error, AuthError::kUnexpectedMessage);
  }
}

TEST_F(CmacPasswordTest, FailureIsSticky) {
  auto server = Server(Sid(1));
  server->Start();
  Step first = server->OnPayload(Bytes{0xff});
  ASSERT_EQ(first.error, AuthError::kMalformed);
  // Even the right proof is refused now, with the saved error.
  auto client = Client(Sid(1));
  auto fresh = Server(Sid(1));
  client->Start();
  Step proof = client->OnPayload(*fresh->Start().send);
  Step again = server->OnPayload(*proof.send);
  EXPECT_EQ(again.error, AuthError::kMalformed);
  EXPECT_EQ(again.detail, first.detail);
  EXPECT_EQ(server->Start().error, AuthError::kMalformed);
  EXPECT_FALSE(server->peer().has_value());
}

TEST_F(CmacPasswordTest, CallsAfterDoneFailButKeepTheIdentity) {
  auto server = Server(Sid(1));
  auto client = Client(Sid(1));
  const Transcript t = Exchange(*client, *server);
  ASSERT_EQ(t.client_finish->status, Status::kDone);
  EXPECT_EQ(server->OnPayload(*t.client_proof->send).status, Status::kFailed);
  EXPECT_EQ(server->Start().status, Status::kFailed);
  EXPECT_EQ(client->OnPayload(*t.server_proof->send).status, Status::kFailed);
  EXPECT_EQ(client->Start().status, Status::kFailed);
  EXPECT_TRUE(server->peer().has_value());
  EXPECT_TRUE(client->peer().has_value());
}

TEST_F(CmacPasswordTest, UnconfiguredServerFailsInternally) {
  ServerConfig cfg = Config();
  cfg.store = nullptr;
  auto server = Server(Sid(1), kUser, cfg);
  Step s = server->Start();
  EXPECT_EQ(s.status, Status::kFailed);
  EXPECT_EQ(s.error, AuthError::kInternal);
}

// --- Registration --------------------------------------------------------------

TEST_F(CmacPasswordTest, MakeRecordSaltsEachRecord) {
  VerifierRecord a, b;
  ASSERT_TRUE(MakeRecord("bob", kRealm, "pw", KdfParams::ForTests(), rng_, &a));
  ASSERT_TRUE(MakeRecord("bob", kRealm, "pw", KdfParams::ForTests(), rng_, &b));
  EXPECT_EQ(a.mechanism, Mechanism::kCmacPassword);
  EXPECT_EQ(a.salt.size(), kPasswordSaltLen);
  EXPECT_EQ(a.verifier.size(), kVerifierLen);
  EXPECT_NE(a.salt, b.salt);
  EXPECT_FALSE(a.verifier.Equal(b.verifier));
  EXPECT_GT(a.updated_unix, 0);

  KdfParams insane = KdfParams::ForTests();
  insane.memlimit = 1ull << 40;
  VerifierRecord c;
  EXPECT_FALSE(MakeRecord("bob", kRealm, "pw", insane, rng_, &c));
  EXPECT_TRUE(c.user.empty());  // untouched
}

// --- Re-hash on login -----------------------------------------------------------

TEST_F(CmacPasswordTest, WeakRecordIsRehashedOnLogin) {
  ServerConfig cfg = Config();
  cfg.target = Stronger(KdfParams::ForTests());
  const VerifierRecord before = *store_.Find(kUser, kRealm, Mechanism::kCmacPassword);

  auto server = Server(Sid(9), kUser, cfg);
  auto client = Client(Sid(9));
  const Transcript t = Exchange(*client, *server);
  ASSERT_TRUE(t.server_proof && t.client_finish && t.server_finish);
  // The server is not done until the new verifier arrives.
  EXPECT_EQ(t.server_proof->status, Status::kContinue);
  auto proof = Decode(*t.server_proof->send);
  ASSERT_TRUE(proof && proof->server_proof().has_upgrade());
  EXPECT_EQ(proof->server_proof().upgrade().kdf().opslimit(), cfg.target.opslimit);
  EXPECT_EQ(t.client_finish->status, Status::kDone);
  ASSERT_TRUE(t.client_finish->send.has_value());
  EXPECT_EQ(t.server_finish->status, Status::kDone) << t.server_finish->detail;
  EXPECT_TRUE(server->peer().has_value());
  EXPECT_EQ(ServerUpgradeOutcome(*server), UpgradeOutcome::kStored);

  const VerifierRecord after = *store_.Find(kUser, kRealm, Mechanism::kCmacPassword);
  EXPECT_EQ(after.params.opslimit, cfg.target.opslimit);
  EXPECT_EQ(after.salt, std::vector<uint8_t>(proof->server_proof().upgrade().salt().begin(),
                                             proof->server_proof().upgrade().salt().end()));
  EXPECT_NE(after.salt, before.salt);
  EXPECT_FALSE(after.verifier.Equal(before.verifier));
  // h' is what MakeRecord would have computed with that salt and params.
  SecretBuffer expect(kVerifierLen);
  ASSERT_TRUE(DerivePasswordKey(kPassword, kUser, kRealm, after.salt, after.params,
                                expect.span()));
  EXPECT_TRUE(after.verifier.Equal(expect));

  // The next login uses the new record and asks for nothing more.
  auto server2 = Server(Sid(10), kUser, cfg);
  auto client2 = Client(Sid(10));
  const Transcript t2 = Exchange(*client2, *server2);
  ASSERT_TRUE(t2.server_proof && t2.client_finish);
  EXPECT_EQ(t2.server_proof->status, Status::kDone);
  EXPECT_EQ(t2.client_finish->status, Status::kDone);
  EXPECT_FALSE(t2.client_finish->send.has_value());
  EXPECT_EQ(ServerUpgradeOutcome(*server2), UpgradeOutcome::kNotNeeded);
  // And the old password still logs in (the same password, re-hashed).
  auto wrong_server = Server(Sid(11), kUser, cfg);
  auto wrong_client = Client(Sid(11), "not it");
  EXPECT_EQ(Exchange(*wrong_client, *wrong_server).server_proof->error, AuthError::kBadProof);
}

TEST_F(CmacPasswordTest, NoUpgradeOnAFailedLogin) {
  ServerConfig cfg = Config();
  cfg.target = Stronger(KdfParams::ForTests());
  auto server = Server(Sid(9), kUser, cfg);
  auto client = Client(Sid(9), "wrong");
  const Transcript t = Exchange(*client, *server);
  EXPECT_EQ(t.server_proof->error, AuthError::kBadProof);
  EXPECT_EQ(store_.Find(kUser, kRealm, Mechanism::kCmacPassword)->params.opslimit,
            KdfParams::ForTests().opslimit);
}

TEST_F(CmacPasswordTest, UpgradeSkippedWhenTheRecordChangedMeanwhile) {
  ServerConfig cfg = Config();
  cfg.target = Stronger(KdfParams::ForTests());
  auto server = Server(Sid(9), kUser, cfg);
  auto client = Client(Sid(9));
  Step params = server->Start();
  client->Start();
  Step proof = client->OnPayload(*params.send);
  Step sproof = server->OnPayload(*proof.send);
  ASSERT_EQ(sproof.status, Status::kContinue);
  EXPECT_FALSE(server->peer().has_value());  // not done before the reply
  Step reply = client->OnPayload(*sproof.send);
  ASSERT_EQ(reply.status, Status::kDone);
  // An administrator sets a new password before the reply arrives.
  VerifierRecord admin;
  ASSERT_TRUE(MakeRecord(kUser, kRealm, "new password", cfg.target, rng_, &admin));
  ASSERT_TRUE(store_.Put(admin));
  Step done = server->OnPayload(*reply.send);
  EXPECT_EQ(done.status, Status::kDone);
  EXPECT_EQ(ServerUpgradeOutcome(*server), UpgradeOutcome::kSkipped);
  EXPECT_TRUE(store_.Find(kUser, kRealm, Mechanism::kCmacPassword)->verifier.Equal(
      admin.verifier));
}

TEST_F(CmacPasswordTest, UpgradeStoreFailureStillLogsIn) {
  FailingPutStore failing(&store_);
  ServerConfig cfg = Config();
  cfg.store = &failing;
  cfg.target = Stronger(KdfParams::ForTests());
  auto server = Server(Sid(9), kUser, cfg);
  auto client = Client(Sid(9));
  const Transcript t = Exchange(*client, *server);
  ASSERT_TRUE(t.server_finish.has_value());
  EXPECT_EQ(t.server_finish->status, Status::kDone);
  EXPECT_EQ(ServerUpgradeOutcome(*server), UpgradeOutcome::kStoreFailed);
  EXPECT_EQ(store_.Find(kUser, kRealm, Mechanism::kCmacPassword)->params.opslimit,
            KdfParams::ForTests().opslimit);
}

TEST_F(CmacPasswordTest, MalformedUpgradeReplyIsRefusedAndStoresNothing) {
  ServerConfig cfg = Config();
  cfg.target = Stronger(KdfParams::ForTests());
  const VerifierRecord before = *store_.Find(kUser, kRealm, Mechanism::kCmacPassword);
  Message short_reply;
  short_reply.mutable_upgrade_reply()->set_verifier(std::string(15, 'v'));
  for (const Bytes& bad : {Bytes{}, Bytes{0x22, 0x00}, Encode(short_reply)}) {
    auto server = Server(Sid(9), kUser, cfg);
    auto client = Client(Sid(9));
    Step params = server->Start();
    client->Start();
    Step proof = client->OnPayload(*params.send);
    ASSERT_EQ(server->OnPayload(*proof.send).status, Status::kContinue);
    Step s = server->OnPayload(bad);
    EXPECT_EQ(s.status, Status::kFailed);
    EXPECT_EQ(s.error, AuthError::kMalformed) << s.detail;
    EXPECT_FALSE(server->peer().has_value());
  }
  EXPECT_TRUE(store_.Find(kUser, kRealm, Mechanism::kCmacPassword)->verifier.Equal(
      before.verifier));
}

TEST_F(CmacPasswordTest, ClientRefusesBadUpgradesFromAGenuineServer) {
  // Re-register with parameters above the minimum, so "weaker" exists.
  const KdfParams p = Stronger(KdfParams::ForTests());
  VerifierRecord rec;
  ASSERT_TRUE(MakeRecord(kUser, kRealm, kPassword, p, rng_, &rec));
  ASSERT_TRUE(store_.Put(rec));
  auto make_upgrade = [](size_t salt_len, uint64_t ops, uint64_t mem) {
    Upgrade u;
    u.set_salt(std::string(salt_len, 'n'));
    u.mutable_kdf()->set_algorithm(KdfParams::ForTests().algorithm);
    u.mutable_kdf()->set_opslimit(ops);
    u.mutable_kdf()->set_memlimit(mem);
    return u;
  };
  struct Case {
    const char* name;
    Upgrade upgrade;
  };
  const Case cases[] = {
      {"short salt", make_upgrade(15, p.opslimit + 1, p.memlimit)},
      {"insane memory", make_upgrade(16, p.opslimit, 1ull << 40)},
      {"insane passes", make_upgrade(16, 1000, p.memlimit)},
      {"weaker than now", make_upgrade(16, p.opslimit - 1, p.memlimit)},
  };
  for (const Case& c : cases) {
    auto server = Server(Sid(4));
    auto client = Client(Sid(4));
    client->Start();
    ASSERT_EQ(client->OnPayload(*server->Start().send).status, Status::kContinue);
    Step s = client->OnPayload(ServerProofFor(rec.verifier, Sid(4), &c.upgrade));
    EXPECT_EQ(s.status, Status::kFailed) << c.name;
    const AuthError want = std::string_view(c.name) == "insane memory" ||
                                   std::string_view(c.name) == "insane passes"
                               ? AuthError::kPolicy  // beyond the client's ceiling
                               : AuthError::kMalformed;
    EXPECT_EQ(s.error, want) << c.name << ": " << s.detail;
    EXPECT_FALSE(s.send.has_value()) << c.name;
  }
  // An Upgrade riding on a forged proof is never acted upon.
  auto server = Server(Sid(4));
  auto client = Client(Sid(4));
  client->Start();
  ASSERT_EQ(client->OnPayload(*server->Start().send).status, Status::kContinue);
  const Upgrade fine = make_upgrade(16, p.opslimit + 1, p.memlimit);
  SecretBuffer other(kVerifierLen);
  Step s = client->OnPayload(ServerProofFor(other, Sid(4), &fine));
  EXPECT_EQ(s.error, AuthError::kBadProof);
  EXPECT_FALSE(s.send.has_value());
}

}  // namespace
}  // namespace tcpcrypt::auth::cmac
