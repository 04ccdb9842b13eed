// Example: one co-executed linear layer, y[M,N] = relu(x[M,K] · W[N,K]^T + b).
//
// The CPU thread pool computes output channels [0, split) and the OpenCL device [split, N), both
// writing straight into y: nothing is copied or merged. The default planner, plan::grid_search
// (the oracle), times a few splits on the first call of a shape and caches the fastest one.
// last_run() tells what each side took. The result is checked against a plain loop.
//
// Runs on the default device: set COEXEC_PLATFORM / COEXEC_DEVICE to choose another.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/linear.hpp"

int main() try {
  constexpr std::size_t M = 8, N = 512, K = 768;
  coexec::context ctx;  // the default OpenCL device
  coexec::cpu::thread_pool pool(std::max(1u, std::thread::hardware_concurrency() / 2));
  std::printf("device: %s, %zu CPU threads\n", ctx.caps().name.c_str(), pool.size());

  std::mt19937 rng(42);
  std::uniform_real_distribution<float> uniform(-1, 1);
  std::vector<float> w(N * K), b(N);
  for (float& v : w) v = uniform(rng);
  for (float& v : b) v = uniform(rng);
  // Weights and bias are copied (packed into panels both sides read) once, here.
  coexec::linear<float> fc(ctx, pool, N, K, w, b, {.act = coexec::activation::relu});

  // x and y: SVM of ctx on shared-memory devices, plain host memory on discrete GPUs.
  coexec::io_buffer<float> x(ctx, M * K, fc.shared_memory()), y(ctx, M * N, fc.shared_memory());
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = uniform(rng);

  fc(x.data(), M, y.data());  // first call of this shape: the grid search picks the split
  fc(x.data(), M, y.data());  // later calls: the cached split
  const coexec::run_record& r = fc.last_run();
  std::printf("split %zu of %zu: CPU computes [0, %zu), device [%zu, %zu)\n", r.split, N, r.split, r.split, N);
  std::printf("CPU %.1f us, device %.1f us%s, total %.1f us (%s memory)\n", r.cpu_seconds * 1e6, r.device_seconds * 1e6,
              r.device_exact ? "" : " (upper bound)", r.total_seconds * 1e6, fc.shared_memory() ? "shared SVM" : "staged");

  // Reference: a plain loop in double.
  double worst = 0;
  for (std::size_t i = 0; i < M; ++i)
    for (std::size_t j = 0; j < N; ++j) {
      double acc = b[j];
      for (std::size_t k = 0; k < K; ++k) acc += double(x.data()[i * K + k]) * w[j * K + k];
      const double want = std::max(acc, 0.0), got = y.data()[i * N + j];
      worst = std::max(worst, std::abs(got - want) / (1 + std::abs(want)));
    }
  std::printf("max relative error %.2e: %s\n", worst, worst < 1e-4 ? "OK" : "WRONG");
  return worst < 1e-4 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
