// consumer: the smallest application of an installed tcpcrypt. A server
// without authentication on 127.0.0.1 (a free port), one client, "hello"
// from the client to the server; prints the session ID and exits 0.
#include <tcpcrypt/client.h>
#include <tcpcrypt/server.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

int Fail(const char* what, const tcpcrypt::Status& status) {
  std::fprintf(stderr, "consumer: %s: %s\n", what, status.ToString().c_str());
  return 1;
}

}  // namespace

int main() {
  tcpcrypt::ServerOptions server_options;  // defaults: tcpcrypt required, no authentication
  auto server = tcpcrypt::Server::Create(server_options);
  if (!server.ok()) return Fail("Server::Create", server.status());
  if (auto st = server.value()->Listen("127.0.0.1", 0); !st.ok()) return Fail("Listen", st);

  std::string received;
  tcpcrypt::Status server_status;
  std::vector<uint8_t> server_id;
  std::thread accepting([&] {
    auto session = server.value()->Accept();
    if (!session.ok()) {
      server_status = session.status();
      return;
    }
    auto id = session.value()->session_id();
    if (!id.ok()) {
      server_status = id.status();
      return;
    }
    server_id = id.value();
    std::vector<uint8_t> buf(64);
    for (;;) {
      auto n = session.value()->Read(buf);
      if (!n.ok()) {
        server_status = n.status();
        return;
      }
      if (n.value() == 0) return;  // the client's authenticated end of file
      received.append(reinterpret_cast<const char*>(buf.data()), n.value());
    }
  });

  auto client = tcpcrypt::Client::Create(tcpcrypt::ClientOptions{});
  if (!client.ok()) return Fail("Client::Create", client.status());
  auto session = client.value()->Connect("127.0.0.1", server.value()->port());
  if (!session.ok()) {
    server.value()->Stop();
    accepting.join();
    return Fail("Connect", session.status());
  }
  const std::string hello = "hello";
  if (auto st = session.value()->Write(
          {reinterpret_cast<const uint8_t*>(hello.data()), hello.size()});
      !st.ok()) {
    return Fail("Write", st);
  }
  if (auto st = session.value()->Shutdown(); !st.ok()) return Fail("Shutdown", st);
  accepting.join();
  if (!server_status.ok()) return Fail("server", server_status);

  const auto id = session.value()->session_id();
  if (!id.ok()) return Fail("session_id", id.status());
  if (received != hello || id.value() != server_id) {
    std::fprintf(stderr, "consumer: server got '%s'; session IDs %s\n", received.c_str(),
                 id.value() == server_id ? "agree" : "differ");
    return 1;
  }
  std::printf("channel %s, session ID ",
              std::string(tcpcrypt::ChannelName(session.value()->channel())).c_str());
  for (uint8_t b : id.value()) std::printf("%02x", b);
  std::printf("\n");
  return 0;
}
