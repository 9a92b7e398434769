// throttle.h: the hook that limits failed authentication attempts.
//
// AuthServer asks Allow() before it runs a password mechanism for a user,
// and reports the outcome. A refused attempt fails like a wrong password
// (the peer learns nothing more), and the local error is kThrottled.
#ifndef TCPCRYPT_AUTH_COMMON_THROTTLE_H_
#define TCPCRYPT_AUTH_COMMON_THROTTLE_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "core_transport/engine/clock.h"

namespace tcpcrypt::auth {

class Throttle {
 public:
  virtual ~Throttle() = default;
  virtual bool Allow(std::string_view user) = 0;
  virtual void OnFailure(std::string_view user) = 0;
  virtual void OnSuccess(std::string_view user) = 0;
};

// FailureWindowThrottle allows at most |max_failures| failures per user in
// any |window_ms|; a success clears the user's count. Thread-safe.
class FailureWindowThrottle final : public Throttle {
 public:
  FailureWindowThrottle(uint32_t max_failures, uint64_t window_ms,
                        const Clock& clock = SteadyClock::Instance())
      : max_failures_(max_failures), window_ms_(window_ms), clock_(clock) {}

  bool Allow(std::string_view user) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = state_.find(std::string(user));
    if (it == state_.end()) return true;
    if (clock_.NowMs() - it->second.first_ms >= window_ms_) {
      state_.erase(it);
      return true;
    }
    return it->second.failures < max_failures_;
  }
  void OnFailure(std::string_view user) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto& s = state_[std::string(user)];
    if (s.failures == 0) s.first_ms = clock_.NowMs();
    ++s.failures;
  }
  void OnSuccess(std::string_view user) override {
    std::lock_guard<std::mutex> lock(mu_);
    state_.erase(std::string(user));
  }

 private:
  struct State {
    uint32_t failures = 0;
    uint64_t first_ms = 0;
  };
  const uint32_t max_failures_;
  const uint64_t window_ms_;
  const Clock& clock_;
  std::mutex mu_;
  std::map<std::string, State> state_;
};

}  // namespace tcpcrypt::auth

#endif  // TCPCRYPT_AUTH_COMMON_THROTTLE_H_
