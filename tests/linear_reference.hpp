#pragma once
// Double-precision reference for dense layers and the tolerance check every operator test uses.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include "coexec/activation.hpp"

namespace coexec::test {

template <class T>
std::vector<T> random_values(std::size_t count, std::mt19937& rng) {
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<T> values(count);
  for (auto& v : values) v = static_cast<T>(dist(rng));
  return values;
}

/// One output as the reference computes it, in double, and how far a T result may be from it:
/// the worst-case accumulated rounding of a `terms`-long dot product, 2 (terms + 2) eps (sum |x w| + 1).
struct expected_value {
  double value = 0, tolerance = 0;  ///< the reference output and the bound
  bool admits(double got) const { return std::abs(got - value) <= tolerance; }  ///< false for NaN too
};

/// The expected_value of act(sum) for a dot product of `terms` terms whose |terms| add up to `magnitude`.
template <class T>
expected_value expected_output(double sum, double magnitude, std::size_t terms, activation act) {
  return {apply(act, sum), 2.0 * static_cast<double>(terms + 2) * std::numeric_limits<T>::epsilon() * (magnitude + 1.0)};
}

/// y[i][j] of act(x W^T + b) for x[M,K], W[N,K] (bias may be null).
template <class T>
expected_value linear_expected(const T* x, const T* w, const T* bias, std::size_t k, std::size_t i, std::size_t j, activation act) {
  double sum = bias ? static_cast<double>(bias[j]) : 0.0, magnitude = std::abs(sum);
  for (std::size_t kk = 0; kk < k; ++kk) {
    const double term = static_cast<double>(x[i * k + kk]) * static_cast<double>(w[j * k + kk]);
    sum += term;
    magnitude += std::abs(term);
  }
  return expected_output<T>(sum, magnitude, k, act);
}

/// Checks y[M,N] against act(x W^T + b) computed in double (linear_expected).
template <class T>
void check_linear(const T* x, const T* w, const T* bias, const T* y, std::size_t m, std::size_t n, std::size_t k,
                  activation act) {
  std::size_t failures = 0;
  for (std::size_t i = 0; i < m && failures < 5; ++i) {
    for (std::size_t j = 0; j < n && failures < 5; ++j) {
      const expected_value expected = linear_expected(x, w, bias, k, i, j, act);
      const double got = static_cast<double>(y[i * n + j]);
      if (!expected.admits(got)) {
        ++failures;
        FAIL_CHECK("y[" << i << "][" << j << "] = " << got << ", expected " << expected.value << " (tolerance "
                        << expected.tolerance << ")");
      }
    }
  }
  CHECK_MESSAGE(failures == 0, "y differs from the double-precision reference");
}

}  // namespace coexec::test
