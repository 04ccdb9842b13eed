#!/usr/bin/env python3
"""Trains the planner's execution-time predictors from calibration measurements.

Input: one or more CSVs (e.g. linear.csv and conv.csv of coexec-calibrate), each with the header
`op,side,shape_id,<feature columns...>,time_us`, one row per measurement. Each (op, side) pair,
e.g. conv/gpu, gets its own model over the feature columns that are filled in for it (ops may
use different columns and leave the others empty); all models go into one model file/header.

Each model is a baseline times a tree ensemble. The baseline is a roofline-like linear fit,
a constant plus FLOPs and bytes (whichever of the BASELINE_FEATURES the model has) at
non-negative rates, fitted for least relative error; the trees are fitted to log(time_us /
baseline), how far each shape runs from it. Trees alone are piecewise constant and would have
to learn how time scales with size step by step from the shapes they saw. Models are scored by
k-fold cross-validation over whole shapes (each shape predicted by a model fitted without any
row of it), then refitted on all rows and exported as
  --model FILE   the run-time text format of include/coexec/predict/model_file.hpp, and/or
  --header FILE  a C++ header of constexpr arrays, the format of
                 include/coexec/predict/models/example.hpp (namespace models::<--name>).
Ensembles stay small (--max-trees, --max-depth) because the planner makes 10-20 predictions
per new shape within about 20 us; the predict cost is reported as node visits per prediction.

--noise FILE... (coexec-calibrate --noise: the CSV's rows plus a repeat_us column, each row
measured twice) prints beside each model's held-out accuracy the share of rows whose repeat is
within ±10% of time_us, as a prediction must be: the noise floor, about the most any model can
reach on that data.
"""

import argparse
import csv
import json
import math
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from scipy.optimize import nnls
from sklearn.model_selection import GroupKFold
from sklearn.tree import DecisionTreeRegressor

KEY_COLUMNS = ("op", "side", "shape_id")
TARGET_COLUMN = "time_us"
REPEAT_COLUMN = "repeat_us"
KINDS = ("gbt", "forest", "tree")
# Ensemble kind names of the C++ side (ensemble_kind).
EXPORTED_KIND = {"gbt": "boosted", "forest": "forest", "tree": "tree"}
# Exported leaves and thresholds are floats, so the export may differ from scikit-learn by
# float rounding; anything beyond this is an export bug.
EXPORT_TOLERANCE = 1e-4
# Inputs the baseline may scale with: the work a side does and the bytes it moves.
BASELINE_FEATURES = ("flops", "critical_flops", "bytes")
# The baseline's least constant (us), so it stays positive where the fit leaves none.
MIN_BASELINE_CONSTANT_US = 1e-3


class InputError(Exception):
    """A problem with the input data or arguments, reported without a traceback."""


@dataclass
class Group:
    """The measurements of one (op, side) pair."""

    name: str  # "op/side", the model's name
    features: list[str]
    x: np.ndarray  # rows x features
    time_us: np.ndarray
    shapes: np.ndarray  # shape_id of each row
    rows: np.ndarray  # CSV line of each row


@dataclass
class Baseline:
    """constant + sum of weight * x[:, feature] over the terms: what the trees' exp scales."""

    constant: float
    terms: list[tuple[int, float]]  # (feature index, weight > 0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # Summed term by term in the C++ evaluator's order, so both round alike.
        total = np.full(len(x), self.constant)
        for feature, weight in self.terms:
            total += weight * x[:, feature]
        return total


@dataclass
class Fitted:
    """A baseline and the estimator fitted to log(time / baseline)."""

    kind: str
    baseline: Baseline
    estimator: object

    def predict_us(self, x: np.ndarray) -> np.ndarray:
        return np.exp(self.estimator.predict(x)) * self.baseline(x)


@dataclass
class Evaluation:
    kind: str
    predicted_us: np.ndarray  # each row's prediction by a model fitted without its shape

    def relative_errors(self, group: Group) -> np.ndarray:
        return np.abs(self.predicted_us - group.time_us) / group.time_us

    def mape(self, group: Group) -> float:
        return float(np.mean(self.relative_errors(group)))

    def within_10_percent(self, group: Group) -> float:
        return within_10_percent(self.relative_errors(group))


def within_10_percent(relative_errors: np.ndarray) -> float:
    return float(np.mean(relative_errors <= 0.10))


@dataclass
class Tree:
    """One tree in the layout of coexec::predict::node: children are tree-local indices,
    leaves have feature -1, splits go left when float32(x) <= threshold."""

    feature: np.ndarray  # int32
    threshold: np.ndarray  # float32
    left: np.ndarray  # int32
    right: np.ndarray  # int32
    value: np.ndarray  # float32


@dataclass
class Ensemble:
    """An exported model: what model_file.hpp and the generated header hold."""

    kind: str  # ensemble_kind name
    base_score: float
    features: list[str]
    trees: list[Tree]
    baseline: Baseline

    def raw(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The C++ evaluator's raw() for each row, bit for bit, and the nodes it visits."""
        x32 = x.astype(np.float32)
        everyone = np.arange(len(x))
        total = np.zeros(len(x))
        visits = np.zeros(len(x), dtype=np.int64)
        for tree in self.trees:
            at = np.zeros(len(x), dtype=np.int64)
            while True:
                inner = tree.feature[at] >= 0
                if not inner.any():
                    break
                rows, nodes = everyone[inner], at[inner]
                go_left = x32[rows, tree.feature[nodes]] <= tree.threshold[nodes]
                at[rows] = np.where(go_left, tree.left[nodes], tree.right[nodes])
                visits += inner
            total += tree.value[at].astype(np.float64)
        if self.kind == "forest":
            total /= len(self.trees)
        return self.base_score + total, visits

    def max_depth(self) -> int:
        def depth(tree: Tree, at: int) -> int:
            if tree.feature[at] < 0:
                return 0
            return 1 + max(depth(tree, tree.left[at]), depth(tree, tree.right[at]))

        return max(depth(tree, 0) for tree in self.trees)


# ---------------------------------------------------------------------------------- input


def read_groups(path: Path) -> list[Group]:
    with open(path, newline="") as file:
        reader = csv.reader(file)
        header = [name.strip() for name in next(reader, [])]
        missing = [c for c in (*KEY_COLUMNS, TARGET_COLUMN) if c not in header]
        if missing:
            raise InputError(f"{path}: header lacks column(s) {', '.join(missing)}")
        feature_columns = [c for c in header if c not in (*KEY_COLUMNS, TARGET_COLUMN)]
        if not feature_columns:
            raise InputError(f"{path}: no feature columns")
        rows_by_group: dict[str, list[tuple[int, dict[str, str]]]] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise InputError(f"{path}:{line}: {len(row)} cells, header has {len(header)}")
            cells = {name: cell.strip() for name, cell in zip(header, row)}
            name = f"{cells['op']}/{cells['side']}"
            check_name(name, f"{path}:{line}: model name")
            rows_by_group.setdefault(name, []).append((line, cells))
    if not rows_by_group:
        raise InputError(f"{path}: no measurements")
    return [make_group(path, name, rows_by_group[name], feature_columns)
            for name in sorted(rows_by_group)]


def make_group(path: Path, name: str, rows: list[tuple[int, dict[str, str]]],
               feature_columns: list[str]) -> Group:
    features = [c for c in feature_columns if all(cells[c] for _, cells in rows)]
    for column in feature_columns:
        if column not in features and any(cells[column] for _, cells in rows):
            raise InputError(f"{path}: column {column} is filled in only some {name} rows")
    if not features:
        raise InputError(f"{path}: {name} rows have no filled-in feature column")
    for feature in features:
        check_name(feature, f"{path}: feature column")
    return Group(
        name=name,
        features=features,
        x=np.array([[number(path, line, cells, f) for f in features] for line, cells in rows]),
        time_us=np.array([positive(path, line, cells, TARGET_COLUMN) for line, cells in rows]),
        shapes=np.array([cells["shape_id"] for _, cells in rows]),
        rows=np.array([line for line, _ in rows]),
    )


def number(path: Path, line: int, cells: dict[str, str], column: str) -> float:
    try:
        value = float(cells[column])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(f"{path}:{line}: {column} is not a finite number")
    return value


def positive(path: Path, line: int, cells: dict[str, str], column: str) -> float:
    value = number(path, line, cells, column)
    if value <= 0:
        raise InputError(f"{path}:{line}: {column} must be positive")
    return value


def read_noise(path: Path) -> dict[str, list[float]]:
    """Model name -> relative difference of each row's repeat to its time_us, from a
    coexec-calibrate --noise file."""
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        missing = [c for c in ("op", "side", TARGET_COLUMN, REPEAT_COLUMN)
                   if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: header lacks column(s) {', '.join(missing)}")
        differences: dict[str, list[float]] = {}
        for cells in reader:
            first = positive(path, reader.line_num, cells, TARGET_COLUMN)
            again = positive(path, reader.line_num, cells, REPEAT_COLUMN)
            name = f"{cells['op']}/{cells['side']}"
            differences.setdefault(name, []).append(abs(again / first - 1))
    return differences


def check_name(name: str, what: str) -> None:
    """Names must be what model_file.hpp accepts: 1-128 printable ASCII, no whitespace."""
    if not 0 < len(name) <= 128 or not all("!" <= c <= "~" for c in name):
        raise InputError(f"{what} {name!r} must be 1-128 printable ASCII characters, no spaces")


# ------------------------------------------------------------------------------- training


def make_estimator(kind: str, args: argparse.Namespace):
    if kind == "gbt":
        return GradientBoostingRegressor(n_estimators=args.max_trees, max_depth=args.max_depth,
                                         learning_rate=args.learning_rate,
                                         random_state=args.seed)
    if kind == "forest":
        return RandomForestRegressor(n_estimators=args.max_trees, max_depth=args.max_depth,
                                     random_state=args.seed)
    return DecisionTreeRegressor(max_depth=args.max_depth, random_state=args.seed)


def fit_baseline(group: Group, rows: np.ndarray) -> Baseline:
    """Non-negative rates minimising the relative error of constant + rates . BASELINE_FEATURES
    over `rows`; columns are scaled to 1 for the solver."""
    columns = [group.features.index(f) for f in BASELINE_FEATURES if f in group.features]
    a = np.column_stack([np.ones(len(rows)), group.x[np.ix_(rows, columns)]])
    scale = np.maximum(np.abs(a).max(axis=0), 1e-30)
    inverse_time = 1 / group.time_us[rows]
    solution, _ = nnls(a / scale * inverse_time[:, np.newaxis], group.time_us[rows] * inverse_time)
    weights = solution / scale
    return Baseline(max(float(weights[0]), MIN_BASELINE_CONSTANT_US),
                    [(c, float(w)) for c, w in zip(columns, weights[1:]) if w > 0])


def fit(group: Group, rows: np.ndarray, kind: str, args: argparse.Namespace) -> Fitted:
    baseline = fit_baseline(group, rows)
    target = np.log(group.time_us[rows] / baseline(group.x[rows]))
    return Fitted(kind, baseline, make_estimator(kind, args).fit(group.x[rows], target))


def evaluate(group: Group, kind: str, args: argparse.Namespace) -> Evaluation:
    """Predicts every row by a model fitted on the other folds' shapes."""
    predicted = np.empty(len(group.x))
    folds = GroupKFold(n_splits=min(args.folds, len(set(group.shapes))))
    for train, test in folds.split(group.x, groups=group.shapes):
        predicted[test] = fit(group, train, kind, args).predict_us(group.x[test])
    return Evaluation(kind, predicted)


def export(fitted: Fitted, features: list[str]) -> Ensemble:
    estimator, kind = fitted.estimator, fitted.kind
    if kind == "gbt":
        # scikit-learn predicts init + learning_rate * sum(trees); fold the rate into the leaves.
        trees = [export_tree(t.tree_, estimator.learning_rate) for t in estimator.estimators_[:, 0]]
        base_score = float(np.ravel(estimator.init_.constant_)[0])
    elif kind == "forest":
        trees = [export_tree(t.tree_, 1.0) for t in estimator.estimators_]
        base_score = 0.0
    else:
        trees = [export_tree(estimator.tree_, 1.0)]
        base_score = 0.0
    return Ensemble(EXPORTED_KIND[kind], base_score, features, trees, fitted.baseline)


def export_tree(tree, scale: float) -> Tree:
    is_leaf = tree.children_left < 0
    # scikit-learn compares float32 features with double thresholds; rounding each threshold
    # down to float32 keeps every float32 input on the same side.
    threshold = tree.threshold.astype(np.float32)
    rounded_up = threshold.astype(np.float64) > tree.threshold
    threshold[rounded_up] = np.nextafter(threshold[rounded_up], np.float32(-np.inf))
    return Tree(
        feature=np.where(is_leaf, -1, tree.feature).astype(np.int32),
        threshold=np.where(is_leaf, np.float32(0), threshold).astype(np.float32),
        left=np.where(is_leaf, 0, tree.children_left).astype(np.int32),
        right=np.where(is_leaf, 0, tree.children_right).astype(np.int32),
        value=np.where(is_leaf, scale * tree.value[:, 0, 0], 0).astype(np.float32),
    )


# -------------------------------------------------------------------------------- output


def float_text(value) -> str:
    """Shortest text that reads back as the same float32 (np.float32) or double (float)."""
    return str(value) if isinstance(value, np.float32) else repr(float(value))


def model_file_text(models: list[Ensemble], names: list[str], source: str) -> str:
    lines = ["coexec-model 2", f"# trained by tools/train_predictor.py from {source}",
             f"models {len(models)}"]
    for name, model in zip(names, models):
        lines.append(f"model {name} {len(model.features)} {' '.join(model.features)}")
        lines.append(f"ensemble {model.kind} exp {float_text(model.base_score)} "
                     f"{len(model.features)} {len(model.trees)}")
        terms = [("constant", model.baseline.constant),
                 *((str(f), w) for f, w in model.baseline.terms)]
        lines.append(f"baseline {len(terms)} " + " ".join(f"{f} {float_text(w)}" for f, w in terms))
        for tree in model.trees:
            lines.append(f"tree {len(tree.feature)}")
            for i in range(len(tree.feature)):
                if tree.feature[i] < 0:
                    lines.append(f"leaf {float_text(tree.value[i])}")
                else:
                    lines.append(f"split {tree.feature[i]} {float_text(tree.threshold[i])} "
                                 f"{tree.left[i]} {tree.right[i]}")
    return "\n".join(lines) + "\n"


def header_text(namespace: str, models: list[Ensemble], names: list[str],
                spot_checks: list[np.ndarray], source: str) -> str:
    lines = [
        "#pragma once",
        f"// Model header generated by tools/train_predictor.py from {source}; regenerate it",
        "// rather than edit it. Models predict time in us: exp(trees) x baseline, the trees trained",
        "// on log(time_us / baseline).",
        "#include <array>",
        "#include <cstdint>",
        "#include <string_view>",
        "",
        '#include "coexec/predict/tree_ensemble.hpp"',
        "",
        f"namespace coexec::predict::models::{namespace} {{",
        "",
    ]
    for name, model, spot in zip(names, models, spot_checks):
        lines += model_header_lines(name, model, spot)
        lines.append("")
    lines.append(f"}}  // namespace coexec::predict::models::{namespace}")
    return "\n".join(lines) + "\n"


def model_header_lines(name: str, model: Ensemble, spot: np.ndarray) -> list[str]:
    identifier = cpp_identifier(name)
    roots = np.cumsum([0] + [len(t.feature) for t in model.trees[:-1]])
    node_count = sum(len(t.feature) for t in model.trees)
    features = ", ".join(json.dumps(f) for f in model.features)
    spot_raw, _ = model.raw(spot[np.newaxis, :])
    spot_scale = model.baseline(spot[np.newaxis, :])[0]
    terms = [f"{{baseline_term::constant, {float_text(model.baseline.constant)}}}",
             *(f"{{{f}, {float_text(w)}}}" for f, w in model.baseline.terms)]
    lines = [
        f"namespace {identifier} {{",
        f"inline constexpr std::string_view name = {json.dumps(name)};",
        f"inline constexpr std::array<std::string_view, {len(model.features)}> features{{{features}}};",
        *wrapped(f"inline constexpr std::array<std::int32_t, {len(roots)}> roots",
                 [str(r) for r in roots]),
        *wrapped(f"inline constexpr std::array<baseline_term, {len(terms)}> baseline",
                 ["{" + ", ".join(terms) + "}"]),
        f"inline constexpr std::array<node, {node_count}> nodes{{{{",
    ]
    for index, tree in enumerate(model.trees):
        lines.append(f"    // tree {index}")
        for i in range(len(tree.feature)):
            lines.append(f"    {{{tree.feature[i]}, {float_text(tree.threshold[i])}f, "
                         f"{tree.left[i]}, {tree.right[i]}, {float_text(tree.value[i])}f}},")
    lines += [
        "}};",
        "inline constexpr ensemble_view model{",
        f"    .kind = ensemble_kind::{model.kind},",
        "    .transform = output_transform::exp,",
        f"    .base_score = {float_text(model.base_score)},",
        f"    .feature_count = {len(model.features)},",
        "    .roots = roots,",
        "    .nodes = nodes,",
        "    .baseline = baseline,",
        "};",
        "static_assert(model.valid());",
        "// Spot check against the trainer's own evaluation (raw is the value before the transform).",
        f"static_assert(model.raw(std::array{{{', '.join(float_text(v) for v in spot)}}}) == "
        f"{float_text(spot_raw[0])});",
        f"static_assert(model.scale(std::array{{{', '.join(float_text(v) for v in spot)}}}) == "
        f"{float_text(spot_scale)});",
        f"}}  // namespace {identifier}",
    ]
    return lines


def wrapped(declaration: str, items: list[str]) -> list[str]:
    """`declaration{items};` on one line when it fits in 100 columns, else wrapped."""
    line = f"{declaration}{{{', '.join(items)}}};"
    if len(line) <= 100:
        return [line]
    body = textwrap.wrap(", ".join(items), width=96, initial_indent="    ",
                         subsequent_indent="    ", break_on_hyphens=False)
    return [f"{declaration}{{", *body[:-1], body[-1] + "};"]


def cpp_identifier(name: str) -> str:
    identifier = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return identifier if identifier[0].isalpha() else "_" + identifier


def write_predictions(path: Path, groups: list[Group], evaluations: list[Evaluation],
                      final_us: list[np.ndarray]) -> None:
    """Every row's cross-validated prediction (held_out_us, from a model that never saw its
    shape; held_out is 1 on every row) and final-model prediction, for plots and for checking
    exported models against scikit-learn."""
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["row", "op", "side", "shape_id", "held_out", TARGET_COLUMN,
                         "held_out_us", "final_us"])
        for group, evaluation, final in zip(groups, evaluations, final_us):
            op, side = group.name.split("/", 1)
            for i in range(len(group.rows)):
                writer.writerow([group.rows[i], op, side, group.shapes[i], 1,
                                 repr(float(group.time_us[i])),
                                 repr(float(evaluation.predicted_us[i])),
                                 repr(float(final[i]))])


# ---------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path, nargs="+", help="calibration measurements")
    parser.add_argument("--kind", choices=("auto", *KINDS), default="auto",
                        help="ensemble kind; auto picks the lowest held-out MAPE per model")
    parser.add_argument("--model", type=Path, help="write the run-time model file here")
    parser.add_argument("--header", type=Path, help="write the generated C++ header here")
    parser.add_argument("--name", help="namespace of the header's models (models::<name>)")
    parser.add_argument("--predictions", type=Path, help="write per-row predictions (CSV) here")
    parser.add_argument("--noise", type=Path, nargs="+", action="extend", default=[],
                        help="measurements taken twice (coexec-calibrate --noise): the noise floor")
    # 32 trees of depth 5 take about 0.5 us per prediction, so a plan's 10-20 stay in budget.
    parser.add_argument("--max-trees", type=int, default=32, help="trees per model")
    parser.add_argument("--max-depth", type=int, default=5, help="depth of each tree")
    parser.add_argument("--learning-rate", type=float, default=0.2, help="for gbt")
    parser.add_argument("--folds", type=int, default=5,
                        help="cross-validation folds of whole shapes for evaluation")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.header and not (args.name and args.name.isascii() and args.name.isidentifier()):
        parser.error("--header needs --name, a C++ identifier")
    if not 1 <= args.max_trees <= 1000 or not 1 <= args.max_depth <= 16:
        parser.error("--max-trees must be in [1, 1000] and --max-depth in [1, 16]")
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        groups = [group for path in args.csv for group in read_groups(path)]
        names = [g.name for g in groups]
        if len(set(names)) != len(names):
            raise InputError("an (op, side) pair is in more than one CSV: " + ", ".join(sorted(names)))
        identifiers = [cpp_identifier(g.name) for g in groups]
        if len(set(identifiers)) != len(identifiers):
            raise InputError("model names collide as C++ identifiers: " + ", ".join(identifiers))
        for group in groups:
            if len(set(group.shapes)) < 2:
                raise InputError(f"{group.name} needs at least 2 shapes to hold some out")
        noise: dict[str, list[float]] = {}
        for path in args.noise:
            for name, differences in read_noise(path).items():
                noise.setdefault(name, []).extend(differences)
    except (InputError, OSError) as problem:
        print(f"train_predictor: {problem}", file=sys.stderr)
        return 2

    kinds = KINDS if args.kind == "auto" else (args.kind,)
    print(f"{'model':<12} {'kind':<7} {'shapes':>6} {'rows':>6} {'folds':>6} "
          f"{'MAPE':>7} {'±10%':>7} {'noise':>7} {'trees':>5} {'depth':>5} {'visits':>7}")
    models, evaluations, final_us, spot_checks = [], [], [], []
    for group in groups:
        candidates = [evaluate(group, kind, args) for kind in kinds]
        best = min(candidates, key=lambda c: c.mape(group))
        if len(candidates) > 1:
            scores = ", ".join(f"{c.kind} {100 * c.mape(group):.1f}%" for c in candidates)
            print(f"{group.name:<12} held-out MAPE by kind: {scores}")

        fitted = fit(group, np.arange(len(group.x)), best.kind, args)
        model = export(fitted, group.features)
        raw, visits = model.raw(group.x)
        final = fitted.predict_us(group.x)
        exported = np.exp(raw) * model.baseline(group.x)
        mismatch = float(np.max(np.abs(exported - final) / final))
        if mismatch > EXPORT_TOLERANCE:
            raise RuntimeError(f"{group.name}: exported model differs from scikit-learn "
                               f"by {mismatch:.2e} (relative)")

        floor = (f"{100 * within_10_percent(np.array(noise[group.name])):>6.1f}%"
                 if group.name in noise else f"{'-':>7}")
        print(f"{group.name:<12} {best.kind:<7} {len(set(group.shapes)):>6} {len(group.x):>6} "
              f"{args.folds:>6} {100 * best.mape(group):>6.1f}% "
              f"{100 * best.within_10_percent(group):>6.1f}% {floor} {len(model.trees):>5} "
              f"{model.max_depth():>5} {visits.mean():>7.0f}")
        models.append(model)
        evaluations.append(best)
        final_us.append(final)
        spot_checks.append(group.x[0])

    print("MAPE, ±10%: of each row predicted by a model fitted without its shape (folds: of "
          "whole shapes);\n"
          "noise: repeats (--noise) within 10% of the first measurement, about the most a model can "
          "reach;\nvisits: tree nodes a prediction walks, mean over rows (the predict cost)")
    source = " and ".join(path.name for path in args.csv)
    if args.model:
        args.model.write_text(model_file_text(models, names, source))
    if args.header:
        args.header.write_text(header_text(args.name, models, names, spot_checks, source))
    if args.predictions:
        write_predictions(args.predictions, groups, evaluations, final_us)
    return 0


if __name__ == "__main__":
    sys.exit(main())
