// Co-executed linear layers beside their single sides and outside anchors, in one run:
//   BM_Linear/<shape>/cpu            coexec's CPU GEMM alone (split = N)
//   BM_Linear/<shape>/gpu            coexec's device GEMM alone (split = 0)
//   BM_Linear/<shape>/coexec_oracle  the grid-search split
//   BM_Linear/<shape>/coexec_planned the predicted planner's split (shipped trees or roofline),
//                                    online correction on; counter oracle_ratio = oracle / planned
//   BM_Linear/<shape>/openblas       cblas_sgemm on the same number of threads
//   BM_Linear/<shape>/clblast        CLBlastSgemm on the same device
// Counters: gflops; split (CPU share of N); weight_bytes_ratio; GB/s of weights for M = 1. The
// co-executed modes also time both sides alone on their own operator, taking turns with their
// own runs (bench::interleaved_seconds), and compare those figures: speedup over the faster
// single side, ideal (1 + t_min / t_max) and efficiency = speedup / ideal; the planned mode also
// oracle_ratio = oracle / planned, the two timed in turns (when the oracle mode ran first).
// BM_HostStream/{read,copy}: the host DRAM bandwidth the CPU side can reach on its own cores (a
// stream-like sum and copy of 256 MiB on the same pool), the physical limit of M = 1 layers there.
// Run: bench_linear --platform=pocl-16 --benchmark_format=json
#include <algorithm>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/linear.hpp"
#include "coexec/plan/predicted.hpp"
#include "common.hpp"

#if defined(COEXEC_HAVE_CBLAS)
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
#endif
#if defined(COEXEC_HAVE_CLBLAST)
#include <clblast_c.h>
#endif

namespace {

using coexec::bench::current_platform;

struct layer_shape {
  const char* name;
  std::size_t m, n, k;  // y[M,N] = x[M,K] W[N,K]^T
};

// BERT-base, ViT-B/16, MobileNetV2, ResNet-50 and LLaMA-7B linear layers.
constexpr layer_shape shapes[] = {
    {"bert_qkv_m1", 1, 768, 768},      {"bert_qkv_m16", 16, 768, 768},      {"bert_qkv_m128", 128, 768, 768},
    {"bert_ffn1_m1", 1, 3072, 768},    {"bert_ffn1_m16", 16, 3072, 768},    {"bert_ffn1_m128", 128, 3072, 768},
    {"bert_ffn2_m1", 1, 768, 3072},    {"bert_ffn2_m16", 16, 768, 3072},    {"bert_ffn2_m128", 128, 768, 3072},
    {"vit_mlp_m197", 197, 3072, 768},  {"mbv2_fc_m1", 1, 1000, 1280},       {"r50_fc_m1", 1, 1000, 2048},
    {"r50_fc_m32", 32, 1000, 2048},    {"llama_qkv_m1", 1, 4096, 4096},     {"llama_up_m1", 1, 11008, 4096},
};

// Everything one shape needs, built once and shared by its modes. Never destroyed: OpenCL
// objects released during static destruction crash some drivers.
struct fixture {
  explicit fixture(const layer_shape& s)
      : shape(s), ctx(context()), weights(random(s.n * s.k, 1)), bias(random(s.n, 2)), input(random(s.m * s.k, 3)),
        layer(ctx, pool(), s.n, s.k, weights, bias), x(ctx, s.m * s.k, layer.shared_memory()),
        y(ctx, s.m * s.n, layer.shared_memory()) {
    std::copy(input.begin(), input.end(), x.data());
  }

  static coexec::runtime::context& context() { return coexec::bench::shared_context(); }
  static coexec::cpu::thread_pool& pool() { return coexec::bench::shared_pool(); }
  static std::vector<float> random(std::size_t count, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> v(count);
    for (auto& e : v) e = dist(rng);
    return v;
  }

  // The cpu and gpu modes run on the oracle's operator, as the oracle's turns with its sides do
  // (set_speedup_counters): one copy of the weights. Where the sides hold weight slices (nvidia),
  // changing sides moves panels: the warm-up run, and each turn's untimed run, absorb it.
  void run_cpu() { layer(x.data(), shape.m, y.data(), shape.n); }
  void run_gpu() { layer(x.data(), shape.m, y.data(), 0); }
  void run_oracle() { layer(x.data(), shape.m, y.data()); }

  layer_shape shape;
  bool oracle_planned = false;  // the oracle mode ran: its grid search is done
  coexec::runtime::context ctx;
  std::vector<float> weights, bias, input;
  coexec::ops::linear<float> layer;  // the oracle: grid-search plans
  coexec::io_buffer<float> x, y;
};

fixture& fixture_for(const layer_shape& s) {
  static std::map<std::string, fixture*> fixtures;
  auto& f = fixtures[s.name];
  if (!f) f = new fixture(s);
  return *f;
}

void set_common_counters(benchmark::State& state, const layer_shape& s, const fixture& f) {
  state.counters["gflops"] = benchmark::Counter(2e-9 * double(s.m) * double(s.n) * double(s.k),
                                                benchmark::Counter::kIsIterationInvariantRate);
  if (s.m == 1)
    state.counters["weight_GBps"] = benchmark::Counter(double(s.n) * double(s.k) * sizeof(float) * 1e-9,
                                                       benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weight_bytes_ratio"] = f.layer.weight_bytes_ratio();
}

void run_side(benchmark::State& state, const layer_shape& s, bool cpu) {
  auto& f = fixture_for(s);
  const auto call = [&] { cpu ? f.run_cpu() : f.run_gpu(); };
  call();  // warm-up: kernels built, weights placed
  for (auto _ : state) call();
  state.counters["split"] = cpu ? 1.0 : 0.0;
  set_common_counters(state, s, f);
}

// speedup, ideal and efficiency of a co-executed run of mode `mode` of operator `op`, timed in
// turns with both sides alone on the same operator. One operator's weights only: at M = 1 on
// pocl-2 a layer whose weights stay in the last-level cache took 175 µs, and 600 µs in turns
// with a second copy of them (BERT's 768 -> 3072, 9.4 MB).
template <class Op>
void set_speedup_counters(benchmark::State& state, fixture& f, const std::string& mode, Op& op) {
  const layer_shape& s = f.shape;
  const auto& t = coexec::bench::interleaved_once(std::string(s.name) + "/" + mode,
                                                  {[&] { op(f.x.data(), s.m, f.y.data(), s.n); }, [&] { op(f.x.data(), s.m, f.y.data(), 0); },
                                                   [&] { op(f.x.data(), s.m, f.y.data()); }});
  const double t_min = std::min(t[0], t[1]), t_max = std::max(t[0], t[1]);
  state.counters["speedup"] = t_min / t[2];
  state.counters["ideal"] = 1.0 + t_min / t_max;
  state.counters["efficiency"] = state.counters["speedup"].value / state.counters["ideal"].value;
}

void oracle(benchmark::State& state, const layer_shape& s) {
  auto& f = fixture_for(s);
  f.run_oracle();  // plans (grid search) on first use
  f.oracle_planned = true;
  for (auto _ : state) f.run_oracle();
  std::string curve;  // the oracle's measured curve, split:us, for reports and plots
  for (const auto& point : f.layer.planner().curve(f.layer.shape(s.m)))
    curve += std::to_string(point.split) + ":" + std::to_string(int(point.seconds * 1e6)) + " ";
  state.SetLabel(curve);
  state.counters["split"] = double(f.layer.last_run().split) / double(s.n);
  set_speedup_counters(state, f, "oracle", f.layer);
  set_common_counters(state, s, f);
}

// The same layer under the predicted planner: a separate operator (its own plan cache), built
// on first use so the oracle's grid search and the planner's calibration never overlap.
void planned(benchmark::State& state, const layer_shape& s) {
  auto& f = fixture_for(s);
  static std::map<std::string, coexec::ops::linear<float, coexec::cpu::packed_gemm, coexec::plan::predicted<>>*> layers;
  auto& layer = layers[s.name];
  if (!layer) layer = new coexec::ops::linear<float, coexec::cpu::packed_gemm, coexec::plan::predicted<>>(
                  f.ctx, fixture::pool(), s.n, s.k, f.weights, f.bias);
  for (int warm = 0; warm <= coexec::bench::settling_runs; ++warm) (*layer)(f.x.data(), s.m, f.y.data());  // plan, then let it settle
  const auto run_planned = [&] { (*layer)(f.x.data(), s.m, f.y.data()); };
  for (auto _ : state) run_planned();
  const std::size_t split = layer->last_run().split;
  state.counters["split"] = double(split) / double(s.n);
  const auto at = [&](std::size_t at_split) {
    const auto e = layer->planner().estimate(layer->shape(s.m), at_split);
    return std::to_string(at_split) + ":" + std::to_string(int(e.cpu * 1e6)) + "/" + std::to_string(int(e.gpu * 1e6)) + "+" +
           std::to_string(int(e.overhead * 1e6));
  };
  state.SetLabel("predicted split:cpu_us/gpu_us+overhead_us " + at(0) + " " + at(split) + " " + at(s.n));  // for diagnosis
  set_speedup_counters(state, f, "planned", *layer);
  if (f.oracle_planned) {
    const auto& t = coexec::bench::interleaved_once(std::string(s.name) + "/oracle_planned", {[&] { f.run_oracle(); }, run_planned});
    state.counters["oracle_ratio"] = t[0] / t[1];
  }
  set_common_counters(state, s, f);
}

#if defined(COEXEC_HAVE_CBLAS)
void openblas(benchmark::State& state, const layer_shape& s) {
  auto& f = fixture_for(s);
  openblas_set_num_threads(static_cast<int>(current_platform().cpu_threads));
  std::vector<float> y(s.m * s.n);
  auto call = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(s.m), int(s.n), int(s.k), 1.0f, f.input.data(), int(s.k),
                f.weights.data(), int(s.k), 0.0f, y.data(), int(s.n));
  };
  call();
  for (auto _ : state) call();
  set_common_counters(state, s, f);
}
#endif

#if defined(COEXEC_HAVE_CLBLAST)
void clblast(benchmark::State& state, const layer_shape& s) {
  auto& f = fixture_for(s);
  const auto& ctx = f.ctx;
  auto buffer = [&](const std::vector<float>& host) {
    return cl::Buffer(ctx.cl_context(), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, host.size() * sizeof(float),
                      const_cast<float*>(host.data()));
  };
  cl::Buffer x = buffer(f.input), w = buffer(f.weights), y = buffer(std::vector<float>(s.m * s.n));
  cl_command_queue queue = ctx.queue()();
  auto call = [&] {
    cl_event done = nullptr;
    const auto status = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, s.m, s.n, s.k, 1.0f,
                                     x(), 0, s.k, w(), 0, s.k, 0.0f, y(), 0, s.n, &queue, &done);
    if (status != CLBlastSuccess) throw coexec::error(coexec::errc::opencl, "CLBlastSgemm failed: " + std::to_string(status));
    clWaitForEvents(1, &done);
    clReleaseEvent(done);
  };
  try {
    call();  // CLBlast compiles its kernels on first use
  } catch (const coexec::error& e) {
    state.SkipWithError(e.what());
    return;
  }
  for (auto _ : state) call();
  set_common_counters(state, s, f);
}
#endif


// Read (sum) or copy 256 MiB on the CPU side's pool: far beyond any last-level cache.
void host_stream(benchmark::State& state, bool copy) {
  constexpr std::size_t count = (256u << 20) / sizeof(float);
  static std::vector<float> source(count, 1.0f), target(count);
  auto& pool = fixture::pool();
  std::vector<double> sums(pool.size());
  for (auto _ : state) {
    pool.run([&](std::size_t worker, std::size_t workers) {
      const auto part = coexec::cpu::split_evenly(count, worker, workers);
      if (copy) {
        std::copy(source.begin() + part.begin, source.begin() + part.end, target.begin() + part.begin);
      } else {
        float lanes[16] = {};  // independent sums, so the loop vectorises without -ffast-math
        for (std::size_t i = part.begin; i + 16 <= part.end; i += 16)
          for (int lane = 0; lane < 16; ++lane) lanes[lane] += source[i + lane];
        sums[worker] = std::accumulate(std::begin(lanes), std::end(lanes), 0.0);
      }
    });
    benchmark::DoNotOptimize(sums.data());
    benchmark::ClobberMemory();
  }
  state.counters["GBps"] = benchmark::Counter(double(count) * sizeof(float) * (copy ? 2 : 1) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = double(pool.size());
}

}  // namespace

int main(int argc, char** argv) {
  return coexec::bench::run_main(argc, argv, [] {
    for (const bool copy : {false, true})
      benchmark::RegisterBenchmark(copy ? "BM_HostStream/copy" : "BM_HostStream/read",
                                   [copy](benchmark::State& st) { host_stream(st, copy); })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    for (const auto& s : shapes) {
      const std::string prefix = std::string("BM_Linear/") + s.name + "/";
      auto add = [&](const char* mode, auto function) {
        benchmark::RegisterBenchmark((prefix + mode).c_str(), function)->UseRealTime()->Unit(benchmark::kMicrosecond);
      };
      add("cpu", [s](benchmark::State& st) { run_side(st, s, true); });
      add("gpu", [s](benchmark::State& st) { run_side(st, s, false); });
      add("coexec_oracle", [s](benchmark::State& st) { oracle(st, s); });
      add("coexec_planned", [s](benchmark::State& st) { planned(st, s); });
#if defined(COEXEC_HAVE_CBLAS)
      add("openblas", [s](benchmark::State& st) { openblas(st, s); });
#endif
#if defined(COEXEC_HAVE_CLBLAST)
      add("clblast", [s](benchmark::State& st) { clblast(st, s); });
#endif
    }
  });
}
