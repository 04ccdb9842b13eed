#pragma once
// A model header in the format tools/train_predictor.py generates, written by hand: a 2-tree
// boosted model over (m, k) trained on log(time_us / baseline), with the baseline 0.5 + 0.25 m,
// small enough to check on paper. At m = 4, k = 128 tree 0 gives +0.5 (k > 64) and tree 1 gives
// -0.25 (m <= 8), so raw = 1.0 + 0.5 - 0.25 = 1.25, the baseline is 1.5 and
// predict = 1.5 e^1.25 us.
#include <array>
#include <cstdint>
#include <string_view>

#include "coexec/predict/tree_ensemble.hpp"

namespace coexec::predict::models::example {

namespace linear_cpu {
inline constexpr std::string_view name = "linear/cpu";
inline constexpr std::array<std::string_view, 2> features{"m", "k"};
inline constexpr std::array<std::int32_t, 2> roots{0, 3};
inline constexpr std::array<baseline_term, 2> baseline{{{baseline_term::constant, 0.5}, {0, 0.25}}};
inline constexpr std::array<node, 6> nodes{{
    // tree 0
    {1, 64.0f, 1, 2, 0.0f},
    {-1, 0.0f, 0, 0, -0.5f},
    {-1, 0.0f, 0, 0, 0.5f},
    // tree 1
    {0, 8.0f, 1, 2, 0.0f},
    {-1, 0.0f, 0, 0, -0.25f},
    {-1, 0.0f, 0, 0, 0.25f},
}};
inline constexpr ensemble_view model{
    .kind = ensemble_kind::boosted,
    .transform = output_transform::exp,
    .base_score = 1.0,
    .feature_count = 2,
    .roots = roots,
    .nodes = nodes,
    .baseline = baseline,
};
static_assert(model.valid());
// Spot check against the trainer's own evaluation (raw is the value before the transform).
static_assert(model.raw(std::array{4.0, 128.0}) == 1.25);
static_assert(model.scale(std::array{4.0, 128.0}) == 1.5);
}  // namespace linear_cpu

}  // namespace coexec::predict::models::example
