// auth_session.h: the negotiation that runs authenticators over a
// protected connection (sans I/O, like the engine).
//
//   client                                     server
//   Hello{mechanisms, user, realm, ticket?} ->
//                                           <- Choice{plan}
//   ... Step{mechanism, payload} both ways, one mechanism after another ...
//                                           <- Outcome{ok, ticket?}
//
// The server picks the first plan of its policy whose mechanisms the client
// offered (a plan of two runs both in sequence: the paper's "signing plus
// CMAC"). A valid ticket short-cuts to the TICKET plan. Every message is a
// 4-byte big-endian length and a serialized wire::Envelope.
//
// Refusals: the local application gets a specific AuthError and detail. A
// refusing server sends Outcome{ok = false, reason = "authentication
// failed"} and nothing more specific; a refusing client sends nothing and
// closes the connection (the server may already consider itself done, so
// anything it sent would reach the server's application as data).
//
// Thread-safety: one thread at a time per object; the wake callback may be
// called from any thread and only asks the driver to call Poll().
#ifndef TCPCRYPT_AUTH_COMMON_AUTH_SESSION_H_
#define TCPCRYPT_AUTH_COMMON_AUTH_SESSION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "auth/common/binding.h"
#include "auth/common/mechanism.h"
#include "auth/common/throttle.h"
#include "auth/common/ticket.h"

namespace tcpcrypt::auth {

inline constexpr uint32_t kAuthProtocolVersion = 1;
inline constexpr size_t kDefaultMaxAuthMessage = 64 * 1024;

struct ClientConfig {
  // What the client can run, in its order of preference.
  std::vector<std::pair<Mechanism, MechanismFactory>> mechanisms;
  std::string user;   // for password mechanisms
  std::string realm;  // the realm password proofs are bound to (the server's name)
  // The server as dialed: host and port passed to Connect, and the name its
  // certificate must match (the factories check it; here it keys tickets).
  std::string host;
  uint16_t port = 0;
  std::string server_name;
  // Where tickets are kept, under TicketKey{host, port, server_name, realm,
  // user}: offered when present and covering the requirements below, stored
  // only after a session in which the server proved itself.
  std::shared_ptr<TicketStore> tickets;
  // Whether the server must authenticate (a server that runs no mechanism
  // is refused). If false, an empty plan is accepted with no identity.
  bool required = true;
  // What the server's plan must prove, checked on its Choice before any
  // mechanism runs (so no password-derived proof is sent to a server that
  // proposes less): an X.509 certificate for server_name, and/or a
  // password mechanism (cmac or pake). A ticket plan satisfies them when
  // the session that issued the ticket did. Refusal: kPolicy.
  bool require_certificate = false;
  bool require_password = false;
  size_t max_message = kDefaultMaxAuthMessage;
};

struct ServerConfig {
  std::vector<std::pair<Mechanism, MechanismFactory>> mechanisms;
  // Acceptable plans, best first. Empty: each configured mechanism alone,
  // in configuration order.
  std::vector<std::vector<Mechanism>> plans;
  // Whether a client that can run no plan is refused (the paper's
  // mandatory application-aware mode). If false it is let through with no
  // identity.
  bool required = true;
  // This server's name (password records are per realm). Empty: the realm
  // the client names in its hello (records exist only for the names the
  // operator enrolled). When set, and the server runs a password
  // mechanism, a hello naming another realm is refused like a wrong
  // password (kBadProof locally, naming both realms).
  std::string realm;
  // Limits password guessing (throttle.h): consulted for every plan that
  // contains CMAC_PASSWORD or PAKE2PLUS, keyed by the hello's user and the
  // connection's source address.
  std::shared_ptr<Throttle> throttle;
  // Issue a ticket after a successful non-ticket authentication, and accept
  // tickets, when set.
  std::shared_ptr<TicketIssuer> tickets;
  size_t max_message = kDefaultMaxAuthMessage;
};

// Shared by client and server: framing and the failure/identity state.
class AuthEndpoint {
 public:
  enum class State : uint8_t { kIdle, kNegotiating, kRunning, kAwaitOutcome, kDone, kFailed };

  virtual ~AuthEndpoint() = default;

  // Feed gives bytes read from the connection (any split). Returns the
  // sticky error, kNone while all is well.
  AuthError Feed(ByteSpan bytes);
  // Poll runs a mechanism that asked to be woken.
  AuthError Poll();
  // OnPeerClosed reports that the connection ended before authentication
  // did: the peer refused us (a refusing side just closes) or gave up.
  AuthError OnPeerClosed();
  ByteSpan PendingOutput() const {
    return ByteSpan(out_.data() + out_head_, out_.size() - out_head_);
  }
  void ConsumeOutput(size_t n);

  State state() const { return state_; }
  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kFailed; }
  AuthError error() const { return error_; }
  const std::string& detail() const { return detail_; }
  // Identities established about the peer, in the order of the plan.
  const std::vector<PeerIdentity>& identities() const { return identities_; }
  // The mechanisms that ran.
  const std::vector<Mechanism>& plan() const { return plan_; }
  // Bytes Feed() has buffered but not yet consumed (a complete message
  // after done() would be a protocol error; the SDK hands these to the
  // application as the first application bytes).
  ByteSpan Leftover() const {
    return ByteSpan(in_.data() + in_head_, in_.size() - in_head_);
  }

 protected:
  AuthEndpoint(ChannelBinding binding, size_t max_message, std::function<void()> wake)
      : binding_(std::move(binding)), max_message_(max_message), wake_(std::move(wake)) {}

  virtual AuthError OnMessage(ByteSpan message) = 0;
  virtual AuthError OnPoll() = 0;
  AuthError Fail(AuthError e, std::string detail);
  // Send queues |message| with its length prefix and wipes |message|; the
  // queue is wiped once consumed (messages carry ticket secrets).
  void Send(std::vector<uint8_t> message);

  ChannelBinding binding_;
  const size_t max_message_;
  std::function<void()> wake_;
  State state_ = State::kIdle;
  AuthError error_ = AuthError::kNone;
  std::string detail_;
  std::vector<PeerIdentity> identities_;
  std::vector<Mechanism> plan_;

 private:
  std::vector<uint8_t> in_;
  size_t in_head_ = 0;
  std::vector<uint8_t> out_;
  size_t out_head_ = 0;
};

class AuthClient final : public AuthEndpoint {
 public:
  AuthClient(ClientConfig config, ChannelBinding binding,
             std::function<void()> wake = {});
  ~AuthClient() override;
  // Start queues the hello. Call once.
  AuthError Start();
  // Whether this run presented a ticket that the server accepted.
  bool used_ticket() const { return used_ticket_; }

 private:
  struct Running;
  AuthError OnMessage(ByteSpan message) override;
  AuthError OnPoll() override;
  AuthError Handle(Step step);
  AuthError StartNext();

  TicketKey ticket_key() const;
  // PolicyGap names what |plan| fails to prove of this client's
  // requirements ("" when it proves enough).
  std::string PolicyGap(const std::vector<Mechanism>& plan) const;

  ClientConfig config_;
  std::unique_ptr<Running> run_;
  TicketStore::Entry ticket_;  // the ticket offered (when offered_ticket_)
  bool offered_ticket_ = false;
  bool used_ticket_ = false;
};

class AuthServer final : public AuthEndpoint {
 public:
  // |source| is the client's address without the port (AddressOfPeer in
  // throttle.h), the throttle's per-source key; "" if unknown (all unknown
  // sources then share one budget).
  AuthServer(ServerConfig config, ChannelBinding binding,
             std::function<void()> wake = {}, std::string source = {});
  ~AuthServer() override;
  // Start arms the server (it speaks only after the client's hello).
  AuthError Start();
  const std::string& user() const { return user_; }
  bool used_ticket() const { return used_ticket_; }

 private:
  struct Running;
  AuthError OnMessage(ByteSpan message) override;
  AuthError OnPoll() override;
  AuthError Handle(Step step);
  AuthError StartNext();
  AuthError Finish();
  AuthError Refuse(AuthError local, std::string detail);

  ServerConfig config_;
  std::string source_;
  // The throttle's charge for a password plan; settled only by Finish().
  ThrottleAttempt attempt_;
  std::unique_ptr<Running> run_;
  std::string user_;
  std::string client_realm_;
  // The realm of this run: ServerConfig::realm, or the client's when that
  // is empty. Password records are looked up and tickets sealed under it.
  std::string realm_;
  bool used_ticket_ = false;
  bool password_plan_ = false;
};

}  // namespace tcpcrypt::auth

#endif  // TCPCRYPT_AUTH_COMMON_AUTH_SESSION_H_
