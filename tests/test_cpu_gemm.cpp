#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "coexec/activation.hpp"
#include "coexec/cpu/gemm.hpp"
#include "coexec/cpu/thread_pool.hpp"
#include "coexec/error.hpp"
#include "coexec/memory/panels.hpp"

namespace doctest {
template <>
struct StringMaker<coexec::activation> {
  static String convert(coexec::activation act) {
    constexpr const char* names[] = {"none", "relu", "relu6", "gelu"};
    return names[static_cast<int>(act)];
  }
};
template <>
struct StringMaker<coexec::gemm_shape> {
  static String convert(const coexec::gemm_shape& s) {
    return (std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k)).c_str();
  }
};
}  // namespace doctest

namespace {

using coexec::activation;
using coexec::gemm_shape;
using coexec::cpu::gemm_args;
using coexec::cpu::packed_gemm;
using coexec::cpu::thread_pool;

constexpr activation all_activations[] = {activation::none, activation::relu, activation::relu6,
                                          activation::gelu};

/// COEXEC_TEST_SEED reproduces a failing run; otherwise every run draws new data.
std::uint64_t test_seed() {
  if (const char* seed = std::getenv("COEXEC_TEST_SEED")) return std::stoull(seed);
  return std::random_device{}();
}

/// Random operands with padded strides, and x·Wᵀ in double with the magnitude Σ|x·w| that
/// bounds its rounding error.
template <class T>
struct problem {
  problem(gemm_shape s, std::mt19937_64& rng)
      : shape(s),
        ldx(s.k + rng() % 4),
        ldy(s.n + rng() % 4),
        x(s.m * ldx),
        w(s.n * s.k),
        bias(s.n),
        panels(coexec::memory::packed_size<T>(s.n, s.k)),
        dot(s.m * s.n),
        magnitude(s.m * s.n) {
    // Values of both signs and around 1 so every activation sees both of its regions.
    std::uniform_real_distribution<T> dist(T(-2), T(2));
    for (T& v : x) v = dist(rng);
    for (T& v : w) v = dist(rng);
    for (T& v : bias) v = dist(rng);
    coexec::memory::pack_panels(w.data(), s.n, s.k, panels.data());
    const double scale =
        1.0 / std::sqrt(double(std::max<std::size_t>(s.k, 1)));  // keep dots near 1
    for (T& v : x) v = T(v * scale);
    for (std::size_t i = 0; i < s.m; ++i)
      for (std::size_t j = 0; j < s.n; ++j) {
        double sum = 0, mag = 0;
        for (std::size_t k = 0; k < s.k; ++k) {
          const double p = double(x[i * ldx + k]) * double(w[j * s.k + k]);
          sum += p;
          mag += std::abs(p);
        }
        dot[i * s.n + j] = sum;
        magnitude[i * s.n + j] = mag;
      }
  }

  gemm_args<T> args(T* y, bool with_bias, activation act) const {
    gemm_args<T> a;
    a.x = x.data();
    a.ldx = ldx;
    a.panels = panels.data();
    a.weights = w.data();
    a.bias = with_bias ? bias.data() : nullptr;
    a.y = y;
    a.ldy = ldy;
    a.shape = shape;
    a.act = act;
    return a;
  }

  gemm_shape shape;
  std::size_t ldx, ldy;
  std::vector<T> x, w, bias, panels;
  std::vector<double> dot, magnitude;
};

template <class T>
constexpr T sentinel = T(-777.25);

/// Number of y elements that are wrong: those in columns [n_begin, n_end) against the reference,
/// all others (the padding past N included) against the sentinel.
template <class T>
std::size_t count_wrong(const problem<T>& p, const std::vector<T>& y, bool with_bias,
                        activation act, std::size_t n_begin, std::size_t n_end) {
  const double eps = std::numeric_limits<T>::epsilon();
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < p.shape.m; ++i)
    for (std::size_t j = 0; j < p.ldy; ++j) {
      const T got = y[i * p.ldy + j];
      if (j < n_begin || j >= n_end) {
        wrong += got != sentinel<T>;
        continue;
      }
      const double b = with_bias ? double(p.bias[j]) : 0.0;
      const double want = coexec::apply(act, p.dot[i * p.shape.n + j] + b);
      // Any summation order is within K·eps·Σ|x·w|; the activation adds a few ulps.
      const double tol =
          2 * eps *
              ((double(p.shape.k) + 2) * (p.magnitude[i * p.shape.n + j] + std::abs(b)) +
               4 * std::abs(want)) +
          std::numeric_limits<T>::min();
      wrong += !(std::abs(double(got) - want) <= tol);
    }
  return wrong;
}

/// A column that may start a slice: a multiple of panel_width in [0, n], or n itself.
template <class T>
std::size_t random_split(std::mt19937_64& rng, std::size_t lo, std::size_t n) {
  constexpr std::size_t nr = coexec::memory::panel_width<T>;
  if (rng() % 4 == 0) return n;
  const std::size_t first = (lo + nr - 1) / nr, last = n / nr;
  return first > last ? n : (first + rng() % (last - first + 1)) * nr;
}

/// Computes a random slice [s1, s2) alone (checking nothing else was written), then the rest.
template <class T>
void check_product(thread_pool& pool, const problem<T>& p, bool with_bias, activation act,
                   std::mt19937_64& rng) {
  const std::size_t n = p.shape.n;
  const std::size_t s1 = rng() % 3 == 0 ? 0 : random_split<T>(rng, 0, n);
  const std::size_t s2 = random_split<T>(rng, s1, n);
  CAPTURE(with_bias);
  CAPTURE(act);
  CAPTURE(s1);
  CAPTURE(s2);
  std::vector<T> y(p.shape.m * p.ldy, sentinel<T>);
  packed_gemm{}(pool, p.args(y.data(), with_bias, act), s1, s2);
  CHECK(count_wrong(p, y, with_bias, act, s1, s2) == 0);
  packed_gemm{}(pool, p.args(y.data(), with_bias, act), 0, s1);
  if (s2 < n) packed_gemm{}(pool, p.args(y.data(), with_bias, act), s2, n);
  CHECK(count_wrong(p, y, with_bias, act, 0, n) == 0);
}

}  // namespace

TEST_CASE_TEMPLATE("packed_gemm matches a double-precision reference", T, float, double) {
  const std::uint64_t seed = test_seed();
  INFO("seed = ", seed, " (rerun with COEXEC_TEST_SEED=", seed, ")");
  std::mt19937_64 rng(seed);
  thread_pool pool(2);
  constexpr std::size_t sizes[] = {1, 3, 17, 63, 64, 65, 1000, 4097};
  for (std::size_t m : {1, 7, 8, 9, 257})  // 8 and 9 straddle the streaming / blocked switch
    for (std::size_t n : sizes)
      for (std::size_t k : sizes) {
        if (m * n * k > (std::size_t(1) << 25))
          continue;  // the reference would dominate the run time
        const gemm_shape shape{m, n, k};
        CAPTURE(shape);
        const problem<T> p(shape, rng);
        for (bool with_bias : {false, true})
          for (activation act : all_activations) check_product(pool, p, with_bias, act, rng);
      }
}

TEST_CASE_TEMPLATE("packed_gemm gives the same result for any pool size", T, float, double) {
  const std::uint64_t seed = test_seed();
  INFO("seed = ", seed, " (rerun with COEXEC_TEST_SEED=", seed, ")");
  std::mt19937_64 rng(seed);
  for (const gemm_shape shape :
       {gemm_shape{257, 1000, 65}, gemm_shape{40, 130, 300}, gemm_shape{3, 200, 70}}) {
    CAPTURE(shape);
    const problem<T> p(shape, rng);
    for (std::size_t threads : {1, 2, 4, 7}) {
      CAPTURE(threads);
      thread_pool pool(threads);
      check_product(pool, p, true, activation::relu, rng);
    }
  }
}

TEST_CASE_TEMPLATE("packed_gemm rejects bad arguments with invalid_argument", T, float, double) {
  std::mt19937_64 rng(1);
  const problem<T> p(gemm_shape{9, 40, 5}, rng);
  std::vector<T> y(p.shape.m * p.ldy, sentinel<T>);
  thread_pool pool(2);
  const auto expect_invalid = [&](const gemm_args<T>& args, std::size_t n_begin,
                                  std::size_t n_end) {
    CAPTURE(n_begin);
    CAPTURE(n_end);
    try {
      packed_gemm{}(pool, args, n_begin, n_end);
      FAIL("no exception");
    } catch (const coexec::error& e) {
      CHECK(e.code() == coexec::errc::invalid_argument);
    }
  };
  const gemm_args<T> good = p.args(y.data(), true, activation::none);
  constexpr std::size_t nr = coexec::memory::panel_width<T>;

  expect_invalid(good, 1, 40);       // n_begin not a multiple of panel_width
  expect_invalid(good, nr, nr - 1);  // empty range the wrong way round
  expect_invalid(good, 0, 41);       // past N
  for (auto spoil :
       {+[](gemm_args<T>& a) { a.x = nullptr; }, +[](gemm_args<T>& a) { a.y = nullptr; },
        +[](gemm_args<T>& a) { a.panels = nullptr; },
        +[](gemm_args<T>& a) { a.ldx = a.shape.k - 1; },
        +[](gemm_args<T>& a) { a.ldy = a.shape.n - 1; }}) {
    gemm_args<T> bad = good;
    spoil(bad);
    expect_invalid(bad, 0, 40);
  }
  CHECK(std::all_of(y.begin(), y.end(), [](T v) { return v == sentinel<T>; }));

  // An empty range is a no-op, even at an unaligned N.
  packed_gemm{}(pool, good, 0, 0);
  packed_gemm{}(pool, good, 2 * nr, 2 * nr);
  packed_gemm{}(pool, good, 40, 40);
  CHECK(std::all_of(y.begin(), y.end(), [](T v) { return v == sentinel<T>; }));
}

TEST_CASE("float gelu stays within 2e-7 of the exact erf form and maps special values as it does") {
  const auto exact = [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); };
  double worst = 0, worst_at = 0;
  for (double v = -20; v <= 20; v += 1.0 / 4096) {
    const float f = static_cast<float>(v);
    const double error = std::abs(coexec::apply(activation::gelu, f) - exact(f)) / std::max(1.0, std::abs(double(f)));
    if (error > worst) worst = error, worst_at = v;
  }
  CAPTURE(worst_at);
  CHECK(worst < 2e-7);
  constexpr float inf = std::numeric_limits<float>::infinity();
  CHECK(std::isnan(coexec::apply(activation::gelu, std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isnan(coexec::apply(activation::gelu, -inf)));  // -inf * 0, as the erf form
  CHECK(coexec::apply(activation::gelu, inf) == inf);
  CHECK(coexec::apply(activation::gelu, 1e30f) == 1e30f);
  CHECK(coexec::apply(activation::gelu, -1e30f) == 0.0f);
  CHECK(std::signbit(coexec::apply(activation::gelu, -0.0f)));
  static_assert(coexec::apply(activation::gelu, 0.0f) == 0.0f);  // constexpr, as the other activations
}
