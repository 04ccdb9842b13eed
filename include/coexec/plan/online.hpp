#pragma once
// Online correction: a multiplier per side and shape that turns the model's prediction into
// what the runs measure, an exponentially weighted moving average of measured / predicted.
//
// The CPU side is always timed exactly. The device side is exact when it finished last, or when
// the queue profiles (the default where the device shares memory: ops::run_record); otherwise
// the host saw it complete at the CPU's end and knows only an upper bound. A bound
// below the corrected prediction still corrects it (the factor drops to the bound). But at a
// split that balances the two sides the bound is about the prediction itself, so when the model
// overestimates the device the plan would barely move. Until the first exact measurement each
// such run therefore also lowers the factor by a step, shifting work onto the device until it
// finishes last and is measured.
//
// A co-executed run also takes longer than its slower side: the host's enqueue of the device
// part delays the CPU part (learned per shape from every run as the dispatch, and added to the
// CPU side), and synchronisation, the host's wait and memory bandwidth the sides share cost
// time. What neither the sides' corrections nor the dispatch show of it is learned per shape as
// an additive overhead, which only co-executed plans pay.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>

namespace coexec::plan {

/// Tuning of the online correction: averaging weight, backoff, replanning threshold, anchoring,
/// exploration.
struct correction_options {
  double weight = 0.5;    ///< of a new sample in each average, ratios and overhead (the first one is taken whole)
  double backoff = 0.85;  ///< factor step while only upper bounds have been seen
  /// Relative factor change, or overhead change relative to the planned time, that triggers a new plan.
  double replan_change = 0.02;
  /// Before the first plan of a shape, run each side alone (split 0, then N) and take both
  /// corrections and the measured single-side times from those exact runs: the plan then
  /// starts from measured endpoints, so a model far off for this machine can never make it
  /// lose to the best single side.
  bool anchor_endpoints = true;
  /// Timed runs of each side when anchoring, after a warm-up; the least counts. A plan that
  /// settles on one side times the other again only when it explores, so one slow anchoring run
  /// would stick until then.
  int anchor_runs = 3;
  /// Anchoring (and exploring) times the CPU alone for at least this long in all (the runs' own
  /// times), after the device, and then goes on while each run is more than 5% faster than the
  /// best before it, up to anchor_max_runs. Right after a phase of device runs the CPU runs
  /// slowly for a while, then suddenly fast: on the lent machine a layer at M = 1 (ResNet-50's
  /// classifier, 8 MB of weights) took about 125 µs for 46 runs (6 ms), then 20 µs on pocl-16;
  /// on nvidia another one (3072 -> 768) took 45-175 µs for 12 runs, then 16 µs. Anchored in such
  /// a spell the CPU lost to the device for good where nothing is explored (nvidia). The device is
  /// timed by runs alone: longer device phases make longer spells. An endpoint anchored too fast
  /// corrects itself: the plan runs that side and measures it.
  double anchor_seconds = 0.01;
  int anchor_max_runs = 1024;  ///< the most timed runs of a side when anchoring or exploring
  /// Now and then a few runs of a planned shape try an alternative to its plan instead (0:
  /// never): a side the plan does not use, or, for a plan on one side, the best co-executed
  /// split. A plan settled on one side would never time the other again, nor co-execute again,
  /// so a side or an overhead measured in a slow period (timing noise reaches 3x) would stick for
  /// good. The runs are real calls, and they correct what they measured as any run does. They
  /// come once the plan, since it last left a single side or explored, has run explore_every
  /// times the runs the exploration will take (the last one's; at least explore_runs, and
  /// anchor_seconds' worth for the CPU alone), times the alternative's predicted time over its
  /// own where that is more than 1: exploring then costs at most 1/explore_every of the time,
  /// however slow the alternative (a 100x slower side is timed once in 6400 runs per run it
  /// takes). For operators whose split moves no weights (split_moves_weights() false: shared
  /// weights, or conv2d's, which the host keeps whole); see explore_every_unshared for the others.
  std::size_t explore_every = 64;
  /// explore_every for operators whose split moves weights (split_moves_weights(): on a discrete
  /// GPU ops::linear's sides each hold a slice of weight panels, and moving the split moves panels:
  /// in the H100's grid search of BERT's 768 -> 3072 layer at M = 1, some splits took 2-3 ms
  /// against 50-90 µs). 64x rarer, so that the moves cost a small part of the runs between
  /// explorations; but not never: there a layer at M = 1 whose CPU alone takes 15-25 µs left
  /// anchoring with its CPU estimated at about 3 ms (CPU stalls of 3-4 ms a run) and ran on the
  /// device (57 µs) for good. 0: never.
  std::size_t explore_every_unshared = 4096;
  /// Runs of an exploration at least; it times its alternative as anchoring times a side (at
  /// least anchor_seconds, then while it gets faster), since a side that has not run for
  /// hundreds of calls runs slowly at first (on pocl-16 an exploring CPU run of ResNet-50's
  /// classifier at M = 1 took 88 µs against 27 µs warm, and kept the plan on the device).
  int explore_runs = 3;
  /// Runs of a newly placed co-executed plan at least before it teaches anything, more while they
  /// get faster: on pocl-2 the first run of a 100 µs layer's new split took 250 µs (a CPU in its
  /// slow spell after device runs, a kernel not yet launched with its arguments), and the overhead
  /// it taught kept the plan off co-executing for hundreds of calls.
  int settle_runs = 2;
};

/// Runs of one configuration timed until it is warm: at least `min_runs` runs and `min_seconds`
/// of their time, then more while each is more than 5% faster than the best before it, up to
/// `max_runs`. Anchoring and exploring time a side this way, since its first runs after a pause
/// or after the other side's runs are slow (correction_options::anchor_seconds).
class warm_up {
 public:
  /// At least `min_runs` runs taking `min_seconds` together, at most `max_runs` runs (or
  /// `min_runs` where that is more).
  warm_up(int min_runs, double min_seconds, int max_runs) noexcept
      : min_runs_(min_runs), max_runs_(std::max(min_runs, max_runs)), min_seconds_(min_seconds) {}

  /// Counts a run of `seconds`; true when no more runs are needed.
  bool done_after(double seconds) noexcept {
    const bool warming = runs_ > 0 && seconds < 0.95 * best_;
    best_ = std::min(best_, seconds);
    total_ += seconds;
    ++runs_;
    return runs_ >= max_runs_ || (runs_ >= min_runs_ && total_ >= min_seconds_ && !warming);
  }
  int runs() const noexcept { return runs_; }  ///< runs counted so far
  /// The fewest runs it can take when each takes `seconds` (min_runs where that is not positive).
  int least_runs(double seconds) const noexcept {
    if (!(seconds > 0)) return min_runs_;
    return static_cast<int>(std::clamp(std::ceil(min_seconds_ / seconds), double(min_runs_), double(max_runs_)));
  }

 private:
  int min_runs_, max_runs_, runs_ = 0;
  double min_seconds_, total_ = 0;
  double best_ = std::numeric_limits<double>::infinity();
};

/// An exponentially weighted moving average whose first sample is taken whole.
class running_average {
 public:
  running_average() = default;
  /// An average that reads `initial` until its first sample.
  explicit running_average(double initial) noexcept : value_(initial) {}

  double value() const noexcept { return value_; }    ///< the average, or the initial value before any sample
  bool sampled() const noexcept { return sampled_; }  ///< true once a sample was added

  /// Adds `sample` with weight `weight` in (0, 1].
  void add(double sample, double weight) noexcept {
    value_ = sampled_ ? (1 - weight) * value_ + weight * sample : sample;
    sampled_ = true;
  }
  /// Lowers the average to `bound` when it is above: what a sample known only as an upper bound says.
  void cap(double bound) noexcept { value_ = std::min(value_, bound); }

 private:
  double value_ = 0;
  bool sampled_ = false;
};

/// The least of the last `window` samples of a time. Timing noise only ever adds time
/// (preemption, interrupts, the other side's traffic), so the minimum of recent runs is what a
/// configuration takes, and one slow run cannot move a plan; a slowdown as long as the window
/// (drift, a busy CPU) still does.
class recent_minimum {
 public:
  static constexpr std::size_t window = 8;  ///< samples remembered

  bool sampled() const noexcept { return count_ > 0; }  ///< true once a sample was added
  /// The least remembered sample; infinity before the first.
  double value() const noexcept {
    const auto end = samples_.begin() + static_cast<std::ptrdiff_t>(std::min(count_, window));
    return count_ == 0 ? std::numeric_limits<double>::infinity() : *std::min_element(samples_.begin(), end);
  }
  void add(double sample) noexcept { samples_[count_++ % window] = sample; }  ///< remembers `sample`, forgetting the oldest

 private:
  std::array<double, window> samples_{};
  std::size_t count_ = 0;
};

/// The correction of one side (CPU or device) of one shape: a multiplier on the model's prediction,
/// an average of measured / predicted, starting at 1.
class side_correction {
 public:
  double factor() const noexcept { return ratio_.value(); }  ///< multiply the model's prediction by this

  /// measured / predicted of one run. The average takes the lesser of this run's ratio and the
  /// last one's: timing noise only adds time, so one preempted run (on pocl-2 a device part took
  /// 5.5x its time, once in hundreds) cannot push a plan off the device, which it would then time
  /// only by an upper bound or an exploration, while a real slowdown shows from its second run.
  void exact(double ratio, const correction_options& options) noexcept {
    ratio_.add(ratio_.sampled() ? std::min(ratio, last_ratio_) : ratio, options.weight);
    last_ratio_ = ratio;
  }

  /// The run's time is at most `ratio` times the prediction.
  void upper_bound(double ratio, const correction_options& options) noexcept {
    ratio_.cap(ratio_.sampled() ? ratio : std::min(factor(), ratio) * options.backoff);
  }

 private:
  running_average ratio_{1};
  double last_ratio_ = 0;  // the last exact run's
};

/// Both sides' corrections of one shape, what co-executing it costs beyond them, and what its
/// current plan was made with.
struct shape_correction {
  /// @{
  side_correction cpu, gpu;  ///< the CPU side's and the device side's correction
  /// @}
  /// What a co-executed run takes beyond its slower side, in microseconds: synchronisation, the
  /// host's wait, the sides slowing each other down where their corrections do not show it.
  running_average overhead_us;
  /// The host's enqueue of the device part, in microseconds, measured by every run that has one:
  /// the CPU part starts after it, so a co-executed split takes max(dispatch + CPU, device), and
  /// the balance moves towards the device rather than co-executing paying it as an overhead.
  running_average dispatch_us;
  /// @{
  double planned_cpu = 1, planned_gpu = 1, planned_overhead_us = 0, planned_dispatch_us = 0;  ///< what the current plan was made with
  /// @}
  double planned_total_us = 0;  ///< the current plan's predicted time

  /// True when a factor moved far enough from the planned one to plan again, or the overhead or
  /// the dispatch by as large a part of the planned time.
  bool stale(const correction_options& options) const noexcept {
    const auto moved = [&](double now, double then) { return std::abs(now / then - 1) > options.replan_change; };
    const auto moved_us = [&](double now, double then) { return std::abs(now - then) > options.replan_change * planned_total_us; };
    return moved(cpu.factor(), planned_cpu) || moved(gpu.factor(), planned_gpu) ||
           moved_us(overhead_us.value(), planned_overhead_us) || moved_us(dispatch_us.value(), planned_dispatch_us);
  }
  /// Records what the new plan, predicted to take `total_us`, was made with.
  void planned(double total_us) noexcept {
    planned_cpu = cpu.factor();
    planned_gpu = gpu.factor();
    planned_overhead_us = overhead_us.value();
    planned_dispatch_us = dispatch_us.value();
    planned_total_us = total_us;
  }
};

}  // namespace coexec::plan
