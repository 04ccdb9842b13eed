#pragma once
// The CPU side of multi-head scaled dot-product self-attention: heads [head_begin, head_end) of
// y[S, D] = softmax(Q K^T / sqrt(dh)) V per head, from one fused QKV tensor {S, 3D} holding
// Q | K | V per row (dh = D / heads features per head). ops::attention co-executes it with the
// device along heads; pipe::steps::attention runs all heads on the CPU.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "coexec/activation.hpp"
#include "coexec/cpu/gemm.hpp"
#include "coexec/cpu/thread_pool.hpp"
#include "coexec/memory/panels.hpp"

namespace coexec::cpu {

/// Shape of a self-attention call: `tokens` rows, `heads` heads of `head_dim` features each.
struct attention_shape {
  /// @{
  std::size_t tokens = 0, heads = 0, head_dim = 0;  ///< S, H and dh (D = H * dh)
  /// @}
  std::size_t width() const noexcept { return heads * head_dim; }  ///< D, the output's row length
  friend constexpr auto operator<=>(const attention_shape&, const attention_shape&) = default;
};

namespace detail {

/// Query rows per task: a task's scores (rows x S) stay in L2 beside its head's packed keys and
/// values, and a 12-head sequence of 128 still makes 48 tasks to spread over the workers.
inline constexpr std::size_t attention_rows = 32;

template <class T>
/// One worker's buffers: a head's keys and values packed as GEMM weight panels, and a task's scores.
struct attention_workspace {
  std::vector<T> keys, values, scores;
  std::size_t head = SIZE_MAX;  // the head whose keys and values are packed

  // Packs head h: keys as W[S, dh] (scores = Q K^T), values as W[dh, S] (output = P V).
  void pack(const T* qkv, const attention_shape& shape, std::size_t h) {
    constexpr std::size_t nr = memory::panel_width<T>;
    const std::size_t s = shape.tokens, dh = shape.head_dim, d = shape.width();
    keys.resize(memory::packed_size<T>(s, dh));
    memory::pack_panels(qkv + d + h * dh, 3 * d, s, dh, keys.data(), 0, ceil_div(s, nr));
    // Panel p of V^T holds features [p NR, p NR + NR) of every token, token-major: rows of V as they lie.
    values.resize(memory::packed_size<T>(dh, s));
    for (std::size_t p = 0; p * nr < dh; ++p)
      for (std::size_t t = 0; t < s; ++t) {
        const T* v = qkv + t * 3 * d + 2 * d + h * dh + p * nr;
        T* panel_row = values.data() + (p * s + t) * nr;
        const std::size_t features = std::min(nr, dh - p * nr);
        std::copy(v, v + features, panel_row);
        std::fill(panel_row + features, panel_row + nr, T(0));
      }
    head = h;
  }
};

/// Turns each of `rows` rows of `s` scores into softmax(scale * scores), in place.
template <class T>
void softmax_rows(T* scores, std::size_t rows, std::size_t s, T scale) {
  for (std::size_t r = 0; r < rows; ++r) {
    T* row = scores + r * s;
    const T top = *std::max_element(row, row + s);
    T sum = 0;
    for (std::size_t t = 0; t < s; ++t) {
      if constexpr (std::is_same_v<T, float>)
        row[t] = coexec::detail::exp_nonpositive(scale * (row[t] - top));
      else
        row[t] = std::exp(scale * (row[t] - top));
      sum += row[t];
    }
    const T inverse = T(1) / sum;
    for (std::size_t t = 0; t < s; ++t) row[t] *= inverse;
  }
}

}  // namespace detail

template <class T>
/// Writes heads [head_begin, head_end) of y (row stride D) from qkv (row stride 3D) on `pool`.
/// Per head two GEMMs through the packed GEMM's single-worker block: scores = Q K^T over a task's
/// query rows, then, after a softmax over each row, its output columns = P V.
void attention(thread_pool& pool, const T* qkv, const attention_shape& shape, T* y, std::size_t head_begin, std::size_t head_end) {
  constexpr std::size_t nr = memory::panel_width<T>;
  const std::size_t s = shape.tokens, dh = shape.head_dim, d = shape.width();
  const std::size_t blocks = detail::ceil_div(s, detail::attention_rows);
  const T scale = T(1) / std::sqrt(static_cast<T>(dh));
  // Tasks are (head, block of query rows), head-major, so a worker's chunk packs each head once.
  pool.parallel_for((head_end - head_begin) * blocks, [&](std::size_t begin, std::size_t end) {
    thread_local detail::attention_workspace<T> work;
    work.head = SIZE_MAX;  // another call's qkv
    work.scores.resize(detail::attention_rows * s);
    for (std::size_t task = begin; task < end; ++task) {
      const std::size_t h = head_begin + task / blocks, row0 = task % blocks * detail::attention_rows;
      const std::size_t rows = std::min(detail::attention_rows, s - row0);
      if (work.head != h) work.pack(qkv, shape, h);
      gemm_args<T> scores;
      scores.x = qkv + row0 * 3 * d + h * dh;
      scores.ldx = 3 * d;
      scores.panels = work.keys.data();
      scores.y = work.scores.data();
      scores.ldy = s;
      scores.shape = {rows, s, dh};
      detail::gemm_block(scores, {0, rows}, {0, detail::ceil_div(s, nr)}, s);
      detail::softmax_rows(work.scores.data(), rows, s, scale);
      gemm_args<T> out;
      out.x = work.scores.data();
      out.ldx = s;
      out.panels = work.values.data();
      out.y = y + row0 * d + h * dh;
      out.ldy = d;
      out.shape = {rows, dh, s};
      detail::gemm_block(out, {0, rows}, {0, detail::ceil_div(dh, nr)}, dh);
    }
  });
}

}  // namespace coexec::cpu
