#pragma once
// io_buffer<T>: memory for an operator's input or output, of the kind the operator accepts.
// Operators that share memory with their device (fine-grained SVM) read and write x and y in
// place, so those must be SVM allocations of the operator's context; operators on discrete
// devices stage x and y through device buffers and take ordinary host memory.
#include <cstddef>
#include <optional>
#include <vector>

#include "coexec/memory/svm_vector.hpp"

namespace coexec::memory {

template <class T>
/// An operator's input or output: SVM on the operator's context when it shares memory with its
/// device, ordinary host memory when it stages through device buffers.
class io_buffer {
 public:
  /// SVM on `ctx` when `shared` (pass the operator's shared_memory()), host memory otherwise.
  io_buffer(const runtime::context& ctx, std::size_t size, bool shared) {
    if (shared) {
      svm_.emplace(ctx, size);
    } else {
      host_.resize(size);
    }
  }

  T* data() noexcept { return svm_ ? svm_->data() : host_.data(); }  ///< first element
  const T* data() const noexcept { return svm_ ? svm_->data() : host_.data(); }  ///< first element
  std::size_t size() const noexcept { return svm_ ? svm_->size() : host_.size(); }  ///< number of elements
  bool shared() const noexcept { return svm_.has_value(); }  ///< true when the memory is SVM rather than host memory

 private:
  std::optional<svm_vector<T>> svm_;
  std::vector<T> host_;
};

}  // namespace coexec::memory

namespace coexec {
using memory::io_buffer;
}  // namespace coexec
