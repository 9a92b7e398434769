// auth_driver.h: runs an authentication exchange (auth/common) over an
// in-band tcpcrypt connection. Internal to the SDK.
#ifndef TCPCRYPT_SDK_AUTH_DRIVER_H_
#define TCPCRYPT_SDK_AUTH_DRIVER_H_

#include <functional>
#include <string>
#include <vector>

#include "auth/common/auth_session.h"
#include "core_transport/inband/connection.h"
#include "sdk/transport.h"

namespace tcpcrypt::sdk {

// Waker lets a mechanism on another thread (the batch signer) wake the
// driver: Wake() is async-signal-safe and thread-safe.
class Waker {
 public:
  Waker();
  ~Waker();
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;
  void Wake() const;
  int fd() const { return fd_; }
  // Drain clears pending wake-ups; returns whether there was one.
  bool Drain() const;
  std::function<void()> Callback() const {
    return [this] { Wake(); };
  }

 private:
  int fd_ = -1;
};

struct AuthRunResult {
  auth::AuthError error = auth::AuthError::kNone;
  std::string detail;
  // Application bytes that arrived behind the last authentication message.
  std::vector<uint8_t> leftover;
  bool ok() const { return error == auth::AuthError::kNone; }
  // ToStatus maps the outcome onto the public codes: time-outs are
  // DEADLINE_EXCEEDED, a broken connection UNAVAILABLE, every refusal
  // UNAUTHENTICATED.
  Status ToStatus() const;
};

// RunAuthentication drives |endpoint| (already Start()ed) over |conn| until
// it is done or failed, or |timeout_ms| passes. |waker| must be the one
// whose Callback() the endpoint was created with (or null if none).
AuthRunResult RunAuthentication(Transport& transport, auth::AuthEndpoint& endpoint,
                                const Waker* waker, int timeout_ms);
// The same over a bare in-band connection (not owned).
AuthRunResult RunAuthentication(inband::Connection& conn,
                                auth::AuthEndpoint& endpoint,
                                const Waker* waker, int timeout_ms);

}  // namespace tcpcrypt::sdk

#endif  // TCPCRYPT_SDK_AUTH_DRIVER_H_
