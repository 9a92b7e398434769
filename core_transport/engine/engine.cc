#include "core_transport/engine/engine.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>

#include "core_transport/engine/frame.h"
#include "core_transport/engine/init_messages.h"
#include "core_transport/engine/key_schedule.h"

namespace tcpcrypt {
namespace {

// The input buffer holds at least two whole maximum-size frames.
constexpr size_t kInputCapacity = 2 * (kFrameHeaderLen + kMaxCiphertextLen) + 16384;
// Initial size of the input buffer.
constexpr size_t kInitialInputLen = 4096;

bool Offered(const std::vector<Tep>& teps, uint8_t id) {
  return std::any_of(teps.begin(), teps.end(),
                     [id](Tep t) { return static_cast<uint8_t>(t) == id; });
}

// The half of resume[i] a host sends for its original role (RFC 8548 §3.5).
ByteSpan OwnHalf(const ResumptionTicket& t) {
  return ByteSpan(t.resume_id).subspan(
      t.original_role == EnoRole::kA ? 0 : kResumeHalfLen, kResumeHalfLen);
}
ByteSpan PeerHalf(const ResumptionTicket& t) {
  return ByteSpan(t.resume_id).subspan(
      t.original_role == EnoRole::kA ? kResumeHalfLen : 0, kResumeHalfLen);
}

// RFC 8548 §3.5: a resumption suboption is v = 1 with at least 9 bytes of
// data (identifier half) and at most 8 bytes of nonce after it.
bool IsResumptionSuboption(const EnoSuboption& s) {
  return s.v && s.data.size() >= kResumeHalfLen &&
         s.data.size() <= kResumeHalfLen + kMaxResumeNonceLen;
}

}  // namespace

// One direction's key state: mk[j], the traffic key derived from it, and an
// AEAD context keyed once with that traffic key.
struct Engine::Direction {
  MasterKey mk;
  TrafficKey key;
  AeadContext aead;
  bool kab = true;
  Cipher cipher = Cipher::kAes128Gcm;

  [[nodiscard]] bool Install(const MasterKey& mk0, bool use_kab, Cipher c) {
    mk.CopyFrom(mk0.span());
    kab = use_kab;
    cipher = c;
    return DeriveTrafficKey(mk, kab, cipher, &key) &&
           aead.Init(cipher, key.key());
  }
  // RFC 8548 §3.8: advance to generation j+1 and forget generation j.
  [[nodiscard]] bool Advance() {
    MasterKey next;
    if (!NextMasterKey(mk, &next)) return false;
    mk = std::move(next);
    return DeriveTrafficKey(mk, kab, cipher, &key) &&
           aead.Init(cipher, key.key());
  }
};

Engine::Engine(Role role, EngineConfig config, Rng& rng, const Clock& clock)
    : role_(role), config_(std::move(config)), rng_(rng), clock_(clock) {
  // The buffers start small or empty and grow on demand (input up to
  // kInputCapacity): a handshake and a short exchange never touch more than
  // a few KiB, so a fresh engine costs neither a large zero-fill nor a large
  // wipe, and an idle connection holds little memory. Output and plaintext
  // are allocated by the first frame that needs them.
  in_.resize(kInitialInputLen);
  plain_.resize(kPlainHeadroom);
}

Engine::~Engine() {
  WipePlain();
  OPENSSL_cleanse(in_.data(), in_.size());
}

Error Engine::Fail(Error e) {
  if (state_ == State::kFailed) return error_;
  state_ = State::kFailed;
  error_ = e;
  // No plaintext is delivered after a failure, and no key outlives it.
  WipePlain();
  send_.reset();
  recv_.reset();
  own_key_.reset();
  offered_.reset();
  return e;
}

// --- output buffer --------------------------------------------------------

ByteSpan Engine::PendingOutput() const {
  return ByteSpan(out_.data() + out_head_, out_tail_ - out_head_);
}

void Engine::ConsumeOutput(size_t n) {
  n = std::min(n, out_tail_ - out_head_);
  out_sent_total_ += n;
  out_head_ += n;
  if (out_head_ == out_tail_) out_head_ = out_tail_ = 0;
}

uint8_t* Engine::GrowOutput(size_t n) {
  if (out_.size() - out_tail_ < n) {
    if (out_head_ > 0) {  // compact first
      std::memmove(out_.data(), out_.data() + out_head_, out_tail_ - out_head_);
      out_tail_ -= out_head_;
      out_head_ = 0;
    }
    if (out_.size() - out_tail_ < n) out_.resize(std::max(2 * out_.size(), out_tail_ + n));
  }
  uint8_t* p = out_.data() + out_tail_;
  out_tail_ += n;
  out_queued_total_ += n;
  return p;
}

void Engine::AppendOutput(ByteSpan bytes) {
  if (bytes.empty()) return;
  std::memcpy(GrowOutput(bytes.size()), bytes.data(), bytes.size());
}

// --- plaintext buffer -----------------------------------------------------

uint8_t* Engine::ReservePlain(size_t n) {
  if (plain_head_ == plain_tail_) plain_head_ = plain_tail_ = kPlainHeadroom;
  if (plain_.size() - plain_tail_ < n) {
    const size_t live = plain_tail_ - plain_head_;
    if (plain_head_ > kPlainHeadroom) {
      std::memmove(plain_.data() + kPlainHeadroom, plain_.data() + plain_head_, live);
      plain_head_ = kPlainHeadroom;
      plain_tail_ = kPlainHeadroom + live;
    }
    if (plain_.size() - plain_tail_ < n) {
      std::vector<uint8_t> bigger(std::max(2 * plain_.size(), plain_tail_ + n));
      std::memcpy(bigger.data(), plain_.data(), plain_tail_);
      OPENSSL_cleanse(plain_.data(), plain_.size());
      plain_.swap(bigger);
    }
  }
  return plain_.data() + plain_tail_;
}

void Engine::WipePlain() {
  OPENSSL_cleanse(plain_.data(), plain_.size());
  plain_head_ = plain_tail_ = kPlainHeadroom;
}

size_t Engine::plaintext_available() const { return plain_tail_ - plain_head_; }

ByteSpan Engine::PeekPlaintext() const {
  return ByteSpan(plain_.data() + plain_head_, plain_tail_ - plain_head_);
}

void Engine::ConsumePlaintext(size_t n) {
  plain_head_ += std::min(n, plain_tail_ - plain_head_);
  if (plain_head_ == plain_tail_) plain_head_ = plain_tail_ = kPlainHeadroom;
}

size_t Engine::Read(MutableByteSpan out) {
  if (state_ == State::kFailed) return 0;
  const size_t n = std::min(out.size(), plaintext_available());
  if (n > 0) std::memcpy(out.data(), plain_.data() + plain_head_, n);
  ConsumePlaintext(n);
  return n;
}

// --- input ----------------------------------------------------------------

MutableByteSpan Engine::InputBuffer(size_t min_size) {
  min_size = std::clamp<size_t>(min_size, 1, kInputCapacity);
  if (in_.size() - in_tail_ < min_size && in_head_ > 0) {
    std::memmove(in_.data(), in_.data() + in_head_, in_tail_ - in_head_);
    in_tail_ -= in_head_;
    in_head_ = 0;
  }
  // Grow (doubling, at most to kInputCapacity, which holds two whole frames
  // plus slack) so that a partial frame always has room to complete.
  if (in_.size() - in_tail_ < min_size && in_.size() < kInputCapacity) {
    in_.resize(std::min(kInputCapacity, std::max(2 * in_.size(), in_tail_ + min_size)));
  }
  return MutableByteSpan(in_.data() + in_tail_, in_.size() - in_tail_);
}

Error Engine::CommitInput(size_t n) {
  if (state_ == State::kFailed) return error_;
  if (state_ == State::kIdle) return Error::kWrongState;
  if (n > in_.size() - in_tail_) return Fail(Error::kInternal);
  in_tail_ += n;
  return Process();
}

Error Engine::Feed(ByteSpan data) {
  while (!data.empty()) {
    if (state_ == State::kFailed) return error_;
    MutableByteSpan space = InputBuffer(data.size());
    if (space.empty()) return Fail(Error::kInternal);
    const size_t n = std::min(space.size(), data.size());
    std::memcpy(space.data(), data.data(), n);
    data = data.subspan(n);
    if (Error e = CommitInput(n); e != Error::kNone) return e;
  }
  return state_ == State::kFailed ? error_ : Error::kNone;
}

Error Engine::OnCarrierEof() {
  if (state_ == State::kFailed) return error_;
  // RFC 8548 §3.7: end of file only with an authenticated FINp; a carrier
  // EOF without one is an error distinct from EOF.
  if (peer_fin_) return Error::kNone;
  return Fail(Error::kTruncated);
}

Error Engine::Process() {
  for (;;) {
    const State before = state_;
    const size_t head_before = in_head_;
    Error e = Error::kNone;
    switch (state_) {
      case State::kAwaitOption:
        e = ProcessOption();
        break;
      case State::kAwaitInit1:
        e = ProcessInit1();
        break;
      case State::kAwaitInit2:
        e = ProcessInit2();
        break;
      case State::kEstablished:
        e = ProcessFrames();
        break;
      case State::kIdle:
        return Error::kWrongState;
      case State::kFailed:
        return error_;
    }
    if (e != Error::kNone) return Fail(e);
    if (state_ == before && in_head_ == head_before) return Error::kNone;
    if (in_head_ == in_tail_) {
      in_head_ = in_tail_ = 0;
      if (state_ == before) return Error::kNone;
    }
  }
}

// --- handshake ------------------------------------------------------------

Error Engine::Start() {
  if (state_ != State::kIdle) return Error::kWrongState;
  if (config_.teps.empty() || config_.ciphers.empty() ||
      config_.ciphers.size() > 255 || config_.max_frame_data == 0 ||
      config_.max_frame_data > kMaxFrameData ||
      config_.resumption_nonce_len > kMaxResumeNonceLen) {
    return Error::kInvalidArgument;
  }
  state_ = State::kAwaitOption;
  if (role_ == Role::kPassive) return Error::kNone;  // B answers A's option

  // RFC 8547 §4.2: A's b bit is 0; the global suboption is implicit unless
  // the a bit is set.
  EnoSynOption opt;
  opt.global = config_.application_aware ? kEnoGlobalA : 0;
  opt.explicit_global = config_.application_aware;

  // RFC 8548 §3.5: offer the lowest unused ss[i] for this peer; the entry
  // leaves the cache now, whatever the outcome.
  if (config_.resumption_cache != nullptr && !config_.ignore_resumption &&
      !config_.peer_name.empty()) {
    offered_ = config_.resumption_cache->TakeForPeer(config_.peer_name,
                                                     clock_.NowMs());
    if (offered_ && !Offered(config_.teps, static_cast<uint8_t>(offered_->tep))) {
      offered_.reset();
    }
  }
  for (Tep t : config_.teps) {
    if (offered_ && t == offered_->tep) continue;  // offered below, with data
    if (!opt.Add(static_cast<uint8_t>(t), false)) return Fail(Error::kInternal);
  }
  if (offered_) {
    // Figures 2/3: TEP-byte (v = 1) | our half of resume[i] | nonce. It goes
    // last, so its length is implied by the option length.
    ByteSpan half = OwnHalf(*offered_);
    std::copy(half.begin(), half.end(), offer_data_.begin());
    rng_.Fill(MutableByteSpan(offer_data_.data() + kResumeHalfLen,
                              config_.resumption_nonce_len));
    offer_len_ = kResumeHalfLen + config_.resumption_nonce_len;
    if (!opt.Add(static_cast<uint8_t>(offered_->tep), true,
                 ByteSpan(offer_data_.data(), offer_len_))) {
      return Fail(Error::kInternal);
    }
  }
  if (Error e = QueueOwnOption(opt); e != Error::kNone) return Fail(e);

  // ARCHITECTURE decision 3: offering exactly one TEP and no resumption, A
  // already knows the outcome and sends Init1 right behind its option.
  if (!offered_ && config_.teps.size() == 1) {
    tep_ = config_.teps[0];
    if (Error e = QueueInit1(); e != Error::kNone) return Fail(e);
  }
  return Error::kNone;
}

Error Engine::QueueOwnOption(const EnoSynOption& opt) {
  std::array<uint8_t, kMaxEnoOptionLenInSyn> buf{};
  const size_t n = EncodeEnoSynOption(opt, buf);
  if (n == 0) return Error::kInvalidArgument;
  AppendOutput(ByteSpan(buf.data(), n));
  // RFC 8547 §4.8: transcript = A's option | B's option.
  if (role_ == Role::kActive) {
    transcript_.assign(buf.begin(), buf.begin() + n);
  } else {
    transcript_.insert(transcript_.end(), buf.begin(), buf.begin() + n);
  }
  return Error::kNone;
}

Error Engine::ProcessOption() {
  const size_t avail = in_tail_ - in_head_;
  if (avail < 1) return Error::kNone;
  const uint8_t* p = in_.data() + in_head_;
  if (p[0] != kEnoKind) return Error::kEnoAbsent;
  if (avail < 2) return Error::kNone;
  const size_t len = p[1];
  // RFC 8547 §4.4: a malformed option is ignored and encryption disabled.
  if (len < 2) return Error::kEnoFailed;
  if (avail < len) return Error::kNone;
  ByteSpan option(p, len);
  EnoSynOption parsed;
  if (!ParseEnoSynOption(option, &parsed)) return Error::kEnoFailed;
  in_head_ += len;  // frame IDs count from the first byte after the option
  if (role_ == Role::kActive) {
    transcript_.insert(transcript_.end(), option.begin(), option.end());
    return ConcludeAsActive(parsed);
  }
  transcript_.assign(option.begin(), option.end());
  return ChooseAsPassive(parsed);
}

// B's side of RFC 8547 §4.5 and RFC 8548 §3.2/§3.5: pick one TEP, resuming
// when A names a secret we hold.
Error Engine::ChooseAsPassive(const EnoSynOption& a_opt) {
  peer_a_ = a_opt.a();
  EnoSynOption reply;
  reply.global = kEnoGlobalB | (config_.application_aware ? kEnoGlobalA : 0);
  reply.explicit_global = true;  // RFC 8547 §4.2: B MUST send it explicitly

  // RFC 8547 §4.3: both sides claiming role B fails ENO; §4.2 mandatory
  // application-aware mode fails ENO unless the peer set a = 1.
  const bool roles_ok = !a_opt.b();
  const bool aware_ok = !config_.require_peer_application_aware || a_opt.a();

  std::optional<ResumptionTicket> ticket;
  std::array<uint8_t, kResumeHalfLen + kMaxResumeNonceLen> reply_data{};
  size_t reply_len = 0;
  ByteSpan peer_nonce;
  ByteSpan label;
  if (roles_ok && aware_ok && config_.resumption_cache != nullptr &&
      !config_.ignore_resumption) {
    for (const EnoSuboption& s : a_opt.tep_suboptions()) {
      std::optional<Tep> tep = TepFromId(s.tep);
      if (!tep || !Offered(config_.teps, s.tep) || !IsResumptionSuboption(s)) {
        continue;
      }
      ticket = config_.resumption_cache->TakeForAccept(
          s.data.first(kResumeHalfLen), *tep, clock_.NowMs());
      if (ticket) {
        peer_nonce = s.data.subspan(kResumeHalfLen);
        label = s.data;
        break;
      }
    }
  }

  if (ticket) {
    ByteSpan half = OwnHalf(*ticket);
    std::copy(half.begin(), half.end(), reply_data.begin());
    rng_.Fill(MutableByteSpan(reply_data.data() + kResumeHalfLen,
                              config_.resumption_nonce_len));
    reply_len = kResumeHalfLen + config_.resumption_nonce_len;
    tep_ = ticket->tep;
    if (!reply.Add(static_cast<uint8_t>(tep_), true,
                   ByteSpan(reply_data.data(), reply_len))) {
      return Error::kInternal;
    }
  } else if (roles_ok && aware_ok) {
    // Our preference order; any suboption of A's with the TEP counts as an
    // offer of fresh key agreement (RFC 8548 §3.2, §3.5).
    for (Tep t : config_.teps) {
      const auto subs = a_opt.tep_suboptions();
      if (std::any_of(subs.begin(), subs.end(), [t](const EnoSuboption& s) {
            return s.tep == static_cast<uint8_t>(t);
          })) {
        tep_ = t;
        if (!reply.Add(static_cast<uint8_t>(t), false)) return Error::kInternal;
        break;
      }
    }
  }

  // A vacuous reply still tells A cleanly that ENO failed.
  if (Error e = QueueOwnOption(reply); e != Error::kNone) return e;
  if (reply.vacuous()) return Error::kEnoFailed;

  // RFC 8547 §5.1: the session ID's first byte is B's TEP byte, v included.
  session_tep_byte_ = static_cast<uint8_t>(tep_) | (ticket ? kEnoV : 0);
  if (!ticket) {
    state_ = State::kAwaitInit1;
    return Error::kNone;
  }

  // RFC 8548 §3.5: sn[i] = nonce_a | nonce_b, by original roles.
  ByteSpan own_nonce(reply_data.data() + kResumeHalfLen,
                     config_.resumption_nonce_len);
  std::array<uint8_t, kMaxSessionNonceLen> sn{};
  Writer w(sn);
  w.Bytes(ticket->original_role == EnoRole::kA ? own_nonce : peer_nonce);
  w.Bytes(ticket->original_role == EnoRole::kA ? peer_nonce : own_nonce);
  resumed_ = true;
  cipher_ = ticket->cipher;
  return InstallSessionSecret(ticket->ss, w.data(), ticket->original_role,
                              ticket->index, label);
}

// A's side of RFC 8547 §4.5: the negotiated TEP is the last valid TEP in B's
// option that A also sent.
Error Engine::ConcludeAsActive(const EnoSynOption& b_opt) {
  peer_a_ = b_opt.a();
  if (!b_opt.b()) return Error::kEnoFailed;  // RFC 8547 §4.3: B sets b = 1
  if (config_.require_peer_application_aware && !b_opt.a()) {
    return Error::kEnoFailed;
  }
  const auto subs = b_opt.tep_suboptions();
  bool mismatch = false;
  for (size_t k = subs.size(); k-- > 0;) {
    const EnoSuboption& s = subs[k];
    std::optional<Tep> tep = TepFromId(s.tep);
    if (!tep || !Offered(config_.teps, s.tep)) continue;
    if (IsResumptionSuboption(s)) {
      // RFC 8548 §3.5: a resumption answer must carry the other half of the
      // identifier we offered; otherwise it MUST be ignored.
      if (!offered_ || offered_->tep != *tep ||
          CRYPTO_memcmp(s.data.data(), PeerHalf(*offered_).data(),
                        kResumeHalfLen) != 0) {
        mismatch = true;
        continue;
      }
      tep_ = *tep;
      session_tep_byte_ = s.tep | kEnoV;
      ByteSpan own_nonce(offer_data_.data() + kResumeHalfLen,
                         offer_len_ - kResumeHalfLen);
      ByteSpan peer_nonce = s.data.subspan(kResumeHalfLen);
      std::array<uint8_t, kMaxSessionNonceLen> sn{};
      Writer w(sn);
      w.Bytes(offered_->original_role == EnoRole::kA ? own_nonce : peer_nonce);
      w.Bytes(offered_->original_role == EnoRole::kA ? peer_nonce : own_nonce);
      resumed_ = true;
      cipher_ = offered_->cipher;
      ResumptionTicket t = std::move(*offered_);
      offered_.reset();
      return InstallSessionSecret(t.ss, w.data(), t.original_role, t.index,
                                  ByteSpan(offer_data_.data(), offer_len_));
    }
    // Fresh key agreement with this TEP (v = 0, or v = 1 with under 9 bytes
    // of data, which RFC 8548 §3.5 says to treat as v = 0).
    if (init1_sent_ && *tep != tep_) continue;  // cannot happen: one TEP sent
    tep_ = *tep;
    session_tep_byte_ = s.tep | (s.v ? kEnoV : 0);
    offered_.reset();  // the offered secret is spent either way
    if (!init1_sent_) {
      if (Error e = QueueInit1(); e != Error::kNone) return e;
    }
    state_ = State::kAwaitInit2;
    return Error::kNone;
  }
  offered_.reset();
  return mismatch ? Error::kResumptionMismatch : Error::kEnoFailed;
}

Error Engine::QueueInit1() {
  own_key_ = KexKeyPair::Generate(tep_, rng_);
  if (own_key_ == nullptr) return Error::kInternal;
  rng_.Fill(nonce_a_);
  init1_.resize(Init1Length(config_.ciphers.size(), tep_));
  if (EncodeInit1(config_.ciphers, nonce_a_, own_key_->public_wire(), tep_,
                  init1_) != init1_.size()) {
    return Error::kInternal;
  }
  AppendOutput(init1_);
  send_offset_ += init1_.size();
  init1_sent_ = true;
  return Error::kNone;
}

// B: Init1 arrives; answer with Init2 and derive the keys.
Error Engine::ProcessInit1() {
  const size_t avail = in_tail_ - in_head_;
  if (avail < kInitPrefixLen) return Error::kNone;
  const uint8_t* p = in_.data() + in_head_;
  size_t len = 0;
  if (Error e = InitMessageLength(ByteSpan(p, kInitPrefixLen), kInit1Magic,
                                  Init1Length(1, tep_), kMaxInitMessageLen, &len);
      e != Error::kNone) {
    return e;
  }
  if (avail < len) return Error::kNone;
  ByteSpan msg(p, len);
  Init1 init1;
  if (Error e = ParseInit1(msg, tep_, &init1); e != Error::kNone) return e;

  // RFC 8548 §3.3: B selects sym_cipher from A's list, by B's preference.
  std::optional<Cipher> chosen;
  for (Cipher c : config_.ciphers) {
    for (size_t i = 0; i < init1.cipher_count() && !chosen; ++i) {
      if (init1.cipher_id(i) == static_cast<uint16_t>(c)) chosen = c;
    }
    if (chosen) break;
  }
  if (!chosen) return Error::kNoCommonCipher;

  std::shared_ptr<const KexKeyPair> key =
      config_.ephemeral_keys != nullptr
          ? config_.ephemeral_keys->Get(tep_, rng_, clock_)
          : std::shared_ptr<const KexKeyPair>(KexKeyPair::Generate(tep_, rng_));
  if (key == nullptr) return Error::kInternal;
  SecretBuffer es;
  ++pk_ops_;
  if (Error e = key->Derive(init1.pub, &es); e != Error::kNone) return e;

  std::array<uint8_t, kNonceLen> nonce_b{};
  rng_.Fill(nonce_b);
  std::vector<uint8_t> init2(Init2Length(tep_));
  if (EncodeInit2(*chosen, nonce_b, key->public_wire(), tep_, init2) !=
      init2.size()) {
    return Error::kInternal;
  }
  cipher_ = *chosen;
  if (Error e = DeriveFresh(init1.nonce, msg, init2, es.span()); e != Error::kNone) {
    return e;
  }
  // Init2 follows our option; frames can only be appended after it.
  AppendOutput(init2);
  send_offset_ += init2.size();
  in_head_ += len;
  recv_offset_ += len;
  return Error::kNone;
}

// A: Init2 arrives; check the cipher and derive the keys.
Error Engine::ProcessInit2() {
  const size_t avail = in_tail_ - in_head_;
  if (avail < kInitPrefixLen) return Error::kNone;
  const uint8_t* p = in_.data() + in_head_;
  size_t len = 0;
  if (Error e = InitMessageLength(ByteSpan(p, kInitPrefixLen), kInit2Magic,
                                  Init2Length(tep_), kMaxInitMessageLen, &len);
      e != Error::kNone) {
    return e;
  }
  if (avail < len) return Error::kNone;
  ByteSpan msg(p, len);
  Init2 init2;
  if (Error e = ParseInit2(msg, tep_, &init2); e != Error::kNone) return e;
  // RFC 8548 §3.3: a sym_cipher A did not offer aborts the connection.
  std::optional<Cipher> cipher = CipherFromId(init2.cipher_id);
  if (!cipher || std::find(config_.ciphers.begin(), config_.ciphers.end(),
                           *cipher) == config_.ciphers.end()) {
    return Error::kCipherNotOffered;
  }
  SecretBuffer es;
  ++pk_ops_;
  if (Error e = own_key_->Derive(init2.pub, &es); e != Error::kNone) return e;
  cipher_ = *cipher;
  if (Error e = DeriveFresh(nonce_a_, init1_, msg, es.span()); e != Error::kNone) {
    return e;
  }
  own_key_.reset();  // forward secrecy: the ephemeral key is gone
  in_head_ += len;
  recv_offset_ += len;
  return Error::kNone;
}

Error Engine::DeriveFresh(ByteSpan n_a, ByteSpan init1, ByteSpan init2,
                          ByteSpan es) {
  SessionSecret ss0;
  if (!ComputeSs0(n_a, transcript_, init1, init2, es, &ss0)) {
    return Error::kInternal;
  }
  std::vector<uint8_t> label(n_a.begin(), n_a.end());
  return InstallSessionSecret(ss0, {},
                              role_ == Role::kActive ? EnoRole::kA : EnoRole::kB, 0,
                              label);
}

Error Engine::InstallSessionSecret(const SessionSecret& ss, ByteSpan sn,
                                   EnoRole original_role, uint64_t index,
                                   ByteSpan log_label) {
  MasterKey mk0;
  std::array<uint8_t, kSessionIdLen> sid{};
  if (!FirstMasterKey(ss, sn, &mk0) ||
      !DeriveSessionId(ss, sn, session_tep_byte_, &sid)) {
    return Error::kInternal;
  }
  // RFC 8548 §3.3/§3.5: the host that was A in the original session sends
  // with k_ab[j], whatever its role now.
  const bool send_kab = original_role == EnoRole::kA;
  auto send = std::make_unique<Direction>();
  auto recv = std::make_unique<Direction>();
  if (!send->Install(mk0, send_kab, cipher_) ||
      !recv->Install(mk0, !send_kab, cipher_)) {
    return Error::kInternal;
  }

  // RFC 8548 §3.5: cache ss[i+1] and forget ss[i].
  if (config_.resumption_cache != nullptr && !config_.no_cache &&
      (role_ == Role::kPassive || !config_.peer_name.empty())) {
    ResumptionTicket t;
    if (!NextSessionSecret(ss, &t.ss) || !DeriveResumeId(t.ss, &t.resume_id)) {
      return Error::kInternal;
    }
    t.tep = tep_;
    t.cipher = cipher_;
    t.original_role = original_role;
    t.index = index + 1;
    t.expires_ms = clock_.NowMs() + config_.resumption_cache->lifetime_ms();
    cached_resume_id_ = t.resume_id;
    cached_ = true;
    if (role_ == Role::kActive) {
      config_.resumption_cache->PutForPeer(config_.peer_name, std::move(t));
    } else {
      config_.resumption_cache->PutForAccept(std::move(t));
    }
  }

  if (config_.export_keys) {
    key_log_ = std::make_unique<KeyLogEntry>();
    key_log_->label.assign(log_label.begin(), log_label.end());
    key_log_->session_id = sid;
    key_log_->cipher = cipher_;
    // The active opener (A now) sends with k_ab iff it was A originally.
    key_log_->a_to_b_uses_kab =
        (role_ == Role::kActive) == (original_role == EnoRole::kA);
    key_log_->mk0.CopyFrom(mk0.span());
  }

  send_ = std::move(send);
  recv_ = std::move(recv);
  session_id_ = sid;
  state_ = State::kEstablished;
  return Error::kNone;
}

void Engine::FlushResumptionState() {
  if (cached_ && config_.resumption_cache != nullptr) {
    config_.resumption_cache->Forget(cached_resume_id_);
  }
  cached_ = false;
}

// --- frames ---------------------------------------------------------------

Error Engine::ProcessFrames() {
  for (;;) {
    const size_t avail = in_tail_ - in_head_;
    if (avail < kFrameHeaderLen) break;
    const uint8_t* p = in_.data() + in_head_;
    const uint8_t control = p[0];
    const size_t clen = LoadBe16(p + 1);
    // The plaintext holds at least the flags byte.
    if (clen < kAeadTagLen + 1) return Error::kMalformedMessage;
    if (avail < kFrameHeaderLen + clen) break;
    // RFC 8548 §3.7: FINp is on the last frame; nothing may follow it.
    if (peer_fin_) return Error::kProtocolViolation;

    // RFC 8548 §3.8: rekey = 1 means this frame uses the next generation.
    // (cres bits are ignored.) A failure below is sticky, so advancing the
    // receive key before authenticating leaves nothing half-done.
    const bool rekey = (control & kControlRekey) != 0;
    if (rekey && !recv_->Advance()) return Error::kInternal;

    const auto nonce = FrameNonce(recv_->key.nonce_randomizer(), recv_offset_);
    const size_t plen = clen - kAeadTagLen;
    // Decrypt one byte early: the flags byte lands on the byte before the
    // buffer's tail (headroom or the previous frame's last byte, saved and
    // restored), so the data lands exactly at the tail.
    uint8_t* dst = ReservePlain(plen) - 1;
    const uint8_t saved = *dst;
    if (!recv_->aead.Open(nonce, ByteSpan(p, kFrameHeaderLen),
                          ByteSpan(p + kFrameHeaderLen, clen), dst)) {
      OPENSSL_cleanse(dst + 1, plen - 1);
      *dst = saved;
      return Error::kAeadFailure;
    }
    const uint8_t flags = *dst;
    *dst = saved;
    size_t data_len = plen - 1;
    if ((flags & kFlagUrg) != 0) {
      // RFC 8548 §4.2.1: URGp adds a 2-byte urgent field before the data.
      // Urgent data is delivered in line; the pointer itself is dropped.
      if (data_len < 2) return Error::kProtocolViolation;
      data_len -= 2;
      std::memmove(dst + 1, dst + 3, data_len);
    }
    plain_tail_ += data_len;
    in_head_ += kFrameHeaderLen + clen;
    recv_offset_ += kFrameHeaderLen + clen;
    if ((flags & kFlagFin) != 0) peer_fin_ = true;

    if (rekey && ++remote_gen_ > local_gen_) {
      // Catch up, and answer at once with rekey = 1 (an empty frame if need
      // be), one answer per generation so the peer can follow.
      local_gen_ = remote_gen_;
      if (!send_->Advance()) return Error::kInternal;
      bytes_this_gen_ = 0;
      rekey_pending_ = true;
      if (!local_fin_) {
        if (Error e = AnswerPeerRekey(); e != Error::kNone) return e;
      }
    }
  }
  return Error::kNone;
}

// AnswerPeerRekey queues the answer to a rekey the peer started, unless too
// many earlier answers are still unsent: the peer cannot have read them,
// so it is starting rekeys without reading (RFC 8548 §3.8 allows one
// outstanding empty-frame rekey), and answering would queue output without
// bound.
Error Engine::AnswerPeerRekey() {
  while (answer_count_ > 0 && answer_ends_[answer_first_] <= out_sent_total_) {
    answer_first_ = (answer_first_ + 1) % kMaxUnsentRekeyAnswers;
    --answer_count_;
  }
  if (answer_count_ >= kMaxUnsentRekeyAnswers) return Error::kTooManyRekeys;
  if (Error e = SealFrame({}, false); e != Error::kNone) return e;
  answer_ends_[(answer_first_ + answer_count_) % kMaxUnsentRekeyAnswers] =
      out_queued_total_;
  ++answer_count_;
  return Error::kNone;
}

Error Engine::InitiateRekey() {
  ++local_gen_;
  if (!send_->Advance()) return Fail(Error::kInternal);
  bytes_this_gen_ = 0;
  rekey_pending_ = true;
  return Error::kNone;
}

Error Engine::SealFrame(ByteSpan data, bool fin) {
  if (config_.rekey_after_bytes != 0 &&
      bytes_this_gen_ >= config_.rekey_after_bytes && !rekey_pending_) {
    if (Error e = InitiateRekey(); e != Error::kNone) return e;
  }
  const uint8_t control = rekey_pending_ ? kControlRekey : 0;
  const uint8_t flags = fin ? kFlagFin : 0;
  const size_t clen = 1 + data.size() + kAeadTagLen;
  uint8_t* out = GrowOutput(kFrameHeaderLen + clen);
  const auto header = FrameHeader(control, static_cast<uint16_t>(clen));
  std::memcpy(out, header.data(), header.size());
  const auto nonce = FrameNonce(send_->key.nonce_randomizer(), send_offset_);
  if (!send_->aead.Seal(nonce, header, ByteSpan(&flags, 1), data,
                        out + kFrameHeaderLen)) {
    return Fail(Error::kInternal);
  }
  rekey_pending_ = false;
  send_offset_ += kFrameHeaderLen + clen;
  bytes_this_gen_ += kFrameHeaderLen + clen;
  return Error::kNone;
}

Error Engine::Write(ByteSpan data) {
  if (state_ == State::kFailed) return error_;
  if (state_ != State::kEstablished) return Error::kWrongState;
  if (local_fin_) return Error::kClosed;
  while (!data.empty()) {
    const size_t n = std::min(data.size(), config_.max_frame_data);
    if (Error e = SealFrame(data.first(n), false); e != Error::kNone) return e;
    data = data.subspan(n);
  }
  return Error::kNone;
}

Error Engine::Shutdown() {
  if (state_ == State::kFailed) return error_;
  if (state_ != State::kEstablished) return Error::kWrongState;
  if (local_fin_) return Error::kNone;
  // RFC 8548 §3.7: FINp on the last frame, and on no other.
  if (Error e = SealFrame({}, true); e != Error::kNone) return e;
  local_fin_ = true;
  return Error::kNone;
}

Error Engine::RequestRekey() {
  if (state_ == State::kFailed) return error_;
  if (state_ != State::kEstablished) return Error::kWrongState;
  if (local_fin_) return Error::kClosed;
  // RFC 8548 §3.8: at most one empty-frame rekey outstanding.
  if (remote_gen_ < local_gen_) return Error::kNone;
  if (Error e = InitiateRekey(); e != Error::kNone) return e;
  return SealFrame({}, false);
}

std::string_view EngineStateName(Engine::State s) {
  switch (s) {
    case Engine::State::kIdle: return "idle";
    case Engine::State::kAwaitOption: return "await-option";
    case Engine::State::kAwaitInit1: return "await-init1";
    case Engine::State::kAwaitInit2: return "await-init2";
    case Engine::State::kEstablished: return "established";
    case Engine::State::kFailed: return "failed";
  }
  return "unknown";
}

}  // namespace tcpcrypt
