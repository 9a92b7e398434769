#include "sdk/engine_options.h"

#include <algorithm>
#include <cstdio>
#include <string>

namespace tcpcrypt::sdk {

Tep ToTep(KeyExchange k) {
  switch (k) {
    case KeyExchange::kCurve25519: return Tep::kCurve25519;
    case KeyExchange::kP256: return Tep::kP256;
    case KeyExchange::kP521: return Tep::kP521;
  }
  return Tep::kCurve25519;
}

Cipher ToCipher(Aead a) {
  switch (a) {
    case Aead::kAes128Gcm: return Cipher::kAes128Gcm;
    case Aead::kAes256Gcm: return Cipher::kAes256Gcm;
    case Aead::kChaCha20Poly1305: return Cipher::kChaCha20Poly1305;
  }
  return Cipher::kAes128Gcm;
}

Status CheckEngineOptions(const std::vector<KeyExchange>& kx, const std::vector<Aead>& aeads) {
  if (kx.empty()) return Status(StatusCode::kInvalidArgument, "no key exchange configured");
  if (aeads.empty()) return Status(StatusCode::kInvalidArgument, "no AEAD configured");
  return Status();
}

namespace {

template <typename T, typename F>
auto Dedup(const std::vector<T>& in, F convert) {
  std::vector<decltype(convert(in[0]))> out;
  for (const T& v : in) {
    auto c = convert(v);
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  return out;
}

}  // namespace

EngineConfig EngineConfigFor(const ClientOptions& o) {
  EngineConfig c;
  c.teps = Dedup(o.key_exchanges, ToTep);
  c.ciphers = Dedup(o.aeads, ToCipher);
  return c;
}

EngineConfig EngineConfigFor(const ServerOptions& o) {
  EngineConfig c;
  c.teps = Dedup(o.key_exchanges, ToTep);
  c.ciphers = Dedup(o.aeads, ToCipher);
  return c;
}

void Log(const LogFn& log, LogLevel level, std::string_view message) {
  if (log != nullptr) {
    log(level, message);
    return;
  }
  if (level != LogLevel::kWarning && level != LogLevel::kError) return;
  const std::string text(message);
  std::fprintf(stderr, "tcpcrypt: %s: %s\n", level == LogLevel::kWarning ? "WARNING" : "ERROR",
               text.c_str());
}

namespace {

template <typename Options>
void SetCarrierLoggingOf(const Options& o, inband::Options* out) {
  out->key_log_file = o.key_log_file;
  out->key_log_callback = o.key_log_callback;
  if (o.log != nullptr) {
    out->warn = [log = o.log](std::string_view message) { log(LogLevel::kWarning, message); };
  }
}

}  // namespace

void SetCarrierLogging(const ClientOptions& o, inband::Options* out) {
  SetCarrierLoggingOf(o, out);
}

void SetCarrierLogging(const ServerOptions& o, inband::Options* out) {
  SetCarrierLoggingOf(o, out);
}

void WarnIfKeyLogOn(const LogFn& log, const std::string& key_log_file,
                    const KeyLogFn& key_log_callback) {
  if (key_log_file.empty() && key_log_callback == nullptr) return;
  std::string where;
  if (!key_log_file.empty()) where = key_log_file;
  if (key_log_callback != nullptr) {
    where += where.empty() ? "the key_log_callback" : " and the key_log_callback";
  }
  Log(log, LogLevel::kWarning,
      "key logging is on: session keys are being written to " + where +
          ": whoever reads them can decrypt everything inside the logged sessions (data, "
          "authentication messages, ticket secrets)");
}

}  // namespace tcpcrypt::sdk
