#pragma once
// Device discovery and selection. The default is the first GPU, else the first device with
// fine-grained SVM, else any device; COEXEC_PLATFORM / COEXEC_DEVICE override it with a
// case-insensitive name substring or an index. Nothing here runs at static-initialisation time.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "coexec/config.hpp"
#include "coexec/runtime/capabilities.hpp"

namespace coexec::runtime {

/// A platform and a device pattern: empty matches all, digits select by index, anything else
/// is a case-insensitive substring of the name.
struct device_filter {
  std::string platform;  ///< pattern for the platform name or index
  std::string device;  ///< pattern for the device name or index within a matching platform

  /// The filter COEXEC_PLATFORM and COEXEC_DEVICE describe.
  static device_filter from_environment() {
    auto read = [](const char* name) { const char* v = std::getenv(name); return std::string(v ? v : ""); };
    return {read("COEXEC_PLATFORM"), read("COEXEC_DEVICE")};
  }
};

namespace detail {

inline std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

inline bool is_index(const std::string& pattern) {
  return !pattern.empty() && std::all_of(pattern.begin(), pattern.end(), [](unsigned char c) { return std::isdigit(c); });
}

inline bool matches(const std::string& pattern, const std::string& name, std::size_t index) {
  if (pattern.empty()) return true;
  if (is_index(pattern)) return std::stoul(pattern) == index;
  return lowercase(name).find(lowercase(pattern)) != std::string::npos;
}

}  // namespace detail

/// All OpenCL platforms. A loader with no driver (CL_PLATFORM_NOT_FOUND_KHR, -1001) or an
/// empty list is errc::no_platform.
inline std::vector<cl::Platform> platforms() {
  std::vector<cl::Platform> list;
  const cl_int status = cl::Platform::get(&list);
  if (status == CL_PLATFORM_NOT_FOUND_KHR || (status == CL_SUCCESS && list.empty()))
    throw error(errc::no_platform,
                "no OpenCL platform found: the ICD loader has no driver registered "
                "(install one, e.g. pocl-opencl-icd, or check /etc/OpenCL/vendors)",
                status);
  coexec::detail::check(status, "clGetPlatformIDs");
  return list;
}

/// Devices that pass `filter`, in platform order then device order.
inline std::vector<cl::Device> devices(const device_filter& filter = device_filter::from_environment()) {
  std::vector<cl::Device> result;
  const auto all_platforms = platforms();
  for (std::size_t p = 0; p < all_platforms.size(); ++p) {
    if (!detail::matches(filter.platform, all_platforms[p].getInfo<CL_PLATFORM_NAME>(), p)) continue;
    std::vector<cl::Device> list;
    if (all_platforms[p].getDevices(CL_DEVICE_TYPE_ALL, &list) != CL_SUCCESS) continue;
    for (std::size_t d = 0; d < list.size(); ++d)
      if (detail::matches(filter.device, list[d].getInfo<CL_DEVICE_NAME>(), d)) result.push_back(list[d]);
  }
  return result;
}

/// The device coexec uses by default: first GPU, else first fine-grained SVM device, else the first.
inline cl::Device select_device(const device_filter& filter = device_filter::from_environment()) {
  const auto candidates = devices(filter);
  if (candidates.empty())
    throw error(errc::no_device, "no OpenCL device matches platform filter '" + filter.platform +
                                     "' and device filter '" + filter.device + "' (COEXEC_PLATFORM / COEXEC_DEVICE)");
  for (const auto& d : candidates)
    if (d.getInfo<CL_DEVICE_TYPE>() & CL_DEVICE_TYPE_GPU) return d;
  for (const auto& d : candidates)
    if (query_capabilities(d).svm_fine) return d;
  return candidates.front();
}

}  // namespace coexec::runtime
