#include "sdk/cli/password_input.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>

namespace tcpcrypt::cli {
namespace {

constexpr size_t kMaxPassword = 1024;

// LineBuffer collects one line in storage that wipes itself and never
// grows (so no reallocation leaves a copy behind).
struct LineBuffer {
  SecretBuffer bytes{kMaxPassword};
  size_t len = 0;
};

enum class LineResult { kOk, kEmpty, kTooLong };

// ReadLine reads up to a newline from |fd| into |out| (no newline kept).
LineResult ReadLine(int fd, LineBuffer* out) {
  out->len = 0;
  for (;;) {
    char c = 0;
    const ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    if (out->len == kMaxPassword) {
      out->bytes.Wipe();
      out->len = 0;
      return LineResult::kTooLong;
    }
    out->bytes.data()[out->len++] = static_cast<uint8_t>(c);
    c = 0;
  }
  if (out->len > 0 && out->bytes.data()[out->len - 1] == '\r') {
    out->bytes.data()[--out->len] = 0;
  }
  return out->len == 0 ? LineResult::kEmpty : LineResult::kOk;
}

std::shared_ptr<const SecretBuffer> ToSecret(const LineBuffer& line) {
  return std::make_shared<const SecretBuffer>(
      std::span<const uint8_t>(line.bytes.data(), line.len));
}

// --- the terminal prompt ----------------------------------------------------

// While echo is off, a fatal signal must give the terminal back as it was.
// The handler only uses async-signal-safe calls (tcsetattr, write,
// sigaction, raise).
constexpr int kRestoreSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
volatile sig_atomic_t g_prompt_tty = -1;
termios g_saved_termios{};

void RestoreTerminalAndReraise(int sig) {
  if (g_prompt_tty >= 0) {
    tcsetattr(g_prompt_tty, TCSANOW, &g_saved_termios);
    (void)!write(g_prompt_tty, "\n", 1);
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  // Delivered with the default action as soon as the handler returns
  // (the signal is blocked while its handler runs).
  raise(sig);
}

// NoEchoGuard turns echo off on |tty| and restores it (and the signal
// dispositions) when it goes out of scope or a fatal signal arrives.
class NoEchoGuard {
 public:
  explicit NoEchoGuard(int tty) : tty_(tty) {
    if (tcgetattr(tty, &saved_) != 0) return;
    g_saved_termios = saved_;
    g_prompt_tty = tty;
    struct sigaction sa {};
    sa.sa_handler = RestoreTerminalAndReraise;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < std::size(kRestoreSignals); ++i) {
      sigaction(kRestoreSignals[i], &sa, &old_actions_[i]);
    }
    termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL);
    active_ = tcsetattr(tty, TCSAFLUSH, &quiet) == 0;
    if (!active_) RestoreSignals();
  }
  ~NoEchoGuard() {
    if (!active_) return;
    tcsetattr(tty_, TCSAFLUSH, &saved_);
    RestoreSignals();
  }
  NoEchoGuard(const NoEchoGuard&) = delete;
  NoEchoGuard& operator=(const NoEchoGuard&) = delete;

 private:
  void RestoreSignals() {
    for (size_t i = 0; i < std::size(kRestoreSignals); ++i) {
      sigaction(kRestoreSignals[i], &old_actions_[i], nullptr);
    }
    g_prompt_tty = -1;
  }
  int tty_;
  termios saved_{};
  struct sigaction old_actions_[std::size(kRestoreSignals)] {};
  bool active_ = false;
};

// PromptNoEcho asks on |tty| with echo off (turned off before the prompt
// is shown, so nothing typed after it can echo).
LineResult PromptNoEcho(int tty, const std::string& prompt, LineBuffer* out) {
  LineResult r;
  {
    NoEchoGuard guard(tty);
    (void)!write(tty, prompt.data(), prompt.size());
    r = ReadLine(tty, out);
  }
  (void)!write(tty, "\n", 1);
  return r;
}

std::string NoTerminalMessage(const std::string& env_var, const char* why) {
  std::string msg = std::string("no terminal to ask for the password on (/dev/tty: ") +
                    why + "); pass --password-file FILE";
  if (!env_var.empty()) msg += " or set " + env_var + " (less safe)";
  return msg + "; standard input is never read for the password";
}

std::shared_ptr<const SecretBuffer> FromFile(const std::string& path, std::string* error) {
  const int fd = open(path.c_str(), O_RDONLY | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot read password file " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    *error = "cannot read password file " + path + ": " + std::strerror(errno);
    close(fd);
    return nullptr;
  }
  if (S_ISREG(st.st_mode) && (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    *error = "refusing password file " + path + ": mode " + mode +
             " lets the group or others read it; chmod 600 " + path;
    close(fd);
    return nullptr;
  }
  LineBuffer line;
  const LineResult r = ReadLine(fd, &line);
  close(fd);
  if (r != LineResult::kOk) {
    *error = "password file " + path + " is empty or too long";
    return nullptr;
  }
  return ToSecret(line);
}

}  // namespace

std::shared_ptr<const SecretBuffer> ReadPassword(const std::string& password_file,
                                                 const std::string& env_var,
                                                 const std::string& prompt,
                                                 bool confirm, std::string* error) {
  if (!password_file.empty()) return FromFile(password_file, error);
  if (!env_var.empty()) {
    if (const char* v = std::getenv(env_var.c_str()); v != nullptr && *v != '\0') {
      const size_t n = std::strlen(v);
      if (n > kMaxPassword) {
        *error = env_var + " is longer than 1024 bytes";
        return nullptr;
      }
      return std::make_shared<const SecretBuffer>(
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v), n));
    }
  }
  // The controlling terminal, never stdin. O_NOCTTY: opening it must not
  // make a terminal ours that was not.
  const int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (tty < 0) {
    *error = NoTerminalMessage(env_var, std::strerror(errno));
    return nullptr;
  }
  LineBuffer line;
  LineResult r = PromptNoEcho(tty, prompt, &line);
  if (r == LineResult::kOk && confirm) {
    LineBuffer again;
    if (PromptNoEcho(tty, "Repeat password: ", &again) != LineResult::kOk ||
        again.len != line.len ||
        CRYPTO_memcmp(again.bytes.data(), line.bytes.data(), line.len) != 0) {
      close(tty);
      *error = "the passwords do not match";
      return nullptr;
    }
  }
  close(tty);
  if (r != LineResult::kOk) {
    *error = r == LineResult::kTooLong ? "the password is longer than 1024 bytes"
                                       : "no password entered";
    return nullptr;
  }
  return ToSecret(line);
}

}  // namespace tcpcrypt::cli
