// clock.h: injected monotonic time, so tests control every time-out.
#ifndef TCPCRYPT_CORE_TRANSPORT_ENGINE_CLOCK_H_
#define TCPCRYPT_CORE_TRANSPORT_ENGINE_CLOCK_H_

#include <chrono>
#include <cstdint>

namespace tcpcrypt {

class Clock {
 public:
  virtual ~Clock() = default;
  // NowMs returns monotonic milliseconds since an arbitrary epoch.
  virtual uint64_t NowMs() const = 0;
};

class SteadyClock final : public Clock {
 public:
  uint64_t NowMs() const override {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now().time_since_epoch())
            .count());
  }
  static SteadyClock& Instance() {
    static SteadyClock clock;
    return clock;
  }
};

// ManualClock is for tests: time moves only when told to.
class ManualClock final : public Clock {
 public:
  uint64_t NowMs() const override { return now_ms_; }
  void Advance(uint64_t ms) { now_ms_ += ms; }

 private:
  uint64_t now_ms_ = 1000;
};

}  // namespace tcpcrypt

#endif  // TCPCRYPT_CORE_TRANSPORT_ENGINE_CLOCK_H_
