// Compiles against the packaged headers, links the OpenCL loader and lists the devices. A
// machine without an OpenCL driver passes: the package is what is under test.
#include <coexec/runtime/device.hpp>

#include <iostream>

int main() {
  std::cout << "coexec " << COEXEC_VERSION_STRING << "\n";
  try {
    for (const auto& device : coexec::runtime::devices({}))
      std::cout << "device: " << coexec::runtime::query_capabilities(device).name << "\n";
  } catch (const coexec::error& e) {
    std::cout << "no OpenCL devices (" << coexec::to_string(e.code()) << ")\n";
  }
  return 0;
}
