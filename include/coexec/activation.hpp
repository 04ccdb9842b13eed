#pragma once
// Activations fused into the operators' epilogues, identical on the CPU and device sides.
#include <cmath>

namespace coexec {

/// Activation fused into an operator's epilogue; its value is the kernel_code().
enum class activation {
  none,   ///< identity
  relu,   ///< max(v, 0)
  relu6,  ///< min(max(v, 0), 6)
  gelu    ///< exact erf form: 0.5 v (1 + erf(v / sqrt 2))
};

/// Applies `act` to one value. gelu is the exact erf form, as torch.nn.functional.gelu.
template <class T>
constexpr T apply(activation act, T v) noexcept {
  switch (act) {
    case activation::relu: return v > T(0) ? v : T(0);
    case activation::relu6: return v < T(0) ? T(0) : (v > T(6) ? T(6) : v);
    case activation::gelu: return T(0.5) * v * (T(1) + std::erf(v * T(0.70710678118654752440)));
    case activation::none: break;
  }
  return v;
}

/// Integer code passed to kernels as `-DCOEXEC_ACT=<n>`; kernels/activation.cl reads the same numbers.
constexpr int kernel_code(activation act) noexcept { return static_cast<int>(act); }

}  // namespace coexec
