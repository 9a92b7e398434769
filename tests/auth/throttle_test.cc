// AttemptThrottle (throttle.h) with a manual clock: the sliding window, the
// per-user and per-source budgets, what a success takes back, parallel
// attempts, the memory bound and the eviction guarantee; then AuthServer
// with the real SPAKE2+ and CMAC mechanisms: a guesser that reads the
// server's confirmation and stalls, closes, or is cut off is still counted.
#include "auth/common/throttle.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "auth/cmac_password/cmac_password.h"
#include "auth/common/auth.pb.h"
#include "auth/common/auth_session.h"
#include "auth/common/decoy.h"
#include "auth/common/password_kdf.h"
#include "auth/common/verifier_store.h"
#include "auth/pake2plus/pake2plus.h"
#include "core_transport/engine/rng.h"

namespace tcpcrypt::auth {
namespace {

ThrottleLimits Limits(uint32_t per_user, uint32_t per_source, uint64_t window_ms = 60000) {
  ThrottleLimits l;
  l.max_failures_per_user = per_user;
  l.max_failures_per_source = per_source;
  l.window_ms = window_ms;
  return l;
}

bool Try(AttemptThrottle& t, std::string_view user, std::string_view source) {
  ThrottleCharge charge;
  return t.Begin(user, source, &charge);
}

TEST(ThrottleTest, SlidingWindowPerUser) {
  ManualClock clock;
  AttemptThrottle t(Limits(3, 1000, 60000), clock);
  EXPECT_TRUE(Try(t, "alice", "10.0.0.1"));
  clock.Advance(10000);
  EXPECT_TRUE(Try(t, "alice", "10.0.0.2"));
  EXPECT_TRUE(Try(t, "alice", "10.0.0.3"));
  // The fourth is refused whatever the source.
  EXPECT_FALSE(Try(t, "alice", "10.0.0.4"));
  // The first charge (t = 0) leaves the window at t = 60000, the others
  // (t = 10000) at t = 70000: a sliding window, not a reset.
  clock.Advance(49999);
  EXPECT_FALSE(Try(t, "alice", "10.0.0.4"));
  clock.Advance(1);
  EXPECT_TRUE(Try(t, "alice", "10.0.0.4"));
  EXPECT_FALSE(Try(t, "alice", "10.0.0.4"));
  clock.Advance(10000);
  EXPECT_TRUE(Try(t, "alice", "10.0.0.4"));
  EXPECT_TRUE(Try(t, "alice", "10.0.0.4"));
  EXPECT_FALSE(Try(t, "alice", "10.0.0.4"));
  const ThrottleStats st = t.stats();
  EXPECT_EQ(st.admitted, 6u);
  EXPECT_EQ(st.refused, 4u);
}

TEST(ThrottleTest, UsersHaveSeparateBudgets) {
  ManualClock clock;
  AttemptThrottle t(Limits(2, 1000), clock);
  EXPECT_TRUE(Try(t, "alice", "10.0.0.1"));
  EXPECT_TRUE(Try(t, "alice", "10.0.0.1"));
  EXPECT_FALSE(Try(t, "alice", "10.0.0.1"));
  EXPECT_TRUE(Try(t, "bob", "10.0.0.1"));
  EXPECT_TRUE(Try(t, "", "10.0.0.1"));  // an empty name is a name too
  EXPECT_FALSE(Try(t, "alice", "10.0.0.9"));
  // Names are exact bytes: "Alice" has a budget of its own.
  EXPECT_TRUE(Try(t, "Alice", "10.0.0.1"));
  EXPECT_TRUE(Try(t, "Alice", "10.0.0.1"));
  EXPECT_FALSE(Try(t, "Alice", "10.0.0.1"));
}

TEST(ThrottleTest, PerSourceBudgetAcrossUsers) {
  ManualClock clock;
  AttemptThrottle t(Limits(10, 5), clock);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(Try(t, "user" + std::to_string(i), "192.0.2.7"));
  EXPECT_FALSE(Try(t, "fresh", "192.0.2.7"));
  // The same address written as IPv4-mapped IPv6 is the same source.
  EXPECT_FALSE(Try(t, "fresh", "::ffff:192.0.2.7"));
  // A refused attempt charges nothing: "fresh" still has its whole budget.
  EXPECT_TRUE(Try(t, "fresh", "192.0.2.8"));
  clock.Advance(60000);
  EXPECT_TRUE(Try(t, "again", "192.0.2.7"));
}

TEST(ThrottleTest, Ipv6SourcesCountPerSlash64) {
  ManualClock clock;
  AttemptThrottle t(Limits(100, 2), clock);
  EXPECT_TRUE(Try(t, "a", "2001:db8:1:2::1"));
  EXPECT_TRUE(Try(t, "b", "2001:db8:1:2:ffff:ffff:ffff:ffff"));
  EXPECT_FALSE(Try(t, "c", "2001:db8:1:2::77"));
  EXPECT_TRUE(Try(t, "c", "2001:db8:1:3::1"));  // the next /64
}

TEST(ThrottleTest, SourceKeysAndPeerAddresses) {
  EXPECT_EQ(AddressOfPeer("192.0.2.1:443"), "192.0.2.1");
  EXPECT_EQ(AddressOfPeer("[2001:db8::1]:443"), "2001:db8::1");
  EXPECT_EQ(AddressOfPeer("2001:db8::1"), "2001:db8::1");
  EXPECT_EQ(AddressOfPeer("localhost"), "localhost");
  EXPECT_EQ(AddressOfPeer(""), "");
  EXPECT_EQ(SourceKey("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(SourceKey("::ffff:192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(SourceKey("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  EXPECT_EQ(SourceKey("2001:DB8:1:2::9"), "2001:db8:1:2::/64");
  EXPECT_EQ(SourceKey("::1"), "::/64");
  EXPECT_EQ(SourceKey("not an address"), "not an address");
  EXPECT_EQ(SourceKey(""), "");
}

TEST(ThrottleTest, SuccessTakesBackOnlyItsOwnCharge) {
  ManualClock clock;
  auto t = std::make_shared<AttemptThrottle>(Limits(3, 3), clock);
  ThrottleAttempt guess1, guess2, login;
  ASSERT_TRUE(guess1.Begin(t, "alice", "10.0.0.1"));
  ASSERT_TRUE(guess2.Begin(t, "alice", "10.0.0.1"));
  ASSERT_TRUE(login.Begin(t, "alice", "10.0.0.1"));
  // All three are charged before any outcome.
  EXPECT_FALSE(Try(*t, "alice", "10.0.0.2"));
  EXPECT_FALSE(Try(*t, "bob", "10.0.0.1"));
  login.Succeeded();
  EXPECT_FALSE(login.active());
  login.Succeeded();  // a second call is a no-op, not a second refund
  // One slot back, for the user and the source; the guesses stay counted.
  EXPECT_TRUE(Try(*t, "alice", "10.0.0.1"));
  EXPECT_FALSE(Try(*t, "alice", "10.0.0.2"));
  EXPECT_FALSE(Try(*t, "bob", "10.0.0.1"));
  EXPECT_EQ(t->stats().succeeded, 1u);
}

TEST(ThrottleTest, AbandonedAttemptsStayCharged) {
  ManualClock clock;
  auto t = std::make_shared<AttemptThrottle>(Limits(2, 100), clock);
  {
    ThrottleAttempt a;
    ASSERT_TRUE(a.Begin(t, "alice", "10.0.0.1"));
    ThrottleAttempt moved = std::move(a);
    EXPECT_TRUE(moved.active());
  }  // destroyed unsettled: a failure
  {
    ThrottleAttempt b;
    ASSERT_TRUE(b.Begin(t, "alice", "10.0.0.1"));
  }
  ThrottleAttempt c;
  EXPECT_FALSE(c.Begin(t, "alice", "10.0.0.1"));
  EXPECT_FALSE(c.active());
  c.Succeeded();  // nothing to settle
  EXPECT_FALSE(Try(*t, "alice", "10.0.0.1"));
}

TEST(ThrottleTest, LateSuccessAfterTheWindowTakesNothingBack) {
  ManualClock clock;
  auto t = std::make_shared<AttemptThrottle>(Limits(2, 100, 1000), clock);
  ThrottleAttempt slow;
  ASSERT_TRUE(slow.Begin(t, "alice", "10.0.0.1"));
  clock.Advance(1000);  // the slow attempt's charge has expired
  ASSERT_TRUE(Try(*t, "alice", "10.0.0.1"));
  ASSERT_TRUE(Try(*t, "alice", "10.0.0.1"));
  slow.Succeeded();  // must not refund one of the two newer charges
  EXPECT_FALSE(Try(*t, "alice", "10.0.0.1"));
}

TEST(ThrottleTest, ParallelBeginsAreChargedBeforeAnyOutcome) {
  ManualClock clock;
  AttemptThrottle t(Limits(10, 30), clock);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 100; ++j) {
        if (Try(t, "alice", "10.0.0.1")) admitted.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(admitted.load(), 10);
  EXPECT_EQ(t.stats().admitted, 10u);
  EXPECT_EQ(t.stats().refused, 790u);

  // Many users from one source: the source budget caps them all.
  std::atomic<int> by_source{0};
  threads.clear();
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 100; ++j) {
        if (Try(t, "u" + std::to_string(i * 100 + j), "10.0.0.2")) by_source.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(by_source.load(), 30);
}

// 100,000 distinct names (each from its own source) pass through a throttle
// with the default table sizes: neither table ever holds more than its
// bound, and a victim at its limit is still refused afterwards.
TEST(ThrottleTest, MemoryBoundedUnder100000Names) {
  ManualClock clock;
  ThrottleLimits limits;  // the defaults: 10 / 30 per 60 s, 65,536 keys each
  AttemptThrottle t(limits, clock);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Try(t, "victim", "198.51.100.1"));
  ASSERT_FALSE(Try(t, "victim", "198.51.100.1"));
  size_t peak_users = 0, peak_sources = 0;
  for (uint32_t i = 0; i < 100000; ++i) {
    const std::string source = "10." + std::to_string(i >> 16) + "." +
                               std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255);
    ASSERT_TRUE(Try(t, "spray-" + std::to_string(i), source));
    if (i % 97 == 0 || i >= 65530) {
      const ThrottleStats st = t.stats();
      peak_users = std::max(peak_users, st.tracked_users);
      peak_sources = std::max(peak_sources, st.tracked_sources);
    }
    if (i % 1000 == 999) clock.Advance(1);  // 100 ms in all, inside the window
  }
  const ThrottleStats st = t.stats();
  EXPECT_EQ(st.tracked_users, limits.max_tracked_users);
  EXPECT_EQ(st.tracked_sources, limits.max_tracked_sources);
  EXPECT_LE(peak_users, limits.max_tracked_users);
  EXPECT_LE(peak_sources, limits.max_tracked_sources);
  // The victim had more charges than any sprayed name: never evicted.
  EXPECT_FALSE(Try(t, "victim", "203.0.113.9"));
  // Throttled by its window, not for ever.
  clock.Advance(60000);
  EXPECT_TRUE(Try(t, "victim", "203.0.113.9"));
}

// The eviction guarantee exactly (throttle.h): a key at k charges goes
// only once every other tracked key has reached k charges after it did;
// expired keys go first.
TEST(ThrottleTest, EvictionOrderIsExpiredThenFewestChargesThenOldest) {
  ManualClock clock;
  ThrottleLimits l = Limits(3, 1000, 1000);
  l.max_tracked_users = 4;
  AttemptThrottle t(l, clock);
  auto charge = [&](const std::string& user, int n) {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(Try(t, user, "10.0.0.1"));
  };
  charge("victim", 3);
  clock.Advance(1);
  charge("a", 3);
  charge("b", 3);
  charge("c", 2);
  ASSERT_EQ(t.stats().tracked_users, 4u);
  // A newcomer evicts the key with the fewest charges ("c"), not the victim.
  charge("new1", 1);
  EXPECT_EQ(t.stats().tracked_users, 4u);
  EXPECT_FALSE(Try(t, "victim", "10.0.0.1"));
  // "c" was forgotten: it has its whole budget again.
  clock.Advance(1);
  charge("c", 3);  // evicts new1 (one charge), c now at 3
  EXPECT_FALSE(Try(t, "victim", "10.0.0.1"));
  // Now every other key has 3 charges, all newer than the victim's: the
  // victim is the least recently charged of the fewest, and goes next.
  charge("new2", 1);
  EXPECT_TRUE(Try(t, "victim", "10.0.0.1"));

  // Expired keys go first, even with more charges than live ones.
  ManualClock clock2;
  AttemptThrottle t2(l, clock2);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Try(t2, "old", "10.0.0.1"));
  clock2.Advance(500);
  ASSERT_TRUE(Try(t2, "x", "10.0.0.1"));
  ASSERT_TRUE(Try(t2, "y", "10.0.0.1"));
  ASSERT_TRUE(Try(t2, "victim", "10.0.0.1"));
  ASSERT_TRUE(Try(t2, "victim", "10.0.0.1"));
  ASSERT_TRUE(Try(t2, "victim", "10.0.0.1"));
  clock2.Advance(500);  // "old" expires now; x, y, victim are live
  ASSERT_TRUE(Try(t2, "z", "10.0.0.1"));
  EXPECT_EQ(t2.stats().tracked_users, 4u);
  ASSERT_TRUE(Try(t2, "x", "10.0.0.1"));  // x still tracked: 2 charges now
  ASSERT_TRUE(Try(t2, "x", "10.0.0.1"));
  EXPECT_FALSE(Try(t2, "x", "10.0.0.1"));
  EXPECT_FALSE(Try(t2, "victim", "10.0.0.1"));
}

TEST(ThrottleTest, LimitsAreChecked) {
  std::string error;
  EXPECT_TRUE(CheckThrottleLimits(ThrottleLimits{}, &error));
  EXPECT_FALSE(CheckThrottleLimits(Limits(0, 30), &error));
  EXPECT_FALSE(CheckThrottleLimits(Limits(10, 0), &error));
  EXPECT_FALSE(CheckThrottleLimits(Limits(kMaxThrottleFailures + 1, 30), &error));
  EXPECT_FALSE(CheckThrottleLimits(Limits(10, 30, 0), &error));
  ThrottleLimits l;
  l.max_tracked_users = 0;
  EXPECT_FALSE(CheckThrottleLimits(l, &error));
  l.max_tracked_users = kMaxThrottleTracked + 1;
  EXPECT_FALSE(CheckThrottleLimits(l, &error));
  EXPECT_FALSE(error.empty());
}

// --- AuthServer with the real mechanisms ------------------------------------

constexpr char kRealm[] = "example.com";

std::shared_ptr<const SecretBuffer> Pw(std::string_view pw) {
  return std::make_shared<SecretBuffer>(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pw.data()), pw.size()));
}

struct World {
  World() {
    VerifierRecord r;
    EXPECT_TRUE(pake::MakeRecord("alice", kRealm, "right", KdfParams::ForTests(),
                                 SystemRng::Instance(), &r));
    EXPECT_TRUE(store->Put(r));
    EXPECT_TRUE(cmac::MakeRecord("alice", kRealm, "right", KdfParams::ForTests(),
                                 SystemRng::Instance(), &r));
    EXPECT_TRUE(store->Put(r));
  }
  ServerConfig Server(std::vector<std::vector<Mechanism>> plans) {
    ServerConfig c;
    c.realm = kRealm;
    c.mechanisms = {
        {Mechanism::kCmacPassword,
         cmac::ServerFactory({.store = store.get(), .decoy = &decoy,
                              .target = KdfParams::ForTests(), .rng = nullptr})},
        {Mechanism::kPake2Plus,
         pake::ServerFactory({.store = store.get(), .decoy = &decoy,
                              .target = KdfParams::ForTests(), .rng = nullptr})},
    };
    c.plans = std::move(plans);
    c.throttle = throttle;
    return c;
  }
  ManualClock clock;
  std::shared_ptr<AttemptThrottle> throttle =
      std::make_shared<AttemptThrottle>(Limits(3, 100), clock);
  std::shared_ptr<MemoryVerifierStore> store = std::make_shared<MemoryVerifierStore>();
  DecoySecret decoy;
};

ClientConfig Client(std::string_view password, std::vector<Mechanism> mechanisms) {
  ClientConfig c;
  c.user = "alice";
  c.realm = kRealm;
  for (Mechanism m : mechanisms) {
    if (m == Mechanism::kPake2Plus) {
      c.mechanisms.emplace_back(m, pake::ClientFactory(Pw(password), nullptr, KdfLimits::ForTests()));
    }
    if (m == Mechanism::kCmacPassword) {
      c.mechanisms.emplace_back(m, cmac::ClientFactory(Pw(password), KdfLimits::ForTests()));
    }
  }
  return c;
}

ChannelBinding Binding() { return ChannelBinding::SessionId(std::vector<uint8_t>(33, 7)); }

// Deliver moves what |from| has queued to |to|, unless |drop|.
void Deliver(AuthEndpoint& from, AuthEndpoint& to) {
  std::vector<uint8_t> bytes(from.PendingOutput().begin(), from.PendingOutput().end());
  from.ConsumeOutput(bytes.size());
  if (!bytes.empty()) (void)to.Feed(bytes);
}

// How a guesser ends its attempt once it knows the guess was wrong.
enum class End { kStall, kClose, kRefuse };  // kRefuse: sends Outcome{ok = false}

// Guess runs one attempt with |password|; the client never lets the server
// see its refusal unless |end| is kRefuse. Returns the server's error, or
// kNone if the server accepted.
AuthError Guess(World& w, std::string_view password, End end, Mechanism m,
                const std::string& source = "10.0.0.1") {
  AuthClient c(Client(password, {m}), Binding());
  AuthServer s(w.Server({{m}}), Binding(), {}, source);
  EXPECT_EQ(s.Start(), AuthError::kNone);
  EXPECT_EQ(c.Start(), AuthError::kNone);
  for (int i = 0; i < 10 && !s.failed() && !s.done(); ++i) {
    if (c.failed()) break;  // the guesser knows; it does not close
    Deliver(c, s);
    Deliver(s, c);
  }
  if (s.done()) return AuthError::kNone;
  if (s.failed()) return s.error();
  EXPECT_TRUE(c.failed());  // the client learnt the guess was wrong
  if (end == End::kClose) (void)s.OnPeerClosed();
  if (end == End::kRefuse) {
    // This client closes rather than say so; another may send its refusal.
    wire::Envelope env;
    env.mutable_outcome()->set_ok(false);
    const std::string body = env.SerializeAsString();
    std::vector<uint8_t> msg = {0, 0, static_cast<uint8_t>(body.size() >> 8),
                                static_cast<uint8_t>(body.size())};
    msg.insert(msg.end(), body.begin(), body.end());
    (void)s.Feed(msg);
  }
  // kStall: the SDK's auth_ms deadline destroys the AuthServer here.
  return s.failed() ? s.error() : AuthError::kTimeout;
}

TEST(ThrottleAuthServerTest, SpakeGuessersThatStallOrCloseAreCounted) {
  World w;
  EXPECT_EQ(Guess(w, "wrong1", End::kStall, Mechanism::kPake2Plus), AuthError::kTimeout);
  EXPECT_EQ(Guess(w, "wrong2", End::kClose, Mechanism::kPake2Plus), AuthError::kRefused);
  EXPECT_EQ(Guess(w, "wrong3", End::kRefuse, Mechanism::kPake2Plus), AuthError::kRefused);
  EXPECT_EQ(w.throttle->stats().admitted, 3u);
  // The budget is spent: the right password is refused too.
  EXPECT_EQ(Guess(w, "right", End::kRefuse, Mechanism::kPake2Plus), AuthError::kThrottled);
  EXPECT_EQ(w.throttle->stats().refused, 1u);
  w.clock.Advance(60000);
  EXPECT_EQ(Guess(w, "right", End::kRefuse, Mechanism::kPake2Plus), AuthError::kNone);
  EXPECT_EQ(w.throttle->stats().succeeded, 1u);
}

TEST(ThrottleAuthServerTest, SuccessfulLoginsAreNotCounted) {
  World w;
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(Guess(w, "right", End::kRefuse, Mechanism::kPake2Plus), AuthError::kNone);
    ASSERT_EQ(Guess(w, "right", End::kRefuse, Mechanism::kCmacPassword), AuthError::kNone);
  }
  EXPECT_EQ(w.throttle->stats().tracked_users, 0u);
}

TEST(ThrottleAuthServerTest, CmacAndCombinedPlansShareTheBudget) {
  World w;
  EXPECT_EQ(Guess(w, "wrong", End::kStall, Mechanism::kCmacPassword), AuthError::kBadProof);
  {
    // A plan of two password mechanisms, abandoned mid-way.
    AuthClient c(Client("wrong", {Mechanism::kCmacPassword, Mechanism::kPake2Plus}), Binding());
    AuthServer s(w.Server({{Mechanism::kCmacPassword, Mechanism::kPake2Plus}}), Binding(), {},
                 "10.0.0.1");
    ASSERT_EQ(s.Start(), AuthError::kNone);
    ASSERT_EQ(c.Start(), AuthError::kNone);
    Deliver(c, s);  // hello; the server answers with its choice and params
    EXPECT_EQ(s.plan().size(), 2u);
  }  // destroyed before done
  EXPECT_EQ(Guess(w, "wrong", End::kStall, Mechanism::kPake2Plus), AuthError::kTimeout);
  EXPECT_EQ(Guess(w, "right", End::kRefuse, Mechanism::kCmacPassword), AuthError::kThrottled);
  EXPECT_EQ(Guess(w, "right", End::kRefuse, Mechanism::kPake2Plus), AuthError::kThrottled);
  EXPECT_EQ(w.throttle->stats().admitted, 3u);
}

TEST(ThrottleAuthServerTest, SourceBudgetAppliesBeforeTheUsers) {
  World w;
  w.throttle = std::make_shared<AttemptThrottle>(Limits(10, 2), w.clock);
  EXPECT_EQ(Guess(w, "wrong", End::kStall, Mechanism::kPake2Plus, "192.0.2.1"),
            AuthError::kTimeout);
  EXPECT_EQ(Guess(w, "wrong", End::kStall, Mechanism::kPake2Plus, "192.0.2.1"),
            AuthError::kTimeout);
  EXPECT_EQ(Guess(w, "right", End::kRefuse, Mechanism::kPake2Plus, "192.0.2.1"),
            AuthError::kThrottled);
  // Another source still gets the user's remaining budget.
  EXPECT_EQ(Guess(w, "right", End::kRefuse, Mechanism::kPake2Plus, "192.0.2.2"),
            AuthError::kNone);
}

}  // namespace
}  // namespace tcpcrypt::auth
