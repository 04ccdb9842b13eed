#pragma once
// Shared by every bench_*.cpp: the --platform switch (pocl-<n>, nvidia, default; also
// COEXEC_BENCH_PLATFORM) and a main() that strips it before Google Benchmark parses argv.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "coexec/cpu/thread_pool.hpp"
#include "coexec/plan/grid_search.hpp"
#include "coexec/runtime/context.hpp"
#include "coexec/runtime/platform.hpp"

namespace coexec::bench {

/// Untimed runs of a planned layer or network after its first, planning one, before it is timed:
/// online correction moves some plans over their first tens of runs (a new co-executed split
/// settles, is measured, and may give way; on pocl-16 MobileNetV2's layers took 3-25 runs to
/// settle), and a plan timed before that shows the search rather than the plan. The demo makes
/// as many. On nvidia a plan that still moves also moves weight panels between host and device.
inline constexpr int settling_runs = 30;

/// Seconds per call of each of `calls`, timed under the same conditions: in turns, for at least
/// `seconds` and 9 rounds (plan::time_in_turns, as the oracle times its candidates). A mode timed
/// in a window of its own meets the machine of that moment: on the 2-core development machine
/// one layer's CPU side took 3.5 ms in one window and 1.9 ms in the next, so ratios of such
/// windows (speedup, efficiency, oracle / planned) moved by more than the differences they measure.
inline std::vector<double> interleaved_seconds(const std::vector<std::function<void()>>& calls, double seconds = 0.3) {
  struct by_index {
    const std::vector<std::function<void()>>& calls;
    void run(std::size_t i) { calls[i](); }
  } op{calls};
  std::vector<std::size_t> indices(calls.size());
  std::iota(indices.begin(), indices.end(), std::size_t{0});
  // A round takes each call's untimed run and at least half a millisecond of timed runs.
  double round_seconds = 0;
  for (const double t : plan::time_in_turns(op, indices, 1)) round_seconds += t + std::max(t, 0.5e-3);
  return plan::time_in_turns(op, indices, static_cast<int>(std::clamp(std::ceil(seconds / round_seconds), 9.0, 10000.0)));
}

/// interleaved_seconds(calls) once per `key`, remembered: Google Benchmark calls a benchmark
/// several times, growing its iterations, and reports only the last call's counters.
inline const std::vector<double>& interleaved_once(const std::string& key, const std::vector<std::function<void()>>& calls) {
  static auto* timed = new std::map<std::string, std::vector<double>>;
  std::vector<double>& t = (*timed)[key];
  if (t.empty()) t = interleaved_seconds(calls);
  return t;
}

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
