// One port serving tcpcrypt and TLS 1.3; the client policy "tcpcrypt, else
// TLS 1.3"; every authenticator endorsing the TLS exporter instead of the
// session ID, with no change to the application.
#include <gtest/gtest.h>

#include <cstdlib>
#include <future>
#include <string>

#include "auth/x509_batch/test_pki.h"
#include "tcpcrypt/client.h"
#include "tcpcrypt/server.h"
#include "tests/sdk/test_users.h"

namespace tcpcrypt {
namespace {

class TlsFallbackTest : public ::testing::TestWithParam<AuthMechanism> {
 protected:
  void SetUp() override {
    dir_ = testing::MakeScratchDir("tcpcrypt-tls");
    ASSERT_FALSE(dir_.empty());
    std::string error;
    ASSERT_TRUE(auth::x509::WriteServerPki(dir_, "localhost", auth::x509::PkiKeyType::kEcdsaP256,
                                           30, &error))
        << error;
    // These clients dial "localhost": that is the realm they name.
    ASSERT_TRUE(testing::AddTestUser(dir_ + "/users.db", "alice", "pw", {}, "localhost"));
  }
  void TearDown() override { testing::RemoveScratchDir(dir_); }

  ServerOptions ServerOpts(AuthMechanism m) {
    ServerOptions o;
    o.accept_tls = true;
    o.cert_file = dir_ + "/server.pem";
    o.key_file = dir_ + "/server.key";
    o.users_file = dir_ + "/users.db";
    o.password_hashing = PasswordHashing::kMinimumForTestsOnly;
    o.plans = {{m}};
    // This server's tcpcrypt offers only P-521, so a Curve25519-only client
    // fails ENO and falls back to TLS on the same port.
    o.key_exchanges = {KeyExchange::kP521};
    return o;
  }
  ClientOptions ClientOpts(AuthMechanism m, bool fallback) {
    ClientOptions o;
    o.mechanisms = {m};
    o.user = "alice";
    o.password = std::make_shared<Password>("pw");
    o.min_password_hashing = PasswordHashing::kMinimumForTestsOnly;  // as the records
    o.ca_file = dir_ + "/ca.pem";
    o.tls_fallback = fallback;
    return o;
  }
  std::string dir_;
};

TEST_P(TlsFallbackTest, AuthenticatorsEndorseTheExporter) {
  const AuthMechanism m = GetParam();
  auto server = Server::Create(ServerOpts(m));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
  auto client = Client::Create(ClientOpts(m, /*fallback=*/true));
  ASSERT_TRUE(client.ok()) << client.status().ToString();

  auto accepted = std::async(std::launch::async, [&] { return server.value()->Accept(); });
  auto c = client.value()->Connect("localhost", server.value()->port());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto s = accepted.get();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(c.value()->channel(), Channel::kTls13);
  EXPECT_EQ(s.value()->channel(), Channel::kTls13);
  EXPECT_EQ(c.value()->channel_binding().size(), 32u);
  EXPECT_EQ(c.value()->channel_binding(), s.value()->channel_binding());
  EXPECT_EQ(c.value()->session_id().status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(c.value()->peer().has_value());
  if (m != AuthMechanism::kX509) {
    ASSERT_TRUE(s.value()->peer().has_value());
    EXPECT_EQ(s.value()->peer()->name, "alice");
  } else {
    EXPECT_EQ(c.value()->peer()->name, "localhost");
  }
  const std::string msg = "over TLS 1.3";
  ASSERT_TRUE(c.value()->Write({reinterpret_cast<const uint8_t*>(msg.data()), msg.size()}).ok());
  std::vector<uint8_t> buf(64);
  auto n = s.value()->Read(buf);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf.data()), n.value()), msg);
}

TEST_P(TlsFallbackTest, WithoutFallbackTheClientRefuses) {
  const AuthMechanism m = GetParam();
  auto server = Server::Create(ServerOpts(m));
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
  auto client = Client::Create(ClientOpts(m, /*fallback=*/false));
  ASSERT_TRUE(client.ok());
  auto accepted = std::async(std::launch::async, [&] { return server.value()->Accept(); });
  auto c = client.value()->Connect("localhost", server.value()->port());
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnavailable) << c.status().ToString();
  server.value()->Stop();
  (void)accepted.get();
}

TEST_P(TlsFallbackTest, SamePortStillServesTcpcrypt) {
  const AuthMechanism m = GetParam();
  auto server = Server::Create(ServerOpts(m));
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
  ClientOptions co = ClientOpts(m, /*fallback=*/true);
  co.key_exchanges = {KeyExchange::kP521};  // now tcpcrypt works
  auto client = Client::Create(co);
  ASSERT_TRUE(client.ok());
  auto accepted = std::async(std::launch::async, [&] { return server.value()->Accept(); });
  auto c = client.value()->Connect("localhost", server.value()->port());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto s = accepted.get();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(c.value()->channel(), Channel::kTcpcrypt);
  EXPECT_EQ(c.value()->session_id().value(), s.value()->session_id().value());
}

INSTANTIATE_TEST_SUITE_P(Mechanisms, TlsFallbackTest,
                         ::testing::Values(AuthMechanism::kPake, AuthMechanism::kCmacPassword,
                                           AuthMechanism::kX509),
                         [](const auto& test_info) {
                           return std::string(AuthMechanismName(test_info.param));
                         });

}  // namespace
}  // namespace tcpcrypt
