#pragma once
// GENERATED from kernels/gate.cl by cmake/embed_kernels.cmake; edit the .cl file instead.
#include <string>

namespace coexec::kernels {

inline const std::string& gate() {
  static const std::string source = [] {
    const char* parts[] = {
      R"coexec_cl(// A gate on the in-order queue: pipelines enqueue it just before a layer's kernels, which
// therefore start only once the host raised `flag` to `expected` (the layer's input is ready).
// An abort (COEXEC_ABORT) opens it too, so a failed pipeline never leaves a kernel spinning.
// Built after kernels/sync.cl.

__kernel void coexec_gate(__global uint* flag, uint expected) {
  __local int outcome;
  coexec_wait_host(flag, expected, &outcome);
}
)coexec_cl",
    };
    std::string joined;
    for (const char* part : parts) joined += part;
    return joined;
  }();
  return source;
}

}  // namespace coexec::kernels
