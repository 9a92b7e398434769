// memory_bench: server memory per idle established connection (issue
// "bench/", item 5).
//
// Rows:
//   tcpcrypt_sdk        tcpcrypt::Server::Serve (default options, no
//                       authentication); the handler stashes each Session in
//                       a list and returns, so the connection stays open and
//                       idle. Clients use fresh key exchanges (resumption off).
//   tls13_openssl       a minimal OpenSSL TLS 1.3 server in this file: one
//                       process, epoll, non-blocking SSL_accept, the SSL
//                       objects kept after the handshake; default SSL_CTX
//                       (ECDSA P-256 certificate, default groups and tickets)
//   tls13_openssl_release_buffers
//                       the same with SSL_MODE_RELEASE_BUFFERS
//
// Each row starts the server as a fresh process (fork + exec). The client
// (this process) opens W = 32 warm-up connections and keeps them; once the
// server reports them established, this process reads the server's
// /proc/PID/smaps_rollup ("before"), opens N more idle connections, waits
// until the server has established all of them, and reads it again
// ("after"). bytes_per_conn = (Rss after - Rss before) / N. Rss counts the server's user-space memory
// only: kernel socket memory (the same for every row, one TCP socket per
// connection) is not in it. Pss is reported as well.
//
// Usage:
//   memory_bench [--quick | --full] [--connections N] [--rows a,b,...]
//                [--json FILE] [--md FILE]
// --quick: N = 1000; --full: N = 5000. RLIMIT_NOFILE is raised to its hard
// limit (each side holds W + N descriptors).
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/x509_batch/test_pki.h"
#include "bench/harness.h"
#include "sdk/tls_stream.h"
#include "tcpcrypt/client.h"
#include "tcpcrypt/server.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace tcpcrypt::bench;  // NOLINT: the harness is this program's toolkit

constexpr uint32_t kWarmup = 32;

enum class Kind { kSdk, kTls, kTlsReleaseBuffers };

struct RowSpec {
  std::string name;
  std::string description;
  Kind kind;
};

const std::vector<RowSpec>& AllRows() {
  static const std::vector<RowSpec> rows = {
      {"tcpcrypt_sdk", "tcpcrypt SDK Server::Serve, no auth (X25519, AES-128-GCM)", Kind::kSdk},
      {"tls13_openssl", "OpenSSL TLS 1.3 epoll server, default SSL_CTX", Kind::kTls},
      {"tls13_openssl_release_buffers", "OpenSSL TLS 1.3 epoll server, SSL_MODE_RELEASE_BUFFERS",
       Kind::kTlsReleaseBuffers},
  };
  return rows;
}

// Memory of a process, in KiB, from /proc/PID/smaps_rollup (Rss, Pss), or
// /proc/PID/status (VmRSS) on kernels without it.
struct Memory {
  long rss_kib = -1;
  long pss_kib = -1;
};

Memory ReadMemory(pid_t pid) {
  Memory m;
  std::ifstream f("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  while (std::getline(f, line)) {  // the first line is the "[rollup]" range
    if (line.rfind("Rss:", 0) == 0) m.rss_kib = std::strtol(line.c_str() + 4, nullptr, 10);
    if (line.rfind("Pss:", 0) == 0) m.pss_kib = std::strtol(line.c_str() + 4, nullptr, 10);
  }
  if (m.rss_kib < 0) {
    std::ifstream s("/proc/" + std::to_string(pid) + "/status");
    while (std::getline(s, line)) {
      if (line.rfind("VmRSS:", 0) == 0) m.rss_kib = std::strtol(line.c_str() + 6, nullptr, 10);
    }
  }
  return m;
}

// --- Server side (forked child) -----------------------------------------------
//
// Protocol over two pipes: the child writes its port (uint16_t); then for
// each uint32_t target the parent writes, the child answers with the
// uint32_t number of established connections once it reaches the target
// (or after 60 s).

// WaitTarget reads targets from |cfd| and answers through |rfd| using
// |count|, until the parent closes the pipe.
void AnswerTargets(int cfd, int rfd, const std::atomic<uint32_t>& count) {
  uint32_t target = 0;
  while (ReadFull(cfd, &target, sizeof(target))) {
    const auto end = Clock::now() + std::chrono::seconds(60);
    while (count.load() < target && Clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    uint32_t n = count.load();
    if (!WriteFull(rfd, &n, sizeof(n))) return;
  }
}

void RunSdkServer(int cfd, int rfd) {
  tcpcrypt::ServerOptions o;
  o.require_authentication = false;
  auto server = tcpcrypt::Server::Create(o);
  if (!server.ok()) {
    std::fprintf(stderr, "server: %s\n", server.status().ToString().c_str());
    return;
  }
  if (auto st = server.value()->Listen("127.0.0.1", 0); !st.ok()) {
    std::fprintf(stderr, "server: listen: %s\n", st.ToString().c_str());
    return;
  }
  uint16_t port = server.value()->port();
  std::mutex mu;
  std::vector<std::unique_ptr<tcpcrypt::Session>> sessions;
  std::atomic<uint32_t> count{0};
  std::thread serve([&] {
    auto st = server.value()->Serve([&](std::unique_ptr<tcpcrypt::Session> s) {
      std::lock_guard<std::mutex> lock(mu);
      sessions.push_back(std::move(s));
      count.fetch_add(1);
    });
    if (!st.ok()) std::fprintf(stderr, "server: serve: %s\n", st.ToString().c_str());
  });
  if (WriteFull(rfd, &port, sizeof(port))) AnswerTargets(cfd, rfd, count);
  _exit(0);  // the parent is done: no orderly teardown of thousands of sessions
}

// RunTlsServer: one thread, epoll, non-blocking SSL_accept. Established
// connections leave the epoll set and keep their SSL object.
void RunTlsServer(const std::string& pki_dir, bool release_buffers, int cfd, int rfd) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  const std::string chain = pki_dir + "/server.pem", key = pki_dir + "/server.key";
  if (ctx == nullptr || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_use_certificate_chain_file(ctx, chain.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    std::fprintf(stderr, "server: SSL_CTX set-up failed\n");
    return;
  }
  if (release_buffers) SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  uint16_t port = 0;
  int lfd = ListenLoopback(&port);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (lfd < 0 || ep < 0) return;
  (void)fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // the listener
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) return;
  std::atomic<uint32_t> count{0};
  if (!WriteFull(rfd, &port, sizeof(port))) return;
  std::thread answer([&] {
    AnswerTargets(cfd, rfd, count);
    _exit(0);
  });
  answer.detach();

  struct Conn {
    int fd;
    SSL* ssl;
  };
  std::unordered_map<uint64_t, Conn> handshaking;
  std::vector<SSL*> established;
  uint64_t next_id = 1;
  auto drop = [&](uint64_t id) {
    Conn c = handshaking[id];
    (void)epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
    SSL_free(c.ssl);
    close(c.fd);
    handshaking.erase(id);
  };
  auto step = [&](uint64_t id) {
    Conn c = handshaking[id];
    ERR_clear_error();
    int r = SSL_accept(c.ssl);
    if (r == 1) {
      (void)epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
      established.push_back(c.ssl);  // and its fd stays open
      handshaking.erase(id);
      count.fetch_add(1);
      return;
    }
    int e = SSL_get_error(c.ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      drop(id);
      return;
    }
    epoll_event m{};
    m.events = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
    m.data.u64 = id;
    (void)epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &m);
  };
  epoll_event events[64];
  for (;;) {
    int n = epoll_wait(ep, events, 64, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      if (id != 0) {
        if (handshaking.count(id)) step(id);
        continue;
      }
      for (;;) {
        int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) break;
        SetNoDelay(fd);
        SSL* ssl = SSL_new(ctx);
        if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
          if (ssl) SSL_free(ssl);
          close(fd);
          continue;
        }
        const uint64_t cid = next_id++;
        handshaking[cid] = {fd, ssl};
        epoll_event a{};
        a.events = EPOLLIN;
        a.data.u64 = cid;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &a) != 0) {
          drop(cid);
          continue;
        }
        step(cid);
      }
    }
  }
}

// --- Client side (this process) -------------------------------------------------

// Opener opens idle connections to the server and keeps them.
class Opener {
 public:
  virtual ~Opener() = default;
  // Open opens |n| more connections; returns how many succeeded.
  virtual uint32_t Open(uint32_t n) = 0;
};

class SdkOpener final : public Opener {
 public:
  SdkOpener(std::unique_ptr<tcpcrypt::Client> c, uint16_t port)
      : client_(std::move(c)), port_(port) {}
  uint32_t Open(uint32_t n) override {
    uint32_t ok = 0;
    for (uint32_t i = 0; i < n; ++i) {
      auto s = client_->Connect("127.0.0.1", port_);
      if (!s.ok()) {
        if (errors_++ < 3) std::fprintf(stderr, "client: %s\n", s.status().ToString().c_str());
        continue;
      }
      sessions_.push_back(std::move(s.value()));
      ++ok;
    }
    return ok;
  }

 private:
  std::unique_ptr<tcpcrypt::Client> client_;
  uint16_t port_;
  int errors_ = 0;
  std::vector<std::unique_ptr<tcpcrypt::Session>> sessions_;
};

class TlsOpener final : public Opener {
 public:
  TlsOpener(std::shared_ptr<tcpcrypt::sdk::TlsClientContext> ctx, uint16_t port)
      : ctx_(std::move(ctx)), port_(port) {}
  uint32_t Open(uint32_t n) override {
    uint32_t ok = 0;
    for (uint32_t i = 0; i < n; ++i) {
      ctx_->ClearSessionCache();  // full handshakes
      int fd = ConnectLoopback(port_);
      if (fd < 0) continue;
      tcpcrypt::inband::Status st;
      auto s = tcpcrypt::sdk::TlsStream::Connect(tcpcrypt::inband::UniqueFd(fd), *ctx_,
                                                 "127.0.0.1", 10000, &st);
      if (!s) {
        if (errors_++ < 3) std::fprintf(stderr, "client: TLS: %s\n", st.message.c_str());
        continue;
      }
      streams_.push_back(std::move(s));
      ++ok;
    }
    return ok;
  }

 private:
  std::shared_ptr<tcpcrypt::sdk::TlsClientContext> ctx_;
  uint16_t port_;
  int errors_ = 0;
  std::vector<std::unique_ptr<tcpcrypt::sdk::TlsStream>> streams_;
};

std::unique_ptr<Opener> MakeOpener(const RowSpec& row, const std::string& pki_dir, uint16_t port,
                                   std::string* error) {
  if (row.kind == Kind::kSdk) {
    tcpcrypt::ClientOptions o;
    o.require_server_authentication = false;
    o.resumption = false;
    o.tickets = false;
    auto c = tcpcrypt::Client::Create(o);
    if (!c.ok()) {
      *error = c.status().ToString();
      return nullptr;
    }
    return std::make_unique<SdkOpener>(std::move(c.value()), port);
  }
  tcpcrypt::inband::Status st;
  auto ctx = tcpcrypt::sdk::TlsClientContext::FromCaFile(pki_dir + "/ca.pem", &st);
  if (!ctx) {
    *error = "TLS client context: " + st.message;
    return nullptr;
  }
  return std::make_unique<TlsOpener>(std::move(ctx), port);
}

struct RowResult {
  RowSpec spec;
  uint32_t connections = 0;  // measured (after the warm-up)
  uint32_t server_established = 0;
  Memory before, after;
  double seconds = 0;
};

// RunRow starts the server as a fresh process (fork, then exec of this
// program in "serve" mode), so it inherits none of this process's heap:
// after a plain fork the server's allocations could reuse pages already
// resident from the parent and hide their cost from Rss.
std::optional<RowResult> RunRow(const RowSpec& row, const std::string& pki_dir, uint32_t n) {
  int to_child[2], from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0) return std::nullopt;
  if (pipe2(from_child, O_CLOEXEC) != 0) {
    close(to_child[0]);
    close(to_child[1]);
    return std::nullopt;
  }
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    if (AllowedCpus() >= 2) (void)PinTo(1);
    // Keep the two child ends across exec.
    (void)fcntl(to_child[0], F_SETFD, 0);
    (void)fcntl(from_child[1], F_SETFD, 0);
    const std::string cfd_arg = std::to_string(to_child[0]);
    const std::string rfd_arg = std::to_string(from_child[1]);
    execl("/proc/self/exe", "memory_bench", "serve", row.name.c_str(), cfd_arg.c_str(),
          rfd_arg.c_str(), pki_dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  const int cfd = to_child[1], rfd = from_child[0];
  auto finish = [&] {
    close(cfd);
    close(rfd);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  };
  uint16_t port = 0;
  if (!ReadFull(rfd, &port, sizeof(port))) {
    std::fprintf(stderr, "%s: the server did not start\n", row.name.c_str());
    finish();
    return std::nullopt;
  }
  std::string error;
  auto opener = MakeOpener(row, pki_dir, port, &error);
  if (!opener) {
    std::fprintf(stderr, "%s: %s\n", row.name.c_str(), error.c_str());
    finish();
    return std::nullopt;
  }
  // Wait reports the server's count once it reaches |target|.
  auto wait = [&](uint32_t target) -> uint32_t {
    uint32_t got = 0;
    if (!WriteFull(cfd, &target, sizeof(target)) || !ReadFull(rfd, &got, sizeof(got))) return 0;
    return got;
  };
  RowResult res;
  res.spec = row;
  const uint32_t warm = opener->Open(kWarmup);
  if (wait(warm) < warm) std::fprintf(stderr, "%s: warm-up incomplete\n", row.name.c_str());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  res.before = ReadMemory(pid);
  const auto t0 = Clock::now();
  res.connections = opener->Open(n);
  res.server_established = wait(warm + res.connections) - warm;
  res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  res.after = ReadMemory(pid);
  finish();  // the server first, then this process's connections
  opener.reset();
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  // memory_bench serve ROW CONTROL_FD REPORT_FD PKI_DIR: the server half,
  // started by RunRow.
  if (argc == 6 && std::string(argv[1]) == "serve") {
    signal(SIGPIPE, SIG_IGN);
    const std::string row = argv[2];
    const int cfd = std::atoi(argv[3]), rfd = std::atoi(argv[4]);
    if (row == "tcpcrypt_sdk") RunSdkServer(cfd, rfd);
    if (row == "tls13_openssl" || row == "tls13_openssl_release_buffers") {
      RunTlsServer(argv[5], row == "tls13_openssl_release_buffers", cfd, rfd);
    }
    return 2;
  }
  CommonOptions opts;
  opts.json_path = "memory_bench.json";
  long n = -1;

  CLI::App app{"memory_bench: server memory per idle established connection (tcpcrypt SDK "
               "Serve vs an OpenSSL TLS 1.3 epoll server). --quick (default): 1000 "
               "connections; --full: 5000.",
               "memory_bench"};
  AddCommonOptions(app, &opts, [](const std::string& name) {
    return FindRowIn(AllRows(), name) != nullptr;
  });
  app.add_option("--connections", n, "Idle connections N (default 1000, --full 5000)")
      ->check(CLI::PositiveNumber);
  AddListCommand(app, AllRows());
  if (auto rc = ParseCommandLine(app, argc, argv)) return *rc;
  const std::string& mode = opts.mode;
  if (n < 0) n = mode == "full" ? 5000 : 1000;
  signal(SIGPIPE, SIG_IGN);

  // Each side holds kWarmup + n sockets, plus a few.
  rlimit rl{};
  const rlim_t need = static_cast<rlim_t>(n) + kWarmup + 64;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
    rl.rlim_cur = std::min(need, rl.rlim_max);
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
    n = static_cast<long>(rl.rlim_cur) - kWarmup - 64;
    std::fprintf(stderr, "RLIMIT_NOFILE: only %ld connections\n", n);
    if (n <= 0) return 1;
  }

  const int allowed_cpus = AllowedCpus();
  const bool pinned = allowed_cpus >= 2 && PinTo(0);
  std::string error;
  char tmpl[] = "/tmp/memory-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::fprintf(stderr, "mkdtemp: %s\n", std::strerror(errno));
    return 1;
  }
  const std::string pki_dir = tmpl;
  auto remove_pki = [&] {
    for (const char* f : {"ca.pem", "ca.key", "server.pem", "server.key"}) {
      (void)unlink((pki_dir + "/" + f).c_str());
    }
    (void)rmdir(pki_dir.c_str());
  };
  if (!tcpcrypt::auth::x509::WriteServerPki(pki_dir, "127.0.0.1",
                                            tcpcrypt::auth::x509::PkiKeyType::kEcdsaP256, 30,
                                            &error)) {
    std::fprintf(stderr, "cannot make the test PKI: %s\n", error.c_str());
    remove_pki();
    return 1;
  }
  std::vector<RowResult> results;
  for (const auto& row : AllRows()) {
    if (!RowSelected(opts, row.name)) continue;
    std::fprintf(stderr, "running %s ...\n", row.name.c_str());
    auto r = RunRow(row, pki_dir, static_cast<uint32_t>(n));
    if (r) results.push_back(std::move(*r));
  }
  remove_pki();

  const std::string note = MachineNote(pinned, allowed_cpus);
  std::ostringstream md;
  md << "## Server memory per idle connection (" << mode << ", " << n << " connections)\n\n";
  md << "Machine: " << note << ".\n\n";
  md << "| Row | connections | bytes/conn (Rss) | bytes/conn (Pss) | Rss before KiB | Rss after "
        "KiB | open s |\n";
  md << "|---|---:|---:|---:|---:|---:|---:|\n";
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : results) {
    const uint32_t c = std::min(r.connections, r.server_established);
    auto per = [&](long b, long a) {
      return c > 0 && a >= 0 && b >= 0 ? static_cast<double>(a - b) * 1024.0 / c : 0.0;
    };
    const double rss = per(r.before.rss_kib, r.after.rss_kib);
    const double pss = per(r.before.pss_kib, r.after.pss_kib);
    md << "| " << r.spec.description << " | " << c << " | " << Fmt(rss, 0) << " | "
       << Fmt(pss, 0) << " | " << r.before.rss_kib << " | " << r.after.rss_kib << " | "
       << Fmt(r.seconds, 1) << " |\n";
    rows.push_back({
        {"name", r.spec.name},
        {"description", r.spec.description},
        {"connections", c},
        {"client_opened", r.connections},
        {"server_established", r.server_established},
        {"bytes_per_conn", rss},
        {"bytes_per_conn_pss", pss},
        {"rss_before_kib", r.before.rss_kib},
        {"rss_after_kib", r.after.rss_kib},
        {"pss_before_kib", r.before.pss_kib},
        {"pss_after_kib", r.after.pss_kib},
        {"open_seconds", r.seconds},
    });
  }
  md << "\nThe server runs in a fresh process (fork + exec). \"before\" is read after " << kWarmup
     << " warm-up connections are established (and kept), \"after\" once the server has "
        "established the N more; bytes/conn = (after − before) / N, from "
        "/proc/PID/smaps_rollup. User-space memory only: kernel socket memory is not "
        "counted (the same for every row). tcpcrypt: default ServerOptions (resumption "
        "cache on, tickets on but unused without authentication), clients with resumption "
        "off, so every session ran a fresh X25519 key exchange; the Serve handler keeps "
        "each Session in a list. TLS: "
     << OPENSSL_VERSION_TEXT
     << ", one epoll thread, SSL objects kept after SSL_accept, clients with no ticket "
        "(full handshakes).\n";
  std::fputs(md.str().c_str(), stdout);

  nlohmann::json out = {
      {"program", "memory_bench"}, {"mode", mode},   {"machine", note},
      {"connections", n},          {"warmup", kWarmup}, {"rows", rows},
  };
  WriteReports(opts, out.dump(2), md.str());
  return 0;
}
