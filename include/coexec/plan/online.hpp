#pragma once
// Online correction: a multiplier per side and shape that turns the model's prediction into
// what the runs measure, an exponentially weighted moving average of measured / predicted.
//
// The CPU side is always timed exactly. The device side is exact only when it finished last;
// otherwise the host saw it complete at the CPU's end and knows only an upper bound. A bound
// below the corrected prediction still corrects it (the factor drops to the bound). But at a
// split that balances the two sides the bound is about the prediction itself, so when the model
// overestimates the device the plan would barely move. Until the first exact measurement each
// such run therefore also lowers the factor by a step, shifting work onto the device until it
// finishes last and is measured.
#include <algorithm>
#include <cmath>

namespace coexec::plan {

/// Tuning of the online correction: averaging weight, backoff, replanning threshold, anchoring.
struct correction_options {
  double weight = 0.5;    ///< of a new exact ratio in the average (the first one is taken whole)
  double backoff = 0.85;  ///< factor step while only upper bounds have been seen
  double replan_change = 0.02;  ///< relative factor change that triggers a new plan
  /// Before the first plan of a shape, run each side alone once (split N, then 0) and take
  /// both corrections from those exact times: the plan then starts from measured endpoints,
  /// so a model far off for this machine can never make it lose to the best single side.
  bool anchor_endpoints = true;
};

/// The correction of one side (CPU or device) of one shape: a multiplier on the model's prediction,
/// an average of measured / predicted, starting at 1.
class side_correction {
 public:
  double factor() const noexcept { return factor_; }  ///< multiply the model's prediction by this

  /// measured / predicted of one run.
  void exact(double ratio, const correction_options& options) noexcept {
    factor_ = measured_ ? (1 - options.weight) * factor_ + options.weight * ratio : ratio;
    measured_ = true;
  }

  /// The run's time is at most `ratio` times the prediction.
  void upper_bound(double ratio, const correction_options& options) noexcept {
    factor_ = std::min(factor_, ratio) * (measured_ ? 1 : options.backoff);
  }

 private:
  double factor_ = 1;
  bool measured_ = false;
};

/// Both sides' corrections of one shape, and the factors its current plan was made with.
struct shape_correction {
  /// @{
  side_correction cpu, gpu;  ///< the CPU side's and the device side's correction
  /// @}
  /// @{
  double planned_cpu = 1, planned_gpu = 1;  ///< the factors the current plan was made with
  /// @}

  /// True when a factor moved far enough from the planned one to plan again.
  bool stale(const correction_options& options) const noexcept {
    const auto moved = [&](double now, double then) { return std::abs(now / then - 1) > options.replan_change; };
    return moved(cpu.factor(), planned_cpu) || moved(gpu.factor(), planned_gpu);
  }
  /// Records the current factors as those the new plan was made with.
  void planned() noexcept {
    planned_cpu = cpu.factor();
    planned_gpu = gpu.factor();
  }
};

}  // namespace coexec::plan
