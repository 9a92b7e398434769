// The password throttle through the real SDK server (ServerOptions::throttle):
// a SPAKE2+ guesser that reads the server's confirmation, learns its guess
// was wrong and then stalls until the server's auth time-out (instead of
// closing) is counted, through Serve's event loop and the blocking Accept
// path alike; and 200 parallel guessing connections get no more than the
// limit through to a proof check.
//
// The guesser speaks the real protocol at the auth layer: a tcpcrypt
// connection (inband::Connection) and an auth::AuthClient, so it controls
// exactly when it writes and that it never closes.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "auth/common/auth_session.h"
#include "auth/pake2plus/pake2plus.h"
#include "core_transport/inband/connection.h"
#include "tcpcrypt/server.h"
#include "tests/sdk/test_users.h"

namespace tcpcrypt {
namespace {

using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock;

constexpr char kPassword[] = "correct horse";
constexpr int kAuthMs = 300;
// Every blocking read of the guesser gives up after this (a server that
// never answers fails the test instead of hanging it).
constexpr int kIoBoundMs = 5000;

std::shared_ptr<const SecretBuffer> Pw(std::string_view pw) {
  return std::make_shared<SecretBuffer>(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pw.data()), pw.size()));
}

// Guesser is one SPAKE2+ login attempt at the auth layer.
class Guesser {
 public:
  enum class Result { kLearntWrong, kRefused, kAccepted, kError };

  // Connect runs the tcpcrypt handshake (announcing that it authenticates,
  // RFC 8547 §4.2 a bit) and queues the hello for |user|.
  bool Connect(uint16_t port, const std::string& user, std::string_view password) {
    inband::Options opts;
    opts.engine.application_aware = true;
    opts.io_timeout_ms = kIoBoundMs;
    inband::Status st;
    conn_ = inband::Connection::Connect("127.0.0.1", port, std::move(opts), &st);
    if (conn_ == nullptr) {
      ADD_FAILURE() << st.message;
      return false;
    }
    auth::ClientConfig cc;
    cc.user = user;
    cc.realm = "127.0.0.1";  // the host dialed, as the test store enrolls it
    cc.mechanisms = {{auth::Mechanism::kPake2Plus, auth::pake::ClientFactory(Pw(password), nullptr, auth::KdfLimits::ForTests())}};
    client_ = std::make_unique<auth::AuthClient>(
        std::move(cc), auth::ChannelBinding::SessionId(conn_->session_id()));
    return client_->Start() == auth::AuthError::kNone;
  }

  // Flush writes what the client has queued.
  bool Flush() {
    const auth::ByteSpan out = client_->PendingOutput();
    if (out.empty()) return true;
    const size_t n = out.size();
    if (!conn_->WriteAll(out).ok()) return false;
    client_->ConsumeOutput(n);
    return true;
  }

  // RunUntil reads and answers until |stop| holds or the client finished.
  template <typename Stop>
  Result RunUntil(Stop stop) {
    std::vector<uint8_t> buf(4096);
    for (;;) {
      if (stop()) return Result::kError;  // before sending anything more
      if (!Flush()) return Result::kError;
      if (client_->done()) return Result::kAccepted;
      if (client_->failed()) return Outcome();
      inband::Status st;
      const ssize_t n = conn_->Read(buf, &st);
      if (n <= 0) return Result::kError;  // closed before any result
      (void)client_->Feed(auth::ByteSpan(buf.data(), static_cast<size_t>(n)));
    }
  }

  // Run plays the whole attempt: the result is known once the client has
  // checked the server's confirmation (kLearntWrong or kAccepted), or the
  // server refused before the exchange (kRefused: throttled).
  Result Run() {
    return RunUntil([] { return false; });
  }

  // Admitted reports, once the server answered the hello, whether it
  // chose a plan (the attempt goes to a proof check) or refused.
  bool AwaitAnswer(bool* out_admitted) {
    const Result r = RunUntil([this] { return !client_->plan().empty(); });
    if (!client_->plan().empty()) {
      *out_admitted = true;
      return true;
    }
    *out_admitted = false;
    return r == Result::kRefused;
  }

  // StallUntilClosed sends nothing more, does not close, and waits for the
  // server to close the connection (its auth time-out). Returns how long
  // that took, or -1 if it did not close within kIoBoundMs.
  int64_t StallUntilClosed() {
    const auto t0 = SteadyTime::now();
    std::vector<uint8_t> buf(4096);
    for (;;) {
      inband::Status st;
      const ssize_t n = conn_->Read(buf, &st);
      if (n > 0) continue;  // nothing is expected; keep waiting
      if (n < 0 && st.kind == inband::Status::Kind::kTimeout) return -1;
      return std::chrono::duration_cast<milliseconds>(SteadyTime::now() - t0).count();
    }
  }

  void Close() { conn_.reset(); }
  const auth::AuthClient& client() const { return *client_; }

 private:
  Result Outcome() const {
    // kBadProof: the server's confirmation did not verify (a wrong guess);
    // kRefused: Outcome{ok = false} from the server.
    if (client_->error() == auth::AuthError::kBadProof) return Result::kLearntWrong;
    if (client_->error() == auth::AuthError::kRefused) return Result::kRefused;
    return Result::kError;
  }

  std::unique_ptr<inband::Connection> conn_;
  std::unique_ptr<auth::AuthClient> client_;
};

enum class Path { kServe, kAccept };

class ThrottleFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeScratchDir("tcpcrypt-throttle");
    ASSERT_FALSE(dir_.empty());
    users_ = dir_ + "/users.db";
    ASSERT_TRUE(
        testing::AddTestUser(users_, "alice", kPassword, {.cmac = false, .pake = true}));
  }
  void TearDown() override {
    if (server_ != nullptr) {
      server_->Stop();
      if (serving_.joinable()) serving_.join();
    }
    testing::RemoveScratchDir(dir_);
  }

  ServerOptions PakeServer() {
    ServerOptions o;
    o.plans = {{AuthMechanism::kPake}};
    o.users_file = users_;
    o.password_hashing = PasswordHashing::kMinimumForTestsOnly;
    o.issue_tickets = false;
    o.timeouts.auth_ms = kAuthMs;
    return o;
  }

  void Start(const ServerOptions& o, Path path) {
    auto s = Server::Create(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s.value());
    ASSERT_TRUE(server_->Listen("127.0.0.1", 0).ok());
    if (path == Path::kServe) {
      serving_ = std::thread([this] {
        (void)server_->Serve([](std::unique_ptr<Session> session) { (void)session->Shutdown(); },
                             2);
      });
    } else {
      serving_ = std::thread([this] {
        for (;;) {
          auto session = server_->Accept();
          if (!session.ok()) return;  // CANCELLED after Stop()
          (void)session.value()->Shutdown();
        }
      });
    }
  }

  // RunParallel: 200 guessing connections through Serve. All 200 hellos
  // are on the wire before any proof; returns how many the server let
  // through to the mechanism (the client got a ServerChoice) and checks
  // that the server's counters agree.
  uint32_t RunParallel(bool distinct_users) {
    constexpr uint32_t kConnections = 200;
    const uint16_t port = server_->port();
    std::vector<std::unique_ptr<Guesser>> guessers;
    for (uint32_t i = 0; i < kConnections; ++i) {
      auto g = std::make_unique<Guesser>();
      if (!g->Connect(port, distinct_users ? "user" + std::to_string(i) : "alice",
                      "guess " + std::to_string(i))) {
        return ~0u;
      }
      guessers.push_back(std::move(g));
    }
    for (auto& g : guessers) EXPECT_TRUE(g->Flush());  // 200 hellos, no proof yet
    uint32_t admitted = 0;
    for (auto& g : guessers) {
      bool in = false;
      EXPECT_TRUE(g->AwaitAnswer(&in)) << g->client().detail();
      admitted += in ? 1 : 0;
    }
    const ServerStats st = server_->stats();
    EXPECT_EQ(st.password_attempts, admitted);
    EXPECT_EQ(st.throttled, kConnections - admitted);
    EXPECT_EQ(st.authenticated, 0u);
    for (auto& g : guessers) g->Close();  // the admitted ones are aborts
    return admitted;
  }

  std::string dir_, users_;
  std::unique_ptr<Server> server_;
  std::thread serving_;
};

class ThrottleSdkTest : public ThrottleFixture, public ::testing::WithParamInterface<Path> {};

// Acceptance 2: a SPAKE2+ guesser that times out instead of closing is
// throttled after the configured number of attempts, and the right
// password is refused too until the window has passed.
TEST_P(ThrottleSdkTest, StallingSpakeGuesserIsThrottled) {
  constexpr uint32_t kLimit = 3;
  constexpr uint64_t kWindowMs = 6000;
  ServerOptions o = PakeServer();
  o.throttle.max_failures_per_user = kLimit;
  o.throttle.window_ms = kWindowMs;
  Start(o, GetParam());
  const uint16_t port = server_->port();
  const auto t0 = SteadyTime::now();  // every charge below is made after this

  for (uint32_t i = 0; i < kLimit; ++i) {
    Guesser g;
    ASSERT_TRUE(g.Connect(port, "alice", "guess " + std::to_string(i)));
    // The guesser reads the server's confirmation and learns it was wrong...
    ASSERT_EQ(g.Run(), Guesser::Result::kLearntWrong) << g.client().detail();
    // ... then stalls; the server's auth time-out closes the connection.
    const int64_t waited = g.StallUntilClosed();
    EXPECT_GE(waited, 0) << "the server did not close a stalled attempt";
  }
  ServerStats st = server_->stats();
  EXPECT_EQ(st.password_attempts, kLimit);
  EXPECT_EQ(st.throttled, 0u);
  EXPECT_EQ(st.authenticated, 0u);

  // The budget is spent: the right password is refused before any exchange,
  // exactly like a wrong one from the client's side.
  {
    Guesser g;
    ASSERT_TRUE(g.Connect(port, "alice", kPassword));
    ASSERT_EQ(g.Run(), Guesser::Result::kRefused) << g.client().detail();
    EXPECT_TRUE(g.client().plan().empty());  // no ServerChoice, no proof
  }
  ASSERT_LT(SteadyTime::now() - t0, milliseconds(kWindowMs))
      << "the machine was too slow for this window; the check above is void";
  st = server_->stats();
  EXPECT_EQ(st.throttled, 1u);
  EXPECT_EQ(st.password_attempts, kLimit);

  // Until the window has passed (no refused try is charged), then it works.
  Guesser::Result r = Guesser::Result::kRefused;
  int tries = 0;
  while (r == Guesser::Result::kRefused &&
         SteadyTime::now() - t0 < milliseconds(kWindowMs + 10000)) {
    std::this_thread::sleep_for(milliseconds(250));  // time must pass: no signal to wait for
    Guesser g;
    ASSERT_TRUE(g.Connect(port, "alice", kPassword));
    r = g.Run();
    ++tries;
  }
  ASSERT_EQ(r, Guesser::Result::kAccepted);
  EXPECT_GE(SteadyTime::now() - t0, milliseconds(kWindowMs));
  st = server_->stats();
  EXPECT_EQ(st.password_attempts, kLimit + 1);
  EXPECT_EQ(st.throttled, 1u + static_cast<uint64_t>(tries - 1));
}

INSTANTIATE_TEST_SUITE_P(BothPaths, ThrottleSdkTest,
                         ::testing::Values(Path::kServe, Path::kAccept),
                         [](const ::testing::TestParamInfo<Path>& p) {
                           return p.param == Path::kServe ? "Serve" : "Accept";
                         });

using ThrottleParallelTest = ThrottleFixture;

// Acceptance 2: 200 parallel guessing connections get no more than the
// limit through to a proof check (exactly the limit: none of them settles).
TEST_F(ThrottleParallelTest, TwoHundredGuessersOneUser) {
  ServerOptions o = PakeServer();
  o.timeouts.auth_ms = 30000;  // the hellos, not the clock, decide here
  Start(o, Path::kServe);
  EXPECT_EQ(RunParallel(false), o.throttle.max_failures_per_user);  // 10
}

TEST_F(ThrottleParallelTest, TwoHundredGuessersDistinctUsersOneSource) {
  ServerOptions o = PakeServer();
  o.timeouts.auth_ms = 30000;
  Start(o, Path::kServe);
  EXPECT_EQ(RunParallel(true), o.throttle.max_failures_per_source);  // 30
}

}  // namespace
}  // namespace tcpcrypt
