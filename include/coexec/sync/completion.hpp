#pragma once
// completion: how the host learns that a launch finished, without clFinish.
//   svm_counter    the kernel's last work-group publishes the launch's epoch in a two-word sync
//                  block in fine-grained SVM (kernels/sync.cl); the host spins on it.
//   event_polling  devices without fine-grained SVM atomics (NVIDIA: coarse SVM only): the host
//                  polls the launch's event status, which is correct everywhere, only slower.
// Usage: bind(kernel, i) before enqueueing (sets the kernel's trailing `sync, epoch`
// arguments), enqueue + flush, do host work, then wait(event).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "coexec/memory/svm_vector.hpp"
#include "coexec/sync/spin_flag.hpp"
#include "coexec/fault_injection.hpp"

namespace coexec::sync {

/// Tells the host when a kernel launch finished, by an SVM counter the kernel bumps or, where the
/// device lacks fine-grained SVM atomics, by polling the launch's event. See the file comment for usage.
/// One thread at a time: bind() and wait() share the epoch of the launch in flight.
class completion {
 public:
  /// How completion is detected.
  enum class mode {
    svm_counter,   ///< the kernel publishes its epoch in fine-grained SVM; the host spins on it
    event_polling  ///< the host polls the launch's event status (any device, slower)
  };

  /// Uses the SVM counter when `wanted` is svm_counter and the device supports it; ask for
  /// event_polling to exercise the fallback on any device.
  explicit completion(const runtime::context& ctx, mode wanted = mode::svm_counter) {
    if (wanted == mode::svm_counter && ctx.caps().svm_flags()) block_.emplace(ctx, 2);
  }

  mode kind() const noexcept { return block_ ? mode::svm_counter : mode::event_polling; }  ///< the mode in use: svm_counter only where it was asked for and the device supports it

  /// Sets kernel arguments `first` (sync block, or NULL) and `first + 1` (epoch) for the next launch.
  void bind(cl::Kernel& kernel, cl_uint first) {
    require(kernel() != nullptr, "completion::bind: kernel is null");
    ++epoch_;
    if (block_) {
      coexec::detail::check(clSetKernelArgSVMPointer(kernel(), first, block_->data()), "clSetKernelArgSVMPointer(sync)");
    } else {
      // A NULL buffer, not a NULL SVM pointer: NVIDIA rejects the latter (CL_INVALID_KERNEL_ARGS).
      coexec::detail::check(clSetKernelArg(kernel(), first, sizeof(cl_mem), nullptr), "clSetKernelArg(sync)");
    }
    coexec::detail::check(clSetKernelArg(kernel(), first + 1, sizeof(cl_uint), &epoch_), "clSetKernelArg(epoch)");
  }

  /// Waits for the launch bound last. `last` is the event of the launch's final command: it is
  /// polled in event mode, and checked for failure in SVM mode so a kernel that died is an error
  /// rather than a wait until the deadline.
  void wait(const cl::Event& last, std::chrono::nanoseconds timeout = default_timeout) const {
    require(last() != nullptr, "completion::wait: last is not an event");
    unsigned polls = 0;
    spin_until(
        [&] {
          if (fault_injected(fault::no_signal)) return false;
          if (block_ && reached(atomic_word(const_cast<std::uint32_t*>(block_->data() + 1)).load(), epoch_)) return true;
          if (block_ && ++polls % 256 != 0) return false;  // event queries cost ~1 us: rarely
          return event_complete(last);
        },
        timeout, block_ ? "completion wait (SVM counter)" : "completion wait (event polling)");
  }

  /// True when the launch bound last has finished (no waiting): the SVM counter, or `last`'s status.
  bool ready(const cl::Event& last) const {
    if (fault_injected(fault::no_signal)) return false;
    if (block_ && reached(atomic_word(const_cast<std::uint32_t*>(block_->data() + 1)).load(), epoch_)) return true;
    return event_complete(last);
  }

  /// True once `event` completed; errc::opencl when the command failed.
  static bool event_complete(const cl::Event& event) {
    cl_int status = CL_QUEUED;
    coexec::detail::check(clGetEventInfo(event(), CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, nullptr),
                          "clGetEventInfo");
    if (status < 0) throw error(errc::opencl, "a coexec command failed on the device with status " + std::to_string(status), status);
    return status == CL_COMPLETE;
  }

 private:
  std::optional<memory::svm_vector<std::uint32_t>> block_;
  std::uint32_t epoch_ = 0;
};

}  // namespace coexec::sync
