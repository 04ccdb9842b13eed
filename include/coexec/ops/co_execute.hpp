#pragma once
// co_execute: the one co-execution step every operator takes. The device part is enqueued
// first (it starts while the CPU works), the CPU part runs on the calling thread's pool, then
// the host waits for the device through `completion` — even after a CPU failure, since the
// device still writes into the output — and the failure, if any, is rethrown.
#include <chrono>
#include <cstddef>
#include <exception>

#include "coexec/sync/completion.hpp"

namespace coexec::ops {

/// What one co-executed run measured. The device time runs from its enqueue to its completion
/// as seen by the host; when the device finished before the CPU part, the host only saw it at
/// the CPU's end, so `device_seconds` is then an upper bound (`device_exact` false).
struct run_record {
  std::size_t split = 0;  ///< the split the run used
  double cpu_seconds = 0;     ///< the CPU part, start to end
  double device_seconds = 0;  ///< the device part, from its enqueue to its completion as seen by the host
  double total_seconds = 0;   ///< the whole run
  bool device_exact = true;  ///< false when device_seconds is only an upper bound
};

/// Runs `enqueue_device()` (returns the event of the device part's last command) when
/// `device_part`, then `run_cpu()`, then waits; returns the timings (split left 0).
template <class EnqueueDevice, class RunCpu>
run_record co_execute(sync::completion& completion, std::chrono::nanoseconds timeout, bool device_part,
                      EnqueueDevice&& enqueue_device, RunCpu&& run_cpu) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const cl::Event device_done = device_part ? enqueue_device() : cl::Event();
  const auto cpu_start = clock::now();
  std::exception_ptr cpu_failure;
  try {
    run_cpu();
  } catch (...) {
    cpu_failure = std::current_exception();
  }
  const auto cpu_end = clock::now();
  const bool device_first = device_part && completion.ready(device_done);
  if (device_part) completion.wait(device_done, timeout);
  if (cpu_failure) std::rethrow_exception(cpu_failure);
  const auto end = clock::now();
  const auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };
  return {0, seconds(cpu_end - cpu_start), device_part ? seconds(end - start) : 0.0, seconds(end - start), !device_first};
}

}  // namespace coexec::ops
