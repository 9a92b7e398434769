// connection_test.cc: the in-band carrier over real loopback sockets.
//
// Every blocking call in these tests is bounded (accept, handshake and I/O
// time-outs), so a broken carrier fails a test instead of hanging the suite.
#include "core_transport/inband/connection.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core_transport/engine/engine.h"
#include "core_transport/inband/keylog.h"

namespace tcpcrypt::inband {
namespace {

constexpr int kTestTimeoutMs = 10000;

Options MakeOptions(std::vector<Tep> teps = {Tep::kCurve25519},
                    std::vector<Cipher> ciphers = {Cipher::kAes128Gcm}) {
  Options o;
  o.engine.teps = std::move(teps);
  o.engine.ciphers = std::move(ciphers);
  o.handshake_timeout_ms = kTestTimeoutMs;
  o.io_timeout_ms = kTestTimeoutMs;
  return o;
}

std::vector<uint8_t> Pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x);
  }
  return v;
}

std::vector<uint8_t> Bytes(std::string_view s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

// ReadExact reads exactly |n| bytes unless EOF or an error comes first.
std::vector<uint8_t> ReadExact(Connection& c, size_t n, Status* st) {
  std::vector<uint8_t> out(n);
  size_t got = 0;
  *st = Status::Ok();
  while (got < n) {
    const ssize_t r = c.Read(std::span<uint8_t>(out).subspan(got), st);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

// ReadToEof reads until the authenticated end of file or an error.
std::vector<uint8_t> ReadToEof(Connection& c, Status* st) {
  std::vector<uint8_t> out;
  std::vector<uint8_t> buf(64 << 10);
  for (;;) {
    const ssize_t r = c.Read(buf, st);
    if (r <= 0) {
      if (r == 0) *st = Status::Ok();
      return out;
    }
    out.insert(out.end(), buf.begin(), buf.begin() + r);
  }
}

std::unique_ptr<Listener> ListenLoopback() {
  Status st;
  auto l = Listener::Listen("127.0.0.1", 0, 16, &st);
  EXPECT_NE(l, nullptr) << st.message;
  if (l != nullptr) {
    EXPECT_NE(l->port(), 0);
  }
  return l;
}

// --- raw sockets, for peers that misbehave --------------------------------

UniqueFd RawConnect(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(fd) << std::strerror(errno);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0)
      << std::strerror(errno);
  return fd;
}

// RawListen listens on 127.0.0.1 with a kernel-chosen port.
UniqueFd RawListen(uint16_t* out_port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(fd);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(fd.get(), 4), 0);
  socklen_t len = sizeof a;
  EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  *out_port = ntohs(a.sin_port);
  return fd;
}

// RawAccept waits up to kTestTimeoutMs for a connection.
UniqueFd RawAccept(int listen_fd) {
  pollfd p{listen_fd, POLLIN, 0};
  if (::poll(&p, 1, kTestTimeoutMs) != 1) return UniqueFd();
  return UniqueFd(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
}

bool RawSendAll(int fd, ByteSpan data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data = data.subspan(static_cast<size_t>(n));
  }
  return true;
}

// RawEngineClient runs a real tcpcrypt handshake over a plain socket with
// its own Engine, so a test can then misbehave at the TCP level.
struct RawEngineClient {
  UniqueFd fd;
  Engine engine;

  explicit RawEngineClient(uint16_t port)
      : fd(RawConnect(port)),
        engine(Engine::Role::kActive, MakeOptions().engine,
               SystemRng::Instance(), SteadyClock::Instance()) {}

  bool Flush() {
    const bool ok = RawSendAll(fd.get(), engine.PendingOutput());
    engine.ConsumeOutput(engine.PendingOutput().size());
    return ok;
  }

  bool Handshake() {
    if (engine.Start() != Error::kNone || !Flush()) return false;
    while (!engine.handshake_done()) {
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, kTestTimeoutMs) != 1) return false;
      MutableByteSpan buf = engine.InputBuffer();
      const ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
      if (n <= 0) return false;
      if (engine.CommitInput(static_cast<size_t>(n)) != Error::kNone) {
        return false;
      }
      if (!Flush()) return false;
    }
    return true;
  }
};

// --- handshake and data, every TEP x cipher ---------------------------------

class TepCipherTest : public ::testing::TestWithParam<std::tuple<Tep, Cipher>> {
};

TEST_P(TepCipherTest, SameSessionIdAndDataBothWays) {
  const Tep tep = std::get<0>(GetParam());
  const Cipher cipher = std::get<1>(GetParam());
  auto listener = ListenLoopback();
  ASSERT_NE(listener, nullptr);
  const std::vector<uint8_t> to_server = Pattern(300000, 1);
  const std::vector<uint8_t> to_client = Pattern(200000, 2);

  std::string server_sid;
  Tep server_tep = Tep::kCurve25519;
  Cipher server_cipher = Cipher::kAes128Gcm;
  std::vector<uint8_t> server_got;
  Status server_status;
  std::jthread server([&] {
    auto conn = listener->Accept(MakeOptions({tep}, {cipher}), &server_status,
                                 kTestTimeoutMs);
    if (conn == nullptr) return;
    if (server_status = conn->Handshake(); !server_status.ok()) return;
    server_sid = conn->session_id_hex();
    server_tep = conn->tep();
    server_cipher = conn->cipher();
    server_got = ReadToEof(*conn, &server_status);
    if (!server_status.ok()) return;
    if (server_status = conn->WriteAll(to_client); !server_status.ok()) return;
    server_status = conn->Shutdown();
  });

  Status st;
  auto client = Connection::Connect("127.0.0.1", listener->port(),
                                    MakeOptions({tep}, {cipher}), &st);
  ASSERT_NE(client, nullptr) << st.message;
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(client->tep(), tep);
  EXPECT_EQ(client->cipher(), cipher);
  EXPECT_FALSE(client->resumed());
  EXPECT_EQ(client->engine().public_key_operations(), 1u);
  ASSERT_TRUE(client->WriteAll(to_server).ok());
  ASSERT_TRUE(client->Shutdown().ok());
  const std::vector<uint8_t> client_got = ReadToEof(*client, &st);
  EXPECT_TRUE(st.ok()) << st.message;
  server.join();

  ASSERT_TRUE(server_status.ok()) << server_status.message;
  EXPECT_EQ(client->session_id_hex(), server_sid);
  EXPECT_EQ(server_sid.size(), 2 * kSessionIdLen);
  EXPECT_EQ(client->session_id()[0], static_cast<uint8_t>(tep));  // v = 0
  EXPECT_EQ(server_tep, tep);
  EXPECT_EQ(server_cipher, cipher);
  EXPECT_TRUE(server_got == to_server);
  EXPECT_TRUE(client_got == to_client);
}

INSTANTIATE_TEST_SUITE_P(
    All, TepCipherTest,
    ::testing::Combine(::testing::Values(Tep::kCurve25519, Tep::kP256,
                                         Tep::kP521),
                       ::testing::Values(Cipher::kAes128Gcm, Cipher::kAes256Gcm,
                                         Cipher::kChaCha20Poly1305)),
    [](const ::testing::TestParamInfo<std::tuple<Tep, Cipher>>& p) {
      return std::string(TepName(std::get<0>(p.param))) + "_" +
             std::string(CipherName(std::get<1>(p.param)));
    });

// A client offering several TEPs (no Init1 behind its option) and a server
// with another preference order still agree.
TEST(ConnectionTest, NegotiatesServerPreferredTepAmongSeveral) {
  auto listener = ListenLoopback();
  ASSERT_NE(listener, nullptr);
  std::string server_sid;
  std::jthread server([&] {
    Status s;
    auto conn = listener->Accept(
        MakeOptions({Tep::kP256, Tep::kCurve25519},
                    {Cipher::kChaCha20Poly1305, Cipher::kAes128Gcm}),
        &s, kTestTimeoutMs);
    if (conn == nullptr || !conn->Handshake().ok()) return;
    server_sid = conn->session_id_hex();
    (void)conn->Shutdown();
  });
  Status st;
  auto client = Connection::Connect(
      "127.0.0.1", listener->port(),
      MakeOptions({Tep::kCurve25519, Tep::kP521, Tep::kP256},
                  {Cipher::kAes128Gcm, Cipher::kChaCha20Poly1305}),
      &st);
  ASSERT_NE(client, nullptr) << st.message;
  std::vector<uint8_t> buf(16);
  EXPECT_EQ(client->Read(buf, &st), 0) << st.message;
  server.join();
  EXPECT_EQ(client->tep(), Tep::kP256);
  EXPECT_EQ(client->cipher(), Cipher::kChaCha20Poly1305);
  EXPECT_EQ(client->session_id_hex(), server_sid);
}

// --- negotiation failures ----------------------------------------------------

TEST(ConnectionTest, NoCommonTepFailsBothEndsWithEnoFailed) {
  auto listener = ListenLoopback();
  ASSERT_NE(listener, nullptr);
  Status server_status;
  std::jthread server([&] {
    auto conn = listener->Accept(MakeOptions({Tep::kCurve25519}),
                                 &server_status, kTestTimeoutMs);
    if (conn != nullptr) server_status = conn->Handshake();
  });
  Status st;
  auto client = Connection::Connect("127.0.0.1", listener->port(),
                                    MakeOptions({Tep::kP256}), &st);
  server.join();
  EXPECT_EQ(client, nullptr);
  EXPECT_EQ(st.kind, Status::Kind::kEngine);
  EXPECT_EQ(st.engine_error, Error::kEnoFailed) << st.message;
  EXPECT_NE(st.message.find("handshake failed: ENO_FAILED"), std::string::npos)
      << st.message;
  EXPECT_EQ(server_status.engine_error, Error::kEnoFailed)
      << server_status.message;
}

TEST(ConnectionTest, NoCommonCipherFailsTheHandshake) {
  auto listener = ListenLoopback();
  ASSERT_NE(listener, nullptr);
  Status server_status;
  std::jthread server([&] {
    auto conn =
        listener->Accept(MakeOptions({Tep::kCurve25519}, {Cipher::kAes128Gcm}),
                         &server_status, kTestTimeoutMs);
    if (conn != nullptr) server_status = conn->Handshake();
  });
  Status st;
  auto client = Connection::Connect(
      "127.0.0.1", listener->port(),
      MakeOptions({Tep::kCurve25519}, {Cipher::kAes256Gcm}), &st);
  server.join();
  EXPECT_EQ(client, nullptr);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(server_status.engine_error, Error::kNoCommonCipher)
      << server_status.message;
}

TEST(ConnectionTest, PlainTcpServerIsEnoAbsent) {
  uint16_t port = 0;
  UniqueFd lfd = RawListen(&port);
  std::jthread plain_server([&] {
    UniqueFd c = RawAccept(lfd.get());
    if (!c) return;
    (void)RawSendAll(c.get(), Bytes("HELLO"));
    char buf[256];
    pollfd p{c.get(), POLLIN, 0};
    (void)::poll(&p, 1, 2000);  // let the client read before we close
    (void)::recv(c.get(), buf, sizeof buf, MSG_DONTWAIT);
  });
  Status st;
  auto client = Connection::Connect("127.0.0.1", port, MakeOptions(), &st);
  EXPECT_EQ(client, nullptr);
  EXPECT_EQ(st.kind, Status::Kind::kEngine);
  EXPECT_EQ(st.engine_error, Error::kEnoAbsent);
  EXPECT_EQ(st.message,
            "handshake failed: ENO_ABSENT (the peer does not speak tcpcrypt)");
}

TEST(ConnectionTest, PlainTcpClientIsEnoAbsent) {
  auto listener = ListenLoopback();
  ASSERT_NE(listener, nullptr);
  UniqueFd raw = RawConnect(listener->port());
  ASSERT_TRUE(RawSendAll(raw.get(), Bytes("HELLO")));
  Status st;
  auto conn = listener->Accept(MakeOptions(), &st, kTestTimeoutMs);
  ASSERT_NE(conn, nullptr) << st.message;
  st = conn->Handshake();
  EXPECT_EQ(st.engine_error, Error::kEnoAbsent) << st.message;
  EXPECT_EQ(conn->fd(), -1);  // a failure closes the socket
  // Sticky: later calls report the same failure.
  std::vector<uint8_t> buf(8);
  EXPECT_EQ(conn->Read(buf, &st), -1);
  EXPECT_EQ(st.engine_error, Error::kEnoAbsent);
  EXPECT_EQ(conn->WriteAll(buf).engine_error, Error::kEnoAbsent);
}

TEST(ConnectionTest, ConnectRefusedIsAnIoError) {
  uint16_t port = 0;
  { UniqueFd closed = RawListen(&port); }  // now nothing listens there
  Status st;
  auto client = Connection::Connect("127.0.0.1", port, MakeOptions(), &st);
  EXPECT_EQ(client, nullptr);
  EXPECT_EQ(st.kind, Status::Kind::kIo);
  EXPECT_EQ(st.sys_errno, ECONNREFUSED);
  EXPECT_EQ(st.message, "connect 127.0.0.1:" + std::to_string(port) +
                            ": Connection refused");
}

// --- time-outs ---------------------------------------------------------------

TEST(ConnectionTest, ClientHandshakeTimesOutAgainstSilentPeer) {
  uint16_t port = 0;
  UniqueFd lfd = RawListen(&port);  // the kernel accepts; no one answers
  Options o = MakeOptions();
  o.handshake_timeout_ms = 300;
  const auto start = std::chrono::steady_clock::now();
  Status st;
  auto client = Connection::Connect("127.0.0.1", port, o, &st);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  EXPECT_EQ(client, nullptr);
  EXPECT_EQ(st.kind, Status::Kind::kTimeout) << st.message;
  EXPECT_NE(st.message.find("timed out after 300 ms"), std::string::npos)
      << st.message;
  EXPECT_GE(ms, 280);
  EXPECT_LT(ms, 3000);
}

TEST(ConnectionTest, ServerHandshakeTimesOutAgainstSilentClient) {
  auto listener = ListenLoopback();
  ASSERT_NE(listener, nullptr);
  UniqueFd raw = RawConnect(listener->port());
  Options o = MakeOptions();
  o.handshake_timeout_ms = 300;
  Status st;
  auto conn = listener->Accept(o, &st, kTestTimeoutMs);
  ASSERT_NE(conn, nullptr) << st.message;
  st = conn->Handshake();
  EXPECT_EQ(st.kind, Status::Kind::kTimeout) << st.message;
}

// A Read that times out may be retried; the connection stays usable.
TEST(ConnectionTest, ReadTimeoutIsNotSticky) {
  auto listener = ListenLoopback();
  ASSERT_NE(listener, nullptr);
  Status st;
  std::unique_ptr<Connection> server;
  std::jthread accept([&] {
    Options o = MakeOptions();
    o.io_timeout_ms = 100;
    server = listener->Accept(o, &st, kTestTimeoutMs);
    if (server != nullptr) st = server->Handshake();
  });
  Status cst;
  auto client =
      Connection::Connect("127.0.0.1", listener->port(), MakeOptions(), &cst);
  ASSERT_NE(client, nullptr) << cst.message;
  accept.join();
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(st.ok()) << st.message;
  std::vector<uint8_t> buf(8);
  EXPECT_EQ(server->Read(buf, &st), -1);
  EXPECT_EQ(st.kind, Status::Kind::kTimeout);
  EXPECT_NE(st.message.find("read from 127.0.0.1:"), std::string::npos)
      << st.message;
  EXPECT_TRUE(server->status().ok());
  ASSERT_TRUE(client->WriteAll(Bytes("late")).ok());
  EXPECT_EQ(ReadExact(*server, 4, &st), Bytes("late"));
  EXPECT_TRUE(st.ok()) << st.message;
}

TEST(ConnectionTest, AcceptTimesOut) {
  auto listener = ListenLoopback();
  ASSERT_NE(listener, nullptr);
  Status st;
  EXPECT_EQ(listener->Accept(MakeOptions(), &st, 50), nullptr);
  EXPECT_EQ(st.kind, Status::Kind::kTimeout);
}

// --- end of file
// ---------------------------------------------------------------

TEST(ConnectionTest, RawCloseWithoutFinIsTruncatedNotEof) {
  auto listener = ListenLoopback();
  ASSERT_NE(listener, nullptr);
  RawEngineClient raw(listener->port());
  Status st;
  auto conn = listener->Accept(MakeOptions(), &st, kTestTimeoutMs);
  ASSERT_NE(conn, nullptr) << st.message;
  std::jthread server_handshake([&] { st = conn->Handshake(); });
  ASSERT_TRUE(raw.Handshake());
  server_handshake.join();
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(conn->session_id_hex().substr(0, 2), "23");
  EXPECT_TRUE(std::equal(raw.engine.session_id().begin(),
                         raw.engine.session_id().end(),
                         conn->session_id().begin()));

  // Authenticated data, then the TCP connection just ends (no FINp).
  ASSERT_EQ(raw.engine.Write(Bytes("partial")), Error::kNone);
  ASSERT_TRUE(raw.Flush());
  ASSERT_EQ(::shutdown(raw.fd.get(), SHUT_WR), 0);

  // The data before the cut is still delivered, then the cut is an error,
  // never an end of file.
  EXPECT_EQ(ReadExact(*conn, 7, &st), Bytes("partial"));
  std::vector<uint8_t> buf(16);
  EXPECT_EQ(conn->Read(buf, &st), -1);
  EXPECT_EQ(st.kind, Status::Kind::kEngine);
  EXPECT_EQ(st.engine_error, Error::kTruncated);
  EXPECT_EQ(st.message,
            "stream truncated: the peer's stream ended without an "
            "authenticated end of file");
  EXPECT_EQ(conn->Read(buf, &st), -1);  // sticky
}

TEST(ConnectionTest, AuthenticatedEofIsZeroNotAnError) {
  auto listener = ListenLoopback();
  ASSERT_NE(listener, nullptr);
  RawEngineClient raw(listener->port());
  Status st;
  auto conn = listener->Accept(MakeOptions(), &st, kTestTimeoutMs);
  ASSERT_NE(conn, nullptr);
  std::jthread server_handshake([&] { st = conn->Handshake(); });
  ASSERT_TRUE(raw.Handshake());
  server_handshake.join();
  ASSERT_TRUE(st.ok()) << st.message;
  ASSERT_EQ(raw.engine.Write(Bytes("all")), Error::kNone);
  ASSERT_EQ(raw.engine.Shutdown(), Error::kNone);
  ASSERT_TRUE(raw.Flush());
  raw.fd.Reset();  // FINp sent, then a plain close: a clean end
  EXPECT_EQ(ReadToEof(*conn, &st), Bytes("all"));
  EXPECT_TRUE(st.ok()) << st.message;
  std::vector<uint8_t> buf(4);
  EXPECT_EQ(conn->Read(buf, &st), 0);
}

// A man in the middle that flips one ciphertext bit is caught by the AEAD.
TEST(ConnectionTest, TamperedFrameIsAnIntegrityFailure) {
  auto listener = ListenLoopback();
  ASSERT_NE(listener, nullptr);
  uint16_t proxy_port = 0;
  UniqueFd proxy_listen = RawListen(&proxy_port);
  // The proxy copies client -> server flipping one bit well after the
  // handshake, and server -> client unchanged.
  std::jthread proxy([&] {
    UniqueFd from_client = RawAccept(proxy_listen.get());
    if (!from_client) return;
    UniqueFd to_server = RawConnect(listener->port());
    std::jthread back([&] {
      char buf[4096];
      for (;;) {
        const ssize_t n = ::recv(to_server.get(), buf, sizeof buf, 0);
        if (n <= 0 || !RawSendAll(from_client.get(),
                                  ByteSpan(reinterpret_cast<uint8_t*>(buf),
                                           static_cast<size_t>(n)))) {
          ::shutdown(from_client.get(), SHUT_WR);
          return;
        }
      }
    });
    size_t offset = 0;
    uint8_t buf[4096];
    for (;;) {
      const ssize_t n = ::recv(from_client.get(), buf, sizeof buf, 0);
      if (n <= 0) break;
      constexpr size_t kFlipAt = 5000;
      if (offset <= kFlipAt && kFlipAt < offset + static_cast<size_t>(n)) {
        buf[kFlipAt - offset] ^= 0x01;
      }
      offset += static_cast<size_t>(n);
      if (!RawSendAll(to_server.get(), ByteSpan(buf, static_cast<size_t>(n)))) {
        break;
      }
    }
    ::shutdown(to_server.get(), SHUT_WR);
  });

  Status server_status;
  std::vector<uint8_t> server_got;
  std::jthread server([&] {
    auto conn = listener->Accept(MakeOptions(), &server_status, kTestTimeoutMs);
    if (conn == nullptr) return;
    server_got = ReadToEof(*conn, &server_status);
  });
  Status st;
  auto client =
      Connection::Connect("127.0.0.1", proxy_port, MakeOptions(), &st);
  ASSERT_NE(client, nullptr) << st.message;
  (void)client->WriteAll(Pattern(20000, 3));
  (void)client->Shutdown();
  server.join();
  client->Close();
  EXPECT_EQ(server_status.kind, Status::Kind::kEngine);
  EXPECT_EQ(server_status.engine_error, Error::kAeadFailure)
      << server_status.message;
  EXPECT_EQ(server_status.message.rfind("integrity failure: AEAD_FAILURE", 0),
            0u)
      << server_status.message;
  EXPECT_LT(server_got.size(), 5000u);  // nothing from the bad frame on
}

// --- resumption
// -----------------------------------------------------------------

TEST(ConnectionTest, SecondConnectionResumesWithoutPublicKeyWork) {
  auto listener = ListenLoopback();
  ASSERT_NE(listener, nullptr);
  ResumptionCache server_cache;
  ResumptionCache client_cache;
  Options server_options = MakeOptions();
  server_options.engine.resumption_cache = &server_cache;
  Options client_options = MakeOptions();
  client_options.engine.resumption_cache = &client_cache;

  struct End {
    std::string sid;
    bool resumed = false;
    uint32_t pk_ops = 99;
    std::vector<uint8_t> got;
    Status status;
  };
  auto run = [&](End* server_end, End* client_end) {
    std::jthread server([&] {
      auto conn =
          listener->Accept(server_options, &server_end->status, kTestTimeoutMs);
      if (conn == nullptr) return;
      if (server_end->status = conn->Handshake(); !server_end->status.ok()) {
        return;
      }
      server_end->sid = conn->session_id_hex();
      server_end->resumed = conn->resumed();
      server_end->pk_ops = conn->engine().public_key_operations();
      server_end->got = ReadToEof(*conn, &server_end->status);
      if (server_end->status.ok()) {
        server_end->status = conn->WriteAll(Bytes("pong"));
      }
      if (server_end->status.ok()) server_end->status = conn->Shutdown();
    });
    auto client = Connection::Connect("127.0.0.1", listener->port(),
                                      client_options, &client_end->status);
    if (client == nullptr) return;
    client_end->sid = client->session_id_hex();
    client_end->resumed = client->resumed();
    client_end->pk_ops = client->engine().public_key_operations();
    if (client_end->status = client->WriteAll(Bytes("ping"));
        client_end->status.ok()) {
      client_end->status = client->Shutdown();
    }
    if (client_end->status.ok()) {
      client_end->got = ReadToEof(*client, &client_end->status);
    }
  };

  End s1, c1, s2, c2;
  run(&s1, &c1);
  ASSERT_TRUE(c1.status.ok()) << c1.status.message;
  ASSERT_TRUE(s1.status.ok()) << s1.status.message;
  EXPECT_FALSE(c1.resumed);
  EXPECT_FALSE(s1.resumed);
  EXPECT_EQ(c1.pk_ops, 1u);
  EXPECT_EQ(s1.pk_ops, 1u);
  EXPECT_EQ(c1.sid, s1.sid);

  run(&s2, &c2);
  ASSERT_TRUE(c2.status.ok()) << c2.status.message;
  ASSERT_TRUE(s2.status.ok()) << s2.status.message;
  EXPECT_TRUE(c2.resumed);
  EXPECT_TRUE(s2.resumed);
  EXPECT_EQ(c2.pk_ops, 0u);
  EXPECT_EQ(s2.pk_ops, 0u);
  EXPECT_EQ(c2.sid, s2.sid);
  EXPECT_NE(c2.sid, c1.sid);
  // RFC 8547 §5.1: the session ID starts with B's TEP byte, v bit set for
  // a resumed session (0x23 | 0x80).
  EXPECT_EQ(c2.sid.substr(0, 2), "a3");
  EXPECT_EQ(s2.got, Bytes("ping"));
  EXPECT_EQ(c2.got, Bytes("pong"));
}

// --- rekeying
// --------------------------------------------------------------------

TEST(ConnectionTest, RekeyMidStreamInBothDirections) {
  auto listener = ListenLoopback();
  ASSERT_NE(listener, nullptr);
  const std::vector<uint8_t> a1 = Pattern(150000, 11);
  const std::vector<uint8_t> a2 = Pattern(150000, 12);
  const std::vector<uint8_t> b1 = Pattern(120000, 13);
  const std::vector<uint8_t> b2 = Pattern(120000, 14);

  Status server_status;
  uint64_t s_local_mid = 0, s_remote_mid = 0, s_local_end = 0, s_remote_end = 0;
  bool server_data_ok = false;
  std::jthread server([&] {
    auto conn = listener->Accept(MakeOptions(), &server_status, kTestTimeoutMs);
    if (conn == nullptr) return;
    std::vector<uint8_t> got =
        ReadExact(*conn, a1.size() + a2.size(), &server_status);
    if (!server_status.ok()) return;
    std::vector<uint8_t> want = a1;
    want.insert(want.end(), a2.begin(), a2.end());
    server_data_ok = got == want;
    // The client's rekey arrived and was answered.
    s_local_mid = conn->engine().local_generation();
    s_remote_mid = conn->engine().remote_generation();
    if (server_status = conn->WriteAll(b1); !server_status.ok()) return;
    if (server_status = conn->RequestRekey(); !server_status.ok()) return;
    if (server_status = conn->WriteAll(b2); !server_status.ok()) return;
    ReadToEof(*conn, &server_status);
    if (!server_status.ok()) return;
    s_local_end = conn->engine().local_generation();
    s_remote_end = conn->engine().remote_generation();
    server_status = conn->Shutdown();
  });

  Status st;
  auto client =
      Connection::Connect("127.0.0.1", listener->port(), MakeOptions(), &st);
  ASSERT_NE(client, nullptr) << st.message;
  ASSERT_TRUE(client->WriteAll(a1).ok());
  ASSERT_TRUE(client->RequestRekey().ok());
  EXPECT_EQ(client->engine().local_generation(), 1u);
  ASSERT_TRUE(client->WriteAll(a2).ok());
  std::vector<uint8_t> got = ReadExact(*client, b1.size() + b2.size(), &st);
  ASSERT_TRUE(st.ok()) << st.message;
  std::vector<uint8_t> want = b1;
  want.insert(want.end(), b2.begin(), b2.end());
  EXPECT_TRUE(got == want);
  // Server's rekey to generation 2 arrived and was answered.
  EXPECT_EQ(client->engine().local_generation(), 2u);
  EXPECT_EQ(client->engine().remote_generation(), 2u);
  ASSERT_TRUE(client->Shutdown().ok());
  EXPECT_TRUE(ReadToEof(*client, &st).empty());
  EXPECT_TRUE(st.ok()) << st.message;
  server.join();

  ASSERT_TRUE(server_status.ok()) << server_status.message;
  EXPECT_TRUE(server_data_ok);
  EXPECT_EQ(s_local_mid, 1u);
  EXPECT_EQ(s_remote_mid, 1u);
  EXPECT_EQ(s_local_end, 2u);
  EXPECT_EQ(s_remote_end, 2u);
}

// --- non-blocking connection
// ------------------------------------------------------

// One thread drives a NonBlockingConnection full duplex against a blocking
// echo server: writes 4 MiB while reading the echo.
TEST(NonBlockingConnectionTest, FullDuplexEchoInOneThread) {
  auto listener = ListenLoopback();
  ASSERT_NE(listener, nullptr);
  Status server_status;
  std::jthread server([&] {
    auto conn = listener->Accept(MakeOptions(), &server_status, kTestTimeoutMs);
    if (conn == nullptr) return;
    std::vector<uint8_t> buf(256 << 10);
    for (;;) {
      const ssize_t n = conn->Read(buf, &server_status);
      if (n <= 0) break;
      server_status = conn->WriteAll(
          std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
      if (!server_status.ok()) return;
    }
    if (server_status.ok()) server_status = conn->Shutdown();
  });

  Status st;
  auto conn = NonBlockingConnection::Connect("127.0.0.1", listener->port(),
                                             MakeOptions(), &st);
  ASSERT_NE(conn, nullptr) << st.message;
  EXPECT_FALSE(conn->Write(Bytes("too early")).ok() && !conn->handshake_done());

  const std::vector<uint8_t> data = Pattern(4 << 20, 21);
  size_t sent = 0;
  std::vector<uint8_t> echoed;
  bool shut = false;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!conn->failed() && std::chrono::steady_clock::now() < deadline) {
    if (conn->handshake_done() && sent < data.size() &&
        !conn->write_queue_full()) {
      const size_t n = std::min<size_t>(64 << 10, data.size() - sent);
      ASSERT_TRUE(conn->Write(std::span(data).subspan(sent, n)).ok());
      sent += n;
    }
    if (sent == data.size() && !shut) {
      ASSERT_TRUE(conn->Shutdown().ok());
      shut = true;
    }
    for (ByteSpan p = conn->PeekPlaintext(); !p.empty();
         p = conn->PeekPlaintext()) {
      echoed.insert(echoed.end(), p.begin(), p.end());
      conn->ConsumePlaintext(p.size());
    }
    if (conn->at_eof()) break;
    pollfd p{conn->fd(), 0, 0};
    if (conn->wants_read()) p.events |= POLLIN;
    if (conn->wants_write()) p.events |= POLLOUT;
    const bool more_to_send = conn->handshake_done() && sent < data.size() &&
                              !conn->write_queue_full();
    ASSERT_GE(::poll(&p, 1, more_to_send ? 0 : 1000), 0);
    conn->OnTimer();
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) conn->OnReadable();
    if ((p.revents & POLLOUT) != 0) conn->OnWritable();
  }
  ASSERT_FALSE(conn->failed()) << conn->status().message;
  EXPECT_TRUE(conn->at_eof());
  uint8_t byte = 0;
  EXPECT_EQ(conn->Read(std::span<uint8_t>(&byte, 1)), 0);
  EXPECT_TRUE(echoed == data) << echoed.size();
  server.join();
  EXPECT_TRUE(server_status.ok()) << server_status.message;
}

TEST(NonBlockingConnectionTest, HandshakeTimesOutThroughOnTimer) {
  uint16_t port = 0;
  UniqueFd lfd = RawListen(&port);
  Options o = MakeOptions();
  o.handshake_timeout_ms = 200;
  Status st;
  auto conn = NonBlockingConnection::Connect("127.0.0.1", port, o, &st);
  ASSERT_NE(conn, nullptr) << st.message;
  while (!conn->failed()) {
    const int timeout = conn->NextTimeoutMs();
    ASSERT_GE(timeout, 0);
    pollfd p{conn->fd(), POLLIN, 0};
    ASSERT_GE(::poll(&p, 1, timeout), 0);
    if (p.revents != 0) conn->OnReadable();
    conn->OnTimer();
  }
  EXPECT_EQ(conn->status().kind, Status::Kind::kTimeout);
  EXPECT_EQ(conn->fd(), -1);
  EXPECT_EQ(conn->NextTimeoutMs(), -1);
}

// --- key log
// ----------------------------------------------------------------------

std::vector<std::string> SplitWords(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

TEST(KeyLogTest, BothEndsLogTheSameLine) {
  char path_template[] = "/tmp/tcpcrypt_keylog_XXXXXX";
  const int tmp = ::mkstemp(path_template);
  ASSERT_GE(tmp, 0);
  ::close(tmp);
  ASSERT_EQ(::unlink(path_template), 0);  // let the carrier create it
  const std::string path = path_template;

  auto listener = ListenLoopback();
  ASSERT_NE(listener, nullptr);
  std::string server_sid;
  std::jthread server([&] {
    Status s;
    Options o = MakeOptions({Tep::kCurve25519},
                            {Cipher::kAes128Gcm, Cipher::kChaCha20Poly1305});
    o.key_log_file = path;
    auto conn = listener->Accept(std::move(o), &s, kTestTimeoutMs);
    if (conn == nullptr || !conn->Handshake().ok()) return;
    server_sid = conn->session_id_hex();
    (void)ReadToEof(*conn, &s);
    (void)conn->Shutdown();
  });
  Status st;
  Options client_options =
      MakeOptions({Tep::kCurve25519}, {Cipher::kChaCha20Poly1305});
  client_options.key_log_file = path;
  auto client = Connection::Connect("127.0.0.1", listener->port(),
                                    std::move(client_options), &st);
  ASSERT_NE(client, nullptr) << st.message;
  ASSERT_TRUE(client->Shutdown().ok());
  (void)ReadToEof(*client, &st);
  server.join();

  struct stat sb {};
  ASSERT_EQ(::stat(path.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ::unlink(path.c_str());

  ASSERT_EQ(lines.size(), 2u);
  const std::vector<std::string> a = SplitWords(lines[0]);
  const std::vector<std::string> b = SplitWords(lines[1]);
  ASSERT_EQ(a.size(), 6u) << lines[0];
  ASSERT_EQ(b.size(), 6u) << lines[1];
  EXPECT_EQ(a[0], "TCPCRYPT_MK0");
  EXPECT_EQ(a[1].size(), 2 * kNonceLen);  // N_A
  EXPECT_EQ(a[2], client->session_id_hex());
  EXPECT_EQ(a[2], server_sid);
  EXPECT_EQ(a[3], "0010");  // ChaCha20-Poly1305
  EXPECT_EQ(a[4], "kab");
  EXPECT_EQ(a[5].size(), 2 * kKLen);
  // Both ends describe the same connection with the same keys.
  EXPECT_EQ(a, b);
}

TEST(KeyLogTest, FormatKeyLogLine) {
  KeyLogEntry e;
  e.label = {0xab, 0xcd};
  e.session_id.fill(0x11);
  e.cipher = Cipher::kAes256Gcm;
  e.a_to_b_uses_kab = false;
  std::vector<uint8_t> mk(kKLen, 0x5a);
  e.mk0.CopyFrom(mk);
  char buf[kMaxKeyLogLineLen];
  const size_t n = FormatKeyLogLine(e, buf);
  ASSERT_GT(n, 0u);
  std::string mk_hex;
  for (size_t i = 0; i < kKLen; ++i) mk_hex += "5a";
  EXPECT_EQ(std::string(buf, n), "TCPCRYPT_MK0 abcd " + std::string(66, '1') +
                                     " 0002 kba " + mk_hex + "\n");
  char tiny[10];
  EXPECT_EQ(FormatKeyLogLine(e, tiny), 0u);
}

// --- helpers
// ----------------------------------------------------------------------

TEST(HostPortTest, SplitAndFormat) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(SplitHostPort("127.0.0.1:443", &host, &port));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 443);
  ASSERT_TRUE(SplitHostPort("[::1]:0", &host, &port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(SplitHostPort(":7000", &host, &port));
  EXPECT_EQ(host, "");
  EXPECT_FALSE(SplitHostPort("::1:80", &host, &port));
  EXPECT_FALSE(SplitHostPort("host", &host, &port));
  EXPECT_FALSE(SplitHostPort("host:65536", &host, &port));
  EXPECT_FALSE(SplitHostPort("host:", &host, &port));
  EXPECT_FALSE(SplitHostPort("host:8x", &host, &port));
  EXPECT_FALSE(SplitHostPort("[::1]80", &host, &port));
  EXPECT_EQ(FormatHostPort("::1", 80), "[::1]:80");
  EXPECT_EQ(FormatHostPort("example.org", 80), "example.org:80");
}

TEST(ListenerTest, ListensOnIpv6Loopback) {
  Status st;
  auto l = Listener::Listen("::1", 0, 4, &st);
  if (l == nullptr) GTEST_SKIP() << "no IPv6 loopback: " << st.message;
  EXPECT_EQ(l->address(), "[::1]:" + std::to_string(l->port()));
}

}  // namespace
}  // namespace tcpcrypt::inband
