// Tests for auth/x509_batch/merkle_tree.h: the draft-ietf-tls-batch-signing-00
// §3 tree, against an independent hand computation of the draft's figure and
// adversarially (every bit of every proof element flipped).
#include "auth/x509_batch/merkle_tree.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core_transport/engine/rng.h"

namespace tcpcrypt::auth::x509 {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes Digest(MerkleHash hash, const Bytes& data) {
  Bytes out(MerkleHashLen(hash));
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), out.data(), &len,
                       hash == MerkleHash::kSha256 ? EVP_sha256() : EVP_sha512(),
                       nullptr),
            1);
  return out;
}

// The draft's two functions, written out independently of merkle_tree.cc.
Bytes HashLeaf(MerkleHash h, const Bytes& msg) {
  Bytes in{0x00};
  in.insert(in.end(), msg.begin(), msg.end());
  return Digest(h, in);
}
Bytes HashNode(MerkleHash h, const Bytes& l, const Bytes& r) {
  Bytes in{0x01};
  in.insert(in.end(), l.begin(), l.end());
  in.insert(in.end(), r.begin(), r.end());
  return Digest(h, in);
}

std::vector<Bytes> MakeMessages(size_t n) {
  std::vector<Bytes> msgs;
  for (size_t i = 0; i < n; ++i) {
    const std::string s = "tcpcrypt-auth-binding-v1 session " + std::to_string(i);
    msgs.emplace_back(s.begin(), s.end());
  }
  return msgs;
}

std::vector<ByteSpan> Spans(const std::vector<Bytes>& v) {
  return {v.begin(), v.end()};
}

MerkleTree BuildTree(MerkleHash hash, const std::vector<Bytes>& msgs,
                     uint64_t seed) {
  DeterministicRng rng(seed);
  MerkleTree tree;
  const std::vector<ByteSpan> leaves = Spans(msgs);
  EXPECT_TRUE(MerkleTree::Build(hash, leaves, rng, &tree));
  return tree;
}

class MerkleTreeTest : public ::testing::TestWithParam<MerkleHash> {};

INSTANTIATE_TEST_SUITE_P(Hashes, MerkleTreeTest,
                         ::testing::Values(MerkleHash::kSha256,
                                           MerkleHash::kSha512),
                         [](const auto& param_info) {
                           return param_info.param == MerkleHash::kSha256
                                      ? std::string("Sha256")
                                      : std::string("Sha512");
                         });

TEST(MerkleTreeBasics, AuditPathLengthIsCeilLog2) {
  EXPECT_EQ(MerkleAuditPathLength(1), 0u);
  EXPECT_EQ(MerkleAuditPathLength(2), 1u);
  EXPECT_EQ(MerkleAuditPathLength(3), 2u);
  EXPECT_EQ(MerkleAuditPathLength(4), 2u);
  EXPECT_EQ(MerkleAuditPathLength(5), 3u);
  EXPECT_EQ(MerkleAuditPathLength(128), 7u);
  EXPECT_EQ(MerkleAuditPathLength(129), 8u);
  EXPECT_EQ(MerkleAuditPathLength(uint64_t{1} << 20), 20u);
  EXPECT_EQ(MerkleAuditPathLength(kMaxMerkleLeaves), 31u);
  EXPECT_EQ(MerkleHashLen(MerkleHash::kSha256), 32u);
  EXPECT_EQ(MerkleHashLen(MerkleHash::kSha512), 64u);
}

// draft §3.1's example: three messages, l = 4 levels, t13 = t10 (padding
// with the first element), and the path of m2 is t05, t13, t20.
TEST_P(MerkleTreeTest, DraftFigureForThreeMessages) {
  const MerkleHash h = GetParam();
  const size_t hl = MerkleHashLen(h);
  const std::vector<Bytes> m = MakeMessages(3);
  Bytes blinders(3 * hl);
  for (size_t i = 0; i < blinders.size(); ++i) blinders[i] = static_cast<uint8_t>(i * 7 + 1);
  const Bytes b0(blinders.begin(), blinders.begin() + hl);
  const Bytes b1(blinders.begin() + hl, blinders.begin() + 2 * hl);
  const Bytes b2(blinders.begin() + 2 * hl, blinders.end());

  const Bytes t00 = HashLeaf(h, m[0]), t01 = b0;
  const Bytes t02 = HashLeaf(h, m[1]), t03 = b1;
  const Bytes t04 = HashLeaf(h, m[2]), t05 = b2;
  const Bytes t10 = HashNode(h, t00, t01);
  const Bytes t11 = HashNode(h, t02, t03);
  const Bytes t12 = HashNode(h, t04, t05);
  const Bytes t13 = t10;  // "pad it ... with a copy of its first element"
  const Bytes t20 = HashNode(h, t10, t11);
  const Bytes t21 = HashNode(h, t12, t13);
  const Bytes t30 = HashNode(h, t20, t21);

  MerkleTree tree;
  const std::vector<ByteSpan> leaves = Spans(m);
  ASSERT_TRUE(MerkleTree::BuildWithBlinders(h, leaves, blinders, &tree));
  EXPECT_EQ(tree.size(), 3u);
  EXPECT_EQ(Bytes(tree.root().begin(), tree.root().end()), t30);

  MerkleProof p;
  ASSERT_TRUE(tree.Proof(2, &p));
  EXPECT_EQ(p.index, 2u);
  EXPECT_EQ(p.blinder, t05);
  ASSERT_EQ(p.path.size(), 2u);
  EXPECT_EQ(p.path[0], t13);
  EXPECT_EQ(p.path[1], t20);

  ASSERT_TRUE(tree.Proof(0, &p));
  EXPECT_EQ(p.blinder, t01);
  ASSERT_EQ(p.path.size(), 2u);
  EXPECT_EQ(p.path[0], t11);
  EXPECT_EQ(p.path[1], t21);

  ASSERT_TRUE(tree.Proof(1, &p));
  EXPECT_EQ(p.blinder, t03);
  EXPECT_EQ(p.path[0], t10);
  EXPECT_EQ(p.path[1], t21);
  EXPECT_FALSE(tree.Proof(3, &p));
}

TEST_P(MerkleTreeTest, EveryIndexVerifiesForOneToThirtyThreeLeaves) {
  const MerkleHash h = GetParam();
  for (size_t n = 1; n <= 33; ++n) {
    const std::vector<Bytes> msgs = MakeMessages(n);
    const MerkleTree tree = BuildTree(h, msgs, n);
    ASSERT_EQ(tree.size(), n);
    ASSERT_EQ(tree.root().size(), MerkleHashLen(h));
    for (size_t i = 0; i < n; ++i) {
      MerkleProof p;
      ASSERT_TRUE(tree.Proof(i, &p));
      EXPECT_EQ(p.path.size(), MerkleAuditPathLength(n)) << "n=" << n;
      EXPECT_EQ(p.blinder.size(), MerkleHashLen(h));
      const std::vector<ByteSpan> path = PathSpans(p.path);
      EXPECT_TRUE(
          VerifyMerklePath(h, msgs[i], p.blinder, p.index, path, n, tree.root()))
          << "n=" << n << " i=" << i;
      Bytes root;
      ASSERT_TRUE(
          RecomputeMerkleRoot(h, msgs[i], p.blinder, p.index, path, n, &root));
      EXPECT_EQ(root, Bytes(tree.root().begin(), tree.root().end()));
      // Another leaf's message with this proof does not verify.
      if (n > 1) {
        EXPECT_FALSE(VerifyMerklePath(h, msgs[(i + 1) % n], p.blinder, p.index,
                                      path, n, tree.root()));
      }
    }
  }
}

TEST_P(MerkleTreeTest, AnyFlippedBitFails) {
  const MerkleHash h = GetParam();
  for (size_t n : {1u, 2u, 3u, 5u, 8u, 13u, 33u}) {
    const std::vector<Bytes> msgs = MakeMessages(n);
    const MerkleTree tree = BuildTree(h, msgs, 100 + n);
    const Bytes root(tree.root().begin(), tree.root().end());
    for (size_t i = 0; i < n; ++i) {
      MerkleProof p;
      ASSERT_TRUE(tree.Proof(i, &p));
      const auto verifies = [&](const Bytes& leaf, const Bytes& blinder,
                                uint64_t index,
                                const std::vector<Bytes>& path_nodes,
                                const Bytes& r) {
        const std::vector<ByteSpan> path = PathSpans(path_nodes);
        return VerifyMerklePath(h, leaf, blinder, index, path, n, r);
      };
      ASSERT_TRUE(verifies(msgs[i], p.blinder, p.index, p.path, root));

      // Every bit of every audit-path node.
      for (size_t j = 0; j < p.path.size(); ++j) {
        for (size_t bit = 0; bit < p.path[j].size() * 8; ++bit) {
          std::vector<Bytes> path = p.path;
          path[j][bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
          EXPECT_FALSE(verifies(msgs[i], p.blinder, p.index, path, root))
              << "n=" << n << " i=" << i << " node=" << j << " bit=" << bit;
        }
      }
      // Every bit of the blinder.
      for (size_t bit = 0; bit < p.blinder.size() * 8; ++bit) {
        Bytes blinder = p.blinder;
        blinder[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        EXPECT_FALSE(verifies(msgs[i], blinder, p.index, p.path, root));
      }
      // Every bit of the 32-bit index.
      for (unsigned bit = 0; bit < 32; ++bit) {
        const uint64_t index = p.index ^ (uint64_t{1} << bit);
        EXPECT_FALSE(verifies(msgs[i], p.blinder, index, p.path, root))
            << "n=" << n << " i=" << i << " index bit=" << bit;
      }
      // Every bit of the leaf.
      for (size_t bit = 0; bit < msgs[i].size() * 8; ++bit) {
        Bytes leaf = msgs[i];
        leaf[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        EXPECT_FALSE(verifies(leaf, p.blinder, p.index, p.path, root));
      }
      // Every bit of the root.
      for (size_t bit = 0; bit < root.size() * 8; ++bit) {
        Bytes r = root;
        r[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        EXPECT_FALSE(verifies(msgs[i], p.blinder, p.index, p.path, r));
      }
    }
  }
}

TEST_P(MerkleTreeTest, MalformedProofsAreRefused) {
  const MerkleHash h = GetParam();
  const size_t n = 5;
  const std::vector<Bytes> msgs = MakeMessages(n);
  const MerkleTree tree = BuildTree(h, msgs, 7);
  MerkleProof p;
  ASSERT_TRUE(tree.Proof(4, &p));
  std::vector<ByteSpan> path = PathSpans(p.path);
  Bytes out;

  // Wrong n: a size whose path is shorter or longer, zero, too large.
  EXPECT_FALSE(RecomputeMerkleRoot(h, msgs[4], p.blinder, 4, path, 4, &out));
  EXPECT_FALSE(RecomputeMerkleRoot(h, msgs[4], p.blinder, 4, path, 9, &out));
  EXPECT_FALSE(RecomputeMerkleRoot(h, msgs[4], p.blinder, 4, path, 0, &out));
  EXPECT_FALSE(RecomputeMerkleRoot(h, msgs[4], p.blinder, 4, path,
                                   kMaxMerkleLeaves + 1, &out));
  // Index outside the batch (the draft's step 5 would also catch 2^k - 1).
  EXPECT_FALSE(RecomputeMerkleRoot(h, msgs[4], p.blinder, 5, path, 5, &out));
  EXPECT_FALSE(RecomputeMerkleRoot(h, msgs[4], p.blinder, 7, path, 5, &out));
  EXPECT_FALSE(RecomputeMerkleRoot(h, msgs[4], p.blinder, uint64_t{1} << 31,
                                   path, 5, &out));
  // A node or the blinder of the wrong size.
  Bytes short_node(p.path[1].begin(), p.path[1].end() - 1);
  std::vector<ByteSpan> bad = path;
  bad[1] = short_node;
  EXPECT_FALSE(RecomputeMerkleRoot(h, msgs[4], p.blinder, 4, bad, 5, &out));
  const Bytes long_blinder(MerkleHashLen(h) + 1, 0);
  EXPECT_FALSE(RecomputeMerkleRoot(h, msgs[4], long_blinder, 4, path, 5, &out));
  // Truncated and extended paths.
  std::vector<ByteSpan> shorter(path.begin(), path.end() - 1);
  EXPECT_FALSE(RecomputeMerkleRoot(h, msgs[4], p.blinder, 4, shorter, 5, &out));
  std::vector<ByteSpan> longer = path;
  longer.push_back(path.back());
  EXPECT_FALSE(RecomputeMerkleRoot(h, msgs[4], p.blinder, 4, longer, 5, &out));
  EXPECT_TRUE(out.empty());  // untouched by every failure
  // The good proof still works.
  EXPECT_TRUE(RecomputeMerkleRoot(h, msgs[4], p.blinder, 4, path, 5, &out));
}

TEST_P(MerkleTreeTest, OneHundredTwentyEightLeavesHaveSevenNodePaths) {
  const MerkleHash h = GetParam();
  const std::vector<Bytes> msgs = MakeMessages(128);
  const MerkleTree tree = BuildTree(h, msgs, 128);
  for (size_t i = 0; i < 128; ++i) {
    MerkleProof p;
    ASSERT_TRUE(tree.Proof(i, &p));
    EXPECT_EQ(p.path.size(), 7u);
    const std::vector<ByteSpan> path = PathSpans(p.path);
    EXPECT_TRUE(
        VerifyMerklePath(h, msgs[i], p.blinder, i, path, 128, tree.root()));
  }
}

// draft §4.3: a proof reveals its own blinder but never another leaf's hash;
// other leaves appear only inside level >= 1 nodes.
TEST_P(MerkleTreeTest, ProofsDoNotRevealOtherLeaves) {
  const MerkleHash h = GetParam();
  const std::vector<Bytes> msgs = MakeMessages(9);
  const MerkleTree tree = BuildTree(h, msgs, 9);
  std::vector<Bytes> leaf_hashes;
  for (const Bytes& m : msgs) leaf_hashes.push_back(HashLeaf(h, m));
  for (size_t i = 0; i < msgs.size(); ++i) {
    MerkleProof p;
    ASSERT_TRUE(tree.Proof(i, &p));
    for (const Bytes& node : p.path) {
      for (const Bytes& lh : leaf_hashes) EXPECT_NE(node, lh);
    }
    for (const Bytes& lh : leaf_hashes) EXPECT_NE(p.blinder, lh);
  }
}

TEST_P(MerkleTreeTest, BlindersAreFreshPerBuildAndPerLeaf) {
  const MerkleHash h = GetParam();
  const std::vector<Bytes> msgs = MakeMessages(4);
  const std::vector<ByteSpan> leaves = Spans(msgs);
  MerkleTree a, b;
  ASSERT_TRUE(MerkleTree::Build(h, leaves, SystemRng::Instance(), &a));
  ASSERT_TRUE(MerkleTree::Build(h, leaves, SystemRng::Instance(), &b));
  EXPECT_NE(Bytes(a.root().begin(), a.root().end()),
            Bytes(b.root().begin(), b.root().end()));
  MerkleProof p0, p1;
  ASSERT_TRUE(a.Proof(0, &p0));
  ASSERT_TRUE(a.Proof(1, &p1));
  EXPECT_NE(p0.blinder, p1.blinder);
}

TEST_P(MerkleTreeTest, BuildRefusesBadInput) {
  const MerkleHash h = GetParam();
  MerkleTree tree;
  EXPECT_FALSE(MerkleTree::Build(h, {}, SystemRng::Instance(), &tree));
  const std::vector<Bytes> msgs = MakeMessages(2);
  const std::vector<ByteSpan> leaves = Spans(msgs);
  const Bytes short_blinders(2 * MerkleHashLen(h) - 1, 0);
  EXPECT_FALSE(MerkleTree::BuildWithBlinders(h, leaves, short_blinders, &tree));
  EXPECT_EQ(tree.size(), 0u);
  EXPECT_TRUE(tree.root().empty());
  MerkleProof p;
  EXPECT_FALSE(tree.Proof(0, &p));
}

TEST_P(MerkleTreeTest, MovedTreeKeepsItsProofs) {
  const MerkleHash h = GetParam();
  const std::vector<Bytes> msgs = MakeMessages(6);
  MerkleTree a = BuildTree(h, msgs, 6);
  const Bytes root(a.root().begin(), a.root().end());
  MerkleTree b = std::move(a);
  EXPECT_EQ(Bytes(b.root().begin(), b.root().end()), root);
  MerkleProof p;
  ASSERT_TRUE(b.Proof(5, &p));
  const std::vector<ByteSpan> path = PathSpans(p.path);
  EXPECT_TRUE(VerifyMerklePath(h, msgs[5], p.blinder, 5, path, 6, root));
}

}  // namespace
}  // namespace tcpcrypt::auth::x509
