"""Model selection: oocml's successive-halving search vs one fit vs dask-ml's SuccessiveHalvingSearchCV.

    python benchmarks/tune.py                            # 10M rows x 20 float64, 20 files, 3 epochs
    python benchmarks/tune.py --rows 1_000_000 --files 10 --json tune.json --markdown
    python benchmarks/tune.py --only single daskml

The data is generated once (``oocml.datasets.make_parquet_dataset``, seed 0) under a
temporary folder. Every contender trains on every file but the last and is scored on the
last (held out, never trained on). Each runs in its own fresh child process, one after the
other, after the page cache was warmed (every file read once):

- ``search``: ``ddf.ml.scale().fit_incremental("sgd", ..., epochs=E, shuffle=True,
  holdout=0.2, search=GRID, reduction_factor=3)``: the 8 candidates of ``GRID``, successive
  halving; the winner's params read from the returned model's estimator;
- ``single``: the same fit of one candidate (``SINGLE``), no search: the anchor;
- ``daskml``: ``dask_ml.model_selection.SuccessiveHalvingSearchCV(SGDClassifier(random_state=0),
  GRID, aggressiveness=3, test_size=0.2)`` on ``dask_ml.preprocessing.StandardScaler``-scaled
  dask arrays persisted in memory (one chunk per file), on an in-process ``LocalCluster``;
  ``n_initial_iter`` chosen so that the surviving candidate makes E passes over the blocks.

Figures: fit wall seconds, the child's own peak RSS (``VmHWM``, imports included), the
epochs the winner and all candidates trained, the best params and the accuracy on the
held-out file; then the ratios against their targets. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from children import peak_mb, run_child, versions, warm_page_cache  # noqa: E402

# whose versions the JSON records
PACKAGES = ("oocml", "dask", "distributed", "dask-ml", "scikit-learn", "pandas", "pyarrow")

CONTENDERS = {"search": "oocml search", "single": "oocml single", "daskml": "dask-ml"}
GRID = {"alpha": [1e-6, 1e-5, 1e-4, 1e-3], "loss": ["hinge", "log_loss"]}  # 8 candidates
SINGLE = {"alpha": 1e-4, "loss": "hinge"}
REDUCTION = 3  # oocml's reduction_factor, dask-ml's aggressiveness
HOLDOUT = 0.2  # oocml's holdout, dask-ml's test_size
PEAK_TARGET_MB = 1024


# -- oocml (each runs in a fresh child) --------------------------------------------------------


def fit_oocml(train: list[Path], epochs: int, **options):
    import dask.dataframe as dd

    import oocml  # noqa: F401  (registers the .ml accessor)

    return dd.read_parquet([str(p) for p in train]).ml.scale().fit_incremental(
        "sgd", target="y", random_state=0, epochs=epochs, shuffle=True, holdout=HOLDOUT, **options)


def import_first() -> None:
    """What a fit imports on first use, imported before the clock starts (as dask-ml's are)."""
    import dask.dataframe  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.model_selection  # noqa: F401

    import oocml.engine.fit  # noqa: F401
    import oocml.engine.search  # noqa: F401


def holdout_accuracy(model, test: Path) -> float:
    import dask.dataframe as dd

    return float(model.score(dd.read_parquet(str(test))))


def budget(model, rows_seen) -> dict:
    """Epochs trained by the winner and by all candidates together, from the rows each saw
    and the training rows of one epoch (the holdout's rows excluded)."""
    if rows_seen is None or not model.report.rows:
        return {}
    return {"winner_epochs": max(rows_seen) / model.report.rows,
            "candidate_epochs": sum(rows_seen) / model.report.rows}


def run_search(train: list[Path], test: Path, epochs: int) -> dict:
    from oocml.errors import OocmlError

    import_first()
    start = time.perf_counter()
    try:
        model = fit_oocml(train, epochs, search=GRID, reduction_factor=REDUCTION)
    except (OocmlError, TypeError) as exc:  # the API has not landed: one line, not a traceback
        if "'search'" not in str(exc) and "'reduction_factor'" not in str(exc):
            raise
        raise SystemExit(f"oocml has no search API yet: {str(exc).split(';')[0]}") from None
    fit, fit_peak = time.perf_counter() - start, peak_mb()
    results = model.search_results_
    seen = results["rows_seen"] if "rows_seen" in results.columns else None
    return {"fit_s": fit, "fit_peak_mb": fit_peak, **budget(model, seen),
            "best_params": {k: model.estimator.get_params()[k] for k in GRID},
            "accuracy": holdout_accuracy(model, test),
            "search_results": json.loads(results.to_json(orient="records", default_handler=str))}


def run_single(train: list[Path], test: Path, epochs: int) -> dict:
    import_first()
    start = time.perf_counter()
    model = fit_oocml(train, epochs, **SINGLE)
    fit, fit_peak = time.perf_counter() - start, peak_mb()
    return {"fit_s": fit, "fit_peak_mb": fit_peak, **budget(model, [model.report.rows_seen]),
            "best_params": {k: model.estimator.get_params()[k] for k in GRID},
            "accuracy": holdout_accuracy(model, test)}


# -- dask-ml -----------------------------------------------------------------------------------


def persist_through_client() -> None:
    """dask-ml 2025.1's incremental searches call ``dask.persist`` inside the coroutine that
    ``Client.sync`` runs on the event loop; dask >= 2025.3 refuses that ("Attempting to use an
    asynchronous Client in a synchronous context", dask/dask-ml#1016, open). Give that module
    a ``dask`` whose ``persist`` is ``Client.persist``: the same graphs on the same client."""
    import dask
    import dask_ml.model_selection._incremental as incremental
    from dask.base import unpack_collections
    from distributed import get_client

    def persist(*args, **kwargs):
        collections, repack = unpack_collections(*args, traverse=True)
        return repack(get_client().persist(list(collections))) if collections else args

    class DaskPersistingOnClient:
        def __getattr__(self, name):
            return persist if name == "persist" else getattr(dask, name)

    incremental.dask = DaskPersistingOnClient()


def daskml_arrays(train: list[Path]):
    """Scaled X and y as dask arrays persisted in memory, one chunk per file, and the scaler.

    The whole frame becomes one array which is then sliced (projecting X and y separately
    lets dask-expr fuse y's partitions, and their chunks no longer line up); the chunk sizes
    are counted on the persisted chunks, not by reading the files again."""
    import dask
    import dask.dataframe as dd
    import numpy as np
    from dask_ml.preprocessing import StandardScaler
    from distributed import wait

    frame = dd.read_parquet([str(p) for p in train])
    features = [c for c in frame.columns if c != "y"]
    whole = frame[[*features, "y"]].to_dask_array()
    X, y = dask.persist(whole[:, :-1], whole[:, -1].astype(np.int64))
    X.compute_chunk_sizes()
    y.compute_chunk_sizes()
    scaler = StandardScaler().fit(X)
    scaled = scaler.transform(X).persist()
    wait(scaled)  # persist() only submits on a distributed client
    return scaled, y, scaler, features


def daskml_search(blocks: int, epochs: int):
    """SuccessiveHalvingSearchCV over the 8-point grid with oocml's budget: its first rung
    trains every candidate ``n_initial_iter`` partial_fit calls (one block each), and the
    survivor ends at ``aggressiveness ** (rungs - 1)`` times that; choose it so that the
    survivor makes ``epochs`` passes over the ``blocks`` blocks."""
    from dask_ml.model_selection import SuccessiveHalvingSearchCV
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import ParameterGrid

    def search(n_initial_iter: int) -> SuccessiveHalvingSearchCV:
        # every list is sampled without replacement: n_initial_parameters = the grid's size
        # draws each grid point once (n_initial_parameters="grid" breaks the halving's arithmetic)
        return SuccessiveHalvingSearchCV(
            SGDClassifier(random_state=0), GRID, n_initial_parameters=len(ParameterGrid(GRID)),
            n_initial_iter=n_initial_iter, aggressiveness=REDUCTION, test_size=HOLDOUT,
            random_state=0)

    growth = int(search(1).metadata["max_iter"])  # dask-ml's own simulation of the rungs
    return search(max(1, round(epochs * blocks / growth)))


def run_daskml(train: list[Path], test: Path, epochs: int) -> dict:
    import logging

    import pandas as pd
    from distributed import Client, LocalCluster

    persist_through_client()
    start = time.perf_counter()
    # in this process (processes=False), so that VmHWM holds the persisted arrays
    with LocalCluster(n_workers=1, threads_per_worker=os.cpu_count(), processes=False,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster):
        cluster_s, start = time.perf_counter() - start, time.perf_counter()
        X, y, scaler, features = daskml_arrays(train)
        prepared = time.perf_counter()
        search = daskml_search(X.numblocks[0], epochs)
        search.fit(X, y, classes=[0, 1])
        fit, fit_peak = time.perf_counter() - start, peak_mb()
        blocks, done = X.numblocks[0], search.metadata_
    frame = pd.read_parquet(test)
    X_test = scaler.transform(frame[features].to_numpy(dtype="float64", copy=True))  # in place
    return {"fit_s": fit, "fit_peak_mb": fit_peak, "cluster_s": cluster_s,
            "persist_scale_s": prepared - start, "search_s": fit - (prepared - start),
            "blocks": blocks, "n_initial_iter": search.n_initial_iter,
            "partial_fit_calls": int(done["partial_fit_calls"]), "winner_calls": int(done["max_iter"]),
            "winner_epochs": done["max_iter"] / blocks,
            "candidate_epochs": done["partial_fit_calls"] / blocks,
            "best_params": {k: search.best_params_[k] for k in GRID},
            "best_split_score": float(search.best_score_),
            "accuracy": float(search.best_estimator_.score(X_test, frame["y"].to_numpy()))}


RUNNERS = {"search": run_search, "single": run_single, "daskml": run_daskml}


def child_main(name: str, folder: Path, epochs: int, result: Path) -> None:
    """Run one contender on ``folder``'s files; write its figures to ``result``."""
    import warnings

    warnings.simplefilter("ignore")  # dask-ml's FutureWarnings would drown the output
    files = sorted(folder.glob("*.parquet"))
    figures = RUNNERS[name](files[:-1], files[-1], epochs)
    # max: VmHWM is read from counters the kernel syncs lazily, so it may lag by a few pages
    result.write_text(json.dumps({**figures, "peak_mb": max(peak_mb(), figures["fit_peak_mb"])},
                                 default=str))


# -- parent ------------------------------------------------------------------------------------


def comparisons(results: dict[str, dict]) -> dict[str, dict]:
    """The ratios the search is held to, each with its target and whether it is met."""
    def ok(name: str) -> dict | None:
        return results[name] if name in results and "error" not in results[name] else None

    search, single, daskml = ok("search"), ok("single"), ok("daskml")
    rows = {
        "search_over_single_fit": ("oocml search / oocml single, fit", "<= 2.5x", "{:.2f}x",
                                   search and single and search["fit_s"] / single["fit_s"],
                                   lambda v: v <= 2.5),
        "daskml_over_search_fit": ("dask-ml / oocml search, fit", ">= 3x", "{:.2f}x",
                                   search and daskml and daskml["fit_s"] / search["fit_s"],
                                   lambda v: v >= 3),
        "search_peak_mb": ("oocml search, peak", "<= 1 GB (1024 MB)", "{:.0f} MB",
                           search and search["peak_mb"], lambda v: v <= PEAK_TARGET_MB),
        "accuracy_search_minus_daskml": ("holdout-file accuracy, oocml search - dask-ml",
                                         ">= -0.005", "{:+.4f}",
                                         search and daskml and search["accuracy"] - daskml["accuracy"],
                                         lambda v: v >= -0.005)}
    return {key: {"label": label, "target": target, "value": value,
                  "shown": "n/a" if value is None else fmt.format(value),
                  "met": None if value is None else bool(met(value))}
            for key, (label, target, fmt, value, met) in rows.items()}


def table(results: dict[str, dict], markdown: bool) -> list[str]:
    """The contenders as aligned text or as a markdown table."""
    head = ["contender", "fit s", "peak MB", "epochs: winner / all", "best params",
            "holdout-file accuracy"]
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append([CONTENDERS[name], "", "", "", "", f"failed: {r['error']}"])
            continue
        budget = (f"{r['winner_epochs']:g} / {r['candidate_epochs']:g}"
                  if "candidate_epochs" in r else "?")
        params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in r["best_params"].items())
        rows.append([CONTENDERS[name], f"{r['fit_s']:.2f}", f"{r['peak_mb']:.0f}", budget, params,
                     f"{r['accuracy']:.4f}"])
    if markdown:
        return ["| " + " | ".join(head) + " |", "|---|---:|---:|---:|---|---:|",
                *("| " + " | ".join(row) + " |" for row in rows)]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    return ["  ".join(cell.ljust(w) if i in (0, 4) else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))) for row in [head, *rows]]


def comparison_lines(compared: dict[str, dict], markdown: bool) -> list[str]:
    verdict = {True: "met", False: "MISSED", None: "n/a"}
    if markdown:
        return ["| ratio | value | target | |", "|---|---:|---|---|",
                *(f"| {c['label']} | {c['shown']} | {c['target']} | {verdict[c['met']]} |"
                  for c in compared.values())]
    width = max(len(c["label"]) for c in compared.values())
    return [f"{c['label']:<{width}}  {c['shown']:>9}  target {c['target']}: {verdict[c['met']]}"
            for c in compared.values()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    parser.add_argument("--files", type=int, default=20, help="the last one is held out")
    parser.add_argument("--epochs", type=int, default=3, help="the surviving candidate's epochs")
    parser.add_argument("--only", nargs="+", choices=list(CONTENDERS), default=None)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--markdown", action="store_true", help="also print the tables as markdown")
    parser.add_argument("--child", choices=list(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.files < 2 or args.epochs < 1:
        parser.error("need --files >= 2 (one is held out) and --epochs >= 1")
    return args


def importable(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """The contenders whose libraries import, and one line for each that does not."""
    needs = {"search": ["oocml"], "single": ["oocml"], "daskml": ["dask_ml", "distributed"]}
    kept, skipped = [], {}
    for name in names:
        try:
            for module in needs[name]:
                importlib.import_module(module)
            kept.append(name)
        except ImportError as exc:
            skipped[name] = f"not importable: {exc}"
            print(f"{CONTENDERS[name]}: skipped, {skipped[name]} (pip install '.[bench]')")
    return kept, skipped


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child, args.data, args.epochs, args.result)
    import pyarrow.parquet as pq

    from oocml.datasets import make_parquet_dataset

    names, skipped = importable(args.only or list(CONTENDERS))
    results, load_at_start = {}, os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="oocml-tune-") as folder:
        paths = make_parquet_dataset(folder, rows=args.rows, features=20, files=args.files, seed=0)
        held_out = pq.ParquetFile(paths[-1]).metadata.num_rows
        for name in names:
            print(f"running {CONTENDERS[name]} ...", flush=True)
            warm_page_cache(Path(folder))
            results[name] = run_child(__file__, name, Path(folder), epochs=args.epochs)
    compared = comparisons(results)
    print(f"\n{args.rows - held_out:,} training rows x 20 float64 in {args.files - 1} files, held out "
          f"{held_out:,} rows (the last file); {len(GRID['alpha']) * len(GRID['loss'])} candidates, "
          f"the winner trained {args.epochs} epochs, reduction factor {REDUCTION}, holdout "
          f"{HOLDOUT} of the training rows; {os.cpu_count()} cores, 1-min load {load_at_start:.2f} "
          f"before, {os.getloadavg()[0]:.2f} after; peak = the child's own VmHWM, imports included")
    print("\n".join(table(results, markdown=False)))
    print()
    print("\n".join(comparison_lines(compared, markdown=False)))
    if args.markdown:
        print("\nModel selection: 8 candidates, successive halving\n")
        print("\n".join(table(results, markdown=True)))
        print()
        print("\n".join(comparison_lines(compared, markdown=True)))
    if args.json:
        args.json.write_text(json.dumps(
            {"rows": args.rows, "train_rows": args.rows - held_out, "holdout_rows": held_out,
             "files": args.files, "epochs": args.epochs, "grid": GRID, "single": SINGLE,
             "reduction_factor": REDUCTION, "holdout": HOLDOUT, "cpus": os.cpu_count(),
             "load_average": [load_at_start, os.getloadavg()[0]], "versions": versions(PACKAGES),
             "skipped": skipped, "results": results, "comparisons": compared}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
