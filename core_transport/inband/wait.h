// wait.h: bounded waits on a socket, shared by the in-band carrier and the
// SDK's TLS stream.
#ifndef TCPCRYPT_CORE_TRANSPORT_INBAND_WAIT_H_
#define TCPCRYPT_CORE_TRANSPORT_INBAND_WAIT_H_

#include <cstddef>
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

// Graceful close (no lost replies). close() on a TCP socket whose receive
// queue holds unread bytes, or that later receives bytes, makes the kernel
// send a reset, and a reset can destroy at the peer the last bytes we sent
// (our reply and our end of file) before the peer read them. So once our
// write side is shut down, a connection reads and discards what the peer
// still sends until the peer's end of stream, within these bounds, and
// only then closes:
inline constexpr int kCloseDrainMs = 250;                      // total wait
inline constexpr size_t kCloseDrainBytes = size_t{256} << 10;  // discarded

// DrainBeforeClose reads and discards bytes from |fd| until the peer's end
// of stream, an error, kCloseDrainBytes bytes or kCloseDrainMs
// milliseconds, whichever comes first. With |peer_done| (the peer's
// authenticated end of file already arrived, so at most its TCP FIN can
// follow) it takes only what is queued now and does not wait. It never
// writes, so it raises no SIGPIPE. The caller closes |fd| afterwards.
void DrainBeforeClose(int fd, bool peer_done);

}  // namespace tcpcrypt::inband

#endif  // TCPCRYPT_CORE_TRANSPORT_INBAND_WAIT_H_
