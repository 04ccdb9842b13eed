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
//
// The search's three fastest co-executed splits and both single sides are then timed again,
// longer, and the fastest of those is the plan.
//
// Candidates compared with each other are timed in turns (time_in_turns), never one after the
// other: the machines' speed drifts over seconds (on the 2-core development machine a layer's
// CPU side took 3.5 ms in one window and 1.9 ms in the next), so a candidate timed in a slow
// moment lost to a worse one timed in a fast moment, and the oracle settled on worse splits
// than the predicting planner found.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <limits>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "coexec/plan/split.hpp"

namespace coexec::plan {

/// One timed candidate.
struct split_timing {
  std::size_t split = 0;  ///< the split point timed
  double seconds = 0;  ///< wall time of a run at that split (time_in_turns)
};

/// The median of `samples` (not empty): the upper one of an even count.
inline double median(std::vector<double> samples) {
  std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2), samples.end());
  return samples[samples.size() / 2];
}

/// Seconds a run of `op` at each of `plans` (`op.run(plan)`) takes, timed in turns: `rounds`
/// rounds (at least one), each giving every plan a turn of one untimed run and then timed runs, as many as fit
/// in about half a millisecond (1 to 8). A turn counts its fastest run, a plan the median of its
/// turns. The untimed run absorbs what changing plans costs (on discrete devices weight panels
/// move between host and device); the fastest run, that a side which sat idle runs slowly for a
/// few runs after (on the lent machine's nvidia platform the CPU after device runs took 46, 21,
/// 16, then 13 µs).
template <class Op, class Plan>
std::vector<double> time_in_turns(Op& op, const std::vector<Plan>& plans, int rounds) {
  using clock = std::chrono::steady_clock;
  constexpr double turn_seconds = 0.5e-3;
  constexpr int most_timed_runs = 8;
  std::vector<std::vector<double>> turns(plans.size());
  for (int round = 0; round < std::max(rounds, 1); ++round)
    for (std::size_t i = 0; i < plans.size(); ++i) {
      op.run(plans[i]);
      double fastest = std::numeric_limits<double>::infinity(), total = 0;
      for (int run = 0; run < most_timed_runs && (run == 0 || total < turn_seconds); ++run) {
        const auto start = clock::now();
        op.run(plans[i]);
        const double seconds = std::chrono::duration<double>(clock::now() - start).count();
        fastest = std::min(fastest, seconds);
        total += seconds;
      }
      turns[i].push_back(fastest);
    }
  std::vector<double> medians;
  for (auto& t : turns) medians.push_back(median(std::move(t)));
  return medians;
}

/// `Key` identifies a problem shape (ordered: gemm_shape, conv shapes); plans are cached per key.
template <class Key>
class grid_search {
 public:
  /// How thoroughly a shape is searched.
  struct options {
    bool exhaustive = false;  ///< time every aligned candidate instead of a coarse pass then a refinement
    std::size_t coarse_points = 17;  ///< evenly spaced candidates of the coarse pass, 0 and N included
    int repeats = 5;  ///< turns of each candidate, taken in turns with the candidates it is compared with (time_in_turns)
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
    std::map<std::size_t, double> timed = search(op);
    confirm(op, timed);
    std::vector<split_timing> timings;
    for (const auto& [split, seconds] : timed) timings.push_back({split, seconds});
    const std::size_t chosen = std::min_element(timings.begin(), timings.end(), [](const split_timing& a, const split_timing& b) {
                                 return a.seconds < b.seconds;
                               })->split;
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

  const options& settings() const noexcept { return options_; }  ///< the search's options

 private:
  // The search's fastest co-executed splits (confirm_points of them) and both single sides, timed
  // again in turns and longer, their timings replacing the search's: one noisy sample must not
  // make the oracle settle on a worse split, nor on a split slower than a single side.
  template <class Op>
  void confirm(Op& op, std::map<std::size_t, double>& timed) const {
    const std::size_t columns = op.columns();
    std::vector<std::pair<double, std::size_t>> co_executed;
    for (const auto& [split, seconds] : timed)
      if (split != 0 && split != columns) co_executed.emplace_back(seconds, split);
    std::sort(co_executed.begin(), co_executed.end());
    std::vector<std::size_t> contenders{0, columns};
    for (std::size_t i = 0; i < std::min(confirm_points, co_executed.size()); ++i) contenders.push_back(co_executed[i].second);
    const auto seconds = time_in_turns(op, contenders, 2 * options_.repeats);
    for (std::size_t i = 0; i < contenders.size(); ++i) timed[contenders[i]] = seconds[i];
  }

  template <class Op>
  std::map<std::size_t, double> search(Op& op) const {
    const auto all = aligned_splits(op.columns(), op.split_granule());
    std::map<std::size_t, double> timed;
    // Times the candidates all[i] for i in `indices` in turns; returns the fastest one's position in `indices`.
    const auto time_together = [&](const std::vector<std::size_t>& indices) {
      std::vector<std::size_t> splits;
      for (const std::size_t i : indices) splits.push_back(all[i]);
      const auto seconds = time_in_turns(op, splits, options_.repeats);
      for (std::size_t i = 0; i < splits.size(); ++i) timed[splits[i]] = seconds[i];
      return static_cast<std::size_t>(std::min_element(seconds.begin(), seconds.end()) - seconds.begin());
    };
    const auto range = [](std::size_t from, std::size_t to) {
      std::vector<std::size_t> indices;
      for (std::size_t i = from; i <= to; ++i) indices.push_back(i);
      return indices;
    };
    const std::size_t last = all.size() - 1;
    if (options_.exhaustive || all.size() <= options_.coarse_points) {
      time_together(range(0, last));
    } else {
      std::vector<std::size_t> coarse;
      for (std::size_t p = 0; p < options_.coarse_points; ++p) coarse.push_back(p * last / (options_.coarse_points - 1));
      const std::size_t best = time_together(coarse);
      // Then every candidate between the winner's neighbours, the neighbours timed again with them.
      time_together(range(coarse[best == 0 ? 0 : best - 1], coarse[std::min(best + 1, coarse.size() - 1)]));
    }
    return timed;
  }

  static constexpr std::size_t confirm_points = 3;  // co-executed splits confirmed
  options options_;
  mutable std::mutex mutex_;
  std::map<Key, std::size_t> best_;
  std::map<Key, std::vector<split_timing>> curves_;
};

}  // namespace coexec::plan
