#pragma once
// spin_until: the one host-side wait loop. It spins with the CPU's pause hint (cheapest wake-up
// latency: a flag round trip is well under a microsecond), backs off to yielding the core once
// the wait gets long, and gives up at a deadline, so a dead kernel is an error and never a hang.
#include <chrono>
#include <string>
#include <thread>

#include "coexec/detail/cpu_relax.hpp"
#include "coexec/error.hpp"

namespace coexec::sync {

/// How long a host wait may take before it is errc::timeout. Generous by default: a big layer
/// on a slow device takes seconds, a device that stopped answering never finishes.
inline constexpr std::chrono::milliseconds default_timeout{30'000};

/// Calls `done()` until it returns true; throws errc::timeout naming `what` after `timeout`.
/// `done` may itself throw (e.g. errc::aborted) to end the wait.
template <class Done>
void spin_until(Done&& done, std::chrono::nanoseconds timeout, const char* what) {
  using clock = std::chrono::steady_clock;
  constexpr unsigned pure_spins = 1u << 14;  // ~100 us of pause before yielding
  const auto deadline = clock::now() + timeout;
  for (unsigned iteration = 0;; ++iteration) {
    if (done()) return;
    if (iteration < pure_spins) {
      coexec::detail::cpu_relax();
    } else {
      std::this_thread::yield();
    }
    if (iteration % 64 == 63 && clock::now() >= deadline)
      throw error(errc::timeout, std::string(what) + " timed out after " +
                                     std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) +
                                     " ms");
  }
}

}  // namespace coexec::sync
