#include "sdk/cli/cert_command.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "auth/x509_batch/test_pki.h"

namespace tcpcrypt::cli {

void AddCertCommand(CLI::App& app, CertCommand* cmd) {
  cmd->app = app.add_subcommand(
      "cert", "Make a local CA and a server certificate for trying --auth x509");
  cmd->app->add_option("--out", cmd->out, "Directory to write ca.pem, ca.key, server.pem, server.key")
      ->capture_default_str();
  cmd->app->add_option("--host", cmd->host, "Host name or IP address the certificate is for")
      ->capture_default_str();
  cmd->app->add_option("--key-type", cmd->key_type, "ecdsa-p256, ed25519 or rsa2048")
      ->capture_default_str();
  cmd->app->add_option("--days", cmd->days, "Validity in days")->capture_default_str();
  cmd->app->footer(R"(Example:
  tcpcrypt cert --out pki --host localhost
  tcpcrypt serve --listen 127.0.0.1:7001 --auth x509 --cert pki/server.pem --key pki/server.key
  tcpcrypt connect localhost:7001 --auth x509 --ca pki/ca.pem)");
}

int RunCertCommand(const CertCommand& cmd) {
  auth::x509::PkiKeyType type;
  if (cmd.key_type == "ecdsa-p256") {
    type = auth::x509::PkiKeyType::kEcdsaP256;
  } else if (cmd.key_type == "ed25519") {
    type = auth::x509::PkiKeyType::kEd25519;
  } else if (cmd.key_type == "rsa2048") {
    type = auth::x509::PkiKeyType::kRsa2048;
  } else {
    std::fprintf(stderr, "tcpcrypt: --key-type must be ecdsa-p256, ed25519 or rsa2048\n");
    return 1;
  }
  if (mkdir(cmd.out.c_str(), 0700) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "tcpcrypt: cannot create %s: %s\n", cmd.out.c_str(), std::strerror(errno));
    return 1;
  }
  std::string error;
  if (!auth::x509::WriteServerPki(cmd.out, cmd.host, type, cmd.days, &error)) {
    std::fprintf(stderr, "tcpcrypt: %s\n", error.c_str());
    return 1;
  }
  std::fprintf(stderr, "wrote %s/ca.pem, %s/ca.key, %s/server.pem, %s/server.key for %s\n",
               cmd.out.c_str(), cmd.out.c_str(), cmd.out.c_str(), cmd.out.c_str(),
               cmd.host.c_str());
  return 0;
}

}  // namespace tcpcrypt::cli
