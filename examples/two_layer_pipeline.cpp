// Example: a two-layer MLP, linear -> relu -> linear, co-executed layer by layer.
//
// The relu is fused into the first layer (both sides apply it as they store). The hidden tensor
// is one io_buffer allocated once: the first layer writes it in place, the second reads it in
// place, with nothing copied in between. Each layer has its own planned split; after the first
// (planning) pass, every forward pass is two co-executed calls back to back.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/linear.hpp"

int main() try {
  constexpr std::size_t M = 4, D = 384, H = 1536, O = 384;  // batch, model width, hidden width, output width
  coexec::context ctx;
  coexec::cpu::thread_pool pool(std::max(1u, std::thread::hardware_concurrency() / 2));
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-1, 1);
  const auto random = [&](std::size_t n) { std::vector<float> v(n); for (float& e : v) e = uniform(rng); return v; };
  const std::vector<float> w1 = random(H * D), b1 = random(H), w2 = random(O * H), b2 = random(O);

  coexec::linear<float> up(ctx, pool, H, D, w1, b1, {.act = coexec::activation::relu});
  coexec::linear<float> down(ctx, pool, O, H, w2, b2);
  const bool shared = up.shared_memory();  // the same for both: same context, same options
  coexec::io_buffer<float> x(ctx, M * D, shared), hidden(ctx, M * H, shared), y(ctx, M * O, shared);
  std::generate_n(x.data(), x.size(), [&] { return uniform(rng); });

  const auto forward = [&] {
    up(x.data(), M, hidden.data());
    down(hidden.data(), M, y.data());
  };
  forward();  // plans both layers
  constexpr int passes = 20;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < passes; ++i) forward();
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / passes;
  std::printf("up   %zux%zu: split %4zu of %zu\n", D, H, up.last_run().split, H);
  std::printf("down %zux%zu: split %4zu of %zu\n", H, O, down.last_run().split, O);
  std::printf("forward pass: %.1f us (mean of %d)\n", us, passes);

  // Reference in double, relu in between (K = 1536 float sums: tolerance 1e-3).
  std::vector<double> h(M * H);
  for (std::size_t i = 0; i < M; ++i)
    for (std::size_t j = 0; j < H; ++j) {
      double acc = b1[j];
      for (std::size_t k = 0; k < D; ++k) acc += double(x.data()[i * D + k]) * w1[j * D + k];
      h[i * H + j] = std::max(acc, 0.0);
    }
  double worst = 0;
  for (std::size_t i = 0; i < M; ++i)
    for (std::size_t j = 0; j < O; ++j) {
      double want = b2[j];
      for (std::size_t k = 0; k < H; ++k) want += h[i * H + k] * w2[j * H + k];
      worst = std::max(worst, std::abs(y.data()[i * O + j] - want) / (1 + std::abs(want)));
    }
  std::printf("max relative error %.2e: %s\n", worst, worst < 1e-3 ? "OK" : "WRONG");
  return worst < 1e-3 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
