// The public API pieces users of OpenSSL, Go's crypto/tls and gRPC expect:
// StatusOr accessors, a session-ID hex helper, certificates and keys from
// memory (PEM and DER), a log callback instead of stderr, the key log as the
// application's explicit opt-in, and failure counters by kind.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <sstream>
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

using namespace std::chrono_literals;

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// --- StatusOr -------------------------------------------------------------

TEST(StatusOrTest, AccessorsOnAValue) {
  StatusOr<std::string> s(std::string("hello"));
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s.status().ok());
  EXPECT_EQ(s.value(), "hello");
  EXPECT_EQ(*s, "hello");
  EXPECT_EQ(s->size(), 5u);
  s.value() += "!";  // value() & is a mutable reference
  EXPECT_EQ(*s, "hello!");
  (*s)[0] = 'j';
  EXPECT_EQ(s.value(), "jello!");

  const StatusOr<std::string>& c = s;
  EXPECT_EQ(c.value(), "jello!");
  EXPECT_EQ(*c, "jello!");
  EXPECT_EQ(c->front(), 'j');
  EXPECT_EQ(c.value_or("other"), "jello!");

  // && moves the value out.
  StatusOr<std::unique_ptr<int>> p(std::make_unique<int>(7));
  std::unique_ptr<int> moved = std::move(p).value();
  ASSERT_NE(moved, nullptr);
  EXPECT_EQ(*moved, 7);
  StatusOr<std::unique_ptr<int>> q(std::make_unique<int>(8));
  std::unique_ptr<int> star = *std::move(q);
  EXPECT_EQ(*star, 8);
  StatusOr<std::unique_ptr<int>> r(std::make_unique<int>(9));
  std::unique_ptr<int> fallback = std::move(r).value_or(nullptr);
  EXPECT_EQ(*fallback, 9);
}

TEST(StatusOrTest, AccessorsOnAnError) {
  StatusOr<std::string> s(Status(StatusCode::kNotFound, "gone"));
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s.status().message(), "gone");
  EXPECT_EQ(s.value_or("fallback"), "fallback");
  StatusOr<std::unique_ptr<int>> p(Status(StatusCode::kInternal, "x"));
  EXPECT_EQ(std::move(p).value_or(nullptr), nullptr);
  // A StatusOr made from OK holds no value: INTERNAL, not OK.
  StatusOr<int> ok_status{Status()};
  EXPECT_FALSE(ok_status.ok());
  EXPECT_EQ(ok_status.status().code(), StatusCode::kInternal);
}

TEST(StatusOrDeathTest, ValueOnAnErrorAbortsWithTheStatus) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  StatusOr<std::string> s(Status(StatusCode::kNotFound, "gone"));
  EXPECT_DEATH((void)s.value(), "tcpcrypt: StatusOr::value\\(\\) on an error: NOT_FOUND: gone");
  EXPECT_DEATH((void)*s, "NOT_FOUND: gone");
  EXPECT_DEATH((void)s->size(), "NOT_FOUND: gone");
  const StatusOr<std::string>& c = s;
  EXPECT_DEATH((void)c.value(), "NOT_FOUND: gone");
  EXPECT_DEATH((void)std::move(s).value(), "NOT_FOUND: gone");
}

// --- ToHex ----------------------------------------------------------------

TEST(ToHexTest, LowercaseTwoDigitsPerByte) {
  const uint8_t bytes[] = {0x00, 0x01, 0xab, 0xcd, 0xef, 0xff, 0x10};
  EXPECT_EQ(ToHex(bytes), "0001abcdefff10");
  EXPECT_EQ(ToHex({}), "");
}

// --- loopback helpers -----------------------------------------------------

struct Pair {
  StatusOr<std::unique_ptr<Session>> client = Status(StatusCode::kUnknown, "not run");
  StatusOr<std::unique_ptr<Session>> server = Status(StatusCode::kUnknown, "not run");
};

Pair ConnectOnce(Server& server, Client& client, const std::string& host = "127.0.0.1") {
  Pair p;
  auto s = std::async(std::launch::async, [&server] { return server.Accept(); });
  p.client = client.Connect(host, server.port());
  if (!p.client.ok()) server.Stop();
  p.server = s.get();
  return p;
}

// RawConnect opens a plain TCP connection to the loopback port.
int RawConnect(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// WaitClosed waits (bounded) until the server closes |fd|.
void WaitClosed(int fd) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char buf[256];
  while (read(fd, buf, sizeof(buf)) > 0) {
  }
}

TEST(SessionIdHexTest, TcpcryptAndPlainSessions) {
  ServerOptions so;
  so.encryption = Encryption::kPrefer;
  auto server = Server::Create(so);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
  auto client = Client::Create(ClientOptions{});
  ASSERT_TRUE(client.ok());
  Pair p = ConnectOnce(*server.value(), *client.value());
  ASSERT_TRUE(p.client.ok()) << p.client.status().ToString();
  ASSERT_TRUE(p.server.ok()) << p.server.status().ToString();
  const std::string hex = p.client.value()->session_id_hex();
  EXPECT_EQ(hex.size(), 66u);
  EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos) << hex;
  EXPECT_EQ(hex, ToHex(p.client.value()->session_id().value()));
  EXPECT_EQ(hex, p.server.value()->session_id_hex());

  // A plain session (kPrefer against a plain client) has none.
  const int raw = RawConnect(server.value()->port());
  ASSERT_GE(raw, 0);
  ASSERT_EQ(write(raw, "x", 1), 1);
  auto plain = server.value()->Accept();
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain.value()->channel(), Channel::kPlain);
  EXPECT_EQ(plain.value()->session_id_hex(), "");
  close(raw);
}

// --- certificates and keys from memory --------------------------------------

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string KeyDer(const EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PrivateKey(key, &der);
  if (len <= 0) return {};
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_clear_free(der, static_cast<size_t>(len));
  return out;
}

std::string AsString(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

class MemoryPkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeScratchDir("tcpcrypt-mem");
    ASSERT_FALSE(dir_.empty());
    std::string error;
    ASSERT_TRUE(auth::x509::WriteServerPki(dir_, "localhost", auth::x509::PkiKeyType::kEcdsaP256,
                                           30, &error))
        << error;
    ca_pem_ = ReadAll(dir_ + "/ca.pem");
    cert_pem_ = ReadAll(dir_ + "/server.pem");
    key_pem_ = ReadAll(dir_ + "/server.key");
    ASSERT_FALSE(ca_pem_.empty() || cert_pem_.empty() || key_pem_.empty());

    // A second PKI made in memory, for the DER forms: a CA and one leaf.
    auth::x509::CertOptions ca_opts;
    ca_opts.common_name = "memory CA";
    auto ca = auth::x509::CreateRootCa(ca_opts, &error);
    ASSERT_TRUE(ca.has_value()) << error;
    auth::x509::CertOptions leaf_opts;
    leaf_opts.common_name = "localhost";
    leaf_opts.dns_names = {"localhost"};
    auto leaf = auth::x509::IssueCertificate(*ca, leaf_opts, &error);
    ASSERT_TRUE(leaf.has_value()) << error;
    ca_der_ = AsString(auth::x509::CertificateDer(ca->cert.get()));
    cert_der_ = AsString(auth::x509::CertificateDer(leaf->cert.get()));
    key_der_ = KeyDer(leaf->key.get());
    ASSERT_FALSE(ca_der_.empty() || cert_der_.empty() || key_der_.empty());
  }
  void TearDown() override { testing::RemoveScratchDir(dir_); }

  // X509Handshake runs one x509 login to "localhost" and checks both ends.
  void X509Handshake(ServerOptions so, ClientOptions co) {
    so.plans = {{AuthMechanism::kX509}};
    co.mechanisms = {AuthMechanism::kX509};
    auto server = Server::Create(std::move(so));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
    auto client = Client::Create(std::move(co));
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    Pair p = ConnectOnce(*server.value(), *client.value(), "localhost");
    ASSERT_TRUE(p.client.ok()) << p.client.status().ToString();
    ASSERT_TRUE(p.server.ok()) << p.server.status().ToString();
    EXPECT_EQ(p.client.value()->channel(), Channel::kTcpcrypt);
    ASSERT_TRUE(p.client.value()->peer().has_value());
    EXPECT_EQ(p.client.value()->peer()->mechanism, AuthMechanism::kX509);
    EXPECT_EQ(p.client.value()->peer()->name, "localhost");
  }

  // TlsHandshake: the server's tcpcrypt offers only P-521, so the
  // Curve25519-only client falls back to TLS 1.3 on the same port.
  void TlsHandshake(ServerOptions so, ClientOptions co) {
    so.accept_tls = true;
    so.key_exchanges = {KeyExchange::kP521};
    so.plans = {{AuthMechanism::kX509}};
    co.tls_fallback = true;
    co.mechanisms = {AuthMechanism::kX509};
    auto server = Server::Create(std::move(so));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
    auto client = Client::Create(std::move(co));
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    Pair p = ConnectOnce(*server.value(), *client.value(), "localhost");
    ASSERT_TRUE(p.client.ok()) << p.client.status().ToString();
    ASSERT_TRUE(p.server.ok()) << p.server.status().ToString();
    EXPECT_EQ(p.client.value()->channel(), Channel::kTls13);
    EXPECT_EQ(p.server.value()->channel(), Channel::kTls13);
    EXPECT_EQ(p.client.value()->channel_binding(), p.server.value()->channel_binding());
    ASSERT_TRUE(p.client.value()->peer().has_value());
    EXPECT_EQ(p.client.value()->peer()->name, "localhost");
    ASSERT_TRUE(p.client.value()->Write(Bytes("ping")).ok());
    uint8_t buf[4];
    auto n = p.server.value()->Read(buf);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), n.value()), "ping");
  }

  std::string dir_;
  std::string ca_pem_, cert_pem_, key_pem_;
  std::string ca_der_, cert_der_, key_der_;
};

TEST_F(MemoryPkiTest, X509FromFilesAndFromPemInMemory) {
  ServerOptions files_server;
  files_server.cert_file = dir_ + "/server.pem";
  files_server.key_file = dir_ + "/server.key";
  ClientOptions files_client;
  files_client.ca_file = dir_ + "/ca.pem";
  X509Handshake(files_server, files_client);

  ServerOptions mem_server;
  mem_server.cert_pem = cert_pem_;
  mem_server.key_pem = key_pem_;
  ClientOptions mem_client;
  mem_client.ca_pem = ca_pem_;
  X509Handshake(mem_server, mem_client);
}

TEST_F(MemoryPkiTest, X509FromDer) {
  ServerOptions so;
  so.cert_pem = cert_der_;
  so.key_pem = key_der_;
  ClientOptions co;
  co.ca_pem = ca_der_;
  X509Handshake(so, co);
}

TEST_F(MemoryPkiTest, X509MixedPathAndMemory) {
  ServerOptions so;
  so.cert_file = dir_ + "/server.pem";
  so.key_pem = key_pem_;
  ClientOptions co;
  co.ca_pem = ca_pem_;
  X509Handshake(so, co);
}

TEST_F(MemoryPkiTest, TlsFallbackFromFilesAndFromMemory) {
  ServerOptions files_server;
  files_server.cert_file = dir_ + "/server.pem";
  files_server.key_file = dir_ + "/server.key";
  ClientOptions files_client;
  files_client.ca_file = dir_ + "/ca.pem";
  TlsHandshake(files_server, files_client);

  ServerOptions mem_server;
  mem_server.cert_pem = cert_pem_;
  mem_server.key_pem = key_pem_;
  ClientOptions mem_client;
  mem_client.ca_pem = ca_pem_;
  TlsHandshake(mem_server, mem_client);

  ServerOptions der_server;
  der_server.cert_pem = cert_der_;
  der_server.key_pem = key_der_;
  ClientOptions der_client;
  der_client.ca_pem = ca_der_;
  TlsHandshake(der_server, der_client);
}

TEST_F(MemoryPkiTest, BothPathAndMemoryIsRefusedNamingBothFields) {
  ClientOptions co;
  co.ca_file = dir_ + "/ca.pem";
  co.ca_pem = ca_pem_;
  auto c = Client::Create(co);  // even without x509: the options are contradictory
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("ClientOptions::ca_file"), std::string::npos)
      << c.status().message();
  EXPECT_NE(c.status().message().find("ClientOptions::ca_pem"), std::string::npos);

  ClientOptions ck;
  ck.client_key_file = dir_ + "/server.key";
  ck.client_key_pem = key_pem_;
  auto k = Client::Create(ck);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(k.status().message().find("client_key_file and ClientOptions::client_key_pem"),
            std::string::npos)
      << k.status().message();

  ServerOptions so;
  so.plans = {{AuthMechanism::kX509}};
  so.cert_file = dir_ + "/server.pem";
  so.cert_pem = cert_pem_;
  so.key_pem = key_pem_;
  auto s = Server::Create(so);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("ServerOptions::cert_file and ServerOptions::cert_pem"),
            std::string::npos)
      << s.status().message();

  ServerOptions sc;
  sc.client_ca_file = dir_ + "/ca.pem";
  sc.client_ca_pem = ca_pem_;
  auto t = Server::Create(sc);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("ServerOptions::client_ca_pem"), std::string::npos);
}

TEST_F(MemoryPkiTest, GarbageInMemoryIsRefusedClearly) {
  ClientOptions co;
  co.mechanisms = {AuthMechanism::kX509};
  co.ca_pem = "this is not a certificate";
  auto c = Client::Create(co);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message(),
            "ClientOptions::ca_pem: neither PEM (no \"-----BEGIN\" line) nor one DER "
            "certificate");

  // A PEM whose base64 is broken.
  ClientOptions broken;
  broken.mechanisms = {AuthMechanism::kX509};
  broken.ca_pem = "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n";
  auto b = Client::Create(broken);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(b.status().message().find("ClientOptions::ca_pem: "), std::string::npos)
      << b.status().message();

  // A key that is a certificate; a truncated DER key; a PEM with no key.
  for (const std::string& bad_key :
       {cert_der_, key_der_.substr(0, key_der_.size() / 2), ca_pem_}) {
    ServerOptions so;
    so.plans = {{AuthMechanism::kX509}};
    so.cert_pem = cert_pem_;
    so.key_pem = bad_key;
    auto s = Server::Create(so);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.status().message().rfind("ServerOptions::key_pem: ", 0), 0u)
        << s.status().message();
  }

  // DER with trailing bytes is refused (exactly one certificate).
  ServerOptions trailing;
  trailing.plans = {{AuthMechanism::kX509}};
  trailing.cert_pem = cert_der_ + "x";
  trailing.key_pem = key_der_;
  auto t = Server::Create(trailing);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "ServerOptions::cert_pem: neither PEM (no \"-----BEGIN\" line) nor one DER "
            "certificate");

  // TLS only (no x509 plan): the memory key is parsed, and refused, too.
  ServerOptions tls;
  tls.accept_tls = true;
  tls.cert_pem = cert_pem_;
  tls.key_pem = "garbage";
  auto u = Server::Create(tls);
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().message().rfind("ServerOptions::key_pem: ", 0), 0u)
      << u.status().message();
}

// --- logging and the key log ---------------------------------------------------

struct LogRecorder {
  std::mutex mu;
  std::vector<std::pair<LogLevel, std::string>> entries;
  LogFn Fn() {
    return [this](LogLevel level, std::string_view message) {
      std::lock_guard<std::mutex> lock(mu);
      entries.emplace_back(level, std::string(message));
    };
  }
  size_t CountContaining(LogLevel level, std::string_view text) {
    std::lock_guard<std::mutex> lock(mu);
    size_t n = 0;
    for (const auto& [l, m] : entries) n += (l == level && m.find(text) != std::string::npos);
    return n;
  }
};

struct LineRecorder {
  std::mutex mu;
  std::vector<std::string> lines;
  KeyLogFn Fn() {
    return [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(mu);
      lines.emplace_back(line);
    };
  }
};

std::vector<std::string> Words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> w;
  for (std::string s; in >> s;) w.push_back(s);
  return w;
}

TEST(KeyLogOptionTest, CallbackReceivesTheLineBothEndsAgreeOn) {
  LineRecorder server_lines, client_lines;
  LogRecorder server_log, client_log;
  ServerOptions so;
  so.key_log_callback = server_lines.Fn();
  so.log = server_log.Fn();
  ClientOptions co;
  co.key_log_callback = client_lines.Fn();
  co.log = client_log.Fn();
  co.aeads = {Aead::kChaCha20Poly1305};

  ::testing::internal::CaptureStderr();
  auto server = Server::Create(so);
  auto client = Client::Create(co);
  ASSERT_TRUE(server.ok() && client.ok());
  ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
  Pair p = ConnectOnce(*server.value(), *client.value());
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(p.client.ok()) << p.client.status().ToString();
  ASSERT_TRUE(p.server.ok()) << p.server.status().ToString();

  // The warning that keys are exported went to the log, not to stderr.
  EXPECT_EQ(server_log.CountContaining(LogLevel::kWarning, "key logging is on"), 1u);
  EXPECT_EQ(client_log.CountContaining(LogLevel::kWarning, "key logging is on"), 1u);
  EXPECT_EQ(err, "");

  ASSERT_EQ(client_lines.lines.size(), 1u);
  ASSERT_EQ(server_lines.lines.size(), 1u);
  EXPECT_EQ(client_lines.lines[0], server_lines.lines[0]);
  const std::string& line = client_lines.lines[0];
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  const std::vector<std::string> w = Words(line);
  ASSERT_EQ(w.size(), 6u) << line;
  EXPECT_EQ(w[0], "TCPCRYPT_MK0");
  EXPECT_EQ(w[2], p.client.value()->session_id_hex());
  EXPECT_EQ(w[3], "0010");  // ChaCha20-Poly1305
  EXPECT_EQ(w[4], "kab");
  // The logged key is not in any warning.
  for (const auto& [level, message] : client_log.entries) {
    EXPECT_EQ(message.find(w[5]), std::string::npos) << message;
  }
}

TEST(KeyLogOptionTest, RefusedFileIsReportedThroughTheLogNotStderr) {
  const std::string dir = testing::MakeScratchDir("tcpcrypt-klog");
  ASSERT_FALSE(dir.empty());
  const std::string target = dir + "/target";
  const std::string link = dir + "/keys";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  LogRecorder log;
  ClientOptions co;
  co.key_log_file = link;
  co.log = log.Fn();

  ::testing::internal::CaptureStderr();
  auto server = Server::Create(ServerOptions{});
  auto client = Client::Create(co);
  ASSERT_TRUE(server.ok() && client.ok());
  ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
  Pair p = ConnectOnce(*server.value(), *client.value());
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(p.client.ok()) << p.client.status().ToString();
  EXPECT_EQ(err, "");
  EXPECT_EQ(log.CountContaining(LogLevel::kWarning, "key logging is on: session keys are being "
                                                    "written to " + link),
            1u);
  EXPECT_EQ(log.CountContaining(LogLevel::kWarning, "refused (a symbolic link; nothing logged)"),
            1u);
  struct stat st {};
  EXPECT_NE(lstat(target.c_str(), &st), 0);  // nothing written through the link
  testing::RemoveScratchDir(dir);
}

TEST(KeyLogOptionTest, KeyLogFileOption) {
  const std::string dir = testing::MakeScratchDir("tcpcrypt-klog");
  ASSERT_FALSE(dir.empty());
  const std::string path = dir + "/keys";
  ServerOptions so;
  so.key_log_file = path;
  so.log = [](LogLevel, std::string_view) {};
  auto server = Server::Create(so);
  auto client = Client::Create(ClientOptions{});
  ASSERT_TRUE(server.ok() && client.ok());
  ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
  Pair p = ConnectOnce(*server.value(), *client.value());
  ASSERT_TRUE(p.server.ok()) << p.server.status().ToString();
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string text = ReadAll(path);
  const std::vector<std::string> w = Words(text);
  ASSERT_EQ(w.size(), 6u) << text;
  EXPECT_EQ(w[2], p.server.value()->session_id_hex());
  testing::RemoveScratchDir(dir);
}

TEST(KeyLogOptionTest, TheEnvironmentVariableAloneLogsNothing) {
  const std::string dir = testing::MakeScratchDir("tcpcrypt-klog");
  ASSERT_FALSE(dir.empty());
  const std::string path = dir + "/keys";
  ASSERT_EQ(setenv("TCPCRYPT_KEYLOGFILE", path.c_str(), 1), 0);
  ::testing::internal::CaptureStderr();
  auto server = Server::Create(ServerOptions{});
  auto client = Client::Create(ClientOptions{});
  ASSERT_TRUE(server.ok() && client.ok());
  ASSERT_TRUE(server.value()->Listen("127.0.0.1", 0).ok());
  Pair p = ConnectOnce(*server.value(), *client.value());
  const std::string err = ::testing::internal::GetCapturedStderr();
  unsetenv("TCPCRYPT_KEYLOGFILE");
  ASSERT_TRUE(p.client.ok()) << p.client.status().ToString();
  ASSERT_TRUE(p.server.ok()) << p.server.status().ToString();
  struct stat st {};
  EXPECT_NE(stat(path.c_str(), &st), 0) << "the library read TCPCRYPT_KEYLOGFILE";
  EXPECT_EQ(err, "");  // no warning either: nothing is logged
  testing::RemoveScratchDir(dir);
}

// --- failure counters by kind ------------------------------------------------

class FailureCountersTest : public ::testing::TestWithParam<bool> {  // true: Serve
 protected:
  void SetUp() override {
    dir_ = testing::MakeScratchDir("tcpcrypt-stats");
    ASSERT_FALSE(dir_.empty());
    std::string error;
    ASSERT_TRUE(auth::x509::WriteServerPki(dir_, "localhost", auth::x509::PkiKeyType::kEcdsaP256,
                                           30, &error))
        << error;
    ASSERT_TRUE(testing::AddTestUser(dir_ + "/users.db", "alice", "pw"));
    ServerOptions o;
    o.plans = {{AuthMechanism::kCmacPassword}};
    o.users_file = dir_ + "/users.db";
    o.password_hashing = PasswordHashing::kMinimumForTestsOnly;
    o.accept_tls = true;
    o.cert_file = dir_ + "/server.pem";
    o.key_file = dir_ + "/server.key";
    o.timeouts.handshake_ms = 300;
    o.timeouts.auth_ms = 300;
    o.max_pending_handshakes = 1;
    auto server = Server::Create(o);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server.value());
    ASSERT_TRUE(server_->Listen("127.0.0.1", 0).ok());
    if (GetParam()) {
      serve_ = std::thread([this] { (void)server_->Serve([](std::unique_ptr<Session>) {}, 2); });
    } else {
      accept_ = std::thread([this] {
        while (server_->Accept().ok()) {
        }
      });
    }
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Stop();
    if (serve_.joinable()) serve_.join();
    if (accept_.joinable()) accept_.join();
    testing::RemoveScratchDir(dir_);
  }

  // WaitFailed waits (bounded) until |failed| reaches |n|, and returns the
  // stats then.
  ServerStats WaitFailed(uint64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    ServerStats s = server_->stats();
    while (s.failed < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
      s = server_->stats();
    }
    return s;
  }

  static uint64_t SumOfKinds(const ServerStats& s) {
    return s.not_tcpcrypt + s.handshake_timeout + s.handshake_failed + s.tls_failed +
           s.auth_timeout + s.auth_failed + s.overloaded + s.other_failed;
  }

  std::string dir_;
  std::unique_ptr<Server> server_;
  std::thread serve_, accept_;
};

TEST_P(FailureCountersTest, EachKindIsCountedWhereItIsDecided) {
  const uint16_t port = server_->port();

  // A plain TCP (HTTP) client.
  int raw = RawConnect(port);
  ASSERT_GE(raw, 0);
  ASSERT_EQ(write(raw, "GET / HTTP/1.0\r\n\r\n", 18), 18);
  WaitClosed(raw);
  close(raw);
  ServerStats s = WaitFailed(1);
  EXPECT_EQ(s.not_tcpcrypt, 1u);
  EXPECT_EQ(SumOfKinds(s), s.failed);

  // A silent client: nothing within handshake_ms.
  raw = RawConnect(port);
  ASSERT_GE(raw, 0);
  WaitClosed(raw);
  close(raw);
  s = WaitFailed(2);
  EXPECT_EQ(s.handshake_timeout, 1u);

  // A tcpcrypt client that does not run authentication (its a bit is 0):
  // the server's engine refuses it in the handshake.
  {
    inband::Options o;
    o.engine.application_aware = false;
    inband::Status st;
    auto conn = inband::Connection::Connect("127.0.0.1", port, std::move(o), &st);
    if (conn != nullptr) WaitClosed(conn->fd());
  }
  s = WaitFailed(3);
  EXPECT_EQ(s.handshake_failed, 1u);

  // A TLS record that is not a ClientHello.
  raw = RawConnect(port);
  ASSERT_GE(raw, 0);
  const unsigned char kBadTls[] = {0x16, 0x03, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'};
  ASSERT_EQ(write(raw, kBadTls, sizeof(kBadTls)), static_cast<ssize_t>(sizeof(kBadTls)));
  WaitClosed(raw);
  close(raw);
  s = WaitFailed(4);
  EXPECT_EQ(s.tls_failed, 1u);

  // A wrong password.
  ClientOptions co;
  co.mechanisms = {AuthMechanism::kCmacPassword};
  co.user = "alice";
  co.password = std::make_shared<Password>("guess");
  co.min_password_hashing = PasswordHashing::kMinimumForTestsOnly;
  auto client = Client::Create(co);
  ASSERT_TRUE(client.ok());
  auto bad = client.value()->Connect("127.0.0.1", port);
  EXPECT_EQ(bad.status().code(), StatusCode::kUnauthenticated) << bad.status().ToString();
  s = WaitFailed(5);
  EXPECT_EQ(s.auth_failed, 1u);

  // A client that completes the handshake, says it authenticates, then
  // says nothing: auth_ms passes.
  {
    inband::Options o;
    o.engine.application_aware = true;
    inband::Status st;
    auto conn = inband::Connection::Connect("127.0.0.1", port, std::move(o), &st);
    ASSERT_NE(conn, nullptr) << st.message;
    s = WaitFailed(6);
  }
  EXPECT_EQ(s.auth_timeout, 1u);

  if (GetParam()) {
    // Serve: with max_pending_handshakes = 1, a second connection while a
    // silent one is pending is closed at once.
    const int first = RawConnect(port);
    ASSERT_GE(first, 0);
    const int second = RawConnect(port);
    ASSERT_GE(second, 0);
    s = WaitFailed(8);  // the overloaded one, then the silent one times out
    EXPECT_EQ(s.overloaded, 1u);
    EXPECT_EQ(s.handshake_timeout, 2u);
    close(first);
    close(second);
  }

  s = server_->stats();
  EXPECT_EQ(s.not_tcpcrypt, 1u);
  EXPECT_EQ(s.handshake_failed, 1u);
  EXPECT_EQ(s.tls_failed, 1u);
  EXPECT_EQ(s.auth_failed, 1u);
  EXPECT_EQ(s.auth_timeout, 1u);
  EXPECT_EQ(s.other_failed, 0u);
  EXPECT_EQ(s.authenticated, 0u);
  EXPECT_EQ(SumOfKinds(s), s.failed);
}

INSTANTIATE_TEST_SUITE_P(AcceptAndServe, FailureCountersTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? std::string("Serve") : std::string("Accept");
                         });

}  // namespace
}  // namespace tcpcrypt
