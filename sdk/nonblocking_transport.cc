#include "sdk/nonblocking_transport.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core_transport/engine/types.h"

namespace tcpcrypt::sdk {
namespace {

// WriteAll hands the connection at most this much at a time, so the send
// queue stays bounded however large the caller's buffer is.
constexpr size_t kWriteSlice = 64 * 1024;

}  // namespace

Status NonBlockingTcpcryptTransport::Failure() const {
  if (conn_->failed()) return FromInband(conn_->status());
  return Status(StatusCode::kUnavailable, "the connection to " + conn_->peer() + " is closed");
}

Status NonBlockingTcpcryptTransport::Wait(bool want_out) {
  if (conn_->failed() || conn_->fd() < 0) return Failure();
  short events = 0;
  if (conn_->wants_read()) events |= POLLIN;
  if (want_out || conn_->wants_write()) events |= POLLOUT;
  if (events == 0) {
    // Nothing can arrive and nothing is queued: the stream is over.
    return Status(StatusCode::kUnavailable, "the connection to " + conn_->peer() + " ended");
  }
  pollfd p{conn_->fd(), events, 0};
  int n;
  do {
    n = poll(&p, 1, io_timeout_ms_ <= 0 ? -1 : io_timeout_ms_);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Status(StatusCode::kUnavailable, std::string("poll: ") + std::strerror(errno));
  if (n == 0) {
    return Status(StatusCode::kDeadlineExceeded, "I/O with " + conn_->peer() + " timed out");
  }
  if ((p.revents & POLLOUT) != 0) conn_->OnWritable();
  if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0 && conn_->wants_read()) conn_->OnReadable();
  if ((p.revents & POLLNVAL) != 0) return Failure();
  return Status();
}

StatusOr<size_t> NonBlockingTcpcryptTransport::Read(std::span<uint8_t> out) {
  if (out.empty()) return size_t{0};
  for (;;) {
    const ByteSpan p = conn_->PeekPlaintext();
    if (!p.empty()) {
      const size_t n = std::min(out.size(), p.size());
      std::memcpy(out.data(), p.data(), n);
      conn_->ConsumePlaintext(n);
      return n;
    }
    if (conn_->at_eof()) return size_t{0};
    if (conn_->failed()) return FromInband(conn_->status());
    if (Status s = Wait(false); !s.ok()) return s;
  }
}

Status NonBlockingTcpcryptTransport::Flush(size_t limit) {
  while (conn_->pending_output() > limit) {
    if (conn_->failed()) return FromInband(conn_->status());
    conn_->OnWritable();
    if (conn_->pending_output() <= limit) break;
    if (Status s = Wait(true); !s.ok()) return s;
  }
  return conn_->failed() ? FromInband(conn_->status()) : Status();
}

Status NonBlockingTcpcryptTransport::WriteAll(std::span<const uint8_t> data) {
  while (!data.empty()) {
    const std::span<const uint8_t> slice = data.first(std::min(data.size(), kWriteSlice));
    if (Status s = FromInband(conn_->Write(slice)); !s.ok()) return s;
    data = data.subspan(slice.size());
    // Keep the queue small while more is to come; drain it at the end.
    if (Status s = Flush(data.empty() ? 0 : kWriteSlice); !s.ok()) return s;
  }
  return Status();
}

Status NonBlockingTcpcryptTransport::Shutdown() {
  if (Status s = FromInband(conn_->Shutdown()); !s.ok()) return s;
  if (Status s = Flush(0); !s.ok()) return s;
  // The write side is shut once the queue drained (SendSome does it).
  if (!conn_->shutdown_complete()) conn_->OnWritable();
  return conn_->failed() ? FromInband(conn_->status()) : Status();
}

std::vector<uint8_t> NonBlockingTcpcryptTransport::binding() const {
  const auto sid = conn_->session_id();
  return {sid.begin(), sid.end()};
}

std::string NonBlockingTcpcryptTransport::key_exchange() const {
  return std::string(TepName(conn_->tep()));
}

std::string NonBlockingTcpcryptTransport::cipher() const {
  return std::string(CipherName(conn_->cipher()));
}

bool NonBlockingTcpcryptTransport::peer_application_aware() const {
  return conn_->engine().peer_application_aware();
}

}  // namespace tcpcrypt::sdk
