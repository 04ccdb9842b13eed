// Activations fused into kernel epilogues, the device twin of include/coexec/activation.hpp.
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
// In float as coexec::detail::gelu: 1 + erf(v / sqrt 2) from erfc(|v| / sqrt 2) by Abramowitz &
// Stegun 7.1.26 (within 1.5e-7), with the builtin exp, which costs PoCL less than its erf; in
// double with erf. The sizeof test folds when the program is built.
#define COEXEC_GELU_Z(v) (fabs(v) * (T)0.70710678118654752440)
#define COEXEC_GELU_T(v) ((T)1 / ((T)1 + (T)0.3275911 * COEXEC_GELU_Z(v)))
#define COEXEC_GELU_POLY(t) \
  ((t) * ((T)0.254829592 + (t) * ((T)-0.284496736 + (t) * ((T)1.421413741 + (t) * ((T)-1.453152027 + (t) * (T)1.061405429)))))
#define COEXEC_GELU_ERFC(v) (COEXEC_GELU_POLY(COEXEC_GELU_T(v)) * exp(-COEXEC_GELU_Z(v) * COEXEC_GELU_Z(v)))
#define COEXEC_ACTIVATE(v)                                                                                         \
  ((T)0.5 * (v) *                                                                                                  \
   (sizeof(T) == 4 ? ((v) < (T)0 ? COEXEC_GELU_ERFC(v) : (T)2 - COEXEC_GELU_ERFC(v))                             \
                   : (T)1 + erf((v) * (T)0.70710678118654752440)))
#else
#define COEXEC_ACTIVATE(v) (v)
#endif
