#pragma once
// What a device can do, read once: SVM granularity and atomics, the OpenCL C version and
// features (atomic scopes differ between drivers), sizes, vendor quirks. Kernels are built
// with defines derived from this value instead of ad-hoc checks.
#include <algorithm>
#include <cstdio>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "coexec/config.hpp"

namespace coexec::runtime {

/// Finest shared virtual memory a device supports.
enum class svm_granularity {
  none,    ///< no SVM
  coarse,  ///< coarse-grained buffers: the host maps and unmaps to access them
  fine     ///< fine-grained buffers: host and device access them concurrently
};

/// What a device can do, read once by query_capabilities(); kernels are built with defines
/// derived from it (build_options()) instead of ad-hoc checks.
struct capabilities {
  /// CL_DEVICE_NAME, CL_DEVICE_VENDOR, CL_DRIVER_VERSION and CL_DEVICE_VERSION.
  /// @{
  std::string name, vendor, driver_version, device_version;
  /// @}
  std::string platform_name;  ///< CL_PLATFORM_NAME of the device's platform
  /// CL_DEVICE_TYPE includes CPU / GPU.
  /// @{
  bool is_cpu = false, is_gpu = false;
  /// @}
  /// CL_DEVICE_SVM_CAPABILITIES: coarse-grained buffers, fine-grained buffers, SVM atomics.
  /// @{
  bool svm_coarse = false, svm_fine = false, svm_atomics = false;
  /// @}
  /// @{
  int opencl_c_major = 1, opencl_c_minor = 2;  ///< newest OpenCL C version the compiler accepts
  /// @}
  std::vector<std::string> opencl_c_features;  ///< CL_DEVICE_OPENCL_C_FEATURES (3.0 devices)
  /// cl_khr_fp16 / cl_khr_fp64 are among the device's extensions.
  /// @{
  bool fp16 = false, fp64 = false;
  /// @}
  unsigned compute_units = 0;  ///< CL_DEVICE_MAX_COMPUTE_UNITS
  std::size_t max_work_group_size = 0;  ///< CL_DEVICE_MAX_WORK_GROUP_SIZE
  std::size_t local_mem_size = 0;  ///< CL_DEVICE_LOCAL_MEM_SIZE in bytes
  bool local_mem_is_global = false;  ///< "local" memory is ordinary global memory (CPU devices, Mali)
  unsigned max_sub_devices = 0;      ///< more than 1 when the device can be partitioned by counts

  /// True when opencl_c_features lists `feature` (e.g. "__opencl_c_atomic_order_acq_rel").
  bool has_feature(const std::string& feature) const {
    return std::find(opencl_c_features.begin(), opencl_c_features.end(), feature) != opencl_c_features.end();
  }
  /// The finest SVM granularity the device supports.
  svm_granularity svm() const {
    return svm_fine ? svm_granularity::fine : svm_coarse ? svm_granularity::coarse : svm_granularity::none;
  }
  bool opencl_c_2_or_newer() const { return opencl_c_major >= 2; }  ///< the compiler accepts OpenCL C 2.0 or newer
  /// Kernels may signal the host through atomics in fine-grained SVM (else: event polling).
  bool svm_flags() const { return svm_fine && svm_atomics && opencl_c_2_or_newer() && atomic_acq_rel(); }
  /// Kernels may use acquire-release atomic ordering (OpenCL C 2.x, or the 3.0 feature).
  bool atomic_acq_rel() const {
    return opencl_c_major == 2 || has_feature("__opencl_c_atomic_order_acq_rel");
  }
  /// memory_scope_all_svm_devices is the right scope for host-visible flags; PoCL 3.1 lacks it
  /// and gets memory_scope_device, which on a CPU device is the same memory system.
  bool atomic_scope_all_devices() const {
    return opencl_c_major == 2 || has_feature("__opencl_c_atomic_scope_all_devices");
  }
  bool is_pocl() const { return platform_name.find("Portable Computing Language") != std::string::npos; }  ///< the device's platform is PoCL (Portable Computing Language)
  bool is_nvidia() const { return vendor.find("NVIDIA") != std::string::npos; }  ///< the vendor is NVIDIA

  /// -cl-std and -D defines every coexec kernel is built with on this device.
  std::string build_options() const {
    std::string options = "-cl-std=CL" + std::to_string(opencl_c_major) + "." + std::to_string(opencl_c_minor);
    options += " -DCOEXEC_SVM_FLAGS=" + std::string(svm_flags() ? "1" : "0");
    if (svm_flags())
      options += std::string(" -DCOEXEC_ATOMIC_SCOPE=") +
                 (atomic_scope_all_devices() ? "memory_scope_all_svm_devices" : "memory_scope_device");
    if (fp64) options += " -DCOEXEC_HAS_FP64=1";
    return options;
  }
};

namespace detail {

template <cl_device_info Info, class Value>
Value device_info(const cl::Device& device, Value fallback) {
  Value value{};
  return device.getInfo(Info, &value) == CL_SUCCESS ? value : fallback;
}

// "OpenCL C 1.2 PoCL" -> {1, 2}
inline std::pair<int, int> parse_version(const std::string& text, const std::string& prefix) {
  auto at = text.find(prefix);
  if (at == std::string::npos) return {1, 2};
  int major = 1, minor = 2;
  if (std::sscanf(text.c_str() + at + prefix.size(), "%d.%d", &major, &minor) != 2) return {1, 2};
  return {major, minor};
}

}  // namespace detail

/// Reads the capabilities of `device` (a handful of clGetDeviceInfo calls).
inline capabilities query_capabilities(const cl::Device& device) {
  using detail::device_info;
  capabilities caps;
  caps.name = device_info<CL_DEVICE_NAME>(device, std::string{});
  caps.vendor = device_info<CL_DEVICE_VENDOR>(device, std::string{});
  caps.driver_version = device_info<CL_DRIVER_VERSION>(device, std::string{});
  caps.device_version = device_info<CL_DEVICE_VERSION>(device, std::string{});
  cl_platform_id platform = device_info<CL_DEVICE_PLATFORM>(device, cl_platform_id{});
  caps.platform_name = cl::Platform(platform, true).getInfo<CL_PLATFORM_NAME>();
  const auto type = device_info<CL_DEVICE_TYPE>(device, cl_device_type{});
  caps.is_cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
  caps.is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;

  const auto svm = device_info<CL_DEVICE_SVM_CAPABILITIES>(device, cl_device_svm_capabilities{});
  caps.svm_coarse = (svm & CL_DEVICE_SVM_COARSE_GRAIN_BUFFER) != 0;
  caps.svm_fine = (svm & CL_DEVICE_SVM_FINE_GRAIN_BUFFER) != 0;
  caps.svm_atomics = (svm & CL_DEVICE_SVM_ATOMICS) != 0;

  // Newest accepted OpenCL C: the 3.0 query lists every version, older devices report one.
  // Only 3.0 devices are asked the 3.0 queries: an older one may answer them anyway (Oclgrind
  // 21.10, an OpenCL 1.2 device, lists OpenCL C 3.0, which its compiler then rejects).
  const bool opencl_3 = detail::parse_version(caps.device_version, "OpenCL ").first >= 3;
  std::vector<cl_name_version> versions;
  if (opencl_3 && device.getInfo(CL_DEVICE_OPENCL_C_ALL_VERSIONS, &versions) == CL_SUCCESS && !versions.empty()) {
    cl_version newest = 0;
    for (const auto& v : versions) newest = std::max(newest, v.version);
    caps.opencl_c_major = static_cast<int>(CL_VERSION_MAJOR(newest));
    caps.opencl_c_minor = static_cast<int>(CL_VERSION_MINOR(newest));
  } else {
    std::tie(caps.opencl_c_major, caps.opencl_c_minor) =
        detail::parse_version(device_info<CL_DEVICE_OPENCL_C_VERSION>(device, std::string{}), "OpenCL C ");
  }
  std::vector<cl_name_version> features;
  if (opencl_3 && device.getInfo(CL_DEVICE_OPENCL_C_FEATURES, &features) == CL_SUCCESS)
    for (const auto& f : features) caps.opencl_c_features.emplace_back(f.name);

  const auto extensions = device_info<CL_DEVICE_EXTENSIONS>(device, std::string{});
  caps.fp16 = extensions.find("cl_khr_fp16") != std::string::npos;
  caps.fp64 = extensions.find("cl_khr_fp64") != std::string::npos;
  caps.compute_units = device_info<CL_DEVICE_MAX_COMPUTE_UNITS>(device, cl_uint{});
  caps.max_work_group_size = device_info<CL_DEVICE_MAX_WORK_GROUP_SIZE>(device, std::size_t{});
  caps.local_mem_size = static_cast<std::size_t>(device_info<CL_DEVICE_LOCAL_MEM_SIZE>(device, cl_ulong{}));
  caps.local_mem_is_global =
      device_info<CL_DEVICE_LOCAL_MEM_TYPE>(device, cl_device_local_mem_type{CL_GLOBAL}) == CL_GLOBAL;
  std::vector<cl_device_partition_property> partitions;
  if (device.getInfo(CL_DEVICE_PARTITION_PROPERTIES, &partitions) == CL_SUCCESS &&
      std::find(partitions.begin(), partitions.end(), CL_DEVICE_PARTITION_BY_COUNTS) != partitions.end())
    caps.max_sub_devices = device_info<CL_DEVICE_PARTITION_MAX_SUB_DEVICES>(device, cl_uint{});
  return caps;
}

}  // namespace coexec::runtime
