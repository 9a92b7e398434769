// docs/examples/serve.cc
//
// Threads: one Server serving many clients at once with Serve(), and one
// Client shared by many threads.
//
//   Client, Server   thread-safe: any thread may call Connect, Accept,
//                    stats or Stop at any time
//   Session          one thread at a time here (see "Thread safety" in
//                    docs/API.md); Close and the destructor race with nothing
//
//   ./example_serve
#include <tcpcrypt/client.h>
#include <tcpcrypt/server.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace {

// Echo runs on Serve's worker threads, one session per call.
void Echo(std::unique_ptr<tcpcrypt::Session> session) {
  std::vector<uint8_t> buf(16 * 1024);
  for (;;) {
    auto n = session->Read(buf);
    if (!n.ok() || n.value() == 0) break;
    if (!session->Write(std::span(buf).first(n.value())).ok()) return;
  }
  (void)session->Shutdown();
}  // the session closes here

}  // namespace

int main() {
  auto server = tcpcrypt::Server::Create(tcpcrypt::ServerOptions{});
  if (!server.ok() || !server.value()->Listen("127.0.0.1", 0).ok()) return 1;
  std::thread serving([&server] {
    tcpcrypt::Status st = server.value()->Serve(Echo, /*worker_threads=*/4);
    if (!st.ok()) std::fprintf(stderr, "serve: %s\n", st.ToString().c_str());
  });

  auto client = tcpcrypt::Client::Create(tcpcrypt::ClientOptions{});
  if (!client.ok()) return 1;
  constexpr int kClients = 16;
  std::atomic<int> echoed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      auto session = client.value()->Connect("127.0.0.1", server.value()->port());
      if (!session.ok()) {
        std::fprintf(stderr, "client %d: %s\n", i, session.status().ToString().c_str());
        return;
      }
      tcpcrypt::Session& s = *session.value();
      const std::string message(100 * 1024, static_cast<char>('a' + i));
      // Send everything, then read the echo. (While Write waits for a full
      // socket it keeps receiving, so the echo cannot deadlock it.)
      if (!s.Write({reinterpret_cast<const uint8_t*>(message.data()), message.size()}).ok() ||
          !s.Shutdown().ok()) {
        return;
      }
      std::string got;
      std::vector<uint8_t> buf(16 * 1024);
      for (;;) {
        auto n = s.Read(buf);
        if (!n.ok() || n.value() == 0) break;
        got.append(reinterpret_cast<const char*>(buf.data()), n.value());
      }
      if (got == message) ++echoed;
    });
  }
  for (std::thread& t : clients) t.join();
  server.value()->Stop();  // from any thread: Serve returns
  serving.join();

  const tcpcrypt::ServerStats stats = server.value()->stats();
  std::printf("%d of %d clients echoed; server: %llu accepted, %llu failed\n", echoed.load(),
              kClients, static_cast<unsigned long long>(stats.accepted),
              static_cast<unsigned long long>(stats.failed));
  return echoed == kClients ? 0 : 1;
}
