#include "tcpcrypt/client.h"

#include "core_transport/engine/engine.h"
#include "core_transport/engine/resumption_cache.h"
#include "sdk/auth_driver.h"
#include "sdk/auth_setup.h"
#include "sdk/credentials.h"
#include "sdk/engine_options.h"
#include "sdk/session_impl.h"
#include "sdk/tls_transport.h"
#include "sdk/transport.h"

namespace tcpcrypt {
namespace {

using sdk::Transport;

class ClientImpl final : public Client {
 public:
  ClientImpl(ClientOptions o, std::shared_ptr<sdk::ClientAuth> auth,
             std::shared_ptr<sdk::TlsClientContext> tls)
      : o_(std::move(o)), auth_(std::move(auth)), tls_(std::move(tls)) {}

  StatusOr<std::unique_ptr<Session>> Connect(std::string_view host_view,
                                             uint16_t port) override {
    const std::string host(host_view);
    if (o_.encryption == Encryption::kDisable) return ConnectPlain(host, port);

    inband::Options opts;
    opts.engine = sdk::EngineConfigFor(o_);
    opts.engine.application_aware = auth_->enabled();
    if (o_.resumption) {
      opts.engine.resumption_cache = &resumption_;
      opts.engine.peer_name = inband::FormatHostPort(host, port);
    }
    opts.handshake_timeout_ms = o_.timeouts.connect_ms + o_.timeouts.handshake_ms;
    opts.io_timeout_ms = o_.timeouts.io_ms;
    sdk::SetCarrierLogging(o_, &opts);
    inband::Status st;
    std::unique_ptr<inband::Connection> conn =
        inband::Connection::Connect(host, port, std::move(opts), &st);
    if (conn == nullptr) {
      // A silent peer (a plain server waiting for its client to speak
      // first) only shows itself by the time-out; under kPrefer that too
      // means "not tcpcrypt".
      const bool not_tcpcrypt =
          st.kind == inband::Status::Kind::kEof ||
          (st.kind == inband::Status::Kind::kTimeout &&
           o_.encryption == Encryption::kPrefer) ||
          (st.kind == inband::Status::Kind::kEngine &&
           (st.engine_error == Error::kEnoAbsent || st.engine_error == Error::kEnoFailed));
      if (not_tcpcrypt && tls_ != nullptr) return ConnectTls(host, port);
      if (not_tcpcrypt && o_.encryption == Encryption::kPrefer) {
        return ConnectPlain(host, port);
      }
      Status s = sdk::FromInband(st);
      if (not_tcpcrypt) {
        s = Status(StatusCode::kUnavailable,
                   st.message + " (the server does not speak tcpcrypt, or requires "
                                "authentication this client does not offer)");
      }
      return s;
    }
    auto transport = std::make_unique<sdk::TcpcryptTransport>(std::move(conn));
    if (!auth_->enabled()) {
      return std::unique_ptr<Session>(
          std::make_unique<sdk::SessionImpl>(std::move(transport), std::vector<PeerIdentity>{},
                                             std::vector<uint8_t>{}, false));
    }
    if (!transport->peer_application_aware()) {
      // RFC 8547 §4.2: the server's a bit is 0, so it runs no
      // authentication.
      if (o_.require_server_authentication) {
        return Status(StatusCode::kUnauthenticated,
                      "the server does not authenticate (its TCP-ENO application-aware "
                      "bit is 0)");
      }
      return std::unique_ptr<Session>(
          std::make_unique<sdk::SessionImpl>(std::move(transport), std::vector<PeerIdentity>{},
                                             std::vector<uint8_t>{}, false));
    }
    auto binding = auth::ChannelBinding::SessionId(transport->binding());
    return Authenticate(std::move(transport), host, port, std::move(binding));
  }

 private:
  StatusOr<std::unique_ptr<Session>> Authenticate(std::unique_ptr<sdk::Transport> transport,
                                                  const std::string& host, uint16_t port,
                                                  auth::ChannelBinding binding) {
    auth::AuthClient client(auth_->Config(host, port), std::move(binding));
    (void)client.Start();
    sdk::AuthRunResult r =
        sdk::RunAuthentication(*transport, client, nullptr, o_.timeouts.auth_ms);
    if (!r.ok()) {
      // The session secret this connection cached for the next one to this
      // peer came from a server that did not authenticate: forget it (RFC
      // 8548 §3.5, "flush cache state that resulted from this connection").
      if (o_.resumption) resumption_.FlushPeer(inband::FormatHostPort(host, port));
      return r.ToStatus();
    }
    std::vector<PeerIdentity> ids;
    for (const auto& id : client.identities()) ids.push_back(sdk::FromAuth(id));
    return std::unique_ptr<Session>(std::make_unique<sdk::SessionImpl>(
        std::move(transport), std::move(ids), std::move(r.leftover), client.used_ticket()));
  }

  // ConnectTls is the fallback: TLS 1.3 to the same port, then the same
  // authenticators endorsing the RFC 9266 exporter (the negotiation always
  // runs over TLS, since there is no ENO a bit to say whether it will).
  StatusOr<std::unique_ptr<Session>> ConnectTls(const std::string& host, uint16_t port) {
    StatusOr<inband::UniqueFd> fd = sdk::ConnectTcp(host, port, o_.timeouts.connect_ms);
    if (!fd.ok()) return fd.status();
    inband::Status st;
    auto stream = sdk::TlsStream::Connect(std::move(fd.value()), *tls_,
                                          o_.server_name.empty() ? host : o_.server_name,
                                          o_.timeouts.handshake_ms, &st);
    if (stream == nullptr) return sdk::FromTls(st);
    stream->set_io_timeout_ms(o_.timeouts.io_ms);
    auto transport = std::make_unique<sdk::TlsTransport>(std::move(stream));
    if (!transport->ok()) return Status(StatusCode::kInternal, "TLS exporter unavailable");
    auto binding = auth::ChannelBinding::TlsExporter(transport->binding());
    return Authenticate(std::move(transport), host, port, std::move(binding));
  }

  StatusOr<std::unique_ptr<Session>> ConnectPlain(const std::string& host, uint16_t port) {
    if (auth_->enabled()) {
      return Status(StatusCode::kUnavailable,
                    "the server does not speak tcpcrypt, and authentication needs an "
                    "encrypted channel");
    }
    StatusOr<inband::UniqueFd> fd = sdk::ConnectTcp(host, port, o_.timeouts.connect_ms);
    if (!fd.ok()) return fd.status();
    auto t = std::make_unique<sdk::PlainTransport>(std::move(fd.value()),
                                                   inband::FormatHostPort(host, port),
                                                   o_.timeouts.io_ms);
    return std::unique_ptr<Session>(std::make_unique<sdk::SessionImpl>(
        std::move(t), std::vector<PeerIdentity>{}, std::vector<uint8_t>{}, false));
  }

  const ClientOptions o_;
  std::shared_ptr<sdk::ClientAuth> auth_;
  std::shared_ptr<sdk::TlsClientContext> tls_;
  ResumptionCache resumption_;
};

}  // namespace

StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  if (options.encryption == Encryption::kDisable && !options.mechanisms.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "authentication endorses the encrypted channel: it cannot run with "
                  "Encryption::kDisable");
  }
  if (Status s = sdk::CheckEngineOptions(options.key_exchanges, options.aeads); !s.ok()) {
    return s;
  }
  // Every exit wipes our copy of the key bytes; the success path wipes it
  // before the options move into the client.
  sdk::WipeKeysOnExit<ClientOptions> wipe(&options);
  if (Status s = sdk::CheckSources(options); !s.ok()) return s;
  sdk::WarnIfKeyLogOn(options.log, options.key_log_file, options.key_log_callback);
  StatusOr<std::shared_ptr<sdk::ClientAuth>> auth = sdk::ClientAuth::Create(options);
  if (!auth.ok()) return auth.status();
  std::shared_ptr<sdk::TlsClientContext> tls;
  if (options.tls_fallback) {
    if (!sdk::CaSource(options).set()) {
      return Status(StatusCode::kInvalidArgument,
                    "tls_fallback needs ClientOptions::ca_file or ::ca_pem (the server's CA)");
    }
    inband::Status st;
    if (options.ca_pem.empty()) {
      tls = sdk::TlsClientContext::FromCaFile(options.ca_file, &st);
    } else {
      StatusOr<auth::x509::SharedX509Store> store = sdk::LoadTrust(sdk::CaSource(options));
      if (!store.ok()) return store.status();
      tls = sdk::TlsClientContext::FromStore(store.value().get(), &st);
    }
    if (tls == nullptr) return Status(StatusCode::kInvalidArgument, st.message);
  }
  sdk::WipeKeys(&options);  // parsed: our copy of the key bytes goes
  return std::unique_ptr<Client>(std::make_unique<ClientImpl>(
      std::move(options), std::move(auth.value()), std::move(tls)));
}

}  // namespace tcpcrypt
