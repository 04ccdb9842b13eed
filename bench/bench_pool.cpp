// Cost of one thread_pool::run() of an empty task: publishing it, waking the spinning workers
// and waiting for all of them. This is the fixed overhead every CPU-side layer pays.
// BM_Pool/after_wait/<state> times the same run after the caller waited 200 µs (as it waits for
// a device part), past the workers' spin: `asleep` wakes them from sleep, `kept_awake` held
// keep_awake() through the wait.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <optional>

#include "coexec/cpu/thread_pool.hpp"

namespace {

void pool_wake(benchmark::State& state) {
  coexec::cpu::thread_pool pool;
  for (auto _ : state) pool.run([](std::size_t, std::size_t) {});
}
BENCHMARK(pool_wake)->Name("BM_Pool/wake")->UseRealTime();

void pool_after_wait(benchmark::State& state, bool kept_awake) {
  using clock = std::chrono::steady_clock;
  coexec::cpu::thread_pool pool;
  for (auto _ : state) {
    std::optional<coexec::cpu::thread_pool::awake> awake;
    if (kept_awake) awake.emplace(pool.keep_awake());
    const auto waited = clock::now() + std::chrono::microseconds(200);
    while (clock::now() < waited) {
    }
    const auto start = clock::now();
    pool.run([](std::size_t, std::size_t) {});
    state.SetIterationTime(std::chrono::duration<double>(clock::now() - start).count());
  }
}
BENCHMARK_CAPTURE(pool_after_wait, asleep, false)->Name("BM_Pool/after_wait/asleep")->UseManualTime();
BENCHMARK_CAPTURE(pool_after_wait, kept_awake, true)->Name("BM_Pool/after_wait/kept_awake")->UseManualTime();

}  // namespace

BENCHMARK_MAIN();
