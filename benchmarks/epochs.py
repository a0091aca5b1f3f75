"""Several epochs with and without the prepared-block cache, against the partial_fit ceiling.

    python benchmarks/epochs.py                          # 10M rows x 20 float64, 20 files, 5 epochs
    python benchmarks/epochs.py --rows 2_000_000 --epochs 3 --json epochs.json

The data is generated once (``oocml.datasets.make_parquet_dataset``, seed 0) under a
temporary folder. Each contender runs in its own child process, one after the other, so
its peak RSS is its own:

- ``no cache``: ``TRAIN sgd ... SCALE standard EPOCHS n SHUFFLE CACHE OFF`` (what every
  epoch cost before the cache);
- ``cache``: the same statement with the cache on (its default for several epochs);
- ``cache, float32``: with the cache and ``PRECISION float32`` (half the bytes to write);
- ``ceiling``: raw ``SGDClassifier.partial_fit`` over the same standardized rows already in
  memory, in blocks of ``BLOCK_BYTES`` (8 MB), one epoch, timed without the reading: no
  epoch can be faster.

Printed: the fit, the training pass, the first epoch and the mean of the later epochs (from
the model's history), each later epoch as a multiple of the ceiling, the peak RSS, and
whether the first two models are equal bit for bit. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# name: (CACHE argument, PRECISION)
CONTENDERS = {"no cache": ("OFF", "float64"), "cache": ("", "float64"),
              "cache, float32": ("", "float32")}

CHILD = """
import json, sys, time
import numpy as np
import oocml
def peak_mb():  # this process's own high-water mark (ru_maxrss would include the parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
folder, epochs, cache, precision = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
start = time.perf_counter()
model = oocml.sql(f"TRAIN sgd ON '{folder}' PREDICT y SCALE standard EPOCHS {epochs} SHUFFLE "
                  f"CACHE {cache} PRECISION {precision}")
fit = time.perf_counter() - start
ends = [e["seconds"] for e in model.report.history]
epoch = [ends[0]] + [b - a for a, b in zip(ends, ends[1:])]
print(json.dumps({"fit": fit, "train": model.report.train_seconds,
                  "stats": model.report.stats_seconds, "epochs": epoch,
                  "coef": model.estimator.coef_.ravel().tolist(),
                  "peak_mb": peak_mb()}))
"""

CEILING = """
import json, sys, time
import dask.dataframe as dd
import numpy as np
from sklearn.linear_model import SGDClassifier
from oocml.blocks import BLOCK_BYTES
frame = dd.read_parquet(sys.argv[1]).compute()
X = frame.drop(columns="y").to_numpy(np.float64)
X = (X - X.mean(axis=0)) / X.std(axis=0)
y = frame["y"].to_numpy()
step = BLOCK_BYTES // (X.shape[1] * 8)
blocks = [(np.ascontiguousarray(X[i:i + step]), y[i:i + step]) for i in range(0, len(X), step)]
model, classes = SGDClassifier(random_state=0), np.unique(y)
start = time.perf_counter()
for Xb, yb in blocks:
    model.partial_fit(Xb, yb, classes=classes)
print(json.dumps({"epoch": time.perf_counter() - start}))
"""


def child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    from oocml.datasets import make_parquet_dataset

    with tempfile.TemporaryDirectory(prefix="oocml-epochs-") as folder:
        make_parquet_dataset(folder, rows=args.rows, features=20, files=args.files, seed=0)
        child(CEILING, folder)  # untimed: warm the page cache
        results = {name: child(CHILD, folder, str(args.epochs), cache, precision)
                   for name, (cache, precision) in CONTENDERS.items()}
        ceiling = child(CEILING, folder)["epoch"]
    same = results["no cache"]["coef"] == results["cache"]["coef"]
    print(f"{args.rows:,} rows x 20 float64 in {args.files} files, {args.epochs} epochs, "
          f"shuffled; {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
          f"the same model with and without the cache: {same}")
    print(f"raw partial_fit ceiling, one epoch: {ceiling:.2f} s")
    print(f"{'':<16}{'fit s':>8}{'train s':>9}{'epoch 1':>9}{'later':>8}{'vs ceiling':>12}"
          f"{'peak MB':>9}")
    for name, r in results.items():
        later = sum(r["epochs"][1:]) / max(len(r["epochs"]) - 1, 1)
        r["later_epoch"], r["later_vs_ceiling"] = later, later / ceiling
        print(f"{name:<16}{r['fit']:>8.2f}{r['train']:>9.2f}{r['epochs'][0]:>9.2f}"
              f"{later:>8.2f}{later / ceiling:>11.2f}x{r['peak_mb']:>9.0f}")
    speedup = results["no cache"]["fit"] / results["cache"]["fit"]
    speedup32 = results["no cache"]["fit"] / results["cache, float32"]["fit"]
    print(f"fit with the cache: {speedup:.2f}x faster; with the cache and PRECISION float32: "
          f"{speedup32:.2f}x")
    if args.json:
        for r in results.values():
            r.pop("coef")
        Path(args.json).write_text(json.dumps({"rows": args.rows, "epochs": args.epochs,
                                               "ceiling": ceiling, "same_model": same,
                                               "fit_speedup": speedup, "results": results},
                                              indent=2))


if __name__ == "__main__":
    main()
