#include <algorithm>
#include <filesystem>
#include <random>

#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/linear.hpp"
#include "coexec/plan/predicted.hpp"
#include "linear_reference.hpp"
#include "support.hpp"

using namespace coexec;

namespace {

constexpr activation all_activations[] = {activation::none, activation::relu, activation::relu6, activation::gelu};

// Split points of every class: CPU-only (N), device-only (0), an aligned middle, the last panel
// boundary (a remainder tile on the device).
std::vector<std::size_t> split_classes(std::size_t n, std::size_t granule) {
  std::vector<std::size_t> splits{0, n};
  if (n > granule) splits.push_back((n / 2) / granule * granule);
  if (n > granule) splits.push_back((n - 1) / granule * granule);
  std::sort(splits.begin(), splits.end());
  splits.erase(std::unique(splits.begin(), splits.end()), splits.end());
  return splits;
}

template <class T>
void check_layer(const runtime::context& ctx, cpu::thread_pool& pool, std::size_t m, std::size_t n, std::size_t k,
                 bool with_bias, activation act, sync::completion::mode mode, std::mt19937& rng, bool shared = true) {
  CAPTURE(m);
  CAPTURE(n);
  CAPTURE(k);
  CAPTURE(with_bias);
  CAPTURE(static_cast<int>(act));
  const auto w = test::random_values<T>(n * k, rng);
  const auto b = test::random_values<T>(n, rng);
  const auto xs = test::random_values<T>(m * k, rng);
  linear_options options;
  options.act = act;
  options.completion = mode;
  options.shared_memory = shared;
  ops::linear<T> layer(ctx, pool, n, k, w, with_bias ? std::span<const T>(b) : std::span<const T>(), options);
  memory::io_buffer<T> x(ctx, m * k, layer.shared_memory()), y(ctx, m * n, layer.shared_memory());
  std::copy(xs.begin(), xs.end(), x.data());
  for (std::size_t split : split_classes(n, layer.split_granule())) {
    CAPTURE(split);
    std::fill(y.data(), y.data() + m * n, T(-777));
    layer(x.data(), m, y.data(), split);
    test::check_linear(xs.data(), w.data(), with_bias ? b.data() : nullptr, y.data(), m, n, k, act);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("linear matches the double reference for every split class and completion path", T, float, double) {
  auto ctx = test::make_context();
  if (std::is_same_v<T, double> && !ctx.caps().fp64) {
    test::report_skip("linear<double>", "device '" + ctx.caps().name + "' has no fp64");
    return;
  }
  cpu::thread_pool pool(2);
  const unsigned seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  const std::size_t sizes[] = {1, 3, 17, 63, 64, 65, 1000, 4097};
  std::size_t variant = 0;
  for (std::size_t n : sizes) {
    for (std::size_t k : sizes) {
      for (std::size_t m : {std::size_t{1}, std::size_t{7}, std::size_t{257}}) {
        if (m * n * k > 300'000'000 / (sizeof(T) == 8 ? 4 : 1)) continue;  // keep the double reference affordable
        const auto act = all_activations[variant % 4];
        const bool with_bias = (variant / 4) % 2 == 0;
        const auto mode = (variant / 2) % 2 == 0 ? sync::completion::mode::svm_counter : sync::completion::mode::event_polling;
        const bool shared = variant % 3 != 2;  // every third layer takes the discrete-GPU data path
        ++variant;
        check_layer<T>(ctx, pool, m, n, k, with_bias, act, mode, rng, shared);
      }
    }
  }
  MESSAGE("checked " << variant << " layer shapes");
}

TEST_CASE("linear runs both completion paths") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  std::mt19937 rng(7);
  for (auto mode : {sync::completion::mode::svm_counter, sync::completion::mode::event_polling}) {
    const auto w = test::random_values<float>(64 * 32, rng);
    ops::linear<float> layer(ctx, pool, 64, 32, w, {}, {.completion = mode});
    if (mode == sync::completion::mode::svm_counter && !test::has_svm_flags(ctx))
      test::report_skip("SVM counter completion", "no fine-grained SVM atomics on '" + ctx.caps().name + "'");
    else
      CHECK(layer.completion_mode() == mode);
    check_layer<float>(ctx, pool, 5, 64, 32, true, activation::relu, mode, rng);
  }
}

TEST_CASE("runs keep the pool's workers awake through a device wait, except where the device is a CPU") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(3);
  pool.run([](std::size_t, std::size_t) {});
  REQUIRE(test::eventually([&] { return pool.sleeping() == 2; }));
  const auto awake = ops::keep_awake_for_device(pool, ctx);
  if (ctx.caps().is_cpu) {
    std::this_thread::sleep_for(cpu::thread_pool::spin_time * 20);
    CHECK(pool.sleeping() == 2);  // its threads would share cores with spinning workers
  } else {
    CHECK(test::eventually([&] { return pool.sleeping() == 0; }));
  }
}

TEST_CASE("a predicted plan leaves the device whole work-group tiles where N holds whole tiles") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  constexpr std::size_t m = 64, k = 96;
  const std::size_t tile = gpu::default_config<float>(ctx.caps(), gpu::classify(m)).column_granule();
  if (tile <= memory::panel_width<float>) {
    test::report_skip("tile-aligned plans", "the device kernel's tile on '" + ctx.caps().name + "' is one panel");
    return;
  }
  const std::size_t n = 8 * tile;
  std::mt19937 rng(3);
  const auto w = test::random_values<float>(n * k, rng);
  ops::linear<float, cpu::packed_gemm, plan::predicted<>> layer(ctx, pool, n, k, w);
  io_buffer<float> x(ctx, m * k, layer.shared_memory()), y(ctx, m * n, layer.shared_memory());
  for (int run = 0; run < 20; ++run) {
    layer(x.data(), m, y.data());
    CAPTURE(layer.last_run().split);
    CHECK(layer.last_run().split % tile == 0);
  }
}

TEST_CASE("a device part that ends before the CPU part is timed exactly where the queue profiles") {
  // The device computes one panel, the CPU the other 255 of a 64x4096x4096 layer (2 GFLOP): the
  // device ends long before the host looks (after a warm-up run). Without profiling the host
  // only knows it ended by the CPU part's end.
  cpu::thread_pool pool(2);
  std::mt19937 rng(11);
  constexpr std::size_t m = 64, n = 4096, k = 4096;
  const auto w = test::random_values<float>(n * k, rng);
  for (const bool profiling : {true, false}) {
    CAPTURE(profiling);
    auto ctx = test::make_context({.profiling = profiling});
    ops::linear<float> layer(ctx, pool, n, k, w);
    memory::io_buffer<float> x(ctx, m * k, layer.shared_memory()), y(ctx, m * n, layer.shared_memory());
    const std::size_t split = n - layer.split_granule();
    layer(x.data(), m, y.data(), split);
    bool device_ended_first = false;
    for (int run = 0; run < 3; ++run) {
      layer(x.data(), m, y.data(), split);
      const ops::run_record& r = layer.last_run();
      CHECK(r.device_seconds <= r.total_seconds);
      if (profiling) CHECK(r.device_exact);
      device_ended_first |= profiling ? r.device_seconds < 0.5 * r.total_seconds : !r.device_exact;
    }
    CHECK(device_ended_first);
  }
}

TEST_CASE("discrete-GPU data path: weight slices follow the split, x and y are staged") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  std::mt19937 rng(3);
  const std::size_t m = 3, n = 1000, k = 40;
  const auto w = test::random_values<float>(n * k, rng);
  const auto b = test::random_values<float>(n, rng);
  const auto xs = test::random_values<float>(m * k, rng);
  ops::linear<float> layer(ctx, pool, n, k, w, b, {.shared_memory = false});
  CHECK_FALSE(layer.shared_memory());
  std::vector<float> y(m * n);
  // Splits jump across the margin both ways, so panels move host -> device and back.
  for (std::size_t split : {0, 992, 16, 512, 1000, 496, 0}) {
    CAPTURE(split);
    std::fill(y.begin(), y.end(), -1.0f);
    layer(xs.data(), m, y.data(), split);
    test::check_linear(xs.data(), w.data(), b.data(), y.data(), m, n, k, activation::none);
    const double held = layer.weight_bytes_ratio();
    CHECK(held < 1.2);  // each side holds its slice plus a margin, not two copies
  }
  // CPU-only after a device-only run, with a partial last panel: the CPU needs that panel too.
  const std::size_t n2 = 65, k2 = 3;
  const auto w2 = test::random_values<float>(n2 * k2, rng);
  ops::linear<float> small(ctx, pool, n2, k2, w2, {}, {.shared_memory = false});
  std::vector<float> y2(m * n2);
  for (std::size_t split : {0, 64, 65}) {
    CAPTURE(split);
    std::fill(y2.begin(), y2.end(), -1.0f);
    small(xs.data(), m, y2.data(), split);
    test::check_linear(xs.data(), w2.data(), static_cast<const float*>(nullptr), y2.data(), m, n2, k2, activation::none);
  }
}

TEST_CASE("linear takes its device kernel from a tuner") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  std::mt19937 rng(5);
  const auto dir = std::filesystem::temp_directory_path() / ("coexec-linear-tuner-" + std::to_string(std::random_device{}()));
  gpu::tuner tuner(dir, std::chrono::milliseconds(500));
  const std::size_t m = 3, n = 80, k = 24;
  const auto w = test::random_values<float>(n * k, rng);
  const auto xs = test::random_values<float>(m * k, rng);
  ops::linear<float> layer(ctx, pool, n, k, w, {}, {.tuner = &tuner});
  memory::io_buffer<float> x(ctx, m * k, layer.shared_memory()), y(ctx, m * n, layer.shared_memory());
  std::copy(xs.begin(), xs.end(), x.data());
  layer(x.data(), m, y.data(), 32);
  test::check_linear(xs.data(), w.data(), static_cast<const float*>(nullptr), y.data(), m, n, k, activation::none);
  CHECK(tuner.cached<float>(ctx, gpu::classify(m)).has_value());  // the choice is remembered
  std::filesystem::remove_all(dir);
}

TEST_CASE("grid_search picks the fastest timed split and caches it per shape") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  std::mt19937 rng(11);
  const std::size_t m = 8, n = 256, k = 128;
  const auto w = test::random_values<float>(n * k, rng);
  const auto xs = test::random_values<float>(m * k, rng);
  ops::linear<float> layer(ctx, pool, n, k, w);
  memory::io_buffer<float> x(ctx, m * k, layer.shared_memory()), y(ctx, m * n, layer.shared_memory());
  std::copy(xs.begin(), xs.end(), x.data());
  layer(x.data(), m, y.data());
  test::check_linear(xs.data(), w.data(), static_cast<const float*>(nullptr), y.data(), m, n, k, activation::none);
  const auto curve = layer.planner().curve(layer.shape(m));
  REQUIRE(curve.size() == n / layer.split_granule() + 1);  // 17 candidates: all timed
  const auto best = std::min_element(curve.begin(), curve.end(), [](auto& a, auto& b) { return a.seconds < b.seconds; });
  struct must_not_time {
    std::size_t columns() const { return 256; }
    std::size_t split_granule() const { return 16; }
    void run(std::size_t) { FAIL("a cached plan must not be timed again"); }
  } untimed;
  // The curve's winner: the confirmation's timings of the contenders replace the search's.
  CHECK(layer.planner().choose(layer.shape(m), untimed) == best->split);
}

TEST_CASE("linear rejects bad shapes, buffers and splits") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  std::vector<float> w(64 * 8, 0.5f), b(64, 0.f);
  test::check_error([&] { ops::linear<float>(ctx, pool, 64, 8, std::span<const float>(w).first(10)); }, errc::invalid_argument);
  test::check_error([&] { ops::linear<float>(ctx, pool, 0, 8, w); }, errc::invalid_argument);
  test::check_error([&] { ops::linear<float>(ctx, pool, 64, 8, w, std::span<const float>(b).first(3)); }, errc::invalid_argument);
  ops::linear<float> layer(ctx, pool, 64, 8, w, b);
  memory::io_buffer<float> x(ctx, 2 * 8, layer.shared_memory()), y(ctx, 2 * 64, layer.shared_memory());
  test::check_error([&] { layer(nullptr, 2, y.data(), 0); }, errc::invalid_argument);
  test::check_error([&] { layer(x.data(), 2, nullptr, 0); }, errc::invalid_argument);
  test::check_error([&] { layer(x.data(), 0, y.data(), 0); }, errc::invalid_argument);
  test::check_error([&] { layer(x.data(), 2, y.data(), 5); }, errc::invalid_argument);   // misaligned split
  test::check_error([&] { layer(x.data(), 2, y.data(), 80); }, errc::invalid_argument);  // beyond N
  test::check_error([&] { layer(x.data(), 2, reinterpret_cast<float*>(reinterpret_cast<char*>(y.data()) + 1), 0); },
                    errc::invalid_argument);  // misaligned
  if (ctx.caps().svm_fine) {
    test::check_error([&] { layer(x.data(), 3, y.data(), 0); }, errc::invalid_argument);  // x too small for M = 3
    std::vector<float> plain(2 * 64);
    test::check_error([&] { layer(x.data(), 2, plain.data(), 0); }, errc::invalid_argument);  // not SVM
    auto other = test::make_context();
    memory::svm_vector<float> foreign(other, 2 * 64);
    test::check_error([&] { layer(x.data(), 2, foreign.data(), 0); }, errc::invalid_argument);  // another context
  }
}
