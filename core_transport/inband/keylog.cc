#include "core_transport/inband/keylog.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

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


}  // namespace

bool KeyLogFileIsSafe(int fd, std::string* out_reason) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    *out_reason = std::string("fstat: ") + std::strerror(errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *out_reason = "not a regular file";
    return false;
  }
  if (st.st_uid != ::geteuid()) {
    *out_reason = "owned by uid " + std::to_string(st.st_uid) +
                  ", not by this process's uid " +
                  std::to_string(::geteuid());
    return false;
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o",
                  static_cast<unsigned>(st.st_mode & 07777));
    *out_reason = std::string("mode ") + mode +
                  " gives the group or others access; chmod 600 it";
    return false;
  }
  return true;
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

  // O_NOFOLLOW: a symlink planted at the path is refused, not followed.
  // O_NONBLOCK: a FIFO planted there does not block the open (it is then
  // refused as not a regular file); it has no effect on regular files.
  int fd = -1;
  do {
    fd = ::open(path.c_str(),
                O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
                    O_NOCTTY | O_CLOEXEC,
                0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ELOOP) {
      if (out_error != nullptr) {
        *out_error = "key log " + path +
                     ": refused (a symbolic link; nothing logged)";
      }
      return false;
    }
    return fail("open", errno);
  }

  // Checked on the open file, so the answer is about what we write to.
  std::string refusal;
  if (!KeyLogFileIsSafe(fd, &refusal)) {
    ::close(fd);
    if (out_error != nullptr) {
      *out_error = "key log " + path + ": refused (" + refusal +
                   "; nothing logged)";
    }
    return false;
  }

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
