// Synchronisation costs per launch of a tiny kernel, and the raw flag round trip:
//   BM_Sync/finish      enqueue + clFinish
//   BM_Sync/event_poll  enqueue + flush + poll the event
//   BM_Sync/svm_spin    enqueue + flush + spin on the SVM counter the kernel bumps
//   BM_Sync/pingpong    host -> device -> host through spin flags, kernel already running
// Run: bench_sync --platform=pocl-2 --benchmark_format=json
#include "coexec/sync/probe.hpp"
#include "common.hpp"

namespace {

using coexec::bench::current_platform;

// One probe for the whole run, built lazily so kernel compilation is never timed. Deliberately
// never destroyed: releasing OpenCL objects during static destruction crashes some drivers.
coexec::sync::probe& shared_probe() {
  static auto* probe = new coexec::sync::probe(current_platform().make_context());
  return *probe;
}

template <void (coexec::sync::probe::*Launch)()>
void launch_loop(benchmark::State& state) {
  auto& probe = shared_probe();
  (probe.*Launch)();  // warm-up
  for (auto _ : state) (probe.*Launch)();
  state.SetLabel(probe.completion_mode() == coexec::sync::completion::mode::svm_counter ? "svm_counter" : "event_polling");
}

void pingpong(benchmark::State& state) {
  auto& probe = shared_probe();
  try {
    probe.pingpong(10);
  } catch (const coexec::error& e) {
    state.SkipWithError(e.what());
    return;
  }
  // Each iteration reports the mean of `rounds` round trips as its time, so bound the
  // iterations explicitly (->Iterations) rather than by accumulated manual time.
  constexpr std::uint32_t rounds = 1000;
  for (auto _ : state) state.SetIterationTime(std::chrono::duration<double>(probe.pingpong(rounds)).count());
}

}  // namespace

int main(int argc, char** argv) {
  return coexec::bench::run_main(argc, argv, [] {
    benchmark::RegisterBenchmark("BM_Sync/finish", launch_loop<&coexec::sync::probe::launch_finish>)->UseRealTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_Sync/event_poll", launch_loop<&coexec::sync::probe::launch_poll>)->UseRealTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_Sync/svm_spin", launch_loop<&coexec::sync::probe::launch_spin>)->UseRealTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_Sync/pingpong", pingpong)->UseManualTime()->Iterations(300)->Unit(benchmark::kMicrosecond);
  });
}
