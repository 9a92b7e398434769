// Tests for auth/x509_batch: both sides in one process with a real
// BatchSigner thread, a local PKI from test_pki.h, a fixed verification time,
// and adversarial proofs (every element tampered, wrong certificates, relayed
// proofs, malformed payloads, wrong-state calls).
#include "auth/x509_batch/x509_batch.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "auth/x509_batch/batch_proof.h"
#include "auth/x509_batch/batch_signature.h"
#include "auth/x509_batch/batch_signer.h"
#include "auth/x509_batch/client_certificate.h"
#include "auth/x509_batch/merkle_tree.h"
#include "auth/x509_batch/pem.h"
#include "auth/x509_batch/test_pki.h"
#include "auth/x509_batch/x509.pb.h"

namespace tcpcrypt::auth::x509 {
namespace {

using Bytes = std::vector<uint8_t>;
using Status = Step::Status;

constexpr int64_t kT0 = 1767225600;  // 2026-01-01T00:00:00Z
constexpr int64_t kDay = 24 * 3600;
constexpr char kHost[] = "example.com";
constexpr char kIp[] = "192.0.2.10";

ChannelBinding Binding(uint32_t i) {
  Bytes sid(33);
  for (size_t k = 0; k < sid.size(); ++k) {
    sid[k] = static_cast<uint8_t>((i * 131 + k * 17 + 5) ^ (i >> 8));
  }
  return ChannelBinding::SessionId(sid);
}

CertOptions CaOptions(const std::string& cn = "tcpcrypt test CA") {
  CertOptions o;
  o.common_name = cn;
  o.key_type = PkiKeyType::kEcdsaP256;
  o.not_before = kT0 - 365 * kDay;
  o.not_after = kT0 + 3650 * kDay;
  return o;
}

CertOptions LeafOptions(PkiKeyType type) {
  CertOptions o;
  o.common_name = kHost;
  o.dns_names = {kHost};
  o.ip_addresses = {kIp};
  o.key_type = type;
  o.not_before = kT0 - kDay;
  o.not_after = kT0 + 30 * kDay;
  return o;
}

struct Pki {
  KeyAndCert ca;
  KeyAndCert leaf;
  std::vector<Bytes> chain;  // leaf first
  SharedX509Store trust;
};

Pki MakePki(const CertOptions& leaf_options,
            const CertOptions& ca_options = CaOptions()) {
  Pki pki;
  std::string error;
  std::optional<KeyAndCert> ca = CreateRootCa(ca_options, &error);
  EXPECT_TRUE(ca) << error;
  pki.ca = *ca;
  std::optional<KeyAndCert> leaf = IssueCertificate(pki.ca, leaf_options, &error);
  EXPECT_TRUE(leaf) << error;
  pki.leaf = *leaf;
  pki.chain = {CertificateDer(pki.leaf.cert.get())};
  const std::vector<Bytes> anchors = {CertificateDer(pki.ca.cert.get())};
  pki.trust = StoreFromDer(anchors, &error);
  EXPECT_TRUE(pki.trust) << error;
  return pki;
}

std::shared_ptr<BatchSigner> MakeSigner(const SharedEvpPkey& key,
                                        bool paused = false,
                                        uint32_t max_batch = 1024) {
  BatchSigner::Options options;
  options.start_paused = paused;
  options.max_batch_size = max_batch;
  std::string error;
  std::shared_ptr<BatchSigner> signer = BatchSigner::Create(key, options, &error);
  EXPECT_TRUE(signer) << error;
  return signer;
}

ServerConfig MakeServerConfig(const Pki& pki, bool paused = false,
                              uint32_t max_batch = 1024) {
  ServerConfig config;
  config.signer = MakeSigner(pki.leaf.key, paused, max_batch);
  config.chain_der = pki.chain;
  config.verification_time = kT0;
  return config;
}

ClientConfig MakeClientConfig(const Pki& pki) {
  ClientConfig config;
  config.trust = pki.trust;
  config.verification_time = kT0;
  return config;
}

// Waker counts Context::wake calls from the signer thread.
class Waker {
 public:
  std::function<void()> Fn() {
    return [this] {
      std::lock_guard<std::mutex> lock(mu_);
      ++count_;
      cv_.notify_all();
    };
  }
  bool WaitFor(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30),
                        [&] { return count_ >= n; });
  }
  int count() {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

Context ServerContext(const ChannelBinding& binding, Waker* waker) {
  Context ctx;
  ctx.binding = binding;
  ctx.wake = waker->Fn();
  return ctx;
}

Context ClientContext(const ChannelBinding& binding,
                      const std::string& host = kHost) {
  Context ctx;
  ctx.binding = binding;
  ctx.realm = host;
  return ctx;
}

// ServerBatch runs n server sides through one batch: every Start happens
// while the signer is paused, then the signer runs once.
struct ServerBatch {
  std::vector<ChannelBinding> bindings;
  std::vector<std::unique_ptr<MechanismSide>> sides;
  std::vector<Step> steps;  // each side's Poll result
};

ServerBatch RunServerBatch(const ServerConfig& config, size_t n,
                           uint32_t first_binding = 0) {
  ServerBatch batch;
  Waker waker;
  MechanismFactory factory = ServerFactory(config);
  config.signer->Pause();
  for (size_t i = 0; i < n; ++i) {
    batch.bindings.push_back(Binding(first_binding + static_cast<uint32_t>(i)));
    batch.sides.push_back(factory(ServerContext(batch.bindings.back(), &waker)));
    const Step start = batch.sides.back()->Start();
    EXPECT_EQ(start.status, Status::kContinue) << start.detail;
    EXPECT_FALSE(start.send.has_value());
  }
  EXPECT_EQ(config.signer->queued(), n);
  config.signer->Resume();
  EXPECT_TRUE(waker.WaitFor(static_cast<int>(n)));
  for (auto& side : batch.sides) batch.steps.push_back(side->Poll());
  return batch;
}

// OneProof is a single server proof for |binding| (a batch of one).
Bytes OneProof(const ServerConfig& config, const ChannelBinding& binding) {
  Waker waker;
  std::unique_ptr<MechanismSide> side =
      ServerFactory(config)(ServerContext(binding, &waker));
  EXPECT_EQ(side->Start().status, Status::kContinue);
  EXPECT_TRUE(waker.WaitFor(1));
  Step step = side->Poll();
  EXPECT_EQ(step.status, Status::kDone) << step.detail;
  EXPECT_TRUE(step.send.has_value());
  EXPECT_FALSE(side->peer().has_value());  // learns nothing about the client
  return step.send.value_or(Bytes{});
}

Step RunClient(const ClientConfig& config, const ChannelBinding& binding,
               const Bytes& payload, const std::string& host = kHost,
               std::optional<PeerIdentity>* out_peer = nullptr) {
  std::unique_ptr<MechanismSide> side =
      ClientFactory(config)(ClientContext(binding, host));
  EXPECT_EQ(side->mechanism(), Mechanism::kX509Batch);
  const Step start = side->Start();
  EXPECT_EQ(start.status, Status::kContinue);
  EXPECT_FALSE(start.send.has_value());
  Step step = side->OnPayload(payload);
  if (out_peer) *out_peer = side->peer();
  return step;
}

BatchProof Parse(const Bytes& payload) {
  BatchProof proof;
  EXPECT_TRUE(proof.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
  return proof;
}

Bytes Serialize(const google::protobuf::MessageLite& message) {
  Bytes out(message.ByteSizeLong());
  EXPECT_TRUE(message.SerializeToArray(out.data(), static_cast<int>(out.size())));
  return out;
}

void ExpectFail(const Step& step, AuthError error, const std::string& detail) {
  EXPECT_EQ(step.status, Status::kFailed);
  EXPECT_EQ(step.error, error) << AuthErrorName(step.error) << ": " << step.detail;
  if (!detail.empty()) {
    EXPECT_EQ(step.detail, detail);
  }
  EXPECT_FALSE(step.send.has_value());
}

std::string KeyTypeTestName(const ::testing::TestParamInfo<PkiKeyType>& info) {
  switch (info.param) {
    case PkiKeyType::kEcdsaP256: return "EcdsaP256";
    case PkiKeyType::kEd25519: return "Ed25519";
    case PkiKeyType::kRsa2048: return "Rsa2048";
  }
  return "Unknown";
}

// ---------------------------------------------------------------------------
// Happy paths, one per key type.

class X509KeyTypeTest : public ::testing::TestWithParam<PkiKeyType> {};
INSTANTIATE_TEST_SUITE_P(KeyTypes, X509KeyTypeTest,
                         ::testing::Values(PkiKeyType::kEcdsaP256,
                                           PkiKeyType::kEd25519,
                                           PkiKeyType::kRsa2048),
                         KeyTypeTestName);

TEST_P(X509KeyTypeTest, ServerAuthenticatesToClient) {
  const Pki pki = MakePki(LeafOptions(GetParam()));
  const ServerConfig server = MakeServerConfig(pki);
  const ChannelBinding binding = Binding(1);
  const Bytes payload = OneProof(server, binding);

  const BatchProof proof = Parse(payload);
  const SignatureScheme expected_scheme =
      BatchSchemeFor(*KeyAlgorithmOf(pki.leaf.key.get()));
  EXPECT_EQ(proof.signature_scheme(), static_cast<uint32_t>(expected_scheme));
  EXPECT_EQ(proof.batch_size(), 1u);
  EXPECT_EQ(proof.audit_path_size(), 0);
  EXPECT_EQ(proof.blinder().size(),
            MerkleHashLen(MerkleHashForScheme(expected_scheme)));
  EXPECT_FALSE(proof.client_certificate_requested());

  std::optional<PeerIdentity> peer;
  const Step step = RunClient(MakeClientConfig(pki), binding, payload, kHost, &peer);
  EXPECT_EQ(step.status, Status::kDone) << step.detail;
  EXPECT_FALSE(step.send.has_value());
  ASSERT_TRUE(peer.has_value());
  EXPECT_EQ(peer->mechanism, Mechanism::kX509Batch);
  EXPECT_EQ(peer->name, kHost);
  EXPECT_EQ(peer->attributes.at("subject"), "CN=example.com");
  EXPECT_EQ(peer->attributes.at("issuer"), "CN=tcpcrypt test CA");
  EXPECT_EQ(peer->attributes.at("batch_size"), "1");
  EXPECT_EQ(server.signer->batches_signed(), 1u);
  EXPECT_EQ(server.signer->leaves_signed(), 1u);
}

TEST_P(X509KeyTypeTest, ConcurrentBatchVerifiesForEveryClient) {
  const Pki pki = MakePki(LeafOptions(GetParam()));
  const ServerConfig server = MakeServerConfig(pki, /*paused=*/true);
  const ServerBatch batch = RunServerBatch(server, 16);
  const ClientConfig client = MakeClientConfig(pki);
  for (size_t i = 0; i < 16; ++i) {
    ASSERT_EQ(batch.steps[i].status, Status::kDone) << batch.steps[i].detail;
    const Step step = RunClient(client, batch.bindings[i], *batch.steps[i].send);
    EXPECT_EQ(step.status, Status::kDone) << i << ": " << step.detail;
  }
  EXPECT_EQ(server.signer->batches_signed(), 1u);
  EXPECT_EQ(server.signer->leaves_signed(), 16u);
}

TEST_P(X509KeyTypeTest, MutualAuthenticationWithClientCertificate) {
  const Pki server_pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  CertOptions alice = LeafOptions(GetParam());
  alice.common_name = "alice";
  alice.dns_names.clear();
  alice.ip_addresses.clear();
  alice.server_auth = false;
  alice.client_auth = true;
  const Pki client_pki = MakePki(alice, CaOptions("tcpcrypt client CA"));

  ServerConfig server = MakeServerConfig(server_pki);
  server.require_client_cert = true;
  server.client_ca = client_pki.trust;
  ClientConfig client = MakeClientConfig(server_pki);
  client.client_key = client_pki.leaf.key;
  client.client_chain_der = client_pki.chain;

  const ChannelBinding binding = Binding(7);
  Waker waker;
  std::unique_ptr<MechanismSide> s = ServerFactory(server)(ServerContext(binding, &waker));
  std::unique_ptr<MechanismSide> c = ClientFactory(client)(ClientContext(binding));
  ASSERT_EQ(s->Start().status, Status::kContinue);
  ASSERT_EQ(c->Start().status, Status::kContinue);
  ASSERT_TRUE(waker.WaitFor(1));
  const Step proof = s->Poll();
  ASSERT_EQ(proof.status, Status::kContinue) << proof.detail;  // wants a cert
  ASSERT_TRUE(proof.send.has_value());
  EXPECT_TRUE(Parse(*proof.send).client_certificate_requested());
  EXPECT_FALSE(s->peer().has_value());

  const Step reply = c->OnPayload(*proof.send);
  ASSERT_EQ(reply.status, Status::kDone) << reply.detail;
  ASSERT_TRUE(reply.send.has_value());
  ASSERT_TRUE(c->peer().has_value());
  EXPECT_EQ(c->peer()->name, kHost);

  const Step done = s->OnPayload(*reply.send);
  ASSERT_EQ(done.status, Status::kDone) << done.detail;
  EXPECT_FALSE(done.send.has_value());
  ASSERT_TRUE(s->peer().has_value());
  EXPECT_EQ(s->peer()->mechanism, Mechanism::kX509Batch);
  EXPECT_EQ(s->peer()->name, "alice");
  EXPECT_EQ(s->peer()->attributes.at("subject"), "CN=alice");
  EXPECT_EQ(s->peer()->attributes.at("issuer"), "CN=tcpcrypt client CA");
}

// ---------------------------------------------------------------------------
// Batching.

TEST(X509BatchTest, OneHundredTwentyEightQueuedRequestsShareSignatures) {
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  const ServerConfig server = MakeServerConfig(pki, /*paused=*/true);
  const ServerBatch batch = RunServerBatch(server, 128);
  const ClientConfig client = MakeClientConfig(pki);
  for (size_t i = 0; i < batch.steps.size(); ++i) {
    ASSERT_EQ(batch.steps[i].status, Status::kDone) << batch.steps[i].detail;
    const BatchProof proof = Parse(*batch.steps[i].send);
    EXPECT_EQ(proof.batch_size(), 128u);
    EXPECT_EQ(proof.audit_path_size(), 7);
    std::optional<PeerIdentity> peer;
    const Step step =
        RunClient(client, batch.bindings[i], *batch.steps[i].send, kHost, &peer);
    ASSERT_EQ(step.status, Status::kDone) << i << ": " << step.detail;
    EXPECT_EQ(peer->attributes.at("batch_size"), "128");
  }
  std::printf("[ x509     ] 128 queued requests: %llu signature(s) for %llu "
              "leaves, largest batch %u\n",
              static_cast<unsigned long long>(server.signer->batches_signed()),
              static_cast<unsigned long long>(server.signer->leaves_signed()),
              server.signer->largest_batch());
  EXPECT_LT(server.signer->batches_signed(), server.signer->leaves_signed());
  EXPECT_EQ(server.signer->batches_signed(), 1u);
  EXPECT_EQ(server.signer->leaves_signed(), 128u);
}

TEST(X509BatchTest, MaxBatchSizeSplitsTheQueue) {
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  const ServerConfig server = MakeServerConfig(pki, /*paused=*/true, 16);
  const ServerBatch batch = RunServerBatch(server, 128);
  const ClientConfig client = MakeClientConfig(pki);
  for (size_t i = 0; i < batch.steps.size(); ++i) {
    ASSERT_EQ(batch.steps[i].status, Status::kDone);
    EXPECT_EQ(Parse(*batch.steps[i].send).audit_path_size(), 4);
    EXPECT_EQ(RunClient(client, batch.bindings[i], *batch.steps[i].send).status,
              Status::kDone);
  }
  EXPECT_EQ(server.signer->batches_signed(), 8u);
  EXPECT_EQ(server.signer->leaves_signed(), 128u);
  EXPECT_EQ(server.signer->largest_batch(), 16u);
}

TEST(X509BatchTest, BatchSizeOneSignsEveryLeaf) {
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEd25519));
  const ServerConfig server = MakeServerConfig(pki, /*paused=*/true, 1);
  const ServerBatch batch = RunServerBatch(server, 5);
  for (const Step& s : batch.steps) ASSERT_EQ(s.status, Status::kDone);
  EXPECT_EQ(server.signer->batches_signed(), 5u);
  EXPECT_EQ(server.signer->leaves_signed(), 5u);
}

TEST(X509BatchTest, ConcurrentThreadsWithoutPausing) {
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kRsa2048));
  const ServerConfig server = MakeServerConfig(pki);
  const ClientConfig client = MakeClientConfig(pki);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 16;
  std::atomic<int> verified{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      MechanismFactory factory = ServerFactory(server);
      for (int i = 0; i < kPerThread; ++i) {
        const ChannelBinding binding = Binding(static_cast<uint32_t>(1000 + t * 100 + i));
        Waker waker;
        std::unique_ptr<MechanismSide> side = factory(ServerContext(binding, &waker));
        if (side->Start().status != Status::kContinue || !waker.WaitFor(1)) return;
        const Step step = side->Poll();
        if (step.status != Status::kDone || !step.send) return;
        std::unique_ptr<MechanismSide> c = ClientFactory(client)(ClientContext(binding));
        (void)c->Start();
        if (c->OnPayload(*step.send).status == Status::kDone) ++verified;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(verified.load(), kThreads * kPerThread);
  EXPECT_EQ(server.signer->leaves_signed(),
            static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_LE(server.signer->batches_signed(), server.signer->leaves_signed());
  std::printf("[ x509     ] %d threads x %d (RSA-2048, no pause): %llu "
              "signature(s) for %llu leaves, largest batch %u\n",
              kThreads, kPerThread,
              static_cast<unsigned long long>(server.signer->batches_signed()),
              static_cast<unsigned long long>(server.signer->leaves_signed()),
              server.signer->largest_batch());
}

TEST(X509BatchTest, ProofSizeGrowsLogarithmically) {
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  const ClientConfig client = MakeClientConfig(pki);
  size_t one_leaf_size = 0;
  for (size_t n : {1u, 2u, 3u, 4u, 5u, 8u, 17u, 64u, 100u, 128u, 129u, 256u}) {
    const ServerConfig server = MakeServerConfig(pki, /*paused=*/true);
    const ServerBatch batch = RunServerBatch(server, n, static_cast<uint32_t>(n * 1000));
    size_t largest = 0;
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(batch.steps[i].status, Status::kDone);
      const Bytes& payload = *batch.steps[i].send;
      const BatchProof proof = Parse(payload);
      EXPECT_EQ(static_cast<size_t>(proof.audit_path_size()),
                MerkleAuditPathLength(n));
      largest = std::max(largest, payload.size());
      ASSERT_EQ(RunClient(client, batch.bindings[i], payload).status,
                Status::kDone);
    }
    if (n == 1) one_leaf_size = largest;
    // Each doubling adds one 32-byte node (+2 bytes of framing), nothing else
    // (ECDSA signatures vary by a byte or two).
    EXPECT_LE(largest, one_leaf_size + MerkleAuditPathLength(n) * 34 + 8);
    std::printf("[ x509     ] batch %3zu: %zu path nodes, proof %zu bytes\n", n,
                MerkleAuditPathLength(n), largest);
    EXPECT_EQ(server.signer->batches_signed(), 1u);
  }
}

// ---------------------------------------------------------------------------
// Tampering with every element of the proof.

class X509TamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
    server_ = MakeServerConfig(pki_, /*paused=*/true);
    client_ = MakeClientConfig(pki_);
    batch_ = RunServerBatch(server_, 5);
    ASSERT_EQ(batch_.steps[3].status, Status::kDone);
    good_ = *batch_.steps[3].send;
    binding_ = batch_.bindings[3];
    ASSERT_EQ(RunClient(client_, binding_, good_).status, Status::kDone);
    proof_ = Parse(good_);
    ASSERT_EQ(proof_.batch_size(), 5u);
    ASSERT_EQ(proof_.leaf_index(), 3u);
    ASSERT_EQ(proof_.audit_path_size(), 3);
  }

  Step Verify(const BatchProof& proof) {
    return RunClient(client_, binding_, Serialize(proof));
  }

  Pki pki_;
  ServerConfig server_;
  ClientConfig client_;
  ServerBatch batch_;
  Bytes good_;
  ChannelBinding binding_;
  BatchProof proof_;
};

TEST_F(X509TamperTest, RootSignatureBytes) {
  for (size_t pos = 0; pos < proof_.root_signature().size(); ++pos) {
    BatchProof p = proof_;
    (*p.mutable_root_signature())[pos] ^= 0x01;
    ExpectFail(Verify(p), AuthError::kBadProof, "batch signature does not verify");
  }
  BatchProof truncated = proof_;
  truncated.mutable_root_signature()->pop_back();
  ExpectFail(Verify(truncated), AuthError::kBadProof,
             "batch signature does not verify");
  BatchProof empty = proof_;
  empty.clear_root_signature();
  ExpectFail(Verify(empty), AuthError::kMalformed, "");
  BatchProof huge = proof_;
  huge.set_root_signature(std::string(kMaxSignatureSize + 1, 'x'));
  ExpectFail(Verify(huge), AuthError::kMalformed, "");
}

TEST_F(X509TamperTest, Index) {
  for (uint32_t index = 0; index < 5; ++index) {
    if (index == 3) continue;
    BatchProof p = proof_;
    p.set_leaf_index(index);
    ExpectFail(Verify(p), AuthError::kBadProof,
               "audit path does not lead to the signed root");
  }
  for (uint32_t index : {5u, 6u, 7u, 8u, 1u << 20, 0xffffffffu}) {
    BatchProof p = proof_;
    p.set_leaf_index(index);
    ExpectFail(Verify(p), AuthError::kMalformed, "");
  }
}

TEST_F(X509TamperTest, EachPathEntry) {
  for (int j = 0; j < proof_.audit_path_size(); ++j) {
    for (size_t pos : {size_t{0}, size_t{17}, size_t{31}}) {
      BatchProof p = proof_;
      (*p.mutable_audit_path(j))[pos] ^= 0x80;
      ExpectFail(Verify(p), AuthError::kBadProof,
                 "audit path does not lead to the signed root");
    }
    BatchProof short_node = proof_;
    short_node.mutable_audit_path(j)->pop_back();
    ExpectFail(Verify(short_node), AuthError::kMalformed, "");
  }
  // Swapped, dropped and extra nodes.
  BatchProof swapped = proof_;
  swapped.mutable_audit_path()->SwapElements(0, 1);
  ExpectFail(Verify(swapped), AuthError::kBadProof,
             "audit path does not lead to the signed root");
  BatchProof dropped = proof_;
  dropped.mutable_audit_path()->RemoveLast();
  ExpectFail(Verify(dropped), AuthError::kMalformed, "");
  BatchProof extra = proof_;
  *extra.add_audit_path() = proof_.audit_path(0);
  ExpectFail(Verify(extra), AuthError::kMalformed, "");
  BatchProof many = proof_;
  for (int i = 0; i < 40; ++i) *many.add_audit_path() = proof_.audit_path(0);
  ExpectFail(Verify(many), AuthError::kMalformed, "audit path has more than 32 nodes");
}

TEST_F(X509TamperTest, Blinder) {
  for (size_t pos = 0; pos < proof_.blinder().size(); ++pos) {
    BatchProof p = proof_;
    (*p.mutable_blinder())[pos] ^= 0x04;
    ExpectFail(Verify(p), AuthError::kBadProof,
               "audit path does not lead to the signed root");
  }
  BatchProof missing = proof_;
  missing.clear_blinder();
  ExpectFail(Verify(missing), AuthError::kMalformed, "blinder has the wrong size");
}

TEST_F(X509TamperTest, BatchSize) {
  // Same path length (5..8 all need 3 nodes): only the signature notices.
  for (uint32_t n : {6u, 7u, 8u}) {
    BatchProof p = proof_;
    p.set_batch_size(n);
    ExpectFail(Verify(p), AuthError::kBadProof, "batch signature does not verify");
  }
  // Different path length, zero, or beyond 2^20: structure.
  for (uint32_t n : {0u, 4u, 9u, 128u, (1u << 20) + 1, 0xffffffffu}) {
    BatchProof p = proof_;
    p.set_batch_size(n);
    ExpectFail(Verify(p), AuthError::kMalformed, "");
  }
}

TEST_F(X509TamperTest, Root) {
  BatchProof p = proof_;
  (*p.mutable_root())[0] ^= 0x01;
  ExpectFail(Verify(p), AuthError::kBadProof, "batch signature does not verify");
  BatchProof missing = proof_;
  missing.clear_root();
  ExpectFail(Verify(missing), AuthError::kMalformed, "root has the wrong size");
}

TEST_F(X509TamperTest, SignatureScheme) {
  for (SignatureScheme other : {SignatureScheme::kRsaPssRsaeSha256Batch}) {
    BatchProof p = proof_;
    p.set_signature_scheme(static_cast<uint32_t>(other));
    ExpectFail(Verify(p), AuthError::kBadProof,
               "signature scheme does not match the certificate key");
  }
  // ed25519_batch uses 64-byte nodes: these 32-byte ones no longer fit.
  BatchProof ed = proof_;
  ed.set_signature_scheme(static_cast<uint32_t>(SignatureScheme::kEd25519Batch));
  ExpectFail(Verify(ed), AuthError::kMalformed, "");
  for (uint32_t other : {0u, 0x0403u, 0x0807u, 0xFE02u, 0xFFFFu, 0x10000u}) {
    BatchProof p = proof_;
    p.set_signature_scheme(other);
    ExpectFail(Verify(p), AuthError::kMalformed, "");
  }
}

TEST_F(X509TamperTest, EveryCertificateByte) {
  const std::string leaf = proof_.certificate_chain(0);
  int refused = 0;
  for (size_t pos = 0; pos < leaf.size(); ++pos) {
    BatchProof p = proof_;
    (*p.mutable_certificate_chain(0))[pos] ^= 0x01;
    const Step step = Verify(p);
    EXPECT_EQ(step.status, Status::kFailed) << "byte " << pos;
    if (step.status == Status::kFailed) ++refused;
  }
  EXPECT_EQ(refused, static_cast<int>(leaf.size()));
  // The last byte lies in the certificate's own signature.
  BatchProof p = proof_;
  p.mutable_certificate_chain(0)->back() ^= 0x01;
  ExpectFail(Verify(p), AuthError::kCertificate,
             "certificate signature does not verify");
}

TEST_F(X509TamperTest, ChainBounds) {
  BatchProof empty = proof_;
  empty.clear_certificate_chain();
  ExpectFail(Verify(empty), AuthError::kMalformed, "certificate chain is empty");
  BatchProof eleven = proof_;
  for (int i = 0; i < 10; ++i) *eleven.add_certificate_chain() = proof_.certificate_chain(0);
  ExpectFail(Verify(eleven), AuthError::kMalformed,
             "certificate chain has more than 10 certificates");
  BatchProof big = proof_;
  big.add_certificate_chain(std::string(kMaxCertificateSize + 1, '\x30'));
  ExpectFail(Verify(big), AuthError::kMalformed, "");
  BatchProof trailing = proof_;
  trailing.mutable_certificate_chain(0)->push_back('\0');
  ExpectFail(Verify(trailing), AuthError::kMalformed, "certificate 1 is not valid DER");
  BatchProof garbage = proof_;
  garbage.add_certificate_chain("not a certificate");
  ExpectFail(Verify(garbage), AuthError::kMalformed, "certificate 2 is not valid DER");
}

// A relay (or a man in the middle with its own tcpcrypt session to the
// client) forwards a genuine proof made for binding X to a client whose
// binding is Y.
TEST_F(X509TamperTest, RelayedProofForAnotherBindingIsRefused) {
  for (size_t i = 0; i < batch_.bindings.size(); ++i) {
    const Step step = RunClient(client_, batch_.bindings[i], good_);
    if (i == 3) {
      EXPECT_EQ(step.status, Status::kDone);
    } else {
      ExpectFail(step, AuthError::kBadProof,
                 "audit path does not lead to the signed root");
    }
  }
  ExpectFail(RunClient(client_, Binding(999), good_), AuthError::kBadProof,
             "audit path does not lead to the signed root");
  // Same bytes, other kind of channel (binding.h): still refused.
  const ChannelBinding as_exporter = ChannelBinding::TlsExporter(binding_.value);
  ExpectFail(RunClient(client_, as_exporter, good_), AuthError::kBadProof,
             "audit path does not lead to the signed root");
  // Re-pointing the relayed proof at another index does not help either.
  for (uint32_t index = 0; index < 5; ++index) {
    BatchProof p = proof_;
    p.set_leaf_index(index);
    ExpectFail(RunClient(client_, batch_.bindings[0], Serialize(p)),
               AuthError::kBadProof, "audit path does not lead to the signed root");
  }
}

// ---------------------------------------------------------------------------
// Certificate checks.

TEST(X509CertificateTest, ExpiredCertificate) {
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  const Bytes payload = OneProof(MakeServerConfig(pki), Binding(1));
  ClientConfig client = MakeClientConfig(pki);
  client.verification_time = kT0 + 31 * kDay;
  ExpectFail(RunClient(client, Binding(1), payload), AuthError::kCertificate,
             "certificate has expired");
}

TEST(X509CertificateTest, NotYetValidCertificate) {
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  const Bytes payload = OneProof(MakeServerConfig(pki), Binding(1));
  ClientConfig client = MakeClientConfig(pki);
  client.verification_time = kT0 - 2 * kDay;
  ExpectFail(RunClient(client, Binding(1), payload), AuthError::kCertificate,
             "certificate is not yet valid");
}

TEST(X509CertificateTest, RealClockRefusesTheFutureWindow) {
  // A certificate valid only 2100..2101, checked at the real time.
  CertOptions future = LeafOptions(PkiKeyType::kEcdsaP256);
  future.not_before = 4102444800;  // 2100-01-01
  future.not_after = 4102444800 + 365 * kDay;
  const Pki pki = MakePki(future);
  ServerConfig server = MakeServerConfig(pki);
  const Bytes payload = OneProof(server, Binding(1));
  ClientConfig client = MakeClientConfig(pki);
  client.verification_time.reset();
  ExpectFail(RunClient(client, Binding(1), payload), AuthError::kCertificate,
             "certificate is not yet valid");
}

TEST(X509CertificateTest, UntrustedCa) {
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  const Pki other = MakePki(LeafOptions(PkiKeyType::kEcdsaP256), CaOptions("other CA"));
  const Bytes payload = OneProof(MakeServerConfig(pki), Binding(1));
  ExpectFail(RunClient(MakeClientConfig(other), Binding(1), payload),
             AuthError::kCertificate, "certificate is not trusted");
}

TEST(X509CertificateTest, SelfSignedServerCertificate) {
  // The server presents its CA certificate itself, signed by its own key.
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  ServerConfig server;
  server.signer = MakeSigner(pki.ca.key);
  server.chain_der = {CertificateDer(pki.ca.cert.get())};
  const Pki other = MakePki(LeafOptions(PkiKeyType::kEcdsaP256), CaOptions("other CA"));
  const Bytes payload = OneProof(server, Binding(1));
  ExpectFail(RunClient(MakeClientConfig(other), Binding(1), payload),
             AuthError::kCertificate, "certificate is not trusted");
}

TEST(X509CertificateTest, WrongHostName) {
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  const Bytes payload = OneProof(MakeServerConfig(pki), Binding(1));
  const ClientConfig client = MakeClientConfig(pki);
  ExpectFail(RunClient(client, Binding(1), payload, "example.org"),
             AuthError::kCertificate, "certificate does not match host example.org");
  ExpectFail(RunClient(client, Binding(1), payload, "www.example.com"),
             AuthError::kCertificate,
             "certificate does not match host www.example.com");
  ExpectFail(RunClient(client, Binding(1), payload, ""), AuthError::kCertificate,
             "no host name to check the certificate against (empty realm)");
  // Names match case-insensitively (RFC 6125 §6.4.1).
  EXPECT_EQ(RunClient(client, Binding(1), payload, "EXAMPLE.com").status,
            Status::kDone);
}

TEST(X509CertificateTest, IpAddresses) {
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  const Bytes payload = OneProof(MakeServerConfig(pki), Binding(1));
  const ClientConfig client = MakeClientConfig(pki);
  std::optional<PeerIdentity> peer;
  EXPECT_EQ(RunClient(client, Binding(1), payload, kIp, &peer).status, Status::kDone);
  EXPECT_EQ(peer->name, kIp);
  ExpectFail(RunClient(client, Binding(1), payload, "192.0.2.11"),
             AuthError::kCertificate, "certificate does not match host 192.0.2.11");
  ExpectFail(RunClient(client, Binding(1), payload, "2001:db8::1"),
             AuthError::kCertificate, "certificate does not match host 2001:db8::1");

  // A DNS-only certificate does not match an IP, even one its name resolves to.
  CertOptions dns_only = LeafOptions(PkiKeyType::kEcdsaP256);
  dns_only.ip_addresses.clear();
  const Pki pki2 = MakePki(dns_only);
  const Bytes payload2 = OneProof(MakeServerConfig(pki2), Binding(2));
  ExpectFail(RunClient(MakeClientConfig(pki2), Binding(2), payload2, kIp),
             AuthError::kCertificate, "certificate does not match host 192.0.2.10");

  // IPv6 SAN.
  CertOptions v6 = LeafOptions(PkiKeyType::kEd25519);
  v6.ip_addresses = {"2001:db8::1"};
  const Pki pki3 = MakePki(v6);
  const Bytes payload3 = OneProof(MakeServerConfig(pki3), Binding(3));
  EXPECT_EQ(RunClient(MakeClientConfig(pki3), Binding(3), payload3, "2001:db8::1").status,
            Status::kDone);
  ExpectFail(RunClient(MakeClientConfig(pki3), Binding(3), payload3, "2001:db8::2"),
             AuthError::kCertificate, "certificate does not match host 2001:db8::2");
}

TEST(X509CertificateTest, KeyUsageMustAllowSigning) {
  CertOptions no_sign = LeafOptions(PkiKeyType::kRsa2048);
  no_sign.digital_signature = false;  // keyEncipherment only
  const Pki pki = MakePki(no_sign);
  const Bytes payload = OneProof(MakeServerConfig(pki), Binding(1));
  ExpectFail(RunClient(MakeClientConfig(pki), Binding(1), payload),
             AuthError::kCertificate, "certificate key usage does not allow signing");
}

TEST(X509CertificateTest, ClientOnlyExtendedKeyUsageIsRefused) {
  CertOptions client_only = LeafOptions(PkiKeyType::kEcdsaP256);
  client_only.server_auth = false;
  client_only.client_auth = true;
  const Pki pki = MakePki(client_only);
  const Bytes payload = OneProof(MakeServerConfig(pki), Binding(1));
  ExpectFail(RunClient(MakeClientConfig(pki), Binding(1), payload),
             AuthError::kCertificate,
             "certificate is not valid for server authentication");
}

TEST(X509CertificateTest, IntermediateChain) {
  std::string error;
  std::optional<KeyAndCert> root = CreateRootCa(CaOptions("root CA"), &error);
  ASSERT_TRUE(root) << error;
  CertOptions mid_options = CaOptions("intermediate CA");
  mid_options.is_ca = true;
  std::optional<KeyAndCert> mid = IssueCertificate(*root, mid_options, &error);
  ASSERT_TRUE(mid) << error;
  std::optional<KeyAndCert> leaf =
      IssueCertificate(*mid, LeafOptions(PkiKeyType::kEd25519), &error);
  ASSERT_TRUE(leaf) << error;

  const std::vector<Bytes> anchors = {CertificateDer(root->cert.get())};
  ClientConfig client;
  client.trust = StoreFromDer(anchors, &error);
  client.verification_time = kT0;

  ServerConfig server;
  server.signer = MakeSigner(leaf->key);
  server.chain_der = {CertificateDer(leaf->cert.get()), CertificateDer(mid->cert.get())};
  const Bytes payload = OneProof(server, Binding(1));
  std::optional<PeerIdentity> peer;
  EXPECT_EQ(RunClient(client, Binding(1), payload, kHost, &peer).status, Status::kDone);
  EXPECT_EQ(peer->attributes.at("issuer"), "CN=intermediate CA");

  // Without the intermediate the chain does not reach the anchor.
  server.chain_der.pop_back();
  const Bytes payload2 = OneProof(server, Binding(2));
  ExpectFail(RunClient(client, Binding(2), payload2), AuthError::kCertificate,
             "certificate is not trusted");
}

// ---------------------------------------------------------------------------
// Mutual X.509 refusals.

class X509MutualTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_pki_ = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
    CertOptions alice = LeafOptions(PkiKeyType::kEcdsaP256);
    alice.common_name = "alice";
    alice.dns_names.clear();
    alice.ip_addresses.clear();
    alice.server_auth = false;
    alice.client_auth = true;
    client_pki_ = MakePki(alice, CaOptions("tcpcrypt client CA"));
    server_ = MakeServerConfig(server_pki_);
    server_.require_client_cert = true;
    server_.client_ca = client_pki_.trust;
    client_ = MakeClientConfig(server_pki_);
    client_.client_key = client_pki_.leaf.key;
    client_.client_chain_der = client_pki_.chain;
  }

  // Run returns the server's final step for a client using |client|; the
  // client's own step goes to |*client_step|.
  Step Run(const ServerConfig& server, const ClientConfig& client,
           Step* client_step = nullptr,
           const ChannelBinding& server_binding = Binding(5),
           const ChannelBinding& client_binding = Binding(5)) {
    Waker waker;
    std::unique_ptr<MechanismSide> s =
        ServerFactory(server)(ServerContext(server_binding, &waker));
    EXPECT_EQ(s->Start().status, Status::kContinue);
    EXPECT_TRUE(waker.WaitFor(1));
    const Step proof = s->Poll();
    EXPECT_EQ(proof.status, Status::kContinue);
    std::unique_ptr<MechanismSide> c =
        ClientFactory(client)(ClientContext(client_binding));
    (void)c->Start();
    const Step reply = c->OnPayload(*proof.send);
    if (client_step) *client_step = reply;
    if (reply.status != Status::kDone || !reply.send) return reply;
    Step final_step = s->OnPayload(*reply.send);
    if (final_step.status == Status::kFailed) {
      EXPECT_FALSE(s->peer().has_value());
    }
    return final_step;
  }

  Pki server_pki_, client_pki_;
  ServerConfig server_;
  ClientConfig client_;
};

TEST_F(X509MutualTest, RightClientCaIsAccepted) {
  EXPECT_EQ(Run(server_, client_).status, Status::kDone);
}

TEST_F(X509MutualTest, WrongClientCaIsRefused) {
  const Pki stranger = MakePki(LeafOptions(PkiKeyType::kEcdsaP256), CaOptions("x"));
  ServerConfig server = server_;
  server.client_ca = stranger.trust;
  ExpectFail(Run(server, client_), AuthError::kCertificate,
             "certificate is not trusted");
}

TEST_F(X509MutualTest, ExpiredClientCertificateIsRefused) {
  ServerConfig server = server_;
  server.verification_time = kT0 + 40 * kDay;
  ExpectFail(Run(server, client_), AuthError::kCertificate, "certificate has expired");
}

TEST_F(X509MutualTest, ServerOnlyCertificateIsNotAClientCertificate) {
  CertOptions server_only = LeafOptions(PkiKeyType::kEcdsaP256);
  const Pki wrong_use = MakePki(server_only, CaOptions("tcpcrypt client CA 2"));
  ServerConfig server = server_;
  server.client_ca = wrong_use.trust;
  ClientConfig client = client_;
  client.client_key = wrong_use.leaf.key;
  client.client_chain_der = wrong_use.chain;
  ExpectFail(Run(server, client), AuthError::kCertificate,
             "certificate is not valid for client authentication");
}

TEST_F(X509MutualTest, ClientWithoutCertificateRefusesLocally) {
  ClientConfig client = client_;
  client.client_key.reset();
  client.client_chain_der.clear();
  Step client_step;
  ExpectFail(Run(server_, client, &client_step), AuthError::kCertificate,
             "the server requires a client certificate and none is configured");
}

TEST_F(X509MutualTest, ClientCertificateForAnotherBindingIsRefused) {
  // The client signs its own binding (Y); the server's connection is X.
  // (The client first refuses the server's proof for X, so build the
  // ClientCertificate for Y directly and hand it to the X server.)
  Waker waker;
  std::unique_ptr<MechanismSide> s =
      ServerFactory(server_)(ServerContext(Binding(5), &waker));
  ASSERT_EQ(s->Start().status, Status::kContinue);
  ASSERT_TRUE(waker.WaitFor(1));
  ASSERT_EQ(s->Poll().status, Status::kContinue);
  Bytes message;
  std::string error;
  ASSERT_TRUE(EncodeClientCertificate(client_.client_key.get(), client_.client_chain_der,
                                      Binding(6), &message, &error));
  ExpectFail(s->OnPayload(message), AuthError::kBadProof,
             "client signature does not verify");
  // Sticky.
  ExpectFail(s->OnPayload(message), AuthError::kBadProof,
             "client signature does not verify");
  EXPECT_FALSE(s->peer().has_value());
}

TEST_F(X509MutualTest, TamperedAndMalformedClientCertificates) {
  Bytes good;
  std::string error;
  ASSERT_TRUE(EncodeClientCertificate(client_.client_key.get(), client_.client_chain_der,
                                      Binding(5), &good, &error));
  const auto server_result = [&](const Bytes& payload) {
    Waker waker;
    std::unique_ptr<MechanismSide> s =
        ServerFactory(server_)(ServerContext(Binding(5), &waker));
    EXPECT_EQ(s->Start().status, Status::kContinue);
    EXPECT_TRUE(waker.WaitFor(1));
    EXPECT_EQ(s->Poll().status, Status::kContinue);
    return s->OnPayload(payload);
  };
  EXPECT_EQ(server_result(good).status, Status::kDone);

  ClientCertificate parsed;
  ASSERT_TRUE(parsed.ParseFromArray(good.data(), static_cast<int>(good.size())));
  ClientCertificate bad_sig = parsed;
  (*bad_sig.mutable_signature())[10] ^= 0x01;
  ExpectFail(server_result(Serialize(bad_sig)), AuthError::kBadProof,
             "client signature does not verify");
  ClientCertificate wrong_scheme = parsed;
  wrong_scheme.set_signature_scheme(static_cast<uint32_t>(SignatureScheme::kEd25519));
  ExpectFail(server_result(Serialize(wrong_scheme)), AuthError::kBadProof,
             "signature scheme does not match the certificate key");
  ClientCertificate batch_scheme = parsed;
  batch_scheme.set_signature_scheme(
      static_cast<uint32_t>(SignatureScheme::kEcdsaSecp256r1Sha256Batch));
  ExpectFail(server_result(Serialize(batch_scheme)), AuthError::kMalformed, "");
  ClientCertificate no_chain = parsed;
  no_chain.clear_certificate_chain();
  ExpectFail(server_result(Serialize(no_chain)), AuthError::kMalformed,
             "certificate chain is empty");
  ClientCertificate no_sig = parsed;
  no_sig.clear_signature();
  ExpectFail(server_result(Serialize(no_sig)), AuthError::kMalformed, "");
  ExpectFail(server_result(Bytes{0xff, 0xff, 0xff}), AuthError::kMalformed,
             "ClientCertificate does not parse");
  ExpectFail(server_result(Bytes(kMaxClientCertificateSize + 1, 0)),
             AuthError::kMalformed, "");
  // An empty message parses but names no scheme.
  ExpectFail(server_result(Bytes{}), AuthError::kMalformed, "");
}

// ---------------------------------------------------------------------------
// Malformed payloads and wrong-state calls.

TEST(X509MalformedTest, ClientRefusesGarbage) {
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  const ClientConfig client = MakeClientConfig(pki);
  ExpectFail(RunClient(client, Binding(1), Bytes{}), AuthError::kMalformed, "");
  ExpectFail(RunClient(client, Binding(1), Bytes{0x0a, 0xff}), AuthError::kMalformed,
             "BatchProof does not parse");
  ExpectFail(RunClient(client, Binding(1), Bytes(kMaxBatchProofSize + 1, 0)),
             AuthError::kMalformed, "");
  Bytes random(4096);
  DeterministicRng rng(42);
  rng.Fill(random);
  EXPECT_EQ(RunClient(client, Binding(1), random).status, Status::kFailed);
}

TEST(X509StateTest, ClientWrongStateCalls) {
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  const Bytes payload = OneProof(MakeServerConfig(pki), Binding(1));
  MechanismFactory factory = ClientFactory(MakeClientConfig(pki));

  // A payload before Start: refused, and the failure sticks.
  std::unique_ptr<MechanismSide> early = factory(ClientContext(Binding(1)));
  ExpectFail(early->OnPayload(payload), AuthError::kUnexpectedMessage, "");
  ExpectFail(early->Start(), AuthError::kUnexpectedMessage, "");
  ExpectFail(early->OnPayload(payload), AuthError::kUnexpectedMessage, "");
  ExpectFail(early->Poll(), AuthError::kUnexpectedMessage, "");

  // Start twice.
  std::unique_ptr<MechanismSide> twice = factory(ClientContext(Binding(1)));
  EXPECT_EQ(twice->Start().status, Status::kContinue);
  EXPECT_EQ(twice->Poll().status, Status::kContinue);
  ExpectFail(twice->Start(), AuthError::kUnexpectedMessage,
             "x509 client side: Start called twice");

  // After Done every call fails, and the peer stays.
  std::unique_ptr<MechanismSide> done = factory(ClientContext(Binding(1)));
  (void)done->Start();
  ASSERT_EQ(done->OnPayload(payload).status, Status::kDone);
  ExpectFail(done->OnPayload(payload), AuthError::kUnexpectedMessage,
             "x509 client side is already done");
  ExpectFail(done->Start(), AuthError::kUnexpectedMessage, "");
  ExpectFail(done->Poll(), AuthError::kUnexpectedMessage, "");
  EXPECT_TRUE(done->peer().has_value());

  // After a failure, the saved error repeats.
  std::unique_ptr<MechanismSide> failed = factory(ClientContext(Binding(2)));
  (void)failed->Start();
  ExpectFail(failed->OnPayload(payload), AuthError::kBadProof,
             "audit path does not lead to the signed root");
  ExpectFail(failed->OnPayload(payload), AuthError::kBadProof,
             "audit path does not lead to the signed root");
  ExpectFail(failed->Poll(), AuthError::kBadProof,
             "audit path does not lead to the signed root");
  EXPECT_FALSE(failed->peer().has_value());
}

TEST(X509StateTest, ServerWrongStateCalls) {
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  const ServerConfig server = MakeServerConfig(pki, /*paused=*/true);
  MechanismFactory factory = ServerFactory(server);
  Waker waker;

  // Poll before Start says nothing.
  std::unique_ptr<MechanismSide> idle = factory(ServerContext(Binding(1), &waker));
  const Step poll = idle->Poll();
  EXPECT_EQ(poll.status, Status::kContinue);
  EXPECT_FALSE(poll.send.has_value());
  // A payload before Start (or while signing) is unexpected, and sticky.
  ExpectFail(idle->OnPayload(Bytes{1, 2, 3}), AuthError::kUnexpectedMessage, "");
  ExpectFail(idle->Start(), AuthError::kUnexpectedMessage, "");

  std::unique_ptr<MechanismSide> signing = factory(ServerContext(Binding(2), &waker));
  EXPECT_EQ(signing->Start().status, Status::kContinue);
  EXPECT_EQ(signing->Poll().status, Status::kContinue);  // signer paused
  ExpectFail(signing->Start(), AuthError::kUnexpectedMessage,
             "x509 server side: Start called twice");
  ExpectFail(signing->Poll(), AuthError::kUnexpectedMessage,
             "x509 server side: Start called twice");

  std::unique_ptr<MechanismSide> done = factory(ServerContext(Binding(3), &waker));
  EXPECT_EQ(done->Start().status, Status::kContinue);
  server.signer->Resume();
  ASSERT_TRUE(waker.WaitFor(2));
  const Step proof = done->Poll();
  ASSERT_EQ(proof.status, Status::kDone);
  // Without mutual X.509 a ClientCertificate is one message too many.
  Bytes message;
  std::string error;
  const Pki client_pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  ASSERT_TRUE(EncodeClientCertificate(client_pki.leaf.key.get(), client_pki.chain,
                                      Binding(3), &message, &error));
  ExpectFail(done->OnPayload(message), AuthError::kUnexpectedMessage,
             "x509 server side is already done");
  ExpectFail(done->Poll(), AuthError::kUnexpectedMessage, "");
  ExpectFail(done->Start(), AuthError::kUnexpectedMessage, "");
  EXPECT_FALSE(done->peer().has_value());
}

TEST(X509StateTest, WakeIsNotCalledAfterTheSideIsGone) {
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  const ServerConfig server = MakeServerConfig(pki, /*paused=*/true);
  Waker waker;
  {
    std::unique_ptr<MechanismSide> side =
        ServerFactory(server)(ServerContext(Binding(1), &waker));
    EXPECT_EQ(side->Start().status, Status::kContinue);
  }
  std::unique_ptr<MechanismSide> alive =
      ServerFactory(server)(ServerContext(Binding(2), &waker));
  EXPECT_EQ(alive->Start().status, Status::kContinue);
  server.signer->Resume();
  ASSERT_TRUE(waker.WaitFor(1));
  EXPECT_EQ(alive->Poll().status, Status::kDone);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(waker.count(), 1);  // only the live side was woken
  EXPECT_EQ(server.signer->leaves_signed(), 2u);
}

// ---------------------------------------------------------------------------
// Configuration errors.

TEST(X509ConfigTest, BadConfigurationsFailStart) {
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  const Pki other = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  Waker waker;
  std::string error;

  ServerConfig mismatched = MakeServerConfig(pki);
  mismatched.chain_der = other.chain;  // a certificate for another key
  EXPECT_FALSE(CheckServerConfig(mismatched, &error));
  ExpectFail(ServerFactory(mismatched)(ServerContext(Binding(1), &waker))->Start(),
             AuthError::kInternal,
             "x509 server: certificate does not match the signing key");

  ServerConfig no_signer = MakeServerConfig(pki);
  no_signer.signer.reset();
  ExpectFail(ServerFactory(no_signer)(ServerContext(Binding(1), &waker))->Start(),
             AuthError::kInternal, "x509 server: no batch signer configured");

  ServerConfig no_ca = MakeServerConfig(pki);
  no_ca.require_client_cert = true;
  EXPECT_FALSE(CheckServerConfig(no_ca, &error));
  ExpectFail(ServerFactory(no_ca)(ServerContext(Binding(1), &waker))->Start(),
             AuthError::kInternal, "");

  ServerConfig empty_chain = MakeServerConfig(pki);
  empty_chain.chain_der.clear();
  EXPECT_FALSE(CheckServerConfig(empty_chain, &error));
  EXPECT_EQ(error, "x509 server: certificate chain is empty");

  ClientConfig no_trust;
  ExpectFail(ClientFactory(no_trust)(ClientContext(Binding(1)))->Start(),
             AuthError::kInternal, "x509 client: no trust anchors configured");

  ClientConfig key_mismatch = MakeClientConfig(pki);
  key_mismatch.client_key = other.leaf.key;
  key_mismatch.client_chain_der = pki.chain;
  EXPECT_FALSE(CheckClientConfig(key_mismatch, &error));
  EXPECT_EQ(error, "x509 client: certificate does not match the signing key");

  EXPECT_TRUE(CheckServerConfig(MakeServerConfig(pki), &error));
  EXPECT_TRUE(CheckClientConfig(MakeClientConfig(pki), &error));
}

// ---------------------------------------------------------------------------
// BatchSigner on its own.

TEST(BatchSignerTest, RefusesUnsupportedKeysAndOptions) {
  std::string error;
  SharedEvpPkey p384 = ShareKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  ASSERT_TRUE(p384);
  EXPECT_EQ(BatchSigner::Create(p384, &error), nullptr);
  EXPECT_NE(error.find("unsupported signing key"), std::string::npos);
  SharedEvpPkey rsa1024 =
      ShareKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024}));
  EXPECT_EQ(BatchSigner::Create(rsa1024, &error), nullptr);
  EXPECT_EQ(BatchSigner::Create(nullptr, &error), nullptr);
  BatchSigner::Options zero;
  zero.max_batch_size = 0;
  EXPECT_EQ(BatchSigner::Create(GenerateKey(PkiKeyType::kEd25519), zero, &error),
            nullptr);
  BatchSigner::Options huge;
  huge.max_batch_size = kMaxBatchSize + 1;
  EXPECT_EQ(BatchSigner::Create(GenerateKey(PkiKeyType::kEd25519), huge, &error),
            nullptr);
}

TEST(BatchSignerTest, ShutdownFailsPendingRequests) {
  std::shared_ptr<BatchSigner> signer =
      MakeSigner(GenerateKey(PkiKeyType::kEcdsaP256), /*paused=*/true);
  std::mutex mu;
  std::vector<BatchSignResult> results;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(signer->Enqueue(Binding(i).Encode(), [&](BatchSignResult r) {
      std::lock_guard<std::mutex> lock(mu);
      results.push_back(std::move(r));
    }));
  }
  // Refused inputs never call back.
  EXPECT_FALSE(signer->Enqueue({}, [](BatchSignResult) { ADD_FAILURE(); }));
  EXPECT_FALSE(signer->Enqueue(Bytes(kMaxLeafSize + 1, 1),
                               [](BatchSignResult) { ADD_FAILURE(); }));
  signer.reset();  // joins the thread, fails what is queued
  ASSERT_EQ(results.size(), 3u);
  for (const BatchSignResult& r : results) {
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, "batch signer shut down");
  }
}

TEST(BatchSignerTest, CallbacksRunForEveryLeafWithConsistentProofs) {
  for (PkiKeyType type :
       {PkiKeyType::kEcdsaP256, PkiKeyType::kEd25519, PkiKeyType::kRsa2048}) {
    SharedEvpPkey key = GenerateKey(type);
    std::shared_ptr<BatchSigner> signer = MakeSigner(key, /*paused=*/true);
    std::mutex mu;
    std::condition_variable cv;
    std::vector<BatchSignResult> results(7);
    int done = 0;
    for (uint32_t i = 0; i < 7; ++i) {
      ASSERT_TRUE(signer->Enqueue(Binding(i).Encode(), [&, i](BatchSignResult r) {
        std::lock_guard<std::mutex> lock(mu);
        results[i] = std::move(r);
        ++done;
        cv.notify_all();
      }));
    }
    signer->Resume();
    {
      std::unique_lock<std::mutex> lock(mu);
      ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return done == 7; }));
    }
    const KeyAlgorithm alg = *KeyAlgorithmOf(key.get());
    for (uint32_t i = 0; i < 7; ++i) {
      const BatchSignResult& r = results[i];
      ASSERT_TRUE(r.ok) << r.error;
      EXPECT_EQ(r.index, i);  // queue order is leaf order
      EXPECT_EQ(r.batch_size, 7u);
      EXPECT_EQ(r.root, results[0].root);
      EXPECT_EQ(r.root_signature, results[0].root_signature);
      const std::vector<ByteSpan> path = PathSpans(r.path);
      EXPECT_TRUE(VerifyMerklePath(MerkleHashForScheme(r.scheme), Binding(i).Encode(),
                                   r.blinder, r.index, path, 7, r.root));
      EXPECT_TRUE(VerifyWithKey(key.get(), alg, BatchSignedContent(r.scheme, 7, r.root),
                                r.root_signature));
    }
    EXPECT_EQ(signer->batches_signed(), 1u);
  }
}

// ---------------------------------------------------------------------------
// Signed content layout and domain separation.

TEST(BatchSignatureTest, SignedContentLayout) {
  const Bytes root(32, 0xAB);
  const Bytes content =
      BatchSignedContent(SignatureScheme::kEcdsaSecp256r1Sha256Batch, 0x01020304, root);
  const std::string label = "tcpcrypt x509 batch signature v1";
  ASSERT_EQ(content.size(), 64 + label.size() + 1 + 2 + 4 + 32);
  for (size_t i = 0; i < 64; ++i) EXPECT_EQ(content[i], 0x20);
  EXPECT_EQ(std::string(content.begin() + 64, content.begin() + 64 + label.size()), label);
  size_t at = 64 + label.size();
  EXPECT_EQ(content[at++], 0x00);
  EXPECT_EQ(content[at++], 0xFE);
  EXPECT_EQ(content[at++], 0x01);
  EXPECT_EQ(content[at++], 0x01);
  EXPECT_EQ(content[at++], 0x02);
  EXPECT_EQ(content[at++], 0x03);
  EXPECT_EQ(content[at++], 0x04);
  EXPECT_EQ(Bytes(content.begin() + static_cast<long>(at), content.end()), root);

  const Bytes client = ClientSignedContent(Binding(1).Encode());
  const std::string client_label = "tcpcrypt x509 client signature v1";
  EXPECT_EQ(std::string(client.begin(), client.begin() + client_label.size()),
            client_label);
  EXPECT_NE(client[0], content[0]);
}

TEST(BatchSignatureTest, SchemesAndHashes) {
  EXPECT_EQ(MerkleHashForScheme(SignatureScheme::kEcdsaSecp256r1Sha256Batch),
            MerkleHash::kSha256);
  EXPECT_EQ(MerkleHashForScheme(SignatureScheme::kRsaPssRsaeSha256Batch),
            MerkleHash::kSha256);
  EXPECT_EQ(MerkleHashForScheme(SignatureScheme::kEd25519Batch), MerkleHash::kSha512);
  EXPECT_FALSE(SignatureSchemeFromWire(0x0401).has_value());  // PKCS#1 v1.5
  EXPECT_TRUE(IsBatchScheme(*SignatureSchemeFromWire(0xFE07)));
  EXPECT_FALSE(IsBatchScheme(*SignatureSchemeFromWire(0x0804)));
}

TEST(BatchSignatureTest, RsaUsesPssWithDigestLengthSalt) {
  SharedEvpPkey key = GenerateKey(PkiKeyType::kRsa2048);
  const Bytes msg = {1, 2, 3};
  Bytes sig;
  ASSERT_TRUE(SignWithKey(key.get(), KeyAlgorithm::kRsa, msg, &sig));
  EXPECT_EQ(sig.size(), 256u);
  // Check independently that it is RSASSA-PSS/SHA-256/salt 32.
  UniqueEvpMdCtx ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  ASSERT_EQ(EVP_DigestVerifyInit(ctx.get(), &pctx, EVP_sha256(), nullptr, key.get()), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32), 1);
  EXPECT_EQ(EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), msg.data(), msg.size()), 1);
  // A PKCS#1 v1.5 signature is not accepted.
  UniqueEvpMdCtx sctx(EVP_MD_CTX_new());
  ASSERT_EQ(EVP_DigestSignInit(sctx.get(), nullptr, EVP_sha256(), nullptr, key.get()), 1);
  size_t len = 0;
  ASSERT_EQ(EVP_DigestSign(sctx.get(), nullptr, &len, msg.data(), msg.size()), 1);
  Bytes v15(len);
  ASSERT_EQ(EVP_DigestSign(sctx.get(), v15.data(), &len, msg.data(), msg.size()), 1);
  EXPECT_FALSE(VerifyWithKey(key.get(), KeyAlgorithm::kRsa, msg, v15));
  EXPECT_TRUE(VerifyWithKey(key.get(), KeyAlgorithm::kRsa, msg, sig));
}

// ---------------------------------------------------------------------------
// PEM files and the test PKI writer.

class X509PemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("x509_pem_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

TEST_F(X509PemTest, WrittenPkiAuthenticatesEndToEnd) {
  for (PkiKeyType type :
       {PkiKeyType::kEcdsaP256, PkiKeyType::kEd25519, PkiKeyType::kRsa2048}) {
    std::string error;
    ASSERT_TRUE(WriteServerPki(dir_.string(), "pem.example", type, 30, &error)) << error;
    EXPECT_EQ(std::filesystem::status(Path("server.key")).permissions() &
                  std::filesystem::perms::others_read,
              std::filesystem::perms::none);

    ServerConfig server;
    ASSERT_TRUE(LoadCertificateChainPem(Path("server.pem"), &server.chain_der, &error))
        << error;
    SharedEvpPkey key = LoadPrivateKeyPem(Path("server.key"), &error);
    ASSERT_TRUE(key) << error;
    server.signer = MakeSigner(key);
    ClientConfig client;
    client.trust = LoadCaBundlePem(Path("ca.pem"), &error);
    ASSERT_TRUE(client.trust) << error;

    const Bytes payload = OneProof(server, Binding(1));
    std::optional<PeerIdentity> peer;
    EXPECT_EQ(RunClient(client, Binding(1), payload, "pem.example", &peer).status,
              Status::kDone);
    EXPECT_EQ(peer->attributes.at("subject"), "CN=pem.example");
  }
  // An IP literal becomes an IP SAN.
  std::string error;
  ASSERT_TRUE(WriteServerPki(dir_.string(), "127.0.0.1", PkiKeyType::kEcdsaP256, 30,
                             &error));
  ServerConfig server;
  ASSERT_TRUE(LoadCertificateChainPem(Path("server.pem"), &server.chain_der, &error));
  server.signer = MakeSigner(LoadPrivateKeyPem(Path("server.key"), &error));
  ClientConfig client;
  client.trust = LoadCaBundlePem(Path("ca.pem"), &error);
  EXPECT_EQ(RunClient(client, Binding(1), OneProof(server, Binding(1)), "127.0.0.1").status,
            Status::kDone);
}

TEST_F(X509PemTest, ClearErrors) {
  std::string error;
  std::vector<Bytes> chain;
  EXPECT_FALSE(LoadCertificateChainPem(Path("missing.pem"), &chain, &error));
  EXPECT_EQ(error, "cannot open " + Path("missing.pem") + ": No such file or directory");

  ASSERT_TRUE(WriteFile(Path("empty.pem"), std::string_view("hello\n"), 0644, &error));
  EXPECT_FALSE(LoadCertificateChainPem(Path("empty.pem"), &chain, &error));
  EXPECT_EQ(error, Path("empty.pem") + ": no certificate found");
  EXPECT_EQ(LoadCaBundlePem(Path("empty.pem"), &error), nullptr);
  EXPECT_EQ(LoadPrivateKeyPem(Path("empty.pem"), &error), nullptr);
  EXPECT_EQ(error, Path("empty.pem") + ": the private key is encrypted or does not parse");

  ASSERT_TRUE(WriteFile(Path("bad.pem"),
                        std::string_view("-----BEGIN CERTIFICATE-----\nAAAA\n"
                                         "-----END CERTIFICATE-----\n"),
                        0644, &error));
  EXPECT_FALSE(LoadCertificateChainPem(Path("bad.pem"), &chain, &error));
  EXPECT_EQ(error, Path("bad.pem") + ": certificate 1 does not parse");

  SharedEvpPkey p384 = ShareKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  const SecretBuffer pem = PrivateKeyPem(p384.get());
  ASSERT_TRUE(WriteFile(Path("p384.key"), pem.span(), 0600, &error));
  EXPECT_EQ(LoadPrivateKeyPem(Path("p384.key"), &error), nullptr);
  EXPECT_EQ(error, Path("p384.key") +
                       ": unsupported key type (need ECDSA P-256, Ed25519 or RSA "
                       "2048-8192)");

  // In-memory forms.
  const Pki pki = MakePki(LeafOptions(PkiKeyType::kEcdsaP256));
  const std::string two = CertificatePem(pki.leaf.cert.get()) +
                          CertificatePem(pki.ca.cert.get());
  ASSERT_TRUE(ParseCertificateChainPem(two, &chain, &error)) << error;
  EXPECT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[0], pki.chain[0]);
  EXPECT_TRUE(ParseCaBundlePem(two, &error));
  const SecretBuffer key_pem = PrivateKeyPem(pki.leaf.key.get());
  const SharedEvpPkey key = ParsePrivateKeyPem(
      std::string_view(reinterpret_cast<const char*>(key_pem.data()), key_pem.size()),
      &error);
  ASSERT_TRUE(key) << error;
  EXPECT_EQ(EVP_PKEY_eq(key.get(), pki.leaf.key.get()), 1);
}

TEST(TestPkiTest, RefusesConfigInjectionInNames) {
  std::string error;
  std::optional<KeyAndCert> ca = CreateRootCa(CaOptions(), &error);
  ASSERT_TRUE(ca);
  CertOptions evil = LeafOptions(PkiKeyType::kEcdsaP256);
  evil.dns_names = {"a.example,DNS:b.example"};
  EXPECT_FALSE(IssueCertificate(*ca, evil, &error));
  EXPECT_NE(error.find("bad DNS name"), std::string::npos);
}

}  // namespace
}  // namespace tcpcrypt::auth::x509
