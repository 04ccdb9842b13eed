// coexec demo (README quick start, command 1): lists the OpenCL devices with their
// capabilities, then measures on each what a launch costs with clFinish, event polling and
// SVM spinning, and the raw spin-flag round trip.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "coexec/runtime/device.hpp"
#include "coexec/sync/probe.hpp"

namespace {

template <class F>
double mean_us(F&& f, int repeats) {
  f();  // warm-up: kernel compilation and first dispatch
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < repeats; ++i) f();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / repeats;
}

void report(const cl::Device& device) {
  coexec::runtime::context ctx(device);
  const auto& caps = ctx.caps();
  std::printf("\n%s — %s, %u compute units, OpenCL C %d.%d, driver %s\n", caps.name.c_str(), caps.platform_name.c_str(),
              caps.compute_units, caps.opencl_c_major, caps.opencl_c_minor, caps.driver_version.c_str());
  std::printf("  SVM: coarse %s, fine %s, atomics %s -> completion by %s\n", caps.svm_coarse ? "yes" : "no",
              caps.svm_fine ? "yes" : "no", caps.svm_atomics ? "yes" : "no",
              caps.svm_flags() ? "SVM spin flags" : "event polling");
  if (!caps.svm_coarse) {
    std::printf("  (no SVM: skipping the sync measurements)\n");
    return;
  }
  coexec::sync::probe probe(ctx);
  std::printf("  launch + clFinish      %8.2f us\n", mean_us([&] { probe.launch_finish(); }, 200));
  std::printf("  launch + event polling %8.2f us\n", mean_us([&] { probe.launch_poll(); }, 200));
  std::printf("  launch + SVM spin      %8.2f us\n", mean_us([&] { probe.launch_spin(); }, 200));
  if (caps.svm_flags())
    std::printf("  flag round trip        %8.3f us (host -> running kernel -> host)\n",
                std::chrono::duration<double, std::micro>(probe.pingpong(5000)).count());
}

}  // namespace

int main() try {
  std::printf("coexec %s — OpenCL devices and synchronisation costs\n", COEXEC_VERSION_STRING);
  for (const auto& device : coexec::runtime::devices({})) report(device);
} catch (const coexec::error& e) {
  std::cerr << e.what() << "\n";
  return 1;
}
