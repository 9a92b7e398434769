// cert_command.h: `tcpcrypt cert`, a local CA and a server certificate for
// trying the x509 authenticator (not for production PKI).
#ifndef TCPCRYPT_SDK_CLI_CERT_COMMAND_H_
#define TCPCRYPT_SDK_CLI_CERT_COMMAND_H_

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <CLI/CLI.hpp>
#pragma GCC diagnostic pop

#include <string>

namespace tcpcrypt::cli {

struct CertCommand {
  CLI::App* app = nullptr;
  std::string out = "pki";
  std::string host = "localhost";
  std::string key_type = "ecdsa-p256";
  int days = 30;
};

void AddCertCommand(CLI::App& app, CertCommand* cmd);
int RunCertCommand(const CertCommand& cmd);

}  // namespace tcpcrypt::cli

#endif  // TCPCRYPT_SDK_CLI_CERT_COMMAND_H_
