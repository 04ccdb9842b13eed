// A downstream program: lists the OpenCL devices and, on the default one, round-trips a small
// svm_vector. Having no OpenCL driver or no SVM is reported, not failed: these tests check that
// the package can be found, compiled against and linked, not what the machine offers.
#if __has_include(<coexec/coexec.hpp>)
#include <coexec/coexec.hpp>
#endif
#include <coexec/memory/svm_vector.hpp>
#include <coexec/runtime/device.hpp>

#include <iostream>

int main() {
  std::cout << "coexec " << COEXEC_VERSION_STRING << "\n";
  try {
    for (const auto& device : coexec::runtime::devices({}))
      std::cout << "device: " << coexec::runtime::query_capabilities(device).name << "\n";
  } catch (const coexec::error& e) {
    std::cout << "no devices (" << coexec::to_string(e.code()) << "): " << e.what() << "\n";
    return 0;
  }
  try {
    coexec::runtime::context ctx(coexec::runtime::select_device({}));
    coexec::memory::svm_vector<float> values(ctx, 16);
    {
      auto guard = values.map();
      for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
    }
    float sum = 0;
    {
      auto guard = values.map(CL_MAP_READ);
      for (float v : values.span()) sum += v;
    }
    std::cout << "svm_vector<float>(16) sum " << sum << (values.fine_grained() ? " (fine-grained)\n" : " (coarse-grained)\n");
    if (sum != 120.0f) return 1;
  } catch (const coexec::error& e) {
    std::cout << "svm_vector skipped (" << coexec::to_string(e.code()) << "): " << e.what() << "\n";
  }
  return 0;
}
