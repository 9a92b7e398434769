// fuzz_x509_messages.cc: libFuzzer target for the x509_batch payloads
// (auth/x509_batch/x509.proto) and the Merkle verifier under them.
//
// Input: byte 0 picks the target, the rest is its input.
//   0 client side awaiting a BatchProof (no client certificate configured)
//   1 client side awaiting a BatchProof, with a client certificate
//   2 the server's check of a ClientCertificate (VerifyClientCertificate)
//   3 Merkle tree property check: build a tree of 1..64 leaves, every proof
//     verifies, and one bit flipped anywhere (chosen by the input) fails
//   4 RecomputeMerkleRoot on arbitrary fields carved from the input
// Properties: no crash; a failed step names an error and sends nothing; a
// finished client names the expected host and, if it answers, answers with
// a ClientCertificate the server accepts; after Done or a failure every call
// fails.
//
// The PKI is fixed (x509_fuzz_pki.h) and so is the verification time, so
// the seed corpus holds proofs that verify for the fixed binding. Regenerate
// the seeds with:
//   TCPCRYPT_X509_FUZZ_WRITE_SEEDS=tests/fuzz/corpus/x509_messages \
//     build-fuzz/tests/fuzz/fuzz_x509_messages
#include <array>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "auth/x509_batch/batch_proof.h"
#include "auth/x509_batch/batch_signer.h"
#include "auth/x509_batch/client_certificate.h"
#include "auth/x509_batch/merkle_tree.h"
#include "auth/x509_batch/pem.h"
#include "auth/x509_batch/test_pki.h"
#include "auth/x509_batch/x509_batch.h"
#include "core_transport/engine/rng.h"
#include "tests/fuzz/x509_fuzz_pki.h"

namespace tcpcrypt::auth::x509 {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr int64_t kNow = 1767225600;  // 2026-01-01, inside the fixed PKI
constexpr char kHost[] = "example.com";

void Check(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "fuzz_x509_messages: property violated: %s\n", what);
    std::abort();
  }
}

ChannelBinding Binding(uint8_t salt = 0) {
  std::array<uint8_t, 33> sid{};
  for (size_t i = 0; i < sid.size(); ++i) {
    sid[i] = static_cast<uint8_t>(i * 5 + 1 + salt);
  }
  return ChannelBinding::SessionId(sid);
}

struct Fixture {
  ClientConfig plain_client;
  ClientConfig mutual_client;
  SharedX509Store client_ca;
  SharedEvpPkey server_key;
  std::vector<Bytes> server_chain;
};

const Fixture& GetFixture() {
  static const Fixture* fixture = [] {
    auto* f = new Fixture();
    std::string error;
    SharedX509Store trust = ParseCaBundlePem(fuzz::kFuzzCaPem, &error);
    f->client_ca = ParseCaBundlePem(fuzz::kFuzzClientCaPem, &error);
    f->server_key = ParsePrivateKeyPem(fuzz::kFuzzServerKeyPem, &error);
    Check(ParseCertificateChainPem(fuzz::kFuzzServerCertPem, &f->server_chain,
                                   &error),
          "server chain loads");
    f->plain_client.trust = trust;
    f->plain_client.verification_time = kNow;
    f->mutual_client = f->plain_client;
    f->mutual_client.client_key = ParsePrivateKeyPem(fuzz::kFuzzClientKeyPem, &error);
    Check(ParseCertificateChainPem(fuzz::kFuzzClientCertPem,
                                   &f->mutual_client.client_chain_der, &error),
          "client chain loads");
    Check(trust && f->client_ca && f->server_key && f->mutual_client.client_key,
          "fixed PKI loads");
    std::string why;
    Check(CheckClientConfig(f->mutual_client, &why), "client config is valid");
    return f;
  }();
  return *fixture;
}

void FuzzClient(ByteSpan payload, bool mutual) {
  const Fixture& f = GetFixture();
  static const MechanismFactory plain = ClientFactory(f.plain_client);
  static const MechanismFactory with_cert = ClientFactory(f.mutual_client);
  Context ctx;
  ctx.binding = Binding();
  ctx.realm = kHost;
  std::unique_ptr<MechanismSide> side = (mutual ? with_cert : plain)(ctx);
  Check(side->Start().status == Step::Status::kContinue, "Start continues");
  const Step step = side->OnPayload(payload);
  switch (step.status) {
    case Step::Status::kFailed:
      Check(step.error != AuthError::kNone, "a failure names an error");
      Check(!step.send.has_value(), "a failure sends nothing");
      Check(!side->peer().has_value(), "a failed side has no peer");
      break;
    case Step::Status::kDone: {
      Check(side->peer().has_value() && side->peer()->name == kHost,
            "a finished client names the host");
      if (step.send) {
        Check(mutual, "only a client with a certificate answers");
        PeerIdentity client;
        const CheckResult r = VerifyClientCertificate(
            *step.send, ctx.binding, f.client_ca.get(), kNow, &client);
        Check(r.ok(), "the client's answer verifies at the server");
        Check(client.name == "alice", "the client identity is alice");
      }
      break;
    }
    case Step::Status::kContinue:
      Check(false, "a client never continues after the proof");
      break;
  }
  const Step again = side->OnPayload(payload);
  Check(again.status == Step::Status::kFailed, "a second payload is refused");
}

void FuzzClientCertificate(ByteSpan payload) {
  const Fixture& f = GetFixture();
  PeerIdentity client;
  const CheckResult r =
      VerifyClientCertificate(payload, Binding(), f.client_ca.get(), kNow, &client);
  if (r.ok()) {
    Check(client.name == "alice", "only alice's certificate chains");
  } else {
    Check(!r.detail.empty(), "a failure has a detail");
  }
}

// Reader carves fields from the input, yielding zeros past its end.
class Carver {
 public:
  explicit Carver(ByteSpan in) : in_(in) {}
  uint8_t U8() { return pos_ < in_.size() ? in_[pos_++] : 0; }
  uint32_t U32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | U8();
    return v;
  }
  Bytes Take(size_t n) {
    Bytes out;
    for (size_t i = 0; i < n; ++i) out.push_back(U8());
    return out;
  }

 private:
  ByteSpan in_;
  size_t pos_ = 0;
};

void FuzzMerkleProperties(ByteSpan input) {
  Carver c(input);
  const MerkleHash hash = (c.U8() & 1) ? MerkleHash::kSha512 : MerkleHash::kSha256;
  const size_t n = 1 + c.U8() % 64;
  std::vector<Bytes> leaves;
  for (size_t i = 0; i < n; ++i) leaves.push_back(c.Take(1 + c.U8() % 8));
  // Identical leaves are allowed (two connections never share a binding,
  // but the tree must not care).
  std::vector<ByteSpan> spans(leaves.begin(), leaves.end());
  DeterministicRng rng(c.U32());
  MerkleTree tree;
  Check(MerkleTree::Build(hash, spans, rng, &tree), "tree builds");
  const Bytes root(tree.root().begin(), tree.root().end());
  const size_t target = c.U8() % n;
  for (size_t i = 0; i < n; ++i) {
    MerkleProof p;
    Check(tree.Proof(i, &p), "proof exists");
    Check(p.path.size() == MerkleAuditPathLength(n), "path length");
    const std::vector<ByteSpan> path = PathSpans(p.path);
    Check(VerifyMerklePath(hash, leaves[i], p.blinder, i, path, n, root),
          "every proof verifies");
  }
  // Flip one bit in one element of the target's proof.
  MerkleProof p;
  Check(tree.Proof(target, &p), "target proof");
  Bytes leaf = leaves[target];
  Bytes r = root;
  uint64_t index = target;
  const uint8_t what = c.U8() % 5;
  const uint32_t bit = c.U32();
  switch (what) {
    case 0:
      leaf[(bit / 8) % leaf.size()] ^= static_cast<uint8_t>(1u << (bit % 8));
      break;
    case 1:
      p.blinder[(bit / 8) % p.blinder.size()] ^= static_cast<uint8_t>(1u << (bit % 8));
      break;
    case 2:
      if (p.path.empty()) return;
      {
        Bytes& node = p.path[(bit >> 16) % p.path.size()];
        node[((bit & 0xffff) / 8) % node.size()] ^= static_cast<uint8_t>(1u << (bit % 8));
      }
      break;
    case 3:
      r[(bit / 8) % r.size()] ^= static_cast<uint8_t>(1u << (bit % 8));
      break;
    default:
      index ^= uint64_t{1} << (bit % 32);
      break;
  }
  const std::vector<ByteSpan> path = PathSpans(p.path);
  Check(!VerifyMerklePath(hash, leaf, p.blinder, index, path, n, r),
        "a flipped bit never verifies");
}

void FuzzRecompute(ByteSpan input) {
  Carver c(input);
  const MerkleHash hash = (c.U8() & 1) ? MerkleHash::kSha512 : MerkleHash::kSha256;
  const size_t hl = MerkleHashLen(hash);
  const uint64_t index = c.U32();
  const uint64_t n = c.U32();
  const size_t count = c.U8() % 40;
  const Bytes leaf = c.Take(c.U8());
  const Bytes blinder = c.Take(c.U8() & 1 ? hl : c.U8() % 80);
  std::vector<Bytes> nodes;
  for (size_t i = 0; i < count; ++i) nodes.push_back(c.Take(c.U8() & 1 ? hl : c.U8() % 80));
  const std::vector<ByteSpan> path = PathSpans(nodes);
  Bytes out;
  if (RecomputeMerkleRoot(hash, leaf, blinder, index, path, n, &out)) {
    Check(out.size() == hl, "a root has Hash.length bytes");
    Check(index < n && path.size() == MerkleAuditPathLength(n),
          "only consistent proofs compute a root");
  } else {
    Check(out.empty(), "a refused proof leaves the output alone");
  }
}

// ---------------------------------------------------------------------------
// Seed writer (TCPCRYPT_X509_FUZZ_WRITE_SEEDS=dir).

std::vector<Bytes> SignedProofs(const ServerConfig& config,
                                const std::vector<ChannelBinding>& bindings) {
  std::mutex mu;
  std::condition_variable cv;
  int woken = 0;
  const MechanismFactory factory = ServerFactory(config);
  std::vector<std::unique_ptr<MechanismSide>> sides;
  config.signer->Pause();
  for (const ChannelBinding& b : bindings) {
    Context ctx;
    ctx.binding = b;
    ctx.wake = [&] {
      std::lock_guard<std::mutex> lock(mu);
      ++woken;
      cv.notify_all();
    };
    sides.push_back(factory(ctx));
    Check(sides.back()->Start().status == Step::Status::kContinue, "seed Start");
  }
  config.signer->Resume();
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return woken == static_cast<int>(bindings.size()); });
  }
  std::vector<Bytes> out;
  for (auto& side : sides) {
    const Step s = side->Poll();
    Check(s.send.has_value(), "seed proof");
    out.push_back(*s.send);
  }
  return out;
}

void WriteSeed(const std::string& dir, const std::string& name, uint8_t mode,
               const Bytes& body) {
  Bytes data{mode};
  data.insert(data.end(), body.begin(), body.end());
  std::string error;
  Check(WriteFile(dir + "/" + name, ByteSpan(data), 0644, &error), "write seed");
}

void WriteSeeds(const std::string& dir) {
  const Fixture& f = GetFixture();
  std::string error;
  ServerConfig server;
  server.signer = BatchSigner::Create(f.server_key, &error);
  server.chain_der = f.server_chain;
  const Bytes single = SignedProofs(server, {Binding()})[0];
  const Bytes in_batch =
      SignedProofs(server, {Binding(1), Binding(2), Binding(3), Binding(), Binding(4)})[3];
  ServerConfig mutual = server;
  mutual.require_client_cert = true;
  mutual.client_ca = f.client_ca;
  const Bytes asks = SignedProofs(mutual, {Binding(9), Binding()})[1];
  // Self-check: the seeds verify.
  for (const Bytes* proof : {&single, &in_batch, &asks}) {
    ServerProof out;
    Check(VerifyBatchProof(*proof, Binding(), f.plain_client.trust.get(), kHost,
                           kNow, &out)
              .ok(),
          "seed proof verifies");
  }
  Bytes client_cert;
  Check(EncodeClientCertificate(f.mutual_client.client_key.get(),
                                f.mutual_client.client_chain_der, Binding(),
                                &client_cert, &error),
        "seed client certificate");

  WriteSeed(dir, "client_single_proof", 0, single);
  WriteSeed(dir, "client_batch5_index3", 0, in_batch);
  WriteSeed(dir, "client_proof_for_other_binding", 0,
            SignedProofs(server, {Binding(7)})[0]);
  WriteSeed(dir, "mutual_client_proof_asks_cert", 1, asks);
  WriteSeed(dir, "mutual_client_single_proof", 1, single);
  WriteSeed(dir, "server_client_certificate", 2, client_cert);
  WriteSeed(dir, "garbage_client", 0, Bytes{0x0a, 0x03, 0x30, 0x82, 0xff});
  WriteSeed(dir, "garbage_client_certificate", 2, Bytes{0x1a, 0x00, 0x10, 0x83, 0x08});
  Bytes merkle{1, 33};
  for (int i = 0; i < 200; ++i) merkle.push_back(static_cast<uint8_t>(i * 37));
  WriteSeed(dir, "merkle_33_leaves", 3, merkle);
  Bytes recompute{0, 0, 0, 0, 3, 0, 0, 0, 5, 3, 4, 't', 'e', 's', 't', 1};
  for (int i = 0; i < 120; ++i) recompute.push_back(static_cast<uint8_t>(i | 1));
  WriteSeed(dir, "recompute_n5", 4, recompute);
  std::fprintf(stderr, "fuzz_x509_messages: seeds written to %s\n", dir.c_str());
}

}  // namespace
}  // namespace tcpcrypt::auth::x509

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tcpcrypt::auth::x509::GetFixture();
  if (const char* dir = std::getenv("TCPCRYPT_X509_FUZZ_WRITE_SEEDS")) {
    tcpcrypt::auth::x509::WriteSeeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tcpcrypt::auth::x509;
  if (size == 0) return 0;
  const ByteSpan rest(data + 1, size - 1);
  switch (data[0] % 5) {
    case 0: FuzzClient(rest, /*mutual=*/false); break;
    case 1: FuzzClient(rest, /*mutual=*/true); break;
    case 2: FuzzClientCertificate(rest); break;
    case 3: FuzzMerkleProperties(rest); break;
    default: FuzzRecompute(rest); break;
  }
  return 0;
}
