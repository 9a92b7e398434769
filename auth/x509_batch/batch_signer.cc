#include "auth/x509_batch/batch_signer.h"

#include <algorithm>
#include <system_error>
#include <utility>

#include "auth/x509_batch/merkle_tree.h"

namespace tcpcrypt::auth::x509 {

std::shared_ptr<BatchSigner> BatchSigner::Create(SharedEvpPkey key,
                                                 const Options& options,
                                                 std::string* error) {
  const std::optional<KeyAlgorithm> alg = KeyAlgorithmOf(key.get());
  if (!alg) {
    *error =
        "unsupported signing key (need ECDSA P-256, Ed25519 or RSA 2048-8192)";
    return nullptr;
  }
  if (options.max_batch_size < 1 || options.max_batch_size > kMaxBatchSize) {
    *error = "max_batch_size must be between 1 and 2^20";
    return nullptr;
  }
  // std::thread reports failure to start by throwing; the project builds
  // with exceptions enabled but never lets one cross the API.
  try {
    return std::make_shared<BatchSigner>(PassKey(), std::move(key), *alg,
                                         options);
  } catch (const std::system_error& e) {
    *error = std::string("cannot start the signer thread: ") + e.what();
    return nullptr;
  }
}

BatchSigner::BatchSigner(PassKey, SharedEvpPkey key, KeyAlgorithm alg,
                         const Options& options)
    : key_(std::move(key)),
      alg_(alg),
      scheme_(BatchSchemeFor(alg)),
      max_batch_size_(options.max_batch_size),
      rng_(options.rng ? *options.rng : SystemRng::Instance()),
      paused_(options.start_paused),
      thread_([this] { Run(); }) {}

BatchSigner::~BatchSigner() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // The thread has exited; nothing else can touch queue_ now.
  std::deque<Request> rest = std::move(queue_);
  queue_.clear();
  for (Request& r : rest) {
    BatchSignResult result;
    result.error = "batch signer shut down";
    r.done(std::move(result));
  }
}

bool BatchSigner::Enqueue(std::vector<uint8_t> leaf, Callback done) {
  if (leaf.empty() || leaf.size() > kMaxLeafSize || !done) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    queue_.push_back({std::move(leaf), std::move(done)});
  }
  cv_.notify_one();
  return true;
}

void BatchSigner::Pause() {
  std::lock_guard<std::mutex> lock(mu_);
  paused_ = true;
}

void BatchSigner::Resume() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = false;
  }
  cv_.notify_one();
}

size_t BatchSigner::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void BatchSigner::Run() {
  for (;;) {
    std::vector<Request> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] {
        return stopping_ || (!paused_ && !queue_.empty());
      });
      if (stopping_) return;  // the destructor fails what is left
      // Whatever is queued, up to the maximum; no waiting for more.
      const size_t take =
          std::min<size_t>(queue_.size(), max_batch_size_);
      batch.reserve(take);
      for (size_t i = 0; i < take; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    SignBatch(&batch);
  }
}

void BatchSigner::SignBatch(std::vector<Request>* batch) {
  const auto fail_all = [batch](const std::string& why) {
    for (Request& r : *batch) {
      BatchSignResult result;
      result.error = why;
      r.done(std::move(result));
    }
  };

  std::vector<ByteSpan> leaves;
  leaves.reserve(batch->size());
  for (const Request& r : *batch) leaves.emplace_back(r.leaf);

  // draft §3.1: build the tree, then sign its root once.
  MerkleTree tree;
  if (!MerkleTree::Build(MerkleHashForScheme(scheme_), leaves, rng_, &tree)) {
    fail_all("batch signer: building the Merkle tree failed");
    return;
  }
  const auto n = static_cast<uint32_t>(tree.size());
  const std::vector<uint8_t> content = BatchSignedContent(scheme_, n, tree.root());
  std::vector<uint8_t> signature;
  if (!SignWithKey(key_.get(), alg_, content, &signature)) {
    fail_all("batch signer: signing the root failed");
    return;
  }

  // Counters first, so whoever sees a completion also sees them.
  batches_signed_.fetch_add(1);
  leaves_signed_.fetch_add(n);
  uint32_t largest = largest_batch_.load();
  while (n > largest && !largest_batch_.compare_exchange_weak(largest, n)) {
  }

  const std::vector<uint8_t> root(tree.root().begin(), tree.root().end());
  for (size_t i = 0; i < batch->size(); ++i) {
    BatchSignResult result;
    MerkleProof proof;
    if (!tree.Proof(i, &proof)) {  // cannot happen: i < n
      result.error = "batch signer: no proof for leaf";
      (*batch)[i].done(std::move(result));
      continue;
    }
    result.ok = true;
    result.scheme = scheme_;
    result.batch_size = n;
    result.root = root;
    result.root_signature = signature;
    result.index = proof.index;
    result.blinder = std::move(proof.blinder);
    result.path = std::move(proof.path);
    (*batch)[i].done(std::move(result));
  }
}

}  // namespace tcpcrypt::auth::x509
