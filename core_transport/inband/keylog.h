// keylog.h: the key log (like SSLKEYLOGFILE).
//
// Off unless the application asks for it: inband::Options::key_log_file
// (a path) or key_log_callback (the SDK's ClientOptions / ServerOptions
// fields of the same names). The library never reads the environment; the
// `tcpcrypt` CLI alone maps the variable TCPCRYPT_KEYLOGFILE onto
// key_log_file. When on, the carrier asks the engine to export keys
// (EngineConfig::export_keys) and, once a connection is established, logs
// exactly one line per connection end:
//
//   TCPCRYPT_MK0 <label-hex> <session-id-hex> <cipher-id> <kab|kba> <mk0-hex>\n
//
//   label-hex       KeyLogEntry::label: N_A (fresh handshake) or the data of
//                   A's resumption suboption (resumed session), lowercase hex
//   session-id-hex  the 33-byte session ID, lowercase hex
//   cipher-id       the RFC 8548 sym_cipher identifier as 4 hex digits
//   kab|kba         which traffic key the A->B direction (the active
//                   opener's stream) uses; B->A uses the other one
//   mk0-hex         mk[0], lowercase hex; later generations follow by CPRF
//
// Both ends of one connection write the same line, so a capture can be
// decrypted with either end's log (docs/PROTOCOL.md "Key log").
//
// What the file exposes: everything. mk[0] decrypts every byte inside the
// logged session in both directions, so whoever can read the file (and a
// capture) reads the application data and everything the authenticators
// send inside the stream: the authentication messages (a CMAC proof there
// allows an offline dictionary attack on the password), the ticket secrets
// a server issues (so the reader can resume as that user), and the upgrade
// verifiers. Every session logged while the log was on is exposed.
// Never turn it on in production.
//
// The file is opened with O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC (mode
// 0600 when created) and each line is written with a single write(2), so
// many threads and processes may share one file. Before anything is
// written, the open file must be a regular file owned by the process's
// effective uid with no group or other permission bits; otherwise nothing
// is logged and the line is refused with a reason (a symlink at the path,
// a file another user planted or can read, a FIFO, a device). Keys are
// never written anywhere else.
#ifndef TCPCRYPT_CORE_TRANSPORT_INBAND_KEYLOG_H_
#define TCPCRYPT_CORE_TRANSPORT_INBAND_KEYLOG_H_

#include <cstddef>
#include <optional>
#include <span>
#include <string>

#include "core_transport/engine/engine.h"

namespace tcpcrypt::inband {

// kKeyLogEnvVar is the variable the `tcpcrypt` CLI (only) reads.
inline constexpr char kKeyLogEnvVar[] = "TCPCRYPT_KEYLOGFILE";

// kMaxKeyLogLabelLen caps the label we format (the engine's labels are 32
// bytes of N_A, or at most 17 bytes of resumption suboption data).
// kMaxKeyLogLineLen is the longest line:
//   "TCPCRYPT_MK0 " label ' ' session-id ' ' cipher ' ' kab|kba ' ' mk0 '\n'
inline constexpr size_t kMaxKeyLogLabelLen = 64;
inline constexpr size_t kMaxKeyLogLineLen = 13 + 2 * kMaxKeyLogLabelLen + 1 +
                                            2 * kSessionIdLen + 1 + 4 + 1 + 3 +
                                            1 + 2 * kKLen + 1;

// FormatKeyLogLine writes the line for |entry|, newline included, into
// |out| and returns its length, or 0 if |out| is too small or the label is
// longer than kMaxKeyLogLabelLen. |out| then holds key material: the caller
// wipes it.
size_t FormatKeyLogLine(const KeyLogEntry& entry, std::span<char> out);

// KeyLogFileIsSafe checks the open file |fd| before a key is written to it:
// a regular file, owned by geteuid(), no group/other permission bits.
// Returns false with the reason in |out_reason| otherwise.
[[nodiscard]] bool KeyLogFileIsSafe(int fd, std::string* out_reason);

// AppendKeyLogLine appends the line for |entry| to |path| with one write(2).
// Refuses (writes nothing) when the path is a symlink or the file fails
// KeyLogFileIsSafe. Returns false (and sets |out_error| to a readable
// message naming the path and the reason, if non-null) on failure. Wipes
// its own copy of the line on every path.
[[nodiscard]] bool AppendKeyLogLine(const std::string& path,
                                    const KeyLogEntry& entry,
                                    std::string* out_error);

}  // namespace tcpcrypt::inband

#endif  // TCPCRYPT_CORE_TRANSPORT_INBAND_KEYLOG_H_
