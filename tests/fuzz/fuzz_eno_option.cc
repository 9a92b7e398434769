// fuzz_eno_option.cc: libFuzzer target for the TCP-ENO option codec
// (RFC 8547 §4).
//
// Each input is tried twice: as a whole option (so the kind and length
// checks are fuzzed too) and as option contents behind a correct kind and
// length (so most inputs reach the suboption parser). Whatever parses must
// re-encode with max_len 255, no longer than the input, and re-parse to the
// same global and suboptions; encoding that again must give the same bytes.
// Any mismatch aborts.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core_transport/engine/eno_option.h"

namespace tcpcrypt {
namespace {

void Check(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "fuzz_eno_option: property violated: %s\n", what);
    std::abort();
  }
}

bool SameBytes(ByteSpan a, ByteSpan b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

bool Inside(ByteSpan s, ByteSpan buf) {
  return s.empty() || (s.data() >= buf.data() &&
                       s.data() + s.size() <= buf.data() + buf.size());
}

void CheckSameOption(const EnoSynOption& a, const EnoSynOption& b) {
  Check(a.global == b.global, "global differs");
  Check(a.explicit_global == b.explicit_global, "explicit_global differs");
  Check(a.count == b.count, "suboption count differs");
  for (size_t i = 0; i < a.count; ++i) {
    const EnoSuboption& x = a.suboptions[i];
    const EnoSuboption& y = b.suboptions[i];
    Check(x.tep == y.tep, "tep differs");
    Check(x.v == y.v, "v differs");
    Check(SameBytes(x.data, y.data), "data differs");
  }
}

// CheckWellFormed checks invariants every parsed option must satisfy.
void CheckWellFormed(const EnoSynOption& opt, ByteSpan wire) {
  Check(opt.count <= EnoSynOption::kMaxSuboptions, "count out of range");
  Check(opt.global < kEnoFirstTep, "global not a global suboption");
  Check(opt.explicit_global || opt.global == 0, "implicit global not 0x00");
  for (size_t i = 0; i < opt.count; ++i) {
    const EnoSuboption& s = opt.suboptions[i];
    const bool last = i + 1 == opt.count;
    Check(s.tep >= kEnoFirstTep && s.tep <= 0x7f, "tep out of range");
    Check(s.v || s.data.empty(), "data without v");
    Check(Inside(s.data, wire), "data does not borrow from input");
    if (s.v && !last) {
      Check(!s.data.empty() && s.data.size() <= kEnoMaxLengthByteData,
            "non-last data length not 1..32");
    }
  }
}

void RoundTrip(ByteSpan wire) {
  EnoSynOption opt;
  if (!ParseEnoSynOption(wire, &opt)) return;
  CheckWellFormed(opt, wire);

  uint8_t buf[kMaxEnoOptionLen];
  const size_t n = EncodeEnoSynOption(opt, buf, kMaxEnoOptionLen);
  Check(n != 0, "parsed option does not re-encode");
  Check(n <= wire.size(), "re-encoding is longer than the input");
  const ByteSpan encoded(buf, n);

  EnoSynOption again;
  Check(ParseEnoSynOption(encoded, &again), "re-encoding does not parse");
  CheckWellFormed(again, encoded);
  CheckSameOption(opt, again);

  uint8_t buf2[kMaxEnoOptionLen];
  const size_t n2 = EncodeEnoSynOption(again, buf2, kMaxEnoOptionLen);
  Check(SameBytes(encoded, ByteSpan(buf2, n2)), "encoding not canonical");
}

}  // namespace
}  // namespace tcpcrypt

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tcpcrypt;
  const ByteSpan input(data, size);
  RoundTrip(input);

  if (size + 2 <= kMaxEnoOptionLen) {
    std::vector<uint8_t> framed;
    framed.reserve(size + 2);
    framed.push_back(kEnoKind);
    framed.push_back(static_cast<uint8_t>(size + 2));
    framed.insert(framed.end(), data, data + size);
    RoundTrip(framed);
  }
  return 0;
}
