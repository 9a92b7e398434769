// batch_signer.h: one signer thread per server key (paper §4.1, §5.3).
//
// Connections enqueue their leaf (ChannelBinding::Encode()) with a completion
// callback. The signer thread sleeps on a condition variable while the queue
// is empty; the moment it is free it takes whatever is queued (up to
// max_batch_size), builds the Merkle tree (merkle_tree.h), signs the root
// once (batch_signature.h) and completes every request with its own proof.
// There is no artificial wait: a lone request is signed at once, and under
// load requests pile up while the previous batch is being signed, so the
// batch size follows the load (paper §6: "signs whatever queue is available
// as fast as it can").
//
// Thread-safe: Enqueue, the counters, Pause and Resume may be called from any
// thread. Callbacks run on the signer thread (or, for requests still queued at
// shutdown, on the thread running the destructor), never with an internal
// lock held, so a callback may Enqueue again. A callback must be quick and
// must not destroy the signer.
#ifndef TCPCRYPT_AUTH_X509_BATCH_BATCH_SIGNER_H_
#define TCPCRYPT_AUTH_X509_BATCH_BATCH_SIGNER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "auth/x509_batch/batch_signature.h"
#include "auth/x509_batch/ossl_ptr.h"
#include "core_transport/engine/rng.h"

namespace tcpcrypt::auth::x509 {

// The largest batch a client accepts (BatchProof bounds); signers never
// build larger ones.
inline constexpr uint32_t kMaxBatchSize = uint32_t{1} << 20;
// The largest leaf the signer accepts (a binding encoding is < 100 bytes).
inline constexpr size_t kMaxLeafSize = 1024;

// BatchSignResult is one request's outcome.
struct BatchSignResult {
  bool ok = false;
  std::string error;  // when !ok: why (e.g. "batch signer shut down")
  SignatureScheme scheme = SignatureScheme::kEcdsaSecp256r1Sha256Batch;
  uint32_t batch_size = 0;                 // n
  std::vector<uint8_t> root;               // the signed root (Hash.length)
  std::vector<uint8_t> root_signature;     // over BatchSignedContent(...)
  uint32_t index = 0;                      // this leaf's index, < n
  std::vector<uint8_t> blinder;            // this leaf's blinder
  std::vector<std::vector<uint8_t>> path;  // ceil(log2 n) nodes, bottom first
};

class BatchSigner {
 public:
  using Callback = std::function<void(BatchSignResult)>;

  struct Options {
    // The most leaves in one tree (1..kMaxBatchSize). 1 disables batching.
    uint32_t max_batch_size = 1024;
    // Where blinders come from; nullptr means SystemRng::Instance(). Used
    // only on the signer thread; must outlive the signer.
    Rng* rng = nullptr;
    // Start paused (see Pause); for tests and benchmarks that want a full
    // queue before the first batch.
    bool start_paused = false;
  };

  // Create starts a signer thread for |key| (a private key that
  // KeyAlgorithmOf accepts: ECDSA P-256, Ed25519, RSA 2048..8192). Returns
  // nullptr and sets |*error| if the key is unsupported, the options are out
  // of range, or the thread cannot start.
  static std::shared_ptr<BatchSigner> Create(SharedEvpPkey key,
                                             const Options& options,
                                             std::string* error);
  static std::shared_ptr<BatchSigner> Create(SharedEvpPkey key,
                                             std::string* error) {
    return Create(std::move(key), Options(), error);
  }

  // PassKey keeps construction to Create (which validates the inputs).
  class PassKey {
    friend class BatchSigner;
    PassKey() = default;
  };
  BatchSigner(PassKey, SharedEvpPkey key, KeyAlgorithm alg,
              const Options& options);

  // The destructor stops the thread after the batch in progress (its
  // callbacks still run) and completes every request still queued with
  // ok = false, error "batch signer shut down". Must not run on the signer
  // thread (i.e. not from inside a callback).
  ~BatchSigner();
  BatchSigner(const BatchSigner&) = delete;
  BatchSigner& operator=(const BatchSigner&) = delete;

  // Enqueue queues |leaf| (1..kMaxLeafSize bytes). |done| is called exactly
  // once, from another thread, unless Enqueue returns false (shut down, or
  // the leaf is empty or too large), in which case it is never called.
  [[nodiscard]] bool Enqueue(std::vector<uint8_t> leaf, Callback done);

  // Pause keeps the thread from starting new batches (a batch being signed
  // finishes); Resume lets it take whatever has queued up meanwhile.
  void Pause();
  void Resume();

  SignatureScheme scheme() const { return scheme_; }
  KeyAlgorithm key_algorithm() const { return alg_; }
  // key shares the signer's key (to match it against a certificate).
  const SharedEvpPkey& key() const { return key_; }
  uint32_t max_batch_size() const { return max_batch_size_; }

  // Counters (monotonic): root signatures made, leaves completed with a
  // proof, and the largest batch so far.
  uint64_t batches_signed() const { return batches_signed_.load(); }
  uint64_t leaves_signed() const { return leaves_signed_.load(); }
  uint32_t largest_batch() const { return largest_batch_.load(); }
  // queued is the number of requests waiting (a snapshot).
  size_t queued() const;

 private:
  struct Request {
    std::vector<uint8_t> leaf;
    Callback done;
  };

  void Run();
  void SignBatch(std::vector<Request>* batch);

  const SharedEvpPkey key_;
  const KeyAlgorithm alg_;
  const SignatureScheme scheme_;
  const uint32_t max_batch_size_;
  Rng& rng_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> queue_;  // guarded by mu_
  bool paused_ = false;        // guarded by mu_
  bool stopping_ = false;      // guarded by mu_

  std::atomic<uint64_t> batches_signed_{0};
  std::atomic<uint64_t> leaves_signed_{0};
  std::atomic<uint32_t> largest_batch_{0};

  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace tcpcrypt::auth::x509

#endif  // TCPCRYPT_AUTH_X509_BATCH_BATCH_SIGNER_H_
