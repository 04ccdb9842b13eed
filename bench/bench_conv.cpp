// Co-executed conv2d on the real layers of MobileNetV2 and ResNet-50 (bench/conv_layers.hpp):
//   BM_Conv/<layer>/cpu            plan {channels, O}: the CPU alone
//   BM_Conv/<layer>/gpu            plan {channels, 0}: the device alone
//   BM_Conv/<layer>/coexec_oracle  the hybrid_search plan (dimension and split timed on this machine)
//   BM_Conv/<layer>/coexec_planned the predicted plan (shipped conv trees or the roofline, endpoints
//                                  anchored, online correction on): no grid search
//   BM_Conv/<layer>/openblas       im2col + cblas_sgemm per group, the CPU side's threads
//   BM_Conv/<layer>/clblast        CLBlastSconvgemm on the device (groups == 1 only)
//   BM_Conv/<layer>/kernel_igemm   coexec's device kernel alone, igemm or tiled forced, or the
//   BM_Conv/<layer>/kernel_tiled   gpu::tuner's choice for the layer (timed when the benchmark is set
//   BM_Conv/<layer>/kernel_tuned   up, named in the label), on device buffers as clblast's (no staging)
//   BM_ConvNet/<net>/<mode>        every convolution of the network, each as often as it occurs
// Counters: gflops; first_call_ms (the untimed first call: the planning, for the oracle and the
// planned mode); for those two also split, dimension (0 channels, 1 rows), and, from runs timed
// in turns with both sides alone on the same operator (bench::interleaved_seconds), speedup over the faster side,
// ideal = 1 + t_min / t_max (perfect overlap) and efficiency = speedup / ideal; for the planned
// mode oracle_ratio = oracle / planned, timed in turns too (when the oracle mode ran first).
// BM_ConvNet's co-executed modes report speedup over the faster single side, whole passes over
// the network timed in turns.
// Run: bench_conv --platform=pocl-2 --benchmark_filter=BM_Conv/mbv2
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "coexec/ops/conv2d.hpp"
#include "coexec/memory/io_buffer.hpp"
#include "common.hpp"
#include "conv_layers.hpp"

#if defined(COEXEC_HAVE_CBLAS)
#include <cblas.h>
#endif
#if defined(COEXEC_HAVE_CLBLAST)
#include <clblast_c.h>
#endif

namespace {

using coexec::conv2d_shape;
using coexec::bench::conv_layer;
using coexec::bench::current_platform;
using coexec::plan::split_dimension;
using coexec::plan::split_plan;

// The oracle with a lighter search than the default: 53 layers x two dimensions to plan.
struct oracle : coexec::plan::hybrid_search<conv2d_shape> {
  oracle() : hybrid_search({.coarse_points = 9, .repeats = 3}) {}
};
using conv_op = coexec::ops::conv2d<float, coexec::cpu::packed_conv, oracle>;

// The device, the CPU threads and one operator per layer for the whole run, built lazily so
// compilation is never timed, and deliberately never destroyed: releasing OpenCL objects during
// static destruction crashes some drivers.
struct machine {
  coexec::runtime::context ctx = current_platform().make_context();
  coexec::cpu::thread_pool pool{current_platform().cpu_threads, current_platform().cpu_cores};
};
machine& shared_machine() {
  static auto* m = new machine;
  return *m;
}

// A layer's operator and its random input / output (io_buffer: SVM where the device shares memory).
struct layer_state {
  explicit layer_state(const conv_layer& layer)
      : op(shared_machine().ctx, shared_machine().pool, layer.shape, random(layer.shape.weight_size())),
        planned(shared_machine().ctx, shared_machine().pool, layer.shape, random(layer.shape.weight_size())),
        x_buffer(shared_machine().ctx, layer.shape.input_size(), op.shared_memory()),
        y_buffer(shared_machine().ctx, layer.shape.output_size(), op.shared_memory()) {
    const std::vector<float> input = random(layer.shape.input_size());
    std::copy(input.begin(), input.end(), x_buffer.data());
  }
  static std::vector<float> random(std::size_t count) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    std::vector<float> values(count);
    for (float& v : values) v = dist(rng);
    return values;
  }
  const float* x() const { return x_buffer.data(); }
  float* y() { return y_buffer.data(); }

  conv_op op;
  coexec::ops::conv2d<float> planned;  // the default planner: plan::predicted
  coexec::io_buffer<float> x_buffer, y_buffer;
};

layer_state& state_of(const conv_layer& layer) {
  static auto* states = new std::map<std::string, std::unique_ptr<layer_state>>;
  auto& slot = (*states)[layer.name];
  if (!slot) slot = std::make_unique<layer_state>(layer);
  return *slot;
}

// One timed step of a mode on one layer; built before timing starts (and run once as warm-up).
using step = std::function<void()>;

step coexec_step(const conv_layer& layer, const std::string& mode) {
  layer_state& s = state_of(layer);
  if (mode == "cpu") return [&s, o = layer.shape.out_channels] { s.op(s.x(), s.y(), {split_dimension::channels, o}); };
  if (mode == "gpu") return [&s] { s.op(s.x(), s.y(), {split_dimension::channels, 0}); };
  if (mode == "coexec_planned") return [&s] { s.planned(s.x(), s.y()); };
  return [&s] { s.op(s.x(), s.y()); };
}

#if defined(COEXEC_HAVE_CBLAS)
// im2col of one image and group (rows: c, kh, kw; columns: output pixels), then W_g · cols.
step openblas_step(const conv_layer& layer) {
  const conv2d_shape sh = layer.shape;
  auto cols = std::make_shared<std::vector<float>>(sh.patch() * sh.out_height() * sh.out_width());
  auto w = std::make_shared<std::vector<float>>(layer_state::random(sh.weight_size()));
  auto x = std::make_shared<std::vector<float>>(layer_state::random(sh.input_size()));
  auto y = std::make_shared<std::vector<float>>(sh.output_size());
  openblas_set_num_threads(static_cast<int>(current_platform().cpu_threads));
  return [=] {
    const std::size_t oh_count = sh.out_height(), ow_count = sh.out_width(), pixels = oh_count * ow_count;
    for (std::size_t n = 0; n < sh.batch; ++n)
      for (std::size_t g = 0; g < sh.groups; ++g) {
        float* col = cols->data();
        for (std::size_t c = 0; c < sh.group_channels(); ++c) {
          const float* in = x->data() + ((n * sh.channels + g * sh.group_channels() + c) * sh.height) * sh.width;
          for (std::size_t kh = 0; kh < sh.kernel_h; ++kh)
            for (std::size_t kw = 0; kw < sh.kernel_w; ++kw)
              for (std::size_t i = 0; i < oh_count; ++i) {
                const long ih = long(i * sh.stride_h + kh * sh.dilation_h) - long(sh.pad_top);
                for (std::size_t j = 0; j < ow_count; ++j, ++col) {
                  const long iw = long(j * sh.stride_w + kw * sh.dilation_w) - long(sh.pad_left);
                  *col = ih >= 0 && iw >= 0 && ih < long(sh.height) && iw < long(sh.width) ? in[ih * long(sh.width) + iw] : 0.f;
                }
              }
        }
        const std::size_t og = sh.group_out_channels();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(og), int(pixels), int(sh.patch()), 1.f,
                    w->data() + g * og * sh.patch(), int(sh.patch()), cols->data(), int(pixels), 0.f,
                    y->data() + (n * sh.out_channels + g * og) * pixels, int(pixels));
      }
  };
}
#endif

#if defined(COEXEC_HAVE_CLBLAST)
step clblast_step(const conv_layer& layer) {
  const conv2d_shape sh = layer.shape;
  coexec::runtime::context& ctx = shared_machine().ctx;
  const auto buffer = [&](std::size_t count) { return coexec::gpu::make_buffer<float>(ctx, count); };
  cl::Buffer x = buffer(sh.input_size()), w = buffer(sh.weight_size()), y = buffer(sh.output_size());
  return [=, queue = ctx.queue()]() mutable {
    cl_command_queue q = queue();
    cl_event event = nullptr;
    const CLBlastStatusCode status =
        CLBlastSconvgemm(CLBlastKernelModeCrossCorrelation, sh.channels, sh.height, sh.width, sh.kernel_h, sh.kernel_w, sh.pad_top,
                         sh.pad_left, sh.stride_h, sh.stride_w, sh.dilation_h, sh.dilation_w, sh.out_channels, sh.batch, x(), 0,
                         w(), 0, y(), 0, &q, &event);
    if (status != CLBlastSuccess) throw coexec::error(coexec::errc::opencl, "CLBlastSconvgemm failed", status);
    clWaitForEvents(1, &event);
    clReleaseEvent(event);
  };
}
#endif

// In memory only: every run tunes afresh.
coexec::gpu::tuner& kernel_tuner() {
  static auto* tuner = new coexec::gpu::tuner(std::filesystem::path{});
  return *tuner;
}

// The device kernel alone on device-resident buffers, each step enqueue + completion wait.
step kernel_step(const conv_layer& layer, coexec::gpu::conv_choice choice) {
  const conv2d_shape sh = layer.shape;
  coexec::runtime::context& ctx = shared_machine().ctx;
  auto launcher = std::make_shared<coexec::gpu::conv_launcher<float>>(ctx, sh, coexec::activation::none, false, choice);
  auto done = std::make_shared<coexec::sync::completion>(ctx);
  const auto buffer = [&](std::size_t count) { return coexec::gpu::make_buffer<float>(ctx, count); };
  const coexec::gpu::conv_operands<float> ops{{buffer(sh.input_size())}, {buffer(sh.weight_size())}, {},
                                              {buffer(sh.output_size())}, sh.out_channels * sh.out_height() * sh.out_width(),
                                              sh.out_height() * sh.out_width()};
  return [=] {
    done->wait(launcher->enqueue(ops, {0, sh.out_channels}, {0, sh.out_height()}, *done));
  };
}

// The step for `mode`, or a reason it cannot run.
std::optional<step> make_step(const conv_layer& layer, const std::string& mode, std::string& why) {
  if (mode == "cpu" || mode == "gpu" || mode == "coexec_oracle" || mode == "coexec_planned") return coexec_step(layer, mode);
  if (mode == "kernel_igemm") return kernel_step(layer, {coexec::gpu::conv_kernel::igemm});
  if (mode == "kernel_tiled") return kernel_step(layer, {coexec::gpu::conv_kernel::tiled});
  if (mode == "kernel_tuned") return kernel_step(layer, kernel_tuner().conv<float>(shared_machine().ctx, layer.shape));
#if defined(COEXEC_HAVE_CBLAS)
  if (mode == "openblas") return openblas_step(layer);
#endif
#if defined(COEXEC_HAVE_CLBLAST)
  if (mode == "clblast") {
    if (layer.shape.groups != 1) {
      why = std::string("CLBlast convgemm does not support groups > 1 (") + layer.name + ")";
      return std::nullopt;
    }
    return clblast_step(layer);
  }
#endif
  why = "mode " + mode + " is not built";
  return std::nullopt;
}

// The plan an operator ran last, as counters and label.
void report_split(benchmark::State& state, const coexec::ops::conv2d_record& record, coexec::gpu::conv_kernel kernel) {
  state.counters["split"] = double(record.split);
  state.counters["dimension"] = record.dimension == split_dimension::channels ? 0 : 1;
  state.SetLabel(std::string(to_string(record.dimension)) + " split " + std::to_string(record.split) + ", device kernel " +
                 to_string(kernel));
}

// The oracle has planned the layer once its mode ran.
std::map<std::string, bool>& oracle_planned() {
  static auto* planned = new std::map<std::string, bool>;
  return *planned;
}

// speedup, ideal and efficiency of a co-executed mode, its runs timed in turns with both sides
// alone on the same operator (one copy of the weights, as bench_linear); for the planned mode
// also oracle_ratio.
template <class Op>
void report_speedup(benchmark::State& state, const conv_layer& layer, const std::string& mode, Op& op) {
  const std::string key = layer.name + std::string("/") + mode;
  layer_state& s = state_of(layer);
  const std::size_t channels = layer.shape.out_channels;
  const auto& t = coexec::bench::interleaved_once(key, {[&s, &op, channels] { op(s.x(), s.y(), {split_dimension::channels, channels}); },
                                                        [&s, &op] { op(s.x(), s.y(), {split_dimension::channels, 0}); },
                                                        [&s, &op] { op(s.x(), s.y()); }});
  const double t_min = std::min(t[0], t[1]), t_max = std::max(t[0], t[1]);
  state.counters["speedup"] = t_min / t[2];
  state.counters["ideal"] = 1 + t_min / t_max;
  state.counters["efficiency"] = state.counters["speedup"].value / state.counters["ideal"].value;
  if (mode == "coexec_planned" && oracle_planned()[layer.name]) {
    const auto& pair = coexec::bench::interleaved_once(key + "/oracle", {coexec_step(layer, "coexec_oracle"), coexec_step(layer, mode)});
    state.counters["oracle_ratio"] = pair[0] / pair[1];
  }
}

// The very first call of each layer and mode: Google Benchmark may invoke a benchmark several
// times, and only the first call plans.
double& first_call_ms(const std::string& layer_mode) {
  static auto* first = new std::map<std::string, double>;
  return (*first)[layer_mode];
}

void run_layer(benchmark::State& state, const conv_layer& layer, const std::string& mode) {
  std::string why;
  std::optional<step> run;
  try {
    run = make_step(layer, mode, why);
    if (run) {  // warm-up: a planned mode's first call plans (kernels are built before)
      const auto start = std::chrono::steady_clock::now();
      (*run)();
      double& first = first_call_ms(layer.name + std::string("/") + mode);
      if (first == 0) first = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      state.counters["first_call_ms"] = first;
    }
  } catch (const coexec::error& e) {
    why = e.what(), run.reset();
  }
  if (!run) return state.SkipWithError(why.c_str());
  for (auto _ : state) (*run)();
  state.counters["gflops"] = benchmark::Counter(2 * layer.shape.macs() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  if (mode == "coexec_oracle") {
    oracle_planned()[layer.name] = true;
    report_split(state, state_of(layer).op.last_run(), state_of(layer).op.device_kernel());
  }
  if (mode == "coexec_planned") report_split(state, state_of(layer).planned.last_run(), state_of(layer).planned.device_kernel());
  if (mode == "coexec_oracle") report_speedup(state, layer, mode, state_of(layer).op);
  if (mode == "coexec_planned") report_speedup(state, layer, mode, state_of(layer).planned);
  if (mode == "kernel_tuned") state.SetLabel(kernel_tuner().conv<float>(shared_machine().ctx, layer.shape).to_string());
}

// One pass of mode `mode` over every convolution of `net`, each layer as often as it occurs,
// each step run once; nullopt and `why` when a layer cannot run the mode.
std::optional<step> net_pass(const std::string& net, const std::string& mode, std::string& why) {
  std::vector<std::pair<step, std::size_t>> steps;
  for (const conv_layer& layer : coexec::bench::conv_layers) {
    if (layer.net != net) continue;
    std::optional<step> run;
    try {
      run = make_step(layer, mode, why);
      if (run) (*run)();
    } catch (const coexec::error& e) {
      why = e.what(), run.reset();
    }
    if (!run) return std::nullopt;
    steps.emplace_back(std::move(*run), layer.count);
  }
  return [steps = std::move(steps)] {
    for (auto& [run, count] : steps)
      for (std::size_t i = 0; i < count; ++i) run();
  };
}

void run_net(benchmark::State& state, const std::string& net, const std::string& mode) {
  std::string why;
  const std::optional<step> pass = net_pass(net, mode, why);
  if (!pass) return state.SkipWithError(why.c_str());
  // Each planned layer anchored on runs in a loop of its own; in the network its plan settles.
  for (int run = 0; run < coexec::bench::settling_runs; ++run) (*pass)();
  for (auto _ : state) (*pass)();
  double macs = 0;
  for (const conv_layer& layer : coexec::bench::conv_layers)
    if (layer.net == net) macs += layer.shape.macs() * double(layer.count);
  state.counters["gflops"] = benchmark::Counter(2 * macs * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  if (mode == "coexec_oracle" || mode == "coexec_planned") {
    const std::optional<step> cpu = net_pass(net, "cpu", why), gpu = net_pass(net, "gpu", why);
    if (!cpu || !gpu) return;
    const auto& t = coexec::bench::interleaved_once(net + "/" + mode, {*cpu, *gpu, *pass});
    state.counters["speedup"] = std::min(t[0], t[1]) / t[2];
  }
}

}  // namespace

int main(int argc, char** argv) {
  return coexec::bench::run_main(argc, argv, [] {
    const char* modes[] = {"cpu", "gpu", "coexec_oracle", "coexec_planned", "openblas", "clblast", "kernel_igemm", "kernel_tiled", "kernel_tuned"};
    for (const conv_layer& layer : coexec::bench::conv_layers)
      for (const char* mode : modes)
        benchmark::RegisterBenchmark((std::string("BM_Conv/") + layer.name + "/" + mode).c_str(),
                                     [&layer, mode](benchmark::State& state) { run_layer(state, layer, mode); })
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    for (const char* net : {"mbv2", "r50"})
      for (const char* mode : modes)
        benchmark::RegisterBenchmark((std::string("BM_ConvNet/") + net + "/" + mode).c_str(),
                                     [net = std::string(net), mode](benchmark::State& state) { run_net(state, net, mode); })
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
  });
}
