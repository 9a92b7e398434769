// docs/examples/pake.cc
//
// Password login with SPAKE2+ (RFC 9383), bound to the tcpcrypt session ID.
// Client and server prove to each other that they know the password; the
// server's users file holds verifiers, from which the password cannot be
// replayed. Make the users file with the tcpcrypt CLI:
//
//   tcpcrypt user add alice --users users.db --realm 127.0.0.1
//   ./example_pake users.db alice 'correct horse'
//
// The second connection is resumed (no public-key operation) and the client
// re-authenticates with the ticket the first login gave it.
#include <tcpcrypt/client.h>
#include <tcpcrypt/server.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace {

// ReadAll reads until the peer's authenticated end of file.
tcpcrypt::StatusOr<std::string> ReadAll(tcpcrypt::Session& session) {
  std::string out;
  std::vector<uint8_t> buf(4096);
  for (;;) {
    auto n = session.Read(buf);
    if (!n.ok()) return n.status();
    if (n.value() == 0) return out;
    out.append(reinterpret_cast<const char*>(buf.data()), n.value());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s USERS_FILE USER PASSWORD\n", argv[0]);
    return 2;
  }

  // The server: every client must log in with SPAKE2+.
  tcpcrypt::ServerOptions server_options;
  server_options.plans = {{tcpcrypt::AuthMechanism::kPake}};
  server_options.users_file = argv[1];  // tcpcrypt user add ... --users FILE
  // realm stays empty (the default): each client names the host it dialed
  // (here 127.0.0.1), and the records were added under that name with
  // `tcpcrypt user add --realm 127.0.0.1`. Set it only to serve one name.
  auto server = tcpcrypt::Server::Create(server_options);
  if (!server.ok()) {
    std::fprintf(stderr, "server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  if (tcpcrypt::Status st = server.value()->Listen("127.0.0.1", 0); !st.ok()) {
    std::fprintf(stderr, "listen: %s\n", st.ToString().c_str());
    return 1;
  }
  std::thread serving([&server] {
    for (;;) {
      // Accept returns sessions whose login succeeded; a failed login is
      // counted in stats() and Accept waits for the next client.
      auto session = server.value()->Accept();
      if (!session.ok()) return;  // CANCELLED: Stop() was called
      const tcpcrypt::PeerIdentity who = session.value()->peer().value();
      const std::string greeting = "hello " + who.name + " (" +
                                   std::string(tcpcrypt::AuthMechanismName(who.mechanism)) + ")";
      (void)session.value()->Write(
          {reinterpret_cast<const uint8_t*>(greeting.data()), greeting.size()});
      (void)session.value()->Shutdown();
    }
  });

  // The client: one Client per user; it keeps the resumption and ticket
  // caches, so keep it for the next connection.
  tcpcrypt::ClientOptions client_options;
  client_options.mechanisms = {tcpcrypt::AuthMechanism::kPake};
  client_options.user = argv[2];
  // A real client reads the password from a prompt; Password wipes its copy.
  client_options.password = std::make_shared<tcpcrypt::Password>(argv[3]);
  auto client = tcpcrypt::Client::Create(client_options);
  if (!client.ok()) {
    std::fprintf(stderr, "client: %s\n", client.status().ToString().c_str());
    server.value()->Stop();
    serving.join();
    return 1;
  }

  int exit_code = 0;
  for (int i = 1; i <= 2 && exit_code == 0; ++i) {
    auto session = client.value()->Connect("127.0.0.1", server.value()->port());
    if (!session.ok()) {
      // UNAUTHENTICATED: unknown user, wrong password, or a server that
      // could not prove it holds the user's verifier.
      std::fprintf(stderr, "connect: %s\n", session.status().ToString().c_str());
      exit_code = 1;
      break;
    }
    tcpcrypt::Session& s = *session.value();
    auto greeting = ReadAll(s);
    if (!greeting.ok()) {
      std::fprintf(stderr, "read: %s\n", greeting.status().ToString().c_str());
      exit_code = 1;
      break;
    }
    // The client authenticated the server too: peer() names the realm.
    std::printf("connection %d: \"%s\" from realm %s; resumed %s, ticket %s\n", i,
                greeting.value().c_str(), s.peer().value().name.c_str(),
                s.resumed() ? "yes" : "no", s.ticket_used() ? "yes" : "no");
  }
  server.value()->Stop();
  serving.join();
  const tcpcrypt::ServerStats stats = server.value()->stats();
  std::printf("server: %llu authenticated, %llu failed\n",
              static_cast<unsigned long long>(stats.authenticated),
              static_cast<unsigned long long>(stats.failed));
  return exit_code;
}
