// The negotiation layer, driven with a fake shared-key mechanism and the
// real ticket mechanism: no sockets, both ends in one process.
#include "auth/common/auth_session.h"

#include <gtest/gtest.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <string>
#include <vector>

#include "auth/common/auth.pb.h"

namespace tcpcrypt::auth {
namespace {

std::vector<uint8_t> Mac(const std::string& key, char who, const ChannelBinding& b) {
  std::vector<uint8_t> msg = b.Encode();
  msg.push_back(static_cast<uint8_t>(who));
  std::vector<uint8_t> out(32);
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), msg.data(), msg.size(),
       out.data(), &len);
  return out;
}

// A mutual shared-key proof: client sends MAC(k, 'c' | binding), the server
// answers MAC(k, 's' | binding).
class FakeSide final : public MechanismSide {
 public:
  FakeSide(Mechanism m, bool client, std::string key, Context ctx, bool async)
      : m_(m), client_(client), key_(std::move(key)), ctx_(std::move(ctx)), async_(async) {}
  Mechanism mechanism() const override { return m_; }
  Step Start() override {
    if (client_) return Step::Continue(Mac(key_, 'c', ctx_.binding));
    return Step::Continue();
  }
  Step OnPayload(ByteSpan p) override {
    if (done_) return Step::Fail(AuthError::kUnexpectedMessage, "done");
    if (client_) {
      done_ = true;
      const auto want = Mac(key_, 's', ctx_.binding);
      if (p.size() != want.size() || CRYPTO_memcmp(p.data(), want.data(), want.size()) != 0) {
        return Step::Fail(AuthError::kBadProof, "server proof did not verify");
      }
      ok_ = true;
      return Step::Done();
    }
    const auto want = Mac(key_, 'c', ctx_.binding);
    if (p.size() != want.size() || CRYPTO_memcmp(p.data(), want.data(), want.size()) != 0) {
      done_ = true;
      return Step::Fail(AuthError::kBadProof, "wrong key");
    }
    if (async_) {
      pending_ = true;
      if (ctx_.wake) ctx_.wake();
      return Step::Continue();
    }
    done_ = ok_ = true;
    return Step::Done(Mac(key_, 's', ctx_.binding));
  }
  Step Poll() override {
    if (!pending_) return Step::Continue();
    pending_ = false;
    done_ = ok_ = true;
    return Step::Done(Mac(key_, 's', ctx_.binding));
  }
  std::optional<PeerIdentity> peer() const override {
    if (!ok_) return std::nullopt;
    return PeerIdentity{m_, client_ ? ctx_.realm : ctx_.user, {}};
  }

 private:
  Mechanism m_;
  bool client_;
  std::string key_;
  Context ctx_;
  bool async_;
  bool done_ = false;
  bool ok_ = false;
  bool pending_ = false;
};

std::atomic<int> g_factory_calls{0};

MechanismFactory Fake(Mechanism m, bool client, std::string key, bool async = false) {
  return [=](const Context& ctx) {
    ++g_factory_calls;
    return std::make_unique<FakeSide>(m, client, key, ctx, async);
  };
}

ChannelBinding Binding(uint8_t seed) {
  std::vector<uint8_t> sid(33, seed);
  sid[0] = 0x23;
  return ChannelBinding::SessionId(sid);
}

void Move(AuthEndpoint& from, AuthEndpoint& to) {
  std::vector<uint8_t> bytes(from.PendingOutput().begin(), from.PendingOutput().end());
  from.ConsumeOutput(bytes.size());
  if (!bytes.empty()) (void)to.Feed(bytes);
}

void Exchange(AuthClient& c, AuthServer& s, bool poll = false) {
  ASSERT_EQ(s.Start(), AuthError::kNone);
  ASSERT_EQ(c.Start(), AuthError::kNone);
  for (int i = 0; i < 20; ++i) {
    Move(c, s);
    if (poll) (void)s.Poll();
    Move(s, c);
  }
}

ClientConfig Client(std::vector<std::pair<Mechanism, MechanismFactory>> m) {
  ClientConfig c;
  c.mechanisms = std::move(m);
  c.user = "alice";
  c.realm = "example.com";
  return c;
}

ServerConfig Server(std::vector<std::pair<Mechanism, MechanismFactory>> m) {
  ServerConfig s;
  s.mechanisms = std::move(m);
  s.realm = "example.com";
  return s;
}

TEST(AuthSessionTest, SingleMechanismMutual) {
  AuthClient c(Client({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, true, "k")}}), Binding(1));
  AuthServer s(Server({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, false, "k")}}), Binding(1));
  Exchange(c, s);
  ASSERT_TRUE(c.done()) << c.detail();
  ASSERT_TRUE(s.done()) << s.detail();
  ASSERT_EQ(s.identities().size(), 1u);
  EXPECT_EQ(s.identities()[0].name, "alice");
  ASSERT_EQ(c.identities().size(), 1u);
  EXPECT_EQ(c.identities()[0].name, "example.com");
  EXPECT_EQ(c.plan(), std::vector<Mechanism>{Mechanism::kPake2Plus});
}

TEST(AuthSessionTest, ServerPolicyPicksFirstRunnablePlanAndRunsCombinations) {
  auto client = Client({{Mechanism::kCmacPassword, Fake(Mechanism::kCmacPassword, true, "p")},
                        {Mechanism::kX509Batch, Fake(Mechanism::kX509Batch, true, "x")}});
  auto server = Server({{Mechanism::kCmacPassword, Fake(Mechanism::kCmacPassword, false, "p")},
                        {Mechanism::kX509Batch, Fake(Mechanism::kX509Batch, false, "x")},
                        {Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, false, "q")}});
  server.plans = {{Mechanism::kPake2Plus},
                  {Mechanism::kX509Batch, Mechanism::kCmacPassword},
                  {Mechanism::kCmacPassword}};
  AuthClient c(client, Binding(2));
  AuthServer s(server, Binding(2));
  Exchange(c, s);
  ASSERT_TRUE(c.done()) << c.detail();
  ASSERT_TRUE(s.done()) << s.detail();
  const std::vector<Mechanism> want = {Mechanism::kX509Batch, Mechanism::kCmacPassword};
  EXPECT_EQ(c.plan(), want);
  EXPECT_EQ(s.plan(), want);
  EXPECT_EQ(s.identities().size(), 2u);
}

TEST(AuthSessionTest, NoCommonMechanism) {
  AuthClient c(Client({{Mechanism::kCmacPassword, Fake(Mechanism::kCmacPassword, true, "p")}}), Binding(3));
  AuthServer s(Server({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, false, "p")}}), Binding(3));
  Exchange(c, s);
  EXPECT_EQ(s.error(), AuthError::kNoCommonMechanism);
  EXPECT_EQ(c.error(), AuthError::kRefused);
}

TEST(AuthSessionTest, OptionalAuthenticationOnBothSides) {
  auto client = Client({{Mechanism::kCmacPassword, Fake(Mechanism::kCmacPassword, true, "p")}});
  client.required = false;
  auto server = Server({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, false, "p")}});
  server.required = false;
  AuthClient c(client, Binding(4));
  AuthServer s(server, Binding(4));
  Exchange(c, s);
  EXPECT_TRUE(c.done()) << c.detail();
  EXPECT_TRUE(s.done()) << s.detail();
  EXPECT_TRUE(s.identities().empty());
  // A client that requires authentication refuses such a server.
  AuthClient strict(Client({{Mechanism::kCmacPassword, Fake(Mechanism::kCmacPassword, true, "p")}}),
                    Binding(4));
  AuthServer lax(server, Binding(4));
  Exchange(strict, lax);
  EXPECT_EQ(strict.error(), AuthError::kNoCommonMechanism);
}

TEST(AuthSessionTest, WrongSecretRefusedBothWaysWithVagueRemoteReason) {
  AuthClient c(Client({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, true, "right")}}), Binding(5));
  AuthServer s(Server({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, false, "wrong")}}), Binding(5));
  Exchange(c, s);
  EXPECT_EQ(s.error(), AuthError::kBadProof);
  EXPECT_EQ(s.detail(), "wrong key");
  EXPECT_EQ(c.error(), AuthError::kRefused);
  EXPECT_EQ(c.detail().find("wrong key"), std::string::npos);
}

TEST(AuthSessionTest, RelayBetweenTwoSessionsIsRefused) {
  // A man in the middle joins two tcpcrypt connections (different session
  // IDs) and forwards every authentication byte unchanged.
  AuthClient c(Client({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, true, "k")}}), Binding(6));
  AuthServer s(Server({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, false, "k")}}), Binding(7));
  Exchange(c, s);
  EXPECT_FALSE(c.done());
  EXPECT_FALSE(s.done());
  EXPECT_EQ(s.error(), AuthError::kBadProof);
}

TEST(AuthSessionTest, ImpostorServerIsDetectedByTheClient) {
  // The server accepts anything (it has no verifier) but cannot prove it.
  class Lenient final : public MechanismSide {
   public:
    Mechanism mechanism() const override { return Mechanism::kPake2Plus; }
    Step Start() override { return Step::Continue(); }
    Step OnPayload(ByteSpan) override { return Step::Done(std::vector<uint8_t>(32, 0)); }
    std::optional<PeerIdentity> peer() const override { return PeerIdentity{Mechanism::kPake2Plus, "x", {}}; }
  };
  auto server = Server({{Mechanism::kPake2Plus,
                         [](const Context&) { return std::make_unique<Lenient>(); }}});
  AuthClient c(Client({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, true, "k")}}), Binding(8));
  AuthServer s(server, Binding(8));
  Exchange(c, s);
  EXPECT_EQ(c.error(), AuthError::kBadProof);
  EXPECT_FALSE(c.done());
}

TEST(AuthSessionTest, OversizedAndMalformedMessages) {
  AuthServer s(Server({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, false, "k")}}), Binding(9));
  ASSERT_EQ(s.Start(), AuthError::kNone);
  const std::vector<uint8_t> huge = {0x7f, 0xff, 0xff, 0xff};
  EXPECT_EQ(s.Feed(huge), AuthError::kMalformed);

  AuthServer s2(Server({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, false, "k")}}), Binding(9));
  ASSERT_EQ(s2.Start(), AuthError::kNone);
  const std::vector<uint8_t> garbage = {0, 0, 0, 3, 0xff, 0xff, 0xff};
  EXPECT_EQ(s2.Feed(garbage), AuthError::kMalformed);
  // The refusal to the peer is a plain Outcome{ok=false}.
  ByteSpan out = s2.PendingOutput();
  ASSERT_GT(out.size(), 4u);
  wire::Envelope env;
  ASSERT_TRUE(env.ParseFromArray(out.data() + 4, static_cast<int>(out.size() - 4)));
  EXPECT_FALSE(env.outcome().ok());
  EXPECT_EQ(env.outcome().reason(), "authentication failed");
}

TEST(AuthSessionTest, MessagesInTheWrongState) {
  AuthClient c(Client({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, true, "k")}}), Binding(10));
  ASSERT_EQ(c.Start(), AuthError::kNone);
  wire::Envelope env;
  env.mutable_step()->set_mechanism(wire::PAKE2PLUS);
  env.mutable_step()->set_payload("x");
  std::string bytes = env.SerializeAsString();
  std::vector<uint8_t> framed = {0, 0, 0, static_cast<uint8_t>(bytes.size())};
  framed.insert(framed.end(), bytes.begin(), bytes.end());
  EXPECT_EQ(c.Feed(framed), AuthError::kUnexpectedMessage);

  // A premature "ok" from the server is not accepted either.
  AuthClient c2(Client({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, true, "k")}}), Binding(10));
  ASSERT_EQ(c2.Start(), AuthError::kNone);
  wire::Envelope ok;
  ok.mutable_outcome()->set_ok(true);
  bytes = ok.SerializeAsString();
  framed = {0, 0, 0, static_cast<uint8_t>(bytes.size())};
  framed.insert(framed.end(), bytes.begin(), bytes.end());
  EXPECT_EQ(c2.Feed(framed), AuthError::kUnexpectedMessage);
}

TEST(AuthSessionTest, ByteAtATimeAndAsyncServer) {
  AuthClient c(Client({{Mechanism::kX509Batch, Fake(Mechanism::kX509Batch, true, "k")}}), Binding(11));
  bool woken = false;
  AuthServer s(Server({{Mechanism::kX509Batch, Fake(Mechanism::kX509Batch, false, "k", true)}}),
               Binding(11), [&woken] { woken = true; });
  ASSERT_EQ(s.Start(), AuthError::kNone);
  ASSERT_EQ(c.Start(), AuthError::kNone);
  for (int round = 0; round < 10; ++round) {
    for (AuthEndpoint* from : {static_cast<AuthEndpoint*>(&c), static_cast<AuthEndpoint*>(&s)}) {
      AuthEndpoint* to = from == &c ? static_cast<AuthEndpoint*>(&s) : &c;
      std::vector<uint8_t> bytes(from->PendingOutput().begin(), from->PendingOutput().end());
      from->ConsumeOutput(bytes.size());
      for (uint8_t b : bytes) ASSERT_EQ(to->Feed(ByteSpan(&b, 1)), AuthError::kNone);
    }
    if (woken) {
      woken = false;
      ASSERT_EQ(s.Poll(), AuthError::kNone);
    }
  }
  EXPECT_TRUE(c.done()) << c.detail();
  EXPECT_TRUE(s.done()) << s.detail();
}

TEST(AuthSessionTest, LeftoverApplicationBytesAfterOutcome) {
  AuthClient c(Client({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, true, "k")}}), Binding(12));
  AuthServer s(Server({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, false, "k")}}), Binding(12));
  ASSERT_EQ(s.Start(), AuthError::kNone);
  ASSERT_EQ(c.Start(), AuthError::kNone);
  Move(c, s);
  Move(s, c);
  Move(c, s);
  ASSERT_TRUE(s.done());
  std::vector<uint8_t> bytes(s.PendingOutput().begin(), s.PendingOutput().end());
  s.ConsumeOutput(bytes.size());
  bytes.insert(bytes.end(), {'h', 'i'});
  ASSERT_EQ(c.Feed(bytes), AuthError::kNone);
  ASSERT_TRUE(c.done());
  EXPECT_EQ(std::vector<uint8_t>(c.Leftover().begin(), c.Leftover().end()),
            (std::vector<uint8_t>{'h', 'i'}));
}

TEST(AuthSessionTest, ThrottleRefusesAfterRepeatedFailures) {
  ManualClock clock;
  auto throttle = std::make_shared<AttemptThrottle>(
      ThrottleLimits{.max_failures_per_user = 3, .window_ms = 60000}, clock);
  auto server = Server({{Mechanism::kCmacPassword, Fake(Mechanism::kCmacPassword, false, "right")}});
  server.throttle = throttle;
  for (int i = 0; i < 3; ++i) {
    AuthClient c(Client({{Mechanism::kCmacPassword, Fake(Mechanism::kCmacPassword, true, "guess")}}), Binding(13));
    AuthServer s(server, Binding(13));
    Exchange(c, s);
    EXPECT_EQ(s.error(), AuthError::kBadProof);
  }
  // Even the right password is refused now, and looks the same from outside.
  AuthClient c(Client({{Mechanism::kCmacPassword, Fake(Mechanism::kCmacPassword, true, "right")}}), Binding(13));
  AuthServer s(server, Binding(13));
  Exchange(c, s);
  EXPECT_EQ(s.error(), AuthError::kThrottled);
  EXPECT_EQ(c.error(), AuthError::kRefused);
  clock.Advance(60001);
  AuthClient c2(Client({{Mechanism::kCmacPassword, Fake(Mechanism::kCmacPassword, true, "right")}}), Binding(13));
  AuthServer s2(server, Binding(13));
  Exchange(c2, s2);
  EXPECT_TRUE(s2.done()) << s2.detail();
}

struct TicketFixture {
  DeterministicRng rng{5};
  ManualClock clock;
  std::shared_ptr<TicketIssuer> issuer =
      std::make_shared<TicketIssuer>(TicketPolicy{}, rng, clock);
  std::shared_ptr<TicketStore> store = std::make_shared<TicketStore>(clock);

  ClientConfig C() {
    auto c = Client({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, true, "k")}});
    c.tickets = store;
    return c;
  }
  ServerConfig S() {
    auto s = Server({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, false, "k")}});
    s.tickets = issuer;
    return s;
  }
};

TEST(AuthTicketTest, TicketReauthenticatesWithoutRunningAMechanism) {
  TicketFixture f;
  {
    AuthClient c(f.C(), Binding(20));
    AuthServer s(f.S(), Binding(20));
    Exchange(c, s);
    ASSERT_TRUE(c.done() && s.done());
    EXPECT_FALSE(c.used_ticket());
  }
  EXPECT_EQ(f.issuer->issued(), 1u);
  const int calls_before = g_factory_calls.load();
  AuthClient c(f.C(), Binding(21));
  AuthServer s(f.S(), Binding(21));
  Exchange(c, s);
  ASSERT_TRUE(c.done()) << c.detail();
  ASSERT_TRUE(s.done()) << s.detail();
  EXPECT_TRUE(c.used_ticket());
  EXPECT_TRUE(s.used_ticket());
  EXPECT_EQ(g_factory_calls.load(), calls_before);  // no mechanism ran
  ASSERT_EQ(s.identities().size(), 1u);
  EXPECT_EQ(s.identities()[0].name, "alice");
  EXPECT_EQ(s.identities()[0].mechanism, Mechanism::kTicket);
  EXPECT_EQ(s.identities()[0].attributes.at("original_mechanism"), "pake");
  EXPECT_EQ(f.issuer->issued(), 1u);  // not re-issued
}

TEST(AuthTicketTest, TicketIsUselessOnAnotherSessionId) {
  TicketFixture f;
  {
    AuthClient c(f.C(), Binding(30));
    AuthServer s(f.S(), Binding(30));
    Exchange(c, s);
  }
  // The client's proof covers binding 31; a relay presents it to a server
  // whose session is 32: the ticket is not accepted and the server runs the
  // normal mechanism, which the relay also cannot pass.
  AuthClient c(f.C(), Binding(31));
  AuthServer s(f.S(), Binding(32));
  Exchange(c, s);
  EXPECT_FALSE(s.used_ticket());
  EXPECT_FALSE(s.done());
  EXPECT_FALSE(c.done());
}

TEST(AuthTicketTest, TamperedOrExpiredTicketFallsBack) {
  TicketFixture f;
  {
    AuthClient c(f.C(), Binding(40));
    AuthServer s(f.S(), Binding(40));
    Exchange(c, s);
  }
  // Expired: the full mechanism runs again, and a new ticket is issued.
  f.clock.Advance(TicketPolicy{}.lifetime_ms + 1);
  std::vector<uint8_t> t;
  TicketSecret k;
  f.store->Put("example.com", "alice", {1, 2, 3}, k, 1ull << 40);  // garbage ticket
  AuthClient c(f.C(), Binding(41));
  AuthServer s(f.S(), Binding(41));
  Exchange(c, s);
  ASSERT_TRUE(c.done()) << c.detail();
  EXPECT_FALSE(s.used_ticket());
  EXPECT_EQ(f.issuer->issued(), 2u);
}

}  // namespace
}  // namespace tcpcrypt::auth
