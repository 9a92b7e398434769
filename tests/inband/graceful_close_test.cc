// No lost replies (issue 9, point 6), deterministic cases over loopback:
// a reset from a peer that closed must not destroy what it sent before, and
// our own Close() after Shutdown() must not reset the peer.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core_transport/inband/connection.h"

namespace tcpcrypt::inband {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Options TestOptions() {
  Options o;
  o.handshake_timeout_ms = 10000;
  o.io_timeout_ms = 10000;
  return o;
}

struct Pair {
  std::unique_ptr<Listener> listener;
  std::unique_ptr<Connection> client;
  std::unique_ptr<Connection> server;
};

Pair Connected() {
  Pair p;
  Status st;
  p.listener = Listener::Listen("127.0.0.1", 0, 4, &st);
  if (p.listener == nullptr) return p;
  std::thread t([&] {
    Status cs;
    p.client = Connection::Connect("127.0.0.1", p.listener->port(), TestOptions(), &cs);
  });
  p.server = p.listener->Accept(TestOptions(), &st, 10000);
  if (p.server != nullptr && !p.server->Handshake().ok()) p.server.reset();
  t.join();
  return p;
}

// WaitHangup waits (bounded) until |fd| reports POLLHUP: both directions
// are over, by FIN or by reset.
bool WaitHangup(int fd) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLRDHUP, 0};
    if (::poll(&p, 1, 100) > 0 && (p.revents & (POLLHUP | POLLERR)) != 0) return true;
  }
  return false;
}

int PendingSocketError(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -1;
  return err;
}

std::string ReadToEof(Connection& c, Status* st) {
  std::string got;
  std::vector<uint8_t> buf(4096);
  for (;;) {
    const ssize_t n = c.Read(buf, st);
    if (n <= 0) {
      if (n < 0) got += "<error>";
      return got;
    }
    got.append(reinterpret_cast<const char*>(buf.data()), static_cast<size_t>(n));
  }
}

// The peer replies, sends its FINp and then resets the connection (it
// closed with our bytes unread) before we read anything: our Shutdown may
// fail (the FINp cannot be sent), but the reply and the authenticated end
// of file that had arrived stay readable.
TEST(GracefulCloseTest, ResetAfterTheReplyKeepsTheReplyAndTheEof) {
  Pair p = Connected();
  ASSERT_NE(p.client, nullptr);
  ASSERT_NE(p.server, nullptr);
  ASSERT_TRUE(p.client->WriteAll(Bytes("request")).ok());
  std::vector<uint8_t> buf(64);
  Status st;
  ASSERT_EQ(p.server->Read(buf, &st), 7) << st.message;
  ASSERT_TRUE(p.server->WriteAll(Bytes("the reply")).ok());
  ASSERT_TRUE(p.server->Shutdown().ok());
  // A second request the server never reads, then an abortive close.
  ASSERT_TRUE(p.client->WriteAll(Bytes("more")).ok());
  const linger abort{1, 0};
  ASSERT_EQ(::setsockopt(p.server->fd(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort), 0);
  p.server->Close();
  ASSERT_TRUE(WaitHangup(p.client->fd()));
  // The reset arrived (EPIPE: Linux's name for it after the peer's FIN).
  const int err = PendingSocketError(p.client->fd());
  ASSERT_TRUE(err == ECONNRESET || err == EPIPE) << err;

  (void)p.client->Shutdown();  // our FINp cannot be delivered any more
  EXPECT_EQ(ReadToEof(*p.client, &st), "the reply") << st.message;
  EXPECT_TRUE(st.ok()) << st.message;
  std::vector<uint8_t> again(8);
  EXPECT_EQ(p.client->Read(again, &st), 0);  // EOF stays EOF
}

// Close() after Shutdown() drains what the peer still sends until its end
// of stream, so close() sends no reset: the peer's socket holds no error.
TEST(GracefulCloseTest, CloseAfterShutdownDoesNotResetThePeer) {
  Pair p = Connected();
  ASSERT_NE(p.client, nullptr);
  ASSERT_NE(p.server, nullptr);
  ASSERT_TRUE(p.client->WriteAll(Bytes("request")).ok());
  std::vector<uint8_t> buf(7);
  Status st;
  ASSERT_EQ(p.server->Read(buf, &st), 7) << st.message;
  // Bytes the server will not read, then the client's half-close.
  ASSERT_TRUE(p.client->WriteAll(std::vector<uint8_t>(100000, 7)).ok());
  ASSERT_TRUE(p.client->Shutdown().ok());
  ASSERT_TRUE(p.server->WriteAll(Bytes("the reply")).ok());
  ASSERT_TRUE(p.server->Shutdown().ok());
  const auto start = std::chrono::steady_clock::now();
  p.server->Close();  // reads once, replies, closes
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::milliseconds(kCloseDrainMs + 1000));
  ASSERT_TRUE(WaitHangup(p.client->fd()));
  EXPECT_EQ(PendingSocketError(p.client->fd()), 0);  // FIN, not reset
  EXPECT_EQ(ReadToEof(*p.client, &st), "the reply") << st.message;
  EXPECT_TRUE(st.ok()) << st.message;
  EXPECT_FALSE(p.client->peer_reset());
}

// The drain is bounded: a peer that keeps the connection open and silent
// delays Close() by at most kCloseDrainMs.
TEST(GracefulCloseTest, DrainIsBoundedInTime) {
  Pair p = Connected();
  ASSERT_NE(p.client, nullptr);
  ASSERT_NE(p.server, nullptr);
  ASSERT_TRUE(p.server->Shutdown().ok());
  const auto start = std::chrono::steady_clock::now();
  p.server->Close();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(kCloseDrainMs - 10));
  EXPECT_LT(took, std::chrono::milliseconds(kCloseDrainMs + 1000));
  Status st;
  EXPECT_EQ(ReadToEof(*p.client, &st), "");
  EXPECT_TRUE(st.ok()) << st.message;
}

// ... and bounded in bytes: a peer that floods does not keep Close() busy.
TEST(GracefulCloseTest, DrainIsBoundedInBytes) {
  Pair p = Connected();
  ASSERT_NE(p.client, nullptr);
  ASSERT_NE(p.server, nullptr);
  ASSERT_TRUE(p.server->Shutdown().ok());
  std::atomic<bool> stop{false};
  std::atomic<bool> started{false};
  std::thread flood([&] {
    std::vector<uint8_t> chunk(65536, 1);
    while (!stop.load() && p.client->WriteAll(chunk).ok()) started = true;
    started = true;
  });
  while (!started.load()) std::this_thread::yield();
  const auto start = std::chrono::steady_clock::now();
  p.server->Close();
  const auto took = std::chrono::steady_clock::now() - start;
  stop = true;
  flood.join();
  EXPECT_LT(took, std::chrono::milliseconds(kCloseDrainMs + 1000));
}

}  // namespace
}  // namespace tcpcrypt::inband
