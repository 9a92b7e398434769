// docs/examples/echo.cc
//
// Quick start: an echo server and its client over tcpcrypt, without
// authentication. Every byte is encrypted and integrity-protected; both ends
// see the same session ID, the value an authenticator would endorse.
//
//   ./example_echo        (both ends in one process, on 127.0.0.1)
#include <tcpcrypt/client.h>
#include <tcpcrypt/server.h>

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Echo writes back everything it reads, until the peer's end of file.
void Echo(tcpcrypt::Session& session) {
  std::vector<uint8_t> buf(4096);
  for (;;) {
    tcpcrypt::StatusOr<size_t> n = session.Read(buf);
    if (!n.ok()) {  // DATA_LOSS: tampering or truncation, never a silent EOF
      std::fprintf(stderr, "server: %s\n", n.status().ToString().c_str());
      return;
    }
    if (n.value() == 0) break;  // the peer's authenticated end of file
    if (!session.Write(std::span(buf).first(n.value())).ok()) return;
  }
  (void)session.Shutdown();
}

}  // namespace

int main() {
  // The server. The defaults require tcpcrypt and authenticate nobody.
  auto server = tcpcrypt::Server::Create(tcpcrypt::ServerOptions{});
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 1;
  }
  if (tcpcrypt::Status st = server.value()->Listen("127.0.0.1", 0); !st.ok()) {
    std::fprintf(stderr, "listen: %s\n", st.ToString().c_str());
    return 1;
  }
  const uint16_t port = server.value()->port();  // port 0 picked a free one
  std::thread serving([&server] {
    auto session = server.value()->Accept();  // the handshake is done
    if (!session.ok()) return;                // CANCELLED after Stop()
    std::printf("server: session ID %s\n", session.value()->session_id_hex().c_str());
    Echo(*session.value());
  });

  // The client.
  auto client = tcpcrypt::Client::Create(tcpcrypt::ClientOptions{});
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 1;
  }
  auto session = client.value()->Connect("127.0.0.1", port);
  if (!session.ok()) {
    std::fprintf(stderr, "connect: %s\n", session.status().ToString().c_str());
    server.value()->Stop();
    serving.join();
    return 1;
  }
  tcpcrypt::Session& s = *session.value();
  std::printf("client: %s, %s, %s\n", std::string(tcpcrypt::ChannelName(s.channel())).c_str(),
              s.key_exchange().c_str(), s.cipher().c_str());
  std::printf("client: session ID %s\n", s.session_id_hex().c_str());

  const std::string message = "hello, tcpcrypt";
  if (!s.Write(Bytes(message)).ok() || !s.Shutdown().ok()) return 1;
  std::string echoed;
  std::vector<uint8_t> buf(4096);
  for (;;) {
    auto n = s.Read(buf);
    if (!n.ok()) {
      std::fprintf(stderr, "read: %s\n", n.status().ToString().c_str());
      break;
    }
    if (n.value() == 0) break;
    echoed.append(reinterpret_cast<const char*>(buf.data()), n.value());
  }
  serving.join();
  std::printf("client: echoed \"%s\"\n", echoed.c_str());
  return echoed == message ? 0 : 1;
}
