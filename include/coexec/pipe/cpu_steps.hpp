#pragma once
// CPU steps of a pipeline: the glue between co-executed layers (pooling, residual adds,
// softmax, layer norm, attention). Each is a cpu_step: a name, a shape rule that rejects inputs
// it cannot take, and a function run on the pipeline's thread pool. Plug your own by filling a
// cpu_step with yours.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "coexec/activation.hpp"
#include "coexec/cpu/attention.hpp"
#include "coexec/error.hpp"
#include "coexec/pipe/step.hpp"

namespace coexec::pipe {

template <class T>
/// A step computed on the CPU only.
struct cpu_step {
  std::string kind;  ///< what it computes, for reports
  /// The output shape for these input shapes; throws coexec::error (errc::invalid_argument)
  /// naming what does not fit. Called once, when the step is added.
  std::function<tensor_shape(const std::vector<tensor_shape>& inputs)> output_shape;
  /// Computes the output from the inputs (io holds pointers and shapes); may use the pool.
  std::function<void(cpu::thread_pool& pool, const step_io<T>& io)> run;
};

template <class T>
/// A cpu_step as a pipeline step.
class cpu_step_runner final : public step<T> {
 public:
  /// Runs `s` on `pool`.
  cpu_step_runner(cpu_step<T> s, cpu::thread_pool& pool) : step_(std::move(s)), pool_(&pool) {}
  std::string kind() const override { return step_.kind; }
  void run_cpu(const step_io<T>& io) override { step_.run(*pool_, io); }

 private:
  cpu_step<T> step_;
  cpu::thread_pool* pool_;
};

namespace steps {

namespace detail {

inline void expect_inputs(const std::string& kind, const std::vector<tensor_shape>& inputs, std::size_t count) {
  require(inputs.size() == count,
          kind + " takes " + std::to_string(count) + " input(s), got " + std::to_string(inputs.size()));
}

inline void expect_rank(const std::string& kind, const tensor_shape& shape, std::size_t rank) {
  require(shape.size() == rank, kind + " expects a " + std::to_string(rank) + "-D input, got " + to_string(shape));
}

// Rows of a tensor seen as [rows, last dimension].
inline std::size_t rows_of(const tensor_shape& shape) { return elements(shape) / shape.back(); }

}  // namespace detail

template <class T>
/// y = act(a + b) for two inputs of one shape (residual connections).
cpu_step<T> add(activation act = activation::none) {
  return {"add",
          [](const std::vector<tensor_shape>& in) {
            detail::expect_inputs("add", in, 2);
            require(in[0] == in[1], "add: inputs differ in shape: " + to_string(in[0]) + " and " + to_string(in[1]));
            return in[0];
          },
          [act](cpu::thread_pool& pool, const step_io<T>& io) {
            const T *a = io.inputs[0], *b = io.inputs[1];
            pool.parallel_for(elements(io.output_shape), [&](std::size_t begin, std::size_t end) {
              for (std::size_t i = begin; i < end; ++i) io.output[i] = apply(act, a[i] + b[i]);
            });
          }};
}

template <class T>
/// {N, C, H, W} -> {N, C}: the mean of each channel (global average pooling).
cpu_step<T> global_avg_pool() {
  return {"global avg pool",
          [](const std::vector<tensor_shape>& in) {
            detail::expect_inputs("global avg pool", in, 1);
            detail::expect_rank("global avg pool", in[0], 4);
            return tensor_shape{in[0][0], in[0][1]};
          },
          [](cpu::thread_pool& pool, const step_io<T>& io) {
            const std::size_t plane = io.input_shapes[0][2] * io.input_shapes[0][3];
            pool.parallel_for(elements(io.output_shape), [&](std::size_t begin, std::size_t end) {
              for (std::size_t c = begin; c < end; ++c) {
                const T* x = io.inputs[0] + c * plane;
                T sum = 0;
                for (std::size_t i = 0; i < plane; ++i) sum += x[i];
                io.output[c] = sum / static_cast<T>(plane);
              }
            });
          }};
}

template <class T>
/// Max pooling over NCHW: `size` x `size` windows moved by `stride`, `pad` implicit -inf padding.
cpu_step<T> max_pool2d(std::size_t size, std::size_t stride, std::size_t pad = 0) {
  return {"max pool " + std::to_string(size) + "x" + std::to_string(size) + "/" + std::to_string(stride),
          [=](const std::vector<tensor_shape>& in) {
            detail::expect_inputs("max pool", in, 1);
            detail::expect_rank("max pool", in[0], 4);
            require(size > 0 && stride > 0 && pad < size, "max pool: needs size > 0, stride > 0 and pad < size");
            require(in[0][2] + 2 * pad >= size && in[0][3] + 2 * pad >= size,
                    "max pool: window " + std::to_string(size) + " exceeds the padded input " + to_string(in[0]));
            return tensor_shape{in[0][0], in[0][1], (in[0][2] + 2 * pad - size) / stride + 1, (in[0][3] + 2 * pad - size) / stride + 1};
          },
          [=](cpu::thread_pool& pool, const step_io<T>& io) {
            const std::size_t h = io.input_shapes[0][2], w = io.input_shapes[0][3];
            const std::size_t oh = io.output_shape[2], ow = io.output_shape[3];
            pool.parallel_for(io.output_shape[0] * io.output_shape[1], [&](std::size_t begin, std::size_t end) {
              for (std::size_t plane = begin; plane < end; ++plane)
                for (std::size_t i = 0; i < oh; ++i)
                  for (std::size_t j = 0; j < ow; ++j) {
                    T best = -std::numeric_limits<T>::infinity();
                    for (std::size_t di = 0; di < size; ++di)
                      for (std::size_t dj = 0; dj < size; ++dj) {
                        const std::size_t r = i * stride + di, c = j * stride + dj;  // padded coordinates
                        if (r >= pad && r - pad < h && c >= pad && c - pad < w)
                          best = std::max(best, io.inputs[0][(plane * h + r - pad) * w + c - pad]);
                      }
                    io.output[(plane * oh + i) * ow + j] = best;
                  }
            });
          }};
}

template <class T>
/// Softmax over the last dimension.
cpu_step<T> softmax() {
  return {"softmax",
          [](const std::vector<tensor_shape>& in) {
            detail::expect_inputs("softmax", in, 1);
            require(!in[0].empty(), "softmax: the input has no dimensions");
            return in[0];
          },
          [](cpu::thread_pool& pool, const step_io<T>& io) {
            const std::size_t n = io.output_shape.back();
            pool.parallel_for(detail::rows_of(io.output_shape), [&](std::size_t begin, std::size_t end) {
              for (std::size_t r = begin; r < end; ++r) {
                const T* x = io.inputs[0] + r * n;
                T* y = io.output + r * n;
                const T top = *std::max_element(x, x + n);
                T sum = 0;
                for (std::size_t i = 0; i < n; ++i) sum += y[i] = std::exp(x[i] - top);
                for (std::size_t i = 0; i < n; ++i) y[i] /= sum;
              }
            });
          }};
}

template <class T>
/// Layer normalisation over the last dimension with learned `gamma` and `beta` (copied), as
/// torch.nn.LayerNorm. With two inputs it normalises their sum (a residual add fused in).
cpu_step<T> layer_norm(std::span<const T> gamma, std::span<const T> beta, std::size_t inputs = 1, T epsilon = T(1e-12)) {
  auto g = std::make_shared<const std::vector<T>>(gamma.begin(), gamma.end());
  auto b = std::make_shared<const std::vector<T>>(beta.begin(), beta.end());
  return {inputs == 2 ? "add + layer norm" : "layer norm",
          [g, b, inputs](const std::vector<tensor_shape>& in) {
            require(inputs == 1 || inputs == 2, "layer norm: takes 1 input, or 2 to add first");
            detail::expect_inputs("layer norm", in, inputs);
            require(!in[0].empty() && in[0].back() == g->size() && g->size() == b->size(),
                    "layer norm: gamma and beta hold " + std::to_string(g->size()) + " and " + std::to_string(b->size()) +
                        " values, the input's last dimension is " + (in[0].empty() ? "missing" : std::to_string(in[0].back())));
            require(inputs == 1 || in[0] == in[1], "layer norm: inputs differ in shape: " + to_string(in[0]) + " and " +
                                                       (inputs == 2 ? to_string(in[1]) : ""));
            return in[0];
          },
          [g, b, epsilon](cpu::thread_pool& pool, const step_io<T>& io) {
            const std::size_t n = io.output_shape.back();
            pool.parallel_for(detail::rows_of(io.output_shape), [&](std::size_t begin, std::size_t end) {
              for (std::size_t r = begin; r < end; ++r) {
                T* y = io.output + r * n;
                for (std::size_t i = 0; i < n; ++i) y[i] = io.inputs[0][r * n + i] + (io.inputs.size() == 2 ? io.inputs[1][r * n + i] : T(0));
                T mean = 0, variance = 0;
                for (std::size_t i = 0; i < n; ++i) mean += y[i];
                mean /= static_cast<T>(n);
                for (std::size_t i = 0; i < n; ++i) variance += (y[i] - mean) * (y[i] - mean);
                const T scale = T(1) / std::sqrt(variance / static_cast<T>(n) + epsilon);
                for (std::size_t i = 0; i < n; ++i) y[i] = (y[i] - mean) * scale * (*g)[i] + (*b)[i];
              }
            });
          }};
}

template <class T>
/// Multi-head scaled dot-product self-attention: {S, 3D} holding Q | K | V per row (one fused
/// QKV projection) -> {S, D}, each of `heads` heads attending over D / heads features.
cpu_step<T> attention(std::size_t heads) {
  return {"attention",
          [heads](const std::vector<tensor_shape>& in) {
            detail::expect_inputs("attention", in, 1);
            detail::expect_rank("attention", in[0], 2);
            require(heads > 0 && in[0][1] % (3 * heads) == 0,
                    "attention: the input's " + std::to_string(in[0][1]) + " features are not Q|K|V of " + std::to_string(heads) + " heads");
            return tensor_shape{in[0][0], in[0][1] / 3};
          },
          [heads](cpu::thread_pool& pool, const step_io<T>& io) {
            const cpu::attention_shape shape{io.output_shape[0], heads, io.output_shape[1] / heads};
            cpu::attention(pool, io.inputs[0], shape, io.output, 0, heads);
          }};
}

}  // namespace steps
}  // namespace coexec::pipe
