// The concurrency rules of README "Reliability": a context and a thread pool may be shared by
// threads, an operator may not (each thread owns its own); several contexts work side by side.
// Every result is checked against the double reference. Runs under TSan (label tsan).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "conv_reference.hpp"
#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/conv2d.hpp"
#include "coexec/ops/linear.hpp"
#include "linear_reference.hpp"
#include "support.hpp"

using namespace coexec;

namespace {

constexpr int calls_per_thread = 20;

// One thread's work: its own linear layer on `ctx`, run on `pool` at every split class and both
// completion paths in turn. doctest's assertions are not thread-safe, so failures are counted
// here and checked by the main thread.
struct linear_worker {
  linear_worker(const runtime::context& ctx, cpu::thread_pool& pool, unsigned seed) : rng(seed) {
    w = test::random_values<float>(n * k, rng);
    bias = test::random_values<float>(n, rng);
    xs = test::random_values<float>(m * k, rng);
    for (auto mode : {sync::completion::mode::svm_counter, sync::completion::mode::event_polling})
      layers.emplace_back(ctx, pool, n, k, w, bias, ops::linear_options{.act = activation::relu, .completion = mode});
    expected = reference();
  }

  // act(x W^T + b) in double, computed once: every split must give it.
  std::vector<double> reference() const {
    std::vector<double> y(m * n);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        double sum = bias[j];
        for (std::size_t kk = 0; kk < k; ++kk) sum += double(xs[i * k + kk]) * double(w[j * k + kk]);
        y[i * n + j] = apply(activation::relu, sum);
      }
    return y;
  }

  void operator()(const runtime::context& ctx) {
    const std::size_t splits[] = {0, ops::linear<float>::panel_width, n - n % ops::linear<float>::panel_width, n};
    for (auto& layer : layers) {
      memory::io_buffer<float> x(ctx, m * k, layer.shared_memory()), y(ctx, m * n, layer.shared_memory());
      std::copy(xs.begin(), xs.end(), x.data());
      for (int call = 0; call < calls_per_thread; ++call) {
        std::fill(y.data(), y.data() + m * n, -7.0f);
        layer(x.data(), m, y.data(), splits[call % std::size(splits)]);
        for (std::size_t i = 0; i < m * n; ++i) failures += std::abs(y.data()[i] - expected[i]) > 1e-4;
      }
    }
  }

  static constexpr std::size_t m = 3, n = 45, k = 24;
  std::mt19937 rng;
  std::vector<float> w, bias, xs;
  std::vector<double> expected;
  std::deque<ops::linear<float>> layers;
  std::size_t failures = 0;
};

// Runs `body` on a new thread; an exception becomes `error`, for the main thread to check.
std::thread checked_thread(std::string& error, std::function<void()> body) {
  return std::thread([&error, body = std::move(body)] {
    try {
      body();
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
}

void run_threads(std::deque<linear_worker>& workers, const std::vector<runtime::context>& contexts) {
  std::vector<std::thread> threads;
  std::vector<std::string> errors(workers.size());
  for (std::size_t i = 0; i < workers.size(); ++i)
    threads.push_back(checked_thread(errors[i], [&, i] { workers[i](contexts[i % contexts.size()]); }));
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < workers.size(); ++i) {
    CHECK_EQ(errors[i], "");
    CHECK_EQ(workers[i].failures, 0u);
  }
}

}  // namespace

TEST_CASE("several threads, each with its own linear, on one context and one shared thread pool") {
  const auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  std::deque<linear_worker> workers;
  for (unsigned i = 0; i < 3; ++i) workers.emplace_back(ctx, pool, 100 + i);
  run_threads(workers, {ctx});
}

TEST_CASE("several threads, each with its own linear and its own thread pool, on one context") {
  const auto ctx = test::make_context();
  std::vector<std::unique_ptr<cpu::thread_pool>> pools;
  std::deque<linear_worker> workers;
  for (unsigned i = 0; i < 3; ++i) {
    pools.push_back(std::make_unique<cpu::thread_pool>(1));
    workers.emplace_back(ctx, *pools.back(), 200 + i);
  }
  run_threads(workers, {ctx});
}

TEST_CASE("two contexts used at once from two threads") {
  const std::vector<runtime::context> contexts{test::make_context(), test::make_context()};
  REQUIRE(!(contexts[0] == contexts[1]));
  cpu::thread_pool pool_a(1), pool_b(1);
  std::deque<linear_worker> workers;
  workers.emplace_back(contexts[0], pool_a, 300);
  workers.emplace_back(contexts[1], pool_b, 301);
  run_threads(workers, contexts);
}

TEST_CASE("conv2d layers of two contexts from two threads while the main thread builds programs") {
  const std::vector<runtime::context> contexts{test::make_context(), test::make_context()};
  const conv2d_shape s{.channels = 4, .height = 7, .width = 6, .out_channels = 20, .kernel_h = 3, .kernel_w = 3,
                       .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
  std::mt19937 rng(400);
  const auto w = test::random_values<float>(s.weight_size(), rng), xs = test::random_values<float>(s.input_size(), rng);
  std::size_t failures[2] = {0, 0};
  std::vector<float> results[2];
  std::string errors[2];
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 2; ++t)
    threads.push_back(checked_thread(errors[t], [&, t] {
      cpu::thread_pool pool(1);
      ops::conv2d<float> layer(contexts[t], pool, s, w);
      memory::io_buffer<float> x(contexts[t], s.input_size(), layer.shared_memory()),
          y(contexts[t], s.output_size(), layer.shared_memory());
      std::copy(xs.begin(), xs.end(), x.data());
      for (int call = 0; call < calls_per_thread; ++call) {
        const auto d = call % 2 ? plan::split_dimension::rows : plan::split_dimension::channels;
        layer(x.data(), y.data(), {d, (call / 2) % 2 ? layer.split_granule(d) : 0});
        if (call == 0) results[t].assign(y.data(), y.data() + s.output_size());
        for (std::size_t i = 0; i < s.output_size(); ++i) failures[t] += std::abs(y.data()[i] - results[t][i]) > 1e-4f;
      }
    }));
  // Meanwhile the program caches of both contexts are filled from this thread too.
  for (const auto& ctx : contexts) (void)ctx.program("__kernel void concurrency_probe(__global int* p) { p[0] = 1; }");
  for (auto& t : threads) t.join();
  for (std::size_t t = 0; t < 2; ++t) {
    CHECK_EQ(errors[t], "");
    CHECK_EQ(failures[t], 0u);
  }
  // The first call of each thread against the double reference (later calls matched it).
  for (const auto& y : results) test::check_conv(s, xs.data(), w.data(), static_cast<const float*>(nullptr), y.data(), activation::none);
}
