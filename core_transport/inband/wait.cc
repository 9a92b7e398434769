#include "core_transport/inband/wait.h"

#include <poll.h>

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

}  // namespace tcpcrypt::inband
