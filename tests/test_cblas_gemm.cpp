// cblas_gemm against a double-precision reference. Built with BLAS only where CMake found it
// (it then defines COEXEC_HAVE_CBLAS); elsewhere this file is empty.
#if defined(COEXEC_HAVE_CBLAS)
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include "coexec/activation.hpp"
#include "coexec/cpu/cblas_gemm.hpp"
#include "coexec/cpu/thread_pool.hpp"
#include "coexec/error.hpp"
#include "coexec/memory/panels.hpp"

namespace {

using coexec::activation;
using coexec::cpu::cblas_gemm;
using coexec::cpu::gemm_args;
using coexec::cpu::thread_pool;

template <class T>
constexpr T sentinel = T(-777.25);

/// Runs cblas_gemm on columns [n_begin, n_end) of an M x N x K product with padded strides and
/// returns how many elements of y are wrong (outside the range: not the sentinel any more).
template <class T>
std::size_t wrong_elements(thread_pool& pool, std::size_t m, std::size_t n, std::size_t k,
                           bool with_bias, activation act, std::size_t n_begin, std::size_t n_end) {
  std::mt19937 rng(unsigned(m * 131 + n * 17 + k));
  std::uniform_real_distribution<T> dist(T(-1), T(1));
  const std::size_t ldx = k + 3, ldy = n + 2;
  std::vector<T> x(m * ldx), w(n * k), bias(n), y(m * ldy, sentinel<T>);
  for (T& v : x) v = dist(rng);
  for (T& v : w) v = dist(rng);
  for (T& v : bias) v = dist(rng);

  gemm_args<T> args;
  args.x = x.data();
  args.ldx = ldx;
  args.weights = w.data();
  args.bias = with_bias ? bias.data() : nullptr;
  args.y = y.data();
  args.ldy = ldy;
  args.shape = {m, n, k};
  args.act = act;
  cblas_gemm{}(pool, args, n_begin, n_end);

  const double eps = std::numeric_limits<T>::epsilon();
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < ldy; ++j) {
      const T got = y[i * ldy + j];
      if (j < n_begin || j >= n_end) {
        wrong += got != sentinel<T>;
        continue;
      }
      double sum = with_bias ? double(bias[j]) : 0.0, magnitude = std::abs(sum);
      for (std::size_t kk = 0; kk < k; ++kk) {
        sum += double(x[i * ldx + kk]) * double(w[j * k + kk]);
        magnitude += std::abs(double(x[i * ldx + kk]) * double(w[j * k + kk]));
      }
      const double want = coexec::apply(act, sum);
      wrong += !(std::abs(double(got) - want) <=
                 2 * eps * ((double(k) + 2) * magnitude + 4 * std::abs(want)));
    }
  return wrong;
}

}  // namespace

TEST_CASE_TEMPLATE("cblas_gemm matches a double-precision reference", T, float, double) {
#if defined(OPENBLAS_VERSION)
  openblas_set_num_threads(1);  // every pool worker calls BLAS at once
#endif
  thread_pool pool(2);
  constexpr std::size_t nr = coexec::memory::panel_width<T>;
  for (std::size_t m : {1, 7, 33})
    for (std::size_t n : {1, 17, 100})
      for (std::size_t k : {1, 65, 300})
        for (bool with_bias : {false, true})
          for (activation act :
               {activation::none, activation::relu, activation::relu6, activation::gelu}) {
            CAPTURE(m);
            CAPTURE(n);
            CAPTURE(k);
            CAPTURE(with_bias);
            CAPTURE(static_cast<int>(act));
            CHECK(wrong_elements<T>(pool, m, n, k, with_bias, act, 0, n) == 0);
            if (n > nr) CHECK(wrong_elements<T>(pool, m, n, k, with_bias, act, nr, n - 1) == 0);
          }
}

TEST_CASE("cblas_gemm needs the raw weights") {
  thread_pool pool(1);
  std::vector<float> x(4), y(4);
  gemm_args<float> args;
  args.x = x.data();
  args.ldx = 2;
  args.y = y.data();
  args.ldy = 2;
  args.shape = {2, 2, 2};
  try {
    cblas_gemm{}(pool, args, 0, 2);
    FAIL("no exception");
  } catch (const coexec::error& e) {
    CHECK(e.code() == coexec::errc::invalid_argument);
  }
  static_assert(cblas_gemm::needs_raw_weights);
}
#endif
