// Whole networks as pipelines: BM_Pipeline/<net>/<mode>, net mbv2 (MobileNetV2 224x224) or
// bert (one BERT-base encoder layer, 128 tokens), mode cpu, gpu, coexec_per_layer or
// coexec_streamed. Each network is built and planned once (per_layer runs) and reused.
//
// The counters compare runs of several modes timed in turns (medians over rounds; the loop's own
// time is the benchmark's real_time): the machines' speed drifts between windows of time.
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

  // Runs of `modes` in turns, `rounds` rounds, each run after an untimed one of the same mode
  // (where the device keeps its own weights, nvidia, changing mode moves weight panels): the
  // median whole-run time of each mode, and of each of its steps.
  struct turns {
    std::vector<double> total;               // per mode
    std::vector<std::vector<double>> steps;  // per mode, per step
  };
  turns in_turns(const std::vector<pipe::mode>& modes, int rounds = 9) {
    std::vector<std::vector<double>> totals(modes.size());
    std::vector<std::vector<std::vector<double>>> steps(modes.size(), std::vector<std::vector<double>>(net.size()));
    for (int round = 0; round < rounds; ++round)
      for (std::size_t i = 0; i < modes.size(); ++i) {
        net(modes[i]);
        net(modes[i]);
        totals[i].push_back(net.last_run().seconds);
        for (std::size_t step = 0; step < net.size(); ++step) steps[i][step].push_back(net.last_run().steps[step].seconds);
      }
    turns t;
    for (std::size_t i = 0; i < modes.size(); ++i) {
      t.total.push_back(plan::median(totals[i]));
      t.steps.emplace_back();
      for (auto& samples : steps[i]) t.steps.back().push_back(plan::median(samples));
    }
    return t;
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
  n.net(m);  // warm-up
  double total = 0;
  for (auto _ : state) {
    n.net(m);
    total += n.net.last_run().seconds;
  }
  if (m == pipe::mode::streamed && n.net.last_run().mode != m) state.SetLabel("fell back to per_layer: no SVM atomics");
  const bool co_executed = m == pipe::mode::per_layer || m == pipe::mode::streamed;
  const double steps = static_cast<double>(n.net.size());
  if (co_executed) {
    // In turns: both sides alone (the ideal), per_layer (the steps' own times) and this mode.
    const auto t = n.in_turns({pipe::mode::cpu_only, pipe::mode::device_only, pipe::mode::per_layer, m});
    double ideal = 0;
    for (std::size_t i = 0; i < n.net.size(); ++i) ideal += pipe::ideal_seconds(n.net.last_run().steps[i].co_executed, t.steps[0][i], t.steps[1][i]);
    const double alone = std::accumulate(t.steps[2].begin(), t.steps[2].end(), 0.0);
    state.counters["overhead_us_per_layer"] = (t.total[3] - alone) * 1e6 / steps;
    state.counters["ideal_ms"] = ideal * 1e3;
    state.counters["of_ideal"] = ideal / t.total[3];
  } else {
    const auto t = n.in_turns({m});
    state.counters["overhead_us_per_layer"] = (t.total[0] - std::accumulate(t.steps[0].begin(), t.steps[0].end(), 0.0)) * 1e6 / steps;
  }
  state.counters["layers"] = steps;
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
