// fuzz_auth_session.cc: libFuzzer target for the authentication framing and
// negotiation (auth/common/auth_session.h): length-prefixed Envelopes fed to
// a client and a server in every state.
//
// Input: byte 0 picks the side and how far a genuine exchange runs before
// the fuzz bytes arrive; the rest is fed as raw bytes. Properties: no crash;
// a side never reaches done() unless the genuine peer's messages got it
// there (the fake mechanism's proofs cannot be forged by the fuzzer); the
// error is sticky.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "auth/common/auth_session.h"

namespace tcpcrypt::auth {
namespace {

void Check(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "fuzz_auth_session: property violated: %s\n", what);
    std::abort();
  }
}

std::vector<uint8_t> Mac(char who, const ChannelBinding& b) {
  static const char kKey[] = "fuzz-shared-key";
  std::vector<uint8_t> msg = b.Encode();
  msg.push_back(static_cast<uint8_t>(who));
  std::vector<uint8_t> out(32);
  unsigned int len = 0;
  HMAC(EVP_sha256(), kKey, sizeof(kKey), msg.data(), msg.size(), out.data(), &len);
  return out;
}

class Side final : public MechanismSide {
 public:
  Side(bool client, ChannelBinding b) : client_(client), b_(std::move(b)) {}
  Mechanism mechanism() const override { return Mechanism::kPake2Plus; }
  Step Start() override { return client_ ? Step::Continue(Mac('c', b_)) : Step::Continue(); }
  Step OnPayload(ByteSpan p) override {
    const auto want = Mac(client_ ? 's' : 'c', b_);
    if (p.size() != want.size() || CRYPTO_memcmp(p.data(), want.data(), want.size()) != 0) {
      return Step::Fail(AuthError::kBadProof, "bad");
    }
    ok_ = true;
    return client_ ? Step::Done() : Step::Done(Mac('s', b_));
  }
  std::optional<PeerIdentity> peer() const override {
    if (!ok_) return std::nullopt;
    return PeerIdentity{Mechanism::kPake2Plus, "peer", {}};
  }

 private:
  bool client_;
  ChannelBinding b_;
  bool ok_ = false;
};

MechanismFactory Factory(bool client) {
  return [client](const Context& ctx) { return std::make_unique<Side>(client, ctx.binding); };
}

}  // namespace
}  // namespace tcpcrypt::auth

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tcpcrypt::auth;
  if (size < 1) return 0;
  const bool fuzz_server = (data[0] & 1) != 0;
  const int genuine_steps = (data[0] >> 1) % 3;
  std::vector<uint8_t> sid(33, 7);
  const ChannelBinding binding = ChannelBinding::SessionId(sid);

  ClientConfig cc;
  cc.mechanisms = {{Mechanism::kPake2Plus, Factory(true)}};
  cc.user = "u";
  cc.realm = "r";
  cc.max_message = 4096;
  ServerConfig sc;
  sc.mechanisms = {{Mechanism::kPake2Plus, Factory(false)}};
  sc.realm = "r";
  sc.max_message = 4096;
  AuthClient client(cc, binding);
  AuthServer server(sc, binding);
  (void)client.Start();
  (void)server.Start();

  // Run part of a genuine exchange, dropping the genuine peer afterwards.
  for (int i = 0; i < genuine_steps; ++i) {
    std::vector<uint8_t> c(client.PendingOutput().begin(), client.PendingOutput().end());
    client.ConsumeOutput(c.size());
    (void)server.Feed(c);
    std::vector<uint8_t> s(server.PendingOutput().begin(), server.PendingOutput().end());
    server.ConsumeOutput(s.size());
    if (i + 1 < genuine_steps || fuzz_server) (void)client.Feed(s);
  }
  AuthEndpoint& target = fuzz_server ? static_cast<AuthEndpoint&>(server) : client;
  const bool done_before = target.done();
  const AuthError e = target.Feed(tcpcrypt::auth::ByteSpan(data + 1, size - 1));
  // Reaching done needs a MAC under the shared key over this binding, which
  // only the genuine peer produces; the fuzzer's bytes never can.
  Check(done_before || !target.done(), "forged bytes completed authentication");
  if (e != AuthError::kNone) {
    Check(target.failed(), "error without failure");
    Check(target.Feed(tcpcrypt::auth::ByteSpan(data, 1)) == e, "error not sticky");
  }
  return 0;
}
