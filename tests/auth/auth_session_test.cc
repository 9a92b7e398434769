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
  EXPECT_EQ(strict.error(), AuthError::kPolicy);
  EXPECT_NE(strict.detail().find("the server's plan [] does not include any authentication"),
            std::string::npos)
      << strict.detail();
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
  f.store->Put(TicketKey{"", 0, "", "example.com", "alice"}, {1, 2, 3}, k, 1ull << 40,
               {PeerIdentity{Mechanism::kPake2Plus, "example.com", {}}});  // garbage ticket
  AuthClient c(f.C(), Binding(41));
  AuthServer s(f.S(), Binding(41));
  Exchange(c, s);
  ASSERT_TRUE(c.done()) << c.detail();
  EXPECT_FALSE(s.used_ticket());
  EXPECT_EQ(f.issuer->issued(), 2u);
}

}  // namespace
}  // namespace tcpcrypt::auth

namespace tcpcrypt::auth {
namespace {

// --- client-side policy (issue 9) ------------------------------------------

// TakeMessages splits an endpoint's pending output into envelopes.
std::vector<wire::Envelope> TakeMessages(AuthEndpoint& from) {
  std::vector<uint8_t> bytes(from.PendingOutput().begin(), from.PendingOutput().end());
  from.ConsumeOutput(bytes.size());
  std::vector<wire::Envelope> out;
  size_t at = 0;
  while (at + 4 <= bytes.size()) {
    const size_t n = (size_t{bytes[at]} << 24) | (size_t{bytes[at + 1]} << 16) |
                     (size_t{bytes[at + 2]} << 8) | bytes[at + 3];
    wire::Envelope env;
    EXPECT_TRUE(env.ParseFromArray(bytes.data() + at + 4, static_cast<int>(n)));
    out.push_back(std::move(env));
    at += 4 + n;
  }
  EXPECT_EQ(at, bytes.size());
  return out;
}

void FeedEnvelope(AuthEndpoint& to, const wire::Envelope& env) {
  std::string body = env.SerializeAsString();
  std::vector<uint8_t> framed = {static_cast<uint8_t>(body.size() >> 24),
                                 static_cast<uint8_t>(body.size() >> 16),
                                 static_cast<uint8_t>(body.size() >> 8),
                                 static_cast<uint8_t>(body.size())};
  framed.insert(framed.end(), body.begin(), body.end());
  (void)to.Feed(framed);
}

wire::Envelope Choice(std::vector<Mechanism> plan) {
  wire::Envelope env;
  env.mutable_choice();
  for (Mechanism m : plan) env.mutable_choice()->add_plan(static_cast<wire::Mechanism>(m));
  return env;
}

ClientConfig X509AndCmacClient() {
  auto c = Client({{Mechanism::kX509Batch, Fake(Mechanism::kX509Batch, true, "x")},
                   {Mechanism::kCmacPassword, Fake(Mechanism::kCmacPassword, true, "p")}});
  c.require_certificate = true;
  c.require_password = true;
  return c;
}

TEST(AuthPolicyTest, PlanWithoutTheRequiredCertificateIsRefusedBeforeAnyMechanismRuns) {
  AuthClient c(X509AndCmacClient(), Binding(50));
  ASSERT_EQ(c.Start(), AuthError::kNone);
  (void)TakeMessages(c);
  const int calls = g_factory_calls.load();
  FeedEnvelope(c, Choice({Mechanism::kCmacPassword}));
  EXPECT_EQ(c.error(), AuthError::kPolicy);
  EXPECT_EQ(c.detail(),
            "the server's plan [cmac] does not include a server certificate, which this "
            "client requires");
  EXPECT_EQ(g_factory_calls.load(), calls);  // no client side was even made
  EXPECT_TRUE(c.PendingOutput().empty());    // and nothing was sent
}

TEST(AuthPolicyTest, PlanWithoutTheRequiredPasswordIsRefused) {
  AuthClient c(X509AndCmacClient(), Binding(51));
  ASSERT_EQ(c.Start(), AuthError::kNone);
  (void)TakeMessages(c);
  FeedEnvelope(c, Choice({Mechanism::kX509Batch}));
  EXPECT_EQ(c.error(), AuthError::kPolicy);
  EXPECT_EQ(c.detail(),
            "the server's plan [x509] does not include a password proof, which this client "
            "requires");
  EXPECT_TRUE(c.PendingOutput().empty());
}

TEST(AuthPolicyTest, BothRequiredRunsAgainstAServerOfferingBoth) {
  auto server = Server({{Mechanism::kX509Batch, Fake(Mechanism::kX509Batch, false, "x")},
                        {Mechanism::kCmacPassword, Fake(Mechanism::kCmacPassword, false, "p")}});
  server.plans = {{Mechanism::kX509Batch, Mechanism::kCmacPassword}};
  AuthClient c(X509AndCmacClient(), Binding(52));
  AuthServer s(server, Binding(52));
  Exchange(c, s);
  EXPECT_TRUE(c.done()) << c.detail();
  EXPECT_TRUE(s.done()) << s.detail();
}

TEST(AuthPolicyTest, TwoPasswordMechanismsInOnePlanAreRefused) {
  auto client = Client({{Mechanism::kCmacPassword, Fake(Mechanism::kCmacPassword, true, "p")},
                        {Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, true, "p")}});
  AuthClient c(client, Binding(53));
  ASSERT_EQ(c.Start(), AuthError::kNone);
  (void)TakeMessages(c);
  FeedEnvelope(c, Choice({Mechanism::kCmacPassword, Mechanism::kPake2Plus}));
  EXPECT_EQ(c.error(), AuthError::kPolicy);
  EXPECT_TRUE(c.PendingOutput().empty());
}

TEST(AuthPolicyTest, RepeatedMechanismInAPlanIsRefused) {
  auto client = Client({{Mechanism::kX509Batch, Fake(Mechanism::kX509Batch, true, "x")}});
  AuthClient c(client, Binding(54));
  ASSERT_EQ(c.Start(), AuthError::kNone);
  (void)TakeMessages(c);
  FeedEnvelope(c, Choice({Mechanism::kX509Batch, Mechanism::kX509Batch}));
  EXPECT_EQ(c.error(), AuthError::kUnexpectedMessage);
}

TEST(AuthPolicyTest, NoTicketIsStoredFromASessionInWhichTheServerProvedNothing) {
  TicketFixture f;
  auto cfg = f.C();
  cfg.required = false;  // the client lets an empty plan through...
  AuthClient c(cfg, Binding(55));
  ASSERT_EQ(c.Start(), AuthError::kNone);
  (void)TakeMessages(c);
  FeedEnvelope(c, Choice({}));
  wire::Envelope outcome;
  outcome.mutable_outcome()->set_ok(true);
  outcome.mutable_outcome()->set_ticket(std::string(64, 't'));
  outcome.mutable_outcome()->set_ticket_secret(std::string(kTicketSecretLen, 'k'));
  outcome.mutable_outcome()->set_ticket_lifetime_ms(3600000);
  FeedEnvelope(c, outcome);
  ASSERT_TRUE(c.done()) << c.detail();
  EXPECT_TRUE(c.identities().empty());
  EXPECT_EQ(f.store->size(), 0u);  // ...but keeps no planted ticket
}

TEST(AuthPolicyTest, TicketsAreKeptPerServerAndReportTheOriginalIdentity) {
  TicketFixture f;
  auto at = [&f](std::string host, uint16_t port) {
    ClientConfig c = f.C();
    c.host = host;
    c.port = port;
    c.server_name = host;
    return c;
  };
  {
    AuthClient c(at("a.example", 443), Binding(56));
    AuthServer s(f.S(), Binding(56));
    Exchange(c, s);
    ASSERT_TRUE(c.done()) << c.detail();
  }
  ASSERT_EQ(f.store->size(), 1u);
  // Another host, or another port: the hello carries no ticket.
  for (const auto& [host, port] : {std::pair<std::string, uint16_t>{"b.example", 443},
                                   std::pair<std::string, uint16_t>{"a.example", 8443}}) {
    AuthClient c(at(host, port), Binding(57));
    ASSERT_EQ(c.Start(), AuthError::kNone);
    const auto msgs = TakeMessages(c);
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_TRUE(msgs[0].hello().ticket_payload().empty()) << host << ":" << port;
    for (int m : msgs[0].hello().mechanisms()) EXPECT_NE(m, wire::TICKET);
  }
  // The same server: the ticket is used, and the client reports what the
  // issuing session proved.
  AuthClient c(at("a.example", 443), Binding(58));
  AuthServer s(f.S(), Binding(58));
  Exchange(c, s);
  ASSERT_TRUE(c.done()) << c.detail();
  EXPECT_TRUE(c.used_ticket());
  ASSERT_EQ(c.identities().size(), 1u);
  EXPECT_EQ(c.identities()[0].mechanism, Mechanism::kTicket);
  EXPECT_EQ(c.identities()[0].name, "example.com");
  EXPECT_EQ(c.identities()[0].attributes.at("original_mechanism"), "pake");
  EXPECT_EQ(c.identities()[0].attributes.at("via"), "ticket");
}

TEST(AuthPolicyTest, TicketNotOfferedWhenItProvesLessThanRequired) {
  TicketFixture f;
  {
    AuthClient c(f.C(), Binding(59));
    AuthServer s(f.S(), Binding(59));
    Exchange(c, s);
    ASSERT_TRUE(c.done()) << c.detail();
  }
  // The ticket was issued after a password proof; a client that now
  // requires a certificate does not offer it.
  ClientConfig strict = f.C();
  strict.mechanisms.emplace_back(Mechanism::kX509Batch, Fake(Mechanism::kX509Batch, true, "x"));
  strict.require_certificate = true;
  AuthClient c(strict, Binding(60));
  ASSERT_EQ(c.Start(), AuthError::kNone);
  const auto msgs = TakeMessages(c);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_TRUE(msgs[0].hello().ticket_payload().empty());
}

TEST(AuthRealmTest, ServerWithARealmRefusesAClientNamingAnother) {
  auto client = Client({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, true, "k")}});
  client.realm = "evil.example";
  AuthClient c(client, Binding(61));
  AuthServer s(Server({{Mechanism::kPake2Plus, Fake(Mechanism::kPake2Plus, false, "k")}}),
               Binding(61));
  Exchange(c, s);
  EXPECT_EQ(s.error(), AuthError::kBadProof);
  EXPECT_NE(s.detail().find("'evil.example'"), std::string::npos) << s.detail();
  EXPECT_NE(s.detail().find("'example.com'"), std::string::npos) << s.detail();
  EXPECT_EQ(c.error(), AuthError::kRefused);
}

TEST(AuthRealmTest, ServerWithoutARealmUsesTheClientsAndSealsTicketsUnderIt) {
  TicketFixture f;
  auto server = f.S();
  server.realm.clear();
  {
    AuthClient c(f.C(), Binding(62));
    AuthServer s(server, Binding(62));
    Exchange(c, s);
    ASSERT_TRUE(c.done()) << c.detail();
    ASSERT_TRUE(s.done()) << s.detail();
  }
  // The ticket opens for that realm only: a server of another realm
  // ignores it and runs the mechanism.
  auto other = f.S();
  other.realm = "other.example";
  ClientConfig cc = f.C();
  AuthClient c(cc, Binding(63));
  AuthServer s(server, Binding(63));
  Exchange(c, s);
  EXPECT_TRUE(s.used_ticket());
  auto elsewhere = f.C();
  elsewhere.realm = "other.example";
  // The store keys on the realm too, so the client does not even offer it.
  AuthClient c2(elsewhere, Binding(64));
  AuthServer s2(other, Binding(64));
  Exchange(c2, s2);
  EXPECT_FALSE(s2.used_ticket());
  EXPECT_TRUE(s2.done()) << s2.detail();
}

}  // namespace
}  // namespace tcpcrypt::auth
