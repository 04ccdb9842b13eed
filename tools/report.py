#!/usr/bin/env python3
"""Reports how well the planner does, per platform.

  planner quality   from bench_linear / bench_conv results (Google Benchmark JSON, names
                    BM_<Op>/<shape>/<mode>, modes cpu, gpu, coexec_oracle, coexec_planned, ...):
                    the geometric mean over shapes of oracle time / planned time (1 = as good as
                    the grid search; the benchmarks' oracle_ratio counter where present, from runs
                    of both timed in turns) and the worst shape. Give JSON files (--bench-json), or
                    binaries to run (--run, with --platform).
  predictor         held-out accuracy from train_predictor.py's --predictions CSV.
  plots             with --calibration DIR (what tools/calibrate_and_train.sh wrote: linear.csv,
                    linear_totals.csv, <platform>.model): PNGs of linear layers of measured CPU, device and co-executed
                    time against the split for a few shapes, the model's predicted curves, the
                    split the predictions choose and the measured best (oracle) split.

  tools/report.py --bench-json pocl-16.json --predictions out/pocl-16/predictions.csv \\
                  --calibration out/pocl-16 --plots plots/
"""

import argparse
import csv
import json
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

# ----------------------------------------------------------------------------- benchmarks


def run_benchmarks(binaries: list[str], platform: str) -> list[dict]:
    results = []
    for binary in binaries:
        out = subprocess.run([binary, f"--platform={platform}", "--benchmark_format=json"],
                             check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out))
    return results


def planner_quality(result: dict) -> tuple[str, dict[str, float]]:
    """Platform name and oracle / planned time for every shape that has both modes."""
    platform = result.get("context", {}).get("coexec_platform", "default")
    times: dict[str, dict[str, float]] = defaultdict(dict)
    for bench in result.get("benchmarks", []):
        if bench.get("run_type", "iteration") != "iteration":
            continue
        # Drop the suffixes Google Benchmark appends: /real_time, /min_time:0.2, ...
        parts = [p for p in bench["name"].split("/") if p != "real_time" and ":" not in p]
        if len(parts) < 3:
            continue
        shape, mode = "/".join(parts[:-1]), parts[-1]
        times[shape][mode] = bench["real_time"]
        if mode == "coexec_planned" and "oracle_ratio" in bench:
            times[shape]["oracle_ratio"] = bench["oracle_ratio"]
    # oracle_ratio, where the benchmark reports it, comes from runs of both timed in turns: the
    # two modes' own loops ran at different moments.
    ratios = {shape: modes.get("oracle_ratio", modes["coexec_oracle"] / modes["coexec_planned"])
              for shape, modes in times.items() if "coexec_oracle" in modes and "coexec_planned" in modes}
    return platform, ratios


def print_quality(results: list[dict]) -> None:
    """Per platform and operator (BM_Linear, BM_Conv): geomean and worst of oracle / planned."""
    by_platform: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for result in results:
        platform, ratios = planner_quality(result)
        if not ratios:
            print(f"{platform}: no shape has both coexec_oracle and coexec_planned")
        for shape, ratio in ratios.items():
            by_platform[platform, shape.split("/")[0]][shape] = ratio
    for (platform, op), ratios in sorted(by_platform.items()):
        platform = f"{platform} {op}"
        geomean = math.exp(sum(math.log(r) for r in ratios.values()) / len(ratios))
        worst = min(ratios, key=ratios.get)
        print(f"{platform}: oracle/planned geometric mean {geomean:.3f} over {len(ratios)} shapes; "
              f"worst {worst} at {ratios[worst]:.3f}")


# ------------------------------------------------------------------------------ predictor


def print_accuracy(path: Path) -> None:
    errors: dict[str, list[float]] = defaultdict(list)
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            if row["held_out"] == "1":
                errors[f"{row['op']}/{row['side']}"].append(
                    abs(float(row["held_out_us"]) / float(row["time_us"]) - 1))
    for name, e in sorted(errors.items()):
        within = sum(x <= 0.10 for x in e) / len(e)
        print(f"{name}: held-out MAPE {100 * sum(e) / len(e):.1f}%, {100 * within:.0f}% within 10% "
              f"({len(e)} rows)")


# ---------------------------------------------------------------------------------- plots


def load_models(path: Path) -> dict[str, tuple[list[str], dict]]:
    """The model file of include/coexec/predict/model_file.hpp: name -> (features, ensemble)."""
    lines = [line.split() for line in path.read_text().splitlines()]
    lines = [t for t in lines if t and not t[0].startswith("#")]
    models, at = {}, 2
    for _ in range(int(lines[1][1])):
        name, features = lines[at][1], lines[at][3:]
        kind, transform, base, _, tree_count = lines[at + 1][1:]
        at += 2
        trees = []
        for _ in range(int(tree_count)):
            size = int(lines[at][1])
            trees.append(lines[at + 1:at + 1 + size])
            at += 1 + size
        models[name] = (features, {"kind": kind, "exp": transform == "exp", "base": float(base), "trees": trees})
    return models


def predict(ensemble: dict, x: list[float]) -> float:
    total = 0.0
    for tree in ensemble["trees"]:
        node = tree[0]
        while node[0] == "split":
            feature, threshold, left, right = int(node[1]), float(node[2]), int(node[3]), int(node[4])
            node = tree[left] if x[feature] <= threshold else tree[right]
        total += float(node[1])
    if ensemble["kind"] == "forest":
        total /= len(ensemble["trees"])
    raw = ensemble["base"] + total
    return math.exp(raw) if ensemble["exp"] else raw


def plot_calibration(directory: Path, model_file: Path | None, plots: Path, shapes: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model_file = model_file or next(iter(sorted(directory.glob("*.model"))), None)
    models = load_models(model_file) if model_file else {}
    predicted: dict[tuple[str, str, int], float] = {}  # (shape, side, side's columns) -> us
    with open(directory / "linear.csv", newline="") as file:
        for row in csv.DictReader(file):
            name = f"{row['op']}/{row['side']}"
            if name in models:
                features, ensemble = models[name]
                predicted[row["shape_id"], row["side"], int(float(row["n"]))] = predict(
                    ensemble, [float(row[f]) for f in features])
    curves: dict[str, list[dict]] = defaultdict(list)
    with open(directory / "linear_totals.csv", newline="") as file:
        for row in csv.DictReader(file):
            curves[row["shape_id"]].append({k: float(v) if k != "shape_id" else v for k, v in row.items()})
    plots.mkdir(parents=True, exist_ok=True)
    # The shapes where co-execution matters most: the largest gain of the best split over one side.
    def gain(points):
        ends = [p["total_us"] for p in points if p["split"] in (0, p["n"])]
        return min(ends) / min(p["total_us"] for p in points)
    for shape_id in sorted(curves, key=lambda s: -gain(curves[s]))[:shapes]:
        points = sorted(curves[shape_id], key=lambda p: p["split"])
        n = int(points[0]["n"])
        splits = [p["split"] for p in points]
        figure, axes = plt.subplots(figsize=(7, 4))
        axes.plot(splits, [p["cpu_us"] for p in points], "o-", label="CPU measured")
        axes.plot(splits, [p["gpu_us"] for p in points], "s-", label="device measured")
        axes.plot(splits, [p["total_us"] for p in points], "k^-", label="co-executed measured")
        oracle = min(points, key=lambda p: p["total_us"])["split"]
        axes.axvline(oracle, color="k", linestyle=":", label=f"oracle split {oracle:.0f}")
        pred_cpu = [predicted.get((shape_id, "cpu", int(s)), 0.0) for s in splits]
        pred_gpu = [predicted.get((shape_id, "gpu", n - int(s)), 0.0) for s in splits]
        if models:
            axes.plot(splits, pred_cpu, "C0--", label="CPU predicted")
            axes.plot(splits, pred_gpu, "C1--", label="device predicted")
            chosen = min(zip(splits, pred_cpu, pred_gpu), key=lambda t: max(t[1], t[2]))[0]
            axes.axvline(chosen, color="r", linestyle="--", label=f"predicted split {chosen:.0f}")
        axes.set(xlabel="split (channels on the CPU)", ylabel="time (us)", title=shape_id)
        axes.legend(fontsize=7)
        figure.tight_layout()
        figure.savefig(plots / f"{shape_id}.png", dpi=110)
        plt.close(figure)
        print(f"wrote {plots / (shape_id + '.png')}")


# ----------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench-json", type=Path, nargs="*", default=[], help="Google Benchmark JSON outputs")
    parser.add_argument("--run", nargs="*", default=[], help="bench_linear / bench_conv binaries to run")
    parser.add_argument("--platform", default="default", help="for --run")
    parser.add_argument("--predictions", type=Path, nargs="*", default=[], help="train_predictor.py --predictions CSVs")
    parser.add_argument("--calibration", type=Path, help="calibrate_and_train.sh output directory")
    parser.add_argument("--model", type=Path, help="model file for the predicted curves (default: <calibration>/*.model)")
    parser.add_argument("--plots", type=Path, default=Path("plots"), help="where PNGs go")
    parser.add_argument("--shapes", type=int, default=4, help="shapes to plot")
    args = parser.parse_args(argv)

    results = [json.loads(path.read_text()) for path in args.bench_json] + run_benchmarks(args.run, args.platform)
    if results:
        print_quality(results)
    for path in args.predictions:
        print(f"predictor ({path}):")
        print_accuracy(path)
    if args.calibration:
        plot_calibration(args.calibration, args.model, args.plots, args.shapes)
    if not (results or args.predictions or args.calibration):
        parser.error("nothing to report: give --bench-json, --run, --predictions or --calibration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
