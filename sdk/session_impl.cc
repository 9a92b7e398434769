#include "sdk/session_impl.h"

#include <algorithm>
#include <cstring>

namespace tcpcrypt::sdk {

StatusOr<size_t> SessionImpl::Read(std::span<uint8_t> out) {
  if (leftover_pos_ < leftover_.size()) {
    const size_t n = std::min(out.size(), leftover_.size() - leftover_pos_);
    std::memcpy(out.data(), leftover_.data() + leftover_pos_, n);
    leftover_pos_ += n;
    return n;
  }
  return t_->Read(out);
}

StatusOr<std::vector<uint8_t>> SessionImpl::session_id() const {
  if (t_->channel() != Channel::kTcpcrypt) {
    return Status(StatusCode::kFailedPrecondition,
                  std::string("no session ID: the session runs over ") +
                      std::string(ChannelName(t_->channel())));
  }
  return t_->binding();
}

std::optional<PeerIdentity> SessionImpl::peer() const {
  if (identities_.empty()) return std::nullopt;
  return identities_.back();
}

}  // namespace tcpcrypt::sdk
