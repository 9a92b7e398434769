#include "core_transport/inband/wait.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "core_transport/engine/clock.h"

namespace tcpcrypt::inband {

uint64_t NowMs() { return SteadyClock::Instance().NowMs(); }

uint64_t DeadlineAfter(int ms) {
  return ms > 0 ? NowMs() + static_cast<uint64_t>(ms) : 0;
}

WaitResult WaitFd(int fd, short events, uint64_t deadline_ms,
                  short* out_revents, int* out_errno) {
  for (;;) {
    int timeout = -1;
    if (deadline_ms != 0) {
      const uint64_t now = NowMs();
      if (now >= deadline_ms) return WaitResult::kTimeout;
      timeout =
          static_cast<int>(std::min<uint64_t>(deadline_ms - now, 1 << 30));
    }
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      *out_errno = errno;
      return WaitResult::kError;
    }
    if (r == 0) {
      if (deadline_ms == 0) continue;
      return WaitResult::kTimeout;
    }
    if ((p.revents & POLLNVAL) != 0) {
      *out_errno = EBADF;
      return WaitResult::kError;
    }
    *out_revents = p.revents;
    return WaitResult::kReady;
  }
}

void DrainBeforeClose(int fd, bool peer_done) {
  if (fd < 0) return;
  const uint64_t deadline = DeadlineAfter(kCloseDrainMs);
  size_t drained = 0;
  uint8_t buf[4096];
  while (drained < kCloseDrainBytes) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return;  // the peer's end of stream: close() sends no reset
    if (n > 0) {
      drained += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return;  // reset, ...
    if (peer_done) return;
    short revents = 0;
    int err = 0;
    if (WaitFd(fd, POLLIN, deadline, &revents, &err) != WaitResult::kReady) {
      return;
    }
  }
}

}  // namespace tcpcrypt::inband
