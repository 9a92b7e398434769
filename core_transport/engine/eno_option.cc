// eno_option.cc: the TCP-ENO option codec (RFC 8547 §4).
#include "core_transport/engine/eno_option.h"

#include <algorithm>

namespace tcpcrypt {
namespace {

// RFC 8547 §4.1 Figure 4: | v | glt (7 bits) |.
constexpr uint8_t kEnoGltMask = 0x7f;
// RFC 8547 §4.4 Figure 6: a length byte is 100nnnnn; data length is nnnnn+1.
constexpr uint8_t kEnoLengthMask = 0x1f;
// RFC 8547 §4.4: the byte after a length byte must be v=1, glt >= 0x20.
constexpr uint8_t kEnoFirstTepWithData = kEnoV | kEnoFirstTep;  // 0xa0

// IsTepId reports whether |id| is a 7-bit TEP identifier (RFC 8547 §4.1
// Table 1: glt 0x20-0x7f).
bool IsTepId(uint8_t id) { return id >= kEnoFirstTep && id <= kEnoGltMask; }

}  // namespace

bool EnoSynOption::Add(uint8_t tep, bool v, ByteSpan data) {
  if (count >= kMaxSuboptions) return false;
  suboptions[count++] = EnoSuboption{tep, v, data};
  return true;
}

bool ParseEnoSynOption(ByteSpan option, EnoSynOption* out) {
  Reader r(option);
  uint8_t kind = 0;
  uint8_t len = 0;
  if (!r.ReadU8(&kind) || !r.ReadU8(&len)) return false;
  // RFC 8547 §4.1: Kind = 69, Len = N+2 counts the kind and length bytes.
  if (kind != kEnoKind || len < 2 || len != option.size()) return false;

  // Compute into a local; |*out| is written only once every check passed.
  EnoSynOption parsed;
  uint8_t b = 0;
  while (r.ReadU8(&b)) {
    const uint8_t glt = b & kEnoGltMask;
    const bool v = (b & kEnoV) != 0;

    if (!v && glt < kEnoFirstTep) {
      // RFC 8547 §4.2: a receiver MUST ignore all but the first global
      // suboption.
      if (!parsed.explicit_global) {
        parsed.global = b;
        parsed.explicit_global = true;
      }
      continue;
    }

    if (!v) {
      // RFC 8547 §4.1 Table 1: glt 0x20-0x7f, v = 0: TEP without data.
      if (!parsed.Add(glt, false)) return false;
      continue;
    }

    if (glt < kEnoFirstTep) {
      // RFC 8547 §4.4 Figure 7: length byte | TEP (v=1) | nnnnn+1 bytes.
      const size_t data_len = static_cast<size_t>(glt & kEnoLengthMask) + 1;
      uint8_t tep_byte = 0;
      // RFC 8547 §4.4 rule 2: a length byte followed by 0x00-0x9f (or by
      // nothing at all) makes the whole option invalid.
      if (!r.ReadU8(&tep_byte) || tep_byte < kEnoFirstTepWithData) {
        return false;
      }
      ByteSpan data;
      // RFC 8547 §4.4 rule 1: data must not run past the end of the option.
      if (!r.ReadBytes(data_len, &data)) return false;
      if (!parsed.Add(tep_byte & kEnoGltMask, true, data)) return false;
      continue;
    }

    // RFC 8547 §4.4: a TEP with v = 1 and no length byte extends to the end
    // of the option (possibly zero bytes).
    ByteSpan data;
    if (!r.ReadBytes(r.remaining(), &data)) return false;
    if (!parsed.Add(glt, true, data)) return false;
  }

  *out = parsed;
  return true;
}

size_t EncodeEnoSynOption(const EnoSynOption& opt, MutableByteSpan out,
                          size_t max_len) {
  if (opt.count > EnoSynOption::kMaxSuboptions) return 0;
  const size_t limit = std::min({max_len, kMaxEnoOptionLen, out.size()});

  // Pass 1: validate and measure; nothing is written unless all of it fits.
  // RFC 8547 §4.2: the global suboption is written only when needed; an
  // implicit global suboption is 0x00.
  const bool write_global = opt.explicit_global || opt.global != 0;
  // RFC 8547 §4.1 Table 1: a global suboption byte is 0x00-0x1f.
  if (write_global && opt.global >= kEnoFirstTep) return 0;
  size_t len = 2 + (write_global ? 1 : 0);  // kind, length, [global]
  if (len > limit) return 0;

  const std::span<const EnoSuboption> subs = opt.tep_suboptions();
  for (size_t i = 0; i < subs.size(); ++i) {
    const EnoSuboption& s = subs[i];
    const bool last = i + 1 == subs.size();
    if (!IsTepId(s.tep)) return 0;
    // Bounds the arithmetic below: no suboption can exceed the option.
    if (s.data.size() > kMaxEnoOptionLen) return 0;
    size_t need = 0;
    if (!s.v) {
      // RFC 8547 §4.1: with v = 0 the byte is the entire suboption.
      if (!s.data.empty()) return 0;
      need = 1;
    } else if (last) {
      // RFC 8547 §4.4: the last suboption's data length is inferred.
      need = 1 + s.data.size();
    } else {
      // RFC 8547 §4.4: a length byte designates 1 to 32 bytes of data.
      if (s.data.empty() || s.data.size() > kEnoMaxLengthByteData) return 0;
      need = 2 + s.data.size();
    }
    if (need > limit - len) return 0;
    len += need;
  }

  // Pass 2: write.
  Writer w(out.first(len));
  w.U8(kEnoKind);
  w.U8(static_cast<uint8_t>(len));
  if (write_global) w.U8(opt.global);
  for (size_t i = 0; i < subs.size(); ++i) {
    const EnoSuboption& s = subs[i];
    const bool last = i + 1 == subs.size();
    if (!s.v) {
      w.U8(s.tep);
      continue;
    }
    if (!last) {
      // RFC 8547 §4.4 Figure 6: 100nnnnn, nnnnn = length - 1.
      w.U8(static_cast<uint8_t>(kEnoV | (s.data.size() - 1)));
    }
    w.U8(static_cast<uint8_t>(kEnoV | s.tep));
    w.Bytes(s.data);
  }
  if (!w.ok() || w.written() != len) return 0;
  return len;
}

}  // namespace tcpcrypt
