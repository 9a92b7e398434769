// wait.h: bounded waits on a socket, shared by the in-band carrier and the
// SDK's TLS stream.
#ifndef TCPCRYPT_CORE_TRANSPORT_INBAND_WAIT_H_
#define TCPCRYPT_CORE_TRANSPORT_INBAND_WAIT_H_

#include <cstdint>

namespace tcpcrypt::inband {

// NowMs is the monotonic clock in milliseconds.
uint64_t NowMs();
// DeadlineAfter returns NowMs() + ms, or 0 (no deadline) for ms <= 0.
uint64_t DeadlineAfter(int ms);

enum class WaitResult : uint8_t { kReady, kTimeout, kError };

// WaitFd polls |fd| for |events| until |deadline_ms| (0: forever). EINTR
// restarts the wait with the time left. kReady sets |*out_revents|; kError
// sets |*out_errno| (EBADF for POLLNVAL).
WaitResult WaitFd(int fd, short events, uint64_t deadline_ms, short* out_revents,
                  int* out_errno);

}  // namespace tcpcrypt::inband

#endif  // TCPCRYPT_CORE_TRANSPORT_INBAND_WAIT_H_
