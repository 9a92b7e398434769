// engine.h: the tcpcrypt protocol engine (RFC 8547 + RFC 8548), sans I/O.
//
// One Engine is one end of one connection. It never touches a socket, a
// thread or a global: a carrier feeds it the bytes it received and sends the
// bytes it produces; randomness and time are injected. The same engine drives
// the in-band carrier, the daemon and the gRPC plugin, and two engines can be
// wired together in a test with no sockets at all.
//
// In-band framing (ARCHITECTURE decision 3, docs/PROTOCOL.md): each side's
// stream starts with the SYN-form ENO option it would have put in its SYN
// (kind 69, length, suboptions; the passive opener's carries b = 1), then
// the RFC 8548 byte stream unchanged: Init1 / Init2, then frames. Frame IDs
// count from the first byte after the option.
//
// Driving it:
//   Engine e(Engine::Role::kActive, config, rng, clock);
//   e.Start();
//   loop {
//     send(e.PendingOutput()); e.ConsumeOutput(n_sent);
//     n = recv(e.InputBuffer()); e.CommitInput(n)   (n == 0: e.OnCarrierEof())
//     e.Read(...)  /  e.Write(...)
//   }
//
// Failures are sticky: after the first error every call returns it, no
// further plaintext is delivered, and buffered plaintext is wiped.
//
// Thread-safety: an Engine is not thread-safe; one thread at a time. The
// ResumptionCache and EphemeralKeyCache it points to are thread-safe and
// may be shared by many engines.
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_ENGINE_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_ENGINE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core_transport/engine/aead.h"
#include "core_transport/engine/bytes.h"
#include "core_transport/engine/clock.h"
#include "core_transport/engine/eno_option.h"
#include "core_transport/engine/ephemeral_keys.h"
#include "core_transport/engine/kex.h"
#include "core_transport/engine/resumption_cache.h"
#include "core_transport/engine/rng.h"
#include "core_transport/engine/secret.h"
#include "core_transport/engine/types.h"

namespace tcpcrypt {

// RFC 8548 §3.6: ciphertext length < 2^16; a frame's plaintext is one flags
// byte (plus 2 urgent bytes when URGp) and the data.
inline constexpr size_t kMaxCiphertextLen = 0xffff;
inline constexpr size_t kFrameHeaderLen = 3;  // control | clen
inline constexpr size_t kMaxFrameData =
    kMaxCiphertextLen - kAeadTagLen - 1;  // 65518
// Bounded peers (RFC 8548 §3.8). Every rekey the peer starts (a frame with
// rekey = 1 that puts its generation ahead of ours) obliges us to answer at
// once with a 20-byte frame, so a peer that sends rekeys and never reads
// could make us queue answers without bound. A peer cannot have received an
// answer we have not even handed to the carrier yet, and RFC 8548 §3.8
// forbids it to start another empty-frame rekey before it received our
// answer; so at most this many of our rekey answers may be still unsent
// (in PendingOutput, not yet ConsumeOutput'd) when the peer starts another
// rekey. Beyond it the engine fails with Error::kTooManyRekeys. It bounds
// the rekey answers queued in the engine to 64 x 20 = 1,280 bytes.
inline constexpr size_t kMaxUnsentRekeyAnswers = 64;
// Size of one rekey answer: an empty frame (header, flags byte, tag).
inline constexpr size_t kRekeyAnswerLen = kFrameHeaderLen + 1 + kAeadTagLen;

// Init1/Init2 may carry ignored trailing bytes (RFC 8548 §4.1); we accept up
// to this many in total and treat a longer message_len as malformed.
inline constexpr size_t kMaxInitMessageLen = 4096;

// KeyLogEntry is what an independent decoder needs for one connection (see
// docs/PROTOCOL.md "Key log"). Filled only when EngineConfig::export_keys.
struct KeyLogEntry {
  // Identifies the connection in a capture: N_A from Init1 for a fresh
  // handshake; the data of A's resumption suboption for a resumed one.
  std::vector<uint8_t> label;
  std::array<uint8_t, kSessionIdLen> session_id{};
  Cipher cipher = Cipher::kAes128Gcm;
  // True when the A->B direction (the active opener's stream) is encrypted
  // with k_ab (always true for fresh handshakes).
  bool a_to_b_uses_kab = true;
  SecretArray<kKLen> mk0;  // mk[0]; later generations follow by CPRF
};

struct EngineConfig {
  // TEPs, highest priority first. A offers all of them; B picks the first in
  // this list that A offered. Offering only Curve25519 lets A send Init1
  // right behind its option (one round trip saved).
  std::vector<Tep> teps = {Tep::kCurve25519};
  // AEADs, highest preference first. A advertises them in this order in
  // sym_cipher_list; B picks the first in this list that A listed.
  std::vector<Cipher> ciphers = {Cipher::kAes128Gcm, Cipher::kChaCha20Poly1305,
                                 Cipher::kAes256Gcm};

  // RFC 8547 §4.2: the application-aware bit we send, and the mandatory
  // application-aware mode (ENO fails unless the peer sent a = 1).
  bool application_aware = false;
  bool require_peer_application_aware = false;

  // Largest data chunk per frame (1 .. kMaxFrameData).
  size_t max_frame_data = kMaxFrameData;
  // Automatic rekey (RFC 8548 §3.8) after this many bytes sent under one key
  // generation; 0 disables it.
  uint64_t rekey_after_bytes = uint64_t{1} << 34;

  // Session resumption (RFC 8548 §3.5). With |resumption_cache| null the
  // engine neither offers, accepts nor caches.
  ResumptionCache* resumption_cache = nullptr;
  // Active opener: the name of the peer under which tickets are cached and
  // looked up (for example "host:port").
  std::string peer_name;
  // The two per-connection controls the RFC requires: ignore resumption
  // requests (always do fresh key exchange), and cache nothing.
  bool ignore_resumption = false;
  bool no_cache = false;
  // Resumption nonce length, 0..8; the RFC's default of 8 because we cannot
  // rule out VM cloning.
  size_t resumption_nonce_len = kMaxResumeNonceLen;

  // Passive opener: where to get (possibly reused) ephemeral key pairs. Null
  // means a fresh key pair per connection.
  EphemeralKeyCache* ephemeral_keys = nullptr;

  // Fill Engine::key_log() once keys exist (the carrier writes the file).
  bool export_keys = false;
};

class Engine {
 public:
  enum class Role : uint8_t { kActive, kPassive };
  enum class State : uint8_t {
    kIdle,           // before Start()
    kAwaitOption,    // waiting for the peer's ENO option
    kAwaitInit1,     // B: waiting for Init1
    kAwaitInit2,     // A: waiting for Init2
    kEstablished,    // keys in place; frames flow
    kFailed,         // sticky; see error()
  };

  // The engine keeps references to |rng| and |clock|; they must outlive it.
  Engine(Role role, EngineConfig config, Rng& rng, const Clock& clock);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Start queues this side's opening bytes (the ENO option, and for an
  // active opener offering only Curve25519, Init1). Call once.
  [[nodiscard]] Error Start();

  // --- carrier side -----------------------------------------------------
  // PendingOutput is the bytes waiting to be sent, in order. What the peer
  // alone can make us queue here is bounded: at most kMaxUnsentRekeyAnswers
  // rekey answers (see there); the rest is what the application wrote.
  ByteSpan PendingOutput() const;
  // ConsumeOutput drops the first |n| bytes of PendingOutput (they were sent).
  void ConsumeOutput(size_t n);
  // InputBuffer returns writable space for received bytes: at least
  // |min_size| bytes (clamped to 1 .. the input capacity, 147,460 bytes),
  // compacting or growing the buffer as needed; it is never empty while
  // the engine works. Follow with CommitInput.
  MutableByteSpan InputBuffer(size_t min_size = 4096);
  // CommitInput processes |n| bytes just written into InputBuffer(): the
  // handshake advances and complete frames are authenticated and decrypted.
  [[nodiscard]] Error CommitInput(size_t n);
  // Feed is CommitInput for bytes held elsewhere (copies them).
  [[nodiscard]] Error Feed(ByteSpan data);
  // OnCarrierEof reports that the carrier's stream ended. Before an
  // authenticated FINp this is Error::kTruncated (RFC 8548 §3.7); after it,
  // kNone. A failure wipes buffered plaintext, so a carrier that wants the
  // application to see authenticated data sent before a truncation calls
  // this only once the plaintext is drained.
  [[nodiscard]] Error OnCarrierEof();

  // --- application side -------------------------------------------------
  // Read copies up to out.size() bytes of authenticated plaintext; returns
  // the count (0: none buffered now, or failed; see peer_finished() and
  // failed()).
  size_t Read(MutableByteSpan out);
  // PeekPlaintext / ConsumePlaintext read without copying.
  ByteSpan PeekPlaintext() const;
  void ConsumePlaintext(size_t n);
  size_t plaintext_available() const;

  // Write seals |data| into frames appended to PendingOutput. Only in
  // kEstablished; Error::kClosed after Shutdown().
  [[nodiscard]] Error Write(ByteSpan data);
  // Shutdown sends the final frame with FINp (RFC 8548 §3.7). Idempotent.
  [[nodiscard]] Error Shutdown();
  // Peer-initiated rekeys are answered at once (RFC 8548 §3.8); a peer that
  // starts a rekey while kMaxUnsentRekeyAnswers of our answers are still
  // unsent fails the engine with Error::kTooManyRekeys.
  //
  // RequestRekey increments the local generation (RFC 8548 §3.8) and sends
  // an empty frame with rekey = 1. While an earlier rekey is unanswered it
  // does nothing and returns kNone (the RFC allows one outstanding empty
  // rekey).
  [[nodiscard]] Error RequestRekey();

  // --- status -----------------------------------------------------------
  State state() const { return state_; }
  bool established() const { return state_ == State::kEstablished; }
  bool failed() const { return state_ == State::kFailed; }
  Error error() const { return error_; }
  // peer_finished: an authenticated FINp has been received and all data
  // before it is buffered (end of file after the buffer drains).
  bool peer_finished() const { return peer_fin_; }
  bool local_finished() const { return local_fin_; }
  bool handshake_done() const { return state_ == State::kEstablished; }

  // Available once established.
  std::span<const uint8_t, kSessionIdLen> session_id() const {
    return session_id_;
  }
  Role role() const { return role_; }
  Tep tep() const { return tep_; }
  Cipher cipher() const { return cipher_; }
  bool resumed() const { return resumed_; }
  bool peer_application_aware() const { return peer_a_; }
  uint64_t local_generation() const { return local_gen_; }
  uint64_t remote_generation() const { return remote_gen_; }
  // Number of ECDH computations (key derivations) this engine performed:
  // 1 for a fresh handshake, 0 for a resumed one.
  uint32_t public_key_operations() const { return pk_ops_; }
  // The ENO transcript (A's option then B's, RFC 8547 §4.8).
  ByteSpan transcript() const { return transcript_; }

  // FlushResumptionState removes from the cache any ticket that resulted
  // from this connection (RFC 8548 §3.5, third application control).
  void FlushResumptionState();

  // key_log is set once established when config.export_keys is true.
  // ClearKeyLog wipes it (mk[0] must not outlive its writing to the log).
  const KeyLogEntry* key_log() const { return key_log_.get(); }
  void ClearKeyLog() { key_log_.reset(); }

 private:
  struct Direction;  // key state for one direction

  Error Fail(Error e);
  Error Process();
  Error ProcessOption();
  Error ProcessInit1();
  Error ProcessInit2();
  Error ProcessFrames();
  Error ChooseAsPassive(const EnoSynOption& a_opt);
  Error ConcludeAsActive(const EnoSynOption& b_opt);
  Error QueueOwnOption(const EnoSynOption& opt);
  Error QueueInit1();
  Error DeriveFresh(ByteSpan n_a, ByteSpan init1, ByteSpan init2, ByteSpan es);
  Error InstallSessionSecret(const SecretArray<kKLen>& ss, ByteSpan sn,
                             EnoRole original_role, uint64_t index,
                             ByteSpan log_label);
  Error SealFrame(ByteSpan data, bool fin);
  Error InitiateRekey();
  Error AnswerPeerRekey();
  uint8_t* GrowOutput(size_t n);
  void AppendOutput(ByteSpan bytes);
  uint8_t* ReservePlain(size_t n);
  void WipePlain();

  const Role role_;
  const EngineConfig config_;
  Rng& rng_;
  const Clock& clock_;
  State state_ = State::kIdle;
  Error error_ = Error::kNone;

  // Bytes received and not yet processed: in_[in_head_, in_tail_).
  std::vector<uint8_t> in_;
  size_t in_head_ = 0;
  size_t in_tail_ = 0;
  // Bytes to send: out_[out_head_, out_tail_).
  std::vector<uint8_t> out_;
  size_t out_head_ = 0;
  size_t out_tail_ = 0;
  // Stream positions: bytes ever queued for output, and ever consumed.
  uint64_t out_queued_total_ = 0;
  uint64_t out_sent_total_ = 0;
  // End positions (in out_queued_total_ terms) of our rekey answers not yet
  // consumed, oldest first: a ring of kMaxUnsentRekeyAnswers.
  std::array<uint64_t, kMaxUnsentRekeyAnswers> answer_ends_{};
  size_t answer_first_ = 0;
  size_t answer_count_ = 0;
  // Authenticated plaintext: plain_[plain_head_, plain_tail_). The first
  // kPlainHeadroom bytes are never data, so a frame can be decrypted one
  // byte early and its flags byte dropped without moving the data.
  static constexpr size_t kPlainHeadroom = 1;
  std::vector<uint8_t> plain_;
  size_t plain_head_ = kPlainHeadroom;
  size_t plain_tail_ = kPlainHeadroom;

  // Negotiation.
  std::vector<uint8_t> transcript_;  // A's option | B's option
  std::vector<uint8_t> init1_;       // A: Init1 as sent
  std::array<uint8_t, kNonceLen> nonce_a_{};
  std::unique_ptr<KexKeyPair> own_key_;  // A's ephemeral key
  std::optional<ResumptionTicket> offered_;  // A: ticket offered
  std::array<uint8_t, kResumeHalfLen + kMaxResumeNonceLen> offer_data_{};
  size_t offer_len_ = 0;
  bool init1_sent_ = false;
  Tep tep_ = Tep::kCurve25519;
  Cipher cipher_ = Cipher::kAes128Gcm;
  uint8_t session_tep_byte_ = 0;
  bool resumed_ = false;
  bool peer_a_ = false;
  uint32_t pk_ops_ = 0;

  // Keys.
  std::unique_ptr<Direction> send_;
  std::unique_ptr<Direction> recv_;
  uint64_t local_gen_ = 0;
  uint64_t remote_gen_ = 0;
  bool rekey_pending_ = false;  // next sent frame carries rekey = 1
  uint64_t send_offset_ = 0;    // frame ID of the next frame we send
  uint64_t recv_offset_ = 0;    // frame ID of the next frame we receive
  uint64_t bytes_this_gen_ = 0;
  std::array<uint8_t, kSessionIdLen> session_id_{};
  std::array<uint8_t, kResumeIdLen> cached_resume_id_{};
  bool cached_ = false;

  bool peer_fin_ = false;
  bool local_fin_ = false;
  std::unique_ptr<KeyLogEntry> key_log_;
};

std::string_view EngineStateName(Engine::State s);

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_ENGINE_H_
