#pragma once
// Two-dimensional split plans: an operator whose output can be cut along more than one
// dimension (conv2d: output channels, or output rows for layers with few channels, CoDL's
// hybrid dimension) is planned as (dimension, split). The CPU computes [0, split) along that
// dimension, the device [split, extent).
//
// hybrid_search is the oracle for such operators: one grid_search per dimension, each timing
// that dimension's aligned candidates, and the faster of the two winners, timed again in turns,
// is the plan.
#include <algorithm>
#include <compare>
#include <cstddef>
#include <map>
#include <mutex>
#include <type_traits>
#include <vector>

#include "coexec/plan/grid_search.hpp"

namespace coexec::plan {

/// What a split cuts.
enum class split_dimension {
  channels,  ///< output channels: the CPU computes channels [0, split), the device the rest
  rows       ///< output rows of every channel: the CPU computes rows [0, split), the device the rest
};

/// Name of a dimension, for logs and benchmark output.
constexpr const char* to_string(split_dimension d) noexcept { return d == split_dimension::channels ? "channels" : "rows"; }

/// A plan for a two-dimensional operator: the CPU computes [0, split) along `dimension`, the device
/// [split, extent).
struct split_plan {
  split_dimension dimension = split_dimension::channels;  ///< the dimension cut
  std::size_t split = 0;  ///< where it is cut
  friend constexpr auto operator<=>(const split_plan&, const split_plan&) = default;
};

inline constexpr split_dimension all_dimensions[] = {split_dimension::channels, split_dimension::rows};  ///< every split_dimension, in enum order

template <class Key>
/// The oracle planner for operators cut along several dimensions: one grid_search per dimension;
/// the faster of their winners is the plan. `Key` identifies a problem shape, as for grid_search.
class hybrid_search {
 public:
  using options = typename grid_search<Key>::options;  ///< search options, applied to each dimension

  hybrid_search() = default;
  explicit hybrid_search(options opts) : searches_{grid_search<Key>(opts), grid_search<Key>(opts)} {}  ///< a search with non-default options

  /// The fastest plan for `key`, timing on first use. `op` offers
  /// `std::size_t extent(split_dimension) const`, `std::size_t split_granule(split_dimension) const`
  /// and `void run(split_plan)`; a dimension of extent 0 is not searched.
  template <class Op>
  split_plan choose(const Key& key, Op&& op) {
    {
      std::lock_guard lock(mutex_);
      if (auto found = best_.find(key); found != best_.end()) return found->second;
    }
    std::vector<split_plan> winners;  // each dimension's
    for (split_dimension d : all_dimensions) {
      if (op.extent(d) == 0) continue;
      along<std::remove_reference_t<Op>> adapter{op, d};
      winners.push_back({d, search(d).choose(key, adapter)});
    }
    split_plan best;
    if (winners.size() == 1) best = winners.front();
    if (winners.size() > 1) {  // timed again in turns: each search timed its winner at another moment
      const auto seconds = time_in_turns(op, winners, 2 * searches_[0].settings().repeats);
      best = winners[static_cast<std::size_t>(std::min_element(seconds.begin(), seconds.end()) - seconds.begin())];
    }
    std::lock_guard lock(mutex_);
    return best_[key] = best;
  }

  /// Every timing measured for `key` along `d`, sorted by split (empty before the first choose()).
  std::vector<split_timing> curve(const Key& key, split_dimension d) const { return search(d).curve(key); }

  /// Forgets every plan and timing, so the next choose() of each shape times again.
  void clear() {
    std::lock_guard lock(mutex_);
    best_.clear();
    for (auto& s : searches_) s.clear();
  }

 private:
  // One dimension of a two-dimensional operator, as grid_search sees an operator.
  template <class Op>
  struct along {
    Op& op;
    split_dimension dimension;
    std::size_t columns() const { return op.extent(dimension); }
    std::size_t split_granule() const { return op.split_granule(dimension); }
    void run(std::size_t split) { op.run(split_plan{dimension, split}); }
  };

  grid_search<Key>& search(split_dimension d) { return searches_[static_cast<int>(d)]; }
  const grid_search<Key>& search(split_dimension d) const { return searches_[static_cast<int>(d)]; }

  grid_search<Key> searches_[2];
  mutable std::mutex mutex_;
  std::map<Key, split_plan> best_;
};

}  // namespace coexec::plan
