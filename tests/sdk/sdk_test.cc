// The public API end to end on loopback: Client, Server, Session, policies.
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "tcpcrypt/client.h"
#include "tcpcrypt/server.h"
#include "tests/sdk/test_users.h"

namespace tcpcrypt {
namespace {

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

int CountOpenFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

class SdkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeScratchDir("tcpcrypt-sdk");
    ASSERT_FALSE(dir_.empty());
    users_ = dir_ + "/users.db";
    ASSERT_TRUE(testing::AddTestUser(users_, "alice", "correct horse"));
  }
  void TearDown() override { testing::RemoveScratchDir(dir_); }

  ServerOptions PasswordServer(AuthMechanism m) {
    ServerOptions o;
    o.plans = {{m}};
    o.users_file = users_;
    o.password_hashing = PasswordHashing::kMinimumForTestsOnly;  // as the records
    return o;
  }
  ClientOptions PasswordClient(AuthMechanism m, std::string_view pw = "correct horse") {
    ClientOptions o;
    o.mechanisms = {m};
    o.user = "alice";
    o.password = std::make_shared<Password>(pw);
    o.min_password_hashing = PasswordHashing::kMinimumForTestsOnly;  // as the records
    return o;
  }

  std::string dir_, users_;
};

// Runs one Accept on a thread and one Connect.
struct Pair {
  StatusOr<std::unique_ptr<Session>> client = Status(StatusCode::kUnknown, "not run");
  StatusOr<std::unique_ptr<Session>> server = Status(StatusCode::kUnknown, "not run");
};

Pair ConnectOnce(Server& server, Client& client) {
  Pair p;
  auto s = std::async(std::launch::async, [&server] { return server.Accept(); });
  p.client = client.Connect("127.0.0.1", server.port());
  if (!p.client.ok()) {
    server.Stop();
  }
  p.server = s.get();
  return p;
}

TEST_F(SdkTest, PakeLoginEndToEnd) {
  auto server = Server::Create(PasswordServer(AuthMechanism::kPake));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
  auto client = Client::Create(PasswordClient(AuthMechanism::kPake));
  ASSERT_TRUE(client.ok()) << client.status().ToString();

  Pair p = ConnectOnce(*server.value(), *client.value());
  ASSERT_TRUE(p.client.ok()) << p.client.status().ToString();
  ASSERT_TRUE(p.server.ok()) << p.server.status().ToString();
  Session& c = *p.client.value();
  Session& s = *p.server.value();
  EXPECT_EQ(c.channel(), Channel::kTcpcrypt);
  ASSERT_TRUE(c.session_id().ok());
  EXPECT_EQ(c.session_id().value(), s.session_id().value());
  EXPECT_EQ(c.session_id().value().size(), 33u);
  ASSERT_TRUE(s.peer().has_value());
  EXPECT_EQ(s.peer()->name, "alice");
  EXPECT_EQ(s.peer()->mechanism, AuthMechanism::kPake);
  ASSERT_TRUE(c.peer().has_value());
  EXPECT_EQ(c.peer()->name, "127.0.0.1");  // the realm: the host as dialed
  EXPECT_TRUE(c.peer_application_aware());
  EXPECT_TRUE(s.peer_application_aware());

  ASSERT_TRUE(c.Write(Bytes("hello bank")).ok());
  ASSERT_TRUE(c.Shutdown().ok());
  std::vector<uint8_t> buf(64);
  std::string got;
  for (;;) {
    auto n = s.Read(buf);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (n.value() == 0) break;
    got.append(reinterpret_cast<char*>(buf.data()), n.value());
  }
  EXPECT_EQ(got, "hello bank");
  EXPECT_EQ(server.value()->stats().authenticated, 1u);

  // A second connection from the same client: resumed transport, ticket.
  Pair q = ConnectOnce(*server.value(), *client.value());
  ASSERT_TRUE(q.client.ok()) << q.client.status().ToString();
  ASSERT_TRUE(q.server.ok()) << q.server.status().ToString();
  EXPECT_TRUE(q.client.value()->resumed());
  EXPECT_TRUE(q.client.value()->ticket_used());
  EXPECT_EQ(q.server.value()->peer()->name, "alice");
  EXPECT_NE(q.client.value()->session_id().value(), c.session_id().value());
}

TEST_F(SdkTest, WrongPasswordIsUnauthenticatedAndServerKeepsServing) {
  auto server = Server::Create(PasswordServer(AuthMechanism::kCmacPassword));
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
  auto bad = Client::Create(PasswordClient(AuthMechanism::kCmacPassword, "guess"));
  auto good = Client::Create(PasswordClient(AuthMechanism::kCmacPassword));
  ASSERT_TRUE(bad.ok() && good.ok());
  // Accept returns only good sessions: the bad one is counted and skipped.
  auto accepted = std::async(std::launch::async, [&] { return server.value()->Accept(); });
  auto b = bad.value()->Connect("127.0.0.1", server.value()->port());
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kUnauthenticated) << b.status().ToString();
  auto g = good.value()->Connect("127.0.0.1", server.value()->port());
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  auto s = accepted.get();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.value()->peer()->name, "alice");
  EXPECT_EQ(server.value()->stats().failed, 1u);
}

// A plain TCP server: accepts and echoes whatever arrives.
struct PlainEchoServer {
  PlainEchoServer() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    listen(fd, 8);
    thread = std::thread([this] {
      for (;;) {
        const int c = accept(fd, nullptr, nullptr);
        if (c < 0) return;
        echoers.emplace_back([c] {
          char buf[4096];
          ssize_t n;
          while ((n = read(c, buf, sizeof(buf))) > 0) (void)!write(c, buf, static_cast<size_t>(n));
          close(c);
        });
      }
    });
  }
  ~PlainEchoServer() {
    shutdown(fd, SHUT_RDWR);
    close(fd);
    thread.join();
    for (auto& t : echoers) t.join();
  }
  int fd = -1;
  uint16_t port = 0;
  std::thread thread;
  std::vector<std::thread> echoers;
};

TEST_F(SdkTest, RequireRefusesAPlainServerPreferFallsBack) {
  PlainEchoServer plain;
  ClientOptions require;
  require.timeouts.handshake_ms = 2000;
  auto c1 = Client::Create(require);
  ASSERT_TRUE(c1.ok());
  auto r = c1.value()->Connect("127.0.0.1", plain.port);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();

  ClientOptions prefer;
  prefer.encryption = Encryption::kPrefer;
  prefer.timeouts.handshake_ms = 2000;
  auto c2 = Client::Create(prefer);
  ASSERT_TRUE(c2.ok());
  auto p = c2.value()->Connect("127.0.0.1", plain.port);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p.value()->channel(), Channel::kPlain);
  auto sid = p.value()->session_id();
  ASSERT_FALSE(sid.ok());
  EXPECT_EQ(sid.status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(p.value()->Write(Bytes("ping")).ok());
  ASSERT_TRUE(p.value()->Shutdown().ok());
  std::vector<uint8_t> buf(16);
  auto n = p.value()->Read(buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf.data()), n.value()), "ping");
  p.value()->Close();
}

TEST_F(SdkTest, MandatoryAuthenticationRefusesAClientThatOffersNone) {
  auto server = Server::Create(PasswordServer(AuthMechanism::kPake));
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
  auto anonymous = Client::Create(ClientOptions{});
  ASSERT_TRUE(anonymous.ok());
  auto accepted = std::async(std::launch::async, [&] { return server.value()->Accept(); });
  auto r = anonymous.value()->Connect("127.0.0.1", server.value()->port());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  server.value()->Stop();
  auto s = accepted.get();
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(server.value()->stats().failed, 1u);
}

TEST_F(SdkTest, APeerSpeakingNeitherTcpcryptNorTlsIsRefusedAndServingGoesOn) {
  auto server = Server::Create(PasswordServer(AuthMechanism::kPake));
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
  auto accepted = std::async(std::launch::async, [&] { return server.value()->Accept(); });
  // An HTTP client: its first byte is 'G', neither ENO (69) nor TLS (22).
  const int raw = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(server.value()->port());
  ASSERT_EQ(connect(raw, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  const char kHttp[] = "GET / HTTP/1.0\r\n\r\n";
  ASSERT_EQ(write(raw, kHttp, sizeof(kHttp) - 1), static_cast<ssize_t>(sizeof(kHttp) - 1));
  char c;
  EXPECT_LE(read(raw, &c, 1), 0);  // closed without a byte of reply
  close(raw);
  // The server goes on serving real clients.
  auto client = Client::Create(PasswordClient(AuthMechanism::kPake));
  auto good = client.value()->Connect("127.0.0.1", server.value()->port());
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  auto s = accepted.get();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s.value()->peer()->name, "alice");
  EXPECT_EQ(server.value()->stats().failed, 1u);
}

TEST_F(SdkTest, OptionalAuthenticationServesAnonymousClients) {
  ServerOptions o = PasswordServer(AuthMechanism::kPake);
  o.require_authentication = false;
  auto server = Server::Create(o);
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
  auto anonymous = Client::Create(ClientOptions{});
  Pair p = ConnectOnce(*server.value(), *anonymous.value());
  ASSERT_TRUE(p.client.ok()) << p.client.status().ToString();
  ASSERT_TRUE(p.server.ok()) << p.server.status().ToString();
  EXPECT_FALSE(p.server.value()->peer().has_value());
  EXPECT_EQ(p.client.value()->channel(), Channel::kTcpcrypt);
}

TEST_F(SdkTest, InvalidOptionsAreRefusedClearly) {
  ClientOptions c = PasswordClient(AuthMechanism::kPake);
  c.password.reset();
  auto r = Client::Create(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  ServerOptions s;
  s.plans = {{AuthMechanism::kX509}};
  auto q = Server::Create(s);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("cert_file"), std::string::npos);
  ServerOptions d;
  d.encryption = Encryption::kDisable;
  d.plans = {{AuthMechanism::kPake}};
  d.users_file = users_;
  EXPECT_EQ(Server::Create(d).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SdkTest, FiveHundredConcurrentAuthenticatedClients) {
  const int fds_before = CountOpenFds();
  const int kClients = getenv("SDK_CLIENTS") ? atoi(getenv("SDK_CLIENTS")) : 500;
  {
    ServerOptions so = PasswordServer(AuthMechanism::kCmacPassword);
    so.issue_tickets = false;
    // Every login in flight counts against the throttle until it succeeds
    // (ThrottleOptions): 500 at once for one user from one address need
    // budgets that large.
    so.throttle.max_failures_per_user = 1024;
    so.throttle.max_failures_per_source = 1024;
    auto server = Server::Create(so);
    ASSERT_TRUE(server.ok());
    ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
    std::atomic<int> echoed{0};
    std::thread serving([&] {
      Status st = server.value()->Serve([&](std::unique_ptr<Session> s) {
        std::vector<uint8_t> buf(256);
        auto n = s->Read(buf);
        if (n.ok() && n.value() > 0 &&
            s->Write(std::span<const uint8_t>(buf.data(), n.value())).ok()) {
          ++echoed;
        }
        (void)s->Shutdown();
      });
      EXPECT_TRUE(st.ok()) << st.ToString();
    });
    ClientOptions co = PasswordClient(AuthMechanism::kCmacPassword);
    co.tickets = false;
    co.resumption = false;
    co.timeouts.handshake_ms = 60000;
    co.timeouts.auth_ms = 60000;
    auto client = Client::Create(co);
    ASSERT_TRUE(client.ok());
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kClients; ++i) {
      threads.emplace_back([&, i] {
        auto s = client.value()->Connect("127.0.0.1", server.value()->port());
        if (!s.ok()) {
          ADD_FAILURE() << "client " << i << ": " << s.status().ToString();
          return;
        }
        const std::string msg = "client " + std::to_string(i);
        if (!s.value()->Write(Bytes(msg)).ok()) return;
        std::vector<uint8_t> buf(256);
        auto n = s.value()->Read(buf);
        if (n.ok() && std::string(reinterpret_cast<char*>(buf.data()), n.value()) == msg) ++ok;
      });
    }
    for (auto& t : threads) t.join();
    server.value()->Stop();
    serving.join();
    EXPECT_EQ(ok.load(), kClients);
    EXPECT_EQ(echoed.load(), kClients);
    const ServerStats stats = server.value()->stats();
    EXPECT_EQ(stats.authenticated, static_cast<uint64_t>(kClients));
    EXPECT_EQ(stats.pending, 0u);
  }
  // Nothing left behind: every socket and eventfd is closed again.
  EXPECT_EQ(CountOpenFds(), fds_before);
}

}  // namespace
}  // namespace tcpcrypt

namespace tcpcrypt {
namespace {

// Issue 9 (point 8): a session whose authentication failed leaves no
// resumption state on either side. Carol is unknown at first (her login
// fails after a full handshake that cached ss[1] on both sides); once she
// is enrolled, her next connection must be a fresh handshake, and only the
// one after that resumes.
TEST_F(SdkTest, FailedAuthenticationLeavesNoResumptionState) {
  ServerOptions so = PasswordServer(AuthMechanism::kCmacPassword);
  so.issue_tickets = false;
  auto server = Server::Create(so);
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
  ClientOptions co = PasswordClient(AuthMechanism::kCmacPassword, "carol's password");
  co.user = "carol";
  co.tickets = false;
  auto client = Client::Create(co);
  ASSERT_TRUE(client.ok());
  // Server::Accept skips failed clients (it returns the next good one), so
  // one Accept covers the refused attempt and the fresh one.
  auto accepted = std::async(std::launch::async, [&] { return server.value()->Accept(); });
  auto refused = client.value()->Connect("127.0.0.1", server.value()->port());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);

  ASSERT_TRUE(testing::AddTestUser(users_, "carol", "carol's password"));
  auto fresh = client.value()->Connect("127.0.0.1", server.value()->port());
  auto s1 = accepted.get();
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  ASSERT_TRUE(s1.ok()) << s1.status().ToString();
  EXPECT_FALSE(fresh.value()->resumed());  // nothing survived the failure
  EXPECT_FALSE(s1.value()->resumed());
  auto accepted2 = std::async(std::launch::async, [&] { return server.value()->Accept(); });
  auto resumed = client.value()->Connect("127.0.0.1", server.value()->port());
  auto s2 = accepted2.get();
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_TRUE(resumed.value()->resumed());  // resumption itself works here
}

}  // namespace
}  // namespace tcpcrypt
