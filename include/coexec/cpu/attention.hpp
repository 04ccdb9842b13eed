#pragma once
// The CPU side of multi-head scaled dot-product self-attention: heads [head_begin, head_end) of
// y[S, D] = softmax(Q K^T / sqrt(dh)) V per head, from one fused QKV tensor {S, 3D} holding
// Q | K | V per row (dh = D / heads features per head). ops::attention co-executes it with the
// device along heads; pipe::steps::attention runs all heads on the CPU.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "coexec/cpu/thread_pool.hpp"

namespace coexec::cpu {

/// Shape of a self-attention call: `tokens` rows, `heads` heads of `head_dim` features each.
struct attention_shape {
  /// @{
  std::size_t tokens = 0, heads = 0, head_dim = 0;  ///< S, H and dh (D = H * dh)
  /// @}
  std::size_t width() const noexcept { return heads * head_dim; }  ///< D, the output's row length
  friend constexpr auto operator<=>(const attention_shape&, const attention_shape&) = default;
};

template <class T>
/// Writes heads [head_begin, head_end) of y (row stride D) from qkv (row stride 3D) on `pool`.
void attention(thread_pool& pool, const T* qkv, const attention_shape& shape, T* y, std::size_t head_begin, std::size_t head_end) {
  const std::size_t s = shape.tokens, dh = shape.head_dim, d = shape.width(), row_stride = 3 * d;
  const T scale = T(1) / std::sqrt(static_cast<T>(dh));
  // Tasks are (head, query row), head-major, so a chunk meets each head's keys once: it copies
  // them key-minor, and a row's scores become dh axpys over contiguous keys, which vectorise,
  // instead of s short dot products, which do not (a reduction).
  pool.parallel_for((head_end - head_begin) * s, [&](std::size_t begin, std::size_t end) {
    std::vector<T> keys(dh * s), score(s), weighted(dh);
    std::size_t keys_of = shape.heads;  // the head whose keys `keys` holds
    for (std::size_t task = begin; task < end; ++task) {
      const std::size_t h = head_begin + task / s, row = task % s;
      if (h != keys_of) {
        for (std::size_t t = 0; t < s; ++t)
          for (std::size_t i = 0; i < dh; ++i) keys[i * s + t] = qkv[t * row_stride + d + h * dh + i];
        keys_of = h;
      }
      const T* q = qkv + row * row_stride + h * dh;
      std::fill(score.begin(), score.end(), T(0));
      for (std::size_t i = 0; i < dh; ++i) {
        const T qi = q[i] * scale;
        const T* k = keys.data() + i * s;
        for (std::size_t t = 0; t < s; ++t) score[t] += qi * k[t];
      }
      const T top = *std::max_element(score.begin(), score.end());
      T sum = 0;
      for (std::size_t t = 0; t < s; ++t) sum += score[t] = std::exp(score[t] - top);
      std::fill(weighted.begin(), weighted.end(), T(0));
      for (std::size_t t = 0; t < s; ++t) {
        const T* v = qkv + t * row_stride + 2 * d + h * dh;
        for (std::size_t i = 0; i < dh; ++i) weighted[i] += score[t] * v[i];
      }
      T* out = y + row * d + h * dh;
      for (std::size_t i = 0; i < dh; ++i) out[i] = weighted[i] / sum;
    }
  });
}

}  // namespace coexec::cpu
