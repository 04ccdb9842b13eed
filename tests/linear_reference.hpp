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

/// Checks y[M,N] against act(x W^T + b) computed in double. The bound scales with K and with
/// the sum of |x_k w_k| (the worst-case accumulated rounding of a length-K dot product).
template <class T>
void check_linear(const T* x, const T* w, const T* bias, const T* y, std::size_t m, std::size_t n, std::size_t k,
                  activation act) {
  const double eps = std::numeric_limits<T>::epsilon();
  std::size_t failures = 0;
  for (std::size_t i = 0; i < m && failures < 5; ++i) {
    for (std::size_t j = 0; j < n && failures < 5; ++j) {
      double sum = bias ? static_cast<double>(bias[j]) : 0.0, magnitude = bias ? std::abs(static_cast<double>(bias[j])) : 0.0;
      for (std::size_t kk = 0; kk < k; ++kk) {
        const double term = static_cast<double>(x[i * k + kk]) * static_cast<double>(w[j * k + kk]);
        sum += term;
        magnitude += std::abs(term);
      }
      const double expected = apply(act, sum);
      const double tolerance = 2.0 * static_cast<double>(k + 2) * eps * (magnitude + 1.0);
      const double got = static_cast<double>(y[i * n + j]);
      if (!(std::abs(got - expected) <= tolerance)) {
        ++failures;
        FAIL_CHECK("y[" << i << "][" << j << "] = " << got << ", expected " << expected << " (tolerance " << tolerance << ")");
      }
    }
  }
  CHECK_MESSAGE(failures == 0, "y differs from the double-precision reference");
}

}  // namespace coexec::test
