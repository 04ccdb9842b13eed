// Example: the roofline planner, for a device coexec has no trained model of.
//
// plan::roofline<> predicts each side's time as max(FLOPs / peak, bytes / bandwidth) + a fixed
// cost, from rates measured by a short micro-calibration (under 2 s) that is cached on disk per
// device, driver and thread count (COEXEC_CACHE_DIR, default ~/.cache/coexec). A new shape is
// then planned from predictions instead of a grid search: each side is timed alone once (the
// anchors), the predicted curves are scaled to match, and the split is where they cross.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>
#include <vector>

#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/linear.hpp"
#include "coexec/plan/predicted.hpp"

int main() try {
  coexec::context ctx;
  coexec::cpu::thread_pool pool(std::max(1u, std::thread::hardware_concurrency() / 2));
  std::printf("device: %s, %zu CPU threads\n", ctx.caps().name.c_str(), pool.size());

  // The calibration the planners will use (measured now, or read back from the cache).
  const auto start = std::chrono::steady_clock::now();
  const auto model = coexec::plan::roofline_model<>::cached(ctx, pool.size());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("calibration: %.2f s (about 0 when read back from the cache)\n", seconds);
  for (const auto& [side, r] : {std::pair{"CPU   ", model.cpu()}, std::pair{"device", model.gpu()}})
    std::printf("  %s %8.1f GFLOP/s %8.1f GB/s  fixed %6.1f us\n", side, r.gflops, r.gbytes_per_s, r.fixed_us);

  using roofline_linear = coexec::linear<float, coexec::cpu::packed_gemm, coexec::plan::roofline<>>;
  bool ok = true;
  for (const coexec::gemm_shape s : {coexec::gemm_shape{1, 1024, 1024}, {16, 768, 768}, {64, 512, 1024}}) {
    const std::vector<float> w(s.n * s.k, 0.5f);
    roofline_linear fc(ctx, pool, s.n, s.k, w);
    coexec::io_buffer<float> x(ctx, s.m * s.k, fc.shared_memory()), y(ctx, s.m * s.n, fc.shared_memory());
    std::fill_n(x.data(), x.size(), 0.25f);
    fc(x.data(), s.m, y.data());  // plans: anchors on both single sides, then the crossing
    fc(x.data(), s.m, y.data());
    const auto& r = fc.last_run();
    const auto predicted = fc.planner().estimate(s, r.split);
    std::printf("M=%-3zu N=%-4zu K=%-4zu split %4zu  predicted CPU %7.1f / device %7.1f (+ overhead %6.1f) us,"
                " measured %7.1f / %7.1f us\n", s.m, s.n, s.k, r.split, predicted.cpu * 1e6, predicted.gpu * 1e6,
                predicted.overhead * 1e6, r.cpu_seconds * 1e6, r.device_seconds * 1e6);
    // Every output is K * 0.5 * 0.25.
    const float want = 0.125f * float(s.k);
    ok = ok && std::all_of(y.data(), y.data() + y.size(), [&](float v) { return std::abs(v - want) <= 1e-4f * want; });
  }
  std::printf("results: %s\n", ok ? "OK" : "WRONG");
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
