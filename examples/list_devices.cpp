// Lists every OpenCL device with the capabilities coexec cares about.
#include <iostream>

#include "coexec/runtime/device.hpp"

int main() try {
  for (const auto& device : coexec::runtime::devices({})) {
    const auto caps = coexec::runtime::query_capabilities(device);
    std::cout << caps.name << " (" << caps.platform_name << ", " << caps.driver_version << ")\n"
              << "  type " << (caps.is_gpu ? "GPU" : caps.is_cpu ? "CPU" : "other") << ", " << caps.compute_units
              << " compute units, OpenCL C " << caps.opencl_c_major << "." << caps.opencl_c_minor << "\n"
              << "  SVM coarse " << caps.svm_coarse << " fine " << caps.svm_fine << " atomics " << caps.svm_atomics
              << " -> completion by " << (caps.svm_flags() ? "SVM spin flags" : "event polling") << "\n";
  }
} catch (const coexec::error& e) {
  std::cerr << e.what() << "\n";
  return 1;
}
