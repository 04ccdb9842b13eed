#pragma once
// spin_flag: a monotonically raised 32-bit flag shared between host threads, or between the
// host and kernels in fine-grained SVM with atomics. Waiters wait for "value has reached n"
// (wrap-safe), so a flag is reused by raising it further instead of resetting it.
// abort_value tells every waiter, host or kernel (kernels/sync.cl), to give up.
#include <chrono>
#include <cstdint>
#include <string>

#include "coexec/error.hpp"
#include "coexec/sync/atomic_word.hpp"
#include "coexec/sync/spin_wait.hpp"

namespace coexec::sync {

inline constexpr std::uint32_t abort_value = 0xFFFFFFFFu;  ///< tells every waiter, host or kernel, to give up (COEXEC_ABORT in kernels/sync.cl)

/// True when `value` has reached `target` in wrap-around order.
constexpr bool reached(std::uint32_t value, std::uint32_t target) noexcept {
  return static_cast<std::int32_t>(value - target) >= 0;
}

/// A monotonically raised 32-bit flag that host threads, or the host and kernels (fine-grained SVM
/// with atomics), wait on; reuse it by raising it further rather than resetting it.
class spin_flag {
 public:
  /// `word` must stay valid for the flag's uses; for kernels it must be fine-grained SVM
  /// allocated with CL_MEM_SVM_ATOMICS. errc::invalid_argument when it is null or misaligned
  /// (atomics need a naturally aligned word).
  explicit spin_flag(std::uint32_t* word) : word_(checked(word)) {}

  void raise(std::uint32_t value) const noexcept { word_.store(value); }  ///< publishes `value` (release); waiters for targets up to `value` wake
  void abort() const noexcept { word_.store(abort_value); }  ///< raises abort_value: every waiter gives up
  std::uint32_t value() const noexcept { return word_.load(); }  ///< the current value (acquire)
  bool aborted() const noexcept { return value() == abort_value; }  ///< true once abort() was called
  std::uint32_t* address() const noexcept { return word_.address(); }  ///< the flag word, to pass to a kernel

  /// Waits until the flag reaches `target`; errc::aborted if it is aborted, errc::timeout at the deadline.
  void wait(std::uint32_t target, std::chrono::nanoseconds timeout = default_timeout) const {
    spin_until(
        [&] {
          const std::uint32_t v = value();
          if (v == abort_value) throw error(errc::aborted, "spin_flag wait aborted");
          return reached(v, target);
        },
        timeout, "spin_flag wait");
  }

 private:
  static std::uint32_t* checked(std::uint32_t* word) {
    require(word != nullptr, "spin_flag: word is null");
    require(reinterpret_cast<std::uintptr_t>(word) % alignof(std::uint32_t) == 0, "spin_flag: word is not 4-byte aligned");
    return word;
  }

  atomic_word word_;
};

/// Holds a kernel launch back until a host flag reaches `value`: every operator kernel starts by
/// waiting at its gate (coexec_pass_gate in kernels/sync.cl), so a launch enqueued before its
/// input is ready starts the moment the host raises the flag, with no dispatch in between.
/// Pipelines stream layers this way. The default gate, without a flag, is open; abort_value
/// opens every gate. A flag needs fine-grained SVM with atomics (spin_flag's requirements).
struct launch_gate {
  const spin_flag* flag = nullptr;  ///< the flag to wait on; null: open
  std::uint32_t value = 0;          ///< the value it must reach

  bool open() const noexcept { return flag == nullptr; }  ///< true when the launch does not wait
};

}  // namespace coexec::sync
