#include "core_transport/inband/keylog.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core_transport/engine/secret.h"

namespace tcpcrypt::inband {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// LineWriter appends to a borrowed char span and remembers overflow.
class LineWriter {
 public:
  explicit LineWriter(std::span<char> out) : out_(out) {}
  void Text(std::string_view s) {
    if (!ok_ || out_.size() - pos_ < s.size()) {
      ok_ = false;
      return;
    }
    std::memcpy(out_.data() + pos_, s.data(), s.size());
    pos_ += s.size();
  }
  void Hex(std::span<const uint8_t> bytes) {
    if (!ok_ || (out_.size() - pos_) / 2 < bytes.size()) {
      ok_ = false;
      return;
    }
    for (uint8_t b : bytes) {
      out_[pos_++] = kHex[b >> 4];
      out_[pos_++] = kHex[b & 0x0f];
    }
  }
  size_t Finish() const { return ok_ ? pos_ : 0; }

 private:
  std::span<char> out_;
  size_t pos_ = 0;
  bool ok_ = true;
};

std::atomic<bool> g_warned{false};

}  // namespace

std::optional<std::string> KeyLogFileFromEnv() {
  const char* path = std::getenv(kKeyLogEnvVar);
  if (path == nullptr || path[0] == '\0') return std::nullopt;
  if (!g_warned.exchange(true)) {
    std::fprintf(stderr,
                 "tcpcrypt: WARNING: %s is set; session keys are being "
                 "written to %s\n",
                 kKeyLogEnvVar, path);
  }
  return std::string(path);
}

size_t FormatKeyLogLine(const KeyLogEntry& entry, std::span<char> out) {
  if (entry.label.size() > kMaxKeyLogLabelLen) return 0;
  const uint16_t cipher = static_cast<uint16_t>(entry.cipher);
  const uint8_t cipher_be[2] = {static_cast<uint8_t>(cipher >> 8),
                                static_cast<uint8_t>(cipher)};
  LineWriter w(out);
  w.Text("TCPCRYPT_MK0 ");
  w.Hex(entry.label);
  w.Text(" ");
  w.Hex(entry.session_id);
  w.Text(" ");
  w.Hex(cipher_be);
  w.Text(entry.a_to_b_uses_kab ? " kab " : " kba ");
  w.Hex(entry.mk0.span());
  w.Text("\n");
  return w.Finish();
}

bool AppendKeyLogLine(const std::string& path, const KeyLogEntry& entry,
                      std::string* out_error) {
  auto fail = [out_error, &path](const char* what, int err) {
    if (out_error != nullptr) {
      *out_error = std::string("key log ") + path + ": " + what + ": " +
                   std::strerror(err);
    }
    return false;
  };
  // The line holds mk[0]: it lives in a buffer that wipes itself.
  SecretArray<kMaxKeyLogLineLen> line;
  const size_t len = FormatKeyLogLine(
      entry,
      std::span<char>(reinterpret_cast<char*>(line.data()), line.size()));
  if (len == 0) return fail("format", EINVAL);

  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return fail("open", errno);

  // One write(2) with O_APPEND: lines from concurrent writers never mix.
  ssize_t n = -1;
  do {
    n = ::write(fd, line.data(), len);
  } while (n < 0 && errno == EINTR);
  const int write_errno = errno;
  const bool short_write = n >= 0 && static_cast<size_t>(n) != len;
  if (::close(fd) != 0 && n >= 0 && !short_write) return fail("close", errno);
  if (n < 0) return fail("write", write_errno);
  if (short_write) return fail("write", EIO);
  return true;
}

}  // namespace tcpcrypt::inband
