// nonblocking_transport.h: a blocking Transport over a NonBlockingConnection
// (internal to the SDK).
//
// Server::Serve runs the handshake and the authentication of many
// connections on one event loop; a connection that is ready is handed to a
// worker thread as a Session over this transport. The worker then blocks in
// poll() on the connection's socket alone, driving OnReadable / OnWritable
// itself, so the event loop never touches the connection again.
#ifndef TCPCRYPT_SDK_NONBLOCKING_TRANSPORT_H_
#define TCPCRYPT_SDK_NONBLOCKING_TRANSPORT_H_

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core_transport/inband/connection.h"
#include "sdk/transport.h"

namespace tcpcrypt::sdk {

class NonBlockingTcpcryptTransport final : public Transport {
 public:
  // |conn| has finished its handshake. |io_timeout_ms| bounds each wait of
  // Read, WriteAll and Shutdown (<= 0: none).
  NonBlockingTcpcryptTransport(std::unique_ptr<inband::NonBlockingConnection> conn,
                               int io_timeout_ms)
      : conn_(std::move(conn)), io_timeout_ms_(io_timeout_ms) {}

  StatusOr<size_t> Read(std::span<uint8_t> out) override;
  Status WriteAll(std::span<const uint8_t> data) override;
  Status Shutdown() override;
  void Close() override { conn_->Close(); }
  int fd() const override { return conn_->fd(); }
  bool has_buffered() const override { return !conn_->PeekPlaintext().empty(); }
  Channel channel() const override { return Channel::kTcpcrypt; }
  std::vector<uint8_t> binding() const override;
  std::string key_exchange() const override;
  std::string cipher() const override;
  bool resumed() const override { return conn_->resumed(); }
  bool peer_application_aware() const override;
  std::string peer() const override { return conn_->peer(); }

 private:
  // Wait polls the socket for what the connection wants (plus POLLOUT if
  // |want_out|) and runs OnReadable / OnWritable on the events.
  Status Wait(bool want_out);
  // Flush drives OnWritable until the send queue is below |limit| bytes.
  Status Flush(size_t limit);
  Status Failure() const;

  std::unique_ptr<inband::NonBlockingConnection> conn_;
  const int io_timeout_ms_;
};

}  // namespace tcpcrypt::sdk

#endif  // TCPCRYPT_SDK_NONBLOCKING_TRANSPORT_H_
