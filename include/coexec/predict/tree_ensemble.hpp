#pragma once
// Regression tree ensembles that predict how long a layer slice takes on one side.
//
// Layout: the trees of an ensemble share one flat `node` array; tree t occupies
// nodes[roots[t], roots[t + 1]) (the last tree runs to the end) and its child indices are
// local to it, so node 0 of a tree is its root. A node with feature == -1 is a leaf.
// Children always come after their parent (left, right > own index), which is what makes a
// structure check enough to rule out cycles; scikit-learn numbers nodes this way already.
//
// Evaluation follows scikit-learn exactly: each feature is rounded to float and a split sends
// it left when x <= threshold. Thresholds are stored as floats rounded toward -inf from
// scikit-learn's doubles, so the float comparison routes every input the way scikit-learn does;
// NaN features go right.
//
// raw(x) = base_score + sum of the trees' leaf values, or their mean for a forest
// (gradient boosting's learning rate is folded into the leaves); predict(x) applies the
// output transform, exp for models trained on log(time), and multiplies by the baseline, a
// linear function of the inputs (1 where there is none). The trainer fits a roofline-like
// baseline (a constant plus FLOPs and bytes at fitted rates) and the trees learn log(time /
// baseline): how far a shape runs from it. Trees are piecewise constant, so without a baseline
// they would have to learn how time scales with size step by step from the shapes seen.
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

namespace coexec::predict {

/// How an ensemble combines its trees' leaf values.
enum class ensemble_kind : std::uint8_t {
  tree,     ///< one tree
  forest,   ///< random forest: the mean of the trees
  boosted,  ///< gradient boosting: base_score plus the sum of the trees
};

/// What predict() applies to the raw sum: exp for models trained on log(time).
enum class output_transform : std::uint8_t { identity, exp };

/// One node of a regression tree: a split on one input, or a leaf (feature == leaf).
struct node {
  static constexpr std::int32_t leaf = -1;  ///< the `feature` of a leaf

  std::int32_t feature = leaf;  ///< input index a split tests; `leaf` for a leaf
  float threshold = 0;          ///< splits go left when float(x[feature]) <= threshold
  std::int32_t left = 0;        ///< tree-local child indices, both > this node's index
  std::int32_t right = 0;       ///< see `left`
  float value = 0;  ///< a leaf's output; unused by splits

  constexpr bool is_leaf() const noexcept { return feature == leaf; }  ///< true for a leaf
  friend constexpr bool operator==(const node&, const node&) = default;
};

/// One term of an ensemble's baseline: weight x input `feature`, or the weight alone for a
/// constant term.
struct baseline_term {
  static constexpr std::int32_t constant = -1;  ///< the `feature` of a constant term

  std::int32_t feature = constant;  ///< input index the weight multiplies; `constant` for none
  double weight = 0;  ///< non-negative

  friend constexpr bool operator==(const baseline_term&, const baseline_term&) = default;
};

namespace detail {

constexpr bool is_finite(double x) noexcept {
  return x == x && x != std::numeric_limits<double>::infinity() &&
         x != -std::numeric_limits<double>::infinity();
}

/// std::exp is not constexpr in C++20; this one, used only in constant evaluation, reduces x to
/// k ln2 + r with |r| <= ln2 / 2 and sums a Taylor series for e^r, to within a few ulp.
constexpr double constexpr_exp(double x) noexcept {
  if (x != x) return x;
  if (x > 709.8) return std::numeric_limits<double>::infinity();
  if (x < -745.2) return 0;
  // ln2 split so that k * ln2_high is exact, which keeps r accurate for large |x|.
  constexpr double ln2 = 0.69314718055994530942;
  constexpr double ln2_high = 6.93147180369123816490e-01;
  constexpr double ln2_low = 1.90821492927058770002e-10;
  const auto k = static_cast<int>(x / ln2 + (x < 0 ? -0.5 : 0.5));
  const double r = (x - k * ln2_high) - k * ln2_low;
  double term = 1, sum = 1;
  for (int i = 1; i < 24; ++i) sum += term *= r / i;
  for (int i = 0; i < k; ++i) sum *= 2;
  for (int i = 0; i > k; --i) sum *= 0.5;
  return sum;
}

/// Why node `index` of a tree of `tree_size` nodes over `feature_count` inputs is malformed,
/// or nullptr when it is fine. The one place node structure is checked, so valid() and the
/// model-file loader agree.
constexpr const char* node_defect(const node& n, std::int32_t index, std::int32_t tree_size,
                                  std::size_t feature_count) noexcept {
  if (n.is_leaf()) return is_finite(n.value) ? nullptr : "leaf value is not finite";
  if (n.feature < 0 || static_cast<std::size_t>(n.feature) >= feature_count)
    return "split feature is out of range";
  if (!is_finite(n.threshold)) return "split threshold is not finite";
  if (n.left <= index || n.left >= tree_size) return "left child is not a later node of the tree";
  if (n.right <= index || n.right >= tree_size)
    return "right child is not a later node of the tree";
  return nullptr;
}

/// Why a baseline over `feature_count` inputs is malformed, or nullptr when it is fine: its
/// weights are finite and non-negative and, unless it is empty, its constant terms sum to more
/// than 0, so that it is positive for any non-negative inputs.
constexpr const char* baseline_defect(std::span<const baseline_term> baseline, std::size_t feature_count) noexcept {
  double constant = 0;
  for (const baseline_term& term : baseline) {
    if (!is_finite(term.weight) || term.weight < 0) return "baseline weight is not a finite non-negative number";
    if (term.feature == baseline_term::constant)
      constant += term.weight;
    else if (term.feature < 0 || static_cast<std::size_t>(term.feature) >= feature_count)
      return "baseline feature is out of range";
  }
  return baseline.empty() || constant > 0 ? nullptr : "baseline has no positive constant term";
}

}  // namespace detail

/// A non-owning ensemble: spans over node and root arrays that live elsewhere (constexpr arrays
/// in a generated header, or an `ensemble`). Aggregate, so a header can build one in a constant.
struct ensemble_view {
  ensemble_kind kind = ensemble_kind::boosted;  ///< how the trees combine
  output_transform transform = output_transform::identity;  ///< applied by predict() to the raw output
  double base_score = 0;  ///< added to the combined leaf values
  std::size_t feature_count = 0;  ///< inputs the trees read; predict() needs at least this many
  std::span<const std::int32_t> roots;  ///< offset of each tree's first node in `nodes`
  std::span<const node> nodes;  ///< every tree's nodes, tree by tree
  std::span<const baseline_term> baseline;  ///< what predict() scales: the sum of these terms (none: 1)

  constexpr std::size_t tree_count() const noexcept { return roots.size(); }  ///< number of trees

  /// Nodes of tree t.
  constexpr std::span<const node> tree(std::size_t t) const noexcept {
    const std::size_t end = t + 1 < roots.size() ? roots[t + 1] : nodes.size();
    return nodes.subspan(roots[t], end - roots[t]);
  }

  /// The untransformed model output; `features` holds at least feature_count values.
  /// Trusts the structure: check valid() once when the model is built, not here.
  constexpr double raw(std::span<const double> features) const noexcept {
    assert(features.size() >= feature_count);
    double sum = 0;
    for (const std::int32_t root : roots) {
      const node* tree = nodes.data() + root;
      std::int32_t at = 0;
      while (!tree[at].is_leaf()) {
        const node& split = tree[at];
        at = static_cast<float>(features[split.feature]) <= split.threshold ? split.left
                                                                             : split.right;
      }
      sum += tree[at].value;
    }
    if (kind == ensemble_kind::forest) sum /= static_cast<double>(roots.size());
    return base_score + sum;
  }

  /// The baseline at `features`: the sum of its terms, 1 where it has none.
  constexpr double scale(std::span<const double> features) const noexcept {
    if (baseline.empty()) return 1;
    double sum = 0;
    for (const baseline_term& term : baseline)
      sum += term.feature == baseline_term::constant ? term.weight : term.weight * features[term.feature];
    return sum;
  }

  /// The prediction: raw() passed through the output transform, times scale().
  constexpr double predict(std::span<const double> features) const noexcept {
    const double value = raw(features);
    if (transform == output_transform::identity) return value * scale(features);
    return (std::is_constant_evaluated() ? detail::constexpr_exp(value) : std::exp(value)) * scale(features);
  }

  /// The first structural problem, or nullptr when predict() is safe to call.
  constexpr const char* defect() const noexcept {
    if (kind > ensemble_kind::boosted) return "unknown ensemble kind";
    if (transform > output_transform::exp) return "unknown output transform";
    if (!detail::is_finite(base_score)) return "base score is not finite";
    if (const char* why = detail::baseline_defect(baseline, feature_count)) return why;
    if (roots.empty()) return "ensemble has no trees";
    if (kind == ensemble_kind::tree && roots.size() != 1) return "a single tree needs one root";
    if (roots[0] != 0) return "first tree does not start at node 0";
    for (std::size_t t = 1; t < roots.size(); ++t)
      if (roots[t] <= roots[t - 1]) return "tree offsets are not increasing";
    if (static_cast<std::size_t>(roots.back()) >= nodes.size())
      return "last tree starts past the node array";
    for (std::size_t t = 0; t < roots.size(); ++t) {
      const std::span<const node> nodes_of_tree = tree(t);
      const auto size = static_cast<std::int32_t>(nodes_of_tree.size());
      for (std::int32_t i = 0; i < size; ++i)
        if (const char* why = detail::node_defect(nodes_of_tree[i], i, size, feature_count))
          return why;
    }
    return nullptr;
  }

  constexpr bool valid() const noexcept { return defect() == nullptr; }  ///< true when defect() finds nothing, so predict() is safe
};

/// An ensemble that owns its arrays, for models built or loaded at run time.
struct ensemble {
  ensemble_kind kind = ensemble_kind::boosted;  ///< how the trees combine
  output_transform transform = output_transform::identity;  ///< applied by predict() to the raw output
  double base_score = 0;  ///< added to the combined leaf values
  std::size_t feature_count = 0;  ///< inputs the trees read; predict() needs at least this many
  std::vector<std::int32_t> roots;  ///< offset of each tree's first node in `nodes`
  std::vector<node> nodes;  ///< every tree's nodes, tree by tree
  std::vector<baseline_term> baseline;  ///< what predict() scales: the sum of these terms (none: 1)

  /// Appends a tree given with tree-local child indices.
  void add_tree(std::span<const node> tree) {
    roots.push_back(static_cast<std::int32_t>(nodes.size()));
    nodes.insert(nodes.end(), tree.begin(), tree.end());
  }

  /// A view of this ensemble, valid while the ensemble is alive and unchanged.
  ensemble_view view() const noexcept {
    return {kind, transform, base_score, feature_count, roots, nodes, baseline};
  }
  /// The prediction, as ensemble_view::predict(); check valid() once first.
  double predict(std::span<const double> features) const noexcept {
    return view().predict(features);
  }
  bool valid() const noexcept { return view().valid(); }  ///< true when the structure is sound, as ensemble_view::valid()

  friend bool operator==(const ensemble&, const ensemble&) = default;
};

}  // namespace coexec::predict
