// merkle_tree.h: the batch-signing Merkle tree of
// draft-ietf-tls-batch-signing-00 §3 (specs/draft-ietf-tls-batch-signing-00.txt).
//
// One tree covers one batch of n signing inputs (here: ChannelBinding::Encode()
// of n connections). The tree follows the draft exactly:
//
//   HashLeaf(msg)          = Hash(0x00 || msg)
//   HashNode(left, right)  = Hash(0x01 || left || right)
//
//   level 0: 2n nodes; node 2i = HashLeaf(m[i]), node 2i+1 = a random
//            blinder of Hash.length bytes (§3.1 step 1, §4.3)
//   level i: HashNode over pairs of level i-1, after padding an odd level
//            with a copy of its FIRST node (§3.1 step 2)
//   l = ceil(log2 n) + 2 levels; level l-1 holds the root.
//
// The draft's BatchSignature.path for message i has l-1 nodes: node j is
// node ((2i) >> j) ^ 1 of level j. Its first node (j = 0) is always i's own
// blinder. This code carries that node separately as |blinder| and calls the
// remaining l-2 = ceil(log2 n) nodes the audit path, so
//   draft path = blinder || audit path.
// Verification (§3.2) is the draft's: remaining = 2 * index, walk the path
// from the bottom, HashNode(v, hash) when remaining is odd and
// HashNode(hash, v) otherwise, and require remaining == 0 at the end.
//
// The hash is SHA-256 or SHA-512 (the draft ties it to the signature scheme:
// ecdsa_secp256r1_sha256_batch and rsa_pss_rsae_sha256_batch use SHA-256,
// ed25519_batch uses SHA-512), through OpenSSL EVP.
#ifndef TCPCRYPT_AUTH_X509_BATCH_MERKLE_TREE_H_
#define TCPCRYPT_AUTH_X509_BATCH_MERKLE_TREE_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core_transport/engine/rng.h"

namespace tcpcrypt::auth::x509 {

using ByteSpan = std::span<const uint8_t>;

enum class MerkleHash : uint8_t {
  kSha256,
  kSha512,
};

// MerkleHashLen returns Hash.length in bytes: 32 or 64.
size_t MerkleHashLen(MerkleHash hash);

// draft §3.1: "If n is greater than 2^31, the signing procedure fails".
inline constexpr uint64_t kMaxMerkleLeaves = uint64_t{1} << 31;
// draft §3.2 step 2: at most 32 path nodes, the blinder included, so at most
// 31 audit-path nodes.
inline constexpr size_t kMaxMerkleAuditPath = 31;

// MerkleAuditPathLength returns ceil(log2 n), the number of audit-path nodes
// (the blinder excluded) in a tree over n leaves; 0 for n <= 1.
size_t MerkleAuditPathLength(uint64_t n);

// MerkleProof is what one leaf's owner needs to recompute the root.
struct MerkleProof {
  uint32_t index = 0;                      // 0 <= index < n
  std::vector<uint8_t> blinder;            // Hash.length bytes (draft path[0])
  std::vector<std::vector<uint8_t>> path;  // ceil(log2 n) nodes, bottom first
};

// MerkleTree is one batch's tree. It is move-only; the destructor wipes level
// 0, which holds every leaf's blinder (each client may learn only its own).
class MerkleTree {
 public:
  MerkleTree() = default;
  ~MerkleTree();
  MerkleTree(const MerkleTree&) = delete;
  MerkleTree& operator=(const MerkleTree&) = delete;
  MerkleTree(MerkleTree&& other) noexcept;
  MerkleTree& operator=(MerkleTree&& other) noexcept;

  // Build builds the tree over |leaves| with one fresh blinder per leaf
  // drawn from |rng|. Returns false, leaving |*out| unchanged, if
  // leaves.size() is 0 or above kMaxMerkleLeaves, or hashing fails.
  [[nodiscard]] static bool Build(MerkleHash hash,
                                  std::span<const ByteSpan> leaves, Rng& rng,
                                  MerkleTree* out);
  // BuildWithBlinders is Build with the blinders given: |blinders| holds
  // n * MerkleHashLen(hash) bytes, leaf i's at offset i * Hash.length. For
  // tests and known-answer vectors; production code uses Build.
  [[nodiscard]] static bool BuildWithBlinders(MerkleHash hash,
                                              std::span<const ByteSpan> leaves,
                                              ByteSpan blinders,
                                              MerkleTree* out);

  MerkleHash hash() const { return hash_; }
  size_t hash_len() const { return MerkleHashLen(hash_); }
  // size is n, the number of leaves (0 for a default-constructed tree).
  size_t size() const { return n_; }
  // root is the single node of the top level (Hash.length bytes; empty for
  // a default-constructed tree).
  ByteSpan root() const;
  // Proof fills |*out| for leaf |index| (draft §3.1, "To assemble the
  // BatchSignature structure for message i"). False if index >= size().
  [[nodiscard]] bool Proof(size_t index, MerkleProof* out) const;

 private:
  void Wipe();

  MerkleHash hash_ = MerkleHash::kSha256;
  size_t n_ = 0;
  // levels_[j] holds level j's nodes back to back, Hash.length bytes each,
  // including the padding copy when the draft pads level j.
  std::vector<std::vector<uint8_t>> levels_;
};

// RecomputeMerkleRoot runs draft §3.2 steps 2-5: from the leaf's message,
// its blinder, its index and its audit path, it computes the root the path
// leads to. |n| is the batch size the proof claims; the walk itself does not
// need it, but the proof must be consistent with it. Returns false, leaving
// |*out_root| unchanged, if n is 0 or above kMaxMerkleLeaves, index >= n,
// path.size() != MerkleAuditPathLength(n), any node or the blinder is not
// Hash.length bytes, or the walk leaves remaining != 0.
[[nodiscard]] bool RecomputeMerkleRoot(MerkleHash hash, ByteSpan leaf,
                                       ByteSpan blinder, uint64_t index,
                                       std::span<const ByteSpan> path,
                                       uint64_t n,
                                       std::vector<uint8_t>* out_root);

// VerifyMerklePath recomputes the root and compares it with |root| in
// constant time. False on any mismatch or malformed input.
[[nodiscard]] bool VerifyMerklePath(MerkleHash hash, ByteSpan leaf,
                                    ByteSpan blinder, uint64_t index,
                                    std::span<const ByteSpan> path, uint64_t n,
                                    ByteSpan root);

// PathSpans views a proof's audit path as spans (for RecomputeMerkleRoot).
std::vector<ByteSpan> PathSpans(const std::vector<std::vector<uint8_t>>& path);

}  // namespace tcpcrypt::auth::x509

#endif  // TCPCRYPT_AUTH_X509_BATCH_MERKLE_TREE_H_
