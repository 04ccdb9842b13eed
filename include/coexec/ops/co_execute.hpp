#pragma once
// co_execute: the one co-execution step every operator takes. The device part is enqueued
// first (it starts while the CPU works), the CPU part runs on the calling thread's pool, then
// the host waits for the device through `completion` — even after a CPU failure, since the
// device still writes into the output — and the failure, if any, is rethrown.
//
// A device part that fails (its launch, its kernel's build, or no completion by the timeout) is
// first made to end — nothing may write into the output once the call returned — and then
// either raised or, with device_failure::run_on_cpu, recomputed on the CPU.
#include <chrono>
#include <cstddef>
#include <exception>
#include <optional>
#include <string>

#include "coexec/cpu/thread_pool.hpp"
#include "coexec/runtime/context.hpp"
#include "coexec/sync/completion.hpp"

namespace coexec::ops {

/// What one co-executed run measured. The device time runs from its enqueue to its completion
/// as seen by the host. When the device finished before the CPU part, the host only saw it at the
/// CPU's end: the device's time then comes from its last command's profiling timestamps, from
/// its enqueue to its end (where the context's queue profiles: runtime::context_options::profiling)
/// or, without them, is that upper bound (`device_exact` false).
struct run_record {
  std::size_t split = 0;  ///< the split the run used
  double cpu_seconds = 0;     ///< the CPU part, start to end
  double device_seconds = 0;  ///< the device part, from its enqueue to its completion as seen by the host
  double total_seconds = 0;   ///< the whole run
  bool device_exact = true;  ///< false when device_seconds is only an upper bound
  /// The device part failed and the CPU recomputed it (device_failure::run_on_cpu): the output
  /// is correct, the timings describe no co-executed run.
  bool device_recomputed = false;
  /// The host's enqueue of the device part, which the CPU part starts after: on PoCL it wakes the
  /// device's threads, 3-30 µs, a large part of a small layer.
  double dispatch_seconds = 0;
};

/// Shows `run` of `shape` to a planner that learns from measurements (one with observe(), such as
/// plan::predicted's online correction). A run whose device part the CPU recomputed is not shown:
/// its device time is the CPU's and would teach the planner a wrong one. `run` keeps its own type
/// (conv2d_record adds the dimension the run cut along).
template <class Planner, class Shape, class Record>
void show_planner(Planner& planner, const Shape& shape, const Record& run) {
  if constexpr (requires { planner.observe(shape, run); })
    if (!run.device_recomputed) planner.observe(shape, run);
}

/// Keeps `pool`'s workers spinning while the host waits for a device part on `ctx`
/// (thread_pool::keep_awake), so the CPU work after it starts them within a microsecond instead of
/// the 12-20 µs of a wake from sleep. Holds nothing where the device is a CPU device: its threads
/// share the cores (or their hyperthread siblings) with the spinning workers, which slowed the
/// device part they wait for (the emulated SoC, pocl-16: BM_ConvNet/mbv2/gpu 5.71 -> 6.55 ms).
inline cpu::thread_pool::awake keep_awake_for_device(cpu::thread_pool& pool, const runtime::context& ctx) {
  if (ctx.caps().is_cpu) return {};
  return pool.keep_awake();
}

/// What an operator does when the device part of a run fails: its launch fails (errc::opencl),
/// its kernel does not build (errc::build_failure), device memory runs out (errc::out_of_memory),
/// or it does not complete within the timeout (errc::timeout). Argument errors are always raised.
enum class device_failure {
  raise,       ///< throw the error; the call's output is incomplete
  run_on_cpu,  ///< recompute the device's part on the CPU; the call's output is complete and correct
};

/// The device side of one operator across its runs: its failure policy, and a device part that
/// failed and would not end. A failed run returns only after its device part ended (the guard
/// waits up to one more timeout for it), so nothing writes into that call's output afterwards.
/// A part still running then is *lost*: the run raises errc::timeout whatever the policy, and the
/// operator refuses work with errc::aborted until that part ended, since until then it may still
/// read the call's input and write its output (keep both alive; the operator may be used again
/// once it ended, e.g. after context::finish()). Freeing SVM waits for the queue to drain, so
/// destroying the operator or the call's buffers waits for the lost part too.
class device_guard {
 public:
  /// Guards the device side of operator `op` (named in messages) on `ctx`, failing as `policy` says.
  device_guard(const runtime::context& ctx, device_failure policy, std::string op)
      : context_(ctx), policy_(policy), op_(std::move(op)) {}

  device_failure policy() const noexcept { return policy_; }  ///< what a failed device part does

  /// errc::aborted while a lost device part has not ended; forgets it once it has.
  void require_settled() {
    if (lost_() == nullptr) return;
    if (!ended(lost_))
      throw error(errc::aborted, op_ + ": the device part of an earlier call failed and is still running; it may still write "
                                       "into that call's output, so this operator takes no work until it ended");
    lost_ = cl::Event();
  }

  /// Waits up to `grace` for the failed device part that ends with `last` (null when its launch
  /// failed: then for everything enqueued so far) to end. errc::timeout, remembering the part as
  /// lost, when it does not; `failure` is the original error, quoted in that message.
  void settle(const cl::Event& last, std::chrono::nanoseconds grace, const std::exception_ptr& failure) {
    cl::Event pending = last;
    if (pending() == nullptr) {
      coexec::detail::check(context_.queue().enqueueMarkerWithWaitList(nullptr, &pending), "clEnqueueMarkerWithWaitList");
      coexec::detail::check(context_.queue().flush(), "clFlush");
    }
    try {
      sync::spin_until([&] { return ended(pending); }, grace, "waiting for a failed device part to end");
    } catch (const error& e) {
      if (e.code() != errc::timeout) throw;
      lost_ = pending;
      throw error(errc::timeout, op_ + ": the device part failed (" + message(failure) + ") and was still running " +
                                     std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(grace).count()) +
                                     " ms later; it may still write into this call's output, so this operator takes no "
                                     "work until it ended");
    }
  }

  /// True when the policy is run_on_cpu and `failure` is a device failure (see device_failure).
  bool recovers(const std::exception_ptr& failure) const {
    if (policy_ != device_failure::run_on_cpu) return false;
    try {
      std::rethrow_exception(failure);
    } catch (const error& e) {
      return e.code() == errc::opencl || e.code() == errc::build_failure || e.code() == errc::out_of_memory ||
             e.code() == errc::timeout;
    } catch (...) {
      return false;
    }
  }

 private:
  // A command has ended when it completed or failed (negative status).
  static bool ended(const cl::Event& event) {
    cl_int status = CL_QUEUED;
    coexec::detail::check(clGetEventInfo(event(), CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, nullptr),
                          "clGetEventInfo");
    return status <= CL_COMPLETE;
  }

  static std::string message(const std::exception_ptr& failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      return e.what();
    } catch (...) {
      return "unknown exception";
    }
  }

  runtime::context context_;
  device_failure policy_;
  std::string op_;
  cl::Event lost_;
};

/// Seconds from `event`'s enqueue to its end by the device's profiling clock; nullopt where the
/// queue does not profile or the command has not ended (an SVM counter can signal completion
/// before the driver marks the command complete).
inline std::optional<double> queued_to_end_seconds(const cl::Event& event) {
  cl_ulong queued = 0, ended = 0;
  if (clGetEventProfilingInfo(event(), CL_PROFILING_COMMAND_QUEUED, sizeof queued, &queued, nullptr) != CL_SUCCESS ||
      clGetEventProfilingInfo(event(), CL_PROFILING_COMMAND_END, sizeof ended, &ended, nullptr) != CL_SUCCESS || ended < queued)
    return std::nullopt;
  return static_cast<double>(ended - queued) * 1e-9;
}

/// Runs `enqueue_device()` (returns the event of the device part's last command) when
/// `device_part`, then `run_cpu()`, then waits up to `timeout`; returns the timings (split left 0).
/// When the device part fails, `device` makes it end and then raises the failure or, by its
/// policy, calls `recompute_device_part()` to compute the device's part on the CPU.
template <class EnqueueDevice, class RunCpu, class RecomputeDevicePart>
run_record co_execute(sync::completion& completion, device_guard& device, std::chrono::nanoseconds timeout, bool device_part,
                      EnqueueDevice&& enqueue_device, RunCpu&& run_cpu, RecomputeDevicePart&& recompute_device_part) {
  using clock = std::chrono::steady_clock;
  device.require_settled();
  const auto start = clock::now();
  cl::Event device_done;
  std::exception_ptr device_error, cpu_error;
  const auto on_device = [&](auto&& step) {  // a device failure waits until the CPU part is done
    if (device_error) return;
    try {
      step();
    } catch (...) {
      device_error = std::current_exception();
    }
  };
  if (device_part) on_device([&] { device_done = enqueue_device(); });
  const auto cpu_start = clock::now();
  try {
    run_cpu();
  } catch (...) {
    cpu_error = std::current_exception();
  }
  const auto cpu_end = clock::now();
  bool device_first = false;
  if (device_part)
    on_device([&] {
      device_first = completion.ready(device_done);
      completion.wait(device_done, timeout);
    });
  std::optional<double> device_queued_to_end;  // of its last command, where the device finished first and the queue profiles
  if (device_first && !device_error) device_queued_to_end = queued_to_end_seconds(device_done);
  bool recomputed = false;
  if (device_error) {
    device.settle(device_done, timeout, device_error);
    if (!cpu_error) {
      if (!device.recovers(device_error)) std::rethrow_exception(device_error);
      recompute_device_part();
      recomputed = true;
    }
  }
  if (cpu_error) std::rethrow_exception(cpu_error);
  const auto end = clock::now();
  const auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };
  // The enqueue stamps a command queued before it wakes the device (the costly part of the
  // dispatch), so a one-command device part's time is its queued-to-end time; a part of several
  // commands is timed from its last one's enqueue.
  const double device_seconds = !device_part ? 0.0 : device_queued_to_end.value_or(seconds(end - start));
  return {.cpu_seconds = seconds(cpu_end - cpu_start),
          .device_seconds = device_seconds,
          .total_seconds = seconds(end - start),
          .device_exact = !device_first || device_queued_to_end.has_value(),
          .device_recomputed = recomputed,
          .dispatch_seconds = seconds(cpu_start - start)};
}

}  // namespace coexec::ops
