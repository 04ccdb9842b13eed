#pragma once
// svm_allocator<T>: a std allocator over OpenCL shared virtual memory, bound to an explicit
// context. Fine-grained (with atomics where the device has them) when available, so host and
// device touch the memory directly; otherwise coarse-grained, where the host may touch it only
// inside a memory::map_guard. It never maps implicitly (unlike CLHPP's SVMAllocator).
#include <algorithm>
#include <cstddef>
#include <limits>
#include <new>
#include <string>

#include "coexec/runtime/context.hpp"
#include "coexec/fault_injection.hpp"

namespace coexec::memory {

using runtime::svm_granularity;

template <class T>
/// A standard allocator over OpenCL shared virtual memory of an explicit context: fine-grained
/// where the device has it, else coarse-grained (host access only inside a map_guard). Never maps implicitly.
class svm_allocator {
 public:
  using value_type = T;  ///< element type, as the Allocator requirements ask

  /// Allocates with `wanted` granularity, or the finest below it that `ctx`'s device offers
  /// (ask for coarse to test or to match a coarse-only deployment). errc::unsupported when the
  /// device has no SVM at all (use device buffers there), errc::invalid_argument when `wanted` is none.
  explicit svm_allocator(runtime::context ctx, svm_granularity wanted = svm_granularity::fine)
      : context_(std::move(ctx)), granularity_(std::min(wanted, context_.caps().svm())) {
    require(wanted != svm_granularity::none, "svm_allocator: wanted granularity must be fine or coarse, not none");
    if (granularity_ == svm_granularity::none)
      throw error(errc::unsupported, "device '" + context_.caps().name + "' has no shared virtual memory");
  }

  template <class U>
  /// Rebinding copy: same context and granularity.
  svm_allocator(const svm_allocator<U>& other) noexcept : context_(other.context()), granularity_(other.granularity()) {}

  /// Allocates `n` T (128-byte aligned at least) and registers the block with the context;
  /// errc::out_of_memory when clSVMAlloc fails.
  T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    const std::size_t bytes = n * sizeof(T);
    void* p = fault_injected(fault::svm_alloc) ? nullptr
                                                            : clSVMAlloc(context_.cl_context()(), flags(), bytes == 0 ? 1 : bytes, alignment());
    if (!p)
      throw error(errc::out_of_memory, "clSVMAlloc of " + std::to_string(bytes) + " bytes failed on '" +
                                           context_.caps().name + "'");
    context_.register_svm(p, bytes);
    return static_cast<T*>(p);
  }

  /// Drains the context's queue first: a kernel may still be reading or writing the block.
  void deallocate(T* p, std::size_t) noexcept {
    if (!p) return;
    context_.queue().finish();
    context_.unregister_svm(p);
    clSVMFree(context_.cl_context()(), p);
  }

  const runtime::context& context() const noexcept { return context_; }  ///< the context allocations are made on
  svm_granularity granularity() const noexcept { return granularity_; }  ///< the granularity in use (fine or coarse)
  /// Host and device may touch the memory at the same time (needed for spin flags).
  bool fine_grained() const noexcept { return granularity_ == svm_granularity::fine; }

  template <class U>
  friend bool operator==(const svm_allocator& a, const svm_allocator<U>& b) noexcept {
    return a.context() == b.context() && a.granularity() == b.granularity();
  }

 private:
  cl_svm_mem_flags flags() const {
    cl_svm_mem_flags f = CL_MEM_READ_WRITE;
    if (fine_grained()) f |= CL_MEM_SVM_FINE_GRAIN_BUFFER;
    if (fine_grained() && context_.caps().svm_atomics) f |= CL_MEM_SVM_ATOMICS;
    return f;
  }
  static constexpr cl_uint alignment() { return alignof(T) > 128 ? alignof(T) : 128; }

  runtime::context context_;
  svm_granularity granularity_;
};

}  // namespace coexec::memory
