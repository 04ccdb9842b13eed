#pragma once
// Multi-head self-attention in double, from a fused QKV tensor {S, 3D}: the reference that
// ops::attention, cpu::attention and pipe::steps::attention are checked against.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace coexec::test {

template <class T>
/// y {S, D} for `heads` heads of `head_dim` features over `tokens` rows of `qkv`.
std::vector<double> attention_reference(const T* qkv, std::size_t tokens, std::size_t heads, std::size_t head_dim) {
  const std::size_t d = heads * head_dim;
  std::vector<double> y(tokens * d, 0.0);
  for (std::size_t h = 0; h < heads; ++h)
    for (std::size_t row = 0; row < tokens; ++row) {
      std::vector<double> weight(tokens, 0.0);
      for (std::size_t t = 0; t < tokens; ++t) {
        for (std::size_t i = 0; i < head_dim; ++i)
          weight[t] += double(qkv[row * 3 * d + h * head_dim + i]) * double(qkv[t * 3 * d + d + h * head_dim + i]);
        weight[t] /= std::sqrt(double(head_dim));
      }
      const double top = *std::max_element(weight.begin(), weight.end());
      double total = 0;
      for (double& w : weight) total += w = std::exp(w - top);
      for (std::size_t t = 0; t < tokens; ++t)
        for (std::size_t i = 0; i < head_dim; ++i)
          y[row * d + h * head_dim + i] += weight[t] / total * double(qkv[t * 3 * d + 2 * d + h * head_dim + i]);
    }
  return y;
}

}  // namespace coexec::test
