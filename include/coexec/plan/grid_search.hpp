#pragma once
// grid_search: the oracle planner. It times the operator on the real device at aligned split
// points and keeps the fastest per shape. Every later figure (predicted plans, the demo's
// speedups) is compared with it.
//
// Exhaustive mode times every aligned candidate. The default first times an evenly spaced
// subset (at most `coarse_points`, 0 and N included) and then every aligned candidate between
// the neighbours of the coarse winner. The co-executed time is max(t_cpu(s), t_gpu(s)) with
// t_cpu rising and t_gpu falling in s, so it is unimodal and the refined search finds the same
// split as the exhaustive one, at a fraction of the runs (10-50x fewer for N = 4096).
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

#include "coexec/plan/split.hpp"

namespace coexec::plan {

/// One timed candidate.
struct split_timing {
  std::size_t split = 0;  ///< the split point timed
  double seconds = 0;  ///< median wall time of a run at that split
};

/// `Key` identifies a problem shape (ordered: gemm_shape, conv shapes); plans are cached per key.
template <class Key>
class grid_search {
 public:
  /// How thoroughly a shape is searched.
  struct options {
    bool exhaustive = false;  ///< time every aligned candidate instead of a coarse pass then a refinement
    std::size_t coarse_points = 17;  ///< evenly spaced candidates of the coarse pass, 0 and N included
    int repeats = 5;  ///< timed runs per candidate; the median counts
  };

  grid_search() = default;
  explicit grid_search(options opts) : options_(opts) {}  ///< a search with non-default options

  /// The fastest split for `key`, timing `op.run(split)` on first use. `op` offers
  /// `std::size_t columns() const`, `std::size_t split_granule() const` and `void run(std::size_t split)`.
  template <class Op>
  std::size_t choose(const Key& key, Op&& op) {
    {
      std::lock_guard lock(mutex_);
      if (auto found = best_.find(key); found != best_.end()) return found->second;
    }
    auto timings = search(op);
    const auto best = std::min_element(timings.begin(), timings.end(),
                                       [](const split_timing& a, const split_timing& b) { return a.seconds < b.seconds; });
    const std::size_t chosen = confirm(op, best->split);
    std::lock_guard lock(mutex_);
    curves_[key] = timings;
    return best_[key] = chosen;
  }

  /// Every timing measured for `key`, sorted by split (empty before the first choose()).
  std::vector<split_timing> curve(const Key& key) const {
    std::lock_guard lock(mutex_);
    auto found = curves_.find(key);
    return found == curves_.end() ? std::vector<split_timing>{} : found->second;
  }

  /// Forgets every plan and timing, so the next choose() of each shape times again.
  void clear() {
    std::lock_guard lock(mutex_);
    best_.clear();
    curves_.clear();
  }

  /// Median seconds of `repeats` runs of `op.run(split)` after one warm-up run.
  template <class Op>
  static double time_split(Op& op, std::size_t split, int repeats) {
    using clock = std::chrono::steady_clock;
    op.run(split);
    std::vector<double> samples;
    for (int r = 0; r < repeats; ++r) {
      const auto start = clock::now();
      op.run(split);
      samples.push_back(std::chrono::duration<double>(clock::now() - start).count());
    }
    std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
    return samples[samples.size() / 2];
  }

 private:
  // A co-executed winner must beat both single sides again, timed afresh and longer: one noisy
  // sample in the search must not make the oracle slower than a single side.
  template <class Op>
  std::size_t confirm(Op& op, std::size_t best) const {
    const std::size_t columns = op.columns();
    if (best == 0 || best == columns) return best;
    std::size_t chosen = best;
    double chosen_seconds = time_split(op, best, 2 * options_.repeats);
    for (const std::size_t single : {std::size_t{0}, columns})
      if (const double seconds = time_split(op, single, 2 * options_.repeats); seconds < chosen_seconds)
        chosen = single, chosen_seconds = seconds;
    return chosen;
  }

  template <class Op>
  std::vector<split_timing> search(Op& op) const {
    const auto all = aligned_splits(op.columns(), op.split_granule());
    std::map<std::size_t, double> timed;
    auto time_at = [&](std::size_t index) {
      const std::size_t split = all[index];
      if (!timed.count(split)) timed[split] = time_split(op, split, options_.repeats);
      return timed[split];
    };
    if (options_.exhaustive || all.size() <= options_.coarse_points) {
      for (std::size_t i = 0; i < all.size(); ++i) time_at(i);
    } else {
      const std::size_t last = all.size() - 1;
      std::vector<std::size_t> coarse;
      for (std::size_t p = 0; p < options_.coarse_points; ++p) coarse.push_back(p * last / (options_.coarse_points - 1));
      std::size_t best = 0;
      for (std::size_t c = 0; c < coarse.size(); ++c)
        if (time_at(coarse[c]) < time_at(coarse[best])) best = c;
      const std::size_t from = coarse[best == 0 ? 0 : best - 1];
      const std::size_t to = coarse[std::min(best + 1, coarse.size() - 1)];
      for (std::size_t i = from; i <= to; ++i) time_at(i);
    }
    std::vector<split_timing> timings;
    for (const auto& [split, seconds] : timed) timings.push_back({split, seconds});
    return timings;
  }

  options options_;
  mutable std::mutex mutex_;
  std::map<Key, std::size_t> best_;
  std::map<Key, std::vector<split_timing>> curves_;
};

}  // namespace coexec::plan
