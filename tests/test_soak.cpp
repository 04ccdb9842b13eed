// Soak: 100,000 co-executed calls of tiny linear and conv2d layers at random splits, through
// every completion path (SVM counter, event polling, staged), each result checked against a
// double reference computed once per layer (the result must not depend on the split). The
// resident set is sampled from /proc/self/statm after a warm-up pass (programs built, staging
// and workspaces allocated) and at the end; it may grow by at most rss_growth_bound.
// ctest label `soak`, run as its own CI step (scripts/ci_reliability.sh soak).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/conv2d.hpp"
#include "coexec/ops/linear.hpp"
#include "conv_reference.hpp"
#include "linear_reference.hpp"
#include "support.hpp"

using namespace coexec;

namespace {

constexpr std::size_t total_calls = 100'000;
// What a leak-free run may still add after the warm-up: allocator and driver bookkeeping
// settling. A leak of 100 bytes per call would add about 10 MB.
constexpr std::size_t rss_growth_bound = 4u << 20;

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// One layer with its buffers and reference; call() runs it once at a random plan and returns
// how many outputs were wrong.
struct soak_case {
  virtual ~soak_case() = default;
  virtual std::size_t call(std::mt19937& rng) = 0;
  std::string name;

 protected:
  std::size_t wrong(const float* y) const {
    std::size_t bad = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) bad += !expected[i].admits(double(y[i]));
    return bad;
  }
  std::vector<test::expected_value> expected;  // per output, in y's order
};

// A random split point along an extent: a multiple of the granule, or the extent itself.
std::size_t random_split(std::size_t extent, std::size_t granule, std::mt19937& rng) {
  const std::size_t points = extent / granule + 1;
  const std::size_t pick = std::uniform_int_distribution<std::size_t>(0, points)(rng);
  return pick == points ? extent : pick * granule;
}

struct linear_case : soak_case {
  linear_case(const runtime::context& ctx, cpu::thread_pool& pool, std::size_t m, std::size_t n, std::size_t k,
              const std::vector<float>& w, const std::vector<float>& b, ops::linear_options options, const std::vector<float>& xs)
      : m(m), n(n), layer(ctx, pool, n, k, w, b, options), x(ctx, m * k, layer.shared_memory()), y(ctx, m * n, layer.shared_memory()) {
    name = "linear " + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
    std::copy(xs.begin(), xs.end(), x.data());
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) expected.push_back(test::linear_expected(xs.data(), w.data(), b.data(), k, i, j, options.act));
  }

  std::size_t call(std::mt19937& rng) override {
    std::fill(y.data(), y.data() + m * n, std::numeric_limits<float>::quiet_NaN());
    // One call in 16 lets the planner choose (the first one per shape times the splits).
    if (rng() % 16 == 0)
      layer(x.data(), m, y.data());
    else
      layer(x.data(), m, y.data(), random_split(n, layer.split_granule(), rng));
    return wrong(y.data());
  }

  std::size_t m, n;
  ops::linear<float> layer;
  memory::io_buffer<float> x, y;
};

struct conv_case : soak_case {
  conv_case(const runtime::context& ctx, cpu::thread_pool& pool, const conv2d_shape& s, const std::vector<float>& w,
            const std::vector<float>& b, ops::conv2d_options options, const std::vector<float>& xs)
      : shape(s), layer(ctx, pool, s, w, b, options), x(ctx, s.input_size(), layer.shared_memory()),
        y(ctx, s.output_size(), layer.shared_memory()) {
    name = "conv2d " + std::to_string(s.channels) + "x" + std::to_string(s.height) + "x" + std::to_string(s.width) + " -> " +
           std::to_string(s.out_channels) + " kernel " + std::to_string(s.kernel_h) + " groups " + std::to_string(s.groups);
    std::copy(xs.begin(), xs.end(), x.data());
    for (std::size_t img = 0; img < s.batch; ++img)
      for (std::size_t o = 0; o < s.out_channels; ++o)
        for (std::size_t i = 0; i < s.out_height(); ++i)
          for (std::size_t j = 0; j < s.out_width(); ++j)
            expected.push_back(test::conv_expected(s, xs.data(), w.data(), b.data(), img, o, i, j, options.act));
  }

  std::size_t call(std::mt19937& rng) override {
    std::fill(y.data(), y.data() + shape.output_size(), std::numeric_limits<float>::quiet_NaN());
    if (rng() % 16 == 0) {
      layer(x.data(), y.data());
    } else {
      const auto d = rng() % 2 ? plan::split_dimension::rows : plan::split_dimension::channels;
      layer(x.data(), y.data(), {d, random_split(layer.extent(d), layer.split_granule(d), rng)});
    }
    return wrong(y.data());
  }

  conv2d_shape shape;
  ops::conv2d<float> layer;
  memory::io_buffer<float> x, y;
};

}  // namespace

TEST_CASE("soak: 100,000 co-executed linear and conv2d calls at random splits match the reference, RSS stays flat") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  const unsigned seed = std::getenv("COEXEC_TEST_SEED") ? unsigned(std::stoul(std::getenv("COEXEC_TEST_SEED"))) : std::random_device{}();
  INFO("COEXEC_TEST_SEED=" << seed);
  std::mt19937 rng(seed);

  const ops::linear_options linear_paths[] = {{.act = activation::relu, .completion = sync::completion::mode::svm_counter},
                                              {.act = activation::gelu, .completion = sync::completion::mode::event_polling},
                                              {.act = activation::relu6, .shared_memory = false}};
  const ops::conv2d_options conv_paths[] = {{.act = activation::relu, .completion = sync::completion::mode::svm_counter},
                                            {.act = activation::none, .completion = sync::completion::mode::event_polling},
                                            {.act = activation::relu6, .shared_memory = false}};
  const std::size_t linear_shapes[][3] = {{1, 24, 8}, {3, 40, 13}, {5, 17, 4}};
  const conv2d_shape conv_shapes[] = {
      {.channels = 3, .height = 5, .width = 6, .out_channels = 12},
      {.channels = 4, .height = 6, .width = 5, .out_channels = 9, .kernel_h = 3, .kernel_w = 3, .pad_top = 1, .pad_bottom = 1,
       .pad_left = 1, .pad_right = 1},
      {.channels = 6, .height = 7, .width = 7, .out_channels = 6, .kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2,
       .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .groups = 6},
  };

  std::vector<std::unique_ptr<soak_case>> cases;
  for (const auto& options : linear_paths)
    for (const auto& [m, n, k] : linear_shapes) {
      const auto w = test::random_values<float>(n * k, rng), b = test::random_values<float>(n, rng),
                 xs = test::random_values<float>(m * k, rng);
      cases.push_back(std::make_unique<linear_case>(ctx, pool, m, n, k, w, b, options, xs));
    }
  for (const auto& options : conv_paths)
    for (const conv2d_shape& s : conv_shapes) {
      const auto w = test::random_values<float>(s.weight_size(), rng), b = test::random_values<float>(s.out_channels, rng),
                 xs = test::random_values<float>(s.input_size(), rng);
      cases.push_back(std::make_unique<conv_case>(ctx, pool, s, w, b, options, xs));
    }

  std::size_t calls = 0, failed_calls = 0;
  const auto run = [&](soak_case& c) {
    const std::size_t bad = c.call(rng);
    ++calls;
    if (bad != 0 && failed_calls++ < 5) FAIL_CHECK("call " << calls << ", " << c.name << ": " << bad << " wrong outputs");
  };
  // Warm-up: every case a few dozen times, so every plan has been planned and every program built.
  for (int round = 0; round < 32; ++round)
    for (auto& c : cases) run(*c);
  const std::size_t rss_before = resident_bytes();
  while (calls < total_calls) run(*cases[rng() % cases.size()]);
  const std::size_t rss_after = resident_bytes();

  MESSAGE(calls << " calls, " << failed_calls << " failed; RSS " << rss_before / 1024 << " KiB after the warm-up, "
                << rss_after / 1024 << " KiB at the end");
  CHECK_EQ(failed_calls, 0u);
  CHECK_LE(rss_after, rss_before + rss_growth_bound);
}
