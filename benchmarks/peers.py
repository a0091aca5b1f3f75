"""oocml vs dask-ml vs river vs Vowpal Wabbit: logistic regression on the same parquet files.

    python benchmarks/peers.py                           # 10M rows x 20 float64, 20 files, 1 and 5 epochs
    python benchmarks/peers.py --rows 2_000_000 --epochs 1 3 --json peers.json --markdown
    python benchmarks/peers.py --only oocml river

The data is generated once (``oocml.datasets.make_parquet_dataset``, seed 0) under a
temporary folder. Every contender trains on every file but the last and is scored on the
last (held out) with its own predict. Each (contender, epochs) runs in its own fresh child
process, one after the other, after the page cache was warmed (every file read once):

- ``oocml``: ``ddf.ml.scale().fit_incremental(SGDClassifier, loss="log_loss", epochs=E,
  shuffle=True)`` (the prepared-block cache at its default: on for several epochs);
- ``oocml_ordered``: the same with ``shuffle=False``: the files in their order, as river and
  Vowpal Wabbit read them (these rows are in random order already, so the accuracy is the same);
- ``dask-ml``: scaled_sgd.py's pipeline, ``StandardScaler`` + ``Incremental(SGDClassifier)``;
  epochs after the first are ``Incremental.partial_fit`` over the whole dask data again;
- ``river``: ``StandardScaler() | LogisticRegression()`` fed ``learn_many`` with pandas
  batches of 50k rows read by pyarrow, the files re-read every epoch;
- ``vw``: Vowpal Wabbit's own file driver (``Workspace("-d train.vw ...")``) on a text file
  converted from the parquet files (the conversion is timed apart and included in the fit);
  several epochs are ``--passes E --cache_file F -k --holdout_off``.

A peer that is not importable is skipped with one line. Figures: fit wall seconds, rows
trained per second (training rows x epochs / fit s), the child's own peak RSS (``VmHWM``,
imports included) after the fit and at its end (the held-out prediction too), holdout
accuracy. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from children import as_installed, peak_mb, run_child, versions, warm_page_cache  # noqa: E402

# whose versions the JSON records
PACKAGES = ("oocml", "dask", "dask-ml", "scikit-learn", "river", "vowpalwabbit", "pyarrow")

# name: (label, module that must be importable)
CONTENDERS = {"oocml": ("oocml", "oocml"), "oocml_ordered": ("oocml, no SHUFFLE", "oocml"),
              "daskml": ("dask-ml", "dask_ml"), "river": ("river", "river"),
              "vw": ("Vowpal Wabbit", "vowpalwabbit")}
RIVER_BATCH = 50_000
VW_BATCH = 100_000  # rows converted to VW's text format at a time, per core


# -- contenders (each runs in a fresh child) ---------------------------------------------------


def run_oocml(train: list[Path], holdout: Path, epochs: int, tmp: Path,
              shuffle: bool = True) -> dict:
    as_installed()  # what oocml's install imports, not dask-ml's sparse (children.py)
    import dask.dataframe as dd
    from sklearn.linear_model import SGDClassifier

    import oocml  # noqa: F401  (registers the .ml accessor)

    start = time.perf_counter()
    model = dd.read_parquet([str(p) for p in train]).ml.scale().fit_incremental(
        SGDClassifier, target="y", loss="log_loss", random_state=0, epochs=epochs,
        shuffle=shuffle)
    fit, fit_peak = time.perf_counter() - start, peak_mb()
    return {"fit_s": fit, "fit_peak_mb": fit_peak,
            "accuracy": float(model.score(dd.read_parquet(str(holdout))))}


def run_daskml(train: list[Path], holdout: Path, epochs: int, tmp: Path) -> dict:
    import dask.dataframe as dd
    import pandas as pd
    from dask_ml.preprocessing import StandardScaler
    from dask_ml.wrappers import Incremental
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline

    ddf = dd.read_parquet([str(p) for p in train])
    X, y = ddf.drop(columns="y"), ddf["y"]
    scaler = StandardScaler()
    incremental = Incremental(SGDClassifier(loss="log_loss", random_state=0), scoring="accuracy")
    pipe = make_pipeline(scaler, incremental)
    start = time.perf_counter()
    pipe.fit(X, y, incremental__classes=[0, 1])
    for _ in range(epochs - 1):  # no epochs parameter: continue from estimator_ over all blocks
        incremental.partial_fit(scaler.transform(X), y, classes=[0, 1])
    fit, fit_peak = time.perf_counter() - start, peak_mb()
    test = pd.read_parquet(holdout)
    predicted = pipe.predict(test.drop(columns="y"))
    return {"fit_s": fit, "fit_peak_mb": fit_peak,
            "accuracy": float((predicted == test["y"].to_numpy()).mean())}


def run_river(train: list[Path], holdout: Path, epochs: int, tmp: Path) -> dict:
    import pyarrow.parquet as pq
    from river import linear_model, preprocessing

    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    start = time.perf_counter()
    for _ in range(epochs):
        for path in train:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=RIVER_BATCH):
                frame = batch.to_pandas()
                target = frame.pop("y") == 1
                model.learn_many(frame, target)
    fit, fit_peak = time.perf_counter() - start, peak_mb()
    test = pq.read_table(holdout).to_pandas()
    truth = (test.pop("y") == 1).to_numpy()
    return {"fit_s": fit, "fit_peak_mb": fit_peak,
            "accuracy": float((model.predict_many(test).to_numpy() == truth).mean())}


def run_vw(train: list[Path], holdout: Path, epochs: int, tmp: Path) -> dict:
    import numpy as np
    import pyarrow.parquet as pq
    from vowpalwabbit import Workspace

    data, model, cache = tmp / "train.vw", tmp / "model.vw", tmp / "train.cache"
    start = time.perf_counter()
    write_vw(train, data)
    convert = time.perf_counter() - start
    passes = f" --passes {epochs} --cache_file {cache} -k --holdout_off" if epochs > 1 else ""
    # "-d" makes the Workspace run VW's own driver (parse, learn) before returning
    Workspace(f"--loss_function logistic --quiet -d {data} -f {model}{passes}").finish()
    fit, fit_peak = time.perf_counter() - start, peak_mb()
    write_vw([holdout], tmp / "test.vw")
    Workspace(f"-i {model} -t --quiet -d {tmp / 'test.vw'} -p {tmp / 'pred.txt'}").finish()
    margin = np.loadtxt(tmp / "pred.txt", ndmin=1)
    truth = pq.read_table(holdout, columns=["y"])["y"].to_numpy() == 1
    return {"fit_s": fit, "convert_s": convert, "fit_peak_mb": fit_peak,
            "accuracy": float(((margin > 0) == truth).mean())}


def write_vw(paths: list[Path], out: Path) -> None:
    """The parquet files as one VW text file, ``-1|1 |f x0:v x1:v ...`` a row, in order.

    Values are written as float32 (VW's own precision: its shortest text loses nothing VW
    keeps); pyarrow's compute kernels format batches of ``VW_BATCH`` rows on every core, a
    window of one batch per core at a time, so the memory does not grow with the files.
    """
    from concurrent.futures import ThreadPoolExecutor
    from itertools import islice

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    def lines(batch: pa.RecordBatch) -> pa.Table:
        parts = [pc.if_else(pc.equal(batch["y"], 1), "1", "-1"), pa.scalar("|f")]
        parts += [pc.binary_join_element_wise(
            f"{name}:", pc.cast(pc.cast(batch[name], pa.float32()), pa.string()), "")
                  for name in batch.schema.names if name != "y"]
        return pa.table({"line": pc.binary_join_element_wise(*parts, " ")})

    batches = (b for path in paths for b in pq.ParquetFile(path).iter_batches(VW_BATCH))
    options = pcsv.WriteOptions(include_header=False, quoting_style="none")
    workers = os.cpu_count() or 1
    with open(out, "wb") as sink, ThreadPoolExecutor(workers) as pool:
        while window := list(islice(batches, workers)):
            for table in pool.map(lines, window):
                pcsv.write_csv(table, sink, write_options=options)


RUNNERS = {"oocml": run_oocml, "oocml_ordered": partial(run_oocml, shuffle=False),
           "daskml": run_daskml, "river": run_river, "vw": run_vw}


def child_main(name: str, folder: Path, epochs: int, result: Path) -> None:
    """Run one contender for ``epochs`` on ``folder``'s files; write its figures to ``result``."""
    import warnings

    warnings.simplefilter("ignore")  # dask-ml's FutureWarnings would drown the output
    files = sorted(folder.glob("*.parquet"))
    with tempfile.TemporaryDirectory(prefix=f"oocml-peers-{name}-") as tmp:
        figures = RUNNERS[name](files[:-1], files[-1], epochs, Path(tmp))
    # max: VmHWM is read from counters the kernel syncs lazily, so it may lag by a few pages
    result.write_text(json.dumps({**figures, "peak_mb": max(peak_mb(), figures["fit_peak_mb"])}))


# -- parent ------------------------------------------------------------------------------------


def table(results: list[dict], markdown: bool) -> list[str]:
    """The figures as aligned text or as a markdown table."""
    head = ["contender", "epochs", "fit s", "of which convert s", "rows/s", "fit peak MB",
            "peak MB", "holdout accuracy"]
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["label"], str(r["epochs"]), *[""] * 5, f"failed: {r['error']}"])
            continue
        convert = f"{r['convert_s']:.2f}" if "convert_s" in r else ""
        rows.append([r["label"], str(r["epochs"]), f"{r['fit_s']:.2f}", convert,
                     f"{r['rows_per_s']:,.0f}", f"{r['fit_peak_mb']:.0f}", f"{r['peak_mb']:.0f}",
                     f"{r['accuracy']:.4f}"])
    if markdown:
        return ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1),
                *("| " + " | ".join(row) + " |" for row in rows)]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    return ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))) for row in [head, *rows]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    parser.add_argument("--files", type=int, default=20, help="the last one is held out")
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--only", nargs="+", choices=list(CONTENDERS), default=None)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--markdown", action="store_true", help="also print the table as markdown")
    parser.add_argument("--child", choices=list(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.files < 2 or min(args.epochs) < 1:
        parser.error("need --files >= 2 (one is held out) and --epochs >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child, args.data, args.epochs[0], args.result)
    from oocml.datasets import make_parquet_dataset

    skipped, names = {}, []
    for name in args.only or CONTENDERS:
        label, module = CONTENDERS[name]
        try:
            importlib.import_module(module)
            names.append(name)
        except ImportError as exc:
            skipped[name] = f"{module} is not importable: {exc}"
            print(f"{label}: skipped, {skipped[name]} (pip install '.[bench]')")
    results, load_at_start = [], os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="oocml-peers-") as folder:
        paths = make_parquet_dataset(folder, rows=args.rows, features=20, files=args.files, seed=0)
        import pyarrow.parquet as pq

        held_out = pq.ParquetFile(paths[-1]).metadata.num_rows
        train_rows = args.rows - held_out
        for name in names:
            for epochs in args.epochs:
                print(f"running {CONTENDERS[name][0]}, {epochs} epoch(s) ...", flush=True)
                warm_page_cache(Path(folder))
                r = {"contender": name, "label": CONTENDERS[name][0], "epochs": epochs,
                     **run_child(__file__, name, Path(folder), epochs=epochs)}
                if "fit_s" in r:
                    r["rows_per_s"] = train_rows * epochs / r["fit_s"]
                results.append(r)
    print(f"\n{train_rows:,} training rows x 20 float64 in {args.files - 1} files, held out "
          f"{held_out:,} rows (the last file); {os.cpu_count()} cores, 1-min load {load_at_start:.2f} "
          f"before, {os.getloadavg()[0]:.2f} after; rows/s = training rows x epochs / fit s; peaks = the "
          "child's own VmHWM after the fit and at its end (the held-out prediction too); "
          "Vowpal Wabbit's fit includes converting parquet to its text format")
    print("\n".join(table(results, markdown=False)))
    if args.markdown:
        print("\noocml vs dask-ml vs river vs Vowpal Wabbit\n")
        print("\n".join(table(results, markdown=True)))
    if args.json:
        args.json.write_text(json.dumps(
            {"rows": args.rows, "train_rows": train_rows, "holdout_rows": held_out,
             "files": args.files, "epochs": args.epochs, "cpus": os.cpu_count(),
             "load_average": [load_at_start, os.getloadavg()[0]],
             "versions": versions(PACKAGES), "skipped": skipped, "results": results}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
