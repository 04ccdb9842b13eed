#pragma once
// Activations fused into the operators' epilogues, identical on the CPU and device sides.
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace coexec {

/// Activation fused into an operator's epilogue; its value is the kernel_code().
enum class activation {
  none,   ///< identity
  relu,   ///< max(v, 0)
  relu6,  ///< min(max(v, 0), 6)
  gelu    ///< exact erf form: 0.5 v (1 + erf(v / sqrt 2))
};

namespace detail {

// e^x for x <= 0 in float with no libm call and no floating-point select, so that loops over it
// vectorise (GCC will not if-convert a float select under its default -ftrapping-math; an
// integer one it will): e^x = 2^n e^r, with n = round(x / ln 2) put into the exponent bits, r
// exact (ln 2 in two parts, the first exact in few bits) and e^r by its Taylor polynomial to
// degree 7 (relative error 5e-9 for |r| <= ln 2 / 2). |x| is capped at 87 (comparing bit
// patterns, which order like the magnitudes), where 2^n stays a normal float: e^-87 = 1.6e-38,
// nothing beside the sums softmax adds it to.
[[gnu::always_inline]] constexpr float exp_nonpositive(float x) noexcept {
  const std::int32_t magnitude = std::bit_cast<std::int32_t>(x) & 0x7fffffff;
  constexpr std::int32_t cap = std::bit_cast<std::int32_t>(87.0f);
  x = -std::bit_cast<float>(magnitude < cap ? magnitude : cap);
  const float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;  // round(x / ln 2): 1.5 * 2^23 shifts the fraction out
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  const float exp_r = 1 + r * (1 + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
  return exp_r * std::bit_cast<float>((static_cast<std::int32_t>(n) + 127) << 23);
}

// Float gelu with no libm call and no floating-point select, so that its loops vectorise.
// std::erf is a scalar call per output: BERT's FFN-up step on pocl-2 took 7.7 ms with it and
// 6.4 ms with this (one demo run each).
//
// Abramowitz & Stegun 7.1.26: for z = |v| / sqrt 2, erfc(z) = t (a1 + t (a2 + ... a5)) e^(-z^2)
// with t = 1 / (1 + p z), within 1.5e-7 of it. 1 + erf(v / sqrt 2) is then 2 - erfc(z) for
// v >= 0 and erfc(z) below, with no cancellation. Past z = 9.3 erfc is 0 to float: z is capped
// there, so that -z^2 stays within exp_nonpositive's range, and erfc is set to 0.
[[gnu::always_inline]] constexpr float gelu(float v) noexcept {
  const std::int32_t bits = std::bit_cast<std::int32_t>(v), magnitude = bits & 0x7fffffff;
  constexpr std::int32_t cap = std::bit_cast<std::int32_t>(9.3f * 1.41421356f);
  const float z = std::bit_cast<float>(magnitude < cap ? magnitude : cap) * 0.707106781f;
  const float exp_x = exp_nonpositive(-z * z);
  const float t = 1.0f / (1.0f + 0.3275911f * z);
  const float capped_erfc = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f)))) * exp_x;
  const float erfc = std::bit_cast<float>(std::bit_cast<std::int32_t>(capped_erfc) & (magnitude < cap ? -1 : 0));  // 0 past the cap
  const std::int32_t negative = bits >> 31;  // all ones for v < 0 (and -0)
  const std::int32_t one_plus_erf = (std::bit_cast<std::int32_t>(2.0f - erfc) & ~negative) | (std::bit_cast<std::int32_t>(erfc) & negative);
  return 0.5f * v * std::bit_cast<float>(one_plus_erf);
}

}  // namespace detail

/// Applies `act` to one value. gelu is the exact erf form, as torch.nn.functional.gelu: in float
/// within 2e-7 (relative to max(|v|, 1)) of it, computed so that loops vectorise (detail::gelu).
template <class T>
[[gnu::always_inline]] constexpr T apply(activation act, T v) noexcept {
  switch (act) {
    case activation::relu: return v > T(0) ? v : T(0);
    case activation::relu6: return v < T(0) ? T(0) : (v > T(6) ? T(6) : v);
    case activation::gelu:
      if constexpr (std::is_same_v<T, float>) return detail::gelu(v);
      else return T(0.5) * v * (T(1) + std::erf(v * T(0.70710678118654752440)));
    case activation::none: break;
  }
  return v;
}

/// Integer code passed to kernels as `-DCOEXEC_ACT=<n>`; kernels/activation.cl reads the same numbers.
constexpr int kernel_code(activation act) noexcept { return static_cast<int>(act); }

}  // namespace coexec
