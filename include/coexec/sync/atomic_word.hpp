#pragma once
// atomic_word: an atomic view of one std::uint32_t that kernels also touch (fine-grained SVM
// with CL_MEM_SVM_ATOMICS). std::atomic_ref where the standard library has it, the compiler's
// __atomic builtins where it does not (older Android NDK libc++).
#include <atomic>
#include <cstdint>

namespace coexec::sync {

/// Atomic loads, stores and adds on a std::uint32_t it does not own, so host code can share the
/// word with kernels. Copies view the same word.
class atomic_word {
 public:
  /// Views `*word`, which must outlive every use of the view.
  explicit atomic_word(std::uint32_t* word) noexcept : word_(word) {}

#if defined(__cpp_lib_atomic_ref)
  /// Reads the word (acquire by default).
  std::uint32_t load(std::memory_order order = std::memory_order_acquire) const noexcept {
    return std::atomic_ref<std::uint32_t>(*word_).load(order);
  }
  /// Writes `value` (release by default).
  void store(std::uint32_t value, std::memory_order order = std::memory_order_release) const noexcept {
    std::atomic_ref<std::uint32_t>(*word_).store(value, order);
  }
  /// Adds `value` and returns the previous value (acq_rel by default).
  std::uint32_t fetch_add(std::uint32_t value, std::memory_order order = std::memory_order_acq_rel) const noexcept {
    return std::atomic_ref<std::uint32_t>(*word_).fetch_add(value, order);
  }
#else
  /// Reads the word (acquire by default).
  std::uint32_t load(std::memory_order order = std::memory_order_acquire) const noexcept {
    return __atomic_load_n(word_, builtin(order));
  }
  /// Writes `value` (release by default).
  void store(std::uint32_t value, std::memory_order order = std::memory_order_release) const noexcept {
    __atomic_store_n(word_, value, builtin(order));
  }
  /// Adds `value` and returns the previous value (acq_rel by default).
  std::uint32_t fetch_add(std::uint32_t value, std::memory_order order = std::memory_order_acq_rel) const noexcept {
    return __atomic_fetch_add(word_, value, builtin(order));
  }

 private:
  static constexpr int builtin(std::memory_order order) noexcept {
    switch (order) {
      case std::memory_order_relaxed: return __ATOMIC_RELAXED;
      case std::memory_order_consume: return __ATOMIC_CONSUME;
      case std::memory_order_acquire: return __ATOMIC_ACQUIRE;
      case std::memory_order_release: return __ATOMIC_RELEASE;
      case std::memory_order_acq_rel: return __ATOMIC_ACQ_REL;
      default: return __ATOMIC_SEQ_CST;
    }
  }

 public:
#endif
  std::uint32_t* address() const noexcept { return word_; }  ///< the viewed word, e.g. to pass to a kernel

 private:
  std::uint32_t* word_;
};

}  // namespace coexec::sync
