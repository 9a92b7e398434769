// password_input.h: reading a password for the CLI without echoing it.
#ifndef TCPCRYPT_SDK_CLI_PASSWORD_INPUT_H_
#define TCPCRYPT_SDK_CLI_PASSWORD_INPUT_H_

#include <memory>
#include <string>

#include "core_transport/engine/secret.h"

namespace tcpcrypt::cli {

// ReadPassword gets a password, in this order: the first line of
// |password_file| if non-empty; the environment variable |env_var| if
// non-empty and set; a no-echo prompt on the terminal when stdin is one
// (asked twice when |confirm|); otherwise the first line of stdin. The
// trailing newline is dropped. Returns nullptr and sets |error| on failure
// (missing file, empty password, mismatch).
std::shared_ptr<const SecretBuffer> ReadPassword(const std::string& password_file,
                                                 const std::string& env_var,
                                                 const std::string& prompt,
                                                 bool confirm, std::string* error);

}  // namespace tcpcrypt::cli

#endif  // TCPCRYPT_SDK_CLI_PASSWORD_INPUT_H_
