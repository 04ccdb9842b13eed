// packed_gemm against OpenBLAS sgemm on the same number of threads, for the linear-layer shapes
// of BERT-base (768 / 3072 wide) and a large GEMV. Names: BM_CpuGemm/<M>x<N>x<K>/{packed,openblas}.
// Both compute y = x·Wᵀ without bias or activation, so they do the same work, on
// hardware_concurrency threads unless COEXEC_BENCH_THREADS says otherwise.
// The openblas variant is built only where CMake found OpenBLAS (COEXEC_HAVE_CBLAS).
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "coexec/cpu/gemm.hpp"
#include "coexec/memory/panels.hpp"

#if defined(COEXEC_HAVE_CBLAS)
#include <cblas.h>
#endif

namespace {

using coexec::gemm_shape;

constexpr gemm_shape shapes[] = {
    {128, 768, 768}, {128, 3072, 768}, {16, 3072, 768}, {1, 768, 768}, {1, 4096, 4096},
};

struct operands {
  explicit operands(gemm_shape s)
      : x(s.m * s.k),
        w(s.n * s.k),
        y(s.m * s.n),
        panels(coexec::memory::packed_size<float>(s.n, s.k)) {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (float& v : x) v = dist(rng);
    for (float& v : w) v = dist(rng);
    coexec::memory::pack_panels(w.data(), s.n, s.k, panels.data());
  }
  std::vector<float> x, w, y, panels;
};

std::size_t bench_threads() {
  const char* threads = std::getenv("COEXEC_BENCH_THREADS");
  return threads ? std::stoul(threads) : std::thread::hardware_concurrency();
}

void set_flops(benchmark::State& state, gemm_shape s) {
  state.counters["gflops"] = benchmark::Counter(2e-9 * double(s.m) * double(s.n) * double(s.k),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void packed(benchmark::State& state, gemm_shape s) {
  operands op(s);
  coexec::cpu::thread_pool pool(bench_threads());
  coexec::cpu::gemm_args<float> args;
  args.x = op.x.data();
  args.ldx = s.k;
  args.panels = op.panels.data();
  args.y = op.y.data();
  args.ldy = s.n;
  args.shape = s;
  for (auto _ : state) {
    coexec::cpu::packed_gemm{}(pool, args, 0, s.n);
    benchmark::DoNotOptimize(op.y.data());
  }
  set_flops(state, s);
}

#if defined(COEXEC_HAVE_CBLAS)
void openblas(benchmark::State& state, gemm_shape s) {
  operands op(s);
  openblas_set_num_threads(static_cast<int>(bench_threads()));
  const int m = int(s.m), n = int(s.n), k = int(s.k);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, op.x.data(), k, op.w.data(),
                k, 0.0f, op.y.data(), n);
    benchmark::DoNotOptimize(op.y.data());
  }
  set_flops(state, s);
}
#endif

const bool registered = [] {
  for (const gemm_shape& s : shapes) {
    const std::string name =
        "BM_CpuGemm/" + std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k);
    benchmark::RegisterBenchmark((name + "/packed").c_str(), packed, s)->UseRealTime();
#if defined(COEXEC_HAVE_CBLAS)
    benchmark::RegisterBenchmark((name + "/openblas").c_str(), openblas, s)->UseRealTime();
#endif
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
