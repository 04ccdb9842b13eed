#pragma once
// GENERATED from kernels/activation.cl by cmake/embed_kernels.cmake; edit the .cl file instead.
#include <string>

namespace coexec::kernels {

inline const std::string& activation() {
  static const std::string source = [] {
    const char* parts[] = {
      R"coexec_cl(// Activations fused into kernel epilogues, the device twin of include/coexec/activation.hpp.
// Built after kernels/sync.cl and before the operator's source, with
//   T            float or double
//   COEXEC_ACT   coexec::kernel_code(activation): 0 none, 1 relu, 2 relu6, 3 gelu (exact erf)
// COEXEC_ACTIVATE is a macro so one definition serves T and its vector types (the builtins
// below are generic); its argument must be free of side effects.

#if COEXEC_HAS_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#if COEXEC_ACT == 1
#define COEXEC_ACTIVATE(v) fmax((v), (T)0)
#elif COEXEC_ACT == 2
#define COEXEC_ACTIVATE(v) clamp((v), (T)0, (T)6)
#elif COEXEC_ACT == 3
#define COEXEC_ACTIVATE(v) ((T)0.5 * (v) * ((T)1 + erf((v) * (T)0.70710678118654752440)))
#else
#define COEXEC_ACTIVATE(v) (v)
#endif
)coexec_cl",
    };
    std::string joined;
    for (const char* part : parts) joined += part;
    return joined;
  }();
  return source;
}

}  // namespace coexec::kernels
