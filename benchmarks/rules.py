"""The rules in oocml's code that stand on a measurement, each measured against its alternative.

    python benchmarks/rules.py                        # about 20 s on an idle 2-core machine
    python benchmarks/rules.py --repeat 9 --json rules.json
    python benchmarks/rules.py --quick                # tiny sizes: checks that it runs only

Every rule is timed side by side with its alternative in the same run, on the project's
own code: both sides of a rule run in turn, ``--repeat`` times (after one untimed run
each), and the median of each is reported (``time.perf_counter``). The ratio is
alternative / ours: above 1 the rule is faster. See benchmarks/README.md, "Measurements
behind the rules", for what each row measures and which code rule it backs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sklearn
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import confusion_matrix

import oocml  # registers the .ml accessor
from oocml.blocks import BLOCK_BYTES, apply_rows, in_place, numeric_arrays, numeric_head, side_by_side
from oocml.engine.stream import BlockRecipe, finiteness_checks
from oocml.evaluation.metrics import confusion_counts
from oocml.io.partitions import batch_rows

FEATURES = 20
FULL = {"train_rows": 1_000_000, "batch_rows": 500_000, "read_batch_rows": batch_rows(FEATURES + 1),
        "label_rows": 10_000, "lookups": 500}
QUICK = {"train_rows": 20_000, "batch_rows": 5_000, "read_batch_rows": 2_000, "label_rows": 100,
         "lookups": 5}
BIG_BLOCK_BYTES = 10 * BLOCK_BYTES  # the alternative: ten times oocml's blocks (80 MB)


def race(sides: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Median seconds of each callable: one untimed run each, then ``repeat`` rounds in which
    every side runs once, the order turning each round, so that drift and other processes
    fall on all sides alike."""
    names = list(sides)
    for name in names:
        sides[name]()
    runs: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            sides[name]()
            runs[name].append(time.perf_counter() - start)
    return {name: statistics.median(seconds) for name, seconds in runs.items()}


def row(rule: str, code: str, ours: float, alternative: float, **notes: Any) -> dict[str, Any]:
    return {"rule": rule, "code": code, "ours_s": ours, "alternative_s": alternative,
            "ratio": alternative / ours, **notes}


def training_data(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardized float64 rows (C-ordered) and a noisy linear 0/1 target, seeded."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, FEATURES))
    y = (X @ rng.normal(size=FEATURES) + rng.normal(scale=0.5, size=rows) > 0).astype(np.int64)
    return X, y


def train_pass(X: np.ndarray, y: np.ndarray, block_bytes: int, finite: bool = False) -> None:
    """One pass of ``SGDClassifier.partial_fit`` over ``X`` in blocks of ``block_bytes`` of
    consecutive rows (views of ``X``, so C-ordered), under ``finiteness_checks`` as the engine
    runs it (``finite``: the statistics pass checked every value)."""
    step = max(1, block_bytes // (X.shape[1] * X.itemsize))
    model, classes = SGDClassifier(random_state=0), np.array([0, 1])
    recipe = BlockRecipe(prep=None, target="y", labels=classes, block_rows=None, finite=finite)
    with finiteness_checks(recipe):
        for i in range(0, X.shape[0], step):
            model.partial_fit(X[i:i + step], y[i:i + step], classes=classes)


def training_rules(sizes: dict[str, int], repeat: int) -> list[dict[str, Any]]:
    """Rows 1 and 5: block size, and the finiteness checks, in one race of three passes."""
    X, y = training_data(sizes["train_rows"])
    t = race({"8": lambda: train_pass(X, y, BLOCK_BYTES),
              "80": lambda: train_pass(X, y, BIG_BLOCK_BYTES),
              "finite": lambda: train_pass(X, y, BLOCK_BYTES, finite=True)}, repeat)
    rows = f"{X.shape[0]:,} x {FEATURES} float64"
    return [
        row("block size", "oocml/blocks.py: BLOCK_BYTES", t["8"], t["80"],
            what=f"partial_fit pass over {rows}: {BLOCK_BYTES >> 20} MB blocks vs "
                 f"{BIG_BLOCK_BYTES >> 20} MB blocks"),
        row("finiteness checks", "oocml/engine/stream.py: finiteness_checks", t["finite"], t["8"],
            what=f"partial_fit pass over {rows} in {BLOCK_BYTES >> 20} MB blocks: "
                 "assume_finite=True vs scikit-learn's checks",
            checks_share_of_pass=(t["8"] - t["finite"]) / t["8"]),
    ]


def column_names(width: int) -> list[str]:
    return [f"x{i}" for i in range(width)]


def arrow_batch(rows: int, seed: int = 1) -> pa.Table:
    """``rows`` x 20 float64 columns ``x0..`` as an arrow table, as a parquet batch arrives."""
    data = np.random.default_rng(seed).normal(3.0, 2.0, size=(FEATURES, rows))
    return pa.table({name: data[i] for i, name in enumerate(column_names(FEATURES))})


def as_oocml_reads(table: pa.Table) -> pd.DataFrame:
    """The batch as oocml.io.partitions hands it on: one block per column, plain object labels."""
    frame = table.to_pandas(use_threads=False, split_blocks=True)
    frame.columns = pd.Index(table.column_names, dtype=object)
    return frame


def fitted_preprocessing(table: pa.Table) -> Any:
    """The fitted preprocessing oocml builds for ``scale()`` (the pipeline without its model),
    fitted through the public API on the batch's first 5,000 rows."""
    sample = table.slice(0, 5_000).to_pandas()
    sample["y"] = (sample["x0"] > sample["x0"].median()).astype(np.int64)
    return sample.ml.scale().fit_incremental("sgd", target="y").pipeline[:-1]


def gathering_rule(rule: str, rows: int, repeat: int) -> dict[str, Any]:
    """Row 2: ``apply_rows`` vs the same fitted ``Pipeline.transform`` on one batch."""
    table = arrow_batch(rows)
    pipeline, frame = fitted_preprocessing(table), as_oocml_reads(table)
    t = race({"ours": lambda: apply_rows(pipeline, frame, "transform"),
              "alternative": lambda: pipeline.transform(frame),
              "c_ordered": lambda: np.ascontiguousarray(pipeline.transform(frame))}, repeat)
    same = np.array_equal(apply_rows(pipeline, frame, "transform"), pipeline.transform(frame))
    return row(rule, "oocml/blocks.py: apply_rows", t["ours"], t["alternative"],
               what=f"scale() preprocessing of a {len(frame):,} x {FEATURES} batch: "
                    "apply_rows(pipeline, frame, 'transform') vs pipeline.transform(frame)",
               same_numbers=bool(same), alternative_c_ordered_s=t["c_ordered"],
               alternative_order="F" if pipeline.transform(frame).flags.f_contiguous else "C")


def scaling_rule(rows: int, repeat: int) -> dict[str, Any]:
    """``apply_rows`` as training runs it (finiteness checked by the statistics pass),
    gathering and standardizing rows in one pass, vs the gather then ``StandardScaler.transform``
    in place that it does otherwise."""
    table = arrow_batch(rows)
    pipeline, frame = fitted_preprocessing(table), as_oocml_reads(table)
    columns, rest = numeric_head(pipeline)
    arrays, scaler = numeric_arrays(frame, columns), in_place(rest.steps[-1][1])

    def ours() -> np.ndarray:
        with sklearn.config_context(assume_finite=True):
            return apply_rows(pipeline, frame, "transform")

    def alternative() -> np.ndarray:
        with sklearn.config_context(assume_finite=True):
            return scaler.transform(side_by_side(numeric_arrays(frame, columns)))

    t = race({"ours": ours, "alternative": alternative}, repeat)
    return row("scaling rows in one pass", "oocml/blocks.py: standardized_rows", t["ours"],
               t["alternative"], same_numbers=bool(np.array_equal(ours(), alternative())),
               what=f"scale() preprocessing of oocml's {len(frame):,} x {FEATURES} batch under "
                    "assume_finite: gathered and standardized ROW_CHUNK rows at a time vs "
                    "side_by_side then StandardScaler.transform in place",
               columns=len(arrays))


def confusion_rule(rows: int, k: int, repeat: int) -> dict[str, Any]:
    """Row 3: ``confusion_counts`` vs scikit-learn's ``confusion_matrix`` on one block."""
    rng = np.random.default_rng(k)
    y_true = rng.integers(0, k, rows)
    y_pred = np.where(rng.random(rows) < 0.8, y_true, rng.integers(0, k, rows))
    classes = list(range(k))
    t = race({"ours": lambda: confusion_counts(y_true, y_pred, classes),
              "alternative": lambda: confusion_matrix(y_true, y_pred, labels=classes)}, repeat)
    same = np.array_equal(confusion_counts(y_true, y_pred, classes),
                          confusion_matrix(y_true, y_pred, labels=classes))
    return row(f"confusion counts, {k} classes", "oocml/metrics.py: confusion_counts",
               t["ours"], t["alternative"],
               what=f"{rows:,} int64 labels: confusion_counts vs sklearn.metrics.confusion_matrix",
               same_numbers=bool(same))


def lookup_all(frame: pd.DataFrame, labels: list[str], times: int) -> None:
    for _ in range(times):
        for name in labels:
            frame[name]


def labels_rule(sizes: dict[str, int], repeat: int) -> dict[str, Any]:
    """Row 4: looking up every column of a batch, plain object labels vs pandas' default."""
    table = arrow_batch(sizes["label_rows"])
    default = table.to_pandas(use_threads=False, split_blocks=True)  # as partitions.py reads it
    plain = default.copy(deep=False)
    plain.columns = pd.Index(table.column_names, dtype=object)
    labels, times = table.column_names, sizes["lookups"]
    t = race({"ours": lambda: lookup_all(plain, labels, times),
              "alternative": lambda: lookup_all(default, labels, times)}, repeat)
    dtype = default.columns.dtype
    return row("column labels", "oocml/partitions.py: frame.columns = pd.Index(..., dtype=object)",
               t["ours"], t["alternative"],
               what=f"frame[name] for each of {FEATURES} columns, {times} times "
                    f"({times * FEATURES:,} lookups): object Index vs the index "
                    "pyarrow.Table.to_pandas() gives",
               to_pandas_column_dtype=repr(dtype),
               to_pandas_column_storage=getattr(dtype, "storage", None),
               to_pandas_column_array=type(default.columns.array).__name__)


def git_revision() -> str | None:
    """The checkout's commit, "+dirty" when the oocml package has uncommitted changes."""
    root = Path(oocml.__file__).resolve().parents[1]
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True,  # noqa: E731
                                        text=True, check=True).stdout.strip()
        return run("rev-parse", "--short", "HEAD") + ("+dirty" if run("status", "--porcelain",
                                                                       "--", "oocml") else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def environment() -> dict[str, Any]:
    """The machine (cores, load) and the versions of what shapes the figures."""
    found: dict[str, Any] = {"python": platform.python_version(), "oocml_git": git_revision()}
    for name in ("oocml", "numpy", "pandas", "pyarrow", "scikit-learn"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return {"machine": {"cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
                        "platform": platform.platform(), "load_average": os.getloadavg()},
            "versions": found}


def measure(sizes: dict[str, int], repeat: int) -> list[dict[str, Any]]:
    """Every rule's row, in the order of benchmarks/README.md."""
    blocks, finite = training_rules(sizes, repeat)
    confusion = [confusion_rule(sizes["batch_rows"], k, repeat) for k in (2, 5)]
    gathering = [gathering_rule("gathering rows", sizes["batch_rows"], repeat),
                 gathering_rule("gathering rows, oocml's batch", sizes["read_batch_rows"], repeat),
                 scaling_rule(sizes["read_batch_rows"], repeat)]
    return [blocks, *gathering, *confusion, labels_rule(sizes, repeat), finite]


def report(result: dict[str, Any]) -> str:
    """The table and the notes under it, as printed."""
    m, v = result["machine"], result["versions"]
    lines = [f"{m['cpus']} cores ({m['usable_cpus']} usable), load average at start "
             f"{' '.join(f'{x:.2f}' for x in m['load_average'])}, at end "
             f"{' '.join(f'{x:.2f}' for x in result['load_average_at_end'])}",
             "oocml " + str(v["oocml_git"]) + "; " + ", ".join(
                 f"{k} {v[k]}" for k in ("python", "numpy", "pandas", "pyarrow", "scikit-learn")),
             f"median of {result['repeat']} runs of each side"
             + (" (--quick: sizes too small to mean anything)" if result["quick"] else ""),
             "", "| rule | ours ms | alternative ms | ratio |", "|---|---:|---:|---:|"]
    for r in result["rules"]:
        lines.append(f"| {r['rule']} | {1000 * r['ours_s']:.2f} | {1000 * r['alternative_s']:.2f} "
                     f"| {r['ratio']:.2f}x |")
    lines.append("\nratio: alternative / ours (above 1: the rule is faster)")
    for r in result["rules"]:
        lines.append(f"- {r['rule']} ({r['code']}): {r['what']}")
        if "same_numbers" in r:
            lines.append(f"    same numbers on both sides: {r['same_numbers']}")
        if "alternative_c_ordered_s" in r:
            lines.append(f"    pipeline.transform returns {r['alternative_order']}-ordered rows; made "
                         "C-ordered for partial_fit (np.ascontiguousarray, as stream.py does): "
                         f"{1000 * r['alternative_c_ordered_s']:.2f} ms, ratio "
                         f"{r['alternative_c_ordered_s'] / r['ours_s']:.2f}x")
        if "checks_share_of_pass" in r:
            lines.append(f"    the checks cost {100 * r['checks_share_of_pass']:.1f}% of the pass")
        if "to_pandas_column_dtype" in r:
            lines.append(f"    pyarrow.Table.to_pandas() gives columns of dtype "
                         f"{r['to_pandas_column_dtype']} (storage {r['to_pandas_column_storage']}, "
                         f"{r['to_pandas_column_array']})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=None, help="timed runs of each side (7)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 runs: a smoke test")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args()
    repeat = args.repeat or (2 if args.quick else 7)
    started = datetime.now(timezone.utc)
    result = {"date": started.isoformat(timespec="seconds"), "quick": args.quick,
              "repeat": repeat, "sizes": QUICK if args.quick else FULL, **environment()}
    start = time.perf_counter()
    result["rules"] = measure(result["sizes"], repeat)
    result["seconds"] = time.perf_counter() - start
    result["load_average_at_end"] = os.getloadavg()
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
