// Whole networks as pipelines: BM_Pipeline/<net>/<mode>, net mbv2 (MobileNetV2 224x224) or
// bert (one BERT-base encoder layer, 128 tokens), mode cpu, gpu, coexec_per_layer or
// coexec_streamed. Each network is built and planned once (per_layer runs) and reused.
//
// Counter overhead_us_per_layer: (the pipeline's time - the sum of its steps' own times) /
// steps, where a step's own time is its median over runs that execute the steps one at a time
// (the mode's own runs for cpu and gpu, per_layer runs for both co-executed modes). Streamed
// dispatch hides behind compute, so its overhead is expected near the flag round trip, or
// below zero. flag_round_trip_us: that round trip (host -> running kernel -> host) for reference.
// Co-executed modes also report ideal_ms, the sum over steps of pipe::ideal_seconds (each layer
// at its own 1 + t_min/t_max, from the steps' median times in cpu and gpu runs), and of_ideal =
// ideal_ms / the pipeline's time.
//
//   bench_pipeline --platform=pocl-2 --benchmark_filter=BM_Pipeline/mbv2
#include <algorithm>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "coexec/pipe/networks.hpp"
#include "coexec/sync/probe.hpp"
#include "common.hpp"

namespace {

using namespace coexec;

// One network on the platform's device and CPU, planned.
struct network {
  context ctx = bench::current_platform().make_context();
  cpu::thread_pool pool{bench::current_platform().cpu_threads, bench::current_platform().cpu_cores};
  pipeline<float> net{ctx, pool};

  explicit network(const std::string& name) {
    name == "mbv2" ? static_cast<void>(pipe::add_mobilenet_v2(net, ctx, pool, 224, 1)) : static_cast<void>(pipe::add_bert_layer(net, ctx, pool, 128, 2));
    std::fill(net.input_data().begin(), net.input_data().end(), 0.5f);
    // Plans every layer (the first run), then lets online correction settle.
    for (int run = 0; run <= bench::settling_runs; ++run) net(pipe::mode::per_layer);
  }

  // Each step's median time in `m` runs, which run the steps one at a time. The first run is
  // untimed: where the device keeps its own weights (nvidia), changing mode moves weight panels.
  std::vector<double> step_medians(pipe::mode m, int runs = 5) {
    std::vector<std::vector<double>> samples(net.size());
    net(m);
    for (int r = 0; r < runs; ++r) {
      net(m);
      for (std::size_t i = 0; i < net.size(); ++i) samples[i].push_back(net.last_run().steps[i].seconds);
    }
    std::vector<double> medians;
    for (auto& s : samples) {
      std::nth_element(s.begin(), s.begin() + s.size() / 2, s.end());
      medians.push_back(s[s.size() / 2]);
    }
    return medians;
  }

  // The sum of the steps' ideal co-executed times (pipe::ideal_seconds), from their single sides.
  double ideal() {
    const std::vector<double> cpu = step_medians(pipe::mode::cpu_only), device = step_medians(pipe::mode::device_only);
    double sum = 0;
    for (std::size_t i = 0; i < net.size(); ++i) sum += pipe::ideal_seconds(net.last_run().steps[i].co_executed, cpu[i], device[i]);
    return sum;
  }
};

// Leaked on purpose, as bench_linear's fixtures: OpenCL objects released during static
// destruction crash some drivers.
network& get(const std::string& name) {
  static std::map<std::string, network*> built;
  network*& slot = built[name];
  if (!slot) slot = new network(name);
  return *slot;
}

void BM_Pipeline(benchmark::State& state, const std::string& name, pipe::mode m) {
  network& n = get(name);
  const bool co_executed = m == pipe::mode::per_layer || m == pipe::mode::streamed;
  const double ideal = co_executed ? n.ideal() : 0;
  const std::vector<double> alone_steps = n.step_medians(co_executed ? pipe::mode::per_layer : m);
  const double alone = std::accumulate(alone_steps.begin(), alone_steps.end(), 0.0);
  n.net(m);  // warm-up
  double total = 0;
  for (auto _ : state) {
    n.net(m);
    total += n.net.last_run().seconds;
  }
  if (m == pipe::mode::streamed && n.net.last_run().mode != m) state.SetLabel("fell back to per_layer: no SVM atomics");
  const double mean = total / static_cast<double>(state.iterations());
  state.counters["overhead_us_per_layer"] = (mean - alone) * 1e6 / static_cast<double>(n.net.size());
  state.counters["layers"] = static_cast<double>(n.net.size());
  if (co_executed) {
    state.counters["ideal_ms"] = ideal * 1e3;
    state.counters["of_ideal"] = ideal / mean;
  }
  if (n.ctx.caps().svm_flags())
    state.counters["flag_round_trip_us"] = std::chrono::duration<double, std::micro>(sync::probe(n.ctx).pingpong(1000)).count();
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run_main(argc, argv, [] {
    const std::pair<const char*, pipe::mode> modes[] = {{"cpu", pipe::mode::cpu_only},
                                                        {"gpu", pipe::mode::device_only},
                                                        {"coexec_per_layer", pipe::mode::per_layer},
                                                        {"coexec_streamed", pipe::mode::streamed}};
    for (const char* net : {"mbv2", "bert"})
      for (const auto& [label, m] : modes)
        benchmark::RegisterBenchmark((std::string("BM_Pipeline/") + net + "/" + label).c_str(),
                                     [net = std::string(net), m = m](benchmark::State& state) { BM_Pipeline(state, net, m); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
  });
}
