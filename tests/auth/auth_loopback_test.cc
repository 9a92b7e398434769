// Every authenticator over real tcpcrypt connections on loopback: right and
// wrong secrets both ways, impostor servers, a man-in-the-middle relay that
// joins two tcpcrypt connections, batch signing under 128 concurrent
// clients, and ticket re-authentication.
#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <future>
#include <iostream>
#include <thread>
#include <vector>

#include "auth/cmac_password/cmac_password.h"
#include "auth/common/auth_session.h"
#include "auth/common/password_kdf.h"
#include "auth/common/verifier_store.h"
#include "auth/pake2plus/pake2plus.h"
#include "auth/x509_batch/pem.h"
#include "auth/x509_batch/test_pki.h"
#include "auth/x509_batch/x509_batch.h"
#include "core_transport/inband/connection.h"
#include "sdk/auth_driver.h"

namespace tcpcrypt::auth {
namespace {

using inband::Connection;
using inband::Listener;
using inband::Status;

constexpr char kRealm[] = "localhost";
constexpr int kTimeoutMs = 20000;

std::shared_ptr<const SecretBuffer> Password(std::string_view pw) {
  return std::make_shared<SecretBuffer>(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pw.data()), pw.size()));
}

// A server's long-lived state: users, decoys, certificate, signer, tickets.
struct ServerWorld {
  ServerWorld() {
    VerifierRecord r;
    EXPECT_TRUE(cmac::MakeRecord("alice", kRealm, "correct horse", KdfParams::ForTests(),
                                 SystemRng::Instance(), &r));
    EXPECT_TRUE(store->Put(r));
    EXPECT_TRUE(pake::MakeRecord("alice", kRealm, "correct horse", KdfParams::ForTests(),
                                 SystemRng::Instance(), &r));
    EXPECT_TRUE(store->Put(r));

    std::string error;
    x509::CertOptions ca_opts;
    ca_opts.common_name = "tcpcrypt test CA";
    auto ca = x509::CreateRootCa(ca_opts, &error);
    EXPECT_TRUE(ca) << error;
    x509::CertOptions leaf;
    leaf.common_name = kRealm;
    leaf.dns_names = {kRealm};
    auto server = x509::IssueCertificate(*ca, leaf, &error);
    EXPECT_TRUE(server) << error;
    chain = {x509::CertificateDer(server->cert.get())};
    ca_der = {x509::CertificateDer(ca->cert.get())};
    signer = x509::BatchSigner::Create(server->key, &error);
    EXPECT_NE(signer, nullptr) << error;
  }

  ServerConfig Config(std::vector<std::vector<Mechanism>> plans) {
    ServerConfig c;
    c.realm = kRealm;
    c.mechanisms = {
        {Mechanism::kCmacPassword,
         cmac::ServerFactory({.store = store.get(), .decoy = &decoy,
                              .target = KdfParams::ForTests(), .rng = nullptr})},
        {Mechanism::kPake2Plus,
         pake::ServerFactory({.store = store.get(), .decoy = &decoy,
                              .target = KdfParams::ForTests(), .rng = nullptr})},
        {Mechanism::kX509Batch, x509::ServerFactory(X509Config())},
    };
    c.plans = std::move(plans);
    c.tickets = tickets;
    return c;
  }

  x509::ServerConfig X509Config() const {
    x509::ServerConfig c;
    c.signer = signer;
    c.chain_der = chain;
    return c;
  }

  std::shared_ptr<MemoryVerifierStore> store = std::make_shared<MemoryVerifierStore>();
  DecoySecret decoy;
  std::vector<std::vector<uint8_t>> chain;
  std::vector<std::vector<uint8_t>> ca_der;
  std::shared_ptr<x509::BatchSigner> signer;
  std::shared_ptr<TicketIssuer> tickets;
  EphemeralKeyCache ephemeral{{1024, 60000}};
  ResumptionCache resumption;
};

ClientConfig Client(const ServerWorld& world, std::string_view password,
                    std::vector<Mechanism> mechanisms) {
  ClientConfig c;
  c.user = "alice";
  c.realm = kRealm;
  for (Mechanism m : mechanisms) {
    switch (m) {
      case Mechanism::kCmacPassword:
        c.mechanisms.emplace_back(m, cmac::ClientFactory(Password(password), KdfLimits::ForTests()));
        break;
      case Mechanism::kPake2Plus:
        c.mechanisms.emplace_back(m, pake::ClientFactory(Password(password), nullptr, KdfLimits::ForTests()));
        break;
      case Mechanism::kX509Batch: {
        x509::ClientConfig xc;
        std::string error;
        xc.trust = x509::StoreFromDer(world.ca_der, &error);
        c.mechanisms.emplace_back(m, x509::ClientFactory(xc));
        break;
      }
      case Mechanism::kTicket:
        break;
    }
  }
  return c;
}

struct Result {
  sdk::AuthRunResult run;
  std::vector<PeerIdentity> identities;
  std::string session_id;
  bool used_ticket = false;
  uint32_t engine_pk_ops = 0;
};

Result ServeOne(Connection& conn, ServerConfig config) {
  Result out;
  Status s = conn.Handshake();
  if (!s.ok()) {
    out.run = {AuthError::kInternal, s.message, {}};
    return out;
  }
  out.session_id = conn.session_id_hex();
  out.engine_pk_ops = conn.engine().public_key_operations();
  sdk::Waker waker;
  AuthServer server(std::move(config), ChannelBinding::SessionId(conn.session_id()),
                    waker.Callback());
  (void)server.Start();
  out.run = sdk::RunAuthentication(conn, server, &waker, kTimeoutMs);
  out.identities = server.identities();
  out.used_ticket = server.used_ticket();
  return out;
}

Result ConnectAndAuth(uint16_t port, ClientConfig config, inband::Options options = {}) {
  Result out;
  Status s;
  auto conn = Connection::Connect("127.0.0.1", port, std::move(options), &s);
  if (conn == nullptr) {
    out.run = {AuthError::kInternal, s.message, {}};
    return out;
  }
  out.session_id = conn->session_id_hex();
  out.engine_pk_ops = conn->engine().public_key_operations();
  AuthClient client(std::move(config), ChannelBinding::SessionId(conn->session_id()));
  (void)client.Start();
  out.run = sdk::RunAuthentication(*conn, client, nullptr, kTimeoutMs);
  out.identities = client.identities();
  out.used_ticket = client.used_ticket();
  return out;
}

// One client against one server connection on a thread.
std::pair<Result, Result> Session(ServerWorld& world, ServerConfig server_config,
                                  ClientConfig client_config, inband::Options copts = {},
                                  inband::Options sopts = {}) {
  Status s;
  auto listener = Listener::Listen("127.0.0.1", 0, 16, &s);
  EXPECT_NE(listener, nullptr) << s.message;
  sopts.engine.ephemeral_keys = &world.ephemeral;
  auto server = std::async(std::launch::async, [&] {
    Status st;
    auto conn = listener->Accept(sopts, &st);
    if (conn == nullptr) return Result{{AuthError::kInternal, st.message, {}}, {}, {}, false, 0};
    return ServeOne(*conn, std::move(server_config));
  });
  Result client = ConnectAndAuth(listener->port(), std::move(client_config), std::move(copts));
  return {client, server.get()};
}

class EachMechanism : public ::testing::TestWithParam<std::vector<Mechanism>> {};

TEST_P(EachMechanism, RightSecretAuthenticatesBothWays) {
  ServerWorld world;
  const auto plan = GetParam();
  auto [client, server] = Session(world, world.Config({plan}), Client(world, "correct horse", plan));
  ASSERT_TRUE(client.run.ok()) << AuthErrorName(client.run.error) << ": " << client.run.detail;
  ASSERT_TRUE(server.run.ok()) << AuthErrorName(server.run.error) << ": " << server.run.detail;
  EXPECT_EQ(client.session_id, server.session_id);
  ASSERT_EQ(client.identities.size(), plan.size());
  EXPECT_EQ(client.identities.back().name, kRealm);
  const bool password = plan.back() != Mechanism::kX509Batch;
  if (password) {
    ASSERT_FALSE(server.identities.empty());
    EXPECT_EQ(server.identities.back().name, "alice");
  }
}

TEST_P(EachMechanism, WrongPasswordIsRefused) {
  const auto plan = GetParam();
  if (plan.back() == Mechanism::kX509Batch) GTEST_SKIP() << "no password";
  ServerWorld world;
  auto [client, server] = Session(world, world.Config({plan}), Client(world, "wrong", plan));
  EXPECT_FALSE(client.run.ok());
  EXPECT_FALSE(server.run.ok());
  // Whoever checks first finds the bad proof (the server for CMAC, whose
  // client proves first; the client for SPAKE2+, whose server confirms
  // first); the other side is told only "authentication failed".
  if (plan.back() == Mechanism::kCmacPassword) {
    EXPECT_EQ(server.run.error, AuthError::kBadProof) << server.run.detail;
    EXPECT_EQ(client.run.error, AuthError::kRefused) << client.run.detail;
  } else {
    EXPECT_EQ(client.run.error, AuthError::kBadProof) << client.run.detail;
    EXPECT_EQ(server.run.error, AuthError::kRefused) << server.run.detail;
  }
}

TEST_P(EachMechanism, ImpostorServerIsDetectedByTheClient) {
  const auto plan = GetParam();
  ServerWorld real;
  ServerWorld impostor;  // its own CA and its own record for alice
  VerifierRecord r;
  ASSERT_TRUE(cmac::MakeRecord("alice", kRealm, "guessed", KdfParams::ForTests(),
                               SystemRng::Instance(), &r));
  ASSERT_TRUE(impostor.store->Put(r));
  ASSERT_TRUE(pake::MakeRecord("alice", kRealm, "guessed", KdfParams::ForTests(),
                               SystemRng::Instance(), &r));
  ASSERT_TRUE(impostor.store->Put(r));
  // The client trusts the real CA and knows the real password.
  auto [client, server] =
      Session(impostor, impostor.Config({plan}), Client(real, "correct horse", plan));
  EXPECT_FALSE(client.run.ok());
  EXPECT_TRUE(client.identities.empty() ||
              client.identities.back().mechanism != plan.back());
  if (plan.front() == Mechanism::kX509Batch) {
    EXPECT_EQ(client.run.error, AuthError::kCertificate) << client.run.detail;
  } else if (plan.back() == Mechanism::kPake2Plus) {
    // The server confirms first and cannot: the client catches it.
    EXPECT_EQ(client.run.error, AuthError::kBadProof) << client.run.detail;
  } else {
    // CMAC: the impostor cannot check the client's proof and cannot make
    // its own; either way the client does not accept it.
    EXPECT_TRUE(client.run.error == AuthError::kBadProof ||
                client.run.error == AuthError::kRefused)
        << client.run.detail;
  }
}

// The relay accepts the client's tcpcrypt connection and opens its own to
// the server, then forwards every plaintext byte both ways: two sessions,
// two session IDs, one attacker in the middle.
TEST_P(EachMechanism, ManInTheMiddleRelayIsRefused) {
  const auto plan = GetParam();
  ServerWorld world;
  Status s;
  auto server_listener = Listener::Listen("127.0.0.1", 0, 4, &s);
  auto relay_listener = Listener::Listen("127.0.0.1", 0, 4, &s);
  ASSERT_NE(server_listener, nullptr);
  ASSERT_NE(relay_listener, nullptr);
  inband::Options sopts;
  auto server = std::async(std::launch::async, [&] {
    Status st;
    auto conn = server_listener->Accept(sopts, &st);
    return ServeOne(*conn, world.Config({plan}));
  });
  std::atomic<bool> relayed{false};
  auto relay = std::async(std::launch::async, [&] {
    Status st;
    auto victim = relay_listener->Accept({}, &st);
    if (victim == nullptr || !victim->Handshake().ok()) return;
    auto upstream = Connection::Connect("127.0.0.1", server_listener->port(), {}, &st);
    if (upstream == nullptr) return;
    std::vector<uint8_t> buf(65536);
    for (int i = 0; i < 2000; ++i) {
      pollfd fds[2] = {{victim->fd(), POLLIN, 0}, {upstream->fd(), POLLIN, 0}};
      if (poll(fds, 2, 5000) <= 0) return;
      for (int k = 0; k < 2; ++k) {
        if ((fds[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        Connection& from = k == 0 ? *victim : *upstream;
        Connection& to = k == 0 ? *upstream : *victim;
        const ssize_t n = from.Read(buf, &st);
        if (n <= 0) return;
        relayed = true;
        if (!to.WriteAll(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n))).ok()) return;
      }
    }
  });
  Result client = ConnectAndAuth(relay_listener->port(), Client(world, "correct horse", plan));
  Result srv = server.get();
  relay.get();
  EXPECT_TRUE(relayed.load());
  EXPECT_NE(client.session_id, srv.session_id);
  EXPECT_FALSE(client.run.ok()) << "client accepted a relayed authentication";
  if (plan == std::vector<Mechanism>{Mechanism::kX509Batch}) {
    // Server-only authentication: the server learns nothing about the
    // client either way, so the refusal that matters is the client's.
    EXPECT_TRUE(srv.identities.empty());
  } else {
    EXPECT_FALSE(srv.run.ok()) << "server accepted a relayed authentication";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Mechanisms, EachMechanism,
    ::testing::Values(std::vector<Mechanism>{Mechanism::kCmacPassword},
                      std::vector<Mechanism>{Mechanism::kPake2Plus},
                      std::vector<Mechanism>{Mechanism::kX509Batch},
                      std::vector<Mechanism>{Mechanism::kX509Batch, Mechanism::kCmacPassword}),
    [](const auto& test_info) {
      std::string name;
      for (Mechanism m : test_info.param) name += std::string(MechanismName(m));
      return name;
    });

TEST(AuthLoopbackTest, BatchSigningUnderConcurrentClients) {
  ServerWorld world;
  constexpr int kClients = 128;
  Status s;
  auto listener = Listener::Listen("127.0.0.1", 0, kClients, &s);
  ASSERT_NE(listener, nullptr);
  const uint64_t batches_before = world.signer->batches_signed();
  std::vector<std::future<Result>> servers;
  std::thread acceptor([&] {
    for (int i = 0; i < kClients; ++i) {
      inband::Options o;
      o.engine.ephemeral_keys = &world.ephemeral;
      Status st;
      std::shared_ptr<Connection> conn(listener->Accept(o, &st).release());
      if (conn == nullptr) break;
      servers.push_back(std::async(std::launch::async, [&world, conn] {
        return ServeOne(*conn, world.Config({{Mechanism::kX509Batch}}));
      }));
    }
  });
  std::vector<std::future<Result>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::async(std::launch::async, [&] {
      return ConnectAndAuth(listener->port(), Client(world, "", {Mechanism::kX509Batch}));
    }));
  }
  int ok = 0;
  for (auto& c : clients) {
    Result r = c.get();
    EXPECT_TRUE(r.run.ok()) << r.run.detail;
    ok += r.run.ok();
    if (r.run.ok()) {
      const auto& attrs = r.identities.back().attributes;
      ASSERT_TRUE(attrs.contains("batch_size"));
    }
  }
  acceptor.join();
  for (auto& f : servers) EXPECT_TRUE(f.get().run.ok());
  const uint64_t signatures = world.signer->batches_signed() - batches_before;
  std::cout << "[ batch signing ] " << ok << " authenticated sessions, " << signatures
            << " root signatures, largest batch " << world.signer->largest_batch() << "\n";
  ::testing::Test::RecordProperty("sessions", ok);
  ::testing::Test::RecordProperty("root_signatures", static_cast<int>(signatures));
  EXPECT_EQ(ok, kClients);
  EXPECT_LT(signatures, static_cast<uint64_t>(kClients));
}

TEST(AuthLoopbackTest, TicketAndResumptionNeedNoPublicKeyOperationAndNoKdf) {
  ServerWorld world;
  DeterministicRng rng(77);
  world.tickets = std::make_shared<TicketIssuer>(TicketPolicy{}, rng);
  auto client_tickets = std::make_shared<TicketStore>();
  ResumptionCache client_resumption;
  inband::Options copts;
  copts.engine.resumption_cache = &client_resumption;
  copts.engine.peer_name = "the-server";  // each Session() listens on a new port
  inband::Options sopts;
  sopts.engine.resumption_cache = &world.resumption;

  auto first_client = Client(world, "correct horse", {Mechanism::kPake2Plus});
  first_client.tickets = client_tickets;
  auto [c1, s1] = Session(world, world.Config({{Mechanism::kPake2Plus}}), first_client, copts, sopts);
  ASSERT_TRUE(c1.run.ok()) << c1.run.detail;
  ASSERT_TRUE(s1.run.ok()) << s1.run.detail;
  EXPECT_FALSE(c1.used_ticket);
  EXPECT_EQ(s1.engine_pk_ops, 1u);

  const uint64_t kdf_before = PasswordKdfCount();
  const uint64_t signatures_before = world.signer->batches_signed();
  auto second_client = Client(world, "correct horse", {Mechanism::kPake2Plus});
  second_client.tickets = client_tickets;
  auto [c2, s2] = Session(world, world.Config({{Mechanism::kPake2Plus}}), second_client, copts, sopts);
  ASSERT_TRUE(c2.run.ok()) << c2.run.detail;
  ASSERT_TRUE(s2.run.ok()) << s2.run.detail;
  EXPECT_TRUE(c2.used_ticket);
  EXPECT_TRUE(s2.used_ticket);
  EXPECT_NE(c1.session_id, c2.session_id);
  // No public-key operation: the transport resumed (no ECDH) and the
  // authentication ran on MACs only (no signature, no SPAKE2+, no KDF).
  EXPECT_EQ(s2.engine_pk_ops, 0u);
  EXPECT_EQ(c2.engine_pk_ops, 0u);
  EXPECT_EQ(PasswordKdfCount(), kdf_before);
  EXPECT_EQ(world.signer->batches_signed(), signatures_before);
  ASSERT_EQ(s2.identities.size(), 1u);
  EXPECT_EQ(s2.identities[0].name, "alice");
  EXPECT_EQ(s2.identities[0].mechanism, Mechanism::kTicket);
}

}  // namespace
}  // namespace tcpcrypt::auth
