#pragma once
// coexec::cpu::cblas_gemm — a CpuKernel that hands the GEMM to the system BLAS, as a reference
// and a fallback: each pool worker calls cblas_sgemm / cblas_dgemm on its share of the columns,
// then applies bias and activation to that share.
//
// Every worker calls BLAS at the same time, so BLAS itself must run single-threaded: call
// openblas_set_num_threads(1) (or set OPENBLAS_NUM_THREADS=1, or the equivalent of your BLAS)
// before the first call, or its threads will fight the pool's.
#include <cblas.h>

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "coexec/activation.hpp"
#include "coexec/cpu/gemm.hpp"
#include "coexec/cpu/thread_pool.hpp"
#include "coexec/memory/panels.hpp"

namespace coexec::cpu {

/// CpuKernel policy that runs each worker's share of the columns through the system BLAS
/// (cblas_sgemm / cblas_dgemm), as a reference and a fallback; BLAS must run single-threaded.
struct cblas_gemm {
  static constexpr bool needs_raw_weights = true;  ///< reads raw W[N,K] (gemm_args::weights), not the packed panels

  /// Computes y[:, n_begin:n_end) = act(x·Wᵀ + bias) from the raw `weights`, touching no other
  /// column of y. Same contract as packed_gemm.
  template <class T>
  void operator()(thread_pool& pool, const gemm_args<T>& args, std::size_t n_begin,
                  std::size_t n_end) const {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "cblas_gemm: float or double only");
    detail::check_columns(args, n_begin, n_end, "cblas_gemm");
    if (n_begin == n_end || args.shape.m == 0) return;
    if (args.weights == nullptr)
      detail::invalid_argument("cblas_gemm", "weights (raw W[N,K]) must not be null");
    // Shares are whole panels, so every worker's columns start on a cache line.
    constexpr std::size_t nr = memory::panel_width<T>;
    const std::size_t panels = detail::ceil_div(n_end - n_begin, nr);
    pool.run([&](std::size_t worker, std::size_t workers) {
      const index_range share = split_evenly(panels, worker, workers);
      const std::size_t begin = n_begin + share.begin * nr;
      const std::size_t end = std::min(n_end, n_begin + share.end * nr);
      if (begin < end) multiply(args, begin, end);
    });
  }

 private:
  template <class T>
  static void multiply(const gemm_args<T>& a, std::size_t begin, std::size_t end) {
    const auto m = int(a.shape.m), n = int(end - begin), k = int(a.shape.k);
    // BLAS rejects leading dimensions below 1, which K = 0 would give.
    const int ldx = std::max(int(a.ldx), 1), ldw = std::max(k, 1), ldy = int(a.ldy);
    const T* w = a.weights + begin * a.shape.k;
    T* y = a.y + begin;
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a.x, ldx, w, ldw, 0.0f, y,
                  ldy);
    else
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0, a.x, ldx, w, ldw, 0.0, y,
                  ldy);
    if (a.bias == nullptr && a.act == activation::none) return;
    for (std::size_t i = 0; i < a.shape.m; ++i)
      for (std::size_t j = begin; j < end; ++j) {
        T& v = a.y[i * a.ldy + j];
        v = apply(a.act, a.bias ? v + a.bias[j] : v);
      }
  }
};

}  // namespace coexec::cpu
