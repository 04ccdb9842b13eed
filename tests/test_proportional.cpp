#include <doctest/doctest.h>

#include <chrono>
#include <cmath>

#include "coexec/plan/proportional.hpp"

using namespace coexec;

namespace {

// Busy-waits as a co-executed operator would take: each side linear in its share, the slower
// one counts, plus a fixed cost whenever both sides run.
struct linear_cost_op {
  double cpu_us, gpu_us, both_us = 0;
  std::size_t n = 64, granule = 4;
  int runs = 0;
  std::size_t columns() const { return n; }
  std::size_t split_granule() const { return granule; }
  void run(std::size_t split) {
    ++runs;
    const double share = static_cast<double>(split) / static_cast<double>(n);
    const bool both = split != 0 && split != n;
    const auto cost = std::chrono::duration<double, std::micro>(std::max(cpu_us * share, gpu_us * (1 - share)) + (both ? both_us : 0));
    for (const auto end = std::chrono::steady_clock::now() + cost; std::chrono::steady_clock::now() < end;) {
    }
  }
};

// The same costs along rows (extent 64, any split) with few output channels.
struct two_dimensional_op {
  linear_cost_op rows{300, 900};
  std::size_t extent(plan::split_dimension d) const { return d == plan::split_dimension::channels ? 16 : rows.n; }
  std::size_t split_granule(plan::split_dimension d) const { return d == plan::split_dimension::channels ? 16 : 1; }
  void run(plan::split_plan p) {
    REQUIRE(p.dimension == plan::split_dimension::rows);
    rows.run(p.split);
  }
};

}  // namespace

TEST_CASE("plan::proportional splits in proportion to the single sides' speeds") {
  linear_cost_op op{300, 900};  // the device is 3x slower: the CPU takes 3/4, 48 of 64
  plan::proportional<int> planner({.repeats = 15});  // short runs, medians of many: robust on a busy machine
  const std::size_t split = planner.choose(1, op);
  CHECK(split >= 44);  // one granule either way
  CHECK(split <= 52);
  const int runs = op.runs;
  CHECK(runs <= 48);  // three candidates, a warm-up and 15 timed runs each
  CHECK(planner.choose(1, op) == split);
  CHECK(op.runs == runs);  // cached
  const auto predicted = planner.estimate(1, 48);
  CHECK(predicted.cpu == doctest::Approx(225e-6).epsilon(0.3));
  CHECK(predicted.gpu == doctest::Approx(225e-6).epsilon(0.3));
  planner.clear();
  planner.choose(1, op);
  CHECK(op.runs > runs);
}

TEST_CASE("plan::proportional keeps the faster single side when co-execution does not beat it") {
  linear_cost_op op{300, 900, 600};  // both sides together pay 600 us more
  plan::proportional<int> planner({.repeats = 15});
  CHECK(planner.choose(1, op) == op.n);
}

TEST_CASE("plan::proportional cuts rows where a layer has few channel splits") {
  two_dimensional_op op;
  plan::proportional<int> planner({.repeats = 15});
  const plan::split_plan chosen = planner.choose(1, op);
  CHECK(chosen.dimension == plan::split_dimension::rows);
  CHECK(chosen.split >= 44);
  CHECK(chosen.split <= 52);
}
