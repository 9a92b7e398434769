// engine_options.h: public options -> tcpcrypt engine configuration
// (internal).
#ifndef TCPCRYPT_SDK_ENGINE_OPTIONS_H_
#define TCPCRYPT_SDK_ENGINE_OPTIONS_H_

#include <vector>

#include "core_transport/engine/engine.h"
#include "core_transport/inband/connection.h"
#include "tcpcrypt/options.h"
#include "tcpcrypt/status.h"

namespace tcpcrypt::sdk {

Tep ToTep(KeyExchange k);
Cipher ToCipher(Aead a);
Status CheckEngineOptions(const std::vector<KeyExchange>& kx, const std::vector<Aead>& aeads);
EngineConfig EngineConfigFor(const ClientOptions& o);
EngineConfig EngineConfigFor(const ServerOptions& o);

// Log sends |message| to |log|; with no log installed, warnings and errors
// go to stderr ("tcpcrypt: WARNING: ..."), debug and info nowhere.
void Log(const LogFn& log, LogLevel level, std::string_view message);

// SetCarrierLogging copies the key log (file and callback) and the warning
// hook (routed to |log|) of the public options into carrier options.
void SetCarrierLogging(const ClientOptions& o, inband::Options* out);
void SetCarrierLogging(const ServerOptions& o, inband::Options* out);

// WarnIfKeyLogOn logs the kWarning that keys are being exported, once per
// Client or Server, when a key log is set.
void WarnIfKeyLogOn(const LogFn& log, const std::string& key_log_file,
                    const KeyLogFn& key_log_callback);

}  // namespace tcpcrypt::sdk

#endif  // TCPCRYPT_SDK_ENGINE_OPTIONS_H_
