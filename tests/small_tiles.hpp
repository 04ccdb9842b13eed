#pragma once
// GEMM configurations with tiles smaller than the test shapes, shared by the kernel tests.
#include "coexec/gpu/gemm.hpp"

namespace coexec::test {

/// Small tiles of `family`, so modest shapes already cover several work-groups and every kind of edge.
template <class T>
gpu::gemm_config small_tiles(gpu::gemm_family family) {
  constexpr unsigned nr = memory::panel_width<T>;
  switch (family) {
    case gpu::gemm_family::local: return gpu::gemm_config::local(16, 2 * nr, 8, 4, 8, 4);
    case gpu::gemm_family::register_blocked: return gpu::gemm_config::register_blocked(9, 2 * nr, 3, nr / 2);
    case gpu::gemm_family::gemv: return gpu::gemm_config::gemv(4, nr, 4, 8);
  }
  return {};
}

}  // namespace coexec::test
