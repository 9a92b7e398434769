// mechanism.h: the interface every authenticator implements, once per side.
//
// An authenticator is a pair of sans-I/O state machines (client side and
// server side) that exchange opaque payloads over the already protected
// connection and end by endorsing the ChannelBinding. They take bytes and
// give bytes; they know no socket, no SDK and no other authenticator
// (ARCHITECTURE decision 5). The negotiation in auth_session.h runs them.
//
// Error reporting has two audiences: |error| and |detail| are for the local
// application (specific: "wrong password or unknown user", "certificate
// expired"); the peer is only ever told "authentication failed".
#ifndef TCPCRYPT_AUTH_COMMON_MECHANISM_H_
#define TCPCRYPT_AUTH_COMMON_MECHANISM_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "auth/common/binding.h"

namespace tcpcrypt::auth {

using ByteSpan = std::span<const uint8_t>;

// Wire numbers match auth.proto's Mechanism enum.
enum class Mechanism : uint8_t {
  kCmacPassword = 1,
  kPake2Plus = 2,
  kX509Batch = 3,
  kTicket = 4,
};
std::string_view MechanismName(Mechanism m);  // "cmac", "pake", "x509", "ticket"
std::optional<Mechanism> MechanismFromName(std::string_view name);

enum class AuthError : uint8_t {
  kNone = 0,
  kMalformed,          // a message did not parse, or broke a size limit
  kUnexpectedMessage,  // a message not valid in the current state
  kNoCommonMechanism,  // the policies leave nothing to run
  kBadProof,           // a proof, confirmation or signature did not verify
  kCertificate,        // untrusted, expired, wrong host, bad chain
  kRefused,            // the peer said "authentication failed"
  kThrottled,          // too many failed attempts for this user
  kPolicy,             // the peer proposed less (or more) than this side's
                       // policy allows: a plan that proves too little, KDF
                       // parameters outside the client's floor and ceiling
  kTimeout,
  kInternal,           // a library failure
};
std::string_view AuthErrorName(AuthError e);

// PeerIdentity is what an authentication established about the peer.
struct PeerIdentity {
  Mechanism mechanism = Mechanism::kCmacPassword;
  std::string name;  // user name, or certificate subject / host
  std::map<std::string, std::string> attributes;
};

// Step is the result of one call into a mechanism.
struct Step {
  enum class Status : uint8_t { kContinue, kDone, kFailed };
  Status status = Status::kContinue;
  std::optional<std::vector<uint8_t>> send;  // a payload for the peer
  AuthError error = AuthError::kNone;
  std::string detail;  // local diagnostics; never secrets, never sent

  static Step Continue(std::optional<std::vector<uint8_t>> payload = {}) {
    return {Status::kContinue, std::move(payload), AuthError::kNone, {}};
  }
  static Step Done(std::optional<std::vector<uint8_t>> payload = {}) {
    return {Status::kDone, std::move(payload), AuthError::kNone, {}};
  }
  static Step Fail(AuthError e, std::string why) {
    return {Status::kFailed, std::nullopt, e, std::move(why)};
  }
};

// MechanismSide is one side of one mechanism for one connection. Objects
// are single-use: once kDone or kFailed, every later call fails.
class MechanismSide {
 public:
  virtual ~MechanismSide() = default;
  virtual Mechanism mechanism() const = 0;
  // Start runs when the plan reaches this mechanism; it may return the
  // first payload.
  virtual Step Start() = 0;
  // OnPayload takes the peer's next payload.
  virtual Step OnPayload(ByteSpan payload) = 0;
  // Poll is called when the side asked to be woken (see Context::wake):
  // a server side that waits for a batch signature returns its payload here.
  virtual Step Poll() { return Step::Continue(); }
  // peer is the identity this mechanism established for the other side,
  // once done (client side: the server's; server side: the client's).
  virtual std::optional<PeerIdentity> peer() const = 0;
};

// Context is what a mechanism side is created with.
struct Context {
  ChannelBinding binding;
  std::string user;   // from ClientHello (server) or the client's config
  std::string realm;  // the server's name, as the client knows it
  // Called (from any thread) by a side that has more to say; the driver
  // then calls Poll() on its own thread.
  std::function<void()> wake;
};

// Factory makes one side of one mechanism for one connection.
using MechanismFactory =
    std::function<std::unique_ptr<MechanismSide>(const Context&)>;

}  // namespace tcpcrypt::auth

#endif  // TCPCRYPT_AUTH_COMMON_MECHANISM_H_
