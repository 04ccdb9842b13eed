#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "coexec/predict/model_file.hpp"
#include "coexec/predict/models/example.hpp"
#include "coexec/predict/tree_ensemble.hpp"

using namespace coexec;
using namespace coexec::predict;

namespace {

constexpr node split(std::int32_t feature, float threshold, std::int32_t left, std::int32_t right) {
  return {feature, threshold, left, right, 0.0f};
}
constexpr node leaf(float value) { return {node::leaf, 0.0f, 0, 0, value}; }

constexpr bool near(double a, double b, double relative) {
  const double difference = a > b ? a - b : b - a;
  return difference <= relative * (a > 0 ? a : -a);
}

// Two stumps over (x0, x1): tree 0 splits x0 at 1, tree 1 splits x1 at 10.
ensemble two_stumps(ensemble_kind kind, output_transform transform = output_transform::identity,
                    double base_score = 0) {
  ensemble e;
  e.kind = kind;
  e.transform = transform;
  e.base_score = base_score;
  e.feature_count = 2;
  e.add_tree(std::array{split(0, 1.0f, 1, 2), leaf(1.0f), leaf(2.0f)});
  e.add_tree(std::array{split(1, 10.0f, 1, 2), leaf(10.0f), leaf(20.0f)});
  return e;
}

// A model set that exercises every node and ensemble form.
model_set sample_set() {
  model_set set;
  set.models["linear/cpu"] = {{"m", "k"}, two_stumps(ensemble_kind::boosted, output_transform::exp, 0.125)};
  set.models["linear/cpu"].trees.baseline = {{baseline_term::constant, 2.5}, {1, 0.25}};
  set.models["linear/gpu"] = {{"m", "k"}, two_stumps(ensemble_kind::forest)};
  ensemble deep;
  deep.kind = ensemble_kind::tree;
  deep.feature_count = 3;
  deep.add_tree(std::array{split(2, 0.1f, 1, 4), split(0, -3.5f, 2, 3), leaf(-1.0f), leaf(1e-3f),
                           leaf(123456.78f)});
  set.models["conv/cpu"] = {{"n", "c", "hw"}, deep};
  return set;
}

std::string saved(const model_set& set) {
  std::ostringstream out;
  save(out, set);
  return out.str();
}

// The error loading `text` as a model set throws, or nothing.
std::optional<coexec::error> load_error(const std::string& text) {
  std::istringstream in(text);
  try {
    load_model_set(in);
  } catch (const coexec::error& e) {
    return e;
  }
  return std::nullopt;
}

// `text` with the first occurrence of `from` replaced by `to`.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

const std::vector<std::array<double, 3>> probes = {
    {0, 0, 0}, {1, 10, 0.1}, {1.0000001, 10.000001, 0.1000001}, {-4, 50, -1}, {3, 9, 7}, {-3.5, 1, 0}};

}  // namespace

// The example header is usable in constant expressions, which is the point of its format.
static_assert(models::example::linear_cpu::model.valid());
static_assert(near(models::example::linear_cpu::model.predict(std::array{4.0, 128.0}),
                   1.5 * 3.4903429574618414, 1e-14));

TEST_CASE("the example model predicts the hand-computed value at run time") {
  const auto& model = models::example::linear_cpu::model;
  CHECK(model.raw(std::array{4.0, 128.0}) == 1.25);
  CHECK(model.predict(std::array{4.0, 128.0}) == std::exp(1.25) * 1.5);
  CHECK(model.raw(std::array{9.0, 64.0}) == 1.0 - 0.5 + 0.25);
}

TEST_CASE("the constexpr exp agrees with std::exp") {
  for (double x = -700; x < 700; x += 0.37) CHECK(near(detail::constexpr_exp(x), std::exp(x), 1e-14));
  CHECK(detail::constexpr_exp(1000) == std::numeric_limits<double>::infinity());
  CHECK(detail::constexpr_exp(-1000) == 0);
}

TEST_CASE("boosting adds the trees to the base score, a forest averages them") {
  const std::array x{0.5, 11.0};  // tree 0 -> 1 (left), tree 1 -> 20 (right)
  CHECK(two_stumps(ensemble_kind::boosted, output_transform::identity, 0.5).predict(x) == 21.5);
  CHECK(two_stumps(ensemble_kind::forest).predict(x) == 10.5);
  CHECK(two_stumps(ensemble_kind::boosted, output_transform::exp, -21).predict(x) == std::exp(0.0));

  ensemble single;
  single.kind = ensemble_kind::tree;
  single.feature_count = 1;
  single.add_tree(std::array{leaf(7.0f)});
  CHECK(single.valid());
  CHECK(single.predict(std::array{123.0}) == 7.0);
}

TEST_CASE("the baseline scales the prediction by its terms' sum, 1 where it has none") {
  ensemble e = two_stumps(ensemble_kind::boosted, output_transform::exp, -11);
  const std::array x{0.5, 4.0};  // trees: 1 + 10, so exp(raw) = 1
  CHECK(e.predict(x) == 1.0);
  e.baseline = {{baseline_term::constant, 3}, {1, 0.5}, {0, 2}};
  CHECK(e.valid());
  CHECK(e.view().scale(x) == 3 + 0.5 * 4 + 2 * 0.5);
  CHECK(e.predict(x) == 6.0);
  e.transform = output_transform::identity;
  e.base_score = -10;
  CHECK(e.predict(x) == 6.0);  // raw 1 times the baseline
}

TEST_CASE("splits compare the feature rounded to float, as scikit-learn does") {
  const ensemble e = two_stumps(ensemble_kind::boosted);
  // 1 + 1e-9 rounds to 1.0f, which is <= the threshold 1.0f: left, like scikit-learn's float32 X.
  CHECK(e.predict(std::array{1.0 + 1e-9, 0.0}) == 1.0 + 10.0);
  CHECK(e.predict(std::array{1.0 + 1e-6, 0.0}) == 2.0 + 10.0);
  CHECK(e.predict(std::array{std::nan(""), 0.0}) == 2.0 + 10.0);  // NaN goes right
}

namespace {

constexpr std::array<std::int32_t, 1> one_root{0};
constexpr std::array stump{split(0, 1.0f, 1, 2), leaf(1.0f), leaf(2.0f)};

constexpr bool stump_with_node(std::size_t index, node replacement, std::size_t feature_count = 1) {
  std::array nodes = stump;
  nodes[index] = replacement;
  return ensemble_view{.feature_count = feature_count, .roots = one_root, .nodes = nodes, .baseline = {}}.valid();
}

constexpr bool stump_with_baseline(std::initializer_list<baseline_term> terms) {
  const std::span<const baseline_term> baseline(terms.begin(), terms.size());
  return ensemble_view{.feature_count = 1, .roots = one_root, .nodes = stump, .baseline = baseline}.valid();
}

constexpr bool stump_with_roots(std::span<const std::int32_t> roots,
                                ensemble_kind kind = ensemble_kind::boosted) {
  return ensemble_view{.kind = kind, .feature_count = 1, .roots = roots, .nodes = stump, .baseline = {}}.valid();
}

}  // namespace

TEST_CASE("valid() rejects malformed structures, in constant expressions too") {
  static_assert(stump_with_node(0, split(0, 1.0f, 1, 2)));
  static_assert(!stump_with_node(0, split(0, 1.0f, 0, 2)));  // self loop
  static_assert(!stump_with_node(1, split(0, 1.0f, 0, 2)));  // back edge: a cycle
  static_assert(!stump_with_node(0, split(0, 1.0f, 1, 3)));  // child past the tree
  static_assert(!stump_with_node(0, split(0, 1.0f, -1, 2)));
  static_assert(!stump_with_node(0, split(1, 1.0f, 1, 2)));  // feature >= feature_count
  static_assert(!stump_with_node(0, split(-2, 1.0f, 1, 2)));
  static_assert(!stump_with_node(0, split(0, std::numeric_limits<float>::quiet_NaN(), 1, 2)));
  static_assert(!stump_with_node(1, leaf(std::numeric_limits<float>::infinity())));
  static_assert(!stump_with_node(0, split(0, 1.0f, 1, 2), 0));

  static_assert(stump_with_baseline({}));
  static_assert(stump_with_baseline({{baseline_term::constant, 1e-3}, {0, 0}}));
  static_assert(!stump_with_baseline({{0, 1}}));  // no constant: zero at x = 0
  static_assert(!stump_with_baseline({{baseline_term::constant, 0}, {0, 1}}));
  static_assert(!stump_with_baseline({{baseline_term::constant, 1}, {0, -1}}));  // negative rate
  static_assert(!stump_with_baseline({{baseline_term::constant, 1}, {1, 1}}));  // feature >= feature_count
  static_assert(!stump_with_baseline({{baseline_term::constant, 1}, {-2, 1}}));
  static_assert(!stump_with_baseline({{baseline_term::constant, std::numeric_limits<double>::infinity()}}));

  static_assert(stump_with_roots(std::array{0}, ensemble_kind::tree));
  static_assert(!stump_with_roots({}));
  static_assert(!stump_with_roots(std::array{1}));          // does not start at node 0
  static_assert(!stump_with_roots(std::array{0, 0}));       // empty tree
  static_assert(!stump_with_roots(std::array{0, 3}));       // starts past the nodes
  static_assert(!stump_with_roots(std::array{0, 2, 1}));    // decreasing
  // Tree 1 would be the leaves alone, leaving tree 0's children outside it.
  static_assert(!stump_with_roots(std::array{0, 1}));
  static_assert(!stump_with_roots(std::array{0}, static_cast<ensemble_kind>(7)));

  ensemble two_trees = two_stumps(ensemble_kind::tree);
  CHECK_FALSE(two_trees.valid());
  CHECK(std::string(two_trees.view().defect()) == "a single tree needs one root");
  ensemble bad_base = two_stumps(ensemble_kind::boosted, output_transform::identity, std::nan(""));
  CHECK_FALSE(bad_base.valid());
  ensemble bad_transform = two_stumps(ensemble_kind::boosted);
  bad_transform.transform = static_cast<output_transform>(2);
  CHECK_FALSE(bad_transform.valid());
}

TEST_CASE("a saved model set loads back equal and predicts the same") {
  const model_set set = sample_set();
  std::istringstream in(saved(set));
  const model_set loaded = load_model_set(in);
  CHECK(loaded == set);
  for (const auto& [name, entry] : set.models)
    for (const auto& x : probes)
      CHECK(loaded.at(name).trees.predict(x) == entry.trees.predict(x));
  CHECK(saved(loaded) == saved(set));
}

TEST_CASE("a single ensemble round-trips, and through a file") {
  const ensemble e = two_stumps(ensemble_kind::boosted, output_transform::exp, 0.1);
  std::ostringstream out;
  save(out, e);
  std::istringstream in(out.str());
  CHECK(load_ensemble(in) == e);

  const auto path = std::filesystem::temp_directory_path() / "coexec_test_predict.model";
  save(path, sample_set());
  CHECK(load_model_set(path) == sample_set());
  save(path, e);
  CHECK(load_ensemble(path) == e);
  std::filesystem::remove(path);
}

TEST_CASE("the file format is the documented one") {
  model_set set;
  set.models["x"] = {{"a"}, two_stumps(ensemble_kind::forest)};
  set.models["x"].trees.feature_count = 1;
  set.models["x"].trees.nodes[3].feature = 0;
  CHECK(saved(set) ==
        "coexec-model 2\n"
        "models 1\n"
        "model x 1 a\n"
        "ensemble forest identity 0 1 2\n"
        "baseline 0\n"
        "tree 3\nsplit 0 1 1 2\nleaf 1\nleaf 2\n"
        "tree 3\nsplit 0 10 1 2\nleaf 10\nleaf 20\n");
  // Comments, blank lines, tabs and CRLF are accepted.
  std::istringstream in(
      "# trained 2024\r\ncoexec-model 1\r\n\r\nmodels 0\r\n  # no models\t\r\n");
  CHECK(load_model_set(in).models.empty());
  set.models["x"].trees.baseline = {{baseline_term::constant, 0.5}, {0, 1.25}};
  CHECK(saved(set).find("\nbaseline 2 constant 0.5 0 1.25\n") != std::string::npos);
  // Version 1 files have no baseline lines, and load without a baseline.
  std::istringstream version_1(
      "coexec-model 1\nmodels 1\nmodel x 1 a\nensemble tree identity 0 1 1\ntree 1\nleaf 4\n");
  const model_set old = load_model_set(version_1);
  CHECK(old.at("x").trees.baseline.empty());
  CHECK(old.at("x").trees.predict(std::array{0.0}) == 4.0);
}

TEST_CASE("malformed model files are errors that name the line") {
  const std::string good = saved(sample_set());
  REQUIRE_FALSE(load_error(good));

  const auto check_rejected = [](const std::string& text, int line) {
    INFO("input:\n" << text);
    const auto failure = load_error(text);
    REQUIRE(failure);
    INFO("message: " << failure->what());
    CHECK(failure->code() == errc::invalid_argument);
    CHECK(std::string(failure->what()).find("line " + std::to_string(line) + ":") != std::string::npos);
  };
  // Line 1 is the header, 2 "models 3", 3 "model conv/cpu ...", 4 its ensemble, 5 its
  // baseline, 6 "tree 5", 7 its root split; 14 is linear/cpu's baseline.
  check_rejected("", 1);
  check_rejected(replaced(good, "coexec-model 2", "coexec-model 3"), 1);
  check_rejected(replaced(good, "coexec-model 2", "coexec-mode1 2"), 1);
  check_rejected(replaced(good, "models 3", "models 4"), 34);
  check_rejected(replaced(good, "models 3", "models 99999999999999999999999"), 2);
  check_rejected(replaced(good, "models 3", "models -1"), 2);
  check_rejected(replaced(good, "models 3", "models 1000000"), 2);
  check_rejected(replaced(good, "models 3", "models 2"), 23);  // trailing content
  check_rejected(replaced(good, "model conv/cpu 3", "model conv/cpu 4"), 3);
  check_rejected(replaced(good, "model conv/cpu 3", "model conv/cpu 2000"), 3);
  check_rejected(replaced(good, "model linear/cpu", "model conv/cpu"), 12);  // duplicate
  check_rejected(replaced(good, "ensemble tree identity 0 3 1", "ensemble tree identity 0 3 2"), 4);
  check_rejected(replaced(good, "ensemble tree identity 0 3 1", "ensemble tree identity 0 2 1"), 4);
  check_rejected(replaced(good, "ensemble tree identity 0 3 1", "ensemble bush identity 0 3 1"), 4);
  check_rejected(replaced(good, "ensemble tree identity 0 3 1", "ensemble tree log 0 3 1"), 4);
  check_rejected(replaced(good, "ensemble tree identity 0 3 1", "ensemble tree identity nan 3 1"), 4);
  check_rejected(replaced(good, "ensemble tree identity 0 3 1", "ensemble tree identity 0 3 1 7"), 4);
  check_rejected(replaced(good, "ensemble boosted exp 0.125 2 2", "ensemble boosted exp 0.125 2 1000000000"), 13);
  check_rejected(replaced(good, "tree 5", "tree 0"), 6);
  check_rejected(replaced(good, "tree 5", "tree 4294967297"), 6);
  check_rejected(replaced(good, "tree 5", "tree 6"), 12);
  check_rejected(replaced(good, "split 2 0.1 1 4", "split 2 nan 1 4"), 7);
  check_rejected(replaced(good, "split 2 0.1 1 4", "split 2 inf 1 4"), 7);
  check_rejected(replaced(good, "split 2 0.1 1 4", "split 2 1e39 1 4"), 7);
  check_rejected(replaced(good, "split 2 0.1 1 4", "split 2 0.1x 1 4"), 7);
  check_rejected(replaced(good, "split 2 0.1 1 4", "split 3 0.1 1 4"), 7);   // feature range
  check_rejected(replaced(good, "split 2 0.1 1 4", "split -1 0.1 1 4"), 7);  // the leaf marker (a fuzzer found it)
  check_rejected(replaced(good, "split 2 0.1 1 4", "split 2 0.1 1 5"), 7);   // child range
  check_rejected(replaced(good, "split 2 0.1 1 4", "split 2 0.1 0 4"), 7);   // cycle
  check_rejected(replaced(good, "split 2 0.1 1 4", "split 2 0.1 1 4294967296"), 7);
  check_rejected(replaced(good, "split 2 0.1 1 4", "split 2 0.1 1"), 7);
  check_rejected(replaced(good, "split 0 -3.5 2 3", "split 0 -3.5 2 1"), 8);  // back edge
  check_rejected(replaced(good, "leaf -1", "leaf NaN"), 9);
  check_rejected(replaced(good, "leaf -1", "leaf"), 9);
  check_rejected(replaced(good, "leaf -1", "node -1"), 9);
  check_rejected(replaced(good, "\nleaf -1\n", "\n" + std::string(70000, 'x') + "\n"), 9);
  check_rejected(replaced(good, "model conv/cpu", "model conv\x01"), 3);
  check_rejected(replaced(good, "baseline 0\ntree 5", "tree 5"), 5);  // version 2 needs it
  check_rejected(replaced(good, "baseline 0\ntree 5", "baseline 1\ntree 5"), 5);
  // linear/cpu's baseline "baseline 2 constant 2.5 1 0.25" (line 14), replaced by each of these:
  for (const char* bad : {"baseline 2 constant 2.5 2 0.25",    // feature out of range
                          "baseline 2 constant 2.5 1 -0.25",   // negative weight
                          "baseline 2 constant nan 1 0.25",    // weight not finite
                          "baseline 1 1 0.25",                 // no constant term
                          "baseline 3 constant 2.5 1 0.25",    // terms do not match the count
                          "baseline 2 constant 2.5 one 0.25",  // feature not an index
                          "baseline 9999 constant 2.5 1 0.25"})
    check_rejected(replaced(good, "baseline 2 constant 2.5 1 0.25", bad), 14);
}

TEST_CASE("every truncation of a model file is an error, never a crash") {
  const std::string good = saved(sample_set());
  for (std::size_t end = good.find('\n'); end + 1 < good.size(); end = good.find('\n', end + 1)) {
    const auto failure = load_error(good.substr(0, end + 1));
    CHECK(failure);
  }
  // Cutting inside a number may still leave a valid file; it must never crash.
  for (std::size_t size = 0; size < good.size(); ++size) load_error(good.substr(0, size));
}

TEST_CASE("file and lookup failures") {
  CHECK_THROWS_AS(load_model_set(std::filesystem::path("/nonexistent/coexec.model")), coexec::error);
  try {
    load_ensemble(std::filesystem::path("/nonexistent/coexec.model"));
  } catch (const coexec::error& e) {
    CHECK(e.code() == errc::io);
  }
  CHECK_THROWS_AS(sample_set().at("pool/cpu"), coexec::error);

  std::ostringstream out;
  model_set bad = sample_set();
  bad.models["conv/cpu"].features.pop_back();
  CHECK_THROWS_AS(save(out, bad), coexec::error);
  bad = sample_set();
  bad.models["has space"] = bad.models["conv/cpu"];
  CHECK_THROWS_AS(save(out, bad), coexec::error);
  CHECK_THROWS_AS(save(out, two_stumps(ensemble_kind::tree)), coexec::error);
  CHECK(out.str().empty());  // nothing is written before the checks pass
}
