// Example: co-executed convolutions, the two halves of a MobileNetV2 bottleneck's tail:
// a depthwise 3x3 (144 channels, 28x28, relu6) and the 1x1 projection to 32 channels.
//
// conv2d cuts the output along output channels or, for layers with few channels, along output
// rows; the default planner, plan::hybrid_search, times both and keeps the faster (plan()
// reports which). The depthwise layer's output feeds the 1x1 directly: one io_buffer, no copy.
// Both outputs are checked against a plain loop.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/conv2d.hpp"

using coexec::conv2d_shape;

// torch.nn.functional.conv2d on NCHW / OIHW, in double; worst relative error against y.
double check(const conv2d_shape& s, const float* x, const std::vector<float>& w, const std::vector<float>& b, const float* y,
             coexec::activation act) {
  const std::size_t oh = s.out_height(), ow = s.out_width(), cg = s.group_channels(), og = s.group_out_channels();
  double worst = 0;
  for (std::size_t o = 0; o < s.out_channels; ++o)
    for (std::size_t r = 0; r < oh; ++r)
      for (std::size_t c = 0; c < ow; ++c) {
        double acc = b[o];
        for (std::size_t i = 0; i < cg; ++i)
          for (std::size_t kh = 0; kh < s.kernel_h; ++kh)
            for (std::size_t kw = 0; kw < s.kernel_w; ++kw) {
              const long ih = long(r * s.stride_h + kh) - long(s.pad_top), iw = long(c * s.stride_w + kw) - long(s.pad_left);
              if (ih < 0 || iw < 0 || ih >= long(s.height) || iw >= long(s.width)) continue;
              acc += double(x[((o / og * cg + i) * s.height + ih) * s.width + iw]) *
                     w[((o * cg + i) * s.kernel_h + kh) * s.kernel_w + kw];
            }
        const double want = coexec::apply(act, acc), got = y[(o * oh + r) * ow + c];
        worst = std::max(worst, std::abs(got - want) / (1 + std::abs(want)));
      }
  return worst;
}

int main() try {
  coexec::context ctx;
  coexec::cpu::thread_pool pool(std::max(1u, std::thread::hardware_concurrency() / 2));
  const conv2d_shape dw{.channels = 144, .height = 28, .width = 28, .out_channels = 144, .kernel_h = 3, .kernel_w = 3,
                        .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .groups = 144};
  const conv2d_shape pw{.channels = 144, .height = 28, .width = 28, .out_channels = 32};
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1, 1);
  const auto random = [&](std::size_t n) { std::vector<float> v(n); for (float& e : v) e = uniform(rng); return v; };
  const std::vector<float> w1 = random(dw.weight_size()), b1 = random(144), w2 = random(pw.weight_size()), b2 = random(32);

  coexec::conv2d<float> depthwise(ctx, pool, dw, w1, b1, {.act = coexec::activation::relu6});
  coexec::conv2d<float> project(ctx, pool, pw, w2, b2);
  const bool shared = depthwise.shared_memory();
  coexec::io_buffer<float> x(ctx, dw.input_size(), shared), mid(ctx, dw.output_size(), shared), y(ctx, pw.output_size(), shared);
  std::generate_n(x.data(), x.size(), [&] { return uniform(rng); });

  double worst = 0;
  for (auto [name, op, in, out] :
       {std::tuple{"depthwise 3x3", &depthwise, &x, &mid}, std::tuple{"pointwise 1x1", &project, &mid, &y}}) {
    (*op)(in->data(), out->data());  // first call: plan (times both dimensions), then run
    (*op)(in->data(), out->data());  // the cached plan
    const auto& r = op->last_run();
    std::printf("%s: split %zu of %zu %s (CPU [0, split)), CPU %.1f us, device %.1f us, total %.1f us\n", name, r.split,
                op->extent(r.dimension), coexec::plan::to_string(r.dimension), r.cpu_seconds * 1e6, r.device_seconds * 1e6,
                r.total_seconds * 1e6);
    worst = std::max(worst, check(op->shape(), in->data(), op == &depthwise ? w1 : w2, op == &depthwise ? b1 : b2,
                                  out->data(), op == &depthwise ? coexec::activation::relu6 : coexec::activation::none));
  }
  std::printf("max relative error %.2e: %s\n", worst, worst < 1e-4 ? "OK" : "WRONG");
  return worst < 1e-4 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
