// Synchronisation costs per launch of a tiny kernel, and the raw flag round trip:
//   BM_Sync/finish      enqueue + clFinish
//   BM_Sync/event_poll  enqueue + flush + poll the event
//   BM_Sync/svm_spin    enqueue + flush + spin on the SVM counter the kernel bumps
//   BM_Sync/pingpong    host -> device -> host through spin flags, kernel already running
//   BM_Transfer/<KiB>/<write|read>/<pageable|pinned>   one staging copy (clEnqueueWrite/ReadBuffer
//                       + event polling) from or into std::vector or io_buffer's pinned memory
// Run: bench_sync --platform=pocl-2 --benchmark_format=json
#include <optional>
#include <string>
#include <vector>

#include "coexec/gpu/gemm.hpp"
#include "coexec/memory/io_buffer.hpp"
#include "coexec/sync/probe.hpp"
#include "common.hpp"

namespace {

using coexec::bench::current_platform;

// One context and one probe for the whole run, built lazily so kernel compilation is never
// timed. Deliberately never destroyed: releasing OpenCL objects during static destruction
// crashes some drivers.
const coexec::runtime::context& shared_context() {
  static const auto* ctx = new coexec::runtime::context(current_platform().make_context());
  return *ctx;
}
coexec::sync::probe& shared_probe() {
  static auto* probe = new coexec::sync::probe(shared_context());
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

// One staging copy of `kib` KiB between a device buffer and host memory, as staging operators
// copy x in and y out: pageable (a std::vector) or pinned (io_buffer's host memory).
void transfer(benchmark::State& state, std::size_t kib, bool write, bool pinned) {
  const coexec::runtime::context& ctx = shared_context();
  const std::size_t count = kib * 1024 / sizeof(float);
  std::vector<float> pageable(pinned ? 0 : count);
  std::optional<coexec::io_buffer<float>> pinned_memory;
  if (pinned) pinned_memory.emplace(ctx, count, false);
  float* host = pinned ? pinned_memory->data() : pageable.data();
  const cl::Buffer device = coexec::gpu::make_buffer<float>(ctx, count);
  for (auto _ : state) {
    cl::Event done;
    coexec::detail::check(write ? ctx.queue().enqueueWriteBuffer(device, CL_FALSE, 0, kib * 1024, host, nullptr, &done)
                                : ctx.queue().enqueueReadBuffer(device, CL_FALSE, 0, kib * 1024, host, nullptr, &done),
                          "transfer");
    coexec::detail::check(ctx.queue().flush(), "clFlush");
    coexec::sync::spin_until([&] { return coexec::sync::completion::event_complete(done); }, coexec::sync::default_timeout, "transfer");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kib * 1024));
  if (pinned && !pinned_memory->pinned()) state.SetLabel("the driver refused to pin: pageable");
}

}  // namespace

int main(int argc, char** argv) {
  return coexec::bench::run_main(argc, argv, [] {
    benchmark::RegisterBenchmark("BM_Sync/finish", launch_loop<&coexec::sync::probe::launch_finish>)->UseRealTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_Sync/event_poll", launch_loop<&coexec::sync::probe::launch_poll>)->UseRealTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_Sync/svm_spin", launch_loop<&coexec::sync::probe::launch_spin>)->UseRealTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_Sync/pingpong", pingpong)->UseManualTime()->Iterations(300)->Unit(benchmark::kMicrosecond);
    for (const std::size_t kib : {16, 200, 1600, 6400})
      for (const bool write : {true, false})
        for (const bool pinned : {false, true})
          benchmark::RegisterBenchmark(("BM_Transfer/" + std::to_string(kib) + (write ? "/write/" : "/read/") + (pinned ? "pinned" : "pageable")).c_str(),
                                       [=](benchmark::State& state) { transfer(state, kib, write, pinned); })
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
  });
}
