// Argument validation across the public entry points: one test case per kind of error, each
// checking the error code and that the message names the argument at fault.
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <vector>

#include "coexec/gpu/conv.hpp"
#include "coexec/gpu/gemm.hpp"
#include "coexec/gpu/tuning.hpp"
#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/conv2d.hpp"
#include "coexec/ops/linear.hpp"
#include "coexec/predict/model_file.hpp"
#include "coexec/sync/spin_flag.hpp"
#include "support.hpp"

using namespace coexec;
using test::check_error;

namespace {

constexpr errc invalid = errc::invalid_argument;

// A 3x3 convolution, 8 -> 32 channels on 6x6 images, with its weights.
constexpr conv2d_shape conv_shape{.batch = 1, .channels = 8, .height = 6, .width = 6, .out_channels = 32, .kernel_h = 3, .kernel_w = 3};
const std::vector<float> conv_weights(conv_shape.weight_size(), 0.25f);

// y[4,32] = x[4,8] W^T on the device, every operand SVM of `ctx` (or cl::Buffers, for the
// buffer checks), with a launcher for the device's default config.
struct gemm_case {
  static constexpr gemm_shape shape{4, 32, 8};
  runtime::context ctx;
  memory::svm_vector<float> x{ctx, shape.m * shape.k}, w{ctx, memory::packed_size<float>(shape.n, shape.k)}, y{ctx, shape.m * shape.n};
  sync::completion done{ctx};
  gpu::gemm_launcher<float> launcher{ctx, gpu::default_config<float>(ctx.caps(), gpu::classify(shape.m)), activation::none, false};

  gpu::gemm_operands<float> operands() {
    return {gpu::device_ptr<const float>(x.data()), shape.k, gpu::device_ptr<const float>(w.data()), {}, gpu::device_ptr<float>(y.data()),
            shape.n};
  }
  auto enqueue(const gpu::gemm_operands<float>& ops, gemm_shape s = shape) {
    return [this, ops, s] { launcher.enqueue(ops, s, done); };
  }
};

// The conv launcher for conv_shape on `ctx` and SVM operands for it, the output addressed whole.
struct conv_case {
  runtime::context ctx;
  memory::svm_vector<float> x{ctx, conv_shape.input_size()}, w{ctx, conv_weights.size()}, y{ctx, conv_shape.output_size()};
  sync::completion done{ctx};
  gpu::conv_launcher<float> launcher{ctx, conv_shape, activation::none, false};
  static constexpr std::size_t plane = conv_shape.out_height() * conv_shape.out_width();

  gpu::conv_operands<float> operands() {
    return {gpu::device_ptr<const float>(x.data()), gpu::device_ptr<const float>(w.data()), {}, gpu::device_ptr<float>(y.data()),
            conv_shape.out_channels * plane, plane};
  }
  auto enqueue(const gpu::conv_operands<float>& ops, cpu::index_range channels, cpu::index_range rows) {
    return [this, ops, channels, rows] { launcher.enqueue(ops, channels, rows, done); };
  }
};

}  // namespace

TEST_CASE("shapes: zero or inconsistent dimensions are invalid_argument naming the dimension") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(1);
  const std::vector<float> w(64 * 8, 0.5f);
  check_error([&] { ops::linear<float>(ctx, pool, 0, 8, w); }, invalid, "N and K must be positive");
  ops::linear<float> layer(ctx, pool, 64, 8, w);
  memory::io_buffer<float> x(ctx, 8, layer.shared_memory()), y(ctx, 64, layer.shared_memory());
  check_error([&] { layer(x.data(), 0, y.data(), 0); }, invalid, "M must be positive");

  auto shape = conv_shape;
  shape.stride_h = 0;
  check_error([&] { ops::conv2d<float>(ctx, pool, shape, conv_weights); }, invalid, "stride_h");
  shape = conv_shape;
  shape.groups = 3;
  check_error([&] { ops::conv2d<float>(ctx, pool, shape, conv_weights); }, invalid, "groups");
  shape = conv_shape;
  shape.kernel_h = 7;  // taller than the 6-row input
  check_error([&] { ops::conv2d<float>(ctx, pool, shape, conv_weights); }, invalid, "kernel_h");

  gemm_case g{ctx};
  check_error(g.enqueue(g.operands(), {4, 32, 0}), invalid, "k must be positive");
  conv_case cv{ctx};
  check_error(cv.enqueue(cv.operands(), {0, 16}, {0, 5}), invalid, "rows [0, 5) must be");  // the output has 4 rows
  check_error(cv.enqueue(cv.operands(), {4, 16}, {0, 4}), invalid, "channels.begin (4)");  // inside a channel block
}

TEST_CASE("strides: a leading dimension or stride shorter than a row is invalid_argument naming it") {
  gemm_case g{test::make_context()};
  auto ops = g.operands();
  ops.ldx = g.shape.k - 1;
  check_error(g.enqueue(ops), invalid, "ldx");
  ops = g.operands();
  ops.ldy = g.shape.n - 1;
  check_error(g.enqueue(ops), invalid, "ldy");
  std::vector<float> host(16);
  check_error([&] { gpu::write_rows(g.ctx, gpu::make_buffer<float>(g.ctx, 16), 0, host.data(), 2, 8, 4); }, invalid, "ld < cols");

  conv_case cv{g.ctx};
  auto c = cv.operands();
  c.y_channel_stride = cv.plane - 1;
  check_error(cv.enqueue(c, {0, 16}, {0, 4}), invalid, "y_channel_stride");
}

TEST_CASE("buffer sizes: too few values are invalid_argument naming the buffer and the size wanted") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(1);
  const std::vector<float> w(64 * 8, 0.5f), b(64, 0.f);
  check_error([&] { ops::linear<float>(ctx, pool, 64, 8, std::span<const float>(w).first(10)); }, invalid, "weights must hold N*K = 512");
  check_error([&] { ops::linear<float>(ctx, pool, 64, 8, w, std::span<const float>(b).first(3)); }, invalid, "bias must hold N = 64");
  check_error([&] { ops::conv2d<float>(ctx, pool, conv_shape, std::span<const float>(conv_weights).first(9)); }, invalid, "weights must hold");
  check_error([&] { ops::conv2d<float>(ctx, pool, conv_shape, conv_weights, std::span<const float>(b).first(3)); }, invalid,
              "bias must hold out_channels = 32");

  ops::linear<float> layer(ctx, pool, 64, 8, w);
  if (layer.shared_memory()) {
    memory::io_buffer<float> x(ctx, 8, true), y(ctx, 2 * 64, true);
    check_error([&] { layer(x.data(), 2, y.data(), 0); }, invalid, "x must be an SVM allocation of this operator's context holding M*K = 16");
  } else {
    test::report_skip("operator buffer sizes", "x and y are host memory on '" + ctx.caps().name + "'");
  }

  gemm_case g{ctx};
  auto ops = g.operands();
  ops.ldy = 48;
  check_error(g.enqueue(ops, {4, 48, 8}), invalid, "gemm: w");  // more panels than W holds
  ops = g.operands();
  ops.y = gpu::device_ptr<float>(gpu::make_buffer<float>(ctx, 10));
  check_error(g.enqueue(ops), invalid, "gemm: y needs 512 bytes");
}

TEST_CASE("null pointers are invalid_argument naming the pointer") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(1);
  const std::vector<float> w(64 * 8, 0.5f);
  ops::linear<float> layer(ctx, pool, 64, 8, w);
  memory::io_buffer<float> x(ctx, 8, layer.shared_memory()), y(ctx, 64, layer.shared_memory());
  check_error([&] { layer(nullptr, 1, y.data(), 0); }, invalid, "x is null");
  check_error([&] { layer(x.data(), 1, nullptr, 0); }, invalid, "y is null");
  ops::conv2d<float> conv(ctx, pool, conv_shape, conv_weights);
  check_error([&] { conv(nullptr, y.data()); }, invalid, "x is null");
  check_error([&] { memory::map_guard guard(ctx.queue(), nullptr, 64, false); }, invalid, "p is null");
  check_error([] { sync::spin_flag flag(nullptr); }, invalid, "word is null");
  sync::completion done(ctx);
  cl::Kernel no_kernel;
  check_error([&] { done.bind(no_kernel, 0); }, invalid, "kernel is null");
  gemm_case g{ctx};
  auto ops = g.operands();
  ops.x = {};
  check_error(g.enqueue(ops), invalid, "gemm: x is null");
}

TEST_CASE("alignment: pointers not aligned to their element type are invalid_argument naming them") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(1);
  const std::vector<float> w(64 * 8, 0.5f);
  ops::linear<float> layer(ctx, pool, 64, 8, w);
  memory::io_buffer<float> x(ctx, 8, layer.shared_memory()), y(ctx, 64 + 1, layer.shared_memory());
  const auto misaligned = [](float* p) { return reinterpret_cast<float*>(reinterpret_cast<char*>(p) + 1); };
  check_error([&] { layer(misaligned(x.data()), 1, y.data(), 0); }, invalid, "x is not aligned");
  ops::conv2d<float> conv(ctx, pool, conv_shape, conv_weights);
  memory::io_buffer<float> cx(ctx, conv_shape.input_size(), conv.shared_memory()), cy(ctx, conv_shape.output_size() + 1, conv.shared_memory());
  check_error([&] { conv(cx.data(), misaligned(cy.data())); }, invalid, "y is not aligned");
  std::uint32_t words[2] = {};
  check_error([&] { sync::spin_flag flag(reinterpret_cast<std::uint32_t*>(reinterpret_cast<char*>(words) + 1)); }, invalid,
              "word is not 4-byte aligned");
}

TEST_CASE("context mismatch: memory of another context is invalid_argument naming the argument") {
  auto ctx = test::make_context();
  auto other = test::make_context();
  cpu::thread_pool pool(1);
  const std::vector<float> w(64 * 8, 0.5f);
  ops::linear<float> layer(ctx, pool, 64, 8, w);
  if (layer.shared_memory()) {
    memory::svm_vector<float> x(ctx, 8), foreign(other, 64);
    check_error([&] { layer(x.data(), 1, foreign.data(), 0); }, invalid, "y must be an SVM allocation of this operator's context");
  } else {
    test::report_skip("operator context mismatch", "x and y are host memory on '" + ctx.caps().name + "'");
  }
  gemm_case g{ctx};
  memory::svm_vector<float> foreign_x(other, g.shape.m * g.shape.k);
  auto ops = g.operands();
  ops.x = gpu::device_ptr<const float>(foreign_x.data());
  check_error(g.enqueue(ops), invalid, "gemm: x is not 128 bytes of SVM allocated through this context");
  ops = g.operands();
  ops.y = gpu::device_ptr<float>(gpu::make_buffer<float>(other, g.shape.m * g.shape.n));
  check_error(g.enqueue(ops), invalid, "gemm: y is a buffer of another context");
}

TEST_CASE("device capabilities: what the device cannot do is named, as invalid_argument or unsupported") {
  auto ctx = test::make_context();
  const auto& caps = ctx.caps();
  auto too_wide = gpu::gemm_config::local(256, 256, 16, 1, 4, 4);  // 64 x 256 work-items
  REQUIRE(too_wide.work_group_size() > caps.max_work_group_size);
  check_error([&] { gpu::gemm_launcher<float>(ctx, too_wide, activation::none, false); }, invalid, "exceeds the device's");
  check_error([&] { runtime::context(ctx.device(), {.sub_device_units = caps.compute_units + 1}); }, caps.max_sub_devices < 2 ? errc::unsupported : invalid,
              caps.max_sub_devices < 2 ? "cannot be partitioned" : "sub_device_units");
  if (!caps.fp64) {
    check_error([&] { gpu::gemm_launcher<double>(ctx, {}, activation::none, false); }, errc::unsupported, "has no fp64");
  } else if (!caps.svm_coarse) {
    check_error([&] { memory::svm_allocator<float> a(ctx); }, errc::unsupported, "has no shared virtual memory");
  } else {
    test::report_skip("errc::unsupported", "device '" + caps.name + "' has fp64 and SVM");
  }
}

TEST_CASE("options: splits, timeouts and granularities out of range are invalid_argument naming the option") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(1);
  const std::vector<float> w(64 * 8, 0.5f);
  check_error([&] { ops::linear<float>(ctx, pool, 64, 8, w, {}, {.timeout = std::chrono::nanoseconds(0)}); }, invalid, "options.timeout");
  check_error([&] { ops::conv2d<float>(ctx, pool, conv_shape, conv_weights, {}, {.timeout = std::chrono::nanoseconds(-1)}); }, invalid,
              "options.timeout");
  ops::linear<float> layer(ctx, pool, 64, 8, w);
  memory::io_buffer<float> x(ctx, 8, layer.shared_memory()), y(ctx, 64, layer.shared_memory());
  check_error([&] { layer(x.data(), 1, y.data(), 5); }, invalid, "split 5 must be a multiple of 16");
  check_error([&] { layer(x.data(), 1, y.data(), 80); }, invalid, "split 80");
  ops::conv2d<float> conv(ctx, pool, conv_shape, conv_weights);
  memory::io_buffer<float> cx(ctx, conv_shape.input_size(), conv.shared_memory()), cy(ctx, conv_shape.output_size(), conv.shared_memory());
  check_error([&] { conv(cx.data(), cy.data(), {plan::split_dimension::channels, 3}); }, invalid, "split 3 along channels");
  check_error([&] { memory::svm_allocator<float> a(ctx, runtime::svm_granularity::none); }, invalid, "wanted granularity");
  sync::completion done(ctx);
  check_error([&] { done.wait(cl::Event()); }, invalid, "last is not an event");
}

TEST_CASE("model files: unreadable files are io errors naming the path, malformed ones name the line") {
  const std::filesystem::path missing = "/nonexistent/coexec-validation.model";
  check_error([&] { predict::load_model_set(missing); }, errc::io, missing.string());
  std::istringstream garbage("not a model file\n");
  check_error([&] { predict::load_model_set(garbage, "garbage.model"); }, invalid, "garbage.model line 1");
}
