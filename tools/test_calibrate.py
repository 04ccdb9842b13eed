#!/usr/bin/env python3
"""Tests coexec-calibrate's passes, --noise and --resume on the tiny sweeps.

Every check compares which points were written (op, side, shape and features), never a timing:
a sweep in several passes writes the same points as one pass; each shape's rows are whole and
in the file once, also after a sweep cut short by its budget or by a kill (a truncated line)
is resumed; the noise file repeats exactly the rows of every 8th shape, beside their times.

Usage: test_calibrate.py --calibrate build/tools/coexec-calibrate [--platform default]
                         [--workdir DIR]; exits non-zero on failure.
"""

import argparse
import collections
import csv
import subprocess
import sys
import tempfile
from pathlib import Path


def run(args: argparse.Namespace, workdir: Path, name: str, *options: str) -> None:
    command = [str(args.calibrate), f"--platform={args.platform}", "--sweep=tiny", "--repeats=1",
               f"--out={workdir / name}.csv", *options]
    print("$", " ".join(command[1:]), flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"coexec-calibrate exited with {result.returncode}:\n{result.stderr}")


def read(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        return list(reader.fieldnames or []), list(reader)


def point(header: list[str], row: dict) -> tuple:
    """A row's point: every cell but the measured ones (times and the measured dispatch cost)."""
    return tuple(row[name] for name in header if not name.endswith("_us"))


def points(path: Path) -> collections.Counter:
    header, rows = read(path)
    return collections.Counter(point(header, row) for row in rows)


def check_sweep(reference: Path, out: Path, noise: Path | None = None, totals: Path | None = None) -> None:
    """`out` holds the reference's points, each once; the noise and totals files fit it."""
    expected, got = points(reference), points(out)
    assert got == expected, f"{out.name}: points differ from {reference.name}:\n" \
                            f"missing {expected - got}\nextra {got - expected}"
    header, rows = read(out)
    assert all(float(row["time_us"]) > 0 for row in rows), f"{out.name}: a time is not positive"
    shapes = sorted({row["shape_id"] for row in rows})
    if noise:
        noise_header, repeats = read(noise)
        assert noise_header == header + ["repeat_us"], f"{noise.name}: header {noise_header}"
        first = {point(header, row): row["time_us"] for row in rows}
        noisy = sorted({row["shape_id"] for row in repeats})
        # Every 8th shape of the sweep, the first included (tiny sweeps are not shuffled).
        assert len(noisy) == (len(shapes) + 7) // 8, f"{noise.name}: repeats of {noisy}"
        measured = collections.Counter(point(header, row) for row in repeats)
        wanted = collections.Counter(point(header, row) for row in rows if row["shape_id"] in noisy)
        assert measured == wanted, f"{noise.name}: not the rows of {noisy}, once each"
        for row in repeats:
            assert row["time_us"] == first[point(header, row)], f"{noise.name}: time_us is not the row's"
            assert float(row["repeat_us"]) > 0, f"{noise.name}: a repeat is not positive"
    if totals:
        _, splits = read(totals)
        keys = collections.Counter((row["shape_id"], row.get("dimension", ""), row["split"]) for row in splits)
        assert max(keys.values()) == 1, f"{totals.name}: a split point twice"
        assert sorted({row["shape_id"] for row in splits}) == shapes, f"{totals.name}: other shapes than the rows"
    print(f"  {out.name}: {sum(got.values())} rows of {len(shapes)} shapes as in {reference.name}"
          + (f", repeats of {noisy}" if noise else ""))


def cut_short(source: Path, target: Path, keep: int, skip: str = "") -> list[str]:
    """Writes the rows of the first `keep` shapes of `source` but `skip` to `target`, then the
    first row of the next shape cut in half without its newline, as a kill in mid-write leaves
    it. Returns the shapes kept."""
    lines = source.read_text().splitlines()
    column = lines[0].split(",").index("shape_id")
    kept: list[str] = []
    with open(target, "w") as file:
        file.write(lines[0] + "\n")
        for line in lines[1:]:
            shape = line.split(",")[column]
            if shape == skip:
                continue
            if shape not in kept and len(kept) == keep:
                file.write(line[: len(line) // 2])
                break
            if shape not in kept:
                kept.append(shape)
            file.write(line + "\n")
    return kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibrate", type=Path, required=True)
    parser.add_argument("--platform", default="default")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        for op in ("linear", "conv"):
            print(f"{op}:")
            op_run = lambda name, *options: run(args, workdir, f"{op}-{name}", f"--op={op}", *options)  # noqa: E731
            csv_of = lambda name: workdir / f"{op}-{name}.csv"  # noqa: E731
            # One pass, the reference.
            op_run("one", "--passes=1")
            check_sweep(csv_of("one"), csv_of("one"))
            # Two passes over blocks of one shape each (--pass-seconds=0): a noisy shape's repeat
            # is measured in the next block.
            op_run("two", "--passes=2", "--pass-seconds=0", f"--noise={csv_of('two-noise')}",
                   f"--totals={csv_of('two-totals')}")
            check_sweep(csv_of("one"), csv_of("two"), csv_of("two-noise"), csv_of("two-totals"))
            if op == "conv":
                continue  # the rest is the same code for both operators
            # Three passes over one block of the whole sweep, which waits between passes; its
            # noisy shape's repeat is a block of its own after it.
            op_run("three", "--passes=3", "--pass-seconds=0.2", f"--noise={csv_of('three-noise')}")
            check_sweep(csv_of("one"), csv_of("three"), csv_of("three-noise"))
            # No budget: nothing measured; resumed: all of it.
            for options in (["--budget-seconds=0"], ["--resume"]):
                op_run("budget", "--passes=2", "--pass-seconds=0", f"--noise={csv_of('budget-noise')}", *options)
            check_sweep(csv_of("one"), csv_of("budget"), csv_of("budget-noise"))
            # Cut short wherever a small budget ends it, then resumed.
            for options in (["--budget-seconds=0.1"], ["--resume"]):
                op_run("short", "--passes=2", "--pass-seconds=0", f"--noise={csv_of('short-noise')}", *options)
            check_sweep(csv_of("one"), csv_of("short"), csv_of("short-noise"))
            # Killed while writing the third shape's rows: the two shapes before it are kept, the
            # third and its noise and totals lines (here, cut lines) are measured again.
            kept = cut_short(csv_of("two"), csv_of("killed"), 2)
            cut_short(csv_of("two-noise"), csv_of("killed-noise"), 1)
            cut_short(csv_of("two-totals"), csv_of("killed-totals"), 3)
            op_run("killed", "--passes=2", "--pass-seconds=0", "--resume", f"--noise={csv_of('killed-noise')}",
                   f"--totals={csv_of('killed-totals')}")
            check_sweep(csv_of("one"), csv_of("killed"), csv_of("killed-noise"), csv_of("killed-totals"))
            _, rows = read(csv_of("killed"))
            assert [row["time_us"] for row in rows if row["shape_id"] in kept] == \
                   [row["time_us"] for row in read(csv_of("two"))[1] if row["shape_id"] in kept], \
                   "the rows kept by the resume are not the first run's"
            # Killed between writing a noisy shape's repeats and its rows, after the rest of its
            # block (blocks of several shapes write it last): its noise lines go.
            noisy = read(csv_of("two-noise"))[1][0]["shape_id"]
            cut_short(csv_of("two"), csv_of("killed2"), 2, skip=noisy)
            cut_short(csv_of("two-noise"), csv_of("killed2-noise"), 1)
            op_run("killed2", "--passes=2", "--pass-seconds=0", "--resume", f"--noise={csv_of('killed2-noise')}")
            check_sweep(csv_of("one"), csv_of("killed2"), csv_of("killed2-noise"))
    print("test_calibrate: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
