#pragma once
// Named execution platforms: which OpenCL device plays "the GPU" and which cores run coexec's
// CPU side. The emulated SoC ("pocl-<cores>") is how co-execution is measured on machines
// without an integrated GPU: a PoCL CPU device is partitioned into a sub-device of half the
// cores, and coexec's CPU threads get the other half, so the two sides never share a core.
//
//   pocl-<n>   PoCL sub-device of n/2 compute units + n/2 CPU threads on cores n/2 .. n-1.
//              PoCL's worker threads float over every core unless told otherwise, so
//              platform::named also sets POCL_CPU_MAX_CU_COUNT=n/2, its older name
//              POCL_MAX_PTHREAD_COUNT=n/2 (PoCL 5.0 reads POCL_CPU_MAX_CU_COUNT=1 as 2, the older
//              name as 1) and POCL_AFFINITY=1, unless already set: PoCL then runs n/2 threads
//              pinned to cores 0 .. n/2-1. These must be in the environment before the first
//              OpenCL call of the process. A worker beyond them would sit on the CPU side's first
//              core (PoCL pins worker i to core i), wake there for every command and preempt
//              worker 0, the thread that enqueues and spin-waits: so make_context also confines
//              the threads started while it runs that may run outside the device's cores to them
//              (Linux). On pocl-2, where PoCL 5.0 ran two workers before, the enqueue went from
//              12 to 3 µs, and a CPU part co-executed with the device from 11 µs above its time
//              alone to within 2 µs.
//   nvidia     the NVIDIA GPU + all cores but one for the CPU side (the driver needs one)
//   default    select_device() (COEXEC_PLATFORM / COEXEC_DEVICE) + every core
#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>
#endif

#include "coexec/runtime/context.hpp"

namespace coexec::runtime {

namespace detail {

/// Ids of this process's threads (Linux: /proc/self/task; elsewhere none).
inline std::vector<long> thread_ids() {
  std::vector<long> ids;
#if defined(__linux__)
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task", ec))
    ids.push_back(std::stol(entry.path().filename().string()));
  std::sort(ids.begin(), ids.end());
#endif
  return ids;
}

/// Restricts every thread of this process that is not in `before` (sorted) and may run outside
/// `cores` to `cores`; threads already within them (pinned by their runtime) keep their set. A
/// thread that ended meanwhile is skipped. Linux only; elsewhere, and for empty `cores`, nothing.
inline void confine_threads_started_since([[maybe_unused]] const std::vector<long>& before, [[maybe_unused]] const std::vector<int>& cores) {
#if defined(__linux__)
  if (cores.empty()) return;
  cpu_set_t target;
  CPU_ZERO(&target);
  for (const int core : cores) CPU_SET(core, &target);
  for (const long id : thread_ids()) {
    if (std::binary_search(before.begin(), before.end(), id)) continue;
    const auto tid = static_cast<pid_t>(id);
    cpu_set_t current;
    if (sched_getaffinity(tid, sizeof current, &current) != 0) continue;
    cpu_set_t outside;
    CPU_XOR(&outside, &current, &target);
    CPU_AND(&outside, &outside, &current);
    if (CPU_COUNT(&outside) > 0) sched_setaffinity(tid, sizeof target, &target);
  }
#endif
}

}  // namespace detail

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
  /// Cores of the emulated SoC's device, where make_context confines the OpenCL runtime's
  /// threads (empty: left where they are).
  std::vector<int> device_cores;

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
      const std::string units = std::to_string(cores / 2);
      ::setenv("POCL_CPU_MAX_CU_COUNT", units.c_str(), 0);
      ::setenv("POCL_MAX_PTHREAD_COUNT", units.c_str(), 0);
      ::setenv("POCL_AFFINITY", "1", 0);
      p.cpu_threads = cores / 2;
      for (unsigned c = cores / 2; c < cores; ++c) p.cpu_cores.push_back(static_cast<int>(c));
      for (unsigned c = 0; c < cores / 2; ++c) p.device_cores.push_back(static_cast<int>(c));
      return p;
    }
    throw error(errc::invalid_argument, "unknown platform '" + name + "' (expected pocl-<n>, nvidia or default)");
  }

  /// A context on this platform's device (partitioned for the emulated SoC). Threads that
  /// start while it is made (the OpenCL runtime's) and may run outside device_cores are
  /// confined to them (see the file comment).
  context make_context(context_options options = {}) const {
    options.sub_device_units = device_units;
    const std::vector<long> before = detail::thread_ids();
    context made(select_device(filter), std::move(options));
    detail::confine_threads_started_since(before, device_cores);
    return made;
  }
};

}  // namespace coexec::runtime
