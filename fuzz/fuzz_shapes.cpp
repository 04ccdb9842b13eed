// libFuzzer target for shape and parameter validation of ops::linear and ops::conv2d: any
// layer the public API is asked to build, with weights, bias and split of any size, must either
// be refused with coexec::error or be built and run correctly-sized buffers without a crash or
// a sanitizer report. Sizes are mostly tiny (so accepted layers run in microseconds) and now and
// then huge, to reach the overflow corners of the size arithmetic.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/conv2d.hpp"
#include "coexec/ops/linear.hpp"

namespace {

using namespace coexec;

// Largest buffer an accepted layer gets; larger layers are only built, never run.
constexpr std::size_t max_elements = 1 << 14;

class input {
 public:
  input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  // A size: one byte in four is a huge value (a power of two, or all ones), the rest small.
  std::size_t size() {
    const std::uint8_t b = byte();
    if (b % 4 != 0) return b % 24;
    const unsigned shift = byte() % 65;
    return shift == 64 ? ~std::size_t(0) : std::size_t(1) << shift;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_, pos_ = 0;
};

// Products that do not overflow and stay small enough to allocate.
std::optional<std::size_t> small_product(std::initializer_list<std::size_t> factors) {
  std::size_t product = 1;
  for (std::size_t f : factors) {
    if (f != 0 && product > max_elements / f) return std::nullopt;
    product *= f;
  }
  return product;
}

// The weight or bias count to pass: the right one when it is small, else a small wrong one.
std::size_t count_to_pass(input& in, std::optional<std::size_t> right) {
  if (right && in.byte() % 8 != 0) return *right;
  return in.size() % max_elements;
}

// One context and pool for the whole run: deliberately never destroyed, so that no OpenCL
// object outlives the runtime at exit.
runtime::context& shared_context() {
  static auto* ctx = new runtime::context(runtime::context_options{.binary_cache_dir = {}});
  return *ctx;
}
cpu::thread_pool& shared_pool() {
  static auto* pool = new cpu::thread_pool(1);
  return *pool;
}

void fuzz_linear(input& in) {
  const std::size_t m = in.size(), n = in.size(), k = in.size();
  const std::vector<float> w(count_to_pass(in, small_product({n, k})), 0.5f);
  const bool with_bias = in.byte() % 2;
  const std::vector<float> bias(with_bias ? count_to_pass(in, small_product({n})) : 0, 0.25f);
  const bool shared = in.byte() % 2;
  const std::size_t split = in.size();
  ops::linear<float> layer(shared_context(), shared_pool(), n, k, w, bias, {.shared_memory = shared});
  const auto x_size = small_product({m, k}), y_size = small_product({m, n});
  if (!x_size || !y_size) return;
  memory::io_buffer<float> x(shared_context(), *x_size + 1, layer.shared_memory()), y(shared_context(), *y_size + 1, layer.shared_memory());
  layer(x.data(), m, y.data(), split);
}

void fuzz_conv2d(input& in) {
  conv2d_shape s;
  for (std::size_t* field : {&s.batch, &s.channels, &s.height, &s.width, &s.out_channels, &s.kernel_h, &s.kernel_w, &s.stride_h,
                             &s.stride_w, &s.pad_top, &s.pad_bottom, &s.pad_left, &s.pad_right, &s.dilation_h, &s.dilation_w,
                             &s.groups})
    *field = in.size();
  const auto weights = small_product({s.out_channels, s.groups ? s.channels / s.groups : 0, s.kernel_h, s.kernel_w});
  const std::vector<float> w(count_to_pass(in, weights), 0.5f);
  const bool with_bias = in.byte() % 2;
  const std::vector<float> bias(with_bias ? count_to_pass(in, small_product({s.out_channels})) : 0, 0.25f);
  const bool shared = in.byte() % 2;
  const plan::split_plan plan{in.byte() % 2 ? plan::split_dimension::rows : plan::split_dimension::channels, in.size()};
  // The layer accepted the shape: its sizes are now meaningful.
  ops::conv2d<float> layer(shared_context(), shared_pool(), s, w, bias, {.shared_memory = shared});
  const auto x_size = small_product({s.batch, s.channels, s.height, s.width});
  const auto y_size = small_product({s.batch, s.out_channels, s.out_height(), s.out_width()});
  if (!x_size || !y_size) return;
  memory::io_buffer<float> x(shared_context(), *x_size, layer.shared_memory()), y(shared_context(), *y_size, layer.shared_memory());
  layer(x.data(), y.data(), plan);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Every new window builds a program, and the context keeps them all. Dropping them now and
  // then, as an engine with that many shapes would, lowered a 60 s run's peak from 1.6 GB to
  // 1.4 GB of libFuzzer's 2 GB limit (the rest grows in the OpenCL runtime and ASan); with the
  // staged depthwise kernel's programs a CI run peaked at 1.8 GB dropping them every 1024 calls.
  static std::size_t calls = 0;
  if (++calls % 256 == 0) shared_context().purge_caches();
  input in(data, size);
  try {
    if (in.byte() % 2)
      fuzz_linear(in);
    else
      fuzz_conv2d(in);
  } catch (const coexec::error&) {
  }
  return 0;
}
