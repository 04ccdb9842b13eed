// What planning costs with the shipped pocl-2 tree models: a new shape (feature extraction,
// bisection, ~20 predictions) and a cached one. No device work: the operator only describes
// itself. Counter `predictions`: model evaluations per plan.
#include "common.hpp"
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

}  // namespace

int main(int argc, char** argv) {
  return coexec::bench::run_main(argc, argv, [] {
    benchmark::RegisterBenchmark("BM_Plan/new_shape", new_shape)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_Plan/cached", cached)->Unit(benchmark::kMicrosecond);
  });
}
