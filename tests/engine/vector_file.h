// vector_file.h: reads the known-answer files in tests/vectors.
//
// Format: '#' lines and blank lines are ignored; "Case <name>" starts a
// record; every other line is "<key> = <value>" (the value may be empty).
// Byte values are hex. Header-only so each test binary can include it.
#ifndef TCPCRYPT_TESTS_ENGINE_VECTOR_FILE_H_
#define TCPCRYPT_TESTS_ENGINE_VECTOR_FILE_H_

#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tcpcrypt::testing {

// Hex decodes |hex| (lower or upper case, even length), or nullopt.
inline std::optional<std::vector<uint8_t>> Hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return std::nullopt;
  std::vector<uint8_t> out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<uint8_t>((hi << 4) | lo));
  }
  return out;
}

// HexOrDie is Hex for literals in test code; a bad literal yields an empty
// vector, which every known-answer check then fails on.
inline std::vector<uint8_t> HexOrDie(std::string_view hex) {
  return Hex(hex).value_or(std::vector<uint8_t>{});
}

// ToHex encodes |bytes| as lower-case hex, for readable test failures.
inline std::string ToHex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

struct VectorRecord {
  std::string name;
  std::map<std::string, std::string> fields;

  bool Has(const std::string& key) const { return fields.count(key) != 0; }
  // Bytes decodes field |key| as hex; nullopt if absent or not hex.
  std::optional<std::vector<uint8_t>> Bytes(const std::string& key) const {
    auto it = fields.find(key);
    if (it == fields.end()) return std::nullopt;
    return Hex(it->second);
  }
};

// ReadVectorFile parses TCPCRYPT_VECTORS_DIR/|name|. Returns nullopt if the
// file cannot be opened or a line is malformed.
inline std::optional<std::vector<VectorRecord>> ReadVectorFile(
    const std::string& name) {
  std::ifstream in(std::string(TCPCRYPT_VECTORS_DIR) + "/" + name);
  if (!in) return std::nullopt;
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
      s.remove_prefix(1);
    }
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
      s.remove_suffix(1);
    }
    return s;
  };
  std::vector<VectorRecord> records;
  std::string line;
  while (std::getline(in, line)) {
    const std::string_view l = trim(line);
    if (l.empty() || l.front() == '#') continue;
    if (l.substr(0, 5) == "Case ") {
      records.push_back(VectorRecord{std::string(trim(l.substr(5))), {}});
      continue;
    }
    const size_t eq = l.find('=');
    if (eq == std::string_view::npos || records.empty()) return std::nullopt;
    const std::string key(trim(l.substr(0, eq)));
    if (key.empty() || records.back().Has(key)) return std::nullopt;
    records.back().fields[key] = std::string(trim(l.substr(eq + 1)));
  }
  return records;
}

}  // namespace tcpcrypt::testing

#endif  // TCPCRYPT_TESTS_ENGINE_VECTOR_FILE_H_
