// plan::predicted on operators whose times are analytic functions of the split (deterministic,
// no timing noise), then with trained models from files and headers, the roofline fallback,
// and inside ops::linear; linear and conv2d tell a planner whether it may explore.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/conv2d.hpp"
#include "coexec/ops/linear.hpp"
#include "coexec/plan/predicted.hpp"
#include "coexec/plan/split_plan.hpp"
#include "linear_reference.hpp"
#include "support.hpp"

using namespace coexec;
using predict::side;

namespace {

// Time in us of a side as a function of its FLOPs: a fixed cost plus a rate.
struct side_cost {
  double fixed_us, flops_per_us;
  double us(double flops) const { return fixed_us + flops / flops_per_us; }
};

// A model with analytic predictions, each side's scaled by a bias.
struct analytic_model {
  side_cost cpu, gpu;
  double cpu_bias = 1, gpu_bias = 1;
  double predict_us(side s, const predict::linear_features::vector& f) const {
    const double flops = f[predict::linear_features::flops];
    return s == side::cpu ? cpu_bias * cpu.us(flops) : gpu_bias * gpu.us(flops);
  }
};

// The interface linear offers its planner, with times that are exactly `truth`'s.
struct analytic_op {
  gemm_shape shape;
  analytic_model truth;
  std::size_t granule = 16;
  double overhead_us = 0;  // what a co-executed run takes beyond its slower side
  bool moves_weights = false;  // moving the split moves weights between the sides: the planner explores rarely
  // Added to the first run of a co-executed split after a run of another: a slow enqueue before
  // the CPU part (a cold kernel launch), after which the device finishes first.
  double cold_us = 0;
  double device_slowdown = 1;  // of the device part of every run: a preempted device thread
  double dispatch_us = 0;      // the host's enqueue of the device part, which the CPU part waits for
  std::size_t previous_split = SIZE_MAX;
  ops::run_record last{};
  const ops::run_record& last_record() const { return last; }

  bool split_moves_weights() const { return moves_weights; }
  std::size_t columns() const { return shape.n; }
  std::size_t split_granule() const { return granule; }
  std::size_t tile = 0;  // the device's work-group tile where it has one: a part tile costs a whole one
  std::size_t tile_granule() const { return tile != 0 ? tile : granule; }
  std::size_t element_size() const { return sizeof(float); }
  std::size_t cpu_threads() const { return 4; }
  gpu::gemm_config device_config() const { return gpu::gemm_config::local(64, 64, 16, 4, 8, 4); }
  predict::device_profile device_profile() const { return {8, 20.0}; }

  double seconds(side s, std::size_t split) const {
    std::size_t cols = s == side::cpu ? split : shape.n - split;
    if (s == side::gpu && tile != 0) cols = (cols + tile - 1) / tile * tile;
    return cols == 0 ? 0 : 1e-6 * (s == side::cpu ? truth.cpu : truth.gpu).us(2.0 * shape.m * cols * shape.k);
  }
  // The CPU part's time from the run's start: it begins once the device part is enqueued.
  double cpu_path_seconds(std::size_t split) const { return seconds(side::cpu, split) + (split < shape.n ? dispatch_us * 1e-6 : 0); }
  // As linear measures it: the device is timed from its enqueue to the run's end, exactly only
  // when it finished last (the host sees a device that finished first at the CPU's end).
  void run(std::size_t split) {
    const double cpu_path = cpu_path_seconds(split), gpu = device_slowdown * seconds(side::gpu, split);
    const bool co_executed = split > 0 && split < shape.n, cold = co_executed && split != previous_split;
    previous_split = split;
    const double total = std::max(cpu_path, gpu) + (co_executed ? overhead_us * 1e-6 : 0) + (cold ? cold_us * 1e-6 : 0);
    last = {split, seconds(side::cpu, split), total, total, gpu >= cpu_path && !cold};
    last.dispatch_seconds = split < shape.n ? dispatch_us * 1e-6 : 0;
  }
  // Runs the plan of `planner` `runs` times, showing it each run; returns the splits run.
  template <class Planner>
  std::vector<std::size_t> run_planned(Planner& planner, int runs) {
    std::vector<std::size_t> splits;
    for (int run_index = 0; run_index < runs; ++run_index) {
      splits.push_back(planner.choose(shape, *this));
      run(splits.back());
      planner.observe(shape, last);
    }
    return splits;
  }
  // The oracle: every aligned split scored on the true times (grid_search without the noise).
  std::size_t best_split() const {
    const auto total = [&](std::size_t s) { return std::max(cpu_path_seconds(s), seconds(side::gpu, s)); };
    std::size_t best = 0;
    for (std::size_t s : plan::aligned_splits(shape.n, granule))
      if (total(s) < total(best)) best = s;
    return best;
  }
};

using analytic_planner = plan::predicted<gemm_shape, analytic_model>;

constexpr gemm_shape bert_ffn{128, 3072, 768};

// On bert_ffn the oracle split co-executes 1.7x faster than the faster side alone: 12.1 ms
// against 20.2 ms. Co-executed, the CPU finishes last on the device-faster machine and the
// device on the CPU-faster one.
constexpr analytic_model device_faster{{5, 2e4}, {20, 3e4}}, cpu_faster{{5, 3e4}, {20, 2e4}};
constexpr double small_overhead_us = 2000, large_overhead_us = 10000;  // under and over the 8 ms gain

std::filesystem::path shipped_model_file() {
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "models" / "pocl-2.model";
}

// The device alone takes 10 ms against the CPU's 18, and co-executing no less than the CPU's
// fixed 12 ms. But the device ran 3x slower while the planner anchored it (30 ms: timing noise on
// the lent machine reaches 3x), so the plan settles on the CPU.
constexpr analytic_model device_fast_alone{{12000, 1e5}, {8000, 3e5}};

analytic_op anchored_in_slow_period(analytic_planner& planner, bool moves_weights = false) {
  analytic_op op{bert_ffn, device_fast_alone, 16, 0, moves_weights};
  op.truth.gpu = {3 * op.truth.gpu.fixed_us, op.truth.gpu.flops_per_us / 3};
  REQUIRE(planner.choose(bert_ffn, op) == bert_ffn.n);
  op.truth = device_fast_alone;
  return op;
}

bool all_cpu(const std::vector<std::size_t>& splits) {
  return std::all_of(splits.begin(), splits.end(), [](std::size_t s) { return s == bert_ffn.n; });
}

constexpr std::size_t explore_every = plan::correction_options{}.explore_every;
constexpr std::size_t explore_runs = plan::correction_options{}.explore_runs;
// Runs between explorations of an alternative as fast as the plan (their least).
constexpr std::size_t exploration_period = explore_every * explore_runs;

// Runs of `splits` other than `plan`, as [first, last] index ranges of consecutive runs.
std::vector<std::pair<std::size_t, std::size_t>> explorations_in(const std::vector<std::size_t>& splits, std::size_t plan) {
  std::vector<std::pair<std::size_t, std::size_t>> found;
  for (std::size_t i = 0; i < splits.size(); ++i)
    if (splits[i] != plan) {
      if (!found.empty() && found.back().second + 1 == i)
        found.back().second = i;
      else
        found.push_back({i, i});
    }
  return found;
}

// Plans the device alone and keeps what the operator said of moving the split moving weights.
template <class Choice>
struct weights_probe {
  std::optional<bool> moves_weights{};
  template <class Key, class Op>
  Choice choose(const Key&, Op& op) {
    if constexpr (requires { op.split_moves_weights(); }) moves_weights = op.split_moves_weights();
    return Choice{};
  }
};

}  // namespace

TEST_CASE("predicted picks the optimum wherever the curves cross, endpoints included") {
  struct scenario {
    const char* name;
    analytic_model model;
  };
  const scenario scenarios[] = {
      {"balanced", {{5, 2e4}, {20, 2e4}}},
      {"device 3x faster", {{5, 2e4}, {20, 6e4}}},
      {"CPU 5x faster", {{5, 1e5}, {20, 2e4}}},
      {"device hopeless: N", {{5, 1e5}, {1e6, 1e3}}},
      {"CPU hopeless: 0", {{1e6, 1e3}, {20, 1e5}}},
  };
  for (const scenario& s : scenarios) {
    CAPTURE(s.name);
    for (const gemm_shape shape : {bert_ffn, gemm_shape{1, 4096, 4096}, gemm_shape{32, 1000, 1280}, gemm_shape{8, 40, 64}}) {
      CAPTURE(shape.n);
      analytic_op op{shape, s.model};
      analytic_planner planner(s.model);
      CHECK(planner.choose(shape, op) == op.best_split());
    }
  }
}

TEST_CASE("predicted scores a handful of candidates, not all of them") {
  const gemm_shape shape{1, 4096, 4096};
  analytic_op op{shape, {{5, 2e4}, {20, 3e4}}};
  analytic_planner planner(op.truth);
  planner.choose(shape, op);
  const std::size_t candidates = plan::aligned_splits(shape.n, op.granule).size();  // 257
  MESSAGE(planner.predictions() << " predictions for " << candidates << " candidates");
  CHECK(planner.predictions() <= 2 * 16);
  CHECK(planner.predictions() * 8 < 2 * candidates);
}

TEST_CASE("predicted caches plans per shape") {
  analytic_op op{bert_ffn, {{5, 2e4}, {20, 3e4}}};
  analytic_planner planner(op.truth);
  const std::size_t split = planner.choose(bert_ffn, op);
  const std::size_t after_first = planner.predictions();
  CHECK(planner.choose(bert_ffn, op) == split);
  CHECK(planner.predictions() == after_first);
  analytic_op other{{64, 3072, 768}, op.truth};
  planner.choose(other.shape, other);
  CHECK(planner.predictions() > after_first);
  const std::size_t before_clear = planner.predictions();
  planner.clear();
  CHECK(planner.choose(bert_ffn, op) == split);
  CHECK(planner.predictions() > before_clear);
}

TEST_CASE("online correction converges to the oracle split within a few runs under a 30% bias") {
  const analytic_model truth{{5, 2e4}, {20, 3e4}};
  struct bias {
    std::string name;
    double cpu, gpu;
  };
  // Overestimating the device is the hard case: it then finishes first and is timed only as
  // an upper bound.
  for (const bias& b : {bias{"device 30% slower than predicted", 1, 1 / 1.3}, bias{"device 30% faster", 1, 1.3},
                       bias{"CPU 30% slower", 1 / 1.3, 1}, bias{"CPU 30% faster", 1.3, 1}}) {
    CAPTURE(b.name);
    analytic_op op{bert_ffn, truth};
    analytic_model biased = truth;
    biased.cpu_bias = b.cpu;
    biased.gpu_bias = b.gpu;
    analytic_planner planner(biased, {.anchor_endpoints = false});  // the correction alone
    const std::size_t oracle = op.best_split();
    std::vector<std::size_t> splits;
    for (int run = 0; run < 10; ++run) {
      splits.push_back(planner.choose(bert_ffn, op));
      op.run(splits.back());
      planner.observe(bert_ffn, op.last);
    }
    CAPTURE(oracle);
    CAPTURE(splits[0]);
    CAPTURE(splits[2]);
    CAPTURE(splits[4]);
    CHECK(splits.front() != oracle);  // the bias matters
    // At most three corrections, each once its plan settled (correction_options::settle_runs, 2).
    CHECK(std::all_of(splits.begin() + 6, splits.end(), [&](std::size_t s) { return s == oracle; }));
  }
}

TEST_CASE("anchoring on measured endpoints plans the oracle split from the first run under a 30% bias") {
  const analytic_model truth{{5, 2e4}, {20, 3e4}};
  for (const auto& biases : {std::pair{1.0, 1 / 1.3}, std::pair{1.0, 1.3}, std::pair{1 / 1.3, 1.0}, std::pair{1.3, 1.0}}) {
    const double cpu_bias = biases.first, gpu_bias = biases.second;  // not a structured binding: CAPTURE is a lambda (clang 14)
    CAPTURE(cpu_bias);
    CAPTURE(gpu_bias);
    analytic_op op{bert_ffn, truth};
    analytic_model biased = truth;
    biased.cpu_bias = cpu_bias;
    biased.gpu_bias = gpu_bias;
    analytic_planner planner(biased);
    CHECK(planner.choose(bert_ffn, op) == op.best_split());
  }
}

// A CPU whose runs speed up as its caches and clocks warm: its k-th run alone takes
// 1 + 4 * 0.6^k times its true time (the lent machine's Xeon took 294, 143, 138 and 111 µs on
// its first runs of a layer it then ran in 17 µs).
struct warming_op : analytic_op {
  double excess = 4;
  void run(std::size_t split) {
    analytic_op::run(split);
    if (split != shape.n) return;
    last.cpu_seconds *= 1 + excess;
    last.total_seconds = last.device_seconds = last.cpu_seconds;
    excess *= 0.6;
  }
};

TEST_CASE("anchoring times each side until its runs stop getting faster") {
  // The CPU alone takes 10.0 ms, the device alone 18.0, and co-executing at least the device's
  // fixed 12 ms: the CPU alone is best. Its 1st to 3rd timed runs take 3.4, 2.4 and 1.9 times
  // that; its 8th, 1.07 times.
  const analytic_model truth{{4000, 1e5}, {12000, 1e5}};
  warming_op op{{bert_ffn, truth}};
  REQUIRE(op.best_split() == bert_ffn.n);
  analytic_planner planner(truth);
  CHECK(planner.choose(bert_ffn, op) == bert_ffn.n);

  // Capped at 3 timed runs, the CPU is anchored at 1.9 times its time and the plan gives the
  // device work.
  warming_op capped{{bert_ffn, truth}};
  analytic_planner three_runs(truth, {.anchor_max_runs = 3});
  CHECK(three_runs.choose(bert_ffn, capped) < bert_ffn.n);
}

// A CPU whose first run after runs without it takes 3x as long (cold caches, sleeping workers).
struct cold_cpu_op : analytic_op {
  bool cpu_ran_last = false;
  void run(std::size_t split) {
    const bool cold = split > 0 && !cpu_ran_last;
    cpu_ran_last = split > 0;
    const double cpu = seconds(side::cpu, split) * (cold ? 3 : 1), gpu = seconds(side::gpu, split), total = std::max(cpu, gpu);
    last = {split, cpu, total, total, gpu >= cpu};
  }
};

TEST_CASE("an exploration runs until its alternative is warm") {
  // The CPU alone takes 10.0 ms, the device alone 12.6 (and co-executing at least its fixed 12
  // ms), but the CPU ran 10x slower while the planner anchored it, so the plan settles on the
  // device. Exploring the CPU after runs of the device meets it cold, 3x slower, once.
  const analytic_model truth{{4000, 1e5}, {12000, 1e6}};
  const auto settled_on_device = [&](const plan::correction_options& options) {
    analytic_planner planner(truth, options);
    cold_cpu_op op{{bert_ffn, truth}};
    op.truth.cpu = {10 * truth.cpu.fixed_us, truth.cpu.flops_per_us / 10};
    REQUIRE(planner.choose(bert_ffn, op) == 0);
    op.truth = truth;
    for (std::size_t run = 0; run < 20 * exploration_period; ++run) {
      op.run(planner.choose(bert_ffn, op));
      planner.observe(bert_ffn, op.last);
    }
    return planner.planned(bert_ffn) == std::optional<std::size_t>(0);
  };
  CHECK_FALSE(settled_on_device({}));
  // One run per exploration only ever times the CPU cold.
  CHECK(settled_on_device({.anchor_max_runs = 1, .explore_runs = 1}));
}

// A CPU that runs 6x slower for its first 5 ms of runs after the device ran (on the lent machine
// the CPU sides of pocl-16 and nvidia did so after device phases: 125 µs for 46 runs, then 20).
struct slow_spell_op : analytic_op {
  double spell_left_us = 5000;  // the device just ran
  void run(std::size_t split) {
    if (split < shape.n) spell_left_us = 5000;
    double cpu = seconds(side::cpu, split);
    if (split > 0 && spell_left_us > 0) {
      cpu *= 6;
      spell_left_us -= cpu * 1e6;
    }
    const double gpu = seconds(side::gpu, split), total = std::max(cpu, gpu);
    last = {split, cpu, total, total, gpu >= cpu};
  }
};

TEST_CASE("anchoring times each side for anchor_seconds at least, past a slow spell") {
  // ResNet-50's classifier at M = 1: the CPU alone takes 20 µs, the device alone 49 µs, and
  // co-executing at least the device's fixed 45 µs.
  constexpr gemm_shape fc{1, 1000, 2048};
  const analytic_model truth{{15, 8.2e5}, {45, 1e6}};
  const auto anchored = [&](const plan::correction_options& options) {
    slow_spell_op op{{fc, truth}};
    analytic_planner planner(truth, options);
    return planner.choose(fc, op);
  };
  CHECK(anchored({}) == fc.n);
  // Anchored by runs alone, the CPU is timed inside the spell (120 µs) and loses to the device.
  CHECK(anchored({.anchor_seconds = 0}) == 0);
}

TEST_CASE("without co-execution overhead the plan stays at the oracle split and learns none") {
  for (const analytic_model& truth : {device_faster, cpu_faster}) {
    analytic_op op{bert_ffn, truth};
    analytic_planner planner(truth);
    const std::vector<std::size_t> splits = op.run_planned(planner, 6);
    CAPTURE(splits.back());
    CHECK(std::all_of(splits.begin(), splits.end(), [&](std::size_t s) { return s == op.best_split(); }));
    CHECK(planner.estimate(bert_ffn, op.best_split()).overhead == 0);
  }
}

TEST_CASE("a learned co-execution overhead moves the plan to a single side when it outweighs the gain") {
  // Without anchoring no single side is measured, so the guard cannot act: only the overhead moves the plan.
  const analytic_model truth = device_faster;
  analytic_op op{bert_ffn, truth, 16, large_overhead_us};
  analytic_planner planner(truth, {.anchor_endpoints = false});
  const std::size_t first = planner.choose(bert_ffn, op);
  REQUIRE(first == op.best_split());
  const std::vector<std::size_t> splits = op.run_planned(planner, 4);
  CHECK(splits.back() == 0);  // the device alone
  const auto co_executed = planner.estimate(bert_ffn, first);
  CHECK(co_executed.overhead == doctest::Approx(large_overhead_us * 1e-6));
  CHECK(co_executed.total() == doctest::Approx(std::max(co_executed.cpu, co_executed.gpu) + large_overhead_us * 1e-6));
  CHECK(planner.estimate(bert_ffn, 0).overhead == 0);
  CHECK(planner.estimate(bert_ffn, bert_ffn.n).overhead == 0);

  op.overhead_us = small_overhead_us;  // smaller than the gain: co-execution still pays
  analytic_planner still_co_executing(truth, {.anchor_endpoints = false});
  const std::size_t last = op.run_planned(still_co_executing, 6).back();
  CAPTURE(last);
  CHECK(last > 0);
  CHECK(last < bert_ffn.n);
  CHECK(still_co_executing.estimate(bert_ffn, last).overhead > 0);
}

TEST_CASE("a new co-executed plan settles before it teaches anything: a cold first run does not move it") {
  // The first run of each new split enqueues slowly, for twice the layer's time: alone, that
  // run would teach an overhead that makes co-executing look slower than either side.
  analytic_op op{bert_ffn, device_faster, 16, small_overhead_us};
  op.cold_us = 40000;
  analytic_planner planner(device_faster);
  REQUIRE(planner.choose(bert_ffn, op) == op.best_split());
  const std::vector<std::size_t> splits = op.run_planned(planner, 20);
  CHECK(std::all_of(splits.begin(), splits.end(), [&](std::size_t s) { return s == op.best_split(); }));
  CHECK(planner.estimate(bert_ffn, op.best_split()).overhead == doctest::Approx(small_overhead_us * 1e-6));
}

TEST_CASE("one slow run does not move a co-executed plan off co-executing") {
  // On pocl-2 one co-executed run in hundreds of MobileNetV2's b15 project layer had its device
  // part take 5.5x its time. Taken at face value, it nearly quintupled the device's correction
  // and the plan went to the CPU alone, where only explorations time the device again. Even a
  // smaller rise moves the plan to a split where the device finishes first and is known only by
  // an upper bound, so the inflated correction would stay.
  analytic_op op{bert_ffn, device_faster, 16, small_overhead_us};
  analytic_planner planner(device_faster);
  REQUIRE(planner.choose(bert_ffn, op) == op.best_split());
  op.run_planned(planner, 5);
  op.device_slowdown = 6;
  op.run_planned(planner, 1);
  op.device_slowdown = 1;
  const std::vector<std::size_t> splits = op.run_planned(planner, 6);
  CHECK(std::all_of(splits.begin(), splits.end(), [&](std::size_t s) { return s > 0 && s < bert_ffn.n; }));
  CHECK(splits.back() == op.best_split());
}

TEST_CASE("the host's enqueue before the CPU part moves the split towards the device, not off co-executing") {
  // On PoCL the enqueue wakes the device's threads: 15-30 µs before the CPU part starts, a large
  // part of a 100 µs layer. Taken as an overhead on top of the split that balances the sides, it
  // kept that split, where the CPU finishes last, or moved the plan to the CPU alone.
  analytic_op op{bert_ffn, device_faster};
  const std::size_t balanced = op.best_split();
  op.dispatch_us = 1500;
  REQUIRE(op.best_split() < balanced - 4 * op.granule);
  analytic_planner planner(device_faster);
  const std::vector<std::size_t> splits = op.run_planned(planner, 10);
  CHECK(std::all_of(splits.begin(), splits.end(), [&](std::size_t s) { return s == op.best_split(); }));
  const auto at_plan = planner.estimate(bert_ffn, splits.back());
  CHECK(at_plan.dispatch == doctest::Approx(op.dispatch_us * 1e-6));
  CHECK(at_plan.overhead == doctest::Approx(0).epsilon(1e-9));
  CHECK(at_plan.total() == doctest::Approx(std::max(op.cpu_path_seconds(splits.back()), op.seconds(side::gpu, splits.back()))));
}

TEST_CASE("the guard moves a co-executed plan measured slower than the faster single side to that side") {
  // Re-planning off: neither the corrections nor the overhead can move the plan, only the guard.
  const plan::correction_options guard_only{.replan_change = 1e9};
  struct scenario {
    const char* name;
    analytic_model truth;
    double overhead_us;
    std::optional<std::size_t> single_side;  // where one run moves the plan; empty: it stays
  };
  for (const scenario& s : {scenario{"device faster alone", device_faster, large_overhead_us, 0},
                            scenario{"CPU faster alone", cpu_faster, large_overhead_us, bert_ffn.n},
                            scenario{"co-execution still pays", device_faster, small_overhead_us, std::nullopt}}) {
    CAPTURE(s.name);
    analytic_op op{bert_ffn, s.truth, 16, s.overhead_us};
    analytic_planner planner(s.truth, guard_only);
    REQUIRE(planner.choose(bert_ffn, op) == op.best_split());
    // The plan settles (settle_runs, 2), then one run moves it.
    CHECK(op.run_planned(planner, 3).back() == s.single_side.value_or(op.best_split()));
  }
}

TEST_CASE("single-side runs refresh the measured single-side time") {
  // Each machine is best on one side alone (the other side's fixed cost exceeds it), until that
  // side turns 3x slower: once a whole window of runs is slow its measured time rises, and
  // co-executing wins. Fewer slow runs are noise to the planner: the plan stays.
  struct scenario {
    const char* name;
    analytic_model truth;
    std::size_t alone;
  };
  for (const scenario& s : {scenario{"CPU alone", {{5, 1e5}, {8000, 1e5}}, bert_ffn.n}, scenario{"device alone", {{8000, 1e5}, {5, 1e5}}, 0}}) {
    CAPTURE(s.name);
    analytic_op op{bert_ffn, s.truth};
    analytic_planner planner(s.truth);
    REQUIRE(planner.choose(bert_ffn, op) == s.alone);
    (s.alone == 0 ? op.truth.gpu : op.truth.cpu).flops_per_us /= 3;
    const auto splits = op.run_planned(planner, int(plan::recent_minimum::window) + 1);
    CHECK(splits[plan::recent_minimum::window - 1] == s.alone);  // after window - 1 slow runs (and the anchoring ones)
    const std::size_t split = splits.back();
    CAPTURE(split);
    CHECK(split > 0);
    CHECK(split < bert_ffn.n);
  }
}

TEST_CASE("runs of each side alone given before the first plan anchor it instead of the planner's own") {
  // A pipeline times each side alone over its network, where a layer's data is evicted by the
  // others; the planner's own anchoring would time the layer in a loop. The network's runs say
  // the device alone took 3x its loop time, so the plan goes to the CPU without running the layer.
  analytic_op op{bert_ffn, device_fast_alone};
  analytic_planner planner(device_fast_alone);
  const double cpu_alone = op.seconds(side::cpu, bert_ffn.n), device_alone = 3 * op.seconds(side::gpu, 0);
  for (int pass = 0; pass < 3; ++pass) {
    planner.anchor_with(bert_ffn, ops::run_record{.split = 0, .device_seconds = device_alone, .total_seconds = device_alone});
    planner.anchor_with(bert_ffn, ops::run_record{.split = bert_ffn.n, .cpu_seconds = cpu_alone, .total_seconds = cpu_alone});
  }
  CHECK(planner.choose(bert_ffn, op) == bert_ffn.n);
  CHECK(op.previous_split == SIZE_MAX);  // not run: the given runs anchored it
  CHECK(planner.estimate(bert_ffn, 0).gpu == doctest::Approx(device_alone));

  // Runs of one side only leave the anchoring to the planner, which times the device as it is.
  analytic_op other{bert_ffn, device_fast_alone};
  analytic_planner own(device_fast_alone);
  own.anchor_with(bert_ffn, ops::run_record{.split = 0, .device_seconds = device_alone, .total_seconds = device_alone});
  CHECK(own.choose(bert_ffn, other) == 0);
  CHECK(other.previous_split != SIZE_MAX);
}

TEST_CASE("where the device works in tiles, the plan leaves it whole tiles") {
  // A part tile costs the device a whole one, a step no factor per side can model: aligned to
  // the panels only, a plan can give the device a part tile it pays in full.
  analytic_op op{bert_ffn, device_faster};
  op.tile = 192;
  analytic_planner planner(device_faster);
  const std::vector<std::size_t> splits = op.run_planned(planner, 40);
  CHECK(std::all_of(splits.begin(), splits.end(), [](std::size_t s) { return s % 192 == 0; }));
  // The best split by the tiled truth, among the panel-aligned ones, is a tile boundary.
  const std::size_t best = op.best_split();
  CAPTURE(best);
  CHECK(splits.back() == best);
}

TEST_CASE("exploration times the side a plan does not use and moves a plan anchored in a slow period") {
  analytic_planner planner(device_fast_alone);
  analytic_op op = anchored_in_slow_period(planner);
  REQUIRE(op.best_split() == 0);
  const std::vector<std::size_t> splits = op.run_planned(planner, int(3 * exploration_period));
  CHECK(all_cpu({splits.begin(), splits.begin() + exploration_period}));  // never within explore_every runs per exploring run
  CAPTURE(splits.back());
  CHECK(splits.back() == 0);
}

TEST_CASE("where moving the split moves weights, exploration is explore_every_unshared runs apart") {
  // Moving the split there moves weight panels between host and device, at a cost the runs' times
  // do not show: far rarer, but a plan anchored in a slow period still recovers.
  constexpr std::size_t unshared_every = 256;
  analytic_planner planner(device_fast_alone, {.explore_every_unshared = unshared_every});
  analytic_op op = anchored_in_slow_period(planner, true);
  const std::vector<std::size_t> splits = op.run_planned(planner, int(3 * unshared_every * explore_runs));
  CHECK(all_cpu({splits.begin(), splits.begin() + unshared_every * explore_runs}));
  CAPTURE(splits.back());
  CHECK(splits.back() == 0);
  analytic_planner never(device_fast_alone, {.explore_every_unshared = 0});
  analytic_op unexplored = anchored_in_slow_period(never, true);
  CHECK(all_cpu(unexplored.run_planned(never, int(2 * unshared_every * explore_runs))));
}

TEST_CASE("a run of another split than the exploration's ends it, so that choose() does not return it for good") {
  // The device is gone (its kernel failed to build, run_on_cpu): the operator runs every call on
  // the CPU alone, whatever the planner chose. An exploration never sees its own split run.
  analytic_planner planner(device_fast_alone);
  analytic_op op = anchored_in_slow_period(planner);
  constexpr int runs = 4000;
  int elsewhere = 0;
  for (int i = 0; i < runs; ++i) {
    if (planner.choose(bert_ffn, op) != bert_ffn.n) ++elsewhere;
    op.run(bert_ffn.n);
    planner.observe(bert_ffn, op.last);
  }
  CHECK(elsewhere > 0);            // it did explore
  CHECK(elsewhere < runs / 100);  // one call per exploration, each explore_every runs or more apart
}

TEST_CASE("explore_every = 0 turns exploration off") {
  analytic_planner planner(device_fast_alone, {.explore_every = 0});
  analytic_op op = anchored_in_slow_period(planner);
  CHECK(all_cpu(op.run_planned(planner, int(2 * explore_every))));
}

TEST_CASE("exploring costs at most 1/explore_every of the time: the slower the alternative, the rarer") {
  // The CPU alone is best (6 ms): the device's fixed cost alone is more. The device alone, and so
  // any co-executed split, is at least 1.4x or 10x slower.
  std::vector<std::size_t> explorations;
  for (const side_cost device : {side_cost{8000, 1e6}, side_cost{60000, 1e6}}) {
    CAPTURE(device.fixed_us);
    analytic_op op{bert_ffn, {{5, 1e5}, device}};
    analytic_planner planner(op.truth);
    REQUIRE(planner.choose(bert_ffn, op) == bert_ffn.n);
    const std::vector<std::size_t> splits = op.run_planned(planner, 9600);
    const auto explored = explorations_in(splits, bert_ffn.n);
    double exploring = 0;
    std::size_t exploring_runs = 0;
    for (std::size_t e = 0; e < explored.size(); ++e) {
      const auto [first, last] = explored[e];
      CAPTURE(first);
      if (last + 1 < splits.size()) CHECK(last - first + 1 == explore_runs);  // the alternative is warm: its runs take the same time
      CHECK(std::count(splits.begin() + std::ptrdiff_t(first), splits.begin() + std::ptrdiff_t(last) + 1, splits[first]) ==
            std::ptrdiff_t(last - first + 1));
      CHECK((splits[first] == 0) == (e % 2 == 0));  // the device alone, and the best co-executed split, in turn
      if (e > 0) CHECK(first - explored[e - 1].second > exploration_period);
      for (std::size_t i = first; i <= last; ++i) exploring += std::max(op.seconds(side::cpu, splits[i]), op.seconds(side::gpu, splits[i]));
      exploring_runs += last - first + 1;
    }
    const double planned = double(splits.size() - exploring_runs) * op.seconds(side::cpu, bert_ffn.n);
    CHECK(exploring <= planned / explore_every);
    explorations.push_back(explored.size());
  }
  CAPTURE(explorations[0]);
  CAPTURE(explorations[1]);
  CHECK(explorations[1] >= 1);
  CHECK(explorations[1] * 5 <= explorations[0]);
}

TEST_CASE("a single side the plan just left is not explored within explore_every runs") {
  // The device alone is best (6 ms against the CPU's 13) until it turns 3x slower (18 ms): once a
  // window of its runs shows it, the plan moves to the CPU. Co-executing never pays: it takes no
  // less than the larger fixed cost.
  analytic_op op{bert_ffn, {{7000, 1e5}, {5000, 6.04e5}}};
  analytic_planner planner(op.truth);
  REQUIRE(planner.choose(bert_ffn, op) == 0);
  op.run_planned(planner, int(explore_every) - 8);  // the plan's runs on the device count towards exploring the CPU
  op.truth.gpu = {15000, op.truth.gpu.flops_per_us / 3};
  const std::vector<std::size_t> splits = op.run_planned(planner, int(3 * explore_every));
  const auto moved = std::find(splits.begin(), splits.end(), bert_ffn.n);
  REQUIRE(moved != splits.end());
  CHECK(std::find(moved, splits.end(), std::size_t{0}) - moved > std::ptrdiff_t(explore_every));
}

TEST_CASE("a co-executed plan explores each single side in turn and keeps its split") {
  analytic_op op{bert_ffn, device_faster};
  analytic_planner planner(device_faster);
  const std::size_t best = op.best_split();
  REQUIRE(planner.choose(bert_ffn, op) == best);
  const std::vector<std::size_t> splits = op.run_planned(planner, int(8 * exploration_period));
  const auto explored = explorations_in(splits, best);
  REQUIRE(explored.size() >= 2);
  for (std::size_t e = 0; e < explored.size(); ++e)
    for (std::size_t i = explored[e].first; i <= explored[e].second; ++i)
      CHECK(splits[i] == (e % 2 == 0 ? bert_ffn.n : 0));  // the CPU first
}

TEST_CASE("a co-executed plan that keeps moving still explores the single sides") {
  // The CPU alone is best (20.1 ms, 25.1 at its slowest below): co-executing costs 15 ms beyond
  // its slower side. But the CPU ran 3x slower while the planner anchored it, so the plan
  // co-executes, and the CPU's speed drifting by up to 25% moves its split every few runs. A plan
  // that counted towards exploring only while it stood still never timed the CPU alone again:
  // on pocl-16 one wandered among co-executed splits at 35-45 µs for 16,000 runs against the
  // CPU's 11.
  analytic_op op{bert_ffn, cpu_faster, 16, 15000};
  op.truth.cpu = {3 * op.truth.cpu.fixed_us, op.truth.cpu.flops_per_us / 3};
  analytic_planner planner(cpu_faster);
  const std::size_t first = planner.choose(bert_ffn, op);
  REQUIRE(first > 0);
  REQUIRE(first < bert_ffn.n);
  std::vector<std::size_t> splits;
  for (int run_index = 0; run_index < int(8 * exploration_period); ++run_index) {
    const double slowdown = 1 + 0.125 * (1 + std::sin(run_index * 0.2));
    op.truth.cpu = {cpu_faster.cpu.fixed_us, cpu_faster.cpu.flops_per_us / slowdown};
    splits.push_back(planner.choose(bert_ffn, op));
    op.run(splits.back());
    planner.observe(bert_ffn, op.last);
  }
  std::vector<std::size_t> co_executed;
  std::copy_if(splits.begin(), splits.end(), std::back_inserter(co_executed), [](std::size_t s) { return s > 0 && s < bert_ffn.n; });
  std::sort(co_executed.begin(), co_executed.end());
  CHECK(std::unique(co_executed.begin(), co_executed.end()) - co_executed.begin() > 8);  // it did move
  CAPTURE(planner.planned(bert_ffn).value());
  CHECK(planner.planned(bert_ffn) == bert_ffn.n);
  CHECK(std::count(splits.end() - std::ptrdiff_t(exploration_period), splits.end(), bert_ffn.n) >= std::ptrdiff_t(explore_every));
}

TEST_CASE("the first exploration of the CPU alone waits as long as its anchor_seconds of runs ask") {
  // Exploring times the CPU alone for anchor_seconds (0.3 s here: 10 runs of 30 ms), not
  // explore_runs: waiting only for the latter, the first exploration cost 3x its bound.
  const plan::correction_options options{.anchor_seconds = 0.3};
  analytic_op op{bert_ffn, device_faster};
  analytic_planner planner(device_faster, options);
  const std::size_t best = op.best_split();
  REQUIRE(planner.choose(bert_ffn, op) == best);
  const std::vector<std::size_t> splits = op.run_planned(planner, 3000);
  const auto explored = explorations_in(splits, best);
  REQUIRE_FALSE(explored.empty());
  const auto [first, last] = explored.front();
  REQUIRE(splits[first] == bert_ffn.n);
  const double cpu_alone = op.seconds(side::cpu, bert_ffn.n);
  CHECK(double(last - first + 1) * cpu_alone >= options.anchor_seconds);
  const double planned = double(first) * std::max(op.cpu_path_seconds(best), op.seconds(side::gpu, best));
  CHECK(double(last - first + 1) * cpu_alone <= planned / double(explore_every));
}

TEST_CASE("a plan on one side explores the best co-executed split too, and returns to it") {
  // Co-executing is best (12.1 ms against the device's 20.2), but while co-executed runs were
  // slow (10 ms beyond their slower side) the learned overhead moved the plan onto the device.
  analytic_op op{bert_ffn, device_faster, 16, large_overhead_us};
  analytic_planner planner(device_faster);
  op.run_planned(planner, 4);
  REQUIRE(planner.choose(bert_ffn, op) == 0);
  op.overhead_us = 0;
  const std::vector<std::size_t> splits = op.run_planned(planner, int(4 * exploration_period));
  CHECK(std::count(splits.begin(), splits.end(), bert_ffn.n) >= 1);  // the other side, first
  CHECK(planner.planned(bert_ffn) == op.best_split());
  CHECK(std::count(splits.end() - std::ptrdiff_t(explore_every), splits.end(), op.best_split()) >= std::ptrdiff_t(explore_every) - 1);
}

TEST_CASE("planned() holds the plan while a run explores a single side (pipelines replay it)") {
  analytic_op op{bert_ffn, device_faster};
  analytic_planner planner(device_faster);
  CHECK_FALSE(planner.planned(bert_ffn).has_value());
  const std::size_t best = op.best_split();
  std::size_t explorations = 0;
  for (int run_index = 0; run_index < int(4 * exploration_period); ++run_index) {
    const std::size_t split = planner.choose(bert_ffn, op);
    REQUIRE(planner.planned(bert_ffn).has_value());
    CHECK(*planner.planned(bert_ffn) == best);
    explorations += split != best;
    op.run(split);
    planner.observe(bert_ffn, op.last);
  }
  CHECK(explorations > 0);
}

TEST_CASE("linear and conv2d tell their planner whether moving the split moves weights, so that it may explore") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  std::mt19937 rng(7);
  const std::size_t m = 4, n = 64, k = 32;
  const conv2d_shape conv_shape{.channels = 8, .height = 6, .width = 6, .out_channels = 16};
  const auto w = test::random_values<float>(n * k, rng), conv_w = test::random_values<float>(conv_shape.weight_size(), rng);
  for (const bool share : {true, false}) {
    CAPTURE(share);
    ops::linear<float, cpu::packed_gemm, weights_probe<std::size_t>> layer(ctx, pool, n, k, w, {}, {.shared_memory = share});
    memory::io_buffer<float> x(ctx, m * k, layer.shared_memory()), y(ctx, m * n, layer.shared_memory());
    std::fill(x.data(), x.data() + m * k, 1.0f);
    layer(x.data(), m, y.data());
    CHECK(layer.planner().moves_weights == !layer.shared_memory());  // each side holds a slice of panels

    ops::conv2d<float, cpu::packed_conv, weights_probe<plan::split_plan>> conv(ctx, pool, conv_shape, conv_w, {}, {.shared_memory = share});
    memory::io_buffer<float> cx(ctx, conv_shape.input_size(), conv.shared_memory()), cy(ctx, conv_shape.output_size(), conv.shared_memory());
    std::fill(cx.data(), cx.data() + conv_shape.input_size(), 1.0f);
    conv(cx.data(), cy.data());
    CHECK(conv.planner().moves_weights == false);  // the host keeps them all
  }
}

TEST_CASE("tree_model loads a model file and matches the generated header it was exported with") {
  const char* override_file = std::getenv("COEXEC_PLANNER_MODEL");  // the calibrate -> train smoke test's
  const std::filesystem::path file = override_file ? override_file : shipped_model_file();
  CAPTURE(file);
  const auto loaded = plan::tree_model<>::load(file);
  analytic_op op{bert_ffn, {}};
  plan::predicted<gemm_shape, plan::tree_model<>> planner(loaded);
  const std::size_t split = planner.choose(bert_ffn, op);
  CHECK((split % op.granule == 0 || split == bert_ffn.n));
  const auto estimate = planner.estimate(bert_ffn, split);
  CHECK(std::isfinite(estimate.total()));
  CHECK(estimate.total() > 0);
  CHECK(estimate.total() <= planner.estimate(bert_ffn, 0).total());
  CHECK(estimate.total() <= planner.estimate(bert_ffn, bert_ffn.n).total());
  if (override_file) return;

  namespace shipped = predict::models::pocl_2;
  const plan::tree_model<> from_header({shipped::linear_cpu::features, shipped::linear_cpu::model},
                                       {shipped::linear_gpu::features, shipped::linear_gpu::model});
  const predict::linear_setup setup{sizeof(float), 1, op.device_config(), op.device_profile()};
  for (std::size_t columns : {16, 256, 1024, 3072})
    for (side s : {side::cpu, side::gpu}) {
      const auto f = predict::linear_features::of(s, bert_ffn, columns, setup);
      CHECK(loaded.predict_us(s, f) == from_header.predict_us(s, f));
    }
}

TEST_CASE("tree_model rejects models that read features the operator lacks") {
  predict::model_set set = predict::load_model_set(shipped_model_file());
  set.models.at("linear/gpu").features.front() = "no_such_feature";
  test::check_error([&] { plan::tree_model<> model(set); }, errc::invalid_argument);
  set.models.erase("linear/gpu");
  test::check_error([&] { plan::tree_model<> model(set); }, errc::invalid_argument);
}

TEST_CASE("the roofline fallback calibrates, caches on disk and plans sanely") {
  auto ctx = test::make_context();
  const auto directory = std::filesystem::temp_directory_path() / ("coexec-roofline-test-" + std::to_string(std::random_device{}()));
  const auto start = std::chrono::steady_clock::now();
  const auto model = plan::roofline_model<>::cached(ctx, 2, directory);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("roofline: CPU " << model.cpu().gflops << " GFLOP/s " << model.cpu().gbytes_per_s << " GB/s, device "
                           << model.gpu().gflops << " GFLOP/s " << model.gpu().gbytes_per_s << " GB/s, calibrated in " << seconds << " s");
  CHECK(seconds < 30);  // bounded, never a hang (its speed is reported above, not asserted)
  for (const auto& r : {model.cpu(), model.gpu()}) {
    CHECK(r.gflops > 0.1);
    CHECK(r.gbytes_per_s > 0.1);
  }
  CHECK(std::distance(std::filesystem::directory_iterator(directory), std::filesystem::directory_iterator()) == 1);
  const auto reread = plan::roofline_model<>::cached(ctx, 2, directory);
  CHECK(reread.gpu().gflops == doctest::Approx(model.gpu().gflops).epsilon(1e-5));
  std::filesystem::remove_all(directory);

  // Comparable sides share a large layer, and the bisection lands within 2% of the model's own
  // optimum (the roofline has wave steps, so its curves are only nearly monotone). The rates are
  // fixed here, spanning a CPU 5x slower than the device to 4x faster, so that this holds on
  // every machine: the measured rates above vary from run to run.
  for (const double cpu_gflops : {20.0, 50.0, 100.0, 200.0, 400.0}) {
    CAPTURE(cpu_gflops);
    const plan::roofline_model<> fixed({cpu_gflops, cpu_gflops / 5, 5}, {100, 20, 0});
    analytic_op op{bert_ffn, {}};
    plan::predicted<gemm_shape, plan::roofline_model<>> planner(fixed);
    const std::size_t split = planner.choose(bert_ffn, op);
    CHECK(split > 0);
    CHECK(split < bert_ffn.n);
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t s : plan::aligned_splits(bert_ffn.n, op.granule)) best = std::min(best, planner.estimate(bert_ffn, s).total());
    CHECK(planner.estimate(bert_ffn, split).total() <= 1.02 * best);
  }
}

TEST_CASE("linear runs correctly with the default predicted planner and feeds it its runs") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  std::mt19937 rng(3);
  const std::size_t m = 64, n = 1000, k = 256;
  const auto w = test::random_values<float>(n * k, rng), xs = test::random_values<float>(m * k, rng);
  ops::linear<float, cpu::packed_gemm, plan::predicted<>> layer(ctx, pool, n, k, w);
  std::vector<float> x_host(xs), y_host(m * n);
  std::optional<memory::svm_vector<float>> x_svm, y_svm;
  float *x = x_host.data(), *y = y_host.data();
  if (layer.shared_memory()) {
    x = x_svm.emplace(ctx, m * k).data();
    y = y_svm.emplace(ctx, m * n).data();
    std::copy(xs.begin(), xs.end(), x);
  }
  for (int run = 0; run < 3; ++run) {
    layer(x, m, y);
    test::check_linear<float>(xs.data(), w.data(), nullptr, y, m, n, k, activation::none);
  }
  CHECK(layer.planner().model().has_value());
  CHECK(layer.planner().estimate(layer.shape(m), layer.last_run().split).total() > 0);
}

TEST_CASE("hybrid_search picks the faster dimension's fastest split, confirmed, and caches it") {
  // Runs that busy-wait for a cost far above scheduling noise: 200 us steps away from each
  // dimension's optimum; rows reach a lower floor than channels.
  struct spinning_op {
    int runs = 0;
    std::size_t extent(plan::split_dimension d) const { return d == plan::split_dimension::channels ? 8 : 6; }
    std::size_t split_granule(plan::split_dimension) const { return 1; }
    void run(plan::split_plan p) {
      ++runs;
      const bool channels = p.dimension == plan::split_dimension::channels;
      const double distance = std::abs(static_cast<double>(p.split) - (channels ? 5.0 : 2.0));
      const auto cost = std::chrono::duration<double, std::micro>((channels ? 600 : 300) + 200 * distance);
      for (const auto end = std::chrono::steady_clock::now() + cost; std::chrono::steady_clock::now() < end;) {
      }
    }
  } op;
  plan::hybrid_search<int> planner;
  CHECK(planner.choose(1, op) == plan::split_plan{plan::split_dimension::rows, 2});
  CHECK(planner.curve(1, plan::split_dimension::channels).size() == 9);
  CHECK(planner.curve(1, plan::split_dimension::rows).size() == 7);
  const int runs = op.runs;
  CHECK(planner.choose(1, op) == plan::split_plan{plan::split_dimension::rows, 2});
  CHECK(op.runs == runs);  // cached
  planner.clear();
  CHECK(planner.curve(1, plan::split_dimension::rows).empty());
}

TEST_CASE("grid_search times its candidates in turns, so a machine that speeds up mid-search does not pick a worse split") {
  // 600 us at split 2, 200 us more per step away from it, all twice as slow over the search's
  // first 18 runs. Timed one after the other (6 runs each), splits 0-2 met only the slow phase
  // and split 3 won; in turns (an untimed and a timed run each, runs this long) the slow phase
  // is one round of five for every split.
  struct drifting_op {
    int runs = 0;
    std::size_t columns() const { return 8; }
    std::size_t split_granule() const { return 1; }
    void run(std::size_t split) {
      const double slowdown = runs++ < 18 ? 2.0 : 1.0;
      const auto cost = std::chrono::duration<double, std::micro>(slowdown * (600 + 200 * std::abs(static_cast<double>(split) - 2.0)));
      for (const auto end = std::chrono::steady_clock::now() + cost; std::chrono::steady_clock::now() < end;) {
      }
    }
  } op;
  plan::grid_search<int> planner;
  CHECK(planner.choose(1, op) == 2);
  const auto curve = planner.curve(1);
  REQUIRE(curve.size() == 9);
  CHECK(curve[2].seconds < 0.8e-3);  // the median saw the fast phase
}

TEST_CASE("grid_search confirms its fastest co-executed splits and both single sides again, so one lucky sample does not win") {
  // 1200 us everywhere but at split 5 (800 us) and split 2 (1000 us, but 550 us over its first
  // 10 runs: the whole search, five turns of an untimed and a timed run). Split 2 wins the
  // search; confirming it alone against the single sides kept it, while confirming the search's
  // three fastest co-executed splits finds split 5.
  struct lucky_op {
    std::map<std::size_t, int> runs;
    std::size_t columns() const { return 8; }
    std::size_t split_granule() const { return 1; }
    void run(std::size_t split) {
      const double us = split == 5 ? 800 : split == 2 ? (runs[split] < 10 ? 550 : 1000) : 1200;
      ++runs[split];
      for (const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double, std::micro>(us);
           std::chrono::steady_clock::now() < end;) {
      }
    }
  } op;
  plan::grid_search<int> planner;
  CHECK(planner.choose(1, op) == 5);
  // The contenders took 10 more turns of two runs: both single sides, splits 2 and 5.
  for (const std::size_t split : {0, 2, 5, 8}) CHECK(op.runs[split] == 30);
  const auto curve = planner.curve(1);
  REQUIRE(curve.size() == 9);
  CHECK(curve[2].seconds > 0.9e-3);  // the confirmation's timing replaced the lucky one
}
