#pragma once
// coexec::runtime::context — one device, its cl::Context, an in-order queue, a program cache
// and the registry of SVM allocations made through it. A context is a cheap handle (copies
// share state), so allocators and operators can hold it by value; caches live and die with it,
// never in statics that outlive the OpenCL runtime.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>

#include "coexec/config.hpp"
#include "coexec/detail/hash.hpp"
#include "coexec/runtime/binary_cache.hpp"
#include "coexec/runtime/capabilities.hpp"
#include "coexec/runtime/device.hpp"
#include "coexec/fault_injection.hpp"

namespace coexec::runtime {

/// How a context is created: sub-device partitioning, binary cache location, profiling.
struct context_options {
  /// Emulated SoC: on a partitionable device (a CPU device such as PoCL), run on a sub-device
  /// of this many compute units (clCreateSubDevices by counts), leaving the other cores to
  /// coexec's CPU threads. 0 uses the whole device.
  unsigned sub_device_units = 0;
  /// Directory of the on-disk binary cache; empty disables it. See binary_cache::default_directory.
  std::filesystem::path binary_cache_dir = binary_cache::default_directory();
  /// Create the queue with CL_QUEUE_PROFILING_ENABLE. Unset: where the device shares memory with
  /// the host (fine-grained SVM), so that a device part that finished before the CPU part is
  /// still timed exactly (ops::run_record) and the planner can learn from it; not elsewhere, as on
  /// the H100 it added 10-18 µs to a run of a small layer (PoCL: under 1 µs).
  std::optional<bool> profiling = std::nullopt;
};

/// One OpenCL device with its context, in-order queue, program cache and SVM allocation registry.
/// A cheap handle: copies share state, and the caches live as long as the last copy.
class context {
 public:
  /// The default device (select_device(), which honours COEXEC_PLATFORM / COEXEC_DEVICE).
  explicit context(context_options options = {}) : context(select_device(), std::move(options)) {}

  /// A context on `device` (on a sub-device of it when options.sub_device_units asks for one).
  explicit context(const cl::Device& device, context_options options = {})
      : state_(std::make_shared<state>(device, std::move(options))) {}

  const cl::Context& cl_context() const { return state_->cl_context; }  ///< the underlying OpenCL context
  const cl::Device& device() const { return state_->device; }  ///< the device used (the sub-device when partitioned)
  const capabilities& caps() const { return state_->caps; }  ///< the device's capabilities, queried once
  /// The in-order queue coexec enqueues on. Enqueueing from several host threads is safe
  /// (OpenCL queues are thread-safe); the order between threads is whatever they race to.
  const cl::CommandQueue& queue() const { return state_->queue; }
  const context_options& options() const { return state_->options; }  ///< the options the context was created with

  /// Builds (or returns the cached) program of `source` with the device's build options plus
  /// `options`. Thread-safe. A build failure is errc::build_failure carrying the build log.
  cl::Program program(const std::string& source, const std::string& options = {}) const {
    const std::string full_options = caps().build_options() + (options.empty() ? "" : " " + options);
    const auto key = std::make_pair(coexec::detail::fnv1a(source), full_options);
    std::lock_guard lock(state_->mutex);
    if (auto found = state_->programs.find(key); found != state_->programs.end()) return found->second;
    cl::Program program = build(source, full_options);
    state_->programs.emplace(key, program);
    return program;
  }

  /// A fresh kernel object (kernels hold argument state, so each user gets its own).
  cl::Kernel kernel(const std::string& source, const char* name, const std::string& options = {}) const {
    cl_int status = CL_SUCCESS;
    cl::Kernel k(program(source, options), name, &status);
    coexec::detail::check(status, (std::string("clCreateKernel(") + name + ")").c_str());
    return k;
  }

  /// Drops every cached program (e.g. after changing tuning parameters).
  void purge_caches() const {
    std::lock_guard lock(state_->mutex);
    state_->programs.clear();
  }

  /// Waits until everything enqueued on the queue has finished.
  void finish() const { coexec::detail::check(state_->queue.finish(), "clFinish"); }

  // --- SVM allocation registry: lets operators check that a pointer came from this context
  // and covers the bytes they will touch.
  /// Records an SVM allocation of `bytes` at `begin` made through this context (svm_allocator does).
  void register_svm(const void* begin, std::size_t bytes) const {
    std::lock_guard lock(state_->mutex);
    state_->svm_blocks[reinterpret_cast<std::uintptr_t>(begin)] = bytes;
  }
  /// Forgets the allocation at `begin`, before it is freed.
  void unregister_svm(const void* begin) const {
    std::lock_guard lock(state_->mutex);
    state_->svm_blocks.erase(reinterpret_cast<std::uintptr_t>(begin));
  }
  /// True when [p, p + bytes) lies inside one SVM allocation made through this context.
  bool owns_svm(const void* p, std::size_t bytes) const {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    std::lock_guard lock(state_->mutex);
    auto block = state_->svm_blocks.upper_bound(address);
    if (block == state_->svm_blocks.begin()) return false;
    --block;
    return address + bytes <= block->first + block->second;
  }

  friend bool operator==(const context& a, const context& b) { return a.state_ == b.state_; }

 private:
  struct state {
    state(const cl::Device& root, context_options opts)
        : options(std::move(opts)), device(partition(root, options.sub_device_units)),
          caps(query_capabilities(device)), disk_cache(options.binary_cache_dir) {
      cl_int status = CL_SUCCESS;
      cl_context = cl::Context(device, nullptr, nullptr, nullptr, &status);
      coexec::detail::check(status, "clCreateContext");
      const cl::QueueProperties properties =
          options.profiling.value_or(caps.svm_fine) ? cl::QueueProperties::Profiling : cl::QueueProperties::None;
      queue = cl::CommandQueue(cl_context, device, properties, &status);
      coexec::detail::check(status, "clCreateCommandQueue");
    }
    ~state() { queue.finish(); }  // SVM blocks and programs must not die under running kernels

    context_options options;
    cl::Device device;
    capabilities caps;
    binary_cache disk_cache;
    cl::Context cl_context;
    cl::CommandQueue queue;
    std::mutex mutex;
    std::map<std::pair<std::uint64_t, std::string>, cl::Program> programs;
    std::map<std::uintptr_t, std::size_t> svm_blocks;
  };

  static cl::Device partition(cl::Device root, unsigned units) {
    const auto caps = query_capabilities(root);
    if (units == 0 || units == caps.compute_units) return root;
    if (caps.max_sub_devices < 2)
      throw error(errc::unsupported, "device '" + caps.name + "' cannot be partitioned by counts (emulated SoC needs a CPU device such as PoCL)");
    if (units > caps.compute_units)
      throw error(errc::invalid_argument, "sub_device_units = " + std::to_string(units) + " exceeds the device's " +
                                              std::to_string(caps.compute_units) + " compute units");
    const cl_device_partition_property properties[] = {CL_DEVICE_PARTITION_BY_COUNTS,
                                                       static_cast<cl_device_partition_property>(units),
                                                       CL_DEVICE_PARTITION_BY_COUNTS_LIST_END, 0};
    std::vector<cl::Device> parts;
    coexec::detail::check(root.createSubDevices(properties, &parts), "clCreateSubDevices");
    return parts.at(0);
  }

  cl::Program build(const std::string& source, const std::string& options) const {
    const state& s = *state_;
    const auto build_for_device = [&](cl::Program& program) -> cl_int {
      if (fault_injected(fault::program_build)) return CL_BUILD_PROGRAM_FAILURE;
      return program.build({s.device}, options.c_str());
    };
    cl_int status = CL_SUCCESS;
    if (auto binary = s.disk_cache.load(s.caps, source, options)) {
      cl::Program program(s.cl_context, {s.device}, cl::Program::Binaries{*binary}, nullptr, &status);
      if (status == CL_SUCCESS && build_for_device(program) == CL_SUCCESS) return program;
    }
    cl::Program program(s.cl_context, source, false, &status);
    coexec::detail::check(status, "clCreateProgramWithSource");
    status = build_for_device(program);
    if (status != CL_SUCCESS) {
      std::string log;
      program.getBuildInfo(s.device, CL_PROGRAM_BUILD_LOG, &log);
      throw error(errc::build_failure, "building OpenCL program for '" + s.caps.name + "' with options '" + options +
                                           "' failed (status " + std::to_string(status) + "). Build log:\n" + log,
                  status);
    }
    if (!s.disk_cache.enabled()) return program;  // PoCL's binaries can run to hundreds of MB: fetch none unasked
    std::vector<std::vector<unsigned char>> binaries;
    if (program.getInfo(CL_PROGRAM_BINARIES, &binaries) == CL_SUCCESS && binaries.size() == 1)
      s.disk_cache.store(s.caps, source, options, binaries.front());
    return program;
  }

  std::shared_ptr<state> state_;
};

}  // namespace coexec::runtime

namespace coexec {
using runtime::context;
using runtime::context_options;
}  // namespace coexec
