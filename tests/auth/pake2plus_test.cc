// The pake2plus authenticator (auth/pake2plus/pake2plus.h): a client side
// and a server side in one process, with KdfParams::ForTests(). Happy
// paths, wrong and unknown users, an impostor server, relays, replays,
// invalid points, tampered confirmations, wrong-state calls, re-hash on
// login and hostile KDF parameters.
#include "auth/pake2plus/pake2plus.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/common/verifier_store.h"
#include "auth/pake2plus/pake.pb.h"
#include "auth/pake2plus/spake2plus_internal.h"
#include "core_transport/engine/rng.h"
#include "tests/engine/vector_file.h"

namespace tcpcrypt::auth::pake {
namespace {

using tcpcrypt::testing::ToHex;

constexpr std::string_view kUser = "alice";
constexpr std::string_view kRealm = "bank.example";
constexpr std::string_view kPassword = "correct horse battery staple";
constexpr std::array<uint8_t, 32> kDecoyKey = {1, 2, 3, 4, 5, 6, 7, 8};

ByteSpan Span(std::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::shared_ptr<const SecretBuffer> Password(std::string_view pw) {
  return std::make_shared<const SecretBuffer>(Span(pw));
}

ChannelBinding Binding(uint8_t fill) {
  return ChannelBinding::SessionId(std::vector<uint8_t>(33, fill));
}

Context Ctx(const ChannelBinding& b, std::string_view user = kUser) {
  return Context{b, std::string(user), std::string(kRealm), {}};
}

std::vector<uint8_t> Serialize(const PakeMessage& m) {
  std::string s = m.SerializeAsString();
  return {s.begin(), s.end()};
}

PakeMessage ParseMsg(const std::vector<uint8_t>& bytes) {
  PakeMessage m;
  EXPECT_TRUE(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  return m;
}

std::string Str(ByteSpan b) { return std::string(b.begin(), b.end()); }
ByteSpan Span(const std::string& s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

bool Failed(const Step& s) { return s.status == Step::Status::kFailed; }
bool Done(const Step& s) { return s.status == Step::Status::kDone; }

// One message on the wire, in order.
struct Wire {
  bool to_server;
  std::vector<uint8_t> bytes;
};

struct RunResult {
  Step client;  // the client side's last step
  Step server;  // the server side's last step
  std::vector<Wire> wire;
};

// Tamper may rewrite message |index| (0-based, in wire order) in flight.
using Tamper = std::function<void(size_t index, bool to_server, std::vector<uint8_t>* msg)>;

// Exchange starts both sides and passes payloads until both are finished or one
// has failed.
RunResult Exchange(MechanismSide& client, MechanismSide& server, const Tamper& tamper = {}) {
  RunResult r;
  r.client = client.Start();
  r.server = server.Start();
  std::optional<std::vector<uint8_t>> to_client = r.server.send;
  std::optional<std::vector<uint8_t>> to_server = r.client.send;
  auto deliver = [&](bool server_bound, std::optional<std::vector<uint8_t>>* slot) {
    std::vector<uint8_t> m = std::move(**slot);
    slot->reset();
    if (tamper) tamper(r.wire.size(), server_bound, &m);
    r.wire.push_back({server_bound, m});
    Step& s = server_bound ? r.server : r.client;
    s = server_bound ? server.OnPayload(m) : client.OnPayload(m);
    if (s.send) (server_bound ? to_client : to_server) = s.send;
  };
  for (int guard = 0; guard < 16 && (to_client || to_server); ++guard) {
    if (Failed(r.client) || Failed(r.server)) break;
    if (to_client) deliver(false, &to_client);
    if (Failed(r.client) || Failed(r.server)) break;
    if (to_server) deliver(true, &to_server);
  }
  return r;
}

// Rewrite applies |edit| to the message at |index| of a run.
Tamper EditMessage(size_t index, std::function<void(PakeMessage*)> edit) {
  return [index, edit](size_t i, bool, std::vector<uint8_t>* msg) {
    if (i != index) return;
    PakeMessage m = ParseMsg(*msg);
    edit(&m);
    *msg = Serialize(m);
  };
}

class Pake2PlusTest : public ::testing::Test {
 protected:
  Pake2PlusTest() : decoy_(std::span<const uint8_t, 32>(kDecoyKey)) {}

  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    // RFC 9383 §3.2: w0s || w1s is 80 bytes for P-256.
    SecretArray<kSeedLen> seed;
    const std::vector<uint8_t> salt(kPasswordSaltLen, 1);
    ASSERT_TRUE(DerivePasswordKey(kPassword, kUser, kRealm, salt, KdfParams::ForTests(),
                                  seed.span()))
        << "auth/common DerivePasswordKey must accept an 80-byte output";
    AddUser(kUser, kPassword, KdfParams::ForTests());
  }

  void AddUser(std::string_view user, std::string_view pw, const KdfParams& params) {
    VerifierRecord rec;
    ASSERT_TRUE(MakeRecord(user, kRealm, pw, params, rng_, &rec));
    ASSERT_TRUE(store_.Put(rec));
  }

  ServerConfig Config() {
    return ServerConfig{&store_, &decoy_, target_, &server_rng_};
  }
  std::unique_ptr<MechanismSide> Server(const ChannelBinding& b,
                                        std::string_view user = kUser) {
    return ServerFactory(Config())(Ctx(b, user));
  }
  std::unique_ptr<MechanismSide> Client(const ChannelBinding& b,
                                        std::string_view pw = kPassword,
                                        std::string_view user = kUser) {
    return ClientFactory(Password(pw), &client_rng_, KdfLimits::ForTests())(Ctx(b, user));
  }

  std::optional<VerifierRecord> Record(std::string_view user = kUser) {
    return store_.Find(std::string(user), std::string(kRealm), Mechanism::kPake2Plus);
  }

  MemoryVerifierStore store_;
  DecoySecret decoy_;
  KdfParams target_ = KdfParams::ForTests();
  DeterministicRng rng_{1};
  DeterministicRng server_rng_{2};
  DeterministicRng client_rng_{3};
};

constexpr char kClientBadProof[] =
    "server confirmation did not verify: wrong password, or the server does "
    "not hold this user's verifier";
constexpr char kServerBadProof[] = "wrong password or unknown user";

// --- Registration -------------------------------------------------------------

TEST_F(Pake2PlusTest, MakeRecordStoresW0AndLOnly) {
  std::optional<VerifierRecord> rec = Record();
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->user, kUser);
  EXPECT_EQ(rec->realm, kRealm);
  EXPECT_EQ(rec->mechanism, Mechanism::kPake2Plus);
  EXPECT_EQ(rec->salt.size(), kPasswordSaltLen);
  EXPECT_FALSE(rec->params.WeakerThan(KdfParams::ForTests()));
  EXPECT_FALSE(KdfParams::ForTests().WeakerThan(rec->params));
  ASSERT_EQ(rec->verifier.size(), kVerifierLen);

  // The verifier is w0 || L = w1*P for the scalars the password gives.
  Scalar w0, w1;
  ASSERT_TRUE(DerivePasswordScalars(kPassword, kUser, kRealm, rec->salt, rec->params,
                                    &w0, &w1));
  Point l;
  ASSERT_TRUE(ComputeL(w1.span(), l));
  const ByteSpan v = rec->verifier.span();
  EXPECT_EQ(ToHex(v.first(kScalarLen)), ToHex(w0.span()));
  EXPECT_EQ(ToHex(v.subspan(kScalarLen)), ToHex(l));
  EXPECT_TRUE(IsValidPoint(v.subspan(kScalarLen)));
  // w1 appears nowhere in it.
  const std::string hex = ToHex(v);
  EXPECT_EQ(hex.find(ToHex(w1.span())), std::string::npos);

  // A second registration of the same password has a fresh salt and so an
  // unrelated verifier.
  VerifierRecord again;
  ASSERT_TRUE(MakeRecord(kUser, kRealm, kPassword, KdfParams::ForTests(), rng_, &again));
  EXPECT_NE(again.salt, rec->salt);
  EXPECT_FALSE(again.verifier.Equal(rec->verifier));
}

TEST_F(Pake2PlusTest, MakeRecordRefusesInsaneParams) {
  VerifierRecord rec;
  KdfParams p = KdfParams::ForTests();
  p.memlimit = 4ull << 30;
  EXPECT_FALSE(MakeRecord(kUser, kRealm, kPassword, p, rng_, &rec));
  p = KdfParams::ForTests();
  p.algorithm = 1;
  EXPECT_FALSE(MakeRecord(kUser, kRealm, kPassword, p, rng_, &rec));
}

TEST_F(Pake2PlusTest, ContextIsLabelAndEncodedBinding) {
  const ChannelBinding b = Binding(0x42);
  std::vector<uint8_t> want(kContextLabel.begin(), kContextLabel.end());
  const std::vector<uint8_t> enc = b.Encode();
  want.insert(want.end(), enc.begin(), enc.end());
  EXPECT_EQ(PakeContext(b), want);
  EXPECT_NE(PakeContext(b), PakeContext(Binding(0x43)));
}

// --- Outcomes -------------------------------------------------------------------

TEST_F(Pake2PlusTest, RightPassword) {
  auto client = Client(Binding(7));
  auto server = Server(Binding(7));
  EXPECT_FALSE(client->peer().has_value());
  EXPECT_FALSE(server->peer().has_value());
  const RunResult r = Exchange(*client, *server);
  ASSERT_TRUE(Done(r.client)) << r.client.detail;
  ASSERT_TRUE(Done(r.server)) << r.server.detail;
  // Params, ShareP, ShareV (with confirmV), ConfirmP.
  ASSERT_EQ(r.wire.size(), 4u);
  EXPECT_TRUE(ParseMsg(r.wire[0].bytes).has_params());
  EXPECT_TRUE(ParseMsg(r.wire[1].bytes).has_share_p());
  EXPECT_TRUE(ParseMsg(r.wire[2].bytes).has_share_v());
  EXPECT_FALSE(ParseMsg(r.wire[2].bytes).share_v().upgrade_follows());
  EXPECT_TRUE(ParseMsg(r.wire[3].bytes).has_confirm_p());

  ASSERT_TRUE(client->peer().has_value());
  EXPECT_EQ(client->peer()->mechanism, Mechanism::kPake2Plus);
  EXPECT_EQ(client->peer()->name, kRealm);
  ASSERT_TRUE(server->peer().has_value());
  EXPECT_EQ(server->peer()->mechanism, Mechanism::kPake2Plus);
  EXPECT_EQ(server->peer()->name, kUser);
  EXPECT_EQ(server->peer()->attributes,
            (std::map<std::string, std::string>{{"realm", std::string(kRealm)}}));
  EXPECT_EQ(client->mechanism(), Mechanism::kPake2Plus);
  EXPECT_EQ(server->mechanism(), Mechanism::kPake2Plus);
}

TEST_F(Pake2PlusTest, WrongPassword) {
  auto client = Client(Binding(7), "correct horse battery stapler");
  auto server = Server(Binding(7));
  const RunResult r = Exchange(*client, *server);
  // The client notices first: confirmV does not verify.
  ASSERT_TRUE(Failed(r.client));
  EXPECT_EQ(r.client.error, AuthError::kBadProof);
  EXPECT_EQ(r.client.detail, kClientBadProof);
  EXPECT_FALSE(client->peer().has_value());
  // It sent no confirmation; whatever the attacker sends instead fails.
  ASSERT_EQ(r.wire.size(), 3u);
  PakeMessage guess;
  guess.mutable_confirm_p()->set_confirm_p(std::string(kConfirmLen, '\x5a'));
  const Step s = server->OnPayload(Serialize(guess));
  ASSERT_TRUE(Failed(s));
  EXPECT_EQ(s.error, AuthError::kBadProof);
  EXPECT_EQ(s.detail, kServerBadProof);
  EXPECT_FALSE(server->peer().has_value());
}

// A wrong-password client that ignores the bad confirmV and sends the
// confirmP its own keys give is refused too.
TEST_F(Pake2PlusTest, WrongPasswordConfirmationRefusedByServer) {
  auto server = Server(Binding(7));
  const Step params = server->Start();
  const PakeMessage pm = ParseMsg(*params.send);
  KdfParams kdf{pm.params().kdf().algorithm(), pm.params().kdf().opslimit(),
                pm.params().kdf().memlimit()};
  Scalar w0, w1;
  ASSERT_TRUE(DerivePasswordScalars("hunter2", kUser, kRealm, Span(pm.params().salt()),
                                    kdf, &w0, &w1));
  const std::vector<uint8_t> x(kScalarLen, 0x07);
  Point share_p;
  ASSERT_EQ(internal::ProverShare(w0.span(), x, &share_p), Result::kOk);
  PakeMessage m;
  m.mutable_share_p()->set_x(Str(share_p));
  const Step sv = server->OnPayload(Serialize(m));
  ASSERT_EQ(sv.status, Step::Status::kContinue);
  const PakeMessage svm = ParseMsg(*sv.send);
  internal::SecretPoint z, v;
  ASSERT_EQ(internal::ProverSecrets(w0.span(), w1.span(), x, Span(svm.share_v().y()), &z, &v),
            Result::kOk);
  SecretBuffer tt;
  internal::Transcript(PakeContext(Binding(7)), Span(kUser), Span(kRealm), share_p,
                       Span(svm.share_v().y()), z.span(), v.span(), w0.span(), &tt);
  internal::KeySchedule ks;
  ASSERT_TRUE(internal::ComputeKeySchedule(tt.span(), &ks));
  Confirmation cp;
  ASSERT_TRUE(internal::Confirm(ks.k_confirm_p.span(), Span(svm.share_v().y()), &cp));
  PakeMessage c;
  c.mutable_confirm_p()->set_confirm_p(Str(cp));
  const Step s = server->OnPayload(Serialize(c));
  ASSERT_TRUE(Failed(s));
  EXPECT_EQ(s.error, AuthError::kBadProof);
  EXPECT_EQ(s.detail, kServerBadProof);
}

// An unknown user gets the same messages, sizes and failures as a known
// user with a wrong password, with a stable decoy salt.
TEST_F(Pake2PlusTest, UnknownUserLooksLikeWrongPassword) {
  auto known_client = Client(Binding(1), "wrong", kUser);
  auto known_server = Server(Binding(1), kUser);
  auto unknown_client = Client(Binding(2), "wrong", "bob");
  auto unknown_server = Server(Binding(2), "bob");
  const RunResult known = Exchange(*known_client, *known_server);
  const RunResult unknown = Exchange(*unknown_client, *unknown_server);

  ASSERT_EQ(known.wire.size(), unknown.wire.size());
  for (size_t i = 0; i < known.wire.size(); ++i) {
    EXPECT_EQ(known.wire[i].to_server, unknown.wire[i].to_server) << i;
    EXPECT_EQ(known.wire[i].bytes.size(), unknown.wire[i].bytes.size()) << i;
  }
  const PakeMessage kp = ParseMsg(known.wire[0].bytes);
  const PakeMessage up = ParseMsg(unknown.wire[0].bytes);
  EXPECT_EQ(kp.params().kdf().SerializeAsString(), up.params().kdf().SerializeAsString());
  EXPECT_EQ(up.params().salt().size(), kPasswordSaltLen);
  EXPECT_NE(up.params().salt(), kp.params().salt());
  EXPECT_FALSE(ParseMsg(unknown.wire[2].bytes).share_v().upgrade_follows());

  EXPECT_EQ(known.client.error, unknown.client.error);
  EXPECT_EQ(known.client.detail, unknown.client.detail);
  PakeMessage guess;
  guess.mutable_confirm_p()->set_confirm_p(std::string(kConfirmLen, '\x01'));
  const Step ks = known_server->OnPayload(Serialize(guess));
  const Step us = unknown_server->OnPayload(Serialize(guess));
  EXPECT_EQ(ks.error, AuthError::kBadProof);
  EXPECT_EQ(us.error, AuthError::kBadProof);
  EXPECT_EQ(ks.detail, us.detail);

  // Probing again shows the same decoy salt (it is derived, not random),
  // and another unknown user gets another one.
  auto again = Server(Binding(3), "bob");
  EXPECT_EQ(ParseMsg(*again->Start().send).params().salt(), up.params().salt());
  auto carol = Server(Binding(3), "carol");
  EXPECT_NE(ParseMsg(*carol->Start().send).params().salt(), up.params().salt());
  // Unknown users are shown the server's target parameters.
  EXPECT_EQ(up.params().kdf().opslimit(), target_.opslimit);
  EXPECT_EQ(up.params().kdf().memlimit(), target_.memlimit);
}

// Even the right password fails against the decoy: the unknown user cannot
// log in by guessing.
TEST_F(Pake2PlusTest, UnknownUserNeverSucceeds) {
  auto client = Client(Binding(1), kPassword, "bob");
  auto server = Server(Binding(1), "bob");
  const RunResult r = Exchange(*client, *server);
  ASSERT_TRUE(Failed(r.client));
  EXPECT_EQ(r.client.error, AuthError::kBadProof);
}

// A server that does not hold this user's verifier cannot pass as the real
// server: one with no record (decoy) and one holding a record made from
// another password are both detected by the client.
TEST_F(Pake2PlusTest, ImpostorServerDetectedByClient) {
  {
    MemoryVerifierStore empty;
    ServerConfig cfg{&empty, &decoy_, target_, &server_rng_};
    auto server = ServerFactory(cfg)(Ctx(Binding(4)));
    auto client = Client(Binding(4));
    const RunResult r = Exchange(*client, *server);
    ASSERT_TRUE(Failed(r.client));
    EXPECT_EQ(r.client.error, AuthError::kBadProof);
    EXPECT_EQ(r.client.detail, kClientBadProof);
  }
  {
    MemoryVerifierStore forged;
    VerifierRecord rec;
    ASSERT_TRUE(MakeRecord(kUser, kRealm, "the impostor's guess", KdfParams::ForTests(),
                           rng_, &rec));
    ASSERT_TRUE(forged.Put(rec));
    ServerConfig cfg{&forged, &decoy_, target_, &server_rng_};
    auto server = ServerFactory(cfg)(Ctx(Binding(4)));
    auto client = Client(Binding(4));
    const RunResult r = Exchange(*client, *server);
    ASSERT_TRUE(Failed(r.client));
    EXPECT_EQ(r.client.error, AuthError::kBadProof);
    EXPECT_EQ(r.wire.size(), 3u);  // the client never confirmed
  }
}

// A relay between two connections (client sees binding X, server binding
// Y) fails: the client refuses confirmV, and a confirmP computed under X,
// even with the right password, is refused by the server on Y.
TEST_F(Pake2PlusTest, RelayBetweenBindingsRefusedByBoth) {
  const ChannelBinding x_binding = Binding(0xaa);
  const ChannelBinding y_binding = Binding(0xbb);
  {
    auto client = Client(x_binding);
    auto server = Server(y_binding);
    const RunResult r = Exchange(*client, *server);  // the relay forwards verbatim
    ASSERT_TRUE(Failed(r.client));
    EXPECT_EQ(r.client.error, AuthError::kBadProof);
  }
  // confirmP computed with the right password under |context_binding|,
  // sent to a server on |y_binding|.
  auto confirm_under = [&](const ChannelBinding& context_binding) {
    auto server = Server(y_binding);
    const PakeMessage pm = ParseMsg(*server->Start().send);
    KdfParams kdf{pm.params().kdf().algorithm(), pm.params().kdf().opslimit(),
                  pm.params().kdf().memlimit()};
    Scalar w0, w1;
    EXPECT_TRUE(DerivePasswordScalars(kPassword, kUser, kRealm, Span(pm.params().salt()),
                                      kdf, &w0, &w1));
    const std::vector<uint8_t> x(kScalarLen, 0x09);
    Point share_p;
    EXPECT_EQ(internal::ProverShare(w0.span(), x, &share_p), Result::kOk);
    PakeMessage m;
    m.mutable_share_p()->set_x(Str(share_p));
    const PakeMessage svm = ParseMsg(*server->OnPayload(Serialize(m)).send);
    const ByteSpan y = Span(svm.share_v().y());
    internal::SecretPoint z, v;
    EXPECT_EQ(internal::ProverSecrets(w0.span(), w1.span(), x, y, &z, &v), Result::kOk);
    SecretBuffer tt;
    internal::Transcript(PakeContext(context_binding), Span(kUser), Span(kRealm), share_p,
                         y, z.span(), v.span(), w0.span(), &tt);
    internal::KeySchedule ks;
    EXPECT_TRUE(internal::ComputeKeySchedule(tt.span(), &ks));
    Confirmation cp;
    EXPECT_TRUE(internal::Confirm(ks.k_confirm_p.span(), y, &cp));
    PakeMessage c;
    c.mutable_confirm_p()->set_confirm_p(Str(cp));
    return server->OnPayload(Serialize(c));
  };
  // Control: under the server's own binding this construction succeeds.
  EXPECT_TRUE(Done(confirm_under(y_binding)));
  const Step relayed = confirm_under(x_binding);
  ASSERT_TRUE(Failed(relayed));
  EXPECT_EQ(relayed.error, AuthError::kBadProof);
}

// Recorded ShareP and ConfirmP replayed on another connection (or the same
// one again) fail: the server's fresh y changes every key.
TEST_F(Pake2PlusTest, ReplayRefused) {
  auto client = Client(Binding(5));
  auto server = Server(Binding(5));
  const RunResult r = Exchange(*client, *server);
  ASSERT_TRUE(Done(r.server));
  const std::vector<uint8_t>& share_p = r.wire[1].bytes;
  const std::vector<uint8_t>& confirm_p = r.wire[3].bytes;
  for (uint8_t b : {uint8_t{6}, uint8_t{5}}) {
    SCOPED_TRACE(b == 5 ? "same binding" : "other binding");
    auto replayed = Server(Binding(b));
    ASSERT_EQ(replayed->Start().status, Step::Status::kContinue);
    const Step sv = replayed->OnPayload(share_p);
    ASSERT_EQ(sv.status, Step::Status::kContinue);
    EXPECT_NE(*sv.send, r.wire[2].bytes);
    const Step s = replayed->OnPayload(confirm_p);
    ASSERT_TRUE(Failed(s));
    EXPECT_EQ(s.error, AuthError::kBadProof);
    EXPECT_FALSE(replayed->peer().has_value());
  }
  // A recorded ShareV replayed to a new client fails the same way.
  auto client2 = Client(Binding(5));
  ASSERT_EQ(client2->Start().status, Step::Status::kContinue);
  ASSERT_EQ(client2->OnPayload(r.wire[0].bytes).status, Step::Status::kContinue);
  const Step c = client2->OnPayload(r.wire[2].bytes);
  ASSERT_TRUE(Failed(c));
  EXPECT_EQ(c.error, AuthError::kBadProof);
}

// --- Hostile input ------------------------------------------------------------------

std::vector<std::pair<std::string, std::string>> BadPoints() {
  const Point& m = internal::MPoint();
  const std::string good = Str(m);
  std::vector<std::pair<std::string, std::string>> bad = {
      {"empty", ""},
      {"identity", std::string(1, '\0')},
      {"zeros", std::string(kPointLen, '\0')},
      {"04 || zeros", "\x04" + std::string(kPointLen - 1, '\0')},
      {"truncated", good.substr(0, kPointLen - 1)},
      {"extended", good + '\0'},
      {"compressed", std::string(1, static_cast<char>(0x02 | (m.back() & 1))) +
                         good.substr(1, 32)},
      {"hybrid", std::string(1, static_cast<char>(0x06 | (m.back() & 1))) + good.substr(1)},
  };
  std::string off = good;
  off.back() = static_cast<char>(off.back() ^ 1);
  bad.push_back({"off the curve", off});
  std::string garbage(kPointLen, '\0');
  DeterministicRng rng(11);
  rng.Fill(std::span<uint8_t>(reinterpret_cast<uint8_t*>(garbage.data()), garbage.size()));
  garbage[0] = 4;
  bad.push_back({"garbage", garbage});
  return bad;
}

TEST_F(Pake2PlusTest, InvalidShareFromClientRefused) {
  for (const auto& [why, x] : BadPoints()) {
    SCOPED_TRACE(why);
    auto client = Client(Binding(8));
    auto server = Server(Binding(8));
    const RunResult r = Exchange(*client, *server, EditMessage(1, [x = x](PakeMessage* m) {
                              m->mutable_share_p()->set_x(x);
                            }));
    ASSERT_TRUE(Failed(r.server));
    EXPECT_EQ(r.server.error, AuthError::kMalformed);
    EXPECT_EQ(r.wire.size(), 2u);
  }
}

TEST_F(Pake2PlusTest, InvalidShareFromServerRefused) {
  for (const auto& [why, y] : BadPoints()) {
    SCOPED_TRACE(why);
    auto client = Client(Binding(8));
    auto server = Server(Binding(8));
    const RunResult r = Exchange(*client, *server, EditMessage(2, [y = y](PakeMessage* m) {
                              m->mutable_share_v()->set_y(y);
                            }));
    ASSERT_TRUE(Failed(r.client));
    EXPECT_TRUE(r.client.error == AuthError::kMalformed ||
                r.client.error == AuthError::kBadProof)
        << AuthErrorName(r.client.error);
    EXPECT_EQ(r.wire.size(), 3u);
  }
}

// Shares that unblind to the identity (X = w0*M, Y = w0*N) are refused.
TEST_F(Pake2PlusTest, DegenerateSharesRefused) {
  // Install a record whose w0 is 1, so that w0*M = M and w0*N = N.
  std::optional<VerifierRecord> rec = Record();
  ASSERT_TRUE(rec);
  rec->verifier.data()[kScalarLen - 1] = 1;
  std::fill(rec->verifier.data(), rec->verifier.data() + kScalarLen - 1, 0);
  ASSERT_TRUE(store_.Put(*rec));
  auto server = Server(Binding(9));
  ASSERT_EQ(server->Start().status, Step::Status::kContinue);
  PakeMessage m;
  m.mutable_share_p()->set_x(Str(internal::MPoint()));
  const Step s = server->OnPayload(Serialize(m));
  ASSERT_TRUE(Failed(s));
  EXPECT_EQ(s.error, AuthError::kMalformed);
}

TEST_F(Pake2PlusTest, EveryFlippedConfirmVRefused) {
  for (size_t i = 0; i < kConfirmLen; ++i) {
    auto client = Client(Binding(10));
    auto server = Server(Binding(10));
    const RunResult r = Exchange(*client, *server, EditMessage(2, [i](PakeMessage* m) {
                              std::string c = m->share_v().confirm_v();
                              c[i] = static_cast<char>(c[i] ^ (1 << (i % 8)));
                              m->mutable_share_v()->set_confirm_v(c);
                            }));
    ASSERT_TRUE(Failed(r.client)) << i;
    EXPECT_EQ(r.client.error, AuthError::kBadProof) << i;
    EXPECT_EQ(r.wire.size(), 3u) << i;
  }
}

TEST_F(Pake2PlusTest, EveryFlippedConfirmPRefused) {
  for (size_t i = 0; i < kConfirmLen; ++i) {
    auto client = Client(Binding(10));
    auto server = Server(Binding(10));
    const RunResult r = Exchange(*client, *server, EditMessage(3, [i](PakeMessage* m) {
                              std::string c = m->confirm_p().confirm_p();
                              c[i] = static_cast<char>(c[i] ^ (0x80 >> (i % 8)));
                              m->mutable_confirm_p()->set_confirm_p(c);
                            }));
    ASSERT_TRUE(Done(r.client)) << i;  // the client did its part
    ASSERT_TRUE(Failed(r.server)) << i;
    EXPECT_EQ(r.server.error, AuthError::kBadProof) << i;
    EXPECT_EQ(r.server.detail, kServerBadProof) << i;
    EXPECT_FALSE(server->peer().has_value());
  }
}

TEST_F(Pake2PlusTest, WrongLengthConfirmationsMalformed) {
  for (size_t len : {size_t{0}, size_t{31}, size_t{33}, size_t{64}}) {
    {
      auto client = Client(Binding(12));
      auto server = Server(Binding(12));
      const RunResult r = Exchange(*client, *server, EditMessage(2, [len](PakeMessage* m) {
                                m->mutable_share_v()->set_confirm_v(std::string(len, 'v'));
                              }));
      ASSERT_TRUE(Failed(r.client)) << len;
      EXPECT_EQ(r.client.error, AuthError::kMalformed) << len;
    }
    {
      auto client = Client(Binding(12));
      auto server = Server(Binding(12));
      const RunResult r = Exchange(*client, *server, EditMessage(3, [len](PakeMessage* m) {
                                m->mutable_confirm_p()->set_confirm_p(std::string(len, 'p'));
                              }));
      ASSERT_TRUE(Failed(r.server)) << len;
      EXPECT_EQ(r.server.error, AuthError::kMalformed) << len;
    }
  }
}

TEST_F(Pake2PlusTest, GarbageAndOversizedPayloadsMalformed) {
  PakeMessage big;
  big.mutable_share_p()->set_x(std::string(kMaxPayloadLen, 'x'));
  const std::vector<std::vector<uint8_t>> bad = {
      {0xff, 0xff, 0xff},                 // not a protobuf
      {0x0a, 0x10, 0x01},                 // truncated length-delimited field
      std::vector<uint8_t>(600, 0x00),    // too large (and field 0)
      Serialize(big),                     // well-formed but over the limit
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    auto server = Server(Binding(13));
    ASSERT_EQ(server->Start().status, Step::Status::kContinue);
    const Step s = server->OnPayload(bad[i]);
    ASSERT_TRUE(Failed(s)) << i;
    EXPECT_EQ(s.error, AuthError::kMalformed) << i;

    auto client = Client(Binding(13));
    ASSERT_EQ(client->Start().status, Step::Status::kContinue);
    const Step c = client->OnPayload(bad[i]);
    ASSERT_TRUE(Failed(c)) << i;
    EXPECT_EQ(c.error, AuthError::kMalformed) << i;
  }
}

// A malicious server cannot make the client burn unbounded memory or time:
// parameters beyond KdfParams::Sane() (or a bad salt) are refused before
// any work.
// The default client floor is Interactive: ForTests parameters are refused
// before the KDF runs and before ShareP.
TEST_F(Pake2PlusTest, ClientRefusesParamsBelowItsFloorBeforeDeriving) {
  auto server = Server(Binding(13));
  auto client = ClientFactory(Password(kPassword), &client_rng_)(Ctx(Binding(13), kUser));
  ASSERT_EQ(client->Start().status, Step::Status::kContinue);
  const uint64_t kdf_before = PasswordKdfCount();
  const Step s = client->OnPayload(*server->Start().send);
  ASSERT_TRUE(Failed(s));
  EXPECT_EQ(s.error, AuthError::kPolicy);
  EXPECT_FALSE(s.send.has_value());
  EXPECT_EQ(PasswordKdfCount(), kdf_before);
  EXPECT_NE(s.detail.find("below this client's floor"), std::string::npos) << s.detail;
}

TEST_F(Pake2PlusTest, InsaneParamsRefusedByClient) {
  struct Case {
    const char* what;
    std::string salt;
    uint32_t alg;
    uint64_t ops, mem;
  };
  const KdfParams t = KdfParams::ForTests();
  const std::string salt(kPasswordSaltLen, 's');
  const Case cases[] = {
      {"4 GiB", salt, t.algorithm, t.opslimit, 4ull << 30},
      {"2^63 bytes", salt, t.algorithm, t.opslimit, 1ull << 63},
      {"1000 passes", salt, t.algorithm, 1000, t.memlimit},
      {"max passes", salt, t.algorithm, ~0ull, t.memlimit},
      {"below minimum memory", salt, t.algorithm, t.opslimit, 1024},
      {"zero passes", salt, t.algorithm, 0, t.memlimit},
      {"Argon2i", salt, 1, t.opslimit, t.memlimit},
      {"unknown algorithm", salt, 99, t.opslimit, t.memlimit},
      {"short salt", salt.substr(1), t.algorithm, t.opslimit, t.memlimit},
      {"long salt", salt + "s", t.algorithm, t.opslimit, t.memlimit},
      {"no salt", "", t.algorithm, t.opslimit, t.memlimit},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto client = Client(Binding(14));
    ASSERT_EQ(client->Start().status, Step::Status::kContinue);
    PakeMessage m;
    m.mutable_params()->set_salt(c.salt);
    m.mutable_params()->mutable_kdf()->set_algorithm(c.alg);
    m.mutable_params()->mutable_kdf()->set_opslimit(c.ops);
    m.mutable_params()->mutable_kdf()->set_memlimit(c.mem);
    const Step s = client->OnPayload(Serialize(m));
    ASSERT_TRUE(Failed(s));
    // A bad salt is malformed; parameters outside the client's KDF limits
    // are a policy refusal.
    EXPECT_EQ(s.error, c.salt.size() == kPasswordSaltLen ? AuthError::kPolicy
                                                          : AuthError::kMalformed);
    EXPECT_FALSE(s.send.has_value());
  }
  // Params without any KDF parameters are refused the same way.
  auto client = Client(Binding(14));
  ASSERT_EQ(client->Start().status, Step::Status::kContinue);
  PakeMessage m;
  m.mutable_params()->set_salt(salt);
  const Step s = client->OnPayload(Serialize(m));
  ASSERT_TRUE(Failed(s));
  EXPECT_EQ(s.error, AuthError::kPolicy);
}

// --- State machine --------------------------------------------------------------------

TEST_F(Pake2PlusTest, PayloadBeforeStartRefused) {
  PakeMessage m;
  m.mutable_share_p()->set_x(Str(internal::MPoint()));
  auto server = Server(Binding(15));
  Step s = server->OnPayload(Serialize(m));
  ASSERT_TRUE(Failed(s));
  EXPECT_EQ(s.error, AuthError::kUnexpectedMessage);
  // Sticky: the same failure for every later call.
  const Step again = server->Start();
  EXPECT_TRUE(Failed(again));
  EXPECT_EQ(again.error, s.error);
  EXPECT_EQ(again.detail, s.detail);
  EXPECT_TRUE(Failed(server->Poll()));

  auto client = Client(Binding(15));
  s = client->OnPayload(Serialize(m));
  ASSERT_TRUE(Failed(s));
  EXPECT_EQ(s.error, AuthError::kUnexpectedMessage);
  EXPECT_TRUE(Failed(client->Start()));
}

TEST_F(Pake2PlusTest, StartTwiceRefused) {
  auto server = Server(Binding(16));
  ASSERT_EQ(server->Start().status, Step::Status::kContinue);
  Step s = server->Start();
  ASSERT_TRUE(Failed(s));
  EXPECT_EQ(s.error, AuthError::kUnexpectedMessage);

  auto client = Client(Binding(16));
  ASSERT_EQ(client->Start().status, Step::Status::kContinue);
  s = client->Start();
  ASSERT_TRUE(Failed(s));
  EXPECT_EQ(s.error, AuthError::kUnexpectedMessage);
}

// Each side, in each state, refuses every message kind but the expected one.
TEST_F(Pake2PlusTest, WrongMessageForStateRefused) {
  // A valid message of every kind, taken from a real run (with an upgrade,
  // for the last two).
  auto c0 = Client(Binding(17));
  auto s0 = Server(Binding(17));
  const RunResult r = Exchange(*c0, *s0);
  ASSERT_TRUE(Done(r.server));
  PakeMessage upgrade, reply;
  upgrade.mutable_upgrade()->set_salt(std::string(kPasswordSaltLen, 'u'));
  upgrade.mutable_upgrade()->mutable_kdf()->set_algorithm(KdfParams::ForTests().algorithm);
  upgrade.mutable_upgrade()->mutable_kdf()->set_opslimit(KdfParams::ForTests().opslimit);
  upgrade.mutable_upgrade()->mutable_kdf()->set_memlimit(KdfParams::ForTests().memlimit);
  reply.mutable_upgrade_reply()->set_w0(std::string(kScalarLen, '\x01'));
  reply.mutable_upgrade_reply()->set_l(Str(internal::MPoint()));
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> all = {
      {"empty", {}},
      {"Params", r.wire[0].bytes},
      {"ShareP", r.wire[1].bytes},
      {"ShareV", r.wire[2].bytes},
      {"ConfirmP", r.wire[3].bytes},
      {"Upgrade", Serialize(upgrade)},
      {"UpgradeReply", Serialize(reply)},
  };
  // Server awaiting ShareP, then awaiting ConfirmP.
  for (const auto& [name, bytes] : all) {
    SCOPED_TRACE("server, " + name);
    if (name != "ShareP") {
      auto server = Server(Binding(17));
      ASSERT_EQ(server->Start().status, Step::Status::kContinue);
      const Step s = server->OnPayload(bytes);
      ASSERT_TRUE(Failed(s));
      EXPECT_EQ(s.error, AuthError::kUnexpectedMessage);
    }
    if (name != "ConfirmP") {
      auto server = Server(Binding(17));
      ASSERT_EQ(server->Start().status, Step::Status::kContinue);
      ASSERT_EQ(server->OnPayload(r.wire[1].bytes).status, Step::Status::kContinue);
      const Step s = server->OnPayload(bytes);
      ASSERT_TRUE(Failed(s));
      EXPECT_EQ(s.error, AuthError::kUnexpectedMessage);
    }
  }
  // Client awaiting Params, then awaiting ShareV.
  for (const auto& [name, bytes] : all) {
    SCOPED_TRACE("client, " + name);
    if (name != "Params") {
      auto client = Client(Binding(17));
      ASSERT_EQ(client->Start().status, Step::Status::kContinue);
      const Step s = client->OnPayload(bytes);
      ASSERT_TRUE(Failed(s));
      EXPECT_EQ(s.error, AuthError::kUnexpectedMessage);
    }
    if (name != "ShareV") {
      auto client = Client(Binding(17));
      ASSERT_EQ(client->Start().status, Step::Status::kContinue);
      ASSERT_EQ(client->OnPayload(r.wire[0].bytes).status, Step::Status::kContinue);
      const Step s = client->OnPayload(bytes);
      ASSERT_TRUE(Failed(s));
      EXPECT_EQ(s.error, AuthError::kUnexpectedMessage);
    }
  }
}

TEST_F(Pake2PlusTest, EveryCallAfterDoneRefused) {
  auto client = Client(Binding(18));
  auto server = Server(Binding(18));
  const RunResult r = Exchange(*client, *server);
  ASSERT_TRUE(Done(r.client));
  ASSERT_TRUE(Done(r.server));
  for (MechanismSide* side : {client.get(), server.get()}) {
    for (const Step& s : {side->Start(), side->OnPayload(r.wire[1].bytes),
                          side->OnPayload(r.wire[3].bytes), side->Poll()}) {
      ASSERT_TRUE(Failed(s));
      EXPECT_EQ(s.error, AuthError::kUnexpectedMessage);
      EXPECT_FALSE(s.send.has_value());
    }
    // The identity that was established stays.
    EXPECT_TRUE(side->peer().has_value());
  }
}

TEST_F(Pake2PlusTest, FailureIsSticky) {
  auto client = Client(Binding(19), "wrong");
  auto server = Server(Binding(19));
  const RunResult r = Exchange(*client, *server);
  ASSERT_TRUE(Failed(r.client));
  for (const Step& s : {client->Start(), client->OnPayload(r.wire[2].bytes), client->Poll()}) {
    ASSERT_TRUE(Failed(s));
    EXPECT_EQ(s.error, r.client.error);
    EXPECT_EQ(s.detail, r.client.detail);
    EXPECT_FALSE(s.send.has_value());
  }
  EXPECT_FALSE(client->peer().has_value());
}

TEST_F(Pake2PlusTest, MissingConfigurationFailsInternal) {
  ServerConfig no_store{nullptr, &decoy_, target_, &server_rng_};
  Step s = ServerFactory(no_store)(Ctx(Binding(20)))->Start();
  ASSERT_TRUE(Failed(s));
  EXPECT_EQ(s.error, AuthError::kInternal);
  ServerConfig no_decoy{&store_, nullptr, target_, &server_rng_};
  s = ServerFactory(no_decoy)(Ctx(Binding(20)))->Start();
  ASSERT_TRUE(Failed(s));
  EXPECT_EQ(s.error, AuthError::kInternal);
  s = ClientFactory(nullptr, &client_rng_, KdfLimits::ForTests())(Ctx(Binding(20)))->Start();
  ASSERT_TRUE(Failed(s));
  EXPECT_EQ(s.error, AuthError::kInternal);
}

TEST_F(Pake2PlusTest, CorruptRecordFailsInternal) {
  std::optional<VerifierRecord> rec = Record();
  ASSERT_TRUE(rec);
  VerifierRecord bad;
  bad.user = rec->user;
  bad.realm = rec->realm;
  bad.mechanism = Mechanism::kPake2Plus;
  bad.salt = rec->salt;
  bad.params = rec->params;
  bad.verifier = SecretBuffer(rec->verifier.span().first(kVerifierLen - 1));
  ASSERT_TRUE(store_.Put(bad));
  const Step s = Server(Binding(21))->Start();
  ASSERT_TRUE(Failed(s));
  EXPECT_EQ(s.error, AuthError::kInternal);
}

// --- Re-hash on login ------------------------------------------------------------------

class Pake2PlusUpgradeTest : public Pake2PlusTest {
 protected:
  void SetUp() override {
    Pake2PlusTest::SetUp();
    target_.opslimit = KdfParams::ForTests().opslimit + 1;
    target_.memlimit = KdfParams::ForTests().memlimit * 2;
    ASSERT_TRUE(target_.Sane());
    ASSERT_TRUE(Record()->params.WeakerThan(target_));
  }
};

TEST_F(Pake2PlusUpgradeTest, WeakRecordIsRehashedAfterLogin) {
  const std::optional<VerifierRecord> before = Record();
  auto client = Client(Binding(30));
  auto server = Server(Binding(30));
  const RunResult r = Exchange(*client, *server);
  ASSERT_TRUE(Done(r.client)) << r.client.detail;
  ASSERT_TRUE(Done(r.server)) << r.server.detail;
  // Params, ShareP, ShareV (upgrade follows), ConfirmP, Upgrade, UpgradeReply.
  ASSERT_EQ(r.wire.size(), 6u);
  EXPECT_TRUE(ParseMsg(r.wire[2].bytes).share_v().upgrade_follows());
  const PakeMessage up = ParseMsg(r.wire[4].bytes);
  ASSERT_TRUE(up.has_upgrade());
  EXPECT_EQ(up.upgrade().kdf().opslimit(), target_.opslimit);
  EXPECT_EQ(up.upgrade().kdf().memlimit(), target_.memlimit);
  const PakeMessage reply = ParseMsg(r.wire[5].bytes);
  ASSERT_TRUE(reply.has_upgrade_reply());
  EXPECT_EQ(reply.upgrade_reply().w0().size(), kScalarLen);
  EXPECT_EQ(reply.upgrade_reply().l().size(), kPointLen);
  ASSERT_TRUE(server->peer().has_value());
  EXPECT_EQ(server->peer()->name, kUser);

  const std::optional<VerifierRecord> after = Record();
  ASSERT_TRUE(after);
  EXPECT_FALSE(after->params.WeakerThan(target_));
  EXPECT_EQ(after->salt, std::vector<uint8_t>(up.upgrade().salt().begin(),
                                              up.upgrade().salt().end()));
  EXPECT_NE(after->salt, before->salt);
  EXPECT_FALSE(after->verifier.Equal(before->verifier));
  // The new record is exactly what MakeRecord would store for that salt.
  Scalar w0, w1;
  ASSERT_TRUE(DerivePasswordScalars(kPassword, kUser, kRealm, after->salt, after->params,
                                    &w0, &w1));
  EXPECT_EQ(ToHex(after->verifier.span().first(kScalarLen)), ToHex(w0.span()));

  // The next login uses it, with no upgrade; a wrong password still fails.
  auto client2 = Client(Binding(31));
  auto server2 = Server(Binding(31));
  const RunResult r2 = Exchange(*client2, *server2);
  ASSERT_TRUE(Done(r2.server)) << r2.server.detail;
  EXPECT_EQ(r2.wire.size(), 4u);
  auto client3 = Client(Binding(32), "wrong");
  auto server3 = Server(Binding(32));
  EXPECT_TRUE(Failed(Exchange(*client3, *server3).client));
}

// No upgrade for a client that has not proven the password: the server
// never sends Upgrade before confirmP verified.
TEST_F(Pake2PlusUpgradeTest, NoUpgradeWithoutProof) {
  auto client = Client(Binding(33));
  auto server = Server(Binding(33));
  const RunResult r = Exchange(*client, *server, EditMessage(3, [](PakeMessage* m) {
                            std::string c = m->confirm_p().confirm_p();
                            c[0] = static_cast<char>(c[0] ^ 1);
                            m->mutable_confirm_p()->set_confirm_p(c);
                          }));
  ASSERT_TRUE(Failed(r.server));
  EXPECT_EQ(r.server.error, AuthError::kBadProof);
  EXPECT_EQ(r.wire.size(), 4u);
  EXPECT_FALSE(r.server.send.has_value());
}

TEST_F(Pake2PlusUpgradeTest, InvalidUpgradeReplyKeepsOldRecord) {
  const std::optional<VerifierRecord> before = Record();
  const std::vector<std::function<void(PakeMessage*)>> edits = {
      [](PakeMessage* m) { m->mutable_upgrade_reply()->set_l(std::string(1, '\0')); },
      [](PakeMessage* m) {
        std::string l = m->upgrade_reply().l();
        l.back() = static_cast<char>(l.back() ^ 1);
        m->mutable_upgrade_reply()->set_l(l);
      },
      [](PakeMessage* m) { m->mutable_upgrade_reply()->set_w0(std::string(kScalarLen, '\0')); },
      [](PakeMessage* m) { m->mutable_upgrade_reply()->set_w0(std::string(kScalarLen, '\xff')); },
      [](PakeMessage* m) { m->mutable_upgrade_reply()->set_w0("short"); },
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    auto client = Client(Binding(34));
    auto server = Server(Binding(34));
    const RunResult r = Exchange(*client, *server, EditMessage(5, edits[i]));
    ASSERT_TRUE(Failed(r.server)) << i;
    EXPECT_EQ(r.server.error, AuthError::kMalformed) << i;
    const std::optional<VerifierRecord> after = Record();
    EXPECT_EQ(after->salt, before->salt) << i;
    EXPECT_TRUE(after->verifier.Equal(before->verifier)) << i;
  }
}

TEST_F(Pake2PlusUpgradeTest, InsaneUpgradeParamsRefusedByClient) {
  auto client = Client(Binding(35));
  auto server = Server(Binding(35));
  const RunResult r = Exchange(*client, *server, EditMessage(4, [](PakeMessage* m) {
                            m->mutable_upgrade()->mutable_kdf()->set_memlimit(8ull << 30);
                          }));
  ASSERT_TRUE(Failed(r.client));
  EXPECT_EQ(r.client.error, AuthError::kPolicy);
}

TEST_F(Pake2PlusUpgradeTest, WrongMessageDuringUpgradeRefused) {
  auto client = Client(Binding(36));
  auto server = Server(Binding(36));
  // Stop after the server's Upgrade: replay the ConfirmP instead of a reply.
  std::vector<uint8_t> confirm_p;
  const RunResult r = Exchange(*client, *server, [&](size_t i, bool, std::vector<uint8_t>* msg) {
    if (i == 3) confirm_p = *msg;
    if (i == 5) *msg = confirm_p;
  });
  ASSERT_TRUE(Failed(r.server));
  EXPECT_EQ(r.server.error, AuthError::kUnexpectedMessage);
  EXPECT_FALSE(server->peer().has_value());
}

// A client told that an upgrade follows waits for it and refuses anything
// else.
TEST_F(Pake2PlusUpgradeTest, ClientAwaitingUpgradeRefusesOtherMessages) {
  auto client = Client(Binding(37));
  auto server = Server(Binding(37));
  std::vector<uint8_t> share_v;
  const RunResult r = Exchange(*client, *server, [&](size_t i, bool, std::vector<uint8_t>* msg) {
    if (i == 2) share_v = *msg;
    if (i == 4) *msg = share_v;
  });
  ASSERT_TRUE(Failed(r.client));
  EXPECT_EQ(r.client.error, AuthError::kUnexpectedMessage);
  EXPECT_FALSE(client->peer().has_value());
}

}  // namespace
}  // namespace tcpcrypt::auth::pake
