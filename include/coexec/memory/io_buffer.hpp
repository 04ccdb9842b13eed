#pragma once
// io_buffer<T>: memory for an operator's input or output, of the kind the operator accepts.
// Operators that share memory with their device (fine-grained SVM) read and write x and y in
// place, so those must be SVM allocations of the operator's context; operators on discrete
// devices stage x and y through device buffers and take host memory, which io_buffer pins
// where the driver allows: a buffer allocated with CL_MEM_ALLOC_HOST_PTR and kept mapped. The
// driver copies to and from pinned memory by DMA, from pageable memory through a bounce
// buffer: on the H100, 1.6 MB read back in 39 us instead of 287, written in 42 instead of 157.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "coexec/memory/svm_vector.hpp"

namespace coexec::memory {

/// Host memory of `bytes` (> 0) that stays mapped from a CL_MEM_ALLOC_HOST_PTR buffer of `ctx`
/// for its lifetime: page-locked on drivers that pin such buffers. Move-only.
class pinned_host_memory {
 public:
  /// errc::opencl (or out_of_memory) when the driver cannot allocate or map it.
  pinned_host_memory(const runtime::context& ctx, std::size_t bytes) : queue_(ctx.queue()) {
    cl_int status = CL_SUCCESS;
    buffer_ = cl::Buffer(ctx.cl_context(), CL_MEM_ALLOC_HOST_PTR | CL_MEM_READ_WRITE, bytes, nullptr, &status);
    detail::check(status, "clCreateBuffer(CL_MEM_ALLOC_HOST_PTR)");
    data_ = queue_.enqueueMapBuffer(buffer_, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, bytes, nullptr, nullptr, &status);
    detail::check(status, "clEnqueueMapBuffer(pinned host memory)");
  }
  /// Takes `other`'s mapping, leaving it empty.
  pinned_host_memory(pinned_host_memory&& other) noexcept
      : queue_(std::move(other.queue_)), buffer_(std::move(other.buffer_)), data_(std::exchange(other.data_, nullptr)) {}
  pinned_host_memory& operator=(pinned_host_memory&&) = delete;
  pinned_host_memory(const pinned_host_memory&) = delete;
  pinned_host_memory& operator=(const pinned_host_memory&) = delete;
  /// Unmaps behind the queue's pending commands, which may still copy from or into the memory.
  ~pinned_host_memory() {
    if (data_) queue_.enqueueUnmapMemObject(buffer_, data_);
  }

  void* data() const noexcept { return data_; }  ///< the mapped memory

 private:
  cl::CommandQueue queue_;
  cl::Buffer buffer_;
  void* data_ = nullptr;
};

template <class T>
/// An operator's input or output, zero-initialised: SVM on the operator's context when it
/// shares memory with its device, pinned host memory when it stages through device buffers
/// (ordinary host memory where the driver cannot pin it). Move-only.
class io_buffer {
 public:
  /// SVM on `ctx` when `shared` (pass the operator's shared_memory()), host memory otherwise.
  io_buffer(const runtime::context& ctx, std::size_t size, bool shared) {
    if (shared) {
      svm_.emplace(ctx, size);
      view_ = svm_->span();
      return;
    }
    try {
      pinned_.emplace(ctx, std::max<std::size_t>(size, 1) * sizeof(T));
      view_ = {static_cast<T*>(pinned_->data()), size};
      std::memset(static_cast<void*>(view_.data()), 0, size * sizeof(T));
    } catch (const error&) {  // the driver pins no more: pageable memory still works, only slower
      pageable_.resize(size);
      view_ = pageable_;
    }
  }
  io_buffer(io_buffer&&) noexcept = default;  ///< takes the memory; data() stays where it was
  io_buffer& operator=(io_buffer&&) = delete;

  T* data() noexcept { return view_.data(); }  ///< first element
  const T* data() const noexcept { return view_.data(); }  ///< first element
  std::size_t size() const noexcept { return view_.size(); }  ///< number of elements
  bool shared() const noexcept { return svm_.has_value(); }  ///< true when the memory is SVM rather than host memory
  bool pinned() const noexcept { return pinned_.has_value(); }  ///< true when host memory the driver pins

 private:
  std::optional<svm_vector<T>> svm_;
  std::optional<pinned_host_memory> pinned_;
  std::vector<T> pageable_;
  std::span<T> view_;  // into whichever of the three holds the memory
};

}  // namespace coexec::memory

namespace coexec {
using memory::io_buffer;
}  // namespace coexec
