// Every device kernel (the three GEMM families, conv igemm, tiled and depthwise, the fused activations)
// on small odd shapes with cl::Buffer operands, checked against a double reference. Small enough
// to run under oclgrind's simulator, which checks each access (scripts/ci_reliability.sh
// oclgrind): oclgrind has no SVM, so this takes the staged path that works on every device.
// On the ordinary device it is just another correctness test.
#include <algorithm>
#include <cstddef>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "conv_reference.hpp"
#include "coexec/gpu/gemm.hpp"
#include "coexec/ops/conv2d.hpp"
#include "coexec/ops/linear.hpp"
#include "linear_reference.hpp"
#include "small_tiles.hpp"
#include "support.hpp"

using namespace coexec;
using gpu::gemm_family;

TEST_CASE("small kernels: every GEMM family and activation on staged buffers, device slice at a panel offset") {
  auto ctx = test::make_context();
  constexpr std::size_t nr = memory::panel_width<float>;
  std::mt19937 rng(11);
  const gemm_shape shapes[] = {{1, 2 * nr + 3, 5}, {5, 3 * nr + 1, 19}};
  const activation acts[] = {activation::relu, activation::gelu, activation::relu6};
  unsigned variant = 0;
  for (gemm_family family : {gemm_family::local, gemm_family::register_blocked, gemm_family::gemv})
    for (const gemm_shape& s : shapes) {
      const activation act = acts[variant++ % std::size(acts)];
      const std::string family_name = gpu::to_string(family);
      CAPTURE(family_name);
      CAPTURE(s.m);
      CAPTURE(s.n);
      CAPTURE(s.k);
      const std::size_t first = nr, count = s.n - first;
      const auto x = test::random_values<float>(s.m * s.k, rng), w = test::random_values<float>(s.n * s.k, rng),
                 bias = test::random_values<float>(s.n, rng);
      std::vector<float> packed(memory::packed_size<float>(s.n, s.k)), y(s.m * s.n, -7.0f);
      memory::pack_panels(w.data(), s.n, s.k, packed.data());
      const std::size_t slice = cpu::detail::ceil_div(count, nr) * nr * s.k;
      auto x_dev = gpu::make_buffer<float>(ctx, x.size()), w_dev = gpu::make_buffer<float>(ctx, slice),
           bias_dev = gpu::make_buffer<float>(ctx, count), y_dev = gpu::make_buffer<float>(ctx, s.m * count);
      gpu::write_rows(ctx, x_dev, 0, x.data(), s.m, s.k, s.k);
      gpu::write_rows(ctx, w_dev, 0, packed.data() + first * s.k, 1, slice, slice);
      gpu::write_rows(ctx, bias_dev, 0, bias.data() + first, 1, count, count);
      gpu::gemm_launcher<float> launcher(ctx, test::small_tiles<float>(family), act, true);
      sync::completion done(ctx, sync::completion::mode::event_polling);
      gpu::gemm_operands<float> ops{{x_dev}, s.k, {w_dev}, {bias_dev}, {y_dev}, count};
      done.wait(launcher.enqueue(ops, {s.m, count, s.k}, done));
      gpu::read_rows(ctx, y_dev, 0, y.data() + first, s.m, count, s.n).wait();
      // The CPU's columns were never written: compare only the device's, through a sub-problem.
      std::vector<float> w_slice(w.begin() + first * s.k, w.end()), y_slice(s.m * count);
      for (std::size_t r = 0; r < s.m; ++r) std::copy_n(y.begin() + r * s.n + first, count, y_slice.begin() + r * count);
      test::check_linear(x.data(), w_slice.data(), bias.data() + first, y_slice.data(), s.m, count, s.k, act);
      for (std::size_t r = 0; r < s.m; ++r)
        CHECK(std::all_of(y.begin() + r * s.n, y.begin() + r * s.n + first, [](float v) { return v == -7.0f; }));
    }
}

TEST_CASE("small kernels: ops::linear on the staged path, device-only and split") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(1);
  std::mt19937 rng(12);
  const std::size_t m = 3, n = 2 * ops::linear<float>::panel_width + 5, k = 13;
  const auto w = test::random_values<float>(n * k, rng), bias = test::random_values<float>(n, rng),
             x = test::random_values<float>(m * k, rng);
  ops::linear<float> layer(ctx, pool, n, k, w, bias, {.act = activation::relu, .shared_memory = false});
  for (std::size_t split : {std::size_t(0), layer.split_granule()}) {
    CAPTURE(split);
    std::vector<float> y(m * n, -7.0f);
    layer(x.data(), m, y.data(), split);
    test::check_linear(x.data(), w.data(), bias.data(), y.data(), m, n, k, activation::relu);
  }
}

TEST_CASE("small kernels: conv2d igemm, tiled and depthwise windows on the staged path, device-only") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(1);
  std::mt19937 rng(13);
  const conv2d_shape shapes[] = {
      {.channels = 3, .height = 5, .width = 6, .out_channels = 10},  // flat 1x1
      {.batch = 2, .channels = 4, .height = 6, .width = 5, .out_channels = 9, .kernel_h = 3, .kernel_w = 3, .stride_h = 2,
       .stride_w = 1, .pad_top = 1, .pad_bottom = 0, .pad_left = 1, .pad_right = 1},  // igemm, padded, ragged
      {.channels = 4, .height = 7, .width = 7, .out_channels = 8, .kernel_h = 3, .kernel_w = 2, .dilation_h = 2, .groups = 2},
      {.channels = 5, .height = 7, .width = 6, .out_channels = 5, .kernel_h = 3, .kernel_w = 3, .pad_top = 1, .pad_bottom = 1,
       .pad_left = 1, .pad_right = 1, .groups = 5},  // depthwise 3x3
      {.channels = 3, .height = 9, .width = 8, .out_channels = 3, .kernel_h = 5, .kernel_w = 5, .stride_h = 2, .stride_w = 2,
       .pad_top = 2, .pad_bottom = 2, .pad_left = 2, .pad_right = 2, .groups = 3},  // depthwise 5x5 stride 2
      {.channels = 2, .height = 190, .width = 190, .out_channels = 2, .kernel_h = 3, .kernel_w = 3, .pad_top = 1,
       .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .groups = 2},  // depthwise, a plane too large to stage on CPU devices
      {.channels = 2, .height = 4, .width = 5, .out_channels = 3, .kernel_h = 2, .kernel_w = 2, .pad_top = 1, .pad_left = 300,
       .dilation_w = 300},  // igemm, a window too wide to stage: each lane checked
  };
  for (const conv2d_shape& s : shapes)
    for (std::optional<gpu::conv_kernel> kernel : {std::optional<gpu::conv_kernel>{}, std::optional{gpu::conv_kernel::tiled}}) {
      if (kernel && s.groups != 1) continue;  // tiled computes one group; the device's own choice runs the rest
      CAPTURE(s.kernel_h);
      CAPTURE(s.groups);
      const auto w = test::random_values<float>(s.weight_size(), rng), bias = test::random_values<float>(s.out_channels, rng),
                 x = test::random_values<float>(s.input_size(), rng);
      ops::conv2d<float> layer(ctx, pool, s, w, bias, {.act = activation::relu6, .shared_memory = false, .device_kernel = kernel});
      CAPTURE(gpu::to_string(layer.device_kernel()));
      for (plan::split_plan p : {plan::split_plan{plan::split_dimension::channels, 0}, plan::split_plan{plan::split_dimension::rows, 1}}) {
        CAPTURE(p.split);
        std::vector<float> y(s.output_size(), -7.0f);
        layer(x.data(), y.data(), p);
        test::check_conv(s, x.data(), w.data(), bias.data(), y.data(), activation::relu6);
      }
    }
}
