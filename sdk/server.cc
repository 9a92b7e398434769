#include "tcpcrypt/server.h"

#include <arpa/inet.h>
#include <openssl/x509.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core_transport/engine/engine.h"
#include "core_transport/engine/ephemeral_keys.h"
#include "core_transport/engine/resumption_cache.h"
#include "sdk/auth_driver.h"
#include "sdk/auth_setup.h"
#include "sdk/credentials.h"
#include "sdk/engine_options.h"
#include "sdk/nonblocking_transport.h"
#include "sdk/session_impl.h"
#include "sdk/tls_transport.h"
#include "sdk/transport.h"

namespace tcpcrypt {
namespace {

// The first byte of an in-band tcpcrypt stream is the ENO option kind
// (RFC 8547 §4.1: 69); a TLS stream starts with a handshake record (22).
constexpr uint8_t kFirstByteTcpcrypt = 69;
constexpr uint8_t kFirstByteTls = 22;

std::string PeerName(const sockaddr_storage& ss) {
  char host[64] = "?";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    port = ntohs(a->sin6_port);
  }
  return inband::FormatHostPort(host, port);
}

class ServeLoop;

// Failure is what kind of failure a failed connection counts as
// (ServerStats).
enum class Failure : uint8_t {
  kNotTcpcrypt,
  kHandshakeTimeout,
  kHandshakeFailed,
  kTlsFailed,
  kAuthTimeout,
  kAuthFailed,
  kOverloaded,
  kOther,
  kCount,
};

Failure AuthFailure(auth::AuthError e) {
  return e == auth::AuthError::kTimeout ? Failure::kAuthTimeout : Failure::kAuthFailed;
}

Failure HandshakeFailure(const inband::Status& st) {
  return st.kind == inband::Status::Kind::kTimeout ? Failure::kHandshakeTimeout
                                                   : Failure::kHandshakeFailed;
}

class ServerImpl final : public Server {
 public:
  ServerImpl(ServerOptions o, std::shared_ptr<sdk::ServerAuth> auth,
             std::shared_ptr<sdk::TlsServerContext> tls)
      : o_(std::move(o)),
        auth_(std::move(auth)),
        tls_(std::move(tls)),
        ephemeral_({o_.ephemeral_key_max_uses, o_.ephemeral_key_max_age_ms}),
        stop_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  ~ServerImpl() override {
    Stop();
    if (stop_fd_ >= 0) close(stop_fd_);
  }

  Status Listen(std::string_view address, uint16_t port) override {
    inband::Status st;
    listener_ = inband::Listener::Listen(std::string(address), port, o_.backlog, &st);
    if (listener_ == nullptr) return sdk::FromInband(st);
    return Status();
  }

  uint16_t port() const override { return listener_ ? listener_->port() : 0; }

  StatusOr<std::unique_ptr<Session>> Accept() override {
    if (listener_ == nullptr) return Status(StatusCode::kFailedPrecondition, "call Listen first");
    for (;;) {
      StatusOr<std::pair<inband::UniqueFd, std::string>> sock = AcceptSocket();
      if (!sock.ok()) return sock.status();
      StatusOr<std::unique_ptr<Session>> s =
          Establish(std::move(sock.value().first), sock.value().second);
      if (s.ok()) return s;
      // One failed client never stops the server: count it, go on.
    }
  }

  Status Serve(std::function<void(std::unique_ptr<Session>)> handler,
               int worker_threads) override;

  void Stop() override {
    stopped_.store(true);
    const uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof(one));
  }

  ServerStats stats() const override {
    ServerStats s;
    s.accepted = accepted_.load();
    s.authenticated = authenticated_.load();
    s.failed = failed_.load();
    s.pending = pending_.load();
    s.root_signatures = auth_->root_signatures();
    const auth::ThrottleStats t = auth_->throttle_stats();
    s.password_attempts = t.admitted;
    s.throttled = t.refused;
    auto count = [this](Failure f) { return failures_[static_cast<size_t>(f)].load(); };
    s.not_tcpcrypt = count(Failure::kNotTcpcrypt);
    s.handshake_timeout = count(Failure::kHandshakeTimeout);
    s.handshake_failed = count(Failure::kHandshakeFailed);
    s.tls_failed = count(Failure::kTlsFailed);
    s.auth_timeout = count(Failure::kAuthTimeout);
    s.auth_failed = count(Failure::kAuthFailed);
    s.overloaded = count(Failure::kOverloaded);
    s.other_failed = count(Failure::kOther);
    return s;
  }

 private:
  friend class ServeLoop;

  StatusOr<std::pair<inband::UniqueFd, std::string>> AcceptSocket() {
    for (;;) {
      if (stopped_.load()) return Status(StatusCode::kCancelled, "the server was stopped");
      pollfd fds[2] = {{listener_->fd(), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return Status(StatusCode::kInternal, std::string("poll: ") + std::strerror(errno));
      }
      if (fds[1].revents != 0) continue;  // re-check stopped_
      sockaddr_storage ss{};
      socklen_t len = sizeof(ss);
      const int fd = accept4(listener_->fd(), reinterpret_cast<sockaddr*>(&ss), &len,
                             SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) {
          continue;
        }
        if (errno == EMFILE || errno == ENFILE) {
          // Out of descriptors: back off briefly rather than spin.
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          continue;
        }
        return Status(StatusCode::kInternal, std::string("accept: ") + std::strerror(errno));
      }
      accepted_.fetch_add(1);
      return std::make_pair(inband::UniqueFd(fd), PeerName(ss));
    }
  }

  // CountFailure counts one failed connection, in |failed_| and its kind.
  void CountFailure(Failure f) {
    failed_.fetch_add(1);
    failures_[static_cast<size_t>(f)].fetch_add(1);
  }

  // Establish runs the handshake and authentication of one accepted socket.
  StatusOr<std::unique_ptr<Session>> Establish(inband::UniqueFd fd, const std::string& peer) {
    Failure failure = Failure::kOther;
    StatusOr<std::unique_ptr<Session>> s = EstablishInner(std::move(fd), peer, &failure);
    if (s.ok()) {
      authenticated_.fetch_add(1);
    } else {
      CountFailure(failure);
    }
    return s;
  }

  // EstablishInner sets |*out_failure| on every failure path.
  StatusOr<std::unique_ptr<Session>> EstablishInner(inband::UniqueFd fd, const std::string& peer,
                                                    Failure* out_failure) {
    if (o_.encryption == Encryption::kDisable) return Plain(std::move(fd), peer, out_failure);
    // Peek at the first byte: 0x45 is tcpcrypt's ENO option, 0x16 a TLS
    // record. It has usually arrived with the accept, so look before
    // polling.
    uint8_t first = 0;
    ssize_t got = 0;
    do {
      got = recv(fd.get(), &first, 1, MSG_PEEK | MSG_DONTWAIT);
    } while (got < 0 && errno == EINTR);
    int n = got >= 0 ? 1 : -1;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd.get(), POLLIN, 0};
      n = poll(&p, 1, o_.timeouts.handshake_ms);
      got = 0;
      if (n > 0) {
        do {
          got = recv(fd.get(), &first, 1, MSG_PEEK);
        } while (got < 0 && errno == EINTR);
      }
    }
    if (n > 0 && got == 1 && first == kFirstByteTcpcrypt) {
      return Tcpcrypt(std::move(fd), peer, out_failure);
    }
    if (n > 0 && got == 1 && first == kFirstByteTls && tls_ != nullptr) {
      return Tls(std::move(fd), peer, out_failure);
    }
    if (o_.encryption == Encryption::kPrefer && got >= 0) {
      return Plain(std::move(fd), peer, out_failure);
    }
    if (n == 0) {
      *out_failure = Failure::kHandshakeTimeout;
      return Status(StatusCode::kDeadlineExceeded, peer + ": the client sent nothing");
    }
    *out_failure = Failure::kNotTcpcrypt;
    return Status(StatusCode::kUnavailable, peer + ": the client does not speak tcpcrypt");
  }

  StatusOr<std::unique_ptr<Session>> Plain(inband::UniqueFd fd, const std::string& peer,
                                           Failure* out_failure) {
    if (auth_->enabled() && auth_->required()) {
      *out_failure = Failure::kNotTcpcrypt;
      return Status(StatusCode::kUnauthenticated,
                    peer + ": a plain TCP client cannot authenticate");
    }
    return std::unique_ptr<Session>(std::make_unique<sdk::SessionImpl>(
        std::make_unique<sdk::PlainTransport>(std::move(fd), peer, o_.timeouts.io_ms),
        std::vector<PeerIdentity>{}, std::vector<uint8_t>{}, false));
  }

  // TcpcryptOptions configures a passive connection of this server.
  inband::Options TcpcryptOptions() {
    inband::Options opts;
    opts.engine = sdk::EngineConfigFor(o_);
    opts.engine.ephemeral_keys = &ephemeral_;
    if (o_.resumption) opts.engine.resumption_cache = &resumption_;
    // RFC 8547 §4.2: we say whether we run authentication (a bit), and in
    // the mandatory application-aware mode refuse clients that do not.
    opts.engine.application_aware = auth_->enabled();
    opts.engine.require_peer_application_aware = auth_->enabled() && auth_->required();
    opts.handshake_timeout_ms = o_.timeouts.handshake_ms;
    opts.io_timeout_ms = o_.timeouts.io_ms;
    sdk::SetCarrierLogging(o_, &opts);
    return opts;
  }

  StatusOr<std::unique_ptr<Session>> Tcpcrypt(inband::UniqueFd fd, const std::string& peer,
                                              Failure* out_failure) {
    inband::Options opts = TcpcryptOptions();
    inband::Status st;
    auto conn = inband::Connection::FromSocket(std::move(fd), Engine::Role::kPassive,
                                               std::move(opts), peer, &st);
    if (conn == nullptr) {
      *out_failure = Failure::kOther;
      return sdk::FromInband(st);
    }
    if (inband::Status h = conn->Handshake(); !h.ok()) {
      *out_failure = HandshakeFailure(h);
      return sdk::FromInband(h);
    }
    auto transport = std::make_unique<sdk::TcpcryptTransport>(std::move(conn));
    if (!auth_->enabled() || !transport->peer_application_aware()) {
      return std::unique_ptr<Session>(std::make_unique<sdk::SessionImpl>(
          std::move(transport), std::vector<PeerIdentity>{}, std::vector<uint8_t>{}, false));
    }
    sdk::Waker waker;
    auth::AuthServer server(auth_->Config(),
                            auth::ChannelBinding::SessionId(transport->binding()),
                            waker.Callback(), auth::AddressOfPeer(peer));
    (void)server.Start();
    sdk::AuthRunResult r =
        sdk::RunAuthentication(*transport, server, &waker, o_.timeouts.auth_ms);
    if (!r.ok()) {
      transport->connection().FlushResumptionState();  // no resumption without authentication
      *out_failure = AuthFailure(r.error);
      return r.ToStatus();
    }
    std::vector<PeerIdentity> ids;
    for (const auto& id : server.identities()) ids.push_back(sdk::FromAuth(id));
    return std::unique_ptr<Session>(std::make_unique<sdk::SessionImpl>(
        std::move(transport), std::move(ids), std::move(r.leftover), server.used_ticket()));
  }

  // TLS 1.3 on the same port: the SDK client always runs the negotiation
  // over TLS (there is no ENO a bit), and the authenticators endorse the
  // RFC 9266 exporter.
  StatusOr<std::unique_ptr<Session>> Tls(inband::UniqueFd fd, const std::string& peer,
                                         Failure* out_failure) {
    inband::Status st;
    auto stream = sdk::TlsStream::Accept(std::move(fd), *tls_, o_.timeouts.handshake_ms, &st);
    if (stream == nullptr) {
      *out_failure = Failure::kTlsFailed;
      return sdk::FromTls(st);
    }
    stream->set_io_timeout_ms(o_.timeouts.io_ms);
    auto transport = std::make_unique<sdk::TlsTransport>(std::move(stream));
    if (!transport->ok()) {
      *out_failure = Failure::kOther;
      return Status(StatusCode::kInternal, peer + ": TLS exporter unavailable");
    }
    sdk::Waker waker;
    auth::AuthServer server(auth_->Config(),
                            auth::ChannelBinding::TlsExporter(transport->binding()),
                            waker.Callback(), auth::AddressOfPeer(peer));
    (void)server.Start();
    sdk::AuthRunResult r = sdk::RunAuthentication(*transport, server, &waker, o_.timeouts.auth_ms);
    if (!r.ok()) {
      *out_failure = AuthFailure(r.error);
      return r.ToStatus();
    }
    std::vector<PeerIdentity> ids;
    for (const auto& id : server.identities()) ids.push_back(sdk::FromAuth(id));
    return std::unique_ptr<Session>(std::make_unique<sdk::SessionImpl>(
        std::move(transport), std::move(ids), std::move(r.leftover), server.used_ticket()));
  }

  const ServerOptions o_;
  std::shared_ptr<sdk::ServerAuth> auth_;
  std::shared_ptr<sdk::TlsServerContext> tls_;
  EphemeralKeyCache ephemeral_;
  ResumptionCache resumption_;
  std::unique_ptr<inband::Listener> listener_;
  int stop_fd_ = -1;
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> accepted_{0}, authenticated_{0}, failed_{0}, pending_{0};
  std::atomic<uint64_t> failures_[static_cast<size_t>(Failure::kCount)] = {};
};

// --- Serve: one event loop, a pool of handler threads ------------------------

using LoopClock = std::chrono::steady_clock;

// WorkerPool runs jobs on a fixed set of threads, in order of arrival.
class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 0; i < std::max(threads, 1); ++i) threads_.emplace_back([this] { Run(); });
  }
  ~WorkerPool() { Finish(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

  // Finish runs the jobs already queued, then joins the threads.
  void Finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return closing_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool closing_ = false;
  std::vector<std::thread> threads_;
};

// WakeQueue is the event loop's one eventfd for wake-ups from other threads
// (the X.509 batch signer): Push is thread-safe. It is shared with the wake
// callbacks, so a late callback after Serve returned is harmless.
class WakeQueue {
 public:
  WakeQueue() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~WakeQueue() {
    if (fd_ >= 0) close(fd_);
  }
  WakeQueue(const WakeQueue&) = delete;
  WakeQueue& operator=(const WakeQueue&) = delete;

  int fd() const { return fd_; }
  void Push(uint64_t id) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ids_.push_back(id);
    }
    const uint64_t one = 1;
    ssize_t n;
    do {
      n = write(fd_, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
  }
  // Take clears the eventfd and returns the connections to poll.
  std::vector<uint64_t> Take() {
    uint64_t v = 0;
    (void)!read(fd_, &v, sizeof(v));
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<uint64_t> out;
    out.swap(ids_);
    return out;
  }

 private:
  int fd_ = -1;
  std::mutex mu_;
  std::vector<uint64_t> ids_;
};

// ServeLoop is one run of Server::Serve. One thread (Run's caller) owns
// every connection until it is ready: it accepts, sniffs the first byte,
// runs the tcpcrypt handshake (NonBlockingConnection) and the
// authentication (AuthServer, sans I/O) of all of them at once, each bound
// by its own deadline. A ready session goes to the worker pool.
class ServeLoop {
 public:
  ServeLoop(ServerImpl& server, std::function<void(std::unique_ptr<Session>)> handler,
            int worker_threads)
      : s_(server), handler_(std::move(handler)), pool_(worker_threads),
        wake_(std::make_shared<WakeQueue>()) {}

  Status Run();

 private:
  // Epoll keys: these three, then one per connection (never reused).
  static constexpr uint64_t kListenerKey = 0;
  static constexpr uint64_t kStopKey = 1;
  static constexpr uint64_t kWakeKey = 2;

  enum class Phase : uint8_t { kSniff, kHandshake, kAuth };

  struct Conn {
    uint64_t id = 0;
    Phase phase = Phase::kSniff;
    inband::UniqueFd fd;  // kSniff only; then nb owns the socket
    std::string peer;
    std::unique_ptr<inband::NonBlockingConnection> nb;
    std::unique_ptr<auth::AuthServer> auth;
    LoopClock::time_point deadline = LoopClock::time_point::max();
    uint32_t events = 0;  // the mask registered with epoll
    int registered_fd = -1;
  };
  using Deadline = std::pair<LoopClock::time_point, uint64_t>;

  int SocketOf(const Conn& c) const { return c.phase == Phase::kSniff ? c.fd.get() : c.nb->fd(); }
  bool Add(int fd, uint32_t events, uint64_t key);
  void AcceptAll();
  void OnEvent(Conn& c, uint32_t revents);
  void Sniff(Conn& c);
  void Advance(Conn& c);
  void Pump(Conn& c);
  void SetDeadline(Conn& c, int ms);
  void Watch(Conn& c);
  void Unregister(Conn& c);
  void Fail(Conn& c, Failure failure);
  void Ready(Conn& c, std::vector<PeerIdentity> ids, std::vector<uint8_t> leftover, bool ticket);
  void HandOff(Conn& c);
  void Erase(Conn& c);
  void ExpireDeadlines();
  int TimeoutMs() const;
  void Shutdown();

  ServerImpl& s_;
  std::function<void(std::unique_ptr<Session>)> handler_;
  WorkerPool pool_;
  std::shared_ptr<WakeQueue> wake_;
  inband::UniqueFd epoll_;
  uint64_t next_id_ = kWakeKey + 1;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> deadlines_;
  bool listener_paused_ = false;
  LoopClock::time_point resume_listener_at_{};
};

bool ServeLoop::Add(int fd, uint32_t events, uint64_t key) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = key;
  return epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

Status ServeLoop::Run() {
  epoll_.Reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_ || wake_->fd() < 0 || !Add(s_.listener_->fd(), EPOLLIN, kListenerKey) ||
      !Add(s_.stop_fd_, EPOLLIN, kStopKey) || !Add(wake_->fd(), EPOLLIN, kWakeKey)) {
    const int saved_errno = errno;
    Shutdown();
    return Status(StatusCode::kInternal, std::string("epoll: ") + std::strerror(saved_errno));
  }
  std::vector<epoll_event> events(256);
  while (!s_.stopped_.load()) {
    const int n = epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()),
                             TimeoutMs());
    if (n < 0 && errno != EINTR) {
      const int saved_errno = errno;
      Shutdown();
      return Status(StatusCode::kInternal,
                    std::string("epoll_wait: ") + std::strerror(saved_errno));
    }
    for (int i = 0; i < n && !s_.stopped_.load(); ++i) {
      const uint64_t key = events[static_cast<size_t>(i)].data.u64;
      if (key == kListenerKey) {
        AcceptAll();
      } else if (key == kWakeKey) {
        for (uint64_t id : wake_->Take()) {
          auto it = conns_.find(id);
          if (it == conns_.end() || it->second->phase != Phase::kAuth) continue;
          (void)it->second->auth->Poll();
          Pump(*it->second);
        }
      } else if (key != kStopKey) {
        auto it = conns_.find(key);
        if (it != conns_.end()) OnEvent(*it->second, events[static_cast<size_t>(i)].events);
      }
    }
    ExpireDeadlines();
    if (listener_paused_ && LoopClock::now() >= resume_listener_at_) {
      listener_paused_ = !Add(s_.listener_->fd(), EPOLLIN, kListenerKey);
      if (listener_paused_) resume_listener_at_ = LoopClock::now() + std::chrono::milliseconds(10);
    }
  }
  Shutdown();
  return Status();
}

// Shutdown closes every connection still in the handshake or the
// authentication (each counts as failed), then lets the workers finish.
void ServeLoop::Shutdown() {
  while (!conns_.empty()) Fail(*conns_.begin()->second, Failure::kOther);
  epoll_.Reset();
  pool_.Finish();
}

int ServeLoop::TimeoutMs() const {
  LoopClock::time_point next = LoopClock::time_point::max();
  if (!deadlines_.empty()) next = deadlines_.top().first;
  if (listener_paused_) next = std::min(next, resume_listener_at_);
  if (next == LoopClock::time_point::max()) return -1;
  const auto left = next - LoopClock::now();
  if (left <= LoopClock::duration::zero()) return 0;
  // Round up, so the deadline has passed when epoll_wait returns.
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<int64_t>(ms, 1 << 30));
}

void ServeLoop::AcceptAll() {
  // A bounded batch per wake-up keeps the other connections moving.
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    const int fd = accept4(s_.listener_->fd(), reinterpret_cast<sockaddr*>(&ss), &len,
                           SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: stop accepting briefly rather than spin.
        (void)epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, s_.listener_->fd(), nullptr);
        listener_paused_ = true;
        resume_listener_at_ = LoopClock::now() + std::chrono::milliseconds(10);
      }
      return;  // EAGAIN and the rest: wait for the next event
    }
    inband::UniqueFd sock(fd);
    s_.accepted_.fetch_add(1);
    const std::string peer = PeerName(ss);
    if (s_.o_.encryption == Encryption::kDisable) {
      // No handshake: the plain session is ready now.
      StatusOr<std::unique_ptr<Session>> session = s_.Establish(std::move(sock), peer);
      if (session.ok()) {
        auto holder = std::make_shared<std::unique_ptr<Session>>(std::move(session.value()));
        pool_.Post([this, holder] { handler_(std::move(*holder)); });
      }
      continue;
    }
    // Bounded: beyond max_pending_handshakes new connections are closed
    // at once and counted as failed.
    if (s_.pending_.load() >= s_.o_.max_pending_handshakes) {
      s_.CountFailure(Failure::kOverloaded);
      continue;
    }
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->fd = std::move(sock);
    c->peer = peer;
    if (!Add(c->fd.get(), EPOLLIN, c->id)) {
      s_.CountFailure(Failure::kOther);
      continue;
    }
    c->events = EPOLLIN;
    c->registered_fd = c->fd.get();
    s_.pending_.fetch_add(1);
    // handshake_ms bounds the first byte and the whole handshake.
    SetDeadline(*c, s_.o_.timeouts.handshake_ms);
    conns_.emplace(c->id, std::move(c));
  }
}

void ServeLoop::SetDeadline(Conn& c, int ms) {
  if (ms <= 0) {
    c.deadline = LoopClock::time_point::max();
    return;
  }
  c.deadline = LoopClock::now() + std::chrono::milliseconds(ms);
  deadlines_.emplace(c.deadline, c.id);
}

void ServeLoop::ExpireDeadlines() {
  const LoopClock::time_point now = LoopClock::now();
  while (!deadlines_.empty() && deadlines_.top().first <= now) {
    const Deadline d = deadlines_.top();
    deadlines_.pop();
    auto it = conns_.find(d.second);
    // Entries are not removed when a connection moves on; skip stale ones.
    if (it == conns_.end() || it->second->deadline != d.first) continue;
    Fail(*it->second, it->second->phase == Phase::kAuth ? Failure::kAuthTimeout
                                                         : Failure::kHandshakeTimeout);
  }
}

void ServeLoop::OnEvent(Conn& c, uint32_t revents) {
  if (c.phase == Phase::kSniff) {
    Sniff(c);
    return;
  }
  if ((revents & EPOLLOUT) != 0) c.nb->OnWritable();
  if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && c.nb->wants_read()) c.nb->OnReadable();
  Advance(c);
}

void ServeLoop::Sniff(Conn& c) {
  uint8_t first = 0;
  ssize_t got;
  do {
    got = recv(c.fd.get(), &first, 1, MSG_PEEK);
  } while (got < 0 && errno == EINTR);
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (got != 1 || first != kFirstByteTcpcrypt) {
    // A plain or TLS client, or a bad one: the blocking path decides.
    HandOff(c);
    return;
  }
  Unregister(c);
  inband::Status st;
  auto conn = inband::Connection::FromSocket(std::move(c.fd), Engine::Role::kPassive,
                                             s_.TcpcryptOptions(), c.peer, &st);
  if (conn == nullptr) {
    Fail(c, Failure::kOther);
    return;
  }
  c.nb = inband::NonBlockingConnection::FromConnection(std::move(conn));
  c.phase = Phase::kHandshake;
  if (c.nb->fd() >= 0) {
    c.events = 0;
    if (!Add(c.nb->fd(), 0, c.id)) {
      Fail(c, Failure::kOther);
      return;
    }
    c.registered_fd = c.nb->fd();
  }
  // The client's bytes are already waiting: read them now.
  c.nb->OnReadable();
  Advance(c);
}

void ServeLoop::Advance(Conn& c) {
  if (c.phase == Phase::kHandshake) {
    if (c.nb->failed()) {
      Fail(c, HandshakeFailure(c.nb->status()));
      return;
    }
    if (!c.nb->handshake_done()) {
      Watch(c);
      return;
    }
    // RFC 8547 §4.2: only an application-aware peer (a bit) runs the
    // authentication; the engine already refused others if it is required.
    if (!s_.auth_->enabled() || !c.nb->engine().peer_application_aware()) {
      Ready(c, {}, {}, false);
      return;
    }
    c.auth = std::make_unique<auth::AuthServer>(
        s_.auth_->Config(), auth::ChannelBinding::SessionId(c.nb->session_id()),
        [wake = wake_, id = c.id] { wake->Push(id); }, auth::AddressOfPeer(c.peer));
    (void)c.auth->Start();
    c.phase = Phase::kAuth;
    SetDeadline(c, s_.o_.timeouts.auth_ms);
  }
  Pump(c);
}

// Pump moves bytes between the connection and the AuthServer until neither
// can make progress, then finishes the connection or waits for the socket.
void ServeLoop::Pump(Conn& c) {
  auth::AuthServer& a = *c.auth;
  inband::NonBlockingConnection& nb = *c.nb;
  for (;;) {
    // Flush what the server says, including its last words after a failure
    // (the client then learns "authentication failed").
    if (!a.PendingOutput().empty()) {
      const inband::Status st = nb.Write(a.PendingOutput());
      a.ConsumeOutput(a.PendingOutput().size());
      if (!st.ok() && !a.failed()) {
        Fail(c, Failure::kAuthFailed);
        return;
      }
    }
    if (a.done() || a.failed()) break;
    const ByteSpan in = nb.PeekPlaintext();
    if (!in.empty()) {
      const size_t n = in.size();
      (void)a.Feed(in);
      nb.ConsumePlaintext(n);
      continue;
    }
    if (nb.failed() || nb.at_eof()) {
      // A refusing client closes the connection (auth_session.h).
      (void)a.OnPeerClosed();
      continue;
    }
    break;
  }
  if (a.failed()) {
    Fail(c, AuthFailure(a.error()));
    return;
  }
  if (a.done()) {
    std::vector<PeerIdentity> ids;
    for (const auto& id : a.identities()) ids.push_back(sdk::FromAuth(id));
    std::vector<uint8_t> leftover(a.Leftover().begin(), a.Leftover().end());
    Ready(c, std::move(ids), std::move(leftover), a.used_ticket());
    return;
  }
  Watch(c);
}

// Watch registers the events the connection waits for.
void ServeLoop::Watch(Conn& c) {
  const int fd = SocketOf(c);
  if (fd < 0) {
    Fail(c, c.phase == Phase::kAuth ? Failure::kAuthFailed : Failure::kHandshakeFailed);
    return;
  }
  uint32_t want = 0;
  if (c.phase == Phase::kSniff || c.nb->wants_read()) want |= EPOLLIN;
  if (c.phase != Phase::kSniff && c.nb->wants_write()) want |= EPOLLOUT;
  if (want == c.events) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = c.id;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) {
    Fail(c, Failure::kOther);
    return;
  }
  c.events = want;
}

void ServeLoop::Unregister(Conn& c) {
  // A socket the connection closed itself already left the epoll set.
  const int fd = c.phase == Phase::kSniff ? c.fd.get() : (c.nb ? c.nb->fd() : -1);
  if (fd >= 0 && fd == c.registered_fd) {
    (void)epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  }
  c.registered_fd = -1;
}

void ServeLoop::Erase(Conn& c) {
  Unregister(c);
  s_.pending_.fetch_sub(1);
  conns_.erase(c.id);  // closes the socket, if still open
}

void ServeLoop::Fail(Conn& c, Failure failure) {
  // A client that did not authenticate leaves no resumption state.
  if (c.phase == Phase::kAuth && c.nb != nullptr) c.nb->FlushResumptionState();
  s_.CountFailure(failure);
  Erase(c);
}

void ServeLoop::Ready(Conn& c, std::vector<PeerIdentity> ids, std::vector<uint8_t> leftover,
                      bool ticket) {
  Unregister(c);
  auto session = std::make_shared<std::unique_ptr<Session>>(std::make_unique<sdk::SessionImpl>(
      std::make_unique<sdk::NonBlockingTcpcryptTransport>(std::move(c.nb),
                                                          s_.o_.timeouts.io_ms),
      std::move(ids), std::move(leftover), ticket));
  s_.authenticated_.fetch_add(1);
  Erase(c);
  pool_.Post([this, session] { handler_(std::move(*session)); });
}

// HandOff gives a non-tcpcrypt connection to a worker, which runs the
// blocking path (plain TCP, TLS); it stays pending until that is done.
void ServeLoop::HandOff(Conn& c) {
  Unregister(c);
  auto fd = std::make_shared<inband::UniqueFd>(std::move(c.fd));
  std::string peer = c.peer;
  conns_.erase(c.id);
  pool_.Post([this, fd, peer] {
    StatusOr<std::unique_ptr<Session>> session = s_.Establish(std::move(*fd), peer);
    s_.pending_.fetch_sub(1);
    if (session.ok()) handler_(std::move(session.value()));
  });
}

Status ServerImpl::Serve(std::function<void(std::unique_ptr<Session>)> handler,
                         int worker_threads) {
  if (listener_ == nullptr) return Status(StatusCode::kFailedPrecondition, "call Listen first");
  ServeLoop loop(*this, std::move(handler), worker_threads);
  return loop.Run();
}

// TlsContext loads the TLS 1.3 certificate and key, from files or memory.
StatusOr<std::shared_ptr<sdk::TlsServerContext>> TlsContext(const ServerOptions& o) {
  inband::Status st;
  std::shared_ptr<sdk::TlsServerContext> tls;
  if (o.cert_pem.empty() && o.key_pem.empty()) {
    tls = sdk::TlsServerContext::FromFiles(o.cert_file, o.key_file, &st);
  } else {
    std::vector<std::vector<uint8_t>> der;
    if (Status s = sdk::LoadChain(sdk::CertSource(o), &der); !s.ok()) return s;
    StatusOr<auth::x509::SharedEvpPkey> key = sdk::LoadKey(sdk::KeySource(o));
    if (!key.ok()) return key.status();
    std::vector<auth::x509::UniqueX509> certs;
    for (const std::vector<uint8_t>& d : der) {
      const unsigned char* p = d.data();
      certs.emplace_back(d2i_X509(nullptr, &p, static_cast<long>(d.size())));
      if (certs.back() == nullptr) {
        return Status(StatusCode::kInvalidArgument, "TLS certificate does not parse");
      }
    }
    std::vector<X509*> chain;
    for (size_t i = 1; i < certs.size(); ++i) chain.push_back(certs[i].get());
    tls = sdk::TlsServerContext::FromMemory(certs[0].get(), chain, key.value().get(), &st);
  }
  if (tls == nullptr) return Status(StatusCode::kInvalidArgument, st.message);
  return tls;
}

}  // namespace

StatusOr<std::unique_ptr<Server>> Server::Create(ServerOptions options) {
  if (options.encryption == Encryption::kDisable && !options.plans.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "authentication endorses the encrypted channel: it cannot run with "
                  "Encryption::kDisable");
  }
  if (Status s = sdk::CheckEngineOptions(options.key_exchanges, options.aeads); !s.ok()) return s;
  // Every exit wipes our copy of the key bytes; the success path wipes it
  // before the options move into the server.
  sdk::WipeKeysOnExit<ServerOptions> wipe(&options);
  if (Status s = sdk::CheckSources(options); !s.ok()) return s;
  if (options.accept_tls && (!sdk::CertSource(options).set() || !sdk::KeySource(options).set())) {
    return Status(StatusCode::kInvalidArgument,
                  "accept_tls needs cert_file (or cert_pem) and key_file (or key_pem)");
  }
  sdk::WarnIfKeyLogOn(options.log, options.key_log_file, options.key_log_callback);
  StatusOr<std::shared_ptr<sdk::ServerAuth>> auth = sdk::ServerAuth::Create(options);
  if (!auth.ok()) return auth.status();
  std::shared_ptr<sdk::TlsServerContext> tls;
  if (options.accept_tls) {
    StatusOr<std::shared_ptr<sdk::TlsServerContext>> ctx = TlsContext(options);
    if (!ctx.ok()) return ctx.status();
    tls = std::move(ctx.value());
  }
  sdk::WipeKeys(&options);  // parsed: our copy of the key bytes goes
  return std::unique_ptr<Server>(std::make_unique<ServerImpl>(
      std::move(options), std::move(auth.value()), std::move(tls)));
}

}  // namespace tcpcrypt
