#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "coexec/gpu/gemm.hpp"
#include "coexec/gpu/tuning.hpp"
#include "coexec/memory/svm_vector.hpp"
#include "small_tiles.hpp"
#include "support.hpp"

using namespace coexec;
using gpu::gemm_config;
using gpu::gemm_family;

namespace {

constexpr activation all_activations[] = {activation::none, activation::relu, activation::relu6, activation::gelu};
constexpr gemm_family all_families[] = {gemm_family::local, gemm_family::register_blocked, gemm_family::gemv};

/// COEXEC_TEST_SEED reproduces a failing run; otherwise every run draws new data.
std::uint64_t test_seed() {
  if (const char* seed = std::getenv("COEXEC_TEST_SEED")) return std::stoull(seed);
  return std::random_device{}();
}

/// A layer's operands with padded strides: W row-major, its panels in SVM, x, bias and y (y
/// filled with a sentinel, so writes outside the slice show).
template <class T>
struct layer {
  static constexpr T sentinel = T(-12345);

  layer(const runtime::context& ctx, gemm_shape s, std::mt19937_64& rng)
      : shape(s), ldx(s.k + rng() % 3), ldy(s.n + rng() % 3), w(s.n * s.k), x(ctx, s.m * ldx),
        panels(ctx, memory::packed_size<T>(s.n, s.k)), bias(ctx, s.n), y(ctx, s.m * ldy) {
    std::uniform_real_distribution<T> dist(T(-1), T(1));
    for (T& v : w) v = dist(rng);
    const auto x_guard = x.map(), panels_guard = panels.map(), bias_guard = bias.map(), y_guard = y.map();
    for (T& v : x) v = dist(rng);
    for (T& v : bias) v = dist(rng);
    std::fill(y.begin(), y.end(), sentinel);
    memory::pack_panels(w.data(), s.n, s.k, panels.data());
  }

  /// The operands of columns [first, n) with first a multiple of the panel width.
  gpu::gemm_operands<T> slice(std::size_t first, bool with_bias) {
    gpu::gemm_operands<T> ops;
    ops.x = {x.data()};
    ops.ldx = ldx;
    ops.w = {panels.data(), first * shape.k};
    if (with_bias) ops.bias = {bias.data(), first};
    ops.y = {y.data(), first};
    ops.ldy = ldy;
    return ops;
  }

  /// Checks y[:, first, last) against a double-precision reference and the rest against the sentinel.
  void check(std::size_t first, std::size_t last, activation act, bool with_bias) const {
    auto guard = y.map(CL_MAP_READ);
    const double eps = std::numeric_limits<T>::epsilon();
    std::size_t bad = 0;
    for (std::size_t r = 0; r < shape.m; ++r)
      for (std::size_t j = 0; j < shape.n; ++j) {
        const T got = y[r * ldy + j];
        if (j < first || j >= last) {
          bad += got != sentinel;
          continue;
        }
        double dot = with_bias ? double(bias[j]) : 0.0, magnitude = std::abs(dot);
        for (std::size_t kk = 0; kk < shape.k; ++kk) {
          dot += double(x[r * ldx + kk]) * double(w[j * shape.k + kk]);
          magnitude += std::abs(double(x[r * ldx + kk]) * double(w[j * shape.k + kk]));
        }
        const double want = apply(act, dot);
        const double tolerance = 2.0 * double(shape.k + 2) * eps * magnitude + 1e-30;
        if (!(std::abs(double(got) - want) <= tolerance) && bad++ < 5)
          MESSAGE("y[" << r << "][" << j << "] = " << got << ", want " << want << " +- " << tolerance);
      }
    CHECK_MESSAGE(bad == 0, bad << " wrong outputs in " << shape.m << "x" << shape.n << "x" << shape.k << " slice [" << first
                                << ", " << last << ")");
  }

  gemm_shape shape;
  std::size_t ldx, ldy;
  std::vector<T> w;
  svm_vector<T> x, panels, bias, y;
};

template <class T>
bool skip_without_fp64(const runtime::context& ctx) {
  if (std::is_same_v<T, double> && !ctx.caps().fp64) {
    test::report_skip("double GEMM", "device '" + ctx.caps().name + "' has no fp64");
    return true;
  }
  return false;
}

/// Runs columns [first, last) of `l` with `launcher` and checks them.
template <class T>
void run_slice(gpu::gemm_launcher<T>& launcher, layer<T>& l, std::size_t first, std::size_t last, activation act,
               bool with_bias, sync::completion& done) {
  {
    const auto guard = l.y.map(CL_MAP_WRITE);
    std::fill(l.y.begin(), l.y.end(), layer<T>::sentinel);
  }
  auto ops = l.slice(first, with_bias);
  done.wait(launcher.enqueue(ops, {l.shape.m, last - first, l.shape.k}, done));
  l.check(first, last, act, with_bias);
}

}  // namespace

TEST_CASE_TEMPLATE("gpu gemm: every family, odd shapes, slices at panel offsets", T, float, double) {
  auto ctx = test::make_context();
  if (skip_without_fp64<T>(ctx)) return;
  constexpr std::size_t nr = memory::panel_width<T>;
  const gemm_shape shapes[] = {{1, 1, 1},    {7, 3, 3},      {257, 17, 17}, {1, 63, 4097}, {7, 64, 1000},
                               {257, 65, 63}, {1, 1000, 64}, {7, 4097, 65}, {257, 1000, 3}, {1, 4097, 17}};
  const auto seed = test_seed();
  INFO("COEXEC_TEST_SEED=" << seed);
  std::mt19937_64 rng(seed);
  for (gemm_family family : all_families) {
    const std::string family_name = gpu::to_string(family);
    CAPTURE(family_name);
    gpu::gemm_launcher<T> launcher(ctx, test::small_tiles<T>(family), activation::gelu, true);
    for (std::size_t i = 0; i < std::size(shapes); ++i) {
      const gemm_shape s = shapes[i];
      CAPTURE(s.m);
      CAPTURE(s.n);
      CAPTURE(s.k);
      layer<T> l(ctx, s, rng);
      sync::completion done(ctx, i % 2 ? sync::completion::mode::event_polling : sync::completion::mode::svm_counter);
      const std::size_t panels = (s.n + nr - 1) / nr, middle = panels / 2 * nr, last_panel = (panels - 1) * nr;
      run_slice(launcher, l, 0, middle > 0 ? middle : s.n, activation::gelu, true, done);
      run_slice(launcher, l, middle, s.n, activation::gelu, true, done);
      run_slice(launcher, l, last_panel, s.n, activation::gelu, true, done);
    }
  }
}

TEST_CASE("gpu gemm: local tiles whose staging does not divide evenly among the work-items") {
  auto ctx = test::make_context();
  constexpr std::size_t nr = memory::panel_width<float>;
  // 64 work-items stage 96 x elements (two each, the second by half of them) and 48 W vectors.
  const auto config = gemm_config::local(16, 2 * nr, 6, 2, 4, 4);
  gpu::gemm_launcher<float> launcher(ctx, config, activation::relu, true);
  std::mt19937_64 rng(test_seed());
  for (const gemm_shape s : {gemm_shape{17, 3 * nr + 5, 23}, gemm_shape{5, 2 * nr, 6}}) {
    CAPTURE(s.m);
    CAPTURE(s.n);
    CAPTURE(s.k);
    layer<float> l(ctx, s, rng);
    sync::completion done(ctx);
    run_slice(launcher, l, 0, s.n, activation::relu, true, done);
    run_slice(launcher, l, nr, s.n, activation::relu, true, done);
  }
}

TEST_CASE_TEMPLATE("gpu gemm: every activation, with and without bias", T, float, double) {
  auto ctx = test::make_context();
  if (skip_without_fp64<T>(ctx)) return;
  std::mt19937_64 rng(test_seed());
  layer<T> l(ctx, {9, 70, 33}, rng);
  sync::completion done(ctx);
  // One program per activation, bias alternating and the families taking turns: each build
  // costs PoCL about a second (the shape sweep above covers gelu + bias on every family).
  for (unsigned variant = 0; variant < std::size(all_activations); ++variant) {
    const activation act = all_activations[variant];
    const bool with_bias = variant % 2 == 1;
    const std::string family_name = gpu::to_string(all_families[variant % 3]);
    CAPTURE(family_name);
    CAPTURE(kernel_code(act));
    CAPTURE(with_bias);
    gpu::gemm_launcher<T> launcher(ctx, test::small_tiles<T>(all_families[variant % 3]), act, with_bias);
    run_slice(launcher, l, 0, l.shape.n, act, with_bias, done);
  }
}

TEST_CASE_TEMPLATE("gpu gemm: cl::Buffer operands (discrete GPU path)", T, float, double) {
  auto ctx = test::make_context();
  if (skip_without_fp64<T>(ctx)) return;
  constexpr std::size_t nr = memory::panel_width<T>;
  const gemm_shape s{7, 5 * nr + 3, 45};
  const std::size_t first = 2 * nr, count = s.n - first, ldy = s.n + 2;
  std::mt19937_64 rng(test_seed());
  std::uniform_real_distribution<T> dist(T(-1), T(1));
  std::vector<T> x(s.m * s.k), w(s.n * s.k), packed(memory::packed_size<T>(s.n, s.k)), bias(s.n), y(s.m * ldy);
  for (auto* v : {&x, &w, &bias})
    for (T& e : *v) e = dist(rng);
  memory::pack_panels(w.data(), s.n, s.k, packed.data());

  // The device holds only its slice of the weights (plus a margin panel) and a compact y.
  const std::size_t slice_panels = (count + nr - 1) / nr, margin = nr * s.k;
  auto x_dev = gpu::make_buffer<T>(ctx, x.size()), w_dev = gpu::make_buffer<T>(ctx, margin + slice_panels * nr * s.k),
       bias_dev = gpu::make_buffer<T>(ctx, count), y_dev = gpu::make_buffer<T>(ctx, s.m * count);
  gpu::write_rows(ctx, x_dev, 0, x.data(), s.m, s.k, s.k);
  gpu::write_rows(ctx, w_dev, margin, packed.data() + first * s.k, 1, slice_panels * nr * s.k, slice_panels * nr * s.k);
  gpu::write_rows(ctx, bias_dev, 0, bias.data() + first, 1, count, count);

  for (gemm_family family : all_families) {
    const std::string family_name = gpu::to_string(family);
    CAPTURE(family_name);
    std::fill(y.begin(), y.end(), T(-7));
    gpu::gemm_launcher<T> launcher(ctx, test::small_tiles<T>(family), activation::relu, true);
    sync::completion done(ctx, sync::completion::mode::event_polling);
    gpu::gemm_operands<T> ops{{x_dev}, s.k, {w_dev, margin}, {bias_dev}, {y_dev}, count};
    done.wait(launcher.enqueue(ops, {s.m, count, s.k}, done));
    gpu::read_rows(ctx, y_dev, 0, y.data() + first, s.m, count, ldy).wait();
    for (std::size_t r = 0; r < s.m; ++r)
      for (std::size_t j = 0; j < s.n; ++j) {
        if (j < first) {
          REQUIRE(y[r * ldy + j] == T(-7));
          continue;
        }
        double dot = bias[j];
        for (std::size_t kk = 0; kk < s.k; ++kk) dot += double(x[r * s.k + kk]) * double(w[j * s.k + kk]);
        REQUIRE(double(y[r * ldy + j]) == doctest::Approx(std::max(dot, 0.0)).epsilon(1e-4).scale(1.0));
      }
  }
}

TEST_CASE("gpu gemm: an empty slice launches nothing and is complete at once") {
  auto ctx = test::make_context();
  std::mt19937_64 rng(1);
  layer<float> l(ctx, {3, 20, 5}, rng);
  gpu::gemm_launcher<float> launcher(ctx, test::small_tiles<float>(gemm_family::register_blocked), activation::none, false);
  for (auto mode : {sync::completion::mode::svm_counter, sync::completion::mode::event_polling}) {
    sync::completion done(ctx, mode);
    const cl::Event event = launcher.enqueue(l.slice(16, false), {3, 0, 5}, done);
    CHECK(sync::completion::event_complete(event));
    done.wait(event, std::chrono::milliseconds(100));
    l.check(0, 0, activation::none, false);  // nothing written
  }
}

TEST_CASE("gpu gemm: bad arguments are coexec::error") {
  auto ctx = test::make_context();
  std::mt19937_64 rng(2);
  layer<float> l(ctx, {4, 40, 8}, rng);
  sync::completion done(ctx);
  const auto config = test::small_tiles<float>(gemm_family::register_blocked);
  gpu::gemm_launcher<float> launcher(ctx, config, activation::none, false);
  auto ops = l.slice(0, false);
  const gemm_shape whole{4, 40, 8};
  auto enqueue = [&](gpu::gemm_operands<float> o, gemm_shape s) { return [&launcher, &done, o, s] { launcher.enqueue(o, s, done); }; };

  test::check_error(enqueue(ops, {4, 40, 0}), errc::invalid_argument);                 // k = 0
  auto narrow = ops;
  narrow.ldx = 7;
  test::check_error(enqueue(narrow, whole), errc::invalid_argument);                  // ldx < k
  narrow = ops;
  narrow.ldy = 39;
  test::check_error(enqueue(narrow, whole), errc::invalid_argument);                  // ldy < n
  test::check_error(enqueue(ops, {4, 41, 8}), errc::invalid_argument);                // more panels than W holds
  test::check_error(enqueue(ops, {5, 40, 8}), errc::invalid_argument);                // more rows than x holds
  auto null_x = ops;
  null_x.x = {};
  test::check_error(enqueue(null_x, whole), errc::invalid_argument);
  test::check_error(enqueue(l.slice(0, true), whole), errc::invalid_argument);        // bias to a launcher without
  std::vector<float> host(1000);
  auto foreign = ops;
  foreign.x = {host.data()};
  test::check_error(enqueue(foreign, whole), errc::invalid_argument);                  // not this context's SVM
  auto small = ops;
  small.y = {gpu::make_buffer<float>(ctx, 10)};
  test::check_error(enqueue(small, whole), errc::invalid_argument);                    // buffer too small

  auto broken = config;
  broken.vector_width = 3;
  test::check_error([&] { gpu::gemm_launcher<float>(ctx, broken, activation::none, false); }, errc::invalid_argument);
  broken = config;
  broken.tile_n = 24;
  test::check_error([&] { gpu::gemm_launcher<float>(ctx, broken, activation::none, false); }, errc::invalid_argument);
  broken = gemm_config::local(256, 256, 16, 1, 4, 4);  // 64 x 256 work-items
  test::check_error([&] { gpu::gemm_launcher<float>(ctx, broken, activation::none, false); }, errc::invalid_argument);
}

TEST_CASE("gpu tuner: picks a correct config and keeps it on disk") {
  auto ctx = test::make_context();
  const auto directory = std::filesystem::temp_directory_path() / ("coexec-tuner-test-" + std::to_string(test_seed()));
  std::filesystem::remove_all(directory);
  const auto shape_class = gpu::shape_class::small_m;

  gpu::tuner tuner(directory, std::chrono::seconds(3));
  CHECK_FALSE(tuner.cached<float>(ctx, shape_class).has_value());
  const gemm_config chosen = tuner.config<float>(ctx, shape_class);
  CHECK(tuner.cached<float>(ctx, shape_class) == chosen);
  CHECK(std::filesystem::exists(tuner.file(ctx)));

  gpu::tuner reloaded(directory);  // a new process: the choice comes back from disk
  CHECK(reloaded.cached<float>(ctx, shape_class) == chosen);
  CHECK_FALSE(reloaded.cached<double>(ctx, shape_class).has_value());

  std::mt19937_64 rng(3);
  layer<float> l(ctx, {16, 200, 70}, rng);
  gpu::gemm_launcher<float> launcher(ctx, chosen, activation::relu, true);
  sync::completion done(ctx);
  run_slice(launcher, l, 0, l.shape.n, activation::relu, true, done);
  std::filesystem::remove_all(directory);
}

TEST_CASE_TEMPLATE("gpu tuning: the built-in defaults are valid on this device", T, float, double) {
  auto ctx = test::make_context();
  if (skip_without_fp64<T>(ctx)) return;
  std::mt19937_64 rng(4);
  layer<T> l(ctx, {20, 100, 40}, rng);
  sync::completion done(ctx);
  for (auto shape_class : {gpu::shape_class::gemv, gpu::shape_class::small_m, gpu::shape_class::large_m}) {
    const gemm_config config = gpu::default_config<T>(ctx.caps(), shape_class);
    CAPTURE(config.to_string());
    CHECK(config.column_granule() % memory::panel_width<T> == 0);
    gpu::gemm_launcher<T> launcher(ctx, config, activation::none, false);
    run_slice(launcher, l, 0, l.shape.n, activation::none, false, done);
  }
}

TEST_CASE("gpu tuning: on a GPU whose default is gemv, a problem with two local tiles per compute unit takes the tiles") {
  runtime::capabilities h200;
  h200.vendor = "NVIDIA Corporation";
  h200.is_gpu = true;
  h200.compute_units = 132;
  h200.max_work_group_size = 1024;
  h200.local_mem_size = 48 * 1024;
  const gemm_config class_default = gpu::default_config<float>(h200, gpu::shape_class::large_m);
  REQUIRE(class_default.family == gemm_family::gemv);
  const gemm_config wide = gpu::default_config<float>(h200, gemm_shape{128, 3072, 768});  // 4 x 96 tiles of 32 x 32
  CHECK(wide.family == gemm_family::local);
  CHECK(gpu::default_config<float>(h200, gemm_shape{128, 768, 768}) == class_default);  // 4 x 24 tiles
  CHECK(gpu::default_config<float>(h200, gemm_shape{1, 11008, 4096}).family == gemm_family::gemv);  // gemv class: no tiles
  // Where the class default already is a tiled or CPU-shaped kernel, the shape changes nothing.
  auto cpu = h200;
  cpu.vendor = "The pocl project", cpu.is_gpu = false, cpu.is_cpu = true, cpu.local_mem_is_global = true;
  CHECK(gpu::default_config<float>(cpu, gemm_shape{128, 3072, 768}) == gpu::default_config<float>(cpu, gpu::shape_class::large_m));
}
