#pragma once
// cpu_relax(): the spin-wait hint. It lets the sibling hyper-thread run and keeps a spinning
// core from flooding the memory system while it polls a flag another core will write.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace coexec::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace coexec::detail
