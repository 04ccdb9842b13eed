#pragma once
// svm_vector<T>: a fixed-size array of trivially copyable T in SVM, value-initialised, owned
// through svm_allocator (so it is freed only after the context's queue drained). On
// coarse-grained devices host access goes through map(); on fine-grained ones map() is free.
#include <cstring>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>

#include "coexec/memory/map_guard.hpp"
#include "coexec/memory/svm_allocator.hpp"

namespace coexec::memory {

template <class T>
/// A fixed-size, zero-initialised array of trivially copyable T in SVM, freed only after the
/// context's queue drained. Move-only. On coarse-grained SVM access it from the host through map().
class svm_vector {
  static_assert(std::is_trivially_copyable_v<T>, "svm_vector holds plain data shared with kernels");

 public:
  /// `size` zeroed elements on `ctx`, of `wanted` granularity or the finest below it the device has.
  svm_vector(const runtime::context& ctx, std::size_t size, svm_granularity wanted = svm_granularity::fine)
      : allocator_(ctx, wanted), size_(size) {
    data_ = allocator_.allocate(size_);
    try {
      auto guard = map(CL_MAP_WRITE_INVALIDATE_REGION);
      std::memset(static_cast<void*>(data_), 0, size_ * sizeof(T));
    } catch (...) {  // no destructor runs for a constructor that throws
      allocator_.deallocate(data_, size_);
      throw;
    }
  }
  svm_vector(svm_vector&& other) noexcept  ///< takes `other`'s memory, leaving it empty
      : allocator_(other.allocator_), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  /// Swaps contents with `other`, which frees this vector's old memory when it is destroyed.
  svm_vector& operator=(svm_vector&& other) noexcept {
    std::swap(allocator_, other.allocator_);
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }
  svm_vector(const svm_vector&) = delete;
  svm_vector& operator=(const svm_vector&) = delete;
  ~svm_vector() { allocator_.deallocate(data_, size_); }

  T* data() noexcept { return data_; }  ///< first element
  const T* data() const noexcept { return data_; }  ///< first element
  std::size_t size() const noexcept { return size_; }  ///< number of elements
  std::size_t bytes() const noexcept { return size_ * sizeof(T); }  ///< size in bytes
  std::span<T> span() noexcept { return {data_, size_}; }  ///< all elements
  std::span<const T> span() const noexcept { return {data_, size_}; }  ///< all elements
  T& operator[](std::size_t i) noexcept { return data_[i]; }  ///< element `i`, unchecked
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }  ///< element `i`, unchecked
  T* begin() noexcept { return data_; }  ///< first element
  T* end() noexcept { return data_ + size_; }  ///< one past the last element

  const svm_allocator<T>& allocator() const noexcept { return allocator_; }  ///< the allocator that owns the memory
  const runtime::context& context() const noexcept { return allocator_.context(); }  ///< the context the memory belongs to
  bool fine_grained() const noexcept { return allocator_.fine_grained(); }  ///< host and device may touch the memory concurrently (map() is a no-op)

  /// Host access for the guard's lifetime (a no-op on fine-grained SVM).
  [[nodiscard]] map_guard map(cl_map_flags flags = CL_MAP_READ | CL_MAP_WRITE) const {
    return map_guard(context().queue(), data_, bytes(), fine_grained(), flags);
  }

 private:
  svm_allocator<T> allocator_;
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace coexec::memory

namespace coexec {
using memory::svm_allocator;
using memory::svm_vector;
}  // namespace coexec
