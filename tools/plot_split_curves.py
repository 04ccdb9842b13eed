#!/usr/bin/env python3
"""Plots time against split for a few shapes per platform, from coexec-calibrate's side rows.

tools/report.py --calibration plots the measured co-executed totals (totals.csv). The committed
calibration sets (models/calibration/<platform>.csv) hold only the per-side rows the trainer
reads: for each split s of a shape, the CPU's time for channels [0, s) and the device's for
[s, N), both measured in the co-executed run (the device alone where it finished first). This
script rebuilds the curves from those rows: CPU, device and max(CPU, device) (what a co-executed
run takes, ignoring the sides' interference), marks the measured best split (the oracle), and,
given the platform's .model file, overlays the model's predicted curves and the split they choose.

  tools/plot_split_curves.py --out docs/split_curves.png \\
      pocl-16=models/calibration/pocl-16.csv:models/pocl-16.model \\
      nvidia=models/calibration/nvidia.csv:models/nvidia.model
"""

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import load_models, predict  # noqa: E402

DEFAULT_SHAPES = ["llama-attn-m1n4096k4096", "bert-ffn1-m128n3072k768", "mobilenet-fc-m8n1000k1280"]


def curves(csv_path: Path, model_path: Path | None) -> dict[str, list[tuple]]:
    """shape_id -> [(split, cpu_us, gpu_us, predicted cpu_us, predicted gpu_us)], by split."""
    models = load_models(model_path) if model_path else {}
    sides: dict[str, dict[tuple[str, int], tuple[float, float]]] = defaultdict(dict)
    with open(csv_path, newline="") as file:
        for row in csv.DictReader(file):
            name = f"{row['op']}/{row['side']}"
            guess = float("nan")
            if name in models:
                features, ensemble = models[name]
                guess = predict(ensemble, [float(row[f]) if row[f] else 0.0 for f in features])
            sides[row["shape_id"]][row["side"], int(float(row["n"]))] = (float(row["time_us"]), guess)
    result = {}
    for shape_id, times in sides.items():
        n = max(columns for _, columns in times)
        splits = sorted({c for side, c in times if side == "cpu"} | {n - c for side, c in times if side == "gpu"})
        points = []
        for s in splits:
            cpu = times.get(("cpu", s), (0.0, 0.0)) if s > 0 else (0.0, 0.0)
            gpu = times.get(("gpu", n - s), (0.0, 0.0)) if s < n else (0.0, 0.0)
            points.append((s, cpu[0], gpu[0], cpu[1], gpu[1]))
        result[shape_id] = points
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("platforms", nargs="+", help="NAME=CSV[:MODEL]")
    parser.add_argument("--shapes", nargs="*", default=DEFAULT_SHAPES, help="shape_ids to plot")
    parser.add_argument("--out", type=Path, default=Path("docs/split_curves.png"))
    parser.add_argument("--dpi", type=int, default=72)
    args = parser.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(args.platforms), len(args.shapes)
    figure, grid = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for r, spec in enumerate(args.platforms):
        name, _, paths = spec.partition("=")
        csv_path, _, model_path = paths.partition(":")
        data = curves(Path(csv_path), Path(model_path) if model_path else None)
        for c, shape_id in enumerate(args.shapes):
            axes, points = grid[r][c], data[shape_id]
            split = [p[0] for p in points]
            total = [max(p[1], p[2]) for p in points]
            axes.plot(split, [p[1] for p in points], "C0o-", ms=3, label="CPU")
            axes.plot(split, [p[2] for p in points], "C1s-", ms=3, label="device")
            axes.plot(split, total, "k^-", ms=3, label="max(CPU, device)")
            oracle = split[total.index(min(total))]
            axes.axvline(oracle, color="k", linestyle=":", label=f"oracle split {oracle}")
            if any(p[3] == p[3] for p in points):  # predictions present (not NaN)
                axes.plot(split, [p[3] for p in points], "C0--", lw=1, label="CPU predicted")
                axes.plot(split, [p[4] for p in points], "C1--", lw=1, label="device predicted")
                chosen = min(points, key=lambda p: max(p[3], p[4]))[0]
                axes.axvline(chosen, color="r", linestyle="--", lw=1, label=f"predicted split {chosen}")
            axes.set_title(f"{name}: {shape_id}", fontsize=9)
            axes.set_xlabel("split (output channels on the CPU)", fontsize=8)
            axes.set_ylabel("time (us)", fontsize=8)
            axes.tick_params(labelsize=7)
            axes.legend(fontsize=6)
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=args.dpi)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
