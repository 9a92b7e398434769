// session_impl.h: the Session behind the public API (internal).
#ifndef TCPCRYPT_SDK_SESSION_IMPL_H_
#define TCPCRYPT_SDK_SESSION_IMPL_H_

#include <memory>
#include <mutex>
#include <vector>

#include "sdk/transport.h"
#include "tcpcrypt/session.h"

namespace tcpcrypt::sdk {

class SessionImpl final : public Session {
 public:
  SessionImpl(std::unique_ptr<Transport> transport, std::vector<PeerIdentity> identities,
              std::vector<uint8_t> leftover, bool ticket_used)
      : t_(std::move(transport)),
        identities_(std::move(identities)),
        leftover_(std::move(leftover)),
        ticket_used_(ticket_used) {}
  ~SessionImpl() override { Close(); }

  StatusOr<size_t> Read(std::span<uint8_t> out) override;
  Status Write(std::span<const uint8_t> data) override { return t_->WriteAll(data); }
  Status Shutdown() override { return t_->Shutdown(); }
  void Close() override { t_->Close(); }

  Channel channel() const override { return t_->channel(); }
  StatusOr<std::vector<uint8_t>> session_id() const override;
  std::vector<uint8_t> channel_binding() const override { return t_->binding(); }
  std::optional<PeerIdentity> peer() const override;
  std::vector<PeerIdentity> identities() const override { return identities_; }
  std::string key_exchange() const override { return t_->key_exchange(); }
  std::string cipher() const override { return t_->cipher(); }
  bool resumed() const override { return t_->resumed(); }
  bool ticket_used() const override { return ticket_used_; }
  bool peer_application_aware() const override { return t_->peer_application_aware(); }
  std::string peer_address() const override { return t_->peer(); }
  int fd() const override { return t_->fd(); }

 private:
  std::unique_ptr<Transport> t_;
  std::vector<PeerIdentity> identities_;
  std::vector<uint8_t> leftover_;  // application bytes behind the auth exchange
  size_t leftover_pos_ = 0;
  bool ticket_used_ = false;
};

}  // namespace tcpcrypt::sdk

#endif  // TCPCRYPT_SDK_SESSION_IMPL_H_
