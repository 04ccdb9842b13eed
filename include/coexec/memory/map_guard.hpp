#pragma once
// RAII map of coarse-grained SVM for host access, on an explicit queue. On fine-grained SVM
// it does nothing: the host may already touch the memory.
#include <cstddef>

#include "coexec/runtime/context.hpp"
#include "coexec/fault_injection.hpp"

namespace coexec::memory {

/// RAII host mapping of coarse-grained SVM on a given queue; does nothing on fine-grained SVM,
/// which the host may already touch.
class map_guard {
 public:
  /// Maps [p, p + bytes) for the host (blocking) unless `fine_grained` or `bytes` is 0; unmaps on
  /// destruction. errc::invalid_argument for a null `p`, errc::opencl when the map fails.
  map_guard(const cl::CommandQueue& queue, void* p, std::size_t bytes, bool fine_grained,
            cl_map_flags flags = CL_MAP_READ | CL_MAP_WRITE)
      : queue_(queue), pointer_(fine_grained || bytes == 0 ? nullptr : p) {
    require(p != nullptr || bytes == 0, "map_guard: p is null");
    if (!pointer_) return;
    coexec::detail::check(fault_injected(fault::map)
                              ? CL_MAP_FAILURE
                              : clEnqueueSVMMap(queue_(), CL_TRUE, flags, pointer_, bytes, 0, nullptr, nullptr),
                          "clEnqueueSVMMap");
  }
  map_guard(const map_guard&) = delete;
  map_guard& operator=(const map_guard&) = delete;

  /// Unmaps and waits, so the device sees the host's writes once the guard is gone.
  ~map_guard() {
    if (!pointer_) return;
    cl::Event unmapped;
    if (clEnqueueSVMUnmap(queue_(), pointer_, 0, nullptr, &unmapped()) == CL_SUCCESS) unmapped.wait();
  }

 private:
  cl::CommandQueue queue_;
  void* pointer_;
};

}  // namespace coexec::memory
