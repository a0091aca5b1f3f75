"""oocml end to end: generate data, train out-of-core, evaluate, predict, write predictions.

    python examples/quickstart.py                 # 2M training rows x 20 features
    python examples/quickstart.py --rows 200000   # quicker

Training data is read block by block, never all at once: the same script runs
on data far larger than memory.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import dask.dataframe as dd
from sklearn.linear_model import SGDClassifier

import oocml  # registers the .ml accessor
from oocml.datasets import make_parquet_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="training rows")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where data, model and predictions go (default: a temporary folder)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="oocml-quickstart-"))

    print(f"1. generating {args.rows:,} training and {args.rows // 4:,} test rows in {workdir}")
    make_parquet_dataset(workdir / "train", rows=args.rows, features=20, files=10, seed=0)
    make_parquet_dataset(workdir / "test", rows=args.rows // 4, features=20, files=4, seed=0,
                         sample=1)  # same task, other rows
    train, test = dd.read_parquet(workdir / "train"), dd.read_parquet(workdir / "test")

    print("2. training: standard scaling + SGDClassifier, 2 epochs, shuffled blocks")
    start = time.perf_counter()
    model = train.ml.scale().fit_incremental(SGDClassifier, target="y", epochs=2, shuffle=True,
                                             loss="log_loss", alpha=1e-5)
    print(f"   {model.report.rows_seen:,} rows in {time.perf_counter() - start:.1f}s, "
          f"{model.report.passes} passes over the data")

    print("3. evaluating on the test files")
    print(model.evaluate(test).to_string(index=False))

    print("4. predicting and writing predictions")
    out = model.write_predictions(test, workdir / "predictions", proba=True, overwrite=True)
    print(f"   wrote {out}: {len(dd.read_parquet(out)):,} rows")

    path = model.save(workdir / "model.oocml")
    reloaded = oocml.load_model(path)
    print(f"5. saved {path}; reloaded accuracy {reloaded.score(test):.4f}")


if __name__ == "__main__":
    main()
