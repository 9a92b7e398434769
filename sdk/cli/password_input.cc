#include "sdk/cli/password_input.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace tcpcrypt::cli {
namespace {

constexpr size_t kMaxPassword = 1024;

// ReadLine reads up to a newline from |fd| into |out| (no newline kept).
bool ReadLine(int fd, std::vector<char>* out) {
  out->clear();
  char c;
  for (;;) {
    const ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return !out->empty();
    if (c == '\n') return true;
    if (out->size() >= kMaxPassword) return false;
    out->push_back(c);
  }
}

std::shared_ptr<const SecretBuffer> ToSecret(std::vector<char>* chars) {
  if (!chars->empty() && chars->back() == '\r') chars->pop_back();
  auto secret = std::make_shared<SecretBuffer>(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(chars->data()), chars->size()));
  OPENSSL_cleanse(chars->data(), chars->size());
  return secret;
}

bool PromptNoEcho(const std::string& prompt, std::vector<char>* out) {
  const int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (tty < 0) return false;
  (void)!write(tty, prompt.data(), prompt.size());
  termios old{};
  const bool have_termios = tcgetattr(tty, &old) == 0;
  if (have_termios) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(tty, TCSAFLUSH, &quiet);
  }
  const bool ok = ReadLine(tty, out);
  if (have_termios) tcsetattr(tty, TCSAFLUSH, &old);
  (void)!write(tty, "\n", 1);
  close(tty);
  return ok;
}

}  // namespace

std::shared_ptr<const SecretBuffer> ReadPassword(const std::string& password_file,
                                                 const std::string& env_var,
                                                 const std::string& prompt,
                                                 bool confirm, std::string* error) {
  std::vector<char> chars;
  if (!password_file.empty()) {
    const int fd = open(password_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      *error = "cannot read password file " + password_file + ": " + std::strerror(errno);
      return nullptr;
    }
    const bool ok = ReadLine(fd, &chars);
    close(fd);
    if (!ok || chars.empty()) {
      *error = "password file " + password_file + " is empty or too long";
      return nullptr;
    }
    return ToSecret(&chars);
  }
  if (!env_var.empty()) {
    if (const char* v = std::getenv(env_var.c_str()); v != nullptr && *v != '\0') {
      chars.assign(v, v + std::strlen(v));
      return ToSecret(&chars);
    }
  }
  if (isatty(STDIN_FILENO)) {
    if (!PromptNoEcho(prompt, &chars) || chars.empty()) {
      *error = "no password entered";
      return nullptr;
    }
    if (confirm) {
      std::vector<char> again;
      const bool ok = PromptNoEcho("Repeat password: ", &again);
      const bool same = ok && again.size() == chars.size() &&
                        CRYPTO_memcmp(again.data(), chars.data(), chars.size()) == 0;
      OPENSSL_cleanse(again.data(), again.size());
      if (!same) {
        OPENSSL_cleanse(chars.data(), chars.size());
        *error = "the passwords do not match";
        return nullptr;
      }
    }
    return ToSecret(&chars);
  }
  if (!ReadLine(STDIN_FILENO, &chars) || chars.empty()) {
    *error = "no password on standard input (use --password-file or a terminal)";
    return nullptr;
  }
  return ToSecret(&chars);
}

}  // namespace tcpcrypt::cli
