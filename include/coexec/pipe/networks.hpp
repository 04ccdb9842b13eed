#pragma once
// Two real networks built as pipelines, with weights drawn from a fixed seed (the demo and
// bench_pipeline run them):
//   MobileNetV2   torchvision's mobilenet_v2: every convolution with batch norm folded into its
//                 bias, relu6, the residual adds, global average pooling, the 1280 -> 1000
//                 classifier. Any input resolution that is a multiple of 32 (224 is the real one).
//   BERT-base     one encoder layer: fused QKV projection, 12-head attention, output projection,
//                 add + layer norm, FFN 768 -> 3072 (gelu) -> 768, add + layer norm.
// The operator types are parameters, so callers pick the planners (and CPU kernels); the
// defaults plan with plan::predicted (shipped models, else the roofline), a whole network within
// seconds, and attention, whose 12 heads give 13 splits, with the grid search.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "coexec/pipe/pipeline.hpp"
#include "coexec/plan/predicted.hpp"

namespace coexec::pipe {

/// Draws a network's weights: uniform in +-sqrt(6 / fan_in) (He initialisation, which keeps
/// activations in range through relu layers), biases and batch-norm shifts in +-0.1.
class weight_source {
 public:
  explicit weight_source(std::uint32_t seed) : rng_(seed) {}  ///< a fixed seed gives the same network every time

  /// `count` weights of a layer whose outputs each sum `fan_in` products.
  std::vector<float> weights(std::size_t count, std::size_t fan_in) { return uniform(count, std::sqrt(6.0f / static_cast<float>(fan_in))); }
  std::vector<float> biases(std::size_t count) { return uniform(count, 0.1f); }  ///< `count` biases
  /// `count` values in [1 - spread, 1 + spread], e.g. layer norm gains.
  std::vector<float> gains(std::size_t count, float spread = 0.1f) {
    std::vector<float> v = uniform(count, spread);
    for (float& g : v) g += 1;
    return v;
  }

 private:
  std::vector<float> uniform(std::size_t count, float bound) {
    std::uniform_real_distribution<float> dist(-bound, bound);
    std::vector<float> v(count);
    for (float& x : v) x = dist(rng_);
    return v;
  }

  std::mt19937 rng_;
};

/// The default convolution of network builders: conv2d's own default, planned by plan::predicted.
using network_conv2d = ops::conv2d<float>;
/// The default linear of network builders: planned by plan::predicted (linear's own default is the oracle).
using network_linear = ops::linear<float, cpu::packed_gemm, plan::predicted<gemm_shape>>;

template <class Conv = network_conv2d, class Linear = network_linear>
/// Adds MobileNetV2 (torchvision's architecture, see the file comment) for one image of
/// `resolution` x `resolution` to `net`, which must have no input yet; returns the logits {1, 1000}.
tensor add_mobilenet_v2(pipeline<float>& net, const runtime::context& ctx, cpu::thread_pool& pool, std::size_t resolution,
                        std::uint32_t seed) {
  require(resolution >= 32 && resolution % 32 == 0, "mobilenet_v2: the resolution must be a multiple of 32, got " + std::to_string(resolution));
  weight_source source(seed);
  std::size_t channels = 3, size = resolution;
  // A convolution with batch norm folded into its bias: k x k, `groups` groups, padding k / 2.
  const auto conv = [&](const std::string& name, tensor x, std::size_t out, std::size_t k, std::size_t stride, std::size_t groups,
                        activation act) {
    const std::size_t pad = k / 2;
    const conv2d_shape shape{1, channels, size, size, out, k, k, stride, stride, pad, pad, pad, pad, 1, 1, groups};
    conv2d_options options;
    options.act = act;
    const auto w = source.weights(shape.weight_size(), shape.patch());
    const auto b = source.biases(out);
    channels = out, size = shape.out_height();
    return net.add(name, std::make_unique<Conv>(ctx, pool, shape, w, b, options), x);
  };

  tensor x = net.input({1, 3, resolution, resolution});
  x = conv("stem", x, 32, 3, 2, 1, activation::relu6);
  // torchvision's inverted residual settings: expansion t, output channels c, repeats n, first stride s.
  struct stage {
    std::size_t t, c, n, s;
  };
  constexpr stage stages[] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  std::size_t block = 0;
  for (const stage& st : stages)
    for (std::size_t i = 0; i < st.n; ++i) {
      std::string name = "b";
      name += std::to_string(++block);
      const std::size_t stride = i == 0 ? st.s : 1, in = channels, hidden = in * st.t;
      tensor h = x;
      if (st.t != 1) h = conv(name + " expand", h, hidden, 1, 1, 1, activation::relu6);
      h = conv(name + " dw", h, hidden, 3, stride, hidden, activation::relu6);
      h = conv(name + " project", h, st.c, 1, 1, 1, activation::none);
      x = stride == 1 && in == st.c ? net.add(name + " add", steps::add<float>(), {x, h}) : h;
    }
  x = conv("head", x, 1280, 1, 1, 1, activation::relu6);
  x = net.add("pool", steps::global_avg_pool<float>(), {x});
  const auto w = source.weights(1000 * 1280, 1280);
  const auto b = source.biases(1000);
  return net.add("classifier", std::make_unique<Linear>(ctx, pool, 1000, 1280, w, b), x);
}

/// The default attention of network builders: co-executed along heads, planned by grid search.
using network_attention = ops::attention<float>;

template <class Linear = network_linear, class Attention = network_attention>
/// Adds one BERT-base encoder layer (see the file comment) over `sequence` tokens to `net`, which
/// must have no input yet; returns its output {sequence, 768}.
tensor add_bert_layer(pipeline<float>& net, const runtime::context& ctx, cpu::thread_pool& pool, std::size_t sequence,
                      std::uint32_t seed) {
  constexpr std::size_t width = 768, heads = 12, ffn = 3072;
  weight_source source(seed);
  const auto dense = [&](const std::string& name, tensor x, std::size_t out, std::size_t in, activation act) {
    linear_options options;
    options.act = act;
    const auto w = source.weights(out * in, in);
    const auto b = source.biases(out);
    return net.add(name, std::make_unique<Linear>(ctx, pool, out, in, w, b, options), x);
  };
  const auto norm = [&](const std::string& name, tensor residual, tensor x) {
    const auto gamma = source.gains(width), beta = source.biases(width);
    return net.add(name, steps::layer_norm<float>(gamma, beta, 2), {residual, x});
  };
  const tensor x = net.input({sequence, width});
  const tensor qkv = dense("qkv", x, 3 * width, width, activation::none);
  const tensor attended = net.add("attention", std::make_unique<Attention>(ctx, pool, heads, width / heads), qkv);
  const tensor projected = dense("out proj", attended, width, width, activation::none);
  const tensor h = norm("add+norm 1", x, projected);
  const tensor up = dense("ffn up", h, ffn, width, activation::gelu);
  const tensor down = dense("ffn down", up, width, ffn, activation::none);
  return norm("add+norm 2", h, down);
}

}  // namespace coexec::pipe
