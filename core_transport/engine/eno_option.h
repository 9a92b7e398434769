// eno_option.h: the TCP-ENO option codec (RFC 8547 §4).
//
// Only the codec lives here: bytes <-> structure, and the RFC's rules for
// which options are malformed. Choosing the negotiated TEP (which needs the
// resumption cache) is the engine's job.
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_ENO_OPTION_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_ENO_OPTION_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "core_transport/engine/bytes.h"

namespace tcpcrypt {

// RFC 8547 §4.1: TCP option kind 69; Len counts kind and length bytes.
inline constexpr uint8_t kEnoKind = 69;
// The option length byte caps an option at 255 bytes; a real SYN has at most
// 40 bytes of options, so Encode refuses anything longer than that.
inline constexpr size_t kMaxEnoOptionLen = 255;
inline constexpr size_t kMaxEnoOptionLenInSyn = 40;
// RFC 8547 §4.2 Figure 5: global suboption bits.
inline constexpr uint8_t kEnoGlobalB = 0x01;  // passive role bit
inline constexpr uint8_t kEnoGlobalA = 0x02;  // application-aware bit
// RFC 8547 §4.1 Table 1.
inline constexpr uint8_t kEnoV = 0x80;
inline constexpr uint8_t kEnoFirstTep = 0x20;
// RFC 8547 §4.4: at most 32 bytes of data behind a length byte.
inline constexpr size_t kEnoMaxLengthByteData = 32;

// EnoSuboption is one TEP suboption. |data| borrows from the parsed buffer.
struct EnoSuboption {
  uint8_t tep = 0;      // 7-bit glt, >= 0x20
  bool v = false;       // suboption carries variable-length data
  ByteSpan data;        // empty when !v (may also be empty when v)
};

// EnoSynOption is a parsed (or to-be-encoded) SYN-form ENO option.
struct EnoSynOption {
  static constexpr size_t kMaxSuboptions = kMaxEnoOptionLen;

  // RFC 8547 §4.2: the first global suboption, or the implicit 0x00 when
  // none is present. Later global suboptions are ignored on receipt.
  uint8_t global = 0;
  // Whether a global suboption byte was (or is to be) present on the wire.
  bool explicit_global = false;
  std::array<EnoSuboption, kMaxSuboptions> suboptions{};
  size_t count = 0;

  bool b() const { return (global & kEnoGlobalB) != 0; }
  bool a() const { return (global & kEnoGlobalA) != 0; }
  bool vacuous() const { return count == 0; }  // RFC 8547 §4.6
  std::span<const EnoSuboption> tep_suboptions() const {
    return {suboptions.data(), count};
  }
  // Add appends a TEP suboption; false if full.
  bool Add(uint8_t tep, bool v, ByteSpan data = {});
};

// ParseEnoSynOption parses a whole SYN-form option, kind and length bytes
// included (|option| must be exactly option[1] bytes long). Returns false if
// the option must be ignored and encryption disabled: wrong kind, length
// byte < 2 or != option.size(), a length byte whose data would run past the
// end, or a length byte followed by a byte in 0x00-0x9f (RFC 8547 §4.4). The
// reserved z bits are kept in |global| but carry no meaning. On failure
// |*out| is left unchanged. On success each suboption's |data| borrows from
// |option|, which must outlive |*out|.
[[nodiscard]] bool ParseEnoSynOption(ByteSpan option, EnoSynOption* out);

// EncodeEnoSynOption writes |opt| (kind, length, suboptions) into |out|.
// The global suboption is written first when explicit_global is set or any
// bit of |global| is set. A suboption with v and data is written last-form
// (length inferred) when it is the final suboption, and behind a length byte
// otherwise. Returns the number of bytes written, or 0 if the option would
// exceed |max_len| (default: what fits in a SYN; values above 255 act as
// 255), a non-final suboption has more than 32 bytes of data, a TEP id is
// < 0x20 or > 0x7f, or |out| is too small. It also returns 0 for options no
// receiver could read back: a non-final suboption with v and empty data (a
// length byte cannot say 0), a suboption without v that has data, or a
// global byte >= 0x20 that would be written. The z bits of |global| are
// written as given (RFC 8547 §4.2 says to send them as zero; that is the
// caller's policy). Nothing is written to |out| when 0 is returned.
size_t EncodeEnoSynOption(const EnoSynOption& opt, MutableByteSpan out,
                          size_t max_len = kMaxEnoOptionLenInSyn);

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_ENO_OPTION_H_
