#pragma once
// proportional: the cheap planner. It times each side alone once per shape and splits in
// proportion to their speeds (each side's time taken as linear in its share), then times that
// split once and keeps it only if it beats the faster single side. About six runs per shape
// where grid_search needs dozens: for whole networks planned at start-up (the demo's budget).
//
// Two-dimensional operators (conv2d) are cut along output channels when they have at least
// `min_channel_steps` aligned channel splits, else along output rows (layers with few channels).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <mutex>

#include "coexec/plan/grid_search.hpp"
#include "coexec/plan/split_plan.hpp"

namespace coexec::plan {

/// Plans each shape `Key` from one timing of each single side (see the file comment).
template <class Key>
class proportional {
 public:
  /// How each shape is timed and cut.
  struct options {
    int repeats = 1;  ///< timed runs per candidate after a warm-up; the median counts
    std::size_t min_channel_steps = 8;  ///< fewer aligned channel splits than this: cut rows instead
  };

  proportional() = default;
  explicit proportional(options opts) : options_(opts) {}  ///< a planner with non-default options

  /// The split for `key`, timing on first use. A one-dimensional `op` (ops::linear) offers
  /// columns(), split_granule() and run(std::size_t) and gets a std::size_t; a two-dimensional
  /// one (ops::conv2d) offers extent(d), split_granule(d) and run(split_plan) and gets a split_plan.
  template <class Op>
  auto choose(const Key& key, Op& op) {
    if constexpr (requires { op.extent(split_dimension::channels); }) {
      const std::size_t channel_steps = op.extent(split_dimension::channels) / op.split_granule(split_dimension::channels);
      const split_dimension d = channel_steps >= options_.min_channel_steps ? split_dimension::channels : split_dimension::rows;
      along<Op> adapter{op, d};
      return split_plan{d, plan(key, adapter)};
    } else {
      return plan(key, op);
    }
  }

  /// Each side's predicted seconds at a split.
  struct side_seconds {
    /// @{
    double cpu = 0, gpu = 0;  ///< each side's prediction in seconds
    /// @}
    double total() const noexcept { return std::max(cpu, gpu); }  ///< the co-executed time: the slower side
  };
  /// Predictions for `key` at `split` (along the planned dimension); `key` must have been
  /// planned (std::out_of_range otherwise). Single sides are their measured times.
  side_seconds estimate(const Key& key, std::size_t split) const {
    std::lock_guard lock(mutex_);
    const timing& t = plans_.at(key);
    const double cpu_share = static_cast<double>(split) / static_cast<double>(t.extent);
    return {t.cpu_seconds * cpu_share, t.gpu_seconds * (1 - cpu_share)};
  }

  /// Forgets every plan, so the next choose() of each shape times again.
  void clear() {
    std::lock_guard lock(mutex_);
    plans_.clear();
  }

 private:
  struct timing {
    std::size_t extent = 0, split = 0;
    double cpu_seconds = 0, gpu_seconds = 0;  // each side alone, the whole extent
  };

  // One dimension of a two-dimensional operator, as a one-dimensional one.
  template <class Op>
  struct along {
    Op& op;
    split_dimension dimension;
    std::size_t columns() const { return op.extent(dimension); }
    std::size_t split_granule() const { return op.split_granule(dimension); }
    void run(std::size_t split) { op.run(split_plan{dimension, split}); }
  };

  template <class Op>
  std::size_t plan(const Key& key, Op& op) {
    {
      std::lock_guard lock(mutex_);
      if (auto found = plans_.find(key); found != plans_.end()) return found->second.split;
    }
    timing t;
    t.extent = op.columns();
    t.cpu_seconds = grid_search<Key>::time_split(op, t.extent, options_.repeats);
    t.gpu_seconds = grid_search<Key>::time_split(op, 0, options_.repeats);
    // Balanced when cpu * s / N = gpu * (N - s) / N.
    const std::size_t granule = op.split_granule();
    const double balanced = static_cast<double>(t.extent) * t.gpu_seconds / (t.cpu_seconds + t.gpu_seconds);
    const std::size_t split = std::min(t.extent, static_cast<std::size_t>(std::lround(balanced / static_cast<double>(granule))) * granule);
    const bool cpu_faster = t.cpu_seconds < t.gpu_seconds;
    t.split = cpu_faster ? t.extent : 0;
    // Fixed costs (dispatch, the wait) are not in the linear model: the split must prove itself.
    if (split != 0 && split != t.extent &&
        grid_search<Key>::time_split(op, split, options_.repeats) < std::min(t.cpu_seconds, t.gpu_seconds))
      t.split = split;
    std::lock_guard lock(mutex_);
    return plans_.emplace(key, t).first->second.split;
  }

  options options_;
  mutable std::mutex mutex_;
  std::map<Key, timing> plans_;
};

}  // namespace coexec::plan
