#pragma once
// Double-precision reference for conv2d (the definition in coexec::conv2d_shape, computed
// literally) and the tolerance check the conv2d tests use.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "coexec/activation.hpp"
#include "coexec/cpu/conv.hpp"
#include "linear_reference.hpp"

namespace coexec::test {

/// y[n][o][i][j] of act(conv2d(x, w) + bias) computed in double (bias may be null).
template <class T>
expected_value conv_expected(const conv2d_shape& s, const T* x, const T* w, const T* bias, std::size_t n, std::size_t o,
                             std::size_t i, std::size_t j, activation act) {
  const std::size_t g = o / s.group_out_channels();
  double sum = bias ? double(bias[o]) : 0.0, magnitude = std::abs(sum);
  for (std::size_t c = 0; c < s.group_channels(); ++c)
    for (std::size_t kh = 0; kh < s.kernel_h; ++kh)
      for (std::size_t kw = 0; kw < s.kernel_w; ++kw) {
        const long ih = long(i * s.stride_h + kh * s.dilation_h) - long(s.pad_top);
        const long iw = long(j * s.stride_w + kw * s.dilation_w) - long(s.pad_left);
        if (ih < 0 || iw < 0 || ih >= long(s.height) || iw >= long(s.width)) continue;
        const double term = double(w[((o * s.group_channels() + c) * s.kernel_h + kh) * s.kernel_w + kw]) *
                            double(x[((n * s.channels + g * s.group_channels() + c) * s.height + ih) * s.width + iw]);
        sum += term;
        magnitude += std::abs(term);
      }
  return expected_output<T>(sum, magnitude, s.patch(), act);
}

/// Checks y against act(conv2d(x, w) + bias) computed in double (conv_expected). Like
/// check_linear, the bound scales with the patch size and the sum of |x * w| over the window.
template <class T>
void check_conv(const conv2d_shape& s, const T* x, const T* w, const T* bias, const T* y, activation act) {
  const std::size_t oh_count = s.out_height(), ow_count = s.out_width();
  std::size_t failures = 0;
  for (std::size_t n = 0; n < s.batch; ++n)
    for (std::size_t o = 0; o < s.out_channels && failures < 5; ++o)
      for (std::size_t i = 0; i < oh_count; ++i)
        for (std::size_t j = 0; j < ow_count; ++j) {
          const expected_value expected = conv_expected(s, x, w, bias, n, o, i, j, act);
          const double got = double(y[((n * s.out_channels + o) * oh_count + i) * ow_count + j]);
          if (!expected.admits(got) && ++failures <= 5)
            FAIL_CHECK("y[" << n << "][" << o << "][" << i << "][" << j << "] = " << got << ", expected " << expected.value
                            << " (tolerance " << expected.tolerance << ")");
        }
  CHECK_MESSAGE(failures == 0, "y differs from the double-precision reference");
}

}  // namespace coexec::test
