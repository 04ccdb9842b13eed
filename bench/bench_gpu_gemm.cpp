// The device GEMM kernels against CLBlast's sgemm on the same device and queue, for the
// linear-layer shapes of BERT-base and a large GEMV, the whole N on the device:
//   BM_GpuGemm/<M>x<N>x<K>/{local,register,gemv,tuned}   coexec kernels (tuned: the tuner's choice)
//   BM_GpuGemm/<M>x<N>x<K>/clblast                        CLBlastSgemm on cl_mem buffers
// Each iteration is enqueue + completion wait; programs are built before timing starts.
// Run: bench_gpu_gemm --platform=pocl-2 --benchmark_format=json
#include <algorithm>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "coexec/gpu/gemm.hpp"
#include "coexec/gpu/tuning.hpp"
#include "coexec/memory/svm_vector.hpp"
#include "common.hpp"

#if defined(COEXEC_HAVE_CLBLAST)
#include <clblast_c.h>
#endif

namespace {

using coexec::gemm_shape;
using coexec::bench::current_platform;
namespace gpu = coexec::gpu;

constexpr gemm_shape shapes[] = {{128, 3072, 768}, {128, 768, 768}, {16, 3072, 768}, {1, 768, 768}, {1, 4096, 4096}};

// One context for the whole run, deliberately never destroyed: releasing OpenCL objects during
// static destruction crashes some drivers.
const coexec::runtime::context& shared_context() {
  static const auto* ctx = new coexec::runtime::context(current_platform().make_context());
  return *ctx;
}

std::vector<float> random_values(std::size_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> values(count);
  for (float& v : values) v = dist(rng);
  return values;
}

void set_counters(benchmark::State& state, gemm_shape s) {
  const double flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
  const double bytes = 4.0 * (double(s.m) * s.k + double(s.n) * s.k + double(s.m) * s.n);
  state.counters["gflops"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

/// Operands in device buffers on devices without fine-grained SVM (discrete GPUs), else in SVM.
struct operands {
  explicit operands(const coexec::runtime::context& ctx, gemm_shape s) {
    const auto x = random_values(s.m * s.k, 1), w = random_values(s.n * s.k, 2);
    std::vector<float> packed(coexec::memory::packed_size<float>(s.n, s.k));
    coexec::memory::pack_panels(w.data(), s.n, s.k, packed.data());
    if (ctx.caps().svm_fine) {
      x_svm = std::make_unique<coexec::svm_vector<float>>(ctx, x.size());
      w_svm = std::make_unique<coexec::svm_vector<float>>(ctx, packed.size());
      y_svm = std::make_unique<coexec::svm_vector<float>>(ctx, s.m * s.n);
      std::copy(x.begin(), x.end(), x_svm->begin());
      std::copy(packed.begin(), packed.end(), w_svm->begin());
      ops = {{x_svm->data()}, s.k, {w_svm->data()}, {}, {y_svm->data()}, s.n};
    } else {
      auto x_dev = gpu::make_buffer<float>(ctx, x.size()), w_dev = gpu::make_buffer<float>(ctx, packed.size());
      gpu::write_rows(ctx, x_dev, 0, x.data(), 1, x.size(), x.size());
      gpu::write_rows(ctx, w_dev, 0, packed.data(), 1, packed.size(), packed.size()).wait();
      ops = {{x_dev}, s.k, {w_dev}, {}, {gpu::make_buffer<float>(ctx, s.m * s.n)}, s.n};
    }
  }
  std::unique_ptr<coexec::svm_vector<float>> x_svm, w_svm, y_svm;
  gpu::gemm_operands<float> ops;
};

/// The device's own config of `family` for `s` (from its candidate tables), else a generic one.
gpu::gemm_config forced_config(const coexec::runtime::capabilities& caps, gemm_shape s, gpu::gemm_family family) {
  for (auto shape_class : {gpu::classify(s.m), gpu::shape_class::large_m, gpu::shape_class::gemv})
    for (const auto& candidate : gpu::candidates<float>(caps, shape_class))
      if (candidate.family == family) return candidate;
  return family == gpu::gemm_family::local ? gpu::gemm_config::local(64, 64, 16, 4, 8, 4)
                                           : gpu::gemm_config::register_blocked(48, 64, 6, 16);
}

/// `family` of nullopt: the tuner's choice for the shape's class.
void coexec_gemm(benchmark::State& state, gemm_shape s, std::optional<gpu::gemm_family> family) {
  const auto& ctx = shared_context();
  static gpu::tuner tuner;
  const gpu::gemm_config config =
      family ? forced_config(ctx.caps(), s, *family) : tuner.config<float>(ctx, gpu::classify(s.m));
  operands data(ctx, s);
  try {
    gpu::gemm_launcher<float> launcher(ctx, config, coexec::activation::none, false);
    coexec::sync::completion done(ctx);
    done.wait(launcher.enqueue(data.ops, s, done));  // warm-up
    for (auto _ : state) done.wait(launcher.enqueue(data.ops, s, done));
  } catch (const coexec::error& e) {
    state.SkipWithError(e.what());
    return;
  }
  state.SetLabel(config.to_string());
  set_counters(state, s);
}

#if defined(COEXEC_HAVE_CLBLAST)
/// C[M,N] = A[M,K] * B[N,K]^T, row-major: the same work as the coexec kernels.
void clblast_sgemm(benchmark::State& state, gemm_shape s) {
  const auto& ctx = shared_context();
  const auto x = random_values(s.m * s.k, 1), w = random_values(s.n * s.k, 2);
  auto a = gpu::make_buffer<float>(ctx, x.size()), b = gpu::make_buffer<float>(ctx, w.size()),
       c = gpu::make_buffer<float>(ctx, s.m * s.n);
  gpu::write_rows(ctx, a, 0, x.data(), 1, x.size(), x.size());
  gpu::write_rows(ctx, b, 0, w.data(), 1, w.size(), w.size()).wait();
  cl_command_queue queue = ctx.queue()();
  auto run = [&] {
    cl_event event = nullptr;
    const CLBlastStatusCode status =
        CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, s.m, s.n, s.k, 1.0f, a(), 0, s.k, b(),
                     0, s.k, 0.0f, c(), 0, s.n, &queue, &event);
    if (status != CLBlastSuccess) throw coexec::error(coexec::errc::opencl, "CLBlastSgemm failed: " + std::to_string(status));
    clFlush(queue);
    const cl::Event done(event);  // takes ownership
    coexec::sync::spin_until([&] { return coexec::sync::completion::event_complete(done); },
                             coexec::sync::default_timeout, "CLBlastSgemm");
  };
  try {
    run();  // warm-up: CLBlast compiles its kernels on first use
    for (auto _ : state) run();
  } catch (const coexec::error& e) {
    state.SkipWithError(e.what());
    return;
  }
  set_counters(state, s);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  return coexec::bench::run_main(argc, argv, [] {
    for (const gemm_shape& s : shapes) {
      const std::string name = "BM_GpuGemm/" + std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k);
      for (auto family : {gpu::gemm_family::local, gpu::gemm_family::register_blocked, gpu::gemm_family::gemv})
        benchmark::RegisterBenchmark((name + "/" + gpu::to_string(family)).c_str(), coexec_gemm, s,
                                     std::optional<gpu::gemm_family>(family))
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark((name + "/tuned").c_str(), coexec_gemm, s, std::optional<gpu::gemm_family>())
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
#if defined(COEXEC_HAVE_CLBLAST)
      benchmark::RegisterBenchmark((name + "/clblast").c_str(), clblast_sgemm, s)->UseRealTime()->Unit(benchmark::kMicrosecond);
#endif
    }
  });
}
