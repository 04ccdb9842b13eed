// Fault injection (coexec/fault_injection.hpp; this target defines COEXEC_FAULT_INJECTION): every
// device fault either raises its error or, with device_failure::run_on_cpu, gives the correct
// output, on each data path; nothing hangs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <random>
#include <string>

#include "attention_reference.hpp"
#include "conv_reference.hpp"
#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/attention.hpp"
#include "coexec/ops/conv2d.hpp"
#include "coexec/ops/linear.hpp"
#include "coexec/sync/probe.hpp"
#include "coexec/fault_injection.hpp"
#include "linear_reference.hpp"
#include "support.hpp"

using namespace coexec;
using namespace std::chrono_literals;

namespace {

// Generous for a loaded 2-core CI machine, short enough to keep the file fast.
constexpr auto injected_timeout = 150ms;
constexpr auto never_hangs = 10s;  // a failing call returns well within this

using test::data_path;
using test::data_paths;

// The device faults an operator can recover from, with the error each raises.
struct device_fault {
  fault point;
  errc raised;
  const char* name;
};
constexpr device_fault device_faults[] = {{fault::program_build, errc::build_failure, "program_build"},
                                          {fault::enqueue, errc::opencl, "enqueue"},
                                          {fault::no_signal, errc::timeout, "no_signal"}};

// Runs `call` and checks it ends in `code` within never_hangs.
template <class Call>
void check_fails_in_time(Call&& call, errc code) {
  const auto start = std::chrono::steady_clock::now();
  test::check_error(call, code);
  CHECK(std::chrono::steady_clock::now() - start < never_hangs);
}

// What every operator case shares: its options on one data path, with the injected timeout and
// a failure policy (linear_options, conv2d_options and attention_options share these fields).
template <class Options>
struct fault_case {
  Options options(const data_path& path, device_failure policy) const {
    return {.completion = path.completion, .timeout = injected_timeout, .on_device_failure = policy, .shared_memory = path.shared};
  }
};

// A dense layer with a device part (columns [32, 80)) on one data path.
struct linear_case : fault_case<linear_options> {
  static constexpr std::size_t m = 5, n = 80, k = 24, split = 32;
  std::mt19937 rng{17};
  std::vector<float> w = test::random_values<float>(n * k, rng), b = test::random_values<float>(n, rng),
                     xs = test::random_values<float>(m * k, rng);

  std::size_t input_size() const { return m * k; }
  std::size_t output_size() const { return m * n; }
  // Runs once into `y` (filled with a sentinel first) and checks the output against the reference.
  void run_and_check(ops::linear<float>& layer, memory::io_buffer<float>& x, memory::io_buffer<float>& y) const {
    std::copy(xs.begin(), xs.end(), x.data());
    std::fill(y.data(), y.data() + y.size(), -777.0f);
    layer(x.data(), m, y.data(), split);
    test::check_linear(xs.data(), w.data(), b.data(), y.data(), m, n, k, activation::none);
  }
};

// A convolution with a device part (output channels [16, 32)) on one data path.
struct conv_case : fault_case<conv2d_options> {
  static constexpr conv2d_shape shape{.batch = 2, .channels = 8, .height = 9, .width = 9, .out_channels = 32, .kernel_h = 3,
                                      .kernel_w = 3, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
  static constexpr plan::split_plan plan{plan::split_dimension::channels, 16};
  std::mt19937 rng{19};
  std::vector<float> w = test::random_values<float>(shape.weight_size(), rng), b = test::random_values<float>(shape.out_channels, rng),
                     xs = test::random_values<float>(shape.input_size(), rng);

  std::size_t input_size() const { return shape.input_size(); }
  std::size_t output_size() const { return shape.output_size(); }
  void run_and_check(ops::conv2d<float>& layer, memory::io_buffer<float>& x, memory::io_buffer<float>& y) const {
    std::copy(xs.begin(), xs.end(), x.data());
    std::fill(y.data(), y.data() + y.size(), -777.0f);
    layer(x.data(), y.data(), plan);
    test::check_conv(shape, xs.data(), w.data(), b.data(), y.data(), activation::none);
  }
};

// Attention with a device part (heads [1, 3)) on one data path.
struct attention_case : fault_case<attention_options> {
  static constexpr std::size_t tokens = 9, heads = 3, head_dim = 8, d = heads * head_dim, split = 1;
  std::mt19937 rng{23};
  std::vector<float> qkv = test::random_values<float>(tokens * 3 * d, rng);

  std::size_t input_size() const { return qkv.size(); }
  std::size_t output_size() const { return tokens * d; }
  void run_and_check(ops::attention<float>& op, memory::io_buffer<float>& x, memory::io_buffer<float>& y) const {
    std::copy(qkv.begin(), qkv.end(), x.data());
    std::fill(y.data(), y.data() + y.size(), -777.0f);
    op(x.data(), tokens, y.data(), split);
    const auto want = test::attention_reference(qkv.data(), tokens, heads, head_dim);
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(std::abs(y.data()[i] - want[i]) < 1e-5);
  }
};

// Plans a fixed split (`Choice`: a split, or a split_plan for conv2d) and counts the runs it
// observes, keeping the last one's dimension where its record has one (conv2d's).
template <class Choice>
struct counting_planner {
  Choice plan{};
  int observed = 0;
  std::optional<plan::split_dimension> observed_dimension{};
  template <class Key, class Op>
  Choice choose(const Key&, Op&) {
    return plan;
  }
  template <class Key, class Record>
  void observe(const Key&, const Record& run) {
    ++observed;
    if constexpr (requires { run.dimension; }) observed_dimension = run.dimension;
  }
};

// Blocks the context's in-order queue behind a user event until release(): whatever is enqueued
// after it neither runs nor completes, as on a device that stopped answering.
class held_queue {
 public:
  explicit held_queue(const runtime::context& ctx) : gate_(ctx.cl_context()) {
    const std::vector<cl::Event> wait{gate_};
    detail::check(ctx.queue().enqueueBarrierWithWaitList(&wait), "clEnqueueBarrierWithWaitList");
    detail::check(ctx.queue().flush(), "clFlush");
  }
  held_queue(const held_queue&) = delete;
  held_queue& operator=(const held_queue&) = delete;
  ~held_queue() { release(); }  // before the buffers die: freeing SVM drains the queue
  void release() {
    if (!released_) detail::check(gate_.setStatus(CL_COMPLETE), "clSetUserEventStatus");
    released_ = true;
  }

 private:
  cl::UserEvent gate_;
  bool released_ = false;
};

// Runs case `c` on every data path under every device fault, each on a fresh context (a fresh
// program cache: the build fault must reach the build). The operator `make(ctx, options)` builds
// ends in the fault's error in time under device_failure::raise; under run_on_cpu its output is
// correct, and `recovered(op, fault)` checks how it recovered.
template <class Case, class Make, class Recovered>
void check_each_device_fault(const Case& c, Make&& make, Recovered&& recovered) {
  for (const data_path& path : data_paths)
    for (const device_fault& f : device_faults) {
      INFO(path.name << ", fault " << f.name);
      auto ctx = test::make_context();
      const bool shared = path.shared && ctx.caps().svm_fine;
      memory::io_buffer<float> x(ctx, c.input_size(), shared), y(ctx, c.output_size(), shared);
      scoped_fault armed(f.point);
      check_fails_in_time(
          [&] {
            auto op = make(ctx, c.options(path, device_failure::raise));
            c.run_and_check(op, x, y);
          },
          f.raised);
      auto op = make(ctx, c.options(path, device_failure::run_on_cpu));
      c.run_and_check(op, x, y);
      recovered(op, f);
    }
}

}  // namespace

TEST_CASE("linear: each device fault raises its error, or with run_on_cpu is recomputed on the CPU") {
  cpu::thread_pool pool(2);
  const linear_case c;
  check_each_device_fault(
      c, [&](const runtime::context& ctx, linear_options options) { return ops::linear<float>(ctx, pool, c.n, c.k, c.w, c.b, options); },
      [](const ops::linear<float>& layer, const device_fault&) { CHECK(layer.last_run().device_recomputed); });
}

TEST_CASE("conv2d: each device fault raises its error, or with run_on_cpu is recomputed on the CPU") {
  cpu::thread_pool pool(2);
  const conv_case c;
  check_each_device_fault(
      c, [&](const runtime::context& ctx, conv2d_options options) { return ops::conv2d<float>(ctx, pool, c.shape, c.w, c.b, options); },
      [&](const ops::conv2d<float>& layer, const device_fault& f) {
        if (f.point == fault::program_build) {
          CHECK_FALSE(layer.device_available());  // no kernel: the CPU computed everything
          CHECK(layer.last_run().split == c.shape.out_channels);
        } else {
          CHECK(layer.last_run().device_recomputed);
        }
      });
}

TEST_CASE("attention: each device fault raises its error, or with run_on_cpu is recomputed on the CPU") {
  cpu::thread_pool pool(2);
  const attention_case c;
  check_each_device_fault(
      c, [&](const runtime::context& ctx, attention_options options) { return ops::attention<float>(ctx, pool, c.heads, c.head_dim, options); },
      [](const ops::attention<float>& op, const device_fault&) { CHECK(op.last_run().device_recomputed); });
}

TEST_CASE("a faulted run leaves the operator usable: the next run co-executes again") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  const linear_case c;
  ops::linear<float> layer(ctx, pool, c.n, c.k, c.w, c.b, c.options(data_paths[0], device_failure::run_on_cpu));
  memory::io_buffer<float> x(ctx, c.m * c.k, layer.shared_memory()), y(ctx, c.m * c.n, layer.shared_memory());
  {
    scoped_fault armed(fault::no_signal);
    c.run_and_check(layer, x, y);
    CHECK(layer.last_run().device_recomputed);
  }
  c.run_and_check(layer, x, y);
  CHECK_FALSE(layer.last_run().device_recomputed);
}

TEST_CASE("a run whose device part was recomputed on the CPU is not shown to the planner") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  const linear_case c;
  const conv_case cc;
  const attention_case ac;
  ops::linear<float, cpu::packed_gemm, counting_planner<std::size_t>> layer(ctx, pool, c.n, c.k, c.w, c.b,
                                                                            c.options(data_paths[0], device_failure::run_on_cpu));
  ops::conv2d<float, cpu::packed_conv, counting_planner<plan::split_plan>> conv(ctx, pool, cc.shape, cc.w, cc.b,
                                                                                cc.options(data_paths[0], device_failure::run_on_cpu));
  ops::attention<float, counting_planner<std::size_t>> attention(ctx, pool, ac.heads, ac.head_dim,
                                                                 ac.options(data_paths[0], device_failure::run_on_cpu));
  layer.planner().plan = c.split;
  conv.planner().plan = {plan::split_dimension::rows, 4};  // the record must tell the planner the dimension
  attention.planner().plan = ac.split;
  memory::io_buffer<float> x(ctx, c.m * c.k, layer.shared_memory()), y(ctx, c.m * c.n, layer.shared_memory());
  memory::io_buffer<float> cx(ctx, cc.shape.input_size(), conv.shared_memory()), cy(ctx, cc.shape.output_size(), conv.shared_memory());
  memory::io_buffer<float> ax(ctx, ac.input_size(), attention.shared_memory()), ay(ctx, ac.output_size(), attention.shared_memory());
  const auto run_all = [&] {
    layer(x.data(), c.m, y.data());
    conv(cx.data(), cy.data());
    attention(ax.data(), ac.tokens, ay.data());
  };
  {
    scoped_fault armed(fault::enqueue);
    run_all();
    REQUIRE(layer.last_run().device_recomputed);
    REQUIRE(conv.last_run().device_recomputed);
    REQUIRE(attention.last_run().device_recomputed);
  }
  CHECK(layer.planner().observed == 0);
  CHECK(conv.planner().observed == 0);
  CHECK(attention.planner().observed == 0);
  run_all();
  CHECK(layer.planner().observed == 1);
  CHECK(conv.planner().observed == 1);
  CHECK(conv.planner().observed_dimension == plan::split_dimension::rows);
  CHECK(attention.planner().observed == 1);
}

TEST_CASE("svm_alloc: allocations fail with out_of_memory, whatever the policy") {
  auto ctx = test::make_context();
  if (!test::has_coarse_svm(ctx)) {
    test::report_skip("svm_alloc fault", "device has no SVM");
    return;
  }
  cpu::thread_pool pool(2);
  const linear_case c;
  const conv_case cc;
  scoped_fault armed(fault::svm_alloc);
  test::check_error([&] { memory::svm_vector<float> v(ctx, 16); }, errc::out_of_memory, "clSVMAlloc");
  test::check_error([&] { memory::io_buffer<float> v(ctx, 16, true); }, errc::out_of_memory, "clSVMAlloc");
  // Construction allocates the shared weights (and the SVM sync block): there is no device part to fall back from.
  for (auto policy : {device_failure::raise, device_failure::run_on_cpu}) {
    test::check_error([&] { ops::linear<float>(ctx, pool, c.n, c.k, c.w, c.b, c.options(data_paths[0], policy)); },
                      errc::out_of_memory, "clSVMAlloc");
    test::check_error([&] { ops::conv2d<float>(ctx, pool, cc.shape, cc.w, cc.b, cc.options(data_paths[0], policy)); },
                      errc::out_of_memory, "clSVMAlloc");
  }
}

TEST_CASE("map: a failed SVM map is an opencl error naming the call") {
  auto ctx = test::make_context();
  if (!test::has_coarse_svm(ctx)) {
    test::report_skip("map fault", "device has no coarse-grained SVM");
    return;
  }
  memory::svm_vector<float> coarse(ctx, 64, runtime::svm_granularity::coarse);
  scoped_fault armed(fault::map);
  test::check_error([&] { auto guard = coarse.map(); }, errc::opencl, "clEnqueueSVMMap");
  // The constructor maps to zero the memory; it fails the same way (and frees its block).
  test::check_error([&] { memory::svm_vector<float> v(ctx, 1, runtime::svm_granularity::coarse); }, errc::opencl, "clEnqueueSVMMap");
}

TEST_CASE("a device part that never ends: errc::timeout in time, then errc::aborted until it ended") {
  cpu::thread_pool pool(2);
  const linear_case c;
  const conv_case cc;
  for (auto policy : {device_failure::raise, device_failure::run_on_cpu}) {
    for (const data_path& path : data_paths) {
      INFO(path.name << ", policy " << (policy == device_failure::raise ? "raise" : "run_on_cpu"));
      auto ctx = test::make_context();
      ops::linear<float> layer(ctx, pool, c.n, c.k, c.w, c.b, c.options(path, policy));
      ops::conv2d<float> conv(ctx, pool, cc.shape, cc.w, cc.b, cc.options(path, policy));
      memory::io_buffer<float> x(ctx, c.m * c.k, layer.shared_memory()), y(ctx, c.m * c.n, layer.shared_memory());
      memory::io_buffer<float> cx(ctx, cc.shape.input_size(), conv.shared_memory()), cy(ctx, cc.shape.output_size(), conv.shared_memory());
      c.run_and_check(layer, x, y);  // builds the kernels and moves the staged weights while the queue still runs
      cc.run_and_check(conv, cx, cy);
      {
        held_queue stuck(ctx);
        // Even run_on_cpu raises: the device part may still write into y after the call returned.
        check_fails_in_time([&] { c.run_and_check(layer, x, y); }, errc::timeout);
        check_fails_in_time([&] { cc.run_and_check(conv, cx, cy); }, errc::timeout);
        test::check_error([&] { c.run_and_check(layer, x, y); }, errc::aborted, "still running");
        test::check_error([&] { cc.run_and_check(conv, cx, cy); }, errc::aborted, "still running");
        stuck.release();
      }
      ctx.finish();  // the lost parts ended: both operators work again
      c.run_and_check(layer, x, y);
      cc.run_and_check(conv, cx, cy);
    }
  }
}

TEST_CASE("device-side waits abort: a kernel waiting on a host flag ends when the host gives up") {
  auto ctx = test::make_context();
  if (!test::has_svm_flags(ctx)) {
    test::report_skip("device-side abort", "device '" + ctx.caps().name + "' lacks fine-grained SVM atomics");
    return;
  }
  sync::completion done(ctx);
  memory::svm_vector<std::uint32_t> out(ctx, 64), word(ctx, 1);
  sync::spin_flag ready(word.data());
  auto kernel = ctx.kernel(sync::probe::source(), "coexec_probe_wait_fill");  // waits for the flag, then fills out
  detail::check(clSetKernelArgSVMPointer(kernel(), 0, word.data()), "clSetKernelArgSVMPointer");
  detail::check(kernel.setArg(1, std::uint32_t{1}), "clSetKernelArg");
  detail::check(clSetKernelArgSVMPointer(kernel(), 2, out.data()), "clSetKernelArgSVMPointer");
  detail::check(kernel.setArg(3, std::uint32_t{9}), "clSetKernelArg");
  done.bind(kernel, 4);
  const cl::Event running = gpu::detail::launch(ctx, kernel, cl::NDRange(out.size()), cl::NDRange(16), "launch");
  check_fails_in_time([&] { done.wait(running, injected_timeout); }, errc::timeout);
  ready.abort();
  sync::spin_until([&] { return sync::completion::event_complete(running); }, never_hangs, "aborted kernel");
  CHECK(std::all_of(out.begin(), out.end(), [](std::uint32_t v) { return v == 0; }));  // it gave up before writing
}
