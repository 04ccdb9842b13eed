// What planning costs with the shipped pocl-2 tree models: a new shape (feature extraction,
// bisection, ~20 predictions), a cached one, and learning from a run of a planned shape (online
// correction, replanning when a correction moved: every planned call pays it after its run). No
// device work: the operator only describes itself. Counter `predictions`: model evaluations per
// plan.
#include "common.hpp"
#include "coexec/ops/co_execute.hpp"
#include "coexec/plan/predicted.hpp"

namespace {

using namespace coexec;

// What linear offers its planner, for a LLaMA-sized layer (257 aligned candidates).
struct described_op {
  std::size_t columns() const { return 4096; }
  std::size_t split_granule() const { return 16; }
  std::size_t element_size() const { return sizeof(float); }
  std::size_t cpu_threads() const { return 1; }
  gpu::gemm_config device_config() const { return gpu::gemm_config::register_blocked(48, 64, 6, 16); }
  predict::device_profile device_profile() const { return {1, 30.0}; }
};

plan::tree_model<> shipped_pocl_2() {
  namespace shipped = predict::models::pocl_2;
  return {{shipped::linear_cpu::features, shipped::linear_cpu::model}, {shipped::linear_gpu::features, shipped::linear_gpu::model}};
}

void new_shape(benchmark::State& state) {
  plan::predicted<gemm_shape, plan::tree_model<>> planner(shipped_pocl_2());
  described_op op;
  std::size_t m = 0;
  for (auto _ : state) {
    planner.clear();
    benchmark::DoNotOptimize(planner.choose(gemm_shape{++m % 512 + 1, 4096, 4096}, op));
  }
  state.counters["predictions"] = double(planner.predictions()) / double(state.iterations());
}

void cached(benchmark::State& state) {
  plan::predicted<gemm_shape, plan::tree_model<>> planner(shipped_pocl_2());
  described_op op;
  const gemm_shape shape{128, 4096, 4096};
  for (auto _ : state) benchmark::DoNotOptimize(planner.choose(shape, op));
}

// observe() of runs of a planned shape on the side its plan uses, timed 5% apart in turn: what
// each planned call adds after its run. The shape is anchored on single-side runs (as a
// pipeline's first pass gives them) that put its plan on the CPU alone.
void observe(benchmark::State& state) {
  plan::predicted<gemm_shape, plan::tree_model<>> planner(shipped_pocl_2());
  described_op op;
  const gemm_shape shape{1, 4096, 4096};
  ops::run_record device_alone{.split = 0, .device_seconds = 1.0, .total_seconds = 1.0};
  ops::run_record cpu_alone{.split = op.columns(), .cpu_seconds = 1e-3, .total_seconds = 1e-3};
  for (int pass = 0; pass < 3; ++pass) planner.anchor_with(shape, device_alone), planner.anchor_with(shape, cpu_alone);
  const std::size_t split = planner.choose(shape, op);
  bool slow = false;
  for (auto _ : state) {
    cpu_alone.cpu_seconds = cpu_alone.total_seconds = (slow = !slow) ? 1.05e-3 : 1e-3;
    planner.observe(shape, cpu_alone);
  }
  state.counters["split"] = double(split);
}

}  // namespace

int main(int argc, char** argv) {
  return coexec::bench::run_main(argc, argv, [] {
    benchmark::RegisterBenchmark("BM_Plan/new_shape", new_shape)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_Plan/cached", cached)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_Plan/observe", observe)->Unit(benchmark::kMicrosecond);
  });
}
