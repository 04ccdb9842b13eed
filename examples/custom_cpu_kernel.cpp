// Example: plugging your own CPU kernel into linear (how an inference engine brings its GEMM).
//
// A CpuKernel policy is a default-constructible type with
//   static constexpr bool needs_raw_weights;   // true: linear keeps W[N,K] row-major for you
//   template <class T> void operator()(cpu::thread_pool&, const cpu::gemm_args<T>&,
//                                      std::size_t n_begin, std::size_t n_end) const;
// It must compute y[:, n_begin:n_end) = act(x · W^T + bias) and touch no other column: the
// device writes the rest of y at the same time. Here: a naive loop, spread over the pool's
// workers by pool.parallel_for. The device side and the planner are unchanged.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/linear.hpp"

std::atomic<int> kernel_calls{0};  // how often linear called the kernel
struct naive_gemm {
  static constexpr bool needs_raw_weights = true;  // read args.weights, not the packed panels

  template <class T>
  void operator()(coexec::cpu::thread_pool& pool, const coexec::cpu::gemm_args<T>& a, std::size_t n_begin,
                  std::size_t n_end) const {
    if (n_begin == n_end) return;  // the device got every column
    ++kernel_calls;
    const std::size_t m = a.shape.m, k = a.shape.k;
    pool.parallel_for(n_end - n_begin, [&](std::size_t begin, std::size_t end) {  // each worker: a range of columns
      for (std::size_t j = n_begin + begin; j < n_begin + end; ++j)
        for (std::size_t i = 0; i < m; ++i) {
          T acc = a.bias ? a.bias[j] : T(0);
          for (std::size_t kk = 0; kk < k; ++kk) acc += a.x[i * a.ldx + kk] * a.weights[j * k + kk];
          a.y[i * a.ldy + j] = coexec::apply(a.act, acc);
        }
    });
  }
};

int main() try {
  constexpr std::size_t M = 4, N = 384, K = 512;
  coexec::context ctx;
  coexec::cpu::thread_pool pool(std::max(1u, std::thread::hardware_concurrency() / 2));
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-1, 1);
  std::vector<float> w(N * K), b(N);
  for (auto* v : {&w, &b}) std::generate(v->begin(), v->end(), [&] { return uniform(rng); });

  coexec::linear<float, naive_gemm> fc(ctx, pool, N, K, w, b, {.act = coexec::activation::relu6});
  coexec::io_buffer<float> x(ctx, M * K, fc.shared_memory()), y(ctx, M * N, fc.shared_memory());
  std::generate_n(x.data(), x.size(), [&] { return uniform(rng); });

  double worst = 0;
  const auto verify = [&](const char* what) {
    for (std::size_t i = 0; i < M; ++i)
      for (std::size_t j = 0; j < N; ++j) {
        double want = b[j];
        for (std::size_t k = 0; k < K; ++k) want += double(x.data()[i * K + k]) * w[j * K + k];
        want = std::clamp(want, 0.0, 6.0);
        worst = std::max(worst, std::abs(y.data()[i * N + j] - want) / (1 + std::abs(want)));
      }
    std::printf("%-28s split %3zu of %zu, CPU %.1f us, device %.1f us\n", what, fc.last_run().split, N,
                fc.last_run().cpu_seconds * 1e6, fc.last_run().device_seconds * 1e6);
  };
  for (std::size_t split : {N, N / 2}) {  // explicit splits; the device's first run builds its kernel
    fc(x.data(), M, y.data(), split);
    fc(x.data(), M, y.data(), split);
    verify(split == N ? "naive kernel alone:" : "half and half:");
  }
  fc(x.data(), M, y.data());  // the planner times the naive kernel against the device
  verify("planned (grid search):");
  std::printf("naive_gemm ran %d times; max relative error %.2e: %s\n", kernel_calls.load(), worst, worst < 1e-4 ? "OK" : "WRONG");
  return worst < 1e-4 && kernel_calls > 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
