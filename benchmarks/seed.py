"""The seed's benchmark: StandardScaler + SGDClassifier out-of-core, oocml vs dask-ml, one run.

    python benchmarks/seed.py                       # 10M rows x 20 float64 in 20 parquet files
    python benchmarks/seed.py --rows 1_000_000 --files 10 --json result.json

Each contender runs in its own child process (peak RSS is the child's own), one
after the other, on the same files with a warm page cache. The same run also
measures the ceilings: raw ``partial_fit`` over the blocks already in memory,
and pyarrow's read throughput on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

CONTENDERS = ("oocml", "daskml")


# -- data -----------------------------------------------------------------------------------------

def ensure_data(folder: Path, rows: int, files: int, features: int, dtype: str) -> None:
    """Generate the data set with oocml's generator unless ``folder`` already holds this shape."""
    from oocml.datasets import make_parquet_dataset

    shape = {"rows": rows, "files": files, "features": features, "dtype": dtype}
    marker = folder.with_name(folder.name + ".shape.json")  # beside the data: readers see only parquet
    if marker.is_file() and json.loads(marker.read_text()) == shape:
        return
    for old in folder.glob("*.parquet"):
        old.unlink()
    start = time.perf_counter()
    make_parquet_dataset(folder, rows=rows, features=features, files=files, dtype=dtype, seed=0)
    marker.write_text(json.dumps(shape))
    print(f"generated {rows:,} rows x {features} {dtype} in {files} files "
          f"({time.perf_counter() - start:.1f}s)", flush=True)


def warm_page_cache(folder: Path) -> None:
    for path in sorted(folder.glob("*.parquet")):
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass


# -- contenders (run in child processes) -----------------------------------------------------------

def run_oocml(folder: Path) -> dict:
    import dask.dataframe as dd
    from sklearn.linear_model import SGDClassifier

    import oocml  # noqa: F401

    ddf = dd.read_parquet(folder)
    start = time.perf_counter()
    model = ddf.ml.scale().fit_incremental(SGDClassifier, target="y", random_state=0)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    accuracy = model.score(ddf)
    return {"fit_s": fit, "predict_score_s": time.perf_counter() - start, "accuracy": accuracy,
            "stats_pass_s": model.info["stats_seconds"], "train_pass_s": model.info["train_seconds"],
            "passes": model.info["passes"]}


def run_daskml(folder: Path) -> dict:
    """The seed's pipeline. Adapted only where dask-ml fails under dask-expr: ``pipe.score(X, y)``
    raises (X and y projected separately), so accuracy is computed from ``pipe.predict(X)``."""
    import dask
    import dask.dataframe as dd
    import numpy as np
    from dask_ml.preprocessing import StandardScaler
    from dask_ml.wrappers import Incremental
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline

    ddf = dd.read_parquet(folder)
    X, y = ddf.drop(columns="y"), ddf["y"]
    pipe = make_pipeline(StandardScaler(),
                         Incremental(SGDClassifier(random_state=0), scoring="accuracy"))
    start = time.perf_counter()
    pipe.fit(X, y, incremental__classes=[0, 1])
    fit = time.perf_counter() - start
    start = time.perf_counter()
    predicted, truth = dask.compute(pipe.predict(X), y)
    accuracy = float((np.asarray(predicted) == truth.to_numpy()).mean())
    return {"fit_s": fit, "predict_score_s": time.perf_counter() - start, "accuracy": accuracy}


def child(name: str, folder: Path) -> None:
    import warnings

    warnings.simplefilter("ignore")
    result = {"oocml": run_oocml, "daskml": run_daskml}[name](folder)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result), flush=True)


def run_child(name: str, folder: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", name, "--data", str(folder)],
                         capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr or out.stdout).strip().splitlines()[-1:]}
    return json.loads(lines[-1][len("RESULT "):])


# -- ceilings ----------------------------------------------------------------------------------------

def read_ceiling(folder: Path) -> dict:
    """pyarrow read -> pandas -> numpy on one core, rows/s."""
    import pyarrow.parquet as pq

    rows, start = 0, time.perf_counter()
    for path in sorted(folder.glob("*.parquet")):
        rows += len(pq.read_table(path, use_threads=False).to_pandas().to_numpy())
    return {"read_rows_per_s_one_core": rows / (time.perf_counter() - start)}


def partial_fit_ceiling(folder: Path, rows: int, features: int) -> dict:
    """SGDClassifier.partial_fit over standardized in-memory blocks (one per file), rows/s."""
    if rows * (features + 1) * 8 * 2 > 6 * 2**30:
        return {"partial_fit_ceiling": "skipped: the blocks would not fit comfortably in memory"}
    import numpy as np
    import pyarrow.parquet as pq
    from sklearn.linear_model import SGDClassifier

    blocks = []
    for path in sorted(folder.glob("*.parquet")):
        frame = pq.read_table(path).to_pandas()
        blocks.append((np.ascontiguousarray(frame.drop(columns="y").to_numpy()), frame["y"].to_numpy()))
    X_all = np.concatenate([b[0] for b in blocks])
    mean, std = X_all.mean(axis=0), X_all.std(axis=0)
    del X_all
    blocks = [(np.ascontiguousarray((X - mean) / std), y) for X, y in blocks]
    estimator, start = SGDClassifier(random_state=0), time.perf_counter()
    for X, y in blocks:
        estimator.partial_fit(X, y, classes=[0, 1])
    seconds = time.perf_counter() - start
    return {"partial_fit_s": seconds, "partial_fit_rows_per_s": rows / seconds}


# -- report --------------------------------------------------------------------------------------------

def versions() -> dict:
    names = ["oocml", "dask", "pandas", "scikit-learn", "pyarrow", "numpy", "dask-ml"]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def report(results: dict, rows: int) -> None:
    print(f"\n{'contender':10s} {'fit s':>8s} {'pred+score s':>13s} {'accuracy':>9s} "
          f"{'peak RSS MB':>12s} {'fit rows/s':>12s}")
    for name, r in results["contenders"].items():
        if "error" in r:
            print(f"{name:10s} failed: {r['error']}")
            continue
        print(f"{name:10s} {r['fit_s']:8.2f} {r['predict_score_s']:13.2f} {r['accuracy']:9.4f} "
              f"{r['peak_rss_mb']:12.0f} {rows / r['fit_s']:12,.0f}")
    ours, theirs = results["contenders"].get("oocml", {}), results["contenders"].get("daskml", {})
    if "fit_s" in ours and "fit_s" in theirs:
        results["ratios"] = {
            "fit_speedup": theirs["fit_s"] / ours["fit_s"],
            "predict_score_speedup": theirs["predict_score_s"] / ours["predict_score_s"],
            "accuracy_difference": ours["accuracy"] - theirs["accuracy"],
        }
        r = results["ratios"]
        print(f"\noocml vs dask-ml: fit {r['fit_speedup']:.2f}x faster, predict+score "
              f"{r['predict_score_speedup']:.2f}x faster, accuracy {r['accuracy_difference']:+.4f}")
    if "stats_pass_s" in ours:
        print(f"oocml passes: statistics {ours['stats_pass_s']:.2f}s, training {ours['train_pass_s']:.2f}s")
    ceiling = results["ceilings"]
    if "partial_fit_s" in ceiling:
        line = (f"raw partial_fit ceiling: {ceiling['partial_fit_s']:.2f}s "
                f"({ceiling['partial_fit_rows_per_s']:,.0f} rows/s)")
        if "train_pass_s" in ours:
            line += f"; oocml's training pass is {ours['train_pass_s'] / ceiling['partial_fit_s']:.2f}x it"
        print(line)
    print(f"pyarrow read, one core: {ceiling['read_rows_per_s_one_core']:,.0f} rows/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--data", type=Path, default=None, help="data folder (reused if it fits)")
    parser.add_argument("--only", choices=CONTENDERS, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write all figures here")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.data)

    contenders = [args.only] if args.only else list(CONTENDERS)
    if "daskml" in contenders:
        try:
            metadata.version("dask-ml")
        except metadata.PackageNotFoundError:
            sys.exit("dask-ml is not installed: pip install '.[bench]', or pass --only oocml")
    folder = args.data or Path(tempfile.gettempdir()) / "oocml-bench" / (
        f"{args.rows}x{args.features}-{args.files}-{args.dtype}")
    folder.mkdir(parents=True, exist_ok=True)
    ensure_data(folder, args.rows, args.files, args.features, args.dtype)
    warm_page_cache(folder)
    print(f"data: {folder} (page cache warmed by reading every file once)", flush=True)

    results = {"rows": args.rows, "files": args.files, "features": args.features, "dtype": args.dtype,
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
               "versions": versions(), "contenders": {}, "ceilings": {}}
    for name in contenders:
        print(f"running {name} ...", flush=True)
        results["contenders"][name] = run_child(name, folder)
    results["ceilings"].update(read_ceiling(folder))
    results["ceilings"].update(partial_fit_ceiling(folder, args.rows, args.features))
    report(results, args.rows)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
