// engine_options.h: public options -> tcpcrypt engine configuration
// (internal).
#ifndef TCPCRYPT_SDK_ENGINE_OPTIONS_H_
#define TCPCRYPT_SDK_ENGINE_OPTIONS_H_

#include <vector>

#include "core_transport/engine/engine.h"
#include "tcpcrypt/options.h"
#include "tcpcrypt/status.h"

namespace tcpcrypt::sdk {

Tep ToTep(KeyExchange k);
Cipher ToCipher(Aead a);
Status CheckEngineOptions(const std::vector<KeyExchange>& kx, const std::vector<Aead>& aeads);
EngineConfig EngineConfigFor(const ClientOptions& o);
EngineConfig EngineConfigFor(const ServerOptions& o);

}  // namespace tcpcrypt::sdk

#endif  // TCPCRYPT_SDK_ENGINE_OPTIONS_H_
