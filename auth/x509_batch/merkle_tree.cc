#include "auth/x509_batch/merkle_tree.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <memory>
#include <utility>

namespace tcpcrypt::auth::x509 {
namespace {

const EVP_MD* FetchMd(MerkleHash hash) {
  // Fetched once per process (OpenSSL 3 fetches implicitly on every init
  // otherwise); never freed, like OpenSSL's own built-in method tables.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  static EVP_MD* const sha512 = EVP_MD_fetch(nullptr, "SHA2-512", nullptr);
  switch (hash) {
    case MerkleHash::kSha256: return sha256;
    case MerkleHash::kSha512: return sha512;
  }
  return nullptr;
}

// NodeHasher computes the draft's two domain-separated hashes.
class NodeHasher {
 public:
  explicit NodeHasher(MerkleHash hash)
      : md_(FetchMd(hash)), ctx_(EVP_MD_CTX_new()) {}

  bool ok() const { return md_ != nullptr && ctx_ != nullptr; }

  // draft §3.1: HashLeaf(msg) = Hash(0x00 || msg).
  [[nodiscard]] bool Leaf(ByteSpan msg, uint8_t* out) {
    static constexpr uint8_t kLeafPrefix = 0x00;
    return Init() && Update({&kLeafPrefix, 1}) && Update(msg) && Final(out);
  }
  // draft §3.1: HashNode(left, right) = Hash(0x01 || left || right).
  [[nodiscard]] bool Node(ByteSpan left, ByteSpan right, uint8_t* out) {
    static constexpr uint8_t kNodePrefix = 0x01;
    return Init() && Update({&kNodePrefix, 1}) && Update(left) &&
           Update(right) && Final(out);
  }

 private:
  struct CtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };

  bool Init() { return EVP_DigestInit_ex2(ctx_.get(), md_, nullptr) == 1; }
  bool Update(ByteSpan data) {
    return data.empty() ||
           EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) == 1;
  }
  bool Final(uint8_t* out) {
    return EVP_DigestFinal_ex(ctx_.get(), out, nullptr) == 1;
  }

  const EVP_MD* md_;
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx_;
};

}  // namespace

size_t MerkleHashLen(MerkleHash hash) {
  switch (hash) {
    case MerkleHash::kSha256: return 32;
    case MerkleHash::kSha512: return 64;
  }
  return 0;
}

size_t MerkleAuditPathLength(uint64_t n) {
  // ceil(log2 n) = bit width of n - 1 for n >= 1.
  if (n <= 1) return 0;
  return static_cast<size_t>(std::bit_width(n - 1));
}

MerkleTree::~MerkleTree() { Wipe(); }

MerkleTree::MerkleTree(MerkleTree&& other) noexcept
    : hash_(other.hash_),
      n_(std::exchange(other.n_, 0)),
      levels_(std::move(other.levels_)) {
  other.levels_.clear();
}

MerkleTree& MerkleTree::operator=(MerkleTree&& other) noexcept {
  if (this != &other) {
    Wipe();
    hash_ = other.hash_;
    n_ = std::exchange(other.n_, 0);
    levels_ = std::move(other.levels_);
    other.levels_.clear();
  }
  return *this;
}

void MerkleTree::Wipe() {
  if (!levels_.empty() && !levels_[0].empty()) {
    OPENSSL_cleanse(levels_[0].data(), levels_[0].size());
  }
}

bool MerkleTree::Build(MerkleHash hash, std::span<const ByteSpan> leaves,
                       Rng& rng, MerkleTree* out) {
  const size_t hl = MerkleHashLen(hash);
  if (leaves.empty() || leaves.size() > kMaxMerkleLeaves) return false;
  std::vector<uint8_t> blinders(leaves.size() * hl);
  // draft §3.1 step 1: "a random string of Hash.length bytes".
  rng.Fill(blinders);
  const bool ok = BuildWithBlinders(hash, leaves, blinders, out);
  OPENSSL_cleanse(blinders.data(), blinders.size());
  return ok;
}

bool MerkleTree::BuildWithBlinders(MerkleHash hash,
                                   std::span<const ByteSpan> leaves,
                                   ByteSpan blinders, MerkleTree* out) {
  const size_t hl = MerkleHashLen(hash);
  const size_t n = leaves.size();
  // draft §3.1: n > 2^31 fails.
  if (n == 0 || n > kMaxMerkleLeaves || blinders.size() != n * hl) {
    return false;
  }
  NodeHasher hasher(hash);
  if (!hasher.ok()) return false;

  // draft §3.1: l = ceil(log2 n) + 2 levels, numbered 0 to l-1.
  const size_t l = MerkleAuditPathLength(n) + 2;
  MerkleTree tree;
  tree.hash_ = hash;
  tree.n_ = n;
  tree.levels_.resize(l);

  // draft §3.1 step 1: level 0 has 2n nodes; 2i = HashLeaf(m[i]), 2i+1 =
  // blinder.
  std::vector<uint8_t>& level0 = tree.levels_[0];
  level0.resize(2 * n * hl);
  for (size_t i = 0; i < n; ++i) {
    if (!hasher.Leaf(leaves[i], &level0[2 * i * hl])) return false;
    const ByteSpan blinder = blinders.subspan(i * hl, hl);
    std::copy(blinder.begin(), blinder.end(), level0.begin() + (2 * i + 1) * hl);
  }

  // draft §3.1 step 2: level i from level i-1.
  for (size_t lvl = 1; lvl < l; ++lvl) {
    std::vector<uint8_t>& prev = tree.levels_[lvl - 1];
    // "If level i-1 has an odd number of elements, pad it to an even number
    // of elements with a copy of its first element."
    if ((prev.size() / hl) % 2 == 1) {
      prev.insert(prev.end(), prev.begin(), prev.begin() + hl);
    }
    const size_t count = prev.size() / hl / 2;
    std::vector<uint8_t>& cur = tree.levels_[lvl];
    cur.resize(count * hl);
    for (size_t j = 0; j < count; ++j) {
      const ByteSpan left(&prev[2 * j * hl], hl);
      const ByteSpan right(&prev[(2 * j + 1) * hl], hl);
      if (!hasher.Node(left, right, &cur[j * hl])) return false;
    }
  }
  // "Level l-1 will contain a single element, the root of the tree."
  if (tree.levels_[l - 1].size() != hl) return false;

  *out = std::move(tree);
  return true;
}

ByteSpan MerkleTree::root() const {
  if (levels_.empty()) return {};
  return levels_.back();
}

bool MerkleTree::Proof(size_t index, MerkleProof* out) const {
  if (index >= n_) return false;
  const size_t hl = hash_len();
  const auto node = [&](size_t level, size_t k) {
    const std::vector<uint8_t>& nodes = levels_[level];
    return std::vector<uint8_t>(nodes.begin() + k * hl,
                                nodes.begin() + (k + 1) * hl);
  };
  MerkleProof proof;
  proof.index = static_cast<uint32_t>(index);
  // draft §3.1: path element j is element ((2i) >> j) ^ 1 of level j, for j
  // in 0..l-2; the root is never included. j = 0 is the blinder.
  proof.blinder = node(0, (2 * index) ^ 1);
  const size_t l = levels_.size();
  for (size_t j = 1; j + 1 < l; ++j) {
    proof.path.push_back(node(j, ((2 * index) >> j) ^ 1));
  }
  *out = std::move(proof);
  return true;
}

bool RecomputeMerkleRoot(MerkleHash hash, ByteSpan leaf, ByteSpan blinder,
                         uint64_t index, std::span<const ByteSpan> path,
                         uint64_t n, std::vector<uint8_t>* out_root) {
  const size_t hl = MerkleHashLen(hash);
  if (n == 0 || n > kMaxMerkleLeaves || index >= n) return false;
  // draft §3.2 step 2 (index < 2^31, at most 32 nodes with the blinder)
  // follows from index < n <= 2^31 and this length check.
  if (path.size() != MerkleAuditPathLength(n) ||
      path.size() > kMaxMerkleAuditPath) {
    return false;
  }
  if (blinder.size() != hl) return false;
  for (const ByteSpan& v : path) {
    if (v.size() != hl) return false;
  }
  NodeHasher hasher(hash);
  if (!hasher.ok()) return false;

  // draft §3.2 step 2: remaining = 2 * index.
  uint64_t remaining = 2 * index;
  // Step 3: hash = HashLeaf(message).
  std::vector<uint8_t> cur(hl), next(hl);
  if (!hasher.Leaf(leaf, cur.data())) return false;
  // Step 4, over the draft's path: the blinder, then the audit path.
  const auto step = [&](ByteSpan v) {
    const bool ok = (remaining & 1) ? hasher.Node(v, cur, next.data())
                                    : hasher.Node(cur, v, next.data());
    cur.swap(next);
    remaining >>= 1;
    return ok;
  };
  if (!step(blinder)) return false;
  for (const ByteSpan& v : path) {
    if (!step(v)) return false;
  }
  // Step 5: "If remaining is non-zero, the signature is invalid."
  if (remaining != 0) return false;
  *out_root = std::move(cur);
  return true;
}

bool VerifyMerklePath(MerkleHash hash, ByteSpan leaf, ByteSpan blinder,
                      uint64_t index, std::span<const ByteSpan> path,
                      uint64_t n, ByteSpan root) {
  std::vector<uint8_t> computed;
  if (!RecomputeMerkleRoot(hash, leaf, blinder, index, path, n, &computed)) {
    return false;
  }
  return root.size() == computed.size() &&
         CRYPTO_memcmp(root.data(), computed.data(), computed.size()) == 0;
}

std::vector<ByteSpan> PathSpans(const std::vector<std::vector<uint8_t>>& path) {
  std::vector<ByteSpan> spans;
  spans.reserve(path.size());
  for (const auto& node : path) spans.emplace_back(node);
  return spans;
}

}  // namespace tcpcrypt::auth::x509
