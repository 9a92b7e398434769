// user_command.h: `tcpcrypt user add|del|list|passwd`, managing the
// verifier store (auth/common/verifier_store.h) of a password server.
#ifndef TCPCRYPT_SDK_CLI_USER_COMMAND_H_
#define TCPCRYPT_SDK_CLI_USER_COMMAND_H_

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <CLI/CLI.hpp>
#pragma GCC diagnostic pop

#include <string>
#include <vector>

namespace tcpcrypt::cli {

struct UserCommand {
  CLI::App* app = nullptr;
  CLI::App* add = nullptr;
  CLI::App* del = nullptr;
  CLI::App* list = nullptr;
  CLI::App* passwd = nullptr;
  std::string name;
  std::string users_file;
  std::string realm;  // required by add, passwd and del
  std::string password_file;
  std::string kdf = "interactive";
  // --mechanism for add/passwd: which records to write ("pake", "cmac").
  std::vector<std::string> mechanisms = {"pake", "cmac"};
  bool json = false;
};

// AddUserCommand registers the subcommands on |app|.
void AddUserCommand(CLI::App& app, UserCommand* cmd);
// RunUserCommand runs whichever user subcommand was parsed; returns the
// process exit code (0 ok, 1 usage, 4 store error).
int RunUserCommand(const UserCommand& cmd);

}  // namespace tcpcrypt::cli

#endif  // TCPCRYPT_SDK_CLI_USER_COMMAND_H_
