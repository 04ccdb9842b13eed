// plan::predicted over conv2d's two dimensions (output channels or rows): on operators whose times
// are analytic functions of the plan (deterministic, no timing noise), with the trained pocl-2
// conv models from file and header, the roofline, and inside ops::conv2d.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "conv_reference.hpp"
#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/conv2d.hpp"
#include "coexec/plan/predicted.hpp"
#include "linear_reference.hpp"
#include "support.hpp"

using namespace coexec;
using plan::split_dimension;
using plan::split_plan;
using predict::side;
using features = predict::conv_features;

namespace {

// Time in us of a side as a function of its FLOPs: a fixed cost plus a rate.
struct side_cost {
  double fixed_us, flops_per_us;
};

// Analytic times: each side's fixed cost plus its FLOPs at its rate, plus `strip_us` when it
// computes a strip of rows (halo rows read twice, shorter launches), each side scaled by a bias.
struct conv_model {
  side_cost cpu, gpu;
  double strip_us = 0;
  std::size_t out_height = 0;
  double cpu_bias = 1, gpu_bias = 1;
  double predict_us(side s, const features::vector& f) const {
    const side_cost& c = s == side::cpu ? cpu : gpu;
    const double strip = f[features::slice_rows] < double(out_height) ? strip_us : 0;
    return (s == side::cpu ? cpu_bias : gpu_bias) * (c.fixed_us + f[features::flops] / c.flops_per_us + strip);
  }
};

// The interface conv2d offers its planner, with times that are exactly `truth`'s.
struct analytic_conv_op {
  conv2d_shape shape;
  conv_model truth;
  double overhead_us = 0;  // what a co-executed run takes beyond its slower side
  ops::conv2d_record last{};
  const ops::conv2d_record& last_record() const { return last; }

  bool split_moves_weights() const { return false; }  // as conv2d's: the planner may explore

  std::size_t extent(split_dimension d) const { return d == split_dimension::channels ? shape.out_channels : shape.out_height(); }
  std::size_t split_granule(split_dimension d) const { return d == split_dimension::channels ? 16 : 1; }
  std::size_t element_size() const { return sizeof(float); }
  std::size_t cpu_threads() const { return 4; }
  gpu::conv_config device_config() const { return {}; }
  predict::device_profile device_profile() const { return {8, 20.0}; }

  double seconds(side s, split_plan at) const {
    const std::size_t count = s == side::cpu ? at.split : extent(at.dimension) - at.split;
    if (count == 0) return 0;
    const predict::conv_setup setup{element_size(), cpu_threads(), device_config(), device_profile()};
    conv_model exact = truth;
    exact.cpu_bias = exact.gpu_bias = 1;
    return 1e-6 * exact.predict_us(s, features::of(s, shape, at.dimension, count, setup));
  }
  // As conv2d measures it: the device is timed from its enqueue to the run's end, exactly only
  // when it finished last (the host sees a device that finished first at the CPU's end).
  void run(split_plan at) {
    const double cpu = seconds(side::cpu, at), gpu = seconds(side::gpu, at);
    const double total = std::max(cpu, gpu) + (at.split > 0 && at.split < extent(at.dimension) ? overhead_us * 1e-6 : 0);
    last = {{at.split, cpu, total, total, gpu >= cpu}, at.dimension};
  }
  // Runs the plan of `planner` `runs` times, showing it each run; returns the last plan run.
  template <class Planner>
  split_plan run_planned(Planner& planner, int runs) {
    split_plan at{};
    for (int run_index = 0; run_index < runs; ++run_index) {
      at = planner.choose(shape, *this);
      run(at);
      planner.observe(shape, last);
    }
    return at;
  }
  double total(split_plan at) const { return std::max(seconds(side::cpu, at), seconds(side::gpu, at)); }
  // The oracle: every aligned split of both dimensions scored on the true times.
  split_plan best() const {
    split_plan best{split_dimension::channels, 0};
    for (const split_dimension d : plan::all_dimensions)
      for (const std::size_t s : plan::aligned_splits(extent(d), split_granule(d)))
        if (total({d, s}) < total(best)) best = {d, s};
    return best;
  }
};

using analytic_planner = plan::predicted<conv2d_shape, conv_model>;

// 1x1, 32 -> 32 channels at 28x28: channel splits come in steps of 16, row splits of 1.
constexpr conv2d_shape pointwise{.channels = 32, .height = 28, .width = 28, .out_channels = 32};
// ResNet-50's 3x3 at 56x56: 64 channels, rows 0..56.
constexpr conv2d_shape resnet_3x3{.channels = 64, .height = 56, .width = 56, .out_channels = 64, .kernel_h = 3, .kernel_w = 3,
                                  .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
constexpr conv2d_shape wide{.channels = 256, .height = 56, .width = 56, .out_channels = 512};

conv_model model_for(const conv2d_shape& s, side_cost cpu, side_cost gpu, double strip_us = 0) {
  return {cpu, gpu, strip_us, s.out_height()};
}

std::filesystem::path shipped_model_file() {
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "models" / "pocl-2.model";
}

}  // namespace

TEST_CASE("the conv planner picks the optimum dimension and split") {
  struct scenario {
    const char* name;
    side_cost cpu, gpu;
    double strip_us;
  };
  const scenario scenarios[] = {
      {"balanced: rows balance finer", {5, 2e4}, {20, 2e4}, 0},
      {"strips cost: channels", {5, 2e4}, {20, 2e4}, 5e3},
      {"device 3x faster", {5, 2e4}, {20, 6e4}, 0},
      {"device hopeless: CPU only", {5, 1e5}, {1e6, 1e3}, 0},
      {"CPU hopeless: device only", {1e6, 1e3}, {20, 1e5}, 0},
  };
  for (const scenario& s : scenarios) {
    CAPTURE(s.name);
    for (const conv2d_shape& shape : {pointwise, resnet_3x3, wide}) {
      CAPTURE(shape.out_channels);
      analytic_conv_op op{shape, model_for(shape, s.cpu, s.gpu, s.strip_us)};
      analytic_planner planner(op.truth, {.anchor_endpoints = false});
      const split_plan chosen = planner.choose(shape, op), best = op.best();
      CAPTURE(to_string(chosen.dimension));
      CAPTURE(chosen.split);
      CAPTURE(to_string(best.dimension));
      CAPTURE(best.split);
      CHECK(op.total(chosen) == op.total(best));  // endpoints are the same plan along either dimension
    }
  }
  // Both dimensions win somewhere.
  analytic_conv_op rows{pointwise, model_for(pointwise, {5, 2e4}, {20, 2e4})};
  CHECK(analytic_planner(rows.truth).choose(pointwise, rows).dimension == split_dimension::rows);
  analytic_conv_op channels{pointwise, model_for(pointwise, {5, 2e4}, {20, 2e4}, 5e3)};
  CHECK(analytic_planner(channels.truth).choose(pointwise, channels) == split_plan{split_dimension::channels, 16});
}

TEST_CASE("the conv planner bisects, scores a handful of candidates, and caches plans per shape") {
  analytic_conv_op op{wide, model_for(wide, {5, 2e4}, {20, 3e4})};
  analytic_planner planner(op.truth, {.anchor_endpoints = false});
  const split_plan plan = planner.choose(wide, op);
  const std::size_t candidates = plan::aligned_splits(512, 16).size() + plan::aligned_splits(56, 1).size();  // 33 + 57
  const std::size_t first = planner.predictions();
  MESSAGE(first << " predictions for " << candidates << " candidates of two sides");
  CHECK(first * 4 < 2 * candidates);
  CHECK(planner.choose(wide, op) == plan);
  CHECK(planner.predictions() == first);
  analytic_conv_op other{resnet_3x3, op.truth};
  planner.choose(resnet_3x3, other);
  CHECK(planner.predictions() > first);
  planner.clear();
  CHECK(planner.choose(wide, op) == plan);
}

TEST_CASE("online correction converges to the conv oracle within a few runs under a 30% bias") {
  for (const auto& biases : {std::pair{1.0, 1 / 1.3}, std::pair{1.0, 1.3}, std::pair{1 / 1.3, 1.0}, std::pair{1.3, 1.0}}) {
    const double cpu_bias = biases.first, gpu_bias = biases.second;  // not a structured binding: CAPTURE is a lambda (clang 14)
    CAPTURE(cpu_bias);
    CAPTURE(gpu_bias);
    analytic_conv_op op{wide, model_for(wide, {5, 2e4}, {20, 3e4}, 500)};
    conv_model biased = op.truth;
    biased.cpu_bias = cpu_bias;
    biased.gpu_bias = gpu_bias;
    analytic_planner planner(biased, {.anchor_endpoints = false});  // the correction alone
    const split_plan oracle = op.best();
    std::vector<split_plan> plans;
    for (int run = 0; run < 8; ++run) {
      plans.push_back(planner.choose(wide, op));
      op.run(plans.back());
      planner.observe(wide, op.last);
    }
    CAPTURE(oracle.split);
    CAPTURE(plans.front().split);
    CHECK(plans.front() != oracle);  // the bias matters
    CHECK(std::all_of(plans.end() - 2, plans.end(), [&](const split_plan& p) { return p == oracle; }));

    analytic_planner anchored(biased);  // measured endpoints correct both sides before the first plan
    CHECK(anchored.choose(wide, op) == oracle);
  }
}

TEST_CASE("one learned overhead serves both dimensions and moves a conv plan to a single side") {
  // The CPU is faster alone (27 ms against 41), co-executing along rows faster still (17 ms) but
  // for an overhead of 20 ms. Without anchoring no single side is measured, so the guard cannot
  // act: only the overhead, learned along rows, keeps the plan off the channel splits too.
  analytic_conv_op op{wide, model_for(wide, {5, 3e4}, {20, 2e4})};
  op.overhead_us = 20000;
  analytic_planner planner(op.truth, {.anchor_endpoints = false});
  REQUIRE(planner.choose(wide, op).dimension == split_dimension::rows);
  const split_plan last = op.run_planned(planner, 4);
  CAPTURE(last.split);
  CHECK(last.split == op.extent(last.dimension));
  for (const split_plan co_executed : {split_plan{split_dimension::channels, 256}, split_plan{split_dimension::rows, 28}})
    CHECK(planner.estimate(wide, co_executed).overhead == doctest::Approx(op.overhead_us * 1e-6));
}

TEST_CASE("the conv guard moves a co-executed plan measured slower than the faster single side to that side") {
  for (const bool device_faster : {true, false}) {
    CAPTURE(device_faster);
    const side_cost fast{5, 3e4}, slow{20, 2e4};
    analytic_conv_op op{wide, device_faster ? model_for(wide, slow, fast) : model_for(wide, fast, slow)};
    op.overhead_us = 20000;
    analytic_planner planner(op.truth, {.replan_change = 1e9});  // re-planning off: only the guard moves the plan
    const split_plan first = planner.choose(wide, op);
    REQUIRE(first.split > 0);
    REQUIRE(first.split < op.extent(first.dimension));
    // The plan settles (settle_runs, 2), then one run moves it.
    CHECK(op.run_planned(planner, 3) == split_plan{first.dimension, device_faster ? 0 : op.extent(first.dimension)});
  }
}

TEST_CASE("conv exploration times the device again and moves a plan anchored in a slow period to it") {
  // The device alone takes 11 ms against the CPU's 20, co-executing no less than the CPU's fixed
  // 12 ms; anchored while the device ran 3x slower (32 ms), the plan settles on the CPU.
  const conv_model truth = model_for(wide, {12000, 1e5}, {8000, 3e5});
  analytic_conv_op op{wide, truth};
  op.truth.gpu = {3 * truth.gpu.fixed_us, truth.gpu.flops_per_us / 3};
  analytic_planner planner(truth);
  const split_plan anchored = planner.choose(wide, op);
  REQUIRE(anchored.split == op.extent(anchored.dimension));
  op.truth = truth;
  const plan::correction_options defaults;
  CHECK(op.run_planned(planner, int(defaults.explore_every)) == anchored);
  const split_plan last = op.run_planned(planner, int(2 * defaults.explore_every) * defaults.explore_runs);
  CAPTURE(last.split);
  CHECK(last.split == 0);
}

TEST_CASE("the trained pocl-2 conv models load from file, match their header and plan") {
  const auto loaded = plan::tree_model<features>::load(shipped_model_file());
  namespace shipped = predict::models::pocl_2;
  const plan::tree_model<features> from_header({shipped::conv_cpu::features, shipped::conv_cpu::model},
                                               {shipped::conv_gpu::features, shipped::conv_gpu::model});
  analytic_conv_op op{resnet_3x3, {}};
  const predict::conv_setup setup{sizeof(float), 1, op.device_config(), {1, 20.0}};
  for (const split_dimension d : plan::all_dimensions)
    for (const std::size_t count : {1, 16, 48})
      for (const side s : {side::cpu, side::gpu}) {
        const auto f = features::of(s, resnet_3x3, d, count, setup);
        const double us = loaded.predict_us(s, f);
        CHECK(std::isfinite(us));
        CHECK(us > 0);
        CHECK(us == from_header.predict_us(s, f));
      }
  plan::predicted<conv2d_shape, plan::tree_model<features>> planner(loaded, {.anchor_endpoints = false});
  const split_plan chosen = planner.choose(resnet_3x3, op);
  CHECK(chosen.split <= op.extent(chosen.dimension));
  CHECK(planner.estimate(resnet_3x3, chosen).total() <= planner.estimate(resnet_3x3, {split_dimension::channels, 0}).total());
  CHECK(planner.estimate(resnet_3x3, chosen).total() <= planner.estimate(resnet_3x3, {split_dimension::channels, 64}).total());
}

TEST_CASE("the conv roofline plans within 2% of its own optimum over both dimensions") {
  const plan::roofline_model<features> roofline({20, 10, 5}, {15, 10, 0});
  analytic_conv_op op{wide, {}};
  plan::predicted<conv2d_shape, plan::roofline_model<features>> planner(roofline, {.anchor_endpoints = false});
  const split_plan chosen = planner.choose(wide, op);
  CHECK(chosen.split > 0);
  CHECK(chosen.split < op.extent(chosen.dimension));
  double best = std::numeric_limits<double>::infinity();
  for (const split_dimension d : plan::all_dimensions)
    for (const std::size_t s : plan::aligned_splits(op.extent(d), op.split_granule(d)))
      best = std::min(best, planner.estimate(wide, {d, s}).total());
  CHECK(planner.estimate(wide, chosen).total() <= 1.02 * best);
}

TEST_CASE("conv2d runs correctly with its default predicted planner and feeds it its runs") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  std::mt19937 rng(5);
  for (const conv2d_shape& s : {resnet_3x3, conv2d_shape{.channels = 32, .height = 20, .width = 20, .out_channels = 32, .kernel_h = 3,
                                                         .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_bottom = 1,
                                                         .pad_left = 1, .pad_right = 1, .groups = 32}}) {
    CAPTURE(s.groups);
    const auto w = test::random_values<float>(s.weight_size(), rng);
    const auto xs = test::random_values<float>(s.input_size(), rng);
    ops::conv2d<float> layer(ctx, pool, s, w);
    memory::io_buffer<float> x(ctx, s.input_size(), layer.shared_memory()), y(ctx, s.output_size(), layer.shared_memory());
    std::copy(xs.begin(), xs.end(), x.data());
    for (int run = 0; run < 3; ++run) {
      std::fill(y.data(), y.data() + s.output_size(), -777.0f);
      layer(x.data(), y.data());
      test::check_conv(s, xs.data(), w.data(), static_cast<const float*>(nullptr), y.data(), activation::none);
    }
    REQUIRE(layer.planner().model().has_value());
    const split_plan last{layer.last_run().dimension, layer.last_run().split};
    CHECK(last.split <= layer.extent(last.dimension));
    CHECK(layer.planner().estimate(s, last).total() > 0);
  }
}
