// Issue 9, acceptance 1: a hostile server, written here and speaking the
// real protocol (tcpcrypt through inband::Listener, then the authentication
// envelopes of auth.proto with cmac.proto / pake.proto payloads crafted by
// hand), tries to make a real tcpcrypt::Client accept less than it
// requires. Each attempt must end in UNAUTHENTICATED, and every byte the
// client sent after the server's plan is recorded and searched for a
// password-derived proof (a CMAC ClientProof or a SPAKE2+ ShareP): there
// must be none. A positive control runs the same harness as a genuine CMAC
// server (the client passes, and the detector does find its ClientProof),
// so the harness is shown to work.
#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "auth/cmac_password/cmac.pb.h"
#include "auth/cmac_password/cmac_password.h"
#include "auth/common/auth.pb.h"
#include "auth/common/binding.h"
#include "auth/common/password_kdf.h"
#include "auth/pake2plus/pake.pb.h"
#include "auth/x509_batch/test_pki.h"
#include "core_transport/inband/connection.h"
#include "sdk/engine_options.h"
#include "tcpcrypt/client.h"
#include "tcpcrypt/server.h"
#include "tests/sdk/test_users.h"

namespace tcpcrypt {
namespace {

namespace wire = auth::wire;

constexpr char kUser[] = "alice";
constexpr char kPassword[] = "correct horse";
constexpr int kIoMs = 5000;

std::vector<uint8_t> Frame(const std::string& body) {
  std::vector<uint8_t> out = {static_cast<uint8_t>(body.size() >> 24),
                              static_cast<uint8_t>(body.size() >> 16),
                              static_cast<uint8_t>(body.size() >> 8),
                              static_cast<uint8_t>(body.size())};
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// ContainsPasswordProof reports whether |bytes| (what a client sent) holds a
// CMAC ClientProof or a SPAKE2+ ShareP. Bytes that do not parse as
// authentication messages count as a proof: absence must be shown, not
// assumed.
bool ContainsPasswordProof(const std::vector<uint8_t>& bytes) {
  size_t at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < 4) return true;
    const size_t n = (size_t{bytes[at]} << 24) | (size_t{bytes[at + 1]} << 16) |
                     (size_t{bytes[at + 2]} << 8) | bytes[at + 3];
    if (bytes.size() - at - 4 < n) return true;
    wire::Envelope env;
    if (!env.ParseFromArray(bytes.data() + at + 4, static_cast<int>(n))) return true;
    at += 4 + n;
    if (!env.has_step()) continue;
    const std::string& p = env.step().payload();
    if (env.step().mechanism() == wire::CMAC_PASSWORD) {
      auth::cmac::Message m;
      if (!m.ParseFromString(p) || m.has_client_proof()) return true;
    } else if (env.step().mechanism() == wire::PAKE2PLUS) {
      auth::pake::PakeMessage m;
      if (!m.ParseFromString(p) || m.has_share_p()) return true;
    }
  }
  return false;
}

// HostileWire is one accepted connection, after the tcpcrypt handshake,
// seen from the hostile server's side.
struct HostileWire {
  explicit HostileWire(inband::Connection& c) : conn(c) {}
  inband::Connection& conn;
  wire::ClientHello hello;
  bool got_hello = false;
  bool plan_sent = false;
  std::vector<uint8_t> after_plan;  // every byte the client sent after the plan
  std::vector<uint8_t> pending;

  // ReadEnvelope returns the client's next message (nullopt at EOF, error
  // or time-out). Bytes read after the plan are recorded.
  std::optional<wire::Envelope> ReadEnvelope() {
    for (;;) {
      if (pending.size() >= 4) {
        const size_t n = (size_t{pending[0]} << 24) | (size_t{pending[1]} << 16) |
                         (size_t{pending[2]} << 8) | pending[3];
        if (pending.size() >= 4 + n) {
          wire::Envelope env;
          const bool ok = env.ParseFromArray(pending.data() + 4, static_cast<int>(n));
          pending.erase(pending.begin(), pending.begin() + static_cast<ptrdiff_t>(4 + n));
          if (!ok) return std::nullopt;
          return env;
        }
      }
      if (!ReadSome()) return std::nullopt;
    }
  }

  bool ReadSome() {
    std::array<uint8_t, 4096> buf{};
    inband::Status st;
    const ssize_t n = conn.Read(buf, &st);
    if (n <= 0) return false;
    pending.insert(pending.end(), buf.begin(), buf.begin() + n);
    if (plan_sent) after_plan.insert(after_plan.end(), buf.begin(), buf.begin() + n);
    return true;
  }

  bool ReadHello() {
    std::optional<wire::Envelope> env = ReadEnvelope();
    if (!env || !env->has_hello()) return false;
    hello = env->hello();
    got_hello = true;
    return true;
  }

  void Send(const wire::Envelope& env) {
    (void)conn.WriteAll(Frame(env.SerializeAsString()));
  }

  void SendPlan(std::vector<wire::Mechanism> plan) {
    wire::Envelope env;
    env.mutable_choice();
    for (wire::Mechanism m : plan) env.mutable_choice()->add_plan(m);
    plan_sent = true;
    Send(env);
  }

  void SendStep(wire::Mechanism m, const std::string& payload) {
    wire::Envelope env;
    env.mutable_step()->set_mechanism(m);
    env.mutable_step()->set_payload(payload);
    Send(env);
  }

  void SendOutcomeWithTicket(const std::string& ticket) {
    wire::Envelope env;
    env.mutable_outcome()->set_ok(true);
    if (!ticket.empty()) {
      env.mutable_outcome()->set_ticket(ticket);
      env.mutable_outcome()->set_ticket_secret(std::string(32, 'K'));
      env.mutable_outcome()->set_ticket_lifetime_ms(3600 * 1000);
    }
    Send(env);
  }

  // RecordUntilClose reads (and records) until the client closes, fails
  // or stays silent for kIoMs.
  void RecordUntilClose() {
    while (ReadSome()) {
    }
  }
};

std::string CmacParams(uint64_t opslimit, uint64_t memlimit,
                       const std::string& salt = std::string(16, 's')) {
  auth::cmac::Message m;
  m.mutable_params()->set_salt(salt);
  m.mutable_params()->mutable_kdf()->set_algorithm(auth::KdfParams::ForTests().algorithm);
  m.mutable_params()->mutable_kdf()->set_opslimit(opslimit);
  m.mutable_params()->mutable_kdf()->set_memlimit(memlimit);
  return m.SerializeAsString();
}

std::string PakeParams(uint64_t opslimit, uint64_t memlimit) {
  auth::pake::PakeMessage m;
  m.mutable_params()->set_salt(std::string(16, 's'));
  m.mutable_params()->mutable_kdf()->set_algorithm(auth::KdfParams::ForTests().algorithm);
  m.mutable_params()->mutable_kdf()->set_opslimit(opslimit);
  m.mutable_params()->mutable_kdf()->set_memlimit(memlimit);
  return m.SerializeAsString();
}

// HostileServer accepts tcpcrypt connections on loopback (announcing that
// it runs authentication, RFC 8547 §4.2) and runs a script on each.
class HostileServer {
 public:
  using Script = std::function<void(HostileWire&)>;

  HostileServer() {
    inband::Status st;
    listener_ = inband::Listener::Listen("127.0.0.1", 0, 16, &st);
  }
  ~HostileServer() { Join(); }

  bool ok() const { return listener_ != nullptr; }
  uint16_t port() const { return listener_->port(); }

  // Serve runs |script| on the next connection, on a thread; Join waits
  // for it and returns what it saw.
  void Serve(Script script) {
    Join();
    thread_ = std::thread([this, script = std::move(script)] {
      inband::Options o;
      o.engine = sdk::EngineConfigFor(ServerOptions{});
      o.engine.application_aware = true;
      o.handshake_timeout_ms = kIoMs;
      o.io_timeout_ms = kIoMs;
      inband::Status st;
      std::unique_ptr<inband::Connection> conn = listener_->Accept(o, &st, kIoMs);
      if (conn == nullptr || !conn->Handshake().ok()) return;
      HostileWire w(*conn);
      script(w);
      seen_hello_ = w.hello;
      got_hello_ = w.got_hello;
      after_plan_ = w.after_plan;
    });
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  bool got_hello() const { return got_hello_; }
  const wire::ClientHello& hello() const { return seen_hello_; }
  const std::vector<uint8_t>& after_plan() const { return after_plan_; }

 private:
  std::unique_ptr<inband::Listener> listener_;
  std::thread thread_;
  wire::ClientHello seen_hello_;
  bool got_hello_ = false;
  std::vector<uint8_t> after_plan_;
};

bool OffersTicket(const wire::ClientHello& hello) {
  if (!hello.ticket_payload().empty()) return true;
  for (int m : hello.mechanisms()) {
    if (m == wire::TICKET) return true;
  }
  return false;
}

class HostileServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(hostile_.ok());
    dir_ = testing::MakeScratchDir("tcpcrypt-hostile");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    hostile_.Join();
    testing::RemoveScratchDir(dir_);
  }

  ClientOptions PasswordClient(AuthMechanism m) {
    ClientOptions o;
    o.mechanisms = {m};
    o.user = kUser;
    o.password = std::make_shared<Password>(kPassword);
    o.require_password = true;
    o.resumption = false;
    o.timeouts.auth_ms = kIoMs;
    return o;
  }

  // ExpectRefused connects with |options| to the hostile server running
  // |script| and checks the refusal and that no password proof left.
  void ExpectRefused(const ClientOptions& options, HostileServer::Script script,
                     const std::string& want_in_message) {
    auto client = Client::Create(options);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    hostile_.Serve(std::move(script));
    auto session = client.value()->Connect("127.0.0.1", hostile_.port());
    hostile_.Join();
    ASSERT_FALSE(session.ok());
    EXPECT_EQ(session.status().code(), StatusCode::kUnauthenticated)
        << session.status().ToString();
    EXPECT_NE(session.status().message().find(want_in_message), std::string::npos)
        << session.status().ToString();
    ASSERT_TRUE(hostile_.got_hello());
    EXPECT_FALSE(ContainsPasswordProof(hostile_.after_plan()));
    // In fact the client said nothing at all after the plan.
    EXPECT_TRUE(hostile_.after_plan().empty()) << hostile_.after_plan().size() << " bytes";
  }

  HostileServer hostile_;
  std::string dir_;
};

// --- positive control --------------------------------------------------------

// The harness plays a genuine CMAC server (it knows the user's verifier):
// the client passes, and the recorder does see its ClientProof.
TEST_F(HostileServerTest, PositiveControlGenuineCmacServerPasses) {
  const std::string realm = "127.0.0.1";
  const std::string salt(16, 'g');
  ClientOptions o = PasswordClient(AuthMechanism::kCmacPassword);
  o.min_password_hashing = PasswordHashing::kMinimumForTestsOnly;
  auto client = Client::Create(o);
  ASSERT_TRUE(client.ok());
  bool server_verified_client = false;
  hostile_.Serve([&](HostileWire& w) {
    if (!w.ReadHello()) return;
    w.SendPlan({wire::CMAC_PASSWORD});
    const auth::KdfParams kdf = auth::KdfParams::ForTests();
    w.SendStep(wire::CMAC_PASSWORD, CmacParams(kdf.opslimit, kdf.memlimit, salt));
    std::optional<wire::Envelope> proof = w.ReadEnvelope();
    if (!proof || !proof->has_step()) return;
    // h = KDF(password, user, realm, salt); both proofs over the binding.
    SecretArray<16> h;
    if (!auth::DerivePasswordKey(kPassword, kUser, w.hello.realm(),
                                 std::span<const uint8_t>(
                                     reinterpret_cast<const uint8_t*>(salt.data()), 16),
                                 kdf, h.span())) {
      return;
    }
    const std::vector<uint8_t> binding =
        auth::ChannelBinding::SessionId(w.conn.session_id()).Encode();
    auto mac = [&](std::string_view tag) {
      std::vector<uint8_t> msg(tag.begin(), tag.end());
      msg.insert(msg.end(), binding.begin(), binding.end());
      std::array<uint8_t, auth::cmac::kMacLen> out{};
      EXPECT_TRUE(auth::cmac::ComputeCmac(h.span(), msg, out));
      return std::string(out.begin(), out.end());
    };
    auth::cmac::Message got;
    server_verified_client = got.ParseFromString(proof->step().payload()) &&
                             got.client_proof().mac() == mac(auth::cmac::kTagClient);
    auth::cmac::Message reply;
    reply.mutable_server_proof()->set_mac(mac(auth::cmac::kTagServer));
    w.SendStep(wire::CMAC_PASSWORD, reply.SerializeAsString());
    w.SendOutcomeWithTicket("");
  });
  auto session = client.value()->Connect("127.0.0.1", hostile_.port());
  hostile_.Join();
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_EQ(hostile_.hello().realm(), realm);  // the realm is the host dialed
  EXPECT_TRUE(server_verified_client);
  ASSERT_TRUE(session.value()->peer().has_value());
  EXPECT_EQ(session.value()->peer()->mechanism, AuthMechanism::kCmacPassword);
  EXPECT_EQ(session.value()->peer()->name, realm);
  EXPECT_TRUE(ContainsPasswordProof(hostile_.after_plan()));  // the detector works
}

// --- downgrade ----------------------------------------------------------------

// A client set to x509+cmac, answered with a CMAC-only plan (and Params
// right behind it to tempt it).
TEST_F(HostileServerTest, CmacOnlyPlanToAnX509PlusCmacClientIsRefused) {
  std::string error;
  ASSERT_TRUE(auth::x509::WriteServerPki(dir_, "127.0.0.1", auth::x509::PkiKeyType::kEcdsaP256,
                                         30, &error))
      << error;
  ClientOptions o = PasswordClient(AuthMechanism::kCmacPassword);
  o.mechanisms = {AuthMechanism::kX509, AuthMechanism::kCmacPassword};
  o.ca_file = dir_ + "/ca.pem";
  o.require_server_certificate = true;
  o.min_password_hashing = PasswordHashing::kMinimumForTestsOnly;
  ExpectRefused(
      o,
      [](HostileWire& w) {
        if (!w.ReadHello()) return;
        w.SendPlan({wire::CMAC_PASSWORD});
        const auth::KdfParams kdf = auth::KdfParams::ForTests();
        w.SendStep(wire::CMAC_PASSWORD, CmacParams(kdf.opslimit, kdf.memlimit));
        w.RecordUntilClose();
      },
      "the server's plan [cmac] does not include a server certificate, which this client "
      "requires");
}

TEST_F(HostileServerTest, EmptyPlanToAClientThatRequiresAuthenticationIsRefused) {
  ClientOptions o = PasswordClient(AuthMechanism::kPake);
  o.require_password = false;  // only require_server_authentication (the default)
  o.min_password_hashing = PasswordHashing::kMinimumForTestsOnly;
  ExpectRefused(
      o,
      [](HostileWire& w) {
        if (!w.ReadHello()) return;
        w.SendPlan({});
        w.SendOutcomeWithTicket("");
        w.RecordUntilClose();
      },
      "the server's plan [] does not include any authentication of the server");
}

// --- KDF floor and ceiling -------------------------------------------------------

struct KdfCase {
  const char* name;
  AuthMechanism mechanism;
  uint64_t opslimit;
  uint64_t memlimit;
  const char* want;
};

class HostileKdfTest : public HostileServerTest,
                       public ::testing::WithParamInterface<KdfCase> {};

TEST_P(HostileKdfTest, ParametersOutsideTheClientsLimitsAreRefusedBeforeAnyProof) {
  const KdfCase& c = GetParam();
  ClientOptions o = PasswordClient(c.mechanism);  // default floor: interactive
  const uint64_t kdf_calls = auth::PasswordKdfCount();
  const bool cmac = c.mechanism == AuthMechanism::kCmacPassword;
  ExpectRefused(
      o,
      [&c, cmac](HostileWire& w) {
        if (!w.ReadHello()) return;
        w.SendPlan({cmac ? wire::CMAC_PASSWORD : wire::PAKE2PLUS});
        w.SendStep(cmac ? wire::CMAC_PASSWORD : wire::PAKE2PLUS,
                   cmac ? CmacParams(c.opslimit, c.memlimit) : PakeParams(c.opslimit, c.memlimit));
        w.RecordUntilClose();
      },
      c.want);
  EXPECT_EQ(auth::PasswordKdfCount(), kdf_calls);  // nothing was even derived
}

INSTANTIATE_TEST_SUITE_P(
    FloorAndCeiling, HostileKdfTest,
    ::testing::Values(
        // The library minimum (8 KiB, 1 pass): an offline attack's dream.
        KdfCase{"cmac_below_floor", AuthMechanism::kCmacPassword, 1, 8192,
                "below this client's floor of 67108864 bytes and 2 passes"},
        KdfCase{"pake_below_floor", AuthMechanism::kPake, 1, 8192,
                "below this client's floor of 67108864 bytes and 2 passes"},
        // 1 GiB and 16 passes: within KdfParams::Sane(), above the ceiling.
        KdfCase{"cmac_above_ceiling", AuthMechanism::kCmacPassword, 16, 1ull << 30,
                "above this client's ceiling of 268435456 bytes and 4 passes"},
        KdfCase{"pake_above_ceiling", AuthMechanism::kPake, 16, 1ull << 30,
                "above this client's ceiling of 268435456 bytes and 4 passes"},
        KdfCase{"pake_too_many_passes", AuthMechanism::kPake, 5, 64ull << 20,
                "above this client's ceiling"}),
    [](const ::testing::TestParamInfo<KdfCase>& p) { return std::string(p.param.name); });

// --- tickets ------------------------------------------------------------------------

// A server that proved nothing (empty plan, accepted because this client
// does not require server authentication) plants a ticket in its Outcome.
// The client keeps no ticket: the next connection offers none and reports
// no authenticated peer, even when the server then claims a ticket plan.
TEST_F(HostileServerTest, TicketFromAServerThatProvedNothingIsNeverStoredOrOffered) {
  ClientOptions o = PasswordClient(AuthMechanism::kCmacPassword);
  o.require_server_authentication = false;
  o.require_password = false;
  o.min_password_hashing = PasswordHashing::kMinimumForTestsOnly;
  auto client = Client::Create(o);
  ASSERT_TRUE(client.ok());
  hostile_.Serve([](HostileWire& w) {
    if (!w.ReadHello()) return;
    w.SendPlan({});
    w.SendOutcomeWithTicket(std::string(80, 'T'));
  });
  {
    auto first = client.value()->Connect("127.0.0.1", hostile_.port());
    hostile_.Join();
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    EXPECT_FALSE(first.value()->peer().has_value());
    EXPECT_FALSE(first.value()->ticket_used());
  }
  // Second connection: the hello carries no ticket; the hostile server
  // claims the ticket plan anyway.
  hostile_.Serve([](HostileWire& w) {
    if (!w.ReadHello()) return;
    w.SendPlan({wire::TICKET});
    w.SendStep(wire::TICKET, std::string());
    w.SendOutcomeWithTicket("");
    w.RecordUntilClose();
  });
  auto second = client.value()->Connect("127.0.0.1", hostile_.port());
  hostile_.Join();
  ASSERT_TRUE(hostile_.got_hello());
  EXPECT_FALSE(OffersTicket(hostile_.hello()));
  ASSERT_FALSE(second.ok()) << "reported peer: "
                            << (second.value()->peer() ? second.value()->peer()->name : "");
  EXPECT_EQ(second.status().code(), StatusCode::kUnauthenticated) << second.status().ToString();
  EXPECT_FALSE(ContainsPasswordProof(hostile_.after_plan()));
}

// A genuine server at 127.0.0.1:P issues a ticket. The same client then
// dials "localhost" (same machine, another name) and 127.0.0.1 on another
// port, both hostile: neither sees the ticket, and a ticket plan claimed
// there is refused.
TEST_F(HostileServerTest, TicketIssuedUnderOneHostIsNotOfferedToAnother) {
  const std::string users = dir_ + "/users.db";
  ASSERT_TRUE(testing::AddTestUser(users, kUser, kPassword, {}, "127.0.0.1"));
  ServerOptions so;
  so.plans = {{AuthMechanism::kCmacPassword}};
  so.users_file = users;
  so.password_hashing = PasswordHashing::kMinimumForTestsOnly;
  auto genuine = Server::Create(so);
  ASSERT_TRUE(genuine.ok()) << genuine.status().ToString();
  ASSERT_TRUE(genuine.value()->Listen("127.0.0.1", 0).ok());

  ClientOptions o = PasswordClient(AuthMechanism::kCmacPassword);
  o.min_password_hashing = PasswordHashing::kMinimumForTestsOnly;
  auto client = Client::Create(o);
  ASSERT_TRUE(client.ok());
  {
    std::thread accept([&] { (void)genuine.value()->Accept(); });
    auto s = client.value()->Connect("127.0.0.1", genuine.value()->port());
    accept.join();
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_FALSE(s.value()->ticket_used());
  }
  {
    // Control: the genuine server gets the ticket back, and the client
    // reports the identity the issuing session proved.
    std::thread accept([&] { (void)genuine.value()->Accept(); });
    auto s = client.value()->Connect("127.0.0.1", genuine.value()->port());
    accept.join();
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_TRUE(s.value()->ticket_used());
    ASSERT_TRUE(s.value()->peer().has_value());
    EXPECT_EQ(s.value()->peer()->mechanism, AuthMechanism::kTicket);
    EXPECT_EQ(s.value()->peer()->name, "127.0.0.1");
    EXPECT_EQ(s.value()->peer()->attributes.at("original_mechanism"), "cmac");
  }
  for (const std::string host : {"localhost", "127.0.0.1"}) {
    SCOPED_TRACE(host);
    hostile_.Serve([](HostileWire& w) {
      if (!w.ReadHello()) return;
      w.SendPlan({wire::TICKET});
      w.RecordUntilClose();
    });
    auto s = client.value()->Connect(host, hostile_.port());
    hostile_.Join();
    ASSERT_TRUE(hostile_.got_hello());
    EXPECT_FALSE(OffersTicket(hostile_.hello()));
    EXPECT_EQ(hostile_.hello().realm(), host);  // the realm is the host dialed
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), StatusCode::kUnauthenticated) << s.status().ToString();
    EXPECT_FALSE(ContainsPasswordProof(hostile_.after_plan()));
    EXPECT_TRUE(hostile_.after_plan().empty());
  }
  genuine.value()->Stop();
}

}  // namespace
}  // namespace tcpcrypt
