#include "sdk/tls_transport.h"

namespace tcpcrypt::sdk {

Status FromTls(const inband::Status& s) {
  if (s.ok()) return Status();
  if (s.message.find("certificate") != std::string::npos) {
    return Status(StatusCode::kUnauthenticated, s.message);
  }
  return FromInband(s);
}

TlsTransport::TlsTransport(std::unique_ptr<TlsStream> stream) : s_(std::move(stream)) {
  if (!s_->Exporter(&exporter_).ok()) exporter_.clear();
}

StatusOr<size_t> TlsTransport::Read(std::span<uint8_t> out) {
  inband::Status st;
  const ssize_t n = s_->Read(out, &st);
  if (n < 0) return FromTls(st);
  return static_cast<size_t>(n);
}

}  // namespace tcpcrypt::sdk
