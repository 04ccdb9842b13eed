// Co-executed multi-head self-attention beside its single sides, in one run:
//   BM_Attention/<shape>/cpu            coexec's CPU attention alone (split = H)
//   BM_Attention/<shape>/gpu            the device kernel alone (split = 0)
//   BM_Attention/<shape>/coexec_oracle  the grid-search split over heads
// Counters: gflops (4 S^2 D multiply-adds); split (CPU share of the heads); for the oracle,
// speedup over the faster single side, ideal (1 + t_min / t_max) and efficiency = speedup / ideal,
// from this run's cpu and gpu modes of the same shape.
// Run: bench_attention --platform=pocl-16 --benchmark_min_time=0.2s
#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/attention.hpp"
#include "common.hpp"

namespace {

struct attention_shape {
  const char* name;
  std::size_t tokens, heads, head_dim;
};

// BERT-base at sequence lengths 128 and 384, ViT-B/16 at 224x224 (196 patches + class token).
constexpr attention_shape shapes[] = {{"bert_s128", 128, 12, 64}, {"bert_s384", 384, 12, 64}, {"vit_s197", 197, 12, 64}};

// One shape's operator and tensors, shared by its modes. Never destroyed: OpenCL objects
// released during static destruction crash some drivers.
struct fixture {
  explicit fixture(const attention_shape& s)
      : op(context(), pool(), s.heads, s.head_dim), qkv(context(), s.tokens * 3 * s.heads * s.head_dim, op.shared_memory()),
        y(context(), s.tokens * s.heads * s.head_dim, op.shared_memory()) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::generate(qkv.data(), qkv.data() + qkv.size(), [&] { return dist(rng); });
  }
  void operator()(std::size_t tokens) { op(qkv.data(), tokens, y.data()); }
  void operator()(std::size_t tokens, std::size_t split) { op(qkv.data(), tokens, y.data(), split); }

  static coexec::runtime::context& context() { return coexec::bench::shared_context(); }
  static coexec::cpu::thread_pool& pool() { return coexec::bench::shared_pool(); }

  coexec::ops::attention<float> op;
  coexec::io_buffer<float> qkv, y;
  double cpu_seconds = 0, gpu_seconds = 0;  // per call, measured by those modes
};

fixture& fixture_for(const attention_shape& s) {
  static std::map<std::string, fixture*> fixtures;
  auto& f = fixtures[s.name];
  if (!f) f = new fixture(s);
  return *f;
}

// Runs `call` in the benchmark loop (after one warm-up call) and returns its mean seconds per call.
template <class Call>
double timed_loop(benchmark::State& state, Call&& call) {
  call();
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) call();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
         double(std::max<benchmark::IterationCount>(state.iterations(), 1));
}

void run(benchmark::State& state, const attention_shape& s, const std::string& mode) {
  auto& f = fixture_for(s);
  double seconds = 0;
  if (mode == "coexec_oracle") {
    seconds = timed_loop(state, [&] { f(s.tokens); });  // the warm-up plans (grid search)
    const double best = std::min(f.cpu_seconds, f.gpu_seconds), worst = std::max(f.cpu_seconds, f.gpu_seconds);
    state.counters["speedup"] = best / seconds;
    state.counters["ideal"] = 1.0 + best / worst;
    state.counters["efficiency"] = state.counters["speedup"].value / state.counters["ideal"].value;
  } else {
    const std::size_t split = mode == "cpu" ? s.heads : 0;
    seconds = timed_loop(state, [&] { f(s.tokens, split); });
    (mode == "cpu" ? f.cpu_seconds : f.gpu_seconds) = seconds;
  }
  state.counters["split"] = double(f.op.last_run().split) / double(s.heads);
  state.counters["gflops"] = benchmark::Counter(4e-9 * double(s.tokens * s.tokens * s.heads * s.head_dim),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv) {
  return coexec::bench::run_main(argc, argv, [] {
    for (const attention_shape& s : shapes)
      for (const char* mode : {"cpu", "gpu", "coexec_oracle"})
        benchmark::RegisterBenchmark((std::string("BM_Attention/") + s.name + "/" + mode).c_str(),
                                     [&s, mode](benchmark::State& state) { run(state, s, mode); })
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
  });
}
