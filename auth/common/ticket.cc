#include "auth/common/ticket.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>

#include "core_transport/engine/aead.h"
#include "core_transport/engine/bytes.h"

namespace tcpcrypt::auth {
namespace {

// Sealed ticket: key_id (4) | nonce (12) | AES-256-GCM(body) with AD =
// key_id. Body: expires_ms (8) | mechanism (1) | secret (32) |
// realm (u16 len | bytes) | name (u16 len | bytes) | n_attrs (u8) |
// n_attrs * (key (u16 len | bytes), value (u16 len | bytes)).
constexpr size_t kKeyIdLen = 4;

void PutString(std::vector<uint8_t>* out, std::string_view s) {
  const size_t n = std::min<size_t>(s.size(), 0xffff);
  out->push_back(static_cast<uint8_t>(n >> 8));
  out->push_back(static_cast<uint8_t>(n));
  out->insert(out->end(), s.begin(), s.begin() + static_cast<ptrdiff_t>(n));
}

bool GetString(Reader& r, std::string* out) {
  uint16_t n = 0;
  ByteSpan b;
  if (!r.ReadU16(&n) || !r.ReadBytes(n, &b)) return false;
  out->assign(b.begin(), b.end());
  return true;
}

}  // namespace

std::array<uint8_t, kTicketProofLen> TicketProof(const TicketSecret& secret,
                                                 std::string_view tag,
                                                 const ChannelBinding& binding) {
  std::vector<uint8_t> msg(tag.begin(), tag.end());
  const std::vector<uint8_t> b = binding.Encode();
  msg.insert(msg.end(), b.begin(), b.end());
  std::array<uint8_t, kTicketProofLen> out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), msg.data(),
       msg.size(), out.data(), &len);
  return out;
}

TicketIssuer::TicketIssuer(TicketPolicy policy, Rng& rng, const Clock& clock)
    : policy_(policy), rng_(rng), clock_(clock) {}

TicketIssuer::Key* TicketIssuer::CurrentKeyLocked(uint64_t now) {
  // Drop keys whose every ticket has expired (they sealed until created +
  // rotate_every, and tickets live lifetime beyond that).
  while (!keys_.empty() &&
         now - keys_.front().created_ms >=
             policy_.rotate_every_ms + policy_.lifetime_ms) {
    keys_.pop_front();  // SecretArray wipes itself
  }
  if (keys_.empty() || now - keys_.back().created_ms >= policy_.rotate_every_ms) {
    Key k;
    k.id = next_id_++;
    k.created_ms = now;
    rng_.Fill(k.bytes.span());
    keys_.push_back(std::move(k));
  }
  return &keys_.back();
}

bool TicketIssuer::Issue(const PeerIdentity& who, std::string_view realm,
                         std::vector<uint8_t>* out_ticket,
                         TicketSecret* out_secret) {
  const uint64_t now = clock_.NowMs();
  TicketSecret secret;
  rng_.Fill(secret.span());

  // The body holds the secret: reserve it whole up front so no growth
  // leaves an unwiped copy behind, and wipe it at the end.
  const size_t n_attrs = std::min<size_t>(who.attributes.size(), 32);
  size_t body_len = 8 + 1 + kTicketSecretLen + 2 + realm.size() + 2 +
                    who.name.size() + 1;
  {
    size_t i = 0;
    for (const auto& [k, v] : who.attributes) {
      if (i++ == n_attrs) break;
      body_len += 2 + k.size() + 2 + v.size();
    }
  }
  std::vector<uint8_t> body;
  body.reserve(body_len);
  const uint64_t expires = now + policy_.lifetime_ms;
  for (int shift = 56; shift >= 0; shift -= 8) {
    body.push_back(static_cast<uint8_t>(expires >> shift));
  }
  body.push_back(static_cast<uint8_t>(who.mechanism));
  body.insert(body.end(), secret.data(), secret.data() + secret.size());
  PutString(&body, realm);
  PutString(&body, who.name);
  body.push_back(static_cast<uint8_t>(n_attrs));
  size_t i = 0;
  for (const auto& [k, v] : who.attributes) {
    if (i++ == n_attrs) break;
    PutString(&body, k);
    PutString(&body, v);
  }

  std::vector<uint8_t> ticket(kKeyIdLen + kAeadNonceLen + body.size() + kAeadTagLen);
  bool ok = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Key* key = CurrentKeyLocked(now);
    StoreBe16(ticket.data(), static_cast<uint16_t>(key->id >> 16));
    StoreBe16(ticket.data() + 2, static_cast<uint16_t>(key->id));
    rng_.Fill(MutableByteSpan(ticket.data() + kKeyIdLen, kAeadNonceLen));
    AeadContext aead;
    ok = aead.Init(Cipher::kAes256Gcm, key->bytes.span()) &&
         aead.Seal(ByteSpan(ticket.data() + kKeyIdLen, kAeadNonceLen),
                   ByteSpan(ticket.data(), kKeyIdLen), {}, body,
                   ticket.data() + kKeyIdLen + kAeadNonceLen);
  }
  OPENSSL_cleanse(body.data(), body.size());
  if (!ok) return false;
  *out_ticket = std::move(ticket);
  *out_secret = std::move(secret);
  issued_.fetch_add(1);
  return true;
}

std::optional<TicketIssuer::Opened> TicketIssuer::Open(ByteSpan ticket) {
  if (ticket.size() < kKeyIdLen + kAeadNonceLen + kAeadTagLen ||
      ticket.size() > kMaxTicketLen) {
    return std::nullopt;
  }
  const uint32_t id = LoadBe32(ticket.data());
  const uint64_t now = clock_.NowMs();
  SecretBuffer body(ticket.size() - kKeyIdLen - kAeadNonceLen - kAeadTagLen);
  {
    std::lock_guard<std::mutex> lock(mu_);
    CurrentKeyLocked(now);  // expire old keys
    auto it = std::find_if(keys_.begin(), keys_.end(),
                           [id](const Key& k) { return k.id == id; });
    if (it == keys_.end()) return std::nullopt;
    AeadContext aead;
    if (!aead.Init(Cipher::kAes256Gcm, it->bytes.span()) ||
        !aead.Open(ticket.subspan(kKeyIdLen, kAeadNonceLen),
                   ticket.first(kKeyIdLen),
                   ticket.subspan(kKeyIdLen + kAeadNonceLen), body.data())) {
      return std::nullopt;
    }
  }
  Reader r(body.span());
  uint32_t hi = 0, lo = 0;
  uint8_t mech = 0, n_attrs = 0;
  ByteSpan secret;
  Opened out;
  if (!r.ReadU32(&hi) || !r.ReadU32(&lo) || !r.ReadU8(&mech) ||
      !r.ReadBytes(kTicketSecretLen, &secret) || !GetString(r, &out.realm) ||
      !GetString(r, &out.identity.name) || !r.ReadU8(&n_attrs)) {
    return std::nullopt;
  }
  for (uint8_t i = 0; i < n_attrs; ++i) {
    std::string k, v;
    if (!GetString(r, &k) || !GetString(r, &v)) return std::nullopt;
    out.identity.attributes[k] = v;
  }
  const uint64_t expires = (uint64_t{hi} << 32) | lo;
  if (now >= expires || mech < 1 || mech > 4) return std::nullopt;
  out.identity.mechanism = static_cast<Mechanism>(mech);
  out.secret.CopyFrom(secret);
  opened_.fetch_add(1);
  return out;
}

std::string TicketKey::Encode() const {
  std::string out;
  for (std::string_view part : {std::string_view(host), std::string_view(server_name),
                                std::string_view(realm), std::string_view(user)}) {
    out += std::to_string(part.size());
    out += ':';
    out.append(part);
  }
  out += std::to_string(port);
  return out;
}

void TicketStore::Put(const TicketKey& key, std::vector<uint8_t> ticket,
                      const TicketSecret& secret, uint64_t lifetime_ms,
                      std::vector<PeerIdentity> proven) {
  Entry e;
  e.ticket = std::move(ticket);
  e.secret.CopyFrom(secret.span());
  e.expires_ms = clock_.NowMs() + lifetime_ms;
  e.proven = std::move(proven);
  std::lock_guard<std::mutex> lock(mu_);
  entries_.insert_or_assign(key.Encode(), std::move(e));
}

bool TicketStore::Get(const TicketKey& key, Entry* out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key.Encode());
  if (it == entries_.end()) return false;
  if (clock_.NowMs() >= it->second.expires_ms) {
    entries_.erase(it);
    return false;
  }
  out->ticket = it->second.ticket;
  out->secret.CopyFrom(it->second.secret.span());
  out->expires_ms = it->second.expires_ms;
  out->proven = it->second.proven;
  return true;
}

void TicketStore::Forget(const TicketKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(key.Encode());
}

size_t TicketStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace tcpcrypt::auth
