// Where `tcpcrypt connect --auth pake` gets its password: never from
// standard input (that is the data), from /dev/tty with echo off, or from
// --password-file / TCPCRYPT_PASSWORD; and a fatal signal at the prompt
// gives the terminal its echo back.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>

#include "tests/integration/cli_run.h"

namespace {

const std::string kTool = std::string(TCPCRYPT_BINARY_DIR) + "/sdk/tcpcrypt";

using tcpcrypt::testing::Contains;
using tcpcrypt::testing::Ran;

// Shell runs |cmd| with stderr joined to stdout, unless |cmd| redirects it.
Ran Shell(const std::string& cmd) {
  const bool own_stderr = cmd.find(" 2>") != std::string::npos;
  return tcpcrypt::testing::RunShell(own_stderr ? cmd : cmd + " 2>&1");
}

// WaitUntil reads |fd| into |seen| until |done(*seen)| (20 s at most).
bool WaitUntil(int fd, std::string* seen, const std::function<bool(const std::string&)>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done(*seen)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[256];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    seen->append(buf, static_cast<size_t>(n));
  }
  return true;
}

// WaitForText reads |fd| until |text| has appeared in |seen|.
bool WaitForText(int fd, const std::string& text, std::string* seen) {
  return WaitUntil(fd, seen, [&](const std::string& s) { return Contains(s, text); });
}

class CliPasswordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tcpcrypt-password-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    db_ = dir_ + "/users.db";
    pw_ = dir_ + "/pw";
    {
      std::ofstream f(pw_);
      f << "right\n";
    }
    ASSERT_EQ(chmod(pw_.c_str(), 0600), 0);
    Ran r = Shell("setsid -w " + kTool + " user add alice --users " + db_ +
                  " --realm 127.0.0.1 --kdf test --mechanism pake --password-file " + pw_ + " </dev/null");
    ASSERT_EQ(r.code, 0) << r.out;
  }
  void TearDown() override {
    if (server_ > 0) {
      kill(server_, SIGTERM);
      waitpid(server_, nullptr, 0);
    }
    if (err_fd_ >= 0) close(err_fd_);
    (void)!std::system(("rm -rf " + dir_).c_str());
  }

  // StartServer runs an echo server that requires SPAKE2+ and returns its
  // port (0 on failure); |server_err_| collects its stderr up to then.
  int StartServer() {
    int err_pipe[2];
    if (pipe2(err_pipe, O_CLOEXEC) != 0) return 0;
    server_ = fork();
    if (server_ == 0) {
      const int devnull = open("/dev/null", O_RDWR);
      dup2(devnull, 0);
      dup2(devnull, 1);
      dup2(err_pipe[1], 2);
      setsid();
      execl(kTool.c_str(), kTool.c_str(), "serve", "--listen", "127.0.0.1:0", "--auth", "pake",
            "--users", db_.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(err_pipe[1]);
    err_fd_ = err_pipe[0];
    auto listening = [](const std::string& s) {
      const size_t at = s.find("listening on ");
      return at != std::string::npos && s.find('\n', at) != std::string::npos;
    };
    if (!WaitUntil(err_fd_, &server_err_, listening)) return 0;
    const size_t nl = server_err_.find('\n', server_err_.find("listening on "));
    const size_t colon = server_err_.rfind(':', nl);
    return std::atoi(server_err_.substr(colon + 1, nl - colon - 1).c_str());
  }

  std::string dir_, db_, pw_, server_err_;
  int err_fd_ = -1;
  pid_t server_ = -1;
};

// With no terminal, piped standard input is not taken as the password:
// the client fails with a clear error before it connects anywhere.
TEST_F(CliPasswordTest, NoTerminalAndNoPasswordSourceFailsClearly) {
  Ran r = Shell("echo right | env -u TCPCRYPT_PASSWORD timeout 60 setsid -w " + kTool +
                " connect 127.0.0.1:9 --auth pake --user alice");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(Contains(r.out, "no terminal to ask for the password on (/dev/tty: ")) << r.out;
  EXPECT_TRUE(Contains(r.out, "--password-file FILE or set TCPCRYPT_PASSWORD (less safe)"))
      << r.out;
  EXPECT_TRUE(Contains(r.out, "standard input is never read for the password")) << r.out;
}

// With --password-file (or the environment variable), piped standard input
// is the data: the echo server sends it back.
TEST_F(CliPasswordTest, PipedStdinIsDataWithAPasswordFile) {
  const int port = StartServer();
  ASSERT_GT(port, 0) << server_err_;
  const std::string target = " connect 127.0.0.1:" + std::to_string(port) +
                             " --auth pake --user alice --kdf-floor test";
  Ran r = Shell("echo hi | env -u TCPCRYPT_PASSWORD timeout 60 setsid -w " + kTool + target +
                " --password-file " + pw_ + " 2>/dev/null");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "hi\n");

  r = Shell("echo over-env | TCPCRYPT_PASSWORD=right timeout 60 setsid -w " + kTool + target +
            " 2>/dev/null");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "over-env\n");

  // The old behaviour would have taken "right" from stdin as the password;
  // now the line is data and, with no password source, nothing is sent.
  r = Shell("echo right | env -u TCPCRYPT_PASSWORD timeout 60 setsid -w " + kTool + target);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_FALSE(Contains(r.out, "authenticated:")) << r.out;

  // A password file the group or others can read is refused.
  ASSERT_EQ(chmod(pw_.c_str(), 0640), 0);
  r = Shell("echo hi | timeout 60 setsid -w " + kTool + target + " --password-file " + pw_);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(Contains(r.out, "mode 0640 lets the group or others read it")) << r.out;
}

// PromptChild runs `tcpcrypt connect --auth pake` on a new pseudo-terminal
// that is its controlling terminal, with standard input elsewhere.
struct PromptChild {
  int master = -1;
  int slave = -1;  // kept open here, to read the terminal's settings
  pid_t pid = -1;
};

bool StartPromptChild(PromptChild* c) {
  if (openpty(&c->master, &c->slave, nullptr, nullptr, nullptr) != 0) return false;
  c->pid = fork();
  if (c->pid < 0) return false;
  if (c->pid == 0) {
    setsid();
    if (ioctl(c->slave, TIOCSCTTY, 0) != 0) _exit(126);
    const int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);  // stdin is not the terminal: the prompt must still be
    dup2(c->slave, 1);
    dup2(c->slave, 2);
    close(c->master);
    close(c->slave);
    unsetenv("TCPCRYPT_PASSWORD");
    execl(kTool.c_str(), kTool.c_str(), "connect", "127.0.0.1:9", "--auth", "pake", "--user",
          "alice", static_cast<char*>(nullptr));
    _exit(127);
  }
  return true;
}

void SignalAtThePrompt(int sig) {
  PromptChild c;
  ASSERT_TRUE(StartPromptChild(&c));
  termios before{};
  ASSERT_EQ(tcgetattr(c.slave, &before), 0);
  ASSERT_NE(before.c_lflag & ECHO, 0u);
  std::string seen;
  ASSERT_TRUE(WaitForText(c.master, "Password for alice: ", &seen)) << seen;
  // The prompt is written once echo is off.
  termios during{};
  ASSERT_EQ(tcgetattr(c.slave, &during), 0);
  EXPECT_EQ(during.c_lflag & ECHO, 0u) << "echo is on while the password is typed";

  ASSERT_EQ(kill(c.pid, sig), 0);
  int status = 0;
  ASSERT_EQ(waitpid(c.pid, &status, 0), c.pid);
  // It died of the signal, as it would have without the handler ...
  EXPECT_TRUE(WIFSIGNALED(status)) << status;
  if (WIFSIGNALED(status)) {
    EXPECT_EQ(WTERMSIG(status), sig);
  }
  // ... and the terminal has its echo back.
  termios after{};
  ASSERT_EQ(tcgetattr(c.slave, &after), 0);
  EXPECT_NE(after.c_lflag & ECHO, 0u) << "the prompt left the terminal without echo";
  close(c.master);
  close(c.slave);
}

TEST(CliPasswordPrompt, CtrlCAtThePromptRestoresEcho) { SignalAtThePrompt(SIGINT); }
TEST(CliPasswordPrompt, SigtermAtThePromptRestoresEcho) { SignalAtThePrompt(SIGTERM); }

// The password typed on the terminal is used, and standard input is not
// read for it.
TEST(CliPasswordPrompt, ReadsTheTerminalNotStdin) {
  PromptChild c;
  ASSERT_TRUE(StartPromptChild(&c));
  std::string seen;
  ASSERT_TRUE(WaitForText(c.master, "Password for alice: ", &seen)) << seen;
  ASSERT_EQ(write(c.master, "typed-secret\n", 13), 13);
  int status = 0;
  // The connect to port 9 then fails (nothing listens there): exit 2.
  ASSERT_TRUE(WaitForText(c.master, "tcpcrypt:", &seen)) << seen;
  ASSERT_EQ(waitpid(c.pid, &status, 0), c.pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status << " " << seen;
  EXPECT_FALSE(Contains(seen, "typed-secret")) << "the password was echoed: " << seen;
  termios after{};
  ASSERT_EQ(tcgetattr(c.slave, &after), 0);
  EXPECT_NE(after.c_lflag & ECHO, 0u);
  close(c.master);
  close(c.slave);
}

}  // namespace
