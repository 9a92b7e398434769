#include "auth/common/mechanism.h"

namespace tcpcrypt::auth {

std::string_view MechanismName(Mechanism m) {
  switch (m) {
    case Mechanism::kCmacPassword: return "cmac";
    case Mechanism::kPake2Plus: return "pake";
    case Mechanism::kX509Batch: return "x509";
    case Mechanism::kTicket: return "ticket";
  }
  return "unknown";
}

std::optional<Mechanism> MechanismFromName(std::string_view name) {
  for (Mechanism m : {Mechanism::kCmacPassword, Mechanism::kPake2Plus,
                      Mechanism::kX509Batch, Mechanism::kTicket}) {
    if (MechanismName(m) == name) return m;
  }
  return std::nullopt;
}

std::string_view AuthErrorName(AuthError e) {
  switch (e) {
    case AuthError::kNone: return "OK";
    case AuthError::kMalformed: return "MALFORMED";
    case AuthError::kUnexpectedMessage: return "UNEXPECTED_MESSAGE";
    case AuthError::kNoCommonMechanism: return "NO_COMMON_MECHANISM";
    case AuthError::kBadProof: return "BAD_PROOF";
    case AuthError::kCertificate: return "CERTIFICATE";
    case AuthError::kRefused: return "REFUSED";
    case AuthError::kThrottled: return "THROTTLED";
    case AuthError::kPolicy: return "POLICY";
    case AuthError::kTimeout: return "TIMEOUT";
    case AuthError::kInternal: return "INTERNAL";
  }
  return "UNKNOWN";
}

}  // namespace tcpcrypt::auth
