// docs/examples/policies.cc
//
// Policies: what a client and a server accept.
//
//   Encryption::kRequire  tcpcrypt (or TLS 1.3 when allowed), or fail
//   Encryption::kPrefer   tcpcrypt if the peer speaks it, else plain TCP
//   Encryption::kDisable  plain TCP
//   ServerOptions::require_authentication
//                         true (default): refuse clients that run no plan
//                         false: serve them, anonymous
//
//   ./example_policies users.db        (a users file: tcpcrypt user add)
#include <tcpcrypt/client.h>
#include <tcpcrypt/server.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

// Outcome is what one connection attempt gave the client.
struct Outcome {
  tcpcrypt::Status status;
  tcpcrypt::Channel channel = tcpcrypt::Channel::kPlain;
  bool server_saw_identity = false;
};

// Try runs one server and one client connection on 127.0.0.1.
Outcome Try(const tcpcrypt::ServerOptions& server_options,
            const tcpcrypt::ClientOptions& client_options) {
  auto server = tcpcrypt::Server::Create(server_options);
  if (!server.ok()) return {server.status()};
  if (tcpcrypt::Status st = server.value()->Listen("127.0.0.1", 0); !st.ok()) return {st};
  std::optional<tcpcrypt::PeerIdentity> identity;
  std::thread serving([&] {
    for (;;) {
      auto session = server.value()->Accept();
      if (!session.ok()) return;  // CANCELLED by Stop()
      if (auto peer = session.value()->peer()) identity = peer;
      // Like a server of a request-response protocol: read a request, close.
      std::vector<uint8_t> request(4096);
      (void)session.value()->Read(request);
    }
  });
  Outcome outcome;
  auto client = tcpcrypt::Client::Create(client_options);
  if (!client.ok()) {
    outcome.status = client.status();
  } else if (auto session = client.value()->Connect("127.0.0.1", server.value()->port());
             !session.ok()) {
    outcome.status = session.status();
  } else {
    outcome.channel = session.value()->channel();
  }  // the client's session closes here
  server.value()->Stop();  // Accept would wait for the next client
  serving.join();
  outcome.server_saw_identity = identity.has_value();
  return outcome;
}

bool Report(const char* what, const Outcome& outcome, bool want_ok) {
  if (outcome.status.ok()) {
    std::printf("%-44s connected over %s, %s\n", what,
                std::string(tcpcrypt::ChannelName(outcome.channel)).c_str(),
                outcome.server_saw_identity ? "authenticated" : "anonymous");
  } else {
    std::printf("%-44s refused: %s\n", what, outcome.status.ToString().c_str());
  }
  return outcome.status.ok() == want_ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s USERS_FILE\n", argv[0]);
    return 2;
  }
  bool as_expected = true;

  // Mandatory authentication (the paper's application-aware mode): with a
  // plan and require_authentication (the default), a client that offers no
  // mechanism is refused before the application sees it.
  tcpcrypt::ServerOptions strict;
  strict.plans = {{tcpcrypt::AuthMechanism::kPake}};
  strict.users_file = argv[1];
  tcpcrypt::ClientOptions anonymous;  // no mechanisms
  anonymous.timeouts.handshake_ms = 2000;
  as_expected &= Report("anonymous client, mandatory authentication:", Try(strict, anonymous),
                        /*want_ok=*/false);

  // Optional authentication: such clients are served, without an identity.
  tcpcrypt::ServerOptions lenient = strict;
  lenient.require_authentication = false;
  as_expected &= Report("anonymous client, optional authentication:", Try(lenient, anonymous),
                        /*want_ok=*/true);

  // Encryption. A plain TCP server (kDisable) ...
  tcpcrypt::ServerOptions plain;
  plain.encryption = tcpcrypt::Encryption::kDisable;
  // ... refuses a client that requires tcpcrypt (the default) ...
  as_expected &= Report("kRequire client, plain server:", Try(plain, anonymous),
                        /*want_ok=*/false);
  // ... and serves one that merely prefers it, in the clear. Such a session
  // has no session ID, so nothing can authenticate it.
  tcpcrypt::ClientOptions prefer = anonymous;
  prefer.encryption = tcpcrypt::Encryption::kPrefer;
  as_expected &= Report("kPrefer client, plain server:", Try(plain, prefer), /*want_ok=*/true);
  // kPrefer against a tcpcrypt server still encrypts.
  as_expected &= Report("kPrefer client, tcpcrypt server:", Try(tcpcrypt::ServerOptions{}, prefer),
                        /*want_ok=*/true);
  return as_expected ? 0 : 1;
}
