// password_input.h: reading a password for the CLI without echoing it.
#ifndef TCPCRYPT_SDK_CLI_PASSWORD_INPUT_H_
#define TCPCRYPT_SDK_CLI_PASSWORD_INPUT_H_

#include <memory>
#include <string>

#include "core_transport/engine/secret.h"

namespace tcpcrypt::cli {

// kPasswordEnvVar is the non-interactive source `connect` accepts besides
// --password-file. It is less safe than a file: the environment is
// inherited by child processes and readable in /proc/PID/environ by the
// same user (and root).
inline constexpr char kPasswordEnvVar[] = "TCPCRYPT_PASSWORD";

// ReadPassword gets a password, in this order:
//   1. the first line of |password_file| if non-empty. A regular file that
//      the group or others may read is refused (chmod 600 it); pipes such
//      as /dev/stdin are accepted, for scripts that mean it;
//   2. the environment variable |env_var| if non-empty and set;
//   3. a no-echo prompt on the controlling terminal (/dev/tty, opened
//      O_RDWR | O_NOCTTY | O_CLOEXEC), asked twice when |confirm|, as ssh,
//      sudo and psql do. Standard input is never read: it carries the
//      data (`echo hi | tcpcrypt connect ...` sends "hi").
// Without a terminal (CI, cron, setsid) and without 1 or 2 it fails with a
// message that names the options. While the prompt has echo off, SIGINT,
// SIGTERM, SIGHUP and SIGQUIT restore the terminal's settings and then
// take their default action (the process dies as it would have).
// The trailing newline (and a CR before it) is dropped; at most 1024 bytes.
// The password only ever sits in wiping buffers. Returns nullptr and sets
// |error| on failure (missing or loose file, empty password, mismatch, no
// terminal).
std::shared_ptr<const SecretBuffer> ReadPassword(const std::string& password_file,
                                                 const std::string& env_var,
                                                 const std::string& prompt,
                                                 bool confirm, std::string* error);

}  // namespace tcpcrypt::cli

#endif  // TCPCRYPT_SDK_CLI_PASSWORD_INPUT_H_
