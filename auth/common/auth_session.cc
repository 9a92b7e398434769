#include "auth/common/auth_session.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>

#include "auth/common/auth.pb.h"
#include "core_transport/engine/bytes.h"

namespace tcpcrypt::auth {
namespace {

constexpr size_t kLengthPrefix = 4;
constexpr size_t kMaxUserLen = 256;
constexpr size_t kMaxPlanLen = 4;
constexpr char kRefusalReason[] = "authentication failed";

bool IsPassword(Mechanism m) {
  return m == Mechanism::kCmacPassword || m == Mechanism::kPake2Plus;
}

bool ValidMechanism(int v) { return v >= 1 && v <= 4; }

// ProvesServer: the mechanisms whose client side authenticates the server.
bool ProvesServer(Mechanism m) {
  return m == Mechanism::kCmacPassword || m == Mechanism::kPake2Plus ||
         m == Mechanism::kX509Batch;
}

std::string PlanName(const std::vector<Mechanism>& plan) {
  std::string out = "[";
  for (size_t i = 0; i < plan.size(); ++i) {
    if (i > 0) out += ", ";
    out += MechanismName(plan[i]);
  }
  return out + "]";
}

std::vector<uint8_t> Serialize(const wire::Envelope& env) {
  std::vector<uint8_t> out(env.ByteSizeLong());
  env.SerializeToArray(out.data(), static_cast<int>(out.size()));
  return out;
}

// StepMessage frames |payload| and wipes it and the protobuf's copy: a
// payload may carry a secret (CMAC's upgrade verifier).
std::vector<uint8_t> StepMessage(Mechanism m, std::vector<uint8_t>& payload) {
  wire::Envelope env;
  env.mutable_step()->set_mechanism(static_cast<wire::Mechanism>(m));
  env.mutable_step()->set_payload(payload.data(), payload.size());
  std::vector<uint8_t> out = Serialize(env);
  std::string* copy = env.mutable_step()->mutable_payload();
  OPENSSL_cleanse(copy->data(), copy->size());
  OPENSSL_cleanse(payload.data(), payload.size());
  return out;
}

std::vector<uint8_t> OutcomeMessage(bool ok) {
  wire::Envelope env;
  env.mutable_outcome()->set_ok(ok);
  if (!ok) env.mutable_outcome()->set_reason(kRefusalReason);
  return Serialize(env);
}

// --- TICKET mechanism sides ---------------------------------------------

class TicketClientSide final : public MechanismSide {
 public:
  TicketClientSide(const TicketSecret& secret, ChannelBinding binding, std::string realm)
      : binding_(std::move(binding)), realm_(std::move(realm)) {
    secret_.CopyFrom(secret.span());
  }
  Mechanism mechanism() const override { return Mechanism::kTicket; }
  Step Start() override { return Step::Continue(); }  // proof went in Hello
  Step OnPayload(ByteSpan payload) override {
    if (done_) return Step::Fail(AuthError::kUnexpectedMessage, "ticket already verified");
    done_ = true;
    wire::TicketProof proof;
    if (payload.size() > 256 ||
        !proof.ParseFromArray(payload.data(), static_cast<int>(payload.size())) ||
        proof.server_proof().size() != kTicketProofLen) {
      return Step::Fail(AuthError::kMalformed, "malformed ticket proof");
    }
    const auto want = TicketProof(secret_, kTicketServerTag, binding_);
    if (CRYPTO_memcmp(want.data(), proof.server_proof().data(), want.size()) != 0) {
      return Step::Fail(AuthError::kBadProof,
                        "server ticket proof did not verify: the server does not "
                        "hold this ticket's key");
    }
    ok_ = true;
    return Step::Done();
  }
  std::optional<PeerIdentity> peer() const override {
    if (!ok_) return std::nullopt;
    return PeerIdentity{Mechanism::kTicket, realm_, {{"via", "ticket"}}};
  }

 private:
  TicketSecret secret_;
  ChannelBinding binding_;
  std::string realm_;
  bool done_ = false;
  bool ok_ = false;
};

class TicketServerSide final : public MechanismSide {
 public:
  TicketServerSide(TicketIssuer::Opened opened, ChannelBinding binding)
      : opened_(std::move(opened)), binding_(std::move(binding)) {}
  Mechanism mechanism() const override { return Mechanism::kTicket; }
  Step Start() override {
    if (started_) return Step::Fail(AuthError::kUnexpectedMessage, "started twice");
    started_ = true;
    wire::TicketProof proof;
    const auto p = TicketProof(opened_.secret, kTicketServerTag, binding_);
    proof.set_server_proof(p.data(), p.size());
    std::vector<uint8_t> out(proof.ByteSizeLong());
    proof.SerializeToArray(out.data(), static_cast<int>(out.size()));
    return Step::Done(std::move(out));
  }
  Step OnPayload(ByteSpan) override {
    return Step::Fail(AuthError::kUnexpectedMessage, "the ticket mechanism takes no payload");
  }
  std::optional<PeerIdentity> peer() const override {
    PeerIdentity id = opened_.identity;
    id.attributes["original_mechanism"] = std::string(MechanismName(id.mechanism));
    id.attributes["via"] = "ticket";
    id.mechanism = Mechanism::kTicket;
    return id;
  }

 private:
  TicketIssuer::Opened opened_;
  ChannelBinding binding_;
  bool started_ = false;
};

}  // namespace

// --- framing --------------------------------------------------------------

AuthError AuthEndpoint::Fail(AuthError e, std::string detail) {
  if (state_ == State::kFailed) return error_;
  state_ = State::kFailed;
  error_ = e;
  detail_ = std::move(detail);
  return e;
}

void AuthEndpoint::Send(std::vector<uint8_t> message) {
  const size_t n = message.size();
  const uint8_t prefix[kLengthPrefix] = {
      static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
      static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  out_.insert(out_.end(), prefix, prefix + kLengthPrefix);
  out_.insert(out_.end(), message.begin(), message.end());
  OPENSSL_cleanse(message.data(), message.size());  // ticket secret, verifier
}

void AuthEndpoint::ConsumeOutput(size_t n) {
  out_head_ += std::min(n, out_.size() - out_head_);
  if (out_head_ == out_.size()) {
    OPENSSL_cleanse(out_.data(), out_.size());
    out_.clear();
    out_head_ = 0;
  }
}

AuthError AuthEndpoint::Feed(ByteSpan bytes) {
  if (state_ == State::kFailed) return error_;
  in_.insert(in_.end(), bytes.begin(), bytes.end());
  while (state_ != State::kDone && state_ != State::kFailed) {
    const size_t avail = in_.size() - in_head_;
    if (avail < kLengthPrefix) break;
    const size_t len = LoadBe32(in_.data() + in_head_);
    if (len > max_message_) {
      return Fail(AuthError::kMalformed, "authentication message of " +
                                             std::to_string(len) +
                                             " bytes exceeds the limit");
    }
    if (avail < kLengthPrefix + len) break;
    ByteSpan msg(in_.data() + in_head_ + kLengthPrefix, len);
    in_head_ += kLengthPrefix + len;
    if (AuthError e = OnMessage(msg); e != AuthError::kNone) return e;
  }
  if (in_head_ == in_.size()) {
    OPENSSL_cleanse(in_.data(), in_.size());
    in_.clear();
    in_head_ = 0;
  }
  return state_ == State::kFailed ? error_ : AuthError::kNone;
}

AuthError AuthEndpoint::OnPeerClosed() {
  if (state_ == State::kDone || state_ == State::kFailed) return error_;
  return Fail(AuthError::kRefused,
              "the peer closed the connection during authentication (it refused "
              "this side's proof, or gave up)");
}

AuthError AuthEndpoint::Poll() {
  if (state_ == State::kFailed) return error_;
  if (state_ != State::kRunning) return AuthError::kNone;
  return OnPoll();
}

// --- client ---------------------------------------------------------------

struct AuthClient::Running {
  std::vector<std::unique_ptr<MechanismSide>> sides;
  size_t next = 0;
  MechanismSide* current = nullptr;
};

AuthClient::AuthClient(ClientConfig config, ChannelBinding binding,
                       std::function<void()> wake)
    : AuthEndpoint(std::move(binding), config.max_message, std::move(wake)),
      config_(std::move(config)) {}

AuthClient::~AuthClient() = default;

TicketKey AuthClient::ticket_key() const {
  return TicketKey{config_.host, config_.port, config_.server_name, config_.realm, config_.user};
}

std::string AuthClient::PolicyGap(const std::vector<Mechanism>& proves) const {
  const bool any = std::any_of(proves.begin(), proves.end(), ProvesServer);
  const bool cert = std::find(proves.begin(), proves.end(), Mechanism::kX509Batch) != proves.end();
  const bool password = std::any_of(proves.begin(), proves.end(), IsPassword);
  std::string gap;
  if (config_.require_certificate && !cert) gap = "a server certificate";
  if (config_.require_password && !password) {
    gap += gap.empty() ? "a password proof" : " nor a password proof";
  }
  if (gap.empty() && config_.required && !any) gap = "any authentication of the server";
  return gap;
}

AuthError AuthClient::Start() {
  if (state_ != State::kIdle) return AuthError::kUnexpectedMessage;
  wire::Envelope env;
  wire::ClientHello* hello = env.mutable_hello();
  hello->set_version(kAuthProtocolVersion);
  hello->set_user(config_.user);
  hello->set_realm(config_.realm);
  // A ticket is offered only to the server (host, port, certificate name,
  // realm) it was issued under, and only if what that session proved
  // covers what this client requires.
  if (config_.tickets && config_.tickets->Get(ticket_key(), &ticket_)) {
    std::vector<Mechanism> proven;
    for (const auto& id : ticket_.proven) proven.push_back(id.mechanism);
    if (!proven.empty() && std::all_of(proven.begin(), proven.end(), ProvesServer) &&
        PolicyGap(proven).empty()) {
      wire::TicketHello th;
      th.set_ticket(ticket_.ticket.data(), ticket_.ticket.size());
      const auto proof = TicketProof(ticket_.secret, kTicketClientTag, binding_);
      th.set_client_proof(proof.data(), proof.size());
      hello->set_ticket_payload(th.SerializeAsString());
      hello->add_mechanisms(wire::TICKET);
      offered_ticket_ = true;
    }
  }
  for (const auto& [m, factory] : config_.mechanisms) {
    hello->add_mechanisms(static_cast<wire::Mechanism>(m));
  }
  Send(Serialize(env));
  state_ = State::kNegotiating;
  return AuthError::kNone;
}

AuthError AuthClient::OnMessage(ByteSpan message) {
  wire::Envelope env;
  if (!env.ParseFromArray(message.data(), static_cast<int>(message.size()))) {
    return Fail(AuthError::kMalformed, "malformed authentication message");
  }
  if (env.has_outcome()) {
    const wire::Outcome& o = env.outcome();
    if (!o.ok()) {
      return Fail(AuthError::kRefused,
                  "the server refused authentication (wrong password, unknown "
                  "user, or no acceptable mechanism)");
    }
    if (state_ != State::kAwaitOutcome) {
      return Fail(AuthError::kUnexpectedMessage,
                  "the server declared success before completing authentication");
    }
    // What the server proved on this session (a ticket is stored only then:
    // never after an empty plan, whatever the Outcome carries).
    std::vector<PeerIdentity> proven;
    for (const auto& id : identities_) {
      if (ProvesServer(id.mechanism)) proven.push_back(id);
    }
    if (config_.tickets) {
      if (used_ticket_) {
        // keep the ticket we have
      } else if (!proven.empty() && !o.ticket().empty() &&
                 o.ticket_secret().size() == kTicketSecretLen &&
                 o.ticket().size() <= kMaxTicketLen) {
        TicketSecret secret;
        secret.CopyFrom(ByteSpan(
            reinterpret_cast<const uint8_t*>(o.ticket_secret().data()), kTicketSecretLen));
        config_.tickets->Put(ticket_key(),
                             std::vector<uint8_t>(o.ticket().begin(), o.ticket().end()),
                             secret, o.ticket_lifetime_ms(), std::move(proven));
      } else if (offered_ticket_) {
        config_.tickets->Forget(ticket_key());  // it was refused
      }
    }
    std::string* ticket_secret = env.mutable_outcome()->mutable_ticket_secret();
    OPENSSL_cleanse(ticket_secret->data(), ticket_secret->size());
    state_ = State::kDone;
    return AuthError::kNone;
  }

  switch (state_) {
    case State::kNegotiating: {
      if (!env.has_choice()) {
        return Fail(AuthError::kUnexpectedMessage, "expected the server's choice");
      }
      const auto& wire_plan = env.choice().plan();
      if (wire_plan.size() > static_cast<int>(kMaxPlanLen)) {
        return Fail(AuthError::kMalformed, "the server's plan is too long");
      }
      // Read the whole plan and check it against this client's policy
      // before any mechanism runs: nothing password-derived is sent to a
      // server whose plan proves less than required.
      std::vector<Mechanism> plan;
      for (int v : wire_plan) {
        if (!ValidMechanism(v)) {
          return Fail(AuthError::kUnexpectedMessage, "the server chose an unknown mechanism");
        }
        const auto m = static_cast<Mechanism>(v);
        if (std::find(plan.begin(), plan.end(), m) != plan.end()) {
          return Fail(AuthError::kUnexpectedMessage,
                      "the server's plan names a mechanism twice");
        }
        if (m == Mechanism::kTicket) {
          if (!offered_ticket_ || wire_plan.size() != 1) {
            return Fail(AuthError::kUnexpectedMessage,
                        "the server chose a ticket that was not offered");
          }
        } else if (std::none_of(config_.mechanisms.begin(), config_.mechanisms.end(),
                                [m](const auto& p) { return p.first == m; })) {
          return Fail(AuthError::kUnexpectedMessage,
                      "the server chose a mechanism that was not offered");
        }
        plan.push_back(m);
      }
      // One password mechanism per connection bounds the KDF work a server
      // can ask for (Params plus at most one Upgrade).
      if (std::count_if(plan.begin(), plan.end(), IsPassword) > 1) {
        return Fail(AuthError::kPolicy, "the server's plan " + PlanName(plan) +
                                            " runs two password mechanisms");
      }
      std::vector<Mechanism> proves = plan;
      if (plan.size() == 1 && plan[0] == Mechanism::kTicket) {
        proves.clear();
        for (const auto& id : ticket_.proven) proves.push_back(id.mechanism);
      }
      if (plan.empty() && !config_.required && !config_.require_certificate &&
          !config_.require_password) {
        state_ = State::kAwaitOutcome;  // unauthenticated, as the policy allows
        return AuthError::kNone;
      }
      if (const std::string gap = PolicyGap(proves); !gap.empty()) {
        return Fail(AuthError::kPolicy, "the server's plan " + PlanName(plan) +
                                            " does not include " + gap +
                                            ", which this client requires");
      }
      run_ = std::make_unique<Running>();
      Context ctx{binding_, config_.user, config_.realm, wake_};
      for (Mechanism m : plan) {
        if (m == Mechanism::kTicket) {
          used_ticket_ = true;
          run_->sides.push_back(std::make_unique<TicketClientSide>(
              ticket_.secret, binding_, config_.realm));
          continue;
        }
        auto it = std::find_if(config_.mechanisms.begin(), config_.mechanisms.end(),
                               [m](const auto& p) { return p.first == m; });
        auto side = it->second(ctx);
        if (side == nullptr) return Fail(AuthError::kInternal, "mechanism setup failed");
        run_->sides.push_back(std::move(side));
      }
      plan_ = plan;
      state_ = State::kRunning;
      return StartNext();
    }
    case State::kRunning: {
      if (!env.has_step()) {
        return Fail(AuthError::kUnexpectedMessage, "expected a mechanism step");
      }
      if (static_cast<int>(run_->current->mechanism()) != env.step().mechanism()) {
        return Fail(AuthError::kUnexpectedMessage, "step for the wrong mechanism");
      }
      const std::string& p = env.step().payload();
      return Handle(run_->current->OnPayload(
          ByteSpan(reinterpret_cast<const uint8_t*>(p.data()), p.size())));
    }
    case State::kAwaitOutcome:
      return Fail(AuthError::kUnexpectedMessage, "expected the server's outcome");
    case State::kIdle:
    case State::kDone:
    case State::kFailed:
      return Fail(AuthError::kUnexpectedMessage, "message in the wrong state");
  }
  return Fail(AuthError::kInternal, "unreachable");
}

AuthError AuthClient::OnPoll() {
  if (run_ == nullptr || run_->current == nullptr) return AuthError::kNone;
  return Handle(run_->current->Poll());
}

AuthError AuthClient::Handle(Step step) {
  if (step.send) Send(StepMessage(run_->current->mechanism(), *step.send));
  switch (step.status) {
    case Step::Status::kContinue:
      return AuthError::kNone;
    case Step::Status::kFailed:
      // Say nothing: the driver closes the connection (see the header).
      return Fail(step.error, std::move(step.detail));
    case Step::Status::kDone:
      if (run_->current->mechanism() == Mechanism::kTicket) {
        // A ticket session reports the server identities proven on the
        // session that issued the ticket, marked as re-established by it.
        for (const PeerIdentity& original : ticket_.proven) {
          PeerIdentity id = original;
          id.attributes["original_mechanism"] = std::string(MechanismName(id.mechanism));
          id.attributes["via"] = "ticket";
          id.mechanism = Mechanism::kTicket;
          identities_.push_back(std::move(id));
        }
      } else if (auto id = run_->current->peer()) {
        identities_.push_back(std::move(*id));
      }
      return StartNext();
  }
  return Fail(AuthError::kInternal, "unreachable");
}

AuthError AuthClient::StartNext() {
  if (run_->next == run_->sides.size()) {
    run_->current = nullptr;
    state_ = State::kAwaitOutcome;
    return AuthError::kNone;
  }
  run_->current = run_->sides[run_->next++].get();
  return Handle(run_->current->Start());
}

// --- server ---------------------------------------------------------------

struct AuthServer::Running {
  std::vector<std::unique_ptr<MechanismSide>> sides;
  size_t next = 0;
  MechanismSide* current = nullptr;
};

AuthServer::AuthServer(ServerConfig config, ChannelBinding binding,
                       std::function<void()> wake, std::string source)
    : AuthEndpoint(std::move(binding), config.max_message, std::move(wake)),
      config_(std::move(config)),
      source_(std::move(source)) {
  if (config_.plans.empty()) {
    for (const auto& [m, f] : config_.mechanisms) config_.plans.push_back({m});
  }
}

AuthServer::~AuthServer() = default;

AuthError AuthServer::Start() {
  if (state_ != State::kIdle) return AuthError::kUnexpectedMessage;
  state_ = State::kNegotiating;
  return AuthError::kNone;
}

AuthError AuthServer::Refuse(AuthError local, std::string detail) {
  // A password attempt was charged as a failure when it began (attempt_):
  // refusing leaves that charge in place.
  Send(OutcomeMessage(false));
  return Fail(local, std::move(detail));
}

AuthError AuthServer::OnMessage(ByteSpan message) {
  wire::Envelope env;
  if (!env.ParseFromArray(message.data(), static_cast<int>(message.size()))) {
    return Refuse(AuthError::kMalformed, "malformed authentication message");
  }
  if (env.has_outcome()) {
    // A client's refusal (this implementation closes instead of sending it).
    return Fail(AuthError::kRefused,
                "the client refused the server's authentication");
  }
  switch (state_) {
    case State::kNegotiating: {
      if (!env.has_hello()) return Refuse(AuthError::kUnexpectedMessage, "expected a hello");
      const wire::ClientHello& hello = env.hello();
      if (hello.version() != kAuthProtocolVersion) {
        return Refuse(AuthError::kMalformed, "unsupported authentication version");
      }
      if (hello.user().size() > kMaxUserLen || hello.realm().size() > kMaxUserLen ||
          hello.mechanisms_size() > 16) {
        return Refuse(AuthError::kMalformed, "oversized hello");
      }
      user_ = hello.user();
      client_realm_ = hello.realm();
      realm_ = config_.realm.empty() ? client_realm_ : config_.realm;
      if (std::any_of(config_.mechanisms.begin(), config_.mechanisms.end(),
                      [](const auto& p) { return IsPassword(p.first); })) {
        // Password proofs are bound to the realm: a client that names
        // another server's name is refused like a wrong password.
        if (!config_.realm.empty() && client_realm_ != config_.realm) {
          return Refuse(AuthError::kBadProof, "the client named realm '" + client_realm_ +
                                                  "' but this server's realm is '" +
                                                  config_.realm + "'");
        }
        if (realm_.empty()) {
          return Refuse(AuthError::kMalformed, "the client named no realm");
        }
      }
      auto offered = [&hello](Mechanism m) {
        return std::any_of(hello.mechanisms().begin(), hello.mechanisms().end(),
                           [m](int v) { return v == static_cast<int>(m); });
      };
      run_ = std::make_unique<Running>();
      std::vector<Mechanism> chosen;

      // A valid ticket bound to this connection short-cuts everything.
      if (config_.tickets && offered(Mechanism::kTicket) &&
          !hello.ticket_payload().empty()) {
        wire::TicketHello th;
        if (th.ParseFromString(hello.ticket_payload()) &&
            th.client_proof().size() == kTicketProofLen) {
          auto opened = config_.tickets->Open(ByteSpan(
              reinterpret_cast<const uint8_t*>(th.ticket().data()), th.ticket().size()));
          if (opened && opened->realm == realm_) {
            const auto want = TicketProof(opened->secret, kTicketClientTag, binding_);
            if (CRYPTO_memcmp(want.data(), th.client_proof().data(), want.size()) == 0) {
              user_ = opened->identity.name;
              run_->sides.push_back(
                  std::make_unique<TicketServerSide>(std::move(*opened), binding_));
              chosen.push_back(Mechanism::kTicket);
              used_ticket_ = true;
            }
          }
        }
      }
      if (chosen.empty()) {
        for (const auto& plan : config_.plans) {
          const bool runnable = std::all_of(plan.begin(), plan.end(), [&](Mechanism m) {
            return m != Mechanism::kTicket && offered(m) &&
                   std::any_of(config_.mechanisms.begin(), config_.mechanisms.end(),
                               [m](const auto& p) { return p.first == m; });
          });
          if (runnable && !plan.empty()) {
            chosen = plan;
            break;
          }
        }
        if (chosen.empty()) {
          if (config_.required) {
            return Refuse(AuthError::kNoCommonMechanism,
                          "the client offered no mechanism this server accepts");
          }
          wire::Envelope choice;
          choice.mutable_choice();
          Send(Serialize(choice));
          return Finish();
        }
        password_plan_ = std::any_of(chosen.begin(), chosen.end(), IsPassword);
        // throttle.h: the attempt is charged as a failure from here on;
        // only Finish() takes the charge back.
        if (password_plan_ && config_.throttle &&
            !attempt_.Begin(config_.throttle, user_, source_)) {
          return Refuse(AuthError::kThrottled,
                        "too many password attempts for user '" + user_ +
                            "' or from this address");
        }
        Context ctx{binding_, user_, realm_, wake_};
        for (Mechanism m : chosen) {
          auto it = std::find_if(config_.mechanisms.begin(), config_.mechanisms.end(),
                                 [m](const auto& p) { return p.first == m; });
          auto side = it->second(ctx);
          if (side == nullptr) return Refuse(AuthError::kInternal, "mechanism setup failed");
          run_->sides.push_back(std::move(side));
        }
      }
      plan_ = chosen;
      wire::Envelope choice;
      for (Mechanism m : chosen) {
        choice.mutable_choice()->add_plan(static_cast<wire::Mechanism>(m));
      }
      Send(Serialize(choice));
      state_ = State::kRunning;
      return StartNext();
    }
    case State::kRunning: {
      if (!env.has_step()) {
        return Refuse(AuthError::kUnexpectedMessage, "expected a mechanism step");
      }
      if (static_cast<int>(run_->current->mechanism()) != env.step().mechanism()) {
        return Refuse(AuthError::kUnexpectedMessage, "step for the wrong mechanism");
      }
      std::string* p = env.mutable_step()->mutable_payload();
      const AuthError e = Handle(run_->current->OnPayload(
          ByteSpan(reinterpret_cast<const uint8_t*>(p->data()), p->size())));
      OPENSSL_cleanse(p->data(), p->size());  // CMAC's upgrade verifier
      return e;
    }
    case State::kIdle:
    case State::kAwaitOutcome:
    case State::kDone:
    case State::kFailed:
      return Refuse(AuthError::kUnexpectedMessage, "message in the wrong state");
  }
  return Fail(AuthError::kInternal, "unreachable");
}

AuthError AuthServer::OnPoll() {
  if (run_ == nullptr || run_->current == nullptr) return AuthError::kNone;
  return Handle(run_->current->Poll());
}

AuthError AuthServer::Handle(Step step) {
  if (step.send) Send(StepMessage(run_->current->mechanism(), *step.send));
  switch (step.status) {
    case Step::Status::kContinue:
      return AuthError::kNone;
    case Step::Status::kFailed:
      return Refuse(step.error, std::move(step.detail));
    case Step::Status::kDone:
      if (auto id = run_->current->peer()) identities_.push_back(std::move(*id));
      return StartNext();
  }
  return Fail(AuthError::kInternal, "unreachable");
}

AuthError AuthServer::StartNext() {
  if (run_->next == run_->sides.size()) {
    run_->current = nullptr;
    return Finish();
  }
  run_->current = run_->sides[run_->next++].get();
  return Handle(run_->current->Start());
}

AuthError AuthServer::Finish() {
  attempt_.Succeeded();  // every mechanism of the plan verified
  wire::Envelope env;
  wire::Outcome* o = env.mutable_outcome();
  o->set_ok(true);
  // A ticket for the identity this run established (not re-issued when a
  // ticket was used: the client keeps the one it has).
  const PeerIdentity* who = nullptr;
  for (const auto& id : identities_) {
    if (!id.name.empty()) who = &id;
  }
  if (config_.tickets && !used_ticket_ && who != nullptr) {
    std::vector<uint8_t> ticket;
    TicketSecret secret;
    if (config_.tickets->Issue(*who, realm_, &ticket, &secret)) {
      o->set_ticket(ticket.data(), ticket.size());
      o->set_ticket_secret(secret.data(), secret.size());
      o->set_ticket_lifetime_ms(config_.tickets->lifetime_ms());
    }
  }
  Send(Serialize(env));
  if (!o->ticket_secret().empty()) {
    OPENSSL_cleanse(o->mutable_ticket_secret()->data(), o->ticket_secret().size());
  }
  state_ = State::kDone;
  return AuthError::kNone;
}

}  // namespace tcpcrypt::auth
