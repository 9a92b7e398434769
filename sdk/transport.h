// transport.h: the byte streams a Session runs over (internal to the SDK).
//
// A Transport is a connected, possibly protected stream: tcpcrypt in-band,
// TLS 1.3, or plain TCP. The authentication driver and Session speak only to
// this interface, so the authenticators and the application do not change
// with the channel.
#ifndef TCPCRYPT_SDK_TRANSPORT_H_
#define TCPCRYPT_SDK_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core_transport/inband/connection.h"
#include "tcpcrypt/options.h"
#include "tcpcrypt/status.h"

namespace tcpcrypt::sdk {

class Transport {
 public:
  virtual ~Transport() = default;
  // Read: > 0 bytes, 0 at an authenticated end of file.
  virtual StatusOr<size_t> Read(std::span<uint8_t> out) = 0;
  virtual Status WriteAll(std::span<const uint8_t> data) = 0;
  virtual Status Shutdown() = 0;
  virtual void Close() = 0;
  virtual int fd() const = 0;
  // Whether Read can return data without waiting for the socket.
  virtual bool has_buffered() const = 0;
  virtual Channel channel() const = 0;
  // The channel binding value: session ID or TLS exporter; empty if none.
  virtual std::vector<uint8_t> binding() const = 0;
  virtual std::string key_exchange() const = 0;
  virtual std::string cipher() const = 0;
  virtual bool resumed() const = 0;
  virtual bool peer_application_aware() const = 0;
  virtual std::string peer() const = 0;
};

// Status mapping from the in-band carrier's results.
Status FromInband(const inband::Status& s);

class TcpcryptTransport final : public Transport {
 public:
  explicit TcpcryptTransport(std::unique_ptr<inband::Connection> conn)
      : conn_(std::move(conn)) {}
  StatusOr<size_t> Read(std::span<uint8_t> out) override;
  Status WriteAll(std::span<const uint8_t> data) override;
  Status Shutdown() override;
  void Close() override { conn_->Close(); }
  int fd() const override { return conn_->fd(); }
  bool has_buffered() const override;
  Channel channel() const override { return Channel::kTcpcrypt; }
  std::vector<uint8_t> binding() const override;
  std::string key_exchange() const override;
  std::string cipher() const override;
  bool resumed() const override { return conn_->resumed(); }
  bool peer_application_aware() const override;
  std::string peer() const override { return conn_->peer(); }
  inband::Connection& connection() { return *conn_; }

 private:
  std::unique_ptr<inband::Connection> conn_;
};

class PlainTransport final : public Transport {
 public:
  PlainTransport(inband::UniqueFd fd, std::string peer, int io_timeout_ms)
      : fd_(std::move(fd)), peer_(std::move(peer)), io_timeout_ms_(io_timeout_ms) {}
  StatusOr<size_t> Read(std::span<uint8_t> out) override;
  Status WriteAll(std::span<const uint8_t> data) override;
  Status Shutdown() override;
  void Close() override { fd_.Reset(); }
  int fd() const override { return fd_.get(); }
  bool has_buffered() const override { return false; }
  Channel channel() const override { return Channel::kPlain; }
  std::vector<uint8_t> binding() const override { return {}; }
  std::string key_exchange() const override { return ""; }
  std::string cipher() const override { return ""; }
  bool resumed() const override { return false; }
  bool peer_application_aware() const override { return false; }
  std::string peer() const override { return peer_; }

 private:
  inband::UniqueFd fd_;
  std::string peer_;
  int io_timeout_ms_;
};

// ConnectTcp opens a TCP connection (blocking, bounded by |timeout_ms|).
StatusOr<inband::UniqueFd> ConnectTcp(const std::string& host, uint16_t port,
                                      int timeout_ms);

}  // namespace tcpcrypt::sdk

#endif  // TCPCRYPT_SDK_TRANSPORT_H_
