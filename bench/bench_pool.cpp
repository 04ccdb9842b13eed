// Cost of one thread_pool::run() of an empty task: publishing it, waking the spinning workers
// and waiting for all of them. This is the fixed overhead every CPU-side layer pays.
#include <benchmark/benchmark.h>

#include <cstddef>

#include "coexec/cpu/thread_pool.hpp"

namespace {

void pool_wake(benchmark::State& state) {
  coexec::cpu::thread_pool pool;
  for (auto _ : state) pool.run([](std::size_t, std::size_t) {});
}
BENCHMARK(pool_wake)->Name("BM_Pool/wake")->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
