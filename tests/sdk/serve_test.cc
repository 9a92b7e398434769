// Server::Serve under adversarial load: stalled and half-open handshakes,
// the pending cap, garbage during authentication, Stop with work in flight.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "auth/x509_batch/test_pki.h"
#include "core_transport/inband/connection.h"
#include "tcpcrypt/client.h"
#include "tcpcrypt/server.h"
#include "tests/sdk/test_users.h"

namespace tcpcrypt {
namespace {

using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock;

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

// RawConnect opens a plain TCP connection to 127.0.0.1:|port| and sends
// |first_bytes| (may be empty). Returns the socket or -1.
int RawConnect(uint16_t port, std::string_view first_bytes = {}) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  if (!first_bytes.empty() &&
      send(fd, first_bytes.data(), first_bytes.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(first_bytes.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

// ClosedByPeer reads (and discards) until the peer closes the connection
// (EOF or reset) or |timeout_ms| passes; returns whether it closed.
bool ClosedByPeer(int fd, int timeout_ms) {
  const auto deadline = SteadyTime::now() + milliseconds(timeout_ms);
  for (;;) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - SteadyTime::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[512];
    const ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return true;
  }
}

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeScratchDir("tcpcrypt-serve");
    ASSERT_FALSE(dir_.empty());
    users_ = dir_ + "/users.db";
    ASSERT_TRUE(testing::AddTestUser(users_, "alice", "correct horse", {.cmac = true, .pake = false}));
  }
  void TearDown() override {
    StopServer();
    for (int fd : raw_) close(fd);
    testing::RemoveScratchDir(dir_);
  }

  ServerOptions CmacServer() {
    ServerOptions o;
    o.plans = {{AuthMechanism::kCmacPassword}};
    o.users_file = users_;
    o.password_hashing = PasswordHashing::kMinimumForTestsOnly;
    o.issue_tickets = false;
    return o;
  }

  // StartServer listens on a free port and runs Serve with an echo handler
  // on a thread.
  void StartServer(const ServerOptions& o, int workers = 2) {
    auto s = Server::Create(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s.value());
    ASSERT_TRUE(server_->Listen("127.0.0.1", 0).ok());
    serving_ = std::thread([this, workers] {
      serve_status_ = server_->Serve(
          [this](std::unique_ptr<Session> session) {
            std::vector<uint8_t> buf(256);
            auto n = session->Read(buf);
            if (n.ok() && n.value() > 0 &&
                session->Write(std::span<const uint8_t>(buf.data(), n.value())).ok()) {
              ++echoed_;
            }
            (void)session->Shutdown();
          },
          workers);
    });
  }

  void StopServer() {
    if (server_ == nullptr) return;
    server_->Stop();
    if (serving_.joinable()) serving_.join();
  }

  // EchoOnce connects an authenticated client and checks one echo.
  void EchoOnce(const std::string& msg) {
    ClientOptions co;
    co.mechanisms = {AuthMechanism::kCmacPassword};
    co.user = "alice";
    co.password = std::make_shared<Password>("correct horse");
    co.min_password_hashing = PasswordHashing::kMinimumForTestsOnly;  // as the records
    co.tickets = false;
    co.resumption = false;
    co.timeouts.handshake_ms = 5000;
    co.timeouts.auth_ms = 5000;
    auto client = Client::Create(co);
    ASSERT_TRUE(client.ok());
    auto s = client.value()->Connect("127.0.0.1", server_->port());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE(s.value()->Write(Bytes(msg)).ok());
    std::vector<uint8_t> buf(256);
    auto n = s.value()->Read(buf);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf.data()), n.value()), msg);
  }

  // WaitFor polls |pred| for up to |timeout_ms|.
  template <typename Pred>
  bool WaitFor(Pred pred, int timeout_ms) {
    const auto deadline = SteadyTime::now() + milliseconds(timeout_ms);
    while (SteadyTime::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return pred();
  }

  std::string dir_, users_;
  std::unique_ptr<Server> server_;
  std::thread serving_;
  Status serve_status_;
  std::atomic<int> echoed_{0};
  std::vector<int> raw_;
};

TEST_F(ServeTest, StalledHandshakesDoNotBlockOthers) {
  ServerOptions o = CmacServer();
  o.timeouts.handshake_ms = 1000;
  StartServer(o);
  for (int i = 0; i < 50; ++i) {
    const int fd = RawConnect(server_->port());
    ASSERT_GE(fd, 0);
    raw_.push_back(fd);
  }
  // A partial ENO option: kind 69, length 5, and nothing more.
  for (int i = 0; i < 20; ++i) {
    const int fd = RawConnect(server_->port(), std::string_view("\x45\x05", 2));
    ASSERT_GE(fd, 0);
    raw_.push_back(fd);
  }
  ASSERT_TRUE(WaitFor([&] { return server_->stats().pending == 70; }, 1000))
      << server_->stats().pending;

  const auto start = SteadyTime::now();
  EchoOnce("through the crowd");
  const auto took = std::chrono::duration_cast<milliseconds>(SteadyTime::now() - start);
  EXPECT_LT(took.count(), 2000);
  // The handler counts after its write, so the client may be first.
  EXPECT_TRUE(WaitFor([&] { return echoed_.load() == 1; }, 1000));

  // After handshake_ms every stalled connection is closed and counted.
  for (int fd : raw_) EXPECT_TRUE(ClosedByPeer(fd, 3000));
  EXPECT_TRUE(WaitFor([&] { return server_->stats().pending == 0; }, 1000));
  const ServerStats st = server_->stats();
  EXPECT_EQ(st.failed, 70u);
  EXPECT_EQ(st.authenticated, 1u);
  EXPECT_EQ(st.accepted, 71u);
}

TEST_F(ServeTest, ConnectionsBeyondThePendingCapAreClosedAtOnce) {
  ServerOptions o = CmacServer();
  o.max_pending_handshakes = 10;
  o.timeouts.handshake_ms = 30000;  // the first ten stay for the whole test
  StartServer(o);
  for (int i = 0; i < 10; ++i) {
    const int fd = RawConnect(server_->port());
    ASSERT_GE(fd, 0);
    raw_.push_back(fd);
  }
  ASSERT_TRUE(WaitFor([&] { return server_->stats().pending == 10; }, 1000));
  std::vector<int> extra;
  for (int i = 0; i < 15; ++i) {
    const int fd = RawConnect(server_->port());
    ASSERT_GE(fd, 0);
    extra.push_back(fd);
    raw_.push_back(fd);
  }
  const auto start = SteadyTime::now();
  for (int fd : extra) EXPECT_TRUE(ClosedByPeer(fd, 1000));
  EXPECT_LT(std::chrono::duration_cast<milliseconds>(SteadyTime::now() - start).count(), 1000);
  // The first ten are still open.
  for (size_t i = 0; i < 10; ++i) EXPECT_FALSE(ClosedByPeer(raw_[i], 50));
  const ServerStats st = server_->stats();
  EXPECT_EQ(st.pending, 10u);
  EXPECT_EQ(st.failed, 15u);
  EXPECT_EQ(st.accepted, 25u);
}

TEST_F(ServeTest, GarbageDuringAuthenticationIsRefusedAndServingGoesOn) {
  ServerOptions o = CmacServer();
  StartServer(o);
  // A real tcpcrypt handshake, announcing authentication (a bit), then junk
  // where the hello should be.
  inband::Options io;
  io.engine.application_aware = true;
  io.handshake_timeout_ms = 5000;
  io.io_timeout_ms = 5000;
  inband::Status st;
  auto conn = inband::Connection::Connect("127.0.0.1", server_->port(), io, &st);
  ASSERT_NE(conn, nullptr) << st.message;
  std::vector<uint8_t> junk(64, 0xff);  // length 0xffffffff: oversized
  ASSERT_TRUE(conn->WriteAll(junk).ok());
  std::vector<uint8_t> buf(256);
  // The server refuses: at most its "authentication failed" outcome, then
  // the connection ends.
  ssize_t n;
  int reads = 0;
  do {
    n = conn->Read(buf, &st);
  } while (n > 0 && ++reads < 16);
  EXPECT_LE(n, 0);
  EXPECT_TRUE(WaitFor([&] { return server_->stats().failed == 1; }, 2000));
  EXPECT_EQ(server_->stats().authenticated, 0u);

  EchoOnce("still serving");
  EXPECT_EQ(server_->stats().authenticated, 1u);
  EXPECT_EQ(server_->stats().pending, 0u);
}

TEST_F(ServeTest, StopWithPendingConnectionsReturnsPromptlyAndLeaksNothing) {
  const int fds_before = CountOpenFds();
  {
    ServerOptions o = CmacServer();
    o.timeouts.handshake_ms = 30000;
    o.timeouts.auth_ms = 30000;
    StartServer(o);
    for (int i = 0; i < 30; ++i) {
      const int fd = RawConnect(server_->port(), i % 2 ? std::string_view("\x45\x05", 2)
                                                       : std::string_view());
      ASSERT_GE(fd, 0);
      raw_.push_back(fd);
    }
    // One more that finished the handshake and waits in authentication.
    inband::Options io;
    io.engine.application_aware = true;
    io.handshake_timeout_ms = 5000;
    inband::Status st;
    auto conn = inband::Connection::Connect("127.0.0.1", server_->port(), io, &st);
    ASSERT_NE(conn, nullptr) << st.message;
    ASSERT_TRUE(WaitFor([&] { return server_->stats().pending == 31; }, 2000))
        << server_->stats().pending;

    const auto start = SteadyTime::now();
    StopServer();
    const auto took =
        std::chrono::duration_cast<milliseconds>(SteadyTime::now() - start).count();
    EXPECT_LT(took, 500);
    EXPECT_TRUE(serve_status_.ok()) << serve_status_.ToString();
    const ServerStats stats = server_->stats();
    EXPECT_EQ(stats.pending, 0u);
    EXPECT_EQ(stats.failed, 31u);
    for (int fd : raw_) EXPECT_TRUE(ClosedByPeer(fd, 1000));
    for (int fd : raw_) close(fd);
    raw_.clear();
    conn->Close();
    server_.reset();
  }
  EXPECT_EQ(CountOpenFds(), fds_before);
}

// X.509: the batch signer answers from its own thread through the loop's
// wake-up eventfd, for many clients in flight at once.
TEST_F(ServeTest, ManyX509ClientsAreSignedThroughTheWakeQueue) {
  std::string error;
  ASSERT_TRUE(auth::x509::WriteServerPki(dir_, "localhost", auth::x509::PkiKeyType::kEcdsaP256,
                                         30, &error))
      << error;
  ServerOptions o;
  o.plans = {{AuthMechanism::kX509}};
  o.cert_file = dir_ + "/server.pem";
  o.key_file = dir_ + "/server.key";
  o.issue_tickets = false;
  StartServer(o, 4);
  ClientOptions co;
  co.mechanisms = {AuthMechanism::kX509};
  co.ca_file = dir_ + "/ca.pem";
  co.server_name = "localhost";
  co.tickets = false;
  co.resumption = false;
  co.timeouts.handshake_ms = 10000;
  co.timeouts.auth_ms = 10000;
  auto client = Client::Create(co);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  constexpr int kClients = 40;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto s = client.value()->Connect("127.0.0.1", server_->port());
      if (!s.ok()) {
        ADD_FAILURE() << "client " << i << ": " << s.status().ToString();
        return;
      }
      const std::string msg = "x509 client " + std::to_string(i);
      if (!s.value()->Write(Bytes(msg)).ok()) return;
      std::vector<uint8_t> buf(256);
      auto n = s.value()->Read(buf);
      if (n.ok() && std::string(reinterpret_cast<char*>(buf.data()), n.value()) == msg) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients);
  const ServerStats st = server_->stats();
  EXPECT_EQ(st.authenticated, static_cast<uint64_t>(kClients));
  EXPECT_EQ(st.failed, 0u);
  EXPECT_GE(st.root_signatures, 1u);
}

}  // namespace
}  // namespace tcpcrypt
