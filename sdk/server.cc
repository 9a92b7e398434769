#include "tcpcrypt/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "core_transport/engine/engine.h"
#include "core_transport/engine/ephemeral_keys.h"
#include "core_transport/engine/resumption_cache.h"
#include "sdk/auth_driver.h"
#include "sdk/auth_setup.h"
#include "sdk/engine_options.h"
#include "sdk/session_impl.h"
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

Status AuthFailure(const sdk::AuthRunResult& r) {
  switch (r.error) {
    case auth::AuthError::kTimeout:
      return Status(StatusCode::kDeadlineExceeded, "authentication: " + r.detail);
    case auth::AuthError::kInternal:
      return Status(StatusCode::kUnavailable, "authentication: " + r.detail);
    case auth::AuthError::kNone:
    case auth::AuthError::kMalformed:
    case auth::AuthError::kUnexpectedMessage:
    case auth::AuthError::kNoCommonMechanism:
    case auth::AuthError::kBadProof:
    case auth::AuthError::kCertificate:
    case auth::AuthError::kRefused:
    case auth::AuthError::kThrottled:
      break;
  }
  return Status(StatusCode::kUnauthenticated, "authentication failed: " + r.detail);
}

class ServerImpl final : public Server {
 public:
  ServerImpl(ServerOptions o, std::shared_ptr<sdk::ServerAuth> auth)
      : o_(std::move(o)),
        auth_(std::move(auth)),
        ephemeral_({o_.ephemeral_key_max_uses, o_.ephemeral_key_max_age_ms}),
        stop_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  ~ServerImpl() override {
    Stop();
    JoinWorkers();
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
               int /*worker_threads*/) override {
    if (listener_ == nullptr) return Status(StatusCode::kFailedPrecondition, "call Listen first");
    for (;;) {
      StatusOr<std::pair<inband::UniqueFd, std::string>> sock = AcceptSocket();
      if (!sock.ok()) {
        JoinWorkers();
        return sock.status().code() == StatusCode::kCancelled ? Status() : sock.status();
      }
      // Bounded: at most max_pending_handshakes handshakes at once; beyond
      // that new connections are closed (RESOURCE_EXHAUSTED, counted).
      if (pending_.load() >= o_.max_pending_handshakes) {
        failed_.fetch_add(1);
        continue;
      }
      pending_.fetch_add(1);
      std::lock_guard<std::mutex> lock(workers_mu_);
      ReapWorkersLocked();
      auto done = std::make_shared<std::atomic<bool>>(false);
      workers_.push_back({std::thread([this, handler, done, fd = std::move(sock.value().first),
                                       peer = sock.value().second]() mutable {
                            StatusOr<std::unique_ptr<Session>> s = Establish(std::move(fd), peer);
                            pending_.fetch_sub(1);
                            if (s.ok()) handler(std::move(s.value()));
                            done->store(true);
                          }),
                          done});
    }
  }

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
    return s;
  }

 private:
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  void ReapWorkersLocked() {
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void JoinWorkers() {
    std::vector<Worker> all;
    {
      std::lock_guard<std::mutex> lock(workers_mu_);
      all.swap(workers_);
    }
    for (auto& w : all) w.thread.join();
  }

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

  // Establish runs the handshake and authentication of one accepted socket.
  StatusOr<std::unique_ptr<Session>> Establish(inband::UniqueFd fd, const std::string& peer) {
    StatusOr<std::unique_ptr<Session>> s = EstablishInner(std::move(fd), peer);
    (s.ok() ? authenticated_ : failed_).fetch_add(1);

    return s;
  }

  StatusOr<std::unique_ptr<Session>> EstablishInner(inband::UniqueFd fd, const std::string& peer) {
    if (o_.encryption == Encryption::kDisable) return Plain(std::move(fd), peer);
    uint8_t first = 0;
    pollfd p{fd.get(), POLLIN, 0};
    const int n = poll(&p, 1, o_.timeouts.handshake_ms);
    ssize_t got = 0;
    if (n > 0) {
      do {
        got = recv(fd.get(), &first, 1, MSG_PEEK);
      } while (got < 0 && errno == EINTR);
    }
    if (n > 0 && got == 1 && first == kFirstByteTcpcrypt) return Tcpcrypt(std::move(fd), peer);
    if (n > 0 && got == 1 && first == kFirstByteTls && o_.accept_tls) {
      return Status(StatusCode::kUnimplemented, "TLS 1.3 fallback is not available in this build");
    }
    if (o_.encryption == Encryption::kPrefer && got >= 0) return Plain(std::move(fd), peer);
    if (n == 0) return Status(StatusCode::kDeadlineExceeded, peer + ": the client sent nothing");
    return Status(StatusCode::kUnavailable, peer + ": the client does not speak tcpcrypt");
  }

  StatusOr<std::unique_ptr<Session>> Plain(inband::UniqueFd fd, const std::string& peer) {
    if (auth_->enabled() && auth_->required()) {
      return Status(StatusCode::kUnauthenticated,
                    peer + ": a plain TCP client cannot authenticate");
    }
    return std::unique_ptr<Session>(std::make_unique<sdk::SessionImpl>(
        std::make_unique<sdk::PlainTransport>(std::move(fd), peer, o_.timeouts.io_ms),
        std::vector<PeerIdentity>{}, std::vector<uint8_t>{}, false));
  }

  StatusOr<std::unique_ptr<Session>> Tcpcrypt(inband::UniqueFd fd, const std::string& peer) {
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
    inband::Status st;
    auto conn = inband::Connection::FromSocket(std::move(fd), Engine::Role::kPassive,
                                               std::move(opts), peer, &st);
    if (conn == nullptr) return sdk::FromInband(st);
    if (inband::Status h = conn->Handshake(); !h.ok()) return sdk::FromInband(h);
    auto transport = std::make_unique<sdk::TcpcryptTransport>(std::move(conn));
    if (!auth_->enabled() || !transport->peer_application_aware()) {
      return std::unique_ptr<Session>(std::make_unique<sdk::SessionImpl>(
          std::move(transport), std::vector<PeerIdentity>{}, std::vector<uint8_t>{}, false));
    }
    sdk::Waker waker;
    auth::AuthServer server(auth_->Config(),
                            auth::ChannelBinding::SessionId(transport->binding()),
                            waker.Callback());
    (void)server.Start();
    sdk::AuthRunResult r =
        sdk::RunAuthentication(*transport, server, &waker, o_.timeouts.auth_ms);
    if (!r.ok()) return AuthFailure(r);
    std::vector<PeerIdentity> ids;
    for (const auto& id : server.identities()) ids.push_back(sdk::FromAuth(id));
    return std::unique_ptr<Session>(std::make_unique<sdk::SessionImpl>(
        std::move(transport), std::move(ids), std::move(r.leftover), server.used_ticket()));
  }

  const ServerOptions o_;
  std::shared_ptr<sdk::ServerAuth> auth_;
  EphemeralKeyCache ephemeral_;
  ResumptionCache resumption_;
  std::unique_ptr<inband::Listener> listener_;
  int stop_fd_ = -1;
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> accepted_{0}, authenticated_{0}, failed_{0}, pending_{0};
  std::mutex workers_mu_;
  std::vector<Worker> workers_;
};

}  // namespace

StatusOr<std::unique_ptr<Server>> Server::Create(ServerOptions options) {
  if (options.encryption == Encryption::kDisable && !options.plans.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "authentication endorses the encrypted channel: it cannot run with "
                  "Encryption::kDisable");
  }
  if (Status s = sdk::CheckEngineOptions(options.key_exchanges, options.aeads); !s.ok()) return s;
  if (options.accept_tls && (options.cert_file.empty() || options.key_file.empty())) {
    return Status(StatusCode::kInvalidArgument, "accept_tls needs cert_file and key_file");
  }
  StatusOr<std::shared_ptr<sdk::ServerAuth>> auth = sdk::ServerAuth::Create(options);
  if (!auth.ok()) return auth.status();
  return std::unique_ptr<Server>(
      std::make_unique<ServerImpl>(std::move(options), std::move(auth.value())));
}

}  // namespace tcpcrypt
