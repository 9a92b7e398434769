// cli_test.cc: the `tcpcrypt` command-line tool, run as real processes.
//
// Each test starts `tcpcrypt serve` and `tcpcrypt connect` as children
// (posix_spawn) with pipes on their standard streams. Children are owned by
// an RAII handle that kills and reaps them, so nothing outlives a failing
// test. Every wait is bounded.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core_transport/inband/connection.h"

extern char** environ;

namespace tcpcrypt::inband {
namespace {

using Clock = std::chrono::steady_clock;

const std::string kCli = TCPCRYPT_BINARY_DIR "/sdk/tcpcrypt";
constexpr int kWaitMs = 20000;

// --- child processes
// -----------------------------------------------------------

// Child is a spawned process with pipes to its stdin/stdout/stderr. The
// destructor SIGKILLs and reaps it if it is still running.
class Child {
 public:
  struct Pipes {
    bool in = false;   // else /dev/null
    bool out = false;  // else /dev/null
  };

  static std::unique_ptr<Child> Spawn(const std::vector<std::string>& argv,
                                      Pipes pipes) {
    std::signal(SIGPIPE, SIG_IGN);  // a dead child must not kill the test
    auto child = std::make_unique<Child>();
    int in[2] = {-1, -1};
    int out[2] = {-1, -1};
    int err[2] = {-1, -1};
    if ((pipes.in && ::pipe2(in, O_CLOEXEC) != 0) ||
        (pipes.out && ::pipe2(out, O_CLOEXEC) != 0) ||
        ::pipe2(err, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << std::strerror(errno);
      return nullptr;
    }
    UniqueFd in_r(in[0]), out_w(out[1]), err_w(err[1]);
    child->in_.Reset(in[1]);
    child->out_.Reset(out[0]);
    child->err_.Reset(err[0]);
    // Bigger pipes: fewer context switches on the 1 GiB test.
    for (int fd : {in[1], out[0]}) {
      if (fd >= 0) (void)::fcntl(fd, F_SETPIPE_SZ, 1 << 20);
    }

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (pipes.in) {
      posix_spawn_file_actions_adddup2(&fa, in_r.get(), STDIN_FILENO);
    } else {
      posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY,
                                       0);
    }
    if (pipes.out) {
      posix_spawn_file_actions_adddup2(&fa, out_w.get(), STDOUT_FILENO);
    } else {
      posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null",
                                       O_WRONLY, 0);
    }
    posix_spawn_file_actions_adddup2(&fa, err_w.get(), STDERR_FILENO);
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = ::posix_spawnp(&child->pid_, args[0], &fa, nullptr,
                                  args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << std::strerror(rc);
      return nullptr;
    }
    return child;
  }

  Child() = default;
  ~Child() {
    if (pid_ > 0 && !exit_status_.has_value()) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  int in() const { return in_.get(); }
  int out() const { return out_.get(); }
  void CloseIn() { in_.Reset(); }
  const std::string& err_text() const { return err_text_; }

  // Wait reaps the child within |timeout_ms|; returns its exit code, 128 +
  // signal if killed, or nullopt on time-out.
  std::optional<int> Wait(int timeout_ms = kWaitMs) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!exit_status_.has_value()) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exit_status_ =
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (Clock::now() > deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return exit_status_;
  }

  void Signal(int sig) {
    if (pid_ > 0 && !exit_status_.has_value()) ::kill(pid_, sig);
  }

  // ReadErrUntil reads the child's stderr until it contains |needle| or
  // |timeout_ms| passes (or stderr ends). Returns whether it was found.
  bool ReadErrUntil(std::string_view needle, int timeout_ms = kWaitMs) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (err_text_.find(needle) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - Clock::now())
                            .count();
      if (left <= 0 || !err_) return false;
      pollfd p{err_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(err_.get(), buf, sizeof buf);
      if (n <= 0) {
        err_.Reset();
        return err_text_.find(needle) != std::string::npos;
      }
      err_text_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  // DrainErr reads stderr to its end (the child exited) or for |timeout_ms|.
  void DrainErr(int timeout_ms = 2000) {
    (void)ReadErrUntil(std::string(1, '\0'), timeout_ms);
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  UniqueFd in_;
  UniqueFd out_;
  UniqueFd err_;
  std::string err_text_;
};

bool WriteAllFd(int fd, const uint8_t* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// ReadFdUntil reads |fd| until EOF, |want| bytes, or |timeout_ms|.
std::string ReadFd(int fd, size_t want, int timeout_ms = kWaitMs) {
  std::string out;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (out.size() < want) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - Clock::now())
                          .count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[65536];
    const ssize_t n = ::read(fd, buf, std::min(sizeof buf, want - out.size()));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// StartServer runs `tcpcrypt serve --listen 127.0.0.1:0 <extra>` and parses
// the port it prints.
std::unique_ptr<Child> StartServer(const std::vector<std::string>& extra,
                                   Child::Pipes pipes, uint16_t* out_port) {
  std::vector<std::string> argv = {kCli, "serve", "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto server = Child::Spawn(argv, pipes);
  if (server == nullptr) return nullptr;
  if (!server->ReadErrUntil("\n")) {
    ADD_FAILURE() << "server printed nothing: " << server->err_text();
    return nullptr;
  }
  const std::string text = server->err_text();
  const std::string kPrefix = "listening on 127.0.0.1:";
  const size_t at = text.find(kPrefix);
  const size_t eol = text.find('\n', at);
  if (at == std::string::npos || eol == std::string::npos) {
    ADD_FAILURE() << "no 'listening on' line: " << text;
    return nullptr;
  }
  const std::string digits =
      text.substr(at + kPrefix.size(), eol - at - kPrefix.size());
  const unsigned long port = std::strtoul(digits.c_str(), nullptr, 10);
  if (digits.empty() || port == 0 || port > 65535 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    ADD_FAILURE() << "bad port in: " << text;
    return nullptr;
  }
  *out_port = static_cast<uint16_t>(port);
  return server;
}

// SessionIds finds every "<prefix><66 hex digits><suffix>" in |text| and
// returns the hex digits. |suffix| is matched up to the first '*', which
// stands for "anything up to the end of the line".
std::vector<std::string> SessionIds(const std::string& text,
                                    std::string_view prefix = "session-id: ",
                                    std::string_view suffix = "\n") {
  std::vector<std::string> ids;
  const size_t star = suffix.find('*');
  const std::string_view fixed = suffix.substr(0, star);
  for (size_t at = text.find(prefix); at != std::string::npos;
       at = text.find(prefix, at + 1)) {
    const size_t hex_at = at + prefix.size();
    if (text.size() < hex_at + 66 + fixed.size()) continue;
    const std::string hex = text.substr(hex_at, 66);
    if (hex.find_first_not_of("0123456789abcdef") != std::string::npos)
      continue;
    if (text.compare(hex_at + 66, fixed.size(), fixed) != 0) continue;
    if (star != std::string_view::npos &&
        text.find('\n', hex_at + 66 + fixed.size()) == std::string::npos) {
      continue;
    }
    ids.push_back(hex);
  }
  return ids;
}

std::string Target(uint16_t port) {
  return "127.0.0.1:" + std::to_string(port);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kCli.c_str(), X_OK) != 0) {
      FAIL() << kCli << " is missing: build the tcpcrypt_cli target first";
    }
  }
};

// --- (a) both ends print the same session ID
// --------------------------------------

TEST_F(CliTest, BothEndsPrintTheSameSessionId) {
  uint16_t port = 0;
  auto server = StartServer({"--stdio"}, {.in = true, .out = true}, &port);
  ASSERT_NE(server, nullptr);
  auto client =
      Child::Spawn({kCli, "connect", Target(port)}, {.in = true, .out = true});
  ASSERT_NE(client, nullptr);

  const std::string ping = "ping from the client\n";
  ASSERT_TRUE(WriteAllFd(client->in(),
                         reinterpret_cast<const uint8_t*>(ping.data()),
                         ping.size()));
  client->CloseIn();  // the client sends FINp
  EXPECT_EQ(ReadFd(server->out(), ping.size()), ping);

  const std::string pong = "pong from the server\n";
  ASSERT_TRUE(WriteAllFd(server->in(),
                         reinterpret_cast<const uint8_t*>(pong.data()),
                         pong.size()));
  server->CloseIn();  // now the server's FINp; both ends are done
  EXPECT_EQ(ReadFd(client->out(), pong.size() + 1), pong);

  EXPECT_EQ(client->Wait(), 0);
  EXPECT_EQ(server->Wait(), 0);
  client->DrainErr();
  server->DrainErr();
  const auto client_ids = SessionIds(client->err_text());
  const auto server_ids = SessionIds(server->err_text());
  ASSERT_EQ(client_ids.size(), 1u) << client->err_text();
  ASSERT_EQ(server_ids.size(), 1u) << server->err_text();
  EXPECT_EQ(client_ids[0], server_ids[0]);
  EXPECT_NE(client->err_text().find("tep: curve25519\n"), std::string::npos);
  EXPECT_NE(server->err_text().find("cipher: aes128gcm\n"), std::string::npos);
}

// The key log is the CLI's to turn on, from TCPCRYPT_KEYLOGFILE (the library
// reads no environment): the client logs the session's line and warns.
TEST_F(CliTest, KeyLogFileFromTheEnvironment) {
  char dir_template[] = "/tmp/tcpcrypt_cli_keylog_XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/keys";
  uint16_t port = 0;
  auto server = StartServer({"--stdio"}, {.in = true, .out = true}, &port);
  ASSERT_NE(server, nullptr);
  ASSERT_EQ(::setenv("TCPCRYPT_KEYLOGFILE", path.c_str(), 1), 0);
  auto client =
      Child::Spawn({kCli, "connect", Target(port)}, {.in = true, .out = true});
  ::unsetenv("TCPCRYPT_KEYLOGFILE");
  ASSERT_NE(client, nullptr);
  client->CloseIn();
  server->CloseIn();
  EXPECT_EQ(client->Wait(), 0);
  EXPECT_EQ(server->Wait(), 0);
  client->DrainErr();
  server->DrainErr();
  EXPECT_NE(client->err_text().find("tcpcrypt: WARNING: TCPCRYPT_KEYLOGFILE is set"),
            std::string::npos)
      << client->err_text();
  EXPECT_EQ(server->err_text().find("WARNING"), std::string::npos) << server->err_text();
  const auto ids = SessionIds(client->err_text());
  ASSERT_EQ(ids.size(), 1u) << client->err_text();
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ::unlink(path.c_str());
  ::rmdir(dir_template);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("TCPCRYPT_MK0 ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(" " + ids[0] + " "), std::string::npos) << lines[0];
}

TEST_F(CliTest, JsonReportsAndChosenAlgorithms) {
  uint16_t port = 0;
  auto server = StartServer(
      {"--stdio", "--json", "--cipher", "chacha20poly1305,aes128gcm"}, {},
      &port);
  ASSERT_NE(server, nullptr);
  auto client = Child::Spawn(
      {kCli, "connect", "--json", "--tep", "p256", "--tep", "curve25519",
       "--cipher", "aes128gcm,chacha20poly1305", Target(port)},
      {});
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->Wait(), 0);
  EXPECT_EQ(server->Wait(), 0);
  client->DrainErr();
  server->DrainErr();
  constexpr std::string_view kJsonPrefix = "{\"session_id\":\"";
  constexpr std::string_view kJsonSuffix =
      "\",\"tep\":\"curve25519\",\"cipher\":\"chacha20poly1305\","
      "\"resumed\":false,\"peer\":\"127.0.0.1:*";
  const auto client_ids =
      SessionIds(client->err_text(), kJsonPrefix, kJsonSuffix);
  const auto server_ids =
      SessionIds(server->err_text(), kJsonPrefix, kJsonSuffix);
  ASSERT_EQ(client_ids.size(), 1u) << client->err_text();
  ASSERT_EQ(server_ids.size(), 1u) << server->err_text();
  EXPECT_EQ(client_ids[0], server_ids[0]);
  EXPECT_EQ(client->err_text().find("session-id:"), std::string::npos);
}

// --- (b) 1 GiB through the echo server
// -----------------------------------------------

// Stream is a deterministic pseudo-random byte stream (xorshift64*).
class Stream {
 public:
  Stream() = default;
  explicit Stream(uint64_t seed) : x_(seed) {}
  void Fill(uint8_t* out, size_t n) {  // n is a multiple of 8
    for (size_t i = 0; i < n; i += 8) {
      x_ ^= x_ >> 12;
      x_ ^= x_ << 25;
      x_ ^= x_ >> 27;
      const uint64_t v = x_ * 0x2545F4914F6CDD1Dull;
      std::memcpy(out + i, &v, 8);
    }
  }

 private:
  uint64_t x_ = 0x9E3779B97F4A7C15ull;
};

struct Sha256 {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(),
                                                              &EVP_MD_CTX_free};
  Sha256() {
    EXPECT_EQ(EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr), 1);
  }
  void Update(const void* p, size_t n) {
    EXPECT_EQ(EVP_DigestUpdate(ctx.get(), p, n), 1);
  }
  std::array<uint8_t, 32> Final() {
    std::array<uint8_t, 32> d{};
    unsigned len = 0;
    EXPECT_EQ(EVP_DigestFinal_ex(ctx.get(), d.data(), &len), 1);
    return d;
  }
};

size_t EchoBytes() {
  const char* env = std::getenv("TCPCRYPT_CLI_TEST_BYTES");  // for quick runs
  if (env != nullptr && *env != '\0') {
    return static_cast<size_t>(std::strtoull(env, nullptr, 10)) & ~size_t{7};
  }
  return size_t{1} << 30;
}

TEST_F(CliTest, OneGibThroughTheEchoServer) {
  uint16_t port = 0;
  auto server = StartServer({}, {}, &port);
  ASSERT_NE(server, nullptr);
  auto client =
      Child::Spawn({kCli, "connect", Target(port)}, {.in = true, .out = true});
  ASSERT_NE(client, nullptr);

  const size_t total = EchoBytes();
  constexpr size_t kBlock = size_t{1} << 20;
  std::array<uint8_t, 32> sent_digest{};
  size_t sent = 0;
  const auto start = Clock::now();
  std::jthread writer([&] {
    Sha256 sha;
    Stream stream;
    std::vector<uint8_t> block(kBlock);
    while (sent < total) {
      const size_t n = std::min(kBlock, total - sent);
      stream.Fill(block.data(), n);
      sha.Update(block.data(), n);
      if (!WriteAllFd(client->in(), block.data(), n)) break;
      sent += n;
    }
    sent_digest = sha.Final();
    client->CloseIn();
  });

  Sha256 sha;
  size_t received = 0;
  std::vector<uint8_t> buf(kBlock);
  for (;;) {
    pollfd p{client->out(), POLLIN, 0};
    const int r = ::poll(&p, 1, 60000);
    ASSERT_GT(r, 0) << "no echo for 60 s after " << received << " bytes";
    const ssize_t n = ::read(client->out(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    ASSERT_GE(n, 0) << std::strerror(errno);
    if (n == 0) break;
    sha.Update(buf.data(), static_cast<size_t>(n));
    received += static_cast<size_t>(n);
  }
  writer.join();
  const std::array<uint8_t, 32> received_digest = sha.Final();
  const double secs =
      std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(client->Wait(), 0) << client->err_text();

  EXPECT_EQ(sent, total);
  EXPECT_EQ(received, total);
  EXPECT_EQ(sent_digest, received_digest);
  const double mib = static_cast<double>(total) / (1 << 20);
  std::printf("[ info     ] echoed %.0f MiB in %.2f s: %.0f MiB/s each way\n",
              mib, secs, mib / secs);
  RecordProperty("echo_mib", std::to_string(static_cast<int>(mib)));
  RecordProperty("echo_seconds", std::to_string(secs));
  client->DrainErr();
  EXPECT_EQ(SessionIds(client->err_text()).size(), 1u) << client->err_text();
}

// Many clients at once against one echo server.
TEST_F(CliTest, EchoServesManyConnectionsConcurrently) {
  uint16_t port = 0;
  auto server = StartServer({}, {}, &port);
  ASSERT_NE(server, nullptr);
  constexpr int kClients = 8;
  constexpr size_t kBytes = 2 << 20;
  std::vector<std::unique_ptr<Child>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(Child::Spawn({kCli, "connect", Target(port)},
                                   {.in = true, .out = true}));
    ASSERT_NE(clients.back(), nullptr);
  }
  std::vector<std::string> inputs(kClients);
  std::vector<std::jthread> writers;
  for (int i = 0; i < kClients; ++i) {
    inputs[i].resize(kBytes);
    for (size_t k = 0; k < kBytes; ++k) {
      inputs[i][k] =
          static_cast<char>('a' + (k * 7 + static_cast<size_t>(i)) % 26);
    }
    writers.emplace_back([&, i] {
      (void)WriteAllFd(clients[i]->in(),
                       reinterpret_cast<const uint8_t*>(inputs[i].data()),
                       inputs[i].size());
      clients[i]->CloseIn();
    });
  }
  std::vector<std::string> outputs(kClients);
  std::vector<std::jthread> readers;
  for (int i = 0; i < kClients; ++i) {
    readers.emplace_back(
        [&, i] { outputs[i] = ReadFd(clients[i]->out(), kBytes + 1); });
  }
  writers.clear();
  readers.clear();  // joins
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(clients[i]->Wait(), 0) << i;
    EXPECT_TRUE(outputs[i] == inputs[i])
        << "client " << i << " got " << outputs[i].size() << " bytes";
  }
  server->ReadErrUntil("session-id", 2000);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server->Signal(SIGTERM);
  server->Wait();
  server->DrainErr();
  EXPECT_EQ(SessionIds(server->err_text()).size(),
            static_cast<size_t>(kClients))
      << server->err_text();
}

// --- (c) nothing readable on the wire
// ---------------------------------------------

bool HaveTcpdump() {
  for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"}) {
    if (::access((std::string(dir) + "tcpdump").c_str(), X_OK) == 0)
      return true;
  }
  return false;
}

std::string ReadWholeFile(const std::string& path) {
  std::string out;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

bool Contains(const std::string& hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) !=
         hay.end();
}

TEST_F(CliTest, CaptureShowsNoPlaintext) {
  if (::geteuid() != 0) GTEST_SKIP() << "capturing on lo needs root";
  if (!HaveTcpdump()) GTEST_SKIP() << "tcpdump is not installed";

  uint16_t port = 0;
  auto server = StartServer({}, {}, &port);
  ASSERT_NE(server, nullptr);
  char pcap_template[] = "/tmp/tcpcrypt_capture_XXXXXX";
  const int tmp = ::mkstemp(pcap_template);
  ASSERT_GE(tmp, 0);
  ::close(tmp);
  const std::string pcap = pcap_template;
  struct Unlink {
    std::string path;
    ~Unlink() { ::unlink(path.c_str()); }
  } unlink_pcap{pcap};

  // --immediate-mode: hand each packet over at once, so none is still in
  // the kernel's ring when tcpdump is stopped.
  auto tcpdump =
      Child::Spawn({"tcpdump", "-i", "lo", "-n", "-U", "--immediate-mode", "-s",
                    "0", "-w", pcap, "tcp port " + std::to_string(port)},
                   {});
  ASSERT_NE(tcpdump, nullptr);
  if (!tcpdump->ReadErrUntil("listening on", 10000)) {
    GTEST_SKIP() << "tcpdump could not capture on lo: " << tcpdump->err_text();
  }

  // The canary goes through tcpcrypt and must not appear in the capture...
  const std::string kCanary = "TCPCRYPT-PLAINTEXT-CANARY";
  std::string canary;
  while (canary.size() < (64 << 10)) canary += kCanary;
  auto client =
      Child::Spawn({kCli, "connect", Target(port)}, {.in = true, .out = true});
  ASSERT_NE(client, nullptr);
  std::jthread writer([&] {
    (void)WriteAllFd(client->in(),
                     reinterpret_cast<const uint8_t*>(canary.data()),
                     canary.size());
    client->CloseIn();
  });
  EXPECT_TRUE(ReadFd(client->out(), canary.size() + 1) == canary);
  writer.join();
  EXPECT_EQ(client->Wait(), 0);

  // ...while a control marker sent in clear on the same port must, so the
  // test cannot pass by capturing nothing useful.
  const std::string kControl = "TCPCRYPT-CONTROL-MARKER-SENT-IN-CLEAR";
  {
    UniqueFd raw(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(raw);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(raw.get(), reinterpret_cast<sockaddr*>(&a), sizeof a),
              0);
    ASSERT_TRUE(WriteAllFd(raw.get(),
                           reinterpret_cast<const uint8_t*>(kControl.data()),
                           kControl.size()));
    (void)ReadFd(raw.get(), 1 << 16, 2000);  // the server gives up on us
  }
  // Stop tcpdump once the capture file has stopped growing.
  off_t last_size = -1;
  for (int stable = 0, i = 0; stable < 3 && i < 50; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    struct stat sb {};
    const off_t size = ::stat(pcap.c_str(), &sb) == 0 ? sb.st_size : -1;
    stable = size == last_size ? stable + 1 : 0;
    last_size = size;
  }
  tcpdump->Signal(SIGINT);
  ASSERT_TRUE(tcpdump->Wait(10000).has_value());

  const std::string captured = ReadWholeFile(pcap);
  // 64 KiB each way plus headers: a capture that saw the transfer is big.
  EXPECT_GT(captured.size(), 2 * canary.size()) << "capture too small";
  EXPECT_TRUE(Contains(captured, kControl)) << "control marker not captured";
  EXPECT_FALSE(Contains(captured, kCanary)) << "PLAINTEXT ON THE WIRE";
  EXPECT_FALSE(Contains(captured, "PLAINTEXT-CANARY"));
}

// --- (d) failures and exit codes
// ----------------------------------------------------

TEST_F(CliTest, ClosedPortExitsTwo) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(s);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  const uint16_t port = ntohs(a.sin_port);
  s.Reset();  // bound, never listening, now closed: connecting is refused

  auto client = Child::Spawn({kCli, "connect", Target(port)}, {});
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->Wait(), 2);
  client->DrainErr();
  EXPECT_EQ(client->err_text(),
            "tcpcrypt: connect " + Target(port) + ": Connection refused\n");
}

TEST_F(CliTest, PlainTcpServerExitsThree) {
  UniqueFd lfd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(lfd);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(lfd.get(), 1), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(lfd.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  const uint16_t port = ntohs(a.sin_port);
  std::jthread ssh_server([&] {
    pollfd p{lfd.get(), POLLIN, 0};
    if (::poll(&p, 1, kWaitMs) != 1) return;
    UniqueFd c(::accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) return;
    const std::string banner = "SSH-2.0-x\r\n";
    (void)WriteAllFd(c.get(), reinterpret_cast<const uint8_t*>(banner.data()),
                     banner.size());
    (void)ReadFd(c.get(), 1 << 16, 5000);  // until the client hangs up
  });

  auto client = Child::Spawn({kCli, "connect", Target(port)}, {});
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->Wait(), 3);
  client->DrainErr();
  EXPECT_EQ(client->err_text(),
            "tcpcrypt: " + Target(port) +
                ": handshake failed: ENO_ABSENT (the peer does not speak "
                "tcpcrypt)\n");
}

TEST_F(CliTest, UsageErrorsExitOneAndHelpExitsZero) {
  auto help = Child::Spawn({kCli, "--help"}, {.in = false, .out = true});
  ASSERT_NE(help, nullptr);
  const std::string text = ReadFd(help->out(), 1 << 20);
  EXPECT_EQ(help->Wait(), 0);
  EXPECT_NE(text.find("Exit status:"), std::string::npos) << text;
  EXPECT_NE(text.find("tcpcrypt serve --listen"), std::string::npos);

  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{kCli}, std::vector<std::string>{kCli, "serve"},
        std::vector<std::string>{kCli, "connect", "no-port"},
        std::vector<std::string>{kCli, "connect", "--tep", "rsa",
                                 "127.0.0.1:1"},
        std::vector<std::string>{kCli, "connect", "--cipher", "rc4",
                                 "127.0.0.1:1"}}) {
    auto c = Child::Spawn(argv, {});
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->Wait(), 1) << argv.back();
    c->DrainErr();
    EXPECT_EQ(c->err_text().rfind("tcpcrypt: ", 0), 0u) << c->err_text();
  }
}

// --- (c) a half-close of one direction never ends the other ------------------

// PumpIn writes |total| bytes of Stream(|seed|) to |fd| in 64 KiB blocks,
// then closes it (via |close_fd|); returns the SHA-256 of what was written
// and sets |*out_sent|. Stops early if a write fails (the child exited).
std::array<uint8_t, 32> PumpIn(int fd, uint64_t seed, size_t total,
                               size_t* out_sent) {
  Sha256 sha;
  Stream stream(seed);
  std::vector<uint8_t> block(64 << 10);
  size_t sent = 0;
  while (sent < total) {
    const size_t n = std::min(block.size(), total - sent);
    stream.Fill(block.data(), n);
    if (!WriteAllFd(fd, block.data(), n)) break;
    sha.Update(block.data(), n);
    sent += n;
  }
  *out_sent = sent;
  return sha.Final();
}

// DrainOut reads |fd| to its end (or for kWaitMs); returns the digest and
// sets |*out_received|.
std::array<uint8_t, 32> DrainOut(int fd, size_t* out_received) {
  Sha256 sha;
  size_t received = 0;
  const auto deadline = Clock::now() + std::chrono::milliseconds(kWaitMs);
  std::vector<char> buf(1 << 16);
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    sha.Update(buf.data(), static_cast<size_t>(n));
    received += static_cast<size_t>(n);
  }
  *out_received = received;
  return sha.Final();
}

// DigestOf is the SHA-256 of the first |total| bytes of Stream(|seed|).
std::array<uint8_t, 32> DigestOf(uint64_t seed, size_t total) {
  Sha256 sha;
  Stream stream(seed);
  std::vector<uint8_t> block(64 << 10);
  for (size_t done = 0; done < total;) {
    const size_t n = std::min(block.size(), total - done);
    stream.Fill(block.data(), n);
    sha.Update(block.data(), n);
    done += n;
  }
  return sha.Final();
}

constexpr size_t kStreamBytes = 5000000;  // a multiple of 8

// Issue 9, point 7: `serve --stdio` with stdin already at end of file sends
// its FINp at once; `connect <file` must still deliver the whole file, and
// both ends exit 0 only then.
TEST_F(CliTest, ServerStdinAtEofStillReceivesTheWholeStream) {
  uint16_t port = 0;
  auto server = StartServer({"--stdio"}, {.in = false, .out = true}, &port);
  ASSERT_NE(server, nullptr);
  auto client =
      Child::Spawn({kCli, "connect", Target(port)}, {.in = true, .out = true});
  ASSERT_NE(client, nullptr);

  size_t sent = 0, to_server = 0, to_client = 0;
  std::array<uint8_t, 32> sent_digest{}, server_digest{}, client_digest{};
  {
    std::jthread writer([&] {
      sent_digest = PumpIn(client->in(), 1, kStreamBytes, &sent);
      client->CloseIn();
    });
    std::jthread server_reader(
        [&] { server_digest = DrainOut(server->out(), &to_server); });
    client_digest = DrainOut(client->out(), &to_client);
  }
  EXPECT_EQ(client->Wait(), 0) << client->err_text();
  EXPECT_EQ(server->Wait(), 0) << server->err_text();
  EXPECT_EQ(sent, kStreamBytes);
  EXPECT_EQ(to_server, kStreamBytes);
  EXPECT_EQ(server_digest, sent_digest);
  EXPECT_EQ(server_digest, DigestOf(1, kStreamBytes));
  EXPECT_EQ(to_client, 0u);  // the server's stdin was empty
  EXPECT_EQ(client_digest, DigestOf(1, 0));
}

// Both directions at once, each half-closed at its own time.
TEST_F(CliTest, BothDirectionsCarryFiveMillionBytes) {
  uint16_t port = 0;
  auto server = StartServer({"--stdio"}, {.in = true, .out = true}, &port);
  ASSERT_NE(server, nullptr);
  auto client =
      Child::Spawn({kCli, "connect", Target(port)}, {.in = true, .out = true});
  ASSERT_NE(client, nullptr);
  size_t c_sent = 0, s_sent = 0, to_server = 0, to_client = 0;
  std::array<uint8_t, 32> server_digest{}, client_digest{};
  {
    std::jthread client_writer([&] {
      (void)PumpIn(client->in(), 1, kStreamBytes, &c_sent);
      client->CloseIn();
    });
    std::jthread server_writer([&] {
      (void)PumpIn(server->in(), 2, kStreamBytes / 2, &s_sent);
      server->CloseIn();
    });
    std::jthread server_reader(
        [&] { server_digest = DrainOut(server->out(), &to_server); });
    client_digest = DrainOut(client->out(), &to_client);
  }
  EXPECT_EQ(client->Wait(), 0) << client->err_text();
  EXPECT_EQ(server->Wait(), 0) << server->err_text();
  EXPECT_EQ(to_server, kStreamBytes);
  EXPECT_EQ(server_digest, DigestOf(1, kStreamBytes));
  EXPECT_EQ(to_client, kStreamBytes / 2);
  EXPECT_EQ(client_digest, DigestOf(2, kStreamBytes / 2));
}

// The receiver dies mid-stream: the sender must not exit 0.
TEST_F(CliTest, SenderExitsNonZeroWhenTheReceiverDiesMidStream) {
  uint16_t port = 0;
  auto server = StartServer({"--stdio"}, {.in = false, .out = true}, &port);
  ASSERT_NE(server, nullptr);
  auto client =
      Child::Spawn({kCli, "connect", Target(port)}, {.in = true, .out = true});
  ASSERT_NE(client, nullptr);
  size_t sent = 0;
  std::jthread writer([&] {
    // Far more than the socket buffers hold, so the client is still
    // sending when the server dies.
    (void)PumpIn(client->in(), 1, size_t{1} << 30, &sent);
    client->CloseIn();
  });
  // Let the first megabyte through, then kill the receiver.
  const std::string first = ReadFd(server->out(), size_t{1} << 20);
  ASSERT_EQ(first.size(), size_t{1} << 20) << server->err_text();
  server->Signal(SIGKILL);
  EXPECT_EQ(server->Wait(), 128 + SIGKILL);
  const std::optional<int> code = client->Wait();
  if (!code.has_value()) client->Signal(SIGKILL);  // so the writer ends
  ASSERT_TRUE(code.has_value()) << "the sender hangs";
  EXPECT_NE(*code, 0);
  client->DrainErr();
  EXPECT_FALSE(client->err_text().empty());
}

}  // namespace
}  // namespace tcpcrypt::inband
