// docs/examples/cmac.cc
//
// Password login with the CMAC mechanism: a mutual proof of the password
// with AES-CMAC over the session ID, one round trip fewer than SPAKE2+. Its
// server-side verifier is password-equivalent: guard the users file. The
// same users file serves both (tcpcrypt user add writes both records).
//
//   tcpcrypt user add alice --users users.db --realm 127.0.0.1
//   ./example_cmac users.db alice 'correct horse'
//
// A wrong password fails with UNAUTHENTICATED and the server keeps serving.
#include <tcpcrypt/client.h>
#include <tcpcrypt/server.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

// Login connects as |user| with |password| and returns the server's
// one-line greeting.
tcpcrypt::StatusOr<std::string> Login(uint16_t port, std::string_view user,
                                      std::string_view password) {
  tcpcrypt::ClientOptions options;
  options.mechanisms = {tcpcrypt::AuthMechanism::kCmacPassword};
  options.user = std::string(user);
  options.password = std::make_shared<tcpcrypt::Password>(password);
  auto client = tcpcrypt::Client::Create(options);
  if (!client.ok()) return client.status();
  auto session = client.value()->Connect("127.0.0.1", port);
  if (!session.ok()) return session.status();
  std::vector<uint8_t> buf(256);
  auto n = session.value()->Read(buf);
  if (!n.ok()) return n.status();
  return std::string(reinterpret_cast<const char*>(buf.data()), n.value());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s USERS_FILE USER PASSWORD\n", argv[0]);
    return 2;
  }
  tcpcrypt::ServerOptions options;
  options.plans = {{tcpcrypt::AuthMechanism::kCmacPassword}};
  options.users_file = argv[1];
  auto server = tcpcrypt::Server::Create(options);
  if (!server.ok()) {
    std::fprintf(stderr, "server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  if (tcpcrypt::Status st = server.value()->Listen("127.0.0.1", 0); !st.ok()) {
    std::fprintf(stderr, "listen: %s\n", st.ToString().c_str());
    return 1;
  }
  // Serve runs the handshakes and logins on an event loop and hands each
  // logged-in session to the handler, on a pool of worker threads.
  std::thread serving([&server] {
    tcpcrypt::Status st = server.value()->Serve(
        [](std::unique_ptr<tcpcrypt::Session> session) {
          const std::string greeting = "welcome, " + session->peer().value().name;
          (void)session->Write(
              {reinterpret_cast<const uint8_t*>(greeting.data()), greeting.size()});
          (void)session->Shutdown();
        },
        /*worker_threads=*/2);
    if (!st.ok()) std::fprintf(stderr, "serve: %s\n", st.ToString().c_str());
  });

  const uint16_t port = server.value()->port();
  auto wrong = Login(port, argv[2], "not the password");
  std::printf("wrong password: %s\n", wrong.status().ToString().c_str());
  auto right = Login(port, argv[2], argv[3]);
  std::printf("right password: %s\n",
              right.ok() ? right.value().c_str() : right.status().ToString().c_str());

  server.value()->Stop();
  serving.join();
  const tcpcrypt::ServerStats stats = server.value()->stats();
  std::printf("server: %llu authenticated, %llu failed\n",
              static_cast<unsigned long long>(stats.authenticated),
              static_cast<unsigned long long>(stats.failed));
  const bool refused = !wrong.ok() && wrong.status().code() == tcpcrypt::StatusCode::kUnauthenticated;
  return refused && right.ok() ? 0 : 1;
}
