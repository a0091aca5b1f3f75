"""What inspecting a model costs: the evaluation views against a plain scoring pass, in one run.

    python benchmarks/evaluate.py                        # 4M rows x 20 float64 in 8 files
    python benchmarks/evaluate.py --rows 500_000 --json evaluate.json

The data is generated once under a temporary folder with oocml's own generator; one
``SGDClassifier(loss="log_loss")`` is trained on it (one epoch, standard scaling). Then each
view runs ``--repeat`` times, the order turning each round, and the median is reported:

- ``score`` (the anchor): accuracy, one pass of predict + confusion counts;
- ``EVALUATE``: the full table, which adds probabilities, log-loss and the per-class score
  histograms that give roc_auc and average_precision;
- ``EVALUATE CURVE``: the same pass, and the curve table built from the histograms;
- ``EVALUATE ... BY CLASS``: the same pass, the per-class report.

The figure that matters is each view's time as a multiple of ``score``'s. See
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import dask
import dask.dataframe as dd

import oocml
from oocml.datasets import make_parquet_dataset

VIEWS = {
    "score": lambda model, data: model.score(data),
    "EVALUATE": lambda model, data: model.evaluate(data),
    "EVALUATE CURVE": lambda model, data: model.curve(data),
    "EVALUATE BY CLASS": lambda model, data: model.evaluate(data, by_class=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=4_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oocml-evaluate-") as folder:
        make_parquet_dataset(folder, rows=args.rows, features=20, files=args.files,
                             n_classes=args.classes, seed=0)
        data = dd.read_parquet(folder)
        with dask.config.set(scheduler="threads"):
            model = data.ml.scale().fit_incremental("sgd", target="y", loss="log_loss")
            times = {name: [] for name in VIEWS}
            names = list(VIEWS)
            for view in names:  # untimed: warm the page cache and the code
                VIEWS[view](model, data)
            for round_ in range(args.repeat):
                for view in names[round_ % len(names):] + names[:round_ % len(names)]:
                    start = time.perf_counter()
                    VIEWS[view](model, data)
                    times[view].append(time.perf_counter() - start)
    anchor = statistics.median(times["score"])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    print(f"{args.rows:,} rows x 20 float64 in {args.files} files, {args.classes} classes; "
          f"oocml {commit}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
          f"median of {args.repeat}")
    print(f"{'view':<22}{'seconds':>9}{'vs score':>10}{'M rows/s':>10}")
    rows = {}
    for view, runs in times.items():
        seconds = statistics.median(runs)
        rows[view] = {"seconds": seconds, "vs_score": seconds / anchor}
        print(f"{view:<22}{seconds:>9.2f}{seconds / anchor:>9.2f}x"
              f"{args.rows / seconds / 1e6:>10.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": args.rows, "views": rows,
                                               "version": oocml.__version__}, indent=2))


if __name__ == "__main__":
    main()
