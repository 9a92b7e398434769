// docs/examples/x509.cc
//
// The server proves itself with an X.509 certificate: it signs the session
// ID (batched: one signature serves many handshakes) and the client checks
// the chain against its trust anchors and the server's name. Clients stay
// anonymous here; set ServerOptions::client_ca_file and
// ClientOptions::client_cert_file / client_key_file for mutual X.509.
//
//   ./example_x509 ca.pem server.pem server.key
//
// server.pem is the chain (leaf first) for the name "localhost", issued
// under ca.pem; server.key is its ECDSA P-256, Ed25519 or RSA key.
#include <tcpcrypt/client.h>
#include <tcpcrypt/server.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s CA_FILE CERT_FILE KEY_FILE\n", argv[0]);
    return 2;
  }
  tcpcrypt::ServerOptions server_options;
  server_options.plans = {{tcpcrypt::AuthMechanism::kX509}};
  server_options.cert_file = argv[2];
  server_options.key_file = argv[3];
  auto server = tcpcrypt::Server::Create(server_options);  // loads and checks the pair
  if (!server.ok()) {
    std::fprintf(stderr, "server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  if (tcpcrypt::Status st = server.value()->Listen("127.0.0.1", 0); !st.ok()) {
    std::fprintf(stderr, "listen: %s\n", st.ToString().c_str());
    return 1;
  }
  std::thread serving([&server] {
    auto session = server.value()->Accept();
    if (!session.ok()) return;
    const std::string hello = "signed by my certificate";
    (void)session.value()->Write({reinterpret_cast<const uint8_t*>(hello.data()), hello.size()});
    (void)session.value()->Shutdown();
  });

  tcpcrypt::ClientOptions client_options;
  client_options.mechanisms = {tcpcrypt::AuthMechanism::kX509};
  client_options.ca_file = argv[1];
  // The name the certificate must carry. Empty: the host given to Connect.
  client_options.server_name = "localhost";
  auto client = tcpcrypt::Client::Create(client_options);
  if (!client.ok()) {
    std::fprintf(stderr, "client: %s\n", client.status().ToString().c_str());
    server.value()->Stop();
    serving.join();
    return 1;
  }
  auto session = client.value()->Connect("127.0.0.1", server.value()->port());
  if (!session.ok()) {
    // UNAUTHENTICATED: untrusted chain, wrong name, expired, bad signature.
    std::fprintf(stderr, "connect: %s\n", session.status().ToString().c_str());
    server.value()->Stop();
    serving.join();
    return 1;
  }
  const tcpcrypt::PeerIdentity server_id = session.value()->peer().value();
  std::vector<uint8_t> buf(256);
  auto n = session.value()->Read(buf);
  serving.join();
  if (!n.ok()) {
    std::fprintf(stderr, "read: %s\n", n.status().ToString().c_str());
    return 1;
  }
  std::printf("server authenticated by %s as %s: \"%.*s\"\n",
              std::string(tcpcrypt::AuthMechanismName(server_id.mechanism)).c_str(),
              server_id.name.c_str(), static_cast<int>(n.value()),
              reinterpret_cast<const char*>(buf.data()));
  return 0;
}
