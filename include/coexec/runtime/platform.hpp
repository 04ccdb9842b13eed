#pragma once
// Named execution platforms: which OpenCL device plays "the GPU" and which cores run coexec's
// CPU side. The emulated SoC ("pocl-<cores>") is how co-execution is measured on machines
// without an integrated GPU: a PoCL CPU device is partitioned into a sub-device of half the
// cores, and coexec's CPU threads get the other half, so the two sides never share a core.
//
//   pocl-<n>   PoCL sub-device of n/2 compute units + n/2 CPU threads on cores n/2 .. n-1.
//              PoCL's worker threads float over every core unless told otherwise, so
//              platform::named also sets POCL_CPU_MAX_CU_COUNT=n/2 and POCL_AFFINITY=1 (unless
//              already set): PoCL then runs n/2 threads pinned to cores 0 .. n/2-1. These must be
//              in the environment before the first OpenCL call of the process.
//   nvidia     the NVIDIA GPU + all cores but one for the CPU side (the driver needs one)
//   default    select_device() (COEXEC_PLATFORM / COEXEC_DEVICE) + every core
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "coexec/runtime/context.hpp"

namespace coexec::runtime {

/// A named execution platform: which OpenCL device plays the GPU and which cores run coexec's
/// CPU side (see the file comment for `pocl-<n>`, `nvidia` and `default`).
struct platform {
  std::string name = "default";  ///< the name it was made from: `default`, `nvidia` or `pocl-<n>`
  device_filter filter = device_filter::from_environment();  ///< selects the device
  unsigned device_units = 0;  ///< sub-device size (0: whole device)
  unsigned cpu_threads = std::max(1u, std::thread::hardware_concurrency());  ///< threads for coexec's CPU side
  /// Cores for the CPU threads (empty: not pinned). Pin the calling thread to the first one
  /// too (cpu::pin_current_thread): it is worker 0 and spin-waits for the device.
  std::vector<int> cpu_cores;

  /// The platform `name` describes; errc::invalid_argument for an unknown name.
  static platform named(const std::string& name) {
    platform p;
    p.name = name;
    if (name == "default" || name.empty()) return p;
    if (name == "nvidia") {
      p.filter = {"NVIDIA", ""};
      p.cpu_threads = std::max(1u, p.cpu_threads - 1);  // one core stays free for the driver's threads
      return p;
    }
    if (name.rfind("pocl-", 0) == 0) {
      unsigned cores = 0;
      try {
        cores = static_cast<unsigned>(std::stoul(name.substr(5)));
      } catch (const std::exception&) {
      }
      require(cores >= 2 && cores % 2 == 0, "platform '" + name + "': pocl-<n> needs an even core count n >= 2");
      p.filter = {"Portable Computing Language", ""};
      p.device_units = cores / 2;
      ::setenv("POCL_CPU_MAX_CU_COUNT", std::to_string(cores / 2).c_str(), 0);
      ::setenv("POCL_AFFINITY", "1", 0);
      p.cpu_threads = cores / 2;
      for (unsigned c = cores / 2; c < cores; ++c) p.cpu_cores.push_back(static_cast<int>(c));
      return p;
    }
    throw error(errc::invalid_argument, "unknown platform '" + name + "' (expected pocl-<n>, nvidia or default)");
  }

  /// A context on this platform's device (partitioned for the emulated SoC).
  context make_context(context_options options = {}) const {
    options.sub_device_units = device_units;
    return context(select_device(filter), std::move(options));
  }
};

}  // namespace coexec::runtime
