#pragma once
// Shared by every bench_*.cpp: the --platform switch (pocl-<n>, nvidia, default; also
// COEXEC_BENCH_PLATFORM) and a main() that strips it before Google Benchmark parses argv.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "coexec/cpu/thread_pool.hpp"
#include "coexec/runtime/context.hpp"
#include "coexec/runtime/platform.hpp"

namespace coexec::bench {

/// Untimed runs of a whole network after its first, planning one, before it is timed: online
/// correction moves some plans over their first tens of runs (a new co-executed split settles,
/// is measured, and may give way; on pocl-16 MobileNetV2's layers took 3-25 runs to settle), and
/// a planned network timed before that shows the search rather than the plans. The demo makes as
/// many. On nvidia a plan that still moves also moves weight panels between host and device.
inline constexpr int settling_runs = 30;

inline runtime::platform& current_platform() {
  static runtime::platform p;
  return p;
}

/// The selected platform's context, shared by a suite's benchmarks. Never destroyed: OpenCL
/// objects released during static destruction crash some drivers.
inline runtime::context& shared_context() {
  static auto* ctx = new runtime::context(current_platform().make_context());
  return *ctx;
}
/// The selected platform's CPU side: its threads, pinned to its cores; shared and never destroyed.
inline cpu::thread_pool& shared_pool() {
  static auto* pool = new cpu::thread_pool(current_platform().cpu_threads, current_platform().cpu_cores);
  return *pool;
}

/// Parses and removes --platform=<name> from argv, then runs `register_all` and the benchmarks.
template <class Register>
int run_main(int argc, char** argv, Register&& register_all) {
  std::string name = std::getenv("COEXEC_BENCH_PLATFORM") ? std::getenv("COEXEC_BENCH_PLATFORM") : "default";
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--platform=", 11) == 0) {
      name = argv[i] + 11;
    } else {
      args.push_back(argv[i]);
    }
  }
  int count = static_cast<int>(args.size());
  try {
    current_platform() = runtime::platform::named(name);
    // The benchmark thread is the CPU side's worker 0 and its spin-waiter: keep it off the
    // device's cores (emulated SoC), or it time-slices with a PoCL thread.
    if (!current_platform().cpu_cores.empty()) cpu::pin_current_thread(current_platform().cpu_cores.front());
    benchmark::AddCustomContext("coexec_platform", name);
    register_all();
  } catch (const coexec::error& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace coexec::bench
