// tls_transport.h: a Session transport over TLS 1.3 (internal). Used by
// the "tcpcrypt, else TLS 1.3" client policy and by servers that accept both
// on one port; authenticators then endorse the RFC 9266 exporter.
#ifndef TCPCRYPT_SDK_TLS_TRANSPORT_H_
#define TCPCRYPT_SDK_TLS_TRANSPORT_H_

#include <memory>

#include "sdk/tls_stream.h"
#include "sdk/transport.h"

namespace tcpcrypt::sdk {

// FromTls maps a TLS stream's failure onto a public Status: certificate
// problems are UNAUTHENTICATED, integrity and truncation DATA_LOSS, the rest
// as for tcpcrypt.
Status FromTls(const inband::Status& s);

class TlsTransport final : public Transport {
 public:
  explicit TlsTransport(std::unique_ptr<TlsStream> stream);
  StatusOr<size_t> Read(std::span<uint8_t> out) override;
  Status WriteAll(std::span<const uint8_t> data) override { return FromTls(s_->WriteAll(data)); }
  Status Shutdown() override { return FromTls(s_->Shutdown()); }
  void Close() override { s_->Close(); }
  int fd() const override { return s_->fd(); }
  bool has_buffered() const override { return s_->has_buffered(); }
  Channel channel() const override { return Channel::kTls13; }
  std::vector<uint8_t> binding() const override { return exporter_; }
  std::string key_exchange() const override { return s_->group_name(); }
  std::string cipher() const override { return s_->cipher_name(); }
  bool resumed() const override { return s_->resumed(); }
  bool peer_application_aware() const override { return true; }
  std::string peer() const override { return s_->peer(); }
  bool ok() const { return exporter_.size() == 32; }

 private:
  std::unique_ptr<TlsStream> s_;
  std::vector<uint8_t> exporter_;  // RFC 9266 tls-exporter, 32 bytes
};

}  // namespace tcpcrypt::sdk

#endif  // TCPCRYPT_SDK_TLS_TRANSPORT_H_
